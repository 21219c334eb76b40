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
//! - [`sla`]: SLA clocks at work (timers, alarms, escalation, time budgets).
//! - [`timers`]: timers as NATS message schedules.
//! - [`policies`]: tenants' SLA policies.
//! - [`queue`]: the PostgreSQL indexes (the queue, who last handled a customer).

pub mod agents;
pub mod assigner;
pub mod auto_answer;
pub mod consumers;
pub mod customers;
pub mod grpc;
pub mod policies;
pub mod queue;
pub mod sla;
pub mod tickets;
pub mod timers;
pub mod watch_queue;

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

/// The routing service: gRPC, and the consumers that assign, time and escalate.
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
            consumer(
                ctx,
                settings,
                "routing: assignment",
                |log, assigner, stop| async move { consumers::tickets(log, assigner, stop).await },
            )
        })
        .task(move |ctx| {
            consumer(
                ctx,
                settings,
                "routing: agent events",
                |log, assigner, stop| async move { consumers::agents(log, assigner, stop).await },
            )
        })
        .task(move |ctx| {
            sla_task(
                ctx,
                settings,
                "routing: SLA clocks",
                |log, sla, _, stop| async move { consumers::sla(log, sla, stop).await },
            )
        })
        .task(move |ctx| {
            sla_task(
                ctx,
                settings,
                "routing: SLA policies",
                |log, sla, _, stop| async move { consumers::policies(log, sla, stop).await },
            )
        })
        .task(move |ctx| {
            sla_task(
                ctx,
                settings,
                "routing: fired timers",
                |_, sla, timers, stop| async move {
                    timers::consume(&timers, stop, |ticket, timer| {
                        let sla = sla.clone();
                        async move { sla.fired(ticket, timer).await }
                    })
                    .await
                },
            )
        })
}

/// A consumer task with an assigner, restarted on error and drained on shutdown.
fn consumer<F, Fut>(
    ctx: &frontline_runtime::Context,
    settings: Settings,
    name: &'static str,
    run: F,
) -> Result<Task, frontline_runtime::StartError>
where
    F: Fn(
            frontline_eventlog::EventLog,
            assigner::Assigner,
            tokio_util::sync::CancellationToken,
        ) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = Result<(), frontline_runtime::ApiError>> + Send + 'static,
{
    let assigner = assigner::Assigner::new(ctx.log.clone(), ctx.db()?.clone(), settings);
    let log = ctx.log.clone();
    let run = std::sync::Arc::new(run);
    Ok(Task::new(name, TaskKind::PROJECTION, move |stop| {
        let (log, assigner, run) = (log.clone(), assigner.clone(), run.clone());
        async move {
            run(log, assigner, stop)
                .await
                .map_err(|e| e.to_string().into())
        }
    }))
}

/// A consumer task with the SLA side (its timers stream opened first).
fn sla_task<F, Fut>(
    ctx: &frontline_runtime::Context,
    settings: Settings,
    name: &'static str,
    run: F,
) -> Result<Task, frontline_runtime::StartError>
where
    F: Fn(
            frontline_eventlog::EventLog,
            sla::Sla,
            timers::Timers,
            tokio_util::sync::CancellationToken,
        ) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = Result<(), frontline_runtime::ApiError>> + Send + 'static,
{
    let (log, db, options) = (ctx.log.clone(), ctx.db()?.clone(), ctx.options);
    let run = std::sync::Arc::new(run);
    Ok(Task::new(name, TaskKind::PROJECTION, move |stop| {
        let (log, db, run) = (log.clone(), db.clone(), run.clone());
        async move {
            let timers = timers::Timers::open(&log)
                .await
                .map_err(|e| e.to_string())?;
            let assigner = assigner::Assigner::new(log.clone(), db.clone(), settings);
            let sla = sla::Sla::new(log.clone(), db, timers.clone(), assigner, options);
            run(log, sla, timers, stop)
                .await
                .map_err(|e| e.to_string().into())
        }
    }))
}
