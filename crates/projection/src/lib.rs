//! Read models in PostgreSQL, kept exactly once.
//!
//! A [`Projection`] names a durable consumer and applies events to PostgreSQL.
//! [`apply_batch`] applies a batch of deliveries and stores the consumer's stream
//! sequence in the same transaction, skipping what the checkpoint already covers,
//! so a redelivery — after a crash between commit and ack, say — changes nothing.
//! [`run`] is the consumer loop: one active instance per projection, strictly in
//! stream order from its checkpoint, batches while it can, one event at a time
//! when a batch fails (a poison event is retried in place, then parked and passed).
//!
//! Migrations: [`MIGRATOR`] creates `projection_checkpoints` (versions 1–99 are this
//! crate's); a service adds its own tables in its own range.

use std::{future::Future, sync::Arc, time::Duration};

use frontline_eventlog::{ConsumerConfig, Delivery, EventCodec, EventLog, LogError};
use sqlx::{PgConnection, PgPool, migrate::Migrator};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// The checkpoint table's migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Events taken from the consumer per transaction, at most.
pub const BATCH: usize = 1024;

/// A read model fed by one durable consumer.
pub trait Projection: Send + Sync + 'static {
    /// The events it reads.
    type Event: EventCodec + Send + Sync + 'static;

    /// The consumer: its durable name is also the checkpoint's name.
    fn consumer(&self) -> ConsumerConfig;

    /// Applies one event inside the batch's transaction. Called once per event and
    /// stream sequence; an event of an unknown type never reaches it.
    fn apply<'a>(
        &'a self,
        db: &'a mut PgConnection,
        delivery: &'a Delivery<Self::Event>,
        event: &'a Self::Event,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a;

    /// Applies a batch's events, in stream order, inside the batch's transaction:
    /// by default one at a time with [`Projection::apply`]. A projection may apply
    /// them in fewer round trips; the rows must come out the same.
    fn apply_all<'a>(
        &'a self,
        db: &'a mut PgConnection,
        events: &'a [(&'a Delivery<Self::Event>, &'a Self::Event)],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a {
        async move {
            for (delivery, event) in events {
                self.apply(db, delivery, event).await?;
            }
            Ok(())
        }
    }
}

/// Why a projection stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The database failed outside an event (checkpoint, connection).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The consumer's message stream ended.
    #[error("consumer {0} ended")]
    Ended(String),
}

/// The stream sequence projection `name` has applied up to (0 before any).
pub async fn checkpoint(db: &PgPool, name: &str) -> Result<u64, sqlx::Error> {
    let mut conn = db.acquire().await?;
    checkpoint_on(&mut conn, name).await
}

async fn checkpoint_on(db: &mut PgConnection, name: &str) -> Result<u64, sqlx::Error> {
    let sequence: Option<i64> =
        sqlx::query_scalar("SELECT sequence FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(db)
            .await?;
    Ok(sequence.map_or(0, |s| u64::try_from(s).unwrap_or_default()))
}

/// Applies `batch` and moves the checkpoint, in one transaction. Deliveries at or
/// below the checkpoint are skipped (already applied). Returns how many events
/// were applied. Settles nothing: ack after it returns `Ok`.
///
/// Traced as `projection.apply` (see [`apply_span`]).
pub async fn apply_batch<P: Projection>(
    db: &mut PgConnection,
    projection: &P,
    batch: &[Delivery<P::Event>],
) -> Result<usize, sqlx::Error> {
    let name = projection.consumer().durable;
    let span = apply_span(&name, batch);
    apply_in_transaction(db, projection, name, batch)
        .instrument(span)
        .await
}

/// The span of one transaction. Each event's own span (`consume <projection>`,
/// [`Delivery::span`]) is a child of the span that appended the event; this one
/// is a child of the first event's span, so a batch of one (most, unless the
/// projection is behind) shows its SQL in the event's own trace, and every other
/// event of the batch links to it (follows-from).
fn apply_span<E>(name: &str, batch: &[Delivery<E>]) -> tracing::Span {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return tracing::Span::none();
    };
    // Events get spans only when traces are exported; then so does the batch.
    if first.span().is_none() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        parent: first.span(),
        "projection.apply",
        projection = name,
        events = batch.len(),
        first_sequence = first.sequence,
        last_sequence = last.sequence,
    );
    for delivery in &batch[1..] {
        delivery.span().follows_from(&span);
    }
    span
}

async fn apply_in_transaction<P: Projection>(
    db: &mut PgConnection,
    projection: &P,
    name: String,
    batch: &[Delivery<P::Event>],
) -> Result<usize, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(db).await?;
    // A read model is rebuilt from the log: a commit lost to a database crash is
    // applied again from the checkpoint that was lost with it (the run resumes from
    // the database's checkpoint, not from what the consumer acked). So the commit
    // need not wait for its WAL flush. And statements over arrays of a batch's
    // rows are planned for the arrays they get (a generic plan guesses their size
    // and may scan a whole table to join a handful of rows).
    sqlx::query(
        "SELECT set_config('synchronous_commit', 'off', true), \
                set_config('plan_cache_mode', 'force_custom_plan', true)",
    )
    .execute(&mut *tx)
    .await?;
    // One round trip: the checkpoint, created on first use and locked till commit.
    let stored: i64 = sqlx::query_scalar(
        "INSERT INTO projection_checkpoints (name, sequence) VALUES ($1, 0) \
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING sequence",
    )
    .bind(&name)
    .fetch_one(&mut *tx)
    .await?;
    let mut reached = stored;
    let mut events = Vec::with_capacity(batch.len());
    for delivery in batch {
        let sequence = i64::try_from(delivery.sequence).unwrap_or(i64::MAX);
        if sequence <= stored {
            continue;
        }
        if let Some(event) = &delivery.event {
            events.push((delivery, event));
        }
        reached = reached.max(sequence);
    }
    projection.apply_all(&mut tx, &events).await?;
    let applied = events.len();
    if reached > stored {
        sqlx::query(
            "UPDATE projection_checkpoints SET sequence = $2, updated_at = now() WHERE name = $1",
        )
        .bind(&name)
        .bind(reached)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    metrics::counter!("frontline_projection_events_total", "projection" => name)
        .increment(applied as u64);
    Ok(applied)
}

/// Runs `projection` until `stop` is cancelled.
///
/// Strictly in stream order, by one active instance:
/// - Replicas of a service take turns: the one holding the projection's PostgreSQL
///   advisory lock applies; the others wait for it (the lock goes with its
///   connection, so a killed process hands over at once).
/// - It resumes right after its checkpoint (the consumer is replaced to start
///   there), not from what the server saw acked: events in flight when a process
///   died are applied again in order, never skipped.
/// - An event that fails is retried in place, up to the consumer's `max_deliver`
///   attempts; then it is parked and the checkpoint passes it. Nothing after it is
///   applied before it, so the checkpoint always means "everything up to here".
/// - The current batch is finished (committed and acked) before `stop` is obeyed.
pub async fn run<P: Projection>(
    log: EventLog,
    db: PgPool,
    projection: Arc<P>,
    stop: CancellationToken,
) -> Result<(), ProjectionError> {
    let config = projection.consumer();
    // A connection of its own, which also applies every batch: dropped (closed) with
    // this run, releasing the lock; and should the session (and its lock) be lost,
    // the next commit fails instead of writing beside another replica.
    let mut turn = db.acquire().await?.detach();
    tokio::select! {
        locked = sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(lock_key(&config.durable))
            .execute(&mut turn) => { locked?; }
        () = stop.cancelled() => return Ok(()),
    }
    let from = checkpoint_on(&mut turn, &config.durable).await?;
    let mut subscription = log.subscribe_from::<P::Event>(config.clone(), from).await?;
    tracing::info!(projection = %config.durable, filter = %config.filter, from, "projection running");
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch(BATCH) => batch?,
            () = stop.cancelled() => return Ok(()),
        };
        if batch.is_empty() {
            return Err(ProjectionError::Ended(config.durable));
        }
        if !settle(&mut turn, projection.as_ref(), &config, batch, &stop).await? {
            return Ok(());
        }
    }
}

/// A stable 64-bit key for the projection's advisory lock (FNV-1a of its name).
fn lock_key(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Applies a batch and acks it. A failed batch is applied again one event at a
/// time, each retried in place; an event that fails every attempt is parked and
/// passed. A lost database stops the run (the supervisor restarts it; it resumes
/// from the checkpoint). `Ok(false)`: stopped while retrying.
async fn settle<P: Projection>(
    db: &mut PgConnection,
    projection: &P,
    config: &ConsumerConfig,
    batch: Vec<Delivery<P::Event>>,
    stop: &CancellationToken,
) -> Result<bool, ProjectionError> {
    let error = match apply_batch(db, projection, &batch).await {
        Ok(_) => {
            for delivery in batch {
                delivery.ack().await?;
            }
            return Ok(true);
        }
        Err(e) => e,
    };
    if unreachable(&error) {
        return Err(error.into());
    }
    tracing::warn!(%error, size = batch.len(), "batch failed; applying one event at a time");
    for delivery in batch {
        if !apply_one(db, projection, config, delivery, stop).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Applies one event, retried in place; parks it and moves the checkpoint past it
/// after its last attempt. `Ok(false)`: stopped while retrying.
async fn apply_one<P: Projection>(
    db: &mut PgConnection,
    projection: &P,
    config: &ConsumerConfig,
    delivery: Delivery<P::Event>,
    stop: &CancellationToken,
) -> Result<bool, ProjectionError> {
    let mut attempt: i64 = 1;
    loop {
        let error = match apply_batch(db, projection, std::slice::from_ref(&delivery)).await {
            Ok(_) => {
                delivery.ack().await?;
                return Ok(true);
            }
            Err(e) if unreachable(&e) => return Err(e.into()),
            Err(e) => e,
        };
        if attempt >= config.max_deliver.max(1) {
            let sequence = delivery.sequence;
            delivery
                .park(&format!("not applied after {attempt} attempts: {error}"))
                .await?;
            pass(db, &config.durable, sequence).await?;
            return Ok(true);
        }
        tracing::warn!(sequence = delivery.sequence, attempt, %error, "event not applied; retrying");
        let index = usize::try_from(attempt - 1).unwrap_or(usize::MAX);
        let pause = RETRY.get(index).or(RETRY.last()).copied();
        tokio::select! {
            () = tokio::time::sleep(pause.unwrap_or(Duration::from_secs(1))) => {},
            () = stop.cancelled() => return Ok(false),
        }
        attempt += 1;
    }
}

/// Pauses between in-place attempts at one event (the last one repeats).
const RETRY: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
];

/// Moves the checkpoint past a parked event.
async fn pass(db: &mut PgConnection, name: &str, sequence: u64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, sequence) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET sequence = GREATEST(projection_checkpoints.sequence, $2), updated_at = now()",
    )
    .bind(name)
    .bind(i64::try_from(sequence).unwrap_or(i64::MAX))
    .execute(db)
    .await?;
    Ok(())
}

/// Whether the database, not the event, is at fault. Only errors in the data (a
/// value that does not decode or fit: SQLSTATE classes 22 and 23) make an event
/// poison; anything else (connection lost, disk full, read-only, timeouts) stops
/// the run, which restarts from its checkpoint once the database is back.
fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => false,
        sqlx::Error::Database(e) => !e
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        _ => true,
    }
}
