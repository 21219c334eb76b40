//! Conversation: owns the ticket lifecycle (replies, internal notes, solve, reopen)
//! and serves a ticket's state and history rebuilt from its events, now or at any
//! past version.
//!
//! - [`grpc`]: `frontline.v1.ConversationService` — requests in, answers out.
//! - [`tickets`]: reading tickets (views built on read, now or as of a version or a
//!   moment; history).
//! - [`watch`]: a ticket's events streamed live (`WatchTicket`).
//! - [`merge`]: merging a duplicate into another ticket, and undoing it.
//! - [`macros`]: the tenant's canned answers, filled from what the customer told us.
//! - [`articles`]: the tenant's self-service articles (published, retired, read).

pub mod articles;
pub mod grpc;
pub mod macros;
pub mod merge;
pub mod tickets;
pub mod watch;

use frontline_proto::v1::conversation_service_server::ConversationServiceServer;
use frontline_runtime::ServiceBuilder;
use tonic::service::{Routes, interceptor::InterceptedService};

/// The full gRPC service name, for health checks.
pub const SERVICE_NAME: &str = "frontline.v1.ConversationService";

/// The conversation service: gRPC on the event log, nothing else.
pub fn service() -> ServiceBuilder {
    ServiceBuilder::new("conversation").grpc(SERVICE_NAME, |ctx| {
        let service =
            ConversationServiceServer::new(grpc::Conversation::new(ctx.log.clone(), ctx.options))
                .max_decoding_message_size(ctx.limit());
        Ok(Routes::new(InterceptedService::new(
            service,
            ctx.auth.clone(),
        )))
    })
}
