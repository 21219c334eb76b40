//! The seams between the parts, against the real services over gRPC: bytes that are
//! not protobuf, requests over every size limit, numbers the contract does not
//! know, `expected_version` next to other refusals, the per-customer fact cap,
//! clients that give up mid-submit, a submit that died between its two appends,
//! and events of a type written by a newer version.
#![allow(clippy::unwrap_used)]

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use bytes::{Buf as _, BufMut as _};
use frontline_domain::{
    Actor, Channel, Customer, Opening, Priority, Role, Ticket, TicketCommand, TicketEvent,
};
use frontline_e2e::{Cluster, submit_request, ticket_id, violated_field};
use frontline_eventlog::{CommandOptions, EventMeta, execute};
use frontline_proto::{convert, v1};
use prost::Message as _;
use tonic::{
    Code, Request, Response, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::Channel as GrpcChannel,
};
use uuid::Uuid;

const SUBMIT: &str = "/frontline.v1.IntakeService/SubmitTicket";
const REPLY: &str = "/frontline.v1.ConversationService/Reply";

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// A codec that sends pre-encoded bytes as they are and hands back the answer's
/// bytes undecoded: how a broken or hostile client looks to a server.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

#[derive(Debug)]
struct RawEncoder;

#[derive(Debug)]
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// Calls `path` on `channel` with `body` as the request message's bytes, exactly.
async fn raw_unary(
    channel: GrpcChannel,
    path: &'static str,
    body: Vec<u8>,
    token: Option<&str>,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("channel not ready: {e}")))?;
    let mut request = Request::new(body);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    grpc.unary(request, PathAndQuery::from_static(path), RawCodec)
        .await
        .map(Response::into_inner)
}

/// The newest stream sequence: unchanged means nothing at all was written.
async fn last_sequence(cluster: &Cluster) -> u64 {
    cluster.log.last_sequence().await.unwrap()
}

fn get_ticket(id: &str) -> v1::GetTicketRequest {
    v1::GetTicketRequest {
        ticket_id: id.to_string(),
        as_of_version: None,
        as_of_time: None,
    }
}

fn reply(id: &str, body: &str, expected_version: Option<u64>) -> v1::ReplyRequest {
    v1::ReplyRequest {
        ticket_id: id.to_string(),
        body: body.to_string(),
        awaiting_customer: false,
        expected_version,
        idempotency_key: String::new(),
    }
}

fn by_id(customer_id: &str) -> v1::GetCustomerRequest {
    v1::GetCustomerRequest {
        customer_id: customer_id.to_string(),
        identity: None,
    }
}

type Intake = v1::intake_service_client::IntakeServiceClient<frontline_e2e::Authed>;

/// The customer as GetCustomer shows it (by id).
async fn customer(intake: &Intake, customer_id: &str) -> v1::Customer {
    intake
        .clone()
        .get_customer(by_id(customer_id))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap()
}

fn facts(prefix: &str, n: usize) -> Vec<v1::Fact> {
    (0..n)
        .map(|i| v1::Fact {
            key: format!("{prefix}-{i}"),
            value: format!("value {i}"),
        })
        .collect()
}

fn status_code<T>(result: &Result<T, Status>) -> Option<Code> {
    result.as_ref().err().map(Status::code)
}

/// Retries `probe` every 20 ms until it answers `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------
// Bytes and sizes
// ---------------------------------------------------------------------------------

/// Bytes that are not a valid protobuf message — invalid UTF-8 in a string field,
/// a field of the wrong wire type, a truncated length — are the caller's mistake:
/// INVALID_ARGUMENT (not INTERNAL), on SubmitTicket and Reply, and store nothing.
/// The same bytes without a token are UNAUTHENTICATED: the token is checked first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_invalid_argument() {
    let cluster = Cluster::start().await.unwrap();
    let shop = cluster.token("web-shop", Role::CustomerSystem);
    let ana = cluster.token("ana", Role::Agent);
    let intake = cluster.intake_channel().await.unwrap();
    let conversation = cluster.conversation_channel().await.unwrap();

    // Positive control: well-formed bytes through the same raw path are accepted.
    let valid = submit_request("raw-ok", "raw@example.com").encode_to_vec();
    let answer = raw_unary(intake.clone(), SUBMIT, valid.clone(), Some(&shop))
        .await
        .unwrap();
    let opened = v1::SubmitTicketResponse::decode(answer.as_slice()).unwrap();
    assert!(opened.created);
    let valid_reply = reply(&opened.ticket_id, "raw reply", None).encode_to_vec();
    let answer = raw_unary(conversation.clone(), REPLY, valid_reply.clone(), Some(&ana))
        .await
        .unwrap();
    let change = v1::ReplyResponse::decode(answer.as_slice())
        .unwrap()
        .change
        .unwrap();
    assert_eq!(change.version, 2);
    let before = last_sequence(&cluster).await;

    let mut truncated_submit = valid.clone();
    truncated_submit.truncate(valid.len() - 3);
    let mut truncated_reply = valid_reply.clone();
    truncated_reply.truncate(valid_reply.len() - 3);
    // A valid reply followed by a body (field 2) of invalid UTF-8: the last field wins
    // in protobuf, so the whole message is decoded and rejected.
    let mut reply_bad_utf8_after_valid = valid_reply.clone();
    reply_bad_utf8_after_valid.extend([0x12, 0x02, 0xff, 0xfe]);
    let submit_cases: [(&str, Vec<u8>); 5] = [
        (
            "invalid UTF-8 in subject (field 4)",
            vec![0x22, 0x02, 0xff, 0xfe],
        ),
        (
            "invalid UTF-8 in idempotency_key (field 1)",
            vec![0x0a, 0x02, 0xff, 0xfe],
        ),
        (
            "bytes for the enum channel (field 2)",
            vec![0x12, 0x02, 0xff, 0xfe],
        ),
        ("a length past the end", vec![0x0a, 0x10, b'a', b'b', b'c']),
        ("a truncated valid request", truncated_submit),
    ];
    let reply_cases: [(&str, Vec<u8>); 4] = [
        (
            "invalid UTF-8 in body (field 2)",
            vec![0x12, 0x02, 0xff, 0xfe],
        ),
        (
            "a valid reply, then invalid UTF-8 in body",
            reply_bad_utf8_after_valid,
        ),
        ("a length past the end", vec![0x0a, 0x24, b'0', b'1']),
        ("a truncated valid request", truncated_reply),
    ];
    let mut wrong = Vec::new();
    for (what, bytes) in &submit_cases {
        let result = raw_unary(intake.clone(), SUBMIT, bytes.clone(), Some(&shop)).await;
        if status_code(&result) != Some(Code::InvalidArgument) {
            wrong.push(format!("SubmitTicket, {what}: {result:?}"));
        }
        let anonymous = raw_unary(intake.clone(), SUBMIT, bytes.clone(), None).await;
        if status_code(&anonymous) != Some(Code::Unauthenticated) {
            wrong.push(format!(
                "SubmitTicket without a token, {what}: {anonymous:?}"
            ));
        }
    }
    for (what, bytes) in &reply_cases {
        let result = raw_unary(conversation.clone(), REPLY, bytes.clone(), Some(&ana)).await;
        if status_code(&result) != Some(Code::InvalidArgument) {
            wrong.push(format!("Reply, {what}: {result:?}"));
        }
        let anonymous = raw_unary(conversation.clone(), REPLY, bytes.clone(), None).await;
        if status_code(&anonymous) != Some(Code::Unauthenticated) {
            wrong.push(format!("Reply without a token, {what}: {anonymous:?}"));
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    assert_eq!(last_sequence(&cluster).await, before, "nothing was written");

    // The servers are fine afterwards, on the same connections.
    raw_unary(intake, SUBMIT, valid, Some(&shop)).await.unwrap();
    cluster.shutdown().await;
}

/// A request over tonic's 4 MiB decoding limit is RESOURCE_EXHAUSTED (not tonic's
/// OUT_OF_RANGE), as is one over Frontline's own 256 KiB limit; nothing is stored
/// and the service answers normally afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_size_limits_are_resource_exhausted() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX);
    let mut agent = cluster
        .conversation("ana", Role::Agent)
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX);
    let id = intake
        .submit_ticket(submit_request("size-0", "size@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let before = last_sequence(&cluster).await;

    let mut answers = Vec::new();
    for (what, size) in [("300 KiB", 300 * 1024), ("5 MiB", 5 * 1024 * 1024)] {
        let mut r = submit_request(&format!("size-{size}"), "size@example.com");
        r.body = "x".repeat(size);
        let submitted = intake.submit_ticket(r).await;
        answers.push((format!("SubmitTicket of {what}"), submitted.err()));
        let replied = agent.reply(reply(&id, &"y".repeat(size), None)).await;
        answers.push((format!("Reply of {what}"), replied.err()));
    }
    let wrong: Vec<_> = answers
        .iter()
        .filter(|(_, e)| e.as_ref().map(Status::code) != Some(Code::ResourceExhausted))
        .collect();
    assert!(wrong.is_empty(), "not RESOURCE_EXHAUSTED: {wrong:#?}");
    assert_eq!(last_sequence(&cluster).await, before, "nothing was written");

    // Still serving, on the same clients.
    let after = intake
        .submit_ticket(submit_request("size-after", "size@example.com"))
        .await
        .unwrap()
        .into_inner();
    assert!(after.created);
    agent.reply(reply(&id, "fine", None)).await.unwrap();
    cluster.shutdown().await;
}

/// A priority number the contract does not know is INVALID_ARGUMENT naming
/// `priority`, and nothing is written; 0 (unset) means NORMAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_priority_is_invalid_and_writes_nothing() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    // The customer exists, so a write to either aggregate would show.
    intake
        .submit_ticket(submit_request("prio-0", "prio@example.com"))
        .await
        .unwrap();
    let counts = cluster.ticket_event_counts().await.unwrap();
    let before = last_sequence(&cluster).await;

    for raw in [99, -1, 5] {
        let mut r = submit_request("prio-bad", "prio@example.com");
        r.priority = raw;
        let status = intake.submit_ticket(r).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "priority {raw}: {status:?}"
        );
        assert_eq!(
            violated_field(&status).as_deref(),
            Some("priority"),
            "{raw}"
        );
    }
    assert_eq!(cluster.ticket_event_counts().await.unwrap(), counts);
    assert_eq!(last_sequence(&cluster).await, before, "nothing was written");
    let would_be = ticket_id("web-shop", "prio-bad").to_string();
    let status = ana.get_ticket(get_ticket(&would_be)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Unset is NORMAL; a known one is kept.
    let mut unset = submit_request("prio-unset", "prio@example.com");
    unset.priority = 0;
    let mut urgent = submit_request("prio-urgent", "prio@example.com");
    urgent.priority = v1::Priority::Urgent.into();
    for (request, expected) in [
        (unset, v1::Priority::Normal),
        (urgent, v1::Priority::Urgent),
    ] {
        let id = intake
            .submit_ticket(request)
            .await
            .unwrap()
            .into_inner()
            .ticket_id;
        let ticket = ana
            .get_ticket(get_ticket(&id))
            .await
            .unwrap()
            .into_inner()
            .ticket
            .unwrap();
        assert_eq!(ticket.priority(), expected);
    }
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------------------
// expected_version and the fact cap
// ---------------------------------------------------------------------------------

/// A stale `expected_version` hides no other answer: an unknown ticket is NOT_FOUND,
/// a bad field INVALID_ARGUMENT, a refused role PERMISSION_DENIED, an illegal
/// transition FAILED_PRECONDITION — and an idempotent repeat is still answered as
/// the repeat it is. Only a call that could succeed hears ABORTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_expected_version_hides_nothing() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let id = intake
        .submit_ticket(submit_request("ev-1", "ev@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let unknown = Uuid::new_v4().to_string();
    let before = last_sequence(&cluster).await;

    let code = |r: Result<Response<v1::ReplyResponse>, Status>| r.err().map(|s| s.code());
    // Unknown ticket, with an expected version it could never have.
    assert_eq!(
        code(ana.reply(reply(&unknown, "hi", Some(1))).await),
        Some(Code::NotFound),
        "reply to an unknown ticket at version 1"
    );
    let note = v1::AddNoteRequest {
        ticket_id: unknown.clone(),
        body: "n".into(),
        expected_version: Some(7),
        idempotency_key: String::new(),
    };
    assert_eq!(
        ana.add_note(note).await.unwrap_err().code(),
        Code::NotFound,
        "note on an unknown ticket"
    );
    let solve = v1::SolveRequest {
        ticket_id: unknown.clone(),
        resolution: String::new(),
        expected_version: Some(7),
    };
    assert_eq!(ana.solve(solve).await.unwrap_err().code(), Code::NotFound);
    // Bad fields, with a stale version.
    let status = ana.reply(reply(&id, "", Some(5))).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_field(&status).as_deref(), Some("body"));
    let status = ana.reply(reply("nope", "hi", Some(5))).await.unwrap_err();
    assert_eq!(violated_field(&status).as_deref(), Some("ticket_id"));
    // The wrong role, with a stale version (and on an unknown ticket).
    for target in [&id, &unknown] {
        assert_eq!(
            code(shop.reply(reply(target, "hi", Some(5))).await),
            Some(Code::PermissionDenied),
            "customer system replies"
        );
    }
    // An illegal transition: reopening a ticket that is not solved.
    let reopen = v1::ReopenRequest {
        ticket_id: id.clone(),
        reason: String::new(),
        expected_version: Some(5),
    };
    assert_eq!(
        ana.reopen(reopen).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(last_sequence(&cluster).await, before, "nothing was written");

    // An idempotent repeat is answered as such, whatever version it expected.
    let mut keyed = reply(&id, "On it", Some(1));
    keyed.idempotency_key = "reply-1".into();
    let first = ana
        .reply(keyed.clone())
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!((first.version, first.recorded), (2, true));
    let repeat = ana.reply(keyed).await.unwrap().into_inner().change.unwrap();
    assert_eq!((repeat.version, repeat.recorded), (2, false));
    // A call that could succeed on a fresh view: ABORTED.
    assert_eq!(
        code(ana.reply(reply(&id, "again", Some(1))).await),
        Some(Code::Aborted)
    );
    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(counts[&format!("frontline.ticket.{id}")], 2);
    cluster.shutdown().await;
}

/// A customer keeps at most 256 facts. At the cap, a contact with one more fact is
/// refused as a whole — INVALID_ARGUMENT `facts`, no ticket opened (the id it would
/// have had is NOT_FOUND), no ticket continued, the customer record unchanged — and
/// a retry is refused the same way. Changing a known fact is still fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fact_cap_is_all_or_nothing() {
    const PER_CONTACT: usize = frontline_domain::limits::MAX_FACTS_PER_CONTACT;
    const CAP: usize = frontline_domain::limits::MAX_FACTS_PER_CUSTOMER;
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let email = "facts@example.com";

    let mut first_ticket = String::new();
    let mut customer_id = String::new();
    for n in 0..CAP / PER_CONTACT {
        let mut r = submit_request(&format!("cap-{n}"), email);
        r.facts = facts(&format!("k{n}"), PER_CONTACT);
        let answer = intake.submit_ticket(r).await.unwrap().into_inner();
        assert!(answer.created);
        assert_eq!(answer.known_facts.len(), (n + 1) * PER_CONTACT);
        if n == 0 {
            first_ticket = answer.ticket_id;
            customer_id = answer.customer_id;
        }
    }
    let at_cap = customer(&intake, &customer_id).await;
    assert_eq!(at_cap.facts.len(), CAP);
    assert_eq!(at_cap.version, (CAP / PER_CONTACT) as u64);
    assert_eq!(at_cap.ticket_ids.len(), CAP / PER_CONTACT);
    let before = last_sequence(&cluster).await;

    let over = || {
        let mut r = submit_request("cap-over", email);
        r.facts = vec![v1::Fact {
            key: "one-more".into(),
            value: "v".into(),
        }];
        r
    };
    let would_be = ticket_id("web-shop", "cap-over").to_string();
    for attempt in ["first try", "retry"] {
        let status = intake.submit_ticket(over()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{attempt}: {status:?}"
        );
        assert_eq!(
            violated_field(&status).as_deref(),
            Some("facts"),
            "{attempt}"
        );
        let lookup = ana.get_ticket(get_ticket(&would_be)).await.unwrap_err();
        assert_eq!(lookup.code(), Code::NotFound, "{attempt}: no ticket opened");
        assert_eq!(
            customer(&intake, &customer_id).await,
            at_cap,
            "{attempt}: customer unchanged"
        );
        assert_eq!(
            last_sequence(&cluster).await,
            before,
            "{attempt}: nothing written"
        );
    }

    // Continuing a ticket with one fact too many is refused too; the ticket stays.
    let mut more = submit_request("cap-continue", email);
    more.continue_ticket_id = first_ticket.clone();
    more.facts = vec![v1::Fact {
        key: "one-more".into(),
        value: "v".into(),
    }];
    let status = intake.submit_ticket(more).await.unwrap_err();
    assert_eq!(violated_field(&status).as_deref(), Some("facts"));
    assert_eq!(last_sequence(&cluster).await, before, "nothing written");

    // The cap counts keys: a new value for a known key goes through.
    let mut changed = submit_request("cap-change", email);
    changed.facts = vec![v1::Fact {
        key: "k0-0".into(),
        value: "new value".into(),
    }];
    let answer = intake.submit_ticket(changed).await.unwrap().into_inner();
    assert!(answer.created);
    let customer = customer(&intake, &customer_id).await;
    assert_eq!(customer.facts.len(), CAP);
    assert!(
        customer
            .facts
            .iter()
            .any(|f| f.key == "k0-0" && f.value == "new value")
    );
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Cancellation, crashes, newer writers
// ---------------------------------------------------------------------------------

/// A tiny deterministic PRNG (xorshift64*), so the test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Every ticket in the stream with the customer its opening event names.
async fn stored_tickets(cluster: &Cluster) -> HashMap<Uuid, Uuid> {
    let subjects = cluster.ticket_event_counts().await.unwrap();
    let mut tickets = HashMap::new();
    for subject in subjects.keys() {
        let id = Uuid::parse_str(subject.trim_start_matches("frontline.ticket.")).unwrap();
        let events = cluster.log.read::<Ticket>(&id, Some(1)).await.unwrap();
        match events.first().and_then(|e| e.event.as_ref()) {
            Some(TicketEvent::Opened(o)) => {
                tickets.insert(id, o.customer_id);
            }
            other => panic!("{subject} does not start with TicketOpened: {other:?}"),
        }
    }
    tickets
}

/// Clients that give up mid-submit (deadlines of 1–15 ms) never leave a ticket
/// behind that its customer's record does not list: once the ticket is appended,
/// the customer step runs to the end server-side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_clients_never_orphan_a_ticket() {
    const TASKS: usize = 6;
    const TOTAL: usize = 300;
    const CUSTOMERS: usize = 30;
    let cluster = Cluster::start().await.unwrap();
    let seed = u64::from(std::process::id()) << 20
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
        | 1;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let system = format!("system-{t}");
        let mut intake = cluster.intake(&system, Role::CustomerSystem).await.unwrap();
        let mut rng = Rng(seed.wrapping_add(t as u64 * 0x9e37_79b9));
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in (t..TOTAL).step_by(TASKS) {
                let key = format!("cancel-{i}");
                let mut request = Request::new(submit_request(
                    &key,
                    &format!("cancel-{}@example.com", i % CUSTOMERS),
                ));
                request.set_timeout(Duration::from_millis(1 + rng.next() % 15));
                let outcome = intake.submit_ticket(request).await.map(|_| ());
                outcomes.push((ticket_id(&system, &key), outcome.map_err(|s| s.code())));
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    let mut by_code: HashMap<Code, usize> = HashMap::new();
    for (_, outcome) in &outcomes {
        if let Err(code) = outcome {
            *by_code.entry(*code).or_default() += 1;
        }
    }
    let cancelled: usize = by_code.values().sum();
    let unexpected: Vec<_> = by_code
        .keys()
        .filter(|c| !matches!(c, Code::DeadlineExceeded | Code::Cancelled))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only deadlines may fail a submit: {by_code:?}"
    );
    let accepted: HashSet<Uuid> = outcomes
        .iter()
        .filter(|(_, o)| o.is_ok())
        .map(|(id, _)| *id)
        .collect();

    // Give the submits the clients left behind a moment to finish, then check that
    // every stored ticket is on its customer's record, and what GetCustomer shows.
    let mut checker = cluster
        .intake("checker", Role::CustomerSystem)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (tickets, orphans, unlisted) = loop {
        let tickets = stored_tickets(&cluster).await;
        let mut by_customer: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (ticket, customer) in &tickets {
            by_customer.entry(*customer).or_default().push(*ticket);
        }
        let (mut orphans, mut unlisted) = (Vec::new(), Vec::new());
        for (customer, ids) in &by_customer {
            let record = cluster.log.load::<Customer>(customer).await.unwrap().state;
            let listed: Vec<String> = match checker.get_customer(by_id(&customer.to_string())).await
            {
                Ok(answer) => answer.into_inner().customer.unwrap().ticket_ids,
                Err(status) => {
                    assert_eq!(status.code(), Code::NotFound, "{status:?}");
                    Vec::new()
                }
            };
            for id in ids {
                if !record.ticket_ids.contains(id) {
                    orphans.push(*id);
                }
                if !listed.contains(&id.to_string()) {
                    unlisted.push(*id);
                }
            }
        }
        if (orphans.is_empty() && unlisted.is_empty()) || Instant::now() > deadline {
            break (tickets, orphans, unlisted);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let written_after_giving_up = tickets.keys().filter(|id| !accepted.contains(id)).count();
    println!(
        "{TOTAL} submits (seed {seed:#x}): {} answered, {cancelled} cancelled by the client \
         ({by_code:?}); {} tickets stored, {written_after_giving_up} of them for a client that \
         had given up; {} orphaned on the record, {} missing from GetCustomer",
        accepted.len(),
        tickets.len(),
        orphans.len(),
        unlisted.len(),
    );
    assert!(cancelled > 0, "the deadlines must cancel some submits");
    assert!(
        accepted.iter().all(|id| tickets.contains_key(id)),
        "an answered submit is stored"
    );
    assert!(
        orphans.is_empty(),
        "tickets not on their customer's record: {orphans:?}"
    );
    assert!(
        unlisted.is_empty(),
        "tickets GetCustomer does not list: {unlisted:?}"
    );
    cluster.shutdown().await;
}

/// A submit that died after appending the ticket but before updating the customer
/// record (simulated by appending only the `TicketOpened` event, as the service
/// would have): the customer's next contact lists the ticket among the open ones and
/// GetCustomer lists it, and retrying the original key answers `created: false` for
/// that ticket and links it on the customer's record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_appends_is_repaired() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let email = "crash@example.com";
    let first = intake
        .submit_ticket(submit_request("crash-0", email))
        .await
        .unwrap()
        .into_inner();
    let customer_id: uuid::Uuid = first.customer_id.parse().unwrap();

    // The service "dies" after the ticket append.
    let key = "crash-1";
    let ticket_id = ticket_id("web-shop", key);
    let meta = EventMeta {
        actor: Actor::new("web-shop", Role::CustomerSystem),
        correlation_id: "crash-test".into(),
        causation_id: "crash-test".into(),
        traceparent: None,
    };
    let command = TicketCommand::Open(Opening {
        tenant: frontline_e2e::tenant(),
        channel: Channel::Email,
        customer_id,
        subject: "Half written".into(),
        body: "The service died right after this.".into(),
        product_area: "router-x200".into(),
        priority: Priority::Normal,
        idempotency_key: key.into(),
        follow_up_of: None,
    });
    let raw_id = ticket_id.to_string();
    let outcome = execute(
        &cluster.log,
        &ticket_id,
        &meta,
        CommandOptions::default(),
        frontline_runtime::now_millis,
        |t: &Ticket, now| t.decide(&raw_id, &command, &meta.actor, now),
    )
    .await
    .unwrap();
    assert!(outcome.appended);
    let record = cluster
        .log
        .load::<Customer>(&customer_id)
        .await
        .unwrap()
        .state;
    assert!(
        !record.ticket_ids.contains(&ticket_id),
        "the record missed it"
    );
    let version_before = record.version;

    // (a) The next contact, with another key, is told about the ticket (once the
    // projection has seen it), and GetCustomer lists it.
    let next = eventually(
        Duration::from_secs(10),
        "next contact lists the ticket",
        || {
            let mut intake = intake.clone();
            let raw_id = raw_id.clone();
            async move {
                let answer = intake
                    .submit_ticket(submit_request("crash-2", email))
                    .await
                    .unwrap()
                    .into_inner();
                answer
                    .other_open_tickets
                    .iter()
                    .any(|t| t.ticket_id == raw_id)
                    .then_some(answer)
            }
        },
    )
    .await;
    let listed = next
        .other_open_tickets
        .iter()
        .find(|t| t.ticket_id == raw_id)
        .unwrap();
    assert_eq!(listed.subject, "Half written");
    assert_eq!(listed.status(), v1::TicketStatus::New);
    let customer = intake
        .get_customer(by_id(&customer_id.to_string()))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert!(
        customer.ticket_ids.contains(&raw_id),
        "{:?}",
        customer.ticket_ids
    );
    assert!(customer.open_tickets.iter().any(|t| t.ticket_id == raw_id));

    // (b) The client retries the original key: the same ticket, not created again,
    // and the record now links it.
    let retried = intake
        .submit_ticket(submit_request(key, email))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.ticket_id, raw_id);
    assert!(!retried.created);
    assert_eq!(retried.ticket_version, 1);
    let record = cluster
        .log
        .load::<Customer>(&customer_id)
        .await
        .unwrap()
        .state;
    assert!(
        record.ticket_ids.contains(&ticket_id),
        "linked by the retry"
    );
    assert_eq!(
        record.version,
        version_before + 2,
        "one event for crash-2's ticket, one linking the repaired one"
    );
    let customer = intake
        .get_customer(by_id(&customer_id.to_string()))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(customer.version, record.version);
    let mut expected = vec![
        first.ticket_id.clone(),
        next.ticket_id.clone(),
        raw_id.clone(),
    ];
    expected.sort();
    let mut ids = customer.ticket_ids.clone();
    ids.sort();
    assert_eq!(ids, expected, "each ticket once");
    // A second retry changes nothing more.
    let again = intake
        .submit_ticket(submit_request(key, email))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    let record_after = cluster
        .log
        .load::<Customer>(&customer_id)
        .await
        .unwrap()
        .state;
    assert_eq!(record_after.version, record.version);
    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(counts[&format!("frontline.ticket.{raw_id}")], 1);
    cluster.shutdown().await;
}

/// Appends an event of `event_type`, which this version does not know, to aggregate
/// `id` as a newer writer would: the next `version`, expecting `last_sequence` as
/// the subject's last (optimistic concurrency), with a message id.
async fn append_unknown(
    cluster: &Cluster,
    kind: &str,
    id: &Uuid,
    event_type: &str,
    version: u64,
    last_sequence: u64,
) {
    let envelope = v1::EventEnvelope {
        event_id: Uuid::new_v4().to_string(),
        aggregate_type: kind.into(),
        aggregate_id: id.to_string(),
        aggregate_version: version,
        event_type: event_type.into(),
        occurred_at: Some(convert::timestamp(frontline_runtime::now_millis())),
        actor: Some(v1::Actor {
            id: "escalator".into(),
            role: v1::Role::Manager.into(),
        }),
        correlation_id: "newer-writer".into(),
        causation_id: "newer-writer".into(),
        schema_version: 2,
        // Field 1 = "vip": meaningless to this version.
        payload: vec![0x0a, 0x03, b'v', b'i', b'p'],
        sealed_for: String::new(),
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        last_sequence.to_string().as_str(),
    );
    headers.insert(frontline_eventlog::HEADER_EVENT_TYPE, event_type);
    headers.insert("Content-Type", frontline_eventlog::CONTENT_TYPE);
    let js = async_nats::jetstream::new(cluster.log.client().clone());
    js.publish_with_headers(
        format!("frontline.{kind}.{id}"),
        headers,
        envelope.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// An event of a type this version does not know (a newer writer's
/// `frontline.v1.TicketEscalated`) on a real ticket is skipped by every reader but
/// counted in the version: GetTicket, GetTicketHistory (entry present, marked as not
/// known) and Reply all succeed, and intake's projection keeps going past it. The
/// same on a customer record: GetCustomer and the next SubmitTicket succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_type_is_skipped_but_counted() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let opened = intake
        .submit_ticket(submit_request("newer-1", "newer@example.com"))
        .await
        .unwrap()
        .into_inner();
    let id = opened.ticket_id.clone();
    let uuid = Uuid::parse_str(&id).unwrap();
    let loaded = cluster.log.load::<Ticket>(&uuid).await.unwrap();
    assert_eq!(loaded.state.version, 1);

    let event_type = "frontline.v1.TicketEscalated";
    append_unknown(&cluster, "ticket", &uuid, event_type, 2, loaded.sequence).await;

    let ticket = ana
        .get_ticket(get_ticket(&id))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(ticket.version, 2, "the unknown event counts");
    assert_eq!(
        ticket.status(),
        v1::TicketStatus::New,
        "and changes nothing else"
    );
    assert_eq!(ticket.messages.len(), 1);
    let as_of = ana
        .get_ticket(v1::GetTicketRequest {
            ticket_id: id.clone(),
            as_of_version: Some(2),
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(as_of.version, 2);
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    shop.get_ticket(get_ticket(&id)).await.unwrap();

    let history = ana
        .get_ticket_history(v1::GetTicketHistoryRequest {
            ticket_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(history.len(), 2);
    let entry = &history[1];
    assert_eq!(entry.event_type, event_type);
    assert_eq!(entry.version, 2);
    assert_eq!(entry.actor.as_ref().unwrap().id, "escalator");
    assert!(
        entry.summary.contains("not known"),
        "summary says it is unknown: {:?}",
        entry.summary
    );

    // Commands decide on a state that counted it: expected_version 2 is current.
    let change = ana
        .reply(reply(&id, "Escalated, looking now", Some(2)))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(change.version, 3);
    assert!(change.recorded);
    assert_eq!(change.status(), v1::TicketStatus::Open);
    let ticket = ana
        .get_ticket(get_ticket(&id))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!((ticket.version, ticket.messages.len()), (3, 2));

    // Intake's projection went past it: the reply's status shows up in the open
    // tickets (from the read model), and solving takes the ticket off the list.
    let customer_id = opened.customer_id.clone();
    eventually(
        Duration::from_secs(10),
        "projection shows the reply",
        || {
            let open = customer(&intake, &customer_id);
            let id = id.clone();
            async move {
                open.await
                    .open_tickets
                    .iter()
                    .any(|t| {
                        t.ticket_id == id && t.status() == v1::TicketStatus::Open && t.version == 3
                    })
                    .then_some(())
            }
        },
    )
    .await;
    ana.solve(v1::SolveRequest {
        ticket_id: id.clone(),
        resolution: "done".into(),
        expected_version: Some(3),
    })
    .await
    .unwrap();
    eventually(
        Duration::from_secs(10),
        "projection shows the solve",
        || {
            let open = customer(&intake, &customer_id);
            let id = id.clone();
            async move { (!open.await.open_tickets.iter().any(|t| t.ticket_id == id)).then_some(()) }
        },
    )
    .await;

    // The same on the customer's record: GetCustomer counts the unknown event, and
    // the next contact is recorded on top of it.
    let customer_uuid = Uuid::parse_str(&customer_id).unwrap();
    let record = cluster.log.load::<Customer>(&customer_uuid).await.unwrap();
    let version = record.state.version;
    append_unknown(
        &cluster,
        "customer",
        &customer_uuid,
        "frontline.v1.CustomerTierChanged",
        version + 1,
        record.sequence,
    )
    .await;
    let shown = customer(&intake, &customer_id).await;
    assert_eq!(shown.version, version + 1);
    let next = intake
        .submit_ticket(submit_request("newer-2", "newer@example.com"))
        .await
        .unwrap()
        .into_inner();
    assert!(next.created);
    let shown = customer(&intake, &customer_id).await;
    assert_eq!(shown.version, version + 2);
    assert!(shown.ticket_ids.contains(&next.ticket_id));
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Bugs found while writing these tests, fixed; each test failed before its fix.
// ---------------------------------------------------------------------------------

/// Two contacts of one customer at once, each within the fact cap alone but not
/// together: one must be refused as a whole, without a ticket.
///
/// Both once passed a dry run of the customer's rules on the same customer state, both opened their
/// ticket, and the second customer append failed the cap: the caller heard
/// INVALID_ARGUMENT `facts` while its ticket existed. A customer's contacts now
/// queue up (within a process) from the check to the last append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_contacts_at_the_fact_cap_are_all_or_nothing() {
    let cluster = Cluster::start().await.unwrap();
    let intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let mut leaked = Vec::new();
    for round in 0..3 {
        let email = format!("race-{round}@example.com");
        let mut fill = intake.clone();
        // 248 facts: room for 8 more.
        for n in 0..8 {
            let mut r = submit_request(&format!("r{round}-fill-{n}"), &email);
            r.facts = facts(&format!("k{n}"), if n == 7 { 24 } else { 32 });
            fill.submit_ticket(r).await.unwrap();
        }
        let calls: Vec<_> = (0..2)
            .map(|side| {
                let mut client = intake.clone();
                let key = format!("r{round}-race-{side}");
                let mut r = submit_request(&key, &email);
                r.facts = facts(&format!("side{side}"), 8);
                tokio::spawn(async move { (key, client.submit_ticket(r).await) })
            })
            .collect();
        for call in calls {
            let (key, result) = call.await.unwrap();
            if let Err(status) = result {
                assert_eq!(violated_field(&status).as_deref(), Some("facts"));
                let id = ticket_id("web-shop", &key).to_string();
                if ana.get_ticket(get_ticket(&id)).await.is_ok() {
                    leaked.push(key);
                }
            }
        }
    }
    assert!(
        leaked.is_empty(),
        "refused submits whose ticket exists: {leaked:?}"
    );
}

/// The 256 KiB limit is on the request, as sent: bytes prost drops — unknown
/// fields, earlier copies of a repeated singular field — count too. (It was once
/// measured on the decoded message, and a 1 MiB SubmitTicket opened a ticket.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_limit_counts_every_byte_sent() {
    let cluster = Cluster::start().await.unwrap();
    let shop = cluster.token("web-shop", Role::CustomerSystem);
    let intake = cluster.intake_channel().await.unwrap();
    let before = last_sequence(&cluster).await;

    // A valid request plus 1 MiB in field 99, which the contract does not have.
    let mut unknown_field = submit_request("pad-1", "pad@example.com").encode_to_vec();
    prost::encoding::bytes::encode(99, &vec![b'z'; 1024 * 1024], &mut unknown_field);
    // 40 subjects of 30 KiB before the real request: the last one wins.
    let mut repeated = Vec::new();
    for _ in 0..40 {
        prost::encoding::string::encode(4, &"s".repeat(30 * 1024), &mut repeated);
    }
    repeated.extend(submit_request("pad-2", "pad@example.com").encode_to_vec());

    let mut wrong = Vec::new();
    for (what, bytes) in [
        ("1 MiB of an unknown field", unknown_field),
        ("1.2 MiB of repeated subjects", repeated),
    ] {
        let result = raw_unary(intake.clone(), SUBMIT, bytes, Some(&shop)).await;
        if status_code(&result) != Some(Code::ResourceExhausted) {
            wrong.push(format!("{what}: {:?}", result.map(|b| b.len())));
        }
    }
    assert!(wrong.is_empty(), "accepted over 256 KiB: {wrong:?}");
    assert_eq!(last_sequence(&cluster).await, before, "nothing was written");
}
