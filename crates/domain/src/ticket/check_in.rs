//! `DueCheckIn`: extended-tier customers get proactive check-ins — after a solve,
//! once the tenant's delay passed without the customer in touch, a check-in is due
//! for their named agent (routing decides when; this rule says on which ticket).
//!
//! Rules: only a solved or closed ticket; once per solve.

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{DomainError, limits};

/// The agent's id.
pub(super) fn validate(agent: &str) -> Result<(), DomainError> {
    limits::idempotency_key("agent", agent)
}

/// Records the check-in due on a ticket in `status`: `None` when this solve had one.
pub(super) fn due(
    ticket: &Ticket,
    status: TicketStatus,
    agent: &str,
) -> Result<Option<TicketEvent>, DomainError> {
    if !matches!(status, TicketStatus::Solved | TicketStatus::Closed) {
        return Err(refuse(
            "check in",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    if ticket.check_ins.contains(&ticket.solves) {
        return Ok(None);
    }
    Ok(Some(TicketEvent::CheckInDue {
        agent: agent.to_string(),
        solve: ticket.solves,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn once_per_solve_of_a_solved_or_closed_ticket() {
        let t = Ticket {
            solves: 1,
            ..ticket(TicketStatus::Solved)
        };
        assert_eq!(
            due(&t, TicketStatus::Closed, "ana"),
            Ok(Some(TicketEvent::CheckInDue {
                agent: "ana".into(),
                solve: 1
            }))
        );
        let mut checked = t.clone();
        checked.check_ins.insert(1);
        assert_eq!(due(&checked, TicketStatus::Solved, "ana"), Ok(None));
        assert!(refusal(due(&t, TicketStatus::Open, "ana")).contains("open"));
    }
}
