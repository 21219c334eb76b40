//! The basic tier's automated first answer: a new ticket of a basic-tier customer
//! whose product area has an answer rule gets that macro as an automated reply (by
//! routing, as the system) instead of an agent; it goes to an agent once the
//! customer asks for a person or writes again. A macro whose placeholders have no
//! value for this customer answers nothing: a person does.

use frontline_domain::{
    Customer, Ticket, TicketCommand, TicketStatus, TicketView,
    assignment::Tier,
    ids,
    macros::{Known, MacroBook},
};
use frontline_eventlog::{CommandError, CommandOptions, EventLog, EventMeta, execute};
use frontline_runtime::{ApiError, now_millis};
use uuid::Uuid;

use crate::{assigner::system, customers, sla};

/// Answers new ticket `id` automatically if its rules say so; whether it did (the
/// ticket then owes no agent yet).
pub async fn answer(log: &EventLog, id: Uuid, meta: &EventMeta) -> Result<bool, ApiError> {
    let ticket = log.load::<Ticket>(&id).await?.state;
    if ticket.auto_answered {
        return Ok(true);
    }
    if ticket.status != Some(TicketStatus::New) || ticket.assignee.is_some() {
        return Ok(false);
    }
    let book = log
        .load::<MacroBook>(&ids::macro_book_id(&ticket.tenant))
        .await?
        .state;
    let Some(found) = book
        .answer_rules
        .get(&ticket.product_area)
        .and_then(|name| book.macros.get(name))
    else {
        return Ok(false);
    };
    let policy = sla::policy_of(log, &ticket.tenant).await?.state.policy;
    let record = log.load::<Customer>(&ticket.customer_id).await?.state;
    if customers::tier_under(log, &record, policy.as_ref())
        .await?
        .tier
        != Tier::Basic
    {
        return Ok(false);
    }
    let customer = match record.linked_into {
        Some(into) => log.load::<Customer>(&into).await?.state,
        None => record,
    };
    let mut linked = Vec::with_capacity(customer.linked.len());
    for l in &customer.linked {
        linked.push(log.load::<Customer>(l).await?.state);
    }
    let events = log.read::<Ticket>(&id, None).await?;
    let subject = TicketView::replay(events.into_iter().map(|e| e.into_recorded())).subject;
    let actor = system().actor;
    let known = Known::of(&customer, &linked, (&id.to_string(), &subject), &actor.id);
    let body = match found.render(&known) {
        Ok(body) => body,
        Err(e) => {
            tracing::info!(ticket_id = %id, rule = %found.name, reason = %e, "no automated answer: a person answers");
            return Ok(false);
        }
    };
    let command = TicketCommand::AutoAnswer {
        body,
        rule: found.name.clone(),
    };
    let options = CommandOptions::default();
    let outcome = match execute(log, &id, meta, options, now_millis, |t: &Ticket, now| {
        t.decide(&id.to_string(), &command, &actor, now)
    })
    .await
    {
        Ok(outcome) => outcome,
        // The rules say no (the customer wrote again meanwhile, the filled answer is
        // too long, …): a person answers.
        Err(CommandError::Domain(e)) => {
            tracing::info!(ticket_id = %id, rule = %found.name, reason = %e, "no automated answer: a person answers");
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(ticket_id = %id, rule = %found.name, recorded = outcome.appended, "answered automatically");
    Ok(outcome.loaded.state.auto_answered)
}
