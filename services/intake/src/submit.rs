//! The submit flow: a contact opens or continues a ticket, then the customer's record
//! learns what is new. The ticket step comes first and the customer step always runs,
//! even when the ticket step was a repeat, so a retry after a crash between the two
//! completes the record instead of losing the link.

use frontline_domain::{
    Channel, Customer, CustomerCommand, DomainError, Identity, Opening, Priority, Ticket,
    TicketCommand, ids,
};
use frontline_eventlog::{CommandError, CommandOptions, EventLog, EventMeta, Outcome, execute};
use frontline_proto::{
    convert::{self, from_wire},
    v1,
};
use frontline_runtime::now_millis;
use uuid::Uuid;

use crate::customers;

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
    /// are checked by the domain when the command is decided.
    pub fn parse(req: v1::SubmitTicketRequest) -> Result<Contact, DomainError> {
        let channel = from_wire::<v1::Channel, Channel>(req.channel)
            .ok_or_else(|| DomainError::invalid("channel", "must be set to a known channel"))?;
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
            priority: from_wire::<v1::Priority, Priority>(req.priority).unwrap_or_default(),
            facts: req.facts.into_iter().map(|f| (f.key, f.value)).collect(),
            continue_ticket,
        })
    }

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
}

/// Runs a contact through the log and answers the caller.
pub async fn submit(
    log: &EventLog,
    options: CommandOptions,
    contact: Contact,
    meta: &EventMeta,
) -> Result<v1::SubmitTicketResponse, CommandError> {
    // Facts are checked before anything is written, so a bad fact cannot leave an
    // opened ticket behind a refused request.
    let record = CustomerCommand::RecordContact {
        channel: contact.channel,
        identity: contact.identity.clone(),
        facts: contact.facts.clone(),
        ticket_opened: None,
    };
    record.validate()?;

    let (ticket_id, command) = contact.ticket_command();
    let opening = contact.continue_ticket.is_none();
    // A new key derives a new ticket id: skip loading what almost surely is not there.
    let ticket_options = CommandOptions {
        assume_new: opening,
        ..options
    };
    let ticket: Outcome<Ticket> = execute(
        log,
        &ticket_id,
        meta,
        ticket_options,
        now_millis,
        |t: &Ticket| t.decide(&ticket_id.to_string(), &command, &meta.actor),
    )
    .await?;

    let record = CustomerCommand::RecordContact {
        channel: contact.channel,
        identity: contact.identity,
        facts: contact.facts,
        ticket_opened: opening.then_some(ticket_id),
    };
    let customer: Outcome<Customer> = execute(
        log,
        &contact.customer_id,
        meta,
        options,
        now_millis,
        |c: &Customer| c.decide(&record, &meta.actor),
    )
    .await?;
    let customer = customer.loaded.state;
    let state = &ticket.loaded.state;

    Ok(v1::SubmitTicketResponse {
        ticket_id: ticket_id.to_string(),
        created: opening && ticket.appended,
        customer_id: contact.customer_id.to_string(),
        ticket_version: state.version,
        status: state.status.map_or(0, |s| v1::TicketStatus::from(s).into()),
        other_open_tickets: customers::open_tickets(log, &customer, Some(ticket_id)).await?,
        known_facts: convert::facts(&customer.facts),
    })
}
