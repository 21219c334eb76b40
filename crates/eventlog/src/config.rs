use std::time::Duration;

use frontline_privacy::Kek;

/// The subjects the event stream owns: every aggregate kind, present and future.
pub const EVENT_SUBJECTS: &str = "frontline.>";
/// Prefix of parked-event subjects (`frontline-parked.<consumer>`); outside the
/// event namespace, so parking never writes into the log.
pub const PARKED_PREFIX: &str = "frontline-parked";
/// Where parked events lived before the event stream owned `frontline.>`; an
/// existing parking stream on it is moved on open.
pub(crate) const LEGACY_PARKED_SUBJECTS: &str = "frontline.parked.>";

/// Where and how the event log lives.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// JetStream stream name holding every event.
    pub stream: String,
    /// Replicas for the stream and the snapshot bucket (1 locally, 3 in production).
    pub replicas: usize,
    /// How long to wait for a publish ack or a read before calling the log unavailable.
    pub timeout: Duration,
    /// Write an aggregate's snapshot every this many events (and after a load that
    /// had to replay at least as many). At least 1.
    pub snapshot_every: u64,
    /// The key-encryption key wrapping customers' data keys. Services always have
    /// one (they refuse to start without); `None` seals nothing, for tests of the
    /// log itself.
    pub kek: Option<Kek>,
    /// The key-encryption key being rotated away from (opens what it wrapped;
    /// never wraps anything new).
    pub previous_kek: Option<Kek>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            stream: "FRONTLINE".to_string(),
            replicas: 1,
            timeout: Duration::from_secs(5),
            snapshot_every: 16,
            kek: None,
            previous_kek: None,
        }
    }
}

impl LogConfig {
    /// The KV bucket holding aggregate snapshots.
    pub fn snapshot_bucket(&self) -> String {
        format!("{}_SNAPSHOTS", self.stream)
    }

    /// The KV bucket holding customers' data keys, wrapped.
    pub fn key_bucket(&self) -> String {
        format!("{}_KEYS", self.stream)
    }

    /// The stream holding parked (undecodable or given-up) events.
    pub fn parked_stream(&self) -> String {
        format!("{}_PARKED", self.stream)
    }
}
