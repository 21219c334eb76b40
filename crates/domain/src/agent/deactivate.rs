//! Deactivating an agent: for good; they take no tickets and change nothing after.

use super::{Agent, AgentEvent};
use crate::DomainError;

pub(super) fn decide(agent: &Agent) -> Result<Option<AgentEvent>, DomainError> {
    if agent.active {
        Ok(Some(AgentEvent::Deactivated))
    } else {
        Ok(None)
    }
}
