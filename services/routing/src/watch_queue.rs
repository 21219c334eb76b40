//! `WatchQueue`: an agent's work as it happens — tickets assigned to them, SLA
//! warnings and breaches on tickets they hold, low ratings raised on tickets they
//! handled — from the log as it lands (every ticket event is looked at; those of
//! other agents and of tenants the caller does not cover are skipped).

use std::pin::pin;

use frontline_domain::{Caller, DomainError, Role, Ticket, TicketEvent, sla::clocks::Alarm};
use frontline_eventlog::{EventLog, LoggedEvent};
use frontline_proto::{convert, v1};
use frontline_runtime::{ApiError, outbox};
use futures::StreamExt as _;
use uuid::Uuid;

use crate::agents;

/// The updates a watcher receives.
pub type Updates = outbox::Updates<v1::QueueUpdate>;

/// Starts watching `agent_id`'s queue for `caller`: an agent their own, staff any
/// agent they see.
pub async fn start(log: &EventLog, caller: &Caller, agent_id: &str) -> Result<Updates, ApiError> {
    frontline_domain::limits::idempotency_key("agent_id", agent_id)?;
    if caller.actor.role == Role::Agent && caller.actor.id != agent_id {
        return Err(DomainError::NotPermitted {
            action: "watch a queue",
            reason: "agents watch their own queue".into(),
        }
        .into());
    }
    agents::load_visible(log, caller, agent_id).await?;
    let events = log.tail::<TicketEvent>("frontline.ticket.>").await?;
    let (out, updates) = outbox::outbox();
    let (log, caller, agent_id) = (log.clone(), caller.clone(), agent_id.to_string());
    tokio::spawn(async move {
        let mut events = pin!(events);
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                () = out.closed() => return,
            };
            let Some(event) = event else { return };
            let update = match event {
                Ok((subject, event)) => update(&log, &caller, &agent_id, &subject, event).await,
                Err(e) => Err(e.into()),
            };
            let update = match update {
                Ok(Some(update)) => update,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(agent_id, error = %e, "a queue watch ended");
                    out.fail(e.into()).await;
                    return;
                }
            };
            if out
                .send(update, || "watch again (updates are live only)".into())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    Ok(updates)
}

/// What `agent_id`'s watcher gets for `event`, if anything.
async fn update(
    log: &EventLog,
    caller: &Caller,
    agent_id: &str,
    subject: &str,
    event: LoggedEvent<TicketEvent>,
) -> Result<Option<v1::QueueUpdate>, ApiError> {
    let kind = match &event.event {
        Some(TicketEvent::Assigned(a)) if a.agent == agent_id => v1::QueueUpdateKind::Assigned,
        Some(TicketEvent::SlaAlarm { alarm, .. }) => match alarm {
            Alarm::Warning => v1::QueueUpdateKind::SlaWarning,
            Alarm::Breach => v1::QueueUpdateKind::SlaBreached,
        },
        Some(TicketEvent::FollowUpRaised { .. }) => v1::QueueUpdateKind::FollowUp,
        Some(TicketEvent::CheckInDue { agent, .. }) if agent == agent_id => {
            v1::QueueUpdateKind::CheckInDue
        }
        _ => return Ok(None),
    };
    // The ticket is the subject's last token.
    let Some(id) = subject
        .rsplit('.')
        .next()
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        return Ok(None);
    };
    // The ticket as of this event: whose it is, and whether the caller sees it.
    let ticket = log.load::<Ticket>(&id).await?.state;
    let theirs = match kind {
        v1::QueueUpdateKind::Assigned | v1::QueueUpdateKind::CheckInDue => true,
        _ => ticket.assignee.as_deref() == Some(agent_id),
    };
    if !theirs || !caller.tenants.covers(&ticket.tenant) {
        return Ok(None);
    }
    Ok(Some(v1::QueueUpdate {
        kind: kind.into(),
        ticket_id: id.to_string(),
        tenant: ticket.tenant.to_string(),
        occurred_at: Some(convert::timestamp(event.at)),
        summary: event
            .event
            .as_ref()
            .map(TicketEvent::summary)
            .unwrap_or_default(),
        version: event.version,
    }))
}
