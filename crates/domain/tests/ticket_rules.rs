//! The ticket rules, one test per rule. What the rules decide is checked on the
//! [`Ticket`]; what a ticket shows (messages, subject, times) on the [`TicketView`]
//! built from the same recorded events.
#![allow(clippy::unwrap_used)]

use frontline_domain::ticket::MessageKind;
use frontline_domain::{
    Actor, Aggregate, Channel, DomainError, Opening, Priority, Recorded, Role, Ticket,
    TicketCommand, TicketEvent, TicketStatus, TicketView, UnixMillis, limits,
};
use uuid::Uuid;

const ID: &str = "t-1";
const CUSTOMER: Uuid = Uuid::from_u128(0xC0FFEE);
const OTHER_CUSTOMER: Uuid = Uuid::from_u128(0xBEEF);

fn system() -> Actor {
    Actor::new("web-shop", Role::CustomerSystem)
}
fn agent() -> Actor {
    Actor::new("ana", Role::Agent)
}
fn manager() -> Actor {
    Actor::new("max", Role::Manager)
}
fn admin() -> Actor {
    Actor::new("root", Role::Admin)
}

/// Any time: for checks that refuse or repeat, when nothing is recorded.
const NOW: UnixMillis = 1_000_000;

/// A ticket and the events recorded on it, as the event log would keep them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Log {
    ticket: Ticket,
    events: Vec<Recorded<TicketEvent>>,
}

impl Log {
    /// What the ticket shows, built from its events.
    fn view(&self) -> TicketView {
        TicketView::from_events(&self.events)
    }

    fn decide(
        &self,
        id: &str,
        command: &TicketCommand,
        actor: &Actor,
    ) -> Result<Option<TicketEvent>, DomainError> {
        self.ticket.decide(id, command, actor, NOW)
    }
}

/// `decide` at time `now`, then record and `apply` what it decided at that time.
fn run(
    log: &mut Log,
    command: &TicketCommand,
    actor: &Actor,
    now: UnixMillis,
) -> Result<Option<TicketEvent>, DomainError> {
    let decided = log.ticket.decide(ID, command, actor, now)?;
    if let Some(event) = &decided {
        let recorded = Recorded {
            event: event.clone(),
            actor: actor.clone(),
            at: now,
        };
        log.ticket.apply(&recorded);
        log.events.push(recorded);
    }
    Ok(decided)
}

fn opening(key: &str) -> Opening {
    Opening {
        tenant: frontline_domain::TenantId::parse("tenant", "acme").unwrap(),
        channel: Channel::Email,
        customer_id: CUSTOMER,
        subject: "Router broken".into(),
        body: "It blinks red.".into(),
        product_area: "router-x200".into(),
        priority: Priority::High,
        idempotency_key: key.into(),
        follow_up_of: None,
    }
}
fn open(key: &str) -> TicketCommand {
    TicketCommand::Open(opening(key))
}
fn customer_message(key: &str) -> TicketCommand {
    TicketCommand::AddCustomerMessage {
        customer_id: CUSTOMER,
        body: "Still broken.".into(),
        channel: Channel::Chat,
        idempotency_key: key.into(),
    }
}
fn reply(awaiting_customer: bool, key: Option<&str>) -> TicketCommand {
    TicketCommand::Reply {
        body: "Please restart it.".into(),
        awaiting_customer,
        idempotency_key: key.map(str::to_string),
    }
}
fn note(key: Option<&str>) -> TicketCommand {
    TicketCommand::AddNote {
        body: "Known firmware issue.".into(),
        idempotency_key: key.map(str::to_string),
    }
}
fn solve() -> TicketCommand {
    TicketCommand::Solve {
        resolution: "Firmware updated.".into(),
    }
}
fn reopen() -> TicketCommand {
    TicketCommand::Reopen {
        reason: "Came back.".into(),
    }
}

/// A ticket opened by the customer at time 1.
fn opened() -> Log {
    let mut t = Log::default();
    run(&mut t, &open("open-1"), &system(), 1).unwrap().unwrap();
    t
}

/// A ticket opened and then solved at time 2.
fn solved() -> Log {
    let mut t = opened();
    run(&mut t, &solve(), &agent(), 2).unwrap().unwrap();
    t
}

fn is_precondition(r: Result<Option<TicketEvent>, DomainError>) -> bool {
    matches!(r, Err(DomainError::Precondition { .. }))
}
fn is_forbidden(r: Result<Option<TicketEvent>, DomainError>) -> bool {
    matches!(r, Err(DomainError::Forbidden { .. }))
}
fn invalid_field(r: Result<Option<TicketEvent>, DomainError>) -> Option<String> {
    match r {
        Err(DomainError::InvalidField { field, .. }) => Some(field),
        _ => None,
    }
}

// --- open ----------------------------------------------------------------------

#[test]
fn open_creates_a_new_ticket_at_version_1_with_the_customers_message() {
    let t = opened();
    assert_eq!(t.ticket.version, 1);
    assert!(t.ticket.exists());
    assert_eq!(t.ticket.status, Some(TicketStatus::New));
    assert_eq!(t.ticket.customer_id, CUSTOMER);
    assert_eq!(t.ticket.reopen_count, 0);
    let view = t.view();
    assert_eq!(view.version, 1);
    assert!(view.exists());
    assert_eq!(view.status, Some(TicketStatus::New));
    assert_eq!(view.customer_id, CUSTOMER);
    assert_eq!(view.channel, Some(Channel::Email));
    assert_eq!(view.subject, "Router broken");
    assert_eq!(view.product_area, "router-x200");
    assert_eq!(view.priority, Priority::High);
    assert_eq!(view.opened_at, 1);
    assert_eq!(view.messages.len(), 1);
    let first = &view.messages[0];
    assert_eq!(first.kind, MessageKind::Customer);
    assert_eq!(first.author_id, CUSTOMER.to_string());
    assert_eq!(first.body, "It blinks red.");
    assert_eq!(first.channel, Some(Channel::Email));
    assert_eq!(first.version, 1);
}

#[test]
fn repeated_open_with_the_same_key_records_nothing() {
    let mut t = opened();
    let before = t.clone();
    assert_eq!(run(&mut t, &open("open-1"), &system(), 5), Ok(None));
    assert_eq!(t, before);
}

#[test]
fn open_with_another_key_on_an_existing_ticket_is_refused() {
    let mut t = opened();
    assert!(is_precondition(run(&mut t, &open("open-2"), &system(), 5)));
}

#[test]
fn commands_on_an_unopened_ticket_are_not_found() {
    // Not found comes before any other state check: ownership included.
    let strangers_message = TicketCommand::AddCustomerMessage {
        customer_id: OTHER_CUSTOMER,
        body: "Hi.".into(),
        channel: Channel::Email,
        idempotency_key: "m-1".into(),
    };
    let commands = [
        (customer_message("m-1"), system()),
        (strangers_message, system()),
        (reply(false, None), agent()),
        (note(None), agent()),
        (solve(), agent()),
        (reopen(), manager()),
    ];
    // Unopened: no events at all, or only events this code does not know.
    let mut unknown = Ticket::default();
    unknown.skip_unknown();
    for ticket in [Ticket::default(), unknown] {
        for (command, actor) in &commands {
            let err = ticket.decide(ID, command, actor, NOW).unwrap_err();
            assert!(
                matches!(&err, DomainError::NotFound { kind: "ticket", id } if id == ID),
                "{command:?}: {err:?}"
            );
        }
    }
}

// --- replies -------------------------------------------------------------------

#[test]
fn new_open_and_pending_tickets_take_replies() {
    let mut t = opened();
    assert_eq!(t.ticket.status, Some(TicketStatus::New));
    run(&mut t, &reply(false, None), &agent(), 2)
        .unwrap()
        .unwrap();
    assert_eq!(t.ticket.status, Some(TicketStatus::Open));
    run(&mut t, &reply(true, None), &agent(), 3)
        .unwrap()
        .unwrap();
    assert_eq!(t.ticket.status, Some(TicketStatus::Pending));
    run(&mut t, &reply(false, None), &manager(), 4)
        .unwrap()
        .unwrap();
    assert_eq!(t.ticket.status, Some(TicketStatus::Open));
    let view = t.view();
    assert_eq!(view.first_response_at, Some(2));
    let last = view.messages.last().unwrap();
    assert_eq!(last.kind, MessageKind::AgentReply);
    assert_eq!(last.author_id, "max");
    assert_eq!(last.channel, None);
}

#[test]
fn a_reply_awaiting_the_customer_makes_the_ticket_pending() {
    let mut t = opened();
    run(&mut t, &reply(true, None), &agent(), 2)
        .unwrap()
        .unwrap();
    assert_eq!(t.ticket.status, Some(TicketStatus::Pending));
}

#[test]
fn a_customer_message_on_a_pending_ticket_opens_it() {
    let mut t = opened();
    run(&mut t, &reply(true, None), &agent(), 2)
        .unwrap()
        .unwrap();
    let event = run(&mut t, &customer_message("m-1"), &system(), 3)
        .unwrap()
        .unwrap();
    assert!(matches!(
        event,
        TicketEvent::CustomerMessageAdded {
            reopened: false,
            ..
        }
    ));
    assert_eq!(t.ticket.status, Some(TicketStatus::Open));
    assert_eq!(t.ticket.reopen_count, 0);
}

#[test]
fn a_reply_on_a_solved_ticket_is_refused() {
    let mut t = solved();
    assert!(is_precondition(run(
        &mut t,
        &reply(false, None),
        &agent(),
        3
    )));
    assert!(is_precondition(run(
        &mut t,
        &reply(true, Some("r-1")),
        &agent(),
        3
    )));
}

// --- notes ---------------------------------------------------------------------

#[test]
fn notes_are_never_customer_visible() {
    let mut t = opened();
    run(&mut t, &note(None), &agent(), 2).unwrap().unwrap();
    run(&mut t, &reply(false, None), &agent(), 3)
        .unwrap()
        .unwrap();
    run(&mut t, &note(None), &manager(), 4).unwrap().unwrap();

    let view = t.view();
    let notes: Vec<_> = view
        .messages
        .iter()
        .filter(|m| m.kind == MessageKind::InternalNote)
        .collect();
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().all(|m| !m.customer_visible()));
    assert_eq!(notes[0].author_id, "ana");
    let visible: Vec<_> = view.customer_visible_messages().map(|m| m.kind).collect();
    assert_eq!(visible, [MessageKind::Customer, MessageKind::AgentReply]);
}

#[test]
fn a_note_does_not_answer_the_customer() {
    let mut t = opened();
    run(&mut t, &note(None), &agent(), 2).unwrap().unwrap();
    assert_eq!(t.ticket.status, Some(TicketStatus::New));
    assert_eq!(t.view().first_response_at, None);
}

#[test]
fn notes_are_allowed_on_a_solved_ticket() {
    let mut t = solved();
    run(&mut t, &note(None), &agent(), 3).unwrap().unwrap();
    assert_eq!(t.ticket.status, Some(TicketStatus::Solved));
    assert_eq!(t.view().solved_at, Some(2));
    assert_eq!(
        t.view().messages.last().unwrap().kind,
        MessageKind::InternalNote
    );
}

// --- solve and reopen ----------------------------------------------------------

#[test]
fn solve_marks_the_ticket_solved_with_its_time() {
    let t = solved();
    assert_eq!(t.ticket.status, Some(TicketStatus::Solved));
    assert_eq!(t.view().solved_at, Some(2));
}

#[test]
fn solving_twice_is_refused() {
    let mut t = solved();
    assert!(is_precondition(run(&mut t, &solve(), &agent(), 3)));
}

#[test]
fn reopen_works_only_from_solved() {
    let mut t = opened(); // new
    assert!(is_precondition(run(&mut t, &reopen(), &agent(), 2)));
    run(&mut t, &reply(false, None), &agent(), 2)
        .unwrap()
        .unwrap(); // open
    assert!(is_precondition(run(&mut t, &reopen(), &agent(), 3)));
    run(&mut t, &reply(true, None), &agent(), 3)
        .unwrap()
        .unwrap(); // pending
    assert!(is_precondition(run(&mut t, &reopen(), &agent(), 4)));

    run(&mut t, &solve(), &agent(), 4).unwrap().unwrap();
    run(&mut t, &reopen(), &manager(), 5).unwrap().unwrap();
    assert_eq!(t.ticket.status, Some(TicketStatus::Open));
    assert_eq!(t.view().solved_at, None);
    assert_eq!(t.ticket.reopen_count, 1);
}

#[test]
fn a_customer_message_reopens_a_solved_ticket() {
    let mut t = solved();
    let event = run(&mut t, &customer_message("m-1"), &system(), 3)
        .unwrap()
        .unwrap();
    assert!(matches!(
        event,
        TicketEvent::CustomerMessageAdded { reopened: true, .. }
    ));
    assert_eq!(t.ticket.status, Some(TicketStatus::Open));
    assert_eq!(t.ticket.reopen_count, 1);
    assert_eq!(t.view().solved_at, None);
    assert_eq!(
        t.view().messages.last().unwrap().kind,
        MessageKind::Customer
    );
}

#[test]
fn the_reopen_limit_applies_to_agent_reopens() {
    let mut t = opened();
    let mut at = 2;
    for _ in 0..limits::MAX_REOPENS {
        run(&mut t, &solve(), &agent(), at).unwrap().unwrap();
        run(&mut t, &reopen(), &agent(), at + 1).unwrap().unwrap();
        at += 2;
    }
    assert_eq!(t.ticket.reopen_count, limits::MAX_REOPENS);
    run(&mut t, &solve(), &agent(), at).unwrap().unwrap();
    assert!(is_precondition(run(&mut t, &reopen(), &agent(), at + 1)));
    assert!(is_precondition(run(
        &mut t,
        &customer_message("late"),
        &system(),
        at + 1
    )));
    assert_eq!(t.ticket.status, Some(TicketStatus::Solved));
}

#[test]
fn the_reopen_limit_applies_to_customer_messages() {
    let mut t = opened();
    let mut at = 2;
    for i in 0..limits::MAX_REOPENS {
        run(&mut t, &solve(), &agent(), at).unwrap().unwrap();
        let event = run(
            &mut t,
            &customer_message(&format!("m-{i}")),
            &system(),
            at + 1,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(
            event,
            TicketEvent::CustomerMessageAdded { reopened: true, .. }
        ));
        at += 2;
    }
    assert_eq!(t.ticket.reopen_count, limits::MAX_REOPENS);
    run(&mut t, &solve(), &agent(), at).unwrap().unwrap();
    assert!(is_precondition(run(
        &mut t,
        &customer_message("late"),
        &system(),
        at + 1
    )));
    assert!(is_precondition(run(&mut t, &reopen(), &manager(), at + 1)));
    assert_eq!(t.ticket.reopen_count, limits::MAX_REOPENS);
}

#[test]
fn both_reopen_paths_count_towards_one_limit() {
    let mut t = opened();
    let mut at = 2;
    for i in 0..limits::MAX_REOPENS {
        run(&mut t, &solve(), &agent(), at).unwrap().unwrap();
        let command = if i % 2 == 0 {
            reopen()
        } else {
            customer_message(&format!("m-{i}"))
        };
        let actor = if i % 2 == 0 { agent() } else { system() };
        run(&mut t, &command, &actor, at + 1).unwrap().unwrap();
        at += 2;
    }
    run(&mut t, &solve(), &agent(), at).unwrap().unwrap();
    assert!(is_precondition(run(&mut t, &reopen(), &agent(), at + 1)));
    assert!(is_precondition(run(
        &mut t,
        &customer_message("late"),
        &system(),
        at + 1
    )));
}

// --- continuing ----------------------------------------------------------------

#[test]
fn another_customer_may_not_continue_the_ticket() {
    let mut t = opened();
    let command = TicketCommand::AddCustomerMessage {
        customer_id: OTHER_CUSTOMER,
        body: "Hi, me too.".into(),
        channel: Channel::Email,
        idempotency_key: "m-other".into(),
    };
    assert!(is_precondition(run(&mut t, &command, &system(), 2)));
    assert_eq!(t.ticket.version, 1);
}

// --- idempotency keys ----------------------------------------------------------

#[test]
fn a_repeated_customer_message_key_records_nothing() {
    let mut t = opened();
    run(&mut t, &customer_message("m-1"), &system(), 2)
        .unwrap()
        .unwrap();
    let before = t.clone();
    assert_eq!(
        run(&mut t, &customer_message("m-1"), &system(), 3),
        Ok(None)
    );
    assert_eq!(t, before);
}

#[test]
fn a_repeated_reply_key_records_nothing() {
    let mut t = opened();
    run(&mut t, &reply(true, Some("r-1")), &agent(), 2)
        .unwrap()
        .unwrap();
    let before = t.clone();
    assert_eq!(
        run(&mut t, &reply(true, Some("r-1")), &agent(), 3),
        Ok(None)
    );
    assert_eq!(t, before);
}

#[test]
fn a_repeated_note_key_records_nothing() {
    let mut t = opened();
    run(&mut t, &note(Some("n-1")), &agent(), 2)
        .unwrap()
        .unwrap();
    let before = t.clone();
    assert_eq!(run(&mut t, &note(Some("n-1")), &agent(), 3), Ok(None));
    assert_eq!(t, before);
}

#[test]
fn a_retried_request_after_a_state_change_still_records_nothing() {
    // The reply was recorded, then the ticket was solved; the retry must not fail.
    let mut t = opened();
    run(&mut t, &reply(false, Some("r-1")), &agent(), 2)
        .unwrap()
        .unwrap();
    run(&mut t, &customer_message("m-1"), &system(), 3)
        .unwrap()
        .unwrap();
    run(&mut t, &solve(), &agent(), 4).unwrap().unwrap();
    assert_eq!(
        run(&mut t, &reply(false, Some("r-1")), &agent(), 5),
        Ok(None)
    );
    // ...and a retried customer message does not reopen the ticket.
    assert_eq!(
        run(&mut t, &customer_message("m-1"), &system(), 5),
        Ok(None)
    );
    assert_eq!(t.ticket.status, Some(TicketStatus::Solved));
    assert_eq!(t.ticket.reopen_count, 0);
}

#[test]
fn commands_without_a_key_are_always_recorded() {
    let mut t = opened();
    for at in 2..5 {
        assert!(
            run(&mut t, &reply(false, None), &agent(), at)
                .unwrap()
                .is_some()
        );
        assert!(run(&mut t, &note(None), &agent(), at).unwrap().is_some());
    }
    assert_eq!(t.ticket.version, 7);
    assert_eq!(t.view().messages.len(), 7);
}

// --- roles ---------------------------------------------------------------------

#[test]
fn customer_systems_may_not_reply_note_solve_or_reopen() {
    let mut t = solved();
    for command in [reply(false, None), note(None), solve(), reopen()] {
        assert!(
            is_forbidden(run(&mut t, &command, &system(), 3)),
            "{command:?}"
        );
    }
    let mut t = opened();
    for command in [reply(false, None), note(None), solve()] {
        assert!(
            is_forbidden(run(&mut t, &command, &system(), 3)),
            "{command:?}"
        );
    }
}

#[test]
fn agents_and_managers_may_not_open_or_add_customer_messages() {
    for actor in [agent(), manager()] {
        assert!(is_forbidden(run(
            &mut Log::default(),
            &open("k"),
            &actor,
            1
        )));
        assert!(is_forbidden(run(
            &mut opened(),
            &customer_message("m-1"),
            &actor,
            2
        )));
    }
}

#[test]
fn admins_may_open_but_not_reply() {
    let mut t = Log::default();
    assert!(run(&mut t, &open("k"), &admin(), 1).unwrap().is_some());
    assert!(
        run(&mut t, &customer_message("m-1"), &admin(), 2)
            .unwrap()
            .is_some()
    );
    assert!(is_forbidden(run(&mut t, &reply(false, None), &admin(), 3)));
    assert!(is_forbidden(run(&mut t, &note(None), &admin(), 3)));
    assert!(is_forbidden(run(&mut t, &solve(), &admin(), 3)));
}

#[test]
fn role_checks_come_before_existence_checks() {
    let unknown = Log::default();
    let refused = [
        (reply(false, None), system()),
        (note(None), system()),
        (solve(), system()),
        (reopen(), system()),
        (reply(false, None), admin()),
        (customer_message("m-1"), agent()),
        (customer_message("m-1"), manager()),
    ];
    for (command, actor) in refused {
        let err = unknown.decide(ID, &command, &actor).unwrap_err();
        assert!(
            matches!(err, DomainError::Forbidden { action, role } if action == command.action() && role == actor.role),
            "{command:?} by {actor:?}: {err:?}"
        );
    }
}

// --- validation ----------------------------------------------------------------

fn open_with(edit: impl FnOnce(&mut Opening)) -> TicketCommand {
    let mut o = opening("k");
    edit(&mut o);
    TicketCommand::Open(o)
}

fn open_field_error(edit: impl FnOnce(&mut Opening)) -> Option<String> {
    invalid_field(run(&mut Log::default(), &open_with(edit), &system(), 1))
}

#[test]
fn subject_must_be_non_empty_and_at_most_200_characters() {
    assert_eq!(
        open_field_error(|o| o.subject = String::new()).as_deref(),
        Some("subject")
    );
    assert_eq!(
        open_field_error(|o| o.subject = "  \t".into()).as_deref(),
        Some("subject")
    );
    let long = "s".repeat(limits::MAX_SUBJECT_CHARS + 1);
    assert_eq!(
        open_field_error(|o| o.subject = long).as_deref(),
        Some("subject")
    );
    let longest = "é".repeat(limits::MAX_SUBJECT_CHARS);
    assert_eq!(open_field_error(|o| o.subject = longest), None);
}

#[test]
fn bodies_must_be_at_most_32_kib() {
    let too_long = "x".repeat(limits::MAX_BODY_BYTES + 1);
    let field = open_field_error(|o| o.body = too_long.clone());
    assert_eq!(field.as_deref(), Some("body"));
    let longest = "x".repeat(limits::MAX_BODY_BYTES);
    assert_eq!(open_field_error(|o| o.body = longest.clone()), None);

    let t = opened();
    let commands = [
        (
            TicketCommand::AddCustomerMessage {
                customer_id: CUSTOMER,
                body: too_long.clone(),
                channel: Channel::Chat,
                idempotency_key: "m-1".into(),
            },
            system(),
        ),
        (
            TicketCommand::Reply {
                body: too_long.clone(),
                awaiting_customer: false,
                idempotency_key: None,
            },
            agent(),
        ),
        (
            TicketCommand::AddNote {
                body: too_long.clone(),
                idempotency_key: None,
            },
            agent(),
        ),
    ];
    for (command, actor) in commands {
        let field = invalid_field(t.clone().decide(ID, &command, &actor));
        assert_eq!(field.as_deref(), Some("body"), "{command:?}");
    }
}

#[test]
fn bodies_must_not_be_empty() {
    assert_eq!(
        open_field_error(|o| o.body = " \n ".into()).as_deref(),
        Some("body")
    );
    let empty_reply = TicketCommand::Reply {
        body: String::new(),
        awaiting_customer: false,
        idempotency_key: None,
    };
    assert_eq!(
        invalid_field(opened().decide(ID, &empty_reply, &agent())).as_deref(),
        Some("body")
    );
}

#[test]
fn resolution_and_reason_must_be_at_most_32_kib() {
    let too_long = "x".repeat(limits::MAX_BODY_BYTES + 1);
    let solve = TicketCommand::Solve {
        resolution: too_long.clone(),
    };
    let reopen = TicketCommand::Reopen { reason: too_long };
    assert_eq!(
        invalid_field(opened().decide(ID, &solve, &agent())).as_deref(),
        Some("resolution")
    );
    assert_eq!(
        invalid_field(solved().decide(ID, &reopen, &agent())).as_deref(),
        Some("reason")
    );
    // Both are optional.
    let t = opened();
    let empty = TicketCommand::Solve {
        resolution: String::new(),
    };
    assert!(t.decide(ID, &empty, &agent()).unwrap().is_some());
}

#[test]
fn product_area_must_be_a_lower_case_slug() {
    for bad in [
        String::new(),
        "Router".to_string(),
        "router x200".to_string(),
        "router/x200".to_string(),
        "a".repeat(limits::MAX_PRODUCT_AREA_CHARS + 1),
    ] {
        let field = open_field_error(|o| o.product_area = bad.clone());
        assert_eq!(field.as_deref(), Some("product_area"), "{bad:?}");
    }
    let longest = "a".repeat(limits::MAX_PRODUCT_AREA_CHARS);
    assert_eq!(open_field_error(|o| o.product_area = longest), None);
}

#[test]
fn idempotency_keys_must_be_1_to_128_printable_ascii_characters() {
    let bad_keys = [
        String::new(),
        "has space".to_string(),
        "tab\tkey".to_string(),
        "schlüssel".to_string(),
        "k".repeat(limits::MAX_IDEMPOTENCY_KEY_CHARS + 1),
    ];
    let t = opened();
    for bad in &bad_keys {
        let field = open_field_error(|o| o.idempotency_key = bad.clone());
        assert_eq!(field.as_deref(), Some("idempotency_key"), "open {bad:?}");
        let commands = [
            (customer_message(bad), system()),
            (reply(false, Some(bad)), agent()),
            (note(Some(bad)), agent()),
        ];
        for (command, actor) in commands {
            let field = invalid_field(t.decide(ID, &command, &actor));
            assert_eq!(field.as_deref(), Some("idempotency_key"), "{command:?}");
        }
    }
    let longest = "k".repeat(limits::MAX_IDEMPOTENCY_KEY_CHARS);
    assert_eq!(open_field_error(|o| o.idempotency_key = longest), None);
}

// --- versions ------------------------------------------------------------------

#[test]
fn each_event_adds_exactly_one_version_and_stamps_its_message() {
    let mut t = Log::default();
    let steps = [
        (open("open-1"), system()),
        (note(None), agent()),
        (reply(true, None), agent()),
        (customer_message("m-1"), system()),
        (solve(), agent()),
        (reopen(), manager()),
        (reply(false, Some("r-1")), agent()),
    ];
    for (i, (command, actor)) in steps.iter().enumerate() {
        let before = t.ticket.version;
        let messages_before = t.view().messages.len();
        run(&mut t, command, actor, 100 + i as UnixMillis)
            .unwrap()
            .unwrap();
        assert_eq!(t.ticket.version, before + 1, "{command:?}");
        assert_eq!(t.ticket.version, i as u64 + 1);
        assert_eq!(Aggregate::version(&t.ticket), t.ticket.version);
        let view = t.view();
        assert_eq!(view.version, t.ticket.version);
        if view.messages.len() > messages_before {
            assert_eq!(view.messages.len(), messages_before + 1);
            assert_eq!(
                view.messages.last().unwrap().version,
                view.version,
                "{command:?}"
            );
        }
    }
    let versions: Vec<u64> = t.view().messages.iter().map(|m| m.version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 7]);
}

/// The time given to `decide` is the time the event is recorded at, and so the
/// time the view shows.
#[test]
fn updated_at_follows_the_time_decide_was_given() {
    let mut t = Log::default();
    run(&mut t, &open("open-1"), &system(), 1_000)
        .unwrap()
        .unwrap();
    let view = t.view();
    assert_eq!((view.opened_at, view.updated_at), (1_000, 1_000));
    run(&mut t, &note(None), &agent(), 2_000).unwrap().unwrap();
    let view = t.view();
    assert_eq!(view.updated_at, 2_000);
    assert_eq!(view.messages.last().unwrap().at, 2_000);
    run(&mut t, &reply(true, None), &agent(), 2_500)
        .unwrap()
        .unwrap();
    run(&mut t, &solve(), &agent(), 3_000).unwrap().unwrap();
    let view = t.view();
    assert_eq!((view.opened_at, view.updated_at), (1_000, 3_000));
    assert_eq!(
        (view.first_response_at, view.solved_at),
        (Some(2_500), Some(3_000))
    );
    // Nothing recorded, nothing moves.
    run(&mut t, &note(None), &system(), 4_000).unwrap_err();
    assert_eq!(t.view().updated_at, 3_000);
}

/// Keys are scoped: the same key on another channel, or for another kind of
/// request, is a different request and is recorded.
#[test]
fn keys_are_scoped_by_channel_and_request_kind() {
    let mut t = opened();
    let system = system();
    let agent = agent();
    let msg = |channel, key: &str| TicketCommand::AddCustomerMessage {
        customer_id: t.ticket.customer_id,
        body: "again".into(),
        channel,
        idempotency_key: key.into(),
    };
    let opening_key = t.ticket.idempotency_keys.iter().next().unwrap().clone();
    let raw_key = opening_key.split_once(':').unwrap().1.to_string();
    // The opening key on another channel is a new message.
    let chat = msg(Channel::Chat, &raw_key);
    assert!(t.decide("t", &chat, &system).unwrap().is_some());
    let reply = TicketCommand::Reply {
        body: "hi".into(),
        awaiting_customer: false,
        idempotency_key: Some("k".into()),
    };
    run(&mut t, &reply, &agent, 5).unwrap().unwrap();
    let note = TicketCommand::AddNote {
        body: "n".into(),
        idempotency_key: Some("k".into()),
    };
    assert!(
        t.decide("t", &note, &agent).unwrap().is_some(),
        "a note with a reply's key"
    );
    assert!(
        t.decide("t", &reply, &agent).unwrap().is_none(),
        "the reply itself repeats"
    );
}

/// Another customer repeating a key the ticket took is refused, not silently accepted.
#[test]
fn another_customers_repeated_key_is_refused() {
    let t = opened();
    let opening_key = t.ticket.idempotency_keys.iter().next().unwrap().clone();
    let (channel, key) = opening_key.split_once(':').unwrap();
    assert_eq!(channel, "web-shop/email");
    let cmd = TicketCommand::AddCustomerMessage {
        customer_id: Uuid::from_u128(999),
        body: "me too".into(),
        channel: Channel::Email,
        idempotency_key: key.into(),
    };
    let err = t.decide("t", &cmd, &system()).unwrap_err();
    assert!(matches!(err, DomainError::Precondition { .. }), "{err:?}");
}
