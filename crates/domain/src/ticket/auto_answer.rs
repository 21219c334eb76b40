//! The basic tier's automated first answer, never at the customer's expense.
//!
//! Rules:
//! - `AutoAnswer` (routing, as the system): only a new ticket with nothing since
//!   its opening (no message, nobody took it), once. The ticket then waits on the customer (pending) and owes no
//!   agent yet; the answer is no first response for the SLA (its clocks go on).
//! - `RequestHuman` (the customer system): on an automatically answered ticket
//!   still waiting on the customer with no person on it, the ticket goes to the
//!   queue at once, one priority higher. Asking again (or once a person is on it)
//!   is a repeat. The customer writing again does the same,
//!   without the raise.

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{DomainError, Priority, limits};

/// The answer's fields.
pub(super) fn validate(body: &str, rule: &str) -> Result<(), DomainError> {
    limits::body("body", body)?;
    limits::text("rule", rule, limits::MAX_PRODUCT_AREA_CHARS)
}

/// Answers a ticket in `status` automatically.
pub(super) fn answer(
    ticket: &Ticket,
    status: TicketStatus,
    body: &str,
    rule: &str,
) -> Result<Option<TicketEvent>, DomainError> {
    if ticket.auto_answered {
        return Ok(None);
    }
    // Nothing since the opening: a customer who wrote again meanwhile, or a ticket
    // someone took, is a person's.
    if status != TicketStatus::New || ticket.assignee.is_some() || ticket.version != 1 {
        return Err(refuse(
            "answer automatically",
            "only a new ticket with nothing since its opening is answered automatically",
        ));
    }
    Ok(Some(TicketEvent::AutoAnswered {
        body: body.to_string(),
        rule: rule.to_string(),
    }))
}

/// The customer asks for a person.
pub(super) fn request_human(
    ticket: &Ticket,
    status: TicketStatus,
) -> Result<Option<TicketEvent>, DomainError> {
    if !ticket.auto_answered {
        return Err(refuse(
            "ask for a person",
            "the ticket was not answered automatically: a person handles it already",
        ));
    }
    // Still waiting on the customer after the automated answer, or a person is
    // on it already (asked for, assigned, or working it in another way).
    if ticket.human_requested || ticket.assignee.is_some() || status != TicketStatus::Pending {
        return Ok(None);
    }
    Ok(Some(TicketEvent::HumanRequested {
        priority: raised(ticket.priority),
    }))
}

/// One step more urgent.
pub fn raised(priority: Priority) -> Priority {
    match priority {
        Priority::Low => Priority::Normal,
        Priority::Normal => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn a_new_ticket_is_answered_once() {
        let t = ticket(TicketStatus::New);
        let event = answer(&t, TicketStatus::New, "Try a restart.", "basic-router").unwrap();
        assert!(matches!(event, Some(TicketEvent::AutoAnswered { .. })));
        let answered = Ticket {
            auto_answered: true,
            ..ticket(TicketStatus::Pending)
        };
        assert_eq!(answer(&answered, TicketStatus::Pending, "x", "r"), Ok(None));
        assert!(
            refusal(answer(
                &ticket(TicketStatus::Open),
                TicketStatus::Open,
                "x",
                "r"
            ))
            .contains("new ticket")
        );
    }

    #[test]
    fn a_ticket_the_customer_wrote_to_again_is_a_persons() {
        // Routing handles events in parallel: the customer's second message may be
        // stored before the automated answer is decided.
        let wrote_again = Ticket {
            version: 2,
            ..ticket(TicketStatus::New)
        };
        assert!(
            refusal(answer(&wrote_again, TicketStatus::New, "x", "r")).contains("nothing since")
        );
    }

    #[test]
    fn asking_for_a_person_raises_the_priority_once() {
        let answered = Ticket {
            auto_answered: true,
            ..ticket(TicketStatus::Pending)
        };
        assert_eq!(
            request_human(&answered, TicketStatus::Pending),
            Ok(Some(TicketEvent::HumanRequested {
                priority: Priority::High
            }))
        );
        let asked = Ticket {
            human_requested: true,
            ..answered.clone()
        };
        assert_eq!(request_human(&asked, TicketStatus::Open), Ok(None));
        assert!(
            refusal(request_human(
                &ticket(TicketStatus::Open),
                TicketStatus::Open
            ))
            .contains("not answered")
        );
        assert_eq!(raised(Priority::Urgent), Priority::Urgent);
    }
}
