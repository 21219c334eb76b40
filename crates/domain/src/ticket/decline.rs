//! Declining a customer's request: saying *No* is the one thing an agent cannot do
//! alone.
//!
//! Rules:
//! - `ProposeDecline`: an agent (or manager) proposes it on a new, open or pending
//!   ticket, with the reason the customer will read and a rationale for the
//!   manager; the ticket is `decline_proposed` until a manager decides.
//! - `ApproveDecline` / `RejectDecline`: only a manager (the role table), and never
//!   the one who proposed it; only while a decline is proposed (approving twice is
//!   refused, not repeated). Approval solves the ticket as declined (the reason goes
//!   to the customer as the public reply); rejection sends it back to open with the
//!   manager's note.
//! - There is no other way to solve a ticket as declined.

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{Actor, DomainError, limits};

/// The proposal's texts: both required.
pub(super) fn validate_proposal(reason: &str, rationale: &str) -> Result<(), DomainError> {
    limits::body("reason", reason)?;
    limits::body("rationale", rationale)
}

/// The approval's note is optional; a rejection's is required (it tells the agent
/// what to do instead).
pub(super) fn validate_decision(note: &str, approve: bool) -> Result<(), DomainError> {
    if approve {
        limits::optional_body("note", note)
    } else {
        limits::body("note", note)
    }
}

/// Proposes declining a ticket in `status`.
pub(super) fn propose(
    status: TicketStatus,
    reason: &str,
    rationale: &str,
) -> Result<TicketEvent, DomainError> {
    if !matches!(
        status,
        TicketStatus::New | TicketStatus::Open | TicketStatus::Pending
    ) {
        return Err(refuse(
            "propose a decline",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    Ok(TicketEvent::DeclineProposed {
        reason: reason.to_string(),
        rationale: rationale.to_string(),
    })
}

/// A manager's decision on the proposed decline: approve or reject.
pub(super) fn decide(
    ticket: &Ticket,
    status: TicketStatus,
    actor: &Actor,
    note: &str,
    approve: bool,
) -> Result<TicketEvent, DomainError> {
    let action = if approve {
        "approve the decline"
    } else {
        "reject the decline"
    };
    let proposer = match (&ticket.decline_proposer, status) {
        (Some(p), TicketStatus::DeclineProposed) => p,
        _ if ticket.declined => {
            return Err(refuse(action, "the decline was already approved"));
        }
        _ => {
            return Err(refuse(
                action,
                format!("no decline is proposed (the ticket is {})", status.as_str()),
            ));
        }
    };
    if *proposer == actor.id {
        return Err(DomainError::NotPermitted {
            action,
            reason: "the manager who decides must not be the one who proposed it".into(),
        });
    }
    let note = note.to_string();
    Ok(if approve {
        TicketEvent::DeclineApproved { note }
    } else {
        TicketEvent::DeclineRejected { note }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::Role;

    fn proposed_by(proposer: &str) -> Ticket {
        Ticket {
            decline_proposer: Some(proposer.into()),
            ..ticket(TicketStatus::DeclineProposed)
        }
    }

    fn manager(id: &str) -> Actor {
        Actor::new(id, Role::Manager)
    }

    #[test]
    fn active_tickets_take_a_proposal() {
        for status in [TicketStatus::New, TicketStatus::Open, TicketStatus::Pending] {
            assert_eq!(
                propose(status, "We cannot refund.", "Past 90 days."),
                Ok(TicketEvent::DeclineProposed {
                    reason: "We cannot refund.".into(),
                    rationale: "Past 90 days.".into(),
                })
            );
        }
        for status in [
            TicketStatus::DeclineProposed,
            TicketStatus::Solved,
            TicketStatus::Closed,
        ] {
            assert!(refusal(propose(status, "r", "w")).contains(status.as_str()));
        }
    }

    #[test]
    fn another_manager_approves_or_rejects() {
        let t = proposed_by("ana");
        assert_eq!(
            decide(&t, TicketStatus::DeclineProposed, &manager("max"), "", true),
            Ok(TicketEvent::DeclineApproved {
                note: String::new()
            })
        );
        assert_eq!(
            decide(
                &t,
                TicketStatus::DeclineProposed,
                &manager("max"),
                "Offer a voucher.",
                false
            ),
            Ok(TicketEvent::DeclineRejected {
                note: "Offer a voucher.".into()
            })
        );
    }

    #[test]
    fn the_proposer_never_decides_their_own() {
        let t = proposed_by("max");
        for approve in [true, false] {
            let err = decide(
                &t,
                TicketStatus::DeclineProposed,
                &manager("max"),
                "n",
                approve,
            )
            .unwrap_err();
            assert!(matches!(err, DomainError::NotPermitted { .. }), "{err:?}");
        }
    }

    #[test]
    fn nothing_to_decide_without_a_proposal() {
        let approved = Ticket {
            declined: true,
            ..ticket(TicketStatus::Solved)
        };
        let twice = refusal(decide(
            &approved,
            TicketStatus::Solved,
            &manager("max"),
            "",
            true,
        ));
        assert!(twice.contains("already approved"), "{twice}");
        let open = refusal(decide(
            &ticket(TicketStatus::Open),
            TicketStatus::Open,
            &manager("max"),
            "n",
            false,
        ));
        assert!(open.contains("no decline is proposed"), "{open}");
    }

    #[test]
    fn texts_are_checked() {
        assert_eq!(invalid_field(validate_proposal(" ", "w")), "reason");
        assert_eq!(invalid_field(validate_proposal("r", "")), "rationale");
        assert_eq!(validate_decision("", true), Ok(()));
        assert_eq!(invalid_field(validate_decision("", false)), "note");
    }
}
