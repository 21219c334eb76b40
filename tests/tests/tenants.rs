//! Tenants, roles and customer systems, end to end: who may call what on whose data.
//!
//! - [`access_table_across_tenants_and_roles`] sets up a customer and a ticket in
//!   tenant `acme` and in tenant `globex`, then runs one table of rows (caller, call,
//!   target, expected gRPC code) over every RPC of the services: customer systems of
//!   either tenant, agents and managers of one tenant, an agent of both, an admin of
//!   one tenant and an admin of every tenant (`*`), with and without the `x-tenant`
//!   header. It prints the whole table with the actual codes (run with
//!   `--nocapture`), checks that every refused call stored nothing (the event
//!   stream's last sequence is the same before and after it), and that another
//!   tenant's id answers NOT_FOUND with the very message a nonexistent id gets.
//!   Analytics runs too: its calls act in one tenant each, a search lists only that
//!   tenant's tickets (never one of the other tenant's, not even filtered on the
//!   other tenant's customer), and its figures count exactly the tickets it lists.
//!   Self-service articles too: each tenant has its own article [`ARTICLE`] (one
//!   slug, two articles: an article's id derives from its tenant and its slug) and
//!   one only it has; another tenant's slug reads as one nobody has, and its
//!   articles are never suggested nor listed.
//! - [`keys_and_external_ids_are_each_systems_own`]: two customer systems of one
//!   tenant share its customers, but each has its own idempotency keys and its own
//!   external ids, and sees only its own external ids.
//!
//! The rules: a call that creates or looks up by identity acts in the token's only
//! tenant or in the one named by `x-tenant` (PERMISSION_DENIED when the token does not
//! cover it, INVALID_ARGUMENT `x-tenant` when a token covers several and names none);
//! anything addressed by id of a tenant the caller does not cover is NOT_FOUND; the
//! role is checked first, so a wrong role is PERMISSION_DENIED whatever the target.
//!
//! Rows are independent of their order: a row whose call changes state gets a fresh
//! target of its own (a new ticket to solve or to propose declining, one whose
//! decline its tenant's agent proposed to approve or reject, a solved ticket to
//! reopen or close, two new customers to link, a linked pair to unlink, a new key
//! to submit with, a new agent to change, a queued ticket to assign, an assigned
//! one to transfer, a new customer to put in a tier, two new tickets of one new
//! customer to merge or a pair its agent merged to unmerge, a new macro name to put
//! or a new macro to remove, a new product area to give an answer rule, and for the
//! feedback calls a solved ticket to rate, a new customer to answer NPS for and a
//! new key to record feedback with; a new slug to publish, a new article to retire,
//! a new key to record self-service with and a new ticket to solve by an article).
//! The table's agents handle only billing, never the table's router tickets, so
//! routing queues every table ticket and none has an agent until a row gives it one.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, fmt::Write as _};

use frontline_domain::{Caller, Role, TenantId, ids};
use frontline_e2e::{Cluster, caller, submit_request, ticket_id, violated_field};
use frontline_proto::v1::{
    self, analytics_service_client::AnalyticsServiceClient,
    conversation_service_client::ConversationServiceClient,
};
use tonic::{Code, Status};
use uuid::Uuid;

const OK: Code = Code::Ok;
const NOT_FOUND: Code = Code::NotFound;
const DENIED: Code = Code::PermissionDenied;
const INVALID: Code = Code::InvalidArgument;
const FAILED: Code = Code::FailedPrecondition;

/// The callers of the table: name (token subject), role, tenants.
const CALLERS: &[(&str, Role, &[&str])] = &[
    ("shop-a", Role::CustomerSystem, &["acme"]),
    ("shop-b", Role::CustomerSystem, &["acme"]),
    ("shop-g", Role::CustomerSystem, &["globex"]),
    ("agent-acme", Role::Agent, &["acme"]),
    ("agent-globex", Role::Agent, &["globex"]),
    ("manager-acme", Role::Manager, &["acme"]),
    ("agent-both", Role::Agent, &["acme", "globex"]),
    ("admin-acme", Role::Admin, &["acme"]),
    ("admin-all", Role::Admin, &["*"]),
];

fn table_caller(name: &str) -> Caller {
    let (id, role, tenants) = CALLERS
        .iter()
        .find(|(id, _, _)| *id == name)
        .unwrap_or_else(|| panic!("no caller {name} in CALLERS"));
    caller(id, *role, tenants)
}

/// Every RPC of the services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rpc {
    SubmitNew,
    SubmitContinue,
    GetCustomerById,
    GetCustomerByIdentity,
    LinkCustomers,
    UnlinkCustomers,
    Reply,
    AddNote,
    Solve,
    Reopen,
    ProposeDecline,
    ApproveDecline,
    RejectDecline,
    Close,
    RateSatisfaction,
    MergeTicket,
    UnmergeTicket,
    PutMacro,
    RemoveMacro,
    ListMacros,
    /// PutAnswerRule, for a product area no table ticket has (so no ticket is ever
    /// answered automatically), naming a macro of the acting tenant (the one only
    /// globex has for `Cross`, one nobody has for `Missing`).
    PutAnswerRule,
    /// RequestHuman, on the target's standing ticket (never answered automatically).
    RequestHuman,
    /// ApplyMacro, on a ticket (the target's) with a macro of its tenant (another
    /// tenant's for `Cross`, nobody's for `MissingMacro`).
    ApplyMacro,
    GetTicket,
    GetTicketHistory,
    WatchTicket,
    ForgetCustomer,
    ExportCustomerData,
    RecordNps,
    /// RecordFeedback naming a customer (the target's; another tenant's for `Cross`).
    RecordFeedback,
    /// RecordSelfService without a ticket, of the acting tenant's [`ARTICLE`], naming
    /// a customer (the target's; another tenant's for `Cross`, nobody's for
    /// `Missing`); an article nobody has for `MissingArticle`.
    RecordSelfService,
    /// RecordSelfService solving a new ticket (the target's tenant's) by the acting
    /// tenant's [`ARTICLE`]; for `Cross` a new acme ticket and an article only globex
    /// has, for `MissingArticle` one nobody has.
    RecordSelfServiceOnTicket,
    /// PublishArticle: a new slug of the acting tenant; for `Cross`, acting in acme,
    /// the slug of a new article only globex has (another article in acme).
    PublishArticle,
    /// RetireArticle: a new article of the target's tenant (only globex's for
    /// `Cross`, nobody's for `Missing`).
    RetireArticle,
    /// GetArticle: the acting tenant's [`ARTICLE`] (only globex's for `Cross`,
    /// nobody's for `Missing`).
    GetArticle,
    RegisterAgent,
    UpdateAgent,
    SetAgentStatus,
    DeactivateAgent,
    GetAgent,
    /// WatchQueue of the target's agent (the table's agents are not its callers).
    WatchQueue,
    ListAgents,
    AssignTicket,
    TransferTicket,
    GetTicketRouting,
    ListQueue,
    SetCustomerTier,
    GetCustomerTier,
    PutSlaPolicy,
    GetSlaPolicy,
    LogTime,
    ListTickets,
    /// ListTickets filtered on an agent (internal data: staff only).
    ListTicketsByAssignee,
    /// ListTickets filtered on an SLA standing (internal data: staff only).
    ListTicketsBySla,
    GetMetrics,
    GetCustomerThirds,
    GetProjectionStatus,
    RebuildReadModels,
    /// SuggestAnswers for [`ARTICLE`]'s words (for `Cross`, acting in acme, words
    /// only globex's article has).
    SuggestAnswers,
    /// ListArticles, retired ones too (for `Cross`, acting in acme, filtered on a
    /// product area only globex's article has).
    ListArticles,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::SubmitNew => "SubmitTicket (new)",
            Rpc::SubmitContinue => "SubmitTicket (continue_ticket_id)",
            Rpc::GetCustomerById => "GetCustomer (by id)",
            Rpc::GetCustomerByIdentity => "GetCustomer (by identity)",
            Rpc::LinkCustomers => "LinkCustomers",
            Rpc::UnlinkCustomers => "UnlinkCustomers",
            Rpc::Reply => "Reply",
            Rpc::AddNote => "AddNote",
            Rpc::Solve => "Solve",
            Rpc::Reopen => "Reopen",
            Rpc::ProposeDecline => "ProposeDecline",
            Rpc::ApproveDecline => "ApproveDecline",
            Rpc::RejectDecline => "RejectDecline",
            Rpc::Close => "Close",
            Rpc::RateSatisfaction => "RateSatisfaction",
            Rpc::MergeTicket => "MergeTicket",
            Rpc::UnmergeTicket => "UnmergeTicket",
            Rpc::PutMacro => "PutMacro",
            Rpc::RemoveMacro => "RemoveMacro",
            Rpc::ListMacros => "ListMacros",
            Rpc::PutAnswerRule => "PutAnswerRule",
            Rpc::RequestHuman => "RequestHuman",
            Rpc::ApplyMacro => "ApplyMacro",
            Rpc::GetTicket => "GetTicket",
            Rpc::GetTicketHistory => "GetTicketHistory",
            Rpc::WatchTicket => "WatchTicket",
            Rpc::ForgetCustomer => "ForgetCustomer",
            Rpc::ExportCustomerData => "ExportCustomerData",
            Rpc::RecordNps => "RecordNps",
            Rpc::RecordFeedback => "RecordFeedback",
            Rpc::RecordSelfService => "RecordSelfService (no ticket)",
            Rpc::RecordSelfServiceOnTicket => "RecordSelfService (ticket_id)",
            Rpc::PublishArticle => "PublishArticle",
            Rpc::RetireArticle => "RetireArticle",
            Rpc::GetArticle => "GetArticle",
            Rpc::RegisterAgent => "RegisterAgent",
            Rpc::UpdateAgent => "UpdateAgent",
            Rpc::SetAgentStatus => "SetAgentStatus",
            Rpc::DeactivateAgent => "DeactivateAgent",
            Rpc::GetAgent => "GetAgent",
            Rpc::WatchQueue => "WatchQueue",
            Rpc::ListAgents => "ListAgents",
            Rpc::AssignTicket => "AssignTicket",
            Rpc::TransferTicket => "TransferTicket",
            Rpc::GetTicketRouting => "GetTicketRouting",
            Rpc::ListQueue => "ListQueue",
            Rpc::SetCustomerTier => "SetCustomerTier",
            Rpc::GetCustomerTier => "GetCustomerTier",
            Rpc::PutSlaPolicy => "PutSlaPolicy",
            Rpc::GetSlaPolicy => "GetSlaPolicy",
            Rpc::LogTime => "LogTime",
            Rpc::ListTickets => "ListTickets",
            Rpc::ListTicketsByAssignee => "ListTickets (assignee_id filter)",
            Rpc::ListTicketsBySla => "ListTickets (sla filter)",
            Rpc::GetMetrics => "GetMetrics",
            Rpc::GetCustomerThirds => "GetCustomerThirds",
            Rpc::GetProjectionStatus => "GetProjectionStatus",
            Rpc::RebuildReadModels => "RebuildReadModels",
            Rpc::SuggestAnswers => "SuggestAnswers",
            Rpc::ListArticles => "ListArticles",
        }
    }

    /// Analytics' calls: they read its projection, so it must have caught up first.
    fn is_analytics(self) -> bool {
        matches!(
            self,
            Rpc::ListTickets
                | Rpc::ListTicketsByAssignee
                | Rpc::ListTicketsBySla
                | Rpc::GetMetrics
                | Rpc::GetCustomerThirds
                | Rpc::GetProjectionStatus
                | Rpc::RebuildReadModels
                | Rpc::SuggestAnswers
                | Rpc::ListArticles
        )
    }
}

/// What a row's call is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Acme,
    Globex,
    /// An acme customer and a globex customer (link / unlink), an acme ticket
    /// and a globex agent (assign / transfer), an acme ticket to merge into a
    /// globex ticket (merge), acme's tickets filtered on a globex customer
    /// (ListTickets), a new globex macro to remove acting in acme (RemoveMacro), an
    /// answer rule naming a macro only globex has (PutAnswerRule), an acme ticket
    /// and a macro only globex has (ApplyMacro); for the article calls, acting in
    /// acme, an article only globex has (with a new acme ticket for
    /// RecordSelfServiceOnTicket), words only globex's article has (SuggestAnswers)
    /// or a product area only globex's article has (ListArticles), and self-service
    /// naming a globex customer (RecordSelfService).
    Cross,
    /// An id nothing has (for RemoveMacro and PutAnswerRule, a macro name nobody
    /// has).
    Missing,
    /// An acme ticket and an agent id nothing has (assign / transfer only).
    MissingAgent,
    /// An acme ticket and a macro name nobody has (ApplyMacro only).
    MissingMacro,
    /// An article nobody has, with a new acme ticket or naming acme's customer
    /// (RecordSelfService only).
    MissingArticle,
}

impl Target {
    fn describe(self, rpc: Rpc) -> String {
        let by_hand = matches!(rpc, Rpc::AssignTicket | Rpc::TransferTicket);
        let tenant = match self {
            Target::Acme => "acme",
            Target::Globex => "globex",
            Target::Cross if by_hand => return "acme ticket + globex agent".into(),
            Target::Cross if rpc == Rpc::ListTickets => {
                return "acme's tickets of a globex customer".into();
            }
            Target::Cross if rpc == Rpc::RecordFeedback => {
                return "new feedback naming a globex customer".into();
            }
            Target::Cross if rpc == Rpc::MergeTicket => {
                return "new acme ticket into a new globex ticket".into();
            }
            Target::Cross if rpc == Rpc::RemoveMacro => {
                return "new macro only globex has".into();
            }
            Target::Cross if rpc == Rpc::PutAnswerRule => {
                return "new answer rule naming a macro only globex has".into();
            }
            Target::Cross if rpc == Rpc::ApplyMacro => {
                return "acme ticket + a macro only globex has".into();
            }
            Target::Cross if rpc == Rpc::RecordSelfService => {
                return "new self-service naming a globex customer".into();
            }
            Target::Cross if rpc == Rpc::RecordSelfServiceOnTicket => {
                return "new acme ticket + an article only globex has".into();
            }
            Target::Cross if rpc == Rpc::PublishArticle => {
                return "the slug of a new article only globex has".into();
            }
            Target::Cross if rpc == Rpc::RetireArticle => {
                return "new article only globex has".into();
            }
            Target::Cross if rpc == Rpc::GetArticle => {
                return "an article only globex has".into();
            }
            Target::Cross if rpc == Rpc::SuggestAnswers => {
                return "acme's answers to words only globex's article has".into();
            }
            Target::Cross if rpc == Rpc::ListArticles => {
                return "acme's articles of a product area only globex's article has".into();
            }
            Target::Cross => return "acme customer + globex customer".into(),
            Target::MissingAgent => return "acme ticket + nonexistent agent".into(),
            Target::MissingMacro => return "acme ticket + a macro nobody has".into(),
            Target::MissingArticle if rpc == Rpc::RecordSelfServiceOnTicket => {
                return "new acme ticket + an article nobody has".into();
            }
            Target::MissingArticle => {
                return "new self-service of an article nobody has, naming acme's customer".into();
            }
            Target::Missing => {
                return match rpc {
                    Rpc::GetCustomerByIdentity => "an email nobody has".into(),
                    Rpc::LinkCustomers | Rpc::UnlinkCustomers => {
                        "acme customer + nonexistent id".into()
                    }
                    Rpc::RecordFeedback => "new feedback naming a nonexistent customer".into(),
                    Rpc::MergeTicket => "new acme ticket into a nonexistent id".into(),
                    Rpc::RemoveMacro => "a macro nobody has".into(),
                    Rpc::PutAnswerRule => "new answer rule naming a macro nobody has".into(),
                    Rpc::RecordSelfService => {
                        "new self-service naming a nonexistent customer".into()
                    }
                    Rpc::RetireArticle | Rpc::GetArticle => "an article nobody has".into(),
                    Rpc::RecordSelfServiceOnTicket => {
                        "nonexistent ticket + the acting tenant's article".into()
                    }
                    _ => "nonexistent id".into(),
                };
            }
        };
        match rpc {
            Rpc::SubmitNew => format!("new contact for {tenant}"),
            Rpc::GetCustomerById => format!("{tenant} customer"),
            Rpc::GetCustomerByIdentity => format!("{tenant} customer's email"),
            Rpc::LinkCustomers => format!("two new {tenant} customers"),
            Rpc::UnlinkCustomers => format!("two linked {tenant} customers"),
            Rpc::Solve | Rpc::ProposeDecline => format!("new {tenant} ticket"),
            Rpc::Reopen | Rpc::Close | Rpc::RateSatisfaction => format!("solved {tenant} ticket"),
            Rpc::MergeTicket => format!("two new {tenant} tickets of one customer"),
            Rpc::UnmergeTicket => {
                format!("{tenant} ticket its agent merged into another of its customer's")
            }
            Rpc::ApproveDecline | Rpc::RejectDecline => {
                format!("{tenant} ticket whose decline its agent proposed")
            }
            Rpc::PutMacro => format!("new macro for {tenant}"),
            Rpc::RemoveMacro => format!("new {tenant} macro"),
            Rpc::ListMacros => format!("{tenant}'s macros"),
            Rpc::PutAnswerRule => format!("new answer rule for {tenant} naming its {ACK}"),
            Rpc::RequestHuman => format!("{tenant} ticket not answered automatically"),
            Rpc::ApplyMacro => format!("{tenant} ticket + {tenant}'s macro"),
            Rpc::ForgetCustomer => format!("new {tenant} customer"),
            Rpc::ExportCustomerData => format!("{tenant} customer"),
            Rpc::RecordNps => format!("new {tenant} customer"),
            Rpc::RecordFeedback => format!("new feedback naming {tenant}'s customer"),
            Rpc::RecordSelfService => {
                format!("new self-service of {tenant}'s {ARTICLE} naming {tenant}'s customer")
            }
            Rpc::RecordSelfServiceOnTicket => {
                format!("new {tenant} ticket + the acting tenant's {ARTICLE}")
            }
            Rpc::PublishArticle => format!("new article for {tenant}"),
            Rpc::RetireArticle => format!("new {tenant} article"),
            Rpc::GetArticle => format!("{tenant}'s {ARTICLE}"),
            Rpc::SuggestAnswers => format!("{tenant}'s answers to its {ARTICLE}'s words"),
            Rpc::ListArticles => format!("{tenant}'s articles"),
            Rpc::RegisterAgent => format!("new agent for {tenant}"),
            Rpc::UpdateAgent | Rpc::SetAgentStatus | Rpc::DeactivateAgent => {
                format!("new {tenant} agent")
            }
            Rpc::GetAgent => format!("{tenant} agent"),
            Rpc::WatchQueue => format!("{tenant} agent's queue"),
            Rpc::ListAgents => format!("{tenant}'s agents"),
            Rpc::AssignTicket => format!("queued {tenant} ticket + {tenant} agent"),
            Rpc::TransferTicket => format!("assigned {tenant} ticket + another {tenant} agent"),
            Rpc::ListQueue => format!("{tenant}'s queue"),
            Rpc::SetCustomerTier => format!("new {tenant} customer"),
            Rpc::GetCustomerTier => format!("{tenant} customer"),
            Rpc::PutSlaPolicy | Rpc::GetSlaPolicy => format!("{tenant}'s SLA policy"),
            Rpc::ListTickets => format!("{tenant}'s tickets"),
            Rpc::ListTicketsByAssignee => format!("{tenant}'s tickets held by its agent"),
            Rpc::ListTicketsBySla => format!("{tenant}'s breached tickets"),
            Rpc::GetMetrics => format!("{tenant}'s metrics"),
            Rpc::GetCustomerThirds => format!("{tenant}'s customer thirds"),
            Rpc::GetProjectionStatus => "the read models' standing (every tenant's)".into(),
            Rpc::RebuildReadModels => "a rebuild of the read models (every tenant's)".into(),
            _ => format!("{tenant} ticket"),
        }
    }

    /// The target whose NOT_FOUND message this one's must equal: another tenant's
    /// agent reads as a nonexistent agent, another tenant's macro applied as one
    /// nobody has, another tenant's article self-served on a ticket as one nobody
    /// has, anything else as the call's nonexistent id.
    fn reads_as(self, rpc: Rpc) -> Target {
        match (rpc, self) {
            (Rpc::AssignTicket | Rpc::TransferTicket, Target::Cross | Target::MissingAgent) => {
                Target::MissingAgent
            }
            (Rpc::ApplyMacro, Target::Cross | Target::MissingMacro) => Target::MissingMacro,
            (Rpc::RecordSelfServiceOnTicket, Target::Cross | Target::MissingArticle)
            | (Rpc::RecordSelfService, Target::MissingArticle) => Target::MissingArticle,
            _ => Target::Missing,
        }
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
struct Row {
    who: &'static str,
    x_tenant: Option<&'static str>,
    rpc: Rpc,
    target: Target,
    expected: Code,
}

fn row(
    who: &'static str,
    x_tenant: Option<&'static str>,
    rpc: Rpc,
    target: Target,
    expected: Code,
) -> Row {
    Row {
        who,
        x_tenant,
        rpc,
        target,
        expected,
    }
}

/// The table. Every expectation follows the rules in the module docs; the few that
/// need a word say why.
fn rows() -> Vec<Row> {
    use Target::{Acme, Cross, Globex, Missing, MissingAgent, MissingArticle, MissingMacro};
    let mut rows = Vec::new();

    // SubmitTicket opening a ticket: customer systems and admins, in the acting tenant.
    for (who, x_tenant, target, expected) in [
        ("shop-a", None, Acme, OK),
        ("shop-a", Some("acme"), Acme, OK),
        ("shop-a", Some("globex"), Globex, DENIED),
        ("shop-b", None, Acme, OK),
        ("shop-g", None, Globex, OK),
        ("shop-g", Some("acme"), Acme, DENIED),
        ("agent-acme", None, Acme, DENIED),
        ("agent-globex", None, Globex, DENIED),
        ("manager-acme", None, Acme, DENIED),
        // The role is refused before the missing x-tenant is noticed.
        ("agent-both", None, Acme, DENIED),
        ("agent-both", Some("acme"), Acme, DENIED),
        ("admin-acme", None, Acme, OK),
        ("admin-acme", Some("globex"), Globex, DENIED),
        ("admin-all", None, Acme, INVALID),
        ("admin-all", Some("ACME"), Acme, INVALID),
        ("admin-all", Some("acme"), Acme, OK),
        ("admin-all", Some("globex"), Globex, OK),
    ] {
        rows.push(row(who, x_tenant, Rpc::SubmitNew, target, expected));
    }

    // SubmitTicket continuing the target's ticket, as its customer (by email).
    for (who, x_tenant, target, expected) in [
        ("shop-a", None, Acme, OK),
        // Customers are the tenant's: shop B continues shop A's customer's ticket.
        ("shop-b", None, Acme, OK),
        ("shop-g", None, Acme, NOT_FOUND),
        ("shop-a", None, Globex, NOT_FOUND),
        ("shop-a", Some("globex"), Globex, DENIED),
        ("shop-g", None, Globex, OK),
        ("agent-acme", None, Acme, DENIED),
        ("agent-both", Some("acme"), Acme, DENIED),
        ("admin-acme", None, Acme, OK),
        ("admin-acme", None, Globex, NOT_FOUND),
        ("admin-all", None, Acme, INVALID),
        ("admin-all", Some("acme"), Acme, OK),
        ("admin-all", Some("globex"), Globex, OK),
        // A contact continues only a ticket of the tenant it acts in: acting in
        // globex, an acme ticket is not there, even for a caller covering both.
        ("admin-all", Some("globex"), Acme, NOT_FOUND),
        ("shop-a", None, Missing, NOT_FOUND),
    ] {
        rows.push(row(who, x_tenant, Rpc::SubmitContinue, target, expected));
    }

    // Reads by id: every role, in the tenants it covers; elsewhere NOT_FOUND.
    for rpc in [
        Rpc::GetCustomerById,
        Rpc::GetTicket,
        Rpc::GetTicketHistory,
        Rpc::WatchTicket,
    ] {
        for (who, role, tenants) in CALLERS {
            for (target, tenant) in [(Acme, "acme"), (Globex, "globex")] {
                let covers = tenants.contains(&"*") || tenants.contains(&tenant);
                let expected = if rpc == Rpc::GetTicketHistory && !role.is_staff() {
                    DENIED
                } else if covers {
                    OK
                } else {
                    NOT_FOUND
                };
                rows.push(row(who, None, rpc, target, expected));
            }
        }
        rows.push(row("agent-both", None, rpc, Missing, NOT_FOUND));
    }
    // The header names where to create or look up; it widens nothing.
    rows.push(row(
        "agent-acme",
        Some("globex"),
        Rpc::GetTicket,
        Globex,
        NOT_FOUND,
    ));
    rows.push(row(
        "agent-acme",
        Some("globex"),
        Rpc::WatchTicket,
        Globex,
        NOT_FOUND,
    ));
    rows.push(row(
        "shop-a",
        Some("globex"),
        Rpc::GetCustomerById,
        Globex,
        NOT_FOUND,
    ));

    // GetCustomer by identity: looked up in the acting tenant only.
    for (who, x_tenant, target, expected) in [
        ("shop-a", None, Acme, OK),
        ("shop-b", None, Acme, OK),
        ("shop-g", None, Acme, NOT_FOUND),
        ("shop-g", Some("acme"), Acme, DENIED),
        ("shop-g", None, Globex, OK),
        ("shop-a", None, Globex, NOT_FOUND),
        ("agent-acme", None, Acme, OK),
        ("agent-acme", None, Globex, NOT_FOUND),
        ("agent-globex", None, Globex, OK),
        ("agent-globex", None, Acme, NOT_FOUND),
        ("manager-acme", None, Acme, OK),
        ("agent-both", None, Acme, INVALID),
        ("agent-both", Some("acme"), Acme, OK),
        ("agent-both", Some("globex"), Globex, OK),
        ("agent-both", Some("globex"), Acme, NOT_FOUND),
        ("admin-acme", None, Acme, OK),
        ("admin-acme", Some("globex"), Globex, DENIED),
        ("admin-all", None, Globex, INVALID),
        ("admin-all", Some("globex"), Globex, OK),
        ("admin-all", Some("acme"), Acme, OK),
        ("agent-acme", None, Missing, NOT_FOUND),
    ] {
        rows.push(row(
            who,
            x_tenant,
            Rpc::GetCustomerByIdentity,
            target,
            expected,
        ));
    }

    // Linking and unlinking: staff, both records in a tenant they cover.
    for rpc in [Rpc::LinkCustomers, Rpc::UnlinkCustomers] {
        for (who, target, expected) in [
            ("shop-a", Acme, DENIED),
            ("shop-g", Globex, DENIED),
            ("agent-acme", Acme, OK),
            ("agent-acme", Globex, NOT_FOUND),
            ("agent-globex", Acme, NOT_FOUND),
            ("agent-globex", Globex, OK),
            ("manager-acme", Acme, OK),
            ("agent-both", Acme, OK),
            ("agent-both", Globex, OK),
            ("admin-acme", Acme, OK),
            ("admin-acme", Globex, NOT_FOUND),
            ("admin-all", Acme, OK),
            ("admin-all", Globex, OK),
            ("agent-acme", Cross, NOT_FOUND),
            ("agent-acme", Missing, NOT_FOUND),
        ] {
            rows.push(row(who, None, rpc, target, expected));
        }
    }
    // Records of two tenants are never the same person: NOT_FOUND for Link and
    // Unlink alike, also for a caller covering both.
    for who in ["agent-both", "admin-all"] {
        rows.push(row(who, None, Rpc::LinkCustomers, Cross, NOT_FOUND));
        rows.push(row(who, None, Rpc::UnlinkCustomers, Cross, NOT_FOUND));
    }

    // Ticket commands: agents and managers only, on tickets of tenants they cover.
    // Logging time on a ticket is routing's, but the permission is Reply's; applying
    // a macro replies with it.
    for rpc in [
        Rpc::Reply,
        Rpc::AddNote,
        Rpc::Solve,
        Rpc::Reopen,
        Rpc::ProposeDecline,
        Rpc::LogTime,
        Rpc::ApplyMacro,
    ] {
        for (who, target, expected) in [
            ("shop-a", Acme, DENIED),
            ("shop-a", Globex, DENIED),
            ("shop-g", Acme, DENIED),
            ("agent-acme", Acme, OK),
            ("agent-acme", Globex, NOT_FOUND),
            ("agent-globex", Acme, NOT_FOUND),
            ("agent-globex", Globex, OK),
            ("manager-acme", Acme, OK),
            ("manager-acme", Globex, NOT_FOUND),
            ("agent-both", Acme, OK),
            ("agent-both", Globex, OK),
            ("admin-acme", Acme, DENIED),
            ("admin-acme", Globex, DENIED),
            ("admin-all", Acme, DENIED),
            ("admin-all", Globex, DENIED),
            ("agent-acme", Missing, NOT_FOUND),
        ] {
            rows.push(row(who, None, rpc, target, expected));
        }
    }

    // Deciding a proposed decline: managers only (never the proposer; the table's
    // proposer is the tenant's agent), on tickets of tenants they cover; the role is
    // refused before anything is read.
    for rpc in [Rpc::ApproveDecline, Rpc::RejectDecline] {
        for (who, target, expected) in [
            ("shop-a", Acme, DENIED),
            ("shop-g", Globex, DENIED),
            ("agent-acme", Acme, DENIED),
            ("agent-globex", Globex, DENIED),
            ("agent-both", Acme, DENIED),
            ("agent-both", Globex, DENIED),
            ("manager-acme", Acme, OK),
            ("manager-acme", Globex, NOT_FOUND),
            ("admin-acme", Acme, DENIED),
            ("admin-acme", Globex, DENIED),
            ("admin-all", Acme, DENIED),
            ("admin-all", Globex, DENIED),
            ("manager-acme", Missing, NOT_FOUND),
        ] {
            rows.push(row(who, None, rpc, target, expected));
        }
    }

    // Merging a duplicate ticket and undoing it: agents and managers only, on tickets
    // of tenants they cover (an agent only tickets of one customer: the table's
    // pairs are); the role is refused before anything is read.
    for rpc in [Rpc::MergeTicket, Rpc::UnmergeTicket] {
        for (who, target, expected) in [
            ("shop-a", Acme, DENIED),
            ("shop-g", Globex, DENIED),
            ("agent-acme", Acme, OK),
            ("agent-acme", Globex, NOT_FOUND),
            ("agent-globex", Acme, NOT_FOUND),
            ("agent-globex", Globex, OK),
            ("manager-acme", Acme, OK),
            ("manager-acme", Globex, NOT_FOUND),
            ("agent-both", Acme, OK),
            ("agent-both", Globex, OK),
            ("admin-acme", Acme, DENIED),
            ("admin-all", Acme, DENIED),
            ("admin-all", Globex, DENIED),
            ("agent-acme", Missing, NOT_FOUND),
            ("admin-all", Missing, DENIED),
        ] {
            rows.push(row(who, None, rpc, target, expected));
        }
    }
    // Tickets of two tenants are never duplicates: NOT_FOUND, also for a caller
    // covering both.
    rows.push(row("agent-both", None, Rpc::MergeTicket, Cross, NOT_FOUND));

    // A macro is looked up in the ticket's tenant: another tenant's reads as one
    // nobody has, also for a caller covering both; the role is refused first.
    for (who, target, expected) in [
        ("agent-acme", Cross, NOT_FOUND),
        ("agent-both", Cross, NOT_FOUND),
        ("manager-acme", Cross, NOT_FOUND),
        ("agent-acme", MissingMacro, NOT_FOUND),
        ("admin-all", MissingMacro, DENIED),
    ] {
        rows.push(row(who, None, Rpc::ApplyMacro, target, expected));
    }

    // The macro book: admins only, in the one tenant the call acts in (as SubmitTicket
    // opens a ticket); the role is refused before the missing x-tenant is noticed.
    // Answer rules are part of the book: the same rows as putting a macro. So are
    // self-service articles: admins publish and retire them in the acting tenant.
    for rpc in [
        Rpc::PutMacro,
        Rpc::RemoveMacro,
        Rpc::PutAnswerRule,
        Rpc::PublishArticle,
        Rpc::RetireArticle,
    ] {
        for (who, x_tenant, target, expected) in [
            ("shop-a", None, Acme, DENIED),
            ("shop-g", None, Globex, DENIED),
            ("agent-acme", None, Acme, DENIED),
            ("agent-globex", None, Globex, DENIED),
            ("manager-acme", None, Acme, DENIED),
            ("agent-both", None, Acme, DENIED),
            ("agent-both", Some("acme"), Acme, DENIED),
            ("admin-acme", None, Acme, OK),
            ("admin-acme", Some("acme"), Acme, OK),
            ("admin-acme", Some("globex"), Globex, DENIED),
            ("admin-all", None, Acme, INVALID),
            ("admin-all", Some("ACME"), Acme, INVALID),
            ("admin-all", Some("acme"), Acme, OK),
            ("admin-all", Some("globex"), Globex, OK),
        ] {
            rows.push(row(who, x_tenant, rpc, target, expected));
        }
    }
    // Removing a macro, or naming one in an answer rule, looks the name up in the
    // acting tenant only: another tenant's macro is not there, even for a caller
    // covering both. Retiring an article looks its slug up the same way.
    for rpc in [Rpc::RemoveMacro, Rpc::PutAnswerRule, Rpc::RetireArticle] {
        for (who, x_tenant, target, expected) in [
            ("admin-acme", None, Missing, NOT_FOUND),
            ("admin-acme", None, Cross, NOT_FOUND),
            ("admin-all", Some("acme"), Cross, NOT_FOUND),
            ("admin-all", Some("globex"), Missing, NOT_FOUND),
            ("manager-acme", None, Missing, DENIED),
        ] {
            rows.push(row(who, x_tenant, rpc, target, expected));
        }
    }
    // An article's id derives from its tenant and its slug: acting in acme, the slug
    // of an article only globex has is a new slug, so publishing it creates acme's
    // own article (revision 1), even for a caller covering both.
    for (who, x_tenant) in [("admin-acme", None), ("admin-all", Some("acme"))] {
        rows.push(row(who, x_tenant, Rpc::PublishArticle, Cross, OK));
    }
    rows.push(row("agent-acme", None, Rpc::PublishArticle, Cross, DENIED));
    // Reading an article: every role, in the one tenant the call acts in (as the
    // search); a slug only another tenant has is not there, even for a caller
    // covering both.
    for (who, x_tenant, target, expected) in [
        ("shop-a", None, Acme, OK),
        ("shop-a", Some("acme"), Acme, OK),
        ("shop-a", Some("globex"), Globex, DENIED),
        ("shop-b", None, Acme, OK),
        ("shop-g", None, Globex, OK),
        ("shop-g", Some("acme"), Acme, DENIED),
        ("agent-acme", None, Acme, OK),
        ("agent-globex", None, Globex, OK),
        ("agent-acme", Some("globex"), Globex, DENIED),
        ("manager-acme", None, Acme, OK),
        ("manager-acme", Some("globex"), Globex, DENIED),
        ("agent-both", None, Acme, INVALID),
        ("agent-both", Some("acme"), Acme, OK),
        ("agent-both", Some("globex"), Globex, OK),
        ("admin-acme", None, Acme, OK),
        ("admin-acme", Some("globex"), Globex, DENIED),
        ("admin-all", None, Acme, INVALID),
        ("admin-all", Some("ACME"), Acme, INVALID),
        ("admin-all", Some("acme"), Acme, OK),
        ("admin-all", Some("globex"), Globex, OK),
        ("shop-a", None, Cross, NOT_FOUND),
        ("agent-acme", None, Cross, NOT_FOUND),
        ("manager-acme", None, Cross, NOT_FOUND),
        ("admin-acme", None, Cross, NOT_FOUND),
        ("agent-both", Some("acme"), Cross, NOT_FOUND),
        ("admin-all", Some("acme"), Cross, NOT_FOUND),
        ("shop-a", None, Missing, NOT_FOUND),
        ("agent-globex", None, Missing, NOT_FOUND),
    ] {
        rows.push(row(who, x_tenant, Rpc::GetArticle, target, expected));
    }

    // Reading the book: staff, in the one tenant the call acts in.
    for (who, x_tenant, target, expected) in [
        ("shop-a", None, Acme, DENIED),
        ("shop-a", Some("acme"), Acme, DENIED),
        ("shop-g", None, Globex, DENIED),
        ("agent-acme", None, Acme, OK),
        ("agent-acme", Some("globex"), Globex, DENIED),
        ("agent-globex", None, Globex, OK),
        ("manager-acme", None, Acme, OK),
        ("manager-acme", Some("globex"), Globex, DENIED),
        ("agent-both", None, Acme, INVALID),
        ("agent-both", Some("acme"), Acme, OK),
        ("agent-both", Some("globex"), Globex, OK),
        ("admin-acme", None, Acme, OK),
        ("admin-acme", Some("globex"), Globex, DENIED),
        ("admin-all", None, Acme, INVALID),
        ("admin-all", Some("acme"), Acme, OK),
        ("admin-all", Some("globex"), Globex, OK),
    ] {
        rows.push(row(who, x_tenant, Rpc::ListMacros, target, expected));
    }

    // Asking for a person: customer systems and admins, on tickets of tenants they
    // cover; the role is refused before anything is read. The table's tickets were
    // never answered automatically (no answer rule covers their product area), so
    // where the call is allowed the ticket refuses it: FAILED_PRECONDITION is the
    // "allowed, but no automated answer to undo" outcome, never OK here.
    for (who, target, expected) in [
        ("shop-a", Acme, FAILED),
        ("shop-a", Globex, NOT_FOUND),
        ("shop-b", Acme, FAILED),
        ("shop-g", Globex, FAILED),
        ("shop-g", Acme, NOT_FOUND),
        ("agent-acme", Acme, DENIED),
        ("agent-globex", Globex, DENIED),
        ("manager-acme", Acme, DENIED),
        ("agent-both", Acme, DENIED),
        ("agent-both", Globex, DENIED),
        ("admin-acme", Acme, FAILED),
        ("admin-acme", Globex, NOT_FOUND),
        ("admin-all", Acme, FAILED),
        ("admin-all", Globex, FAILED),
        ("shop-a", Missing, NOT_FOUND),
        ("agent-acme", Missing, DENIED),
    ] {
        rows.push(row(who, None, Rpc::RequestHuman, target, expected));
    }
    // The header widens nothing here either.
    rows.push(row(
        "shop-a",
        Some("globex"),
        Rpc::RequestHuman,
        Globex,
        NOT_FOUND,
    ));

    // Closing a solved ticket: staff, on tickets of tenants they cover.
    for (who, target, expected) in [
        ("shop-a", Acme, DENIED),
        ("shop-a", Globex, DENIED),
        ("shop-g", Globex, DENIED),
        ("agent-acme", Acme, OK),
        ("agent-acme", Globex, NOT_FOUND),
        ("agent-globex", Acme, NOT_FOUND),
        ("agent-globex", Globex, OK),
        ("manager-acme", Acme, OK),
        ("manager-acme", Globex, NOT_FOUND),
        ("agent-both", Acme, OK),
        ("agent-both", Globex, OK),
        ("admin-acme", Acme, OK),
        ("admin-acme", Globex, NOT_FOUND),
        ("admin-all", Acme, OK),
        ("admin-all", Globex, OK),
        ("agent-acme", Missing, NOT_FOUND),
    ] {
        rows.push(row(who, None, Rpc::Close, target, expected));
    }

    // Rating a solved ticket: customer systems and admins, on tickets of tenants
    // they cover; the role is refused before anything is read.
    for (who, target, expected) in [
        ("shop-a", Acme, OK),
        ("shop-a", Globex, NOT_FOUND),
        ("shop-b", Acme, OK),
        ("shop-g", Globex, OK),
        ("shop-g", Acme, NOT_FOUND),
        ("agent-acme", Acme, DENIED),
        ("agent-globex", Globex, DENIED),
        ("manager-acme", Acme, DENIED),
        ("agent-both", Acme, DENIED),
        ("agent-both", Globex, DENIED),
        ("admin-acme", Acme, OK),
        ("admin-acme", Globex, NOT_FOUND),
        ("admin-all", Acme, OK),
        ("admin-all", Globex, OK),
        ("shop-a", Missing, NOT_FOUND),
        ("agent-acme", Missing, DENIED),
    ] {
        rows.push(row(who, None, Rpc::RateSatisfaction, target, expected));
    }
    // The header widens nothing here either.
    rows.push(row(
        "shop-a",
        Some("globex"),
        Rpc::RateSatisfaction,
        Globex,
        NOT_FOUND,
    ));

    // Forgetting and exporting a customer: admins only, of tenants they cover; the
    // role is refused before anything is read.
    // Routing's agents: managers and admins manage the agents of tenants they cover;
    // staff read them (another tenant's agent is NOT_FOUND); customer systems have
    // no routing calls. (An agent setting their own status: `routing_agents.rs`.)
    for rpc in [
        Rpc::RegisterAgent,
        Rpc::UpdateAgent,
        Rpc::SetAgentStatus,
        Rpc::DeactivateAgent,
    ] {
        // Registering names the tenants: one not covered is refused as such.
        let elsewhere = if rpc == Rpc::RegisterAgent {
            DENIED
        } else {
            NOT_FOUND
        };
        // Agents set only their own status; the rest is for managers and admins.
        for (who, target, expected) in [
            ("shop-a", Acme, DENIED),
            ("agent-acme", Acme, DENIED),
            ("agent-both", Globex, DENIED),
            ("manager-acme", Acme, OK),
            ("manager-acme", Globex, elsewhere),
            ("admin-acme", Acme, OK),
            ("admin-acme", Globex, elsewhere),
            ("admin-all", Globex, OK),
        ] {
            rows.push(row(who, None, rpc, target, expected));
        }
        if rpc != Rpc::RegisterAgent {
            rows.push(row("manager-acme", None, rpc, Missing, NOT_FOUND));
        }
    }
    // Routing's reads by id (an agent, a ticket's routing, a customer's tier): staff,
    // in the tenants they cover; elsewhere NOT_FOUND.
    for rpc in [Rpc::GetAgent, Rpc::GetTicketRouting, Rpc::GetCustomerTier] {
        for (who, role, tenants) in CALLERS {
            for (target, tenant) in [(Acme, "acme"), (Globex, "globex")] {
                let covers = tenants.contains(&"*") || tenants.contains(&tenant);
                let expected = match (role.is_staff(), covers) {
                    (false, _) => DENIED,
                    (true, true) => OK,
                    (true, false) => NOT_FOUND,
                };
                rows.push(row(who, None, rpc, target, expected));
            }
        }
        rows.push(row("agent-both", None, rpc, Missing, NOT_FOUND));
    }
    // WatchQueue: staff; an agent watches only their own queue (the table's agents
    // are not its callers, so an agent caller is refused before the agent is looked
    // up), managers and admins any agent they see; elsewhere NOT_FOUND.
    for (who, target, expected) in [
        ("shop-a", Acme, DENIED),
        ("shop-g", Globex, DENIED),
        ("agent-acme", Acme, DENIED),
        ("agent-globex", Globex, DENIED),
        ("agent-both", Globex, DENIED),
        ("agent-acme", Missing, DENIED),
        ("manager-acme", Acme, OK),
        ("manager-acme", Globex, NOT_FOUND),
        ("admin-acme", Acme, OK),
        ("admin-acme", Globex, NOT_FOUND),
        ("admin-all", Acme, OK),
        ("admin-all", Globex, OK),
        ("manager-acme", Missing, NOT_FOUND),
    ] {
        rows.push(row(who, None, Rpc::WatchQueue, target, expected));
    }
    // The header widens nothing here either.
    rows.push(row(
        "agent-acme",
        Some("globex"),
        Rpc::GetTicketRouting,
        Globex,
        NOT_FOUND,
    ));
    // Routing's lists (agents, queue) and the SLA policy act in one tenant, as
    // ListAgents always did.
    for rpc in [Rpc::ListAgents, Rpc::ListQueue, Rpc::GetSlaPolicy] {
        for (who, x_tenant, target, expected) in [
            ("shop-a", None, Acme, DENIED),
            ("agent-acme", None, Acme, OK),
            ("agent-globex", None, Globex, OK),
            ("agent-acme", Some("globex"), Globex, DENIED),
            ("agent-both", None, Acme, INVALID),
            ("agent-both", Some("acme"), Acme, OK),
            ("agent-both", Some("globex"), Globex, OK),
            ("manager-acme", None, Acme, OK),
            ("admin-all", None, Acme, INVALID),
            ("admin-all", Some("globex"), Globex, OK),
        ] {
            rows.push(row(who, x_tenant, rpc, target, expected));
        }
    }
    // Putting the SLA policy: managers and admins, in the one tenant the call acts
    // in; the role is refused before the missing x-tenant is noticed.
    for (who, x_tenant, target, expected) in [
        ("shop-a", None, Acme, DENIED),
        ("shop-g", None, Globex, DENIED),
        ("agent-acme", None, Acme, DENIED),
        ("agent-globex", None, Globex, DENIED),
        ("agent-both", None, Acme, DENIED),
        ("agent-both", Some("acme"), Acme, DENIED),
        ("manager-acme", None, Acme, OK),
        ("manager-acme", Some("acme"), Acme, OK),
        ("manager-acme", Some("globex"), Globex, DENIED),
        ("admin-acme", None, Acme, OK),
        ("admin-acme", Some("globex"), Globex, DENIED),
        ("admin-all", None, Acme, INVALID),
        ("admin-all", Some("ACME"), Acme, INVALID),
        ("admin-all", Some("acme"), Acme, OK),
        ("admin-all", Some("globex"), Globex, OK),
    ] {
        rows.push(row(who, x_tenant, Rpc::PutSlaPolicy, target, expected));
    }

    // Tickets by hand and customers' tiers: managers and admins, on tickets and
    // customers of tenants they cover; the role is refused before anything is read.
    for rpc in [Rpc::AssignTicket, Rpc::TransferTicket, Rpc::SetCustomerTier] {
        for (who, target, expected) in [
            ("shop-a", Acme, DENIED),
            ("shop-g", Globex, DENIED),
            ("agent-acme", Acme, DENIED),
            ("agent-globex", Globex, DENIED),
            ("agent-both", Globex, DENIED),
            ("manager-acme", Acme, OK),
            ("manager-acme", Globex, NOT_FOUND),
            ("admin-acme", Acme, OK),
            ("admin-acme", Globex, NOT_FOUND),
            ("admin-all", Acme, OK),
            ("admin-all", Globex, OK),
            ("manager-acme", Missing, NOT_FOUND),
        ] {
            rows.push(row(who, None, rpc, target, expected));
        }
    }
    // The agent must be one the caller sees (another tenant's reads as nonexistent),
    // and work for the ticket's tenant (a caller seeing both learns it is not so).
    for rpc in [Rpc::AssignTicket, Rpc::TransferTicket] {
        for (who, target, expected) in [
            ("manager-acme", Cross, NOT_FOUND),
            ("admin-acme", Cross, NOT_FOUND),
            ("manager-acme", MissingAgent, NOT_FOUND),
            ("admin-all", Cross, FAILED),
        ] {
            rows.push(row(who, None, rpc, target, expected));
        }
    }

    for rpc in [Rpc::ForgetCustomer, Rpc::ExportCustomerData] {
        for (who, target, expected) in [
            ("shop-a", Acme, DENIED),
            ("shop-g", Globex, DENIED),
            ("agent-acme", Acme, DENIED),
            ("manager-acme", Acme, DENIED),
            ("agent-both", Globex, DENIED),
            ("admin-acme", Acme, OK),
            ("admin-acme", Globex, NOT_FOUND),
            ("admin-acme", Missing, NOT_FOUND),
            ("admin-all", Acme, OK),
            ("admin-all", Globex, OK),
        ] {
            rows.push(row(who, None, rpc, target, expected));
        }
    }

    // An NPS answer: customer systems and admins, for customers of tenants they
    // cover; the role is refused before anything is read.
    for (who, target, expected) in [
        ("shop-a", Acme, OK),
        ("shop-a", Globex, NOT_FOUND),
        ("shop-b", Acme, OK),
        ("shop-g", Globex, OK),
        ("shop-g", Acme, NOT_FOUND),
        ("agent-acme", Acme, DENIED),
        ("agent-globex", Globex, DENIED),
        ("manager-acme", Acme, DENIED),
        ("agent-both", Acme, DENIED),
        ("agent-both", Globex, DENIED),
        ("admin-acme", Acme, OK),
        ("admin-acme", Globex, NOT_FOUND),
        ("admin-all", Acme, OK),
        ("admin-all", Globex, OK),
        ("shop-a", Missing, NOT_FOUND),
        ("manager-acme", Missing, DENIED),
    ] {
        rows.push(row(who, None, Rpc::RecordNps, target, expected));
    }

    // Product feedback: customer systems and admins, recorded in the acting tenant
    // as SubmitTicket opens a ticket; a customer it names must be that tenant's.
    // Self-service without a ticket is recorded the same way, of an article of the
    // acting tenant.
    for rpc in [Rpc::RecordFeedback, Rpc::RecordSelfService] {
        for (who, x_tenant, target, expected) in [
            ("shop-a", None, Acme, OK),
            ("shop-a", Some("acme"), Acme, OK),
            ("shop-a", Some("globex"), Globex, DENIED),
            ("shop-b", None, Acme, OK),
            ("shop-g", None, Globex, OK),
            ("shop-g", Some("acme"), Acme, DENIED),
            ("agent-acme", None, Acme, DENIED),
            ("agent-globex", None, Globex, DENIED),
            ("manager-acme", None, Acme, DENIED),
            // The role is refused before the missing x-tenant is noticed.
            ("agent-both", None, Acme, DENIED),
            ("agent-both", Some("acme"), Acme, DENIED),
            ("admin-acme", None, Acme, OK),
            ("admin-acme", Some("globex"), Globex, DENIED),
            ("admin-all", None, Acme, INVALID),
            ("admin-all", Some("ACME"), Acme, INVALID),
            ("admin-all", Some("acme"), Acme, OK),
            ("admin-all", Some("globex"), Globex, OK),
            // Acting in acme, a globex customer is not there, even for a caller
            // covering both.
            ("shop-a", None, Cross, NOT_FOUND),
            ("admin-acme", None, Cross, NOT_FOUND),
            ("admin-all", Some("acme"), Cross, NOT_FOUND),
            ("shop-a", None, Missing, NOT_FOUND),
            ("admin-all", Some("globex"), Missing, NOT_FOUND),
        ] {
            rows.push(row(who, x_tenant, rpc, target, expected));
        }
    }
    // An article nobody has (the role is refused before it is looked up).
    for (who, x_tenant, expected) in [
        ("shop-a", None, NOT_FOUND),
        ("admin-all", Some("globex"), NOT_FOUND),
        ("manager-acme", None, DENIED),
    ] {
        rows.push(row(
            who,
            x_tenant,
            Rpc::RecordSelfService,
            MissingArticle,
            expected,
        ));
    }
    // Self-service solving a ticket: customer systems and admins, in the acting
    // tenant (the article's): a ticket of another tenant is not there, even for a
    // caller covering both; the role is refused before anything is read.
    for (who, x_tenant, target, expected) in [
        ("shop-a", None, Acme, OK),
        ("shop-a", None, Globex, NOT_FOUND),
        ("shop-a", Some("globex"), Globex, DENIED),
        ("shop-b", None, Acme, OK),
        ("shop-g", None, Globex, OK),
        ("shop-g", None, Acme, NOT_FOUND),
        ("shop-g", Some("acme"), Acme, DENIED),
        ("agent-acme", None, Acme, DENIED),
        ("agent-globex", None, Globex, DENIED),
        ("manager-acme", None, Acme, DENIED),
        ("agent-both", None, Acme, DENIED),
        ("agent-both", Some("globex"), Globex, DENIED),
        ("admin-acme", None, Acme, OK),
        ("admin-acme", None, Globex, NOT_FOUND),
        ("admin-acme", Some("globex"), Globex, DENIED),
        ("admin-all", None, Acme, INVALID),
        ("admin-all", Some("acme"), Acme, OK),
        ("admin-all", Some("globex"), Globex, OK),
        ("admin-all", Some("acme"), Globex, NOT_FOUND),
        ("shop-a", None, Missing, NOT_FOUND),
        ("agent-acme", None, Missing, DENIED),
        // An article only globex has, acting in acme: not there.
        ("shop-a", None, Cross, NOT_FOUND),
        ("admin-all", Some("acme"), Cross, NOT_FOUND),
        ("shop-a", None, MissingArticle, NOT_FOUND),
    ] {
        rows.push(row(
            who,
            x_tenant,
            Rpc::RecordSelfServiceOnTicket,
            target,
            expected,
        ));
    }

    // Analytics' search: every role, in the one tenant the call acts in, as the
    // routing lists. Suggested answers too: only the acting tenant's articles, never
    // one of the other tenant's (not even for its words, for a caller covering both).
    for rpc in [Rpc::ListTickets, Rpc::SuggestAnswers] {
        for (who, x_tenant, target, expected) in [
            ("shop-a", None, Acme, OK),
            ("shop-a", Some("acme"), Acme, OK),
            ("shop-a", Some("globex"), Globex, DENIED),
            ("shop-b", None, Acme, OK),
            ("shop-g", None, Globex, OK),
            ("shop-g", Some("acme"), Acme, DENIED),
            ("agent-acme", None, Acme, OK),
            ("agent-globex", None, Globex, OK),
            ("agent-acme", Some("globex"), Globex, DENIED),
            ("manager-acme", None, Acme, OK),
            ("manager-acme", Some("globex"), Globex, DENIED),
            ("agent-both", None, Acme, INVALID),
            ("agent-both", Some("acme"), Acme, OK),
            ("agent-both", Some("globex"), Globex, OK),
            ("admin-acme", None, Acme, OK),
            ("admin-acme", Some("globex"), Globex, DENIED),
            ("admin-all", None, Acme, INVALID),
            ("admin-all", Some("ACME"), Acme, INVALID),
            ("admin-all", Some("acme"), Acme, OK),
            ("admin-all", Some("globex"), Globex, OK),
            // Filtered on another tenant's customer: nothing, for a caller covering
            // both too (the search reads the acting tenant only).
            ("shop-a", None, Cross, OK),
            ("agent-both", Some("acme"), Cross, OK),
            ("admin-all", Some("acme"), Cross, OK),
        ] {
            rows.push(row(who, x_tenant, rpc, target, expected));
        }
    }
    // Filtering on internal data (assignee, SLA standing): staff only; a customer
    // system is refused whatever the tenant.
    for rpc in [Rpc::ListTicketsByAssignee, Rpc::ListTicketsBySla] {
        for (who, x_tenant, target, expected) in [
            ("shop-a", None, Acme, DENIED),
            ("shop-a", Some("acme"), Acme, DENIED),
            ("shop-a", Some("globex"), Globex, DENIED),
            ("shop-g", None, Globex, DENIED),
            ("agent-acme", None, Acme, OK),
            ("agent-globex", None, Globex, OK),
            ("manager-acme", None, Acme, OK),
            ("agent-both", None, Acme, INVALID),
            ("agent-both", Some("globex"), Globex, OK),
            ("admin-all", Some("acme"), Acme, OK),
        ] {
            rows.push(row(who, x_tenant, rpc, target, expected));
        }
    }
    // Analytics' figures: managers and admins, in the one tenant the call acts in;
    // the role is refused before the missing x-tenant is noticed. The articles'
    // deflection counts are figures too.
    for rpc in [Rpc::GetMetrics, Rpc::GetCustomerThirds, Rpc::ListArticles] {
        for (who, x_tenant, target, expected) in [
            ("shop-a", None, Acme, DENIED),
            ("shop-g", None, Globex, DENIED),
            ("agent-acme", None, Acme, DENIED),
            ("agent-globex", None, Globex, DENIED),
            ("agent-both", None, Acme, DENIED),
            ("agent-both", Some("acme"), Acme, DENIED),
            ("manager-acme", None, Acme, OK),
            ("manager-acme", Some("acme"), Acme, OK),
            ("manager-acme", Some("globex"), Globex, DENIED),
            ("admin-acme", None, Acme, OK),
            ("admin-acme", Some("globex"), Globex, DENIED),
            ("admin-all", None, Acme, INVALID),
            ("admin-all", Some("ACME"), Acme, INVALID),
            ("admin-all", Some("acme"), Acme, OK),
            ("admin-all", Some("globex"), Globex, OK),
        ] {
            rows.push(row(who, x_tenant, rpc, target, expected));
        }
    }
    // Filtered on a product area only the other tenant's article has: nothing, for a
    // caller covering both too.
    for (who, x_tenant) in [("manager-acme", None), ("admin-all", Some("acme"))] {
        rows.push(row(who, x_tenant, Rpc::ListArticles, Cross, OK));
    }
    // The read models hold every tenant: seeing where they stand and rebuilding
    // them take an admin whose token covers all tenants (whatever x-tenant says).
    for rpc in [Rpc::GetProjectionStatus, Rpc::RebuildReadModels] {
        for (who, x_tenant, expected) in [
            ("shop-a", None, DENIED),
            ("agent-acme", None, DENIED),
            ("agent-both", Some("acme"), DENIED),
            ("manager-acme", None, DENIED),
            ("admin-acme", None, DENIED),
            ("admin-acme", Some("acme"), DENIED),
            ("admin-all", None, OK),
            ("admin-all", Some("globex"), OK),
        ] {
            rows.push(row(who, x_tenant, rpc, Acme, expected));
        }
    }
    rows
}

/// A tenant's standing fixtures and the callers that make fresh ones.
#[derive(Debug)]
struct Tenant {
    name: &'static str,
    shop: Caller,
    agent: Caller,
    /// A manager of this tenant (sets up agents).
    manager: Caller,
    /// An admin of this tenant (puts macros).
    admin: Caller,
    /// A macro only this tenant has (besides [`ACK`], which every tenant has): a
    /// UUID, so a NOT_FOUND naming it reads as one naming a name nobody has.
    only_macro: String,
    /// Every macro name put (or that a row may put) in this tenant: the most its
    /// book may list.
    macros: Vec<String>,
    /// An article only this tenant has (besides [`ARTICLE`], which every tenant
    /// has, each its own): a UUID slug, so a NOT_FOUND naming it reads as one naming
    /// a slug nobody has. Its product area and its word are this tenant's only.
    only_article: String,
    /// The word only [`Tenant::only_article`] has, of all the table's articles.
    only_word: &'static str,
    /// Every article slug published (or that a row may publish) in this tenant: the
    /// most it may suggest or list.
    articles: Vec<String>,
    /// An agent registered for this tenant (a UUID, as many identity providers'
    /// subjects are).
    routing_agent: String,
    email: String,
    customer: String,
    ticket: String,
}

/// The fixtures of the table: acme's and globex's, and a counter for fresh ones.
#[derive(Debug)]
struct Fixtures<'c> {
    cluster: &'c Cluster,
    acme: Tenant,
    globex: Tenant,
    fresh: usize,
}

impl<'c> Fixtures<'c> {
    /// A customer with a ticket (opened by the tenant's shop) and an internal note on
    /// it, the macros [`ACK`] and one only the tenant has, and the articles
    /// [`ARTICLE`] and one only the tenant has, in `acme` and in `globex`.
    async fn set_up(cluster: &'c Cluster) -> Fixtures<'c> {
        let mut tenants = Vec::new();
        for (name, shop, only_word) in [
            ("acme", "setup-shop-a", "zeppelin"),
            ("globex", "setup-shop-g", "trampoline"),
        ] {
            let shop = caller(shop, Role::CustomerSystem, &[name]);
            let agent = caller(&format!("setup-agent-{name}"), Role::Agent, &[name]);
            let email = format!("main@{name}.example");
            let opened = cluster
                .intake_as(&shop, None)
                .await
                .unwrap()
                .submit_ticket(submit_request(&format!("main-{name}"), &email))
                .await
                .unwrap()
                .into_inner();
            cluster
                .conversation_as(&agent, None)
                .await
                .unwrap()
                .add_note(note(&opened.ticket_id))
                .await
                .unwrap();
            let manager = caller(&format!("setup-manager-{name}"), Role::Manager, &[name]);
            let routing_agent = Uuid::new_v4().to_string();
            register_agent(cluster, &manager, &routing_agent, name).await;
            let admin = caller(&format!("setup-admin-{name}"), Role::Admin, &[name]);
            let only_macro = random_id();
            put_macro(cluster, &admin, ACK, ACK_BODY).await;
            put_macro(
                cluster,
                &admin,
                &only_macro,
                &format!("Only {name} says this."),
            )
            .await;
            let only_article = random_id();
            publish_article(cluster, &admin, table_article(name)).await;
            publish_article(
                cluster,
                &admin,
                v1::Article {
                    slug: only_article.clone(),
                    product_area: format!("{name}-only"),
                    title: format!("The {only_word}"),
                    body: format!("Only {name} has an article about the {only_word}."),
                    ..Default::default()
                },
            )
            .await;
            tenants.push(Tenant {
                name,
                shop,
                agent,
                manager,
                admin,
                only_macro: only_macro.clone(),
                macros: vec![ACK.to_string(), only_macro],
                only_article: only_article.clone(),
                only_word,
                articles: vec![ARTICLE.to_string(), only_article],
                routing_agent,
                email,
                customer: opened.customer_id,
                ticket: opened.ticket_id,
            });
        }
        let globex = tenants.pop().unwrap();
        let acme = tenants.pop().unwrap();
        Fixtures {
            cluster,
            acme,
            globex,
            fresh: 0,
        }
    }

    fn tenant(&self, target: Target) -> &Tenant {
        match target {
            Target::Globex => &self.globex,
            _ => &self.acme,
        }
    }

    fn tenant_mut(&mut self, target: Target) -> &mut Tenant {
        match target {
            Target::Globex => &mut self.globex,
            _ => &mut self.acme,
        }
    }

    /// Puts macro `name` in `target`'s tenant, as its admin.
    async fn fresh_macro(&mut self, target: Target, name: &str) {
        self.tenant_mut(target).macros.push(name.to_string());
        let tenant = self.tenant(target);
        put_macro(self.cluster, &tenant.admin, name, "Fresh: we are on it.").await;
    }

    /// Publishes a new article (a UUID slug) in `target`'s tenant, as its admin:
    /// its slug.
    async fn fresh_article(&mut self, target: Target) -> String {
        let slug = random_id();
        self.tenant_mut(target).articles.push(slug.clone());
        let tenant = self.tenant(target);
        publish_article(
            self.cluster,
            &tenant.admin,
            v1::Article {
                slug: slug.clone(),
                product_area: "router-x200".into(),
                title: "Fresh article".into(),
                body: "Fresh: press the reset button.".into(),
                ..Default::default()
            },
        )
        .await;
        slug
    }

    /// The id of `target`'s tenant's article `slug`.
    fn article_id(&self, target: Target, slug: &str) -> String {
        let tenant = TenantId::parse("tenant", self.tenant(target).name).unwrap();
        ids::article_id(&tenant, slug).to_string()
    }

    /// The ids of every article `target`'s tenant may have: the most it may suggest
    /// or list.
    fn article_ids(&self, target: Target) -> Vec<String> {
        self.tenant(target)
            .articles
            .iter()
            .map(|slug| self.article_id(target, slug))
            .collect()
    }

    fn next(&mut self) -> usize {
        self.fresh += 1;
        self.fresh
    }

    /// A new customer with a new ticket in `target`'s tenant: (customer, ticket).
    async fn fresh_customer(&mut self, target: Target) -> (String, String) {
        let n = self.next();
        let tenant = self.tenant(target);
        let opened = self
            .cluster
            .intake_as(&tenant.shop, None)
            .await
            .unwrap()
            .submit_ticket(submit_request(
                &format!("fresh-{n}"),
                &format!("fresh-{n}@{}.example", tenant.name),
            ))
            .await
            .unwrap()
            .into_inner();
        (opened.customer_id, opened.ticket_id)
    }

    /// A new ticket of `target`'s tenant, solved.
    async fn fresh_solved_ticket(&mut self, target: Target) -> String {
        let (_, ticket) = self.fresh_customer(target).await;
        let agent = &self.tenant(target).agent;
        self.cluster
            .conversation_as(agent, None)
            .await
            .unwrap()
            .solve(solve(&ticket))
            .await
            .unwrap();
        ticket
    }

    /// A new ticket of `target`'s tenant whose decline the tenant's agent proposed
    /// (so a manager deciding it is not the proposer).
    async fn fresh_declined_ticket(&mut self, target: Target) -> String {
        let (_, ticket) = self.fresh_customer(target).await;
        let agent = &self.tenant(target).agent;
        self.cluster
            .conversation_as(agent, None)
            .await
            .unwrap()
            .propose_decline(propose_decline(&ticket))
            .await
            .unwrap();
        ticket
    }

    /// A new ticket of `target`'s tenant, opened by its shop.
    async fn open(&self, target: Target, key: &str, email: &str) -> v1::SubmitTicketResponse {
        self.cluster
            .intake_as(&self.tenant(target).shop, None)
            .await
            .unwrap()
            .submit_ticket(submit_request(key, email))
            .await
            .unwrap()
            .into_inner()
    }

    /// A ticket to merge and one to merge it into: two new tickets of one new
    /// customer of `target`'s tenant (two contacts from one email); for `Cross` a new
    /// acme ticket and a new globex ticket, for `Missing` a new acme ticket and an id
    /// nothing has. (source, target, the source's status.)
    async fn duplicates(&mut self, target: Target) -> (String, String, i32) {
        let n = self.next();
        let (from, into) = match target {
            Target::Cross => (Target::Acme, Target::Globex),
            Target::Acme | Target::Globex => (target, target),
            Target::Missing
            | Target::MissingAgent
            | Target::MissingMacro
            | Target::MissingArticle => (Target::Acme, Target::Acme),
        };
        let email = |t: Target| format!("duplicate-{n}@{}.example", self.tenant(t).name);
        let source = self
            .open(from, &format!("duplicate-{n}-a"), &email(from))
            .await;
        if matches!(
            target,
            Target::Missing | Target::MissingAgent | Target::MissingMacro | Target::MissingArticle
        ) {
            return (source.ticket_id, random_id(), source.status);
        }
        let other = self
            .open(into, &format!("duplicate-{n}-b"), &email(into))
            .await;
        if from == into {
            assert_eq!(
                source.customer_id, other.customer_id,
                "two contacts from one email: one customer"
            );
        }
        (source.ticket_id, other.ticket_id, source.status)
    }

    /// Two new tickets of one new customer of `target`'s tenant, the first merged
    /// into the second by the tenant's agent: (source, target, the source's status).
    async fn merged_duplicates(&mut self, target: Target) -> (String, String, i32) {
        let (source, into, status) = self.duplicates(target).await;
        self.cluster
            .conversation_as(&self.tenant(target).agent, None)
            .await
            .unwrap()
            .merge_ticket(v1::MergeTicketRequest {
                source_ticket_id: source.clone(),
                target_ticket_id: into.clone(),
                reason: "set up an unmerge".into(),
            })
            .await
            .unwrap();
        (source, into, status)
    }

    /// Two records to link (or unlink): (customer_id, other_customer_id).
    async fn pair(&mut self, target: Target) -> (String, String) {
        match target {
            Target::Acme | Target::Globex => (
                self.fresh_customer(target).await.0,
                self.fresh_customer(target).await.0,
            ),
            Target::Cross => (
                self.fresh_customer(Target::Acme).await.0,
                self.fresh_customer(Target::Globex).await.0,
            ),
            Target::Missing
            | Target::MissingAgent
            | Target::MissingMacro
            | Target::MissingArticle => (self.fresh_customer(Target::Acme).await.0, random_id()),
        }
    }

    /// Two records of `target`'s tenant, the second linked into the first.
    async fn linked_pair(&mut self, target: Target) -> (String, String) {
        let (into, other) = self.pair(target).await;
        if matches!(target, Target::Acme | Target::Globex) {
            let agent = &self.tenant(target).agent;
            self.cluster
                .intake_as(agent, None)
                .await
                .unwrap()
                .link_customers(v1::LinkCustomersRequest {
                    customer_id: into.clone(),
                    other_customer_id: other.clone(),
                })
                .await
                .unwrap();
        }
        (into, other)
    }

    /// The request of `row` (row `index`), with a fresh target where the call changes
    /// state.
    async fn prepare(&mut self, index: usize, row: &Row) -> Prepared {
        let target = row.target;
        let missing = target == Target::Missing;
        let main_ticket = if missing {
            random_id()
        } else {
            self.tenant(target).ticket.clone()
        };
        match row.rpc {
            Rpc::SubmitNew => {
                let tenant = self.tenant(target).name;
                let key = format!("row-{index}");
                let email = format!("row-{index}@{tenant}.example");
                let expected = ids::ticket_id(
                    &TenantId::parse("tenant", tenant).unwrap(),
                    row.who,
                    frontline_domain::Channel::Email,
                    &key,
                );
                Prepared::Submit(submit_request(&key, &email), expected.to_string())
            }
            Rpc::SubmitContinue => {
                let tenant = self.tenant(target);
                let mut request = submit_request(&format!("row-{index}"), &tenant.email);
                request.continue_ticket_id = main_ticket.clone();
                Prepared::Submit(request, main_ticket)
            }
            Rpc::GetCustomerById => {
                let id = if missing {
                    random_id()
                } else {
                    self.tenant(target).customer.clone()
                };
                Prepared::GetCustomer(
                    v1::GetCustomerRequest {
                        customer_id: id.clone(),
                        identity: None,
                    },
                    id,
                )
            }
            Rpc::GetCustomerByIdentity => {
                let tenant = self.tenant(target);
                let email = if missing {
                    "nobody@nowhere.example".to_string()
                } else {
                    tenant.email.clone()
                };
                Prepared::GetCustomer(
                    v1::GetCustomerRequest {
                        customer_id: String::new(),
                        identity: Some(v1::CustomerIdentity {
                            email,
                            ..Default::default()
                        }),
                    },
                    tenant.customer.clone(),
                )
            }
            Rpc::LinkCustomers => {
                let (customer_id, other_customer_id) = self.pair(target).await;
                Prepared::Link(v1::LinkCustomersRequest {
                    customer_id,
                    other_customer_id,
                })
            }
            Rpc::UnlinkCustomers => {
                let (customer_id, other_customer_id) = self.linked_pair(target).await;
                Prepared::Unlink(v1::UnlinkCustomersRequest {
                    customer_id,
                    other_customer_id,
                })
            }
            Rpc::Reply => Prepared::Reply(v1::ReplyRequest {
                ticket_id: main_ticket,
                body: "We are on it.".into(),
                awaiting_customer: false,
                expected_version: None,
                idempotency_key: String::new(),
            }),
            Rpc::AddNote => Prepared::AddNote(note(&main_ticket)),
            Rpc::Solve => {
                let ticket = if missing {
                    main_ticket
                } else {
                    self.fresh_customer(target).await.1
                };
                Prepared::Solve(solve(&ticket))
            }
            Rpc::Reopen => {
                let ticket = if missing {
                    main_ticket
                } else {
                    self.fresh_solved_ticket(target).await
                };
                Prepared::Reopen(v1::ReopenRequest {
                    ticket_id: ticket,
                    reason: "the customer wrote again".into(),
                    expected_version: None,
                })
            }
            Rpc::ProposeDecline => {
                let ticket = if missing {
                    main_ticket
                } else {
                    self.fresh_customer(target).await.1
                };
                Prepared::ProposeDecline(propose_decline(&ticket))
            }
            Rpc::ApproveDecline | Rpc::RejectDecline => {
                let ticket_id = if missing {
                    main_ticket
                } else {
                    self.fresh_declined_ticket(target).await
                };
                if row.rpc == Rpc::ApproveDecline {
                    Prepared::ApproveDecline(v1::ApproveDeclineRequest {
                        ticket_id,
                        note: format!("row {index}"),
                        expected_version: None,
                    })
                } else {
                    Prepared::RejectDecline(v1::RejectDeclineRequest {
                        ticket_id,
                        note: "offer a replacement instead".into(),
                        expected_version: None,
                    })
                }
            }
            Rpc::Close => {
                let ticket_id = if missing {
                    main_ticket
                } else {
                    self.fresh_solved_ticket(target).await
                };
                Prepared::Close(v1::CloseRequest {
                    ticket_id,
                    expected_version: None,
                })
            }
            Rpc::RateSatisfaction => {
                let ticket_id = if missing {
                    main_ticket
                } else {
                    self.fresh_solved_ticket(target).await
                };
                Prepared::Rate(v1::RateSatisfactionRequest {
                    ticket_id,
                    score: 4,
                    comment: format!("row {index}: quick and friendly"),
                    expected_version: None,
                })
            }
            Rpc::MergeTicket => {
                let (source_ticket_id, target_ticket_id, status) = self.duplicates(target).await;
                Prepared::Merge(
                    v1::MergeTicketRequest {
                        source_ticket_id,
                        target_ticket_id,
                        reason: format!("row {index}: the same router"),
                    },
                    status,
                )
            }
            Rpc::UnmergeTicket => {
                let (source_ticket_id, into, status) = if missing {
                    (main_ticket, random_id(), i32::from(v1::TicketStatus::New))
                } else {
                    self.merged_duplicates(target).await
                };
                Prepared::Unmerge(
                    v1::UnmergeTicketRequest {
                        source_ticket_id,
                        reason: format!("row {index}: not the same router after all"),
                    },
                    into,
                    status,
                )
            }
            // Put in the acting tenant (the target's), under a name of its own.
            Rpc::PutMacro => {
                let name = format!("row-{index}");
                self.tenant_mut(target).macros.push(name.clone());
                Prepared::PutMacro(v1::PutMacroRequest {
                    r#macro: Some(v1::Macro {
                        name,
                        body: format!("Row {index}: please send us a photo of the router."),
                        status_change: v1::TicketStatus::Pending.into(),
                    }),
                })
            }
            // A new macro of the target's tenant (globex's for `Cross`), to remove
            // acting in the tenant the row names; for `Missing` a name nobody has.
            Rpc::RemoveMacro => {
                let name = random_id();
                match target {
                    Target::Acme | Target::Globex => self.fresh_macro(target, &name).await,
                    Target::Cross => self.fresh_macro(Target::Globex, &name).await,
                    Target::Missing
                    | Target::MissingAgent
                    | Target::MissingMacro
                    | Target::MissingArticle => {}
                }
                Prepared::RemoveMacro(v1::RemoveMacroRequest { name })
            }
            Rpc::ListMacros => {
                let tenant = self.tenant(target);
                Prepared::ListMacros {
                    listed: vec![ACK.to_string(), tenant.only_macro.clone()],
                    allowed: tenant.macros.clone(),
                }
            }
            // A product area of its own, which no ticket of the table has, so the
            // rule never answers one of them; the macro is the acting tenant's
            // [`ACK`] (the one only globex has for `Cross`, nobody's for `Missing`).
            Rpc::PutAnswerRule => {
                let macro_name = match target {
                    Target::Acme | Target::Globex => ACK.to_string(),
                    Target::Cross => self.globex.only_macro.clone(),
                    Target::Missing
                    | Target::MissingAgent
                    | Target::MissingMacro
                    | Target::MissingArticle => random_id(),
                };
                Prepared::PutAnswerRule(v1::PutAnswerRuleRequest {
                    rule: Some(v1::AnswerRule {
                        product_area: format!("{AGENT_AREA}-rules-{index}"),
                        macro_name,
                    }),
                })
            }
            // Refused by the ticket where the role is allowed: it was never answered
            // automatically, so nothing changes and the standing ticket serves.
            Rpc::RequestHuman => Prepared::RequestHuman(v1::RequestHumanRequest {
                ticket_id: main_ticket,
            }),
            Rpc::ApplyMacro => {
                let name = match target {
                    Target::Cross => self.globex.only_macro.clone(),
                    Target::MissingMacro => random_id(),
                    _ => ACK.to_string(),
                };
                Prepared::ApplyMacro(v1::ApplyMacroRequest {
                    ticket_id: main_ticket,
                    name,
                    idempotency_key: format!("row-{index}"),
                })
            }
            Rpc::GetTicket => Prepared::GetTicket(v1::GetTicketRequest {
                ticket_id: main_ticket,
                as_of_version: None,
                as_of_time: None,
            }),
            Rpc::GetTicketHistory => Prepared::History(v1::GetTicketHistoryRequest {
                ticket_id: main_ticket,
            }),
            Rpc::WatchTicket => Prepared::Watch(v1::WatchTicketRequest {
                ticket_id: main_ticket,
                from_version: 0,
            }),
            Rpc::ForgetCustomer => {
                let customer_id = if missing {
                    random_id()
                } else {
                    self.fresh_customer(target).await.0
                };
                Prepared::Forget(v1::ForgetCustomerRequest {
                    customer_id,
                    reason: format!("row {index}"),
                })
            }
            Rpc::ExportCustomerData => {
                let customer_id = if missing {
                    random_id()
                } else {
                    self.tenant(target).customer.clone()
                };
                Prepared::Export(v1::ExportCustomerDataRequest { customer_id })
            }
            Rpc::RecordNps => {
                let customer_id = if missing {
                    random_id()
                } else {
                    self.fresh_customer(target).await.0
                };
                // Every score in turn, so every category is answered.
                let score = u32::try_from(index % 11).unwrap();
                Prepared::Nps(v1::RecordNpsRequest {
                    customer_id,
                    score,
                    comment: format!("row {index}"),
                })
            }
            Rpc::RecordFeedback => {
                let customer_id = match target {
                    Target::Cross => self.globex.customer.clone(),
                    Target::Missing | Target::MissingAgent | Target::MissingMacro => random_id(),
                    _ => self.tenant(target).customer.clone(),
                };
                let key = format!("row-{index}");
                let expected = ids::feedback_id(
                    &TenantId::parse("tenant", self.tenant(target).name).unwrap(),
                    row.who,
                    &key,
                );
                Prepared::Feedback(
                    v1::RecordFeedbackRequest {
                        idempotency_key: key,
                        product_area: "mobile-app".into(),
                        body: "The router's app forgets my settings.".into(),
                        customer_id,
                        ticket_id: String::new(),
                    },
                    expected.to_string(),
                )
            }
            // Of the acting tenant's [`ARTICLE`] (a slug nobody has for
            // `MissingArticle`), naming a customer as RecordFeedback does.
            Rpc::RecordSelfService => {
                let customer_id = match target {
                    Target::Cross => self.globex.customer.clone(),
                    Target::Missing | Target::MissingAgent | Target::MissingMacro => random_id(),
                    _ => self.tenant(target).customer.clone(),
                };
                let slug = match target {
                    Target::MissingArticle => random_id(),
                    _ => ARTICLE.to_string(),
                };
                let key = format!("row-{index}");
                let record = ids::self_service_id(
                    &TenantId::parse("tenant", self.tenant(target).name).unwrap(),
                    row.who,
                    &key,
                );
                Prepared::SelfService(
                    v1::RecordSelfServiceRequest {
                        idempotency_key: key,
                        slug: slug.clone(),
                        customer_id,
                        ticket_id: String::new(),
                    },
                    record.to_string(),
                    self.article_id(target, &slug),
                )
            }
            // A new ticket nobody worked on, solved by the acting tenant's
            // [`ARTICLE`] (only globex's for `Cross`, nobody's for `MissingArticle`).
            Rpc::RecordSelfServiceOnTicket => {
                let ticket_id = if missing {
                    main_ticket
                } else {
                    self.fresh_customer(target).await.1
                };
                let slug = match target {
                    Target::Cross => self.globex.only_article.clone(),
                    Target::MissingArticle => random_id(),
                    _ => ARTICLE.to_string(),
                };
                Prepared::SelfService(
                    v1::RecordSelfServiceRequest {
                        idempotency_key: String::new(),
                        slug: slug.clone(),
                        customer_id: String::new(),
                        ticket_id: ticket_id.clone(),
                    },
                    ticket_id,
                    self.article_id(target, &slug),
                )
            }
            // A new slug of the acting tenant (the target's); for `Cross`, acting in
            // acme, the slug of a new article only globex has. Either way new in the
            // acting tenant: created only if new (`expected_revision` 0).
            Rpc::PublishArticle => {
                let slug = match target {
                    Target::Cross => self.fresh_article(Target::Globex).await,
                    _ => format!("row-{index}"),
                };
                self.tenant_mut(target).articles.push(slug.clone());
                Prepared::PublishArticle(
                    v1::PublishArticleRequest {
                        article: Some(v1::Article {
                            slug: slug.clone(),
                            product_area: "router-x200".into(),
                            title: format!("Row {index}"),
                            body: format!("Row {index}: send us a photo of the label."),
                            ..Default::default()
                        }),
                        expected_revision: Some(0),
                    },
                    self.article_id(target, &slug),
                )
            }
            // A new article of the target's tenant (globex's for `Cross`, acting in
            // acme); for `Missing` a slug nobody has.
            Rpc::RetireArticle => {
                let slug = match target {
                    Target::Acme | Target::Globex => self.fresh_article(target).await,
                    Target::Cross => self.fresh_article(Target::Globex).await,
                    _ => random_id(),
                };
                Prepared::RetireArticle(
                    v1::RetireArticleRequest {
                        slug: slug.clone(),
                        expected_revision: None,
                    },
                    self.article_id(target, &slug),
                )
            }
            Rpc::GetArticle => {
                let slug = match target {
                    Target::Acme | Target::Globex => ARTICLE.to_string(),
                    Target::Cross => self.globex.only_article.clone(),
                    _ => random_id(),
                };
                Prepared::GetArticle(
                    v1::GetArticleRequest { slug: slug.clone() },
                    self.article_id(target, &slug),
                    table_article(self.tenant(target).name).body,
                )
            }
            Rpc::RegisterAgent => {
                Prepared::Routing(RoutingCall::Register(v1::RegisterAgentRequest {
                    agent_id: random_id(),
                    profile: Some(agent_profile(self.tenant(target).name)),
                }))
            }
            Rpc::UpdateAgent | Rpc::SetAgentStatus | Rpc::DeactivateAgent => {
                let agent_id = if missing {
                    random_id()
                } else {
                    let tenant = self.tenant(target);
                    let id = random_id();
                    register_agent(self.cluster, &tenant.manager, &id, tenant.name).await;
                    id
                };
                let tenant = self.tenant(target).name;
                Prepared::Routing(match row.rpc {
                    Rpc::UpdateAgent => RoutingCall::Update(v1::UpdateAgentRequest {
                        agent_id,
                        profile: Some(v1::AgentProfile {
                            capacity: 20,
                            ..agent_profile(tenant)
                        }),
                        expected_version: None,
                    }),
                    Rpc::SetAgentStatus => RoutingCall::Status(v1::SetAgentStatusRequest {
                        agent_id,
                        status: v1::AgentStatus::Available.into(),
                    }),
                    _ => RoutingCall::Deactivate(v1::DeactivateAgentRequest { agent_id }),
                })
            }
            Rpc::GetAgent => {
                let agent_id = if missing {
                    random_id()
                } else {
                    self.tenant(target).routing_agent.clone()
                };
                Prepared::Routing(RoutingCall::Get(v1::GetAgentRequest { agent_id }))
            }
            Rpc::WatchQueue => {
                let agent_id = if missing {
                    random_id()
                } else {
                    self.tenant(target).routing_agent.clone()
                };
                Prepared::Routing(RoutingCall::Watch(v1::WatchQueueRequest { agent_id }))
            }
            Rpc::ListAgents => {
                Prepared::Routing(RoutingCall::List(self.tenant(target).routing_agent.clone()))
            }
            Rpc::AssignTicket | Rpc::TransferTicket => {
                let transfer = row.rpc == Rpc::TransferTicket;
                self.by_hand(index, target, transfer, main_ticket).await
            }
            Rpc::GetTicketRouting => {
                Prepared::Routing(RoutingCall::TicketRouting(v1::GetTicketRoutingRequest {
                    ticket_id: main_ticket,
                }))
            }
            Rpc::ListQueue => {
                Prepared::Routing(RoutingCall::Queue(self.tenant(target).ticket.clone()))
            }
            Rpc::SetCustomerTier => {
                let customer_id = if missing {
                    random_id()
                } else {
                    self.fresh_customer(target).await.0
                };
                Prepared::Routing(RoutingCall::SetTier(v1::SetCustomerTierRequest {
                    customer_id,
                    tier: v1::Tier::Standard.into(),
                    named_agent_id: String::new(),
                }))
            }
            Rpc::GetCustomerTier => {
                let customer_id = if missing {
                    random_id()
                } else {
                    self.tenant(target).customer.clone()
                };
                Prepared::Routing(RoutingCall::GetTier(v1::GetCustomerTierRequest {
                    customer_id,
                }))
            }
            // The policy is the acting tenant's (token or x-tenant), whatever the
            // target; without targets it runs no clocks, so no later row meets a
            // timer.
            Rpc::PutSlaPolicy => {
                Prepared::Routing(RoutingCall::PutPolicy(v1::PutSlaPolicyRequest {
                    policy: Some(table_policy()),
                }))
            }
            Rpc::GetSlaPolicy => Prepared::Routing(RoutingCall::GetPolicy),
            Rpc::LogTime => Prepared::Routing(RoutingCall::LogTime(v1::LogTimeRequest {
                ticket_id: main_ticket,
                minutes: LOGGED_MINUTES,
            })),
            // A search of the acting tenant (the target's; acme for `Cross`): its
            // ticket is listed when nothing filters it out, the other tenant's never.
            Rpc::ListTickets | Rpc::ListTicketsByAssignee | Rpc::ListTicketsBySla => {
                let (own, other) = match target {
                    Target::Globex => (&self.globex, &self.acme),
                    _ => (&self.acme, &self.globex),
                };
                let mut request = v1::ListTicketsRequest {
                    page_size: LIST_PAGE,
                    ..Default::default()
                };
                let mut listed = None;
                match row.rpc {
                    Rpc::ListTicketsByAssignee => request.assignee_id = own.routing_agent.clone(),
                    Rpc::ListTicketsBySla => request.sla = v1::SlaStanding::Breached.into(),
                    _ if target == Target::Cross => request.customer_id = other.customer.clone(),
                    _ => listed = Some(own.ticket.clone()),
                }
                Prepared::Analytics(AnalyticsCall::List {
                    request: Box::new(request),
                    listed,
                    never: other.ticket.clone(),
                })
            }
            Rpc::GetMetrics => Prepared::Analytics(AnalyticsCall::Metrics),
            Rpc::GetCustomerThirds => Prepared::Analytics(AnalyticsCall::Thirds),
            Rpc::GetProjectionStatus => Prepared::Analytics(AnalyticsCall::Status),
            Rpc::RebuildReadModels => Prepared::Analytics(AnalyticsCall::Rebuild),
            // The acting tenant's (acme for `Cross`): its [`ARTICLE`] is suggested for
            // its words, any answer is one of its articles; for `Cross` the words
            // are only globex's article's, and nothing is suggested.
            Rpc::SuggestAnswers => {
                let (request, suggested, allowed) = if target == Target::Cross {
                    let word = self.globex.only_word;
                    (suggest(&format!("The {word}"), word), None, Vec::new())
                } else {
                    (
                        suggest("Orange lights", "The lights of my router blink orange."),
                        Some(self.article_id(target, ARTICLE)),
                        self.article_ids(target),
                    )
                };
                Prepared::Analytics(AnalyticsCall::Suggest {
                    request,
                    suggested,
                    allowed,
                })
            }
            // The acting tenant's articles, retired ones too: its two standing ones
            // among them, none of the other tenant's; for `Cross` filtered on the
            // product area only globex's article has, so nothing is listed.
            Rpc::ListArticles => {
                let (request, listed, allowed) = if target == Target::Cross {
                    let request = v1::ListArticlesRequest {
                        product_area: format!("{}-only", self.globex.name),
                        include_retired: true,
                    };
                    (request, Vec::new(), Vec::new())
                } else {
                    let tenant = self.tenant(target);
                    let request = v1::ListArticlesRequest {
                        product_area: String::new(),
                        include_retired: true,
                    };
                    let listed = [ARTICLE, tenant.only_article.as_str()]
                        .map(|slug| self.article_id(target, slug))
                        .to_vec();
                    (request, listed, self.article_ids(target))
                };
                Prepared::Analytics(AnalyticsCall::Articles {
                    request,
                    listed,
                    allowed,
                })
            }
        }
    }

    /// An AssignTicket (or TransferTicket) request of row `index`: a new ticket of
    /// `target`'s tenant, queued (or given by hand to a new agent of its tenant
    /// first, to transfer from), for the tenant's standing agent (another tenant's
    /// for `Cross`, nobody's for `MissingAgent`); a nonexistent ticket for `Missing`.
    async fn by_hand(
        &mut self,
        index: usize,
        target: Target,
        transfer: bool,
        missing_ticket: String,
    ) -> Prepared {
        let ticket_id = if target == Target::Missing {
            missing_ticket
        } else {
            self.fresh_customer(target).await.1
        };
        let tenant = self.tenant(target);
        if transfer && target != Target::Missing {
            let holder = random_id();
            register_agent(self.cluster, &tenant.manager, &holder, tenant.name).await;
            assign(self.cluster, &tenant.manager, &ticket_id, &holder).await;
        }
        let agent_id = match target {
            Target::Cross => self.globex.routing_agent.clone(),
            Target::MissingAgent => random_id(),
            _ => tenant.routing_agent.clone(),
        };
        let reason = format!("row {index}");
        Prepared::Routing(if transfer {
            RoutingCall::Transfer(v1::TransferTicketRequest {
                ticket_id,
                agent_id,
                reason,
            })
        } else {
            RoutingCall::Assign(v1::AssignTicketRequest {
                ticket_id,
                agent_id,
                reason,
            })
        })
    }
}

/// A row's request, with what a success must show where that is worth checking.
#[derive(Debug)]
enum Prepared {
    /// The request and the ticket id it must answer with.
    Submit(v1::SubmitTicketRequest, String),
    /// The request and the customer id it must answer with.
    GetCustomer(v1::GetCustomerRequest, String),
    Link(v1::LinkCustomersRequest),
    Unlink(v1::UnlinkCustomersRequest),
    Reply(v1::ReplyRequest),
    AddNote(v1::AddNoteRequest),
    Solve(v1::SolveRequest),
    Reopen(v1::ReopenRequest),
    ProposeDecline(v1::ProposeDeclineRequest),
    ApproveDecline(v1::ApproveDeclineRequest),
    RejectDecline(v1::RejectDeclineRequest),
    Close(v1::CloseRequest),
    /// The request and the source's status before (a merge leaves it as it was).
    Merge(v1::MergeTicketRequest, i32),
    /// The request, the ticket the source is merged into, and the source's status
    /// before the merge.
    Unmerge(v1::UnmergeTicketRequest, String, i32),
    PutMacro(v1::PutMacroRequest),
    /// Removed, it must no longer be listed.
    RemoveMacro(v1::RemoveMacroRequest),
    /// The acting tenant's macros: `listed` must be among them (with [`ACK`]'s
    /// body), and each must be one of `allowed` (never another tenant's).
    ListMacros {
        listed: Vec<String>,
        allowed: Vec<String>,
    },
    /// Recorded, and then listed among the acting tenant's answer rules.
    PutAnswerRule(v1::PutAnswerRuleRequest),
    /// The ticket, open after the call.
    RequestHuman(v1::RequestHumanRequest),
    /// Its answer must be [`ACK_BODY`], recorded, the ticket open.
    ApplyMacro(v1::ApplyMacroRequest),
    GetTicket(v1::GetTicketRequest),
    History(v1::GetTicketHistoryRequest),
    /// Opened from version 0: the first update must be the opening.
    Watch(v1::WatchTicketRequest),
    Forget(v1::ForgetCustomerRequest),
    Export(v1::ExportCustomerDataRequest),
    Rate(v1::RateSatisfactionRequest),
    Nps(v1::RecordNpsRequest),
    /// The request and the feedback id it must answer with.
    Feedback(v1::RecordFeedbackRequest, String),
    /// The request, and the record id (the ticket's with a ticket) and article id
    /// it must answer with, recorded; a ticket is then solved by that article.
    SelfService(v1::RecordSelfServiceRequest, String, String),
    /// The request and the id the article must have (the acting tenant's): a new
    /// article, revision 1, live, recorded.
    PublishArticle(v1::PublishArticleRequest, String),
    /// The request and the id of the article it must answer with, retired.
    RetireArticle(v1::RetireArticleRequest, String),
    /// The request, and the id and the text the article must have (the acting
    /// tenant's, never the other tenant's article of the same slug).
    GetArticle(v1::GetArticleRequest, String, String),
    Routing(RoutingCall),
    Analytics(AnalyticsCall),
}

/// An analytics call of the table.
#[derive(Debug)]
enum AnalyticsCall {
    /// Every page of a search: every ticket listed matches its filters and is the
    /// acting tenant's; `listed` must be among them, `never` (the other tenant's)
    /// must not; a search on another tenant's customer lists nothing.
    List {
        request: Box<v1::ListTicketsRequest>,
        listed: Option<String>,
        never: String,
    },
    /// The acting tenant's metrics: their total counts exactly the tickets the
    /// same caller lists.
    Metrics,
    /// The acting tenant's customer thirds: their tickets add up to those listed.
    Thirds,
    /// The projection's standing.
    Status,
    /// A rebuild: a new generation (or the one under way).
    Rebuild,
    /// Suggestions: `suggested` must be among them, best first, and each one of
    /// `allowed` (the acting tenant's articles; none for another tenant's words).
    Suggest {
        request: v1::SuggestAnswersRequest,
        suggested: Option<String>,
        allowed: Vec<String>,
    },
    /// The acting tenant's articles: `listed` must be among them, each one of
    /// `allowed` (none for another tenant's product area), by product area then
    /// slug.
    Articles {
        request: v1::ListArticlesRequest,
        listed: Vec<String>,
        allowed: Vec<String>,
    },
}

/// The page size of the table's searches (the largest there is).
const LIST_PAGE: u32 = 500;

/// Every ticket of a search, page by page.
async fn list_all(
    analytics: &mut AnalyticsServiceClient<frontline_e2e::Authed>,
    mut request: v1::ListTicketsRequest,
) -> Result<Vec<v1::TicketRow>, Status> {
    let mut rows = Vec::new();
    loop {
        let page = analytics.list_tickets(request.clone()).await?.into_inner();
        rows.extend(page.tickets);
        if page.next_page_token.is_empty() {
            return Ok(rows);
        }
        request.page_token = page.next_page_token;
    }
}

/// Runs an analytics call as `caller`; `Ok(Some(problem))` for a wrong answer.
async fn execute_analytics(
    cluster: &Cluster,
    caller: &Caller,
    x_tenant: Option<&str>,
    call: AnalyticsCall,
) -> Result<Option<String>, Status> {
    let mut analytics = cluster.analytics_as(caller, x_tenant).await.unwrap();
    let check = |ok: bool, problem: String| (!ok).then_some(problem);
    // The acting tenant's tickets, listed by the same caller, to hold figures to.
    let listed = async |analytics: &mut AnalyticsServiceClient<frontline_e2e::Authed>| {
        let request = v1::ListTicketsRequest {
            page_size: LIST_PAGE,
            ..Default::default()
        };
        list_all(analytics, request)
            .await
            .map(|rows| rows.len() as u64)
    };
    match call {
        AnalyticsCall::List {
            request,
            listed,
            never,
        } => {
            let filter = request.clone();
            let rows = list_all(&mut analytics, *request).await?;
            let ids: Vec<&str> = rows.iter().map(|r| r.ticket_id.as_str()).collect();
            let mut problems = Vec::new();
            if let Some(ticket) = &listed {
                if !ids.contains(&ticket.as_str()) {
                    problems.push(format!("the tenant's ticket {ticket} not listed"));
                }
            }
            if ids.contains(&never.as_str()) {
                problems.push(format!("the other tenant's ticket {never} listed"));
            }
            if !filter.customer_id.is_empty() && !rows.is_empty() {
                problems.push(format!(
                    "{} tickets of another tenant's customer listed: {ids:?}",
                    rows.len()
                ));
            }
            let unmatched = rows.iter().filter(|r| {
                (!filter.assignee_id.is_empty() && r.assignee_id != filter.assignee_id)
                    || (filter.sla() == v1::SlaStanding::Breached && !r.breached)
            });
            if let Some(r) = unmatched.clone().next() {
                problems.push(format!("a ticket not matching the filter listed: {r:?}"));
            }
            if caller.actor.role == Role::CustomerSystem {
                let internal = rows.iter().find(|r| {
                    !r.assignee_id.is_empty() || r.minutes_logged > 0 || r.at_risk || r.breached
                });
                if let Some(r) = internal {
                    problems.push(format!("internal data shown to a customer system: {r:?}"));
                }
            }
            Ok((!problems.is_empty()).then(|| problems.join("; ")))
        }
        AnalyticsCall::Metrics => {
            let total = analytics
                .get_metrics(v1::GetMetricsRequest::default())
                .await?
                .into_inner()
                .total
                .unwrap_or_default();
            Ok(match listed(&mut analytics).await {
                Ok(n) => check(
                    total.tickets == n && total.tickets >= 1,
                    format!(
                        "metrics count {} tickets, the search lists {n}",
                        total.tickets
                    ),
                ),
                Err(status) => Some(format!("listing to compare: {status:?}")),
            })
        }
        AnalyticsCall::Thirds => {
            let groups = analytics
                .get_customer_thirds(v1::GetCustomerThirdsRequest::default())
                .await?
                .into_inner()
                .groups;
            let tickets: u64 = groups.iter().map(|g| g.tickets).sum();
            Ok(match listed(&mut analytics).await {
                Ok(n) => check(
                    groups.len() == 4 && tickets == n && tickets >= 1,
                    format!(
                        "{} groups with {tickets} tickets, the search lists {n}",
                        groups.len()
                    ),
                ),
                Err(status) => Some(format!("listing to compare: {status:?}")),
            })
        }
        AnalyticsCall::Status => {
            let projections = analytics
                .get_projection_status(v1::GetProjectionStatusRequest::default())
                .await?
                .into_inner()
                .projections;
            Ok(check(
                matches!(projections.first(), Some(p) if p.live
                    && p.name == format!("analytics-g{}", p.generation)
                    && p.applied_sequence > 0
                    && p.applied_sequence <= p.stream_sequence),
                format!("projections: {projections:?}"),
            ))
        }
        AnalyticsCall::Rebuild => {
            let rebuild = analytics
                .rebuild_read_models(v1::RebuildReadModelsRequest::default())
                .await?
                .into_inner();
            Ok(check(
                rebuild.generation >= 2,
                format!("rebuild: {rebuild:?}"),
            ))
        }
        AnalyticsCall::Suggest {
            request,
            suggested,
            allowed,
        } => {
            let answers = analytics
                .suggest_answers(request)
                .await?
                .into_inner()
                .answers;
            let ids: Vec<&str> = answers.iter().map(|a| a.article_id.as_str()).collect();
            let mut problems = Vec::new();
            if let Some(article) = &suggested {
                if !ids.contains(&article.as_str()) {
                    problems.push(format!("the tenant's {ARTICLE} {article} not suggested"));
                }
            }
            let foreign: Vec<&&str> = ids
                .iter()
                .filter(|id| !allowed.iter().any(|a| a == **id))
                .collect();
            if !foreign.is_empty() {
                problems.push(format!("not the tenant's, suggested: {foreign:?}"));
            }
            if !answers.windows(2).all(|w| w[0].rank >= w[1].rank) {
                problems.push(format!("not best first: {answers:?}"));
            }
            Ok((!problems.is_empty()).then(|| problems.join("; ")))
        }
        AnalyticsCall::Articles {
            request,
            listed,
            allowed,
        } => {
            let articles = analytics
                .list_articles(request)
                .await?
                .into_inner()
                .articles;
            let ids: Vec<&str> = articles.iter().map(|a| a.article_id.as_str()).collect();
            let mut problems = Vec::new();
            let missing: Vec<&String> = listed
                .iter()
                .filter(|id| !ids.contains(&id.as_str()))
                .collect();
            if !missing.is_empty() {
                problems.push(format!("the tenant's {missing:?} not listed"));
            }
            let foreign: Vec<&&str> = ids
                .iter()
                .filter(|id| !allowed.iter().any(|a| a == **id))
                .collect();
            if !foreign.is_empty() {
                problems.push(format!("not the tenant's, listed: {foreign:?}"));
            }
            let order: Vec<(&str, &str)> = articles
                .iter()
                .map(|a| (a.product_area.as_str(), a.slug.as_str()))
                .collect();
            if !order.is_sorted() {
                problems.push(format!("not by product area, then slug: {order:?}"));
            }
            Ok((!problems.is_empty()).then(|| problems.join("; ")))
        }
    }
}

/// A routing call of the table.
#[derive(Debug)]
enum RoutingCall {
    Register(v1::RegisterAgentRequest),
    Update(v1::UpdateAgentRequest),
    Status(v1::SetAgentStatusRequest),
    Deactivate(v1::DeactivateAgentRequest),
    Get(v1::GetAgentRequest),
    /// Watch an agent's queue: the stream starts (updates are live only, none is
    /// awaited).
    Watch(v1::WatchQueueRequest),
    /// List the acting tenant's agents; the answer must hold this one.
    List(String),
    Assign(v1::AssignTicketRequest),
    Transfer(v1::TransferTicketRequest),
    TicketRouting(v1::GetTicketRoutingRequest),
    /// List the acting tenant's queue; the answer must hold this ticket.
    Queue(String),
    SetTier(v1::SetCustomerTierRequest),
    GetTier(v1::GetCustomerTierRequest),
    PutPolicy(v1::PutSlaPolicyRequest),
    /// Read the acting tenant's SLA policy.
    GetPolicy,
    LogTime(v1::LogTimeRequest),
}

/// The minutes a LogTime row logs.
const LOGGED_MINUTES: u32 = 5;

/// The SLA policy the table puts: valid, but without targets (no clocks run) and
/// without time budgets (nothing is flagged).
fn table_policy() -> v1::SlaPolicy {
    v1::SlaPolicy {
        warning_percent: 75,
        escalation: v1::Escalation::Raise.into(),
        ..Default::default()
    }
}

/// The product area the table's agents handle: not the table tickets' (those of
/// `submit_request`), so routing never gives one of them a table ticket by itself.
const AGENT_AREA: &str = "billing";

/// A profile for a table agent of `tenant`.
fn agent_profile(tenant: &str) -> v1::AgentProfile {
    v1::AgentProfile {
        display_name: "Table Agent".into(),
        skills: vec![v1::Skill {
            product_area: AGENT_AREA.into(),
            level: 3,
        }],
        capacity: 1000,
        team: String::new(),
        tenants: vec![tenant.to_string()],
    }
}

/// Gives ticket `ticket_id` to agent `agent_id` by hand, as `manager`.
async fn assign(cluster: &Cluster, manager: &Caller, ticket_id: &str, agent_id: &str) {
    cluster
        .routing_as(manager, None)
        .await
        .unwrap()
        .assign_ticket(v1::AssignTicketRequest {
            ticket_id: ticket_id.to_string(),
            agent_id: agent_id.to_string(),
            reason: "set up a transfer".into(),
        })
        .await
        .unwrap();
}

/// The macro every tenant of the table has, and its body (no placeholders, so it
/// applies to any ticket).
const ACK: &str = "ack";
const ACK_BODY: &str = "We are on it.";

/// Puts macro `name` (no status change) in `admin`'s tenant.
async fn put_macro(cluster: &Cluster, admin: &Caller, name: &str, body: &str) {
    cluster
        .conversation_as(admin, None)
        .await
        .unwrap()
        .put_macro(v1::PutMacroRequest {
            r#macro: Some(v1::Macro {
                name: name.to_string(),
                body: body.to_string(),
                status_change: v1::TicketStatus::Unspecified.into(),
            }),
        })
        .await
        .unwrap();
}

/// The article every tenant of the table has, each its own (one slug, two
/// articles), and its words.
const ARTICLE: &str = "table-article";

/// `tenant`'s [`ARTICLE`]: its text names the tenant, so a read shows whose it is.
fn table_article(tenant: &str) -> v1::Article {
    v1::Article {
        slug: ARTICLE.into(),
        product_area: "router-x200".into(),
        title: "Router lights blink orange".into(),
        body: format!("When the lights of a {tenant} router blink orange, unplug it for a minute."),
        ..Default::default()
    }
}

/// Publishes `article` in `admin`'s tenant.
async fn publish_article(cluster: &Cluster, admin: &Caller, article: v1::Article) {
    cluster
        .conversation_as(admin, None)
        .await
        .unwrap()
        .publish_article(v1::PublishArticleRequest {
            article: Some(article),
            expected_revision: None,
        })
        .await
        .unwrap();
}

/// A SuggestAnswers request for `subject` and `body`, in any product area, with
/// as many answers as there may be.
fn suggest(subject: &str, body: &str) -> v1::SuggestAnswersRequest {
    v1::SuggestAnswersRequest {
        subject: subject.into(),
        body: body.into(),
        product_area: String::new(),
        limit: 20,
    }
}

/// Registers agent `id` for `tenant`, as `manager`.
async fn register_agent(cluster: &Cluster, manager: &Caller, id: &str, tenant: &str) {
    cluster
        .routing_as(manager, None)
        .await
        .unwrap()
        .register_agent(v1::RegisterAgentRequest {
            agent_id: id.to_string(),
            profile: Some(agent_profile(tenant)),
        })
        .await
        .unwrap();
}

/// `Some(problem)` unless `routing` shows ticket `ticket` with agent `agent`.
fn given(routing: Option<v1::TicketRouting>, ticket: &str, agent: &str) -> Option<String> {
    let routing = routing.unwrap_or_default();
    let ok = routing.ticket_id == ticket && routing.assignee == agent && !routing.waiting;
    (!ok).then(|| format!("routing after giving {ticket} to {agent}: {routing:?}"))
}

/// Runs a routing call as `caller`; `Ok(Some(problem))` for a wrong answer.
async fn execute_routing(
    cluster: &Cluster,
    caller: &Caller,
    x_tenant: Option<&str>,
    call: RoutingCall,
) -> Result<Option<String>, Status> {
    let mut routing = cluster.routing_as(caller, x_tenant).await.unwrap();
    let check = |ok: bool, problem: String| (!ok).then_some(problem);
    let agent = match call {
        RoutingCall::Register(r) => routing.register_agent(r).await?.into_inner().agent,
        RoutingCall::Update(r) => routing.update_agent(r).await?.into_inner().agent,
        RoutingCall::Status(r) => routing.set_agent_status(r).await?.into_inner().agent,
        RoutingCall::Deactivate(r) => routing.deactivate_agent(r).await?.into_inner().agent,
        RoutingCall::Get(r) => routing.get_agent(r).await?.into_inner().agent,
        RoutingCall::Watch(r) => {
            drop(routing.watch_queue(r).await?.into_inner());
            return Ok(None);
        }
        RoutingCall::List(expected) => {
            let agents = routing
                .list_agents(v1::ListAgentsRequest::default())
                .await?
                .into_inner()
                .agents;
            return Ok(check(
                agents.iter().any(|a| a.agent_id == expected),
                format!("{expected} not listed"),
            ));
        }
        RoutingCall::Assign(r) => {
            let (ticket, agent) = (r.ticket_id.clone(), r.agent_id.clone());
            let routing = routing.assign_ticket(r).await?.into_inner().routing;
            return Ok(given(routing, &ticket, &agent));
        }
        RoutingCall::Transfer(r) => {
            let (ticket, agent) = (r.ticket_id.clone(), r.agent_id.clone());
            let routing = routing.transfer_ticket(r).await?.into_inner().routing;
            return Ok(given(routing, &ticket, &agent));
        }
        RoutingCall::TicketRouting(r) => {
            let ticket = r.ticket_id.clone();
            let routing = routing
                .get_ticket_routing(r)
                .await?
                .into_inner()
                .routing
                .unwrap_or_default();
            return Ok(check(
                routing.ticket_id == ticket,
                format!("answered ticket {}, expected {ticket}", routing.ticket_id),
            ));
        }
        RoutingCall::Queue(expected) => {
            let tickets = routing
                .list_queue(v1::ListQueueRequest::default())
                .await?
                .into_inner()
                .tickets;
            return Ok(check(
                tickets.iter().any(|t| t.ticket_id == expected),
                format!("{expected} not queued"),
            ));
        }
        RoutingCall::SetTier(r) => {
            let customer = r.customer_id.clone();
            let tier = routing
                .set_customer_tier(r)
                .await?
                .into_inner()
                .tier
                .unwrap_or_default();
            return Ok(check(
                tier.customer_id == customer && tier.tier() == v1::Tier::Standard && !tier.default,
                format!("tier after setting standard on {customer}: {tier:?}"),
            ));
        }
        RoutingCall::GetTier(r) => {
            let customer = r.customer_id.clone();
            let tier = routing
                .get_customer_tier(r)
                .await?
                .into_inner()
                .tier
                .unwrap_or_default();
            return Ok(check(
                tier.customer_id == customer,
                format!(
                    "answered customer {}, expected {customer}",
                    tier.customer_id
                ),
            ));
        }
        RoutingCall::PutPolicy(r) => {
            let r = routing.put_sla_policy(r).await?.into_inner();
            return Ok(check(
                r.policy.is_some() && r.version >= 1,
                format!("answer after putting the policy: {r:?}"),
            ));
        }
        RoutingCall::GetPolicy => {
            // Set or not depends on the rows before; a policy has a version, none
            // has 0.
            let r = routing
                .get_sla_policy(v1::GetSlaPolicyRequest {})
                .await?
                .into_inner();
            return Ok(check(
                r.policy.is_some() == (r.version >= 1),
                format!("policy and version disagree: {r:?}"),
            ));
        }
        RoutingCall::LogTime(r) => {
            let r = routing.log_time(r).await?.into_inner();
            return Ok(check(
                r.minutes_logged >= LOGGED_MINUTES,
                format!(
                    "{} minutes logged after logging {LOGGED_MINUTES}",
                    r.minutes_logged
                ),
            ));
        }
    };
    Ok(check(agent.is_some(), "no agent in the answer".into()))
}

/// Runs a prepared call as `caller`. `Ok(Some(problem))`: it succeeded but its
/// answer is wrong.
async fn execute(
    cluster: &Cluster,
    caller: &Caller,
    x_tenant: Option<&str>,
    prepared: Prepared,
) -> Result<Option<String>, Status> {
    let check = |ok: bool, problem: String| (!ok).then_some(problem);
    let status_of = |s: i32| v1::TicketStatus::try_from(s).ok();
    match prepared {
        Prepared::Submit(request, ticket) => {
            let opening = request.continue_ticket_id.is_empty();
            let r = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .submit_ticket(request)
                .await?
                .into_inner();
            Ok(check(
                r.ticket_id == ticket && r.created == opening,
                format!(
                    "answered ticket {} (created: {}), expected {ticket} (created: {opening})",
                    r.ticket_id, r.created
                ),
            ))
        }
        Prepared::GetCustomer(request, customer) => {
            let c = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .get_customer(request)
                .await?
                .into_inner()
                .customer
                .unwrap_or_default();
            Ok(check(
                c.customer_id == customer,
                format!("answered customer {}, expected {customer}", c.customer_id),
            ))
        }
        Prepared::Link(request) => {
            let other = request.other_customer_id.clone();
            let c = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .link_customers(request)
                .await?
                .into_inner()
                .customer
                .unwrap_or_default();
            Ok(check(
                c.linked_customer_ids.contains(&other),
                format!("{other} not linked: {:?}", c.linked_customer_ids),
            ))
        }
        Prepared::Unlink(request) => {
            let other = request.other_customer_id.clone();
            let c = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .unlink_customers(request)
                .await?
                .into_inner()
                .customer
                .unwrap_or_default();
            Ok(check(
                !c.linked_customer_ids.contains(&other),
                format!("{other} still linked: {:?}", c.linked_customer_ids),
            ))
        }
        Prepared::Reply(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .reply(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(change.recorded, "reply not recorded".into()))
        }
        Prepared::AddNote(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .add_note(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(change.recorded, "note not recorded".into()))
        }
        Prepared::Solve(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .solve(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(
                status_of(change.status) == Some(v1::TicketStatus::Solved),
                format!("status after solve: {:?}", status_of(change.status)),
            ))
        }
        Prepared::Reopen(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .reopen(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(
                status_of(change.status) == Some(v1::TicketStatus::Open),
                format!("status after reopen: {:?}", status_of(change.status)),
            ))
        }
        Prepared::ProposeDecline(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .propose_decline(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(
                status_of(change.status) == Some(v1::TicketStatus::DeclineProposed),
                format!(
                    "status after proposing a decline: {:?}",
                    status_of(change.status)
                ),
            ))
        }
        Prepared::ApproveDecline(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .approve_decline(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(
                status_of(change.status) == Some(v1::TicketStatus::Solved),
                format!(
                    "status after approving the decline: {:?}",
                    status_of(change.status)
                ),
            ))
        }
        Prepared::RejectDecline(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .reject_decline(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(
                status_of(change.status) == Some(v1::TicketStatus::Open),
                format!(
                    "status after rejecting the decline: {:?}",
                    status_of(change.status)
                ),
            ))
        }
        Prepared::Close(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .close(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(
                status_of(change.status) == Some(v1::TicketStatus::Closed),
                format!("status after close: {:?}", status_of(change.status)),
            ))
        }
        Prepared::Rate(request) => {
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .rate_satisfaction(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(
                status_of(change.status) == Some(v1::TicketStatus::Solved) && change.recorded,
                format!(
                    "status after rating: {:?} (recorded: {})",
                    status_of(change.status),
                    change.recorded
                ),
            ))
        }
        Prepared::Merge(request, status) => {
            let (source, target) = (
                request.source_ticket_id.clone(),
                request.target_ticket_id.clone(),
            );
            let r = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .merge_ticket(request)
                .await?
                .into_inner();
            Ok(both_recorded(
                "merge",
                (r.source, &source, status),
                (r.target, &target),
            ))
        }
        Prepared::Unmerge(request, target, status) => {
            let source = request.source_ticket_id.clone();
            let r = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .unmerge_ticket(request)
                .await?
                .into_inner();
            Ok(both_recorded(
                "unmerge",
                (r.source, &source, status),
                (r.target, &target),
            ))
        }
        Prepared::PutMacro(request) => {
            let sent = request.r#macro.clone();
            let r = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .put_macro(request)
                .await?
                .into_inner();
            Ok(check(
                r.r#macro == sent && r.recorded,
                format!(
                    "answered {:?} (recorded: {}), expected {sent:?} (recorded: true)",
                    r.r#macro, r.recorded
                ),
            ))
        }
        Prepared::RemoveMacro(request) => {
            let name = request.name.clone();
            let mut conversation = cluster.conversation_as(caller, x_tenant).await.unwrap();
            conversation.remove_macro(request).await?;
            Ok(
                match conversation.list_macros(v1::ListMacrosRequest {}).await {
                    Ok(r) => {
                        let names: Vec<String> =
                            r.into_inner().macros.into_iter().map(|m| m.name).collect();
                        check(
                            !names.contains(&name),
                            format!("{name} still listed after removing it: {names:?}"),
                        )
                    }
                    Err(status) => Some(format!("listing after removing {name}: {status:?}")),
                },
            )
        }
        Prepared::ListMacros { listed, allowed } => {
            let macros = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .list_macros(v1::ListMacrosRequest {})
                .await?
                .into_inner()
                .macros;
            let names: Vec<&str> = macros.iter().map(|m| m.name.as_str()).collect();
            let mut problems = Vec::new();
            let missing: Vec<&String> = listed
                .iter()
                .filter(|n| !names.contains(&n.as_str()))
                .collect();
            if !missing.is_empty() {
                problems.push(format!("the tenant's {missing:?} not listed"));
            }
            let foreign: Vec<&&str> = names
                .iter()
                .filter(|n| !allowed.iter().any(|a| a == **n))
                .collect();
            if !foreign.is_empty() {
                problems.push(format!("not the tenant's, listed: {foreign:?}"));
            }
            if !names.is_sorted() {
                problems.push(format!("not by name: {names:?}"));
            }
            let ack = macros.iter().find(|m| m.name == ACK);
            if ack.is_some_and(|m| m.body != ACK_BODY) {
                problems.push(format!("{ACK} listed as {ack:?}"));
            }
            Ok((!problems.is_empty()).then(|| problems.join("; ")))
        }
        Prepared::PutAnswerRule(request) => {
            let sent = request.rule.clone().unwrap_or_default();
            let mut conversation = cluster.conversation_as(caller, x_tenant).await.unwrap();
            let r = conversation.put_answer_rule(request).await?.into_inner();
            if !r.recorded {
                return Ok(Some(format!("{sent:?} not recorded")));
            }
            Ok(
                match conversation.list_macros(v1::ListMacrosRequest {}).await {
                    Ok(r) => {
                        let rules = r.into_inner().answer_rules;
                        check(
                            rules.contains(&sent),
                            format!("{sent:?} not listed after putting it: {rules:?}"),
                        )
                    }
                    Err(status) => Some(format!("listing after putting {sent:?}: {status:?}")),
                },
            )
        }
        Prepared::RequestHuman(request) => {
            let ticket = request.ticket_id.clone();
            let change = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .request_human(request)
                .await?
                .into_inner()
                .change
                .unwrap_or_default();
            Ok(check(
                change.ticket_id == ticket
                    && status_of(change.status) == Some(v1::TicketStatus::Open),
                format!("after asking for a person: {change:?}, expected {ticket} open"),
            ))
        }
        Prepared::ApplyMacro(request) => {
            let ticket = request.ticket_id.clone();
            let r = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .apply_macro(request)
                .await?
                .into_inner();
            let change = r.change.unwrap_or_default();
            Ok(check(
                r.body == ACK_BODY
                    && change.recorded
                    && change.ticket_id == ticket
                    && status_of(change.status) == Some(v1::TicketStatus::Open),
                format!(
                    "answered {:?} with {change:?}, expected {ACK_BODY:?}, recorded, {ticket} open",
                    r.body
                ),
            ))
        }
        Prepared::GetTicket(request) => {
            let ticket = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .get_ticket(request)
                .await?
                .into_inner()
                .ticket
                .unwrap_or_default();
            let notes = ticket
                .messages
                .iter()
                .filter(|m| m.kind == i32::from(v1::MessageKind::InternalNote))
                .count();
            let staff = caller.actor.role.is_staff();
            Ok(check(
                if staff { notes > 0 } else { notes == 0 },
                format!("{notes} internal notes shown to a {}", caller.actor.role),
            ))
        }
        Prepared::History(request) => {
            let events = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .get_ticket_history(request)
                .await?
                .into_inner()
                .events;
            Ok(check(!events.is_empty(), "empty history".into()))
        }
        Prepared::Watch(request) => {
            let mut updates = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .watch_ticket(request)
                .await?
                .into_inner();
            let first =
                tokio::time::timeout(std::time::Duration::from_secs(10), updates.message()).await;
            drop(updates);
            let first = match first {
                Err(_) => return Ok(Some("no update within 10 s".into())),
                Ok(Err(status)) => return Ok(Some(format!("the stream failed: {status:?}"))),
                Ok(Ok(None)) => return Ok(Some("the stream ended without an update".into())),
                Ok(Ok(Some(update))) => update,
            };
            Ok(check(
                first.version == 1
                    && first.event_type == "frontline.v1.TicketOpened"
                    && first.messages.len() == 1,
                format!(
                    "first update: version {} {} with {} messages, expected version 1 \
                     frontline.v1.TicketOpened with the customer's first message",
                    first.version,
                    first.event_type,
                    first.messages.len()
                ),
            ))
        }
        Prepared::Routing(call) => execute_routing(cluster, caller, x_tenant, call).await,
        Prepared::Analytics(call) => execute_analytics(cluster, caller, x_tenant, call).await,
        Prepared::Forget(request) => {
            let id = request.customer_id.clone();
            let r = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .forget_customer(request)
                .await?
                .into_inner();
            Ok(check(
                r.forgotten_customer_ids == [id.clone()] && r.forgotten_at.is_some(),
                format!("forgot {:?}, expected {id}", r.forgotten_customer_ids),
            ))
        }
        Prepared::Export(request) => {
            let id = request.customer_id.clone();
            let r = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .export_customer_data(request)
                .await?
                .into_inner();
            let customer = r.customer.unwrap_or_default();
            Ok(check(
                customer.customer_id == id
                    && !customer.identities.is_empty()
                    && !r.tickets.is_empty(),
                format!(
                    "exported {} with {} tickets",
                    customer.customer_id,
                    r.tickets.len()
                ),
            ))
        }
        Prepared::Nps(request) => {
            let (id, score) = (request.customer_id.clone(), request.score);
            let r = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .record_nps(request)
                .await?
                .into_inner();
            let category = match score {
                9.. => v1::NpsCategory::Promoter,
                7 | 8 => v1::NpsCategory::Passive,
                _ => v1::NpsCategory::Detractor,
            };
            Ok(check(
                r.customer_id == id && r.category() == category,
                format!(
                    "answered customer {} ({:?}), expected {id} ({category:?} for {score})",
                    r.customer_id,
                    r.category()
                ),
            ))
        }
        Prepared::SelfService(request, record, article) => {
            let ticket = request.ticket_id.clone();
            let r = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .record_self_service(request)
                .await?
                .into_inner();
            if !(r.record_id == record && r.article_id == article && r.recorded) {
                return Ok(Some(format!(
                    "answered {r:?}, expected record {record} of article {article}, recorded"
                )));
            }
            if ticket.is_empty() {
                return Ok(None);
            }
            // The ticket is solved, by that article.
            let solved = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .get_ticket(v1::GetTicketRequest {
                    ticket_id: ticket.clone(),
                    as_of_version: None,
                    as_of_time: None,
                })
                .await
                .map(|r| r.into_inner().ticket.unwrap_or_default());
            Ok(match solved {
                Ok(t) => check(
                    status_of(t.status) == Some(v1::TicketStatus::Solved)
                        && t.self_served_article_id == article,
                    format!(
                        "{ticket} after self-service: {:?} by {:?}, expected solved by {article}",
                        status_of(t.status),
                        t.self_served_article_id
                    ),
                ),
                Err(status) => Some(format!("reading {ticket} after self-service: {status:?}")),
            })
        }
        Prepared::PublishArticle(request, id) => {
            let sent = request.article.clone().unwrap_or_default();
            let r = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .publish_article(request)
                .await?
                .into_inner();
            let a = r.article.clone().unwrap_or_default();
            Ok(check(
                r.recorded
                    && a.article_id == id
                    && a.revision == 1
                    && !a.retired
                    && (a.slug.as_str(), a.title.as_str(), a.body.as_str())
                        == (sent.slug.as_str(), sent.title.as_str(), sent.body.as_str()),
                format!("answered {r:?}, expected {id} at revision 1, recorded"),
            ))
        }
        Prepared::RetireArticle(request, id) => {
            let r = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .retire_article(request)
                .await?
                .into_inner();
            let a = r.article.clone().unwrap_or_default();
            Ok(check(
                r.recorded && a.article_id == id && a.retired,
                format!("answered {r:?}, expected {id} retired, recorded"),
            ))
        }
        Prepared::GetArticle(request, id, body) => {
            let a = cluster
                .conversation_as(caller, x_tenant)
                .await
                .unwrap()
                .get_article(request)
                .await?
                .into_inner()
                .article
                .unwrap_or_default();
            Ok(check(
                a.article_id == id && a.body == body && !a.retired,
                format!("answered {a:?}, expected {id} reading {body:?}"),
            ))
        }
        Prepared::Feedback(request, feedback) => {
            let r = cluster
                .intake_as(caller, x_tenant)
                .await
                .unwrap()
                .record_feedback(request)
                .await?
                .into_inner();
            Ok(check(
                r.feedback_id == feedback && r.recorded,
                format!(
                    "answered feedback {} (recorded: {}), expected {feedback} (recorded: true)",
                    r.feedback_id, r.recorded
                ),
            ))
        }
    }
}

/// `Some(problem)` unless a merge (or an unmerge) answered source `source` with
/// its status `status` unchanged and target `target`, both recorded.
fn both_recorded(
    what: &str,
    (source, source_id, status): (Option<v1::TicketChange>, &str, i32),
    (target, target_id): (Option<v1::TicketChange>, &str),
) -> Option<String> {
    let (source, target) = (source.unwrap_or_default(), target.unwrap_or_default());
    let ok = source.ticket_id == source_id
        && target.ticket_id == target_id
        && source.recorded
        && target.recorded
        && source.status == status;
    (!ok).then(|| {
        format!(
            "after the {what}: source {source:?}, target {target:?}; expected {source_id} \
             (status {:?} unchanged) and {target_id}, both recorded",
            v1::TicketStatus::try_from(status)
        )
    })
}

fn random_id() -> String {
    Uuid::new_v4().to_string()
}

fn note(ticket_id: &str) -> v1::AddNoteRequest {
    v1::AddNoteRequest {
        ticket_id: ticket_id.to_string(),
        body: "internal: check the firmware".into(),
        expected_version: None,
        idempotency_key: String::new(),
    }
}

fn solve(ticket_id: &str) -> v1::SolveRequest {
    v1::SolveRequest {
        ticket_id: ticket_id.to_string(),
        resolution: "firmware rolled back".into(),
        expected_version: None,
    }
}

fn propose_decline(ticket_id: &str) -> v1::ProposeDeclineRequest {
    v1::ProposeDeclineRequest {
        ticket_id: ticket_id.to_string(),
        reason: "We cannot replace a router damaged by a power surge.".into(),
        rationale: "outside the warranty's terms".into(),
        expected_version: None,
    }
}

/// `message` with every UUID in it replaced by `<id>`.
fn without_ids(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while !rest.is_empty() {
        if rest.len() >= 36 && rest.is_char_boundary(36) && Uuid::parse_str(&rest[..36]).is_ok() {
            out.push_str("<id>");
            rest = &rest[36..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn describe_caller(row: &Row) -> String {
    let (_, role, tenants) = CALLERS
        .iter()
        .find(|(id, _, _)| *id == row.who)
        .unwrap_or_else(|| panic!("no caller {}", row.who));
    let header = row
        .x_tenant
        .map(|t| format!(", x-tenant: {t}"))
        .unwrap_or_default();
    format!("{} ({role}, {}{header})", row.who, tenants.join("+"))
}

/// Every caller against every call on acme's and globex's data: the codes are those
/// the rules give, refused calls store nothing, and another tenant's id is NOT_FOUND
/// exactly as a nonexistent one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_table_across_tenants_and_roles() {
    let started = std::time::Instant::now();
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut fixtures = Fixtures::set_up(&cluster).await;
    let rows = rows();

    let mut mismatches = Vec::new();
    let mut table = String::from(
        "| # | caller | call | target | expected | actual |\n|---|---|---|---|---|---|\n",
    );
    // NOT_FOUND messages, ids blanked, per call and the nonexistent target they must
    // read as: (row, message).
    let mut not_found: BTreeMap<(Rpc, Target), Vec<(usize, String)>> = BTreeMap::new();
    let mut refused = 0;
    for (index, row) in rows.iter().enumerate() {
        let prepared = fixtures.prepare(index, row).await;
        let caller = table_caller(row.who);
        // Routing answers earlier rows' events by appending; let it finish first.
        cluster.routing_settled().await.unwrap();
        // Analytics reads its projection: every event so far must be in it.
        if row.rpc.is_analytics() {
            cluster.analytics_settled().await.unwrap();
        }
        let before = cluster.log.last_sequence().await.unwrap();
        let result = execute(&cluster, &caller, row.x_tenant, prepared).await;
        let after = cluster.log.last_sequence().await.unwrap();
        let what = format!(
            "#{index} {} {} on {}",
            describe_caller(row),
            row.rpc.name(),
            row.target.describe(row.rpc)
        );
        let actual = match &result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        if actual != row.expected {
            mismatches.push(format!(
                "{what}: expected {:?}, got {:?} ({})",
                row.expected,
                actual,
                result.as_ref().err().map(Status::message).unwrap_or("ok")
            ));
        }
        match &result {
            Ok(Some(problem)) => mismatches.push(format!("{what}: {problem}")),
            Ok(None) => {}
            Err(status) => {
                refused += 1;
                if after != before {
                    mismatches.push(format!(
                        "{what}: refused with {:?} but the stream moved {before} -> {after}",
                        status.code()
                    ));
                }
                if status.code() == Code::InvalidArgument
                    && violated_field(status).as_deref() != Some("x-tenant")
                {
                    mismatches.push(format!(
                        "{what}: INVALID_ARGUMENT not naming x-tenant: {status:?}"
                    ));
                }
                if status.code() == Code::NotFound {
                    not_found
                        .entry((row.rpc, row.target.reads_as(row.rpc)))
                        .or_default()
                        .push((index, without_ids(status.message())));
                }
            }
        }
        let mark = if actual == row.expected {
            ""
        } else {
            " **MISMATCH**"
        };
        writeln!(
            table,
            "| {index} | {} | {} | {} | {:?} | {actual:?}{mark} |",
            describe_caller(row),
            row.rpc.name(),
            row.target.describe(row.rpc),
            row.expected,
        )
        .unwrap();
    }

    // Another tenant's id reads exactly as one that does not exist.
    for ((rpc, nonexistent), messages) in &not_found {
        let Some(missing) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.rpc == *rpc && r.target == *nonexistent)
            .and_then(|(i, _)| messages.iter().find(|(m, _)| *m == i))
        else {
            continue;
        };
        for (index, message) in messages {
            if *message != missing.1 {
                mismatches.push(format!(
                    "#{index} {}: NOT_FOUND message {message:?} differs from a nonexistent id's {:?}",
                    rpc.name(),
                    missing.1
                ));
            }
        }
    }

    println!("\n{table}");
    println!(
        "{} rows, {refused} refused (each stored nothing), {} mismatches, {:.1?}",
        rows.len(),
        mismatches.len(),
        started.elapsed()
    );
    cluster.shutdown().await;
    assert!(
        mismatches.is_empty(),
        "{} rows differ from the rules:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

fn with_external_id(key: &str, external_id: &str, email: &str) -> v1::SubmitTicketRequest {
    let mut request = submit_request(key, email);
    request.customer = Some(v1::CustomerIdentity {
        email: email.into(),
        external_id: external_id.into(),
        ..Default::default()
    });
    request
}

fn by_external_id(external_id: &str, system: &str) -> v1::GetCustomerRequest {
    v1::GetCustomerRequest {
        customer_id: String::new(),
        identity: Some(v1::CustomerIdentity {
            external_id: external_id.into(),
            system: system.into(),
            ..Default::default()
        }),
    }
}

fn by_id(customer_id: &str) -> v1::GetCustomerRequest {
    v1::GetCustomerRequest {
        customer_id: customer_id.into(),
        identity: None,
    }
}

/// The external ids a customer view shows: (system, external id).
fn external_ids(customer: &v1::Customer) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = customer
        .identities
        .iter()
        .filter(|i| !i.external_id.is_empty())
        .map(|i| (i.system.clone(), i.external_id.clone()))
        .collect();
    ids.sort();
    ids
}

fn pair(system: &str, id: &str) -> (String, String) {
    (system.to_string(), id.to_string())
}

/// The bodies of a ticket's messages, oldest first.
async fn bodies(
    client: &mut ConversationServiceClient<frontline_e2e::Authed>,
    ticket_id: &str,
) -> Vec<String> {
    client
        .get_ticket(v1::GetTicketRequest {
            ticket_id: ticket_id.to_string(),
            as_of_version: None,
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap_or_default()
        .messages
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// Two customer systems of one tenant share its customers, but each has its own
/// idempotency keys and its own external ids, and sees only its own external ids;
/// staff see all and may name the system an external id belongs to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_external_ids_are_each_systems_own() {
    let cluster = Cluster::start().await.unwrap();
    let shop_a = caller("shop-a", Role::CustomerSystem, &["acme"]);
    let shop_b = caller("shop-b", Role::CustomerSystem, &["acme"]);
    let agent = caller("agent-acme", Role::Agent, &["acme"]);
    let mut intake_a = cluster.intake_as(&shop_a, None).await.unwrap();
    let mut intake_b = cluster.intake_as(&shop_b, None).await.unwrap();
    let mut staff = cluster.intake_as(&agent, None).await.unwrap();
    let mut conversation_b = cluster.conversation_as(&shop_b, None).await.unwrap();

    // The same key from two systems, for the same customer: two tickets.
    let mut from_a = submit_request("order-1001", "carol@example.com");
    from_a.body = "Shop A: my router reboots.".into();
    let mut from_b = submit_request("order-1001", "carol@example.com");
    from_b.body = "Shop B: my modem is dead.".into();
    let a = intake_a
        .submit_ticket(from_a.clone())
        .await
        .unwrap()
        .into_inner();
    let b = intake_b
        .submit_ticket(from_b.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(a.created && b.created, "both opened a ticket: {a:?} {b:?}");
    assert_ne!(a.ticket_id, b.ticket_id);
    assert_eq!(a.ticket_id, ticket_id("shop-a", "order-1001").to_string());
    assert_eq!(b.ticket_id, ticket_id("shop-b", "order-1001").to_string());
    // One customer: the tenant's, found by email whichever system asks.
    assert_eq!(b.customer_id, a.customer_id);

    // Shop B's message is stored on its own ticket, and shop A's ticket is untouched;
    // shop B reads both (they are its tenant's customer's).
    for (ticket, body) in [(&a.ticket_id, &from_a.body), (&b.ticket_id, &from_b.body)] {
        assert_eq!(
            bodies(&mut conversation_b, ticket).await,
            vec![body.clone()],
            "ticket {ticket}"
        );
    }
    let carol = intake_b
        .get_customer(v1::GetCustomerRequest {
            customer_id: String::new(),
            identity: Some(v1::CustomerIdentity {
                email: "carol@example.com".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(carol.customer_id, a.customer_id);
    for ticket in [&a.ticket_id, &b.ticket_id] {
        assert!(carol.ticket_ids.contains(ticket), "{carol:?}");
    }

    // Repeats answer each system with its own ticket; nothing new is stored.
    let before = cluster.log.last_sequence().await.unwrap();
    let again_a = intake_a
        .submit_ticket(from_a.clone())
        .await
        .unwrap()
        .into_inner();
    let again_b = intake_b
        .submit_ticket(from_b.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again_a.ticket_id.as_str(), again_a.created),
        (a.ticket_id.as_str(), false)
    );
    assert_eq!(
        (again_b.ticket_id.as_str(), again_b.created),
        (b.ticket_id.as_str(), false)
    );
    // The same system's key for another customer is refused (and stores nothing).
    let status = intake_a
        .submit_ticket(submit_request("order-1001", "dave@example.com"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(cluster.log.last_sequence().await.unwrap(), before);

    // Both systems continue shop A's ticket with one key: both messages are stored,
    // and only a system's own repeat is recognised as one.
    let mut follow_a = submit_request("follow-up-1", "carol@example.com");
    follow_a.continue_ticket_id = a.ticket_id.clone();
    follow_a.body = "Shop A: it rebooted again.".into();
    let mut follow_b = follow_a.clone();
    follow_b.body = "Shop B: the modem too.".into();
    let mut versions = Vec::new();
    for (mut intake, request) in [
        (intake_a.clone(), &follow_a),
        (intake_b.clone(), &follow_b),
        (intake_a.clone(), &follow_a),
        (intake_b.clone(), &follow_b),
    ] {
        let r = intake
            .submit_ticket(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.ticket_id.as_str(), r.created),
            (a.ticket_id.as_str(), false)
        );
        versions.push(r.ticket_version);
    }
    assert_eq!(versions, [2, 3, 3, 3], "two messages, two repeats");
    assert_eq!(
        bodies(&mut conversation_b, &a.ticket_id).await,
        [&from_a.body, &follow_a.body, &follow_b.body].map(String::clone)
    );

    // A system of the same name in another tenant is another system: its key and its
    // external id are its own there, and Carol there is another customer.
    let shop_a_of_globex = caller("shop-a", Role::CustomerSystem, &["globex"]);
    let mut intake_ag = cluster.intake_as(&shop_a_of_globex, None).await.unwrap();
    let there = intake_ag
        .submit_ticket(submit_request("order-1001", "carol@example.com"))
        .await
        .unwrap()
        .into_inner();
    assert!(there.created, "{there:?}");
    assert_ne!(there.ticket_id, a.ticket_id);
    assert_ne!(there.customer_id, a.customer_id);

    // The same external id from two systems: two customers.
    let frank = intake_a
        .submit_ticket(with_external_id("crm-a-1", "42", "frank@example.com"))
        .await
        .unwrap()
        .into_inner()
        .customer_id;
    let gina = intake_b
        .submit_ticket(with_external_id("crm-b-1", "42", "gina@example.com"))
        .await
        .unwrap()
        .into_inner()
        .customer_id;
    assert_ne!(
        frank, gina,
        "shop A's 42 and shop B's 42 are different people"
    );

    // Each system's "42" is its own.
    let found = |r: Result<tonic::Response<v1::GetCustomerResponse>, Status>| {
        r.map(|r| r.into_inner().customer.unwrap_or_default())
    };
    let by_a = found(intake_a.get_customer(by_external_id("42", "")).await).unwrap();
    let by_b = found(intake_b.get_customer(by_external_id("42", "")).await).unwrap();
    assert_eq!(
        (by_a.customer_id.as_str(), by_b.customer_id.as_str()),
        (frank.as_str(), gina.as_str())
    );
    // Naming itself is the same as naming nobody; naming another system is refused.
    let own = found(intake_a.get_customer(by_external_id("42", "shop-a")).await).unwrap();
    assert_eq!(own.customer_id, frank);
    let before = cluster.log.last_sequence().await.unwrap();
    let status = found(intake_a.get_customer(by_external_id("42", "shop-b")).await).unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = found(intake_b.get_customer(by_external_id("42", "shop-a")).await).unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(cluster.log.last_sequence().await.unwrap(), before);
    // Staff name the system; without one, the external id would be the agent's own.
    let of_a = found(staff.get_customer(by_external_id("42", "shop-a")).await).unwrap();
    let of_b = found(staff.get_customer(by_external_id("42", "shop-b")).await).unwrap();
    assert_eq!(
        (of_a.customer_id.as_str(), of_b.customer_id.as_str()),
        (frank.as_str(), gina.as_str())
    );
    let status = found(staff.get_customer(by_external_id("42", "")).await).unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Shop B learns Frank (by email) under its own external id 77: Frank now has an
    // external id from each system, and each system sees only its own.
    let frank_via_b = intake_b
        .submit_ticket(with_external_id("crm-b-2", "77", "frank@example.com"))
        .await
        .unwrap()
        .into_inner()
        .customer_id;
    assert_eq!(frank_via_b, frank, "found by email across systems");
    let seen_by_a = found(intake_a.get_customer(by_id(&frank)).await).unwrap();
    let seen_by_b = found(intake_b.get_customer(by_id(&frank)).await).unwrap();
    let seen_by_staff = found(staff.get_customer(by_id(&frank)).await).unwrap();
    assert_eq!(external_ids(&seen_by_a), vec![pair("shop-a", "42")]);
    assert_eq!(external_ids(&seen_by_b), vec![pair("shop-b", "77")]);
    assert_eq!(
        external_ids(&seen_by_staff),
        vec![pair("shop-a", "42"), pair("shop-b", "77")]
    );
    for (who, view) in [("shop-a", &seen_by_a), ("shop-b", &seen_by_b)] {
        let first = view.identity.clone().unwrap_or_default();
        assert!(
            first.external_id.is_empty() || first.system == who,
            "{who} sees another system's external id as the first: {first:?}"
        );
        assert!(
            view.identities
                .iter()
                .any(|i| i.email == "frank@example.com"),
            "{who} sees the shared email: {view:?}"
        );
    }
    // Shop B finds Frank by its 77; shop A has no customer 77; shop B's 42 is Gina.
    let b77 = found(intake_b.get_customer(by_external_id("77", "")).await).unwrap();
    assert_eq!(b77.customer_id, frank);
    let status = found(intake_a.get_customer(by_external_id("77", "")).await).unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let gina_seen_by_a = found(intake_a.get_customer(by_id(&gina)).await).unwrap();
    assert!(
        external_ids(&gina_seen_by_a).is_empty(),
        "shop A sees shop B's external id: {gina_seen_by_a:?}"
    );

    // globex's shop-a has no customer 42 until it sends one, and then it is its own.
    let status = found(intake_ag.get_customer(by_external_id("42", "")).await).unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let globex_42 = intake_ag
        .submit_ticket(with_external_id("crm-a-1", "42", "frank@example.com"))
        .await
        .unwrap()
        .into_inner();
    assert!(globex_42.created, "{globex_42:?}");
    assert_ne!(globex_42.customer_id, frank);
    let seen = found(intake_ag.get_customer(by_external_id("42", "")).await).unwrap();
    assert_eq!(
        (seen.customer_id.as_str(), seen.tenant.as_str()),
        (globex_42.customer_id.as_str(), "globex")
    );
    assert_eq!(
        found(intake_a.get_customer(by_external_id("42", "")).await)
            .unwrap()
            .customer_id,
        frank,
        "acme's shop-a still finds its own 42"
    );

    cluster.shutdown().await;
}
