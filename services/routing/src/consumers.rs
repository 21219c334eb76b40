//! Routing's durable consumers, shared by every replica (each event goes to one):
//! ticket events route and release tickets, agent events drain the queue or take
//! tickets back. A handler that fails asks for the event again (with backoff); a
//! lost race is decided again inside the handler.

use frontline_domain::{
    AgentEvent, Availability, Role, TicketEvent, ids,
    satisfaction::CSAT_LOW,
    sla::{clocks::Alarm, policy::PolicyEvent},
};
use frontline_eventlog::{ConsumerConfig, Delivery, EventCodec, EventLog, EventMeta};
use frontline_proto::{convert, v1};
use frontline_runtime::ApiError;
use futures::{StreamExt as _, stream::FuturesUnordered};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    assigner::{Assigner, system},
    auto_answer,
    sla::Sla,
};

/// The ticket events' consumer (assignment).
pub const TICKETS: &str = "routing-tickets";
/// The agent events' consumer.
pub const AGENTS: &str = "routing-agents";
/// The ticket events' consumer for SLA clocks, escalations and time budgets.
pub const SLA: &str = "routing-sla";
/// The policy events' consumer.
pub const POLICIES: &str = "routing-policies";

/// Ticket events handled at once per replica. (Agent and policy events go one at a
/// time: each drains or re-times a whole tenant.)
const PARALLEL: usize = 16;

/// What routing records in answer to `delivery`: as routing, in the same
/// correlation, caused by that event.
fn meta<E>(delivery: &Delivery<E>) -> EventMeta {
    EventMeta {
        actor: system().actor,
        correlation_id: delivery.envelope.correlation_id.clone(),
        causation_id: delivery.envelope.event_id.clone(),
        traceparent: None,
    }
}

fn aggregate_id<E>(delivery: &Delivery<E>) -> Result<Uuid, ApiError> {
    Uuid::parse_str(&delivery.envelope.aggregate_id)
        .map_err(|e| ApiError::Internal(format!("aggregate id: {e}")))
}

/// Runs `handle` on every event of durable consumer `durable` (filter `filter`),
/// up to `parallel` at once, until `stop` (finishing what is in hand): acks what it
/// handled, asks again for what failed. Handlers read their state afresh and lose
/// races safely, so events of different tickets need no order between them.
async fn consume<E, F, Fut>(
    log: EventLog,
    (durable, filter, parallel): (&str, &str, usize),
    stop: CancellationToken,
    handle: F,
) -> Result<(), ApiError>
where
    E: EventCodec + Send + 'static,
    F: Fn(Delivery<E>) -> Fut,
    Fut: std::future::Future<Output = (Delivery<E>, Result<(), ApiError>)>,
{
    let mut config = ConsumerConfig::new(durable, filter);
    // Enough in hand to keep `parallel` busy, few enough to redeliver quickly.
    config.max_ack_pending = i64::try_from(parallel * 4).unwrap_or(64);
    // Never parked: every handler is idempotent and its failures are outages
    // (PostgreSQL, NATS), after which the event must still be handled — a parked
    // Opened would leave a ticket without an agent, a parked Solved a load for good.
    config.max_deliver = 0;
    let mut deliveries = log.subscribe::<E>(config).await?;
    // A reader of its own: `Subscription::next` is not cancel-safe (a message taken
    // and then dropped would wait for its ack timeout), and a channel's `recv` is.
    let (tx, mut rx) = tokio::sync::mpsc::channel(parallel);
    let reader = tokio::spawn(async move {
        while let Some(delivery) = deliveries.next().await {
            if tx.send(delivery).await.is_err() {
                break;
            }
        }
    });
    let _reader = AbortOnDrop(reader);
    let mut in_hand = FuturesUnordered::new();
    loop {
        tokio::select! {
            next = rx.recv(), if in_hand.len() < parallel && !stop.is_cancelled() => {
                let Some(delivery) = next else {
                    return Err(ApiError::Unavailable(format!("consumer {durable} ended")));
                };
                // Handled in the event's span: what routing appends continues its trace.
                let delivery = delivery?;
                let span = delivery.span().clone();
                in_hand.push(handle(delivery).instrument(span));
            }
            Some((delivery, outcome)) = in_hand.next(), if !in_hand.is_empty() => {
                settle(durable, delivery, outcome).await?;
            }
            () = stop.cancelled(), if !stop.is_cancelled() || in_hand.is_empty() => {
                if in_hand.is_empty() {
                    return Ok(());
                }
            }
        }
    }
}

/// Aborts its task when dropped (the consumer's reader ends with the consumer).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn settle<E>(
    durable: &str,
    delivery: Delivery<E>,
    outcome: Result<(), ApiError>,
) -> Result<(), ApiError> {
    match outcome {
        Ok(()) => delivery.ack().await?,
        Err(e) => {
            tracing::warn!(consumer = durable, subject = %delivery.subject, error = %e, "routing an event failed; it comes again");
            delivery.retry(&e.to_string()).await?;
        }
    }
    Ok(())
}

/// Ticket events: a new or reopened ticket is routed; a solved one lets its agent
/// go; an assignment or a reply remembers who handled the customer.
pub async fn tickets(
    log: EventLog,
    assigner: Assigner,
    stop: CancellationToken,
) -> Result<(), ApiError> {
    let assigner = &assigner;
    consume::<TicketEvent, _, _>(
        log.clone(),
        (TICKETS, "frontline.ticket.>", PARALLEL),
        stop,
        |d| async move {
            let outcome = on_ticket(assigner, &d).await;
            (d, outcome)
        },
    )
    .await
}

async fn on_ticket(assigner: &Assigner, d: &Delivery<TicketEvent>) -> Result<(), ApiError> {
    let Some(event) = &d.event else {
        return Ok(());
    };
    let ticket_id = aggregate_id(d)?;
    let at = d
        .envelope
        .occurred_at
        .as_ref()
        .map(convert::millis)
        .unwrap_or_default();
    match event {
        // A basic-tier ticket may get its automated answer first, a person later.
        TicketEvent::Opened(_) => {
            if auto_answer::answer(&assigner.log, ticket_id, &meta(d)).await? {
                return Ok(());
            }
            assigner.route(ticket_id, &meta(d)).await
        }
        // Reopened, or a person asked for after an automated answer (a customer
        // message on a ticket that owes no agent routes nothing).
        TicketEvent::Reopened { .. }
        | TicketEvent::CustomerMessageAdded { .. }
        | TicketEvent::HumanRequested { .. } => assigner.route(ticket_id, &meta(d)).await,
        // Unmerged: routing owes it an agent again.
        TicketEvent::Unmerged { .. } => assigner.route(ticket_id, &meta(d)).await,
        // Solved, or merged into another: its agent lets it go.
        TicketEvent::Solved { .. }
        | TicketEvent::DeclineApproved { .. }
        | TicketEvent::MergedInto { .. } => assigner.release(ticket_id, &meta(d)).await,
        TicketEvent::Assigned(a) => assigner.assigned(ticket_id, &a.agent, at).await,
        TicketEvent::AgentReplied { .. } => {
            let actor = d.envelope.actor.clone().unwrap_or_default();
            let staff = convert::from_wire::<v1::Role, Role>(actor.role)
                .is_some_and(|r| matches!(r, Role::Agent | Role::Manager));
            if staff {
                assigner.assigned(ticket_id, &actor.id, at).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Agent events: freed capacity or a return drains the agent's tenants' queues;
/// going offline or being deactivated hands their tickets on.
pub async fn agents(
    log: EventLog,
    assigner: Assigner,
    stop: CancellationToken,
) -> Result<(), ApiError> {
    let (assigner, log_ref) = (&assigner, &log);
    consume::<AgentEvent, _, _>(
        log.clone(),
        (AGENTS, "frontline.agent.>", 1),
        stop,
        |d| async move {
            let outcome = on_agent(log_ref, assigner, &d).await;
            (d, outcome)
        },
    )
    .await
}

async fn on_agent(
    log: &EventLog,
    assigner: &Assigner,
    d: &Delivery<AgentEvent>,
) -> Result<(), ApiError> {
    let Some(event) = &d.event else {
        return Ok(());
    };
    let id = aggregate_id(d)?;
    let agent = log.load::<frontline_domain::Agent>(&id).await?.state;
    if agent.agent_id.is_empty() || ids::agent_id(&agent.agent_id) != id {
        return Ok(());
    }
    match event {
        AgentEvent::AvailabilityChanged(Availability::Offline) | AgentEvent::Deactivated => {
            assigner.reassign_from(&agent.agent_id, &meta(d)).await
        }
        AgentEvent::Registered { .. }
        | AgentEvent::Updated(_)
        | AgentEvent::AvailabilityChanged(Availability::Available)
        | AgentEvent::TicketReleased { .. } => {
            if matches!(event, AgentEvent::Registered { .. }) {
                assigner.agents_changed();
            }
            let tenants = agent.profile.map(|p| p.tenants).unwrap_or_default();
            for tenant in &tenants {
                assigner.drain(tenant, &meta(d)).await?;
            }
            Ok(())
        }
        AgentEvent::AvailabilityChanged(Availability::Away) | AgentEvent::TicketTaken { .. } => {
            Ok(())
        }
    }
}

/// Ticket events for the SLA: every event may move a clock (timers follow); a
/// warning escalates; an escalation that names an agent hands the ticket over;
/// logged time is checked against the budget; a low rating is raised to the
/// team's manager.
pub async fn sla(log: EventLog, sla: Sla, stop: CancellationToken) -> Result<(), ApiError> {
    let sla = &sla;
    consume::<TicketEvent, _, _>(
        log,
        (SLA, "frontline.ticket.>", PARALLEL),
        stop,
        |d| async move {
            let outcome = on_sla(sla, &d).await;
            (d, outcome)
        },
    )
    .await
}

async fn on_sla(sla: &Sla, d: &Delivery<TicketEvent>) -> Result<(), ApiError> {
    let Some(event) = &d.event else {
        return Ok(());
    };
    let ticket_id = aggregate_id(d)?;
    match event {
        TicketEvent::SlaAlarm {
            clock,
            cycle,
            alarm: Alarm::Warning,
            ..
        } => sla.escalate(ticket_id, *clock, *cycle).await?,
        TicketEvent::EscalationRaised {
            reassign_to,
            reason,
            ..
        } if !reassign_to.is_empty() => sla.hand_over(ticket_id, reassign_to, reason).await?,
        TicketEvent::TimeLogged { .. } => sla.check_budget(ticket_id).await?,
        TicketEvent::SatisfactionRated { score, comment, .. } if *score <= CSAT_LOW => {
            let rating = d.envelope.aggregate_version;
            sla.follow_up(ticket_id, rating, *score, comment).await?;
        }
        _ => {}
    }
    sla.reschedule(ticket_id).await
}

/// Policy events: the tenant's open tickets get the new clocks.
pub async fn policies(log: EventLog, sla: Sla, stop: CancellationToken) -> Result<(), ApiError> {
    let sla = &sla;
    consume::<PolicyEvent, _, _>(
        log,
        (POLICIES, "frontline.policy.>", 1),
        stop,
        |d| async move {
            let outcome = match &d.event {
                Some(PolicyEvent::Set { tenant, .. }) => sla.policy_changed(tenant).await,
                None => Ok(()),
            };
            (d, outcome)
        },
    )
    .await
}
