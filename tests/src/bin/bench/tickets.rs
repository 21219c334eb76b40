//! Driving tickets straight through the event log (no services), many at a time.

use anyhow::Context as _;
use frontline_domain::{Actor, Channel, Opening, Priority, Role, Ticket, TicketCommand};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, execute};
use futures::StreamExt as _;
use uuid::Uuid;

fn meta(role: Role) -> EventMeta {
    EventMeta {
        actor: Actor::new("bench", role),
        correlation_id: "bench".into(),
        causation_id: "bench".into(),
        traceparent: None,
    }
}

/// Opening a ticket for a new customer, with idempotency key `key`.
pub fn open(key: &Uuid) -> TicketCommand {
    TicketCommand::Open(Opening {
        tenant: frontline_domain::TenantId::parse("tenant", "bench").unwrap_or_default(),
        channel: Channel::Email,
        customer_id: Uuid::new_v4(),
        subject: "Router keeps rebooting".into(),
        body: "Since the update my router restarts every hour.".into(),
        product_area: "router-x200".into(),
        priority: Priority::Normal,
        idempotency_key: key.to_string(),
        follow_up_of: None,
    })
}

/// Runs `command(id)` on every ticket of `ids`, `concurrency` at a time (opening
/// as a customer system, anything else as an agent).
pub async fn run_all(
    log: &EventLog,
    ids: &[Uuid],
    concurrency: usize,
    command: impl Fn(&Uuid) -> TicketCommand,
) -> anyhow::Result<()> {
    let (agent, system) = (meta(Role::Agent), meta(Role::CustomerSystem));
    futures::stream::iter(ids)
        .map(|id| {
            let command = command(id);
            let meta = if matches!(command, TicketCommand::Open(_)) {
                &system
            } else {
                &agent
            };
            async move {
                execute(
                    log,
                    id,
                    meta,
                    CommandOptions::default(),
                    frontline_runtime::now_millis,
                    |t: &Ticket, now| t.decide(&id.to_string(), &command, &meta.actor, now),
                )
                .await
                .with_context(|| format!("ticket {id}"))
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(())
}
