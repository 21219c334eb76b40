//! Test kit for Frontline: runs a real, pinned `nats-server` with JetStream for tests.
//!
//! [`NatsServer::start`] launches the binary found by [`nats_server_binary`] on
//! `127.0.0.1` with an ephemeral client port, an ephemeral monitoring port and a
//! fresh temporary store directory, and returns once the server reports that
//! JetStream is ready. Dropping the [`NatsServer`] kills the process and removes
//! the store. [`NatsServer::kill`] and [`NatsServer::restart`] support fault tests
//! (crash the server, bring it back on the same port with the same store);
//! [`NatsServer::pause`] and [`NatsServer::resume`] freeze and thaw it.
//!
//! Everything here is synchronous `std` code, so it can be used from plain `#[test]`s
//! as well as from async tests (call it before entering the runtime, or from
//! `spawn_blocking`; the blocking waits are short).
//!
//! The system `nats-server` is deliberately never used: it is too old. Install the
//! pinned one with `make tools` (or `scripts/install-nats-server.sh`), or point
//! `NATS_SERVER_BIN` at a suitable binary.
#![warn(missing_docs)]

mod process;
pub use process::{ServiceProcess, free_port, http_get, service_env, signal};

mod cluster;
pub use cluster::{CLUSTER_READY_TIMEOUT, NatsCluster};

mod postgres;
pub use postgres::{
    DATABASE_URL_ENV, POSTGRES_BIN_DIR_ENV, POSTGRES_READY_TIMEOUT, PostgresError, PostgresServer,
    SUPERUSER, TestDatabase, create_database, postgres_bin_dir, test_database,
};

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The key-encryption key every test service runs with (base64 of 32 bytes; a
/// test value, never a production one).
pub const TEST_KEK: &str = "xSw+IMV3tsjZfmZx2mYLrhHPsv3MPBQTNde+RaSg12g=";

/// Environment variable naming the `nats-server` binary to use; overrides the
/// project-local `.tools/bin/nats-server`.
pub const NATS_SERVER_BIN_ENV: &str = "NATS_SERVER_BIN";

/// How long [`NatsServer::start`] and [`NatsServer::restart`] wait for the server
/// to report JetStream as healthy.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How many times [`NatsServer::start`] retries with fresh ports when the server
/// exits right after launch (typically because an ephemeral port was taken in the
/// meantime).
pub const START_RETRIES: u32 = 3;

/// Number of log lines included in error messages.
const LOG_TAIL_LINES: usize = 30;

/// Name of the server's log file inside the temporary directory.
const LOG_FILE: &str = "nats-server.log";

/// Interval between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Errors from starting, stopping or locating `nats-server`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable `nats-server` binary was found.
    #[error(
        "nats-server binary not found at {path}{hint}; run `make tools` \
         (or `scripts/install-nats-server.sh`) to install the pinned version, \
         or set {NATS_SERVER_BIN_ENV} to a nats-server binary"
    )]
    BinaryNotFound {
        /// The path that was checked.
        path: PathBuf,
        /// Where the path came from, e.g. " (from NATS_SERVER_BIN)".
        hint: &'static str,
    },
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The server process exited before it became ready.
    #[error(
        "nats-server exited before becoming ready ({status}) after {attempts} attempt(s); \
         last log lines:\n{log_tail}"
    )]
    ExitedEarly {
        /// The exit status of the last attempt.
        status: String,
        /// How many launches were tried.
        attempts: u32,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// The server did not report JetStream as healthy in time.
    #[error(
        "nats-server on port {port} was not ready (JetStream healthz) within {timeout:?}; \
         last log lines:\n{log_tail}"
    )]
    Timeout {
        /// The client port of the server.
        port: u16,
        /// How long we waited.
        timeout: Duration,
        /// The last lines of the server log.
        log_tail: String,
    },
}

impl Error {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Locates the `nats-server` binary to run.
///
/// Lookup order:
/// 1. the environment variable `NATS_SERVER_BIN` (if set, it must point to an
///    existing file; there is no fallback);
/// 2. `<workspace root>/.tools/bin/nats-server`, installed by `make tools`.
///
/// The system `nats-server` on `PATH` is never used.
///
/// # Errors
///
/// [`Error::BinaryNotFound`] if the chosen path does not exist, with a hint to run
/// `make tools`.
pub fn nats_server_binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(NATS_SERVER_BIN_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::BinaryNotFound {
                path,
                hint: " (from NATS_SERVER_BIN)",
            })
        };
    }
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let path = root.join(".tools").join("bin").join("nats-server");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::BinaryNotFound { path, hint: "" })
    }
}

/// A running `nats-server` with JetStream, bound to `127.0.0.1` on an ephemeral
/// port, storing into a temporary directory.
///
/// The process is killed and the store directory removed when this value is
/// dropped.
#[derive(Debug)]
pub struct NatsServer {
    /// The running process, `None` after [`NatsServer::kill`].
    child: Option<Child>,
    /// The binary that was started.
    binary: PathBuf,
    /// Client port.
    port: u16,
    /// HTTP monitoring port (used for `/healthz`).
    monitor_port: u16,
    /// Temporary directory: JetStream store (`-sd`) and the server log.
    dir: TempDir,
    /// Arguments added to every launch (TLS, authorization).
    extra_args: Vec<OsString>,
    /// Whether `-sd <dir>` is passed (not when a configuration file names it).
    store_flag: bool,
}

impl NatsServer {
    /// Starts a fresh server: JetStream enabled, listening on `127.0.0.1` with an
    /// ephemeral client port, a fresh temporary store directory, and waits until
    /// `GET /healthz?js-enabled-only=true` answers 200.
    ///
    /// If the process exits right away (e.g. an ephemeral port was taken in the
    /// meantime) it is retried with new ports up to [`START_RETRIES`] times.
    ///
    /// # Errors
    ///
    /// [`Error::BinaryNotFound`] if no binary is installed (see
    /// [`nats_server_binary`]), [`Error::ExitedEarly`] if every attempt exited
    /// before becoming ready, [`Error::Timeout`] if the server did not become
    /// ready within [`READY_TIMEOUT`], [`Error::Io`] for I/O failures. Start errors
    /// include the tail of the server log.
    pub fn start() -> Result<NatsServer, Error> {
        Self::start_with_args(std::iter::empty::<OsString>())
    }

    /// [`NatsServer::start`] with more `nats-server` arguments, kept for
    /// [`NatsServer::restart`]: say `--tls --tlscert … --tlskey …` or
    /// `--user … --pass …`. The monitoring port stays plain HTTP, so readiness is
    /// probed as usual.
    ///
    /// # Errors
    ///
    /// As for [`NatsServer::start`].
    pub fn start_with_args(
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Result<NatsServer, Error> {
        let dir = tempfile::Builder::new()
            .prefix("frontline-nats-")
            .tempdir()
            .map_err(|e| Error::io("creating temporary store directory", e))?;
        Self::start_in(dir, args, true)
    }

    /// [`NatsServer::start_with_args`] storing into `dir` (which may already hold
    /// files, say a configuration file naming it as `store_dir`: then give
    /// `store_flag` false, as `nats-server` refuses `-sd` on top of it).
    pub(crate) fn start_in(
        dir: TempDir,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        store_flag: bool,
    ) -> Result<NatsServer, Error> {
        let binary = nats_server_binary()?;
        let mut server = NatsServer {
            child: None,
            binary,
            port: 0,
            monitor_port: 0,
            dir,
            extra_args: args.into_iter().map(Into::into).collect(),
            store_flag,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (port, monitor_port) = two_free_ports()?;
            server.port = port;
            server.monitor_port = monitor_port;
            match server.launch_and_wait() {
                Ok(()) => return Ok(server),
                // Most likely a port was taken between picking and binding.
                Err(LaunchError::Exited(_)) if attempts <= START_RETRIES => {}
                Err(LaunchError::Exited(status)) => {
                    return Err(Error::ExitedEarly {
                        status,
                        attempts,
                        log_tail: server.log_tail(),
                    });
                }
                Err(LaunchError::Other(e)) => return Err(e),
            }
        }
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (`-sd`); JetStream keeps its data in the
    /// `jetstream/` subdirectory. The server log (`nats-server.log`) lives here too.
    pub fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server abruptly (SIGKILL via [`Child::kill`]) and waits for it to
    /// exit. Does nothing if it is not running. The store directory is kept, so
    /// [`NatsServer::restart`] brings the same data back.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the process could not be killed or waited for.
    pub fn kill(&mut self) -> Result<(), Error> {
        if let Some(mut child) = self.child.take() {
            match child.kill() {
                Ok(()) => {}
                // Already exited: fine, just reap it below.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
                Err(e) => {
                    self.child = Some(child);
                    return Err(Error::io("killing nats-server", e));
                }
            }
            child
                .wait()
                .map_err(|e| Error::io("waiting for nats-server to exit", e))?;
        }
        Ok(())
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Freezes the server with SIGSTOP (as a stalled host or a long GC pause
    /// would): connections stay open but nothing is answered until
    /// [`NatsServer::resume`]. Does nothing if it is not running.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the signal could not be sent.
    pub fn pause(&self) -> Result<(), Error> {
        self.pid()
            .map_or(Ok(()), |pid| process::signal(pid, "STOP"))
    }

    /// Lets a server frozen by [`NatsServer::pause`] run again (SIGCONT). Does
    /// nothing if it is not running.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the signal could not be sent.
    pub fn resume(&self) -> Result<(), Error> {
        self.pid()
            .map_or(Ok(()), |pid| process::signal(pid, "CONT"))
    }

    /// Starts the server again on the same port with the same store directory and
    /// waits until JetStream is ready. Kills the current process first if it is
    /// still running.
    ///
    /// The port was released by the kill, so it can in principle be taken by
    /// another process meanwhile; launching is retried a few times, briefly, to
    /// ride out sockets that are still closing.
    ///
    /// # Errors
    ///
    /// As for [`NatsServer::start`]; [`Error::ExitedEarly`] most likely means the
    /// port is now used by someone else.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill()?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.launch_and_wait() {
                Ok(()) => return Ok(()),
                Err(LaunchError::Exited(_)) if attempts <= START_RETRIES => {
                    thread::sleep(Duration::from_millis(200 * u64::from(attempts)));
                }
                Err(LaunchError::Exited(status)) => {
                    return Err(Error::ExitedEarly {
                        status,
                        attempts,
                        log_tail: self.log_tail(),
                    });
                }
                Err(LaunchError::Other(e)) => return Err(e),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// Spawns the process with the current ports and waits for readiness. On
    /// failure, no process is left running.
    fn launch_and_wait(&mut self) -> Result<(), LaunchError> {
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("opening log file {}", log_path.display()), e))?;
        // Separate launches in the (appended) log; best effort.
        let _ = writeln!(
            log,
            "--- frontline-testkit: launching {} on port {} (monitor {})",
            self.binary.display(),
            self.port,
            self.monitor_port
        );
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io("duplicating log file handle", e))?;
        let child = Command::new(&self.binary)
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-m")
            .arg(self.monitor_port.to_string())
            .arg("-js")
            .args(
                self.store_flag
                    .then(|| [OsString::from("-sd"), self.dir.path().into()])
                    .into_iter()
                    .flatten(),
            )
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| Error::io(format!("spawning {}", self.binary.display()), e))?;
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(LaunchError::Exited(status.to_string()));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = self.kill();
                        return Err(Error::io("checking nats-server process", e).into());
                    }
                }
            }
            if healthz_ok(self.monitor_port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.kill();
                return Err(Error::Timeout {
                    port: self.port,
                    timeout: READY_TIMEOUT,
                    log_tail: self.log_tail(),
                }
                .into());
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The last lines of the server log, for error messages.
    fn log_tail(&self) -> String {
        let path = self.log_path();
        let mut text = String::new();
        match File::open(&path).and_then(|mut f| f.read_to_string(&mut text)) {
            Ok(_) => {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(LOG_TAIL_LINES);
                lines[start..].join("\n")
            }
            Err(e) => format!("(could not read {}: {e})", path.display()),
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Internal launch outcome: early exit is retryable, anything else is not.
enum LaunchError {
    Exited(String),
    Other(Error),
}

impl From<Error> for LaunchError {
    fn from(e: Error) -> Self {
        LaunchError::Other(e)
    }
}

/// Picks two distinct free ports on 127.0.0.1 by binding to port 0. Both
/// listeners are held until both ports are known, so the ports differ.
fn two_free_ports() -> Result<(u16, u16), Error> {
    let bind = || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| Ok((l.local_addr()?.port(), l)))
            .map_err(|e| Error::io("binding an ephemeral port on 127.0.0.1", e))
    };
    let (a, la) = bind()?;
    let (b, lb) = bind()?;
    drop((la, lb));
    Ok((a, b))
}

/// One readiness probe: `GET /healthz?js-enabled-only=true` over HTTP/1.0,
/// true if it answers 200.
fn healthz_ok(monitor_port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, monitor_port));
    let probe = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(250))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.set_write_timeout(Some(Duration::from_secs(1)))?;
        stream
            .write_all(b"GET /healthz?js-enabled-only=true HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = Vec::new();
        // Only the status line matters; HTTP/1.0 closes after the response.
        stream.take(256).read_to_end(&mut response)?;
        let status_line = response.split(|&b| b == b'\n').next().unwrap_or_default();
        let status_line = String::from_utf8_lossy(status_line);
        let mut parts = status_line.split_whitespace();
        Ok(parts.next().is_some_and(|v| v.starts_with("HTTP/")) && parts.next() == Some("200"))
    };
    probe().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn accepts(port: u16) -> bool {
        TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Duration::from_secs(1),
        )
        .is_ok()
    }

    #[test]
    fn start_kill_restart() -> TestResult {
        let mut server = NatsServer::start()?;
        let port = server.port();
        assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));
        assert!(server.store_dir().is_dir());
        assert!(
            accepts(port),
            "server should accept connections after start"
        );

        // The client port speaks NATS: the server greets with INFO.
        let mut conn = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut greeting = [0u8; 4];
        conn.read_exact(&mut greeting)?;
        assert_eq!(&greeting, b"INFO");
        drop(conn);

        server.kill()?;
        assert!(!accepts(port), "killed server should refuse connections");
        // Killing twice is harmless.
        server.kill()?;

        server.restart()?;
        assert_eq!(server.port(), port, "restart keeps the port");
        assert!(accepts(port), "restarted server should accept connections");
        assert!(
            server.store_dir().join("jetstream").is_dir(),
            "JetStream store should live in store_dir"
        );

        let dir = server.store_dir().to_path_buf();
        drop(server);
        assert!(!accepts(port), "dropped server should be gone");
        assert!(!dir.exists(), "store directory should be removed on drop");
        Ok(())
    }

    #[test]
    fn two_servers_get_distinct_ports() -> TestResult {
        let a = NatsServer::start()?;
        let b = NatsServer::start()?;
        assert_ne!(a.port(), b.port());
        assert_ne!(a.store_dir(), b.store_dir());
        Ok(())
    }

    #[test]
    fn missing_env_binary_is_a_clear_error() {
        let err = Error::BinaryNotFound {
            path: PathBuf::from("/nonexistent/nats-server"),
            hint: " (from NATS_SERVER_BIN)",
        };
        let msg = err.to_string();
        assert!(msg.contains("make tools"), "{msg}");
        assert!(msg.contains("/nonexistent/nats-server"), "{msg}");
    }
}
