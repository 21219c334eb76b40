//! The submit flow: a contact opens or continues a ticket, and the customer's record
//! learns what is new.
//!
//! 1. Resolve the customer: the contact's identities' claims say who it is (the
//!    strongest claimed identity wins; a new customer's id derives from its
//!    strongest identity).
//! 2. Decide the ticket event and the customer event on the states just loaded.
//! 3. Write, each event expecting the state it was decided on:
//!    - a contact that brings identities nobody holds yet (every first contact)
//!      commits their claims, the ticket event and the customer event in one
//!      atomic batch — so of 50 concurrent first contacts sharing an identity, one
//!      creates the customer and the others, finding the claim, join it;
//!    - a contact whose identities are all settled appends the ticket event, then
//!      the customer event (an atomic batch costs the server a disk sync). If the
//!      second loses a race, the next attempt finds the ticket as a repeat and
//!      records it; a crash between the two is repaired by the retry, and open
//!      tickets come from the ticket events' projection anyway.
//!
//!    Whatever lost a race starts again from 1.
//!
//! Once the write starts, the submit finishes server-side whatever the client does:
//! it runs as its own task.

use frontline_domain::{
    Caller, Channel, Customer, CustomerCommand, DomainError, Identity, IdentityKey, Opening,
    Priority, TenantId, Ticket, TicketCommand, TicketView, identity_claim, ids,
};
use frontline_eventlog::{Batch, CommandOptions, EventLog, EventMeta, Loaded, LogError};
use frontline_proto::{
    convert::{self, from_wire},
    v1,
};
use frontline_runtime::{ApiError, now_millis};
use sqlx::PgPool;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::customers::{self, Person, Records};

/// A validated contact.
#[derive(Debug)]
pub struct Contact {
    /// The tenant it came in for.
    pub tenant: TenantId,
    /// The customer system that sent it (its keys and external ids are its own).
    pub caller: Caller,
    /// Channel.
    pub channel: Channel,
    /// The customer's normalised identities, strongest first.
    pub identities: Vec<IdentityKey>,
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
    /// Parses a request from `caller` for `tenant`. Field rules that belong to a
    /// command (sizes, key shape) are checked by the domain.
    pub fn parse(
        req: v1::SubmitTicketRequest,
        caller: Caller,
        tenant: TenantId,
    ) -> Result<Contact, DomainError> {
        let channel = from_wire::<v1::Channel, Channel>(req.channel)
            .ok_or_else(|| DomainError::invalid("channel", "must be set to a known channel"))?;
        let priority = match req.priority {
            0 => Priority::default(),
            raw => from_wire::<v1::Priority, Priority>(raw).ok_or_else(|| {
                DomainError::invalid("priority", format!("unknown priority {raw}"))
            })?,
        };
        let raw = req.customer.unwrap_or_default();
        if !raw.system.is_empty() && raw.system != caller.actor.id {
            return Err(DomainError::invalid(
                "customer.system",
                "a contact's external id is the caller's own: leave it empty",
            ));
        }
        let identity = Identity::normalise("customer", &raw.email, &raw.phone, &raw.external_id)?;
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
            identities: IdentityKey::of(&identity, &caller.actor.id),
            tenant,
            caller,
            channel,
            idempotency_key: req.idempotency_key,
            subject: req.subject,
            body: req.body,
            product_area: req.product_area,
            priority,
            facts: req.facts.into_iter().map(|f| (f.key, f.value)).collect(),
            continue_ticket,
        })
    }

    /// The ticket and what to do to it, for `customer_id`.
    fn ticket_command(&self, customer_id: Uuid) -> (Uuid, TicketCommand) {
        match self.continue_ticket {
            Some(id) => (
                id,
                TicketCommand::AddCustomerMessage {
                    customer_id,
                    body: self.body.clone(),
                    channel: self.channel,
                    idempotency_key: self.idempotency_key.clone(),
                },
            ),
            None => (
                ids::ticket_id(
                    &self.tenant,
                    &self.caller.actor.id,
                    self.channel,
                    &self.idempotency_key,
                ),
                TicketCommand::Open(Opening {
                    tenant: self.tenant.clone(),
                    channel: self.channel,
                    customer_id,
                    subject: self.subject.clone(),
                    body: self.body.clone(),
                    product_area: self.product_area.clone(),
                    priority: self.priority,
                    idempotency_key: self.idempotency_key.clone(),
                    follow_up_of: None,
                }),
            ),
        }
    }

    /// The follow-up of `closed` (the customer wrote to it after it closed): a new
    /// ticket whose id derives from the contact's key as any opening's does, with
    /// the closed ticket's subject and product area unless the contact names its own.
    fn follow_up(
        &self,
        customer_id: Uuid,
        closed: Uuid,
        was: &TicketView,
    ) -> (Uuid, TicketCommand) {
        let pick =
            |own: &str, theirs: &str| if own.trim().is_empty() { theirs } else { own }.to_string();
        (
            ids::ticket_id(
                &self.tenant,
                &self.caller.actor.id,
                self.channel,
                &self.idempotency_key,
            ),
            TicketCommand::Open(Opening {
                tenant: self.tenant.clone(),
                channel: self.channel,
                customer_id,
                subject: pick(&self.subject, &was.subject),
                body: self.body.clone(),
                product_area: pick(&self.product_area, &was.product_area),
                priority: self.priority,
                idempotency_key: self.idempotency_key.clone(),
                follow_up_of: Some(closed),
            }),
        )
    }

    /// What the customer's record learns from this contact: the identities given
    /// are those claimed (or being claimed) for it — not those another record
    /// holds, even one linked into it.
    fn record(
        &self,
        identities: Vec<IdentityKey>,
        ticket_opened: Option<Uuid>,
        possible_duplicates: Vec<Uuid>,
    ) -> CustomerCommand {
        CustomerCommand::RecordContact {
            channel: self.channel,
            tenant: self.tenant.clone(),
            identities,
            facts: self.facts.clone(),
            ticket_opened,
            possible_duplicates,
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
    // Every field first: nothing is read or written for a request that cannot pass.
    let (_, command) = contact.ticket_command(Uuid::nil());
    command.validate()?;
    contact
        .record(contact.identities.clone(), None, Vec::new())
        .validate()?;
    // From here on the submit completes even if the caller goes away: it runs as its
    // own task, and the caller only waits for its answer.
    let written =
        tokio::spawn(write(log.clone(), options, contact, meta.clone()).in_current_span())
            .await
            .map_err(|e| ApiError::Internal(format!("submit task: {e}")))??;
    let state = &written.ticket.state;
    let person = Person::load(log, written.customer_id, written.customer).await?;
    // A customer whose records know no other ticket has none open: skip the read
    // model (a third of a new customer's submit).
    let knows_others = person
        .records()
        .any(|(_, c)| c.ticket_ids.iter().any(|t| *t != written.ticket_id));
    let other_open_tickets = if knows_others {
        // Every ticket this customer opened before precedes this event.
        person
            .open_tickets(
                log,
                db,
                Some(written.ticket_id),
                Some(written.ticket.sequence),
            )
            .await?
    } else {
        Vec::new()
    };
    Ok(v1::SubmitTicketResponse {
        ticket_id: written.ticket_id.to_string(),
        created: written.opened && written.appended,
        customer_id: person.id.to_string(),
        ticket_version: state.version,
        status: state.status.map_or(0, |s| v1::TicketStatus::from(s).into()),
        other_open_tickets,
        known_facts: convert::facts(&person.facts()),
    })
}

/// What a submit wrote (or found already written).
struct Written {
    ticket_id: Uuid,
    ticket: Loaded<Ticket>,
    customer_id: Uuid,
    customer: Loaded<Customer>,
    /// The contact opened a ticket (a new one, or a closed one's follow-up).
    opened: bool,
    appended: bool,
}

/// Resolve → decide → commit, again from the start when the batch lost a race.
async fn write(
    log: EventLog,
    options: CommandOptions,
    contact: Contact,
    meta: EventMeta,
) -> Result<Written, ApiError> {
    let attempts = options.max_attempts.max(1);
    let mut ticket_appended = false;
    for attempt in 0..attempts {
        if attempt > 0 {
            frontline_eventlog::retry_pause(attempt).await;
        }
        match attempt_write(&log, &contact, &meta, attempt, &mut ticket_appended).await? {
            Some(written) => return Ok(written),
            None => {
                metrics::counter!("frontline_command_conflicts_total", "aggregate" => "contact")
                    .increment(1);
                tracing::debug!(attempt, "a contact lost a race; resolving again");
            }
        }
    }
    Err(ApiError::Aborted(format!(
        "gave up after {attempts} concurrent-modification retries; retry with the same key"
    )))
}

/// One attempt: `Ok(None)` when it lost a race. `ticket_appended` says whether
/// this submit's ticket event was stored (by this or an earlier attempt).
async fn attempt_write(
    log: &EventLog,
    contact: &Contact,
    meta: &EventMeta,
    attempt: u32,
    ticket_appended: &mut bool,
) -> Result<Option<Written>, ApiError> {
    let tenant = &contact.tenant;
    let actor = &contact.caller.actor;
    let mut records = Records::new();
    let found = customers::find(log, tenant, &contact.identities, &mut records).await?;
    let pairs: Vec<(IdentityKey, Option<Uuid>)> =
        found.iter().map(|f| (f.key.clone(), f.customer)).collect();
    let resolution = identity_claim::resolve(&pairs, Uuid::now_v7());
    let customer_id = resolution.customer_id;
    // One customer's contacts queue up in this process, so they do not race each
    // other through the log; across replicas the log's sequence checks decide. The
    // record is read again under the lock: the contact before may just have changed
    // it, and its rules (the fact cap) must see that before anything is written.
    let lock = log.local_lock(&format!("contact.{customer_id}"));
    let _turn = lock.lock().await;
    // A new customer's record is empty — unless a retry finds it written after all.
    let customer = if resolution.is_new && attempt == 0 {
        Loaded::default()
    } else {
        log.load::<Customer>(&customer_id).await?
    };
    // Forgotten a moment ago, before a forget released their identities: resolve
    // again once it has (the contact then makes a new customer).
    if customer.state.forgotten_at.is_some() {
        return Ok(None);
    }

    // The ticket: a new key derives a new id, so skip loading what almost surely is
    // not there (if it is, the batch conflicts and the next attempt loads it).
    let (mut ticket_id, mut command) = contact.ticket_command(customer_id);
    let mut opening = matches!(command, TicketCommand::Open(_));
    let mut ticket = if opening && attempt == 0 {
        Loaded::default()
    } else {
        log.load::<Ticket>(&ticket_id).await?
    };
    // This key's ticket went to a customer who was forgotten while this contact was
    // being written (its ticket stored, then the record forgotten): the contact is
    // theirs and erased with them. Answer with it, rather than refusing the key
    // (another customer's ticket) on every retry.
    if opening && ticket.state.exists() && ticket.state.customer_id != customer_id {
        let owner_id = ticket.state.customer_id;
        let owner = log.load::<Customer>(&owner_id).await?;
        if owner.state.forgotten_at.is_some() {
            return Ok(Some(Written {
                ticket_id,
                ticket,
                customer_id: owner_id,
                customer: owner,
                opened: true,
                appended: *ticket_appended,
            }));
        }
    }
    if let Some(id) = contact.continue_ticket {
        // Only a ticket of the tenant the contact acts in: another tenant's is one
        // that does not exist, also for a caller covering both.
        if ticket.state.tenant != contact.tenant {
            return Err(DomainError::NotFound {
                kind: "ticket",
                id: id.to_string(),
            }
            .into());
        }
        // A ticket of a record linked into this customer is theirs too.
        if customer.state.linked.contains(&ticket.state.customer_id)
            && let TicketCommand::AddCustomerMessage { customer_id, .. } = &mut command
        {
            *customer_id = ticket.state.customer_id;
        }
        // A merged ticket is read-only and shows in the ticket it was merged into:
        // a message of its customer goes there (as that ticket's customer's, since
        // staff made them one conversation).
        // Only into a ticket of the same customer (a manager's merge of two
        // customers' tickets keeps each customer's words on their own), and not
        // a message the ticket took before it was merged (a retry: a repeat).
        if let Some(target) = ticket.state.merged_into
            && !ticket.state.is_repeat(&command, actor)
        {
            ticket.state.follows_up(&command, actor)?; // theirs, or refused
            let into = log.load::<Ticket>(&target).await?;
            if into.state.customer_id == ticket.state.customer_id {
                ticket = into;
                ticket_id = target;
            }
        }
        // Closed is final: a message to a closed ticket of theirs opens a follow-up
        // linked to it (a retry finds the follow-up by its key, as a repeat; a
        // message the ticket took before it closed answers as the repeat it is).
        if ticket.state.exists() && ticket.state.follows_up(&command, actor)? {
            let closed = ticket_id;
            let events = log.read::<Ticket>(&closed, None).await?;
            let was = TicketView::replay(events.into_iter().map(|e| e.into_recorded()));
            (ticket_id, command) = contact.follow_up(customer_id, closed, &was);
            opening = true;
            ticket = log.load::<Ticket>(&ticket_id).await?;
        }
    }
    let now = now_millis();
    let ticket_event = ticket
        .state
        .decide(&ticket_id.to_string(), &command, actor, now)?;
    // Also on a repeat: the record learns a ticket it missed (cut off before the
    // batch era, or written by another tool); it records nothing if it knows it.
    let ticket_opened = opening.then_some(ticket_id);
    let own_identities = found
        .iter()
        .filter(|f| f.claim.state.customer.is_none_or(|c| c == customer_id))
        .map(|f| f.key.clone())
        .collect();
    let record = contact.record(
        own_identities,
        ticket_opened,
        resolution.possible_duplicates.clone(),
    );
    let customer_event = customer.state.decide(&record, actor, now)?;

    let mut claims = Vec::new();
    for found in found
        .iter()
        .filter(|f| resolution.to_claim.contains(&f.key))
    {
        if let Some(claimed) = found.claim.state.claim(tenant, &found.key, customer_id)? {
            claims.push((found, claimed));
        }
    }
    if claims.is_empty() {
        // Every identity is settled: the ticket, then the record, as two appends
        // (an atomic batch costs the server a disk sync; see `docs/architecture.md`).
        // If the record's append loses a race, the next attempt finds the ticket
        // as a repeat and records it.
        let Some((ticket, appended)) =
            append_unless_raced(log, &ticket_id, ticket, ticket_event, meta, now).await?
        else {
            return Ok(None);
        };
        *ticket_appended |= appended;
        let Some((customer, _)) =
            append_unless_raced(log, &customer_id, customer, customer_event, meta, now).await?
        else {
            return Ok(None);
        };
        return Ok(Some(Written {
            ticket_id,
            ticket,
            customer_id,
            customer,
            opened: opening,
            appended: *ticket_appended,
        }));
    }
    // New identities: their claims, the ticket and the record in one atomic batch,
    // so of two contacts claiming the same identity exactly one lands.
    let mut batch = Batch::new();
    for (found, claimed) in claims {
        batch.stage(&found.claim_id, &found.claim, claimed, meta, now);
    }
    let staged_ticket = ticket_event.map(|e| batch.stage(&ticket_id, &ticket, e, meta, now));
    let staged_customer =
        customer_event.map(|e| batch.stage(&customer_id, &customer, e, meta, now));
    let committed = match log.commit(batch).await {
        Ok(committed) => committed,
        Err(LogError::Conflict { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    *ticket_appended |= staged_ticket.is_some();
    Ok(Some(Written {
        ticket_id,
        ticket: staged_ticket.map_or(ticket, |s| committed.loaded(log, s)),
        customer_id,
        customer: staged_customer.map_or(customer, |s| committed.loaded(log, s)),
        opened: opening,
        appended: *ticket_appended,
    }))
}

/// Appends `event`, if there is one, after `loaded`: the state after it and whether
/// anything was stored, or `Ok(None)` when another writer got there first.
async fn append_unless_raced<A>(
    log: &EventLog,
    id: &Uuid,
    loaded: Loaded<A>,
    event: Option<A::Event>,
    meta: &EventMeta,
    now: frontline_domain::UnixMillis,
) -> Result<Option<(Loaded<A>, bool)>, ApiError>
where
    A: frontline_domain::Aggregate,
    A::Event: frontline_eventlog::EventCodec,
{
    let Some(event) = event else {
        return Ok(Some((loaded, false)));
    };
    match log.append(id, &loaded, event, meta, now).await {
        Ok(appended) => Ok(Some((appended, true))),
        Err(LogError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
