//! A customer's personal data on request: forgetting them (GDPR Art. 17) and
//! exporting everything held about them (Art. 15).
//!
//! Forgetting is a sequence of steps, each safe to repeat, so a forget cut off
//! half-way is finished by the next: the `CustomerForgotten` event (which names
//! the claims to release), the released claims, the destroyed data key, the
//! dropped snapshot, the blanked read-model rows.

use frontline_domain::{
    Caller, Customer, CustomerEvent, IdentityClaim, Ticket, TicketView, customer,
    ids::{self, TenantSecret},
};
use frontline_eventlog::{
    CommandOptions, ConsumerConfig, EventLog, EventMeta, LoggedEvent, execute,
};
use frontline_proto::{convert, v1};
use frontline_runtime::{ApiError, now_millis};
use futures::future::try_join_all;
use sqlx::PgPool;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    customers::{self, Person},
    open_tickets,
};

/// Forgets the person record `id` shows (every record linked with it).
pub async fn forget(
    log: &EventLog,
    db: &PgPool,
    (caller, meta): (&Caller, &EventMeta),
    id: Uuid,
    reason: &str,
    options: CommandOptions,
) -> Result<v1::ForgetCustomerResponse, ApiError> {
    let record = customers::load_visible(log, caller, id).await?;
    let person = Person::load(log, id, record).await?;
    let tenant = person.record.state.tenant.clone();
    let secret = TenantSecret(log.tenant_secret(tenant.as_str()).await?);
    let records: Vec<Uuid> = person.records().map(|(id, _)| id).collect();
    let mut already_forgotten = true;
    let mut forgotten_at = None;
    for &record_id in &records {
        // The claims come from the state the event is decided on, so an identity
        // a contact added a moment ago is released too.
        let outcome = execute::<Customer, _>(log, &record_id, meta, options, now_millis, |c, _| {
            let claims = c
                .identities
                .iter()
                .map(|key| ids::identity_id(&secret, &c.tenant, key))
                .collect();
            customer::forget(c, record_id, &caller.actor, reason, claims)
        })
        .await?;
        already_forgotten &= !outcome.appended;
        let state = outcome.loaded.state;
        forgotten_at = match (forgotten_at, state.forgotten_at) {
            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
            (a, b) => a.or(b),
        };
        finish(log, meta, options, record_id, &state.released_claims).await?;
    }
    open_tickets::erase(log, db, &records).await?;
    tracing::info!(customer_id = %id, records = records.len(), already_forgotten, "customer forgotten");
    Ok(v1::ForgetCustomerResponse {
        forgotten_customer_ids: records.iter().map(Uuid::to_string).collect(),
        already_forgotten,
        forgotten_at: forgotten_at.map(convert::timestamp),
    })
}

/// The steps after a record's `CustomerForgotten` event, each safe to repeat:
/// release its claims, destroy its key, drop its snapshot.
async fn finish(
    log: &EventLog,
    meta: &EventMeta,
    options: CommandOptions,
    record_id: Uuid,
    claims: &[Uuid],
) -> Result<(), ApiError> {
    for claim in claims {
        execute::<IdentityClaim, _>(log, claim, meta, options, now_millis, |c, _| {
            Ok(c.release(record_id))
        })
        .await?;
    }
    log.destroy_data_key(&record_id).await?;
    log.snapshots().delete::<Customer>(&record_id).await?;
    Ok(())
}

/// The durable consumer that finishes every forget from its event, whatever
/// happened to the call that recorded it (cut off, timed out, the pod killed):
/// each `CustomerForgotten` is followed by [`finish`] and the read model's
/// blanking, until they succeed. Other customer events are acknowledged at once.
pub async fn finish_forgets(
    log: EventLog,
    db: PgPool,
    options: CommandOptions,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ApiError> {
    let config = ConsumerConfig::new(FINISHER, "frontline.customer.>");
    let mut deliveries = log.subscribe::<CustomerEvent>(config).await?;
    loop {
        let delivery = tokio::select! {
            next = deliveries.next() => next,
            () = stop.cancelled() => return Ok(()),
        };
        let Some(delivery) = delivery else {
            return Err(ApiError::Unavailable(
                "the forget finisher's subscription ended".into(),
            ));
        };
        let delivery = delivery?;
        let Some(CustomerEvent::Forgotten {
            released_claims, ..
        }) = &delivery.event
        else {
            delivery.ack().await?;
            continue;
        };
        let record_id = Uuid::parse_str(&delivery.envelope.aggregate_id)
            .map_err(|e| ApiError::Internal(format!("customer id: {e}")))?;
        let actor = delivery.envelope.actor.clone().unwrap_or_default();
        let meta = EventMeta {
            actor: frontline_domain::Actor::new(
                actor.id,
                convert::from_wire::<v1::Role, frontline_domain::Role>(actor.role)
                    .unwrap_or(frontline_domain::Role::Admin),
            ),
            correlation_id: delivery.envelope.correlation_id.clone(),
            causation_id: delivery.envelope.event_id.clone(),
            traceparent: None,
        };
        let done = async {
            finish(&log, &meta, options, record_id, released_claims).await?;
            open_tickets::erase(&log, &db, &[record_id]).await
        }
        .instrument(delivery.span().clone())
        .await;
        match done {
            Ok(()) => delivery.ack().await?,
            Err(e) => {
                tracing::warn!(customer_id = %record_id, error = %e, "finishing a forget failed; retrying");
                delivery.retry(&e.to_string()).await?;
            }
        }
    }
}

/// The finisher's durable consumer.
const FINISHER: &str = "intake-forget-finisher";

/// Everything held about the person record `id` shows, decrypted.
pub async fn export(
    log: &EventLog,
    db: &PgPool,
    caller: &Caller,
    id: Uuid,
) -> Result<v1::ExportCustomerDataResponse, ApiError> {
    let record = customers::load_visible(log, caller, id).await?;
    let person = Person::load(log, id, record).await?;
    let customer = person.view(log, db, caller).await?;
    let facts = person.facts();
    let ticket_ids: Vec<Uuid> = customer
        .ticket_ids
        .iter()
        .filter_map(|t| Uuid::parse_str(t).ok())
        .collect();
    let facts = &facts;
    let tickets = try_join_all(ticket_ids.iter().map(|ticket_id| async move {
        let events = log.read::<Ticket>(ticket_id, None).await?;
        let view = TicketView::replay(events.into_iter().map(LoggedEvent::into_recorded));
        Ok::<_, ApiError>(convert::ticket(ticket_id, &view, true, facts))
    }))
    .await?;
    Ok(v1::ExportCustomerDataResponse {
        customer: Some(customer),
        tickets,
        exported_at: Some(convert::timestamp(now_millis())),
    })
}
