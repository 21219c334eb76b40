//! `AddCustomerMessage`: the customer writes again on their ticket.
//!
//! Rules: only the ticket's own customer continues it; a message on a pending ticket
//! opens it, on a solved ticket reopens it (up to [`limits::MAX_REOPENS`]); a closed
//! ticket takes no more messages.

use uuid::Uuid;

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{Channel, DomainError, limits};

/// The message's own fields (the idempotency key is checked in `mod.rs`).
pub(super) fn validate(body: &str) -> Result<(), DomainError> {
    limits::body("body", body)
}

/// Ownership: only the customer who opened the ticket continues it.
pub(super) fn check_owner(ticket: &Ticket, customer_id: Uuid) -> Result<(), DomainError> {
    if customer_id != ticket.customer_id {
        return Err(refuse("continue ticket", "it belongs to another customer"));
    }
    Ok(())
}

/// Whether a message by `customer_id` opens a follow-up ticket instead: the ticket
/// is theirs and closed. Someone else's ticket is refused as continuing it would be.
pub(super) fn follows_up(ticket: &Ticket, customer_id: Uuid) -> Result<bool, DomainError> {
    check_owner(ticket, customer_id)?;
    Ok(ticket.status == Some(TicketStatus::Closed))
}

/// Adds the message to a ticket in `status`, reopening it if it was solved.
pub(super) fn decide(
    ticket: &Ticket,
    status: TicketStatus,
    body: &str,
    channel: Channel,
    idempotency_key: &str,
) -> Result<TicketEvent, DomainError> {
    if status == TicketStatus::Closed {
        return Err(refuse("continue ticket", "it is closed; open a new one"));
    }
    let reopened = status == TicketStatus::Solved;
    if reopened && ticket.reopen_count >= limits::MAX_REOPENS {
        return Err(refuse(
            "continue ticket",
            format!(
                "it was reopened {} times already; open a new one",
                ticket.reopen_count
            ),
        ));
    }
    Ok(TicketEvent::CustomerMessageAdded {
        body: body.to_string(),
        channel,
        idempotency_key: idempotency_key.to_string(),
        reopened,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn message(ticket: &Ticket) -> Result<TicketEvent, DomainError> {
        let status = ticket.status.unwrap();
        decide(ticket, status, "Still broken.", Channel::Chat, "m-1")
    }

    fn reopened(event: TicketEvent) -> bool {
        match event {
            TicketEvent::CustomerMessageAdded { reopened, .. } => reopened,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_closed_ticket_of_the_customer_is_followed_up() {
        assert_eq!(
            follows_up(&ticket(TicketStatus::Closed), CUSTOMER),
            Ok(true)
        );
        assert_eq!(
            follows_up(&ticket(TicketStatus::Solved), CUSTOMER),
            Ok(false)
        );
        let stranger = Uuid::from_u128(9);
        assert!(
            refusal(follows_up(&ticket(TicketStatus::Closed), stranger))
                .contains("another customer")
        );
    }

    #[test]
    fn active_tickets_take_messages_without_reopening() {
        for status in [TicketStatus::New, TicketStatus::Open, TicketStatus::Pending] {
            assert!(!reopened(message(&ticket(status)).unwrap()), "{status:?}");
        }
    }

    #[test]
    fn a_message_reopens_a_solved_ticket_below_the_limit() {
        let mut t = ticket(TicketStatus::Solved);
        t.reopen_count = limits::MAX_REOPENS - 1;
        assert!(reopened(message(&t).unwrap()));
        t.reopen_count = limits::MAX_REOPENS;
        assert!(refusal(message(&t)).contains("open a new one"));
    }

    #[test]
    fn a_closed_ticket_takes_no_messages() {
        assert!(refusal(message(&ticket(TicketStatus::Closed))).contains("closed"));
    }

    #[test]
    fn only_the_tickets_customer_continues_it() {
        let t = ticket(TicketStatus::Open);
        assert_eq!(check_owner(&t, CUSTOMER), Ok(()));
        assert!(refusal(check_owner(&t, Uuid::from_u128(7))).contains("another customer"));
    }

    #[test]
    fn the_body_is_required() {
        assert_eq!(invalid_field(validate("")), "body");
        assert_eq!(validate("hi"), Ok(()));
    }
}
