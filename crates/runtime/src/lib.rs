//! What every Frontline service shares, in one place each:
//!
//! - [`service`]: the service builder — gRPC routes, background tasks, an optional
//!   PostgreSQL pool with migrations, health, one drain on SIGTERM.
//! - [`tasks`]: background tasks with a declared kind (on error, on shutdown).
//! - [`call`]: the one path through every call (authenticate, authorise, validate).
//! - [`error`]: the one API error type → exactly one gRPC status code each.
//! - [`config`]: command-line flags and environment variables (clap).
//! - [`telemetry`]: structured logs, OpenTelemetry traces and Prometheus metrics.
//! - `call_span`: one span per gRPC call (a tower layer on every server).
//! - [`auth`]: bearer JWTs → [`frontline_domain::Actor`].
//! - [`in_flight`]: the per-caller cap on calls in flight (`RESOURCE_EXHAUSTED`).
//! - [`context`]: per-request metadata (correlation, causation, traceparent).
//! - [`server`]: gRPC serving with health, reflection and graceful drain.
//! - [`tls`]: gRPC server TLS and mutual TLS, and the checks of every TLS file.

pub mod auth;
pub mod call;
mod call_span;
pub mod config;
pub mod context;
pub mod error;
pub mod in_flight;
pub mod outbox;
pub mod server;
pub mod service;
pub mod tasks;
pub mod telemetry;
pub mod tls;

pub use call::{Call, TENANT_HEADER, handle};
pub use error::ApiError;
pub use service::{Context, ServiceBuilder, StartError, Startup};
pub use tasks::{OnError, OnShutdown, Task, TaskError, TaskKind};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_millis() -> frontline_domain::UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
