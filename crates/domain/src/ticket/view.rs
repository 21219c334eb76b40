//! What a ticket shows: subject, times and the conversation, built on read from the
//! ticket's events. Nothing here decides anything; [`Ticket`](super::Ticket) does.

use uuid::Uuid;

use super::{TicketEvent, TicketStatus};
use crate::{Channel, Priority, Recorded, UnixMillis};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MessageKind {
    /// The customer.
    Customer,
    /// A public reply by support.
    AgentReply,
    /// An internal note by support.
    InternalNote,
    /// An automated answer (basic tier): public, but no person's.
    Automated,
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

/// A decline awaiting a manager.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingDecline {
    /// Who proposed it.
    pub proposer: String,
    /// What the customer will read once approved.
    pub reason: String,
    /// Why, for the manager.
    pub rationale: String,
    /// When it was proposed.
    pub at: UnixMillis,
}

/// The customer's rating of the latest solve.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rating {
    /// CSAT, 1 to 5.
    pub score: u8,
    /// Their comment.
    pub comment: String,
    /// When they answered.
    pub at: UnixMillis,
}

/// A ticket as it is shown, rebuilt from its events (all of them for "now", the
/// first `n` for "as of version `n`"). `TicketView::default()` is a ticket that has
/// not been opened (version 0).
///
/// Version, status, customer and reopen count always agree with the
/// [`Ticket`](super::Ticket) built from the same events.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TicketView {
    /// How many events have been applied (unknown ones included).
    pub version: u64,
    /// Lifecycle status; `None` until opened.
    pub status: Option<TicketStatus>,
    /// The customer who opened it.
    pub customer_id: Uuid,
    /// The tenant it belongs to.
    pub tenant: crate::TenantId,
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
    /// When its last known event happened.
    pub updated_at: UnixMillis,
    /// When support first replied publicly.
    pub first_response_at: Option<UnixMillis>,
    /// When it was last solved, while it is solved or closed.
    pub solved_at: Option<UnixMillis>,
    /// How often it was reopened.
    pub reopen_count: u32,
    /// The agent it was last assigned to.
    pub assignee: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// The decline awaiting a manager, while `decline_proposed`.
    pub pending_decline: Option<PendingDecline>,
    /// Solved as declined (until reopened).
    pub declined: bool,
    /// The self-service article that solved it (until reopened).
    pub self_served: Option<Uuid>,
    /// When it was closed.
    pub closed_at: Option<UnixMillis>,
    /// The closed ticket this one follows up.
    pub follow_up_of: Option<Uuid>,
    /// The customer's rating of the latest solve (until reopened).
    pub satisfaction: Option<Rating>,
    /// The ticket this one was merged into (read-only while set).
    pub merged_into: Option<Uuid>,
    /// Tickets merged into this one, in merge order: their messages show here.
    pub merged_from: Vec<Uuid>,
}

impl TicketView {
    /// The view after `events`, applied in order from an unopened ticket.
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = &'a Recorded<TicketEvent>>,
    ) -> TicketView {
        let mut view = TicketView::default();
        for recorded in events {
            view.apply(recorded);
        }
        view
    }

    /// The view after reading a ticket's events from the log, in order: `None` is an
    /// event of a type this reader does not know (a newer writer's), which only
    /// counts in the version.
    pub fn replay(events: impl IntoIterator<Item = Option<Recorded<TicketEvent>>>) -> TicketView {
        let mut view = TicketView::default();
        for event in events {
            match event {
                Some(recorded) => view.apply(&recorded),
                None => view.skip_unknown(),
            }
        }
        view
    }

    /// Whether any event has been recorded on it.
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// Messages the customer may see.
    pub fn customer_visible_messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.customer_visible())
    }

    /// Applies one event: the version goes up by one, a message carries the version
    /// that added it, times come from when the event was recorded.
    pub fn apply(&mut self, recorded: &Recorded<TicketEvent>) {
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
        let event = &recorded.event;
        match event {
            TicketEvent::Opened(o) => {
                self.customer_id = o.customer_id;
                self.tenant = o.tenant.clone();
                self.channel = Some(o.channel);
                self.subject = o.subject.clone();
                self.product_area = o.product_area.clone();
                self.priority = o.priority;
                self.opened_at = at;
                self.follow_up_of = o.follow_up_of;
                self.messages.push(message(
                    MessageKind::Customer,
                    o.customer_id.to_string(),
                    &o.body,
                    Some(o.channel),
                ));
            }
            TicketEvent::CustomerMessageAdded { body, channel, .. } => {
                self.messages.push(message(
                    MessageKind::Customer,
                    self.customer_id.to_string(),
                    body,
                    Some(*channel),
                ));
            }
            TicketEvent::AgentReplied { body, .. } => {
                self.messages.push(message(
                    MessageKind::AgentReply,
                    recorded.actor.id.clone(),
                    body,
                    None,
                ));
                self.first_response_at.get_or_insert(at);
            }
            TicketEvent::NoteAdded { body, .. } => {
                self.messages.push(message(
                    MessageKind::InternalNote,
                    recorded.actor.id.clone(),
                    body,
                    None,
                ));
            }
            TicketEvent::Solved { self_served, .. } => {
                self.solved_at = Some(at);
                self.self_served = *self_served;
            }
            TicketEvent::DeclineProposed { reason, rationale } => {
                self.messages.push(message(
                    MessageKind::InternalNote,
                    recorded.actor.id.clone(),
                    &format!("Proposed declining. Rationale: {rationale}"),
                    None,
                ));
                self.pending_decline = Some(PendingDecline {
                    proposer: recorded.actor.id.clone(),
                    reason: reason.clone(),
                    rationale: rationale.clone(),
                    at,
                });
            }
            TicketEvent::DeclineApproved { note } => {
                // The proposal's reason is the public answer, in the proposer's name.
                if let Some(p) = self.pending_decline.take() {
                    self.messages.push(message(
                        MessageKind::AgentReply,
                        p.proposer,
                        &p.reason,
                        None,
                    ));
                }
                if !note.is_empty() {
                    self.messages.push(message(
                        MessageKind::InternalNote,
                        recorded.actor.id.clone(),
                        &format!("Decline approved. {note}"),
                        None,
                    ));
                }
                self.first_response_at.get_or_insert(at);
                self.solved_at = Some(at);
                self.declined = true;
            }
            TicketEvent::DeclineRejected { note } => {
                self.pending_decline = None;
                self.messages.push(message(
                    MessageKind::InternalNote,
                    recorded.actor.id.clone(),
                    &format!("Decline rejected. {note}"),
                    None,
                ));
            }
            TicketEvent::Closed { .. } => self.closed_at = Some(at),
            TicketEvent::SatisfactionRated { score, comment, .. } => {
                self.satisfaction = Some(Rating {
                    score: *score,
                    comment: comment.clone(),
                    at,
                });
            }
            // Public, but no first response: that is a person's.
            TicketEvent::AutoAnswered { body, .. } => {
                self.messages.push(message(
                    MessageKind::Automated,
                    recorded.actor.id.clone(),
                    body,
                    None,
                ));
            }
            TicketEvent::HumanRequested { priority } => self.priority = *priority,
            TicketEvent::CheckInDue { agent, .. } => {
                self.messages.push(message(
                    MessageKind::InternalNote,
                    recorded.actor.id.clone(),
                    &format!("Check-in due: {agent} checks in with the customer."),
                    None,
                ));
            }
            TicketEvent::MergedInto { target, .. } => self.merged_into = Some(*target),
            TicketEvent::Unmerged { .. } => self.merged_into = None,
            TicketEvent::MergedFrom { source } => {
                if !self.merged_from.contains(source) {
                    self.merged_from.push(*source);
                }
            }
            TicketEvent::UnmergedFrom { source } => self.merged_from.retain(|s| s != source),
            TicketEvent::FollowUpRaised { reason, .. } => {
                self.messages.push(message(
                    MessageKind::InternalNote,
                    recorded.actor.id.clone(),
                    &format!("Follow-up for the manager: {reason}"),
                    None,
                ));
            }
            TicketEvent::Assigned(a) => self.assignee = Some(a.agent.clone()),
            TicketEvent::Reopened { .. }
            | TicketEvent::Queued { .. }
            | TicketEvent::SlaAlarm { .. }
            | TicketEvent::EscalationRaised { .. }
            | TicketEvent::TimeLogged { .. }
            | TicketEvent::TimeBudgetExceeded { .. } => {}
        }
        self.status = event.status_after(self.status);
        if event.reopens() {
            self.reopen_count += 1;
            self.solved_at = None;
            self.declined = false;
            self.self_served = None;
            self.satisfaction = None;
        }
        self.version = version;
        self.updated_at = at;
    }

    /// An event this code does not know (written by a newer writer): it counts in
    /// the version, nothing else changes.
    pub fn skip_unknown(&mut self) {
        self.version += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ticket::Opening;
    use crate::{Actor, Aggregate, Role, Ticket};

    const CUSTOMER: Uuid = Uuid::from_u128(0xC0FFEE);

    fn recorded(event: TicketEvent, actor: &str, at: UnixMillis) -> Recorded<TicketEvent> {
        Recorded {
            event,
            actor: Actor::new(actor, Role::Agent),
            at,
        }
    }

    fn story() -> Vec<Recorded<TicketEvent>> {
        vec![
            recorded(
                TicketEvent::Opened(Opening {
                    tenant: crate::TenantId::parse("tenant", "acme").unwrap(),
                    channel: Channel::Email,
                    customer_id: CUSTOMER,
                    subject: "Router broken".into(),
                    body: "It blinks red.".into(),
                    product_area: "router-x200".into(),
                    priority: Priority::High,
                    idempotency_key: "k".into(),
                    follow_up_of: None,
                }),
                "web-shop",
                10,
            ),
            recorded(
                TicketEvent::NoteAdded {
                    body: "Known issue.".into(),
                    idempotency_key: None,
                },
                "ana",
                20,
            ),
            recorded(
                TicketEvent::AgentReplied {
                    body: "Restart it.".into(),
                    awaiting_customer: true,
                    idempotency_key: None,
                },
                "max",
                30,
            ),
            recorded(
                TicketEvent::Solved {
                    resolution: "Restarted.".into(),
                    self_served: None,
                    idempotency_key: None,
                },
                "ana",
                40,
            ),
            recorded(
                TicketEvent::CustomerMessageAdded {
                    body: "Again.".into(),
                    channel: Channel::Chat,
                    idempotency_key: "m".into(),
                    reopened: true,
                },
                "web-shop",
                50,
            ),
        ]
    }

    #[test]
    fn the_view_shows_what_the_events_said_and_when() {
        let events = story();
        let view = TicketView::from_events(&events);
        assert_eq!(view.version, 5);
        assert!(view.exists());
        assert_eq!(view.status, Some(TicketStatus::Open));
        assert_eq!(view.customer_id, CUSTOMER);
        assert_eq!(view.channel, Some(Channel::Email));
        assert_eq!(view.subject, "Router broken");
        assert_eq!(view.product_area, "router-x200");
        assert_eq!(view.priority, Priority::High);
        assert_eq!((view.opened_at, view.updated_at), (10, 50));
        assert_eq!(view.first_response_at, Some(30));
        assert_eq!(view.solved_at, None);
        assert_eq!(view.reopen_count, 1);
        let shown: Vec<_> = view
            .messages
            .iter()
            .map(|m| (m.version, m.kind, m.author_id.as_str(), m.at))
            .collect();
        let customer = CUSTOMER.to_string();
        assert_eq!(
            shown,
            [
                (1, MessageKind::Customer, customer.as_str(), 10),
                (2, MessageKind::InternalNote, "ana", 20),
                (3, MessageKind::AgentReply, "max", 30),
                (5, MessageKind::Customer, customer.as_str(), 50),
            ]
        );
        let visible: Vec<_> = view
            .customer_visible_messages()
            .map(|m| m.version)
            .collect();
        assert_eq!(visible, [1, 3, 5]);
    }

    #[test]
    fn as_of_a_version_is_the_first_events() {
        let events = story();
        let solved = TicketView::from_events(&events[..4]);
        assert_eq!(solved.status, Some(TicketStatus::Solved));
        assert_eq!(solved.solved_at, Some(40));
        assert_eq!(solved.messages.len(), 3);
        assert!(!TicketView::from_events(&events[..0]).exists());
    }

    #[test]
    fn view_and_ticket_agree_and_skip_unknown_keeps_them_in_step() {
        let mut view = TicketView::default();
        let mut ticket = Ticket::default();
        for recorded in &story() {
            view.apply(recorded);
            ticket.apply(recorded);
            let before = view.clone();
            view.skip_unknown();
            ticket.skip_unknown();
            assert_eq!(
                TicketView {
                    version: before.version,
                    ..view.clone()
                },
                before
            );
            assert_eq!(
                (
                    view.version,
                    view.status,
                    view.customer_id,
                    view.reopen_count
                ),
                (
                    ticket.version,
                    ticket.status,
                    ticket.customer_id,
                    ticket.reopen_count
                )
            );
        }
        assert_eq!(view.version, 10);
        // The message added after unknown events carries its own version.
        assert_eq!(view.messages.last().unwrap().version, 9);
    }
}
