use std::time::Duration;

/// Where and how the event log lives.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// JetStream stream name holding every event.
    pub stream: String,
    /// Replicas for the stream and the snapshot bucket (1 locally, 3 in production).
    pub replicas: usize,
    /// How long to wait for a publish ack or a read before calling the log unavailable.
    pub timeout: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            stream: "FRONTLINE".to_string(),
            replicas: 1,
            timeout: Duration::from_secs(5),
        }
    }
}

impl LogConfig {
    /// The KV bucket holding aggregate snapshots.
    pub fn snapshot_bucket(&self) -> String {
        format!("{}_SNAPSHOTS", self.stream)
    }

    /// The stream holding parked (undecodable) events.
    pub fn parked_stream(&self) -> String {
        format!("{}_PARKED", self.stream)
    }
}
