//! The service builder: every Frontline binary, and every test that runs a service,
//! starts it the same way.
//!
//! ```text
//! ServiceBuilder::new("intake")
//!     .database(&[&frontline_projection::MIGRATOR, &MIGRATOR])   // optional PostgreSQL
//!     .grpc(SERVICE_NAME, |ctx| routes(ctx))                     // gRPC routes
//!     .task(|ctx| open_tickets_projection(ctx))                  // consumers, timers
//!     .run_main(config, listen)                                  // or .run(Startup) in tests
//! ```
//!
//! Start-up: logging (and trace export, when configured) and metrics, NATS and
//! the event log (waiting while they are unavailable), PostgreSQL and its
//! migrations when asked for, then routes and tasks. Shutdown — SIGTERM, Ctrl-C,
//! or a required task's failure — reports NOT_SERVING, drains in-flight calls,
//! drains or aborts tasks by their kind, and flushes NATS (and, for a binary, the
//! spans still buffered).

use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};

use frontline_eventlog::{CommandOptions, EventLog};
use sqlx::{PgPool, migrate::Migrator, postgres::PgPoolOptions};
use tokio::net::TcpListener;
use tonic::{service::Routes, transport::ServerTlsConfig};

use crate::{
    auth::Authenticator,
    config::CommonConfig,
    server::{serve, shutdown_signal},
    tasks::{Supervisor, Task, TaskFailed},
    telemetry::TracingConfig,
};

/// What routes and tasks are built from.
#[derive(Clone, Debug)]
pub struct Context {
    /// The event log.
    pub log: EventLog,
    /// Checks bearer tokens (wrap gRPC services in it).
    pub auth: Authenticator,
    /// The PostgreSQL pool, when the service asked for a database.
    pub db: Option<PgPool>,
    /// Command settings from the configuration.
    pub options: CommandOptions,
    /// The whole configuration.
    pub config: CommonConfig,
}

impl Context {
    /// The largest request a gRPC server decodes; pass it to the generated
    /// server's `max_decoding_message_size`.
    pub fn limit(&self) -> usize {
        crate::error::MAX_REQUEST_BYTES
    }

    /// The database pool; only for services built with [`ServiceBuilder::database`].
    pub fn db(&self) -> Result<&PgPool, StartError> {
        self.db
            .as_ref()
            .ok_or_else(|| StartError::Config("this service has no database".into()))
    }
}

type MakeRoutes = Box<dyn FnOnce(&Context) -> Result<Routes, StartError> + Send>;
type MakeTask = Box<dyn FnOnce(&Context) -> Result<Task, StartError> + Send>;

/// Builds and runs one service. See the module docs.
pub struct ServiceBuilder {
    name: &'static str,
    health_names: Vec<&'static str>,
    routes: Vec<MakeRoutes>,
    tasks: Vec<MakeTask>,
    migrators: Vec<&'static Migrator>,
}

impl std::fmt::Debug for ServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBuilder")
            .field("name", &self.name)
            .field("grpc", &self.health_names)
            .field("tasks", &self.tasks.len())
            .field("migrators", &self.migrators.len())
            .finish()
    }
}

/// How a built service is started: by a binary ([`ServiceBuilder::run_main`]) or a
/// test ([`ServiceBuilder::run`] with an ephemeral listener and its own stop).
pub struct Startup {
    /// The configuration.
    pub config: CommonConfig,
    /// Where to serve gRPC (already bound, so tests know the port).
    pub listener: TcpListener,
    /// Resolves when the service should stop.
    pub shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Startup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Startup")
            .field("listener", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// Why a service could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// NATS could not be reached.
    #[error("NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    /// The event log refused the existing stream (settings that could lose events).
    #[error("event log: {0}")]
    Refused(frontline_eventlog::LogError),
    /// PostgreSQL migrations failed.
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// A required background task failed.
    #[error(transparent)]
    Task(#[from] TaskFailed),
}

impl From<crate::config::StartNatsError> for StartError {
    fn from(error: crate::config::StartNatsError) -> Self {
        match error {
            crate::config::StartNatsError::Config(e) => StartError::Config(e.to_string()),
            crate::config::StartNatsError::Connect(e) => StartError::Nats(e),
        }
    }
}

impl ServiceBuilder {
    /// A service called `name` (logs, metrics).
    pub fn new(name: &'static str) -> Self {
        ServiceBuilder {
            name,
            health_names: Vec::new(),
            routes: Vec::new(),
            tasks: Vec::new(),
            migrators: Vec::new(),
        }
    }

    /// Serves gRPC routes; `health_name` is the full service name health reports on.
    pub fn grpc(
        mut self,
        health_name: &'static str,
        make: impl FnOnce(&Context) -> Result<Routes, StartError> + Send + 'static,
    ) -> Self {
        self.health_names.push(health_name);
        self.routes.push(Box::new(make));
        self
    }

    /// Runs a background task beside the server.
    pub fn task(
        mut self,
        make: impl FnOnce(&Context) -> Result<Task, StartError> + Send + 'static,
    ) -> Self {
        self.tasks.push(Box::new(make));
        self
    }

    /// Needs PostgreSQL (`DATABASE_URL`): opens a pool and runs these migrations, in
    /// order. Migrations of different crates share one history, so their versions
    /// must not collide (each crate keeps its own range).
    pub fn database(mut self, migrators: &[&'static Migrator]) -> Self {
        self.migrators.extend_from_slice(migrators);
        self
    }

    /// The service's name in telemetry: `frontline-<name>`, like its binary (the
    /// default `service.name` of its traces, and `frontline.service` on its spans).
    pub fn service_name(&self) -> String {
        format!("frontline-{}", self.name)
    }

    /// Runs the service as a binary: logs, traces (when `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// is set), metrics, binds `listen`, and stops on SIGTERM or Ctrl-C — flushing
    /// the spans still buffered last.
    pub async fn run_main(
        self,
        config: CommonConfig,
        listen: SocketAddr,
    ) -> Result<(), StartError> {
        let tracing = TracingConfig::from_env(self.service_name());
        let telemetry = crate::telemetry::init(config.log_format, tracing)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let result = self.run_binary(config, listen).await;
        telemetry.shutdown().await;
        result
    }

    async fn run_binary(self, config: CommonConfig, listen: SocketAddr) -> Result<(), StartError> {
        if let Some(addr) = config
            .metrics_addr()
            .map_err(|e| StartError::Config(format!("FRONTLINE_METRICS_LISTEN: {e}")))?
        {
            crate::telemetry::init_metrics(addr).map_err(StartError::Config)?;
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        self.run(Startup {
            config,
            listener,
            shutdown: Box::pin(shutdown_signal()),
        })
        .await
    }

    /// Runs the service until `startup.shutdown` resolves (or a required task fails).
    pub async fn run(self, startup: Startup) -> Result<(), StartError> {
        let Startup {
            config,
            listener,
            mut shutdown,
        } = startup;
        let tls = self.check(&config)?;
        let health_only = match config
            .health_addr()
            .map_err(|e| StartError::Config(format!("FRONTLINE_HEALTH_LISTEN: {e}")))?
        {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let service_name = self.service_name();
        metrics::gauge!(
            "frontline_build_info",
            "service" => self.name,
            "version" => env!("CARGO_PKG_VERSION")
        )
        .set(1.0);

        let log_config = config.log_config().map_err(StartError::Config)?;
        let client = config.connect_nats().await?;
        let opened = until_ready(
            "event log",
            &mut shutdown,
            || EventLog::open(client.clone(), log_config.clone()),
            |e| matches!(e, frontline_eventlog::LogError::Refused(_)),
        )
        .await;
        let log = match opened {
            Ok(Some(log)) => log.with_service(&service_name),
            Ok(None) => return Ok(()),
            Err(refused) => return Err(StartError::Refused(refused)),
        };
        let db = match database_url(&config) {
            Some(url) if !self.migrators.is_empty() => {
                let options = PgPoolOptions::new()
                    .max_connections(config.db_max_connections)
                    .acquire_timeout(Duration::from_secs(config.log_timeout_secs));
                let connected = until_ready(
                    "database",
                    &mut shutdown,
                    || options.clone().connect(url),
                    |_| false,
                )
                .await;
                let Ok(Some(pool)) = connected else {
                    return Ok(());
                };
                migrate(&pool, &self.migrators).await?;
                Some(pool)
            }
            _ => None,
        };

        let ctx = Context {
            log,
            auth: Authenticator::from_config(&config.tokens)
                .map_err(|e| StartError::Config(e.to_string()))?
                .with_in_flight_limit(config.caller_max_in_flight),
            db,
            options: config.command_options(),
            config: config.clone(),
        };
        let mut routes: Option<Routes> = None;
        for make in self.routes {
            let made = make(&ctx)?;
            routes = Some(match routes {
                None => made,
                Some(r) => merge(r, made),
            });
        }
        let tasks = self
            .tasks
            .into_iter()
            .map(|make| make(&ctx))
            .collect::<Result<Vec<_>, _>>()?;
        let (supervisor, mut failures) = Supervisor::start(tasks);
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        tracing::info!(
            service = self.name,
            listen = ?listener.local_addr().ok(),
            stream = %config.stream,
            "serving"
        );

        // The server drains on shutdown or on a required task's failure; tasks are
        // stopped after the in-flight calls finished.
        let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<TaskFailed>();
        let stop = async move {
            tokio::select! {
                () = shutdown => {},
                Some(failure) = failures.recv() => {
                    let _ = failed_tx.send(failure);
                },
            }
        };
        let served = serve(
            listener,
            routes.unwrap_or_default(),
            (&service_name, &self.health_names),
            (tls, health_only),
            stop,
            grace,
        )
        .await;
        supervisor.stop(grace).await;
        // Flush what is buffered, but never wait on a NATS that is gone: exiting is
        // what SIGTERM asked for.
        if tokio::time::timeout(Duration::from_secs(2), client.flush())
            .await
            .is_err()
        {
            tracing::warn!("NATS unreachable at shutdown; not waiting to flush");
        }
        served?;
        if let Ok(failure) = failed_rx.await {
            return Err(failure.into());
        }
        tracing::info!(service = self.name, "stopped");
        Ok(())
    }
}

impl ServiceBuilder {
    /// Refuses a configuration the service cannot run with, before anything starts;
    /// returns the gRPC server's TLS settings (`None`: plaintext).
    fn check(&self, config: &CommonConfig) -> Result<Option<ServerTlsConfig>, StartError> {
        // Every TLS file is read now: a wrong path stops the start with its name,
        // rather than failing every handshake or retrying NATS forever.
        let tls =
            crate::tls::server_tls(&config.tls).map_err(|e| StartError::Config(e.to_string()))?;
        config
            .nats
            .check()
            .map_err(|e| StartError::Config(e.to_string()))?;
        // Reads the key files too: a bad key stops the start before anything connects.
        Authenticator::from_config(&config.tokens)
            .map_err(|e| StartError::Config(e.to_string()))?;
        if !self.migrators.is_empty() && database_url(config).is_none() {
            return Err(StartError::Config(format!(
                "DATABASE_URL is required: {} keeps read models in PostgreSQL",
                self.name
            )));
        }
        config.log_config().map_err(StartError::Config)?;
        Ok(tls)
    }
}

/// The database URL, unless unset or blank.
fn database_url(config: &CommonConfig) -> Option<&str> {
    config
        .database_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty())
}

/// Retries `connect` every 2 s until it succeeds; `Ok(None)` if shutdown came
/// first, `Err` for an error `fatal` says no retry can cure.
async fn until_ready<T, E, F, Fut>(
    what: &str,
    shutdown: &mut Pin<Box<dyn Future<Output = ()> + Send>>,
    connect: F,
    fatal: impl Fn(&E) -> bool,
) -> Result<Option<T>, E>
where
    E: std::fmt::Display,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        tokio::select! {
            ready = connect() => match ready {
                Ok(value) => return Ok(Some(value)),
                Err(e) if fatal(&e) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "{what} not ready; retrying in 2s"),
            },
            () = shutdown.as_mut() => return Ok(None),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {},
            () = shutdown.as_mut() => return Ok(None),
        }
    }
}

/// Runs the migrations of every crate a service uses as one set (they share one
/// `_sqlx_migrations` history, so each crate keeps its own version range).
pub async fn migrate(
    pool: &PgPool,
    migrators: &[&'static Migrator],
) -> Result<(), sqlx::migrate::MigrateError> {
    combined(migrators).run(pool).await
}

fn combined(migrators: &[&'static Migrator]) -> Migrator {
    let mut migrations: Vec<_> = migrators.iter().flat_map(|m| m.iter().cloned()).collect();
    migrations.sort_by_key(|m| m.version);
    // `migrations` is public (doc-hidden) so that `migrate!` can build a Migrator;
    // sqlx offers no other way to join two embedded sets.
    // Missing versions are another crate's or a newer release's (rolling deploys).
    Migrator {
        migrations: std::borrow::Cow::Owned(migrations),
        ignore_missing: true,
        ..Migrator::DEFAULT
    }
}

fn merge(a: Routes, b: Routes) -> Routes {
    Routes::from(a.into_axum_router().merge(b.into_axum_router()))
}
