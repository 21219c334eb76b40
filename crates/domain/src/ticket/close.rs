//! `Close`: a solved ticket is closed for good, by staff or by the auto-close timer.
//!
//! Rules: only a solved ticket closes; closed is final (nothing but internal notes
//! and SLA bookkeeping is refused afterwards; a customer who writes again opens a
//! follow-up ticket). The timer's close names the delay it enforces and is refused
//! before the ticket has been solved that long — a timer that fires early, or for
//! a ticket reopened and solved again since, records nothing.

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{DomainError, UnixMillis};

/// Closes a ticket in `status` at `now`; `after`: the timer's delay since solve.
pub(super) fn decide(
    ticket: &Ticket,
    status: TicketStatus,
    after: Option<UnixMillis>,
    now: UnixMillis,
) -> Result<TicketEvent, DomainError> {
    if status != TicketStatus::Solved {
        return Err(refuse(
            "close",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    if let Some(after) = after {
        let due = ticket.solved_at.unwrap_or(now).saturating_add(after);
        if now < due {
            return Err(refuse(
                "close",
                format!("solved tickets close {after} ms after solve; due at {due}"),
            ));
        }
    }
    Ok(TicketEvent::Closed {
        automatic: after.is_some(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn solved_at(at: UnixMillis) -> Ticket {
        Ticket {
            solved_at: Some(at),
            ..ticket(TicketStatus::Solved)
        }
    }

    #[test]
    fn only_solved_tickets_close() {
        let t = solved_at(10);
        assert_eq!(
            decide(&t, TicketStatus::Solved, None, 11),
            Ok(TicketEvent::Closed { automatic: false })
        );
        for status in [
            TicketStatus::New,
            TicketStatus::Open,
            TicketStatus::Pending,
            TicketStatus::DeclineProposed,
            TicketStatus::Closed,
        ] {
            assert!(refusal(decide(&t, status, None, 11)).contains(status.as_str()));
        }
    }

    #[test]
    fn the_timer_closes_once_the_delay_has_passed() {
        let t = solved_at(1_000);
        assert!(
            refusal(decide(&t, TicketStatus::Solved, Some(500), 1_499)).contains("due at 1500")
        );
        assert_eq!(
            decide(&t, TicketStatus::Solved, Some(500), 1_500),
            Ok(TicketEvent::Closed { automatic: true })
        );
    }
}
