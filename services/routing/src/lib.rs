//! Routing: owns the agents tickets are assigned to — their tenants, skills,
//! capacity and availability — on the event log (`frontline.agent.<id>`).
//! Assignment, tiers, SLA policies and clocks build on these next.
//!
//! - [`grpc`]: `frontline.v1.RoutingService` — requests in, answers out.
//! - [`agents`]: reading agents (one, or a tenant's).

pub mod agents;
pub mod grpc;

use frontline_proto::v1::routing_service_server::RoutingServiceServer;
use frontline_runtime::ServiceBuilder;
use tonic::service::{Routes, interceptor::InterceptedService};

/// The full gRPC service name, for health checks.
pub const SERVICE_NAME: &str = "frontline.v1.RoutingService";

/// The routing service: gRPC on the event log.
pub fn service() -> ServiceBuilder {
    ServiceBuilder::new("routing").grpc(SERVICE_NAME, |ctx| {
        let service = RoutingServiceServer::new(grpc::Routing::new(ctx.log.clone(), ctx.options))
            .max_decoding_message_size(ctx.limit());
        Ok(Routes::new(InterceptedService::new(
            service,
            ctx.auth.clone(),
        )))
    })
}
