//! Properties of the ticket and customer aggregates and of identity normalisation,
//! checked on arbitrary command sequences.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use frontline_domain::identity::normalise_email;
use frontline_domain::ticket::MessageKind;
use frontline_domain::{
    Actor, Aggregate, Channel, Customer, CustomerCommand, DomainError, Identity, IdentityKey,
    Opening, Priority, Recorded, Role, TenantId, Ticket, TicketCommand, TicketEvent, TicketStatus,
    TicketView, UnixMillis, limits,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use uuid::Uuid;

fn tenant() -> TenantId {
    TenantId::parse("tenant", "acme").unwrap()
}

const CUSTOMERS: [Uuid; 2] = [Uuid::from_u128(1), Uuid::from_u128(2)];
const ROLES: [Role; 4] = [
    Role::CustomerSystem,
    Role::Agent,
    Role::Manager,
    Role::Admin,
];
const CHANNELS: [Channel; 5] = [
    Channel::Email,
    Channel::Chat,
    Channel::Phone,
    Channel::Web,
    Channel::Api,
];
const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Normal,
    Priority::High,
    Priority::Urgent,
];

/// Default case count; failing cases are kept next to this file
/// (`properties.proptest-regressions`), as integration tests have no `lib.rs`.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

// --- generators ----------------------------------------------------------------

fn actor() -> impl Strategy<Value = Actor> {
    (select(&["a1", "a2"][..]), select(&ROLES[..])).prop_map(|(id, role)| Actor::new(id, role))
}

/// A key from a small pool (so repeats are common), sometimes an invalid one.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => select(&["k0", "k1", "k2", "k3", "k4", "k5"][..]).prop_map(str::to_string),
        1 => select(&["", "bad key", "schlüssel"][..]).prop_map(str::to_string),
    ]
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => "[a-zA-Z0-9 .,!?\n]{1,40}".prop_filter("not blank", |s| !s.trim().is_empty()),
        1 => Just(String::new()),
        1 => Just(" \n\t ".to_string()),
        1 => Just("a\u{0}b".to_string()),
        1 => Just("x".repeat(limits::MAX_BODY_BYTES + 1)),
    ]
}

/// An optional text (resolution, reason): usually fine, sometimes too long.
fn optional_text() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => "[a-z ]{0,20}",
        1 => Just("x".repeat(limits::MAX_BODY_BYTES + 1)),
    ]
}

fn subject() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => "[A-Za-z][A-Za-z0-9 ]{0,30}",
        1 => Just(String::new()),
        1 => Just("s".repeat(limits::MAX_SUBJECT_CHARS + 1)),
    ]
}

fn product_area() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => "[a-z0-9_-]{1,20}",
        1 => select(&["", "Router", "router x"][..]).prop_map(str::to_string),
    ]
}

fn opening() -> impl Strategy<Value = Opening> {
    (
        select(&CHANNELS[..]),
        select(&CUSTOMERS[..]),
        subject(),
        body(),
        product_area(),
        select(&PRIORITIES[..]),
        key(),
    )
        .prop_map(
            |(channel, customer_id, subject, body, product_area, priority, idempotency_key)| {
                Opening {
                    tenant: tenant(),
                    channel,
                    customer_id,
                    subject,
                    body,
                    product_area,
                    priority,
                    idempotency_key,
                    follow_up_of: None,
                }
            },
        )
}

fn command() -> impl Strategy<Value = TicketCommand> {
    prop_oneof![
        1 => opening().prop_map(TicketCommand::Open),
        4 => (select(&CUSTOMERS[..]), body(), select(&CHANNELS[..]), key()).prop_map(
            |(customer_id, body, channel, idempotency_key)| TicketCommand::AddCustomerMessage {
                customer_id,
                body,
                channel,
                idempotency_key,
            }
        ),
        4 => (body(), any::<bool>(), proptest::option::of(key())).prop_map(
            |(body, awaiting_customer, idempotency_key)| TicketCommand::Reply {
                body,
                awaiting_customer,
                idempotency_key,
            }
        ),
        3 => (body(), proptest::option::of(key())).prop_map(|(body, idempotency_key)| {
            TicketCommand::AddNote {
                body,
                idempotency_key,
            }
        }),
        3 => optional_text().prop_map(|resolution| TicketCommand::Solve { resolution }),
        3 => optional_text().prop_map(|reason| TicketCommand::Reopen { reason }),
        2 => (body(), body()).prop_map(|(reason, rationale)| TicketCommand::ProposeDecline {
            reason,
            rationale,
        }),
        2 => optional_text().prop_map(|note| TicketCommand::ApproveDecline { note }),
        1 => body().prop_map(|note| TicketCommand::RejectDecline { note }),
        1 => Just(TicketCommand::Close { after: None }),
        1 => (0..5 as UnixMillis).prop_map(|after| TicketCommand::Close { after: Some(after) }),
        2 => (0u8..=6, optional_text()).prop_map(|(score, comment)| {
            TicketCommand::RateSatisfaction { score, comment }
        }),
        1 => body().prop_map(|body| TicketCommand::AutoAnswer {
            body,
            rule: "basic".into(),
        }),
        1 => Just(TicketCommand::RequestHuman),
        1 => (0..2u128, proptest::bool::weighted(0.8), proptest::option::of(0..3u8)).prop_map(
            |(a, live, key)| TicketCommand::SelfServe {
                article_id: Uuid::from_u128(a),
                article_live: live,
                idempotency_key: key.map(|k| format!("s{k}")),
            }
        ),
        1 => Just(TicketCommand::DueCheckIn { agent: "ana".into() }),
        1 => (0..12u64).prop_map(|rating| TicketCommand::RaiseFollowUp {
            rating,
            team: "t".into(),
            reason: "low".into(),
        }),
    ]
}

/// A valid Open by a system allowed to open, for the start of most sequences.
fn valid_open() -> impl Strategy<Value = (TicketCommand, Actor)> {
    (
        select(&CHANNELS[..]),
        select(&CUSTOMERS[..]),
        select(&["k0", "k1", "k2", "k3", "k4", "k5"][..]),
        select(&[Role::CustomerSystem, Role::Admin][..]),
    )
        .prop_map(|(channel, customer_id, key, role)| {
            let opening = Opening {
                tenant: tenant(),
                channel,
                customer_id,
                subject: "Router broken".into(),
                body: "It blinks red.".into(),
                product_area: "router".into(),
                priority: Priority::Normal,
                idempotency_key: key.into(),
                follow_up_of: None,
            };
            (TicketCommand::Open(opening), Actor::new("a0", role))
        })
}

/// Valid solve / reopen / customer-message steps by allowed actors, so that a
/// sequence can reach the reopen limit.
fn lifecycle_step() -> impl Strategy<Value = (TicketCommand, Actor)> {
    prop_oneof![
        Just((
            TicketCommand::Solve {
                resolution: "done".into()
            },
            Actor::new("a1", Role::Agent)
        )),
        Just((
            TicketCommand::Reopen {
                reason: "again".into()
            },
            Actor::new("a2", Role::Manager)
        )),
        Just((
            TicketCommand::ProposeDecline {
                reason: "No.".into(),
                rationale: "Policy.".into(),
            },
            Actor::new("a1", Role::Agent)
        )),
        (select(&["a1", "a2"][..]), any::<bool>()).prop_map(|(id, approve)| {
            let note = "n".to_string();
            let command = if approve {
                TicketCommand::ApproveDecline { note }
            } else {
                TicketCommand::RejectDecline { note }
            };
            (command, Actor::new(id, Role::Manager))
        }),
        (select(&CUSTOMERS[..]), 0..1000u32).prop_map(|(customer_id, n)| {
            let command = TicketCommand::AddCustomerMessage {
                customer_id,
                body: "again".into(),
                channel: Channel::Chat,
                idempotency_key: format!("m{n}"),
            };
            (command, Actor::new("a0", Role::CustomerSystem))
        }),
    ]
}

fn ticket_script() -> impl Strategy<Value = Vec<(TicketCommand, Actor)>> {
    let steps = prop_oneof![
        2 => proptest::collection::vec((command(), actor()), 0..60),
        1 => proptest::collection::vec(
            prop_oneof![1 => (command(), actor()), 6 => lifecycle_step()],
            0..60
        ),
    ];
    (proptest::option::weighted(0.9, valid_open()), steps)
        .prop_map(|(first, rest)| first.into_iter().chain(rest).collect())
}

// --- ticket invariants ---------------------------------------------------------

/// The key as the ticket remembers it: the caller's own, scoped by what it was for.
fn key_of(command: &TicketCommand, actor: &Actor) -> Option<String> {
    let key = match command {
        TicketCommand::Open(o) => Some(format!("{}:{}", o.channel.as_str(), o.idempotency_key)),
        TicketCommand::AddCustomerMessage {
            idempotency_key,
            channel,
            ..
        } => Some(format!("{}:{idempotency_key}", channel.as_str())),
        TicketCommand::Reply {
            idempotency_key, ..
        } => idempotency_key.as_ref().map(|k| format!("reply:{k}")),
        TicketCommand::AddNote {
            idempotency_key, ..
        } => idempotency_key.as_ref().map(|k| format!("note:{k}")),
        TicketCommand::SelfServe {
            idempotency_key, ..
        } => idempotency_key.as_ref().map(|k| format!("self_serve:{k}")),
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
    key.map(|k| format!("{}/{k}", actor.id))
}

/// What the rules decide, on the ticket.
fn check_ticket(t: &Ticket, log: &[Recorded<TicketEvent>]) -> Result<(), TestCaseError> {
    prop_assert_eq!(t.version, log.len() as u64);
    prop_assert_eq!(Aggregate::version(t), t.version);
    prop_assert_eq!(t.status.is_some(), t.version > 0);
    prop_assert_eq!(t.exists(), t.version > 0);
    prop_assert!(t.reopen_count <= limits::MAX_REOPENS);

    // Saying No needs a manager who did not propose it: every approval follows a
    // proposal by someone else, with no decision in between.
    let mut proposer: Option<&str> = None;
    for recorded in log {
        match &recorded.event {
            TicketEvent::DeclineProposed { .. } => proposer = Some(&recorded.actor.id),
            TicketEvent::DeclineApproved { .. } | TicketEvent::DeclineRejected { .. } => {
                prop_assert_eq!(recorded.actor.role, Role::Manager);
                let by = proposer.take();
                prop_assert!(by.is_some_and(|p| p != recorded.actor.id), "{:?}", log);
            }
            _ => {}
        }
    }
    prop_assert!(
        !t.declined || matches!(t.status, Some(TicketStatus::Solved | TicketStatus::Closed))
    );
    // Self-service costs no agent time: a ticket solved by an article had no reply,
    // note or logged time before it, and only a customer system or admin said so.
    let mut worked = false;
    for recorded in log {
        match &recorded.event {
            TicketEvent::AgentReplied { .. }
            | TicketEvent::NoteAdded { .. }
            | TicketEvent::TimeLogged { .. }
            | TicketEvent::DeclineProposed { .. }
            | TicketEvent::DeclineApproved { .. }
            | TicketEvent::DeclineRejected { .. }
            | TicketEvent::Solved {
                self_served: None, ..
            } => worked = true,
            TicketEvent::Solved {
                self_served: Some(_),
                ..
            } => {
                prop_assert!(!worked, "{:?}", log);
                prop_assert!(matches!(
                    recorded.actor.role,
                    Role::CustomerSystem | Role::Admin
                ));
            }
            _ => {}
        }
    }
    prop_assert!(
        t.self_served.is_none()
            || matches!(t.status, Some(TicketStatus::Solved | TicketStatus::Closed))
    );
    prop_assert_eq!(
        t.decline_proposer.is_some(),
        t.status == Some(TicketStatus::DeclineProposed)
    );
    // Closed is final: nothing after it but notes and SLA bookkeeping.
    if let Some(at) = log
        .iter()
        .position(|r| matches!(r.event, TicketEvent::Closed { .. }))
    {
        prop_assert!(log[at + 1..].iter().all(
            |r| r.event.status_after(Some(TicketStatus::Closed)) == Some(TicketStatus::Closed)
        ));
    }

    // Replaying the recorded events gives the same state (apply is deterministic).
    let mut replayed = Ticket::default();
    for recorded in log {
        replayed.apply(recorded);
    }
    prop_assert_eq!(&replayed, t);
    Ok(())
}

/// What a ticket shows, on the view built from the same events.
fn check_view(view: &TicketView, log: &[Recorded<TicketEvent>]) -> Result<(), TestCaseError> {
    prop_assert_eq!(view.version, log.len() as u64);
    prop_assert_eq!(view.exists(), view.version > 0);

    // Message versions never decrease (a decline's approval adds the public answer
    // and the manager's note) and never pass the ticket's version.
    for pair in view.messages.windows(2) {
        prop_assert!(pair[0].version <= pair[1].version, "{:?}", view.messages);
    }
    if let Some(last) = view.messages.last() {
        prop_assert!(last.version <= view.version);
    }
    if view.exists() {
        prop_assert_eq!(view.messages[0].kind, MessageKind::Customer);
        prop_assert_eq!(view.messages[0].version, 1);
    }

    // Internal notes are exactly the messages the customer may not see.
    let notes: Vec<_> = view
        .messages
        .iter()
        .filter(|m| m.kind == MessageKind::InternalNote)
        .collect();
    let hidden: Vec<_> = view
        .messages
        .iter()
        .filter(|m| !m.customer_visible())
        .collect();
    prop_assert_eq!(&notes, &hidden);
    let visible: Vec<_> = view.customer_visible_messages().collect();
    prop_assert_eq!(visible.len() + notes.len(), view.messages.len());
    prop_assert!(visible.iter().all(|m| m.kind != MessageKind::InternalNote));

    // Customer messages are always the ticket's customer's.
    let customer = view.customer_id.to_string();
    prop_assert!(
        view.messages
            .iter()
            .filter(|m| m.kind == MessageKind::Customer)
            .all(|m| m.author_id == customer)
    );

    prop_assert_eq!(
        view.solved_at.is_some(),
        matches!(
            view.status,
            Some(TicketStatus::Solved | TicketStatus::Closed)
        )
    );
    if let Some(first) = log.first() {
        prop_assert_eq!(view.opened_at, first.at);
    }
    if let Some(last) = log.last() {
        prop_assert_eq!(view.updated_at, last.at);
    }

    // Built on read from the events, or kept up to date event by event: the same.
    prop_assert_eq!(&TicketView::from_events(log), view);
    Ok(())
}

/// The view and the ticket agree on everything they both keep.
fn check_agree(t: &Ticket, view: &TicketView) -> Result<(), TestCaseError> {
    prop_assert_eq!(view.version, t.version);
    prop_assert_eq!(view.status, t.status);
    prop_assert_eq!(view.customer_id, t.customer_id);
    prop_assert_eq!(view.reopen_count, t.reopen_count);
    prop_assert_eq!(view.exists(), t.exists());
    Ok(())
}

/// One step of a history: a command, or an event this code does not know.
#[derive(Clone, Debug)]
enum Step {
    Command(TicketCommand, Actor),
    Unknown,
}

fn history() -> impl Strategy<Value = Vec<Step>> {
    (
        ticket_script(),
        proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
    )
        .prop_map(|(script, unknown_at)| {
            let mut steps: Vec<Step> = script
                .into_iter()
                .map(|(command, actor)| Step::Command(command, actor))
                .collect();
            for at in unknown_at {
                let i = at.index(steps.len() + 1);
                steps.insert(i, Step::Unknown);
            }
            steps
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ticket_invariants_hold_after_every_step(script in ticket_script()) {
        let mut t = Ticket::default();
        let mut view = TicketView::default();
        let mut log: Vec<Recorded<TicketEvent>> = Vec::new();
        check_ticket(&t, &log)?;
        check_view(&view, &log)?;
        for (i, (command, actor)) in script.iter().enumerate() {
            let now = 1_000 + i as UnixMillis;
            let before = t.clone();
            let messages_before = view.messages.len();
            match t.decide("t", command, actor, now) {
                Ok(Some(event)) => {
                    // The log records the event at the time decide was given.
                    let recorded = Recorded { event, actor: actor.clone(), at: now };
                    t.apply(&recorded);
                    view.apply(&recorded);
                    log.push(recorded);
                    prop_assert_eq!(t.version, before.version + 1);
                    let approval = matches!(log.last().map(|r| &r.event), Some(TicketEvent::DeclineApproved { .. }));
                    let most = if approval { 2 } else { 1 };
                    prop_assert!(view.messages.len() <= messages_before + most);
                    if let Some(key) = key_of(command, actor) {
                        prop_assert!(t.idempotency_keys.contains(&key));
                    }
                }
                Ok(None) => {
                    // Only a repeat on an existing ticket records nothing: a repeated
                    // key, or a command whose effect the state already shows (an
                    // automated answer given, a person asked for or already there, a
                    // follow-up raised for that solve).
                    prop_assert!(before.exists());
                    let key = key_of(command, actor);
                    let done_already = match command {
                        TicketCommand::AutoAnswer { .. } => before.auto_answered,
                        TicketCommand::RequestHuman => before.auto_answered,
                        TicketCommand::SelfServe { article_id, .. } => {
                            before.self_served == Some(*article_id)
                        }
                        TicketCommand::DueCheckIn { .. } => before.check_ins.contains(&before.solves),
                        TicketCommand::RaiseFollowUp { rating, .. } => before
                            .low_ratings
                            .get(rating)
                            .is_some_and(|solve| before.follow_ups.contains(solve)),
                        _ => false,
                    };
                    prop_assert!(
                        done_already || key.is_some_and(|k| before.idempotency_keys.contains(&k)),
                        "Ok(None) for {:?}", command
                    );
                    prop_assert_eq!(&t, &before);
                }
                Err(err) => {
                    prop_assert_eq!(&t, &before);
                    if !actor_may(actor.role, command) {
                        let is_forbidden = matches!(err, DomainError::Forbidden { .. });
                        prop_assert!(is_forbidden, "{:?}", err);
                    }
                }
            }
            check_ticket(&t, &log)?;
            check_view(&view, &log)?;
            check_agree(&t, &view)?;
        }
    }

    /// The view and the ticket agree after every step, unknown events included:
    /// `skip_unknown` keeps them in step, and the rules still hold around them.
    #[test]
    fn view_and_ticket_agree_around_unknown_events(steps in history()) {
        let mut t = Ticket::default();
        let mut view = TicketView::default();
        check_agree(&t, &view)?;
        for (i, step) in steps.iter().enumerate() {
            let now = 1_000 + i as UnixMillis;
            match step {
                Step::Unknown => {
                    let (t_before, view_before) = (t.clone(), view.clone());
                    t.skip_unknown();
                    view.skip_unknown();
                    prop_assert_eq!(&Ticket { version: t_before.version, ..t.clone() }, &t_before);
                    prop_assert_eq!(
                        &TicketView { version: view_before.version, ..view.clone() },
                        &view_before
                    );
                    prop_assert_eq!(t.version, t_before.version + 1);
                }
                Step::Command(command, actor) => {
                    if let Ok(Some(event)) = t.decide("t", command, actor, now) {
                        let recorded = Recorded { event, actor: actor.clone(), at: now };
                        t.apply(&recorded);
                        view.apply(&recorded);
                        if let Some(last) = view.messages.last() {
                            prop_assert!(last.version <= view.version);
                        }
                        prop_assert_eq!(view.updated_at, now);
                    }
                    prop_assert!(t.reopen_count <= limits::MAX_REOPENS);
                }
            }
            check_agree(&t, &view)?;
        }
    }

    /// A ticket that was never opened (no events, or only unknown ones) answers every
    /// command but Open with `NotFound`, unless the role or a field is wrong first.
    #[test]
    fn an_unopened_ticket_is_not_found_before_any_state_check(
        unknown in 0..3u64,
        command in command(),
        actor in actor(),
    ) {
        let mut t = Ticket::default();
        for _ in 0..unknown {
            t.skip_unknown();
        }
        let result = t.decide("t", &command, &actor, 1);
        match (&command, result) {
            (_, Err(DomainError::Forbidden { .. })) => {
                prop_assert!(!actor_may(actor.role, &command));
            }
            (_, Err(DomainError::InvalidField { .. })) => {
                prop_assert!(actor_may(actor.role, &command));
                prop_assert!(command.validate().is_err());
            }
            (TicketCommand::Open(_), Ok(Some(TicketEvent::Opened(_)))) => {
                prop_assert_eq!(unknown, 0);
            }
            (TicketCommand::Open(_), Err(DomainError::Precondition { .. })) => {
                prop_assert!(unknown > 0);
            }
            (TicketCommand::Open(_), other) => {
                prop_assert!(false, "open on an unopened ticket: {:?}", other);
            }
            (_, Err(DomainError::NotFound { kind, .. })) => {
                prop_assert_eq!(kind, "ticket");
                prop_assert!(actor_may(actor.role, &command));
                prop_assert!(command.validate().is_ok());
            }
            (_, other) => prop_assert!(false, "{:?} on an unopened ticket: {:?}", command, other),
        }
    }
}

/// Who may send which command, spelled out independently of the domain's table.
fn actor_may(role: Role, command: &TicketCommand) -> bool {
    match command {
        TicketCommand::Open(_)
        | TicketCommand::AddCustomerMessage { .. }
        | TicketCommand::RateSatisfaction { .. }
        | TicketCommand::RequestHuman
        | TicketCommand::SelfServe { .. } => {
            matches!(role, Role::CustomerSystem | Role::Admin)
        }
        TicketCommand::ApproveDecline { .. } | TicketCommand::RejectDecline { .. } => {
            role == Role::Manager
        }
        TicketCommand::Close { after: None } => role.is_staff(),
        TicketCommand::Close { after: Some(_) }
        | TicketCommand::RaiseFollowUp { .. }
        | TicketCommand::AutoAnswer { .. }
        | TicketCommand::DueCheckIn { .. } => {
            matches!(role, Role::Manager | Role::Admin)
        }
        _ => matches!(role, Role::Agent | Role::Manager),
    }
}

// --- customer ------------------------------------------------------------------

fn fact_key(i: usize) -> String {
    format!("fact.{i}")
}

fn facts() -> impl Strategy<Value = Vec<(String, String)>> {
    // Up to 32 distinct keys out of 300, so that a long sequence reaches the limit.
    let unique = proptest::collection::btree_map(0..300usize, 0..4usize, 0..=32).prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (fact_key(k), format!("v{v}")))
            .collect::<Vec<_>>()
    });
    prop_oneof![
        20 => unique,
        // Sometimes invalid: a repeated key, a bad key, or too many facts.
        1 => Just(vec![("a".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())]),
        1 => Just(vec![("Bad Key".to_string(), "1".to_string())]),
        1 => Just((0..=limits::MAX_FACTS_PER_CONTACT).map(|i| (fact_key(i), "v".to_string())).collect()),
    ]
}

fn contact() -> impl Strategy<Value = (CustomerCommand, Actor)> {
    let identity = select(
        &[
            ("ana@example.com", "", ""),
            ("ana@example.org", "", ""),
            ("", "+4930123456", ""),
            ("", "", "crm-1"),
        ][..],
    )
    .prop_map(|(e, p, x)| {
        IdentityKey::of(&Identity::normalise("customer", e, p, x).unwrap(), "a0")
    });
    (
        select(&CHANNELS[..]),
        identity,
        facts(),
        proptest::option::of((0..5u128).prop_map(Uuid::from_u128)),
        prop_oneof![
            3 => select(&[Role::CustomerSystem, Role::Admin][..]).prop_map(|r| Actor::new("a0", r)),
            1 => actor(),
        ],
    )
        .prop_map(|(channel, identity, facts, ticket_opened, actor)| {
            (
                CustomerCommand::RecordContact {
                    channel,
                    tenant: tenant(),
                    identities: identity,
                    facts,
                    ticket_opened,
                    possible_duplicates: Vec::new(),
                },
                actor,
            )
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn customer_keeps_bounded_unique_latest_facts(
        script in proptest::collection::vec(contact(), 0..60)
    ) {
        let mut c = Customer::default();
        let mut applied = 0u64;
        let mut expected_facts: BTreeMap<String, String> = BTreeMap::new();
        let mut expected_tickets: Vec<Uuid> = Vec::new();
        for (i, (command, actor)) in script.iter().enumerate() {
            let before = c.clone();
            let now = i as UnixMillis;
            match c.decide(command, actor, now) {
                Ok(Some(event)) => {
                    c.apply(&Recorded { event, actor: actor.clone(), at: now });
                    applied += 1;
                    let CustomerCommand::RecordContact { facts, ticket_opened, .. } = command
                    else {
                        continue;
                    };
                    for (k, v) in facts {
                        expected_facts.insert(k.clone(), v.clone());
                    }
                    if let Some(t) = ticket_opened {
                        if !expected_tickets.contains(t) {
                            expected_tickets.push(*t);
                        }
                    }
                }
                Ok(None) | Err(_) => prop_assert_eq!(&c, &before),
            }
            prop_assert!(c.facts.len() <= limits::MAX_FACTS_PER_CUSTOMER);
            let unique: BTreeSet<_> = c.ticket_ids.iter().collect();
            prop_assert_eq!(unique.len(), c.ticket_ids.len());
            prop_assert_eq!(c.version, applied);
            prop_assert_eq!(&c.facts, &expected_facts);
            prop_assert_eq!(&c.ticket_ids, &expected_tickets);
        }
    }
}

// --- identity ------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn normalising_an_email_twice_is_the_same_as_once(
        raw in prop_oneof![
            "\\PC{0,30}",
            "[ \t]{0,2}[^@\\s]{1,12}@[^@\\s]{1,12}\\.[a-zA-ZÄÖÜİΣ]{1,6}[ \t]{0,2}",
        ]
    ) {
        if let Ok(once) = normalise_email("email", &raw) {
            prop_assert_eq!(normalise_email("email", &once), Ok(once.clone()));
        }
    }

    #[test]
    fn case_and_whitespace_variants_are_one_customer(
        local in "[a-z0-9éñöç._+-]{1,20}",
        domain in "[a-z0-9éü-]{1,15}\\.[a-z]{2,6}",
        upper in proptest::collection::vec(any::<bool>(), 60),
        before in select(&["", " ", "  ", "\u{a0}", "\u{3000}"][..]),
        after in select(&["", " ", "\u{2003}", "\u{a0}"][..]),
    ) {
        let email = format!("{local}@{domain}");
        let variant: String = email
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, up)| if *up { c.to_uppercase().to_string() } else { c.to_string() })
            .collect();
        let variant = format!("{before}{variant}{after}");

        let plain = Identity::normalise("customer", &email, "", "").unwrap();
        let varied = Identity::normalise("customer", &variant, "", "").unwrap();
        prop_assert_eq!(&plain, &varied);
        prop_assert_eq!(IdentityKey::of(&plain, "shop"), IdentityKey::of(&varied, "shop"));
    }
}

// --- identity index ------------------------------------------------------------

fn identity_key() -> impl Strategy<Value = IdentityKey> {
    prop_oneof![
        (select(&["shop-a", "shop-b"][..]), 0..3u8).prop_map(|(system, n)| {
            IdentityKey::External {
                system: system.into(),
                id: format!("crm-{n}"),
            }
        }),
        (0..3u8).prop_map(|n| IdentityKey::Email(format!("c{n}@example.com"))),
        (0..3u8).prop_map(|n| IdentityKey::Phone(format!("+4930123450{n}"))),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the claims say: the strongest claimed identity decides the
    /// customer; only unclaimed identities are claimed; every other customer
    /// pointed to is a possible duplicate, once; a contact with no claim is new and
    /// it gets the fresh id it was given.
    #[test]
    fn resolution_follows_the_strongest_claim(
        found in proptest::collection::btree_map(
            identity_key(),
            proptest::option::of((0..3u128).prop_map(Uuid::from_u128)),
            1..6,
        )
    ) {
        let found: Vec<(IdentityKey, Option<Uuid>)> = found.into_iter().collect();
        let fresh = Uuid::from_u128(1000);
        let r = frontline_domain::identity_claim::resolve(&found, fresh);
        // `found` is ordered strongest first (BTreeMap of IdentityKey).
        match found.iter().find_map(|(_, owner)| *owner) {
            Some(owner) => prop_assert_eq!((r.customer_id, r.is_new), (owner, false)),
            None => prop_assert_eq!(
                (r.customer_id, r.is_new),
                (fresh, true)
            ),
        }
        let unclaimed: Vec<IdentityKey> = found
            .iter()
            .filter(|(_, o)| o.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        prop_assert_eq!(&r.to_claim, &unclaimed);
        let mut others: Vec<Uuid> = found
            .iter()
            .filter_map(|(_, o)| *o)
            .filter(|o| *o != r.customer_id)
            .collect();
        others.sort();
        others.dedup();
        let mut dups = r.possible_duplicates.clone();
        dups.sort();
        prop_assert_eq!(dups, others);
    }

    /// Whatever contacts came before, forgetting leaves no identity and no fact on
    /// the record, refuses every later contact, and releases exactly the claims
    /// that are the record's; a released claim goes to whoever claims it next.
    #[test]
    fn forgetting_leaves_nothing_personal(
        contacts in proptest::collection::vec(
            (proptest::collection::vec(identity_key(), 1..4), 0..4usize),
            1..6,
        ),
        secret in any::<[u8; 32]>(),
    ) {
        let system = Actor::new("web-shop", Role::CustomerSystem);
        let admin = Actor::new("root", Role::Admin);
        let id = CUSTOMERS[0];
        let mut customer = Customer::default();
        for (at, (identities, facts)) in contacts.iter().enumerate() {
            let command = CustomerCommand::RecordContact {
                channel: Channel::Email,
                tenant: tenant(),
                identities: identities.clone(),
                facts: (0..*facts).map(|f| (format!("k{f}"), format!("v{at}"))).collect(),
                ticket_opened: None,
                possible_duplicates: Vec::new(),
            };
            if let Some(event) = customer.decide(&command, &system, at as UnixMillis).unwrap() {
                customer.apply(&Recorded { event, actor: system.clone(), at: at as UnixMillis });
            }
        }
        let secret = frontline_domain::ids::TenantSecret(secret);
        let claims: Vec<Uuid> = customer
            .identities
            .iter()
            .map(|k| frontline_domain::ids::identity_id(&secret, &tenant(), k))
            .collect();
        let distinct: BTreeSet<Uuid> = claims.iter().copied().collect();
        prop_assert_eq!(distinct.len(), claims.len(), "keyed ids never collide here");
        let event = frontline_domain::customer::forget(&customer, id, &admin, "gdpr", claims.clone())
            .unwrap()
            .unwrap();
        customer.apply(&Recorded { event, actor: admin.clone(), at: 100 });
        prop_assert!(customer.identities.is_empty() && customer.facts.is_empty());
        prop_assert_eq!(&customer.released_claims, &claims);
        prop_assert_eq!(
            frontline_domain::customer::forget(&customer, id, &admin, "gdpr", Vec::new()),
            Ok(None)
        );
        let later = CustomerCommand::RecordContact {
            channel: Channel::Email,
            tenant: tenant(),
            identities: contacts[0].0.clone(),
            facts: Vec::new(),
            ticket_opened: None,
            possible_duplicates: Vec::new(),
        };
        let refused = matches!(
            customer.decide(&later, &system, 101),
            Err(DomainError::Precondition { .. })
        );
        prop_assert!(refused);

        // Each claim: released from this customer only, then free for the next.
        for key in contacts.iter().flat_map(|(ids, _)| ids) {
            let mut claim = frontline_domain::IdentityClaim::default();
            let claimed = claim.claim(&tenant(), key, id).unwrap().unwrap();
            claim.apply(&Recorded { event: claimed, actor: system.clone(), at: 1 });
            prop_assert!(claim.release(CUSTOMERS[1]).is_none());
            let released = claim.release(id).unwrap();
            claim.apply(&Recorded { event: released, actor: admin.clone(), at: 2 });
            prop_assert_eq!(claim.customer, None);
            let next = claim.claim(&tenant(), key, CUSTOMERS[1]).unwrap().unwrap();
            claim.apply(&Recorded { event: next, actor: system.clone(), at: 3 });
            prop_assert_eq!(claim.customer, Some(CUSTOMERS[1]));
        }
    }

    /// Whatever the agents and their loads: the chosen agent works for the tenant,
    /// is active, available and under capacity, and has the skill unless they are
    /// the customer's named agent; when anyone fits, someone is chosen; the least
    /// loaded rule picks a minimal load; every agent has exactly one verdict.
    #[test]
    fn assignment_never_breaks_a_rule(
        agents in proptest::collection::vec(
            (
                proptest::collection::btree_set(select(&["billing", "router-x200", "tv"][..]), 1..3),
                1..4u32,
                select(&[
                    frontline_domain::Availability::Available,
                    frontline_domain::Availability::Away,
                    frontline_domain::Availability::Offline,
                ][..]),
                any::<bool>(),
                any::<bool>(),
                0..5u32,
            ),
            0..8,
        ),
        area in select(&["billing", "router-x200", "tv"][..]),
        extended in any::<bool>(),
        named in 0..8usize,
    ) {
        use frontline_domain::assignment::{self, Candidate, Routed, Rule, Tier, Verdict};
        let manager = Actor::new("max", Role::Manager);
        let globex = TenantId::parse("tenant", "globex").unwrap();
        let built: Vec<frontline_domain::Agent> = agents
            .iter()
            .enumerate()
            .map(|(i, (skills, capacity, availability, other_tenant, inactive, load))| {
                let mut a = frontline_domain::Agent::default();
                let mut events = vec![
                    frontline_domain::AgentEvent::Registered {
                        agent_id: format!("agent-{i}"),
                        profile: frontline_domain::agent::Profile {
                            display_name: format!("Agent {i}"),
                            skills: skills.iter().map(|s| (s.to_string(), 2)).collect(),
                            capacity: *capacity,
                            team: String::new(),
                            tenants: [if *other_tenant { globex.clone() } else { tenant() }].into(),
                        },
                    },
                    frontline_domain::AgentEvent::AvailabilityChanged(*availability),
                ];
                if *inactive {
                    events.push(frontline_domain::AgentEvent::Deactivated);
                }
                // The load as the agent's own events record it.
                events.extend((0..*load).map(|t| frontline_domain::AgentEvent::TicketTaken {
                    ticket: Uuid::from_u128(u128::from(t) + 1000 * i as u128),
                }));
                for event in events {
                    a.apply(&Recorded { event, actor: manager.clone(), at: 0 });
                }
                a
            })
            .collect();
        let candidates: Vec<Candidate<'_>> = built.iter().map(Candidate::of).collect();
        let ticket = Routed {
            tenant: tenant(),
            product_area: area.to_string(),
            tier: if extended { Tier::Extended } else { Tier::Standard },
            named_agent: Some(format!("agent-{named}")),
            last_handler: None,
        };
        let d = assignment::assign(&ticket, &candidates, 0, 0);
        prop_assert_eq!(d.candidates.len(), candidates.len());
        let fits = |c: &Candidate<'_>, need_skill: bool| {
            let p = c.agent.profile.as_ref().unwrap();
            p.tenants.contains(&tenant())
                && c.agent.active
                && c.agent.availability == frontline_domain::Availability::Available
                && c.load < p.capacity
                && (!need_skill || p.skills.contains_key(area))
        };
        // The agent's own rule agrees with the choice: routing's Take is accepted by
        // the chosen agent, and refused by any agent without the skill unless the
        // rule is the named agent (or a manager by hand).
        let routing = frontline_domain::Caller {
            actor: Actor::new("frontline-routing", Role::Admin),
            tenants: frontline_domain::TenantScope::All,
        };
        let take = |rule| frontline_domain::AgentCommand::Take(frontline_domain::agent::Take {
            ticket: Uuid::from_u128(u128::MAX),
            tenant: tenant(),
            product_area: area.to_string(),
            rule,
        });
        for c in &candidates {
            let skilled = c.agent.profile.as_ref().unwrap().skills.contains_key(area);
            for rule in [Rule::LeastLoaded, Rule::KnowsCustomer] {
                let taken = c.agent.decide(&c.agent.agent_id, &take(rule), &routing);
                prop_assert!(skilled || taken.is_err(), "{} took {area} without the skill", c.agent.agent_id);
            }
        }
        match &d.agent {
            Some(id) => {
                let chosen = candidates.iter().find(|c| &c.agent.agent_id == id).unwrap();
                prop_assert!(fits(chosen, d.rule != Rule::NamedAgent));
                let taken = chosen.agent.decide(id, &take(d.rule), &routing);
                prop_assert!(matches!(taken, Ok(Some(_))), "{id} refused routing's choice: {taken:?}");
                if d.rule == Rule::LeastLoaded {
                    let min = candidates.iter().filter(|c| fits(c, true)).map(|c| c.load).min();
                    prop_assert_eq!(Some(chosen.load), min);
                }
                let chosen_verdicts = d.candidates.iter().filter(|(_, v)| *v == Verdict::Chosen).count();
                prop_assert_eq!(chosen_verdicts, 1);
            }
            None => {
                prop_assert_eq!(d.rule, Rule::Queued);
                prop_assert!(candidates.iter().all(|c| !fits(c, true)));
            }
        }
    }

    /// An SLA clock counts exactly its target of open, unpaused time between its
    /// start and its due time — never time while pending, never closed hours — and
    /// has no due time while a pause is still open.
    #[test]
    fn clocks_never_count_time_while_pending(
        office in any::<bool>(),
        start_minute in 0..(14 * 24 * 60i64),
        target_minutes in 1..(3 * 24 * 60i64),
        gaps in proptest::collection::vec((1..(3 * 24 * 60i64), 1..(2 * 24 * 60i64)), 0..5),
        still_paused in any::<bool>(),
    ) {
        use frontline_domain::sla::{BusinessHours, due};
        const MINUTE: i64 = 60_000;
        let hours = if office {
            let day = Some((9 * 60, 17 * 60));
            BusinessHours::new("Europe/Berlin", [day, day, day, day, day, None, None], []).unwrap()
        } else {
            BusinessHours::always()
        };
        // 2026-11-23T00:00Z, a Monday.
        let start = 1_795_392_000_000 + start_minute * MINUTE;
        let target = target_minutes * MINUTE;
        let mut pauses: Vec<(UnixMillis, Option<UnixMillis>)> = Vec::new();
        let mut t = start;
        for (gap, length) in &gaps {
            let from = t + gap * MINUTE;
            let to = from + length * MINUTE;
            pauses.push((from, Some(to)));
            t = to;
        }
        if still_paused && let Some(last) = pauses.last_mut() {
            last.1 = None;
        }
        match due(&hours, start, target, &pauses) {
            Some(at) => {
                let paused: i64 = pauses
                    .iter()
                    .map(|(from, to)| {
                        let to = to.unwrap_or(i64::MAX).min(at);
                        hours.open_between(*from.max(&start), to)
                    })
                    .sum();
                prop_assert_eq!(hours.open_between(start, at) - paused, target);
                prop_assert!(pauses.iter().all(|(from, to)| at <= *from || to.is_some_and(|to| at > to) || at == *from));
            }
            None => {
                // Only an open pause stops the clock, and it began before the due time.
                prop_assert!(still_paused && !pauses.is_empty());
            }
        }
    }
}

// --- SLA clocks on ticket histories ------------------------------------------------

/// One step of a ticket's life, for the clocks.
#[derive(Clone, Debug)]
enum LifeStep {
    Reply { awaiting: bool },
    CustomerWrites,
    Note,
    Solve,
    Reopen,
}

fn life_step() -> impl Strategy<Value = LifeStep> {
    prop_oneof![
        any::<bool>().prop_map(|awaiting| LifeStep::Reply { awaiting }),
        Just(LifeStep::CustomerWrites),
        Just(LifeStep::Note),
        Just(LifeStep::Solve),
        Just(LifeStep::Reopen),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// For any history the rules allow: the resolution clock counts exactly its
    /// target of time the ticket was not pending between its start and its due
    /// time, has no due time while pending, and the first-response clock is met by
    /// the first public reply only.
    #[test]
    fn clocks_never_count_time_while_the_ticket_is_pending(
        steps in proptest::collection::vec((1..600i64, life_step()), 0..25),
        target in 1..3600u32,
    ) {
        use frontline_domain::sla::{BusinessHours, clocks::{ClockKind, clocks}, policy::Targets};
        let customer = Uuid::from_u128(1);
        let system = Actor::new("shop", Role::CustomerSystem);
        let agent = Actor::new("ana", Role::Agent);
        let open = TicketCommand::Open(Opening {
            tenant: tenant(),
            channel: Channel::Email,
            customer_id: customer,
            subject: "s".into(),
            body: "b".into(),
            product_area: "billing".into(),
            priority: Priority::Normal,
            idempotency_key: "k".into(),
            follow_up_of: None,
        });
        let mut ticket = Ticket::default();
        let mut history: Vec<(u64, Recorded<TicketEvent>)> = Vec::new();
        let mut now: UnixMillis = 1_000_000;
        let mut record = |ticket: &mut Ticket, command: &TicketCommand, actor: &Actor, at| {
            if let Ok(Some(event)) = ticket.decide("t", command, actor, at) {
                let recorded = Recorded { event, actor: actor.clone(), at };
                ticket.apply(&recorded);
                history.push((ticket.version, recorded));
            }
        };
        record(&mut ticket, &open, &system, now);
        for (i, (gap, s)) in steps.iter().enumerate() {
            now += gap * 1000;
            let (command, actor) = match s {
                LifeStep::Reply { awaiting } => (TicketCommand::Reply { body: "r".into(), awaiting_customer: *awaiting, idempotency_key: None }, &agent),
                LifeStep::CustomerWrites => (TicketCommand::AddCustomerMessage { customer_id: customer, body: "m".into(), channel: Channel::Email, idempotency_key: format!("m{i}") }, &system),
                LifeStep::Note => (TicketCommand::AddNote { body: "n".into(), idempotency_key: None }, &agent),
                LifeStep::Solve => (TicketCommand::Solve { resolution: String::new() }, &agent),
                LifeStep::Reopen => (TicketCommand::Reopen { reason: "again".into() }, &agent),
            };
            record(&mut ticket, &command, actor, now);
        }
        let targets = Targets { first_response_secs: target, next_response_secs: 0, resolution_secs: target };
        let clocks = clocks(history.iter().map(|(v, r)| (*v, r)), &targets, &BusinessHours::always(), 75);
        let resolution = clocks.iter().find(|c| c.kind == ClockKind::Resolution).unwrap();

        // Pending intervals, from the statuses the ticket itself went through.
        let mut pending: Vec<(UnixMillis, Option<UnixMillis>)> = Vec::new();
        let mut status = None;
        for (_, r) in &history {
            let after = r.event.status_after(status);
            match (status == Some(TicketStatus::Pending), after == Some(TicketStatus::Pending)) {
                (false, true) => pending.push((r.at, None)),
                (true, false) => if let Some(last) = pending.last_mut() { last.1 = Some(r.at) },
                _ => {}
            }
            status = after;
        }
        let pending_between = |from: UnixMillis, to: UnixMillis| -> i64 {
            pending.iter().map(|(a, b)| {
                let (a, b) = ((*a).max(from), b.unwrap_or(i64::MAX).min(to));
                (b - a).max(0)
            }).sum()
        };
        if resolution.met_at.is_none() {
            match resolution.due_at {
                Some(due) => prop_assert_eq!(
                    due - resolution.started_at - pending_between(resolution.started_at, due),
                    i64::from(target) * 1000
                ),
                None => prop_assert_eq!(ticket.status, Some(TicketStatus::Pending)),
            }
        }
        // The first response is met exactly by the first public reply (or a solve).
        let first = clocks.iter().find(|c| c.kind == ClockKind::FirstResponse).unwrap();
        let answered = history.iter().find(|(_, r)| matches!(r.event, TicketEvent::AgentReplied { .. } | TicketEvent::Solved { self_served: None, .. }));
        prop_assert_eq!(first.met_at, answered.map(|(_, r)| r.at));
    }
}
