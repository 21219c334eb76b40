//! The event store: stream setup, append with optimistic concurrency, and loading
//! aggregates from snapshot + tail.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, Weak},
    time::Duration,
};

use async_nats::{
    HeaderMap,
    connection::State,
    jetstream::{
        self, ErrorCode, context::PublishErrorKind, message::StreamMessage,
        stream::DirectGetErrorKind,
    },
};
use bytes::Bytes;
use frontline_domain::{Actor, Aggregate, Recorded, UnixMillis};
use frontline_privacy::{Fields, KeyStore as _, PersonalKey};
use frontline_proto::{
    convert,
    events::{CONTENT_TYPE, EventCodec, HEADER_EVENT_TYPE, SCHEMA_VERSION, decode_envelope},
    v1,
};
use prost::Message as _;
use tokio::sync::Mutex;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    LogConfig, LogError, Snapshots,
    config::{EVENT_SUBJECTS, LEGACY_PARKED_SUBJECTS, PARKED_PREFIX},
    personal::PersonalData,
};

/// The format of the events on the log, kept in the stream's metadata
/// (`frontline_log_format`). 2: every aggregate belongs to a tenant and derived ids
/// are derived inside it. 3: personal fields are sealed per customer, identity ids
/// are keyed hashes. A stream holding events of an older format is refused.
pub const LOG_FORMAT: u32 = 3;
const FORMAT_KEY: &str = "frontline_log_format";

/// Publishes retried after a timeout (same `Nats-Msg-Id`, so stored at most once).
const PUBLISH_ATTEMPTS: u32 = 3;

/// The subject of an aggregate: `frontline.<kind>.<id>`.
pub fn subject<A: Aggregate>(id: &Uuid) -> String {
    format!("frontline.{}.{id}", A::KIND)
}

/// Request context recorded on every event.
#[derive(Clone, Debug)]
pub struct EventMeta {
    /// Who asked.
    pub actor: Actor,
    /// Id shared by everything one outside request caused.
    pub correlation_id: String,
    /// Id of what directly caused the event (the request id).
    pub causation_id: String,
    /// W3C `traceparent` of the request, carried as a message header.
    pub traceparent: Option<String>,
}

/// An aggregate's state with the stream sequence of its last event (0 if none).
#[derive(Clone, Debug, Default)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// Stream sequence of the aggregate's last event; what the next append expects.
    pub sequence: u64,
    /// Events read past the snapshot to build this state (0 when the snapshot was
    /// current or the state was just appended).
    pub replayed: u64,
}

/// One event read back from the log, with its envelope data.
#[derive(Clone, Debug)]
pub struct LoggedEvent<E> {
    /// Event id.
    pub event_id: String,
    /// Full payload type name.
    pub event_type: String,
    /// Position in the aggregate (1-based).
    pub version: u64,
    /// Stream sequence.
    pub sequence: u64,
    /// Who caused it.
    pub actor: Actor,
    /// When it was decided.
    pub at: UnixMillis,
    /// Correlation id.
    pub correlation_id: String,
    /// Causation id.
    pub causation_id: String,
    /// The event; `None` for a type this reader does not know (a newer writer's),
    /// which counts in the version and changes nothing else.
    pub event: Option<E>,
}

impl<E> LoggedEvent<E> {
    /// The event with who and when, unless its type is unknown to this reader.
    pub fn into_recorded(self) -> Option<Recorded<E>> {
        let (actor, at) = (self.actor, self.at);
        self.event.map(|event| Recorded { event, actor, at })
    }
}

/// Applies a logged event to `state`: a known one with its actor and time, an
/// unknown one only as a version step.
fn apply_logged<A: Aggregate>(state: &mut A, event: LoggedEvent<A::Event>) {
    match event.into_recorded() {
        Some(recorded) => state.apply(&recorded),
        None => state.skip_unknown(),
    }
}

/// The key an event's personal fields are sealed with, and the customer it is
/// sealed for (named in the envelope).
pub(crate) type Sealing<'a> = (&'a PersonalKey, Option<Uuid>);

/// One event ready to publish: its subject, headers and encoded envelope.
#[derive(Clone)]
pub(crate) struct Outgoing {
    /// The aggregate kind, for metrics.
    pub(crate) kind: &'static str,
    pub(crate) subject: String,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
    /// The subject's last sequence this event expects.
    pub(crate) expected: u64,
}

impl Outgoing {
    /// Encodes `event` as the next event of aggregate `id` after `loaded`.
    /// Personal fields are sealed with `key`, for customer `sealed_for`.
    pub(crate) fn new<A>(
        id: &Uuid,
        loaded: &Loaded<A>,
        event: &A::Event,
        meta: &EventMeta,
        at: UnixMillis,
        (key, sealed_for): Sealing<'_>,
    ) -> Outgoing
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        let event_id = Uuid::now_v7().to_string();
        let payload = event.encode_payload(&Fields::new(key, &event_id));
        let event_type = event.event_type();
        let envelope = v1::EventEnvelope {
            event_id: event_id.clone(),
            aggregate_type: A::KIND.to_string(),
            aggregate_id: id.to_string(),
            aggregate_version: loaded.state.version() + 1,
            event_type: event_type.clone(),
            occurred_at: Some(convert::timestamp(at)),
            actor: Some(v1::Actor {
                id: meta.actor.id.clone(),
                role: v1::Role::from(meta.actor.role).into(),
            }),
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            schema_version: SCHEMA_VERSION,
            payload,
            sealed_for: sealed_for.map(|o| o.to_string()).unwrap_or_default(),
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id.as_str());
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            loaded.sequence.to_string().as_str(),
        );
        headers.insert(HEADER_EVENT_TYPE, event_type.as_str());
        headers.insert("Content-Type", CONTENT_TYPE);
        // The span appending it (a consumer's span continues from here), else the
        // request's traceparent as recorded.
        crate::trace::inject(&mut headers, meta.traceparent.as_deref());
        Outgoing {
            kind: A::KIND,
            subject: subject::<A>(id),
            headers,
            payload: Bytes::from(envelope.encode_to_vec()),
            expected: loaded.sequence,
        }
    }
}

/// One lock per aggregate in this process: commands on one aggregate queue up
/// instead of racing each other through the log's concurrency check, and commands on
/// other aggregates never wait for them. Entries go away with their last user.
#[derive(Debug, Default)]
pub(crate) struct CommandLocks(std::sync::Mutex<HashMap<String, Weak<Mutex<()>>>>);

impl CommandLocks {
    pub(crate) fn for_subject(&self, subject: &str) -> Arc<Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = map.get(subject).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(Mutex::new(()));
        map.insert(subject.to_string(), Arc::downgrade(&lock));
        lock
    }
}

/// A handle on the event log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventLog {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) stream: jetstream::stream::Stream,
    pub(crate) config: LogConfig,
    snapshots: Snapshots,
    pub(crate) personal: PersonalData,
    locks: Arc<CommandLocks>,
    /// Where multi-event batches go to be committed together with others'
    /// (`None` inside the group committer itself).
    pub(crate) group: Option<crate::group_commit::GroupCommit>,
    /// The service using this handle, named on its spans (several services may
    /// share one process, and so one tracer); empty when unnamed.
    pub(crate) service: Arc<str>,
}

impl EventLog {
    /// Connects the log on `client`: creates the stream, parking stream and
    /// snapshot bucket if missing, upgrades an older stream in place (it gains
    /// `frontline.>`), and refuses a stream whose settings could lose events.
    pub async fn open(client: async_nats::Client, config: LogConfig) -> Result<EventLog, LogError> {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(config.timeout);
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            LogError::Setup(format!("stream {} {what}: {e}", config.stream))
        };
        // An existing stream is checked before anything is changed: a refused open
        // leaves every stream as it was.
        let existing = match js.get_stream(&config.stream).await {
            Ok(mut stream) => {
                let info = stream.info().await.map_err(|e| setup("info", &e))?;
                let actual = info.config.clone();
                check_stream(&actual)?;
                check_format(&actual, info.state.messages)?;
                Some((stream, actual))
            }
            Err(_) => None,
        };
        // Then the parking stream: an old one on `frontline.parked.>` would overlap
        // the event stream's `frontline.>`.
        open_parking(&js, &config).await?;
        let stream = match existing {
            Some((stream, actual)) => {
                let owns_subjects = actual.subjects.iter().any(|s| s == EVENT_SUBJECTS);
                let format = LOG_FORMAT.to_string();
                let marked = actual.metadata.get(FORMAT_KEY) == Some(&format);
                if !owns_subjects || !actual.allow_atomic_publish || !marked {
                    let mut upgraded = actual.clone();
                    upgraded.subjects.retain(|s| !s.starts_with("frontline."));
                    upgraded.subjects.insert(0, EVENT_SUBJECTS.to_string());
                    upgraded.allow_atomic_publish = true;
                    upgraded.metadata.insert(FORMAT_KEY.to_string(), format);
                    js.update_stream(upgraded)
                        .await
                        .map_err(|e| setup("upgrade", &e))?;
                    tracing::info!(stream = %config.stream, "event stream upgraded: owns {EVENT_SUBJECTS}, allows atomic batches");
                }
                stream
            }
            None => {
                let mut stream = js
                    .get_or_create_stream(stream_config(&config))
                    .await
                    .map_err(|e| setup("create", &e))?;
                // Another process may have created it a moment earlier.
                let info = stream.info().await.map_err(|e| setup("info", &e))?;
                check_stream(&info.config)?;
                stream
            }
        };
        let personal = PersonalData::open(&js, &config).await?;
        let snapshots = Snapshots::open(&js, &config, personal.clone()).await?;
        let mut log = EventLog {
            client,
            js,
            stream,
            config,
            snapshots,
            personal,
            locks: Arc::default(),
            group: None,
            service: Arc::from(""),
        };
        log.group = Some(crate::group_commit::GroupCommit::start(log.clone()));
        Ok(log)
    }

    /// This handle for service `name`: its spans (append, commit, load, and its
    /// consumers' deliveries) carry `frontline.service = name`, which tells the
    /// services of one process (tests run several) apart.
    pub fn with_service(mut self, name: &str) -> EventLog {
        self.service = Arc::from(name);
        self
    }

    /// The service named by [`EventLog::with_service`] (empty if none).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The NATS client underneath.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The snapshot store.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// The stream name.
    pub fn stream_name(&self) -> &str {
        &self.config.stream
    }

    /// The log's settings.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The stream sequence of the newest event in the log (0 when empty).
    pub async fn last_sequence(&self) -> Result<u64, LogError> {
        let mut stream = self.stream.clone();
        stream
            .info()
            .await
            .map(|info| info.state.last_sequence)
            .map_err(|e| LogError::unavailable("stream info", e))
    }

    /// The in-process command lock of a subject (see [`crate::execute`]).
    pub(crate) fn lock_for(&self, subject: &str) -> Arc<Mutex<()>> {
        self.locks.for_subject(subject)
    }

    /// An in-process lock for a flow that spans several aggregates (e.g. one
    /// customer's contacts), so such flows queue up within this process. `key` must
    /// not be an event subject: [`crate::execute`] takes those itself.
    pub fn local_lock(&self, key: &str) -> Arc<Mutex<()>> {
        self.locks.for_subject(&format!("local:{key}"))
    }

    pub(crate) fn check_connected(&self) -> Result<(), LogError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            other => Err(LogError::Unavailable(format!(
                "NATS connection is {other:?}"
            ))),
        }
    }

    /// Appends one event to aggregate `id`, expecting `loaded` to be its latest state.
    /// Returns the new state and the event's stream sequence. A lost race is
    /// [`LogError::Conflict`]; nothing is stored then.
    ///
    /// Traced as `eventlog.append`, whose context the event carries in its
    /// `traceparent` header (see [`crate::trace`]).
    pub async fn append<A>(
        &self,
        id: &Uuid,
        loaded: &Loaded<A>,
        event: A::Event,
        meta: &EventMeta,
        at: UnixMillis,
    ) -> Result<Loaded<A>, LogError>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        let span = crate::trace::span(|| {
            tracing::info_span!(
                "eventlog.append",
                otel.kind = "producer",
                frontline.service = self.service(),
                aggregate = A::KIND,
                aggregate_id = %id,
                event_type = tracing::field::Empty,
                expected_sequence = loaded.sequence,
                sequence = tracing::field::Empty,
            )
        });
        crate::trace::continue_request(&span, meta.traceparent.as_deref());
        let appended = self
            .append_now(id, loaded, event, meta, at)
            .instrument(span.clone())
            .await;
        if let Ok(appended) = &appended {
            span.record("sequence", appended.sequence);
        }
        appended
    }

    async fn append_now<A>(
        &self,
        id: &Uuid,
        loaded: &Loaded<A>,
        event: A::Event,
        meta: &EventMeta,
        at: UnixMillis,
    ) -> Result<Loaded<A>, LogError>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        self.check_connected()?;
        let sealing = self
            .personal
            .for_writing(loaded.state.event_owner(id, &event))
            .await?;
        let message = Outgoing::new::<A>(id, loaded, &event, meta, at, (&sealing.0, sealing.1));
        if let Some(event_type) = message.headers.get(HEADER_EVENT_TYPE) {
            tracing::Span::current().record("event_type", event_type.as_str());
        }
        let version = loaded.state.version() + 1;
        let sequence = self
            .publish(
                &message.subject,
                message.headers,
                message.payload,
                loaded.sequence,
            )
            .await?;
        count_appended(A::KIND);
        let mut state = loaded.state.clone();
        state.apply(&Recorded {
            event,
            actor: meta.actor.clone(),
            at,
        });
        let appended = Loaded {
            state,
            sequence,
            replayed: 0,
        };
        if version % self.config.snapshot_every.max(1) == 0 {
            self.snapshots.save_in_background(id, &appended);
        }
        Ok(appended)
    }

    pub(crate) async fn publish(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
        expected: u64,
    ) -> Result<u64, LogError> {
        let mut last_error = String::new();
        for attempt in 0..PUBLISH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let ack = match self
                .js
                .publish_with_headers(subject.to_string(), headers.clone(), payload.clone())
                .await
            {
                Ok(future) => future.await,
                Err(e) => Err(e),
            };
            match ack {
                // A duplicate ack means an earlier attempt was stored: its sequence wins.
                Ok(ack) => return Ok(ack.sequence),
                Err(e) => match e.kind() {
                    PublishErrorKind::WrongLastSequence => {
                        return self.conflict_or_ours(subject, expected, &headers).await;
                    }
                    PublishErrorKind::Other if is_wrong_last_sequence(&e) => {
                        return self.conflict_or_ours(subject, expected, &headers).await;
                    }
                    PublishErrorKind::TimedOut
                    | PublishErrorKind::BrokenPipe
                    | PublishErrorKind::StreamNotFound => {
                        last_error = e.to_string();
                        if self.client.connection_state() != State::Connected {
                            break;
                        }
                    }
                    _ => return Err(LogError::unavailable("publish", e)),
                },
            }
        }
        Err(LogError::Unavailable(format!(
            "publish to {subject}: {last_error}"
        )))
    }

    /// A wrong-last-sequence answer is a real conflict — unless the message after
    /// `expected` is this very one: then an earlier attempt (whose ack was lost, or
    /// which the client delivered after a reconnect) was stored, and the server
    /// checks sequences before duplicates. Answer with its sequence instead of
    /// letting the caller decide again and store a second event.
    pub(crate) async fn conflict_or_ours(
        &self,
        subject: &str,
        expected: u64,
        headers: &HeaderMap,
    ) -> Result<u64, LogError> {
        let ours = headers.get("Nats-Msg-Id");
        if let Ok(next) = self
            .stream
            .direct_get_next_for_subject(subject, Some(expected + 1))
            .await
            && ours.is_some()
            && next.headers.get("Nats-Msg-Id") == ours
        {
            return Ok(next.sequence);
        }
        Err(LogError::Conflict {
            subject: subject.to_string(),
            expected,
        })
    }

    /// Rebuilds aggregate `id`: its snapshot (if current enough) plus the events
    /// after it. An aggregate without events loads as `A::default()` at sequence 0.
    ///
    /// Traced as `eventlog.load` when part of something traced (a call, a
    /// consumer's handling, an append's retry); a load on its own is not.
    pub async fn load<A>(&self, id: &Uuid) -> Result<Loaded<A>, LogError>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        let span = crate::trace::nested(|| {
            tracing::info_span!(
                "eventlog.load",
                frontline.service = self.service(),
                aggregate = A::KIND,
                aggregate_id = %id,
                sequence = tracing::field::Empty,
                replayed = tracing::field::Empty,
            )
        });
        let loaded = self.load_now::<A>(id).instrument(span.clone()).await;
        if let Ok(loaded) = &loaded {
            span.record("sequence", loaded.sequence);
            span.record("replayed", loaded.replayed);
        }
        loaded
    }

    async fn load_now<A>(&self, id: &Uuid) -> Result<Loaded<A>, LogError>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        self.check_connected()?;
        let subject = subject::<A>(id);
        // Both reads at once: the snapshot is only useful if the subject has events,
        // but waiting for that answer first would double the latency.
        let snapshot = async {
            if A::SNAPSHOTS {
                self.snapshots.load::<A>(id).await
            } else {
                None
            }
        };
        let (last, snapshot) = tokio::join!(self.last_message(&subject), snapshot);
        let Some(last) = last? else {
            return Ok(Loaded::default());
        };
        let last = self.decode::<A::Event>(&last).await?;
        // A snapshot ahead of the log, or one that disagrees with it, is ignored:
        // snapshots are a shortcut, the log is the truth.
        let base = snapshot
            .filter(|s| s.sequence <= last.sequence && s.state.version() <= last.version)
            .filter(|s| (s.sequence == last.sequence) == (s.state.version() == last.version))
            .unwrap_or_default();
        if base.sequence == last.sequence {
            return Ok(base);
        }
        let from_snapshot = base.sequence > 0;
        let loaded = match self.replay(&subject, base, last.clone()).await {
            Ok(loaded) => loaded,
            // A snapshot that does not fit the log (e.g. left from a recreated
            // stream) is only a wrong shortcut: replay from the start instead.
            Err(LogError::Corrupt { reason, .. }) if from_snapshot => {
                tracing::warn!(%subject, %reason, "snapshot disagrees with the log; replaying all");
                self.replay(&subject, Loaded::default(), last).await?
            }
            Err(e) => return Err(e),
        };
        metrics::histogram!("frontline_load_replayed_events", "aggregate" => A::KIND)
            .record(loaded.replayed as f64);
        if loaded.replayed >= self.config.snapshot_every.max(1) {
            self.snapshots.save_in_background(id, &loaded);
        }
        Ok(loaded)
    }

    /// Applies the events after `base` up to and including `last`.
    async fn replay<A>(
        &self,
        subject: &str,
        mut loaded: Loaded<A>,
        last: LoggedEvent<A::Event>,
    ) -> Result<Loaded<A>, LogError>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        while loaded.state.version() + 1 < last.version {
            let next = self
                .next_event::<A::Event>(subject, loaded.sequence + 1)
                .await?;
            apply_checked(&mut loaded, next, subject)?;
        }
        apply_checked(&mut loaded, last, subject)?;
        Ok(loaded)
    }

    /// Every event of aggregate `id`, oldest first, up to `until_version` if given.
    /// Cost follows the aggregate's own history (no snapshot shortcut).
    pub async fn read<A>(
        &self,
        id: &Uuid,
        until_version: Option<u64>,
    ) -> Result<Vec<LoggedEvent<A::Event>>, LogError>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        self.check_connected()?;
        let subject = subject::<A>(id);
        let Some(last) = self.last_message(&subject).await? else {
            return Ok(Vec::new());
        };
        let last = self.decode::<A::Event>(&last).await?;
        let until = until_version.map_or(last.version, |v| v.min(last.version));
        // Capacity from the envelope is a hint only: a corrupt version must not
        // allocate the machine away (the gap check below refuses it).
        let mut events = Vec::with_capacity(until.min(1024) as usize);
        let mut cursor = 1;
        while (events.len() as u64) < until {
            let event = if events.len() as u64 + 1 == last.version {
                last.clone()
            } else {
                self.next_event::<A::Event>(&subject, cursor).await?
            };
            if event.version != events.len() as u64 + 1 {
                return Err(gap(&subject, &event, events.len() as u64 + 1));
            }
            cursor = event.sequence + 1;
            events.push(event);
        }
        Ok(events)
    }

    /// Aggregate `id`'s events after version `after`, in order: those stored, then
    /// each new one as it lands, for as long as the stream is read. An ordered
    /// consumer of the aggregate's subject (no acks, nothing durable; it is gone
    /// once the reader is).
    pub async fn watch<A>(
        &self,
        id: &Uuid,
        after: u64,
    ) -> Result<
        impl futures::Stream<Item = Result<LoggedEvent<A::Event>, LogError>> + Send + use<A>,
        LogError,
    >
    where
        A: Aggregate,
        A::Event: EventCodec + Send,
    {
        self.check_connected()?;
        let consumer = self
            .stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: subject::<A>(id),
                ..Default::default()
            })
            .await
            .map_err(|e| LogError::unavailable("watch", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| LogError::unavailable("watch", e))?;
        let log = self.clone();
        Ok(futures::StreamExt::filter_map(messages, move |m| {
            let log = log.clone();
            async move {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => return Some(Err(LogError::unavailable("watch", e))),
                };
                let sequence = m.info().map(|i| i.stream_sequence).unwrap_or_default();
                match log.decode_parts(&m.subject, sequence, &m.payload).await {
                    Ok(event) if event.version <= after => None,
                    other => Some(other),
                }
            }
        }))
    }

    /// Every event stored on subjects `filter` (e.g. `frontline.ticket.>`) from now
    /// on, as it lands, with its subject, for as long as the stream is read: an
    /// ordered consumer delivering new messages only (nothing durable; gone with
    /// the reader).
    #[allow(clippy::type_complexity)]
    pub async fn tail<E>(
        &self,
        filter: &str,
    ) -> Result<
        impl futures::Stream<Item = Result<(String, LoggedEvent<E>), LogError>> + Send + use<E>,
        LogError,
    >
    where
        E: EventCodec + Send,
    {
        self.check_connected()?;
        let consumer = self
            .stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: filter.to_string(),
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| LogError::unavailable("tail", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| LogError::unavailable("tail", e))?;
        let log = self.clone();
        Ok(futures::StreamExt::then(messages, move |m| {
            let log = log.clone();
            async move {
                let m = m.map_err(|e| LogError::unavailable("tail", e))?;
                let sequence = m.info().map(|i| i.stream_sequence).unwrap_or_default();
                let event = log.decode_parts(&m.subject, sequence, &m.payload).await?;
                Ok((m.subject.to_string(), event))
            }
        }))
    }

    /// The stream sequence of aggregate `id`'s last event (0 when it has none).
    pub async fn last_sequence_of<A: Aggregate>(&self, id: &Uuid) -> Result<u64, LogError> {
        self.check_connected()?;
        Ok(self
            .last_message(&subject::<A>(id))
            .await?
            .map_or(0, |m| m.sequence))
    }

    async fn last_message(&self, subject: &str) -> Result<Option<StreamMessage>, LogError> {
        match self.stream.direct_get_last_for_subject(subject).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(LogError::unavailable("read last event", e)),
        }
    }

    async fn next_event<E: EventCodec>(
        &self,
        subject: &str,
        from_sequence: u64,
    ) -> Result<LoggedEvent<E>, LogError> {
        match self
            .stream
            .direct_get_next_for_subject(subject, Some(from_sequence))
            .await
        {
            Ok(m) => self.decode(&m).await,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Err(LogError::Corrupt {
                subject: subject.to_string(),
                sequence: from_sequence,
                reason: "expected another event on the subject, found none".into(),
            }),
            Err(e) => Err(LogError::unavailable("read event", e)),
        }
    }
}

/// Creates the parking stream, or moves an old one off `frontline.parked.>` (inside
/// the event namespace) to `frontline-parked.>`. Parked messages already stored keep
/// their old subjects.
async fn open_parking(js: &jetstream::Context, config: &LogConfig) -> Result<(), LogError> {
    let name = config.parked_stream();
    let subjects = format!("{PARKED_PREFIX}.>");
    let setup = |e: &dyn std::fmt::Display| LogError::Setup(format!("stream {name}: {e}"));
    if let Ok(mut existing) = js.get_stream(&name).await {
        let info = existing.info().await.map_err(|e| setup(&e))?;
        if !info.config.subjects.contains(&subjects) {
            let mut moved = info.config.clone();
            moved.subjects.retain(|s| s != LEGACY_PARKED_SUBJECTS);
            moved.subjects.push(subjects);
            js.update_stream(moved).await.map_err(|e| setup(&e))?;
            tracing::info!(stream = %name, "parking stream moved to {PARKED_PREFIX}.>");
        }
        return Ok(());
    }
    js.get_or_create_stream(jetstream::stream::Config {
        name: name.clone(),
        description: Some("Frontline parked events: what a consumer could not apply".into()),
        subjects: vec![subjects],
        storage: jetstream::stream::StorageType::File,
        num_replicas: config.replicas,
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| setup(&e))
}

fn stream_config(config: &LogConfig) -> jetstream::stream::Config {
    use jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
    jetstream::stream::Config {
        name: config.stream.clone(),
        description: Some("Frontline event log: every event of every aggregate".into()),
        subjects: vec![EVENT_SUBJECTS.to_string()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        num_replicas: config.replicas,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: -1,
        max_age: Duration::ZERO,
        discard: DiscardPolicy::New,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        duplicate_window: Duration::from_secs(120),
        allow_atomic_publish: true,
        metadata: HashMap::from([(FORMAT_KEY.to_string(), LOG_FORMAT.to_string())]),
        ..Default::default()
    }
}

/// Refuses a stream holding events written before the current [`LOG_FORMAT`]: their
/// ids were derived otherwise (without tenants; identities unkeyed) and their
/// personal data is in the clear, so they cannot be read as this version's.
fn check_format(actual: &jetstream::stream::Config, messages: u64) -> Result<(), LogError> {
    let format: u32 = actual
        .metadata
        .get(FORMAT_KEY)
        .and_then(|f| f.parse().ok())
        .unwrap_or(1);
    if format < LOG_FORMAT && messages > 0 {
        let before = if format < 2 {
            "before tenants"
        } else {
            "before personal data was sealed"
        };
        return Err(LogError::Refused(format!(
            "stream {} holds {messages} events of log format {format}, written {before}; \
             this version writes format {LOG_FORMAT} (ids derived inside a tenant, identity ids \
             keyed, personal data sealed per customer). Start on a new stream (FRONTLINE_STREAM) \
             or remove this one; see the README, \"Upgrading\"",
            actual.name
        )));
    }
    Ok(())
}

/// Refuses a pre-existing stream whose settings could drop or rewrite events.
/// (Missing subjects are no reason: [`EventLog::open`] adds them.)
fn check_stream(actual: &jetstream::stream::Config) -> Result<(), LogError> {
    use jetstream::stream::{RetentionPolicy, StorageType};
    let mut problems = Vec::new();
    if actual.retention != RetentionPolicy::Limits {
        problems.push("must use limits retention (interest and work-queue retention drop events)");
    }
    if actual.storage != StorageType::File {
        problems.push("must use file storage");
    }
    if !actual.deny_delete || !actual.deny_purge || actual.allow_rollup {
        problems.push("must deny delete and purge and allow no rollup");
    }
    if actual.max_messages_per_subject > 0 {
        problems.push("must keep unlimited messages per subject");
    }
    let limited =
        actual.max_age > Duration::ZERO || actual.max_bytes > 0 || actual.max_messages > 0;
    if limited && actual.discard != jetstream::stream::DiscardPolicy::New {
        problems.push("a size or age limit needs discard: new");
    }
    if !actual.allow_direct {
        problems.push("must allow direct get");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LogError::Refused(format!(
            "stream {} exists with unsafe settings: {}",
            actual.name,
            problems.join("; ")
        )))
    }
}

pub(crate) fn is_wrong_last_sequence(e: &jetstream::context::PublishError) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|je| {
            matches!(
                je.error_code(),
                ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                    | ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
            )
        })
}

/// Counts a stored event.
pub(crate) fn count_appended(kind: &'static str) {
    metrics::counter!("frontline_events_appended_total", "aggregate" => kind).increment(1);
}

/// Counts an event of a type this reader does not know (and skips it).
pub(crate) fn count_unknown(event_type: &str) {
    metrics::counter!("frontline_events_unknown_total", "event_type" => event_type.to_string())
        .increment(1);
    tracing::debug!(
        event_type,
        "skipping an event type this version does not know"
    );
}

impl EventLog {
    /// Decodes a stored message into a logged event, opening its personal fields
    /// with its customer's key. A known type that does not decode is corrupt; an
    /// unknown type is kept as `event: None` (and counted).
    pub(crate) async fn decode<E: EventCodec>(
        &self,
        m: &StreamMessage,
    ) -> Result<LoggedEvent<E>, LogError> {
        self.decode_parts(&m.subject, m.sequence, &m.payload).await
    }

    /// [`EventLog::decode`] of a message's parts.
    async fn decode_parts<E: EventCodec>(
        &self,
        subject: &str,
        sequence: u64,
        payload: &[u8],
    ) -> Result<LoggedEvent<E>, LogError> {
        let corrupt = |reason: String| LogError::Corrupt {
            subject: subject.to_string(),
            sequence,
            reason,
        };
        let envelope = decode_envelope(payload).map_err(corrupt)?;
        let (event, envelope) = self.open_envelope(envelope, &corrupt).await?;
        let actor = envelope.actor.clone().unwrap_or_default();
        let role = convert::from_wire::<v1::Role, frontline_domain::Role>(actor.role)
            .ok_or_else(|| corrupt(format!("unknown actor role {}", actor.role)))?;
        Ok(LoggedEvent {
            at: envelope
                .occurred_at
                .as_ref()
                .map(convert::millis)
                .unwrap_or_default(),
            event_id: envelope.event_id,
            event_type: envelope.event_type,
            version: envelope.aggregate_version,
            sequence,
            actor: Actor::new(actor.id, role),
            correlation_id: envelope.correlation_id,
            causation_id: envelope.causation_id,
            event,
        })
    }

    /// The event in `envelope`, personal fields opened (or erased).
    pub(crate) async fn open_envelope<E: EventCodec>(
        &self,
        envelope: v1::EventEnvelope,
        corrupt: &impl Fn(String) -> LogError,
    ) -> Result<(Option<E>, v1::EventEnvelope), LogError> {
        let key = self
            .personal
            .for_reading(&envelope.sealed_for, corrupt)
            .await?;
        let fields = Fields::new(&key, &envelope.event_id);
        let event =
            E::decode_payload(&envelope.event_type, &envelope.payload, &fields).map_err(corrupt)?;
        if event.is_none() {
            count_unknown(&envelope.event_type);
        }
        Ok((event, envelope))
    }

    /// Destroys customer `id`'s data key: every personal field sealed for them
    /// reads as erased from now on, in every process. Repeating it is fine.
    pub async fn destroy_data_key(&self, id: &Uuid) -> Result<(), LogError> {
        match self.personal.store() {
            Some(store) => Ok(store.destroy(id).await?),
            None => Err(LogError::Refused(
                "the log was opened without a key-encryption key".into(),
            )),
        }
    }

    /// The secret of `tenant` for keyed hashes of identities.
    pub async fn tenant_secret(&self, tenant: &str) -> Result<[u8; 32], LogError> {
        match self.personal.store() {
            Some(store) => Ok(store.tenant_secret(tenant).await?),
            None => Err(LogError::Refused(
                "the log was opened without a key-encryption key".into(),
            )),
        }
    }
}

fn gap<E>(subject: &str, event: &LoggedEvent<E>, expected: u64) -> LogError {
    LogError::Corrupt {
        subject: subject.to_string(),
        sequence: event.sequence,
        reason: format!(
            "event has aggregate version {}, expected {expected}",
            event.version
        ),
    }
}

fn apply_checked<A: Aggregate>(
    loaded: &mut Loaded<A>,
    event: LoggedEvent<A::Event>,
    subject: &str,
) -> Result<(), LogError> {
    if event.version != loaded.state.version() + 1 {
        return Err(gap(subject, &event, loaded.state.version() + 1));
    }
    loaded.sequence = event.sequence;
    loaded.replayed += 1;
    apply_logged(&mut loaded.state, event);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publish retried with the same `Nats-Msg-Id` (e.g. after a lost ack) is
    /// answered with the original sequence and stored once — although the server
    /// (2.14) answers it with wrong-last-sequence rather than as a duplicate, since
    /// its expected-sequence header is stale by then.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_publish_is_stored_once_and_keeps_its_sequence() {
        let nats = frontline_testkit::NatsServer::start().unwrap();
        let client = async_nats::connect(nats.url()).await.unwrap();
        let log = EventLog::open(client, LogConfig::default()).await.unwrap();
        let subject = format!("frontline.ticket.{}", Uuid::new_v4());
        let headers = |msg_id: &str| {
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", msg_id);
            h.insert("Nats-Expected-Last-Subject-Sequence", "0");
            h
        };
        let first = log
            .publish(&subject, headers("evt-1"), Bytes::from_static(b"x"), 0)
            .await
            .unwrap();
        let retried = log
            .publish(&subject, headers("evt-1"), Bytes::from_static(b"x"), 0)
            .await
            .unwrap();
        assert_eq!(
            retried, first,
            "the duplicate ack carries the original sequence"
        );
        let other = log
            .publish(&subject, headers("evt-2"), Bytes::from_static(b"y"), 0)
            .await
            .unwrap_err();
        assert!(
            matches!(other, LogError::Conflict { expected: 0, .. }),
            "{other:?}"
        );
        let info = log
            .stream
            .clone()
            .info_with_subjects(&subject)
            .await
            .unwrap();
        use futures::TryStreamExt;
        let counts: Vec<(String, usize)> = info.try_collect().await.unwrap();
        assert_eq!(counts, [(subject, 1)]);
    }
}
