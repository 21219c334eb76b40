//! Where the projection stands against the log: applied sequence, the stream's
//! last, and what it has still to read — also exported as the
//! `frontline_projection_lag` gauge.

use std::time::Duration;

use frontline_eventlog::EventLog;
use frontline_proto::{convert, v1};
use frontline_runtime::ApiError;
use sqlx::{PgPool, types::chrono};

use crate::projection::CONSUMER;

/// How often the lag gauge is refreshed.
pub const LAG_EVERY: Duration = Duration::from_secs(5);

/// The projection's standing now.
pub async fn of(log: &EventLog, db: &PgPool) -> Result<v1::ProjectionStatus, ApiError> {
    let row: Option<(i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT sequence, updated_at FROM projection_checkpoints WHERE name = $1")
            .bind(CONSUMER)
            .fetch_optional(db)
            .await?;
    let stream_sequence = log.last_sequence().await?;
    let js = async_nats::jetstream::new(log.client().clone());
    let unavailable =
        |e: &dyn std::fmt::Display| ApiError::Unavailable(format!("the analytics consumer: {e}"));
    let pending = match js.get_stream(log.stream_name()).await {
        Ok(stream) => match stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(CONSUMER)
            .await
        {
            Ok(mut consumer) => {
                consumer
                    .info()
                    .await
                    .map_err(|e| unavailable(&e))?
                    .num_pending
            }
            // Not created yet: everything is still to read.
            Err(_) => stream_sequence,
        },
        Err(e) => return Err(unavailable(&e)),
    };
    let applied = row.map_or(0, |(s, _)| u64::try_from(s).unwrap_or_default());
    Ok(v1::ProjectionStatus {
        name: CONSUMER.to_string(),
        applied_sequence: applied,
        stream_sequence,
        pending,
        updated_at: row.map(|(_, at)| convert::timestamp(at.timestamp_millis())),
    })
}

/// Sets `frontline_projection_lag{projection="analytics"}` (stream sequences not
/// yet applied) every [`LAG_EVERY`] until `stop`. A failed reading is skipped.
pub async fn export_lag(
    log: EventLog,
    db: PgPool,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ApiError> {
    loop {
        let last = log.last_sequence().await;
        let applied = frontline_projection::checkpoint(&db, CONSUMER).await;
        if let (Ok(last), Ok(applied)) = (last, applied) {
            metrics::gauge!("frontline_projection_lag", "projection" => CONSUMER)
                .set(last.saturating_sub(applied) as f64);
        }
        tokio::select! {
            () = tokio::time::sleep(LAG_EVERY) => {}
            () = stop.cancelled() => return Ok(()),
        }
    }
}
