//! Frontline's event log on NATS JetStream.
//!
//! One stream holds every event; one subject per aggregate
//! (`frontline.<kind>.<id>`); one message per event, a protobuf
//! [`EventEnvelope`](frontline_proto::v1::EventEnvelope).
//!
//! - [`EventLog::append`] publishes with `Nats-Expected-Last-Subject-Sequence`
//!   (optimistic concurrency) and `Nats-Msg-Id` (retried publishes are stored once).
//! - [`EventLog::load`] rebuilds an aggregate from a snapshot plus the tail of its
//!   subject, so its cost follows the aggregate's history, not the stream's size.
//! - [`execute`] is the command loop every service uses: load → decide → append,
//!   retried on a lost race.
//! - [`EventLog::subscribe`] is the consumer side: durable pull consumers with
//!   explicit ack, redelivery and a parking lot for undecodable events.

mod codec;
mod command;
mod config;
mod consumer;
mod error;
mod snapshot;
mod store;

pub use codec::{CONTENT_TYPE, EventCodec, HEADER_EVENT_TYPE, decode_envelope};
pub use command::{CommandError, CommandOptions, Outcome, execute};
pub use config::LogConfig;
pub use consumer::{Delivery, Subscription};
pub use error::LogError;
pub use snapshot::Snapshots;
pub use store::{EventLog, EventMeta, Loaded, LoggedEvent, subject};
