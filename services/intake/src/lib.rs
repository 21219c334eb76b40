//! Intake: accepts contacts from every channel, recognises the customer, opens a
//! ticket or continues one, and is idempotent on the caller's key.
//!
//! - [`grpc`]: `frontline.v1.IntakeService` — requests in, answers out.
//! - [`submit`]: the submit flow (resolve the customer, decide, one atomic batch).
//! - [`customers`]: the identity index, linked records, and what a caller sees.
//! - [`open_tickets`]: the `customer_tickets` read model and its projection.
//! - [`self_service`]: a customer saying a self-service article solved it.
//! - [`personal_data`]: forgetting a customer (and finishing every forget from its
//!   event) and exporting what is held about them.

pub mod customers;
pub mod grpc;
pub mod open_tickets;
pub mod personal_data;
pub mod self_service;
pub mod submit;

use std::sync::Arc;

use frontline_proto::v1::intake_service_server::IntakeServiceServer;
use frontline_runtime::{ServiceBuilder, Task, TaskKind};
use sqlx::migrate::Migrator;
use tonic::service::{Routes, interceptor::InterceptedService};

/// The full gRPC service name, for health checks.
pub const SERVICE_NAME: &str = "frontline.v1.IntakeService";

/// Intake's read-model tables (migration versions 100–199).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The intake service: gRPC, its PostgreSQL read model, and the projection that
/// keeps it.
pub fn service() -> ServiceBuilder {
    ServiceBuilder::new("intake")
        .database(&[&frontline_projection::MIGRATOR, &MIGRATOR])
        .grpc(SERVICE_NAME, |ctx| {
            let intake = grpc::Intake::new(ctx.log.clone(), ctx.db()?.clone(), ctx.options);
            let service = IntakeServiceServer::new(intake).max_decoding_message_size(ctx.limit());
            Ok(Routes::new(InterceptedService::new(
                service,
                ctx.auth.clone(),
            )))
        })
        .task(|ctx| {
            let (log, db) = (ctx.log.clone(), ctx.db()?.clone());
            let projection = Arc::new(open_tickets::CustomerTickets::default());
            Ok(Task::new(
                "customer-tickets projection",
                TaskKind::PROJECTION,
                move |stop| {
                    let (log, db, projection) = (log.clone(), db.clone(), projection.clone());
                    async move {
                        frontline_projection::run(log, db, projection, stop)
                            .await
                            .map_err(Into::into)
                    }
                },
            ))
        })
        .task(|ctx| {
            let (log, db, options) = (ctx.log.clone(), ctx.db()?.clone(), ctx.options);
            Ok(Task::new(
                "forget finisher",
                TaskKind::PROJECTION,
                move |stop| {
                    let (log, db) = (log.clone(), db.clone());
                    async move {
                        personal_data::finish_forgets(log, db, options, stop)
                            .await
                            .map_err(|e| e.to_string().into())
                    }
                },
            ))
        })
}
