//! Intake: accepts contacts from every channel, recognises the customer, opens a
//! ticket or continues one, and is idempotent on the caller's key.
//!
//! - [`grpc`]: `frontline.v1.IntakeService` — requests in, statuses out.
//! - [`submit`]: the submit flow (ticket first, then the customer record).
//! - [`customers`]: reading customers and their open tickets.

pub mod customers;
pub mod grpc;
pub mod submit;

use frontline_eventlog::{CommandOptions, EventLog};
use frontline_proto::v1::intake_service_server::IntakeServiceServer;
use frontline_runtime::auth::Authenticator;
use tonic::service::Routes;

/// The full gRPC service name, for health checks.
pub const SERVICE_NAME: &str = "frontline.v1.IntakeService";

/// The intake service, behind authentication, ready to serve.
pub fn routes(log: EventLog, auth: Authenticator, options: CommandOptions) -> Routes {
    let service = IntakeServiceServer::new(grpc::Intake::new(log, options));
    Routes::new(tonic::service::interceptor::InterceptedService::new(
        service, auth,
    ))
}
