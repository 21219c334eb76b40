//! The real `frontline-conversation` binary, run as an operator would: configured
//! by environment, healthy, answers an authenticated call, exits 0 on SIGTERM.

use std::{path::Path, time::Duration};

use frontline_domain::{Actor, Role};
use frontline_proto::v1::{self, conversation_service_client::ConversationServiceClient};
use frontline_testkit::{NatsServer, ServiceProcess};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const BIN: &str = env!("CARGO_BIN_EXE_frontline-conversation");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_and_drains_on_sigterm() {
    let nats = NatsServer::start().unwrap();
    let (service, port, _metrics) =
        ServiceProcess::start_frontline(Path::new(BIN), &nats.url(), "s3cret", None).unwrap();
    let url = format!("http://127.0.0.1:{port}");

    let channel = tonic::transport::Channel::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: frontline_conversation::SERVICE_NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");

    // Authenticated, reaches the log, and answers an unknown ticket with NOT_FOUND.
    let token = frontline_runtime::auth::mint(
        "s3cret",
        &frontline_domain::Caller::in_tenant(
            Actor::new("ana", Role::Agent),
            frontline_domain::TenantId::parse("tenant", "acme").unwrap(),
        ),
        Duration::from_secs(60),
    )
    .unwrap();
    let mut request = tonic::Request::new(v1::GetTicketRequest {
        ticket_id: uuid::Uuid::new_v4().to_string(),
        as_of_version: None,
        as_of_time: None,
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let err = ConversationServiceClient::connect(url)
        .await
        .unwrap()
        .get_ticket(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    let (status, output) = service.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{status}: {output}");
}
