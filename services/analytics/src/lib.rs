//! Analytics: the event log projected into PostgreSQL read models, exactly once,
//! and the questions asked of them — ticket search, support metrics, who costs how
//! much — for now or as of any past moment — and which self-service articles
//! answer a customer's question, and how often they spared a ticket.
//!
//! - [`grpc`]: `frontline.v1.AnalyticsService` — requests in, answers out.
//! - [`projection`]: the consumer that keeps the read models (one, in stream order).
//! - [`generations`]: the live read models and one rebuilt beside them; the switch.
//! - [`events`]: the events it reads (tickets, customers, SLA policies, articles,
//!   self-service answers).
//! - [`batch`]: a batch of events applied in a handful of statements.
//! - [`rows`]: the rows and how one event changes them (pure).
//! - [`store`]: writing rows as revisions (each valid until the next).
//! - [`snapshot`]: which revision a question reads (live, as of, at a position).
//! - [`search`]: `ListTickets` — filters, sort, stable keyset pages.
//! - [`figures`]: `GetMetrics` — the support metrics.
//! - [`thirds`]: `GetCustomerThirds` — customers by NPS category and their cost.
//! - [`whatif`]: `SimulateSlaPolicy` — past tickets' SLA under a proposed policy.
//! - [`articles`]: `SuggestAnswers` (full-text search of the articles) and
//!   `ListArticles` (their deflection counts).
//! - [`filters`]: request fields every call shares.
//! - [`status`]: the projection's standing and lag.

pub mod articles;
pub mod batch;
pub mod events;
pub mod figures;
pub mod filters;
pub mod generations;
pub mod grpc;
pub mod projection;
pub mod rows;
pub mod search;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod thirds;
pub mod whatif;

use frontline_proto::v1::analytics_service_server::AnalyticsServiceServer;
use frontline_runtime::{ServiceBuilder, Task, TaskKind};
use sqlx::migrate::Migrator;
use tonic::service::{Routes, interceptor::InterceptedService};

/// The full gRPC service name, for health checks.
pub const SERVICE_NAME: &str = "frontline.v1.AnalyticsService";

/// Analytics' read-model tables (migration versions 400–499).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The analytics service: gRPC, the projection that keeps its read models, and
/// the projection's lag gauge.
pub fn service() -> ServiceBuilder {
    ServiceBuilder::new("analytics")
        .database(&[&frontline_projection::MIGRATOR, &MIGRATOR])
        .grpc(SERVICE_NAME, |ctx| {
            let analytics = grpc::Analytics::new(ctx.log.clone(), ctx.db()?.clone());
            let service =
                AnalyticsServiceServer::new(analytics).max_decoding_message_size(ctx.limit());
            Ok(Routes::new(InterceptedService::new(
                service,
                ctx.auth.clone(),
            )))
        })
        .task(|ctx| {
            let (log, db) = (ctx.log.clone(), ctx.db()?.clone());
            Ok(Task::new(
                "analytics projections",
                TaskKind::PROJECTION,
                move |stop| {
                    let (log, db) = (log.clone(), db.clone());
                    async move { generations::run(log, db, stop).await.map_err(Into::into) }
                },
            ))
        })
        .task(|ctx| {
            let (log, db) = (ctx.log.clone(), ctx.db()?.clone());
            Ok(Task::new(
                "analytics lag gauge",
                TaskKind::PROJECTION,
                move |stop| {
                    let (log, db) = (log.clone(), db.clone());
                    async move {
                        status::export_lag(log, db, stop)
                            .await
                            .map_err(|e| e.to_string().into())
                    }
                },
            ))
        })
}
