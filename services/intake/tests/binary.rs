//! The real `frontline-intake` binary, run as an operator would: configured by
//! environment, healthy, metrics served, takes a submit, exits 0 on SIGTERM.

use std::{path::Path, time::Duration};

use frontline_domain::{Actor, Role};
use frontline_proto::v1::{self, intake_service_client::IntakeServiceClient};
use frontline_testkit::{NatsServer, ServiceProcess, http_get};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const BIN: &str = env!("CARGO_BIN_EXE_frontline-intake");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_and_drains_on_sigterm() {
    let mut nats = NatsServer::start().unwrap();
    // Intake keeps its read model in PostgreSQL: the binary needs DATABASE_URL.
    let database = frontline_testkit::test_database().await.unwrap();
    let (service, port, metrics) =
        ServiceProcess::start_frontline(Path::new(BIN), &nats.url(), "s3cret", Some(&database.url))
            .unwrap();
    let url = format!("http://127.0.0.1:{port}");

    let channel = tonic::transport::Channel::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: frontline_intake::SERVICE_NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");

    let token = frontline_runtime::auth::mint(
        "s3cret",
        &frontline_domain::Caller::in_tenant(
            Actor::new("web-shop", Role::CustomerSystem),
            frontline_domain::TenantId::parse("tenant", "acme").unwrap(),
        ),
        Duration::from_secs(60),
    )
    .unwrap();
    let mut request = tonic::Request::new(v1::SubmitTicketRequest {
        idempotency_key: "bin-1".into(),
        channel: v1::Channel::Web.into(),
        customer: Some(v1::CustomerIdentity {
            email: "bin@example.com".into(),
            ..Default::default()
        }),
        subject: "From the binary".into(),
        body: "Hello".into(),
        product_area: "billing".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let answer = IntakeServiceClient::connect(url.clone())
        .await
        .unwrap()
        .submit_ticket(request)
        .await
        .unwrap()
        .into_inner();
    assert!(answer.created);

    // A refused call is counted by its code, auth refusals included.
    let refused = IntakeServiceClient::connect(url.clone())
        .await
        .unwrap()
        .submit_ticket(v1::SubmitTicketRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let scrape = http_get(metrics, "/metrics").unwrap();
    assert!(
        scrape.contains(r#"frontline_grpc_errors_total{code="Unauthenticated"} 1"#),
        "{scrape}"
    );
    // Every call by method and code, and its latency as a Prometheus histogram.
    let has = |name: &str, parts: &[&str]| {
        scrape
            .lines()
            .any(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
    };
    let submit = r#"method="frontline.v1.IntakeService/SubmitTicket""#;
    assert!(
        has("frontline_grpc_requests_total{", &[submit, r#"code="Ok""#]),
        "{scrape}"
    );
    assert!(
        has(
            "frontline_grpc_requests_total{",
            &[submit, r#"code="Unauthenticated""#]
        ),
        "{scrape}"
    );
    assert!(
        has(
            "frontline_grpc_request_duration_seconds_bucket{",
            &[submit, r#"le="0.1""#]
        ),
        "{scrape}"
    );
    assert!(scrape.contains(" 200 "), "{scrape}");
    assert!(scrape.contains("frontline_build_info"), "{scrape}");
    assert!(
        scrape.contains("frontline_events_appended_total"),
        "{scrape}"
    );

    // Even with NATS gone first, SIGTERM still ends the process cleanly.
    nats.kill().unwrap();
    let (status, output) = service.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{status}: {output}");
    assert!(
        output.contains("\"stopped\""),
        "structured shutdown log: {output}"
    );
}

#[test]
fn the_binary_refuses_to_start_without_a_secret() {
    let service = ServiceProcess::spawn(
        Path::new(BIN),
        &[
            ("FRONTLINE_JWT_SECRET", String::new()),
            ("NATS_URL", "nats://127.0.0.1:1".into()),
            // Any free port: the binary binds before it checks its configuration.
            ("FRONTLINE_LISTEN", "127.0.0.1:0".into()),
        ],
    )
    .unwrap();
    let (status, output) = service.wait(Duration::from_secs(30)).unwrap();
    assert!(!status.success());
    assert!(output.contains("FRONTLINE_JWT_SECRET"), "{output}");
}

#[test]
fn the_binary_refuses_to_start_without_a_database() {
    // Intake keeps its read model in PostgreSQL: no DATABASE_URL, no start.
    let service = ServiceProcess::spawn_without(
        Path::new(BIN),
        &[
            ("FRONTLINE_JWT_SECRET", "s3cret".into()),
            ("NATS_URL", "nats://127.0.0.1:1".into()),
            // Any free port: the binary binds before it checks its configuration.
            ("FRONTLINE_LISTEN", "127.0.0.1:0".into()),
            ("FRONTLINE_LOG_FORMAT", "text".into()),
        ],
        &["DATABASE_URL"],
    )
    .unwrap();
    let (status, output) = service.wait(Duration::from_secs(30)).unwrap();
    assert!(!status.success());
    assert!(output.contains("DATABASE_URL is required"), "{output}");
}

/// An empty `DATABASE_URL` (a missing secret key, say) is as good as none and is
/// refused at start, like an empty `FRONTLINE_JWT_SECRET` (it was once taken as a
/// URL, and intake retried connecting to "" forever).
#[test]
fn the_binary_refuses_an_empty_database_url() {
    let service = ServiceProcess::spawn_without(
        Path::new(BIN),
        &[
            ("FRONTLINE_JWT_SECRET", "s3cret".into()),
            ("NATS_URL", "nats://127.0.0.1:1".into()),
            // Any free port: the binary binds before it checks its configuration.
            ("FRONTLINE_LISTEN", "127.0.0.1:0".into()),
            ("DATABASE_URL", String::new()),
            ("FRONTLINE_LOG_FORMAT", "text".into()),
        ],
        &[],
    )
    .unwrap();
    let (status, output) = service.wait(Duration::from_secs(5)).unwrap();
    assert!(!status.success());
    assert!(output.contains("DATABASE_URL"), "{output}");
}
