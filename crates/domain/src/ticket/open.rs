//! `Open`: a customer's first contact opens the ticket.
//!
//! Rules: the subject, body and product area are within [`limits`]; the ticket id is
//! derived from the caller's key, so a ticket that exists was opened by that key —
//! for another customer that is `AlreadyExists`, for the same customer with the same
//! key a repeat (`Ok(None)`, decided in `mod.rs`), and otherwise refused.

use super::{Opening, Ticket, TicketEvent, refuse};
use crate::{DomainError, limits};

/// The opening's own fields (the idempotency key is checked in `mod.rs`).
pub(super) fn validate(opening: &Opening) -> Result<(), DomainError> {
    limits::text("subject", &opening.subject, limits::MAX_SUBJECT_CHARS)?;
    limits::body("body", &opening.body)?;
    limits::product_area("product_area", &opening.product_area)
}

/// Ownership: an opened ticket belongs to the customer who opened it; another
/// customer's opening with the same key is `AlreadyExists`, even as a repeat.
pub(super) fn check_owner(ticket: &Ticket, opening: &Opening) -> Result<(), DomainError> {
    if ticket.status.is_some() && opening.customer_id != ticket.customer_id {
        return Err(DomainError::AlreadyExists(format!(
            "idempotency key {:?} already opened a ticket for another customer",
            opening.idempotency_key
        )));
    }
    Ok(())
}

/// Opens a ticket that has no events yet.
pub(super) fn decide(ticket: &Ticket, opening: &Opening) -> Result<TicketEvent, DomainError> {
    if ticket.exists() {
        return Err(refuse("open", "a ticket with this id exists"));
    }
    Ok(TicketEvent::Opened(opening.clone()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use uuid::Uuid;

    use super::super::fixtures::*;
    use super::*;
    use crate::{Channel, Priority, TicketStatus};

    fn opening() -> Opening {
        Opening {
            tenant: crate::TenantId::parse("tenant", "acme").unwrap(),
            channel: Channel::Web,
            customer_id: CUSTOMER,
            subject: "Router broken".into(),
            body: "It blinks red.".into(),
            product_area: "router-x200".into(),
            priority: Priority::Urgent,
            idempotency_key: "k".into(),
            follow_up_of: None,
        }
    }

    #[test]
    fn opens_a_ticket_without_events() {
        let event = decide(&Ticket::default(), &opening()).unwrap();
        assert_eq!(event, TicketEvent::Opened(opening()));
    }

    #[test]
    fn refuses_a_ticket_that_exists() {
        assert!(refusal(decide(&ticket(TicketStatus::New), &opening())).contains("exists"));
        // Even one whose only events are unknown to this code.
        let unknown = Ticket {
            version: 1,
            ..Ticket::default()
        };
        refusal(decide(&unknown, &opening()));
    }

    #[test]
    fn another_customers_opening_already_exists() {
        let other = Opening {
            customer_id: Uuid::from_u128(7),
            ..opening()
        };
        let err = check_owner(&ticket(TicketStatus::Solved), &other).unwrap_err();
        assert!(matches!(err, DomainError::AlreadyExists(_)), "{err:?}");
        assert_eq!(
            check_owner(&ticket(TicketStatus::Solved), &opening()),
            Ok(())
        );
        assert_eq!(check_owner(&Ticket::default(), &other), Ok(()));
    }

    #[test]
    fn validates_subject_body_and_product_area() {
        assert_eq!(validate(&opening()), Ok(()));
        let subject = Opening {
            subject: "s".repeat(limits::MAX_SUBJECT_CHARS + 1),
            ..opening()
        };
        assert_eq!(invalid_field(validate(&subject)), "subject");
        let body = Opening {
            body: " ".into(),
            ..opening()
        };
        assert_eq!(invalid_field(validate(&body)), "body");
        let area = Opening {
            product_area: "Router X".into(),
            ..opening()
        };
        assert_eq!(invalid_field(validate(&area)), "product_area");
    }
}
