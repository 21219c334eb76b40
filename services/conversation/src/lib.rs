//! Conversation: owns the ticket lifecycle (replies, internal notes, solve, reopen)
//! and serves a ticket's state and history rebuilt from its events, now or at any
//! past version.
//!
//! - [`grpc`]: `frontline.v1.ConversationService` — requests in, statuses out.
//! - [`tickets`]: reading tickets (current, as of a version, history).

pub mod grpc;
pub mod tickets;

use frontline_eventlog::{CommandOptions, EventLog};
use frontline_proto::v1::conversation_service_server::ConversationServiceServer;
use frontline_runtime::auth::Authenticator;
use tonic::service::Routes;

/// The full gRPC service name, for health checks.
pub const SERVICE_NAME: &str = "frontline.v1.ConversationService";

/// The conversation service, behind authentication, ready to serve.
pub fn routes(log: EventLog, auth: Authenticator, options: CommandOptions) -> Routes {
    let service = ConversationServiceServer::new(grpc::Conversation::new(log, options));
    Routes::new(tonic::service::interceptor::InterceptedService::new(
        service, auth,
    ))
}
