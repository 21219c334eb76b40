//! Reading customers and the tickets they still have open.

use frontline_domain::{Customer, Ticket};
use frontline_eventlog::{EventLog, LogError};
use frontline_proto::{convert, v1};
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

/// How many of a customer's most recent tickets are checked for "still open".
pub const OPEN_TICKETS_LOOKBACK: usize = 50;
/// Tickets loaded at once while checking.
const CONCURRENT_LOADS: usize = 8;

/// The customer's tickets that are not solved or closed, newest first, leaving out
/// `except`. Looks at the [`OPEN_TICKETS_LOOKBACK`] most recent tickets.
pub async fn open_tickets(
    log: &EventLog,
    customer: &Customer,
    except: Option<Uuid>,
) -> Result<Vec<v1::TicketSummary>, LogError> {
    let recent: Vec<Uuid> = customer
        .ticket_ids
        .iter()
        .rev()
        .filter(|id| Some(**id) != except)
        .take(OPEN_TICKETS_LOOKBACK)
        .copied()
        .collect();
    let loaded: Vec<(Uuid, Ticket)> = futures::stream::iter(recent)
        .map(|id| async move { log.load::<Ticket>(&id).await.map(|l| (id, l.state)) })
        .buffered(CONCURRENT_LOADS)
        .try_collect()
        .await?;
    Ok(loaded
        .iter()
        .filter(|(_, t)| t.status.is_some_and(|s| s.is_active()))
        .map(|(id, t)| convert::ticket_summary(id, t))
        .collect())
}

/// The wire view of a customer.
pub async fn view(log: &EventLog, id: Uuid, customer: &Customer) -> Result<v1::Customer, LogError> {
    Ok(v1::Customer {
        customer_id: id.to_string(),
        identity: Some(convert::identity(&customer.identity)),
        facts: convert::facts(&customer.facts),
        open_tickets: open_tickets(log, customer, None).await?,
        ticket_ids: customer.ticket_ids.iter().map(Uuid::to_string).collect(),
        first_contact_at: customer.first_contact_at.map(convert::timestamp),
        last_contact_at: customer.last_contact_at.map(convert::timestamp),
        version: customer.version,
    })
}
