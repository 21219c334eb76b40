//! The consumer side of the log: durable pull consumers with explicit ack.
//!
//! A handler acks what it applied, asks for redelivery of what failed, and parks
//! what it can never apply. Parked messages go, unchanged and with the reason in
//! headers, to `frontline.parked.<consumer>` (stream `<STREAM>_PARKED`); the
//! consumer goes on.

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{
        self, AckKind,
        consumer::{AckPolicy, pull},
    },
};
use frontline_proto::v1;
use futures::StreamExt;

use crate::{EventLog, LogError, codec::decode_envelope};

/// How long the server waits for an ack before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// A durable subscription to the log.
pub struct Subscription {
    durable: String,
    log: EventLog,
    messages: pull::Stream,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

/// One delivered event. Settle it with [`ack`](Self::ack),
/// [`retry`](Self::retry) or [`park`](Self::park); an unsettled delivery is
/// redelivered after the ack wait.
pub struct Delivery {
    /// The event's envelope.
    pub envelope: v1::EventEnvelope,
    /// Its stream sequence (store it with the read model to make handlers idempotent).
    pub sequence: u64,
    /// Its subject.
    pub subject: String,
    /// How often it has been delivered, this time included.
    pub delivered: i64,
    message: jetstream::Message,
    log: EventLog,
    durable: String,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.subject)
            .field("sequence", &self.sequence)
            .field("event_type", &self.envelope.event_type)
            .field("delivered", &self.delivered)
            .finish()
    }
}

impl EventLog {
    /// Opens (or resumes) durable consumer `durable` on events matching `filter`
    /// (e.g. `frontline.ticket.>`), starting at the beginning of the log.
    pub async fn subscribe(&self, durable: &str, filter: &str) -> Result<Subscription, LogError> {
        let consumer = self
            .stream
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.to_string()),
                    filter_subject: filter.to_string(),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| LogError::Setup(format!("consumer {durable}: {e}")))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| LogError::unavailable("consumer stream", e))?;
        Ok(Subscription {
            durable: durable.to_string(),
            log: self.clone(),
            messages,
        })
    }
}

impl Subscription {
    /// The next decodable event. Undecodable messages are parked on the way (and
    /// counted in `frontline_events_parked_total`); they never stop the consumer.
    /// `None` when the subscription ended.
    pub async fn next(&mut self) -> Option<Result<Delivery, LogError>> {
        loop {
            let message = match self.messages.next().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(LogError::unavailable("consumer", e))),
            };
            let (sequence, delivered) = match message.info() {
                Ok(info) => (info.stream_sequence, info.delivered),
                Err(e) => return Some(Err(LogError::unavailable("delivery info", e))),
            };
            let subject = message.subject.to_string();
            match decode_envelope(&message.payload) {
                Ok(envelope) => {
                    return Some(Ok(Delivery {
                        envelope,
                        sequence,
                        subject,
                        delivered,
                        message,
                        log: self.log.clone(),
                        durable: self.durable.clone(),
                    }));
                }
                Err(reason) => {
                    if let Err(e) =
                        park(&self.log, &self.durable, &message, sequence, &reason).await
                    {
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

impl Delivery {
    /// Done: never deliver again.
    pub async fn ack(self) -> Result<(), LogError> {
        self.message
            .ack()
            .await
            .map_err(|e| LogError::unavailable("ack", e))
    }

    /// Failed for now: deliver again after `delay`.
    pub async fn retry(self, delay: Duration) -> Result<(), LogError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| LogError::unavailable("nak", e))
    }

    /// Can never be applied: copy it to the parking lot with `reason`, then settle it.
    pub async fn park(self, reason: &str) -> Result<(), LogError> {
        park(
            &self.log,
            &self.durable,
            &self.message,
            self.sequence,
            reason,
        )
        .await
    }
}

async fn park(
    log: &EventLog,
    durable: &str,
    message: &jetstream::Message,
    sequence: u64,
    reason: &str,
) -> Result<(), LogError> {
    // Keep the event's own headers (type, content type, trace) but none of the
    // publish controls: an expected-sequence header would be checked against the
    // parking subject and fail.
    let mut headers = HeaderMap::new();
    if let Some(original) = &message.headers {
        for (name, values) in original.iter() {
            if name.to_string().to_ascii_lowercase().starts_with("nats-") {
                continue;
            }
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    headers.insert("Frontline-Parked-Reason", reason);
    headers.insert("Frontline-Original-Subject", message.subject.as_str());
    headers.insert("Frontline-Original-Sequence", sequence.to_string().as_str());
    headers.insert("Frontline-Consumer", durable);
    // Parking is idempotent too: a redelivered poison message is stored once.
    headers.insert(
        "Nats-Msg-Id",
        format!("parked-{}-{durable}-{sequence}", log.stream_name()).as_str(),
    );
    log.js
        .publish_with_headers(
            format!("frontline.parked.{durable}"),
            headers,
            message.payload.clone(),
        )
        .await
        .map_err(|e| LogError::unavailable("park", e))?
        .await
        .map_err(|e| LogError::unavailable("park ack", e))?;
    message
        .ack_with(AckKind::Term)
        .await
        .map_err(|e| LogError::unavailable("term", e))?;
    metrics::counter!("frontline_events_parked_total", "consumer" => durable.to_string())
        .increment(1);
    tracing::error!(
        consumer = durable,
        subject = %message.subject,
        sequence,
        reason,
        "parked an event that cannot be applied"
    );
    Ok(())
}
