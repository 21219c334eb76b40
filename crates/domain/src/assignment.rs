//! Choosing an agent for a ticket: the rules in order, with the reason for every
//! agent considered. Pure: the caller gives the agents with their current load.
//!
//! 1. An extended-tier customer's named agent, when available and under capacity.
//! 2. The agent who last handled this customer (within the affinity window), when
//!    they have the skill, are available and under capacity.
//! 3. The least-loaded available agent with the product area's skill (ties: the one
//!    whose last assignment is longest ago, then the agent id).
//! 4. Nobody fits: the ticket waits in the tenant's queue.

use crate::{Agent, TenantId, UnixMillis, agent::Availability};

/// A customer's tier of service.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Tier {
    /// Automated answers first, a human one step away.
    Basic,
    /// The usual service.
    #[default]
    Standard,
    /// A named agent and proactive check-ins.
    Extended,
}

/// What routing needs to know about the ticket to assign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    /// The ticket's tenant.
    pub tenant: TenantId,
    /// Its product area (the skill it needs).
    pub product_area: String,
    /// The customer's tier.
    pub tier: Tier,
    /// An extended-tier customer's named agent.
    pub named_agent: Option<String>,
    /// The agent who last handled this customer, and when.
    pub last_handler: Option<(String, UnixMillis)>,
}

/// One agent as routing sees them at the moment of deciding.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The agent.
    pub agent: &'a Agent,
    /// Their open tickets now.
    pub load: u32,
    /// When they were last given a ticket.
    pub last_assigned_at: Option<UnixMillis>,
}

impl<'a> Candidate<'a> {
    /// `agent` with the load and last assignment their own events record.
    pub fn of(agent: &'a Agent) -> Candidate<'a> {
        Candidate {
            agent,
            load: agent.load(),
            last_assigned_at: agent.last_assigned_at,
        }
    }
}

/// The rule that decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Rule {
    /// The extended-tier customer's named agent.
    NamedAgent,
    /// The agent who knows the customer.
    KnowsCustomer,
    /// The least-loaded skilled agent.
    LeastLoaded,
    /// Nobody fits: queued.
    Queued,
    /// A manager assigned or transferred it by hand (with a reason).
    Manual,
    /// An SLA warning handed it to another available skilled agent.
    Escalated,
}

impl Rule {
    /// A stable lower-case name, for logs and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NamedAgent => "named agent",
            Rule::KnowsCustomer => "knows the customer",
            Rule::LeastLoaded => "least loaded",
            Rule::Queued => "queued",
            Rule::Manual => "by hand",
            Rule::Escalated => "escalated",
        }
    }
}

/// Why an agent was or was not chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    /// Chosen.
    Chosen,
    /// Works for other tenants.
    NotTheTenants,
    /// Deactivated.
    Inactive,
    /// Away or offline.
    Unavailable,
    /// Has no skill in the product area.
    NoSkill,
    /// At capacity.
    AtCapacity,
    /// Could take it, but another agent fitted better.
    Passed,
}

/// The decision: the agent (none when queued), the rule, and every agent considered
/// with their verdict, in agent id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The agent chosen; `None` when the ticket waits.
    pub agent: Option<String>,
    /// The rule that decided.
    pub rule: Rule,
    /// Every agent considered, and why they were or were not chosen.
    pub candidates: Vec<(String, Verdict)>,
}

/// Whether `c` could take a ticket of `ticket` at all (skill aside): the verdict
/// when they cannot.
fn unfit(c: &Candidate<'_>, ticket: &Routed) -> Option<Verdict> {
    let profile = c.agent.profile.as_ref()?;
    if !profile.tenants.contains(&ticket.tenant) {
        return Some(Verdict::NotTheTenants);
    }
    if !c.agent.active {
        return Some(Verdict::Inactive);
    }
    if c.agent.availability != Availability::Available {
        return Some(Verdict::Unavailable);
    }
    if c.load >= profile.capacity {
        return Some(Verdict::AtCapacity);
    }
    None
}

fn skilled(c: &Candidate<'_>, ticket: &Routed) -> bool {
    c.agent
        .profile
        .as_ref()
        .is_some_and(|p| p.skills.contains_key(&ticket.product_area))
}

/// Chooses an agent for `ticket` among `candidates` at `now`; the customer's last
/// handler counts when they handled them within `affinity_window` milliseconds.
pub fn assign(
    ticket: &Routed,
    candidates: &[Candidate<'_>],
    now: UnixMillis,
    affinity_window: UnixMillis,
) -> Decision {
    let mut sorted: Vec<&Candidate<'_>> = candidates.iter().filter(|c| c.agent.exists()).collect();
    sorted.sort_by(|a, b| a.agent.agent_id.cmp(&b.agent.agent_id));
    let verdict_of = |c: &Candidate<'_>| {
        unfit(c, ticket).or_else(|| (!skilled(c, ticket)).then_some(Verdict::NoSkill))
    };
    let find = |id: &str| sorted.iter().copied().find(|c| c.agent.agent_id == id);

    // 1. The named agent: skill is not asked, they know the customer.
    let named = (ticket.tier == Tier::Extended)
        .then_some(ticket.named_agent.as_deref())
        .flatten()
        .and_then(find)
        .filter(|c| unfit(c, ticket).is_none());
    // 2. The one who knows them.
    let knows = ticket
        .last_handler
        .as_ref()
        .filter(|(_, at)| now.saturating_sub(*at) <= affinity_window)
        .and_then(|(id, _)| find(id))
        .filter(|c| verdict_of(c).is_none());
    // 3. The least loaded of the skilled and free.
    let least = sorted
        .iter()
        .copied()
        .filter(|c| verdict_of(c).is_none())
        .min_by_key(|c| (c.load, c.last_assigned_at.unwrap_or(UnixMillis::MIN)));

    let (chosen, rule) = match (named, knows, least) {
        (Some(c), _, _) => (Some(c), Rule::NamedAgent),
        (None, Some(c), _) => (Some(c), Rule::KnowsCustomer),
        (None, None, Some(c)) => (Some(c), Rule::LeastLoaded),
        (None, None, None) => (None, Rule::Queued),
    };
    let chosen_id = chosen.map(|c| c.agent.agent_id.clone());
    let candidates = sorted
        .iter()
        .map(|c| {
            let verdict = if Some(&c.agent.agent_id) == chosen_id.as_ref() {
                Verdict::Chosen
            } else if rule == Rule::NamedAgent {
                unfit(c, ticket).unwrap_or(Verdict::Passed)
            } else {
                verdict_of(c).unwrap_or(Verdict::Passed)
            };
            (c.agent.agent_id.clone(), verdict)
        })
        .collect();
    Decision {
        agent: chosen_id,
        rule,
        candidates,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Aggregate, Recorded, Role, agent::Profile};

    const HOUR: UnixMillis = 3_600_000;

    fn acme() -> TenantId {
        TenantId::parse("tenant", "acme").unwrap()
    }

    fn agent(id: &str, skills: &[&str], capacity: u32, availability: Availability) -> Agent {
        let mut a = Agent::default();
        for event in [
            crate::AgentEvent::Registered {
                agent_id: id.into(),
                profile: Profile {
                    display_name: id.into(),
                    skills: skills.iter().map(|s| (s.to_string(), 3)).collect(),
                    capacity,
                    team: String::new(),
                    tenants: [acme()].into(),
                },
            },
            crate::AgentEvent::AvailabilityChanged(availability),
        ] {
            a.apply(&Recorded {
                event,
                actor: crate::Actor::new("max", Role::Manager),
                at: 0,
            });
        }
        a
    }

    fn ticket(area: &str) -> Routed {
        Routed {
            tenant: acme(),
            product_area: area.into(),
            tier: Tier::Standard,
            named_agent: None,
            last_handler: None,
        }
    }

    fn c(agent: &Agent, load: u32) -> Candidate<'_> {
        Candidate {
            agent,
            load,
            last_assigned_at: None,
        }
    }

    use Availability::{Available, Away};

    #[test]
    fn the_least_loaded_skilled_agent_gets_it_and_everyone_has_a_reason() {
        let bea = agent("bea", &["billing"], 10, Available);
        let rob = agent("rob", &["router-x200"], 10, Available);
        let ana = agent("ana", &["billing", "router-x200"], 10, Available);
        let al = agent("al", &["billing"], 2, Available);
        let away = agent("zoe", &["billing"], 10, Away);
        let d = assign(
            &ticket("billing"),
            &[c(&bea, 3), c(&rob, 0), c(&ana, 1), c(&al, 2), c(&away, 0)],
            0,
            HOUR,
        );
        assert_eq!(
            (d.agent.as_deref(), d.rule),
            (Some("ana"), Rule::LeastLoaded)
        );
        assert_eq!(
            d.candidates,
            [
                ("al".to_string(), Verdict::AtCapacity),
                ("ana".to_string(), Verdict::Chosen),
                ("bea".to_string(), Verdict::Passed),
                ("rob".to_string(), Verdict::NoSkill),
                ("zoe".to_string(), Verdict::Unavailable),
            ]
        );
    }

    #[test]
    fn named_agent_then_the_one_who_knows_them_then_the_queue() {
        let bea = agent("bea", &["billing"], 10, Available);
        let ana = agent("ana", &["router-x200"], 10, Available);
        let mut extended = ticket("billing");
        extended.tier = Tier::Extended;
        extended.named_agent = Some("ana".into());
        // The named agent, even without the skill.
        let d = assign(&extended, &[c(&bea, 0), c(&ana, 5)], 0, HOUR);
        assert_eq!(
            (d.agent.as_deref(), d.rule),
            (Some("ana"), Rule::NamedAgent)
        );
        // At capacity: the usual rules.
        let d = assign(&extended, &[c(&bea, 0), c(&ana, 10)], 0, HOUR);
        assert_eq!(
            (d.agent.as_deref(), d.rule),
            (Some("bea"), Rule::LeastLoaded)
        );

        // The agent who last handled the customer, within the window.
        let bo = agent("bo", &["billing"], 10, Available);
        let mut returning = ticket("billing");
        returning.last_handler = Some(("bo".into(), 10 * HOUR));
        let d = assign(&returning, &[c(&bea, 0), c(&bo, 7)], 11 * HOUR, 2 * HOUR);
        assert_eq!(
            (d.agent.as_deref(), d.rule),
            (Some("bo"), Rule::KnowsCustomer)
        );
        let d = assign(&returning, &[c(&bea, 0), c(&bo, 7)], 13 * HOUR, 2 * HOUR);
        assert_eq!(
            (d.agent.as_deref(), d.rule),
            (Some("bea"), Rule::LeastLoaded)
        );

        // Nobody with the skill free: queued, every agent with their reason.
        let d = assign(&ticket("router-x200"), &[c(&bea, 0), c(&bo, 0)], 0, HOUR);
        assert_eq!((d.agent, d.rule), (None, Rule::Queued));
        assert!(d.candidates.iter().all(|(_, v)| *v == Verdict::NoSkill));
    }

    #[test]
    fn ties_go_to_the_agent_waiting_longest() {
        let a = agent("a", &["billing"], 10, Available);
        let b = agent("b", &["billing"], 10, Available);
        let d = assign(
            &ticket("billing"),
            &[
                Candidate {
                    agent: &a,
                    load: 1,
                    last_assigned_at: Some(50),
                },
                Candidate {
                    agent: &b,
                    load: 1,
                    last_assigned_at: Some(20),
                },
            ],
            100,
            HOUR,
        );
        assert_eq!(d.agent.as_deref(), Some("b"));
    }
}
