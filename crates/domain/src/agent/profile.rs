//! Registering and updating an agent: the profile's field checks and rules.

use super::{Agent, AgentEvent, Profile};
use crate::{Caller, DomainError, limits};

/// Most product areas one agent has skills in.
pub const MAX_SKILLS: usize = 64;
/// The highest skill level (expert); 1 is learning.
pub const MAX_SKILL_LEVEL: u8 = 5;
/// Most open tickets an agent can be given at once.
pub const MAX_CAPACITY: u32 = 1000;
/// Longest display name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// Checks every field of a profile.
pub(super) fn validate(p: &Profile) -> Result<(), DomainError> {
    limits::text("display_name", &p.display_name, MAX_NAME_CHARS)?;
    if p.skills.is_empty() {
        return Err(DomainError::invalid("skills", "give at least one skill"));
    }
    if p.skills.len() > MAX_SKILLS {
        return Err(DomainError::invalid(
            "skills",
            format!("at most {MAX_SKILLS} skills"),
        ));
    }
    for (i, (area, level)) in p.skills.iter().enumerate() {
        limits::product_area(&format!("skills[{i}].product_area"), area)?;
        if !(1..=MAX_SKILL_LEVEL).contains(level) {
            return Err(DomainError::invalid(
                format!("skills[{i}].level"),
                format!("must be 1 to {MAX_SKILL_LEVEL}"),
            ));
        }
    }
    if !(1..=MAX_CAPACITY).contains(&p.capacity) {
        return Err(DomainError::invalid(
            "capacity",
            format!("must be 1 to {MAX_CAPACITY}"),
        ));
    }
    if !p.team.is_empty() {
        limits::product_area("team", &p.team)?;
    }
    if p.tenants.is_empty() {
        return Err(DomainError::invalid("tenants", "name at least one tenant"));
    }
    Ok(())
}

/// Every tenant the profile names must be one the caller covers.
pub(super) fn check_tenants(p: &Profile, caller: &Caller) -> Result<(), DomainError> {
    match p.tenants.iter().find(|t| !caller.tenants.covers(t)) {
        Some(tenant) => Err(DomainError::OtherTenant {
            tenant: tenant.to_string(),
        }),
        None => Ok(()),
    }
}

pub(super) fn register(
    agent: &Agent,
    agent_id: &str,
    p: &Profile,
) -> Result<Option<AgentEvent>, DomainError> {
    match &agent.profile {
        None => Ok(Some(AgentEvent::Registered {
            agent_id: agent_id.to_string(),
            profile: p.clone(),
        })),
        Some(existing) if existing == p => Ok(None),
        Some(_) => Err(DomainError::AlreadyExists(format!(
            "agent {agent_id} is registered with another profile; update it instead"
        ))),
    }
}

pub(super) fn update(
    agent: &Agent,
    agent_id: &str,
    p: &Profile,
) -> Result<Option<AgentEvent>, DomainError> {
    if !agent.active {
        return Err(DomainError::Precondition {
            action: "update an agent",
            reason: format!("agent {agent_id} was deactivated"),
        });
    }
    if agent.profile.as_ref() == Some(p) {
        return Ok(None);
    }
    Ok(Some(AgentEvent::Updated(p.clone())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::profile;
    use super::*;

    fn field(p: &Profile) -> String {
        match validate(p).unwrap_err() {
            DomainError::InvalidField { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_field_is_checked_by_name() {
        assert!(validate(&profile(&["acme"])).is_ok());
        let mut p = profile(&["acme"]);
        p.display_name = " ".into();
        assert_eq!(field(&p), "display_name");
        let mut p = profile(&["acme"]);
        p.skills.insert("Billing!".into(), 2);
        assert_eq!(field(&p), "skills[0].product_area");
        let mut p = profile(&["acme"]);
        p.skills.insert("router-x200".into(), 6);
        assert_eq!(field(&p), "skills[1].level");
        let mut p = profile(&["acme"]);
        p.skills.clear();
        assert_eq!(field(&p), "skills");
        let mut p = profile(&["acme"]);
        p.capacity = 0;
        assert_eq!(field(&p), "capacity");
        let mut p = profile(&["acme"]);
        p.team = "Team A".into();
        assert_eq!(field(&p), "team");
        assert_eq!(field(&profile(&[])), "tenants");
    }
}
