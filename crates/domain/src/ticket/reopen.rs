//! `Reopen`: support reopens a solved ticket.
//!
//! Rules: only a solved ticket can be reopened, and only [`limits::MAX_REOPENS`]
//! times — counting reopens by customer messages too.

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{DomainError, limits};

/// The reason: optional, within [`limits::MAX_BODY_BYTES`].
pub(super) fn validate(reason: &str) -> Result<(), DomainError> {
    limits::optional_body("reason", reason)
}

/// Reopens a ticket in `status`.
pub(super) fn decide(
    ticket: &Ticket,
    status: TicketStatus,
    reason: &str,
) -> Result<TicketEvent, DomainError> {
    if status != TicketStatus::Solved {
        return Err(refuse(
            "reopen",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    if ticket.reopen_count >= limits::MAX_REOPENS {
        return Err(refuse(
            "reopen",
            format!("it was reopened {} times already", ticket.reopen_count),
        ));
    }
    Ok(TicketEvent::Reopened {
        reason: reason.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn only_solved_tickets_reopen() {
        for status in [
            TicketStatus::New,
            TicketStatus::Open,
            TicketStatus::Pending,
            TicketStatus::Closed,
        ] {
            refusal(decide(&ticket(status), status, "why"));
        }
        let event = decide(&ticket(TicketStatus::Solved), TicketStatus::Solved, "why");
        assert_eq!(
            event,
            Ok(TicketEvent::Reopened {
                reason: "why".into()
            })
        );
    }

    #[test]
    fn the_reopen_limit_holds() {
        let mut t = ticket(TicketStatus::Solved);
        t.reopen_count = limits::MAX_REOPENS - 1;
        assert!(decide(&t, TicketStatus::Solved, "").is_ok());
        t.reopen_count = limits::MAX_REOPENS;
        let reason = refusal(decide(&t, TicketStatus::Solved, ""));
        assert!(reason.contains(&format!("reopened {} times", limits::MAX_REOPENS)));
    }

    #[test]
    fn the_reason_is_optional_but_bounded() {
        assert_eq!(validate(""), Ok(()));
        let long = "x".repeat(limits::MAX_BODY_BYTES + 1);
        assert_eq!(invalid_field(validate(&long)), "reason");
    }
}
