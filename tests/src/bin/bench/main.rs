//! `make bench`: Frontline's speed, measured against the raw ceiling in the same run.
//!
//! 1. Raw JetStream append ceiling: N concurrent publishers, each awaiting its ack
//!    with `Nats-Expected-Last-Subject-Sequence` set, as the event log does.
//! 2. Intake `SubmitTicket` over gRPC with the same concurrency (new ticket + new
//!    customer each: two appends and their reads per submit).
//! 3. Ticket load latency (p50/p99) with target tickets' 20 events spread thinly
//!    through a stream of 10 k and of 1 M events — with snapshots (the normal path)
//!    and cold (snapshot deleted: full replay of the subject).
//! 4. The cost of sealing personal data: opening tickets (a new customer, so a new
//!    data key, each) and cold-loading 20-event tickets, on a sealing log and on a
//!    clear one, side by side.
//! 5. Routing: submit → `TicketAssigned` latency at half intake's measured rate, and
//!    SLA timer lateness for many timers due within a minute.
//! 6. Analytics: full re-projection of a log of real ticket events against a raw
//!    PostgreSQL batched-insert ceiling, projection lag at a steady append rate,
//!    and `ListTickets` latency over the projected tickets.
//!
//! It prints a table; it asserts nothing. Tests never assert wall-clock times.

use std::time::{Duration, Instant};

use async_nats::{HeaderMap, jetstream};
use bytes::Bytes;
use clap::Parser;
use frontline_domain::{Role, Ticket, TicketCommand};
use frontline_e2e::{Cluster, submit_request};
use frontline_eventlog::EventLog;
use futures::StreamExt;
use uuid::Uuid;

mod analytics;
mod routing;
mod sealing;
mod tickets;

#[derive(Debug, Parser)]
#[command(about = "Frontline benchmark: intake throughput and ticket load latency")]
struct Args {
    /// Concurrent clients (and raw publishers).
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// Operations per throughput measurement.
    #[arg(long, env = "BENCH_OPS", default_value_t = 4000)]
    ops: usize,
    /// Size of the large stream for the load-latency measurement.
    #[arg(long, env = "BENCH_LARGE_STREAM", default_value_t = 1_000_000)]
    large: u64,
    /// Size of the small stream for the load-latency measurement.
    #[arg(long, env = "BENCH_SMALL_STREAM", default_value_t = 10_000)]
    small: u64,
    /// Target tickets measured per stream size.
    #[arg(long, env = "BENCH_TARGETS", default_value_t = 200)]
    targets: usize,
    /// Events per target ticket.
    #[arg(long, env = "BENCH_EVENTS_PER_TICKET", default_value_t = 20)]
    events_per_ticket: usize,
    /// SLA timers scheduled for the lateness row.
    #[arg(long, env = "BENCH_TIMERS", default_value_t = 10_000)]
    timers: usize,
    /// Seconds the timers are spread over.
    #[arg(long, env = "BENCH_TIMER_WINDOW_SECS", default_value_t = 60)]
    timer_window_secs: u64,
    /// Tickets submitted for the submit → assigned row.
    #[arg(long, env = "BENCH_ASSIGN_OPS", default_value_t = 2000)]
    assign_ops: usize,
    /// Only routing's rows (with the intake rate they are measured at).
    #[arg(long, env = "BENCH_ONLY_ROUTING")]
    only_routing: bool,
    /// Events in the log analytics re-projects from scratch.
    #[arg(long, env = "BENCH_ANALYTICS_EVENTS", default_value_t = 1_000_000)]
    analytics_events: u64,
    /// Events per second appended while measuring projection lag.
    #[arg(long, env = "BENCH_LAG_RATE", default_value_t = 5_000.0)]
    lag_rate: f64,
    /// Seconds the lag is measured over.
    #[arg(long, env = "BENCH_LAG_SECS", default_value_t = 20)]
    lag_secs: u64,
    /// Only analytics' rows.
    #[arg(long, env = "BENCH_ONLY_ANALYTICS")]
    only_analytics: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("BENCH_LOG").is_some() {
        frontline_runtime::telemetry::init_logging(frontline_runtime::telemetry::LogFormat::Text);
    }
    let mut rows = Vec::new();
    if args.only_analytics {
        analytics_rows(&args, &mut rows).await?;
        print_table(&rows);
        return Ok(());
    }
    eprintln!("starting a pinned nats-server and the services…");
    let cluster = Cluster::start().await?;
    if args.only_routing {
        let intake = intake_rate(&cluster, args.concurrency, args.ops).await?;
        cluster.shutdown().await;
        routing_rows(&args, intake, &mut rows).await?;
        print_table(&rows);
        return Ok(());
    }

    let raw = raw_append_rate(&cluster, args.concurrency, args.ops).await?;
    let intake = intake_rate(&cluster, args.concurrency, args.ops).await?;
    rows.push(Row::new(
        format!("raw JetStream append, {} concurrent", args.concurrency),
        format!("{raw:.0}/s"),
        "ceiling".into(),
    ));
    rows.push(Row::new(
        format!("intake SubmitTicket, {} concurrent", args.concurrency),
        format!("{intake:.0}/s"),
        format!("{:.0}% of ceiling (target ≥ 60%)", 100.0 * intake / raw),
    ));
    let returning = returning_rate(&cluster, args.concurrency, args.ops / 2).await?;
    rows.push(Row::new(
        format!(
            "intake SubmitTicket, customer with {RETURNING_OPEN} open tickets, {} concurrent",
            args.concurrency
        ),
        format!("{returning:.0}/s"),
        "open tickets listed on every answer".into(),
    ));
    let (sealed, clear) = sealing::measure(args.concurrency, args.ops / 2).await?;
    rows.push(Row::new(
        format!(
            "ticket open, new customer each, sealed vs clear, {} concurrent",
            args.concurrency
        ),
        format!(
            "{:.0}/s vs {:.0}/s",
            sealed.opens_per_sec, clear.opens_per_sec
        ),
        format!(
            "sealing: {:.0}% of clear (a data key created per customer)",
            100.0 * sealed.opens_per_sec / clear.opens_per_sec
        ),
    ));
    rows.push(Row::new(
        "ticket load cold (20 events), sealed vs clear".into(),
        format!(
            "p50 {} vs {}, p99 {} vs {}",
            ms(sealed.load_p50),
            ms(clear.load_p50),
            ms(sealed.load_p99),
            ms(clear.load_p99)
        ),
        "every event's fields opened; data key cached".into(),
    ));
    let (sealed_cpu, clear_cpu) = sealing::cpu_per_event();
    rows.push(Row::new(
        "encode + decode one ticket event (200-byte body), sealed vs clear".into(),
        format!(
            "{:.1} µs vs {:.1} µs",
            sealed_cpu.as_secs_f64() * 1e6,
            clear_cpu.as_secs_f64() * 1e6
        ),
        "CPU only: XChaCha20-Poly1305 seal + open of one field".into(),
    ));

    cluster.shutdown().await;

    routing_rows(&args, intake, &mut rows).await?;

    // Load latency on its own fresh server, so the stream sizes are exact.
    let cluster = Cluster::start().await?;
    let js = jetstream::new(cluster.log.client().clone());
    let mut filled = stream_len(&js, &cluster.log).await?;
    let mut results = Vec::new();
    for size in [args.small, args.large] {
        eprintln!(
            "filling the stream to {size} events with {} target tickets spread through it…",
            args.targets
        );
        let targets = spread_targets(
            &cluster.log,
            &js,
            args.targets,
            args.events_per_ticket,
            filled,
            size,
        )
        .await?;
        filled = stream_len(&js, &cluster.log).await?;
        let warm = load_latencies(&cluster.log, &targets, false).await?;
        let cold = load_latencies(&cluster.log, &targets, true).await?;
        results.push((filled, warm, cold));
    }
    for (size, warm, cold) in &results {
        rows.push(Row::new(
            format!("ticket load, stream {}", human(*size)),
            format!("p50 {} p99 {}", ms(warm.p50), ms(warm.p99)),
            "snapshot + tail".into(),
        ));
        rows.push(Row::new(
            format!("ticket load cold, stream {}", human(*size)),
            format!("p50 {} p99 {}", ms(cold.p50), ms(cold.p99)),
            "no snapshot: full subject replay".into(),
        ));
    }
    if let [(_, small, _), (_, large, _)] = &results[..] {
        rows.push(Row::new(
            "load p99 large / small".into(),
            format!("{:.2}×", large.p99.as_secs_f64() / small.p99.as_secs_f64()),
            "target ≤ 1.5×".into(),
        ));
    }
    cluster.shutdown().await;
    analytics_rows(&args, &mut rows).await?;
    print_table(&rows);
    Ok(())
}

/// Analytics on a cluster of its own.
async fn analytics_rows(args: &Args, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let a = analytics::measure(args.analytics_events, args.lag_rate, args.lag_secs).await?;
    rows.push(Row::new(
        "raw PostgreSQL insert, 1 000 rows per statement".into(),
        format!("{:.0} rows/s", a.raw_insert),
        "ceiling".into(),
    ));
    rows.push(Row::new(
        format!("analytics full re-projection, {} events", human(a.events)),
        format!("{:.0} events/s", a.reprojection),
        format!(
            "{:.0}% of the insert ceiling (target ≥ 50 000/s and ≥ 50%)",
            100.0 * a.reprojection / a.raw_insert
        ),
    ));
    rows.push(Row::new(
        format!(
            "projection lag at {:.0} events/s (asked {:.0}/s, {} s)",
            a.lag_rate, args.lag_rate, args.lag_secs
        ),
        format!(
            "p50 {} p99 {} max {}",
            ms(a.lag.p50),
            ms(a.lag.p99),
            ms(a.lag.max)
        ),
        "append acked → applied; target p99 ≤ 100 ms".into(),
    ));
    rows.push(Row::new(
        format!("ListTickets, {} tickets projected", human(a.tickets)),
        format!("p50 {} p99 {}", ms(a.list.p50), ms(a.list.p99)),
        format!("{} searches, 5 kinds, page 50", a.list.count),
    ));
    Ok(())
}

/// Routing on a fresh cluster: assignment latency at half intake's rate, then
/// timers.
async fn routing_rows(args: &Args, intake: f64, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    let half = intake / 2.0;
    eprintln!(
        "submitting {} tickets at {half:.0}/s against 5 agents…",
        args.assign_ops
    );
    let assigned = routing::assigned_latency(&cluster, half, args.assign_ops, 5).await?;
    rows.push(Row::new(
        format!("submit → TicketAssigned at {half:.0}/s (half of intake), 5 agents"),
        format!(
            "p50 {} p99 {} max {}",
            ms(assigned.p50),
            ms(assigned.p99),
            ms(assigned.max)
        ),
        format!("{} tickets; target p99 ≤ 50 ms", assigned.count),
    ));
    let lateness = routing::timer_lateness(
        &cluster,
        args.timers,
        Duration::from_secs(args.timer_window_secs),
    )
    .await?;
    rows.push(Row::new(
        format!(
            "SLA timer lateness, {} timers due within {} s",
            args.timers, args.timer_window_secs
        ),
        format!(
            "p50 {} p99 {} max {}",
            ms(lateness.p50),
            ms(lateness.p99),
            ms(lateness.max)
        ),
        "NATS message schedules; target p99 ≤ 1 s".into(),
    ));
    cluster.shutdown().await;

    Ok(())
}

struct Row {
    what: String,
    value: String,
    note: String,
}

impl Row {
    fn new(what: String, value: String, note: String) -> Self {
        Row { what, value, note }
    }
}

fn print_table(rows: &[Row]) {
    let w = rows.iter().map(|r| r.what.len()).max().unwrap_or(0);
    let v = rows.iter().map(|r| r.value.len()).max().unwrap_or(0);
    println!("\n| {:w$} | {:v$} | note", "measurement", "value");
    println!("|{}|{}|-----", "-".repeat(w + 2), "-".repeat(v + 2));
    for r in rows {
        println!("| {:w$} | {:v$} | {}", r.what, r.value, r.note);
    }
}

fn human(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} M", n as f64 / 1e6)
    } else {
        format!("{:.0} k", n as f64 / 1e3)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A realistic event message: the envelope of a TicketOpened.
fn sample_payload() -> Bytes {
    use prost::Message as _;
    let body = "Since the update my router restarts every hour.".repeat(2);
    Bytes::from(
        frontline_proto::v1::EventEnvelope {
            event_id: Uuid::now_v7().to_string(),
            aggregate_type: "ticket".into(),
            aggregate_id: Uuid::new_v4().to_string(),
            aggregate_version: 1,
            event_type: "frontline.v1.TicketOpened".into(),
            payload: body.into_bytes(),
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

async fn raw_append_rate(cluster: &Cluster, concurrency: usize, ops: usize) -> anyhow::Result<f64> {
    let js = jetstream::new(cluster.log.client().clone());
    let payload = sample_payload();
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (js, payload) = (js.clone(), payload.clone());
            tokio::spawn(async move {
                for _ in 0..ops / concurrency {
                    let mut headers = HeaderMap::new();
                    headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
                    headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
                    // A subject no consumer reads: the raw append alone.
                    js.publish_with_headers(
                        format!("frontline.bench.{}", Uuid::new_v4()),
                        headers,
                        payload.clone(),
                    )
                    .await?
                    .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((ops / concurrency * concurrency) as f64 / start.elapsed().as_secs_f64())
}

async fn intake_rate(cluster: &Cluster, concurrency: usize, ops: usize) -> anyhow::Result<f64> {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for c in 0..concurrency {
        let mut intake = cluster
            .intake(&format!("bench-{c}"), Role::CustomerSystem)
            .await?;
        tasks.push(tokio::spawn(async move {
            for i in 0..ops / concurrency {
                let req =
                    submit_request(&format!("bench-{c}-{i}"), &format!("c{c}-{i}@example.com"));
                intake.submit_ticket(req).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((ops / concurrency * concurrency) as f64 / start.elapsed().as_secs_f64())
}

/// Open tickets each returning customer already has in [`returning_rate`].
const RETURNING_OPEN: usize = 50;

/// Submits by customers who already have [`RETURNING_OPEN`] open tickets, so every
/// answer lists them ("same issue or a new one?"). One customer per client.
async fn returning_rate(cluster: &Cluster, concurrency: usize, ops: usize) -> anyhow::Result<f64> {
    eprintln!("opening {RETURNING_OPEN} tickets for each of {concurrency} returning customers…");
    let mut clients = Vec::new();
    for c in 0..concurrency {
        clients.push(
            cluster
                .intake(&format!("bench-r{c}"), Role::CustomerSystem)
                .await?,
        );
    }
    let mut prefill = Vec::new();
    for (c, intake) in clients.iter().enumerate() {
        let mut intake = intake.clone();
        prefill.push(tokio::spawn(async move {
            for i in 0..RETURNING_OPEN {
                let req = submit_request(&format!("prefill-{c}-{i}"), &format!("r{c}@example.com"));
                intake.submit_ticket(req).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in prefill {
        t.await??;
    }
    let mut tasks = Vec::new();
    let start = Instant::now();
    for (c, mut intake) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..ops / concurrency {
                let req =
                    submit_request(&format!("returning-{c}-{i}"), &format!("r{c}@example.com"));
                let answer = intake.submit_ticket(req).await?.into_inner();
                anyhow::ensure!(
                    answer.other_open_tickets.len() >= RETURNING_OPEN,
                    "expected the customer's open tickets in the answer"
                );
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((ops / concurrency * concurrency) as f64 / start.elapsed().as_secs_f64())
}

async fn stream_len(js: &jetstream::Context, log: &EventLog) -> anyhow::Result<u64> {
    let mut stream = js.get_stream(log.stream_name()).await?;
    Ok(stream.info().await?.state.messages)
}

/// Fills the stream from `from` to `to` events with filler on thin subjects, and
/// appends `per_ticket` real events to each of `n` target tickets at evenly spread
/// points, so each target's events lie far apart — the hard case for replay.
async fn spread_targets(
    log: &EventLog,
    js: &jetstream::Context,
    n: usize,
    per_ticket: usize,
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<Uuid>> {
    let targets: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let filler_total = to.saturating_sub(from + (n * per_ticket) as u64);
    let per_round = filler_total / per_ticket as u64;
    for round in 0..per_ticket {
        fill(js, per_round).await?;
        tickets::run_all(log, &targets, 16, |id| {
            if round == 0 {
                tickets::open(id)
            } else {
                TicketCommand::AddNote {
                    body: format!("note {round}"),
                    idempotency_key: None,
                }
            }
        })
        .await?;
        eprint!("\r  round {}/{per_ticket}", round + 1);
    }
    eprintln!();
    // Let background snapshot writes settle before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(targets)
}

/// Publishes `count` filler events, pipelined.
async fn fill(js: &jetstream::Context, count: u64) -> anyhow::Result<()> {
    let payload = sample_payload();
    let acks = futures::stream::iter(0..count)
        .map(|_| {
            let (js, payload) = (js.clone(), payload.clone());
            async move {
                js.publish(format!("frontline.ticket.{}", Uuid::new_v4()), payload)
                    .await?
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(512);
    tokio::pin!(acks);
    while let Some(r) = acks.next().await {
        r?;
    }
    Ok(())
}

struct Latency {
    p50: Duration,
    p99: Duration,
}

async fn load_latencies(log: &EventLog, targets: &[Uuid], cold: bool) -> anyhow::Result<Latency> {
    const PASSES: usize = 5;
    if !cold {
        // One unrecorded pass: the first reads after start-up or a fill pay for
        // cold caches, which would make the small stream look slower than it is.
        for id in targets {
            log.load::<Ticket>(id).await?;
        }
    }
    let mut samples = Vec::with_capacity(targets.len() * PASSES);
    for pass in 0..PASSES {
        let from = samples.len();
        for id in targets {
            if cold {
                log.snapshots().delete::<Ticket>(id).await?;
            }
            let start = Instant::now();
            let loaded = log.load::<Ticket>(id).await?;
            samples.push(start.elapsed());
            anyhow::ensure!(loaded.state.exists(), "target {id} did not load");
        }
        let mut pass_samples = samples[from..].to_vec();
        pass_samples.sort();
        eprintln!(
            "  {} pass {pass}: p50 {} p99 {} max {}",
            if cold { "cold" } else { "warm" },
            ms(pass_samples[pass_samples.len() / 2]),
            ms(pass_samples[pass_samples.len() * 99 / 100]),
            ms(pass_samples[pass_samples.len() - 1]),
        );
        if cold {
            // Cold loads write snapshots back in the background; let them land.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok(Latency {
        p50: at(0.50),
        p99: at(0.99),
    })
}
