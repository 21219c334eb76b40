//! Idle memory: each real service binary (`make release`) started against the
//! bench's NATS and PostgreSQL, waited for until its health says SERVING, left
//! idle, then its resident set (`VmRSS` in /proc/<pid>/status) read.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;
use frontline_e2e::SECRET;

/// The services, by binary name.
pub const SERVICES: [&str; 4] = [
    "frontline-intake",
    "frontline-conversation",
    "frontline-routing",
    "frontline-analytics",
];

/// A started binary; killed (by its own id) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the release binaries are (`BENCH_BIN_DIR`, else `target/release`).
fn bin_dir() -> PathBuf {
    std::env::var_os("BENCH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::setup::target_dir().join("release"))
}

/// Each service's idle resident set, in MB (MiB), after `idle` of rest.
pub async fn idle_rss(idle: Duration) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let cluster = crate::setup::bare().await?;
    let logs = crate::setup::bench_dir().join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut running = Vec::new();
    for name in SERVICES {
        let binary = bin_dir().join(name);
        anyhow::ensure!(
            binary.is_file(),
            "{} not found: run `make release` first (or set BENCH_BIN_DIR)",
            binary.display()
        );
        let (grpc, metrics) = (
            frontline_testkit::free_port()?,
            frontline_testkit::free_port()?,
        );
        let env = frontline_testkit::service_env(
            &cluster.nats.url(),
            SECRET,
            Some(&cluster.database.url),
            grpc,
            metrics,
        );
        let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
        let child = Command::new(&binary)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let child = Running(child);
        cluster
            .wait_serving(SocketAddr::from(([127, 0, 0, 1], grpc)))
            .await
            .with_context(|| format!("{name} (log in {})", logs.display()))?;
        eprintln!("{name} is SERVING (pid {})", child.0.id());
        running.push((name, child));
    }
    eprintln!("idling {} s…", idle.as_secs());
    tokio::time::sleep(idle).await;
    let mut out = Vec::new();
    for (name, child) in &running {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/<pid>/status")?;
        out.push((*name, kib / 1024.0));
    }
    drop(running);
    cluster.shutdown().await;
    Ok(out)
}
