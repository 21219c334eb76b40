//! The submit flow: a contact opens or continues a ticket, then the customer's record
//! learns what is new.
//!
//! All or nothing:
//! - Every rule is checked before anything is written: the ticket command's fields,
//!   and the customer's rules (facts, the per-customer cap) on the customer's
//!   current state.
//! - Once the first append is made, the submit finishes server-side whatever the
//!   client does: it runs as its own task, so a client that cancels or misses its
//!   deadline cannot leave the ticket off the customer's record.
//! - A crash between the two appends is repaired by the retry (the customer step
//!   always runs, also when the ticket step was a repeat), and the customer's next
//!   contact sees the ticket anyway: open tickets come from the ticket events'
//!   projection — except after a brand-new customer's very first contact died
//!   between its appends: no record knows that ticket yet, and only the retry
//!   links it.

use frontline_domain::{
    Channel, Customer, CustomerCommand, DomainError, Identity, Opening, Priority, Ticket,
    TicketCommand, ids,
};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, Outcome, execute, execute_from};
use frontline_proto::{
    convert::{self, from_wire},
    v1,
};
use frontline_runtime::{ApiError, now_millis};
use sqlx::PgPool;
use uuid::Uuid;

use crate::open_tickets;

/// A validated contact.
#[derive(Debug)]
pub struct Contact {
    /// Channel.
    pub channel: Channel,
    /// The customer's normalised identity.
    pub identity: Identity,
    /// The customer's id, derived from the identity.
    pub customer_id: Uuid,
    /// The caller's key.
    pub idempotency_key: String,
    /// Subject (opening only).
    pub subject: String,
    /// The message.
    pub body: String,
    /// Product area (opening only).
    pub product_area: String,
    /// Priority.
    pub priority: Priority,
    /// Facts given.
    pub facts: Vec<(String, String)>,
    /// The ticket to continue, if any.
    pub continue_ticket: Option<Uuid>,
}

impl Contact {
    /// Parses a request. Field rules that belong to a command (sizes, key shape)
    /// are checked by the domain.
    pub fn parse(req: v1::SubmitTicketRequest) -> Result<Contact, DomainError> {
        let channel = from_wire::<v1::Channel, Channel>(req.channel)
            .ok_or_else(|| DomainError::invalid("channel", "must be set to a known channel"))?;
        let priority = match req.priority {
            0 => Priority::default(),
            raw => from_wire::<v1::Priority, Priority>(raw).ok_or_else(|| {
                DomainError::invalid("priority", format!("unknown priority {raw}"))
            })?,
        };
        let raw = req.customer.unwrap_or_default();
        let identity = Identity::normalise("customer", &raw.email, &raw.phone, &raw.external_id)?;
        let customer_id = ids::customer_id(&identity)
            .ok_or_else(|| DomainError::invalid("customer", "needs an identity"))?;
        frontline_domain::limits::idempotency_key("idempotency_key", &req.idempotency_key)?;
        let continue_ticket = if req.continue_ticket_id.is_empty() {
            None
        } else {
            Some(
                Uuid::parse_str(&req.continue_ticket_id)
                    .map_err(|_| DomainError::invalid("continue_ticket_id", "must be a UUID"))?,
            )
        };
        Ok(Contact {
            channel,
            identity,
            customer_id,
            idempotency_key: req.idempotency_key,
            subject: req.subject,
            body: req.body,
            product_area: req.product_area,
            priority,
            facts: req.facts.into_iter().map(|f| (f.key, f.value)).collect(),
            continue_ticket,
        })
    }

    /// The ticket and what to do to it.
    fn ticket_command(&self) -> (Uuid, TicketCommand) {
        match self.continue_ticket {
            Some(id) => (
                id,
                TicketCommand::AddCustomerMessage {
                    customer_id: self.customer_id,
                    body: self.body.clone(),
                    channel: self.channel,
                    idempotency_key: self.idempotency_key.clone(),
                },
            ),
            None => (
                ids::ticket_id(self.channel, &self.idempotency_key),
                TicketCommand::Open(Opening {
                    channel: self.channel,
                    customer_id: self.customer_id,
                    subject: self.subject.clone(),
                    body: self.body.clone(),
                    product_area: self.product_area.clone(),
                    priority: self.priority,
                    idempotency_key: self.idempotency_key.clone(),
                }),
            ),
        }
    }

    /// What the customer's record learns from this contact.
    fn record(&self, ticket_opened: Option<Uuid>) -> CustomerCommand {
        CustomerCommand::RecordContact {
            channel: self.channel,
            identity: self.identity.clone(),
            facts: self.facts.clone(),
            ticket_opened,
        }
    }
}

/// Runs a contact through the log and answers the caller.
pub async fn submit(
    log: &EventLog,
    db: &PgPool,
    options: CommandOptions,
    contact: Contact,
    meta: &EventMeta,
) -> Result<v1::SubmitTicketResponse, ApiError> {
    let (ticket_id, command) = contact.ticket_command();
    let opening = contact.continue_ticket.is_none();
    let record = contact.record(opening.then_some(ticket_id));

    command.validate()?;
    record.validate()?;
    // From here on the submit completes even if the caller goes away: it runs as its
    // own task, and the caller only waits for its answer.
    let write = tokio::spawn(write(
        log.clone(),
        options,
        ticket_id,
        command,
        contact.customer_id,
        record,
        meta.clone(),
    ));
    let (ticket, customer) = write
        .await
        .map_err(|e| ApiError::Internal(format!("submit task: {e}")))??;
    let customer = customer.loaded.state;
    let state = &ticket.loaded.state;

    // A customer whose record knows no other ticket has none open: skip the read
    // model (a third of a new customer's submit). The one ticket this misses is one
    // whose first contact died between its appends; the retry links it.
    let other_open_tickets = if customer.ticket_ids.iter().any(|t| *t != ticket_id) {
        open_tickets::open_tickets(
            log,
            db,
            contact.customer_id,
            &customer.ticket_ids,
            Some(ticket_id),
            // Every ticket this customer opened before precedes this event.
            Some(ticket.loaded.sequence),
        )
        .await?
    } else {
        Vec::new()
    };
    Ok(v1::SubmitTicketResponse {
        ticket_id: ticket_id.to_string(),
        created: opening && ticket.appended,
        customer_id: contact.customer_id.to_string(),
        ticket_version: state.version,
        status: state.status.map_or(0, |s| v1::TicketStatus::from(s).into()),
        other_open_tickets,
        known_facts: convert::facts(&customer.facts),
    })
}

/// The customer's rules on their current state, then the two appends: the ticket
/// first, then the customer's record (which always runs, so a retry completes what a
/// crash left half done). One customer's contacts queue up here, so two at once
/// cannot both pass the per-customer rules on the same state (within a process;
/// across replicas the window stays until both appends are one atomic batch).
async fn write(
    log: EventLog,
    options: CommandOptions,
    ticket_id: Uuid,
    command: TicketCommand,
    customer_id: Uuid,
    record: CustomerCommand,
    meta: EventMeta,
) -> Result<(Outcome<Ticket>, Outcome<Customer>), ApiError> {
    let lock = log.local_lock(&format!("contact.{customer_id}"));
    let _turn = lock.lock().await;
    let customer = log.load::<Customer>(&customer_id).await?;
    customer
        .state
        .check_contact(&record, &meta.actor, now_millis())?;

    // A new key derives a new ticket id: skip loading what almost surely is not there.
    let ticket_options = CommandOptions {
        assume_new: matches!(command, TicketCommand::Open(_)),
        ..options
    };
    let id = ticket_id.to_string();
    let ticket: Outcome<Ticket> = execute(
        &log,
        &ticket_id,
        &meta,
        ticket_options,
        now_millis,
        |t: &Ticket, now| t.decide(&id, &command, &meta.actor, now),
    )
    .await?;
    // Decided first on the state the rules were checked on: no second load.
    let customer: Outcome<Customer> = execute_from(
        &log,
        &customer_id,
        &meta,
        options,
        Some(customer),
        now_millis,
        |c: &Customer, now| c.decide(&record, &meta.actor, now),
    )
    .await?;
    Ok((ticket, customer))
}
