//! Atomic batches: events for several aggregates, stored all together or not at all
//! (JetStream atomic batch publish, nats-server 2.12+, `allow_atomic` on the stream).
//!
//! Each event keeps its own `Nats-Expected-Last-Subject-Sequence`; the server checks
//! every one of them at commit, under one lock, against the stream as it was before
//! the batch. So a batch is an optimistic transaction over the aggregates it touches:
//! if any of them moved on, nothing is stored and the caller reloads and decides
//! again, exactly as after a lost single append.
//!
//! Protocol: every message carries `Nats-Batch-Id` and `Nats-Batch-Sequence` (1, 2,
//! …); all but the last are plain publishes, the last adds `Nats-Batch-Commit: 1` and
//! is the one request that waits for the stream's ack. One round trip per batch.

use std::time::Duration;

use async_nats::{connection::State, jetstream::context::PublishErrorKind};
use frontline_domain::{Aggregate, Recorded, UnixMillis};
use frontline_proto::events::EventCodec;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    EventLog, EventMeta, Loaded, LogError,
    store::{Outgoing, Sealing, count_appended, is_wrong_last_sequence, subject},
};

/// Most events in one batch (the server's limit is 1000).
pub const MAX_BATCH_EVENTS: usize = 1000;

/// Commits retried after a timeout.
const COMMIT_ATTEMPTS: u32 = 3;

/// Events for several aggregates, to be committed together with
/// [`EventLog::commit`]. One event per aggregate.
#[derive(Default)]
pub struct Batch {
    messages: Vec<Unsealed>,
    /// The first staged event's request `traceparent`: the commit continues that
    /// trace when it runs outside the request's span.
    traceparent: Option<String>,
}

/// A staged event, encoded at commit time: its customer's data key is fetched
/// then, so staging stays synchronous.
struct Unsealed {
    subject: String,
    owner: Option<Uuid>,
    seal: Box<dyn FnOnce(Sealing<'_>) -> Outgoing + Send>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.messages.iter().map(|m| &m.subject))
            .finish()
    }
}

/// An event staged in a [`Batch`]: the aggregate's state after it, once committed.
#[derive(Debug)]
pub struct Staged<A> {
    index: usize,
    id: Uuid,
    state: A,
}

impl<A> Staged<A> {
    /// The aggregate's state after the event, should the batch commit.
    pub fn state(&self) -> &A {
        &self.state
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// How many events are staged.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Stages `event` as the next event of aggregate `id`, expecting `loaded` to be
    /// its latest state when the batch commits.
    pub fn stage<A>(
        &mut self,
        id: &Uuid,
        loaded: &Loaded<A>,
        event: A::Event,
        meta: &EventMeta,
        at: UnixMillis,
    ) -> Staged<A>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        if self.traceparent.is_none() {
            self.traceparent.clone_from(&meta.traceparent);
        }
        let owner = loaded.state.event_owner(id, &event);
        let (id_for, for_seal, event_for, meta_for) =
            (*id, loaded.clone(), event.clone(), meta.clone());
        self.messages.push(Unsealed {
            subject: subject::<A>(id),
            owner,
            seal: Box::new(move |sealing| {
                Outgoing::new::<A>(&id_for, &for_seal, &event_for, &meta_for, at, sealing)
            }),
        });
        let mut state = loaded.state.clone();
        state.apply(&Recorded {
            event,
            actor: meta.actor.clone(),
            at,
        });
        Staged {
            index: self.messages.len() - 1,
            id: *id,
            state,
        }
    }
}

/// The stream sequences a committed batch was stored at, in staging order.
#[derive(Clone, Debug)]
pub struct Committed {
    pub(crate) sequences: Vec<u64>,
}

impl Committed {
    /// The state an event staged in the batch led to, at its stream sequence; saves
    /// a snapshot when one is due.
    pub fn loaded<A: Aggregate>(&self, log: &EventLog, staged: Staged<A>) -> Loaded<A> {
        let loaded = Loaded {
            sequence: self
                .sequences
                .get(staged.index)
                .copied()
                .unwrap_or_default(),
            state: staged.state,
            replayed: 0,
        };
        if loaded.state.version() % log.config().snapshot_every.max(1) == 0 {
            log.snapshots().save_in_background(&staged.id, &loaded);
        }
        loaded
    }

    /// Every sequence, in staging order.
    pub fn sequences(&self) -> &[u64] {
        &self.sequences
    }
}

impl EventLog {
    /// Stores every event of `batch`, or none: [`LogError::Conflict`] when any
    /// aggregate moved past the state its event was staged on. A batch of one is a
    /// plain append.
    ///
    /// Traced as `eventlog.commit`, whose context every event of the batch carries
    /// in its `traceparent` header (see [`crate::trace`]).
    pub async fn commit(&self, batch: Batch) -> Result<Committed, LogError> {
        let span = crate::trace::span(|| {
            tracing::info_span!(
                "eventlog.commit",
                otel.kind = "producer",
                frontline.service = self.service(),
                events = batch.messages.len(),
                subjects = %Subjects(&batch.messages),
                sequences = tracing::field::Empty,
            )
        });
        crate::trace::continue_request(&span, batch.traceparent.as_deref());
        let committed = self.commit_traced(batch).instrument(span.clone()).await;
        if let Ok(committed) = &committed
            && let (Some(first), Some(last)) =
                (committed.sequences.first(), committed.sequences.last())
        {
            span.record("sequences", format!("{first}..={last}"));
        }
        committed
    }

    async fn commit_traced(&self, batch: Batch) -> Result<Committed, LogError> {
        let messages = batch.messages;
        if messages.is_empty() {
            return Ok(Committed {
                sequences: Vec::new(),
            });
        }
        if messages.len() > MAX_BATCH_EVENTS {
            return Err(LogError::InvalidBatch(format!(
                "a batch holds at most {MAX_BATCH_EVENTS} events, not {}",
                messages.len()
            )));
        }
        for (i, m) in messages.iter().enumerate() {
            if messages[..i].iter().any(|o| o.subject == m.subject) {
                return Err(LogError::InvalidBatch(format!(
                    "a batch holds one event per aggregate; {} is staged twice",
                    m.subject
                )));
            }
        }
        let messages = self.seal(messages).await?;
        if messages.len() > 1
            && let Some(group) = &self.group
        {
            return group.commit(messages).await;
        }
        self.commit_now(messages).await
    }

    /// Encodes staged events, each sealed with its customer's key (fetched once
    /// per customer).
    async fn seal(&self, staged: Vec<Unsealed>) -> Result<Vec<Outgoing>, LogError> {
        let mut owners: Vec<Option<Uuid>> = staged.iter().map(|m| m.owner).collect();
        owners.sort();
        owners.dedup();
        let keys = futures::future::try_join_all(
            owners.iter().map(|owner| self.personal.for_writing(*owner)),
        )
        .await?;
        Ok(staged
            .into_iter()
            .map(|m| {
                let at = owners.binary_search(&m.owner).unwrap_or_default();
                let (key, sealed_for) = &keys[at];
                (m.seal)((key, *sealed_for))
            })
            .collect())
    }

    /// Commits `messages` (validated) on its own, not grouped with others.
    pub(crate) async fn commit_now(&self, messages: Vec<Outgoing>) -> Result<Committed, LogError> {
        if let [one] = &messages[..] {
            let sequence = self
                .publish(
                    &one.subject,
                    one.headers.clone(),
                    one.payload.clone(),
                    one.expected,
                )
                .await?;
            count_appended(one.kind);
            return Ok(Committed {
                sequences: vec![sequence],
            });
        }
        self.check_connected()?;
        let mut last_error = String::new();
        for attempt in 0..COMMIT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            match self.publish_batch(&messages).await {
                Ok(last) => {
                    messages.iter().for_each(|m| count_appended(m.kind));
                    return Ok(contiguous(last, messages.len()));
                }
                Err(BatchFailure::WrongLastSequence) => {
                    return self.landed_or_conflict(&messages).await;
                }
                Err(BatchFailure::Retry(e)) => {
                    last_error = e;
                    if self.client.connection_state() != State::Connected {
                        break;
                    }
                }
                Err(BatchFailure::Fatal(e)) => return Err(LogError::Unavailable(e)),
            }
        }
        Err(LogError::Unavailable(format!(
            "commit a batch of {}: {last_error}",
            messages.len()
        )))
    }

    /// One attempt: every message but the last as a plain publish, the last as the
    /// commit request. Returns the last message's stream sequence.
    async fn publish_batch(&self, messages: &[Outgoing]) -> Result<u64, BatchFailure> {
        let batch_id = Uuid::now_v7().simple().to_string();
        let last = messages.len() - 1;
        for (i, m) in messages.iter().enumerate() {
            let mut headers = m.headers.clone();
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            if i < last {
                self.client
                    .publish_with_headers(m.subject.clone(), headers, m.payload.clone())
                    .await
                    .map_err(|e| BatchFailure::Retry(e.to_string()))?;
                continue;
            }
            headers.insert("Nats-Batch-Commit", "1");
            let ack = match self
                .js
                .publish_with_headers(m.subject.clone(), headers, m.payload.clone())
                .await
            {
                Ok(future) => future.await,
                Err(e) => Err(e),
            };
            return match ack {
                Ok(ack) => Ok(ack.sequence),
                Err(e) => Err(match e.kind() {
                    PublishErrorKind::WrongLastSequence => BatchFailure::WrongLastSequence,
                    PublishErrorKind::Other if is_wrong_last_sequence(&e) => {
                        BatchFailure::WrongLastSequence
                    }
                    PublishErrorKind::TimedOut
                    | PublishErrorKind::BrokenPipe
                    | PublishErrorKind::StreamNotFound => BatchFailure::Retry(e.to_string()),
                    _ => BatchFailure::Fatal(format!("commit batch: {e}")),
                }),
            };
        }
        Err(BatchFailure::Fatal("empty batch".into()))
    }

    /// A refused commit is a conflict — unless an earlier attempt of this very batch
    /// was stored (its ack lost): then its first event follows the sequence it
    /// expected, and the batch's events are contiguous from there.
    async fn landed_or_conflict(&self, messages: &[Outgoing]) -> Result<Committed, LogError> {
        let first = &messages[0];
        match self
            .conflict_or_ours(&first.subject, first.expected, &first.headers)
            .await
        {
            Ok(first_sequence) => {
                messages.iter().for_each(|m| count_appended(m.kind));
                Ok(contiguous(
                    first_sequence + messages.len() as u64 - 1,
                    messages.len(),
                ))
            }
            Err(LogError::Conflict { .. }) => {
                metrics::counter!("frontline_batch_conflicts_total").increment(1);
                Err(LogError::Conflict {
                    subject: messages
                        .iter()
                        .map(|m| m.subject.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    expected: first.expected,
                })
            }
            Err(e) => Err(e),
        }
    }
}

/// A batch's subjects for its span: the first few, then how many more.
struct Subjects<'a>(&'a [Unsealed]);

impl std::fmt::Display for Subjects<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 8;
        for (i, m) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&m.subject)?;
        }
        if self.0.len() > SHOWN {
            write!(f, " (+{} more)", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// The sequences of `n` events stored contiguously, the last at `last`.
fn contiguous(last: u64, n: usize) -> Committed {
    let first = last + 1 - n as u64;
    Committed {
        sequences: (first..=last).collect(),
    }
}

enum BatchFailure {
    WrongLastSequence,
    Retry(String),
    Fatal(String),
}
