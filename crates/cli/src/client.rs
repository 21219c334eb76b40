//! Connecting to the services: their addresses, the bearer token, TLS and
//! `x-tenant`, shared by every command that calls one (`--intake`, `--token`, ...).

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;
use frontline_proto::v1::{
    analytics_service_client::AnalyticsServiceClient,
    conversation_service_client::ConversationServiceClient,
    intake_service_client::IntakeServiceClient, routing_service_client::RoutingServiceClient,
};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::exit::Usage;

/// Largest answer accepted (a long ticket's history can pass tonic's 4 MiB default).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The options every service command takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct Global {
    /// The intake service's address.
    #[arg(
        long,
        env = "FRONTLINE_INTAKE",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    pub intake: String,
    /// The conversation service's address.
    #[arg(
        long,
        env = "FRONTLINE_CONVERSATION",
        default_value = "http://127.0.0.1:50052",
        value_name = "URL"
    )]
    pub conversation: String,
    /// The routing service's address.
    #[arg(
        long,
        env = "FRONTLINE_ROUTING",
        default_value = "http://127.0.0.1:50053",
        value_name = "URL"
    )]
    pub routing: String,
    /// The analytics service's address.
    #[arg(
        long,
        env = "FRONTLINE_ANALYTICS",
        default_value = "http://127.0.0.1:50054",
        value_name = "URL"
    )]
    pub analytics: String,
    /// The bearer token (a JWT, as `frontline token` prints); wins over --token-file.
    #[arg(
        long,
        env = "FRONTLINE_TOKEN",
        hide_env_values = true,
        value_name = "JWT"
    )]
    pub token: Option<String>,
    /// A file holding the bearer token (surrounding whitespace is ignored).
    #[arg(long, env = "FRONTLINE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The tenant to act in, for a token covering several (sent as `x-tenant`).
    #[arg(long, env = "FRONTLINE_TENANT", value_name = "TENANT")]
    pub tenant: Option<String>,
    /// A CA certificate (PEM) to verify the services by; for https:// addresses.
    #[arg(long, env = "FRONTLINE_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS; with --key-file.
    #[arg(long, env = "FRONTLINE_CERT_FILE", value_name = "FILE")]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM); with --cert-file.
    #[arg(long, env = "FRONTLINE_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Print the answer as protobuf canonical JSON (as grpcurl does), for scripts.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
}

/// A channel that sends the token (and `x-tenant`) with every call.
pub type Authed = InterceptedService<Channel, Auth>;

/// Adds `authorization: Bearer <token>` and, when set, `x-tenant` to every call.
#[derive(Debug, Clone)]
pub struct Auth {
    authorization: MetadataValue<Ascii>,
    tenant: Option<MetadataValue<Ascii>>,
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        if let Some(tenant) = &self.tenant {
            metadata.insert("x-tenant", tenant.clone());
        }
        Ok(request)
    }
}

impl Global {
    /// An intake client.
    pub async fn intake(&self) -> anyhow::Result<IntakeServiceClient<Authed>> {
        let (channel, auth) = self.connect("intake", &self.intake).await?;
        Ok(IntakeServiceClient::with_interceptor(channel, auth)
            .max_decoding_message_size(MAX_ANSWER))
    }

    /// A conversation client.
    pub async fn conversation(&self) -> anyhow::Result<ConversationServiceClient<Authed>> {
        let (channel, auth) = self.connect("conversation", &self.conversation).await?;
        Ok(ConversationServiceClient::with_interceptor(channel, auth)
            .max_decoding_message_size(MAX_ANSWER))
    }

    /// A routing client.
    pub async fn routing(&self) -> anyhow::Result<RoutingServiceClient<Authed>> {
        let (channel, auth) = self.connect("routing", &self.routing).await?;
        Ok(RoutingServiceClient::with_interceptor(channel, auth)
            .max_decoding_message_size(MAX_ANSWER))
    }

    /// An analytics client.
    pub async fn analytics(&self) -> anyhow::Result<AnalyticsServiceClient<Authed>> {
        let (channel, auth) = self.connect("analytics", &self.analytics).await?;
        Ok(AnalyticsServiceClient::with_interceptor(channel, auth)
            .max_decoding_message_size(MAX_ANSWER))
    }

    /// The token from --token, else from --token-file.
    pub fn token(&self) -> anyhow::Result<String> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => token.trim().to_string(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .with_context(|| format!("read the token file {}", file.display()))?
                .trim()
                .to_string(),
            (None, None) => {
                return Err(Usage(
                    "no token: pass --token or --token-file (or set FRONTLINE_TOKEN or \
                     FRONTLINE_TOKEN_FILE); `frontline token` mints one"
                        .into(),
                )
                .into());
            }
        };
        if token.is_empty() {
            return Err(Usage("the token is empty".into()).into());
        }
        Ok(token)
    }

    /// The metadata every call carries.
    fn auth(&self) -> anyhow::Result<Auth> {
        let authorization = format!("Bearer {}", self.token()?)
            .parse()
            .map_err(|_| Usage("the token has characters a header cannot carry".into()))?;
        let tenant = self
            .tenant
            .as_deref()
            .map(|t| {
                t.parse()
                    .map_err(|_| Usage(format!("--tenant {t:?} cannot be sent as a header")))
            })
            .transpose()?;
        Ok(Auth {
            authorization,
            tenant,
        })
    }

    /// Connects to the service `name` at `address` (checking the token first, so a
    /// missing one is reported before any network trouble).
    async fn connect(&self, name: &str, address: &str) -> anyhow::Result<(Channel, Auth)> {
        let auth = self.auth()?;
        let mut endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|_| Usage(format!("--{name} {address:?} is not a URL")))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        if let Some(tls) = self.tls(name, address)? {
            // A file tonic cannot use is the user's to fix, not UNAVAILABLE (which
            // scripts retry).
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Usage(format!("TLS for {name} at {address}: {e}")))?;
        }
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to {name} at {address}"))?;
        Ok((channel, auth))
    }

    /// The TLS configuration: for https:// addresses, or when a TLS file is given.
    fn tls(&self, name: &str, address: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
        let files = self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some();
        let https = address.starts_with("https://");
        if !https {
            if files {
                return Err(Usage(format!(
                    "TLS files are given but --{name} {address:?} is not https://"
                ))
                .into());
            }
            return Ok(None);
        }
        let read = |file: &PathBuf| {
            std::fs::read(file).with_context(|| format!("read {}", file.display()))
        };
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &self.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => {
                return Err(
                    Usage("--cert-file and --key-file go together (mutual TLS)".into()).into(),
                );
            }
        }
        Ok(Some(tls))
    }
}
