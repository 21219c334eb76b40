//! `MergeTicket` and `UnmergeTicket`: both tickets' events, decided together by the
//! domain (`frontline_domain::ticket::merge`), stored together in one atomic batch,
//! each expecting the state it was decided on; a lost race is decided again.

use frontline_domain::{Caller, Ticket, ticket};
use frontline_eventlog::{Batch, CommandOptions, EventLog, EventMeta, Loaded, LogError};
use frontline_proto::v1;
use frontline_runtime::{ApiError, now_millis};
use uuid::Uuid;

/// What to do: merge into a target, or undo the merge.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    /// Merge the source into this ticket.
    Into(Uuid),
    /// Undo the source's merge.
    Undo,
}

/// Merges or unmerges `source` for `caller`; answers both tickets after.
pub async fn run(
    log: &EventLog,
    options: CommandOptions,
    (caller, meta): (&Caller, &EventMeta),
    source_id: Uuid,
    change: Change,
    reason: &str,
) -> Result<(v1::TicketChange, v1::TicketChange), ApiError> {
    // The reason before anything is read.
    ticket::merge::validate(reason)?;
    let attempts = options.max_attempts.max(1);
    for attempt in 0..attempts {
        if attempt > 0 {
            frontline_eventlog::retry_pause(attempt).await;
        }
        let source = log.load::<Ticket>(&source_id).await?;
        caller.check_sees("ticket", &source_id, &source.state.tenant)?;
        let target_id = match change {
            Change::Into(target) => target,
            // Not merged: the domain says so (with a target that is nothing).
            Change::Undo => source.state.merged_into.unwrap_or_default(),
        };
        let target = log.load::<Ticket>(&target_id).await?;
        if matches!(change, Change::Into(_)) {
            caller.check_sees("ticket", &target_id, &target.state.tenant)?;
        }
        let sides = ((source_id, &source.state), (target_id, &target.state));
        let events = match change {
            Change::Into(_) => ticket::merge(&caller.actor, sides.0, sides.1, reason)?,
            Change::Undo => Some(ticket::unmerge(&caller.actor, sides.0, sides.1, reason)?),
        };
        let Some((on_source, on_target)) = events else {
            // Merged already: a repeat.
            return Ok((
                wire(source_id, &source, false),
                wire(target_id, &target, false),
            ));
        };
        let now = now_millis();
        let mut batch = Batch::new();
        let staged_source = batch.stage(&source_id, &source, on_source, meta, now);
        let staged_target = batch.stage(&target_id, &target, on_target, meta, now);
        match log.commit(batch).await {
            Ok(committed) => {
                let source = committed.loaded(log, staged_source);
                let target = committed.loaded(log, staged_target);
                tracing::info!(%source_id, %target_id, ?change, "tickets merged or unmerged");
                return Ok((
                    wire(source_id, &source, true),
                    wire(target_id, &target, true),
                ));
            }
            Err(LogError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Aborted(format!(
        "gave up after {attempts} concurrent-modification retries; retry"
    )))
}

fn wire(id: Uuid, loaded: &Loaded<Ticket>, recorded: bool) -> v1::TicketChange {
    v1::TicketChange {
        ticket_id: id.to_string(),
        version: loaded.state.version,
        status: loaded
            .state
            .status
            .map_or(0, |s| v1::TicketStatus::from(s).into()),
        recorded,
    }
}
