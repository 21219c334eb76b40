//! After a solve the customer says how it went (CSAT, 1 to 5, with a comment), and a
//! low answer raises a follow-up for the ticket's manager.
//!
//! Rules:
//! - `RateSatisfaction` (customer systems): only a solved or closed ticket is rated;
//!   each answer belongs to the solve it follows, and a later answer replaces an
//!   earlier one of the same solve.
//! - `RaiseFollowUp` (routing, as the system): only for a rating at or below
//!   [`CSAT_LOW`], once per solve (a customer who answers 1 and then 2 for the
//!   same solve gets one follow-up).

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{
    DomainError, limits,
    satisfaction::{self, CSAT_LOW, CSAT_RANGE},
};

/// The rating's fields.
pub(super) fn validate(score: u8, comment: &str) -> Result<(), DomainError> {
    satisfaction::validate(CSAT_RANGE, score, comment)
}

/// The follow-up's reason.
pub(super) fn validate_follow_up(reason: &str) -> Result<(), DomainError> {
    limits::body("reason", reason)
}

/// Rates a ticket in `status`.
pub(super) fn rate(
    ticket: &Ticket,
    status: TicketStatus,
    score: u8,
    comment: &str,
) -> Result<TicketEvent, DomainError> {
    if !matches!(status, TicketStatus::Solved | TicketStatus::Closed) {
        return Err(refuse(
            "rate the ticket",
            format!("it is {}; ask once it is solved", status.as_str()),
        ));
    }
    Ok(TicketEvent::SatisfactionRated {
        score,
        comment: comment.to_string(),
        solve: ticket.solves,
    })
}

/// Raises the follow-up of the rating recorded as version `rating`: `None` when
/// its solve was followed up already.
pub(super) fn follow_up(
    ticket: &Ticket,
    rating: u64,
    team: &str,
    reason: &str,
) -> Result<Option<TicketEvent>, DomainError> {
    let Some(solve) = ticket.low_ratings.get(&rating) else {
        return Err(refuse(
            "raise a follow-up",
            format!("version {rating} is no rating of {CSAT_LOW} or less"),
        ));
    };
    if ticket.follow_ups.contains(solve) {
        return Ok(None);
    }
    Ok(Some(TicketEvent::FollowUpRaised {
        rating,
        team: team.to_string(),
        reason: reason.to_string(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn solved_and_closed_tickets_are_rated_for_their_latest_solve() {
        let t = Ticket {
            solves: 2,
            ..ticket(TicketStatus::Solved)
        };
        for status in [TicketStatus::Solved, TicketStatus::Closed] {
            assert_eq!(
                rate(&t, status, 4, "quick"),
                Ok(TicketEvent::SatisfactionRated {
                    score: 4,
                    comment: "quick".into(),
                    solve: 2
                })
            );
        }
        for status in [
            TicketStatus::New,
            TicketStatus::Open,
            TicketStatus::Pending,
            TicketStatus::DeclineProposed,
        ] {
            assert!(refusal(rate(&t, status, 4, "")).contains("once it is solved"));
        }
    }

    #[test]
    fn scores_are_one_to_five() {
        assert_eq!(invalid_field(validate(0, "")), "score");
        assert_eq!(invalid_field(validate(6, "")), "score");
        assert_eq!(validate(1, ""), Ok(()));
    }

    #[test]
    fn a_low_rating_raises_one_follow_up_per_solve() {
        let mut t = ticket(TicketStatus::Solved);
        t.low_ratings.insert(7, 1);
        t.low_ratings.insert(9, 1);
        let event = follow_up(&t, 7, "first-line", "CSAT 1").unwrap();
        assert!(matches!(
            event,
            Some(TicketEvent::FollowUpRaised { rating: 7, .. })
        ));
        t.follow_ups.insert(1);
        assert_eq!(follow_up(&t, 7, "first-line", "CSAT 1"), Ok(None));
        // The customer answered again for the same solve: still one follow-up.
        assert_eq!(follow_up(&t, 9, "first-line", "CSAT 2"), Ok(None));
        assert!(refusal(follow_up(&t, 8, "", "CSAT 5")).contains("no rating"));
    }
}
