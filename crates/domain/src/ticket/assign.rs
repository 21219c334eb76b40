//! `Assign` and `Queue`: routing's decisions, recorded on the ticket with the rule
//! that decided and every agent considered.
//!
//! Rules:
//! - Only a new, open or pending ticket is assigned or queued.
//! - Routing assigns a ticket only while it waits for an agent (opened or reopened
//!   since its last assignment): never twice.
//! - A manager assigns or transfers by hand at any time, with a reason; so does an
//!   SLA warning's escalation. Giving it to the agent who already has it records
//!   nothing.
//! - A ticket is queued once per wait: a later attempt that still finds nobody
//!   records nothing. Queueing an assigned ticket takes it back from its agent
//!   (they went offline and nobody else fits): it waits for an agent again.

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{
    DomainError,
    assignment::{Rule, Verdict},
    limits,
};

/// A routing decision that gave the ticket to an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The agent (token subject).
    pub agent: String,
    /// The rule that decided ([`Rule::Manual`] for a manager's choice).
    pub rule: Rule,
    /// Every agent considered, with why they were or were not chosen (empty for a
    /// manager's choice).
    pub candidates: Vec<(String, Verdict)>,
    /// The manager's reason (required by hand, empty otherwise).
    pub reason: String,
}

/// The assignment's fields.
pub(super) fn validate(a: &Assignment) -> Result<(), DomainError> {
    limits::idempotency_key("agent_id", &a.agent)?;
    if a.rule == Rule::Queued {
        return Err(DomainError::invalid(
            "rule",
            "an assignment names the rule that chose an agent",
        ));
    }
    if matches!(a.rule, Rule::Manual | Rule::Escalated) {
        limits::text("reason", &a.reason, limits::MAX_REASON_CHARS)?;
    }
    Ok(())
}

/// Assigns a ticket in `status`.
pub(super) fn decide(
    ticket: &Ticket,
    status: TicketStatus,
    a: &Assignment,
) -> Result<Option<TicketEvent>, DomainError> {
    if !status.is_active() {
        return Err(refuse(
            "assign",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    if matches!(a.rule, Rule::Manual | Rule::Escalated) {
        if !ticket.awaiting_agent && ticket.assignee.as_deref() == Some(a.agent.as_str()) {
            return Ok(None);
        }
    } else if !ticket.awaiting_agent {
        return Err(refuse(
            "assign",
            format!(
                "the ticket is assigned to {}",
                ticket.assignee.as_deref().unwrap_or("nobody")
            ),
        ));
    }
    Ok(Some(TicketEvent::Assigned(a.clone())))
}

/// Queues a ticket in `status`: nobody fits.
pub(super) fn queue(
    ticket: &Ticket,
    status: TicketStatus,
    candidates: &[(String, Verdict)],
) -> Result<Option<TicketEvent>, DomainError> {
    if !status.is_active() {
        return Err(refuse(
            "queue",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    if ticket.awaiting_agent && ticket.queued {
        return Ok(None);
    }
    Ok(Some(TicketEvent::Queued {
        candidates: candidates.to_vec(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn by(rule: Rule, agent: &str) -> Assignment {
        Assignment {
            agent: agent.into(),
            rule,
            candidates: vec![(agent.into(), Verdict::Chosen)],
            reason: if rule == Rule::Manual {
                "knows the router".into()
            } else {
                String::new()
            },
        }
    }

    fn waiting() -> Ticket {
        Ticket {
            awaiting_agent: true,
            ..ticket(TicketStatus::New)
        }
    }

    #[test]
    fn routing_assigns_a_waiting_ticket_once() {
        let t = waiting();
        let event = decide(&t, TicketStatus::New, &by(Rule::LeastLoaded, "ana")).unwrap();
        assert!(matches!(event, Some(TicketEvent::Assigned(_))));
        let assigned = Ticket {
            awaiting_agent: false,
            assignee: Some("ana".into()),
            ..t
        };
        let again = decide(&assigned, TicketStatus::New, &by(Rule::LeastLoaded, "bo"));
        assert!(refusal(again).contains("assigned to ana"));
    }

    #[test]
    fn a_manager_transfers_at_any_time_and_a_repeat_records_nothing() {
        let assigned = Ticket {
            assignee: Some("ana".into()),
            ..ticket(TicketStatus::Open)
        };
        assert!(
            decide(&assigned, TicketStatus::Open, &by(Rule::Manual, "bo"))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            decide(&assigned, TicketStatus::Open, &by(Rule::Manual, "ana")),
            Ok(None)
        );
    }

    #[test]
    fn solved_tickets_are_not_assigned_and_manual_needs_a_reason() {
        let t = waiting();
        assert!(
            refusal(decide(&t, TicketStatus::Solved, &by(Rule::Manual, "bo"))).contains("solved")
        );
        let mut silent = by(Rule::Manual, "bo");
        silent.reason.clear();
        assert_eq!(invalid_field(validate(&silent)), "reason");
        assert_eq!(invalid_field(validate(&by(Rule::Queued, "bo"))), "rule");
        assert_eq!(
            invalid_field(validate(&by(Rule::LeastLoaded, ""))),
            "agent_id"
        );
    }

    #[test]
    fn a_ticket_is_queued_once_per_wait() {
        let t = waiting();
        assert!(queue(&t, TicketStatus::New, &[]).unwrap().is_some());
        let queued = Ticket { queued: true, ..t };
        assert_eq!(queue(&queued, TicketStatus::New, &[]), Ok(None));
        // Taken back from an agent who left: it waits again.
        let assigned = Ticket {
            awaiting_agent: false,
            queued: false,
            ..queued
        };
        assert!(queue(&assigned, TicketStatus::Open, &[]).unwrap().is_some());
        assert!(refusal(queue(&assigned, TicketStatus::Solved, &[])).contains("solved"));
    }
}
