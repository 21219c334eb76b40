//! Failover on a 3-node NATS cluster: intake and routing run against a local
//! cluster (R3 streams, `sync_interval: always`, `NATS_URL` a comma-separated seed
//! list) while 16 clients submit tickets, retrying every failed call with the same
//! idempotency key. A follower node is killed with SIGKILL (and restarted), then
//! the node that leads the event stream *and* holds intake's connection (the worst
//! case: the connection and the stream leader go at once).
//!
//! Asserted: the services come back by themselves, writes resume, and every
//! acknowledged submit is on the stream (read from a surviving node) exactly once.
//! Measured and printed (run with `--nocapture`), never asserted: the longest gap
//! between acknowledged writes around each kill and the UNAVAILABLE answers
//! clients saw. `NATS_CLUSTER_LOG_TIMEOUT_SECS` overrides the services' log timeout
//! (2 s in tests, 5 s by default in production) to measure its effect.
#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use frontline_domain::{Role, Ticket, TicketEvent};
use frontline_e2e::{Cluster, open_log_with, submit_request, ticket_id};
use frontline_testkit::NatsCluster;
use futures::StreamExt as _;
use tokio::time::Instant;
use tonic::Code;

/// Clients submitting at once.
const CLIENTS: usize = 16;
/// A call that has not answered after this long hangs.
const HANG: Duration = Duration::from_secs(20);
/// How long one submit is retried before the client gives up.
const GIVE_UP: Duration = Duration::from_secs(60);
/// Writes must come back within this long after a kill (generous: this is a
/// liveness bound, not the 2 s target, which is measured, not asserted).
const RESUME_LIMIT: Duration = Duration::from_secs(60);
/// The customer system every submit comes from.
const SYSTEM: &str = "web-shop";
/// Every Frontline service's NATS connection name.
const SERVICE_CONNECTION: &str = "frontline";

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

/// One submit a client asked for.
#[derive(Debug)]
struct Op {
    key: String,
    acked: bool,
}

/// What every client shares: acknowledgement times, failure codes, a stop flag.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    issued: AtomicUsize,
    acked: AtomicUsize,
    /// When each acknowledgement arrived.
    acks: Mutex<Vec<Instant>>,
    /// When each failed attempt ended, and its code (`None`: it hung).
    failures: Mutex<Vec<(Instant, Option<Code>)>>,
}

/// One client: submits tickets until told to stop, retrying each (same key) until
/// it is acknowledged, fails for good, or [`GIVE_UP`] passes.
async fn client(
    cluster: &Cluster,
    c: usize,
    shared: Arc<Shared>,
) -> tokio::task::JoinHandle<Vec<Op>> {
    let intake = cluster.intake(SYSTEM, Role::CustomerSystem).await.unwrap();
    tokio::spawn(async move {
        let mut ops = Vec::new();
        while !shared.stop.load(Ordering::SeqCst) {
            let n = shared.issued.fetch_add(1, Ordering::SeqCst);
            let key = format!("cluster-{n}");
            let request = submit_request(&key, &format!("client-{c}-{}@example.com", n % 4));
            let deadline = Instant::now() + GIVE_UP;
            let mut attempts = 0u64;
            let acked = loop {
                attempts += 1;
                let mut intake = intake.clone();
                let failure =
                    match tokio::time::timeout(HANG, intake.submit_ticket(request.clone())).await {
                        Ok(Ok(answer)) => {
                            assert_eq!(
                                answer.into_inner().ticket_id,
                                ticket_id(SYSTEM, &key).to_string(),
                                "the key names the ticket"
                            );
                            shared.acks.lock().unwrap().push(Instant::now());
                            shared.acked.fetch_add(1, Ordering::SeqCst);
                            break true;
                        }
                        Ok(Err(status)) => Some(status),
                        Err(_) => None,
                    };
                shared
                    .failures
                    .lock()
                    .unwrap()
                    .push((Instant::now(), failure.as_ref().map(tonic::Status::code)));
                if let Some(status) = &failure
                    && !retryable(status.code())
                {
                    eprintln!("gave up on a permanent failure: {status:?}");
                    break false;
                }
                if Instant::now() > deadline {
                    break false;
                }
                // A short, growing pause (at most 200 ms), so the gap measured is
                // the services', not the clients' backoff.
                tokio::time::sleep(Duration::from_millis(50 * attempts.min(4))).await;
            };
            ops.push(Op { key, acked });
        }
        ops
    })
}

/// Waits until `shared` counts `target` acknowledgements (or `limit` passes).
async fn until_acked(shared: &Shared, target: usize, limit: Duration) -> bool {
    let start = Instant::now();
    while shared.acked.load(Ordering::SeqCst) < target {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// What one kill did to the writers.
#[derive(Debug)]
struct Outage {
    /// Longest time between two acknowledged writes from the kill on.
    longest_gap: Duration,
    /// From the kill to the first acknowledgement that came after the longest gap.
    resumed_after: Duration,
    /// Failed attempts (by code) from the kill to the end of the window.
    failures: BTreeMap<String, usize>,
}

/// The outage seen by the clients between `killed` and `until`: the longest gap
/// between acknowledgements (the kill itself counts as the gap's start, so a
/// stall right after it is measured in full).
fn outage(shared: &Shared, killed: Instant, until: Instant) -> Outage {
    let mut acks: Vec<Instant> = shared
        .acks
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| *t >= killed && *t <= until)
        .collect();
    acks.sort();
    let (mut longest_gap, mut resumed_after, mut previous) =
        (Duration::ZERO, Duration::ZERO, killed);
    for t in acks {
        if t - previous > longest_gap {
            longest_gap = t - previous;
            resumed_after = t - killed;
        }
        previous = t;
    }
    let mut failures = BTreeMap::new();
    for (t, code) in shared.failures.lock().unwrap().iter() {
        if *t >= killed && *t <= until {
            let name = code.map_or_else(|| "hung".to_string(), |c| format!("{c:?}"));
            *failures.entry(name).or_default() += 1;
        }
    }
    Outage {
        longest_gap,
        resumed_after,
        failures,
    }
}

/// Makes `node` lead `stream` (a leader stepdown naming it as preferred, repeated
/// until it sticks); whether it does, and when the first stepdown was asked for
/// (`None`: it led already).
async fn move_leader(
    nats: &NatsCluster,
    client: &async_nats::Client,
    stream: &str,
    node: usize,
) -> (bool, Option<Instant>) {
    let mut first = None;
    let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}");
    let payload = format!(r#"{{"placement":{{"preferred":"{}"}}}}"#, nats.name(node));
    for _ in 0..10 {
        let leader = tokio::task::block_in_place(|| nats.stream_leader(stream));
        if leader == Some(node) {
            return (true, first);
        }
        if leader.is_some() {
            first.get_or_insert_with(Instant::now);
            let answer = client
                .request(subject.clone(), payload.clone().into())
                .await;
            if let Err(e) = &answer {
                eprintln!("stepdown of {stream}: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let moved = tokio::task::block_in_place(|| nats.stream_leader(stream)) == Some(node);
    (moved, first)
}

/// Kill -9 of a follower node, then of the node leading the stream and holding
/// intake's connection, under 16 clients' submits: nothing acknowledged is lost or
/// doubled, the services reconnect by themselves and writes resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_failover_loses_and_doubles_nothing_acknowledged() {
    let run_started = Instant::now();
    let mut nats = tokio::task::spawn_blocking(NatsCluster::start)
        .await
        .unwrap()
        .unwrap();
    let formed = run_started.elapsed();
    let mut cluster = Cluster::bare_on_nats(&nats.urls(), 3).await.unwrap();
    let stream = cluster.log.stream_name().to_string();
    let mut config = cluster.config().unwrap();
    if let Some(secs) = std::env::var("NATS_CLUSTER_LOG_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.log_timeout_secs = secs;
    }
    let log_timeout = config.log_timeout_secs;

    // Intake first, alone, to see which node holds its connection.
    cluster.intake_addr = cluster
        .serve_config(frontline_intake::service(), config.clone())
        .await
        .unwrap();
    cluster.wait_serving(cluster.intake_addr).await.unwrap();
    let intake_node = tokio::task::block_in_place(|| {
        (0..nats.len()).find(|&i| nats.connections_named(i, SERVICE_CONNECTION) == 1)
    })
    .expect("intake's connection is on one node");
    cluster.routing_addr = cluster
        .serve_config(frontline_routing::service(), config)
        .await
        .unwrap();
    cluster.wait_serving(cluster.routing_addr).await.unwrap();

    let shared = Arc::new(Shared::default());
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        clients.push(client(&cluster, c, shared.clone()).await);
    }
    assert!(until_acked(&shared, 200, RESUME_LIMIT).await, "warm-up");

    // 1. A follower: neither the stream's leader nor intake's node.
    let leader = tokio::task::block_in_place(|| nats.stream_leader(&stream))
        .expect("the stream has a leader");
    let follower = (0..nats.len())
        .find(|&i| i != leader && i != intake_node)
        .unwrap();
    let killed = Instant::now();
    tokio::task::block_in_place(|| nats.kill(follower)).unwrap();
    let before = shared.acked.load(Ordering::SeqCst);
    assert!(
        until_acked(&shared, before + 100, RESUME_LIMIT).await,
        "writes go on without a follower"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let follower_outage = outage(&shared, killed, Instant::now());
    tokio::task::block_in_place(|| nats.restart(follower)).unwrap();
    let follower_back = killed.elapsed();

    // 2. The stream's leader, made to be the node intake is connected to.
    let (moved, stepped_down) =
        move_leader(&nats, cluster.log.client(), &stream, intake_node).await;
    let before = shared.acked.load(Ordering::SeqCst);
    assert!(until_acked(&shared, before + 100, RESUME_LIMIT).await);
    // A planned leader change (stepdown), for comparison with the kill below.
    let stepdown_outage = stepped_down.map(|t| outage(&shared, t, Instant::now()));
    let leader = tokio::task::block_in_place(|| nats.stream_leader(&stream))
        .expect("the stream has a leader");
    let intake_there =
        tokio::task::block_in_place(|| nats.connections_named(leader, SERVICE_CONNECTION) > 0)
            && leader == intake_node;
    let killed = Instant::now();
    tokio::task::block_in_place(|| nats.kill(leader)).unwrap();
    let during = shared.acked.load(Ordering::SeqCst);
    // When the survivors elect a leader for the stream, and when both services'
    // connections are on the survivors again (polled every 50 ms).
    let (mut elected, mut reconnected) = (None, None);
    while elected.is_none() || reconnected.is_none() {
        if killed.elapsed() > RESUME_LIMIT {
            break;
        }
        tokio::task::block_in_place(|| {
            if elected.is_none() && nats.stream_leader(&stream).is_some_and(|l| l != leader) {
                elected = Some(killed.elapsed());
            }
            let connections: usize = (0..nats.len())
                .map(|i| nats.connections_named(i, SERVICE_CONNECTION))
                .sum();
            if reconnected.is_none() && connections >= 2 {
                reconnected = Some(killed.elapsed());
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed = until_acked(&shared, during + 100, RESUME_LIMIT).await;
    // Some more writes on the two survivors.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader_outage = outage(&shared, killed, Instant::now());
    let new_leader = tokio::task::block_in_place(|| nats.stream_leader(&stream));

    shared.stop.store(true, Ordering::SeqCst);
    let mut ops = Vec::new();
    for client in clients {
        ops.extend(client.await.unwrap());
    }
    assert!(
        resumed,
        "writes resumed within {RESUME_LIMIT:?} of the leader's kill"
    );

    // The services are back by themselves and routing consumed everything.
    cluster.wait_serving(cluster.intake_addr).await.unwrap();
    cluster.wait_serving(cluster.routing_addr).await.unwrap();
    cluster
        .routing_settled_within(Duration::from_secs(60))
        .await
        .unwrap();

    // The stream, read from a surviving node alone.
    let survivor = (0..nats.len()).find(|&i| nats.is_running(i)).unwrap();
    // (Each R3 asset elects its own leader: the key bucket may still be electing.)
    let opening = Instant::now();
    let log = loop {
        match open_log_with(&nats.node(survivor).url(), 3).await {
            Ok(log) => break log,
            Err(e) if opening.elapsed() < RESUME_LIMIT => {
                eprintln!("opening the log on n{survivor}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("the log on n{survivor}: {e}"),
        }
    };
    let js = async_nats::jetstream::new(log.client().clone());
    let counts: HashMap<String, usize> = {
        use futures::TryStreamExt as _;
        js.get_stream(log.stream_name())
            .await
            .unwrap()
            .info_with_subjects("frontline.ticket.>")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    let opened: HashMap<String, usize> = futures::stream::iter(counts.keys().cloned())
        .map(|subject| {
            let log = &log;
            async move {
                let id = subject.trim_start_matches("frontline.ticket.").to_string();
                let events = log
                    .read::<Ticket>(&uuid::Uuid::parse_str(&id).unwrap(), None)
                    .await
                    .unwrap();
                let opened = events
                    .iter()
                    .filter(|e| matches!(e.event, Some(TicketEvent::Opened(_))))
                    .count();
                (id, opened)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let acked: Vec<&Op> = ops.iter().filter(|o| o.acked).collect();
    let (mut lost, mut doubled) = (Vec::new(), Vec::new());
    for op in &acked {
        match opened.get(&ticket_id(SYSTEM, &op.key).to_string()) {
            None | Some(0) => lost.push(op.key.clone()),
            Some(1) => {}
            Some(_) => doubled.push(op.key.clone()),
        }
    }
    let opened_twice = opened.values().filter(|n| **n > 1).count();
    let unacked_stored = ops
        .iter()
        .filter(|o| !o.acked && opened.contains_key(&ticket_id(SYSTEM, &o.key).to_string()))
        .count();

    println!(
        "nats_cluster: cluster formed in {formed:?}; log timeout {log_timeout} s; \
         {} submits, {} acknowledged, {unacked_stored} unacknowledged but stored; \
         {} tickets on the stream of survivor n{survivor}; lost {}, doubled {}",
        ops.len(),
        acked.len(),
        opened.len(),
        lost.len(),
        doubled.len(),
    );
    println!(
        "nats_cluster: follower n{follower} killed: longest gap between acknowledged \
         writes {:?}; failed attempts {:?}; back and current after {follower_back:?}",
        follower_outage.longest_gap, follower_outage.failures,
    );
    println!(
        "nats_cluster: leader n{leader} killed (intake connected there: {intake_there}, \
         leader moved there: {moved}): writes resume after {:?} (longest gap {:?}); \
         failed attempts {:?}; new leader {:?} elected after {elected:?}; services \
         reconnected after {reconnected:?}",
        leader_outage.resumed_after,
        leader_outage.longest_gap,
        leader_outage.failures,
        new_leader.map(|i| nats.name(i).to_string()),
    );
    if let Some(stepdown) = &stepdown_outage {
        println!(
            "nats_cluster: stream leader moved by a stepdown: longest gap between \
             acknowledged writes {:?}; failed attempts {:?}",
            stepdown.longest_gap, stepdown.failures,
        );
    }
    assert!(lost.is_empty(), "acknowledged submits lost: {lost:?}");
    assert!(
        doubled.is_empty(),
        "acknowledged submits doubled: {doubled:?}"
    );
    assert_eq!(opened_twice, 0, "no ticket opened twice");
    cluster.shutdown().await;
}
