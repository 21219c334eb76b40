//! Routing: the agents tickets are assigned to — their tenants, skills, capacity
//! and availability (`frontline.agent.<id>`) — and which agent has each ticket,
//! and why (`TicketAssigned` / `TicketQueued` on the ticket).
//!
//! - [`grpc`]: `frontline.v1.RoutingService` — requests in, answers out.
//! - [`agents`]: reading agents (one, or a tenant's).
//! - [`assigner`]: assignment by the rules, atomic with the agents' load; the queue.
//! - [`consumers`]: the durable consumers that route on ticket and agent events.
//! - [`tickets`]: by-hand assignment and transfer; a ticket's routing.
//! - [`customers`]: customers' tiers and named agents.
//! - [`queue`]: the PostgreSQL indexes (the queue, who last handled a customer).

pub mod agents;
pub mod assigner;
pub mod consumers;
pub mod customers;
pub mod grpc;
pub mod queue;
pub mod tickets;

use frontline_proto::v1::routing_service_server::RoutingServiceServer;
use frontline_runtime::{ServiceBuilder, Task, TaskKind};
use sqlx::migrate::Migrator;
use tonic::service::{Routes, interceptor::InterceptedService};

pub use assigner::Settings;

/// The full gRPC service name, for health checks.
pub const SERVICE_NAME: &str = "frontline.v1.RoutingService";

/// Routing's index tables (migration versions 300–399).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The routing service with default settings.
pub fn service() -> ServiceBuilder {
    service_with(Settings::default())
}

/// The routing service: gRPC, and the consumers that assign.
pub fn service_with(settings: Settings) -> ServiceBuilder {
    ServiceBuilder::new("routing")
        .database(&[&MIGRATOR])
        .grpc(SERVICE_NAME, move |ctx| {
            let db = ctx.db()?.clone();
            let assigner = assigner::Assigner::new(ctx.log.clone(), db.clone(), settings);
            let routing = grpc::Routing::new(ctx.log.clone(), db, assigner, ctx.options);
            let service = RoutingServiceServer::new(routing).max_decoding_message_size(ctx.limit());
            Ok(Routes::new(InterceptedService::new(
                service,
                ctx.auth.clone(),
            )))
        })
        .task(move |ctx| {
            let assigner = assigner::Assigner::new(ctx.log.clone(), ctx.db()?.clone(), settings);
            let log = ctx.log.clone();
            Ok(Task::new(
                "routing: ticket events",
                TaskKind::PROJECTION,
                move |stop| {
                    let (log, assigner) = (log.clone(), assigner.clone());
                    async move {
                        consumers::tickets(log, assigner, stop)
                            .await
                            .map_err(|e| e.to_string().into())
                    }
                },
            ))
        })
        .task(move |ctx| {
            let assigner = assigner::Assigner::new(ctx.log.clone(), ctx.db()?.clone(), settings);
            let log = ctx.log.clone();
            Ok(Task::new(
                "routing: agent events",
                TaskKind::PROJECTION,
                move |stop| {
                    let (log, assigner) = (log.clone(), assigner.clone());
                    async move {
                        consumers::agents(log, assigner, stop)
                            .await
                            .map_err(|e| e.to_string().into())
                    }
                },
            ))
        })
}
