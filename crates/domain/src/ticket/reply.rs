//! `Reply`: support answers the customer publicly.
//!
//! Rules: only a new, open or pending ticket takes replies; a reply awaiting the
//! customer makes the ticket pending, any other reply makes it open.

use super::{TicketEvent, TicketStatus, refuse};
use crate::{DomainError, limits};

/// The reply's own fields (the idempotency key is checked in `mod.rs`).
pub(super) fn validate(body: &str) -> Result<(), DomainError> {
    limits::body("body", body)
}

/// Replies on a ticket in `status`.
pub(super) fn decide(
    status: TicketStatus,
    body: &str,
    awaiting_customer: bool,
    idempotency_key: &Option<String>,
) -> Result<TicketEvent, DomainError> {
    if status == TicketStatus::DeclineProposed {
        return Err(refuse(
            "reply",
            "a proposed decline awaits a manager: approve or reject it first",
        ));
    }
    if !status.is_active() {
        return Err(refuse(
            "reply",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    Ok(TicketEvent::AgentReplied {
        body: body.to_string(),
        awaiting_customer,
        idempotency_key: idempotency_key.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn active_tickets_take_replies() {
        for status in [TicketStatus::New, TicketStatus::Open, TicketStatus::Pending] {
            let event = decide(status, "Restart it.", true, &Some("r".into())).unwrap();
            assert_eq!(
                event,
                TicketEvent::AgentReplied {
                    body: "Restart it.".into(),
                    awaiting_customer: true,
                    idempotency_key: Some("r".into()),
                }
            );
        }
    }

    #[test]
    fn a_proposed_decline_waits_for_the_manager() {
        assert!(
            refusal(decide(TicketStatus::DeclineProposed, "b", false, &None))
                .contains("awaits a manager")
        );
    }

    #[test]
    fn solved_and_closed_tickets_take_no_replies() {
        assert_eq!(
            refusal(decide(TicketStatus::Solved, "b", false, &None)),
            "the ticket is solved"
        );
        assert_eq!(
            refusal(decide(TicketStatus::Closed, "b", true, &None)),
            "the ticket is closed"
        );
    }

    #[test]
    fn the_body_is_required() {
        assert_eq!(invalid_field(validate(" \n")), "body");
    }
}
