//! Frontline's event log on NATS JetStream.
//!
//! One stream holds every event and owns `frontline.>`; one subject per aggregate
//! (`frontline.<kind>.<id>`); one message per event, a protobuf
//! [`EventEnvelope`](frontline_proto::v1::EventEnvelope) whose payload encoding
//! belongs to the contract ([`frontline_proto::events`]).
//!
//! - [`EventLog::append`] publishes with `Nats-Expected-Last-Subject-Sequence`
//!   (optimistic concurrency) and `Nats-Msg-Id` (retried publishes are stored once).
//! - [`EventLog::load`] rebuilds an aggregate from a snapshot plus the tail of its
//!   subject, so its cost follows the aggregate's history, not the stream's size.
//!   Events of types this code does not know count in the version and change
//!   nothing else.
//! - [`EventLog::commit`] stores a [`Batch`] of events for several aggregates
//!   atomically, each with its own expected sequence.
//! - [`execute`] is the command loop every service uses: load → decide → append,
//!   retried on a lost race.
//! - [`EventLog::subscribe`] is the consumer side: durable pull consumers with
//!   explicit ack, bounded redelivery with backoff, and a parking lot.
//! - [`trace`]: appends and loads are traced; an event carries its appender's
//!   trace context, and [`Delivery::span`] continues it in the consumer.

mod batch;
mod command;
mod config;
mod consumer;
mod error;
mod group_commit;
mod personal;
mod snapshot;
mod store;
pub mod trace;

pub use batch::{Batch, Committed, MAX_BATCH_EVENTS, Staged};
pub use command::{CommandError, CommandOptions, Outcome, execute, execute_from, retry_pause};
pub use config::{EVENT_SUBJECTS, LogConfig, PARKED_PREFIX};
pub use consumer::{ConsumerConfig, Delivery, Subscription};
pub use error::LogError;
pub use frontline_proto::events::{CONTENT_TYPE, EventCodec, HEADER_EVENT_TYPE, decode_envelope};
pub use snapshot::Snapshots;
pub use store::{EventLog, EventMeta, LOG_FORMAT, Loaded, LoggedEvent, subject};
