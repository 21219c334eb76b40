//! Faults and hostile input under load: NATS killed with SIGKILL and restarted,
//! NATS frozen (SIGSTOP) for longer than the services' log timeout, and a stream
//! salted with garbage, truncated and unknown messages while the consumers run.
//!
//! Each scenario drives the gRPC API like a client that retries (with the same
//! idempotency key), records what was acknowledged, injects the fault, then checks
//! the log itself, the services' answers, and prints its figures (run with
//! `--nocapture`). Sizes are small for `make test`; `make soak` scales them with
//! `FAULT_OPS` (operations in the kill scenario) and `FAULT_GARBAGE` (hostile
//! messages of each kind).
//!
//! (kill -9 of a service binary under load, then a restart, is covered per service
//! by `services/{routing,analytics}/tests/kill_restart.rs` and
//! `services/intake/tests/projection_kill.rs`.)
#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use frontline_domain::{Role, Ticket, TicketEvent};
use frontline_e2e::{Cluster, caller, submit_request, ticket_id};
use frontline_proto::{convert, v1};
use futures::{StreamExt as _, TryStreamExt as _};
use prost::Message as _;
use tokio::time::Instant;
use tonic::{Code, Status};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

/// Operations of the kill scenario in CI; `FAULT_OPS` scales it for a soak.
const DEFAULT_OPS: usize = 1_000;
/// Hostile messages of each kind; `FAULT_GARBAGE` scales it.
const DEFAULT_GARBAGE: usize = 20;
/// Clients calling at once.
const CLIENTS: usize = 16;
/// A call that has not answered after this long hangs (the services' log timeout
/// is 2 s, see [`Cluster::config`]; a publish is tried three times).
const HANG: Duration = Duration::from_secs(20);
/// How long one operation is retried before the client gives up.
const GIVE_UP: Duration = Duration::from_secs(60);
/// The customer system every submit comes from.
const SYSTEM: &str = "web-shop";

fn env_size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// Codes a retrying client tries again on: the call may or may not have happened.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
            | Code::ResourceExhausted
    )
}

/// What retrying one call came to.
#[derive(Debug, Default)]
struct Tries {
    attempts: u32,
    /// Attempts that did not answer within [`HANG`].
    hung: u32,
    /// The code of every failed attempt.
    codes: Vec<Code>,
}

/// Calls `call` until it answers OK, fails for good, or [`GIVE_UP`] passes.
async fn with_retries<T, Fut>(mut call: impl FnMut() -> Fut, tries: &mut Tries) -> Option<T>
where
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    let deadline = Instant::now() + GIVE_UP;
    loop {
        tries.attempts += 1;
        match tokio::time::timeout(HANG, call()).await {
            Ok(Ok(answer)) => return Some(answer.into_inner()),
            Ok(Err(status)) => {
                tries.codes.push(status.code());
                if !retryable(status.code()) {
                    eprintln!("gave up on a permanent failure: {status:?}");
                    return None;
                }
            }
            Err(_) => tries.hung += 1,
        }
        if Instant::now() > deadline {
            return None;
        }
        let pause = 50 * u64::from(tries.attempts.min(10));
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Waits until every service at `addrs` answers SERVING.
async fn all_serving(cluster: &Cluster, addrs: &[std::net::SocketAddr]) {
    for addr in addrs {
        cluster.wait_serving(*addr).await.unwrap();
    }
}

/// The health status of the service at `addr`, without waiting.
async fn health(addr: std::net::SocketAddr) -> Option<i32> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        HealthClient::new(channel).check(HealthCheckRequest::default()),
    )
    .await
    .ok()?
    .ok()?;
    Some(answer.into_inner().status)
}

fn manager() -> frontline_domain::Caller {
    caller("max", Role::Manager, &[frontline_e2e::TENANT])
}

/// Registers `id` (skilled in the area every [`submit_request`] names) and puts
/// them online.
async fn agent_online(cluster: &Cluster, id: &str, capacity: u32) {
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .register_agent(v1::RegisterAgentRequest {
            agent_id: id.into(),
            profile: Some(v1::AgentProfile {
                display_name: id.into(),
                skills: vec![v1::Skill {
                    product_area: "router-x200".into(),
                    level: 3,
                }],
                capacity,
                team: "first-line".into(),
                tenants: vec![frontline_e2e::TENANT.into()],
            }),
        })
        .await
        .unwrap();
    routing
        .set_agent_status(v1::SetAgentStatusRequest {
            agent_id: id.into(),
            status: v1::AgentStatus::Available.into(),
        })
        .await
        .unwrap();
}

/// What the log holds for one ticket.
#[derive(Debug, Default)]
struct Stored {
    events: usize,
    opened: usize,
    assigned: usize,
    /// Replies by body, with their idempotency key.
    replies: HashMap<String, Vec<Option<String>>>,
}

/// Every ticket in the stream, read back event by event through the event log.
async fn stored_tickets(cluster: &Cluster) -> HashMap<String, Stored> {
    let subjects = cluster.ticket_event_counts().await.unwrap();
    futures::stream::iter(subjects)
        .map(|(subject, count)| async move {
            let id = subject.trim_start_matches("frontline.ticket.").to_string();
            let uuid = Uuid::parse_str(&id).unwrap();
            let events = cluster.log.read::<Ticket>(&uuid, None).await.unwrap();
            assert_eq!(events.len(), count, "{subject}: every message is an event");
            let mut stored = Stored {
                events: events.len(),
                ..Stored::default()
            };
            for event in events.into_iter().filter_map(|e| e.event) {
                match event {
                    TicketEvent::Opened(_) => stored.opened += 1,
                    TicketEvent::Assigned(_) => stored.assigned += 1,
                    TicketEvent::AgentReplied {
                        body,
                        idempotency_key,
                        ..
                    } => stored
                        .replies
                        .entry(body)
                        .or_default()
                        .push(idempotency_key),
                    _ => {}
                }
            }
            (id, stored)
        })
        .buffer_unordered(16)
        .collect()
        .await
}

// ---------------------------------------------------------------------------------
// 1. kill -9 of NATS during submits and replies, then a restart
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Submit,
    KeyedReply,
    PlainReply,
}

/// One operation a client asked for, and whether it was acknowledged.
#[derive(Debug)]
struct Op {
    kind: Kind,
    ticket: String,
    /// The reply's body (unique), empty for a submit.
    body: String,
    /// The reply's idempotency key (empty for a plain reply), or the submit's.
    key: String,
    acked: bool,
    tries: Tries,
}

/// One client: submits a ticket, replies to it with and without a key, and so on,
/// until `issued` reaches `total`; retries every call.
async fn client(
    cluster: &Cluster,
    c: usize,
    issued: Arc<AtomicUsize>,
    acked: Arc<AtomicUsize>,
    total: usize,
) -> tokio::task::JoinHandle<Vec<Op>> {
    let intake = cluster.intake(SYSTEM, Role::CustomerSystem).await.unwrap();
    let agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    tokio::spawn(async move {
        let mut ops = Vec::new();
        let mut ticket: Option<String> = None;
        let mut step = 0usize;
        loop {
            let n = issued.fetch_add(1, Ordering::SeqCst);
            if n >= total {
                return ops;
            }
            let kind = match (&ticket, step % 3) {
                (None, _) | (_, 0) => Kind::Submit,
                (_, 1) => Kind::KeyedReply,
                _ => Kind::PlainReply,
            };
            step += 1;
            let mut tries = Tries::default();
            let op = match kind {
                Kind::Submit => {
                    let key = format!("fault-{n}");
                    let request =
                        submit_request(&key, &format!("client-{c}-{}@example.com", n % 4));
                    let answer = with_retries(
                        || {
                            let mut intake = intake.clone();
                            let request = request.clone();
                            async move { intake.submit_ticket(request).await }
                        },
                        &mut tries,
                    )
                    .await;
                    let id = ticket_id(SYSTEM, &key).to_string();
                    if let Some(answer) = &answer {
                        assert_eq!(answer.ticket_id, id, "the key names the ticket");
                        ticket = Some(id.clone());
                    }
                    Op {
                        kind,
                        ticket: id,
                        body: String::new(),
                        key,
                        acked: answer.is_some(),
                        tries,
                    }
                }
                Kind::KeyedReply | Kind::PlainReply => {
                    let id = ticket.clone().unwrap_or_default();
                    let key = if kind == Kind::KeyedReply {
                        format!("reply-{n}")
                    } else {
                        String::new()
                    };
                    let body = format!("reply {n} ({kind:?})");
                    let request = v1::ReplyRequest {
                        ticket_id: id.clone(),
                        body: body.clone(),
                        awaiting_customer: false,
                        expected_version: None,
                        idempotency_key: key.clone(),
                    };
                    let answer = with_retries(
                        || {
                            let mut agent = agent.clone();
                            let request = request.clone();
                            async move { agent.reply(request).await }
                        },
                        &mut tries,
                    )
                    .await;
                    Op {
                        kind,
                        ticket: id,
                        body,
                        key,
                        acked: answer.is_some(),
                        tries,
                    }
                }
            };
            if op.acked {
                acked.fetch_add(1, Ordering::SeqCst);
            }
            ops.push(op);
        }
    })
}

/// Waits until `counter` passes `target` (or `limit` passes); how long it took.
async fn until_count(counter: &AtomicUsize, target: usize, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while counter.load(Ordering::SeqCst) < target {
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Some(start.elapsed())
}

/// 16 clients submit tickets and reply to them (with and without idempotency
/// keys), retrying every failed call; NATS is killed with SIGKILL twice under that
/// load and restarted on the same port and store. The services reconnect by
/// themselves; every acknowledged submit and keyed reply is on the log exactly
/// once, no acknowledged plain reply is lost (their doubling by retries is measured,
/// not asserted), every ticket is assigned exactly once, and the services answer
/// what the log holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_killed_under_load_loses_and_doubles_nothing_acknowledged() {
    let total = env_size("FAULT_OPS", DEFAULT_OPS);
    let mut cluster = Cluster::start().await.unwrap();
    // Enough capacity for every ticket: each is assigned exactly once.
    let agents = total.div_ceil(3).div_ceil(1_000).max(1) + 1;
    for a in 0..agents {
        agent_online(&cluster, &format!("agent-{a}"), 1_000).await;
    }
    let issued = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        clients.push(client(&cluster, c, issued.clone(), acked.clone(), total).await);
    }
    let started = Instant::now();

    // Two kills, a third and two thirds of the way through.
    let mut outages = Vec::new();
    for share in [1, 2] {
        let Some(_) = until_count(&acked, total * share / 3, Duration::from_secs(120)).await else {
            break;
        };
        let before = acked.load(Ordering::SeqCst);
        let killed = Instant::now();
        tokio::task::block_in_place(|| cluster.nats.kill()).unwrap();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let during = acked.load(Ordering::SeqCst);
        tokio::task::block_in_place(|| cluster.nats.restart()).unwrap();
        let restarted = Instant::now();
        let recovery = until_count(&acked, during + 1, Duration::from_secs(60)).await;
        outages.push((before, during, restarted - killed, recovery));
    }
    let mut ops = Vec::new();
    for client in clients {
        ops.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed();

    // The services came back by themselves.
    all_serving(
        &cluster,
        &[
            cluster.intake_addr,
            cluster.conversation_addr,
            cluster.routing_addr,
        ],
    )
    .await;
    cluster
        .routing_settled_within(Duration::from_secs(120))
        .await
        .unwrap();
    let stored = stored_tickets(&cluster).await;

    // Per kind: acknowledged, found, lost, doubled, and unacknowledged but stored.
    let mut figures: BTreeMap<Kind, [usize; 6]> = BTreeMap::new();
    let (mut hung, mut attempts) = (0, 0);
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for op in &ops {
        hung += op.tries.hung;
        attempts += op.tries.attempts;
        for code in &op.tries.codes {
            *codes.entry(format!("{code:?}")).or_default() += 1;
        }
        let ticket = stored.get(&op.ticket);
        let found = match op.kind {
            Kind::Submit => ticket.map_or(0, |t| t.opened),
            Kind::KeyedReply | Kind::PlainReply => ticket
                .and_then(|t| t.replies.get(&op.body))
                .map_or(0, Vec::len),
        };
        if op.kind == Kind::KeyedReply && found > 0 {
            let keys = &stored[&op.ticket].replies[&op.body];
            assert!(keys.iter().all(|k| k.as_deref() == Some(op.key.as_str())));
        }
        let f = figures.entry(op.kind).or_default();
        f[0] += 1;
        if op.acked {
            f[1] += 1;
            f[2] += usize::from(found >= 1);
            f[3] += usize::from(found == 0);
        } else {
            f[5] += usize::from(found >= 1);
        }
        f[4] += usize::from(found > 1);
    }
    println!(
        "faults/kill: {} ops by {CLIENTS} clients in {elapsed:?}, {attempts} attempts, \
         {hung} hung, failed attempts by code {codes:?}",
        ops.len()
    );
    for (i, (before, during, down, recovery)) in outages.iter().enumerate() {
        println!(
            "faults/kill: outage {}: killed after {before} acks ({} more answers already in \
             flight), down {down:?}, first ack {recovery:?} after the restart",
            i + 1,
            during - before
        );
    }
    for (kind, [issued, acked, found, lost, doubled, ghosts]) in &figures {
        println!(
            "faults/kill: {kind:?}: issued {issued}, acknowledged {acked}, found {found}, \
             lost {lost}, doubled {doubled}, stored though unacknowledged {ghosts}"
        );
    }
    let plain = figures.get(&Kind::PlainReply).copied().unwrap_or_default();
    println!(
        "faults/kill: plain (unkeyed) reply double rate: {}/{} = {:.2}%",
        plain[4],
        plain[1],
        100.0 * plain[4] as f64 / plain[1].max(1) as f64
    );
    let assignments: BTreeMap<usize, usize> = stored.values().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.assigned).or_default() += 1;
        m
    });
    println!("faults/kill: tickets by number of assignments: {assignments:?}");

    assert_eq!(outages.len(), 2, "both outages happened: {outages:?}");
    assert!(
        outages.iter().all(|o| o.3.is_some()),
        "the services recovered after each restart: {outages:?}"
    );
    assert_eq!(hung, 0, "no call hangs");
    assert!(
        !codes.contains_key("Internal") && !codes.contains_key("Unknown"),
        "an outage answers UNAVAILABLE, never INTERNAL or UNKNOWN: {codes:?}"
    );
    for kind in [Kind::Submit, Kind::KeyedReply, Kind::PlainReply] {
        let [_, acked, _, lost, _, _] = figures.get(&kind).copied().unwrap_or_default();
        assert!(acked > 0, "{kind:?}: some acknowledged");
        assert_eq!(lost, 0, "{kind:?}: nothing acknowledged is lost");
    }
    for kind in [Kind::Submit, Kind::KeyedReply] {
        assert_eq!(figures[&kind][4], 0, "{kind:?}: nothing keyed is doubled");
    }
    for (id, ticket) in &stored {
        assert_eq!(ticket.opened, 1, "{id}: opened once: {ticket:?}");
        assert_eq!(ticket.assigned, 1, "{id}: assigned once: {ticket:?}");
        for (body, keys) in &ticket.replies {
            if keys.iter().any(Option::is_some) {
                assert_eq!(keys.len(), 1, "{id}: keyed reply {body:?} once");
            }
        }
    }

    // The services answer what the log holds.
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    for op in ops.iter().filter(|o| o.kind == Kind::Submit && o.acked) {
        let ticket = agent
            .get_ticket(v1::GetTicketRequest {
                ticket_id: op.ticket.clone(),
                as_of_version: None,
                as_of_time: None,
            })
            .await
            .unwrap()
            .into_inner()
            .ticket
            .unwrap();
        assert_eq!(
            ticket.version as usize, stored[&op.ticket].events,
            "{}: conversation agrees with the log",
            op.ticket
        );
    }
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------------------
// 2. NATS frozen (SIGSTOP) for longer than the log timeout
// ---------------------------------------------------------------------------------

/// How long NATS stays frozen: twice the services' log timeout (2 s).
const FROZEN: Duration = Duration::from_secs(5);

/// One call made while NATS is frozen: what it was, its answer, how long it took.
type Call = std::pin::Pin<Box<dyn Future<Output = (String, Result<(), Code>, Duration)> + Send>>;

/// With NATS frozen for longer than the log timeout, calls answer UNAVAILABLE
/// within bounded time (never hang); after SIGCONT everything recovers by itself:
/// a new submit succeeds, health is SERVING, the calls retried with their keys
/// succeed once, and nothing acknowledged before is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_nats_answers_unavailable_then_recovers() {
    const BEFORE: usize = 12;
    const STALLED: usize = 8;
    let cluster = Cluster::start().await.unwrap();
    agent_online(&cluster, "ana", 100).await;
    let intake = cluster.intake(SYSTEM, Role::CustomerSystem).await.unwrap();
    let agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    let mut before = Vec::new();
    for i in 0..BEFORE {
        let answer = intake
            .clone()
            .submit_ticket(submit_request(&format!("before-{i}"), "frozen@example.com"))
            .await
            .unwrap()
            .into_inner();
        before.push(answer);
    }
    cluster.routing_settled().await.unwrap();

    tokio::task::block_in_place(|| cluster.nats.pause()).unwrap();
    let frozen = Instant::now();
    // Submits, keyed replies and reads, all at once, while NATS is frozen.
    let mut calls: Vec<Call> = Vec::new();
    for i in 0..STALLED {
        let mut intake = intake.clone();
        calls.push(Box::pin(async move {
            let start = Instant::now();
            let answer = intake
                .submit_ticket(submit_request(
                    &format!("stalled-{i}"),
                    &format!("stalled-{i}@example.com"),
                ))
                .await;
            (
                format!("SubmitTicket stalled-{i}"),
                answer.map(drop).map_err(|s| s.code()),
                start.elapsed(),
            )
        }));
    }
    for (i, ticket) in before.iter().take(STALLED / 2).enumerate() {
        let mut replier = agent.clone();
        let ticket_id = ticket.ticket_id.clone();
        calls.push(Box::pin(async move {
            let start = Instant::now();
            let answer = replier
                .reply(v1::ReplyRequest {
                    ticket_id,
                    body: format!("stalled reply {i}"),
                    awaiting_customer: false,
                    expected_version: None,
                    idempotency_key: format!("stalled-reply-{i}"),
                })
                .await;
            (
                format!("Reply stalled-reply-{i}"),
                answer.map(drop).map_err(|s| s.code()),
                start.elapsed(),
            )
        }));
        let mut reader = agent.clone();
        let ticket_id = ticket.ticket_id.clone();
        calls.push(Box::pin(async move {
            let start = Instant::now();
            let answer = reader
                .get_ticket(v1::GetTicketRequest {
                    ticket_id,
                    as_of_version: None,
                    as_of_time: None,
                })
                .await;
            (
                format!("GetTicket {i}"),
                answer.map(drop).map_err(|s| s.code()),
                start.elapsed(),
            )
        }));
    }
    let answers = futures::future::join_all(
        calls
            .into_iter()
            .map(|call| tokio::time::timeout(Duration::from_secs(30), call)),
    )
    .await;
    let answered_in = frozen.elapsed();
    let health_frozen = health(cluster.intake_addr).await;
    // Frozen at least FROZEN in all.
    tokio::time::sleep(FROZEN.saturating_sub(frozen.elapsed())).await;
    let frozen_for = frozen.elapsed();
    tokio::task::block_in_place(|| cluster.nats.resume()).unwrap();
    let resumed = Instant::now();

    // A new submit succeeds.
    let mut tries = Tries::default();
    let after = with_retries(
        || {
            let mut intake = intake.clone();
            async move {
                intake
                    .submit_ticket(submit_request("after-thaw", "thawed@example.com"))
                    .await
            }
        },
        &mut tries,
    )
    .await;
    let recovery = resumed.elapsed();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    let mut results = Vec::new();
    for answer in &answers {
        let (call, result, took) = answer
            .as_ref()
            .expect("a call with NATS frozen must answer, not hang");
        slowest = slowest.max(*took);
        *codes
            .entry(result.map_or_else(|c| format!("{c:?}"), |()| "Ok".into()))
            .or_default() += 1;
        results.push((call.clone(), *result));
    }
    println!(
        "faults/freeze: {} calls with NATS frozen answered within {answered_in:?} \
         (slowest {slowest:?}): {codes:?}; intake health while frozen {health_frozen:?}; \
         frozen {frozen_for:?}; first submit after SIGCONT succeeded {recovery:?} later \
         after {} attempt(s)",
        answers.len(),
        tries.attempts,
    );
    for (call, result) in &results {
        assert_eq!(*result, Err(Code::Unavailable), "{call} with NATS frozen");
    }
    let after = after.expect("a submit succeeds once NATS thaws");
    all_serving(
        &cluster,
        &[
            cluster.intake_addr,
            cluster.conversation_addr,
            cluster.routing_addr,
        ],
    )
    .await;

    // What landed although the caller was told UNAVAILABLE (the frozen server
    // stored it on waking), before anyone retried.
    let landed = {
        let counts = cluster.ticket_event_counts().await.unwrap();
        (0..STALLED)
            .filter(|i| {
                counts.contains_key(&format!(
                    "frontline.ticket.{}",
                    ticket_id(SYSTEM, &format!("stalled-{i}"))
                ))
            })
            .count()
    };
    // The callers retry with their keys: each succeeds, once.
    let mut retried = Vec::new();
    for i in 0..STALLED {
        let answer = intake
            .clone()
            .submit_ticket(submit_request(
                &format!("stalled-{i}"),
                &format!("stalled-{i}@example.com"),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            answer.ticket_id,
            ticket_id(SYSTEM, &format!("stalled-{i}")).to_string()
        );
        retried.push(answer);
    }
    for (i, ticket) in before.iter().take(STALLED / 2).enumerate() {
        agent
            .clone()
            .reply(v1::ReplyRequest {
                ticket_id: ticket.ticket_id.clone(),
                body: format!("stalled reply {i}"),
                awaiting_customer: false,
                expected_version: None,
                idempotency_key: format!("stalled-reply-{i}"),
            })
            .await
            .unwrap();
    }
    cluster.routing_settled().await.unwrap();
    let stored = stored_tickets(&cluster).await;
    println!(
        "faults/freeze: {landed}/{STALLED} submits answered UNAVAILABLE were stored anyway \
         when NATS woke (retries found them); {} tickets on the log",
        stored.len()
    );
    let acked: Vec<_> = before.iter().chain(&retried).chain([&after]).collect();
    assert_eq!(stored.len(), acked.len(), "no other ticket was opened");
    for answer in &acked {
        let ticket = &stored[&answer.ticket_id];
        assert_eq!(ticket.opened, 1, "{}: opened once", answer.ticket_id);
        assert_eq!(ticket.assigned, 1, "{}: assigned once", answer.ticket_id);
        // And on its customer's record.
        let customer = intake
            .clone()
            .get_customer(v1::GetCustomerRequest {
                customer_id: answer.customer_id.clone(),
                identity: None,
            })
            .await
            .unwrap()
            .into_inner()
            .customer
            .unwrap();
        assert!(
            customer.ticket_ids.contains(&answer.ticket_id),
            "{}: on its customer's record",
            answer.ticket_id
        );
    }
    for (i, ticket) in before.iter().take(STALLED / 2).enumerate() {
        let replies = &stored[&ticket.ticket_id].replies;
        assert_eq!(
            replies.get(&format!("stalled reply {i}")).map(Vec::len),
            Some(1),
            "keyed reply {i} recorded once"
        );
    }
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------------------
// 3. Garbage, truncated and unknown messages on the event subjects
// ---------------------------------------------------------------------------------

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// An envelope for ticket `id` of `event_type` with `payload`, as a writer would
/// store it.
fn envelope(id: &Uuid, event_type: &str, payload: Vec<u8>) -> v1::EventEnvelope {
    v1::EventEnvelope {
        event_id: Uuid::new_v4().to_string(),
        aggregate_type: "ticket".into(),
        aggregate_id: id.to_string(),
        aggregate_version: 1,
        event_type: event_type.into(),
        occurred_at: Some(convert::timestamp(frontline_runtime::now_millis())),
        actor: Some(v1::Actor {
            id: "hostile".into(),
            role: v1::Role::CustomerSystem.into(),
        }),
        correlation_id: "hostile".into(),
        causation_id: "hostile".into(),
        schema_version: 2,
        payload,
        sealed_for: String::new(),
    }
}

/// The consumers of ticket events, each of which must park what it cannot read.
const TICKET_CONSUMERS: [&str; 4] = [
    frontline_routing::consumers::TICKETS,
    frontline_routing::consumers::SLA,
    "intake-customer-tickets",
    "analytics-g1",
];

/// Parked messages per consumer, read from the parking stream.
async fn parked(cluster: &Cluster) -> HashMap<String, usize> {
    let js = async_nats::jetstream::new(cluster.log.client().clone());
    let stream = js
        .get_stream(cluster.log.config().parked_stream())
        .await
        .unwrap();
    stream
        .info_with_subjects(format!("{}.>", frontline_eventlog::PARKED_PREFIX))
        .await
        .unwrap()
        .try_collect::<HashMap<String, usize>>()
        .await
        .unwrap()
        .into_iter()
        .map(|(subject, n)| {
            let consumer = subject
                .trim_start_matches(frontline_eventlog::PARKED_PREFIX)
                .trim_start_matches('.')
                .to_string();
            (consumer, n)
        })
        .collect()
}

/// Random bytes, truncated envelopes, envelopes of a known type with a truncated
/// payload, and envelopes of an unknown type, published straight onto ticket
/// subjects while routing, intake's projection and analytics consume: every
/// unreadable message is parked by every consumer exactly once (unknown types are
/// skipped, as a newer writer's events, not parked), no consumer stops, every
/// service stays SERVING, and a ticket submitted afterwards is assigned and
/// projected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_are_parked_and_the_consumers_go_on() {
    let per_kind = env_size("FAULT_GARBAGE", DEFAULT_GARBAGE);
    let mut cluster = Cluster::start().await.unwrap();
    let analytics_addr = cluster.start_analytics().await.unwrap();
    agent_online(&cluster, "ana", 1_000).await;
    let mut intake = cluster.intake(SYSTEM, Role::CustomerSystem).await.unwrap();
    // Load before, during and after the garbage.
    let mut tickets = Vec::new();
    tickets.push(
        intake
            .submit_ticket(submit_request("hostile-0", "hostile@example.com"))
            .await
            .unwrap()
            .into_inner()
            .ticket_id,
    );
    cluster.routing_settled().await.unwrap();
    cluster.analytics_settled().await.unwrap();

    let js = async_nats::jetstream::new(cluster.log.client().clone());
    let mut rng = Rng(0x5eed_f00d_dead_beef);
    let mut published = [0usize; 4];
    for i in 0..per_kind {
        let subject = || format!("frontline.ticket.{}", Uuid::new_v4());
        // Random bytes; the first is a field-1 tag of wire type 7, which no
        // protobuf decoder accepts.
        let len = 1 + (rng.next() % 200) as usize;
        let mut garbage = rng.bytes(len);
        garbage[0] = 0x0f;
        // A valid envelope, cut short.
        let mut truncated =
            envelope(&Uuid::new_v4(), "frontline.v1.TicketOpened", rng.bytes(40)).encode_to_vec();
        truncated.truncate(truncated.len() - 1 - (rng.next() % 20) as usize);
        // A known type whose payload is cut short: a length beyond the end.
        let id = Uuid::new_v4();
        let bad_payload = envelope(
            &id,
            "frontline.v1.TicketOpened",
            vec![0x0a, 0x20, b'x', b'y'],
        )
        .encode_to_vec();
        // A type no version of this code knows (a newer writer's).
        let id2 = Uuid::new_v4();
        let unknown = envelope(
            &id2,
            "frontline.v1.TicketTeleported",
            vec![0x0a, 0x03, b'v', b'i', b'p'],
        )
        .encode_to_vec();
        for (n, (subject, bytes)) in [
            (subject(), garbage),
            (subject(), truncated),
            (format!("frontline.ticket.{id}"), bad_payload),
            (format!("frontline.ticket.{id2}"), unknown),
        ]
        .into_iter()
        .enumerate()
        {
            js.publish(subject, bytes.into())
                .await
                .unwrap()
                .await
                .unwrap();
            published[n] += 1;
        }
        if i % 5 == 0 {
            tickets.push(
                intake
                    .submit_ticket(submit_request(
                        &format!("hostile-{}", i + 1),
                        "hostile@example.com",
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .ticket_id,
            );
        }
    }
    let unreadable = published[0] + published[1] + published[2];

    // Every consumer parks each unreadable message, once.
    let start = Instant::now();
    let parked = loop {
        let parked = parked(&cluster).await;
        if TICKET_CONSUMERS
            .iter()
            .all(|c| parked.get(*c).copied().unwrap_or_default() >= unreadable)
            || start.elapsed() > Duration::from_secs(60)
        {
            break parked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let parked_in = start.elapsed();
    // A normal ticket afterwards is assigned and projected.
    let last = intake
        .submit_ticket(submit_request("hostile-last", "hostile@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    tickets.push(last.clone());
    cluster.routing_settled().await.unwrap();
    cluster.analytics_settled().await.unwrap();
    let addrs = [
        cluster.intake_addr,
        cluster.conversation_addr,
        cluster.routing_addr,
        analytics_addr,
    ];
    let mut statuses = Vec::new();
    for addr in addrs {
        statuses.push(health(addr).await);
    }
    println!(
        "faults/hostile: published {} random, {} truncated envelopes, {} truncated payloads, \
         {} unknown types ({} tickets around them); parked per consumer {parked:?} within \
         {parked_in:?}; health {statuses:?}",
        published[0],
        published[1],
        published[2],
        published[3],
        tickets.len()
    );
    for consumer in TICKET_CONSUMERS {
        assert_eq!(
            parked.get(consumer).copied().unwrap_or_default(),
            unreadable,
            "{consumer} parks every unreadable message once (and no unknown type)"
        );
    }
    assert!(
        statuses.iter().all(|s| *s == Some(1)),
        "every service stays SERVING: {statuses:?}"
    );
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    for ticket in &tickets {
        let r = routing
            .get_ticket_routing(v1::GetTicketRoutingRequest {
                ticket_id: ticket.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .routing
            .unwrap();
        assert_eq!(r.assignee, "ana", "{ticket} assigned: {r:?}");
    }
    let mut analytics = cluster.analytics_as(&manager(), None).await.unwrap();
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = analytics
            .list_tickets(v1::ListTicketsRequest {
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.tickets.into_iter().map(|t| t.ticket_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    listed.sort();
    let mut expected = tickets.clone();
    expected.sort();
    assert_eq!(
        listed, expected,
        "analytics projects exactly the real tickets"
    );
    cluster.shutdown().await;
}
