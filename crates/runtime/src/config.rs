//! Configuration shared by every service. Each flag also reads an environment
//! variable, so Kubernetes manifests configure services with `env:` only.

use std::{net::SocketAddr, time::Duration};

use frontline_eventlog::{CommandOptions, LogConfig};

/// Settings every service takes.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonConfig {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// JetStream stream holding the event log.
    #[arg(long, env = "FRONTLINE_STREAM", default_value = "FRONTLINE")]
    pub stream: String,

    /// Replicas for the stream and snapshot bucket (3 on a NATS cluster).
    #[arg(long, env = "FRONTLINE_REPLICAS", default_value_t = 1)]
    pub replicas: usize,

    /// HS256 secret that signs bearer tokens. Required.
    #[arg(long, env = "FRONTLINE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,

    /// Address for Prometheus metrics (`/metrics`); empty disables.
    #[arg(long, env = "FRONTLINE_METRICS_LISTEN", default_value = "")]
    pub metrics_listen: String,

    /// Log format: `json` (one object per line) or `text`.
    #[arg(long, env = "FRONTLINE_LOG_FORMAT", default_value = "json")]
    pub log_format: crate::telemetry::LogFormat,

    /// Seconds to drain in-flight calls after SIGTERM before exiting.
    #[arg(long, env = "FRONTLINE_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Seconds to wait for the event log before answering UNAVAILABLE.
    #[arg(long, env = "FRONTLINE_LOG_TIMEOUT_SECS", default_value_t = 5)]
    pub log_timeout_secs: u64,

    /// Attempts when a command loses a concurrent-append race before answering ABORTED.
    #[arg(long, env = "FRONTLINE_COMMAND_ATTEMPTS", default_value_t = 10)]
    pub command_attempts: u32,

    /// Write an aggregate's snapshot every this many events.
    #[arg(long, env = "FRONTLINE_SNAPSHOT_EVERY", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every: u64,

    /// PostgreSQL URL for services that keep read models (intake, analytics).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Most PostgreSQL connections the service opens.
    #[arg(long, env = "FRONTLINE_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
}

/// Parses [`CommonConfig`] alone (tests and tools build one from arguments).
#[derive(Debug, clap::Parser)]
struct OnlyCommon {
    #[command(flatten)]
    common: CommonConfig,
}

impl CommonConfig {
    /// The configuration from command-line style `args` (defaults for the rest; the
    /// environment is read too, as for a binary).
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser as _;
        let args = std::iter::once(std::ffi::OsString::from("frontline"))
            .chain(args.into_iter().map(Into::into));
        OnlyCommon::try_parse_from(args).map(|o| o.common)
    }

    /// Event log settings.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            stream: self.stream.clone(),
            replicas: self.replicas,
            timeout: Duration::from_secs(self.log_timeout_secs),
            snapshot_every: self.snapshot_every,
        }
    }

    /// Command settings (without an expected version).
    pub fn command_options(&self) -> CommandOptions {
        CommandOptions {
            max_attempts: self.command_attempts,
            ..CommandOptions::default()
        }
    }

    /// The metrics address, if metrics are enabled.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, std::net::AddrParseError> {
        if self.metrics_listen.trim().is_empty() {
            Ok(None)
        } else {
            self.metrics_listen.trim().parse().map(Some)
        }
    }

    /// Connects to NATS with reconnects forever (the log must come back, not the pod die).
    pub async fn connect_nats(&self) -> Result<async_nats::Client, async_nats::ConnectError> {
        async_nats::ConnectOptions::new()
            .name("frontline")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(self.log_timeout_secs))
            .request_timeout(Some(Duration::from_secs(self.log_timeout_secs)))
            .connect(self.nats_url.as_str())
            .await
    }
}
