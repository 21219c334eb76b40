//! Read models in PostgreSQL, kept exactly once.
//!
//! A [`Projection`] names a durable consumer and applies events to PostgreSQL.
//! [`apply_batch`] applies a batch of deliveries and stores the consumer's stream
//! sequence in the same transaction, skipping what the checkpoint already covers,
//! so a redelivery — after a crash between commit and ack, say — changes nothing.
//! [`run`] is the consumer loop: batches while it can, one event at a time when a
//! batch fails (so one poison event is retried and parked alone).
//!
//! Migrations: [`MIGRATOR`] creates `projection_checkpoints` (versions 1–99 are this
//! crate's); a service adds its own tables in its own range.

use std::{future::Future, sync::Arc};

use frontline_eventlog::{ConsumerConfig, Delivery, EventCodec, EventLog, LogError};
use sqlx::{PgConnection, PgPool, migrate::Migrator};
use tokio_util::sync::CancellationToken;

/// The checkpoint table's migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Events taken from the consumer per transaction, at most.
pub const BATCH: usize = 256;

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
pub async fn apply_batch<P: Projection>(
    db: &PgPool,
    projection: &P,
    batch: &[Delivery<P::Event>],
) -> Result<usize, sqlx::Error> {
    let name = projection.consumer().durable;
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO projection_checkpoints (name, sequence) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
        .bind(&name)
        .execute(&mut *tx)
        .await?;
    let stored: i64 = sqlx::query_scalar(
        "SELECT sequence FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
    )
    .bind(&name)
    .fetch_one(&mut *tx)
    .await?;
    let mut reached = stored;
    let mut applied = 0;
    for delivery in batch {
        let sequence = i64::try_from(delivery.sequence).unwrap_or(i64::MAX);
        if sequence <= stored {
            continue;
        }
        if let Some(event) = &delivery.event {
            projection.apply(&mut tx, delivery, event).await?;
            applied += 1;
        }
        reached = reached.max(sequence);
    }
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

/// Runs `projection` until `stop` is cancelled: the current batch is finished
/// (committed and acked) first, so stopping loses and doubles nothing.
pub async fn run<P: Projection>(
    log: EventLog,
    db: PgPool,
    projection: Arc<P>,
    stop: CancellationToken,
) -> Result<(), ProjectionError> {
    let config = projection.consumer();
    let mut subscription = log.subscribe::<P::Event>(config.clone()).await?;
    tracing::info!(projection = %config.durable, filter = %config.filter, "projection running");
    loop {
        let batch = tokio::select! {
            batch = subscription.next_batch(BATCH) => batch?,
            () = stop.cancelled() => return Ok(()),
        };
        if batch.is_empty() {
            return Err(ProjectionError::Ended(config.durable));
        }
        settle(&db, projection.as_ref(), batch).await?;
    }
}

/// Applies a batch and settles its deliveries. A failed batch is retried one event
/// at a time, so only the event that fails is redelivered (and parked after its
/// last attempt). A lost database stops the projection (the supervisor restarts
/// it) after handing every delivery back.
async fn settle<P: Projection>(
    db: &PgPool,
    projection: &P,
    batch: Vec<Delivery<P::Event>>,
) -> Result<(), ProjectionError> {
    let error = match apply_batch(db, projection, &batch).await {
        Ok(_) => {
            for delivery in batch {
                delivery.ack().await?;
            }
            return Ok(());
        }
        Err(e) => e,
    };
    if unreachable(&error) {
        for delivery in batch {
            delivery.retry(&error.to_string()).await?;
        }
        return Err(error.into());
    }
    tracing::warn!(%error, size = batch.len(), "batch failed; applying one event at a time");
    for delivery in batch {
        let single = [delivery];
        let outcome = apply_batch(db, projection, &single).await;
        let [delivery] = single;
        match outcome {
            Ok(_) => delivery.ack().await?,
            Err(e) if unreachable(&e) => {
                delivery.retry(&e.to_string()).await?;
                return Err(e.into());
            }
            Err(e) => {
                tracing::warn!(sequence = delivery.sequence, error = %e, "event not applied; will retry");
                delivery.retry(&e.to_string()).await?;
            }
        }
    }
    Ok(())
}

/// The database is gone (not the event's fault).
fn unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
    )
}
