//! What every Frontline service shares, in one place each:
//!
//! - [`config`]: command-line flags and environment variables (clap).
//! - [`telemetry`]: structured logs and Prometheus metrics.
//! - [`auth`]: bearer JWTs → [`frontline_domain::Actor`].
//! - [`status`]: domain and log errors → gRPC status codes, exactly one code each.
//! - [`context`]: per-request metadata (correlation, causation, traceparent).
//! - [`server`]: gRPC serving with health, reflection and graceful drain.

pub mod auth;
pub mod config;
pub mod context;
pub mod server;
pub mod status;
pub mod telemetry;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_millis() -> frontline_domain::UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
