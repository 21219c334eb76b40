/// What can go wrong talking to the event log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The subject moved on since the state was loaded (wrong last sequence,
    /// JetStream error 10071, or 10164 on clustered servers).
    #[error("concurrent append on {subject}: expected last sequence {expected}")]
    Conflict {
        /// The aggregate's subject.
        subject: String,
        /// The last sequence the append expected.
        expected: u64,
    },
    /// A batch that can never be committed (too many events, or two for one
    /// aggregate): a fault of the caller's code, not of the log.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// NATS or the stream could not be reached in time. Safe to retry.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// A stored message is not a valid event, or an aggregate's events have a gap.
    #[error("corrupt event at {subject} sequence {sequence}: {reason}")]
    Corrupt {
        /// The subject.
        subject: String,
        /// The stream sequence.
        sequence: u64,
        /// What is wrong.
        reason: String,
    },
    /// Setting up the stream, bucket or a consumer failed (may pass: retry).
    #[error("event log setup: {0}")]
    Setup(String),
    /// The stream exists with settings that could lose events: refused for good,
    /// until an operator changes them.
    #[error("event log refused: {0}")]
    Refused(String),
}

impl LogError {
    pub(crate) fn unavailable(what: &str, err: impl std::fmt::Display) -> Self {
        LogError::Unavailable(format!("{what}: {err}"))
    }
}
