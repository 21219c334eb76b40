//! Every event's encoding, in one place: domain events ⇄ the payload messages of
//! `proto/frontline/v1/events.proto`, and the envelope that carries them.
//!
//! An event's type is the full protobuf name of its payload message, taken from
//! prost ([`prost::Name`]), e.g. `frontline.v1.TicketOpened`. A reader that meets a
//! type it does not know (written by a newer version: "deploy readers before
//! writers") gets `Ok(None)` and skips it; only a known type with a broken payload
//! is an error.

use frontline_domain::{
    AgentEvent, Assignment, Channel, CustomerEvent, IdentityClaimEvent, IdentityKey, Opening,
    Priority, TenantId, TicketEvent,
    article::{ArticleEvent, Draft},
    assignment::{Rule, Tier, Verdict},
    feedback::{Feedback, FeedbackEvent},
    macros::MacroEvent,
    satisfaction,
    self_service::{SelfServed, SelfServiceEvent},
    sla::{
        clocks::{Alarm, ClockKind},
        policy::PolicyEvent,
    },
};
use frontline_privacy::Fields;
use prost::{Message, Name};
use uuid::Uuid;

use crate::{
    convert::{self, from_wire},
    v1,
};

/// Header naming the event type, so any NATS client can route without decoding.
pub const HEADER_EVENT_TYPE: &str = "Frontline-Event-Type";
/// Content type of every event message.
pub const CONTENT_TYPE: &str = "application/x-protobuf; proto=frontline.v1.EventEnvelope";
/// Schema version of every payload written by this code.
pub const SCHEMA_VERSION: u32 = 1;

/// An aggregate's events as they travel on the log. Personal fields go through
/// `fields`, which seals them on the way out and opens them on the way in (see
/// `events.proto`, "Personal data").
pub trait EventCodec: Sized {
    /// Full protobuf name of the payload, e.g. `frontline.v1.TicketOpened`.
    fn event_type(&self) -> String;
    /// The protobuf payload, personal fields sealed by `fields`.
    fn encode_payload(&self, fields: &Fields<'_>) -> Vec<u8>;
    /// Decodes a payload of `event_type`, opening personal fields with `fields`:
    /// `Ok(None)` for a type this code does not know (skip it), `Err` when a known
    /// type's payload is not valid or a sealed field does not open.
    fn decode_payload(
        event_type: &str,
        payload: &[u8],
        fields: &Fields<'_>,
    ) -> Result<Option<Self>, String>;
}

/// Opens personal field `field`, naming it when it does not open.
fn open(fields: &Fields<'_>, field: &str, stored: String) -> Result<String, String> {
    fields
        .open(field, stored)
        .map_err(|e| format!("{field}: {e}"))
}

/// Decodes a message body as an envelope.
pub fn decode_envelope(bytes: &[u8]) -> Result<v1::EventEnvelope, String> {
    v1::EventEnvelope::decode(bytes).map_err(|e| format!("not an EventEnvelope: {e}"))
}

/// Whether `event_type` names payload message `M`.
fn is<M: Name>(event_type: &str) -> bool {
    event_type
        .strip_prefix(M::PACKAGE)
        .and_then(|rest| rest.strip_prefix('.'))
        == Some(M::NAME)
}

/// `Some(decoded)` when `event_type` names `M`.
fn payload<M: Name + Message + Default>(
    event_type: &str,
    bytes: &[u8],
) -> Option<Result<M, String>> {
    is::<M>(event_type).then(|| M::decode(bytes).map_err(|e| format!("{}: {e}", M::NAME)))
}

fn channel(raw: i32) -> Result<Channel, String> {
    from_wire::<v1::Channel, Channel>(raw).ok_or_else(|| format!("unknown channel {raw}"))
}

/// A priority a newer writer added reads as the default, not as a broken event.
fn priority(raw: i32) -> Priority {
    from_wire::<v1::Priority, Priority>(raw).unwrap_or_default()
}

fn uuid(raw: &str, field: &str) -> Result<Uuid, String> {
    Uuid::parse_str(raw).map_err(|e| format!("{field}: {e}"))
}

fn tenant(raw: &str) -> Result<TenantId, String> {
    TenantId::parse("tenant", raw).map_err(|e| e.to_string())
}

fn uuids(raw: &[String], field: &str) -> Result<Vec<Uuid>, String> {
    raw.iter().map(|r| uuid(r, field)).collect()
}

fn candidates(raw: &[v1::RoutingCandidate]) -> Result<Vec<(String, Verdict)>, String> {
    raw.iter()
        .map(|c| {
            from_wire::<v1::RoutingVerdict, Verdict>(c.verdict)
                .map(|v| (c.agent_id.clone(), v))
                .ok_or_else(|| format!("unknown routing verdict {}", c.verdict))
        })
        .collect()
}

fn clock_kind(raw: i32) -> Result<ClockKind, String> {
    from_wire::<v1::SlaClockKind, ClockKind>(raw).ok_or_else(|| format!("unknown SLA clock {raw}"))
}

fn alarm(
    clock: i32,
    cycle: u64,
    alarm: Alarm,
    due_at: Option<prost_types::Timestamp>,
) -> Result<TicketEvent, String> {
    Ok(TicketEvent::SlaAlarm {
        clock: clock_kind(clock)?,
        cycle,
        alarm,
        due_at: due_at.as_ref().map(convert::millis).unwrap_or_default(),
    })
}

fn optional(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl EventCodec for TicketEvent {
    fn event_type(&self) -> String {
        match self {
            TicketEvent::Opened(_) => v1::TicketOpened::full_name(),
            TicketEvent::CustomerMessageAdded { .. } => v1::CustomerMessageAdded::full_name(),
            TicketEvent::AgentReplied { .. } => v1::AgentReplied::full_name(),
            TicketEvent::NoteAdded { .. } => v1::InternalNoteAdded::full_name(),
            TicketEvent::Solved { .. } => v1::TicketSolved::full_name(),
            TicketEvent::Reopened { .. } => v1::TicketReopened::full_name(),
            TicketEvent::Assigned(_) => v1::TicketAssigned::full_name(),
            TicketEvent::Queued { .. } => v1::TicketQueued::full_name(),
            TicketEvent::SlaAlarm {
                alarm: Alarm::Warning,
                ..
            } => v1::SlaWarning::full_name(),
            TicketEvent::SlaAlarm {
                alarm: Alarm::Breach,
                ..
            } => v1::SlaBreached::full_name(),
            TicketEvent::EscalationRaised { .. } => v1::EscalationRaised::full_name(),
            TicketEvent::TimeLogged { .. } => v1::TimeLogged::full_name(),
            TicketEvent::TimeBudgetExceeded { .. } => v1::TimeBudgetExceeded::full_name(),
            TicketEvent::DeclineProposed { .. } => v1::DeclineProposed::full_name(),
            TicketEvent::DeclineApproved { .. } => v1::DeclineApproved::full_name(),
            TicketEvent::DeclineRejected { .. } => v1::DeclineRejected::full_name(),
            TicketEvent::Closed { .. } => v1::TicketClosed::full_name(),
            TicketEvent::SatisfactionRated { .. } => v1::SatisfactionRated::full_name(),
            TicketEvent::FollowUpRaised { .. } => v1::FollowUpRaised::full_name(),
            TicketEvent::AutoAnswered { .. } => v1::TicketAutoAnswered::full_name(),
            TicketEvent::CheckInDue { .. } => v1::CheckInDue::full_name(),
            TicketEvent::HumanRequested { .. } => v1::HumanRequested::full_name(),
            TicketEvent::MergedInto { .. } => v1::TicketMergedInto::full_name(),
            TicketEvent::MergedFrom { .. } => v1::TicketMergedFrom::full_name(),
            TicketEvent::Unmerged { .. } => v1::TicketUnmerged::full_name(),
            TicketEvent::UnmergedFrom { .. } => v1::TicketUnmergedFrom::full_name(),
        }
    }

    fn encode_payload(&self, fields: &Fields<'_>) -> Vec<u8> {
        match self.clone() {
            TicketEvent::Opened(o) => v1::TicketOpened {
                channel: v1::Channel::from(o.channel).into(),
                customer_id: o.customer_id.to_string(),
                subject: fields.seal("subject", o.subject),
                body: fields.seal("body", o.body),
                product_area: o.product_area,
                priority: v1::Priority::from(o.priority).into(),
                idempotency_key: o.idempotency_key,
                tenant: o.tenant.to_string(),
                follow_up_of: o.follow_up_of.map(|t| t.to_string()).unwrap_or_default(),
            }
            .encode_to_vec(),
            TicketEvent::CustomerMessageAdded {
                body,
                channel,
                idempotency_key,
                reopened,
            } => v1::CustomerMessageAdded {
                body: fields.seal("body", body),
                channel: v1::Channel::from(channel).into(),
                idempotency_key,
                reopened,
            }
            .encode_to_vec(),
            TicketEvent::AgentReplied {
                body,
                awaiting_customer,
                idempotency_key,
            } => v1::AgentReplied {
                body: fields.seal("body", body),
                awaiting_customer,
                idempotency_key: idempotency_key.unwrap_or_default(),
            }
            .encode_to_vec(),
            TicketEvent::NoteAdded {
                body,
                idempotency_key,
            } => v1::InternalNoteAdded {
                body: fields.seal("body", body),
                idempotency_key: idempotency_key.unwrap_or_default(),
            }
            .encode_to_vec(),
            TicketEvent::Solved {
                resolution,
                self_served,
                idempotency_key,
            } => v1::TicketSolved {
                resolution: fields.seal("resolution", resolution),
                self_served_article_id: self_served.map(|a| a.to_string()).unwrap_or_default(),
                idempotency_key: idempotency_key.clone().unwrap_or_default(),
            }
            .encode_to_vec(),
            TicketEvent::Reopened { reason } => v1::TicketReopened {
                reason: fields.seal("reason", reason),
            }
            .encode_to_vec(),
            TicketEvent::Assigned(a) => v1::TicketAssigned {
                agent_id: a.agent,
                rule: v1::RoutingRule::from(a.rule).into(),
                candidates: convert::routing_candidates(&a.candidates),
                reason: fields.seal("reason", a.reason),
            }
            .encode_to_vec(),
            TicketEvent::Queued { candidates } => v1::TicketQueued {
                candidates: convert::routing_candidates(&candidates),
            }
            .encode_to_vec(),
            TicketEvent::SlaAlarm {
                clock,
                cycle,
                alarm,
                due_at,
            } => {
                let (clock, due_at) = (
                    v1::SlaClockKind::from(clock).into(),
                    Some(convert::timestamp(due_at)),
                );
                match alarm {
                    Alarm::Warning => v1::SlaWarning {
                        clock,
                        cycle,
                        due_at,
                    }
                    .encode_to_vec(),
                    Alarm::Breach => v1::SlaBreached {
                        clock,
                        cycle,
                        due_at,
                    }
                    .encode_to_vec(),
                }
            }
            TicketEvent::EscalationRaised {
                clock,
                cycle,
                reason,
                team,
                reassign_to,
            } => v1::EscalationRaised {
                clock: v1::SlaClockKind::from(clock).into(),
                cycle,
                reason,
                team,
                reassign_to,
            }
            .encode_to_vec(),
            TicketEvent::TimeLogged { minutes } => v1::TimeLogged { minutes }.encode_to_vec(),
            TicketEvent::TimeBudgetExceeded { minutes, budget } => {
                v1::TimeBudgetExceeded { minutes, budget }.encode_to_vec()
            }
            TicketEvent::DeclineProposed { reason, rationale } => v1::DeclineProposed {
                reason: fields.seal("reason", reason),
                rationale: fields.seal("rationale", rationale),
            }
            .encode_to_vec(),
            TicketEvent::DeclineApproved { note } => v1::DeclineApproved {
                note: fields.seal("note", note),
            }
            .encode_to_vec(),
            TicketEvent::DeclineRejected { note } => v1::DeclineRejected {
                note: fields.seal("note", note),
            }
            .encode_to_vec(),
            TicketEvent::Closed { automatic } => v1::TicketClosed { automatic }.encode_to_vec(),
            TicketEvent::AutoAnswered { body, rule } => v1::TicketAutoAnswered {
                body: fields.seal("body", body),
                rule,
            }
            .encode_to_vec(),
            TicketEvent::CheckInDue { agent, solve } => v1::CheckInDue {
                agent_id: agent,
                solve,
            }
            .encode_to_vec(),
            TicketEvent::HumanRequested { priority } => v1::HumanRequested {
                priority: v1::Priority::from(priority).into(),
            }
            .encode_to_vec(),
            TicketEvent::MergedInto { target, reason } => v1::TicketMergedInto {
                target_ticket_id: target.to_string(),
                reason: fields.seal("reason", reason),
            }
            .encode_to_vec(),
            TicketEvent::MergedFrom { source } => v1::TicketMergedFrom {
                source_ticket_id: source.to_string(),
            }
            .encode_to_vec(),
            TicketEvent::Unmerged { target, reason } => v1::TicketUnmerged {
                target_ticket_id: target.to_string(),
                reason: fields.seal("reason", reason),
            }
            .encode_to_vec(),
            TicketEvent::UnmergedFrom { source } => v1::TicketUnmergedFrom {
                source_ticket_id: source.to_string(),
            }
            .encode_to_vec(),
            TicketEvent::SatisfactionRated {
                score,
                comment,
                solve,
            } => v1::SatisfactionRated {
                score: u32::from(score),
                comment: fields.seal("comment", comment),
                solve,
            }
            .encode_to_vec(),
            TicketEvent::FollowUpRaised {
                rating,
                team,
                reason,
            } => v1::FollowUpRaised {
                rating,
                team,
                reason: fields.seal("reason", reason),
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = payload::<v1::TicketOpened>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::Opened(Opening {
                tenant: tenant(&e.tenant)?,
                channel: channel(e.channel)?,
                customer_id: uuid(&e.customer_id, "customer_id")?,
                subject: open(fields, "subject", e.subject)?,
                body: open(fields, "body", e.body)?,
                product_area: e.product_area,
                priority: priority(e.priority),
                idempotency_key: e.idempotency_key,
                follow_up_of: match e.follow_up_of.as_str() {
                    "" => None,
                    raw => Some(uuid(raw, "follow_up_of")?),
                },
            })));
        }
        if let Some(e) = payload::<v1::CustomerMessageAdded>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::CustomerMessageAdded {
                body: open(fields, "body", e.body)?,
                channel: channel(e.channel)?,
                idempotency_key: e.idempotency_key,
                reopened: e.reopened,
            }));
        }
        if let Some(e) = payload::<v1::AgentReplied>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::AgentReplied {
                body: open(fields, "body", e.body)?,
                awaiting_customer: e.awaiting_customer,
                idempotency_key: optional(e.idempotency_key),
            }));
        }
        if let Some(e) = payload::<v1::InternalNoteAdded>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::NoteAdded {
                body: open(fields, "body", e.body)?,
                idempotency_key: optional(e.idempotency_key),
            }));
        }
        if let Some(e) = payload::<v1::TicketSolved>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::Solved {
                self_served: optional_uuid(&e.self_served_article_id, "self_served_article_id")?,
                idempotency_key: optional(e.idempotency_key),
                resolution: open(fields, "resolution", e.resolution)?,
            }));
        }
        if let Some(e) = payload::<v1::TicketReopened>(event_type, bytes) {
            return Ok(Some(TicketEvent::Reopened {
                reason: open(fields, "reason", e?.reason)?,
            }));
        }
        if let Some(e) = payload::<v1::TicketAssigned>(event_type, bytes) {
            let e = e?;
            let rule = from_wire::<v1::RoutingRule, Rule>(e.rule)
                .ok_or_else(|| format!("unknown routing rule {}", e.rule))?;
            return Ok(Some(TicketEvent::Assigned(Assignment {
                agent: e.agent_id,
                rule,
                candidates: candidates(&e.candidates)?,
                reason: open(fields, "reason", e.reason)?,
            })));
        }
        if let Some(e) = payload::<v1::TicketQueued>(event_type, bytes) {
            return Ok(Some(TicketEvent::Queued {
                candidates: candidates(&e?.candidates)?,
            }));
        }
        if let Some(e) = payload::<v1::SlaWarning>(event_type, bytes) {
            let e = e?;
            return Ok(Some(alarm(e.clock, e.cycle, Alarm::Warning, e.due_at)?));
        }
        if let Some(e) = payload::<v1::SlaBreached>(event_type, bytes) {
            let e = e?;
            return Ok(Some(alarm(e.clock, e.cycle, Alarm::Breach, e.due_at)?));
        }
        if let Some(e) = payload::<v1::EscalationRaised>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::EscalationRaised {
                clock: clock_kind(e.clock)?,
                cycle: e.cycle,
                reason: e.reason,
                team: e.team,
                reassign_to: e.reassign_to,
            }));
        }
        if let Some(e) = payload::<v1::TimeLogged>(event_type, bytes) {
            return Ok(Some(TicketEvent::TimeLogged {
                minutes: e?.minutes,
            }));
        }
        if let Some(e) = payload::<v1::DeclineProposed>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::DeclineProposed {
                reason: open(fields, "reason", e.reason)?,
                rationale: open(fields, "rationale", e.rationale)?,
            }));
        }
        if let Some(e) = payload::<v1::DeclineApproved>(event_type, bytes) {
            return Ok(Some(TicketEvent::DeclineApproved {
                note: open(fields, "note", e?.note)?,
            }));
        }
        if let Some(e) = payload::<v1::DeclineRejected>(event_type, bytes) {
            return Ok(Some(TicketEvent::DeclineRejected {
                note: open(fields, "note", e?.note)?,
            }));
        }
        if let Some(e) = payload::<v1::SatisfactionRated>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::SatisfactionRated {
                score: satisfaction::score(e.score),
                comment: open(fields, "comment", e.comment)?,
                solve: e.solve,
            }));
        }
        if let Some(e) = payload::<v1::FollowUpRaised>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::FollowUpRaised {
                rating: e.rating,
                team: e.team,
                reason: open(fields, "reason", e.reason)?,
            }));
        }
        if let Some(e) = payload::<v1::TicketAutoAnswered>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::AutoAnswered {
                body: open(fields, "body", e.body)?,
                rule: e.rule,
            }));
        }
        if let Some(e) = payload::<v1::CheckInDue>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::CheckInDue {
                agent: e.agent_id,
                solve: e.solve,
            }));
        }
        if let Some(e) = payload::<v1::HumanRequested>(event_type, bytes) {
            return Ok(Some(TicketEvent::HumanRequested {
                priority: priority(e?.priority),
            }));
        }
        if let Some(e) = payload::<v1::TicketMergedInto>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::MergedInto {
                target: uuid(&e.target_ticket_id, "target_ticket_id")?,
                reason: open(fields, "reason", e.reason)?,
            }));
        }
        if let Some(e) = payload::<v1::TicketMergedFrom>(event_type, bytes) {
            return Ok(Some(TicketEvent::MergedFrom {
                source: uuid(&e?.source_ticket_id, "source_ticket_id")?,
            }));
        }
        if let Some(e) = payload::<v1::TicketUnmerged>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::Unmerged {
                target: uuid(&e.target_ticket_id, "target_ticket_id")?,
                reason: open(fields, "reason", e.reason)?,
            }));
        }
        if let Some(e) = payload::<v1::TicketUnmergedFrom>(event_type, bytes) {
            return Ok(Some(TicketEvent::UnmergedFrom {
                source: uuid(&e?.source_ticket_id, "source_ticket_id")?,
            }));
        }
        if let Some(e) = payload::<v1::TicketClosed>(event_type, bytes) {
            return Ok(Some(TicketEvent::Closed {
                automatic: e?.automatic,
            }));
        }
        if let Some(e) = payload::<v1::TimeBudgetExceeded>(event_type, bytes) {
            let e = e?;
            return Ok(Some(TicketEvent::TimeBudgetExceeded {
                minutes: e.minutes,
                budget: e.budget,
            }));
        }
        Ok(None)
    }
}

impl EventCodec for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            CustomerEvent::Contacted { .. } => v1::CustomerContacted::full_name(),
            CustomerEvent::LinkedInto { .. } => v1::CustomerLinkedInto::full_name(),
            CustomerEvent::Absorbed { .. } => v1::CustomerAbsorbed::full_name(),
            CustomerEvent::Unlinked { .. } => v1::CustomerUnlinked::full_name(),
            CustomerEvent::Forgotten { .. } => v1::CustomerForgotten::full_name(),
            CustomerEvent::TierSet { .. } => v1::CustomerTierSet::full_name(),
            CustomerEvent::NpsRated { .. } => v1::CustomerNpsRated::full_name(),
        }
    }

    fn encode_payload(&self, fields: &Fields<'_>) -> Vec<u8> {
        match self {
            CustomerEvent::Contacted {
                channel,
                tenant,
                identities_added,
                facts_recorded,
                ticket_opened,
                possible_duplicates,
            } => v1::CustomerContacted {
                channel: v1::Channel::from(*channel).into(),
                identities_added: identities_added
                    .iter()
                    .enumerate()
                    .map(|(i, key)| seal_identity(fields, &format!("identities_added.{i}"), key))
                    .collect(),
                facts_recorded: facts_recorded
                    .iter()
                    .map(|(key, value)| v1::Fact {
                        key: key.clone(),
                        value: fields.seal(&format!("facts.{key}"), value.clone()),
                    })
                    .collect(),
                ticket_opened: ticket_opened.map(|t| t.to_string()).unwrap_or_default(),
                tenant: tenant.to_string(),
                possible_duplicates: possible_duplicates.iter().map(Uuid::to_string).collect(),
            }
            .encode_to_vec(),
            CustomerEvent::LinkedInto { customer_id } => v1::CustomerLinkedInto {
                customer_id: customer_id.to_string(),
            }
            .encode_to_vec(),
            CustomerEvent::Absorbed { customer_id } => v1::CustomerAbsorbed {
                customer_id: customer_id.to_string(),
            }
            .encode_to_vec(),
            CustomerEvent::Unlinked { customer_id } => v1::CustomerUnlinked {
                customer_id: customer_id.to_string(),
            }
            .encode_to_vec(),
            CustomerEvent::Forgotten {
                reason,
                released_claims,
            } => v1::CustomerForgotten {
                reason: reason.clone(),
                released_claims: released_claims.iter().map(Uuid::to_string).collect(),
            }
            .encode_to_vec(),
            CustomerEvent::TierSet { tier, named_agent } => v1::CustomerTierSet {
                tier: v1::Tier::from(*tier).into(),
                named_agent_id: named_agent.clone().unwrap_or_default(),
            }
            .encode_to_vec(),
            CustomerEvent::NpsRated { score, comment } => v1::CustomerNpsRated {
                score: u32::from(*score),
                comment: fields.seal("comment", comment.clone()),
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = payload::<v1::CustomerContacted>(event_type, bytes) {
            let e = e?;
            return Ok(Some(CustomerEvent::Contacted {
                channel: channel(e.channel)?,
                tenant: tenant(&e.tenant)?,
                identities_added: e
                    .identities_added
                    .into_iter()
                    .enumerate()
                    .map(|(i, wire)| open_identity(fields, &format!("identities_added.{i}"), wire))
                    .collect::<Result<_, _>>()?,
                facts_recorded: e
                    .facts_recorded
                    .into_iter()
                    .map(|f| {
                        let value = open(fields, &format!("facts.{}", f.key), f.value)?;
                        Ok::<_, String>((f.key, value))
                    })
                    .collect::<Result<_, _>>()?,
                ticket_opened: optional(e.ticket_opened)
                    .map(|t| uuid(&t, "ticket_opened"))
                    .transpose()?,
                possible_duplicates: uuids(&e.possible_duplicates, "possible_duplicates")?,
            }));
        }
        if let Some(e) = payload::<v1::CustomerLinkedInto>(event_type, bytes) {
            let customer_id = uuid(&e?.customer_id, "customer_id")?;
            return Ok(Some(CustomerEvent::LinkedInto { customer_id }));
        }
        if let Some(e) = payload::<v1::CustomerAbsorbed>(event_type, bytes) {
            let customer_id = uuid(&e?.customer_id, "customer_id")?;
            return Ok(Some(CustomerEvent::Absorbed { customer_id }));
        }
        if let Some(e) = payload::<v1::CustomerUnlinked>(event_type, bytes) {
            let customer_id = uuid(&e?.customer_id, "customer_id")?;
            return Ok(Some(CustomerEvent::Unlinked { customer_id }));
        }
        if let Some(e) = payload::<v1::CustomerForgotten>(event_type, bytes) {
            let e = e?;
            return Ok(Some(CustomerEvent::Forgotten {
                reason: e.reason,
                released_claims: uuids(&e.released_claims, "released_claims")?,
            }));
        }
        if let Some(e) = payload::<v1::CustomerTierSet>(event_type, bytes) {
            let e = e?;
            let tier = from_wire::<v1::Tier, Tier>(e.tier)
                .ok_or_else(|| format!("unknown tier {}", e.tier))?;
            return Ok(Some(CustomerEvent::TierSet {
                tier,
                named_agent: optional(e.named_agent_id),
            }));
        }
        if let Some(e) = payload::<v1::CustomerNpsRated>(event_type, bytes) {
            let e = e?;
            return Ok(Some(CustomerEvent::NpsRated {
                score: satisfaction::score(e.score),
                comment: open(fields, "comment", e.comment)?,
            }));
        }
        Ok(None)
    }
}

impl EventCodec for IdentityClaimEvent {
    fn event_type(&self) -> String {
        match self {
            IdentityClaimEvent::Claimed { .. } => v1::IdentityClaimed::full_name(),
            IdentityClaimEvent::Released { .. } => v1::IdentityReleased::full_name(),
        }
    }

    fn encode_payload(&self, fields: &Fields<'_>) -> Vec<u8> {
        match self {
            IdentityClaimEvent::Claimed {
                tenant,
                identity,
                customer_id,
            } => v1::IdentityClaimed {
                tenant: tenant.to_string(),
                identity: Some(seal_identity(fields, "identity", identity)),
                customer_id: customer_id.to_string(),
            }
            .encode_to_vec(),
            IdentityClaimEvent::Released { customer_id } => v1::IdentityReleased {
                customer_id: customer_id.to_string(),
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = payload::<v1::IdentityClaimed>(event_type, bytes) {
            let e = e?;
            return Ok(Some(IdentityClaimEvent::Claimed {
                tenant: tenant(&e.tenant)?,
                identity: open_identity(fields, "identity", e.identity.unwrap_or_default())?,
                customer_id: uuid(&e.customer_id, "customer_id")?,
            }));
        }
        if let Some(e) = payload::<v1::IdentityReleased>(event_type, bytes) {
            let customer_id = uuid(&e?.customer_id, "customer_id")?;
            return Ok(Some(IdentityClaimEvent::Released { customer_id }));
        }
        Ok(None)
    }
}

impl EventCodec for AgentEvent {
    fn event_type(&self) -> String {
        match self {
            AgentEvent::Registered { .. } => v1::AgentRegistered::full_name(),
            AgentEvent::Updated(_) => v1::AgentUpdated::full_name(),
            AgentEvent::AvailabilityChanged(_) => v1::AgentStatusChanged::full_name(),
            AgentEvent::Deactivated => v1::AgentDeactivated::full_name(),
            AgentEvent::TicketTaken { .. } => v1::AgentTookTicket::full_name(),
            AgentEvent::TicketReleased { .. } => v1::AgentReleasedTicket::full_name(),
        }
    }

    // Agents are staff: nothing of theirs is sealed.
    fn encode_payload(&self, _fields: &Fields<'_>) -> Vec<u8> {
        match self {
            AgentEvent::Registered { agent_id, profile } => v1::AgentRegistered {
                agent_id: agent_id.clone(),
                profile: Some(convert::agent_profile(profile)),
            }
            .encode_to_vec(),
            AgentEvent::Updated(profile) => v1::AgentUpdated {
                profile: Some(convert::agent_profile(profile)),
            }
            .encode_to_vec(),
            AgentEvent::AvailabilityChanged(a) => v1::AgentStatusChanged {
                status: v1::AgentStatus::from(*a).into(),
            }
            .encode_to_vec(),
            AgentEvent::Deactivated => v1::AgentDeactivated {}.encode_to_vec(),
            AgentEvent::TicketTaken { ticket } => v1::AgentTookTicket {
                ticket_id: ticket.to_string(),
            }
            .encode_to_vec(),
            AgentEvent::TicketReleased { ticket } => v1::AgentReleasedTicket {
                ticket_id: ticket.to_string(),
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        _fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        let profile = |p: Option<v1::AgentProfile>| {
            convert::agent_profile_from_wire("profile", &p.unwrap_or_default())
                .map_err(|e| e.to_string())
        };
        if let Some(e) = payload::<v1::AgentRegistered>(event_type, bytes) {
            let e = e?;
            return Ok(Some(AgentEvent::Registered {
                agent_id: e.agent_id,
                profile: profile(e.profile)?,
            }));
        }
        if let Some(e) = payload::<v1::AgentUpdated>(event_type, bytes) {
            return Ok(Some(AgentEvent::Updated(profile(e?.profile)?)));
        }
        if let Some(e) = payload::<v1::AgentStatusChanged>(event_type, bytes) {
            let raw = e?.status;
            let status = from_wire::<v1::AgentStatus, frontline_domain::Availability>(raw)
                .ok_or_else(|| format!("unknown agent status {raw}"))?;
            return Ok(Some(AgentEvent::AvailabilityChanged(status)));
        }
        if let Some(e) = payload::<v1::AgentDeactivated>(event_type, bytes) {
            e?;
            return Ok(Some(AgentEvent::Deactivated));
        }
        if let Some(e) = payload::<v1::AgentTookTicket>(event_type, bytes) {
            return Ok(Some(AgentEvent::TicketTaken {
                ticket: uuid(&e?.ticket_id, "ticket_id")?,
            }));
        }
        if let Some(e) = payload::<v1::AgentReleasedTicket>(event_type, bytes) {
            return Ok(Some(AgentEvent::TicketReleased {
                ticket: uuid(&e?.ticket_id, "ticket_id")?,
            }));
        }
        Ok(None)
    }
}

impl EventCodec for PolicyEvent {
    fn event_type(&self) -> String {
        match self {
            PolicyEvent::Set { .. } => v1::SlaPolicySet::full_name(),
        }
    }

    // Policies are the tenant's rules: nothing personal.
    fn encode_payload(&self, _fields: &Fields<'_>) -> Vec<u8> {
        match self {
            PolicyEvent::Set { tenant, policy } => v1::SlaPolicySet {
                tenant: tenant.to_string(),
                policy: Some(convert::sla_policy(policy)),
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        _fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = payload::<v1::SlaPolicySet>(event_type, bytes) {
            let e = e?;
            let policy = convert::sla_policy_from_wire("policy", &e.policy.unwrap_or_default())
                .map_err(|e| e.to_string())?;
            return Ok(Some(PolicyEvent::Set {
                tenant: tenant(&e.tenant)?,
                policy,
            }));
        }
        Ok(None)
    }
}

fn optional_uuid(raw: &str, field: &str) -> Result<Option<Uuid>, String> {
    match raw {
        "" => Ok(None),
        raw => uuid(raw, field).map(Some),
    }
}

impl EventCodec for FeedbackEvent {
    fn event_type(&self) -> String {
        match self {
            FeedbackEvent::Recorded(_) => v1::ProductFeedbackRecorded::full_name(),
        }
    }

    fn encode_payload(&self, fields: &Fields<'_>) -> Vec<u8> {
        match self {
            FeedbackEvent::Recorded(f) => v1::ProductFeedbackRecorded {
                tenant: f.tenant.to_string(),
                product_area: f.product_area.clone(),
                body: fields.seal("body", f.body.clone()),
                customer_id: f.customer_id.map(|c| c.to_string()).unwrap_or_default(),
                ticket_id: f.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = payload::<v1::ProductFeedbackRecorded>(event_type, bytes) {
            let e = e?;
            return Ok(Some(FeedbackEvent::Recorded(Feedback {
                tenant: tenant(&e.tenant)?,
                product_area: e.product_area,
                body: open(fields, "body", e.body)?,
                customer_id: optional_uuid(&e.customer_id, "customer_id")?,
                ticket_id: optional_uuid(&e.ticket_id, "ticket_id")?,
            })));
        }
        Ok(None)
    }
}

// Articles are the tenant's texts: nothing personal.
impl EventCodec for ArticleEvent {
    fn event_type(&self) -> String {
        match self {
            ArticleEvent::Published { .. } => v1::ArticlePublished::full_name(),
            ArticleEvent::Retired { .. } => v1::ArticleRetired::full_name(),
        }
    }

    fn encode_payload(&self, _fields: &Fields<'_>) -> Vec<u8> {
        match self {
            ArticleEvent::Published {
                tenant,
                revision,
                draft,
            } => v1::ArticlePublished {
                tenant: tenant.to_string(),
                revision: *revision,
                slug: draft.slug.clone(),
                product_area: draft.product_area.clone(),
                title: draft.title.clone(),
                body: draft.body.clone(),
            }
            .encode_to_vec(),
            ArticleEvent::Retired { revision } => v1::ArticleRetired {
                revision: *revision,
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        _fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = payload::<v1::ArticlePublished>(event_type, bytes) {
            let e = e?;
            return Ok(Some(ArticleEvent::Published {
                tenant: tenant(&e.tenant)?,
                revision: e.revision,
                draft: Draft {
                    slug: e.slug,
                    product_area: e.product_area,
                    title: e.title,
                    body: e.body,
                },
            }));
        }
        if let Some(e) = payload::<v1::ArticleRetired>(event_type, bytes) {
            return Ok(Some(ArticleEvent::Retired {
                revision: e?.revision,
            }));
        }
        Ok(None)
    }
}

// A customer's id and an article: nothing to seal.
impl EventCodec for SelfServiceEvent {
    fn event_type(&self) -> String {
        match self {
            SelfServiceEvent::Recorded(_) => v1::SelfServiceRecorded::full_name(),
        }
    }

    fn encode_payload(&self, _fields: &Fields<'_>) -> Vec<u8> {
        match self {
            SelfServiceEvent::Recorded(r) => v1::SelfServiceRecorded {
                tenant: r.tenant.to_string(),
                article_id: r.article_id.to_string(),
                revision: r.revision,
                customer_id: r.customer_id.map(|c| c.to_string()).unwrap_or_default(),
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        _fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = payload::<v1::SelfServiceRecorded>(event_type, bytes) {
            let e = e?;
            return Ok(Some(SelfServiceEvent::Recorded(SelfServed {
                tenant: tenant(&e.tenant)?,
                article_id: uuid(&e.article_id, "article_id")?,
                revision: e.revision,
                customer_id: optional_uuid(&e.customer_id, "customer_id")?,
            })));
        }
        Ok(None)
    }
}

// Macros are the tenant's texts: nothing personal.
impl EventCodec for MacroEvent {
    fn event_type(&self) -> String {
        match self {
            MacroEvent::Put { .. } => v1::MacroPut::full_name(),
            MacroEvent::Removed { .. } => v1::MacroRemoved::full_name(),
            MacroEvent::AnswerRuleSet { .. } => v1::AnswerRuleSet::full_name(),
        }
    }

    fn encode_payload(&self, _fields: &Fields<'_>) -> Vec<u8> {
        match self {
            MacroEvent::Put { tenant, r#macro } => v1::MacroPut {
                tenant: tenant.to_string(),
                r#macro: Some(convert::macro_wire(r#macro)),
            }
            .encode_to_vec(),
            MacroEvent::Removed { name } => v1::MacroRemoved { name: name.clone() }.encode_to_vec(),
            MacroEvent::AnswerRuleSet {
                tenant,
                product_area,
                macro_name,
            } => v1::AnswerRuleSet {
                tenant: tenant.to_string(),
                product_area: product_area.clone(),
                macro_name: macro_name.clone().unwrap_or_default(),
            }
            .encode_to_vec(),
        }
    }

    fn decode_payload(
        event_type: &str,
        bytes: &[u8],
        _fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = payload::<v1::MacroPut>(event_type, bytes) {
            let e = e?;
            let r#macro = convert::macro_from_wire(&e.r#macro.unwrap_or_default())
                .map_err(|e| e.to_string())?;
            return Ok(Some(MacroEvent::Put {
                tenant: tenant(&e.tenant)?,
                r#macro,
            }));
        }
        if let Some(e) = payload::<v1::AnswerRuleSet>(event_type, bytes) {
            let e = e?;
            return Ok(Some(MacroEvent::AnswerRuleSet {
                tenant: tenant(&e.tenant)?,
                product_area: e.product_area,
                macro_name: optional(e.macro_name),
            }));
        }
        if let Some(e) = payload::<v1::MacroRemoved>(event_type, bytes) {
            return Ok(Some(MacroEvent::Removed { name: e?.name }));
        }
        Ok(None)
    }
}

/// An identity as events write it: one field set, its value sealed.
fn seal_identity(fields: &Fields<'_>, field: &str, key: &IdentityKey) -> v1::CustomerIdentity {
    let mut wire = convert::identity_key(key);
    for value in [&mut wire.email, &mut wire.phone, &mut wire.external_id] {
        if !value.is_empty() {
            *value = fields.seal(field, std::mem::take(value));
        }
    }
    wire
}

/// One identity from a wire identity with exactly one field set (as events write
/// it), its value opened.
fn open_identity(
    fields: &Fields<'_>,
    field: &str,
    mut wire: v1::CustomerIdentity,
) -> Result<IdentityKey, String> {
    for value in [&mut wire.email, &mut wire.phone, &mut wire.external_id] {
        if !value.is_empty() {
            *value = open(fields, field, std::mem::take(value))?;
        }
    }
    match (wire.email, wire.phone, wire.external_id) {
        (email, phone, id) if phone.is_empty() && id.is_empty() && !email.is_empty() => {
            Ok(IdentityKey::Email(email))
        }
        (email, phone, id) if email.is_empty() && id.is_empty() && !phone.is_empty() => {
            Ok(IdentityKey::Phone(phone))
        }
        (email, phone, id) if email.is_empty() && phone.is_empty() && !id.is_empty() => {
            Ok(IdentityKey::External {
                system: wire.system,
                id,
            })
        }
        _ => Err("an identity in an event has exactly one of email, phone, external_id".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use frontline_privacy::{DataKey, ERASED, PersonalKey};

    fn nobody() -> Fields<'static> {
        Fields::clear()
    }

    /// Round trips sealed and unsealed; sealed, no personal text shows in the bytes.
    fn round_trip<E: EventCodec + PartialEq + std::fmt::Debug>(e: E) {
        let back = E::decode_payload(&e.event_type(), &e.encode_payload(&nobody()), &nobody());
        assert_eq!(back.unwrap().as_ref(), Some(&e));
        let key = PersonalKey::Live(DataKey::generate());
        let fields = Fields::new(&key, "event-1");
        let sealed = e.encode_payload(&fields);
        for personal in ["a@b.de", "+4930123456", "SN-1", "hello"] {
            assert!(
                !sealed
                    .windows(personal.len())
                    .any(|w| w == personal.as_bytes()),
                "{personal} in the clear in {e:?}"
            );
        }
        let back = E::decode_payload(&e.event_type(), &sealed, &fields).unwrap();
        assert_eq!(back, Some(e));
    }

    #[test]
    fn a_forgotten_customers_fields_read_as_erased() {
        let key = PersonalKey::Live(DataKey::generate());
        let e = TicketEvent::AgentReplied {
            body: "hello".into(),
            awaiting_customer: false,
            idempotency_key: None,
        };
        let sealed = e.encode_payload(&Fields::new(&key, "e1"));
        let gone = PersonalKey::Forgotten;
        let back = TicketEvent::decode_payload(&e.event_type(), &sealed, &Fields::new(&gone, "e1"));
        assert!(matches!(back, Ok(Some(TicketEvent::AgentReplied { body, .. })) if body == ERASED));
        // A sealed value in another event does not open: an error, not garbage.
        assert!(
            TicketEvent::decode_payload(&e.event_type(), &sealed, &Fields::new(&key, "e2"))
                .is_err()
        );
    }

    #[test]
    fn every_event_round_trips() {
        round_trip(TicketEvent::Opened(Opening {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            channel: Channel::Chat,
            customer_id: Uuid::from_u128(7),
            subject: "s".into(),
            body: "hello".into(),
            product_area: "billing".into(),
            priority: Priority::Urgent,
            idempotency_key: "k".into(),
            follow_up_of: None,
        }));
        round_trip(TicketEvent::CustomerMessageAdded {
            body: "b".into(),
            channel: Channel::Email,
            idempotency_key: "k2".into(),
            reopened: true,
        });
        round_trip(TicketEvent::AgentReplied {
            body: "r".into(),
            awaiting_customer: true,
            idempotency_key: None,
        });
        round_trip(TicketEvent::NoteAdded {
            body: "n".into(),
            idempotency_key: Some("x".into()),
        });
        round_trip(TicketEvent::Solved {
            resolution: "done".into(),
            self_served: None,
            idempotency_key: None,
        });
        round_trip(TicketEvent::Reopened { reason: "".into() });
        round_trip(TicketEvent::DeclineProposed {
            reason: "We cannot refund.".into(),
            rationale: "Past 90 days.".into(),
        });
        round_trip(TicketEvent::DeclineApproved { note: "".into() });
        round_trip(TicketEvent::DeclineRejected {
            note: "Offer a voucher.".into(),
        });
        round_trip(TicketEvent::Closed { automatic: true });
        round_trip(TicketEvent::SatisfactionRated {
            score: 2,
            comment: "slow".into(),
            solve: 1,
        });
        round_trip(TicketEvent::FollowUpRaised {
            rating: 9,
            team: "first-line".into(),
            reason: "CSAT 2: slow".into(),
        });
        round_trip(TicketEvent::Closed { automatic: false });
        round_trip(TicketEvent::MergedInto {
            target: Uuid::from_u128(2),
            reason: "same router".into(),
        });
        round_trip(TicketEvent::AutoAnswered {
            body: "Try a restart; reply HUMAN for a person.".into(),
            rule: "basic-router".into(),
        });
        round_trip(TicketEvent::CheckInDue {
            agent: "ana".into(),
            solve: 2,
        });
        round_trip(TicketEvent::HumanRequested {
            priority: Priority::High,
        });
        round_trip(TicketEvent::MergedFrom {
            source: Uuid::from_u128(1),
        });
        round_trip(TicketEvent::Unmerged {
            target: Uuid::from_u128(2),
            reason: String::new(),
        });
        round_trip(TicketEvent::UnmergedFrom {
            source: Uuid::from_u128(1),
        });
        round_trip(TicketEvent::Assigned(Assignment {
            agent: "ana".into(),
            rule: Rule::Manual,
            candidates: vec![],
            reason: "hello".into(),
        }));
        round_trip(TicketEvent::Assigned(Assignment {
            agent: "bo".into(),
            rule: Rule::LeastLoaded,
            candidates: vec![
                ("ana".into(), Verdict::AtCapacity),
                ("bo".into(), Verdict::Chosen),
                ("cy".into(), Verdict::NoSkill),
            ],
            reason: String::new(),
        }));
        round_trip(TicketEvent::Queued {
            candidates: vec![("ana".into(), Verdict::Unavailable)],
        });
        round_trip(AgentEvent::TicketTaken {
            ticket: Uuid::from_u128(3),
        });
        round_trip(AgentEvent::TicketReleased {
            ticket: Uuid::from_u128(3),
        });
        let acme = TenantId::parse("tenant", "acme").unwrap();
        round_trip(CustomerEvent::Contacted {
            channel: Channel::Phone,
            tenant: acme.clone(),
            identities_added: vec![
                IdentityKey::External {
                    system: "shop".into(),
                    id: "42".into(),
                },
                IdentityKey::Email("a@b.de".into()),
                IdentityKey::Phone("+4930123456".into()),
            ],
            facts_recorded: vec![("serial".into(), "SN-1".into())],
            ticket_opened: Some(Uuid::from_u128(9)),
            possible_duplicates: vec![Uuid::from_u128(3)],
        });
        let other = Uuid::from_u128(4);
        round_trip(CustomerEvent::LinkedInto { customer_id: other });
        round_trip(CustomerEvent::Absorbed { customer_id: other });
        round_trip(CustomerEvent::Unlinked { customer_id: other });
        round_trip(IdentityClaimEvent::Claimed {
            tenant: acme,
            identity: IdentityKey::Phone("+4930123456".into()),
            customer_id: other,
        });
        round_trip(IdentityClaimEvent::Released { customer_id: other });
        let profile = frontline_domain::agent::Profile {
            display_name: "Ana Lima".into(),
            skills: [("billing".to_string(), 3), ("router-x200".to_string(), 5)].into(),
            capacity: 10,
            team: "first-line".into(),
            tenants: [TenantId::parse("tenant", "acme").unwrap()].into(),
        };
        round_trip(AgentEvent::Registered {
            agent_id: "ana".into(),
            profile: profile.clone(),
        });
        round_trip(AgentEvent::Updated(profile));
        round_trip(AgentEvent::AvailabilityChanged(
            frontline_domain::Availability::Away,
        ));
        round_trip(AgentEvent::Deactivated);
        round_trip(CustomerEvent::Forgotten {
            reason: "gdpr-17".into(),
            released_claims: vec![other],
        });
        round_trip(FeedbackEvent::Recorded(Feedback {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            product_area: "router-x200".into(),
            body: "Make the LED blue.".into(),
            customer_id: Some(Uuid::from_u128(5)),
            ticket_id: None,
        }));
        round_trip(ArticleEvent::Published {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            revision: 2,
            draft: Draft {
                slug: "reset-router".into(),
                product_area: "router-x200".into(),
                title: "Resetting".into(),
                body: "Hold the button.".into(),
            },
        });
        round_trip(ArticleEvent::Retired { revision: 2 });
        round_trip(SelfServiceEvent::Recorded(SelfServed {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            article_id: Uuid::from_u128(9),
            revision: 2,
            customer_id: Some(Uuid::from_u128(10)),
        }));
        round_trip(TicketEvent::Solved {
            resolution: String::new(),
            self_served: Some(Uuid::from_u128(9)),
            idempotency_key: None,
        });
        round_trip(MacroEvent::Put {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            r#macro: frontline_domain::macros::Macro {
                name: "firmware".into(),
                body: "Hi {{customer.name}}".into(),
                status_change: frontline_domain::macros::StatusChange::Solved,
            },
        });
        round_trip(MacroEvent::AnswerRuleSet {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            product_area: "router-x200".into(),
            macro_name: Some("firmware".into()),
        });
        round_trip(MacroEvent::Removed {
            name: "firmware".into(),
        });
        round_trip(CustomerEvent::NpsRated {
            score: 0,
            comment: "never again".into(),
        });
        round_trip(CustomerEvent::TierSet {
            tier: Tier::Extended,
            named_agent: Some("ana".into()),
        });
        round_trip(CustomerEvent::TierSet {
            tier: Tier::Basic,
            named_agent: None,
        });
        round_trip(TicketEvent::SlaAlarm {
            clock: ClockKind::NextResponse,
            cycle: 4,
            alarm: Alarm::Warning,
            due_at: 1_795_392_000_000,
        });
        round_trip(TicketEvent::SlaAlarm {
            clock: ClockKind::Resolution,
            cycle: 1,
            alarm: Alarm::Breach,
            due_at: 1_795_392_000_123,
        });
        round_trip(TicketEvent::EscalationRaised {
            clock: ClockKind::FirstResponse,
            cycle: 1,
            reason: "first response due in 5 min; nobody free".into(),
            team: "first-line".into(),
            reassign_to: "bo".into(),
        });
        round_trip(TicketEvent::TimeLogged { minutes: 15 });
        round_trip(TicketEvent::TimeBudgetExceeded {
            minutes: 75,
            budget: 60,
        });
        let mut policy = frontline_domain::sla::policy::SlaPolicy {
            default_tier: Tier::Basic,
            targets: vec![frontline_domain::sla::policy::TargetRow {
                tier: Tier::Extended,
                priority: Priority::Urgent,
                targets: frontline_domain::sla::policy::Targets {
                    first_response_secs: 60,
                    next_response_secs: 0,
                    resolution_secs: 3600,
                },
            }],
            calendar: Some(frontline_domain::sla::policy::Calendar {
                time_zone: "Europe/Berlin".into(),
                weekly: [
                    Some((540, 1020)),
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some((0, 1440)),
                ],
                holidays: vec!["2026-12-25".into()],
            }),
            warning_percent: 80,
            time_budget_minutes: [0, 60, 120],
            escalation: frontline_domain::sla::policy::Escalation::Raise,
            auto_close_after_secs: 0,
            check_in_after_secs: 0,
        };
        round_trip(PolicyEvent::Set {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            policy: policy.clone(),
        });
        policy.calendar = None;
        round_trip(PolicyEvent::Set {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            policy,
        });
    }

    #[test]
    fn type_names_come_from_the_contract() {
        let e = TicketEvent::Solved {
            resolution: String::new(),
            self_served: None,
            idempotency_key: None,
        };
        assert_eq!(e.event_type(), "frontline.v1.TicketSolved");
        assert!(is::<v1::TicketSolved>("frontline.v1.TicketSolved"));
        assert!(!is::<v1::TicketSolved>("frontline.v1.TicketSolvedLater"));
        assert!(!is::<v1::TicketSolved>("other.v1.TicketSolved"));
    }

    #[test]
    fn unknown_types_are_skipped_and_garbage_is_an_error() {
        assert_eq!(
            TicketEvent::decode_payload("frontline.v2.TicketEscalated", b"\x08\x01", &nobody())
                .unwrap(),
            None
        );
        assert_eq!(
            CustomerEvent::decode_payload("frontline.v1.TicketOpened", b"", &nobody()).unwrap(),
            None
        );
        assert!(
            TicketEvent::decode_payload("frontline.v1.TicketOpened", b"\xff\xff\xff", &nobody())
                .is_err()
        );
    }
}
