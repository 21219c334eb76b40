//! Roles, actions and the one table that says who may do what.

use std::fmt;

use crate::DomainError;

/// A caller's role (the `role` claim of its token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// A system submitting on behalf of customers (web shop, mail gateway, chat widget).
    CustomerSystem,
    /// A support agent.
    Agent,
    /// A support manager.
    Manager,
    /// An operator.
    Admin,
}

impl Role {
    /// The token claim spelling: `customer_system`, `agent`, `manager`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::CustomerSystem => "customer_system",
            Role::Agent => "agent",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// Parses the token claim spelling.
    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::CustomerSystem,
            Role::Agent,
            Role::Manager,
            Role::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Support staff see internal notes and history.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Manager | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    /// The actor's id (token subject).
    pub id: String,
    /// The actor's role.
    pub role: Role,
}

impl Actor {
    /// An actor with the given id and role.
    pub fn new(id: impl Into<String>, role: Role) -> Self {
        Actor {
            id: id.into(),
            role,
        }
    }
}

/// Everything a caller can ask of Frontline, for authorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Action {
    /// Open a ticket or add a customer's message to one (intake).
    SubmitContact,
    /// Read a customer.
    ReadCustomer,
    /// Reply publicly.
    Reply,
    /// Add an internal note.
    AddNote,
    /// Solve a ticket.
    Solve,
    /// Reopen a ticket.
    Reopen,
    /// Propose declining a customer's request (an agent's "No", for a manager).
    ProposeDecline,
    /// Approve or reject a proposed decline (a manager who did not propose it).
    DecideDecline,
    /// Close a solved ticket for good.
    Close,
    /// Merge a duplicate ticket into another, or undo that.
    MergeTickets,
    /// Put or remove a tenant's macros.
    ManageMacros,
    /// Read a tenant's macros.
    ReadMacros,
    /// Publish or retire a tenant's self-service articles.
    ManageArticles,
    /// Read self-service articles and have them suggested (channels offer them to
    /// customers).
    ReadArticles,
    /// Record what a customer thinks: CSAT, NPS, product feedback (customer systems).
    RecordFeedback,
    /// Read a ticket (customer systems see customer-visible parts only).
    ReadTicket,
    /// Read a ticket's full event history.
    ReadHistory,
    /// Link two customer records that are the same person, or undo that.
    LinkCustomers,
    /// Forget a customer (erase their personal data), or export everything held
    /// about them.
    ManagePersonalData,
    /// Register, update or deactivate agents.
    ManageAgents,
    /// Set an agent's availability (agents their own).
    SetAvailability,
    /// Read agents.
    ReadAgents,
    /// Assign or transfer tickets (routing's own assigner acts as an admin).
    AssignTickets,
    /// Read routing: a ticket's assignment decisions, the queue, a customer's tier.
    ReadRouting,
    /// Set a customer's tier and named agent.
    SetTier,
    /// Put a tenant's SLA policy.
    ManagePolicies,
    /// Read support metrics (analytics).
    ReadMetrics,
    /// See where the read models stand, and rebuild them (operators: an admin whose
    /// token covers every tenant, as the read models hold them all).
    OperateReadModels,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Action::SubmitContact => "submit contacts",
            Action::ReadCustomer => "read customers",
            Action::Reply => "reply",
            Action::AddNote => "add notes",
            Action::Solve => "solve tickets",
            Action::Reopen => "reopen tickets",
            Action::ProposeDecline => "propose declines",
            Action::DecideDecline => "approve or reject declines",
            Action::Close => "close tickets",
            Action::RecordFeedback => "record customer feedback",
            Action::ManageArticles => "manage articles",
            Action::ReadArticles => "read articles",
            Action::MergeTickets => "merge tickets",
            Action::ManageMacros => "manage macros",
            Action::ReadMacros => "read macros",
            Action::ReadTicket => "read tickets",
            Action::ReadHistory => "read ticket history",
            Action::LinkCustomers => "link customers",
            Action::ManagePersonalData => "forget or export customers",
            Action::ManageAgents => "manage agents",
            Action::SetAvailability => "set availability",
            Action::ReadAgents => "read agents",
            Action::AssignTickets => "assign tickets",
            Action::ReadRouting => "read routing",
            Action::SetTier => "set customer tiers",
            Action::ManagePolicies => "manage SLA policies",
            Action::ReadMetrics => "read support metrics",
            Action::OperateReadModels => "operate the read models",
        };
        f.write_str(s)
    }
}

/// The permission table: may `role` do `action`?
pub fn may(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        SubmitContact | RecordFeedback => matches!(role, CustomerSystem | Admin),
        ReadCustomer | ReadTicket | ReadArticles => true,
        Reply | AddNote | Solve | Reopen | ProposeDecline | MergeTickets => {
            matches!(role, Agent | Manager)
        }
        DecideDecline => role == Manager,
        // Admin: the auto-close timer acts as the system.
        Close => role.is_staff(),
        ReadHistory | LinkCustomers => role.is_staff(),
        ManagePersonalData | OperateReadModels | ManageMacros | ManageArticles => role == Admin,
        ManageAgents | AssignTickets | SetTier | ManagePolicies | ReadMetrics => {
            matches!(role, Manager | Admin)
        }
        SetAvailability | ReadAgents | ReadRouting | ReadMacros => role.is_staff(),
    }
}

/// [`may`], as a `Result` that says who was refused what.
pub fn authorize(actor: &Actor, action: Action) -> Result<(), DomainError> {
    if may(actor.role, action) {
        Ok(())
    } else {
        Err(DomainError::Forbidden {
            action,
            role: actor.role,
        })
    }
}
