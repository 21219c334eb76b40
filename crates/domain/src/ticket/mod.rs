//! The ticket aggregate: the lifecycle and the rules that guard it.
//!
//! Lifecycle: `new → open → pending ⇄ open → solved → closed`, `solved → open`
//! (reopen), `open → decline_proposed → solved (declined) | open`.
//! - A customer message moves `pending → open` and reopens a solved ticket.
//! - Only a new, open or pending ticket takes public replies.
//! - Saying *No* needs a manager who did not propose it (`decline.rs`).
//! - Closed is final.
//! - Internal notes are never customer-visible.
//! - Repeated idempotency keys record nothing new.
//!
//! Aggregates decide, views show: [`Ticket`] keeps only what [`Ticket::decide`]
//! needs; [`TicketView`] (subject, times, the conversation) is built on read from the
//! same events.
//!
//! # Where things go
//!
//! A new rule is a new file. Each command has its own file with its own field checks
//! (`validate`) and its own rule (`decide`): `open.rs`, `customer_message.rs`,
//! `reply.rs`, `note.rs`, `solve.rs`, `reopen.rs`; what a ticket shows is in
//! `view.rs`. This file holds the state, the command and event enums, the checks
//! every command shares (in this order: authorise → validate fields → existence and
//! ownership → idempotent repeat → the command's own rule), the lifecycle's
//! transitions and `apply`.
//!
//! A new rule for an existing command goes into that command's file. A new command
//! is a new variant of [`TicketCommand`] (and usually of [`TicketEvent`]), a new file
//! with its `validate` and `decide`, one arm in each `match` here, and one in
//! `view.rs` for what it shows.

mod assign;
mod auto_answer;
mod check_in;
mod close;
mod customer_message;
mod decline;

mod note;
mod open;
mod reopen;
mod reply;
mod satisfaction;
mod self_serve;
mod sla;
mod solve;
mod view;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::{
    Action, Actor, Aggregate, Channel, DomainError, Priority, Recorded, TenantId, UnixMillis,
    actor::authorize,
    assignment::Verdict,
    limits,
    sla::clocks::{Alarm, ClockKind},
};

pub use assign::Assignment;
pub use auto_answer::raised;
pub mod merge;
pub use merge::{MergeEvents, merge, unmerge};
pub use sla::MAX_MINUTES;
pub use view::{Message, MessageKind, PendingDecline, Rating, TicketView};

/// Where a ticket is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TicketStatus {
    /// Opened; no agent has answered yet.
    New,
    /// Being worked on.
    Open,
    /// Waiting on the customer.
    Pending,
    /// An agent proposed declining the request; a manager approves or rejects.
    DeclineProposed,
    /// Solved (declined or not); a customer message reopens it.
    Solved,
    /// Closed for good.
    Closed,
}

impl TicketStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TicketStatus; 6] = [
        TicketStatus::New,
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::DeclineProposed,
        TicketStatus::Solved,
        TicketStatus::Closed,
    ];

    /// The status named by [`TicketStatus::as_str`].
    pub fn parse(name: &str) -> Option<TicketStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Not solved or closed: still needs support's attention.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TicketStatus::New
                | TicketStatus::Open
                | TicketStatus::Pending
                | TicketStatus::DeclineProposed
        )
    }

    /// A stable lower-case name (`new`, `open`, …), used in messages and read models.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::DeclineProposed => "decline_proposed",
            TicketStatus::Solved => "solved",
            TicketStatus::Closed => "closed",
        }
    }
}

/// A ticket's state as far as the rules need it, rebuilt from its events.
/// `Ticket::default()` is a ticket that has not been opened (version 0).
///
/// What a ticket shows (subject, times, the conversation) is in [`TicketView`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ticket {
    /// How many events have been applied (unknown ones included).
    pub version: u64,
    /// Lifecycle status; `None` until opened.
    pub status: Option<TicketStatus>,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The customer who opened it.
    pub customer_id: Uuid,
    /// How often it was reopened.
    pub reopen_count: u32,
    /// Its product area (the skill it needs).
    pub product_area: String,
    /// Its priority.
    pub priority: Priority,
    /// The agent it was last assigned to (kept after solve: who handled it).
    pub assignee: Option<String>,
    /// Opened or reopened since its last assignment: routing owes it an agent.
    pub awaiting_agent: bool,
    /// Queued (nobody fitted) since it began waiting.
    pub queued: bool,
    /// SLA alarms recorded: (clock, cycle, alarm).
    pub alarms: BTreeSet<(ClockKind, u64, Alarm)>,
    /// Escalations recorded: (clock, cycle).
    pub escalations: BTreeSet<(ClockKind, u64)>,
    /// Minutes of work logged on it.
    pub minutes_logged: u32,
    /// Its time budget was exceeded (and flagged).
    pub budget_exceeded: bool,
    /// Who proposed the decline awaiting a manager (while `decline_proposed`).
    pub decline_proposer: Option<String>,
    /// Solved as declined (until reopened).
    pub declined: bool,
    /// When it was last solved (until reopened): the auto-close timer counts from it.
    pub solved_at: Option<UnixMillis>,
    /// How often it was solved (declines included): ratings belong to a solve.
    pub solves: u32,
    /// Ratings at or below [`CSAT_LOW`](crate::satisfaction::CSAT_LOW): their
    /// version, and the solve they rate.
    pub low_ratings: BTreeMap<u64, u32>,
    /// Solves whose low rating was followed up (once per solve, however often the
    /// customer answered).
    pub follow_ups: BTreeSet<u32>,
    /// The ticket this one was merged into: read-only while set.
    pub merged_into: Option<Uuid>,
    /// Tickets merged into this one.
    pub merged_from: BTreeSet<Uuid>,
    /// Answered automatically first (basic tier).
    pub auto_answered: bool,
    /// The customer asked for a person after the automated answer.
    pub human_requested: bool,
    /// Solves whose check-in was due.
    pub check_ins: BTreeSet<u32>,
    /// The article the customer said solved it (until reopened).
    pub self_served: Option<Uuid>,
    /// A person of the support team replied, noted or logged time on it: it is no
    /// longer a self-service candidate.
    pub staff_worked: bool,
    /// Idempotency keys already taken, scoped by the caller that sent them and
    /// what they were for (`web-shop/email:<key>`, `ana/reply:<key>`,
    /// `ana/note:<key>`); a repeat records nothing.
    pub idempotency_keys: BTreeSet<String>,
}

/// A customer's first contact, as asked (command) and as recorded (event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    /// The tenant the ticket belongs to.
    pub tenant: TenantId,
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
    /// The closed ticket the customer wrote to, when this one follows it up.
    pub follow_up_of: Option<Uuid>,
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
    /// Give the ticket to an agent (routing's rules, or a manager by hand).
    Assign(Assignment),
    /// Nobody fits: the ticket waits in its tenant's queue.
    Queue {
        /// Every agent considered, and why they could not take it.
        candidates: Vec<(String, Verdict)>,
    },
    /// An SLA clock reached its warning point or due time.
    RecordAlarm {
        /// The clock.
        clock: ClockKind,
        /// Its cycle (the version that started it).
        cycle: u64,
        /// Warning or breach.
        alarm: Alarm,
        /// The clock's due time.
        due_at: UnixMillis,
    },
    /// A warning is raised to the team's manager (or handed to another agent).
    Escalate {
        /// The clock.
        clock: ClockKind,
        /// Its cycle.
        cycle: u64,
        /// What happened and what was done.
        reason: String,
        /// The team whose manager it goes to (empty for none).
        team: String,
        /// The agent it is handed to; empty: raised to the manager.
        reassign_to: String,
    },
    /// Staff log minutes of work on the ticket.
    LogTime {
        /// Minutes, 1 to [`MAX_MINUTES`].
        minutes: u32,
    },
    /// The logged work passed the tier's budget: flag it for the manager.
    FlagBudget {
        /// The budget, in minutes.
        budget: u32,
    },
    /// Propose declining the customer's request.
    ProposeDecline {
        /// What the customer will read once a manager approves.
        reason: String,
        /// Why, for the manager (internal).
        rationale: String,
    },
    /// A manager approves the proposed decline (the ticket is solved as declined).
    ApproveDecline {
        /// Optional internal note.
        note: String,
    },
    /// A manager rejects the proposed decline (the ticket goes back to open).
    RejectDecline {
        /// What to do instead (internal, required).
        note: String,
    },
    /// The customer says how the solve went (customer systems).
    RateSatisfaction {
        /// CSAT, 1 to 5.
        score: u8,
        /// Optional comment.
        comment: String,
    },
    /// A low rating is raised to the ticket's manager (routing, as the system).
    RaiseFollowUp {
        /// The rating's version.
        rating: u64,
        /// The team whose manager follows up (empty for none).
        team: String,
        /// What happened.
        reason: String,
    },
    /// Answer a new basic-tier ticket automatically (routing, as the system).
    AutoAnswer {
        /// The answer, its placeholders filled.
        body: String,
        /// The answer rule's macro.
        rule: String,
    },
    /// The customer asks for a person (customer systems).
    RequestHuman,
    /// The customer says a self-service article solved it (customer systems).
    SelfServe {
        /// The article (of the ticket's tenant: the caller checks).
        article_id: Uuid,
        /// Whether the article is live (not retired): a retired one solves nothing,
        /// but a repeat still answers as the repeat it is.
        article_live: bool,
        /// The caller's key: a retry after the ticket moved on is still a repeat.
        idempotency_key: Option<String>,
    },
    /// A check-in with the extended-tier customer is due (routing, as the system).
    DueCheckIn {
        /// Their named agent.
        agent: String,
    },
    /// Close a solved ticket for good.
    Close {
        /// The auto-close timer's delay since solve (refused before it passed);
        /// `None`: closed by staff.
        after: Option<UnixMillis>,
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
        /// The self-service article the customer said solved it (no agent time).
        self_served: Option<Uuid>,
        /// The customer system's key for a self-served solve, if any.
        idempotency_key: Option<String>,
    },
    /// Support reopened the ticket.
    Reopened {
        /// Why.
        reason: String,
    },
    /// Routing (or a manager) gave the ticket to an agent.
    Assigned(Assignment),
    /// Nobody fitted: the ticket waits in its tenant's queue.
    Queued {
        /// Every agent considered, and why they could not take it.
        candidates: Vec<(String, Verdict)>,
    },
    /// An SLA clock reached its warning point or due time (`SlaWarning` /
    /// `SlaBreached` on the log).
    SlaAlarm {
        /// The clock.
        clock: ClockKind,
        /// Its cycle (the version that started it).
        cycle: u64,
        /// Warning or breach.
        alarm: Alarm,
        /// The clock's due time.
        due_at: UnixMillis,
    },
    /// A warning was escalated.
    EscalationRaised {
        /// The clock.
        clock: ClockKind,
        /// Its cycle.
        cycle: u64,
        /// What happened and what was done.
        reason: String,
        /// The team whose manager it goes to (empty for none).
        team: String,
        /// The agent it is handed to; empty: raised to the manager.
        reassign_to: String,
    },
    /// Staff logged minutes of work.
    TimeLogged {
        /// Minutes.
        minutes: u32,
    },
    /// The logged work passed the tier's budget (flagged once).
    TimeBudgetExceeded {
        /// Minutes logged then.
        minutes: u32,
        /// The budget.
        budget: u32,
    },
    /// An agent proposed declining the request (the actor is the proposer).
    DeclineProposed {
        /// What the customer will read once approved.
        reason: String,
        /// Why, for the manager (internal).
        rationale: String,
    },
    /// A manager approved the decline: solved as declined, the proposal's reason
    /// sent to the customer as the public reply.
    DeclineApproved {
        /// The manager's internal note (may be empty).
        note: String,
    },
    /// A manager rejected the decline: back to open.
    DeclineRejected {
        /// The manager's internal note.
        note: String,
    },
    /// The customer rated the latest solve (a later rating of the same solve
    /// replaces it).
    SatisfactionRated {
        /// CSAT, 1 to 5.
        score: u8,
        /// Their comment.
        comment: String,
        /// Which solve it rates (1 for the first).
        solve: u32,
    },
    /// A low rating was raised to the ticket's manager.
    FollowUpRaised {
        /// The rating's version.
        rating: u64,
        /// The team whose manager follows up (empty for none).
        team: String,
        /// What happened.
        reason: String,
    },
    /// Closed for good.
    Closed {
        /// By the auto-close timer (else by staff).
        automatic: bool,
    },
    /// Answered automatically (basic tier): a public reply by the system that is no
    /// first response; the ticket waits on the customer and owes no agent yet.
    AutoAnswered {
        /// The answer.
        body: String,
        /// The answer rule's macro.
        rule: String,
    },
    /// A check-in with the extended-tier customer is due for their named agent.
    CheckInDue {
        /// The named agent.
        agent: String,
        /// The solve it follows.
        solve: u32,
    },
    /// The customer asked for a person: the ticket goes to the queue at once.
    HumanRequested {
        /// Its priority from now on (one step up).
        priority: Priority,
    },
    /// This ticket was merged into another: read-only, shown there.
    MergedInto {
        /// The ticket it shows in.
        target: Uuid,
        /// Why (internal).
        reason: String,
    },
    /// Another ticket was merged into this one.
    MergedFrom {
        /// The merged ticket.
        source: Uuid,
    },
    /// The merge into `target` was undone (the compensating event).
    Unmerged {
        /// The ticket it was merged into.
        target: Uuid,
        /// Why (internal).
        reason: String,
    },
    /// The merge of `source` into this ticket was undone.
    UnmergedFrom {
        /// The ticket merged in before.
        source: Uuid,
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
            TicketEvent::Assigned(a) => format!("assigned to {} ({})", a.agent, a.rule.as_str()),
            TicketEvent::Queued { .. } => "queued: no agent fits now".to_string(),
            TicketEvent::SlaAlarm { clock, alarm, .. } => match alarm {
                Alarm::Warning => format!("SLA warning: {}", clock.as_str()),
                Alarm::Breach => format!("SLA breached: {}", clock.as_str()),
            },
            TicketEvent::EscalationRaised { reason, .. } => format!("escalated: {reason}"),
            TicketEvent::TimeLogged { minutes } => format!("logged {minutes} minutes"),
            TicketEvent::TimeBudgetExceeded { minutes, budget } => {
                format!("time budget exceeded: {minutes} of {budget} minutes")
            }
            TicketEvent::DeclineProposed { .. } => {
                "proposed declining the request; a manager decides".to_string()
            }
            TicketEvent::DeclineApproved { .. } => "decline approved: solved as declined".into(),
            TicketEvent::DeclineRejected { .. } => "decline rejected: back to open".into(),
            TicketEvent::SatisfactionRated { score, .. } => {
                format!("customer rated it {score} of 5")
            }
            TicketEvent::FollowUpRaised { team, .. } if team.is_empty() => {
                "low rating raised to a manager".into()
            }
            TicketEvent::FollowUpRaised { team, .. } => {
                format!("low rating raised to the manager of {team}")
            }
            TicketEvent::AutoAnswered { rule, .. } => format!("answered automatically ({rule})"),
            TicketEvent::CheckInDue { agent, .. } => format!("check-in due for {agent}"),
            TicketEvent::HumanRequested { priority } => format!(
                "the customer asked for a person (priority {})",
                format!("{priority:?}").to_lowercase()
            ),
            TicketEvent::MergedInto { target, .. } => format!("merged into {target}"),
            TicketEvent::MergedFrom { source } => format!("{source} merged into this ticket"),
            TicketEvent::Unmerged { target, .. } => format!("unmerged from {target}"),
            TicketEvent::UnmergedFrom { source } => format!("{source} unmerged from this ticket"),
            TicketEvent::Closed { automatic: true } => "closed automatically".into(),
            TicketEvent::Closed { automatic: false } => "closed".into(),
        }
    }

    /// The status after this event, given the status before it. The one place the
    /// lifecycle's transitions are written down; [`Ticket`], [`TicketView`] and read
    /// models follow it.
    pub fn status_after(&self, before: Option<TicketStatus>) -> Option<TicketStatus> {
        match self {
            TicketEvent::Opened(_) => Some(TicketStatus::New),
            TicketEvent::CustomerMessageAdded { reopened: true, .. }
            | TicketEvent::Reopened { .. } => Some(TicketStatus::Open),
            TicketEvent::CustomerMessageAdded { .. } => match before {
                Some(TicketStatus::Pending) => Some(TicketStatus::Open),
                other => other,
            },
            TicketEvent::AgentReplied {
                awaiting_customer, ..
            } => Some(if *awaiting_customer {
                TicketStatus::Pending
            } else {
                TicketStatus::Open
            }),
            TicketEvent::NoteAdded { .. }
            | TicketEvent::Assigned(_)
            | TicketEvent::Queued { .. }
            | TicketEvent::SlaAlarm { .. }
            | TicketEvent::EscalationRaised { .. }
            | TicketEvent::TimeLogged { .. }
            | TicketEvent::TimeBudgetExceeded { .. }
            | TicketEvent::SatisfactionRated { .. }
            | TicketEvent::FollowUpRaised { .. }
            | TicketEvent::MergedInto { .. }
            | TicketEvent::MergedFrom { .. }
            | TicketEvent::Unmerged { .. }
            | TicketEvent::UnmergedFrom { .. }
            | TicketEvent::CheckInDue { .. } => before,
            TicketEvent::Solved { .. } | TicketEvent::DeclineApproved { .. } => {
                Some(TicketStatus::Solved)
            }
            TicketEvent::DeclineProposed { .. } => Some(TicketStatus::DeclineProposed),
            TicketEvent::AutoAnswered { .. } => Some(TicketStatus::Pending),
            TicketEvent::HumanRequested { .. } => Some(TicketStatus::Open),
            TicketEvent::DeclineRejected { .. } => Some(TicketStatus::Open),
            TicketEvent::Closed { .. } => Some(TicketStatus::Closed),
        }
    }

    /// Whether this event reopened a solved ticket (counts towards
    /// [`limits::MAX_REOPENS`]).
    pub fn reopens(&self) -> bool {
        matches!(
            self,
            TicketEvent::CustomerMessageAdded { reopened: true, .. } | TicketEvent::Reopened { .. }
        )
    }
}

impl Ticket {
    /// Whether any event has been recorded on it: opened (or, from a newer writer,
    /// something this code does not know yet).
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// Decides what `command` by `actor` records on this ticket: `Ok(Some(event))` to
    /// record, `Ok(None)` when an idempotent repeat makes it already done, or why not.
    ///
    /// The event is recorded at `now`: the time is decided here, with the event, not
    /// by whoever appends it. `id` is only used in error messages.
    ///
    /// Checks run in this order, and the first that fails answers: authorise →
    /// validate fields → existence (a ticket that was never opened is `NotFound`
    /// before any other state check) and ownership → idempotent repeat → the
    /// command's own rule.
    pub fn decide(
        &self,
        id: &str,
        command: &TicketCommand,
        actor: &Actor,
        now: UnixMillis,
    ) -> Result<Option<TicketEvent>, DomainError> {
        authorize(actor, command.action())?;
        command.validate()?;

        // Existence, then ownership: another customer's repeat of a key must be
        // refused, not answered as if it were theirs.
        match command {
            TicketCommand::Open(opening) => open::check_owner(self, opening)?,
            TicketCommand::AddCustomerMessage { customer_id, .. } => {
                self.status(id)?;
                customer_message::check_owner(self, *customer_id)?;
            }
            _ => {
                self.status(id)?;
            }
        }

        // An opened ticket has taken its opening key (the id is derived from it), so a
        // repeated Open lands here too.
        if command
            .scoped_key(actor)
            .is_some_and(|k| self.idempotency_keys.contains(&k))
        {
            return Ok(None);
        }

        // A merged ticket is read-only: people are told where to work; the system's
        // own bookkeeping (routing, SLA timers) finds nothing to do.
        if let Some(target) = self.merged_into {
            return match command {
                TicketCommand::Assign(a) if a.rule == crate::assignment::Rule::Manual => {
                    Err(refuse(
                        "assign",
                        format!("it was merged into {target}: assign that ticket"),
                    ))
                }
                _ if command.action() == Action::AssignTickets => Ok(None),
                _ => Err(refuse(
                    "change a merged ticket",
                    format!("it was merged into {target}: work on that ticket"),
                )),
            };
        }

        // The command's own rule (`self.status(id)` answered above already).
        let event = match command {
            TicketCommand::Open(opening) => open::decide(self, opening)?,
            TicketCommand::AddCustomerMessage {
                body,
                channel,
                idempotency_key,
                ..
            } => customer_message::decide(self, self.status(id)?, body, *channel, idempotency_key)?,
            TicketCommand::Reply {
                body,
                awaiting_customer,
                idempotency_key,
            } => reply::decide(self.status(id)?, body, *awaiting_customer, idempotency_key)?,
            TicketCommand::AddNote {
                body,
                idempotency_key,
            } => note::decide(self.status(id)?, body, idempotency_key)?,
            TicketCommand::Solve { resolution } => solve::decide(self.status(id)?, resolution)?,
            TicketCommand::Reopen { reason } => reopen::decide(self, self.status(id)?, reason)?,
            TicketCommand::Assign(a) => return assign::decide(self, self.status(id)?, a),
            TicketCommand::Queue { candidates } => {
                return assign::queue(self, self.status(id)?, candidates);
            }
            TicketCommand::RecordAlarm {
                clock,
                cycle,
                alarm,
                due_at,
            } => return sla::alarm(self, self.status(id)?, *clock, *cycle, *alarm, *due_at),
            TicketCommand::Escalate {
                clock,
                cycle,
                reason,
                team,
                reassign_to,
            } => {
                return Ok(sla::escalate(
                    self,
                    (*clock, *cycle),
                    reason,
                    team,
                    reassign_to,
                ));
            }
            TicketCommand::LogTime { minutes } => sla::log_time(self.status(id)?, *minutes)?,
            TicketCommand::FlagBudget { budget } => return sla::budget(self, *budget),
            TicketCommand::ProposeDecline { reason, rationale } => {
                decline::propose(self.status(id)?, reason, rationale)?
            }
            TicketCommand::ApproveDecline { note } => {
                decline::decide(self, self.status(id)?, actor, note, true)?
            }
            TicketCommand::RejectDecline { note } => {
                decline::decide(self, self.status(id)?, actor, note, false)?
            }
            TicketCommand::Close { after } => close::decide(self, self.status(id)?, *after, now)?,
            TicketCommand::RateSatisfaction { score, comment } => {
                satisfaction::rate(self, self.status(id)?, *score, comment)?
            }
            TicketCommand::AutoAnswer { body, rule } => {
                return auto_answer::answer(self, self.status(id)?, body, rule);
            }
            TicketCommand::RequestHuman => {
                return auto_answer::request_human(self, self.status(id)?);
            }
            TicketCommand::SelfServe {
                article_id,
                article_live,
                idempotency_key,
            } => {
                return self_serve::decide(
                    self,
                    self.status(id)?,
                    (*article_id, *article_live),
                    idempotency_key,
                );
            }
            TicketCommand::DueCheckIn { agent } => {
                return check_in::due(self, self.status(id)?, agent);
            }
            TicketCommand::RaiseFollowUp {
                rating,
                team,
                reason,
            } => return satisfaction::follow_up(self, *rating, team, reason),
        };
        Ok(Some(event))
    }

    /// Whether `command` (a customer's message) opens a follow-up ticket linked to
    /// this one instead: the ticket is theirs and closed, and the message is not a
    /// repeat of one it already took (a retry answers as the repeat it is). Refused
    /// for another customer's ticket.
    pub fn follows_up(&self, command: &TicketCommand, actor: &Actor) -> Result<bool, DomainError> {
        let TicketCommand::AddCustomerMessage { customer_id, .. } = command else {
            return Ok(false);
        };
        Ok(customer_message::follows_up(self, *customer_id)? && !self.is_repeat(command, actor))
    }

    /// Its priority in the queue: one step up once the customer asked for a person
    /// after an automated answer.
    pub fn queue_priority(&self) -> Priority {
        if self.human_requested {
            auto_answer::raised(self.priority)
        } else {
            self.priority
        }
    }

    /// Whether `command` repeats a key this ticket already took (it records nothing).
    pub fn is_repeat(&self, command: &TicketCommand, actor: &Actor) -> bool {
        command
            .scoped_key(actor)
            .is_some_and(|k| self.idempotency_keys.contains(&k))
    }

    /// Whether routing owes it an agent: active, and opened or reopened since its
    /// last assignment.
    pub fn needs_agent(&self) -> bool {
        self.awaiting_agent && self.works()
    }

    /// Active and not merged into another: support works on it.
    fn works(&self) -> bool {
        self.merged_into.is_none() && self.status.is_some_and(TicketStatus::is_active)
    }

    /// The agent whose load it counts in: its assignee while it is active.
    pub fn holder(&self) -> Option<&str> {
        self.assignee
            .as_deref()
            .filter(|_| !self.awaiting_agent && self.works())
    }

    /// The status of an opened ticket, or `NotFound`.
    fn status(&self, id: &str) -> Result<TicketStatus, DomainError> {
        self.status.ok_or_else(|| self.not_found(id))
    }

    fn not_found(&self, id: &str) -> DomainError {
        DomainError::NotFound {
            kind: "ticket",
            id: id.to_string(),
        }
    }
}

/// A refusal by the current state: `FAILED_PRECONDITION`.
fn refuse(action: &'static str, reason: impl Into<String>) -> DomainError {
    DomainError::Precondition {
        action,
        reason: reason.into(),
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
            TicketCommand::Assign(_)
            | TicketCommand::Queue { .. }
            | TicketCommand::RecordAlarm { .. }
            | TicketCommand::Escalate { .. }
            | TicketCommand::FlagBudget { .. } => Action::AssignTickets,
            TicketCommand::LogTime { .. } => Action::Reply,
            TicketCommand::ProposeDecline { .. } => Action::ProposeDecline,
            TicketCommand::ApproveDecline { .. } | TicketCommand::RejectDecline { .. } => {
                Action::DecideDecline
            }
            TicketCommand::Close { after: None } => Action::Close,
            TicketCommand::RateSatisfaction { .. } => Action::RecordFeedback,
            TicketCommand::AutoAnswer { .. } => Action::AssignTickets,
            TicketCommand::RequestHuman | TicketCommand::SelfServe { .. } => Action::SubmitContact,
            TicketCommand::DueCheckIn { .. } => Action::AssignTickets,
            TicketCommand::RaiseFollowUp { .. } => Action::AssignTickets,
            // The timer's close is routing's, which acts as the system.
            TicketCommand::Close { after: Some(_) } => Action::AssignTickets,
        }
    }

    /// The key as the ticket remembers it: scoped by what it was for, so one
    /// caller's key never swallows another kind of request (a chat message with the
    /// key an email used, a note with a reply's key).
    fn scoped_key(&self, actor: &Actor) -> Option<String> {
        let key = match self {
            TicketCommand::Open(o) => Some(contact_key(o.channel, &o.idempotency_key)),
            TicketCommand::AddCustomerMessage {
                channel,
                idempotency_key,
                ..
            } => Some(contact_key(*channel, idempotency_key)),
            TicketCommand::Reply {
                idempotency_key, ..
            } => idempotency_key.as_deref().map(reply_key),
            TicketCommand::AddNote {
                idempotency_key, ..
            } => idempotency_key.as_deref().map(note_key),
            TicketCommand::SelfServe {
                idempotency_key, ..
            } => idempotency_key.as_deref().map(self_serve_key),
            TicketCommand::Solve { .. }
            | TicketCommand::Reopen { .. }
            | TicketCommand::Assign(_)
            | TicketCommand::Queue { .. }
            | TicketCommand::RecordAlarm { .. }
            | TicketCommand::Escalate { .. }
            | TicketCommand::LogTime { .. }
            | TicketCommand::FlagBudget { .. }
            | TicketCommand::ProposeDecline { .. }
            | TicketCommand::ApproveDecline { .. }
            | TicketCommand::RejectDecline { .. }
            | TicketCommand::RateSatisfaction { .. }
            | TicketCommand::RaiseFollowUp { .. }
            | TicketCommand::AutoAnswer { .. }
            | TicketCommand::RequestHuman
            | TicketCommand::DueCheckIn { .. }
            | TicketCommand::Close { .. } => None,
        };
        key.map(|k| by_caller(actor, &k))
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
            }
            | TicketCommand::SelfServe {
                idempotency_key, ..
            } => idempotency_key.as_deref(),
            TicketCommand::Solve { .. }
            | TicketCommand::Reopen { .. }
            | TicketCommand::Assign(_)
            | TicketCommand::Queue { .. }
            | TicketCommand::RecordAlarm { .. }
            | TicketCommand::Escalate { .. }
            | TicketCommand::LogTime { .. }
            | TicketCommand::FlagBudget { .. }
            | TicketCommand::ProposeDecline { .. }
            | TicketCommand::ApproveDecline { .. }
            | TicketCommand::RejectDecline { .. }
            | TicketCommand::RateSatisfaction { .. }
            | TicketCommand::RaiseFollowUp { .. }
            | TicketCommand::AutoAnswer { .. }
            | TicketCommand::RequestHuman
            | TicketCommand::DueCheckIn { .. }
            | TicketCommand::Close { .. } => None,
        }
    }

    /// Checks every field against [`limits`]; error fields name the request fields.
    /// The idempotency key is checked first, then the command's own fields.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(key) = self.idempotency_key() {
            limits::idempotency_key("idempotency_key", key)?;
        }
        match self {
            TicketCommand::Open(opening) => open::validate(opening),
            TicketCommand::AddCustomerMessage { body, .. } => customer_message::validate(body),
            TicketCommand::Reply { body, .. } => reply::validate(body),
            TicketCommand::AddNote { body, .. } => note::validate(body),
            TicketCommand::Solve { resolution } => solve::validate(resolution),
            TicketCommand::Reopen { reason } => reopen::validate(reason),
            TicketCommand::Assign(a) => assign::validate(a),
            TicketCommand::Escalate { reason, .. } => sla::validate_reason(reason),
            TicketCommand::LogTime { minutes } => sla::validate_minutes(*minutes),
            TicketCommand::ProposeDecline { reason, rationale } => {
                decline::validate_proposal(reason, rationale)
            }
            TicketCommand::ApproveDecline { note } => decline::validate_decision(note, true),
            TicketCommand::RejectDecline { note } => decline::validate_decision(note, false),
            TicketCommand::RateSatisfaction { score, comment } => {
                satisfaction::validate(*score, comment)
            }
            TicketCommand::RaiseFollowUp { reason, .. } => satisfaction::validate_follow_up(reason),
            TicketCommand::AutoAnswer { body, rule } => auto_answer::validate(body, rule),
            TicketCommand::RequestHuman | TicketCommand::SelfServe { .. } => Ok(()),
            TicketCommand::DueCheckIn { agent } => check_in::validate(agent),
            TicketCommand::Queue { .. }
            | TicketCommand::RecordAlarm { .. }
            | TicketCommand::FlagBudget { .. }
            | TicketCommand::Close { .. } => Ok(()),
        }
    }
}

/// Keys are the caller's own: another caller's same key is another request.
fn by_caller(actor: &Actor, key: &str) -> String {
    format!("{}/{key}", actor.id)
}

/// How a customer-contact key is remembered: per channel, like ticket ids.
fn contact_key(channel: Channel, key: &str) -> String {
    format!("{}:{key}", channel.as_str())
}

/// How a reply's key is remembered.
fn reply_key(key: &str) -> String {
    format!("reply:{key}")
}

/// How a note's key is remembered.
fn note_key(key: &str) -> String {
    format!("note:{key}")
}

/// How a self-served solve's key is remembered.
fn self_serve_key(key: &str) -> String {
    format!("self_serve:{key}")
}

impl Aggregate for Ticket {
    type Event = TicketEvent;
    const KIND: &'static str = "ticket";
    /// 10: product area, priority, assignment, SLA alarms, logged time, declines,
    /// solves, low ratings, merges, automated answers, check-ins.
    const SNAPSHOT_SCHEMA: u32 = 11;

    fn version(&self) -> u64 {
        self.version
    }

    // The state holds nothing personal (texts live in the events), so snapshots
    // need no key; every event's texts are sealed with its customer's.
    fn event_owner(&self, _id: &Uuid, event: &TicketEvent) -> Option<Uuid> {
        match event {
            TicketEvent::Opened(opening) => Some(opening.customer_id),
            _ => Some(self.customer_id),
        }
    }

    fn apply(&mut self, recorded: &Recorded<TicketEvent>) {
        let event = &recorded.event;
        let key = match event {
            TicketEvent::Opened(o) => {
                self.customer_id = o.customer_id;
                self.tenant = o.tenant.clone();
                self.product_area = o.product_area.clone();
                self.priority = o.priority;
                Some(contact_key(o.channel, &o.idempotency_key))
            }
            TicketEvent::CustomerMessageAdded {
                channel,
                idempotency_key,
                ..
            } => Some(contact_key(*channel, idempotency_key)),
            TicketEvent::AgentReplied {
                idempotency_key, ..
            } => {
                self.staff_worked = true;
                idempotency_key.as_deref().map(reply_key)
            }
            TicketEvent::NoteAdded {
                idempotency_key, ..
            } => {
                self.staff_worked = true;
                idempotency_key.as_deref().map(note_key)
            }
            TicketEvent::Solved {
                self_served,
                idempotency_key,
                ..
            } => {
                self.self_served = *self_served;
                // Support solving it is support's work.
                self.staff_worked |= self_served.is_none();
                idempotency_key.as_deref().map(self_serve_key)
            }
            TicketEvent::Assigned(a) => {
                self.assignee = Some(a.agent.clone());
                self.awaiting_agent = false;
                self.queued = false;
                None
            }
            TicketEvent::Queued { .. } => {
                self.awaiting_agent = true;
                self.queued = true;
                None
            }
            TicketEvent::SlaAlarm {
                clock,
                cycle,
                alarm,
                ..
            } => {
                self.alarms.insert((*clock, *cycle, *alarm));
                None
            }
            TicketEvent::EscalationRaised { clock, cycle, .. } => {
                self.escalations.insert((*clock, *cycle));
                None
            }
            TicketEvent::TimeLogged { minutes } => {
                self.minutes_logged = self.minutes_logged.saturating_add(*minutes);
                self.staff_worked = true;
                None
            }
            TicketEvent::TimeBudgetExceeded { .. } => {
                self.budget_exceeded = true;
                None
            }
            // A decline's proposal and decision are notes and a reply: support's work.
            TicketEvent::DeclineProposed { .. } => {
                self.decline_proposer = Some(recorded.actor.id.clone());
                self.staff_worked = true;
                None
            }
            TicketEvent::DeclineApproved { .. } => {
                self.decline_proposer = None;
                self.declined = true;
                self.staff_worked = true;
                None
            }
            TicketEvent::DeclineRejected { .. } => {
                self.decline_proposer = None;
                self.staff_worked = true;
                None
            }
            TicketEvent::SatisfactionRated { score, solve, .. } => {
                if *score <= crate::satisfaction::CSAT_LOW {
                    self.low_ratings.insert(self.version + 1, *solve);
                }
                None
            }
            TicketEvent::FollowUpRaised { rating, .. } => {
                if let Some(solve) = self.low_ratings.get(rating) {
                    self.follow_ups.insert(*solve);
                }
                None
            }
            TicketEvent::AutoAnswered { .. } => {
                self.auto_answered = true;
                None
            }
            TicketEvent::CheckInDue { solve, .. } => {
                self.check_ins.insert(*solve);
                None
            }
            // The raise is the queue's (`queue_priority`): the SLA's targets stay
            // those of the priority the ticket opened with.
            TicketEvent::HumanRequested { .. } => {
                self.human_requested = true;
                None
            }
            TicketEvent::MergedInto { target, .. } => {
                self.merged_into = Some(*target);
                None
            }
            TicketEvent::MergedFrom { source } => {
                self.merged_from.insert(*source);
                None
            }
            TicketEvent::Unmerged { .. } => {
                self.merged_into = None;
                // Its agent let it go at the merge: routing owes it one again.
                self.awaiting_agent = true;
                self.queued = false;
                None
            }
            TicketEvent::UnmergedFrom { source } => {
                self.merged_from.remove(source);
                None
            }
            TicketEvent::Reopened { .. } | TicketEvent::Closed { .. } => None,
        };
        if event.status_after(self.status) == Some(TicketStatus::Solved)
            && self.status != Some(TicketStatus::Solved)
        {
            self.solved_at = Some(recorded.at);
            self.solves += 1;
        }
        self.idempotency_keys
            .extend(key.map(|k| by_caller(&recorded.actor, &k)));
        self.status = event.status_after(self.status);
        // Owed an agent: opened or reopened; after an automated answer, once the
        // customer asks for a person or writes again; not while only the
        // automated answer has been given.
        let wants_person = matches!(event, TicketEvent::HumanRequested { .. })
            || (matches!(event, TicketEvent::CustomerMessageAdded { .. })
                && self.auto_answered
                && !self.awaiting_agent
                && self.assignee.is_none());
        if matches!(event, TicketEvent::Opened(_)) || event.reopens() || wants_person {
            self.awaiting_agent = true;
            self.queued = false;
        }
        if matches!(event, TicketEvent::AutoAnswered { .. }) {
            self.awaiting_agent = false;
        }
        if event.reopens() {
            self.reopen_count += 1;
            self.declined = false;
            self.self_served = None;
            self.solved_at = None;
        }
        self.version += 1;
    }

    fn skip_unknown(&mut self) {
        self.version += 1;
    }
}

/// Shared by the command files' unit tests.
#[cfg(test)]
mod fixtures {
    use super::*;

    /// The customer who opened the fixture tickets.
    pub(super) const CUSTOMER: Uuid = Uuid::from_u128(0xC0FFEE);

    /// An opened ticket of [`CUSTOMER`] in `status`, with no keys taken.
    pub(super) fn ticket(status: TicketStatus) -> Ticket {
        Ticket {
            version: 1,
            status: Some(status),
            customer_id: CUSTOMER,
            ..Ticket::default()
        }
    }

    /// The reason of a `Precondition` refusal, or a panic.
    pub(super) fn refusal<T: std::fmt::Debug>(result: Result<T, DomainError>) -> String {
        match result {
            Err(DomainError::Precondition { reason, .. }) => reason,
            other => panic!("expected a precondition refusal, got {other:?}"),
        }
    }

    /// The field of an `InvalidField` error, or a panic.
    pub(super) fn invalid_field(result: Result<(), DomainError>) -> String {
        match result {
            Err(DomainError::InvalidField { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::Role;

    const ID: &str = "t-1";

    fn system() -> Actor {
        Actor::new("web-shop", Role::CustomerSystem)
    }
    fn agent() -> Actor {
        Actor::new("ana", Role::Agent)
    }

    fn message(customer_id: Uuid, body: &str, key: &str) -> TicketCommand {
        TicketCommand::AddCustomerMessage {
            customer_id,
            body: body.into(),
            channel: Channel::Email,
            idempotency_key: key.into(),
        }
    }

    #[test]
    fn checks_run_in_order_authorise_validate_exist_own_repeat_rule() {
        let missing = Ticket::default();
        let bad_body = message(Uuid::from_u128(9), "", "k");
        // Authorise before validation.
        let err = missing.decide(ID, &bad_body, &agent(), 1).unwrap_err();
        assert!(matches!(err, DomainError::Forbidden { .. }), "{err:?}");
        // Validation before existence.
        let err = missing.decide(ID, &bad_body, &system(), 1).unwrap_err();
        assert!(matches!(err, DomainError::InvalidField { .. }), "{err:?}");
        // Existence before ownership.
        let stranger = message(Uuid::from_u128(9), "hi", "k");
        let err = missing.decide(ID, &stranger, &system(), 1).unwrap_err();
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        // Ownership before the idempotent repeat.
        let mut t = ticket(TicketStatus::Closed);
        t.idempotency_keys.insert("web-shop/email:k".into());
        let err = t.decide(ID, &stranger, &system(), 1).unwrap_err();
        assert!(matches!(err, DomainError::Precondition { .. }), "{err:?}");
        // The repeat before the command's own rule (a closed ticket refuses messages).
        let own = message(CUSTOMER, "hi", "k");
        assert_eq!(t.decide(ID, &own, &system(), 1), Ok(None));
        let fresh = message(CUSTOMER, "hi", "k2");
        assert!(refusal(t.decide(ID, &fresh, &system(), 1)).contains("closed"));
    }

    #[test]
    fn a_message_to_a_closed_ticket_follows_it_up_unless_it_is_a_repeat() {
        let mut t = ticket(TicketStatus::Closed);
        let again = message(CUSTOMER, "again", "k");
        assert_eq!(t.follows_up(&again, &system()), Ok(true));
        t.idempotency_keys.insert("web-shop/email:k".into());
        assert_eq!(t.follows_up(&again, &system()), Ok(false));
        let stranger = message(Uuid::from_u128(9), "hi", "k2");
        assert!(t.follows_up(&stranger, &system()).is_err());
        assert_eq!(
            ticket(TicketStatus::Solved).follows_up(&again, &system()),
            Ok(false)
        );
    }

    #[test]
    fn a_ticket_with_only_unknown_events_is_not_found_but_cannot_be_opened() {
        let mut t = Ticket::default();
        t.skip_unknown();
        assert!(t.exists());
        assert_eq!((t.version, t.status), (1, None));
        let solve = TicketCommand::Solve {
            resolution: String::new(),
        };
        let err = t.decide(ID, &solve, &agent(), 1).unwrap_err();
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        let err = t
            .decide(ID, &message(Uuid::from_u128(9), "hi", "k"), &system(), 1)
            .unwrap_err();
        assert!(matches!(err, DomainError::NotFound { .. }), "{err:?}");
        let open = TicketCommand::Open(Opening {
            tenant: crate::TenantId::parse("tenant", "acme").unwrap(),
            channel: Channel::Email,
            customer_id: CUSTOMER,
            subject: "s".into(),
            body: "b".into(),
            product_area: "p".into(),
            priority: Priority::Normal,
            idempotency_key: "k".into(),
            follow_up_of: None,
        });
        refusal(t.decide(ID, &open, &system(), 1));
    }

    #[test]
    fn skip_unknown_counts_the_version_and_changes_nothing_else() {
        let mut t = ticket(TicketStatus::Pending);
        t.reopen_count = 3;
        t.idempotency_keys.insert("reply:r".into());
        let before = t.clone();
        t.skip_unknown();
        assert_eq!(t.version, before.version + 1);
        assert_eq!(
            Ticket {
                version: before.version,
                ..t
            },
            before
        );
    }

    #[test]
    fn apply_remembers_scoped_keys() {
        let mut t = Ticket::default();
        let at = |event| Recorded {
            event,
            actor: agent(),
            at: 7,
        };
        t.apply(&at(TicketEvent::Opened(Opening {
            tenant: crate::TenantId::parse("tenant", "acme").unwrap(),
            channel: Channel::Chat,
            customer_id: CUSTOMER,
            subject: "s".into(),
            body: "b".into(),
            product_area: "p".into(),
            priority: Priority::Low,
            idempotency_key: "o".into(),
            follow_up_of: None,
        })));
        t.apply(&at(TicketEvent::AgentReplied {
            body: "b".into(),
            awaiting_customer: true,
            idempotency_key: Some("r".into()),
        }));
        t.apply(&at(TicketEvent::NoteAdded {
            body: "b".into(),
            idempotency_key: Some("n".into()),
        }));
        t.apply(&at(TicketEvent::CustomerMessageAdded {
            body: "b".into(),
            channel: Channel::Phone,
            idempotency_key: "m".into(),
            reopened: false,
        }));
        let keys: Vec<&str> = t.idempotency_keys.iter().map(String::as_str).collect();
        // Scoped by the caller too: another caller's same key is another request.
        assert_eq!(
            keys,
            ["ana/chat:o", "ana/note:n", "ana/phone:m", "ana/reply:r"]
        );
        assert_eq!(t.status, Some(TicketStatus::Open));
        assert_eq!((t.version, t.customer_id, t.reopen_count), (4, CUSTOMER, 0));
    }
}
