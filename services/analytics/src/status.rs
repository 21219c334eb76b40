//! Where each generation's projection stands against the log — applied sequence,
//! the stream's last, what it has still to read (a rebuild's progress) — also
//! exported as the `frontline_projection_lag` gauge.

use std::time::Duration;

use frontline_eventlog::EventLog;
use frontline_proto::{convert, v1};
use frontline_runtime::ApiError;
use sqlx::{PgPool, types::chrono};

use crate::{generations, projection::consumer};

/// How often the lag gauge is refreshed.
pub const LAG_EVERY: Duration = Duration::from_secs(5);

/// Every current generation's projection now: the live one first.
pub async fn of(log: &EventLog, db: &PgPool) -> Result<Vec<v1::ProjectionStatus>, ApiError> {
    let gens = generations::current(db).await?;
    let stream_sequence = log.last_sequence().await?;
    let js = async_nats::jetstream::new(log.client().clone());
    let unavailable =
        |e: &dyn std::fmt::Display| ApiError::Unavailable(format!("the analytics consumer: {e}"));
    let stream = js
        .get_stream(log.stream_name())
        .await
        .map_err(|e| unavailable(&e))?;
    let mut answer = Vec::new();
    for (generation, live) in [(Some(gens.live), true), (gens.building, false)] {
        let Some(generation) = generation else {
            continue;
        };
        let name = consumer(generation);
        let row: Option<(i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT sequence, updated_at FROM projection_checkpoints WHERE name = $1",
        )
        .bind(&name)
        .fetch_optional(db)
        .await?;
        let applied = row.map_or(0, |(s, _)| u64::try_from(s).unwrap_or_default());
        // Not created yet, or just dropped (a rebuild switching over between the
        // generations read above and now): everything after the checkpoint is
        // still to read. NATS being down failed the stream reads above.
        let unread = stream_sequence.saturating_sub(applied);
        let pending = match stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&name)
            .await
        {
            Ok(mut c) => c.info().await.map_or(unread, |i| i.num_pending),
            Err(_) => unread,
        };
        answer.push(v1::ProjectionStatus {
            name,
            applied_sequence: applied,
            stream_sequence,
            pending,
            updated_at: row.map(|(_, at)| convert::timestamp(at.timestamp_millis())),
            generation: u32::try_from(generation).unwrap_or_default(),
            live,
        });
    }
    Ok(answer)
}

/// Sets `frontline_projection_lag{projection="analytics-g<n>"}` (stream sequences
/// the live generation has not applied yet) every [`LAG_EVERY`] until `stop`. A
/// failed reading is skipped.
pub async fn export_lag(
    log: EventLog,
    db: PgPool,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ApiError> {
    loop {
        let last = log.last_sequence().await;
        let gens = generations::current(&db).await;
        let applied = generations::live_checkpoint(&db).await;
        if let (Ok(last), Ok(gens), Ok(applied)) = (last, gens, applied) {
            metrics::gauge!("frontline_projection_lag", "projection" => consumer(gens.live))
                .set(last.saturating_sub(applied) as f64);
        }
        tokio::select! {
            () = tokio::time::sleep(LAG_EVERY) => {}
            () = stop.cancelled() => return Ok(()),
        }
    }
}
