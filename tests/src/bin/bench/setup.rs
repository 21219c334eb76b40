//! The bench's servers: nats-server with the deployment's durability (fsync before
//! every ack, `sync_interval: always` in deploy/nats/values.yaml; the test kit's
//! default is the server's 2-minute sync), PostgreSQL from the test kit, and the
//! services in-process as in the end-to-end tests.

use std::path::PathBuf;

use frontline_e2e::Cluster;
use frontline_testkit::NatsServer;

/// The JetStream durability the bench's servers run with: the deployment's
/// `sync_interval: always`, unless `BENCH_NATS_SYNC` names another interval (say
/// `2m`, the server's default, to compare).
pub fn nats_durability() -> String {
    let sync = std::env::var("BENCH_NATS_SYNC").unwrap_or_default();
    let sync = if sync.trim().is_empty() {
        "always"
    } else {
        sync.trim()
    };
    format!("sync_interval: {sync}")
}

/// The workspace's `target/` directory (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
            dir.canonicalize().unwrap_or(dir)
        })
}

/// Where the bench writes its configuration, service logs and results.
pub fn bench_dir() -> PathBuf {
    target_dir().join("bench")
}

/// A fresh nats-server started with [`nats_durability`].
pub async fn nats() -> anyhow::Result<NatsServer> {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("nats-durable.conf");
    std::fs::write(
        &conf,
        format!("jetstream {{\n  {}\n}}\n", nats_durability()),
    )?;
    let server =
        tokio::task::spawn_blocking(move || NatsServer::start_with_args(["-c".into(), conf]))
            .await??;
    Ok(server)
}

/// A cluster with no service started, its services and log on a durable
/// nats-server of its own (the harness's idle default server is swapped for it).
pub async fn bare() -> anyhow::Result<Cluster> {
    let durable = nats().await?;
    let mut cluster = Cluster::bare_on_nats(&durable.url(), 1).await?;
    cluster.nats = durable;
    Ok(cluster)
}

/// [`bare`] with intake, conversation and routing serving, as `Cluster::start`.
pub async fn start() -> anyhow::Result<Cluster> {
    let mut cluster = bare().await?;
    cluster.intake_addr = cluster.serve(frontline_intake::service()).await?;
    cluster.wait_serving(cluster.intake_addr).await?;
    cluster.conversation_addr = cluster.add_conversation_replica().await?;
    cluster.routing_addr = cluster.serve(frontline_routing::service()).await?;
    cluster.wait_serving(cluster.routing_addr).await?;
    Ok(cluster)
}

/// `nats-server --version` of the binary the bench runs.
pub fn nats_version() -> String {
    frontline_testkit::nats_server_binary()
        .ok()
        .and_then(|bin| {
            std::process::Command::new(bin)
                .arg("--version")
                .output()
                .ok()
        })
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .map(|v| v.trim_start_matches("nats-server:").trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `SELECT version()` on the cluster's database.
pub async fn postgres_version(cluster: &Cluster) -> anyhow::Result<String> {
    let db = sqlx::PgPool::connect(&cluster.database.url).await?;
    let (version,): (String,) = sqlx::query_as("SELECT version()").fetch_one(&db).await?;
    db.close().await;
    Ok(version)
}
