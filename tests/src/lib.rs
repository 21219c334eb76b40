//! The end-to-end test harness: a real, pinned nats-server and PostgreSQL (from the
//! test kit) and the real intake and conversation services, started through the same
//! service builder as their binaries, in-process on ephemeral ports, driven over gRPC
//! like any client would.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let cluster = frontline_e2e::Cluster::start().await?;
//! let mut intake = cluster.intake("web-shop", frontline_domain::Role::CustomerSystem).await?;
//! # Ok(()) }
//! ```

use std::{net::SocketAddr, time::Duration};

use frontline_domain::{Actor, Caller, Role, TenantId, TenantScope};
use frontline_eventlog::{EventLog, LogConfig};
use frontline_proto::v1::{
    self, analytics_service_client::AnalyticsServiceClient,
    conversation_service_client::ConversationServiceClient,
    intake_service_client::IntakeServiceClient, routing_service_client::RoutingServiceClient,
};
use frontline_runtime::{ServiceBuilder, Startup, auth, config::CommonConfig};
use frontline_testkit::{NatsServer, TestDatabase};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// The JWT secret the test cluster signs with.
pub const SECRET: &str = "e2e-test-secret";

/// The tenant the plain client helpers act in.
pub const TENANT: &str = "acme";

/// A caller named `id` with `role`, covering `tenants` (`["*"]` for every tenant).
pub fn caller(id: &str, role: Role, tenants: &[&str]) -> Caller {
    let actor = Actor::new(id, role);
    let scope = if tenants == ["*"] {
        TenantScope::All
    } else {
        TenantScope::Named(
            tenants
                .iter()
                .filter_map(|t| TenantId::parse("tenant", t).ok())
                .collect(),
        )
    };
    Caller {
        actor,
        tenants: scope,
    }
}

/// An authenticated client channel.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` (and `x-tenant`, when set) to every call.
#[derive(Clone, Debug)]
pub struct Bearer {
    authorization: MetadataValue<tonic::metadata::Ascii>,
    tenant: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        if let Some(tenant) = &self.tenant {
            request.metadata_mut().insert("x-tenant", tenant.clone());
        }
        Ok(request)
    }
}

/// A running Frontline cluster for one test.
#[derive(Debug)]
pub struct Cluster {
    /// The NATS server (kill and restart it for fault tests).
    pub nats: NatsServer,
    /// This cluster's own PostgreSQL database.
    pub database: TestDatabase,
    /// A direct handle on the event log, for reading the stream back.
    pub log: EventLog,
    /// Intake's address.
    pub intake_addr: SocketAddr,
    /// Conversation's address.
    pub conversation_addr: SocketAddr,
    /// Routing's address.
    pub routing_addr: SocketAddr,
    /// Analytics' address, once [`Cluster::start_analytics`] started it.
    pub analytics_addr: Option<SocketAddr>,
    /// `NATS_URL` of the services: [`Cluster::nats`]'s URL, or the seed list of
    /// [`Cluster::bare_on_nats`].
    nats_url: String,
    /// Stream replicas the services (and [`Cluster::log`]) create.
    replicas: usize,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Starts NATS, a fresh database, intake, conversation and routing.
    pub async fn start() -> anyhow::Result<Cluster> {
        let mut cluster = Cluster::bare().await?;
        cluster.intake_addr = cluster.serve(frontline_intake::service()).await?;
        cluster.conversation_addr = cluster.add_conversation_replica().await?;
        cluster.wait_serving(cluster.intake_addr).await?;
        cluster.wait_serving(cluster.conversation_addr).await?;
        cluster.routing_addr = cluster.serve(frontline_routing::service()).await?;
        cluster.wait_serving(cluster.routing_addr).await?;
        Ok(cluster)
    }

    /// NATS, a fresh database and the event log, with no service started (start
    /// the ones wanted with [`Cluster::serve`] or [`Cluster::start_analytics`]).
    pub async fn bare() -> anyhow::Result<Cluster> {
        let nats = tokio::task::spawn_blocking(NatsServer::start).await??;
        let url = nats.url();
        Cluster::bare_with(nats, url, 1).await
    }

    /// [`Cluster::bare`] against other NATS servers: `urls` (a comma-separated seed
    /// list, say a [`frontline_testkit::NatsCluster`]'s) with streams of `replicas`
    /// replicas. [`Cluster::nats`] is then an idle standalone server nobody uses.
    pub async fn bare_on_nats(urls: &str, replicas: usize) -> anyhow::Result<Cluster> {
        let idle = tokio::task::spawn_blocking(NatsServer::start).await??;
        Cluster::bare_with(idle, urls.to_string(), replicas).await
    }

    async fn bare_with(
        nats: NatsServer,
        nats_url: String,
        replicas: usize,
    ) -> anyhow::Result<Cluster> {
        let database = frontline_testkit::test_database().await?;
        let log = open_log_with(&nats_url, replicas).await?;
        let (stop, _) = watch::channel(false);
        Ok(Cluster {
            nats,
            nats_url,
            replicas,
            database,
            log,
            intake_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            conversation_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            routing_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            analytics_addr: None,
            stop,
            servers: Vec::new(),
        })
    }

    /// The configuration every service of this cluster runs with.
    pub fn config(&self) -> anyhow::Result<CommonConfig> {
        Ok(CommonConfig::from_args([
            "--nats-url",
            &self.nats_url,
            "--replicas",
            &self.replicas.to_string(),
            "--jwt-secret",
            SECRET,
            "--kek",
            frontline_testkit::TEST_KEK,
            "--log-timeout-secs",
            "2",
            "--shutdown-grace-secs",
            "5",
            "--database-url",
            &self.database.url,
            "--db-max-connections",
            "4",
            "--log-format",
            "text",
        ])?)
    }

    /// Starts another conversation server with its own NATS connection (a second
    /// replica, as on Kubernetes) and returns its address.
    pub async fn add_conversation_replica(&mut self) -> anyhow::Result<SocketAddr> {
        let addr = self.serve(frontline_conversation::service()).await?;
        self.wait_serving(addr).await?;
        Ok(addr)
    }

    /// Starts another intake replica (its own connections; the same database).
    pub async fn add_intake_replica(&mut self) -> anyhow::Result<SocketAddr> {
        let addr = self.serve(frontline_intake::service()).await?;
        self.wait_serving(addr).await?;
        Ok(addr)
    }

    /// Runs `service` as its binary would, on an ephemeral port, until the cluster stops.
    pub async fn serve(&mut self, service: ServiceBuilder) -> anyhow::Result<SocketAddr> {
        let config = self.config()?;
        self.serve_config(service, config).await
    }

    /// [`Cluster::serve`] with another configuration (say, [`Cluster::config`] with
    /// TLS settings added).
    pub async fn serve_config(
        &mut self,
        service: ServiceBuilder,
        config: CommonConfig,
    ) -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut stop = self.stop.subscribe();
        let startup = Startup {
            config,
            listener,
            shutdown: Box::pin(async move {
                let _ = stop.wait_for(|s| *s).await;
            }),
        };
        self.servers.push(tokio::spawn(async move {
            if let Err(e) = service.run(startup).await {
                eprintln!("service on {addr} stopped with an error: {e}");
            }
        }));
        Ok(addr)
    }

    /// Waits until the service on `addr` reports SERVING (it connects to NATS and
    /// PostgreSQL and migrates first).
    pub async fn wait_serving(&self, addr: SocketAddr) -> anyhow::Result<()> {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let probe = async {
                let channel = Self::channel(addr).await.ok()?;
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                    .ok()?;
                Some(answer.into_inner().status == 1)
            };
            if let Ok(Some(true)) = tokio::time::timeout(Duration::from_secs(1), probe).await {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "service on {addr} not serving within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A bearer token for `id` with `role` in [`TENANT`].
    pub fn token(&self, id: &str, role: Role) -> String {
        Self::token_for(&caller(id, role, &[TENANT]))
    }

    /// A bearer token for `caller`.
    pub fn token_for(caller: &Caller) -> String {
        auth::mint(SECRET, caller, Duration::from_secs(3600)).unwrap_or_default()
    }

    async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?)
    }

    fn bearer(caller: &Caller, x_tenant: Option<&str>) -> anyhow::Result<Bearer> {
        Ok(Bearer {
            authorization: format!("Bearer {}", Self::token_for(caller)).parse()?,
            tenant: x_tenant.map(str::parse).transpose()?,
        })
    }

    /// An intake client calling as `id` with `role` in [`TENANT`].
    pub async fn intake(
        &self,
        id: &str,
        role: Role,
    ) -> anyhow::Result<IntakeServiceClient<Authed>> {
        self.intake_as(&caller(id, role, &[TENANT]), None).await
    }

    /// An intake client calling as `caller`, naming `x_tenant` if given.
    pub async fn intake_as(
        &self,
        caller: &Caller,
        x_tenant: Option<&str>,
    ) -> anyhow::Result<IntakeServiceClient<Authed>> {
        let channel = Self::channel(self.intake_addr).await?;
        Ok(IntakeServiceClient::with_interceptor(
            channel,
            Self::bearer(caller, x_tenant)?,
        ))
    }

    /// A conversation client calling as `caller`, naming `x_tenant` if given.
    pub async fn conversation_as(
        &self,
        caller: &Caller,
        x_tenant: Option<&str>,
    ) -> anyhow::Result<ConversationServiceClient<Authed>> {
        let channel = Self::channel(self.conversation_addr).await?;
        Ok(ConversationServiceClient::with_interceptor(
            channel,
            Self::bearer(caller, x_tenant)?,
        ))
    }

    /// Starts the analytics service (tests that do not ask for it spare its
    /// projection's work).
    pub async fn start_analytics(&mut self) -> anyhow::Result<SocketAddr> {
        let addr = self.serve(frontline_analytics::service()).await?;
        self.wait_serving(addr).await?;
        self.analytics_addr = Some(addr);
        Ok(addr)
    }

    /// An analytics client calling as `caller`, naming `x_tenant` if given.
    pub async fn analytics_as(
        &self,
        caller: &Caller,
        x_tenant: Option<&str>,
    ) -> anyhow::Result<AnalyticsServiceClient<Authed>> {
        let addr = self
            .analytics_addr
            .ok_or_else(|| anyhow::anyhow!("analytics is not started: call start_analytics"))?;
        let channel = Self::channel(addr).await?;
        Ok(AnalyticsServiceClient::with_interceptor(
            channel,
            Self::bearer(caller, x_tenant)?,
        ))
    }

    /// Waits (up to 30 s) until the analytics projection (of the live generation)
    /// has applied every event stored so far.
    pub async fn analytics_settled(&self) -> anyhow::Result<()> {
        let last = self.log.last_sequence().await?;
        let db = sqlx::PgPool::connect(&self.database.url).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let applied = frontline_analytics::generations::live_checkpoint(&db)
                .await
                .unwrap_or_default();
            if applied >= last {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "analytics did not reach sequence {last} within 30 s (at {applied})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A raw channel to analytics (no token).
    pub async fn analytics_channel(&self) -> anyhow::Result<Channel> {
        let addr = self
            .analytics_addr
            .ok_or_else(|| anyhow::anyhow!("analytics is not started: call start_analytics"))?;
        Self::channel(addr).await
    }

    /// A routing client calling as `caller`, naming `x_tenant` if given.
    pub async fn routing_as(
        &self,
        caller: &Caller,
        x_tenant: Option<&str>,
    ) -> anyhow::Result<RoutingServiceClient<Authed>> {
        let channel = Self::channel(self.routing_addr).await?;
        Ok(RoutingServiceClient::with_interceptor(
            channel,
            Self::bearer(caller, x_tenant)?,
        ))
    }

    /// A conversation client calling as `id` with `role`.
    pub async fn conversation(
        &self,
        id: &str,
        role: Role,
    ) -> anyhow::Result<ConversationServiceClient<Authed>> {
        self.conversation_at(self.conversation_addr, id, role).await
    }

    /// A conversation client on a given replica.
    pub async fn conversation_at(
        &self,
        addr: SocketAddr,
        id: &str,
        role: Role,
    ) -> anyhow::Result<ConversationServiceClient<Authed>> {
        let channel = Self::channel(addr).await?;
        Ok(ConversationServiceClient::with_interceptor(
            channel,
            Self::bearer(&caller(id, role, &[TENANT]), None)?,
        ))
    }

    /// A raw channel to intake (no token), for authentication tests.
    pub async fn intake_channel(&self) -> anyhow::Result<Channel> {
        Self::channel(self.intake_addr).await
    }

    /// A raw channel to conversation (no token), for authentication tests.
    pub async fn conversation_channel(&self) -> anyhow::Result<Channel> {
        Self::channel(self.conversation_addr).await
    }

    /// A plain channel to routing (no token).
    pub async fn routing_channel(&self) -> anyhow::Result<Channel> {
        Self::channel(self.routing_addr).await
    }

    /// How many events each ticket subject holds, read from the stream itself.
    pub async fn ticket_event_counts(
        &self,
    ) -> anyhow::Result<std::collections::HashMap<String, usize>> {
        use futures::TryStreamExt;
        let js = async_nats::jetstream::new(self.log.client().clone());
        let stream = js.get_stream(self.log.stream_name()).await?;
        let counts = stream
            .info_with_subjects("frontline.ticket.>")
            .await?
            .try_collect()
            .await?;
        Ok(counts)
    }

    /// The id of the claim on `key` in [`TENANT`] (a keyed hash with the tenant's
    /// secret, read from the key store).
    pub async fn claim_id(
        &self,
        key: &frontline_domain::IdentityKey,
    ) -> anyhow::Result<uuid::Uuid> {
        let secret = frontline_domain::ids::TenantSecret(self.log.tenant_secret(TENANT).await?);
        Ok(frontline_domain::ids::identity_id(&secret, &tenant(), key))
    }

    /// Waits (up to 30 s) until routing's consumers have handled every event so far,
    /// so that what routing appends in answer to earlier calls does not land while
    /// a test counts the stream around one call.
    pub async fn routing_settled(&self) -> anyhow::Result<()> {
        self.routing_settled_within(Duration::from_secs(30)).await
    }

    /// [`Cluster::routing_settled`], waiting up to `limit`.
    pub async fn routing_settled_within(&self, limit: Duration) -> anyhow::Result<()> {
        let js = async_nats::jetstream::new(self.log.client().clone());
        let stream = js.get_stream(self.log.stream_name()).await?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let mut settled = true;
            for name in [
                frontline_routing::consumers::TICKETS,
                frontline_routing::consumers::AGENTS,
                frontline_routing::consumers::SLA,
                frontline_routing::consumers::POLICIES,
            ] {
                let info = match stream
                    .get_consumer::<async_nats::jetstream::consumer::pull::Config>(name)
                    .await
                {
                    Ok(mut consumer) => Some(consumer.info().await?.clone()),
                    Err(_) => None,
                };
                settled &= info.is_some_and(|i| i.num_pending == 0 && i.num_ack_pending == 0);
            }
            if settled {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "routing did not settle within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the servers, waiting for them to drain.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for server in self.servers.drain(..) {
            let _ = server.await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The event log at `urls` (one URL or a comma-separated seed list), creating its
/// streams with `replicas` replicas if they do not exist yet.
pub async fn open_log_with(urls: &str, replicas: usize) -> anyhow::Result<EventLog> {
    let servers = urls
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(2)))
        .connect(servers)
        .await?;
    let config = LogConfig {
        replicas,
        timeout: Duration::from_secs(2),
        kek: Some(frontline_privacy::Kek::from_base64(
            frontline_testkit::TEST_KEK,
        )?),
        ..LogConfig::default()
    };
    Ok(EventLog::open(client, config).await?)
}

/// The tenant the plain client helpers act in, parsed.
pub fn tenant() -> TenantId {
    TenantId::parse("tenant", TENANT).unwrap_or_default()
}

/// The id of the ticket `system` opens by email with `key` in [`TENANT`].
pub fn ticket_id(system: &str, key: &str) -> uuid::Uuid {
    frontline_domain::ids::ticket_id(&tenant(), system, frontline_domain::Channel::Email, key)
}

/// A valid submit request; tweak fields per test.
pub fn submit_request(key: &str, email: &str) -> v1::SubmitTicketRequest {
    v1::SubmitTicketRequest {
        idempotency_key: key.to_string(),
        channel: v1::Channel::Email.into(),
        customer: Some(v1::CustomerIdentity {
            email: email.to_string(),
            ..Default::default()
        }),
        subject: "Router keeps rebooting".to_string(),
        body: "Since the update my router restarts every hour.".to_string(),
        product_area: "router-x200".to_string(),
        priority: v1::Priority::Normal.into(),
        facts: Vec::new(),
        continue_ticket_id: String::new(),
    }
}

/// The field named in an INVALID_ARGUMENT status's `BadRequest` details.
pub fn violated_field(status: &Status) -> Option<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
}
