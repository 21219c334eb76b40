//! Generations of the read models. Readers see the live generation through the
//! views (`analytics_tickets`, ...: [`Tables::with_views`]). A rebuild adds a
//! generation beside it, built from the log's first event by its own consumer
//! while the live one keeps serving; once it has applied as much of the log as
//! the live one, one transaction makes it live (the views follow) and retires the
//! old one, whose tables, consumer and checkpoint are then dropped.
//!
//! [`run`] is the service's projection task: it runs the projection of every
//! current generation (the live one, and the one being built) and watches for a
//! rebuild asked on any replica, and for the moment to switch.

use std::{sync::Arc, time::Duration};

use frontline_eventlog::EventLog;
use frontline_projection::ProjectionError;
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;

use crate::{
    projection::{ReadModels, consumer},
    store::Tables,
};

/// How often the generations are looked at (a rebuild asked elsewhere, a switch).
const WATCH: Duration = Duration::from_millis(500);

/// A generation's tables, comma-separated (for ANALYZE, DROP).
fn all_tables(t: &Tables) -> String {
    t.with_views().map(|(_, table)| table).join(", ")
}

/// The generations at work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generations {
    /// The one readers see.
    pub live: i32,
    /// The one being rebuilt, if any.
    pub building: Option<i32>,
}

/// The live generation and the one being built.
pub async fn current(db: &PgPool) -> Result<Generations, sqlx::Error> {
    let rows: Vec<(i32, String)> = sqlx::query_as(
        "SELECT generation, state FROM analytics_generations WHERE state IN ('live', 'building')",
    )
    .fetch_all(db)
    .await?;
    Ok(of(&rows))
}

fn of(rows: &[(i32, String)]) -> Generations {
    let find = |state: &str| rows.iter().find(|(_, s)| s == state).map(|(g, _)| *g);
    Generations {
        live: find("live").unwrap_or(1),
        building: find("building"),
    }
}

/// The generations, with the table locked against every other change until the
/// transaction ends (two rebuilds asked at once: the second sees the first's).
async fn locked(tx: &mut Transaction<'_, Postgres>) -> Result<Generations, sqlx::Error> {
    sqlx::query("LOCK TABLE analytics_generations IN EXCLUSIVE MODE")
        .execute(&mut **tx)
        .await?;
    let rows: Vec<(i32, String)> = sqlx::query_as(
        "SELECT generation, state FROM analytics_generations \
         WHERE state IN ('live', 'building') FOR UPDATE",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(of(&rows))
}

/// Starts rebuilding: a new generation with empty tables, which the projection
/// tasks fill from the log. When one is being built already, that one is the
/// answer. Returns the generation and whether it was started now.
pub async fn rebuild(db: &PgPool) -> Result<(i32, bool), sqlx::Error> {
    let mut tx = db.begin().await?;
    let gens = locked(&mut tx).await?;
    if let Some(building) = gens.building {
        return Ok((building, false));
    }
    let next: i32 =
        sqlx::query_scalar("SELECT COALESCE(max(generation), 0) + 1 FROM analytics_generations")
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query("INSERT INTO analytics_generations (generation, state) VALUES ($1, 'building')")
        .bind(next)
        .execute(&mut *tx)
        .await?;
    let (live, new) = (Tables::of(gens.live), Tables::of(next));
    for ((_, from), (_, to)) in live.with_views().into_iter().zip(new.with_views()) {
        // INCLUDING ALL: defaults, generated columns (articles' search vector) and
        // indexes (named anew after the new table) come along.
        sqlx::query(&format!("CREATE TABLE {to} (LIKE {from} INCLUDING ALL)"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(generation = next, "read models: rebuild started");
    Ok((next, true))
}

/// Makes `gens.building` live once it has applied as much of the log as the live
/// generation: the views move to its tables in the same transaction. Returns
/// whether it switched.
async fn try_switch(db: &PgPool, gens: Generations) -> Result<bool, sqlx::Error> {
    let Some(building) = gens.building else {
        return Ok(false);
    };
    // Nearly there (a first look, without locks): give the planner the new
    // tables' statistics before readers arrive (autovacuum would, a while later).
    let unlocked = |name: String| {
        sqlx::query_scalar::<_, i64>("SELECT sequence FROM projection_checkpoints WHERE name = $1")
            .bind(name)
    };
    let live = unlocked(consumer(gens.live)).fetch_optional(db).await?;
    let built = unlocked(consumer(building)).fetch_optional(db).await?;
    if built.unwrap_or(0) < live.unwrap_or(0) {
        return Ok(false);
    }
    let t = Tables::of(building);
    sqlx::query(&format!("ANALYZE {}", all_tables(&t)))
        .execute(db)
        .await?;
    let mut tx = db.begin().await?;
    if locked(&mut tx).await? != gens {
        return Ok(false);
    }
    // Both checkpoints held (FOR SHARE) until the switch commits: a batch of the
    // live generation in flight is waited for, and none commits meanwhile, so the
    // new generation is not a batch behind what readers saw.
    let checkpoint = |name: String| {
        sqlx::query_scalar::<_, i64>(
            "SELECT sequence FROM projection_checkpoints WHERE name = $1 FOR SHARE",
        )
        .bind(name)
    };
    let live: i64 = checkpoint(consumer(gens.live))
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(0);
    let built: i64 = checkpoint(consumer(building))
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(0);
    if built < live {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE analytics_generations SET state = CASE generation WHEN $1 THEN 'retired' ELSE 'live' END, \
         live_at = CASE generation WHEN $2 THEN now() ELSE live_at END \
         WHERE generation IN ($1, $2)",
    )
    .bind(gens.live)
    .bind(building)
    .execute(&mut *tx)
    .await?;
    for (view, table) in t.with_views() {
        sqlx::query(&format!(
            "CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table}"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(
        generation = building,
        at = built,
        "read models: rebuilt generation is live"
    );
    Ok(true)
}

/// Drops what retired generations left: tables, checkpoints, consumers (every
/// round, so what a stale replica recreated goes too). It waits at most a few
/// seconds for readers of the old tables; what it could not drop now is dropped
/// next round. A projection of a retired generation still running elsewhere
/// fails on its next write and starts again on the live one.
async fn clear_retired(log: &EventLog, db: &PgPool) -> Result<(), ProjectionError> {
    let retired: Vec<i32> =
        sqlx::query_scalar("SELECT generation FROM analytics_generations WHERE state = 'retired'")
            .fetch_all(db)
            .await?;
    let js = async_nats::jetstream::new(log.client().clone());
    for generation in retired {
        let t = Tables::of(generation);
        let mut tx = db.begin().await?;
        sqlx::query("SELECT set_config('lock_timeout', '3s', true)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", all_tables(&t)))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(consumer(generation))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if let Ok(stream) = js.get_stream(log.stream_name()).await {
            // Gone already is fine; anything else is tried again next round.
            let _ = stream.delete_consumer(&consumer(generation)).await;
        }
    }
    Ok(())
}

/// How long a failed rebuild waits before its projection runs again.
const REBUILD_RETRY: Duration = Duration::from_secs(5);

/// The projections of one round, each with its generation.
type Projections = tokio::task::JoinSet<(i32, Result<(), ProjectionError>)>;

fn spawn(
    projections: &mut Projections,
    (log, db): (&EventLog, &PgPool),
    generation: i32,
    delay: Duration,
    round: &CancellationToken,
) {
    let (log, db, round) = (log.clone(), db.clone(), round.clone());
    projections.spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = round.cancelled() => return (generation, Ok(())),
        }
        let models = Arc::new(ReadModels::generation(generation));
        (
            generation,
            frontline_projection::run(log, db, models, round).await,
        )
    });
}

/// Keeps every current generation's projection running until `stop`; switches a
/// rebuilt generation live when it has caught up. The live generation's
/// projection failing ends the run (the task restarts); a rebuild's failing is
/// logged and retried, the live one running on.
pub async fn run(
    log: EventLog,
    db: PgPool,
    stop: CancellationToken,
) -> Result<(), ProjectionError> {
    loop {
        let gens = current(&db).await?;
        let round = stop.child_token();
        let mut projections = Projections::new();
        for generation in [Some(gens.live), gens.building].into_iter().flatten() {
            spawn(
                &mut projections,
                (&log, &db),
                generation,
                Duration::ZERO,
                &round,
            );
        }
        if let Err(error) = clear_retired(&log, &db).await {
            tracing::warn!(%error, "read models: a retired generation is not dropped yet");
        }
        let next = watch(&log, &db, gens, &mut projections, &round, &stop).await;
        round.cancel();
        while projections.join_next().await.is_some() {}
        match next {
            Ok(true) => continue,
            Ok(false) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Waits for a change: `Ok(true)` to start a new round (generations changed),
/// `Ok(false)` when stopped, `Err` when the live projection failed.
async fn watch(
    log: &EventLog,
    db: &PgPool,
    gens: Generations,
    projections: &mut Projections,
    round: &CancellationToken,
    stop: &CancellationToken,
) -> Result<bool, ProjectionError> {
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(false),
            Some(done) = projections.join_next() => {
                let (generation, result) = done.map_err(|e| {
                    ProjectionError::Ended(format!("projection task: {e}"))
                })?;
                match result {
                    Err(error) if Some(generation) == gens.building => {
                        tracing::warn!(generation, %error, "read models: the rebuild failed; retrying");
                        spawn(projections, (log, db), generation, REBUILD_RETRY, round);
                    }
                    Err(error) => return Err(error),
                    Ok(()) => return Ok(!stop.is_cancelled()),
                }
            }
            () = tokio::time::sleep(WATCH) => {
                let switched = match try_switch(db, gens).await {
                    Ok(switched) => switched,
                    Err(error) => {
                        tracing::warn!(%error, "read models: switching generations failed; retrying");
                        false
                    }
                };
                if switched || current(db).await? != gens {
                    return Ok(true);
                }
            }
        }
    }
}

/// The stream sequence the live generation has applied up to (0 before any).
pub async fn live_checkpoint(db: &PgPool) -> Result<u64, sqlx::Error> {
    let sequence: Option<i64> = sqlx::query_scalar(
        "SELECT c.sequence FROM analytics_generations g \
         JOIN projection_checkpoints c ON c.name = 'analytics-g' || g.generation \
         WHERE g.state = 'live'",
    )
    .fetch_optional(db)
    .await?;
    Ok(sequence.map_or(0, |s| u64::try_from(s).unwrap_or_default()))
}
