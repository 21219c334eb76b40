//! The agent aggregate (`frontline.agent.<id>`): who an agent is to routing — the
//! tenants they work for, their skills (product areas with a level), how many open
//! tickets they take at once, their team — and whether they can take work now.
//!
//! # Where things go
//!
//! Each command has its own file: `profile.rs` (register, update: the profile's
//! field checks), `availability.rs` (available / away / offline; agents set their
//! own), `deactivate.rs`. This file holds the state, the command and event enums,
//! the checks every command shares (authorise → validate fields → tenants →
//! existence → the command's own rule) and `apply`.

mod availability;
mod deactivate;
mod load;
mod profile;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::{
    Action, Aggregate, Caller, DomainError, Recorded, TenantId, UnixMillis, actor::authorize,
};

pub use load::Take;
pub use profile::{MAX_CAPACITY, MAX_SKILL_LEVEL, MAX_SKILLS};

/// Whether an agent can take work now.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Availability {
    /// Takes new tickets.
    Available,
    /// Keeps their tickets, takes no new ones (a break, a meeting).
    Away,
    /// Not working: takes no tickets (a registered agent starts offline).
    #[default]
    Offline,
}

impl Availability {
    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::Away => "away",
            Availability::Offline => "offline",
        }
    }
}

/// What routing knows about an agent, as registered or last updated.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// The name shown to staff.
    pub display_name: String,
    /// Product areas the agent handles, with a level from 1 (learning) to
    /// [`MAX_SKILL_LEVEL`] (expert).
    pub skills: BTreeMap<String, u8>,
    /// Most open tickets at once.
    pub capacity: u32,
    /// The team (empty for none): escalations go to its manager.
    pub team: String,
    /// The tenants the agent works for (at least one).
    pub tenants: BTreeSet<TenantId>,
}

/// An agent's state, rebuilt from their events. `Agent::default()` is an agent that
/// was never registered (version 0).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Agent {
    /// Events applied.
    pub version: u64,
    /// The agent's token subject (set on registration).
    pub agent_id: String,
    /// The profile; `None` until registered.
    pub profile: Option<Profile>,
    /// Whether they take work now.
    pub availability: Availability,
    /// False once deactivated (for good: they take no tickets and change nothing).
    pub active: bool,
    /// The open tickets they hold: their load.
    pub open_tickets: BTreeSet<Uuid>,
    /// When they were last given a ticket.
    pub last_assigned_at: Option<UnixMillis>,
}

/// What a caller asks of an agent.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentCommand {
    /// Registers a new agent (starts offline).
    Register(Profile),
    /// Replaces a registered agent's profile.
    Update(Profile),
    /// Sets whether the agent takes work now.
    SetAvailability(Availability),
    /// Deactivates the agent for good.
    Deactivate,
    /// Gives them a ticket (an assignment, or a transfer to them).
    Take(Take),
    /// Takes a ticket off them (solved, transferred or reassigned).
    Release {
        /// The ticket.
        ticket: Uuid,
    },
}

/// What happened to an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEvent {
    /// Registered, with their profile.
    Registered {
        /// The agent's token subject.
        agent_id: String,
        /// Their profile.
        profile: Profile,
    },
    /// Their profile changed (the whole new profile).
    Updated(Profile),
    /// Their availability changed.
    AvailabilityChanged(Availability),
    /// Deactivated for good.
    Deactivated,
    /// A ticket counts in their load.
    TicketTaken {
        /// The ticket.
        ticket: Uuid,
    },
    /// A ticket no longer counts in their load.
    TicketReleased {
        /// The ticket.
        ticket: Uuid,
    },
}

impl AgentCommand {
    fn action(&self) -> Action {
        match self {
            AgentCommand::SetAvailability(_) => Action::SetAvailability,
            AgentCommand::Take(_) | AgentCommand::Release { .. } => Action::AssignTickets,
            _ => Action::ManageAgents,
        }
    }

    /// Checks every field; error fields name the request fields (`skills[1].level`).
    pub fn validate(&self) -> Result<(), DomainError> {
        match self {
            AgentCommand::Register(p) | AgentCommand::Update(p) => profile::validate(p),
            AgentCommand::SetAvailability(_)
            | AgentCommand::Deactivate
            | AgentCommand::Take(_)
            | AgentCommand::Release { .. } => Ok(()),
        }
    }
}

impl Agent {
    /// Whether the agent was registered.
    pub fn exists(&self) -> bool {
        self.profile.is_some()
    }

    /// How many open tickets they hold.
    pub fn load(&self) -> u32 {
        u32::try_from(self.open_tickets.len()).unwrap_or(u32::MAX)
    }

    /// Whether `caller` sees this agent: they cover one of its tenants.
    pub fn seen_by(&self, caller: &Caller) -> bool {
        self.profile
            .as_ref()
            .is_some_and(|p| p.tenants.iter().any(|t| caller.sees(t)))
    }

    /// Decides what `command` on agent `agent_id` (the agent's token subject) by
    /// `caller` records: `Ok(None)` when it is already so.
    pub fn decide(
        &self,
        agent_id: &str,
        command: &AgentCommand,
        caller: &Caller,
    ) -> Result<Option<AgentEvent>, DomainError> {
        authorize(&caller.actor, command.action())?;
        crate::limits::idempotency_key("agent_id", agent_id)?;
        command.validate()?;
        let not_found = || DomainError::NotFound {
            kind: "agent",
            id: agent_id.to_string(),
        };
        // An agent the caller does not see is one that does not exist; a profile
        // naming a tenant the caller does not cover is refused as such.
        if self.exists() && !self.seen_by(caller) {
            return Err(not_found());
        }
        if let AgentCommand::Register(p) | AgentCommand::Update(p) = command {
            profile::check_tenants(p, caller)?;
        }
        match command {
            AgentCommand::Register(p) => profile::register(self, agent_id, p),
            _ if !self.exists() => Err(not_found()),
            AgentCommand::Update(p) => profile::update(self, agent_id, p),
            AgentCommand::SetAvailability(a) => availability::decide(self, agent_id, *a, caller),
            AgentCommand::Deactivate => deactivate::decide(self),
            AgentCommand::Take(t) => load::take(self, agent_id, t).map(Some),
            AgentCommand::Release { ticket } => Ok(load::release(self, *ticket)),
        }
    }
}

impl Aggregate for Agent {
    type Event = AgentEvent;
    const KIND: &'static str = "agent";
    /// 2: the load (open tickets, last assignment).
    const SNAPSHOT_SCHEMA: u32 = 2;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<AgentEvent>) {
        match &recorded.event {
            AgentEvent::Registered { agent_id, profile } => {
                self.agent_id = agent_id.clone();
                self.profile = Some(profile.clone());
                self.active = true;
            }
            AgentEvent::Updated(p) => self.profile = Some(p.clone()),
            AgentEvent::AvailabilityChanged(a) => self.availability = *a,
            AgentEvent::Deactivated => {
                self.active = false;
                self.availability = Availability::Offline;
            }
            AgentEvent::TicketTaken { ticket } => {
                self.open_tickets.insert(*ticket);
                self.last_assigned_at = Some(recorded.at);
            }
            AgentEvent::TicketReleased { ticket } => {
                self.open_tickets.remove(ticket);
            }
        }
        self.version += 1;
    }

    fn skip_unknown(&mut self) {
        self.version += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;
    use crate::{Actor, Role, TenantScope};

    pub(super) fn caller(id: &str, role: Role, tenants: &[&str]) -> Caller {
        Caller {
            actor: Actor::new(id, role),
            tenants: TenantScope::Named(
                tenants
                    .iter()
                    .map(|t| TenantId::parse("tenant", t).unwrap())
                    .collect(),
            ),
        }
    }

    pub(super) fn profile(tenants: &[&str]) -> Profile {
        Profile {
            display_name: "Ana Lima".into(),
            skills: [("billing".to_string(), 3)].into(),
            capacity: 10,
            team: "first-line".into(),
            tenants: tenants
                .iter()
                .map(|t| TenantId::parse("tenant", t).unwrap())
                .collect(),
        }
    }

    pub(super) fn run(agent: &mut Agent, id: &str, command: AgentCommand, by: &Caller) {
        if let Some(event) = agent.decide(id, &command, by).unwrap() {
            agent.apply(&Recorded {
                event,
                actor: by.actor.clone(),
                at: 1,
            });
        }
    }

    #[test]
    fn a_manager_registers_and_the_agent_sets_their_own_availability() {
        let manager = caller("max", Role::Manager, &["acme"]);
        let mut ana = Agent::default();
        run(
            &mut ana,
            "ana",
            AgentCommand::Register(profile(&["acme"])),
            &manager,
        );
        assert!(ana.active && ana.exists());
        assert_eq!(ana.availability, Availability::Offline);
        let herself = caller("ana", Role::Agent, &["acme"]);
        run(
            &mut ana,
            "ana",
            AgentCommand::SetAvailability(Availability::Available),
            &herself,
        );
        assert_eq!(ana.availability, Availability::Available);
        // Repeats record nothing.
        assert_eq!(
            ana.decide(
                "ana",
                &AgentCommand::SetAvailability(Availability::Available),
                &herself
            ),
            Ok(None)
        );
        assert_eq!(
            ana.decide("ana", &AgentCommand::Register(profile(&["acme"])), &manager),
            Ok(None)
        );
    }

    #[test]
    fn who_may_do_what() {
        let mut ana = Agent::default();
        let manager = caller("max", Role::Manager, &["acme"]);
        run(
            &mut ana,
            "ana",
            AgentCommand::Register(profile(&["acme"])),
            &manager,
        );
        let forbidden = |c: &Caller, cmd: AgentCommand| {
            matches!(
                ana.decide("ana", &cmd, c),
                Err(DomainError::Forbidden { .. })
            )
        };
        let other_agent = caller("bo", Role::Agent, &["acme"]);
        assert!(forbidden(&other_agent, AgentCommand::Deactivate));
        assert!(forbidden(
            &other_agent,
            AgentCommand::Update(profile(&["acme"]))
        ));
        let shop = caller("shop", Role::CustomerSystem, &["acme"]);
        assert!(forbidden(
            &shop,
            AgentCommand::SetAvailability(Availability::Away)
        ));
        // Another agent may not set ana's availability.
        assert!(matches!(
            ana.decide(
                "ana",
                &AgentCommand::SetAvailability(Availability::Away),
                &other_agent
            ),
            Err(DomainError::Forbidden { .. })
        ));
        // A manager of another tenant does not see her.
        let elsewhere = caller("gus", Role::Manager, &["globex"]);
        assert!(matches!(
            ana.decide("ana", &AgentCommand::Deactivate, &elsewhere),
            Err(DomainError::NotFound { .. })
        ));
        // Nor may a manager register an agent for a tenant they do not cover.
        assert!(matches!(
            Agent::default().decide(
                "cy",
                &AgentCommand::Register(profile(&["acme", "globex"])),
                &manager
            ),
            Err(DomainError::OtherTenant { .. })
        ));
    }

    #[test]
    fn a_deactivated_agent_takes_no_work_and_changes_nothing() {
        let manager = caller("max", Role::Manager, &["acme"]);
        let mut ana = Agent::default();
        run(
            &mut ana,
            "ana",
            AgentCommand::Register(profile(&["acme"])),
            &manager,
        );
        run(&mut ana, "ana", AgentCommand::Deactivate, &manager);
        assert!(!ana.active);
        assert_eq!(
            ana.decide("ana", &AgentCommand::Deactivate, &manager),
            Ok(None)
        );
        for command in [
            AgentCommand::SetAvailability(Availability::Available),
            AgentCommand::Update(profile(&["acme"])),
        ] {
            assert!(matches!(
                ana.decide("ana", &command, &manager),
                Err(DomainError::Precondition { .. })
            ));
        }
        assert!(matches!(
            Agent::default().decide("zed", &AgentCommand::Deactivate, &manager),
            Err(DomainError::NotFound { .. })
        ));
    }
}
