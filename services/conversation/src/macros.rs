//! Macros: the tenant's book of canned answers (put, remove, list) and applying one
//! to a ticket — placeholders filled from what the customer told us (the domain's
//! `Macro::render`), then sent as a reply and the status changed as it says.

use frontline_domain::{
    Caller, DomainError, TenantId, TicketCommand, ids,
    macros::{Known, MacroBook, MacroCommand, StatusChange},
};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, execute};
use frontline_runtime::{ApiError, now_millis};
use uuid::Uuid;

use crate::tickets::{self, AsOf};

/// Runs `command` on `tenant`'s macro book; whether anything was recorded.
pub async fn change(
    log: &EventLog,
    options: CommandOptions,
    (caller, meta): (&Caller, &EventMeta),
    tenant: &TenantId,
    command: MacroCommand,
) -> Result<bool, ApiError> {
    let outcome = execute(
        log,
        &ids::macro_book_id(tenant),
        meta,
        options,
        now_millis,
        |book: &MacroBook, _| book.decide(tenant, &command, &caller.actor),
    )
    .await?;
    Ok(outcome.appended)
}

/// `tenant`'s macro book: its macros by name and its answer rules.
pub async fn book(log: &EventLog, tenant: &TenantId) -> Result<MacroBook, ApiError> {
    Ok(log
        .load::<MacroBook>(&ids::macro_book_id(tenant))
        .await?
        .state)
}

/// Macro `name` for ticket `id`, filled for `caller`: the reply to send and the
/// status change, or why not (NOT_FOUND for an unknown macro, FAILED_PRECONDITION
/// naming each placeholder with no value).
pub async fn fill(
    log: &EventLog,
    caller: &Caller,
    id: Uuid,
    name: &str,
) -> Result<(String, StatusChange), ApiError> {
    let ticket = tickets::view(log, caller, &id, AsOf::Now).await?;
    let book = log
        .load::<MacroBook>(&ids::macro_book_id(&ticket.tenant))
        .await?;
    let Some(found) = book.state.macros.get(name) else {
        return Err(DomainError::NotFound {
            kind: "macro",
            id: name.to_string(),
        }
        .into());
    };
    let (customer, linked) = tickets::person(log, ticket.customer_id).await?;
    let known = Known::of(
        &customer,
        &linked,
        (&id.to_string(), &ticket.subject),
        &caller.actor.id,
    );
    Ok((found.render(&known)?, found.status_change))
}

/// The reply a filled macro sends.
pub fn reply(body: String, change: StatusChange, idempotency_key: Option<String>) -> TicketCommand {
    TicketCommand::Reply {
        body,
        awaiting_customer: change == StatusChange::Pending,
        idempotency_key,
    }
}
