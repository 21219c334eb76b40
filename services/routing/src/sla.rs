//! SLA clocks at work: from a ticket's events, its tier's targets and the tenant's
//! policy in force, the due times (pure: `frontline_domain::sla::clocks`); timers
//! moved whenever they change; warnings and breaches recorded when a timer fires
//! and the ticket, read again, is still due; warnings escalated; the time budget.

use frontline_domain::{
    Agent, DomainError, Recorded, TenantId, Ticket, TicketCommand, TicketEvent, TicketStatus,
    assignment::{Routed, Rule, Tier},
    ids,
    sla::{
        clocks::{self, Alarm, Clock, ClockKind},
        policy::{Escalation, PolicyRecord, SlaPolicy, auto_close_after},
    },
    ticket::Assignment,
};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, Loaded, execute};
use frontline_runtime::{ApiError, now_millis};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    agents,
    assigner::{self, Assigner, system},
    customers,
    timers::{Timer, Timers},
};

/// How much of a low rating's comment its follow-up quotes.
const QUOTE_CHARS: usize = 300;

/// A ticket's clocks, with what they were computed from.
#[derive(Clone, Debug)]
pub struct TicketClocks {
    /// The ticket.
    pub ticket: Loaded<Ticket>,
    /// Its customer's tier (the policy's default when none was set).
    pub tier: Tier,
    /// The policy in force; `None`: the tenant has none, and no clocks run.
    pub policy: Option<SlaPolicy>,
    /// The current cycle's clocks.
    pub clocks: Vec<Clock>,
    /// The ticket's events the above were computed from, with their versions.
    pub events: Vec<(u64, Recorded<TicketEvent>)>,
}

/// The SLA policy of `tenant`, as loaded.
pub async fn policy_of(
    log: &EventLog,
    tenant: &TenantId,
) -> Result<Loaded<PolicyRecord>, ApiError> {
    Ok(log
        .load::<PolicyRecord>(&ids::sla_policy_id(tenant))
        .await?)
}

/// Ticket `id`'s clocks now, from its events.
pub async fn clocks_of(log: &EventLog, id: Uuid) -> Result<TicketClocks, ApiError> {
    clocks_with(log, id, None).await
}

/// [`clocks_of`] under `policy`, the ticket's tenant's policy already at hand.
pub async fn clocks_under(
    log: &EventLog,
    id: Uuid,
    policy: Option<SlaPolicy>,
) -> Result<TicketClocks, ApiError> {
    clocks_with(log, id, Some(policy)).await
}

/// `known`: the tenant's policy when the caller has it (else it is loaded).
async fn clocks_with(
    log: &EventLog,
    id: Uuid,
    known: Option<Option<SlaPolicy>>,
) -> Result<TicketClocks, ApiError> {
    let events = log.read::<Ticket>(&id, None).await?;
    let mut ticket = Ticket::default();
    let mut recorded: Vec<(u64, Recorded<TicketEvent>)> = Vec::with_capacity(events.len());
    let mut sequence = 0;
    for logged in events {
        sequence = logged.sequence;
        let version = logged.version;
        match logged.into_recorded() {
            Some(r) => {
                frontline_domain::Aggregate::apply(&mut ticket, &r);
                recorded.push((version, r));
            }
            None => frontline_domain::Aggregate::skip_unknown(&mut ticket),
        }
    }
    let policy = match known {
        Some(policy) => policy,
        None => policy_of(log, &ticket.tenant).await?.state.policy,
    };
    let customer = log
        .load::<frontline_domain::Customer>(&ticket.customer_id)
        .await?
        .state;
    let tier = customers::tier_under(log, &customer, policy.as_ref())
        .await?
        .tier;
    let clocks = match &policy {
        Some(p) => clocks::clocks(
            recorded.iter().map(|(v, r)| (*v, r)),
            &p.targets(tier, ticket.priority),
            &p.hours()?,
            p.warning_percent,
        ),
        None => Vec::new(),
    };
    Ok(TicketClocks {
        ticket: Loaded {
            state: ticket,
            sequence,
            replayed: 0,
        },
        tier,
        policy,
        clocks,
        events: recorded,
    })
}

/// The SLA side of routing.
#[derive(Clone, Debug)]
pub struct Sla {
    log: EventLog,
    db: PgPool,
    timers: Timers,
    assigner: Assigner,
    options: CommandOptions,
}

impl Sla {
    /// SLA work on `log`, timers in `timers`.
    pub fn new(
        log: EventLog,
        db: PgPool,
        timers: Timers,
        assigner: Assigner,
        options: CommandOptions,
    ) -> Sla {
        Sla {
            log,
            db,
            timers,
            assigner,
            options,
        }
    }

    /// Keeps ticket `id`'s timers at its clocks' next moments (and the tenant's
    /// list of open tickets current).
    pub async fn reschedule(&self, id: Uuid) -> Result<(), ApiError> {
        let ticket = self.log.load::<Ticket>(&id).await?;
        let state = &ticket.state;
        if state
            .status
            .is_some_and(frontline_domain::TicketStatus::is_active)
        {
            sqlx::query(
                "INSERT INTO routing_open_tickets (ticket_id, tenant, customer_id) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (ticket_id) DO UPDATE SET customer_id = EXCLUDED.customer_id \
                 WHERE routing_open_tickets.customer_id IS NULL",
            )
            .bind(id)
            .bind(state.tenant.as_str())
            .bind(state.customer_id)
            .execute(&self.db)
            .await?;
        } else {
            sqlx::query("DELETE FROM routing_open_tickets WHERE ticket_id = $1")
                .bind(id)
                .execute(&self.db)
                .await?;
        }
        let policy = policy_of(&self.log, &state.tenant).await?.state.policy;
        // A solved ticket closes after the tenant's delay (every tenant's, with or
        // without SLAs).
        if state.status == Some(TicketStatus::Solved)
            && let Some(solved_at) = state.solved_at
        {
            let at = solved_at.saturating_add(auto_close_after(policy.as_ref()));
            self.timers.schedule(id, Timer::Close, at).await?;
            // Extended-tier customers get a check-in (the tier is read when it fires).
            if let Some(after) = policy
                .as_ref()
                .map(|p| p.check_in_after_secs)
                .filter(|s| *s > 0)
            {
                let at = solved_at.saturating_add(i64::from(after) * 1000);
                self.timers.schedule(id, Timer::CheckIn, at).await?;
            }
        }
        // No policy, no clocks: the cheap path for tenants without SLAs.
        let Some(policy) = policy else {
            return Ok(());
        };
        let tc = clocks_under(&self.log, id, Some(policy)).await?;
        // A clock with nothing left to fire keeps its old timer: it will find
        // nothing due (never purged, see `timers`).
        for clock in &tc.clocks {
            if let Some((_, at)) = clock.next_alarm() {
                self.timers
                    .schedule(id, Timer::Clock(clock.kind), at)
                    .await?;
            }
        }
        Ok(())
    }

    /// A timer of ticket `id` fired: an SLA clock's, or the auto-close.
    pub async fn fired(&self, id: Uuid, timer: Timer) -> Result<(), ApiError> {
        match timer {
            Timer::Clock(kind) => self.clock_fired(id, kind).await,
            Timer::Close => self.close_fired(id).await,
            Timer::CheckIn => self.check_in_fired(id).await,
        }
    }

    /// The check-in timer of ticket `id` fired: a check-in is due for the named
    /// agent of an extended-tier customer not in touch since the solve (read again:
    /// a reopened ticket, another tier, or a customer who wrote meanwhile records
    /// nothing).
    async fn check_in_fired(&self, id: Uuid) -> Result<(), ApiError> {
        let ticket = self.log.load::<Ticket>(&id).await?;
        let state = &ticket.state;
        let (Some(TicketStatus::Solved | TicketStatus::Closed), Some(solved_at)) =
            (state.status, state.solved_at)
        else {
            return Ok(());
        };
        // The customer solved it themselves with an article: no agent work to add.
        if state.self_served.is_some() {
            return Ok(());
        }
        let policy = policy_of(&self.log, &state.tenant).await?.state.policy;
        let Some(after) = policy
            .as_ref()
            .map(|p| p.check_in_after_secs)
            .filter(|s| *s > 0)
        else {
            return Ok(());
        };
        let due = solved_at.saturating_add(i64::from(after) * 1000);
        if now_millis() < due {
            return self.timers.schedule(id, Timer::CheckIn, due).await;
        }
        let record = self
            .log
            .load::<frontline_domain::Customer>(&state.customer_id)
            .await?
            .state;
        let tier = customers::tier_under(&self.log, &record, policy.as_ref()).await?;
        let Some(agent) = tier.named_agent.filter(|_| tier.tier == Tier::Extended) else {
            return Ok(());
        };
        if record.last_contact_at.is_some_and(|at| at > solved_at) {
            return Ok(());
        }
        let command = TicketCommand::DueCheckIn { agent };
        self.record(id, format!("check-in-{id}"), &command).await?;
        Ok(())
    }

    /// The auto-close timer of ticket `id` fired: closes it if it is still solved
    /// and its delay has passed (read again: a reopened ticket records nothing, one
    /// solved again later gets its timer moved).
    async fn close_fired(&self, id: Uuid) -> Result<(), ApiError> {
        let ticket = self.log.load::<Ticket>(&id).await?;
        let state = &ticket.state;
        let (Some(TicketStatus::Solved), Some(solved_at)) = (state.status, state.solved_at) else {
            return Ok(());
        };
        let policy = policy_of(&self.log, &state.tenant).await?.state.policy;
        let after = auto_close_after(policy.as_ref());
        let due = solved_at.saturating_add(after);
        if now_millis() < due {
            return self.timers.schedule(id, Timer::Close, due).await;
        }
        let command = TicketCommand::Close { after: Some(after) };
        let outcome = self
            .record(id, format!("timer-{id}-close"), &command)
            .await?;
        if outcome.appended {
            metrics::histogram!("frontline_timer_lateness_seconds")
                .record((now_millis() - due).max(0) as f64 / 1000.0);
            tracing::info!(ticket_id = %id, "solved ticket closed automatically");
        }
        Ok(())
    }

    /// A timer of ticket `id`'s `kind` clock fired: records what is due now (read
    /// again from the log: a clock that moved or was met records nothing), or
    /// moves the timer to the clock's next moment.
    async fn clock_fired(&self, id: Uuid, kind: ClockKind) -> Result<(), ApiError> {
        let tc = clocks_of(&self.log, id).await?;
        let Some(clock) = tc.clocks.iter().find(|c| c.kind == kind) else {
            return Ok(());
        };
        let now = now_millis();
        let due = clock.due_alarms(now);
        if due.is_empty() {
            if let Some((_, at)) = clock.next_alarm() {
                self.timers.schedule(id, Timer::Clock(kind), at).await?;
            }
            return Ok(());
        }
        let meta = self.meta(format!("timer-{id}-{}", kind.as_str()));
        // One alarm per firing (the warning first): recording it moves the ticket,
        // and the timer is set again for what is left (a late breach fires at once).
        let alarm = due[0];
        let command = TicketCommand::RecordAlarm {
            clock: kind,
            cycle: clock.cycle,
            alarm,
            due_at: clock.due_at.unwrap_or(now),
        };
        let seen = tc.ticket.state.version;
        let outcome = execute(
            &self.log,
            &id,
            &meta,
            self.options,
            now_millis,
            |t: &Ticket, now| {
                // Decided on the clocks of version `seen`: a reply that met the clock
                // since then must not be followed by a breach. Asked again, the
                // timer is read afresh.
                if t.version != seen {
                    return Err(DomainError::Precondition {
                        action: "record an SLA alarm",
                        reason: format!("ticket {id} moved on since its clocks were read"),
                    });
                }
                t.decide(&id.to_string(), &command, &meta.actor, now)
            },
        )
        .await?;
        if outcome.appended {
            let moment = match alarm {
                Alarm::Warning => clock.warn_at,
                Alarm::Breach => clock.due_at,
            };
            let lateness = now - moment.unwrap_or(now);
            metrics::histogram!("frontline_timer_lateness_seconds")
                .record(lateness.max(0) as f64 / 1000.0);
            tracing::info!(ticket_id = %id, clock = kind.as_str(), ?alarm, "SLA alarm recorded");
        }
        Ok(())
    }

    /// A rating of [`CSAT_LOW`](frontline_domain::satisfaction::CSAT_LOW) or less (recorded as version `rating` of ticket `id`):
    /// raised to the manager of the team whose agent handled the ticket, once.
    pub async fn follow_up(
        &self,
        id: Uuid,
        rating: u64,
        score: u8,
        comment: &str,
    ) -> Result<(), ApiError> {
        let ticket = self.log.load::<Ticket>(&id).await?;
        let team = match &ticket.state.assignee {
            Some(agent) => self
                .log
                .load::<Agent>(&ids::agent_id(agent))
                .await?
                .state
                .profile
                .map(|p| p.team)
                .unwrap_or_default(),
            None => String::new(),
        };
        let mut reason = format!("the customer rated the solve {score} of 5");
        let comment = comment.trim();
        if !comment.is_empty() {
            // A quote, not the whole comment (the rating event keeps that): the
            // reason stays far within its limit whatever the customer wrote.
            let quote: String = comment.chars().take(QUOTE_CHARS).collect();
            let more = if quote.len() < comment.len() {
                "…"
            } else {
                ""
            };
            reason.push_str(&format!(": \"{quote}{more}\""));
        }
        let command = TicketCommand::RaiseFollowUp {
            rating,
            team,
            reason,
        };
        self.record(id, format!("follow-up-{id}-{rating}"), &command)
            .await?;
        Ok(())
    }

    /// An SLA warning on ticket `id`: per the policy, handed to another available
    /// skilled agent with room, or raised to the team's manager. Recorded once
    /// (`EscalationRaised`); the hand-over follows from that event.
    pub async fn escalate(&self, id: Uuid, kind: ClockKind, cycle: u64) -> Result<(), ApiError> {
        let tc = clocks_of(&self.log, id).await?;
        let state = &tc.ticket.state;
        let Some(policy) = &tc.policy else {
            return Ok(());
        };
        let running = tc
            .clocks
            .iter()
            .any(|c| c.kind == kind && c.cycle == cycle && c.met_at.is_none());
        if state.escalations.contains(&(kind, cycle))
            || !running
            || !state
                .status
                .is_some_and(frontline_domain::TicketStatus::is_active)
        {
            // Escalated already, or met (answered) since the warning: nothing to do.
            return Ok(());
        }
        let holder = state.holder().map(str::to_string);
        let team = match &holder {
            Some(agent) => self
                .log
                .load::<Agent>(&ids::agent_id(agent))
                .await?
                .state
                .profile
                .map(|p| p.team)
                .unwrap_or_default(),
            None => String::new(),
        };
        let mut to = None;
        if policy.escalation == Escalation::Reassign {
            let mut others = agents::of_tenant(&self.log, &state.tenant, false).await?;
            others.retain(|a| Some(&a.state.agent_id) != holder.as_ref());
            let routed = Routed {
                tenant: state.tenant.clone(),
                product_area: state.product_area.clone(),
                tier: tc.tier,
                named_agent: None,
                last_handler: None,
            };
            to = assigner::decide(&routed, &others, now_millis(), 0).agent;
        }
        let what = format!(
            "{} at {} %",
            kind.as_str().replace('_', " "),
            policy.warning_percent
        );
        let reason = match (&to, &holder) {
            (Some(to), Some(from)) => format!("SLA warning ({what}): handed from {from} to {to}"),
            (Some(to), None) => format!("SLA warning ({what}): handed to {to}"),
            (None, _) => format!(
                "SLA warning ({what}): no other available agent with the skill and room; raised to the team's manager"
            ),
        };
        let command = TicketCommand::Escalate {
            clock: kind,
            cycle,
            reason,
            team,
            reassign_to: to.unwrap_or_default(),
        };
        self.record(id, format!("escalation-{id}"), &command)
            .await?;
        Ok(())
    }

    /// Hands ticket `id` to `agent_id` as its escalation said, unless that is done
    /// or can no longer be (the agent filled up or left: the escalation stays with
    /// the manager).
    pub async fn hand_over(&self, id: Uuid, agent_id: &str, reason: &str) -> Result<(), ApiError> {
        for _ in 0..3 {
            let ticket = self.log.load::<Ticket>(&id).await?;
            if ticket.state.assignee.as_deref() == Some(agent_id)
                || !ticket
                    .state
                    .status
                    .is_some_and(frontline_domain::TicketStatus::is_active)
            {
                return Ok(());
            }
            let agent = self.log.load::<Agent>(&ids::agent_id(agent_id)).await?;
            let assignment = Assignment {
                agent: agent_id.to_string(),
                rule: Rule::Escalated,
                candidates: Vec::new(),
                reason: reason.to_string(),
            };
            let meta = self.meta(format!("escalation-{id}"));
            match self
                .assigner
                .commit(id, &ticket, &agent, assignment, &system(), &meta)
                .await
            {
                Err(ApiError::Aborted(_)) => continue,
                Err(ApiError::FailedPrecondition(why)) => {
                    tracing::warn!(ticket_id = %id, agent = agent_id, why, "escalation hand-over no longer possible");
                    return Ok(());
                }
                other => return other.map(|_| ()),
            }
        }
        Ok(())
    }

    /// After minutes were logged on ticket `id`: past the tier's budget, flag it
    /// once.
    pub async fn check_budget(&self, id: Uuid) -> Result<(), ApiError> {
        let tc = clocks_of(&self.log, id).await?;
        let Some(policy) = &tc.policy else {
            return Ok(());
        };
        let budget = policy.time_budget(tc.tier);
        let state = &tc.ticket.state;
        if budget == 0 || state.budget_exceeded || state.minutes_logged <= budget {
            return Ok(());
        }
        let command = TicketCommand::FlagBudget { budget };
        self.record(id, format!("budget-{id}"), &command).await?;
        Ok(())
    }

    /// The tenant's policy changed: every open ticket's timers move to the new
    /// clocks.
    pub async fn policy_changed(&self, tenant: &TenantId) -> Result<(), ApiError> {
        let open: Vec<Uuid> =
            sqlx::query_scalar("SELECT ticket_id FROM routing_open_tickets WHERE tenant = $1")
                .bind(tenant.as_str())
                .fetch_all(&self.db)
                .await?;
        for id in open {
            self.reschedule(id).await?;
        }
        Ok(())
    }

    /// Customer `customer_id`'s tier changed: the open tickets of the person (this
    /// record and those linked into it) get the new tier's clocks, and those waiting
    /// take their new place in the queue.
    pub async fn tier_changed(&self, customer_id: Uuid) -> Result<(), ApiError> {
        let customer = self
            .log
            .load::<frontline_domain::Customer>(&customer_id)
            .await?
            .state;
        let tier = customers::tier_of(&self.log, &customer).await?.tier;
        let records: Vec<Uuid> = std::iter::once(customer_id)
            .chain(customer.linked.iter().copied())
            .collect();
        let open: Vec<Uuid> = sqlx::query_scalar(
            "SELECT ticket_id FROM routing_open_tickets WHERE customer_id = ANY($1)",
        )
        .bind(&records)
        .fetch_all(&self.db)
        .await?;
        for id in open {
            let ticket = self.log.load::<Ticket>(&id).await?;
            if ticket.state.needs_agent() {
                crate::queue::record(&self.db, id, &ticket.state, Some(tier), now_millis()).await?;
            }
            self.reschedule(id).await?;
        }
        Ok(())
    }

    /// Records `command` on ticket `id` as routing, caused by `cause` (decided on the
    /// ticket as it is then; a repeat records nothing).
    async fn record(
        &self,
        id: Uuid,
        cause: String,
        command: &TicketCommand,
    ) -> Result<frontline_eventlog::Outcome<Ticket>, ApiError> {
        let meta = self.meta(cause);
        Ok(execute(
            &self.log,
            &id,
            &meta,
            self.options,
            now_millis,
            |t: &Ticket, now| t.decide(&id.to_string(), command, &meta.actor, now),
        )
        .await?)
    }

    fn meta(&self, cause: String) -> EventMeta {
        EventMeta {
            actor: system().actor,
            correlation_id: cause.clone(),
            causation_id: cause,
            traceparent: None,
        }
    }
}

/// The alarm an event records, if it is one.
pub fn alarm_of(event: &TicketEvent) -> Option<(ClockKind, u64, Alarm)> {
    match event {
        TicketEvent::SlaAlarm {
            clock,
            cycle,
            alarm,
            ..
        } => Some((*clock, *cycle, *alarm)),
        _ => None,
    }
}
