//! The ticket aggregate: lifecycle, conversation and the rules that guard them.
//!
//! Lifecycle: `new → open → pending ⇄ open → solved → open (reopen)`.
//! - A customer message moves `pending → open` and reopens a solved ticket.
//! - Only a new, open or pending ticket takes public replies.
//! - Internal notes are never customer-visible.
//! - Repeated idempotency keys record nothing new.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::{
    Action, Actor, Aggregate, Channel, DomainError, Priority, Recorded, UnixMillis,
    actor::authorize, limits,
};

/// Where a ticket is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TicketStatus {
    /// Opened; no agent has answered yet.
    New,
    /// Being worked on.
    Open,
    /// Waiting on the customer.
    Pending,
    /// Solved; a customer message reopens it.
    Solved,
    /// Closed for good.
    Closed,
}

impl TicketStatus {
    /// Not solved or closed: still needs support's attention.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TicketStatus::New | TicketStatus::Open | TicketStatus::Pending
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::Solved => "solved",
            TicketStatus::Closed => "closed",
        }
    }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MessageKind {
    /// The customer.
    Customer,
    /// A public reply by support.
    AgentReply,
    /// An internal note by support.
    InternalNote,
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// The ticket version (event) that added it.
    pub version: u64,
    /// Who wrote it.
    pub kind: MessageKind,
    /// Author id: the customer id for customer messages, else the actor id.
    pub author_id: String,
    /// The text.
    pub body: String,
    /// Channel, for customer messages.
    pub channel: Option<Channel>,
    /// When it was written.
    pub at: UnixMillis,
}

impl Message {
    /// Whether the customer may see it: everything but internal notes.
    pub fn customer_visible(&self) -> bool {
        self.kind != MessageKind::InternalNote
    }
}

/// A ticket's state, rebuilt from its events. `Ticket::default()` is a ticket that
/// has not been opened (version 0).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ticket {
    /// How many events have been applied.
    pub version: u64,
    /// Lifecycle status; `None` until opened.
    pub status: Option<TicketStatus>,
    /// The customer who opened it.
    pub customer_id: Uuid,
    /// Channel it was opened through.
    pub channel: Option<Channel>,
    /// Subject line.
    pub subject: String,
    /// Product area.
    pub product_area: String,
    /// Priority.
    pub priority: Priority,
    /// When it was opened.
    pub opened_at: UnixMillis,
    /// When its last event happened.
    pub updated_at: UnixMillis,
    /// When support first replied publicly.
    pub first_response_at: Option<UnixMillis>,
    /// When it was solved, while it is solved.
    pub solved_at: Option<UnixMillis>,
    /// How often it was reopened.
    pub reopen_count: u32,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Idempotency keys already taken, scoped (`email:<key>`, `reply:<key>`,
    /// `note:<key>`); a repeat records nothing.
    pub idempotency_keys: BTreeSet<String>,
}

/// A customer's first contact, as asked (command) and as recorded (event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    /// Channel of the contact.
    pub channel: Channel,
    /// The customer.
    pub customer_id: Uuid,
    /// Subject line.
    pub subject: String,
    /// First message.
    pub body: String,
    /// Product area.
    pub product_area: String,
    /// Priority.
    pub priority: Priority,
    /// The caller's key (the ticket id is derived from it).
    pub idempotency_key: String,
}

/// What a caller asks of a ticket.
#[derive(Clone, Debug, PartialEq)]
pub enum TicketCommand {
    /// Open the ticket from a customer's first contact.
    Open(Opening),
    /// The customer wrote again.
    AddCustomerMessage {
        /// Who is writing; must be the ticket's customer.
        customer_id: Uuid,
        /// The message.
        body: String,
        /// Channel of the contact.
        channel: Channel,
        /// The caller's key for this message.
        idempotency_key: String,
    },
    /// A public reply.
    Reply {
        /// The reply.
        body: String,
        /// True when the reply waits on the customer (ticket goes pending).
        awaiting_customer: bool,
        /// Optional key: a repeat records nothing.
        idempotency_key: Option<String>,
    },
    /// An internal note.
    AddNote {
        /// The note.
        body: String,
        /// Optional key: a repeat records nothing.
        idempotency_key: Option<String>,
    },
    /// Solve the ticket.
    Solve {
        /// How it was solved.
        resolution: String,
    },
    /// Reopen a solved ticket.
    Reopen {
        /// Why.
        reason: String,
    },
}

/// What happened to a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketEvent {
    /// The ticket was opened.
    Opened(Opening),
    /// The customer wrote again.
    CustomerMessageAdded {
        /// The message.
        body: String,
        /// Channel.
        channel: Channel,
        /// The caller's key.
        idempotency_key: String,
        /// This message reopened a solved ticket.
        reopened: bool,
    },
    /// Support replied publicly.
    AgentReplied {
        /// The reply.
        body: String,
        /// Waiting on the customer now.
        awaiting_customer: bool,
        /// The caller's key, if any.
        idempotency_key: Option<String>,
    },
    /// An internal note was added.
    NoteAdded {
        /// The note.
        body: String,
        /// The caller's key, if any.
        idempotency_key: Option<String>,
    },
    /// The ticket was solved.
    Solved {
        /// How.
        resolution: String,
    },
    /// Support reopened the ticket.
    Reopened {
        /// Why.
        reason: String,
    },
}

impl TicketEvent {
    /// A one-line description for histories and logs.
    pub fn summary(&self) -> String {
        match self {
            TicketEvent::Opened(o) => format!("opened via {}: {}", o.channel.as_str(), o.subject),
            TicketEvent::CustomerMessageAdded {
                channel, reopened, ..
            } => {
                if *reopened {
                    format!(
                        "customer wrote via {} and reopened the ticket",
                        channel.as_str()
                    )
                } else {
                    format!("customer wrote via {}", channel.as_str())
                }
            }
            TicketEvent::AgentReplied {
                awaiting_customer, ..
            } => {
                if *awaiting_customer {
                    "replied, waiting on the customer".to_string()
                } else {
                    "replied".to_string()
                }
            }
            TicketEvent::NoteAdded { .. } => "added an internal note".to_string(),
            TicketEvent::Solved { .. } => "solved".to_string(),
            TicketEvent::Reopened { .. } => "reopened".to_string(),
        }
    }
}

impl Ticket {
    /// Whether the ticket has been opened.
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// Messages the customer may see.
    pub fn customer_visible_messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.customer_visible())
    }

    /// Decides what `command` by `actor` records on this ticket: `Ok(Some(event))` to
    /// record, `Ok(None)` when an idempotent repeat makes it already done, or why not.
    /// `id` is only used in error messages.
    pub fn decide(
        &self,
        id: &str,
        command: &TicketCommand,
        actor: &Actor,
    ) -> Result<Option<TicketEvent>, DomainError> {
        authorize(actor, command.action())?;
        command.validate()?;
        if let TicketCommand::Open(opening) = command
            && self.exists()
            && opening.customer_id != self.customer_id
        {
            return Err(DomainError::AlreadyExists(format!(
                "idempotency key {:?} already opened a ticket for another customer",
                opening.idempotency_key
            )));
        }
        // Ownership before idempotency: another customer's repeat of a key must be
        // refused, not answered as if it were theirs.
        if let TicketCommand::AddCustomerMessage { customer_id, .. } = command
            && self.exists()
            && *customer_id != self.customer_id
        {
            return Err(DomainError::Precondition {
                action: "continue ticket",
                reason: "it belongs to another customer".into(),
            });
        }
        // An opened ticket has taken its opening key (the id is derived from it), so a
        // repeated Open lands here too.
        if self.exists()
            && command
                .scoped_key()
                .is_some_and(|k| self.idempotency_keys.contains(&k))
        {
            return Ok(None);
        }
        let status = || {
            self.status.ok_or_else(|| DomainError::NotFound {
                kind: "ticket",
                id: id.to_string(),
            })
        };
        let refuse = |action: &'static str, reason: String| {
            Err(DomainError::Precondition { action, reason })
        };
        let event = match command {
            TicketCommand::Open(opening) => {
                if self.exists() {
                    return refuse("open", "a ticket with this id exists".into());
                }
                TicketEvent::Opened(opening.clone())
            }
            TicketCommand::AddCustomerMessage {
                body,
                channel,
                idempotency_key,
                ..
            } => {
                let status = status()?;
                let reopened = status == TicketStatus::Solved;
                if status == TicketStatus::Closed {
                    return refuse("continue ticket", "it is closed; open a new one".into());
                }
                if reopened && self.reopen_count >= limits::MAX_REOPENS {
                    return refuse(
                        "continue ticket",
                        format!(
                            "it was reopened {} times already; open a new one",
                            self.reopen_count
                        ),
                    );
                }
                TicketEvent::CustomerMessageAdded {
                    body: body.clone(),
                    channel: *channel,
                    idempotency_key: idempotency_key.clone(),
                    reopened,
                }
            }
            TicketCommand::Reply {
                body,
                awaiting_customer,
                idempotency_key,
            } => {
                let status = status()?;
                if !status.is_active() {
                    return refuse("reply", format!("the ticket is {}", status.as_str()));
                }
                TicketEvent::AgentReplied {
                    body: body.clone(),
                    awaiting_customer: *awaiting_customer,
                    idempotency_key: idempotency_key.clone(),
                }
            }
            TicketCommand::AddNote {
                body,
                idempotency_key,
            } => {
                if status()? == TicketStatus::Closed {
                    return refuse("add a note", "the ticket is closed".into());
                }
                TicketEvent::NoteAdded {
                    body: body.clone(),
                    idempotency_key: idempotency_key.clone(),
                }
            }
            TicketCommand::Solve { resolution } => {
                let status = status()?;
                if !status.is_active() {
                    return refuse("solve", format!("the ticket is {}", status.as_str()));
                }
                TicketEvent::Solved {
                    resolution: resolution.clone(),
                }
            }
            TicketCommand::Reopen { reason } => {
                let status = status()?;
                if status != TicketStatus::Solved {
                    return refuse("reopen", format!("the ticket is {}", status.as_str()));
                }
                if self.reopen_count >= limits::MAX_REOPENS {
                    return refuse(
                        "reopen",
                        format!("it was reopened {} times already", self.reopen_count),
                    );
                }
                TicketEvent::Reopened {
                    reason: reason.clone(),
                }
            }
        };
        Ok(Some(event))
    }
}

impl TicketCommand {
    /// The action this command needs permission for.
    pub fn action(&self) -> Action {
        match self {
            TicketCommand::Open(_) | TicketCommand::AddCustomerMessage { .. } => {
                Action::SubmitContact
            }
            TicketCommand::Reply { .. } => Action::Reply,
            TicketCommand::AddNote { .. } => Action::AddNote,
            TicketCommand::Solve { .. } => Action::Solve,
            TicketCommand::Reopen { .. } => Action::Reopen,
        }
    }

    /// The key as the ticket remembers it: scoped by what it was for, so one
    /// caller's key never swallows another kind of request (a chat message with the
    /// key an email used, a note with a reply's key).
    fn scoped_key(&self) -> Option<String> {
        match self {
            TicketCommand::Open(o) => Some(contact_key(o.channel, &o.idempotency_key)),
            TicketCommand::AddCustomerMessage {
                channel,
                idempotency_key,
                ..
            } => Some(contact_key(*channel, idempotency_key)),
            TicketCommand::Reply {
                idempotency_key, ..
            } => idempotency_key.as_deref().map(|k| format!("reply:{k}")),
            TicketCommand::AddNote {
                idempotency_key, ..
            } => idempotency_key.as_deref().map(|k| format!("note:{k}")),
            TicketCommand::Solve { .. } | TicketCommand::Reopen { .. } => None,
        }
    }

    fn idempotency_key(&self) -> Option<&str> {
        match self {
            TicketCommand::Open(Opening {
                idempotency_key, ..
            })
            | TicketCommand::AddCustomerMessage {
                idempotency_key, ..
            } => Some(idempotency_key),
            TicketCommand::Reply {
                idempotency_key, ..
            }
            | TicketCommand::AddNote {
                idempotency_key, ..
            } => idempotency_key.as_deref(),
            TicketCommand::Solve { .. } | TicketCommand::Reopen { .. } => None,
        }
    }

    /// Checks every field against [`limits`]; error fields name the request fields.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(key) = self.idempotency_key() {
            limits::idempotency_key("idempotency_key", key)?;
        }
        match self {
            TicketCommand::Open(Opening {
                subject,
                body,
                product_area,
                ..
            }) => {
                limits::text("subject", subject, limits::MAX_SUBJECT_CHARS)?;
                limits::body("body", body)?;
                limits::product_area("product_area", product_area)
            }
            TicketCommand::AddCustomerMessage { body, .. }
            | TicketCommand::Reply { body, .. }
            | TicketCommand::AddNote { body, .. } => limits::body("body", body),
            TicketCommand::Solve { resolution } => limits::optional_body("resolution", resolution),
            TicketCommand::Reopen { reason } => limits::optional_body("reason", reason),
        }
    }
}

/// How a customer-contact key is remembered: per channel, like ticket ids.
fn contact_key(channel: Channel, key: &str) -> String {
    format!("{}:{key}", channel.as_str())
}

impl Aggregate for Ticket {
    type Event = TicketEvent;
    const KIND: &'static str = "ticket";

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<TicketEvent>) {
        let at = recorded.at;
        let version = self.version + 1;
        let message = |kind, author_id: String, body: &str, channel| Message {
            version,
            kind,
            author_id,
            body: body.to_string(),
            channel,
            at,
        };
        match &recorded.event {
            TicketEvent::Opened(o) => {
                let first = message(
                    MessageKind::Customer,
                    o.customer_id.to_string(),
                    &o.body,
                    Some(o.channel),
                );
                self.status = Some(TicketStatus::New);
                self.customer_id = o.customer_id;
                self.channel = Some(o.channel);
                self.subject = o.subject.clone();
                self.product_area = o.product_area.clone();
                self.priority = o.priority;
                self.opened_at = at;
                self.messages.push(first);
                self.idempotency_keys
                    .insert(contact_key(o.channel, &o.idempotency_key));
            }
            TicketEvent::CustomerMessageAdded {
                body,
                channel,
                idempotency_key,
                reopened,
            } => {
                let m = message(
                    MessageKind::Customer,
                    self.customer_id.to_string(),
                    body,
                    Some(*channel),
                );
                self.messages.push(m);
                self.idempotency_keys
                    .insert(contact_key(*channel, idempotency_key));
                if *reopened {
                    self.reopen();
                } else if self.status == Some(TicketStatus::Pending) {
                    self.status = Some(TicketStatus::Open);
                }
            }
            TicketEvent::AgentReplied {
                body,
                awaiting_customer,
                idempotency_key,
            } => {
                let m = message(
                    MessageKind::AgentReply,
                    recorded.actor.id.clone(),
                    body,
                    None,
                );
                self.messages.push(m);
                self.idempotency_keys
                    .extend(idempotency_key.as_ref().map(|k| format!("reply:{k}")));
                self.first_response_at.get_or_insert(at);
                self.status = Some(if *awaiting_customer {
                    TicketStatus::Pending
                } else {
                    TicketStatus::Open
                });
            }
            TicketEvent::NoteAdded {
                body,
                idempotency_key,
            } => {
                let m = message(
                    MessageKind::InternalNote,
                    recorded.actor.id.clone(),
                    body,
                    None,
                );
                self.messages.push(m);
                self.idempotency_keys
                    .extend(idempotency_key.as_ref().map(|k| format!("note:{k}")));
            }
            TicketEvent::Solved { .. } => {
                self.status = Some(TicketStatus::Solved);
                self.solved_at = Some(at);
            }
            TicketEvent::Reopened { .. } => self.reopen(),
        }
        self.version = version;
        self.updated_at = at;
    }
}

impl Ticket {
    fn reopen(&mut self) {
        self.status = Some(TicketStatus::Open);
        self.solved_at = None;
        self.reopen_count += 1;
    }
}
