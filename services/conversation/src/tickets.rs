//! Reading tickets: views built from the events on read (now or as of a version),
//! and the full history. The aggregate keeps only what `decide` needs; bodies and
//! timelines live here.

use frontline_domain::{Caller, Customer, DomainError, Ticket, TicketView, UnixMillis};
use frontline_eventlog::{EventLog, LoggedEvent};
use frontline_proto::{convert, v1};
use frontline_runtime::ApiError;
use uuid::Uuid;

fn not_found(id: &Uuid) -> ApiError {
    DomainError::NotFound {
        kind: "ticket",
        id: id.to_string(),
    }
    .into()
}

/// Which state of a ticket to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// Now.
    Now,
    /// After this many events (at least 1).
    Version(u64),
    /// At this moment: every event stored at or before it.
    Time(UnixMillis),
}

impl AsOf {
    /// From a request's `as_of_version` and `as_of_time` (at most one).
    pub fn parse(
        version: Option<u64>,
        time: Option<&prost_types::Timestamp>,
    ) -> Result<AsOf, ApiError> {
        match (version, time) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "as_of_time",
                "set at most one of as_of_version and as_of_time",
            )),
            (Some(0), None) => Err(ApiError::invalid("as_of_version", "must be at least 1")),
            (Some(v), None) => Ok(AsOf::Version(v)),
            (None, Some(t)) => Ok(AsOf::Time(convert::millis_checked(t).ok_or_else(|| {
                ApiError::invalid("as_of_time", "not a valid time between 1970 and 9999")
            })?)),
            (None, None) => Ok(AsOf::Now),
        }
    }
}

/// The ticket now, or exactly as it was after a version or at a moment; NOT_FOUND
/// for a ticket of a tenant `caller` does not cover.
pub async fn view(
    log: &EventLog,
    caller: &Caller,
    id: &Uuid,
    as_of: AsOf,
) -> Result<TicketView, ApiError> {
    let until = match as_of {
        AsOf::Version(v) => Some(v),
        AsOf::Now | AsOf::Time(_) => None,
    };
    let mut events = log.read::<Ticket>(id, until).await?;
    let opened = TicketView::replay(
        events
            .iter()
            .take(1)
            .cloned()
            .map(LoggedEvent::into_recorded),
    );
    caller.check_sees("ticket", id, &opened.tenant)?;
    if !opened.exists() {
        return Err(not_found(id));
    }
    if let AsOf::Time(at) = as_of {
        // Events are decided in order, so their times never go back: keep a prefix.
        let kept = events.iter().take_while(|e| e.at <= at).count();
        if kept == 0 {
            return Err(ApiError::invalid(
                "as_of_time",
                "the ticket was not opened yet then",
            ));
        }
        events.truncate(kept);
    }
    let view = TicketView::replay(events.into_iter().map(LoggedEvent::into_recorded));
    if let AsOf::Version(version) = as_of
        && view.version < version
    {
        return Err(ApiError::invalid(
            "as_of_version",
            format!("the ticket has only {} events", view.version),
        ));
    }
    Ok(view)
}

/// The person behind customer record `id`: the record it shows through, and the
/// records linked into that one.
pub async fn person(log: &EventLog, id: Uuid) -> Result<(Customer, Vec<Customer>), ApiError> {
    let mut customer = log.load::<Customer>(&id).await?.state;
    if let Some(into) = customer.linked_into {
        customer = log.load::<Customer>(&into).await?.state;
    }
    let linked: Vec<Uuid> = customer.linked.iter().copied().collect();
    let linked =
        futures::future::try_join_all(linked.iter().map(|l| log.load::<Customer>(l))).await?;
    Ok((customer, linked.into_iter().map(|l| l.state).collect()))
}

/// The wire view of a ticket for a caller (`staff` see internal notes), with the
/// customer's current facts (those of the person: records linked into the one
/// shown included).
pub async fn wire(
    log: &EventLog,
    id: &Uuid,
    ticket: &TicketView,
    staff: bool,
) -> Result<v1::Ticket, ApiError> {
    let (customer, linked) = person(log, ticket.customer_id).await?;
    let facts = customer.person_facts(linked.iter());
    let mut wire = convert::ticket(id, ticket, staff, &facts);
    // Tickets merged into this one: their messages show here, in time order.
    for source in &ticket.merged_from {
        let events = log.read::<Ticket>(source, None).await?;
        let merged = TicketView::replay(events.into_iter().map(LoggedEvent::into_recorded));
        // A customer system sees its own customer's words only (a manager may merge
        // two customers' tickets).
        if !staff && merged.customer_id != ticket.customer_id {
            continue;
        }
        wire.messages.extend(
            merged
                .messages
                .iter()
                .filter(|m| staff || m.customer_visible())
                .map(|m| v1::Message {
                    ticket_id: source.to_string(),
                    ..convert::message(m)
                }),
        );
    }
    if !ticket.merged_from.is_empty() {
        wire.messages
            .sort_by_key(|m| m.at.as_ref().map(convert::millis));
    }
    Ok(wire)
}

/// Every event of the ticket, oldest first; NOT_FOUND for a ticket of a tenant
/// `caller` does not cover.
pub async fn history(
    log: &EventLog,
    caller: &Caller,
    id: &Uuid,
) -> Result<Vec<v1::HistoryEntry>, ApiError> {
    let events = log.read::<Ticket>(id, None).await?;
    let opened = TicketView::replay(
        events
            .iter()
            .take(1)
            .cloned()
            .map(LoggedEvent::into_recorded),
    );
    caller.check_sees("ticket", id, &opened.tenant)?;
    if events.is_empty() {
        return Err(not_found(id));
    }
    Ok(events.iter().map(entry).collect())
}

fn entry(e: &LoggedEvent<frontline_domain::TicketEvent>) -> v1::HistoryEntry {
    v1::HistoryEntry {
        version: e.version,
        event_id: e.event_id.clone(),
        event_type: e.event_type.clone(),
        occurred_at: Some(convert::timestamp(e.at)),
        actor: Some(v1::Actor {
            id: e.actor.id.clone(),
            role: v1::Role::from(e.actor.role).into(),
        }),
        correlation_id: e.correlation_id.clone(),
        causation_id: e.causation_id.clone(),
        stream_sequence: e.sequence,
        summary: e.event.as_ref().map_or_else(
            || format!("{} (not known to this version)", e.event_type),
            frontline_domain::TicketEvent::summary,
        ),
    }
}
