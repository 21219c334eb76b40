//! Helpers shared by the event log's integration tests: a real `nats-server` per test,
//! an opened [`EventLog`], ready-made ticket events and raw envelopes.
#![allow(dead_code, clippy::unwrap_used)]

use std::{future::Future, time::Duration};

use async_nats::{HeaderMap, jetstream};
use bytes::Bytes;
use frontline_domain::{
    Actor, Channel, Opening, Priority, Role, Ticket, TicketEvent, TicketView, UnixMillis,
};
use frontline_eventlog::{
    CONTENT_TYPE, ConsumerConfig, EventCodec, EventLog, EventMeta, HEADER_EVENT_TYPE, Loaded,
    LogConfig, LoggedEvent,
};
use frontline_proto::{convert, v1};
use frontline_testkit::NatsServer;
use prost::Message as _;
use uuid::Uuid;

/// A time every test event is decided at (plus a small offset).
pub const T0: UnixMillis = 1_700_000_000_000;

/// The traceparent recorded on test events.
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A running server with one connected event log on it.
pub struct Env {
    /// The server; dropping it kills the process.
    pub server: NatsServer,
    /// The connection the log uses.
    pub client: async_nats::Client,
    /// The log.
    pub log: EventLog,
}

/// The log configuration every test uses: defaults with a 2 s timeout.
pub fn config() -> LogConfig {
    LogConfig {
        timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Starts a fresh `nats-server` (off the async workers).
pub async fn start_server() -> NatsServer {
    tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap()
}

/// A new connection and a log opened on it with [`config`].
pub async fn open_log(url: &str) -> (async_nats::Client, EventLog) {
    open_log_with(url, config()).await
}

/// A new connection and a log opened on it with `config`.
pub async fn open_log_with(url: &str, config: LogConfig) -> (async_nats::Client, EventLog) {
    let client = async_nats::connect(url).await.unwrap();
    let log = EventLog::open(client.clone(), config).await.unwrap();
    (client, log)
}

/// Starts a server and opens a log on it.
pub async fn start() -> Env {
    start_with(config()).await
}

/// Starts a server and opens a log with `config` on it.
pub async fn start_with(config: LogConfig) -> Env {
    let server = start_server().await;
    let (client, log) = open_log_with(&server.url(), config).await;
    Env {
        server,
        client,
        log,
    }
}

/// Fails the test instead of hanging when `fut` takes longer than 20 s.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within 20 s"),
    }
}

/// Polls `check` every 20 ms until it returns true (or fails the test after 10 s).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A consumer configuration for tests: the defaults, but with short redelivery
/// delays and ack wait, so nothing waits for seconds.
pub fn consumer(durable: &str, filter: &str) -> ConsumerConfig {
    ConsumerConfig {
        backoff: vec![Duration::from_millis(50)],
        ack_wait: Duration::from_secs(2),
        ..ConsumerConfig::new(durable, filter)
    }
}

/// An agent.
pub fn agent() -> Actor {
    Actor::new("ana", Role::Agent)
}

/// Request context for `actor`.
pub fn meta_for(actor: Actor) -> EventMeta {
    EventMeta {
        actor,
        correlation_id: "corr-1".to_string(),
        causation_id: "req-1".to_string(),
        traceparent: Some(TRACEPARENT.to_string()),
    }
}

/// Request context of the agent.
pub fn meta() -> EventMeta {
    meta_for(agent())
}

/// The opening of a ticket for `customer_id`.
pub fn opening(customer_id: Uuid, key: &str) -> Opening {
    Opening {
        tenant: frontline_domain::TenantId::parse("tenant", "acme").unwrap(),
        channel: Channel::Email,
        customer_id,
        subject: "Router broken".to_string(),
        body: "It blinks red.".to_string(),
        product_area: "networking".to_string(),
        priority: Priority::High,
        idempotency_key: key.to_string(),
        follow_up_of: None,
    }
}

/// A `TicketEvent::Opened`.
pub fn opened(customer_id: Uuid) -> TicketEvent {
    TicketEvent::Opened(opening(customer_id, "open-key"))
}

/// An internal note number `n`.
pub fn note(n: u64) -> TicketEvent {
    TicketEvent::NoteAdded {
        body: format!("note {n}"),
        idempotency_key: Some(format!("note-{n}")),
    }
}

/// Appends an opening and `notes` notes to ticket `id`; returns the state after each
/// event (index 0 is version 1).
pub async fn ticket_with_notes(log: &EventLog, id: &Uuid, notes: u64) -> Vec<Loaded<Ticket>> {
    let mut states = Vec::new();
    let mut loaded = log
        .append(
            id,
            &Loaded::<Ticket>::default(),
            opened(Uuid::new_v4()),
            &meta(),
            T0,
        )
        .await
        .unwrap();
    states.push(loaded.clone());
    for n in 1..=notes {
        loaded = log
            .append(id, &loaded, note(n), &meta(), T0 + n as i64)
            .await
            .unwrap();
        states.push(loaded.clone());
    }
    states
}

/// The view of logged ticket events (what `GetTicket` shows).
pub fn view_of(events: Vec<LoggedEvent<TicketEvent>>) -> TicketView {
    TicketView::replay(events.into_iter().map(LoggedEvent::into_recorded))
}

/// The view of ticket `id` as the log has it now.
pub async fn view(log: &EventLog, id: &Uuid) -> TicketView {
    view_of(log.read::<Ticket>(id, None).await.unwrap())
}

/// An envelope as this code's writer builds it, for event `version` of aggregate
/// `kind`/`id`, with any `event_type` and payload (e.g. a type only a newer writer
/// knows).
pub fn envelope(
    kind: &str,
    id: &Uuid,
    version: u64,
    event_type: &str,
    payload: Vec<u8>,
) -> v1::EventEnvelope {
    v1::EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        aggregate_type: kind.to_string(),
        aggregate_id: id.to_string(),
        aggregate_version: version,
        event_type: event_type.to_string(),
        occurred_at: Some(convert::timestamp(T0 + version as i64)),
        actor: Some(v1::Actor {
            id: "ana".to_string(),
            role: v1::Role::Agent.into(),
        }),
        correlation_id: "corr-raw".to_string(),
        causation_id: "req-raw".to_string(),
        schema_version: 1,
        payload,
        sealed_for: String::new(),
    }
}

/// The envelope of a known event.
pub fn known_envelope<E: EventCodec>(
    kind: &str,
    id: &Uuid,
    version: u64,
    event: &E,
) -> v1::EventEnvelope {
    envelope(
        kind,
        id,
        version,
        &event.event_type(),
        event.encode_payload(&frontline_privacy::Fields::clear()),
    )
}

/// Publishes `envelope` on `subject` straight through JetStream, with the headers
/// a writer sets (`Nats-Expected-Last-Subject-Sequence` = `expected`); returns the
/// stream sequence and the stream it landed in.
pub async fn publish_raw(
    client: &async_nats::Client,
    subject: &str,
    expected: u64,
    envelope: &v1::EventEnvelope,
) -> (u64, String) {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        expected.to_string().as_str(),
    );
    headers.insert(HEADER_EVENT_TYPE, envelope.event_type.as_str());
    headers.insert("Content-Type", CONTENT_TYPE);
    let ack = jetstream::new(client.clone())
        .publish_with_headers(
            subject.to_string(),
            headers,
            Bytes::from(envelope.encode_to_vec()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    (ack.sequence, ack.stream)
}
