//! Configuration shared by every service. Each flag also reads an environment
//! variable, so Kubernetes manifests configure services with `env:` only.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use frontline_eventlog::{CommandOptions, LogConfig};
use frontline_privacy::Kek;

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

    /// Bearer-token keys and checks.
    #[command(flatten)]
    pub tokens: TokenConfig,

    /// The key-encryption key for customers' personal data.
    #[command(flatten)]
    pub kek: KekConfig,

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

/// Default for [`TokenConfig::max_lifetime_secs`]: 24 hours.
pub const DEFAULT_TOKEN_MAX_LIFETIME_SECS: u64 = 24 * 3600;

/// Bearer-token settings: which keys verify tokens, and what the tokens must say.
/// At least one key source (secret, PEM public key, JWKS) is required; see
/// [`crate::auth::Authenticator::from_config`].
#[derive(Clone, clap::Args)]
pub struct TokenConfig {
    /// HS256 shared secret (tokens minted by `frontline token`). Optional when a
    /// public key or JWKS is given; without it HS256 tokens are refused.
    #[arg(long, env = "FRONTLINE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM file with one RSA (RS256) or P-256 EC (ES256) public key.
    #[arg(long, env = "FRONTLINE_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// JWKS file (`{"keys":[...]}`) with RS256/ES256 public keys, picked by `kid`.
    #[arg(long, env = "FRONTLINE_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// Required `iss` claim; unchecked when unset.
    #[arg(long = "token-issuer", env = "FRONTLINE_TOKEN_ISSUER")]
    pub issuer: Option<String>,

    /// Required `aud` claim (the token's `aud` must contain it); unchecked when unset.
    #[arg(long = "token-audience", env = "FRONTLINE_TOKEN_AUDIENCE")]
    pub audience: Option<String>,

    /// Longest token lifetime accepted, in seconds (`exp - now`, and `exp - iat`).
    #[arg(
        long = "token-max-lifetime-secs",
        env = "FRONTLINE_TOKEN_MAX_LIFETIME_SECS",
        default_value_t = DEFAULT_TOKEN_MAX_LIFETIME_SECS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_lifetime_secs: u64,
}

impl Default for TokenConfig {
    /// No key source (set one), no issuer or audience check, a 24 h lifetime cap.
    fn default() -> Self {
        TokenConfig {
            jwt_secret: None,
            jwt_public_key_file: None,
            jwks_file: None,
            issuer: None,
            audience: None,
            max_lifetime_secs: DEFAULT_TOKEN_MAX_LIFETIME_SECS,
        }
    }
}

impl TokenConfig {
    /// Settings verifying HS256 tokens signed with `secret` (tests and tools).
    pub fn with_secret(secret: impl Into<String>) -> Self {
        TokenConfig {
            jwt_secret: Some(secret.into()),
            ..TokenConfig::default()
        }
    }
}

impl fmt::Debug for TokenConfig {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("jwt_public_key_file", &self.jwt_public_key_file)
            .field("jwks_file", &self.jwks_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .finish()
    }
}

/// Where the key-encryption key comes from: it wraps every customer's data key, so
/// losing it loses every customer's personal data, and another one is refused.
#[derive(Clone, Default, clap::Args)]
pub struct KekConfig {
    /// The key-encryption key: base64 of 32 random bytes (`frontline kek`, or
    /// `openssl rand -base64 32`).
    #[arg(long = "kek", env = "FRONTLINE_KEK", hide_env_values = true)]
    pub kek: Option<String>,

    /// A file holding the key-encryption key (base64), e.g. a mounted Kubernetes
    /// secret. Used when `FRONTLINE_KEK` is unset.
    #[arg(long = "kek-file", env = "FRONTLINE_KEK_FILE")]
    pub kek_file: Option<PathBuf>,

    /// While rotating: the key-encryption key being replaced. It still opens the
    /// data keys it wrapped until `frontline rotate-kek` has wrapped them all
    /// with `FRONTLINE_KEK`; it never wraps a new one.
    #[arg(
        long = "kek-previous",
        env = "FRONTLINE_KEK_PREVIOUS",
        hide_env_values = true
    )]
    pub kek_previous: Option<String>,

    /// A file holding the previous key-encryption key (base64).
    #[arg(long = "kek-previous-file", env = "FRONTLINE_KEK_PREVIOUS_FILE")]
    pub kek_previous_file: Option<PathBuf>,
}

impl KekConfig {
    /// The key, read and checked; a missing one is refused: personal data is never
    /// written in the clear, and never read as erased for want of a key.
    pub fn load(&self) -> Result<Kek, String> {
        Self::read(self.kek.as_deref(), self.kek_file.as_deref())?.ok_or_else(|| {
            "a key-encryption key is required: set FRONTLINE_KEK (base64 of 32 random bytes, \
             e.g. from `frontline kek`) or FRONTLINE_KEK_FILE. Keep it safe: every customer's \
             personal data depends on it"
                .to_string()
        })
    }

    /// The previous key while rotating, if one is configured.
    pub fn load_previous(&self) -> Result<Option<Kek>, String> {
        Self::read(
            self.kek_previous.as_deref(),
            self.kek_previous_file.as_deref(),
        )
        .map_err(|e| format!("previous key: {e}"))
    }

    fn read(value: Option<&str>, file: Option<&std::path::Path>) -> Result<Option<Kek>, String> {
        let loaded = match (value.map(str::trim), file) {
            (Some(kek), _) if !kek.is_empty() => Kek::from_base64(kek),
            (_, Some(path)) => Kek::from_file(path),
            _ => return Ok(None),
        };
        loaded.map(Some).map_err(|e| e.to_string())
    }
}

impl fmt::Debug for KekConfig {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KekConfig")
            .field("kek", &self.kek.as_ref().map(|_| "[redacted]"))
            .field("kek_file", &self.kek_file)
            .field(
                "kek_previous",
                &self.kek_previous.as_ref().map(|_| "[redacted]"),
            )
            .field("kek_previous_file", &self.kek_previous_file)
            .finish()
    }
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

    /// Event log settings; refused without a readable key-encryption key.
    pub fn log_config(&self) -> Result<LogConfig, String> {
        Ok(LogConfig {
            stream: self.stream.clone(),
            replicas: self.replicas,
            timeout: Duration::from_secs(self.log_timeout_secs),
            snapshot_every: self.snapshot_every,
            kek: Some(self.kek.load()?),
            previous_kek: self.kek.load_previous()?,
        })
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
