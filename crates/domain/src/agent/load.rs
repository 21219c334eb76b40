//! An agent's load: the open tickets they hold, each taken by one assignment and
//! released when the ticket is solved, transferred or reassigned.
//!
//! Rules:
//! - Nobody ever holds more tickets than their capacity, by hand or not.
//! - A ticket of a tenant the agent does not work for is never theirs.
//! - A deactivated agent takes nothing.
//! - Routing's own assignments go only to available agents, and with the product
//!   area's skill unless the agent is the extended-tier customer's named agent; a
//!   manager's (by hand) may give it to an away or unskilled agent.
//! - Taking a ticket already held records it again (the agent's version moves, so a
//!   release decided on the older state conflicts instead of undoing this).
//! - Releasing a ticket not held records nothing.

use uuid::Uuid;

use super::{Agent, AgentEvent, Availability};
use crate::{DomainError, TenantId, assignment::Rule};

/// What an assignment needs from the ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Take {
    /// The ticket.
    pub ticket: Uuid,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its product area.
    pub product_area: String,
    /// The rule that chose the agent: [`Rule::Manual`] (a manager's choice) asks
    /// neither skill nor availability, [`Rule::NamedAgent`] no skill.
    pub rule: Rule,
}

fn refuse(reason: impl Into<String>) -> DomainError {
    DomainError::Precondition {
        action: "assign",
        reason: reason.into(),
    }
}

pub(super) fn take(agent: &Agent, agent_id: &str, t: &Take) -> Result<AgentEvent, DomainError> {
    let Some(profile) = &agent.profile else {
        return Err(refuse(format!("{agent_id} is not registered")));
    };
    if !agent.active {
        return Err(refuse(format!("{agent_id} is deactivated")));
    }
    if !profile.tenants.contains(&t.tenant) {
        return Err(refuse(format!(
            "{agent_id} does not work for tenant {}",
            t.tenant
        )));
    }
    let held = agent.open_tickets.contains(&t.ticket);
    if !held && agent.load() >= profile.capacity {
        return Err(refuse(format!(
            "{agent_id} is at capacity ({} of {})",
            agent.load(),
            profile.capacity
        )));
    }
    if t.rule != Rule::Manual {
        if agent.availability != Availability::Available {
            return Err(refuse(format!(
                "{agent_id} is {}",
                agent.availability.as_str()
            )));
        }
        if t.rule != Rule::NamedAgent && !profile.skills.contains_key(&t.product_area) {
            return Err(refuse(format!(
                "{agent_id} has no skill in {}",
                t.product_area
            )));
        }
    }
    Ok(AgentEvent::TicketTaken { ticket: t.ticket })
}

pub(super) fn release(agent: &Agent, ticket: Uuid) -> Option<AgentEvent> {
    agent
        .open_tickets
        .contains(&ticket)
        .then_some(AgentEvent::TicketReleased { ticket })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{caller, profile, run};
    use super::*;
    use crate::{AgentCommand, Role};

    fn ticket(n: u128, area: &str, by_hand: bool) -> AgentCommand {
        by(
            n,
            area,
            if by_hand {
                Rule::Manual
            } else {
                Rule::LeastLoaded
            },
        )
    }

    fn by(n: u128, area: &str, rule: Rule) -> AgentCommand {
        AgentCommand::Take(Take {
            ticket: Uuid::from_u128(n),
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            product_area: area.into(),
            rule,
        })
    }

    fn ana(capacity: u32, availability: Availability) -> Agent {
        let manager = caller("max", Role::Manager, &["acme"]);
        let mut ana = Agent::default();
        let mut p = profile(&["acme"]);
        p.capacity = capacity;
        run(&mut ana, "ana", AgentCommand::Register(p), &manager);
        run(
            &mut ana,
            "ana",
            AgentCommand::SetAvailability(availability),
            &manager,
        );
        ana
    }

    fn refusal(agent: &Agent, command: AgentCommand) -> String {
        let routing = caller("routing", Role::Manager, &["acme"]);
        match agent.decide("ana", &command, &routing) {
            Err(DomainError::Precondition { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn capacity_is_never_exceeded_not_even_by_hand() {
        let routing = caller("routing", Role::Manager, &["acme"]);
        let mut a = ana(2, Availability::Available);
        run(&mut a, "ana", ticket(1, "billing", false), &routing);
        run(&mut a, "ana", ticket(2, "billing", true), &routing);
        assert_eq!(a.load(), 2);
        assert!(refusal(&a, ticket(3, "billing", false)).contains("at capacity (2 of 2)"));
        assert!(refusal(&a, ticket(3, "billing", true)).contains("at capacity"));
        // A held ticket is taken again (a reassignment to the same agent).
        run(&mut a, "ana", ticket(2, "billing", false), &routing);
        assert_eq!(a.load(), 2);
        run(
            &mut a,
            "ana",
            AgentCommand::Release {
                ticket: Uuid::from_u128(1),
            },
            &routing,
        );
        assert_eq!(a.load(), 1);
        // Releasing what is not held records nothing.
        let again = AgentCommand::Release {
            ticket: Uuid::from_u128(1),
        };
        assert_eq!(a.decide("ana", &again, &routing), Ok(None));
        run(&mut a, "ana", ticket(3, "billing", false), &routing);
        assert_eq!(a.load(), 2);
        assert_eq!(a.last_assigned_at, Some(1));
    }

    #[test]
    fn routing_needs_skill_and_availability_a_manager_does_not() {
        let away = ana(5, Availability::Away);
        assert!(refusal(&away, ticket(1, "billing", false)).contains("away"));
        let available = ana(5, Availability::Available);
        assert!(refusal(&available, ticket(1, "router-x200", false)).contains("no skill"));
        // The named agent of an extended-tier customer needs no skill, but must be
        // available.
        let routing = caller("routing", Role::Manager, &["acme"]);
        let named = by(1, "router-x200", Rule::NamedAgent);
        assert!(available.decide("ana", &named, &routing).unwrap().is_some());
        assert!(refusal(&away, by(1, "router-x200", Rule::NamedAgent)).contains("away"));
        let manager = caller("max", Role::Manager, &["acme"]);
        for agent in [away, available] {
            assert!(
                agent
                    .decide("ana", &ticket(1, "router-x200", true), &manager)
                    .unwrap()
                    .is_some()
            );
        }
    }

    #[test]
    fn never_another_tenants_ticket_nor_a_deactivated_agent() {
        let routing = caller("routing", Role::Manager, &["acme"]);
        let a = ana(5, Availability::Available);
        let globex = AgentCommand::Take(Take {
            ticket: Uuid::from_u128(1),
            tenant: TenantId::parse("tenant", "globex").unwrap(),
            product_area: "billing".into(),
            rule: Rule::Manual,
        });
        assert!(refusal(&a, globex).contains("does not work for tenant globex"));
        let mut gone = a.clone();
        run(&mut gone, "ana", AgentCommand::Deactivate, &routing);
        assert!(refusal(&gone, ticket(1, "billing", true)).contains("deactivated"));
        // Agents do not assign.
        let herself = caller("ana", Role::Agent, &["acme"]);
        assert!(matches!(
            a.decide("ana", &ticket(1, "billing", true), &herself),
            Err(DomainError::Forbidden { .. })
        ));
    }
}
