//! Assignment: gives tickets to agents by the rules in `frontline_domain::assignment`,
//! keeps every agent's load on the log, and drains the queue when capacity frees.
//!
//! Every assignment is one atomic batch: the ticket's `TicketAssigned`, the new
//! agent's `AgentTookTicket` and, for a transfer, the old agent's
//! `AgentReleasedTicket`, each expecting the state it was decided on. Two replicas
//! deciding at once cannot both win: the loser's batch is refused as a conflict,
//! nothing of it is stored, and it decides again from what the winner wrote. So no
//! agent is ever above capacity and no ticket is assigned twice.

use frontline_domain::{
    Actor, Agent, AgentCommand, Caller, Role, TenantId, TenantScope, Ticket, TicketCommand,
    UnixMillis,
    agent::Take,
    assignment::{self, Candidate, Decision, Routed, Rule, Tier},
    ids,
    ticket::Assignment,
};
use frontline_eventlog::{Batch, EventLog, EventMeta, Loaded, LogError};
use frontline_runtime::{ApiError, now_millis};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{agents, customers, queue};

/// The actor routing's own decisions are recorded as.
pub const ROUTING_ACTOR: &str = "frontline-routing";

/// Decisions retried after a lost race before giving up (the event is delivered
/// again later).
const ATTEMPTS: u32 = 8;

/// How routing assigns.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long after handling a customer an agent still counts as the one who knows
    /// them (rule 2), in milliseconds.
    pub affinity_window: UnixMillis,
}

impl Default for Settings {
    /// A 30-day affinity window.
    fn default() -> Self {
        Settings {
            affinity_window: 30 * 24 * 3_600_000,
        }
    }
}

/// Gives tickets to agents.
#[derive(Clone, Debug)]
pub struct Assigner {
    pub(crate) log: EventLog,
    db: PgPool,
    settings: Settings,
    desks: agents::Desks,
}

/// Routing's own caller: an operator's rights over every tenant.
pub(crate) fn system() -> Caller {
    Caller {
        actor: Actor::new(ROUTING_ACTOR, Role::Admin),
        tenants: TenantScope::All,
    }
}

/// Whether an agent could take one more ticket now.
fn free(agent: &Agent) -> bool {
    agent.active
        && agent.availability == frontline_domain::Availability::Available
        && agent
            .profile
            .as_ref()
            .is_some_and(|p| agent.load() < p.capacity)
}

/// A decision that lost a race: decide again.
fn lost_race(e: &LogError) -> bool {
    matches!(e, LogError::Conflict { .. })
}

/// A failed commit as the caller sees it: `Aborted` when a concurrent change won
/// (decide again from the new state).
fn raced(e: LogError, ticket_id: Uuid) -> ApiError {
    if lost_race(&e) {
        ApiError::Aborted(format!(
            "ticket {ticket_id} or one of its agents changed meanwhile; try again"
        ))
    } else {
        e.into()
    }
}

impl Assigner {
    /// An assigner on `log`, with its indexes in `db`.
    pub fn new(log: EventLog, db: PgPool, settings: Settings) -> Self {
        Assigner {
            log,
            db,
            settings,
            desks: agents::Desks::default(),
        }
    }

    /// Routes ticket `ticket_id` if it waits for an agent: assigns it by the rules,
    /// or queues it and looks at the queue again (an agent may have freed capacity
    /// while it was decided). Does nothing for a ticket that has its agent.
    pub async fn route(&self, ticket_id: Uuid, meta: &EventMeta) -> Result<(), ApiError> {
        for _ in 0..ATTEMPTS {
            let ticket = self.log.load::<Ticket>(&ticket_id).await?;
            let now = now_millis();
            if !ticket.state.needs_agent() {
                queue::record(&self.db, ticket_id, &ticket.state, None, now).await?;
                return Ok(());
            }
            let routed = self.routed(&ticket.state).await?;
            let tenant = &ticket.state.tenant;
            let mut desk = self.desks.lock(tenant).await;
            let agents = self
                .desks
                .agents(&mut desk, &self.log, tenant, false)
                .await?;
            let decision = decide(&routed, &agents, now, self.settings.affinity_window);
            let Some((index, assignment)) = chosen(&decision, &agents) else {
                drop(desk);
                let queued = match self.queue(ticket_id, &ticket, &decision, meta, now).await {
                    Err(ApiError::Aborted(_)) => continue,
                    other => other?,
                };
                queue::record(&self.db, ticket_id, &queued.state, Some(routed.tier), now).await?;
                tracing::info!(%ticket_id, "no agent fits; queued");
                return self.drain(&ticket.state.tenant, meta).await;
            };
            match self
                .commit(
                    ticket_id,
                    &ticket,
                    &agents[index],
                    assignment,
                    &system(),
                    meta,
                )
                .await
            {
                Ok(after) => {
                    desk.update(after);
                    return Ok(());
                }
                Err(ApiError::Aborted(_)) => desk.forget(),
                Err(e) => {
                    desk.forget();
                    return Err(e);
                }
            }
        }
        Err(ApiError::Aborted(format!(
            "routing ticket {ticket_id}: lost {ATTEMPTS} races in a row"
        )))
    }

    /// Records that nobody fits: `TicketQueued` with every agent's verdict, unless
    /// the tenant has no agents at all (nothing to explain) or it is already queued.
    async fn queue(
        &self,
        ticket_id: Uuid,
        ticket: &Loaded<Ticket>,
        decision: &Decision,
        meta: &EventMeta,
        now: UnixMillis,
    ) -> Result<Loaded<Ticket>, ApiError> {
        if decision.candidates.is_empty() || ticket.state.queued {
            return Ok(ticket.clone());
        }
        let command = TicketCommand::Queue {
            candidates: decision.candidates.clone(),
        };
        let event = ticket
            .state
            .decide(&ticket_id.to_string(), &command, &system().actor, now)?;
        let Some(event) = event else {
            return Ok(ticket.clone());
        };
        let mut batch = Batch::new();
        let staged = batch.stage(&ticket_id, ticket, event, meta, now);
        let committed = self
            .log
            .commit(batch)
            .await
            .map_err(|e| raced(e, ticket_id))?;
        Ok(committed.loaded(&self.log, staged))
    }

    /// Gives `ticket` to `agent` as `assignment` in one atomic batch with the
    /// agent's load (and the previous holder's release). `Aborted` when a
    /// concurrent change won (decide again); the agent after it otherwise.
    pub async fn commit(
        &self,
        ticket_id: Uuid,
        ticket: &Loaded<Ticket>,
        agent: &Loaded<Agent>,
        assignment: Assignment,
        caller: &Caller,
        meta: &EventMeta,
    ) -> Result<Loaded<Agent>, ApiError> {
        let now = now_millis();
        let agent_id = assignment.agent.clone();
        let rule = assignment.rule;
        let by_hand = rule == Rule::Manual;
        let id = ticket_id.to_string();
        let ticket_event =
            ticket
                .state
                .decide(&id, &TicketCommand::Assign(assignment), &caller.actor, now)?;
        let take = AgentCommand::Take(Take {
            ticket: ticket_id,
            tenant: ticket.state.tenant.clone(),
            product_area: ticket.state.product_area.clone(),
            rule,
        });
        // Already so (a repeated transfer): nothing to record, not even the load.
        let Some(ticket_event) = ticket_event else {
            return Ok(agent.clone());
        };
        let Some(agent_event) = agent.state.decide(&agent_id, &take, caller)? else {
            return Ok(agent.clone());
        };
        let mut batch = Batch::new();
        batch.stage(&ticket_id, ticket, ticket_event, meta, now);
        let staged = batch.stage(&ids::agent_id(&agent_id), agent, agent_event, meta, now);
        // Whoever held it before lets go in the same batch.
        if let Some(previous) = ticket.state.assignee.as_deref().filter(|p| *p != agent_id) {
            let previous_agent = self.log.load::<Agent>(&ids::agent_id(previous)).await?;
            let release = AgentCommand::Release { ticket: ticket_id };
            if let Some(event) = previous_agent.state.decide(previous, &release, &system())? {
                batch.stage(&ids::agent_id(previous), &previous_agent, event, meta, now);
            }
        }
        match self.log.commit(batch).await {
            Ok(committed) => {
                tracing::info!(%ticket_id, agent = %agent_id, "assigned");
                metrics::counter!("frontline_assignments_total", "by_hand" => by_hand.to_string())
                    .increment(1);
                Ok(committed.loaded(&self.log, staged))
            }
            Err(e) => Err(raced(e, ticket_id)),
        }
    }

    /// After ticket `ticket_id` was solved (or taken elsewhere): the agent who held
    /// it lets go, unless it is still theirs.
    pub async fn release(&self, ticket_id: Uuid, meta: &EventMeta) -> Result<(), ApiError> {
        for _ in 0..ATTEMPTS {
            let ticket = self.log.load::<Ticket>(&ticket_id).await?;
            queue::record(&self.db, ticket_id, &ticket.state, None, now_millis()).await?;
            let Some(agent_id) = ticket.state.assignee.clone() else {
                return Ok(());
            };
            if ticket.state.holder() == Some(agent_id.as_str()) {
                return Ok(());
            }
            let agent = self.log.load::<Agent>(&ids::agent_id(&agent_id)).await?;
            // The ticket again, after the agent: had it been reopened and given back
            // to them in between, the agent read above already holds that take, and
            // releasing would drop a ticket they hold. Any take after the agent read
            // moves the agent's sequence, so the batch below conflicts instead.
            if self.log.load::<Ticket>(&ticket_id).await?.sequence != ticket.sequence {
                continue;
            }
            let release = AgentCommand::Release { ticket: ticket_id };
            let Some(event) = agent.state.decide(&agent_id, &release, &system())? else {
                return Ok(());
            };
            let mut batch = Batch::new();
            batch.stage(&ids::agent_id(&agent_id), &agent, event, meta, now_millis());
            match self.log.commit(batch).await {
                Err(e) if lost_race(&e) => continue,
                other => {
                    other?;
                    return Ok(());
                }
            }
        }
        Err(ApiError::Aborted(format!(
            "releasing ticket {ticket_id}: lost {ATTEMPTS} races in a row"
        )))
    }

    /// Agent `agent_id` went offline or was deactivated: each of their tickets goes
    /// to another agent by the rules, or back to the queue.
    pub async fn reassign_from(&self, agent_id: &str, meta: &EventMeta) -> Result<(), ApiError> {
        let agent = self.log.load::<Agent>(&ids::agent_id(agent_id)).await?;
        if agent.state.active && agent.state.availability != frontline_domain::Availability::Offline
        {
            return Ok(());
        }
        for ticket_id in agent.state.open_tickets.clone() {
            self.take_back(ticket_id, agent_id, meta).await?;
        }
        Ok(())
    }

    async fn take_back(
        &self,
        ticket_id: Uuid,
        from: &str,
        meta: &EventMeta,
    ) -> Result<(), ApiError> {
        for _ in 0..ATTEMPTS {
            let ticket = self.log.load::<Ticket>(&ticket_id).await?;
            if ticket.state.holder() != Some(from) {
                return self.release(ticket_id, meta).await;
            }
            let now = now_millis();
            let agents = agents::of_tenant(&self.log, &ticket.state.tenant, false).await?;
            let routed = self.routed(&ticket.state).await?;
            let decision = decide(&routed, &agents, now, self.settings.affinity_window);
            let outcome = match chosen(&decision, &agents) {
                Some((index, assignment)) => self
                    .commit(
                        ticket_id,
                        &ticket,
                        &agents[index],
                        assignment,
                        &system(),
                        meta,
                    )
                    .await
                    .map(|_| ()),
                None => {
                    match self
                        .requeue(ticket_id, &ticket, from, &decision, routed.tier, meta)
                        .await
                    {
                        // Capacity freed elsewhere meanwhile must see this row.
                        Ok(()) => self.drain(&ticket.state.tenant, meta).await,
                        Err(e) => Err(e),
                    }
                }
            };
            match outcome {
                Err(ApiError::Aborted(_)) => continue,
                other => return other,
            }
        }
        Err(ApiError::Aborted(format!(
            "taking ticket {ticket_id} back from {from}: lost {ATTEMPTS} races in a row"
        )))
    }

    /// Nobody can take over from `from`: the ticket goes back to the queue and
    /// `from` lets go, in one batch.
    async fn requeue(
        &self,
        ticket_id: Uuid,
        ticket: &Loaded<Ticket>,
        from: &str,
        decision: &Decision,
        tier: Tier,
        meta: &EventMeta,
    ) -> Result<(), ApiError> {
        let now = now_millis();
        let command = TicketCommand::Queue {
            candidates: decision.candidates.clone(),
        };
        let mut batch = Batch::new();
        let mut after = ticket.state.clone();
        if let Some(event) =
            ticket
                .state
                .decide(&ticket_id.to_string(), &command, &system().actor, now)?
        {
            after = batch
                .stage(&ticket_id, ticket, event, meta, now)
                .state()
                .clone();
        }
        let agent = self.log.load::<Agent>(&ids::agent_id(from)).await?;
        let release = AgentCommand::Release { ticket: ticket_id };
        if let Some(event) = agent.state.decide(from, &release, &system())? {
            batch.stage(&ids::agent_id(from), &agent, event, meta, now);
        }
        self.log
            .commit(batch)
            .await
            .map_err(|e| raced(e, ticket_id))?;
        queue::record(&self.db, ticket_id, &after, Some(tier), now).await?;
        Ok(())
    }

    /// Assigns waiting tickets of `tenant`, first in queue order first, while any
    /// of its agents can take one.
    pub async fn drain(&self, tenant: &TenantId, meta: &EventMeta) -> Result<(), ApiError> {
        let mut desk = self.desks.lock(tenant).await;
        let mut agents = self
            .desks
            .agents(&mut desk, &self.log, tenant, true)
            .await?;
        if !agents.iter().any(|a| free(&a.state)) {
            return Ok(());
        }
        let areas: Vec<String> = agents
            .iter()
            .filter(|a| free(&a.state))
            .filter_map(|a| a.state.profile.as_ref())
            .flat_map(|p| p.skills.keys().cloned())
            .collect();
        let waiting = queue::waiting(&self.db, tenant, Some(&areas), queue::MAX_PAGE).await?;
        for row in waiting {
            let mut attempts = 0;
            loop {
                if !agents.iter().any(|a| free(&a.state)) {
                    return Ok(());
                }
                attempts += 1;
                let ticket = self.log.load::<Ticket>(&row.ticket_id).await?;
                let now = now_millis();
                if !ticket.state.needs_agent() {
                    queue::record(&self.db, row.ticket_id, &ticket.state, None, now).await?;
                    break;
                }
                let routed = self.routed(&ticket.state).await?;
                let decision = decide(&routed, &agents, now, self.settings.affinity_window);
                let Some((index, assignment)) = chosen(&decision, &agents) else {
                    break;
                };
                match self
                    .commit(
                        row.ticket_id,
                        &ticket,
                        &agents[index],
                        assignment,
                        &system(),
                        meta,
                    )
                    .await
                {
                    Ok(after) => {
                        desk.update(after.clone());
                        agents[index] = after;
                        break;
                    }
                    Err(ApiError::Aborted(_)) if attempts < 3 => {
                        agents = self
                            .desks
                            .agents(&mut desk, &self.log, tenant, true)
                            .await?;
                    }
                    Err(ApiError::Aborted(_)) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// An agent was registered: list the agents again on the next decision.
    pub fn agents_changed(&self) {
        self.desks.forget();
    }

    /// Ticket `ticket_id` was given to `agent_id` (or they replied on it) at `at`:
    /// it leaves the queue, and they are now the one who knows its customer.
    pub async fn assigned(
        &self,
        ticket_id: Uuid,
        agent_id: &str,
        at: UnixMillis,
    ) -> Result<(), ApiError> {
        let ticket = self.log.load::<Ticket>(&ticket_id).await?;
        queue::record(&self.db, ticket_id, &ticket.state, None, at).await?;
        queue::handled(&self.db, ticket.state.customer_id, agent_id, at).await?;
        Ok(())
    }

    /// What the rules need to know about `ticket`.
    async fn routed(&self, ticket: &Ticket) -> Result<Routed, ApiError> {
        let customer = self
            .log
            .load::<frontline_domain::Customer>(&ticket.customer_id)
            .await?;
        let tier = customers::tier_of(&self.log, &customer.state).await?;
        Ok(Routed {
            tenant: ticket.tenant.clone(),
            product_area: ticket.product_area.clone(),
            tier: tier.tier,
            named_agent: tier.named_agent,
            last_handler: queue::last_handler(&self.db, ticket.customer_id).await?,
        })
    }
}

/// The agent `decision` chose (its index in `agents`) and the assignment that
/// records why; `None` when nobody fits.
fn chosen(decision: &Decision, agents: &[Loaded<Agent>]) -> Option<(usize, Assignment)> {
    let agent = decision.agent.as_ref()?;
    let index = agents.iter().position(|a| &a.state.agent_id == agent)?;
    Some((
        index,
        Assignment {
            agent: agent.clone(),
            rule: decision.rule,
            candidates: decision.candidates.clone(),
            reason: String::new(),
        },
    ))
}

/// The rules, on the agents as loaded.
pub(crate) fn decide(
    ticket: &Routed,
    agents: &[Loaded<Agent>],
    now: UnixMillis,
    window: UnixMillis,
) -> Decision {
    let candidates: Vec<Candidate<'_>> = agents.iter().map(|a| Candidate::of(&a.state)).collect();
    assignment::assign(ticket, &candidates, now, window)
}
