//! Frontline's business rules, as pure code: no I/O, no clocks, no async.
//!
//! Each aggregate has commands (what someone asks for), events (what happened),
//! `decide(state, command, actor, now) -> Result<Option<event>, DomainError>` and
//! `apply(state, event)`. `decide` returning `Ok(None)` means "already done":
//! a repeated idempotent request that must record nothing new. The event is
//! recorded at `now`, the time given to `decide`: the domain decides the time.
//!
//! Aggregates decide, views show: an aggregate's state keeps only what its `decide`
//! needs (and is snapshotted); what is shown is a view built on read from the same
//! events ([`TicketView`]). One small file per command holds that command's rules.
//!
//! - [`ticket`]: the ticket lifecycle (open, customer messages, replies, notes, solve,
//!   reopen) and [`TicketView`].
//! - [`customer`]: who the customer is and what they told us.
//! - [`agent`]: agents as routing sees them: tenants, skills, capacity, availability.
//! - [`assignment`]: choosing an agent for a ticket, with a reason for each agent.
//! - [`actor`]: roles and who may do what.
//! - [`identity`]: normalising emails, phones and external ids.
//! - [`identity_claim`]: the identity index: which customer an identity belongs to.
//! - [`ids`]: deterministic ids, so a repeated request finds what the first one created.
//! - [`limits`]: size limits on everything a caller sends.
//! - [`sla`]: business hours and the due time of an SLA clock (paused while pending).
//! - [`tenant`]: tenants, and which ones a caller may act in.

pub mod actor;
pub mod agent;
pub mod article;
pub mod assignment;
pub mod customer;
mod error;
pub mod feedback;
pub mod identity;
pub mod identity_claim;
pub mod ids;
pub mod limits;
pub mod macros;
pub mod satisfaction;
pub mod self_service;
pub mod sla;
pub mod tenant;
pub mod ticket;

pub use actor::{Action, Actor, Role, authorize};
pub use agent::{Agent, AgentCommand, AgentEvent, Availability};
pub use customer::{Customer, CustomerCommand, CustomerEvent};
pub use error::DomainError;
pub use identity::Identity;
pub use identity_claim::{IdentityClaim, IdentityClaimEvent, IdentityKey, Resolution};
pub use tenant::{Caller, TenantId, TenantScope};
pub use ticket::{
    Assignment, Opening, Ticket, TicketCommand, TicketEvent, TicketStatus, TicketView,
};

use serde::{Serialize, de::DeserializeOwned};

/// Milliseconds since the Unix epoch (UTC). The domain never reads a clock:
/// callers pass the time in.
pub type UnixMillis = i64;

/// The channel a contact came in through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Channel {
    /// Email.
    Email,
    /// Chat widget.
    Chat,
    /// Phone call.
    Phone,
    /// Web form.
    Web,
    /// Another system calling the API.
    Api,
}

impl Channel {
    /// A stable lower-case name, used in ids and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Chat => "chat",
            Channel::Phone => "phone",
            Channel::Web => "web",
            Channel::Api => "api",
        }
    }
}

/// How urgent a ticket is.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Priority {
    /// Can wait.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Soon.
    High,
    /// Now.
    Urgent,
}

/// An event together with what the log records around it: who and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded<E> {
    /// The event.
    pub event: E,
    /// Who caused it.
    pub actor: Actor,
    /// When it was decided: the `now` given to `decide`.
    pub at: UnixMillis,
}

/// An event-sourced aggregate: state rebuilt by applying its events in order.
///
/// The state is serialisable so the event log can keep snapshots of it; a
/// snapshot is only a shortcut, never the truth.
pub trait Aggregate:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The aggregate's events.
    type Event: Clone + std::fmt::Debug + Send + Sync + 'static;
    /// The aggregate kind, as used in subjects: `frontline.<KIND>.<id>`.
    const KIND: &'static str;
    /// Bump when the state's serialised shape changes: older snapshots are then ignored.
    const SNAPSHOT_SCHEMA: u32;
    /// Whether snapshots are worth a read: not for aggregates of one or two events.
    const SNAPSHOTS: bool = true;
    /// How many events have been applied (0 for an aggregate that does not exist yet).
    fn version(&self) -> u64;
    /// Applies one event. Must be total: every event `decide` can produce applies.
    fn apply(&mut self, recorded: &Recorded<Self::Event>);
    /// An event this code does not know (written by a newer writer; "deploy readers before writers"):
    /// it counts in the version, nothing else changes.
    fn skip_unknown(&mut self);
    /// The customer whose data key seals this aggregate's personal data (in its
    /// snapshot), if any: forgetting that customer makes it unreadable.
    fn data_owner(&self, _id: &uuid::Uuid) -> Option<uuid::Uuid> {
        None
    }
    /// The customer whose data key seals the personal fields of `event`, the next
    /// event of aggregate `id` in this state.
    fn event_owner(&self, id: &uuid::Uuid, _event: &Self::Event) -> Option<uuid::Uuid> {
        self.data_owner(id)
    }
}
