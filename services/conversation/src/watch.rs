//! `WatchTicket`: a ticket's events after a version, then live as they land, read
//! from the log itself (an ordered consumer of the ticket's subject). Customer
//! systems get only what adds a message they may see or changes the status. A
//! watcher that stops reading is cut off with RESOURCE_EXHAUSTED rather than
//! buffered without bound.

use std::pin::pin;

use frontline_domain::{Caller, Ticket, TicketView};
use frontline_eventlog::{EventLog, LoggedEvent};
use frontline_proto::{convert, v1};
use frontline_runtime::{ApiError, outbox};
use futures::StreamExt as _;
use uuid::Uuid;

use crate::tickets::{self, AsOf};

/// The updates a watcher receives.
pub type Updates = outbox::Updates<v1::TicketUpdate>;

/// Starts watching ticket `id` after version `from` for `caller`: NOT_FOUND for a
/// ticket they may not see, INVALID_ARGUMENT for a version it has not reached.
pub async fn start(
    log: &EventLog,
    caller: &Caller,
    id: Uuid,
    from: u64,
) -> Result<Updates, ApiError> {
    // The state the first update applies to (and the tenant and existence checks).
    let now = tickets::view(log, caller, &id, AsOf::Now).await?;
    if from > now.version {
        return Err(ApiError::invalid(
            "from_version",
            format!("the ticket has only {} events", now.version),
        ));
    }
    let before = if from == 0 {
        TicketView::default()
    } else {
        tickets::view(log, caller, &id, AsOf::Version(from)).await?
    };
    let events = log.watch::<Ticket>(&id, from).await?;
    let staff = caller.actor.role.is_staff();
    let (out, updates) = outbox::outbox();
    tokio::spawn(async move {
        let mut view = before;
        let mut events = pin!(events);
        loop {
            // A watcher that hangs up ends the watch at once, even on a quiet ticket.
            let event = tokio::select! {
                event = events.next() => event,
                () = out.closed() => return,
            };
            let Some(event) = event else { return };
            let update = match event {
                Ok(event) => update(&mut view, event, staff),
                Err(e) => {
                    tracing::warn!(ticket_id = %id, error = %e, "a ticket watch ended");
                    out.fail(ApiError::from(e).into()).await;
                    return;
                }
            };
            let Some(update) = update else { continue };
            let last = update.version.saturating_sub(1);
            if out
                .send(update, || format!("watch again from version {last}"))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    Ok(updates)
}

/// What the watcher gets for `event`, applied to `view`: every event for staff; for
/// a customer system only one that adds a message it may see or moves the status.
fn update(
    view: &mut TicketView,
    event: LoggedEvent<frontline_domain::TicketEvent>,
    staff: bool,
) -> Option<v1::TicketUpdate> {
    let (messages_before, status_before) = (view.messages.len(), view.status);
    let summary = event.event.as_ref().map_or_else(
        || format!("{} (not known to this version)", event.event_type),
        frontline_domain::TicketEvent::summary,
    );
    let (version, event_type, at, actor) = (
        event.version,
        event.event_type.clone(),
        event.at,
        event.actor.clone(),
    );
    match event.into_recorded() {
        Some(recorded) => view.apply(&recorded),
        None => view.skip_unknown(),
    }
    let messages: Vec<v1::Message> = view.messages[messages_before..]
        .iter()
        .filter(|m| staff || m.customer_visible())
        .map(convert::message)
        .collect();
    if !staff && messages.is_empty() && view.status == status_before {
        return None;
    }
    Some(v1::TicketUpdate {
        version,
        event_type,
        occurred_at: Some(convert::timestamp(at)),
        actor: Some(v1::Actor {
            id: actor.id,
            role: v1::Role::from(actor.role).into(),
        }),
        summary,
        status: view.status.map_or(0, |s| v1::TicketStatus::from(s).into()),
        messages,
    })
}
