//! Configuration shared by every service. Each flag also reads an environment
//! variable, so Kubernetes manifests configure services with `env:` only.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use frontline_eventlog::{CommandOptions, LogConfig};
use frontline_privacy::Kek;

/// Settings every service takes.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonConfig {
    /// NATS: where, and with which TLS settings and credentials.
    #[command(flatten)]
    pub nats: NatsConfig,

    /// TLS (and mutual TLS) for the gRPC server.
    #[command(flatten)]
    pub tls: TlsConfig,

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

    /// Address for a plaintext listener serving only `grpc.health.v1` (the same
    /// statuses as the API port): Kubernetes' `grpc:` probes cannot speak TLS, so
    /// with `FRONTLINE_TLS_CERT_FILE` set, probe this port. Empty disables.
    #[arg(long, env = "FRONTLINE_HEALTH_LISTEN", default_value = "")]
    pub health_listen: String,

    /// Most calls one caller (a token's subject, role and tenants) may have in
    /// flight at this service; more are refused with RESOURCE_EXHAUSTED at once.
    /// 0: no cap.
    #[arg(long, env = "FRONTLINE_CALLER_MAX_IN_FLIGHT", default_value_t = crate::in_flight::DEFAULT_MAX_IN_FLIGHT)]
    pub caller_max_in_flight: usize,

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

/// The NATS URL when none is configured.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// How a service (or tool) reaches NATS: the URL, TLS, and one kind of
/// credentials (a `.creds` file, user and password, or a token).
#[derive(Clone, clap::Args)]
pub struct NatsConfig {
    /// NATS server URL(s), comma-separated; `tls://` requires TLS.
    #[arg(
        id = "nats_url",
        long = "nats-url",
        env = "NATS_URL",
        default_value = DEFAULT_NATS_URL
    )]
    pub url: String,

    /// PEM file with the CA certificate(s) that signed the NATS server's
    /// certificate; requires TLS.
    #[arg(id = "nats_ca_file", long = "nats-ca-file", env = "NATS_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate for NATS mutual TLS (with `NATS_KEY_FILE`).
    #[arg(id = "nats_cert_file", long = "nats-cert-file", env = "NATS_CERT_FILE")]
    pub cert_file: Option<PathBuf>,

    /// PEM private key of `NATS_CERT_FILE`.
    #[arg(id = "nats_key_file", long = "nats-key-file", env = "NATS_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// NATS credentials file (`.creds`: a user JWT and its NKey seed).
    #[arg(
        id = "nats_creds_file",
        long = "nats-creds-file",
        env = "NATS_CREDS_FILE"
    )]
    pub creds_file: Option<PathBuf>,

    /// NATS user (with `NATS_PASSWORD`).
    #[arg(id = "nats_user", long = "nats-user", env = "NATS_USER")]
    pub user: Option<String>,

    /// NATS password of `NATS_USER`.
    #[arg(
        id = "nats_password",
        long = "nats-password",
        env = "NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// NATS authentication token.
    #[arg(
        id = "nats_token",
        long = "nats-token",
        env = "NATS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl Default for NatsConfig {
    /// A local NATS without TLS or credentials.
    fn default() -> Self {
        NatsConfig {
            url: DEFAULT_NATS_URL.into(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            creds_file: None,
            user: None,
            password: None,
            token: None,
        }
    }
}

impl fmt::Debug for NatsConfig {
    /// Never prints the password or the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &self.url)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("creds_file", &self.creds_file)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Why NATS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsConfigError {
    /// A TLS file is missing, unreadable or invalid, or half of a pair is given.
    #[error("NATS TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The credentials file could not be read or parsed.
    #[error("NATS_CREDS_FILE: {path}: {source}")]
    Creds {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Credentials that do not go together.
    #[error("NATS credentials: {0}")]
    Credentials(&'static str),
    /// A server address in `NATS_URL` cannot be parsed.
    #[error("NATS_URL: {url:?}: {reason}")]
    Url {
        /// The address, as given.
        url: String,
        /// Why.
        reason: String,
    },
}

impl NatsConfig {
    /// Checks the settings without connecting: the TLS files are read and parsed,
    /// and at most one kind of credentials is given.
    pub fn check(&self) -> Result<(), NatsConfigError> {
        use crate::tls::{non_empty, pair, read_certificates, read_private_key};
        if let Some(ca) = non_empty(&self.ca_file) {
            read_certificates("NATS_CA_FILE", ca)?;
        }
        if let Some((cert, key)) = pair(
            (&self.cert_file, "NATS_CERT_FILE"),
            (&self.key_file, "NATS_KEY_FILE"),
        )? {
            read_certificates("NATS_CERT_FILE", cert)?;
            read_private_key("NATS_KEY_FILE", key)?;
        }
        self.servers()?;
        self.credentials().map(|_| ())
    }

    /// The servers of `NATS_URL`: one URL or a comma-separated seed list, as
    /// operators write it for a cluster (`nats://a:4222, nats://b:4222`); the
    /// client learns the rest of the cluster from whichever answers.
    pub fn servers(&self) -> Result<Vec<async_nats::ServerAddr>, NatsConfigError> {
        let servers = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| {
                url.parse()
                    .map_err(|e: std::io::Error| NatsConfigError::Url {
                        url: url.to_string(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err(NatsConfigError::Url {
                url: self.url.clone(),
                reason: "no server address".into(),
            });
        }
        // The client speaks plain websockets whatever TLS settings say: with TLS
        // asked for, a `ws://` address would send credentials and events in clear.
        if self.tls_asked()
            && let Some(ws) = self.url.split(',').map(str::trim).find(|u| {
                u.get(..5)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("ws://"))
            })
        {
            return Err(NatsConfigError::Url {
                url: ws.to_string(),
                reason: "TLS is asked for (a tls:// address, NATS_CA_FILE or a client \
                         certificate) but ws:// is plaintext: use wss://"
                    .into(),
            });
        }
        Ok(servers)
    }

    /// Whether TLS is asked for: a `tls://` address, a CA or a client certificate.
    fn tls_asked(&self) -> bool {
        self.url.split(',').any(|u| {
            u.trim()
                .get(..6)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("tls://"))
        }) || crate::tls::non_empty(&self.ca_file).is_some()
            || crate::tls::non_empty(&self.cert_file).is_some()
    }

    /// Connects once, without retrying (tools: a failure is reported).
    pub async fn connect_once(&self, name: &str) -> Result<async_nats::Client, StartNatsError> {
        let servers = self.servers()?;
        Ok(self.options().await?.name(name).connect(servers).await?)
    }

    /// Connection options with TLS and credentials applied (connect them to
    /// [`NatsConfig::servers`]).
    pub async fn options(&self) -> Result<async_nats::ConnectOptions, NatsConfigError> {
        use crate::tls::{non_empty, pair};
        self.check()?;
        let mut options = async_nats::ConnectOptions::new();
        let mut tls = self.tls_asked();
        if let Some(ca) = non_empty(&self.ca_file) {
            options = options.add_root_certificates(ca.to_path_buf());
            tls = true;
        }
        if let Some((cert, key)) = pair(
            (&self.cert_file, "NATS_CERT_FILE"),
            (&self.key_file, "NATS_KEY_FILE"),
        )? {
            options = options.add_client_certificate(cert.to_path_buf(), key.to_path_buf());
            tls = true;
        }
        // Never falls back to plaintext once TLS is asked for.
        options = options.require_tls(tls);
        options = match self.credentials()? {
            Credentials::None => options,
            Credentials::File(path) => {
                options
                    .credentials_file(path)
                    .await
                    .map_err(|source| NatsConfigError::Creds {
                        path: path.to_path_buf(),
                        source,
                    })?
            }
            Credentials::UserPassword(user, password) => {
                options.user_and_password(user.to_string(), password.to_string())
            }
            Credentials::Token(token) => options.token(token.to_string()),
        };
        Ok(options)
    }

    /// Which credentials are configured; more than one kind is refused (NATS
    /// would be sent both, and which one it checks depends on the server).
    fn credentials(&self) -> Result<Credentials<'_>, NatsConfigError> {
        let file = crate::tls::non_empty(&self.creds_file);
        let (user, password, token) = (
            non_blank(&self.user),
            non_blank(&self.password),
            non_blank(&self.token),
        );
        let user_password = match (user, password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(NatsConfigError::Credentials(
                    "NATS_USER is set but NATS_PASSWORD is not",
                ));
            }
            (None, Some(_)) => {
                return Err(NatsConfigError::Credentials(
                    "NATS_PASSWORD is set but NATS_USER is not",
                ));
            }
        };
        match (file, user_password, token) {
            (None, None, None) => Ok(Credentials::None),
            (Some(f), None, None) => Ok(Credentials::File(f)),
            (None, Some((u, p)), None) => Ok(Credentials::UserPassword(u, p)),
            (None, None, Some(t)) => Ok(Credentials::Token(t)),
            _ => Err(NatsConfigError::Credentials(
                "set only one of NATS_CREDS_FILE, NATS_USER/NATS_PASSWORD and NATS_TOKEN",
            )),
        }
    }

    /// Connects with reconnects forever, the initial connection included: a
    /// service waits for NATS to come (back), it does not die. Wrong credentials
    /// or certificates are retried too; each failure is logged as a warning.
    pub async fn connect(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<async_nats::Client, StartNatsError> {
        let servers = self.servers()?;
        let options = self.options().await?;
        let client = options
            .name(name)
            .retry_on_initial_connect()
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .event_callback(|event| async move {
                if let async_nats::Event::ClientError(error) = event {
                    tracing::warn!(%error, "NATS connection failed; retrying");
                }
            })
            .connect(servers)
            .await?;
        Ok(client)
    }
}

/// Why [`NatsConfig::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartNatsError {
    /// The settings cannot be used.
    #[error(transparent)]
    Config(#[from] NatsConfigError),
    /// The URL is malformed (every other failure is retried).
    #[error("NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
}

/// The value, unless unset or empty (an empty environment variable means unset).
fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The one kind of NATS credentials configured.
enum Credentials<'a> {
    None,
    File(&'a std::path::Path),
    UserPassword(&'a str, &'a str),
    Token(&'a str),
}

/// TLS for the gRPC server: off without a certificate; with a client CA, every
/// client must present a certificate signed by it (mutual TLS).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsConfig {
    /// PEM certificate chain the gRPC server presents (with `FRONTLINE_TLS_KEY_FILE`).
    /// Unset: plaintext gRPC.
    #[arg(
        id = "tls_cert_file",
        long = "tls-cert-file",
        env = "FRONTLINE_TLS_CERT_FILE"
    )]
    pub cert_file: Option<PathBuf>,

    /// PEM private key of `FRONTLINE_TLS_CERT_FILE`.
    #[arg(
        id = "tls_key_file",
        long = "tls-key-file",
        env = "FRONTLINE_TLS_KEY_FILE"
    )]
    pub key_file: Option<PathBuf>,

    /// PEM CA certificate(s): when set, clients must present a certificate signed
    /// by one of them (mutual TLS); calls still need their bearer token.
    #[arg(
        id = "tls_client_ca_file",
        long = "tls-client-ca-file",
        env = "FRONTLINE_TLS_CLIENT_CA_FILE"
    )]
    pub client_ca_file: Option<PathBuf>,
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

    /// The health-only address, if one is configured.
    pub fn health_addr(&self) -> Result<Option<SocketAddr>, std::net::AddrParseError> {
        if self.health_listen.trim().is_empty() {
            Ok(None)
        } else {
            self.health_listen.trim().parse().map(Some)
        }
    }

    /// Connects to NATS with reconnects forever (the log must come back, not the
    /// pod die); see [`NatsConfig::connect`].
    pub async fn connect_nats(&self) -> Result<async_nats::Client, StartNatsError> {
        self.nats
            .connect("frontline", Duration::from_secs(self.log_timeout_secs))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(args: &[&str]) -> CommonConfig {
        let mut all = vec!["--jwt-secret", "s"];
        all.extend_from_slice(args);
        CommonConfig::from_args(all).unwrap()
    }

    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory as _;
        OnlyCommon::command().debug_assert();
    }

    #[test]
    fn tls_and_nats_flags_parse_and_secrets_stay_hidden() {
        let config = parse(&[
            "--nats-url",
            "tls://nats:4222",
            "--nats-ca-file",
            "/ca.pem",
            "--nats-user",
            "svc",
            "--nats-password",
            "hunter2",
            "--nats-token",
            "t0ken",
            "--tls-cert-file",
            "/cert.pem",
            "--tls-key-file",
            "/key.pem",
            "--tls-client-ca-file",
            "/clients.pem",
        ]);
        assert_eq!(config.nats.url, "tls://nats:4222");
        assert_eq!(config.nats.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(
            config.tls.cert_file.as_deref(),
            Some(Path::new("/cert.pem"))
        );
        assert_eq!(
            config.tls.client_ca_file.as_deref(),
            Some(Path::new("/clients.pem"))
        );
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("t0ken"), "{printed}");
        assert!(printed.contains("svc"), "{printed}");
    }

    #[test]
    fn plaintext_by_default() {
        let config = parse(&[]);
        assert_eq!(config.nats.url, "nats://127.0.0.1:4222");
        assert!(config.tls.cert_file.is_none());
        assert!(config.nats.check().is_ok());
    }

    #[test]
    fn nats_credentials_must_be_one_kind_and_complete() {
        let refused = |args: &[&str]| parse(args).nats.check().unwrap_err().to_string();
        let message = refused(&["--nats-user", "svc"]);
        assert!(message.contains("NATS_PASSWORD is set") || message.contains("NATS_USER is set"));
        let message = refused(&[
            "--nats-user",
            "u",
            "--nats-password",
            "p",
            "--nats-token",
            "t",
        ]);
        assert!(message.contains("only one of"), "{message}");
        let message = refused(&["--nats-cert-file", "/c.pem"]);
        assert!(
            message.contains("NATS_CERT_FILE is set but NATS_KEY_FILE is not"),
            "{message}"
        );
        let message = refused(&["--nats-ca-file", "/nonexistent/ca.pem"]);
        assert!(
            message.contains("NATS_CA_FILE") && message.contains("/nonexistent/ca.pem"),
            "{message}"
        );
    }

    #[test]
    fn nats_url_takes_a_comma_separated_seed_list() {
        let config = parse(&["--nats-url", "nats://n1:4222, nats://n2:4222,tls://n3:4223"]);
        let servers = config.nats.servers().unwrap();
        let hosts: Vec<_> = servers
            .iter()
            .map(|s| (s.host().to_string(), s.port()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("n1".to_string(), 4222),
                ("n2".to_string(), 4222),
                ("n3".to_string(), 4223)
            ]
        );
        let message = parse(&["--nats-url", "nats://n1:4222,nats://n2:port"])
            .nats
            .check()
            .unwrap_err()
            .to_string();
        assert!(message.contains("nats://n2:port"), "{message}");
        assert!(parse(&["--nats-url", " , "]).nats.check().is_err());
    }

    #[test]
    fn plaintext_websockets_are_refused_when_tls_is_asked_for() {
        let message = parse(&["--nats-url", "ws://n1:8080", "--nats-ca-file", "/ca.pem"])
            .nats
            .servers()
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("ws://n1:8080") && message.contains("wss://"),
            "{message}"
        );
        let mixed = parse(&["--nats-url", "tls://n1:4222,WS://n2:8080"]);
        assert!(mixed.nats.servers().is_err());
        assert!(
            parse(&["--nats-url", "ws://n1:8080"])
                .nats
                .servers()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn unreadable_creds_file_is_named() {
        let config = parse(&["--nats-creds-file", "/nonexistent/svc.creds"]);
        let message = config.nats.options().await.unwrap_err().to_string();
        assert!(message.contains("/nonexistent/svc.creds"), "{message}");
    }
}
