//! The one place where wire enums and domain enums meet.
//!
//! Wire → domain conversions are fallible (`UNSPECIFIED` and unknown numbers are not
//! domain values); domain → wire conversions are total.

use frontline_domain as domain;

use crate::v1;

/// A wire enum value that has no domain meaning (unspecified or unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unspecified;

macro_rules! enum_map {
    ($wire:ty, $dom:ty, $unspec:path, { $($w:path => $d:path),+ $(,)? }) => {
        impl From<$dom> for $wire {
            fn from(d: $dom) -> Self {
                match d { $($d => $w),+ }
            }
        }
        impl TryFrom<$wire> for $dom {
            type Error = Unspecified;
            fn try_from(w: $wire) -> Result<Self, Unspecified> {
                match w {
                    $($w => Ok($d),)+
                    $unspec => Err(Unspecified),
                }
            }
        }
    };
}

enum_map!(v1::AgentStatus, domain::Availability, v1::AgentStatus::Unspecified, {
    v1::AgentStatus::Available => domain::Availability::Available,
    v1::AgentStatus::Away => domain::Availability::Away,
    v1::AgentStatus::Offline => domain::Availability::Offline,
});

enum_map!(v1::RoutingRule, domain::assignment::Rule, v1::RoutingRule::Unspecified, {
    v1::RoutingRule::NamedAgent => domain::assignment::Rule::NamedAgent,
    v1::RoutingRule::KnowsCustomer => domain::assignment::Rule::KnowsCustomer,
    v1::RoutingRule::LeastLoaded => domain::assignment::Rule::LeastLoaded,
    v1::RoutingRule::Queued => domain::assignment::Rule::Queued,
    v1::RoutingRule::Manual => domain::assignment::Rule::Manual,
    v1::RoutingRule::Escalated => domain::assignment::Rule::Escalated,
});

enum_map!(v1::RoutingVerdict, domain::assignment::Verdict, v1::RoutingVerdict::Unspecified, {
    v1::RoutingVerdict::Chosen => domain::assignment::Verdict::Chosen,
    v1::RoutingVerdict::NotTheTenants => domain::assignment::Verdict::NotTheTenants,
    v1::RoutingVerdict::Inactive => domain::assignment::Verdict::Inactive,
    v1::RoutingVerdict::Unavailable => domain::assignment::Verdict::Unavailable,
    v1::RoutingVerdict::NoSkill => domain::assignment::Verdict::NoSkill,
    v1::RoutingVerdict::AtCapacity => domain::assignment::Verdict::AtCapacity,
    v1::RoutingVerdict::Passed => domain::assignment::Verdict::Passed,
});

enum_map!(v1::Tier, domain::assignment::Tier, v1::Tier::Unspecified, {
    v1::Tier::Basic => domain::assignment::Tier::Basic,
    v1::Tier::Standard => domain::assignment::Tier::Standard,
    v1::Tier::Extended => domain::assignment::Tier::Extended,
});

enum_map!(v1::SlaClockKind, domain::sla::clocks::ClockKind, v1::SlaClockKind::Unspecified, {
    v1::SlaClockKind::FirstResponse => domain::sla::clocks::ClockKind::FirstResponse,
    v1::SlaClockKind::NextResponse => domain::sla::clocks::ClockKind::NextResponse,
    v1::SlaClockKind::Resolution => domain::sla::clocks::ClockKind::Resolution,
});

enum_map!(v1::SlaClockState, domain::sla::clocks::ClockState, v1::SlaClockState::Unspecified, {
    v1::SlaClockState::Running => domain::sla::clocks::ClockState::Running,
    v1::SlaClockState::Paused => domain::sla::clocks::ClockState::Paused,
    v1::SlaClockState::Met => domain::sla::clocks::ClockState::Met,
    v1::SlaClockState::Breached => domain::sla::clocks::ClockState::Breached,
});

enum_map!(v1::Escalation, domain::sla::policy::Escalation, v1::Escalation::Unspecified, {
    v1::Escalation::Reassign => domain::sla::policy::Escalation::Reassign,
    v1::Escalation::Raise => domain::sla::policy::Escalation::Raise,
});

enum_map!(v1::Channel, domain::Channel, v1::Channel::Unspecified, {
    v1::Channel::Email => domain::Channel::Email,
    v1::Channel::Chat => domain::Channel::Chat,
    v1::Channel::Phone => domain::Channel::Phone,
    v1::Channel::Web => domain::Channel::Web,
    v1::Channel::Api => domain::Channel::Api,
});

enum_map!(v1::Priority, domain::Priority, v1::Priority::Unspecified, {
    v1::Priority::Low => domain::Priority::Low,
    v1::Priority::Normal => domain::Priority::Normal,
    v1::Priority::High => domain::Priority::High,
    v1::Priority::Urgent => domain::Priority::Urgent,
});

enum_map!(v1::Role, domain::Role, v1::Role::Unspecified, {
    v1::Role::CustomerSystem => domain::Role::CustomerSystem,
    v1::Role::Agent => domain::Role::Agent,
    v1::Role::Manager => domain::Role::Manager,
    v1::Role::Admin => domain::Role::Admin,
});

enum_map!(v1::TicketStatus, domain::TicketStatus, v1::TicketStatus::Unspecified, {
    v1::TicketStatus::New => domain::TicketStatus::New,
    v1::TicketStatus::Open => domain::TicketStatus::Open,
    v1::TicketStatus::Pending => domain::TicketStatus::Pending,
    v1::TicketStatus::Solved => domain::TicketStatus::Solved,
    v1::TicketStatus::Closed => domain::TicketStatus::Closed,
    v1::TicketStatus::DeclineProposed => domain::TicketStatus::DeclineProposed,
});

enum_map!(v1::MessageKind, domain::ticket::MessageKind, v1::MessageKind::Unspecified, {
    v1::MessageKind::Customer => domain::ticket::MessageKind::Customer,
    v1::MessageKind::AgentReply => domain::ticket::MessageKind::AgentReply,
    v1::MessageKind::InternalNote => domain::ticket::MessageKind::InternalNote,
    v1::MessageKind::Automated => domain::ticket::MessageKind::Automated,
});

/// Decodes a raw `i32` enum field into a domain value (`None` if unspecified/unknown).
pub fn from_wire<W, D>(raw: i32) -> Option<D>
where
    W: TryFrom<i32>,
    D: TryFrom<W>,
{
    W::try_from(raw).ok().and_then(|w| D::try_from(w).ok())
}

/// Milliseconds since the epoch as a protobuf `Timestamp`.
pub fn timestamp(millis: domain::UnixMillis) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A protobuf `Timestamp` as milliseconds since the epoch. Saturates: a stored or
/// sent timestamp out of range (corrupt or hostile) never overflows.
pub fn millis(ts: &prost_types::Timestamp) -> domain::UnixMillis {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000)
}

/// The last second of year 9999, the latest moment a request may name.
pub const LATEST_SECONDS: i64 = 253_402_300_799;

/// A request's timestamp in milliseconds, if it is a valid moment between 1970 and
/// the end of year 9999 (anything else would overflow or mean nothing).
pub fn millis_checked(ts: &prost_types::Timestamp) -> Option<domain::UnixMillis> {
    ((0..=LATEST_SECONDS).contains(&ts.seconds) && (0..1_000_000_000).contains(&ts.nanos))
        .then(|| millis(ts))
}

/// One identity on the wire: exactly one field set (and `system` for an external id).
pub fn identity_key(key: &domain::IdentityKey) -> v1::CustomerIdentity {
    match key {
        domain::IdentityKey::External { system, id } => v1::CustomerIdentity {
            external_id: id.clone(),
            system: system.clone(),
            ..Default::default()
        },
        domain::IdentityKey::Email(email) => v1::CustomerIdentity {
            email: email.clone(),
            ..Default::default()
        },
        domain::IdentityKey::Phone(phone) => v1::CustomerIdentity {
            phone: phone.clone(),
            ..Default::default()
        },
    }
}

/// The first identity of each kind in one wire identity (identities come strongest
/// first, so the external id is the first system's).
pub fn first_of_each<'a>(
    keys: impl IntoIterator<Item = &'a domain::IdentityKey>,
) -> v1::CustomerIdentity {
    let mut wire = v1::CustomerIdentity::default();
    for key in keys {
        let one = identity_key(key);
        if wire.email.is_empty() && !one.email.is_empty() {
            wire.email = one.email;
        }
        if wire.phone.is_empty() && !one.phone.is_empty() {
            wire.phone = one.phone;
        }
        if wire.external_id.is_empty() && !one.external_id.is_empty() {
            wire.external_id = one.external_id;
            wire.system = one.system;
        }
    }
    wire
}

/// Wire facts from (key, value) pairs.
pub fn facts<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Vec<v1::Fact> {
    pairs
        .into_iter()
        .map(|(key, value)| v1::Fact {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// The NPS category of a latest answer (`None`: never answered) on the wire.
pub fn nps_category(score: Option<u8>) -> i32 {
    use domain::satisfaction::NpsCategory;
    let category = match score.map(NpsCategory::of) {
        None => v1::NpsCategory::Unspecified,
        Some(NpsCategory::Promoter) => v1::NpsCategory::Promoter,
        Some(NpsCategory::Passive) => v1::NpsCategory::Passive,
        Some(NpsCategory::Detractor) => v1::NpsCategory::Detractor,
    };
    category.into()
}

/// An article on the wire, with its id.
pub fn article_wire(id: uuid::Uuid, a: &domain::article::Article) -> v1::Article {
    v1::Article {
        article_id: id.to_string(),
        slug: a.slug.clone(),
        product_area: a.product_area.clone(),
        title: a.title.clone(),
        body: a.body.clone(),
        revision: a.revision,
        retired: a.retired,
    }
}

/// An article's text from the wire (its fields checked by the domain).
pub fn article_draft(a: &v1::Article) -> domain::article::Draft {
    domain::article::Draft {
        slug: a.slug.clone(),
        product_area: a.product_area.clone(),
        title: a.title.clone(),
        body: a.body.clone(),
    }
}

/// A macro on the wire.
pub fn macro_wire(m: &domain::macros::Macro) -> v1::Macro {
    use domain::macros::StatusChange;
    let status = match m.status_change {
        StatusChange::None => v1::TicketStatus::Unspecified,
        StatusChange::Pending => v1::TicketStatus::Pending,
        StatusChange::Solved => v1::TicketStatus::Solved,
    };
    v1::Macro {
        name: m.name.clone(),
        body: m.body.clone(),
        status_change: status.into(),
    }
}

/// A macro from a request (or an event), checked; error fields name the request's.
pub fn macro_from_wire(w: &v1::Macro) -> Result<domain::macros::Macro, domain::DomainError> {
    use domain::macros::StatusChange;
    let status_change = match v1::TicketStatus::try_from(w.status_change) {
        Ok(v1::TicketStatus::Unspecified | v1::TicketStatus::Open) => StatusChange::None,
        Ok(v1::TicketStatus::Pending) => StatusChange::Pending,
        Ok(v1::TicketStatus::Solved) => StatusChange::Solved,
        _ => {
            return Err(domain::DomainError::invalid(
                "macro.status_change",
                "OPEN, PENDING or SOLVED (or unset)",
            ));
        }
    };
    Ok(domain::macros::Macro {
        name: w.name.clone(),
        body: w.body.clone(),
        status_change,
    })
}

/// A ticket's short view.
pub fn ticket_summary(id: impl std::fmt::Display, t: &domain::TicketView) -> v1::TicketSummary {
    v1::TicketSummary {
        ticket_id: id.to_string(),
        subject: t.subject.clone(),
        status: t.status.map_or(0, |s| v1::TicketStatus::from(s).into()),
        product_area: t.product_area.clone(),
        opened_at: Some(timestamp(t.opened_at)),
        version: t.version,
        channel: t.channel.map_or(0, |c| v1::Channel::from(c).into()),
    }
}

/// One message of a ticket on the wire.
pub fn message(m: &domain::ticket::Message) -> v1::Message {
    v1::Message {
        version: m.version,
        kind: v1::MessageKind::from(m.kind).into(),
        author_id: m.author_id.clone(),
        body: m.body.clone(),
        channel: m.channel.map_or(0, |c| v1::Channel::from(c).into()),
        at: Some(timestamp(m.at)),
        customer_visible: m.customer_visible(),
        ticket_id: String::new(),
    }
}

/// A ticket's full view. Internal notes are included only when `staff`.
pub fn ticket(
    id: impl std::fmt::Display,
    t: &domain::TicketView,
    staff: bool,
    customer_facts: &std::collections::BTreeMap<String, String>,
) -> v1::Ticket {
    v1::Ticket {
        ticket_id: id.to_string(),
        customer_id: t.customer_id.to_string(),
        channel: t.channel.map_or(0, |c| v1::Channel::from(c).into()),
        subject: t.subject.clone(),
        product_area: t.product_area.clone(),
        priority: v1::Priority::from(t.priority).into(),
        status: t.status.map_or(0, |s| v1::TicketStatus::from(s).into()),
        version: t.version,
        opened_at: Some(timestamp(t.opened_at)),
        updated_at: Some(timestamp(t.updated_at)),
        solved_at: t.solved_at.map(timestamp),
        reopen_count: t.reopen_count,
        messages: t
            .messages
            .iter()
            .filter(|m| staff || m.customer_visible())
            .map(message)
            .collect(),
        customer_facts: facts(customer_facts),
        tenant: t.tenant.to_string(),
        personal_data_erased: t.subject == frontline_privacy::ERASED,
        assignee: if staff {
            t.assignee.clone().unwrap_or_default()
        } else {
            String::new()
        },
        declined: t.declined,
        pending_decline: t
            .pending_decline
            .as_ref()
            .filter(|_| staff)
            .map(|p| v1::PendingDecline {
                proposed_by: p.proposer.clone(),
                reason: p.reason.clone(),
                rationale: p.rationale.clone(),
                proposed_at: Some(timestamp(p.at)),
            }),
        closed_at: t.closed_at.map(timestamp),
        follow_up_of: t.follow_up_of.map(|f| f.to_string()).unwrap_or_default(),
        self_served_article_id: t.self_served.map(|a| a.to_string()).unwrap_or_default(),
        satisfaction: t.satisfaction.as_ref().map(|r| v1::Satisfaction {
            score: u32::from(r.score),
            comment: r.comment.clone(),
            rated_at: Some(timestamp(r.at)),
        }),
        merged_into_ticket_id: t.merged_into.map(|m| m.to_string()).unwrap_or_default(),
        merged_ticket_ids: t.merged_from.iter().map(uuid::Uuid::to_string).collect(),
    }
}

/// Routing's candidates on the wire.
pub fn routing_candidates(
    candidates: &[(String, domain::assignment::Verdict)],
) -> Vec<v1::RoutingCandidate> {
    candidates
        .iter()
        .map(|(agent_id, verdict)| v1::RoutingCandidate {
            agent_id: agent_id.clone(),
            verdict: v1::RoutingVerdict::from(*verdict).into(),
        })
        .collect()
}

/// An agent profile on the wire.
pub fn agent_profile(p: &domain::agent::Profile) -> v1::AgentProfile {
    v1::AgentProfile {
        display_name: p.display_name.clone(),
        skills: p
            .skills
            .iter()
            .map(|(area, level)| v1::Skill {
                product_area: area.clone(),
                level: u32::from(*level),
            })
            .collect(),
        capacity: p.capacity,
        team: p.team.clone(),
        tenants: p.tenants.iter().map(ToString::to_string).collect(),
    }
}

/// A wire profile as the domain's; every field error names the request field under
/// `field` (e.g. `profile.skills[1].level`, by the request's own order).
pub fn agent_profile_from_wire(
    field: &str,
    wire: &v1::AgentProfile,
) -> Result<domain::agent::Profile, domain::DomainError> {
    use domain::DomainError;
    let mut skills = std::collections::BTreeMap::new();
    for (i, skill) in wire.skills.iter().enumerate() {
        domain::limits::product_area(
            &format!("{field}.skills[{i}].product_area"),
            &skill.product_area,
        )?;
        let level = u8::try_from(skill.level)
            .ok()
            .filter(|l| (1..=domain::agent::MAX_SKILL_LEVEL).contains(l))
            .ok_or_else(|| {
                DomainError::invalid(
                    format!("{field}.skills[{i}].level"),
                    format!("must be 1 to {}", domain::agent::MAX_SKILL_LEVEL),
                )
            })?;
        if skills.insert(skill.product_area.clone(), level).is_some() {
            return Err(DomainError::invalid(
                format!("{field}.skills[{i}].product_area"),
                "each product area once",
            ));
        }
    }
    let mut tenants = std::collections::BTreeSet::new();
    for (i, raw) in wire.tenants.iter().enumerate() {
        tenants.insert(domain::TenantId::parse(
            &format!("{field}.tenants[{i}]"),
            raw,
        )?);
    }
    let profile = domain::agent::Profile {
        display_name: wire.display_name.clone(),
        skills,
        capacity: wire.capacity,
        team: wire.team.clone(),
        tenants,
    };
    // The rest of the checks are the domain's; name the field as the request does.
    domain::AgentCommand::Update(profile.clone())
        .validate()
        .map_err(|e| match e {
            domain::DomainError::InvalidField { field: f, reason } => {
                domain::DomainError::InvalidField {
                    field: format!("{field}.{f}"),
                    reason,
                }
            }
            other => other,
        })?;
    Ok(profile)
}

/// An SLA policy on the wire.
pub fn sla_policy(p: &domain::sla::policy::SlaPolicy) -> v1::SlaPolicy {
    v1::SlaPolicy {
        default_tier: v1::Tier::from(p.default_tier).into(),
        targets: p
            .targets
            .iter()
            .map(|r| v1::SlaTarget {
                tier: v1::Tier::from(r.tier).into(),
                priority: v1::Priority::from(r.priority).into(),
                first_response_seconds: r.targets.first_response_secs,
                next_response_seconds: r.targets.next_response_secs,
                resolution_seconds: r.targets.resolution_secs,
            })
            .collect(),
        calendar: p.calendar.as_ref().map(|c| v1::BusinessCalendar {
            time_zone: c.time_zone.clone(),
            weekly: c
                .weekly
                .iter()
                .map(|day| {
                    let (from, to) = day.unwrap_or((0, 0));
                    v1::OpenHours {
                        from_minute: u32::from(from),
                        to_minute: u32::from(to),
                    }
                })
                .collect(),
            holidays: c.holidays.clone(),
        }),
        warning_percent: u32::from(p.warning_percent),
        time_budget_minutes: p.time_budget_minutes.to_vec(),
        escalation: v1::Escalation::from(p.escalation).into(),
        auto_close_after_seconds: p.auto_close_after_secs,
        check_in_after_seconds: p.check_in_after_secs,
    }
}

/// An SLA policy from a request's `field`, checked; error fields name the
/// request's (`policy.targets[0].tier`).
pub fn sla_policy_from_wire(
    field: &str,
    wire: &v1::SlaPolicy,
) -> Result<domain::sla::policy::SlaPolicy, domain::DomainError> {
    use domain::sla::policy::{Calendar, SlaPolicy, TargetRow, Targets};
    let invalid =
        |f: String, reason: &str| domain::DomainError::invalid(format!("{field}.{f}"), reason);
    let default_tier = match wire.default_tier {
        0 => domain::assignment::Tier::default(),
        raw => from_wire::<v1::Tier, domain::assignment::Tier>(raw)
            .ok_or_else(|| invalid("default_tier".into(), "one of BASIC, STANDARD, EXTENDED"))?,
    };
    let mut targets = Vec::with_capacity(wire.targets.len());
    for (i, t) in wire.targets.iter().enumerate() {
        targets.push(TargetRow {
            tier: from_wire::<v1::Tier, domain::assignment::Tier>(t.tier).ok_or_else(|| {
                invalid(
                    format!("targets[{i}].tier"),
                    "one of BASIC, STANDARD, EXTENDED",
                )
            })?,
            priority: from_wire::<v1::Priority, domain::Priority>(t.priority).ok_or_else(|| {
                invalid(
                    format!("targets[{i}].priority"),
                    "one of LOW, NORMAL, HIGH, URGENT",
                )
            })?,
            targets: Targets {
                first_response_secs: t.first_response_seconds,
                next_response_secs: t.next_response_seconds,
                resolution_secs: t.resolution_seconds,
            },
        });
    }
    let calendar = match &wire.calendar {
        None => None,
        Some(c) => {
            let days: [v1::OpenHours; 7] = c.weekly.clone().try_into().map_err(|_| {
                invalid("calendar.weekly".into(), "exactly seven days, Monday first")
            })?;
            let mut weekly = [None; 7];
            for (day, hours) in days.iter().enumerate() {
                if hours.from_minute == 0 && hours.to_minute == 0 {
                    continue;
                }
                let minute = |m: u32| u16::try_from(m).unwrap_or(u16::MAX);
                weekly[day] = Some((minute(hours.from_minute), minute(hours.to_minute)));
            }
            Some(Calendar {
                time_zone: c.time_zone.clone(),
                weekly,
                holidays: c.holidays.clone(),
            })
        }
    };
    let time_budget_minutes = match wire.time_budget_minutes[..] {
        [] => [0; 3],
        [basic, standard, extended] => [basic, standard, extended],
        _ => {
            return Err(invalid(
                "time_budget_minutes".into(),
                "basic, standard and extended, or none",
            ));
        }
    };
    let escalation = from_wire::<v1::Escalation, domain::sla::policy::Escalation>(wire.escalation)
        .ok_or_else(|| invalid("escalation".into(), "one of REASSIGN, RAISE"))?;
    let policy = SlaPolicy {
        default_tier,
        targets,
        calendar,
        warning_percent: u8::try_from(wire.warning_percent).unwrap_or(u8::MAX),
        time_budget_minutes,
        escalation,
        auto_close_after_secs: wire.auto_close_after_seconds,
        check_in_after_secs: wire.check_in_after_seconds,
    };
    policy.validate().map_err(|e| match e {
        domain::DomainError::InvalidField { field: f, reason } => {
            domain::DomainError::InvalidField {
                field: format!("{field}.{f}"),
                reason,
            }
        }
        other => other,
    })?;
    Ok(policy)
}

/// An agent on the wire.
pub fn agent(a: &domain::Agent) -> v1::Agent {
    v1::Agent {
        agent_id: a.agent_id.clone(),
        profile: a.profile.as_ref().map(agent_profile),
        status: v1::AgentStatus::from(a.availability).into(),
        active: a.active,
        version: a.version,
        load: a.load(),
        last_assigned_at: a.last_assigned_at.map(timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_unspecified_is_refused() {
        for c in [domain::Channel::Email, domain::Channel::Api] {
            let w: v1::Channel = c.into();
            assert_eq!(domain::Channel::try_from(w), Ok(c));
        }
        assert_eq!(
            from_wire::<v1::Channel, domain::Channel>(0),
            None,
            "unspecified"
        );
        assert_eq!(
            from_wire::<v1::Channel, domain::Channel>(99),
            None,
            "unknown"
        );
        assert_eq!(
            from_wire::<v1::Role, domain::Role>(2),
            Some(domain::Role::Agent)
        );
    }

    #[test]
    fn timestamps_round_trip() {
        for ms in [0, 1, 999, 1_700_000_000_123, -1] {
            assert_eq!(millis(&timestamp(ms)), ms);
        }
    }
}
