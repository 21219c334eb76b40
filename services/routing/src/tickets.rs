//! A ticket as routing shows and changes it: by-hand assignment and transfer, and
//! its routing (agent, whether it waits, every decision with its reason).

use frontline_domain::{
    Caller, DomainError, Ticket, TicketCommand, TicketEvent, TicketStatus, assignment::Rule,
    limits, ticket::Assignment,
};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, Loaded, execute};
use frontline_proto::{convert, v1};
use frontline_runtime::{ApiError, now_millis};
use uuid::Uuid;

use crate::{agents, assigner::Assigner, sla};

/// Tries of a by-hand assignment that loses races before answering ABORTED.
const ATTEMPTS: u32 = 3;

/// The ticket id of a request.
pub fn ticket_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid("ticket_id", "must be a UUID"))
}

/// Ticket `id` as `caller` may see it: NOT_FOUND when unknown or another tenant's.
pub async fn load_visible(
    log: &EventLog,
    caller: &Caller,
    id: Uuid,
) -> Result<Loaded<Ticket>, ApiError> {
    let ticket = log.load::<Ticket>(&id).await?;
    let not_found = || DomainError::NotFound {
        kind: "ticket",
        id: id.to_string(),
    };
    if ticket.state.status.is_none() {
        return Err(not_found().into());
    }
    caller.check_sees("ticket", &id, &ticket.state.tenant)?;
    Ok(ticket)
}

/// What a by-hand change asks.
#[derive(Clone, Copy, Debug)]
pub struct ByHand<'a> {
    /// The ticket, as sent.
    pub ticket_id: &'a str,
    /// The agent to give it to.
    pub agent_id: &'a str,
    /// The manager's reason.
    pub reason: &'a str,
    /// A transfer (the ticket has an agent) rather than an assignment (it has none).
    pub transfer: bool,
}

/// A manager gives a ticket to an agent by hand.
pub async fn by_hand(
    log: &EventLog,
    assigner: &Assigner,
    (caller, meta): (&Caller, &EventMeta),
    request: ByHand<'_>,
) -> Result<v1::TicketRouting, ApiError> {
    let id = ticket_id(request.ticket_id)?;
    limits::idempotency_key("agent_id", request.agent_id)?;
    limits::text("reason", request.reason, limits::MAX_REASON_CHARS)?;
    for attempt in 1..=ATTEMPTS {
        let ticket = load_visible(log, caller, id).await?;
        let active = ticket.state.status.is_some_and(TicketStatus::is_active);
        match (request.transfer, ticket.state.holder()) {
            (false, Some(holder)) if active && holder != request.agent_id => {
                return Err(ApiError::FailedPrecondition(format!(
                    "ticket {id} is with {holder}: use TransferTicket"
                )));
            }
            (true, None) if active => {
                return Err(ApiError::FailedPrecondition(format!(
                    "ticket {id} has no agent: use AssignTicket"
                )));
            }
            _ => {}
        }
        let agent = agents::load_visible(log, caller, request.agent_id).await?;
        let assignment = Assignment {
            agent: request.agent_id.to_string(),
            rule: Rule::Manual,
            candidates: Vec::new(),
            reason: request.reason.to_string(),
        };
        match assigner
            .commit(id, &ticket, &agent, assignment, caller, meta)
            .await
        {
            Err(ApiError::Aborted(_)) if attempt < ATTEMPTS => continue,
            other => {
                other?;
                break;
            }
        }
    }
    routing(log, caller, id).await
}

/// Ticket `id`'s routing, rebuilt from one read of its events.
pub async fn routing(
    log: &EventLog,
    caller: &Caller,
    id: Uuid,
) -> Result<v1::TicketRouting, ApiError> {
    let tc = sla::clocks_of(log, id).await?;
    let state = &tc.ticket.state;
    if state.status.is_none() {
        return Err(DomainError::NotFound {
            kind: "ticket",
            id: id.to_string(),
        }
        .into());
    }
    caller.check_sees("ticket", &id, &state.tenant)?;
    let decisions = tc
        .events
        .iter()
        .filter_map(|(version, recorded)| {
            let (rule, agent_id, candidates, reason) = match &recorded.event {
                TicketEvent::Assigned(a) => {
                    (a.rule, a.agent.clone(), &a.candidates, a.reason.clone())
                }
                TicketEvent::Queued { candidates } => {
                    (Rule::Queued, String::new(), candidates, String::new())
                }
                _ => return None,
            };
            Some(v1::RoutingDecision {
                version: *version,
                rule: v1::RoutingRule::from(rule).into(),
                agent_id,
                candidates: convert::routing_candidates(candidates),
                reason,
                decided_by: recorded.actor.id.clone(),
                decided_at: Some(convert::timestamp(recorded.at)),
            })
        })
        .collect();
    let now = now_millis();
    Ok(v1::TicketRouting {
        ticket_id: id.to_string(),
        assignee: state.assignee.clone().unwrap_or_default(),
        waiting: state.needs_agent(),
        queued: state.needs_agent() && state.queued,
        decisions,
        version: state.version,
        clocks: tc
            .clocks
            .iter()
            .map(|c| v1::SlaClock {
                kind: v1::SlaClockKind::from(c.kind).into(),
                state: v1::SlaClockState::from(c.state(now)).into(),
                started_at: Some(convert::timestamp(c.started_at)),
                due_at: c
                    .due_at
                    .filter(|_| c.met_at.is_none())
                    .map(convert::timestamp),
                left_ms: c.left(now).unwrap_or_default(),
                met_at: c.met_at.map(convert::timestamp),
                breached: c.breached || c.met_at.zip(c.due_at).is_some_and(|(met, due)| met > due),
                warned: c.warned,
            })
            .collect(),
        tier: v1::Tier::from(tc.tier).into(),
        minutes_logged: state.minutes_logged,
        budget_exceeded: state.budget_exceeded,
    })
}

/// Staff log minutes of work on a ticket.
pub async fn log_time(
    log: &EventLog,
    (caller, meta): (&Caller, &EventMeta),
    options: CommandOptions,
    request: &v1::LogTimeRequest,
) -> Result<v1::LogTimeResponse, ApiError> {
    let id = ticket_id(&request.ticket_id)?;
    let command = TicketCommand::LogTime {
        minutes: request.minutes,
    };
    command.validate()?;
    let outcome = execute(log, &id, meta, options, now_millis, |t: &Ticket, now| {
        if t.status.is_none() {
            return Err(DomainError::NotFound {
                kind: "ticket",
                id: id.to_string(),
            });
        }
        caller.check_sees("ticket", &id, &t.tenant)?;
        t.decide(&id.to_string(), &command, &meta.actor, now)
    })
    .await?;
    let tc = sla::clocks_of(log, id).await?;
    let budget = tc.policy.as_ref().map_or(0, |p| p.time_budget(tc.tier));
    let minutes = outcome.loaded.state.minutes_logged;
    Ok(v1::LogTimeResponse {
        minutes_logged: minutes,
        budget_minutes: budget,
        budget_exceeded: outcome.loaded.state.budget_exceeded || (budget > 0 && minutes > budget),
    })
}
