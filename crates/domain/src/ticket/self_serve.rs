//! `SelfServe`: the customer says a self-service article solved their ticket.
//!
//! Rules: only while nobody of the support team has worked on it (no reply, note
//! or logged time: a self-served ticket costs no agent time) and it is new, open or
//! pending; the ticket is then solved with the article named. Saying it again for
//! the same article is a repeat; a ticket solved otherwise refuses it.

use uuid::Uuid;

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::DomainError;

/// Solves `ticket` (in `status`) by `article_id`.
pub(super) fn decide(
    ticket: &Ticket,
    status: TicketStatus,
    article_id: Uuid,
) -> Result<Option<TicketEvent>, DomainError> {
    if status == TicketStatus::Solved && ticket.self_served == Some(article_id) {
        return Ok(None);
    }
    if !matches!(
        status,
        TicketStatus::New | TicketStatus::Open | TicketStatus::Pending
    ) {
        return Err(refuse(
            "solve by self-service",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    if ticket.staff_worked {
        return Err(refuse(
            "solve by self-service",
            "the support team has worked on it already: ask them to solve it",
        ));
    }
    Ok(Some(TicketEvent::Solved {
        resolution: String::new(),
        self_served: Some(article_id),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    const ARTICLE: Uuid = Uuid::from_u128(0xA7);

    #[test]
    fn an_untouched_ticket_is_solved_by_the_article() {
        for status in [TicketStatus::New, TicketStatus::Open, TicketStatus::Pending] {
            assert_eq!(
                decide(&ticket(status), status, ARTICLE),
                Ok(Some(TicketEvent::Solved {
                    resolution: String::new(),
                    self_served: Some(ARTICLE),
                }))
            );
        }
    }

    #[test]
    fn once_per_article_and_never_after_agent_time() {
        let solved = Ticket {
            self_served: Some(ARTICLE),
            ..ticket(TicketStatus::Solved)
        };
        assert_eq!(decide(&solved, TicketStatus::Solved, ARTICLE), Ok(None));
        let other = Uuid::from_u128(1);
        assert_eq!(
            refusal(decide(&solved, TicketStatus::Solved, other)),
            "the ticket is solved"
        );
        let worked = Ticket {
            staff_worked: true,
            ..ticket(TicketStatus::Open)
        };
        assert!(refusal(decide(&worked, TicketStatus::Open, ARTICLE)).contains("worked on it"));
        assert_eq!(
            refusal(decide(
                &ticket(TicketStatus::DeclineProposed),
                TicketStatus::DeclineProposed,
                ARTICLE
            )),
            "the ticket is decline_proposed"
        );
    }
}
