//! Setting whether an agent takes work: the agent themself, or staff above them.

use super::{Agent, AgentEvent, Availability};
use crate::{Action, Caller, DomainError, Role};

pub(super) fn decide(
    agent: &Agent,
    agent_id: &str,
    availability: Availability,
    caller: &Caller,
) -> Result<Option<AgentEvent>, DomainError> {
    // Agents set their own; managers and admins anyone's they see.
    if caller.actor.role == Role::Agent && caller.actor.id != agent_id {
        return Err(DomainError::Forbidden {
            action: Action::SetAvailability,
            role: Role::Agent,
        });
    }
    if !agent.active {
        return Err(DomainError::Precondition {
            action: "set an agent's availability",
            reason: format!("agent {agent_id} was deactivated"),
        });
    }
    if agent.availability == availability {
        return Ok(None);
    }
    Ok(Some(AgentEvent::AvailabilityChanged(availability)))
}
