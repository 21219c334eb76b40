//! Reading tickets: current state, state as of a version, and full history.

use frontline_domain::{Aggregate, Customer, DomainError, Ticket};
use frontline_eventlog::{EventLog, LogError, LoggedEvent};
use frontline_proto::{convert, v1};
use uuid::Uuid;

/// Why a ticket could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not found or a bad version.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

fn not_found(id: &Uuid) -> DomainError {
    DomainError::NotFound {
        kind: "ticket",
        id: id.to_string(),
    }
}

/// The ticket now, or exactly as it was after `as_of_version` events.
pub async fn state(
    log: &EventLog,
    id: &Uuid,
    as_of_version: Option<u64>,
) -> Result<Ticket, ReadError> {
    let ticket = match as_of_version {
        None => log.load::<Ticket>(id).await?.state,
        Some(0) => {
            return Err(DomainError::invalid("as_of_version", "must be at least 1").into());
        }
        Some(version) => {
            let events = log.read::<Ticket>(id, Some(version)).await?;
            let mut ticket = Ticket::default();
            for e in &events {
                ticket.apply(&e.recorded);
            }
            if ticket.exists() && ticket.version < version {
                return Err(DomainError::invalid(
                    "as_of_version",
                    format!("the ticket has only {} events", ticket.version),
                )
                .into());
            }
            ticket
        }
    };
    if ticket.exists() {
        Ok(ticket)
    } else {
        Err(not_found(id).into())
    }
}

/// The wire view of a ticket for a caller (`staff` see internal notes), with the
/// customer's current facts.
pub async fn view(
    log: &EventLog,
    id: &Uuid,
    ticket: &Ticket,
    staff: bool,
) -> Result<v1::Ticket, LogError> {
    let customer = log.load::<Customer>(&ticket.customer_id).await?;
    let customer = customer.state.exists().then_some(&customer.state);
    Ok(convert::ticket(id, ticket, staff, customer))
}

/// Every event of the ticket, oldest first.
pub async fn history(log: &EventLog, id: &Uuid) -> Result<Vec<v1::HistoryEntry>, ReadError> {
    let events = log.read::<Ticket>(id, None).await?;
    if events.is_empty() {
        return Err(not_found(id).into());
    }
    Ok(events.iter().map(entry).collect())
}

fn entry(e: &LoggedEvent<frontline_domain::TicketEvent>) -> v1::HistoryEntry {
    v1::HistoryEntry {
        version: e.version,
        event_id: e.event_id.clone(),
        event_type: e.event_type.clone(),
        occurred_at: Some(convert::timestamp(e.recorded.at)),
        actor: Some(v1::Actor {
            id: e.recorded.actor.id.clone(),
            role: v1::Role::from(e.recorded.actor.role).into(),
        }),
        correlation_id: e.correlation_id.clone(),
        causation_id: e.causation_id.clone(),
        stream_sequence: e.sequence,
        summary: e.recorded.event.summary(),
    }
}
