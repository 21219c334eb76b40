//! A tenant's SLA policy (`frontline.policy.<id>`), versioned by its events: per tier
//! and priority the first-response, next-response and resolution targets; the
//! business hours they count in; the warning point; each tier's time budget per
//! ticket; what a warning does; and when solved tickets close. A new policy applies to open tickets from the
//! moment it is recorded; events already written are never rewritten.

use std::collections::BTreeSet;

use crate::{
    Action, Actor, Aggregate, DomainError, Priority, Recorded, TenantId, UnixMillis,
    actor::authorize, assignment::Tier,
};

use super::BusinessHours;

/// Most seconds in one target (a year).
pub const MAX_TARGET_SECS: u32 = 366 * 24 * 3600;
/// Most holidays in one calendar.
pub const MAX_HOLIDAYS: usize = 400;

/// A tier and priority's targets, in seconds of business time; 0: no such clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Targets {
    /// From opening to the first public agent reply.
    pub first_response_secs: u32,
    /// From a customer message to the next public agent reply.
    pub next_response_secs: u32,
    /// From opening (or reopening) to solved, not counting time pending.
    pub resolution_secs: u32,
}

/// When support is open, as a policy states it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Calendar {
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Monday first: open from, to (minutes of the local day); `None` closed.
    pub weekly: [Option<(u16, u16)>; 7],
    /// Closed days, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
}

/// What an SLA warning does.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Escalation {
    /// Give the ticket to another available skilled agent with room; when there is
    /// none, raise it to the team's manager.
    #[default]
    Reassign,
    /// Raise it to the team's manager.
    Raise,
}

/// One row of targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetRow {
    /// The tier.
    pub tier: Tier,
    /// The priority.
    pub priority: Priority,
    /// Its targets.
    pub targets: Targets,
}

/// A tenant's SLA policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlaPolicy {
    /// The tier of customers no manager put in one.
    pub default_tier: Tier,
    /// Targets per tier and priority; a missing pair has no clocks.
    pub targets: Vec<TargetRow>,
    /// Business hours; `None`: open around the clock (UTC).
    pub calendar: Option<Calendar>,
    /// The warning point, percent of each target (1–99).
    pub warning_percent: u8,
    /// Minutes of logged work per ticket, per tier (basic, standard, extended); 0: no
    /// budget.
    pub time_budget_minutes: [u32; 3],
    /// What a warning does.
    pub escalation: Escalation,
    /// Seconds after solve at which a solved ticket closes; 0: the default
    /// ([`DEFAULT_AUTO_CLOSE_SECS`]).
    #[serde(default)]
    pub auto_close_after_secs: u32,
    /// Seconds after solve at which an extended-tier customer's named agent checks
    /// in (if the customer has not been in touch since); 0: no check-ins.
    #[serde(default)]
    pub check_in_after_secs: u32,
}

/// Solved tickets close four days after solve unless the policy says otherwise.
pub const DEFAULT_AUTO_CLOSE_SECS: u32 = 4 * 24 * 3600;
/// The longest auto-close delay a policy may set: a year.
pub const MAX_AUTO_CLOSE_SECS: u32 = 365 * 24 * 3600;

/// The delay after solve at which the auto-close timer closes a ticket of a tenant
/// with `policy` (or none), in milliseconds.
pub fn auto_close_after(policy: Option<&SlaPolicy>) -> UnixMillis {
    let secs = policy
        .map(|p| p.auto_close_after_secs)
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_AUTO_CLOSE_SECS);
    UnixMillis::from(secs) * 1000
}

impl SlaPolicy {
    /// The targets for `tier` and `priority` (all zero when the policy has none).
    pub fn targets(&self, tier: Tier, priority: Priority) -> Targets {
        self.targets
            .iter()
            .find(|r| r.tier == tier && r.priority == priority)
            .map(|r| r.targets)
            .unwrap_or_default()
    }

    /// The business hours the targets count in.
    pub fn hours(&self) -> Result<BusinessHours, DomainError> {
        let Some(c) = &self.calendar else {
            return Ok(BusinessHours::always());
        };
        let mut holidays = Vec::with_capacity(c.holidays.len());
        for (i, day) in c.holidays.iter().enumerate() {
            holidays.push(day.parse::<jiff::civil::Date>().map_err(|_| {
                DomainError::invalid(format!("calendar.holidays[{i}]"), "a date, YYYY-MM-DD")
            })?);
        }
        BusinessHours::new(&c.time_zone, c.weekly, holidays).map_err(|e| match e {
            DomainError::InvalidField { field, reason } => DomainError::InvalidField {
                field: format!("calendar.{field}"),
                reason,
            },
            other => other,
        })
    }

    /// The time budget of a `tier` ticket, in minutes (0: none).
    pub fn time_budget(&self, tier: Tier) -> u32 {
        self.time_budget_minutes[match tier {
            Tier::Basic => 0,
            Tier::Standard => 1,
            Tier::Extended => 2,
        }]
    }

    /// Checks every field; error fields name the request's.
    pub fn validate(&self) -> Result<(), DomainError> {
        if !(1..=99).contains(&self.warning_percent) {
            return Err(DomainError::invalid("warning_percent", "from 1 to 99"));
        }
        if self.check_in_after_secs > MAX_AUTO_CLOSE_SECS {
            return Err(DomainError::invalid(
                "check_in_after_seconds",
                format!("at most {MAX_AUTO_CLOSE_SECS} seconds"),
            ));
        }
        if self.auto_close_after_secs > MAX_AUTO_CLOSE_SECS {
            return Err(DomainError::invalid(
                "auto_close_after_seconds",
                format!("at most {MAX_AUTO_CLOSE_SECS} seconds"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, row) in self.targets.iter().enumerate() {
            if !seen.insert((row.tier as u8, row.priority as u8)) {
                return Err(DomainError::invalid(
                    format!("targets[{i}]"),
                    "each tier and priority once",
                ));
            }
            let t = row.targets;
            for (name, secs) in [
                ("first_response_seconds", t.first_response_secs),
                ("next_response_seconds", t.next_response_secs),
                ("resolution_seconds", t.resolution_secs),
            ] {
                if secs > MAX_TARGET_SECS {
                    return Err(DomainError::invalid(
                        format!("targets[{i}].{name}"),
                        format!("at most {MAX_TARGET_SECS} seconds"),
                    ));
                }
            }
        }
        if let Some(c) = &self.calendar
            && c.holidays.len() > MAX_HOLIDAYS
        {
            return Err(DomainError::invalid(
                "calendar.holidays",
                format!("at most {MAX_HOLIDAYS}"),
            ));
        }
        self.hours().map(|_| ())
    }
}

/// The policy aggregate's state. `PolicyRecord::default()` is a tenant with no
/// policy (version 0): no clocks run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolicyRecord {
    /// Events applied: the policy's version.
    pub version: u64,
    /// The tenant.
    pub tenant: TenantId,
    /// The policy in force.
    pub policy: Option<SlaPolicy>,
}

/// What happened to a tenant's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyEvent {
    /// A manager put a new policy in force.
    Set {
        /// The tenant.
        tenant: TenantId,
        /// The whole policy.
        policy: SlaPolicy,
    },
}

impl PolicyRecord {
    /// Decides what putting `policy` for `tenant` by `actor` records: `Ok(None)` when
    /// it is already in force.
    pub fn decide(
        &self,
        tenant: &TenantId,
        policy: &SlaPolicy,
        actor: &Actor,
    ) -> Result<Option<PolicyEvent>, DomainError> {
        authorize(actor, Action::ManagePolicies)?;
        policy.validate()?;
        if self.policy.as_ref() == Some(policy) {
            return Ok(None);
        }
        Ok(Some(PolicyEvent::Set {
            tenant: tenant.clone(),
            policy: policy.clone(),
        }))
    }
}

impl Aggregate for PolicyRecord {
    type Event = PolicyEvent;
    const KIND: &'static str = "policy";
    const SNAPSHOT_SCHEMA: u32 = 1;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<PolicyEvent>) {
        match &recorded.event {
            PolicyEvent::Set { tenant, policy } => {
                self.tenant = tenant.clone();
                self.policy = Some(policy.clone());
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
pub(crate) mod tests {
    use super::*;
    use crate::Role;

    pub(crate) fn policy() -> SlaPolicy {
        SlaPolicy {
            default_tier: Tier::Standard,
            targets: vec![TargetRow {
                tier: Tier::Standard,
                priority: Priority::Normal,
                targets: Targets {
                    first_response_secs: 3600,
                    next_response_secs: 1800,
                    resolution_secs: 8 * 3600,
                },
            }],
            calendar: None,
            warning_percent: 75,
            time_budget_minutes: [30, 60, 120],
            escalation: Escalation::Reassign,
            auto_close_after_secs: 0,
            check_in_after_secs: 0,
        }
    }

    #[test]
    fn managers_put_a_policy_once() {
        let acme = TenantId::parse("tenant", "acme").unwrap();
        let manager = Actor::new("max", Role::Manager);
        let mut record = PolicyRecord::default();
        let event = record.decide(&acme, &policy(), &manager).unwrap().unwrap();
        record.apply(&Recorded {
            event,
            actor: manager.clone(),
            at: 1,
        });
        assert_eq!(record.version, 1);
        assert_eq!(record.decide(&acme, &policy(), &manager), Ok(None));
        let agent = Actor::new("ana", Role::Agent);
        assert!(matches!(
            record.decide(&acme, &policy(), &agent),
            Err(DomainError::Forbidden { .. })
        ));
        assert_eq!(
            policy()
                .targets(Tier::Standard, Priority::Normal)
                .first_response_secs,
            3600
        );
        assert_eq!(
            policy().targets(Tier::Basic, Priority::Urgent),
            Targets::default()
        );
        assert_eq!(policy().time_budget(Tier::Extended), 120);
    }

    #[test]
    fn bad_policies_name_their_field() {
        let field = |p: SlaPolicy| match p.validate() {
            Err(DomainError::InvalidField { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        let mut p = policy();
        p.warning_percent = 100;
        assert_eq!(field(p), "warning_percent");
        let mut p = policy();
        p.targets.push(p.targets[0]);
        assert_eq!(field(p), "targets[1]");
        let mut p = policy();
        p.targets[0].targets.resolution_secs = MAX_TARGET_SECS + 1;
        assert_eq!(field(p), "targets[0].resolution_seconds");
        let mut p = policy();
        p.calendar = Some(Calendar {
            time_zone: "Mars/Olympus".into(),
            weekly: [Some((540, 1020)); 7],
            holidays: vec![],
        });
        assert_eq!(field(p), "calendar.time_zone");
        let mut p = policy();
        p.calendar = Some(Calendar {
            time_zone: "Europe/Berlin".into(),
            weekly: [Some((540, 1020)); 7],
            holidays: vec!["2026-12-25".into(), "Christmas".into()],
        });
        assert_eq!(field(p), "calendar.holidays[1]");
    }
}
