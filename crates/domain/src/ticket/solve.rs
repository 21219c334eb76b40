//! `Solve`: support marks the ticket solved.
//!
//! Rules: only a new, open or pending ticket can be solved; the resolution is
//! optional.

use super::{TicketEvent, TicketStatus, refuse};
use crate::{DomainError, limits};

/// The resolution: optional, within [`limits::MAX_BODY_BYTES`].
pub(super) fn validate(resolution: &str) -> Result<(), DomainError> {
    limits::optional_body("resolution", resolution)
}

/// Solves a ticket in `status`.
pub(super) fn decide(status: TicketStatus, resolution: &str) -> Result<TicketEvent, DomainError> {
    if status == TicketStatus::DeclineProposed {
        return Err(refuse(
            "solve",
            "a proposed decline awaits a manager: approve or reject it first",
        ));
    }
    if !status.is_active() {
        return Err(refuse(
            "solve",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    Ok(TicketEvent::Solved {
        resolution: resolution.to_string(),
        self_served: None,
        idempotency_key: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn active_tickets_can_be_solved() {
        for status in [TicketStatus::New, TicketStatus::Open, TicketStatus::Pending] {
            assert_eq!(
                decide(status, "Fixed."),
                Ok(TicketEvent::Solved {
                    resolution: "Fixed.".into(),
                    self_served: None,
                    idempotency_key: None,
                })
            );
        }
    }

    #[test]
    fn a_proposed_decline_waits_for_the_manager() {
        assert!(refusal(decide(TicketStatus::DeclineProposed, "")).contains("awaits a manager"));
    }

    #[test]
    fn solved_and_closed_tickets_cannot_be_solved() {
        assert_eq!(
            refusal(decide(TicketStatus::Solved, "")),
            "the ticket is solved"
        );
        assert_eq!(
            refusal(decide(TicketStatus::Closed, "")),
            "the ticket is closed"
        );
    }

    #[test]
    fn the_resolution_is_optional_but_bounded() {
        assert_eq!(validate(""), Ok(()));
        let long = "x".repeat(limits::MAX_BODY_BYTES + 1);
        assert_eq!(invalid_field(validate(&long)), "resolution");
    }
}
