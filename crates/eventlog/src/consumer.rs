//! The consumer side of the log: durable pull consumers with explicit ack, typed
//! deliveries, bounded redelivery and a parking lot.
//!
//! A handler acks what it applied, asks for redelivery of what failed
//! ([`Delivery::retry`], with the configured backoff), and parks what it can never
//! apply. A delivery that fails its last attempt is parked instead of redelivered.
//! Parked messages go, unchanged and with the reason in headers, to
//! `frontline-parked.<consumer>` (stream `<STREAM>_PARKED`); the consumer goes on.

use std::{marker::PhantomData, sync::Arc, time::Duration};

use async_nats::{
    HeaderMap,
    jetstream::{
        self, AckKind,
        consumer::{AckPolicy, DeliverPolicy, pull},
        stream::ConsumerErrorKind,
    },
};
use frontline_proto::{
    events::{EventCodec, decode_envelope},
    v1,
};
use futures::{FutureExt, StreamExt};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{EventLog, LogError, config::PARKED_PREFIX};

/// How a durable consumer reads the log.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Durable name: where the consumer resumes after a restart.
    pub durable: String,
    /// Subjects it reads, e.g. `frontline.ticket.>`. Changing it on an existing
    /// durable consumer applies the new filter (from where the consumer stands).
    pub filter: String,
    /// Deliveries of one message before it is parked (0 or less: unlimited).
    pub max_deliver: i64,
    /// Redelivery delays after failed attempts (the last one repeats).
    pub backoff: Vec<Duration>,
    /// Deliveries awaiting an ack at once; the server holds back the rest.
    pub max_ack_pending: i64,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
}

impl ConsumerConfig {
    /// Defaults: 8 deliveries with backoff 1 s, 5 s, 30 s, 2 min; 1 000 unacked
    /// at once; 30 s ack wait.
    pub fn new(durable: impl Into<String>, filter: impl Into<String>) -> Self {
        ConsumerConfig {
            durable: durable.into(),
            filter: filter.into(),
            max_deliver: 8,
            backoff: [1, 5, 30, 120].map(Duration::from_secs).to_vec(),
            max_ack_pending: 1000,
            ack_wait: Duration::from_secs(30),
        }
    }

    fn delay_after(&self, delivered: i64) -> Duration {
        let index = usize::try_from(delivered.saturating_sub(1)).unwrap_or_default();
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// A durable subscription to the log, delivering events of type `E`.
pub struct Subscription<E> {
    config: Arc<ConsumerConfig>,
    log: EventLog,
    messages: pull::Stream,
    _events: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("durable", &self.config.durable)
            .finish_non_exhaustive()
    }
}

/// One delivered event. Settle it with [`ack`](Self::ack), [`retry`](Self::retry)
/// or [`park`](Self::park); an unsettled delivery is redelivered after the ack wait.
pub struct Delivery<E> {
    /// The event; `None` for a type this reader does not know (a newer writer's):
    /// skip it for your view and ack it.
    pub event: Option<E>,
    /// The event's envelope (ids, version, time, actor; the payload as stored).
    pub envelope: v1::EventEnvelope,
    /// Its stream sequence (store it with the read model to make handlers idempotent).
    pub sequence: u64,
    /// Its subject.
    pub subject: String,
    /// How often it has been delivered, this time included.
    pub delivered: i64,
    span: tracing::Span,
    message: jetstream::Message,
    log: EventLog,
    config: Arc<ConsumerConfig>,
}

impl<E> std::fmt::Debug for Delivery<E> {
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
    /// Opens (or resumes) a durable consumer, starting at the beginning of the log.
    /// An existing consumer of that name takes the new settings (filter included).
    pub async fn subscribe<E: EventCodec>(
        &self,
        config: ConsumerConfig,
    ) -> Result<Subscription<E>, LogError> {
        self.open_consumer(config, DeliverPolicy::All).await
    }

    /// Replaces durable consumer `config.durable` with one whose delivery starts
    /// right after stream sequence `after`, forgetting the old one's acks. For a
    /// reader that keeps its own position (a projection's checkpoint, written with
    /// its rows): what it applied is the truth, not what the server saw acked.
    pub async fn subscribe_from<E: EventCodec>(
        &self,
        config: ConsumerConfig,
        after: u64,
    ) -> Result<Subscription<E>, LogError> {
        match self.stream.delete_consumer(&config.durable).await {
            Ok(_) => {}
            Err(e)
                if matches!(e.kind(), ConsumerErrorKind::JetStream(je)
                    if je.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) => {}
            Err(e) => {
                return Err(LogError::Setup(format!(
                    "consumer {}: replacing: {e}",
                    config.durable
                )));
            }
        }
        let start = DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        };
        self.open_consumer(config, start).await
    }

    async fn open_consumer<E: EventCodec>(
        &self,
        config: ConsumerConfig,
        deliver_policy: DeliverPolicy,
    ) -> Result<Subscription<E>, LogError> {
        let consumer = self
            .stream
            .create_consumer(pull::Config {
                deliver_policy,
                durable_name: Some(config.durable.clone()),
                filter_subject: config.filter.clone(),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                // One delivery more than the handler gets: a last attempt that was
                // never settled (the handler crashed or hung) comes back once more
                // and is parked instead of silently dropped by the server.
                max_deliver: if config.max_deliver > 0 {
                    config.max_deliver + 1
                } else {
                    -1
                },
                max_ack_pending: config.max_ack_pending,
                ..Default::default()
            })
            .await
            .map_err(|e| LogError::Setup(format!("consumer {}: {e}", config.durable)))?;
        // Pulled in batches of up to max_ack_pending (at most 1 000): a consumer
        // that applies batches (projections) gets them whole.
        let messages = consumer
            .stream()
            .max_messages_per_batch(
                usize::try_from(config.max_ack_pending.clamp(1, 1_000)).unwrap_or(1_000),
            )
            .messages()
            .await
            .map_err(|e| LogError::unavailable("consumer stream", e))?;
        Ok(Subscription {
            config: Arc::new(config),
            log: self.clone(),
            messages,
            _events: PhantomData,
        })
    }
}

impl<E: EventCodec> Subscription<E> {
    /// The consumer's durable name.
    pub fn durable(&self) -> &str {
        &self.config.durable
    }

    /// The next event. Undecodable messages are parked on the way (and counted in
    /// `frontline_events_parked_total`); they never stop the consumer. `None` when
    /// the subscription ended.
    pub async fn next(&mut self) -> Option<Result<Delivery<E>, LogError>> {
        loop {
            let message = self.messages.next().await?;
            if let Some(delivery) = self.accept(message).await.transpose() {
                return Some(delivery);
            }
        }
    }

    /// The next events, up to `max`: waits for one, then takes what has already
    /// arrived. Empty only when the subscription ended.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery<E>>, LogError> {
        let mut batch = Vec::new();
        let Some(first) = self.next().await else {
            return Ok(batch);
        };
        batch.push(first?);
        // What has arrived, and what arrives while the scheduler goes round a few
        // times (the client hands messages over as it reads them off the socket).
        let mut idle = 0;
        while batch.len() < max && idle < 4 {
            let Some(Some(message)) = self.messages.next().now_or_never() else {
                idle += 1;
                tokio::task::yield_now().await;
                continue;
            };
            idle = 0;
            if let Some(delivery) = self.accept(message).await? {
                batch.push(delivery);
            }
        }
        Ok(batch)
    }

    /// Decodes a message; parks it (and answers `None`) when it is not an event.
    async fn accept(
        &self,
        message: Result<jetstream::Message, pull::MessagesError>,
    ) -> Result<Option<Delivery<E>>, LogError> {
        let message = message.map_err(|e| LogError::unavailable("consumer", e))?;
        let info = message
            .info()
            .map_err(|e| LogError::unavailable("delivery info", e))?;
        let (sequence, delivered, pending) = (info.stream_sequence, info.delivered, info.pending);
        metrics::gauge!("frontline_consumer_lag", "consumer" => self.config.durable.clone())
            .set(pending as f64);
        let subject = message.subject.to_string();
        if self.config.max_deliver > 0 && delivered > self.config.max_deliver {
            let reason = format!(
                "not settled within {} deliveries (the handler crashed or timed out)",
                self.config.max_deliver
            );
            park(&self.log, &self.config.durable, &message, sequence, &reason).await?;
            return Ok(None);
        }
        let envelope = match decode_envelope(&message.payload) {
            Ok(envelope) => envelope,
            Err(reason) => {
                park(&self.log, &self.config.durable, &message, sequence, &reason).await?;
                return Ok(None);
            }
        };
        // A key store that cannot be reached is a failure for now (the message is
        // delivered again); an event that cannot be opened is parked.
        let opened = self
            .log
            .open_envelope::<E>(envelope, &|reason| LogError::Corrupt {
                subject: subject.clone(),
                sequence,
                reason,
            })
            .await;
        match opened {
            Ok((event, envelope)) => Ok(Some(Delivery {
                span: delivery_span(
                    &self.log,
                    &self.config.durable,
                    &message,
                    &envelope,
                    sequence,
                    delivered,
                ),
                event,
                envelope,
                sequence,
                subject,
                delivered,
                message,
                log: self.log.clone(),
                config: self.config.clone(),
            })),
            Err(LogError::Corrupt { reason, .. }) => {
                park(&self.log, &self.config.durable, &message, sequence, &reason).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// The span of a consumer's handling of one event: `consume <consumer>`, a child
/// of the span that appended the event (its `traceparent` header), or a root when
/// the event carries no trace; none when spans are not exported. It lives as long
/// as the delivery, so it ends when the delivery is settled.
fn delivery_span(
    log: &EventLog,
    durable: &str,
    message: &jetstream::Message,
    envelope: &v1::EventEnvelope,
    sequence: u64,
    delivered: i64,
) -> tracing::Span {
    // No contextual parent: whatever task reads the consumer, the event's own
    // trace is the one this handling belongs to.
    let span = crate::trace::span(|| {
        tracing::info_span!(
            parent: None,
            "eventlog.consume",
            otel.name = %format_args!("consume {durable}"),
            otel.kind = "consumer",
            frontline.service = log.service(),
            consumer = durable,
            subject = %message.subject,
            sequence,
            event_type = %envelope.event_type,
            correlation_id = %envelope.correlation_id,
            delivered,
        )
    });
    if span.is_none() {
        return span;
    }
    if let Some(parent) = crate::trace::context_of_headers(message.headers.as_ref()) {
        // Fails only without an OpenTelemetry layer: nothing to continue then.
        let _ = span.set_parent(parent);
    }
    span
}

impl<E> Delivery<E> {
    /// The span of this event's handling, a child of the span that appended it
    /// (see [`crate::trace`]). Run the handling inside it
    /// (`handle(delivery).instrument(delivery.span().clone())`): what the handler
    /// appends then continues the same trace. It ends when the delivery is settled
    /// (acked, retried or parked) and dropped.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Done: never deliver again.
    pub async fn ack(self) -> Result<(), LogError> {
        self.message
            .ack()
            .await
            .map_err(|e| LogError::unavailable("ack", e))
    }

    /// Failed for now: deliver again after the configured backoff — or, when this
    /// was the last attempt, park it with `reason`.
    pub async fn retry(self, reason: &str) -> Result<(), LogError> {
        if self.config.max_deliver > 0 && self.delivered >= self.config.max_deliver {
            let reason = format!("gave up after {} deliveries: {reason}", self.delivered);
            return self.park(&reason).await;
        }
        let delay = self.config.delay_after(self.delivered);
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| LogError::unavailable("nak", e))
    }

    /// Can never be applied: copy it to the parking lot with `reason`, then settle it.
    pub async fn park(self, reason: &str) -> Result<(), LogError> {
        park(
            &self.log,
            &self.config.durable,
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
    // A header value must be one line of visible text; the reason may quote the
    // message's own (hostile) content.
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1024)
        .collect();
    let reason = reason.as_str();
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
            format!("{PARKED_PREFIX}.{durable}"),
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
