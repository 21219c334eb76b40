//! `AddNote`: an internal note by support, never shown to the customer.
//!
//! Rules: notes go on any ticket but a closed one (solved tickets included) and
//! change nothing else: not the status, not the first-response time.

use super::{TicketEvent, TicketStatus, refuse};
use crate::{DomainError, limits};

/// The note's own fields (the idempotency key is checked in `mod.rs`).
pub(super) fn validate(body: &str) -> Result<(), DomainError> {
    limits::body("body", body)
}

/// Adds a note to a ticket in `status`.
pub(super) fn decide(
    status: TicketStatus,
    body: &str,
    idempotency_key: &Option<String>,
) -> Result<TicketEvent, DomainError> {
    if status == TicketStatus::Closed {
        return Err(refuse("add a note", "the ticket is closed"));
    }
    Ok(TicketEvent::NoteAdded {
        body: body.to_string(),
        idempotency_key: idempotency_key.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn notes_go_on_every_ticket_but_a_closed_one() {
        for status in [
            TicketStatus::New,
            TicketStatus::Open,
            TicketStatus::Pending,
            TicketStatus::Solved,
        ] {
            let event = decide(status, "Known issue.", &None).unwrap();
            assert!(matches!(event, TicketEvent::NoteAdded { .. }), "{status:?}");
        }
        assert_eq!(
            refusal(decide(TicketStatus::Closed, "n", &None)),
            "the ticket is closed"
        );
    }

    #[test]
    fn a_note_leaves_the_status_alone() {
        let event = decide(TicketStatus::Pending, "n", &None).unwrap();
        for status in [
            TicketStatus::New,
            TicketStatus::Pending,
            TicketStatus::Solved,
        ] {
            assert_eq!(event.status_after(Some(status)), Some(status));
        }
    }

    #[test]
    fn the_body_is_required() {
        assert_eq!(invalid_field(validate("")), "body");
    }
}
