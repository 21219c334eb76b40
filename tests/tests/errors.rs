//! Every public call's error paths, each answered with the one gRPC code the contract
//! gives it: INVALID_ARGUMENT (naming the field), NOT_FOUND, FAILED_PRECONDITION,
//! ALREADY_EXISTS, ABORTED, PERMISSION_DENIED, UNAUTHENTICATED, RESOURCE_EXHAUSTED
//! and UNAVAILABLE — against the real services and a real NATS server.
#![allow(clippy::unwrap_used)]

use std::{
    fmt::Debug,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use frontline_domain::{Actor, Role};
use frontline_e2e::{Cluster, SECRET, submit_request, violated_field};
use frontline_proto::v1::{
    self, conversation_service_client::ConversationServiceClient,
    intake_service_client::IntakeServiceClient,
};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

/// Asserts that `result` failed with `code`, and returns the status.
fn expect_code<T: Debug>(result: Result<Response<T>, Status>, code: Code, what: &str) -> Status {
    match result {
        Ok(response) => panic!("{what}: expected {code:?}, got a response {response:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{what}: {status:?}");
            status
        }
    }
}

/// Asserts that `result` failed with INVALID_ARGUMENT naming `field`.
fn expect_invalid<T: Debug>(result: Result<Response<T>, Status>, field: &str, what: &str) {
    let status = expect_code(result, Code::InvalidArgument, what);
    assert_eq!(
        violated_field(&status).as_deref(),
        Some(field),
        "{what}: {status:?}"
    );
}

fn random_id() -> String {
    Uuid::new_v4().to_string()
}

fn reply(ticket_id: &str, body: &str) -> v1::ReplyRequest {
    v1::ReplyRequest {
        ticket_id: ticket_id.to_string(),
        body: body.to_string(),
        awaiting_customer: false,
        expected_version: None,
        idempotency_key: String::new(),
    }
}

fn note(ticket_id: &str) -> v1::AddNoteRequest {
    v1::AddNoteRequest {
        ticket_id: ticket_id.to_string(),
        body: "internal".to_string(),
        expected_version: None,
        idempotency_key: String::new(),
    }
}

fn solve(ticket_id: &str) -> v1::SolveRequest {
    v1::SolveRequest {
        ticket_id: ticket_id.to_string(),
        resolution: "done".to_string(),
        expected_version: None,
    }
}

fn reopen(ticket_id: &str) -> v1::ReopenRequest {
    v1::ReopenRequest {
        ticket_id: ticket_id.to_string(),
        reason: "again".to_string(),
        expected_version: None,
    }
}

fn get_ticket(ticket_id: &str, as_of_version: Option<u64>) -> v1::GetTicketRequest {
    v1::GetTicketRequest {
        ticket_id: ticket_id.to_string(),
        as_of_version,
    }
}

fn history(ticket_id: &str) -> v1::GetTicketHistoryRequest {
    v1::GetTicketHistoryRequest {
        ticket_id: ticket_id.to_string(),
    }
}

fn fact(key: &str, value: &str) -> v1::Fact {
    v1::Fact {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// A request carrying `authorization` exactly as given.
fn with_auth<T>(message: T, authorization: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    request
}

/// Bad input on every call is INVALID_ARGUMENT with a field violation naming the
/// offending request field, and a refused submit stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();

    // SubmitTicket: one bad field at a time.
    let mut cases: Vec<(&str, v1::SubmitTicketRequest)> = Vec::new();
    let mut r = submit_request("bad-channel", "c@example.com");
    r.channel = v1::Channel::Unspecified.into();
    cases.push(("channel", r));
    let mut r = submit_request("no-customer", "c@example.com");
    r.customer = None;
    cases.push(("customer", r));
    let mut r = submit_request("empty-customer", "c@example.com");
    r.customer = Some(v1::CustomerIdentity::default());
    cases.push(("customer", r));
    cases.push((
        "customer.email",
        submit_request("bad-email", "not-an-email"),
    ));
    let mut r = submit_request("bad-phone", "c@example.com");
    r.customer = Some(v1::CustomerIdentity {
        phone: "030 1234567".into(),
        ..Default::default()
    });
    cases.push(("customer.phone", r));
    cases.push(("idempotency_key", submit_request("", "c@example.com")));
    cases.push((
        "idempotency_key",
        submit_request("has space", "c@example.com"),
    ));
    let mut r = submit_request("empty-subject", "c@example.com");
    r.subject = String::new();
    cases.push(("subject", r));
    let mut r = submit_request("big-body", "c@example.com");
    r.body = "x".repeat(32 * 1024 + 1);
    cases.push(("body", r));
    let mut r = submit_request("bad-area", "c@example.com");
    r.product_area = "Router X".into();
    cases.push(("product_area", r));
    let mut r = submit_request("bad-fact", "c@example.com");
    r.facts = vec![fact("serial", "SN-1"), fact("Bad Key", "x")];
    cases.push(("facts[1].key", r));
    let mut r = submit_request("many-facts", "c@example.com");
    r.facts = (0..33).map(|i| fact(&format!("k{i}"), "v")).collect();
    cases.push(("facts", r));
    let mut r = submit_request("bad-continue", "c@example.com");
    r.continue_ticket_id = "not-a-uuid".into();
    cases.push(("continue_ticket_id", r));
    for (field, request) in cases {
        let what = format!("SubmitTicket with a bad {field}");
        expect_invalid(intake.submit_ticket(request).await, field, &what);
    }

    // A refused submit stores nothing: a bad fact on a fresh key opens no ticket.
    let before = cluster.ticket_event_counts().await.unwrap();
    let mut r = submit_request("fresh-key-bad-fact", "fresh@example.com");
    r.facts = vec![fact("serial", "SN-1"), fact("Bad Key", "x")];
    expect_invalid(intake.submit_ticket(r).await, "facts[1].key", "bad fact");
    let after = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(after, before, "a refused submit must not store events");
    let would_be =
        frontline_domain::ids::ticket_id(frontline_domain::Channel::Email, "fresh-key-bad-fact");
    assert!(!after.contains_key(&format!("frontline.ticket.{would_be}")));

    // GetCustomer: exactly one of customer_id or identity, and a UUID.
    let neither = v1::GetCustomerRequest::default();
    expect_invalid(
        intake.get_customer(neither).await,
        "customer_id",
        "GetCustomer with neither",
    );
    let both = v1::GetCustomerRequest {
        customer_id: random_id(),
        identity: Some(v1::CustomerIdentity {
            email: "c@example.com".into(),
            ..Default::default()
        }),
    };
    expect_invalid(
        intake.get_customer(both).await,
        "customer_id",
        "GetCustomer with both",
    );
    let bad_id = v1::GetCustomerRequest {
        customer_id: "nope".into(),
        identity: None,
    };
    expect_invalid(
        intake.get_customer(bad_id).await,
        "customer_id",
        "GetCustomer with a bad customer_id",
    );

    // Conversation: ticket ids must be UUIDs.
    expect_invalid(agent.reply(reply("nope", "hi")).await, "ticket_id", "Reply");
    expect_invalid(agent.add_note(note("nope")).await, "ticket_id", "AddNote");
    expect_invalid(agent.solve(solve("nope")).await, "ticket_id", "Solve");
    expect_invalid(agent.reopen(reopen("nope")).await, "ticket_id", "Reopen");
    expect_invalid(
        agent.get_ticket(get_ticket("nope", None)).await,
        "ticket_id",
        "GetTicket",
    );
    expect_invalid(
        agent.get_ticket_history(history("nope")).await,
        "ticket_id",
        "GetTicketHistory",
    );

    // On a real ticket: an empty reply, and versions outside the ticket's history.
    let opened = intake
        .submit_ticket(submit_request("real-1", "real@example.com"))
        .await
        .unwrap()
        .into_inner();
    let id = opened.ticket_id;
    expect_invalid(
        agent.reply(reply(&id, "")).await,
        "body",
        "Reply with an empty body",
    );
    expect_invalid(
        agent.get_ticket(get_ticket(&id, Some(0))).await,
        "as_of_version",
        "GetTicket as of version 0",
    );
    expect_invalid(
        agent
            .get_ticket(get_ticket(&id, Some(opened.ticket_version + 1)))
            .await,
        "as_of_version",
        "GetTicket beyond the ticket's version",
    );
    cluster.shutdown().await;
}

/// Unknown tickets and customers are NOT_FOUND, on every call that names one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tickets_and_customers_are_not_found() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    let unknown = random_id();

    let mut r = submit_request("continue-unknown", "c@example.com");
    r.continue_ticket_id = unknown.clone();
    expect_code(
        intake.submit_ticket(r).await,
        Code::NotFound,
        "continue an unknown ticket",
    );

    expect_code(
        agent.reply(reply(&unknown, "hi")).await,
        Code::NotFound,
        "Reply",
    );
    expect_code(
        agent.add_note(note(&unknown)).await,
        Code::NotFound,
        "AddNote",
    );
    expect_code(agent.solve(solve(&unknown)).await, Code::NotFound, "Solve");
    expect_code(
        agent.reopen(reopen(&unknown)).await,
        Code::NotFound,
        "Reopen",
    );
    expect_code(
        agent.get_ticket(get_ticket(&unknown, None)).await,
        Code::NotFound,
        "GetTicket",
    );
    expect_code(
        agent.get_ticket(get_ticket(&unknown, Some(1))).await,
        Code::NotFound,
        "GetTicket as of version 1",
    );
    expect_code(
        agent.get_ticket_history(history(&unknown)).await,
        Code::NotFound,
        "GetTicketHistory",
    );

    let by_email = v1::GetCustomerRequest {
        customer_id: String::new(),
        identity: Some(v1::CustomerIdentity {
            email: "nobody@example.com".into(),
            ..Default::default()
        }),
    };
    expect_code(
        intake.get_customer(by_email).await,
        Code::NotFound,
        "GetCustomer by an unknown email",
    );
    let by_id = v1::GetCustomerRequest {
        customer_id: random_id(),
        identity: None,
    };
    expect_code(
        intake.get_customer(by_id).await,
        Code::NotFound,
        "GetCustomer by an unknown id",
    );
    cluster.shutdown().await;
}

/// Illegal transitions are FAILED_PRECONDITION, a reused key is ALREADY_EXISTS, and
/// a stale `expected_version` is ABORTED and records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_transitions_reused_keys_and_stale_versions() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();

    // A solved ticket takes no reply and cannot be solved twice.
    let solved = intake
        .submit_ticket(submit_request("solved-1", "ana@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    agent.solve(solve(&solved)).await.unwrap();
    expect_code(
        agent.reply(reply(&solved, "more")).await,
        Code::FailedPrecondition,
        "reply on a solved ticket",
    );
    expect_code(
        agent.solve(solve(&solved)).await,
        Code::FailedPrecondition,
        "solve a solved ticket",
    );

    // An open ticket cannot be reopened.
    let open = intake
        .submit_ticket(submit_request("open-1", "ana@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let replied = agent
        .reply(reply(&open, "On it"))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(replied.status(), v1::TicketStatus::Open);
    expect_code(
        agent.reopen(reopen(&open)).await,
        Code::FailedPrecondition,
        "reopen an open ticket",
    );

    // Another customer cannot continue Ana's ticket.
    let mut r = submit_request("intruder-1", "bob@example.com");
    r.continue_ticket_id = open.clone();
    expect_code(
        intake.submit_ticket(r).await,
        Code::FailedPrecondition,
        "continue another customer's ticket",
    );

    // The same key on the same channel, for a different customer.
    expect_code(
        intake
            .submit_ticket(submit_request("open-1", "bob@example.com"))
            .await,
        Code::AlreadyExists,
        "reuse a key for another customer",
    );

    // A stale expected_version: the ticket moved on (version 2 → 3).
    let events_before = agent
        .get_ticket_history(history(&open))
        .await
        .unwrap()
        .into_inner()
        .events
        .len();
    agent.add_note(note(&open)).await.unwrap();
    let moved_on = events_before + 1;
    let mut stale = reply(&open, "Based on an old view");
    stale.expected_version = Some(replied.version);
    expect_code(agent.reply(stale).await, Code::Aborted, "stale reply");
    let events_after = agent
        .get_ticket_history(history(&open))
        .await
        .unwrap()
        .into_inner()
        .events
        .len();
    assert_eq!(events_after, moved_on, "a stale call records nothing");
    cluster.shutdown().await;
}

/// Roles are enforced: only customer systems (and admins) submit, only agents and
/// managers work tickets, only staff read history — and the role is checked before
/// the ticket is even looked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_before_anything_else() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop_intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let id = shop_intake
        .submit_ticket(submit_request("roles-1", "ana@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;

    let mut agent_intake = cluster.intake("ana", Role::Agent).await.unwrap();
    expect_code(
        agent_intake
            .submit_ticket(submit_request("roles-2", "ana@example.com"))
            .await,
        Code::PermissionDenied,
        "agent submits",
    );

    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    expect_code(
        shop.reply(reply(&id, "hi")).await,
        Code::PermissionDenied,
        "customer system replies",
    );
    expect_code(
        shop.add_note(note(&id)).await,
        Code::PermissionDenied,
        "customer system adds a note",
    );
    expect_code(
        shop.solve(solve(&id)).await,
        Code::PermissionDenied,
        "customer system solves",
    );
    expect_code(
        shop.reopen(reopen(&id)).await,
        Code::PermissionDenied,
        "customer system reopens",
    );
    expect_code(
        shop.get_ticket_history(history(&id)).await,
        Code::PermissionDenied,
        "customer system reads history",
    );
    // Role before existence: the caller learns nothing about the ticket.
    expect_code(
        shop.reply(reply(&random_id(), "hi")).await,
        Code::PermissionDenied,
        "customer system replies to an unknown ticket",
    );
    expect_code(
        shop.get_ticket_history(history(&random_id())).await,
        Code::PermissionDenied,
        "customer system reads an unknown ticket's history",
    );

    let mut admin = cluster.conversation("root", Role::Admin).await.unwrap();
    expect_code(
        admin.reply(reply(&id, "hi")).await,
        Code::PermissionDenied,
        "admin replies",
    );

    // Nothing was recorded by any refused call.
    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(counts.get(&format!("frontline.ticket.{id}")), Some(&1));
    assert_eq!(counts.len(), 1);
    cluster.shutdown().await;
}

/// Calls without a valid bearer token are UNAUTHENTICATED on both services: no
/// header, a malformed token, a token signed with another secret, an unknown role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_valid_token_are_unauthenticated() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = IntakeServiceClient::new(cluster.intake_channel().await.unwrap());
    let mut conversation =
        ConversationServiceClient::new(cluster.conversation_channel().await.unwrap());

    let foreign = frontline_runtime::auth::mint(
        "other",
        &Actor::new("mallory", Role::Admin),
        Duration::from_secs(3600),
    )
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = frontline_runtime::auth::Claims {
        sub: "mallory".into(),
        role: "wizard".into(),
        exp: now + 3600,
        iat: now,
    };
    let unknown_role = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();

    // No authorization header at all.
    expect_code(
        intake
            .submit_ticket(submit_request("anon-1", "c@example.com"))
            .await,
        Code::Unauthenticated,
        "intake without a token",
    );
    expect_code(
        conversation
            .get_ticket(get_ticket(&random_id(), None))
            .await,
        Code::Unauthenticated,
        "conversation without a token",
    );

    let headers = [
        ("a garbage token", "Bearer garbage".to_string()),
        (
            "a token signed with another secret",
            format!("Bearer {foreign}"),
        ),
        (
            "a token with an unknown role",
            format!("Bearer {unknown_role}"),
        ),
    ];
    for (what, header) in &headers {
        let request = with_auth(submit_request("anon-2", "c@example.com"), header);
        expect_code(
            intake.submit_ticket(request).await,
            Code::Unauthenticated,
            &format!("intake with {what}"),
        );
        let request = with_auth(
            v1::GetCustomerRequest {
                customer_id: random_id(),
                identity: None,
            },
            header,
        );
        expect_code(
            intake.get_customer(request).await,
            Code::Unauthenticated,
            &format!("intake GetCustomer with {what}"),
        );
        let request = with_auth(get_ticket(&random_id(), None), header);
        expect_code(
            conversation.get_ticket(request).await,
            Code::Unauthenticated,
            &format!("conversation with {what}"),
        );
        let request = with_auth(reply(&random_id(), "hi"), header);
        expect_code(
            conversation.reply(request).await,
            Code::Unauthenticated,
            &format!("conversation Reply with {what}"),
        );
    }

    // Nothing was stored by any of them.
    assert!(cluster.ticket_event_counts().await.unwrap().is_empty());
    cluster.shutdown().await;
}

/// A request over the 256 KiB limit is RESOURCE_EXHAUSTED, on both services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_resource_exhausted() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    let huge = "x".repeat(300 * 1024);

    let mut r = submit_request("huge-1", "c@example.com");
    r.body = huge.clone();
    let submitted = intake.submit_ticket(r).await;
    let replied = agent.reply(reply(&random_id(), &huge)).await;
    // Both calls are made before asserting, so a failure reports both services.
    let codes = (
        submitted.as_ref().err().map(Status::code),
        replied.as_ref().err().map(Status::code),
    );
    assert_eq!(
        codes,
        (Some(Code::ResourceExhausted), Some(Code::ResourceExhausted)),
        "(SubmitTicket, Reply) of 300 KiB: {:?} / {:?}",
        submitted.err(),
        replied.err(),
    );
    assert!(cluster.ticket_event_counts().await.unwrap().is_empty());
    cluster.shutdown().await;
}

/// With NATS down a submit is UNAVAILABLE; once NATS is back, retrying with the same
/// key opens the ticket exactly once, and a further repeat finds the same ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_log_is_unavailable_and_retries_double_nothing() {
    let mut cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let request = || submit_request("outage-1", "ana@example.com");

    cluster.nats.kill().unwrap();
    let during = tokio::time::timeout(Duration::from_secs(60), intake.submit_ticket(request()))
        .await
        .expect("a submit with NATS down must answer, not hang");
    expect_code(during, Code::Unavailable, "submit with NATS down");

    cluster.nats.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        match intake.submit_ticket(request()).await {
            Ok(response) => break response.into_inner(),
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("submit after NATS came back: {status:?}"),
        }
    };
    let again = intake.submit_ticket(request()).await.unwrap().into_inner();
    assert_eq!(
        again.ticket_id, first.ticket_id,
        "the same key finds the same ticket"
    );
    assert!(!again.created);
    assert_eq!(again.ticket_version, 1);

    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(
        counts.get(&format!("frontline.ticket.{}", first.ticket_id)),
        Some(&1),
        "exactly one event on the ticket: {counts:?}"
    );
    assert_eq!(counts.len(), 1, "no other ticket was opened: {counts:?}");
    cluster.shutdown().await;
}
