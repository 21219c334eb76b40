//! What every Frontline service serves besides its API: `grpc.health.v1` and
//! reflection (v1 and v1alpha), both open without a token, and a graceful shutdown.
#![allow(clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1 as reflection_v1, v1alpha as reflection_v1alpha};

const INTAKE: &str = "frontline.v1.IntakeService";
const CONVERSATION: &str = "frontline.v1.ConversationService";
const HEALTH: &str = "grpc.health.v1.Health";

/// The services reflection v1 lists on `channel`.
async fn list_services_v1(channel: Channel) -> Vec<String> {
    use reflection_v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("reflection v1 ListServices answered {other:?}"),
    }
}

/// The services reflection v1alpha lists on `channel`.
async fn list_services_v1alpha(channel: Channel) -> Vec<String> {
    use reflection_v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("reflection v1alpha ListServices answered {other:?}"),
    }
}

/// Both services answer `grpc.health.v1.Health/Check` with SERVING, for the whole
/// server ("") and for their own service name, without any token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_without_a_token() {
    let cluster = Cluster::start().await.unwrap();
    let servers = [
        (cluster.intake_channel().await.unwrap(), INTAKE),
        (cluster.conversation_channel().await.unwrap(), CONVERSATION),
    ];
    for (channel, name) in servers {
        let mut health = HealthClient::new(channel);
        for service in ["", name] {
            let status = health
                .check(HealthCheckRequest {
                    service: service.to_string(),
                })
                .await
                .unwrap_or_else(|e| panic!("health check {service:?} on {name}: {e:?}"))
                .into_inner()
                .status();
            assert_eq!(status, ServingStatus::Serving, "{service:?} on {name}");
        }
    }
    cluster.shutdown().await;
}

/// Reflection v1 and v1alpha, without a token, list the server's Frontline service,
/// the health service and the reflection service itself (so grpcurl works).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_without_a_token() {
    let cluster = Cluster::start().await.unwrap();
    let servers = [
        (cluster.intake_channel().await.unwrap(), INTAKE),
        (cluster.conversation_channel().await.unwrap(), CONVERSATION),
    ];
    for (channel, name) in servers {
        let v1 = list_services_v1(channel.clone()).await;
        for expected in [name, HEALTH, "grpc.reflection.v1.ServerReflection"] {
            assert!(
                v1.iter().any(|s| s == expected),
                "reflection v1 on {name} lacks {expected}: {v1:?}"
            );
        }
        let v1alpha = list_services_v1alpha(channel).await;
        for expected in [name, HEALTH, "grpc.reflection.v1alpha.ServerReflection"] {
            assert!(
                v1alpha.iter().any(|s| s == expected),
                "reflection v1alpha on {name} lacks {expected}: {v1alpha:?}"
            );
        }
    }
    cluster.shutdown().await;
}

/// A new call to `addr` fails: the connection is refused, or the call is UNAVAILABLE.
async fn assert_refuses_calls(addr: SocketAddr, what: &str) {
    let connected = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    let Ok(channel) = connected else {
        return; // Connection refused: nobody listens any more.
    };
    let result = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    match result {
        Ok(response) => panic!("{what} still answers after shutdown: {response:?}"),
        Err(status) => assert_eq!(
            status.code(),
            tonic::Code::Unavailable,
            "{what}: {status:?}"
        ),
    }
}

/// Shutdown drains and completes; afterwards the services take no new calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_and_then_calls_are_refused() {
    let cluster = Cluster::start().await.unwrap();
    let (intake_addr, conversation_addr) = (cluster.intake_addr, cluster.conversation_addr);
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    intake
        .submit_ticket(submit_request("before-shutdown", "ana@example.com"))
        .await
        .unwrap();

    tokio::time::timeout(Duration::from_secs(30), cluster.shutdown())
        .await
        .expect("shutdown must complete");

    // The client made before shutdown gets no answer any more…
    let after = intake
        .submit_ticket(submit_request("after-shutdown", "ana@example.com"))
        .await;
    let status = after.expect_err("intake answered after shutdown");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    // …and nobody can connect anew.
    assert_refuses_calls(intake_addr, "intake").await;
    assert_refuses_calls(conversation_addr, "conversation").await;
}
