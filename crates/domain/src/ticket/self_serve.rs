//! `SelfServe`: the customer says a self-service article solved their ticket.
//!
//! Rules: only while nobody of the support team has worked on it (no reply, note,
//! logged time, solve or decline: a self-served ticket costs no agent time) and it
//! is new, open or pending, and only with a live article; the ticket is then solved
//! with the article named. Saying it again for the same article while the ticket
//! is still solved or closed by it is a repeat (so is a retry with the same key,
//! whatever happened since: `Ticket::decide` checks keys first); a ticket solved
//! otherwise refuses it.

use uuid::Uuid;

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::DomainError;

/// Solves `ticket` (in `status`) by `article_id` (`live`: not retired).
pub(super) fn decide(
    ticket: &Ticket,
    status: TicketStatus,
    (article_id, live): (Uuid, bool),
    idempotency_key: &Option<String>,
) -> Result<Option<TicketEvent>, DomainError> {
    let done = matches!(status, TicketStatus::Solved | TicketStatus::Closed);
    if done && ticket.self_served == Some(article_id) {
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
    if !live {
        return Err(refuse("solve by self-service", "the article was retired"));
    }
    Ok(Some(TicketEvent::Solved {
        resolution: String::new(),
        self_served: Some(article_id),
        idempotency_key: idempotency_key.clone(),
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
                decide(&ticket(status), status, (ARTICLE, true), &None),
                Ok(Some(TicketEvent::Solved {
                    resolution: String::new(),
                    self_served: Some(ARTICLE),
                    idempotency_key: None,
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
        assert_eq!(
            decide(&solved, TicketStatus::Solved, (ARTICLE, false), &None),
            Ok(None)
        );
        let other = Uuid::from_u128(1);
        assert_eq!(
            refusal(decide(&solved, TicketStatus::Solved, (other, true), &None)),
            "the ticket is solved"
        );
        let worked = Ticket {
            staff_worked: true,
            ..ticket(TicketStatus::Open)
        };
        assert!(
            refusal(decide(&worked, TicketStatus::Open, (ARTICLE, true), &None))
                .contains("worked on it")
        );
        let open = ticket(TicketStatus::Open);
        assert_eq!(
            refusal(decide(&open, TicketStatus::Open, (ARTICLE, false), &None)),
            "the article was retired"
        );
        let closed = Ticket {
            self_served: Some(ARTICLE),
            ..ticket(TicketStatus::Closed)
        };
        assert_eq!(
            decide(&closed, TicketStatus::Closed, (ARTICLE, true), &None),
            Ok(None)
        );
        assert_eq!(
            refusal(decide(
                &ticket(TicketStatus::DeclineProposed),
                TicketStatus::DeclineProposed,
                (ARTICLE, true),
                &None
            )),
            "the ticket is decline_proposed"
        );
    }
}
