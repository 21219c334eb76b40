//! TLS everywhere: the gRPC server with TLS and mutual TLS (health, reflection and
//! the API on one listener), NATS over TLS with a user and password, PostgreSQL
//! over TLS with `sslmode=verify-full`, and TLS settings that cannot work refused
//! at start-up. Every certificate is made here, by a test CA.
#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use frontline_domain::Role;
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_proto::v1::intake_service_client::IntakeServiceClient;
use frontline_runtime::{
    StartError, Startup,
    config::{CommonConfig, NatsConfig},
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::{
    Request,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A test PKI in a temporary directory: a CA, a server certificate for
/// `localhost` and 127.0.0.1, a client certificate, and a second CA (with its own
/// client certificate) that nobody trusts.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("Frontline test CA");
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca.pem());
        let (cert, key) = leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        write("server.pem", cert);
        write("server-key.pem", key);
        let (cert, key) = leaf(
            &ca,
            &["frontline-client"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        write("client.pem", cert);
        write("client-key.pem", key);
        let other = new_ca("Someone else's CA");
        write("other-ca.pem", other.pem());
        let (cert, key) = leaf(&other, &["intruder"], ExtendedKeyUsagePurpose::ClientAuth);
        write("other-client.pem", cert);
        write("other-client-key.pem", key);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// A TLS client trusting the test CA, presenting `identity` (a certificate and
    /// key file name prefix, e.g. `client`) if given.
    fn client(&self, identity: Option<&str>) -> ClientTlsConfig {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.pem("ca.pem")))
            .domain_name("localhost");
        match identity {
            Some(name) => tls.identity(Identity::from_pem(
                self.pem(&format!("{name}.pem")),
                self.pem(&format!("{name}-key.pem")),
            )),
            None => tls,
        }
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate (PEM) and its key (PEM) for `names`, signed by `ca`.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, &names[0]);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &**ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The cluster's configuration with the server certificate (and, for mutual TLS,
/// the client CA) added.
fn tls_config(cluster: &Cluster, pki: &Pki, client_ca: Option<&str>) -> CommonConfig {
    let mut config = cluster.config().unwrap();
    config.tls.cert_file = Some(pki.path("server.pem"));
    config.tls.key_file = Some(pki.path("server-key.pem"));
    config.tls.client_ca_file = client_ca.map(|name| pki.path(name));
    config
}

async fn tls_channel(addr: SocketAddr, tls: ClientTlsConfig) -> Result<Channel, String> {
    let endpoint = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| format!("{e:?}"))?
        .connect_timeout(Duration::from_secs(5));
    tokio::time::timeout(Duration::from_secs(10), endpoint.connect())
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("{e:?}"))
}

/// The server's overall health over `channel`, or why there is no answer.
async fn health(channel: Channel) -> Result<ServingStatus, String> {
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest::default());
    match tokio::time::timeout(Duration::from_secs(10), check).await {
        Ok(Ok(answer)) => Ok(answer.into_inner().status()),
        Ok(Err(status)) => Err(format!("{status:?}")),
        Err(_) => Err("timed out".into()),
    }
}

/// The health over a TLS connection made with `tls`, or why there is none.
async fn tls_health(addr: SocketAddr, tls: ClientTlsConfig) -> Result<ServingStatus, String> {
    health(tls_channel(addr, tls).await?).await
}

/// Waits (up to 30 s) until the TLS server on `addr` reports SERVING.
async fn wait_serving_tls(addr: SocketAddr, tls: ClientTlsConfig) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tls_health(addr, tls.clone()).await {
            Ok(ServingStatus::Serving) => return,
            other if tokio::time::Instant::now() > deadline => {
                panic!("{addr} not serving over TLS within 30 s: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Submits a ticket over `channel` as a customer system (an authenticated call
/// that writes to the event log).
async fn submit(channel: Channel, key: &str) -> Result<String, tonic::Status> {
    let token = Cluster::token_for(&caller(
        "web-shop",
        Role::CustomerSystem,
        &[frontline_e2e::TENANT],
    ));
    let authorization: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().unwrap();
    let mut intake = IntakeServiceClient::with_interceptor(channel, move |mut r: Request<()>| {
        r.metadata_mut()
            .insert("authorization", authorization.clone());
        Ok(r)
    });
    let answer = intake
        .submit_ticket(submit_request(key, &format!("{key}@example.com")))
        .await?;
    Ok(answer.into_inner().ticket_id)
}

/// A plaintext gRPC client against `addr` gets no answer.
async fn assert_plaintext_refused(addr: SocketAddr) {
    let endpoint = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    let outcome = match tokio::time::timeout(Duration::from_secs(10), endpoint.connect()).await {
        Ok(Ok(channel)) => health(channel).await,
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("timed out".into()),
    };
    assert!(
        outcome.is_err(),
        "a plaintext client got an answer from the TLS server: {outcome:?}"
    );
}

/// (a) and (b): intake over TLS answers health, reflection's listener is the same,
/// and an authenticated SubmitTicket succeeds; a plaintext client gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_serves_and_plaintext_is_refused() {
    let pki = Pki::new();
    let mut cluster = Cluster::bare().await.unwrap();
    let config = tls_config(&cluster, &pki, None);
    let addr = cluster
        .serve_config(frontline_intake::service(), config)
        .await
        .unwrap();
    wait_serving_tls(addr, pki.client(None)).await;

    let channel = tls_channel(addr, pki.client(None)).await.unwrap();
    let ticket = submit(channel.clone(), "over-tls").await.unwrap();
    assert!(!ticket.is_empty());
    // Reflection is served on the same TLS listener (grpcurl -cacert works).
    let reflection = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        channel,
    )
    .server_reflection_info(tokio_stream::iter([
        tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                ),
            ),
        },
    ]))
    .await;
    assert!(reflection.is_ok(), "{reflection:?}");

    assert_plaintext_refused(addr).await;
    // A client that does not trust the server's CA refuses the server.
    let untrusting = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.pem("other-ca.pem")))
        .domain_name("localhost");
    assert!(tls_health(addr, untrusting).await.is_err());
    cluster.shutdown().await;
}

/// (c): with a client CA, a client with a certificate signed by it is served; a
/// TLS client without one, or with one from another CA, is refused; the
/// health-only port answers probes in plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = Pki::new();
    let mut cluster = Cluster::bare().await.unwrap();
    let mut config = tls_config(&cluster, &pki, Some("ca.pem"));
    // The plaintext health-only port Kubernetes' probes use.
    let probes = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    config.health_listen = probes.to_string();
    let addr = cluster
        .serve_config(frontline_intake::service(), config)
        .await
        .unwrap();
    wait_serving_tls(addr, pki.client(Some("client"))).await;

    let channel = tls_channel(addr, pki.client(Some("client"))).await.unwrap();
    submit(channel, "mutual-tls").await.unwrap();

    // The probe port answers health in plaintext without a certificate, and
    // nothing else: the API is only on the mutual-TLS port.
    let plain = Channel::from_shared(format!("http://{probes}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(health(plain.clone()).await, Ok(ServingStatus::Serving));
    let refused = submit(plain, "via-probe-port").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");

    let without = tls_health(addr, pki.client(None)).await;
    assert!(
        without.is_err(),
        "a client without a certificate was served: {without:?}"
    );
    let foreign = tls_health(addr, pki.client(Some("other-client"))).await;
    assert!(
        foreign.is_err(),
        "a client with another CA's certificate was served: {foreign:?}"
    );
    assert_plaintext_refused(addr).await;
    cluster.shutdown().await;
}

/// Runs intake with `args` added to a configuration that needs no NATS (start-up
/// checks come first); the error it stops with.
async fn start_up_error(args: &[&str]) -> String {
    let mut all = vec![
        "--nats-url",
        "nats://127.0.0.1:1",
        "--jwt-secret",
        "s",
        "--kek",
        frontline_testkit::TEST_KEK,
        "--database-url",
        "postgres://nobody@127.0.0.1:1/none",
    ];
    all.extend_from_slice(args);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let startup = Startup {
        config: CommonConfig::from_args(all).unwrap(),
        listener,
        shutdown: Box::pin(tokio::time::sleep(Duration::from_secs(20))),
    };
    let run = frontline_intake::service().run(startup);
    match tokio::time::timeout(Duration::from_secs(10), run).await {
        Ok(Err(StartError::Config(message))) => message,
        other => panic!("expected a configuration error at start-up, got {other:?}"),
    }
}

/// (d): TLS settings that cannot work stop the service at start-up, naming the
/// setting and the file.
#[tokio::test]
async fn unusable_tls_settings_are_refused_at_start_up() {
    let pki = Pki::new();
    let path = |name: &str| pki.path(name).to_string_lossy().into_owned();
    let (cert, key, client_key) = (
        path("server.pem"),
        path("server-key.pem"),
        path("client-key.pem"),
    );

    let message = start_up_error(&["--tls-cert-file", &cert]).await;
    assert!(
        message.contains("FRONTLINE_TLS_CERT_FILE is set but FRONTLINE_TLS_KEY_FILE is not"),
        "{message}"
    );
    let message = start_up_error(&["--tls-key-file", &key]).await;
    assert!(
        message.contains("FRONTLINE_TLS_KEY_FILE is set but FRONTLINE_TLS_CERT_FILE is not"),
        "{message}"
    );

    let missing = path("missing.pem");
    let message = start_up_error(&["--tls-cert-file", &missing, "--tls-key-file", &key]).await;
    assert!(
        message.contains("cannot read") && message.contains(&missing),
        "{message}"
    );

    // A key file given as the certificate: no certificate in it.
    let message = start_up_error(&["--tls-cert-file", &key, "--tls-key-file", &key]).await;
    assert!(
        message.contains("no certificate") && message.contains(&key),
        "{message}"
    );

    // A key that is not the certificate's.
    let message = start_up_error(&["--tls-cert-file", &cert, "--tls-key-file", &client_key]).await;
    assert!(
        message.contains("cannot serve TLS") && message.contains(&cert),
        "{message}"
    );

    let message = start_up_error(&[
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-client-ca-file",
        &key,
    ])
    .await;
    assert!(
        message.contains("FRONTLINE_TLS_CLIENT_CA_FILE") && message.contains("no certificate"),
        "{message}"
    );

    // NATS TLS files are checked at start-up too (not retried forever).
    let message = start_up_error(&["--nats-ca-file", &missing]).await;
    assert!(
        message.contains("NATS_CA_FILE") && message.contains(&missing),
        "{message}"
    );
    let message = start_up_error(&["--nats-cert-file", &cert]).await;
    assert!(
        message.contains("NATS_CERT_FILE is set but NATS_KEY_FILE is not"),
        "{message}"
    );
}

/// (e): NATS requiring TLS and a user and password: a service with the CA and the
/// credentials serves and writes to the log; a wrong password and a client that
/// does not trust the server's CA are refused (tools see why at once; a service
/// keeps retrying and never reports SERVING).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_over_tls_with_user_and_password() {
    let pki = Pki::new();
    let (user, password) = ("frontline", "nats-s3cret");
    let args: Vec<std::ffi::OsString> = vec![
        "--tls".into(),
        "--tlscert".into(),
        pki.path("server.pem").into(),
        "--tlskey".into(),
        pki.path("server-key.pem").into(),
        "--user".into(),
        user.into(),
        "--pass".into(),
        password.into(),
    ];
    let nats =
        tokio::task::spawn_blocking(move || frontline_testkit::NatsServer::start_with_args(args))
            .await
            .unwrap()
            .unwrap();
    let settings = |ca: Option<&str>, password: &str| NatsConfig {
        url: nats.url(),
        ca_file: ca.map(|name| pki.path(name)),
        user: Some(user.into()),
        password: Some(password.into()),
        ..NatsConfig::default()
    };

    // A tool (no retries) is told why it cannot connect.
    let connect = |config: NatsConfig| async move {
        let connecting = config.connect_once("tls-test");
        match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_string()),
        }
    };
    connect(settings(Some("ca.pem"), password)).await.unwrap();
    let wrong_password = connect(settings(Some("ca.pem"), "wrong"))
        .await
        .unwrap_err();
    assert!(
        wrong_password.contains("authorization violation"),
        "{wrong_password}"
    );
    let untrusted = connect(settings(None, password)).await.unwrap_err();
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");

    let mut cluster = Cluster::bare().await.unwrap();
    // A service without the CA retries and never serves (bounded here).
    let mut config = cluster.config().unwrap();
    config.nats = settings(None, password);
    let untrusting = cluster
        .serve_config(frontline_intake::service(), config)
        .await
        .unwrap();
    // The service with the CA and the password serves and writes to the log.
    let mut config = cluster.config().unwrap();
    config.nats = settings(Some("ca.pem"), password);
    let addr = cluster
        .serve_config(frontline_intake::service(), config)
        .await
        .unwrap();
    cluster.wait_serving(addr).await.unwrap();
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    submit(channel, "nats-over-tls").await.unwrap();
    // The untrusting one started first and had all that time and 2 s more: it
    // still retries, so it never reports SERVING.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let plain = Channel::from_shared(format!("http://{untrusting}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    if let Ok(channel) = plain {
        let status = health(channel).await;
        assert!(
            status != Ok(ServingStatus::Serving),
            "a service that does not trust NATS's CA reports SERVING: {status:?}"
        );
    }
    cluster.shutdown().await;
}

/// A TLS front for the PostgreSQL at `target`, speaking PostgreSQL's TLS
/// negotiation (an `SSLRequest`, answered `S`, then the handshake) with the test
/// server certificate, and forwarding the decrypted protocol. The embedded
/// PostgreSQL of the test kit is built without SSL, so this stands in for a
/// server with `ssl = on` and only `hostssl` lines: a client that does not ask for
/// TLS is dropped.
async fn postgres_tls_front(target: (String, u16), pki: &Pki) -> SocketAddr {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls::{
        ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    };
    /// `SSLRequest`: length 8, then the code 80877103.
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let certs = CertificateDer::pem_slice_iter(pki.pem("server.pem").as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.pem("server-key.pem").as_bytes()).unwrap();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                client.read_exact(&mut request).await?;
                if request != SSL_REQUEST {
                    return Ok(()); // TLS only: anything else is dropped.
                }
                client.write_all(b"S").await?;
                let mut tls = acceptor.accept(client).await?;
                let mut server = tokio::net::TcpStream::connect(target).await?;
                tokio::io::copy_bidirectional(&mut tls, &mut server).await?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    addr
}

/// (f): PostgreSQL over TLS via `DATABASE_URL`: sqlx parses and honours
/// `sslmode` (its TLS support is compiled in), a service whose URL says
/// `sslmode=verify-full&sslrootcert=<CA>` migrates and serves through a TLS-only
/// PostgreSQL front, and the same URL with a CA that did not sign the server's
/// certificate, or a plaintext connection, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_with_verify_full() {
    use sqlx::{
        Connection as _,
        postgres::{PgConnectOptions, PgSslMode},
    };
    use std::str::FromStr as _;
    let pki = Pki::new();
    let mut cluster = Cluster::bare().await.unwrap();
    let plain = PgConnectOptions::from_str(&cluster.database.url).unwrap();

    // Against the plaintext server, `require` is refused for want of TLS there —
    // not for want of TLS in this build.
    let required =
        sqlx::PgConnection::connect(&with_query(&cluster.database.url, "sslmode=require"))
            .await
            .unwrap_err()
            .to_string();
    assert!(
        required.contains("server does not support TLS"),
        "{required}"
    );

    let front = postgres_tls_front((plain.get_host().to_string(), plain.get_port()), &pki).await;
    // The test database's URL, pointed at the front (credentials and database kept).
    let address = format!("{}:{}", plain.get_host(), plain.get_port());
    assert!(cluster.database.url.contains(&address), "{address}");
    let via_front =
        cluster
            .database
            .url
            .replacen(&address, &format!("127.0.0.1:{}", front.port()), 1);
    let url = |ca: &str| {
        let ca = pki.path(ca);
        with_query(
            &via_front,
            &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        )
    };
    let options = PgConnectOptions::from_str(&url("ca.pem")).unwrap();
    assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));

    let mut tls = sqlx::PgConnection::connect(&url("ca.pem")).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut tls)
        .await
        .unwrap();
    assert_eq!(one, 1);
    tls.close().await.unwrap();
    let untrusted = sqlx::PgConnection::connect(&url("other-ca.pem")).await;
    let untrusted = untrusted.map(|_| ()).unwrap_err().to_string();
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");
    let disabled = url("ca.pem").replace("sslmode=verify-full", "sslmode=disable");
    let plaintext = sqlx::PgConnection::connect(&disabled).await;
    assert!(
        plaintext.is_err(),
        "the TLS-only front took a plaintext client"
    );

    let mut config = cluster.config().unwrap();
    config.database_url = Some(url("ca.pem"));
    let addr = cluster
        .serve_config(frontline_intake::service(), config)
        .await
        .unwrap();
    cluster.wait_serving(addr).await.unwrap();
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    submit(channel, "postgres-over-tls").await.unwrap();
    cluster.shutdown().await;
}

/// `url` with `query` added.
fn with_query(url: &str, query: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{query}")
}
