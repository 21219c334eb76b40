//! `make bench`: Frontline's speed against its targets, each row beside a ceiling
//! measured in the same run, printed as one table and written as JSON
//! (`target/bench/bench-<time>.json` and `target/bench/latest.json`).
//!
//! Every nats-server the bench starts fsyncs before each ack (`sync_interval:
//! always`), as the deployment's does. The sections, each on fresh servers:
//! 1. Intake and conversation: the raw JetStream append ceiling at 16 and 64 in
//!    flight; `SubmitTicket` for new customers at both, and for returning
//!    customers with 50 open tickets; `Reply` at its most per second, then its
//!    latency at half that rate beside a raw append's at the same rate.
//! 2. The cost of sealing personal data: opens and cold loads on a sealing and a
//!    clear log, and the CPU time to seal and open one event (informational).
//! 3. Routing: submit → `TicketAssigned` latency at half intake's measured rate,
//!    and SLA timer lateness for many timers due within a minute.
//! 4. Ticket load latency with target tickets' events spread thinly through a
//!    stream of 10 k and of 1 M events.
//! 5. Analytics: full re-projection against a raw PostgreSQL batched-insert
//!    ceiling, projection lag at a steady append rate, `ListTickets` latency.
//! 6. Idle RSS of each real service binary (`make release`).
//!
//! It asserts nothing (tests never assert wall-clock times); a row short of its
//! target says `short`.

use std::time::{Duration, Instant};

use clap::Parser;
use report::{Context, Report, Row, Target, group};

mod analytics;
mod intake;
mod load;
mod report;
mod routing;
mod rss;
mod sealing;
mod setup;
mod tickets;

#[derive(Debug, Parser)]
#[command(about = "Frontline benchmark: every target row against its ceiling, one table")]
struct Args {
    /// Small sizes (a few minutes); any size given explicitly still wins.
    #[arg(long, env = "BENCH_QUICK", value_parser = clap::builder::FalseyValueParser::new())]
    quick: bool,
    /// Operations per throughput measurement [full 4000, quick 800].
    #[arg(long, env = "BENCH_OPS")]
    ops: Option<usize>,
    /// Size of the large stream for the load-latency rows [1 000 000, quick 50 000].
    #[arg(long, env = "BENCH_LARGE_STREAM")]
    large: Option<u64>,
    /// Size of the small stream for the load-latency rows [10 000].
    #[arg(long, env = "BENCH_SMALL_STREAM")]
    small: Option<u64>,
    /// Target tickets measured per stream size [200, quick 50].
    #[arg(long, env = "BENCH_TARGETS")]
    targets: Option<usize>,
    /// Events per target ticket [20].
    #[arg(long, env = "BENCH_EVENTS_PER_TICKET")]
    events_per_ticket: Option<usize>,
    /// SLA timers scheduled for the lateness row [10 000, quick 2 000].
    #[arg(long, env = "BENCH_TIMERS")]
    timers: Option<usize>,
    /// Seconds the timers are spread over [60, quick 15].
    #[arg(long, env = "BENCH_TIMER_WINDOW_SECS")]
    timer_window_secs: Option<u64>,
    /// Tickets submitted for the submit → assigned row [2 000, quick 300].
    #[arg(long, env = "BENCH_ASSIGN_OPS")]
    assign_ops: Option<usize>,
    /// Replies for the most-replies-per-second measurement [4 000, quick 800].
    #[arg(long, env = "BENCH_REPLY_OPS")]
    reply_ops: Option<usize>,
    /// Seconds the reply latency is measured over at half that rate [20, quick 5].
    #[arg(long, env = "BENCH_REPLY_SECS")]
    reply_secs: Option<u64>,
    /// Tickets cold-loaded per log in the sealing rows [200, quick 50].
    #[arg(long, env = "BENCH_SEALING_LOADED")]
    sealing_loaded: Option<usize>,
    /// Events in the log analytics re-projects from scratch [1 000 000, quick 50 000].
    #[arg(long, env = "BENCH_ANALYTICS_EVENTS")]
    analytics_events: Option<u64>,
    /// Rows of the raw PostgreSQL insert ceiling [200 000, quick 50 000].
    #[arg(long, env = "BENCH_RAW_INSERT_ROWS")]
    raw_insert_rows: Option<usize>,
    /// Events per second appended while measuring projection lag [5 000].
    #[arg(long, env = "BENCH_LAG_RATE")]
    lag_rate: Option<f64>,
    /// Seconds the lag is measured over [20, quick 5].
    #[arg(long, env = "BENCH_LAG_SECS")]
    lag_secs: Option<u64>,
    /// Seconds each service idles before its RSS is read [5, quick 3].
    #[arg(long, env = "BENCH_RSS_IDLE_SECS")]
    rss_idle_secs: Option<u64>,
    /// Only routing's rows (with the intake rate they are measured at).
    #[arg(long, env = "BENCH_ONLY_ROUTING")]
    only_routing: bool,
    /// Only analytics' rows.
    #[arg(long, env = "BENCH_ONLY_ANALYTICS")]
    only_analytics: bool,
}

/// The sizes a run uses: what was given, else the quick or the full default.
#[derive(Debug)]
struct Sizes {
    quick: bool,
    ops: usize,
    large: u64,
    small: u64,
    targets: usize,
    events_per_ticket: usize,
    timers: usize,
    timer_window_secs: u64,
    assign_ops: usize,
    reply_ops: usize,
    reply_secs: u64,
    sealing_loaded: usize,
    analytics_events: u64,
    raw_insert_rows: usize,
    lag_rate: f64,
    lag_secs: u64,
    rss_idle_secs: u64,
}

/// Clients (and raw publishers) in flight; the second throughput measurement runs
/// at [`HIGH`].
const CONCURRENCY: usize = 16;
const HIGH: usize = 64;

impl Args {
    fn sizes(&self) -> Sizes {
        let q = self.quick;
        fn pick<T>(given: Option<T>, quick: bool, q: T, full: T) -> T {
            given.unwrap_or(if quick { q } else { full })
        }
        Sizes {
            quick: q,
            ops: pick(self.ops, q, 800, 4_000),
            large: pick(self.large, q, 50_000, 1_000_000),
            small: pick(self.small, q, 10_000, 10_000),
            targets: pick(self.targets, q, 50, 200),
            events_per_ticket: pick(self.events_per_ticket, q, 20, 20),
            timers: pick(self.timers, q, 2_000, 10_000),
            timer_window_secs: pick(self.timer_window_secs, q, 15, 60),
            assign_ops: pick(self.assign_ops, q, 300, 2_000),
            reply_ops: pick(self.reply_ops, q, 800, 4_000),
            reply_secs: pick(self.reply_secs, q, 5, 20),
            sealing_loaded: pick(self.sealing_loaded, q, 50, 200),
            analytics_events: pick(self.analytics_events, q, 50_000, 1_000_000),
            raw_insert_rows: pick(self.raw_insert_rows, q, 50_000, 200_000),
            lag_rate: pick(self.lag_rate, q, 5_000.0, 5_000.0),
            lag_secs: pick(self.lag_secs, q, 5, 20),
            rss_idle_secs: pick(self.rss_idle_secs, q, 3, 5),
        }
    }
}

impl Sizes {
    /// For the header and the JSON.
    fn list(&self) -> Vec<(&'static str, String)> {
        vec![
            ("concurrency", format!("{CONCURRENCY} and {HIGH}")),
            ("ops", self.ops.to_string()),
            ("small_stream", self.small.to_string()),
            ("large_stream", self.large.to_string()),
            ("load_targets", self.targets.to_string()),
            ("events_per_ticket", self.events_per_ticket.to_string()),
            ("reply_ops", self.reply_ops.to_string()),
            ("reply_secs", self.reply_secs.to_string()),
            ("sealing_loaded", self.sealing_loaded.to_string()),
            ("assign_ops", self.assign_ops.to_string()),
            ("timers", self.timers.to_string()),
            ("timer_window_secs", self.timer_window_secs.to_string()),
            ("analytics_events", self.analytics_events.to_string()),
            ("raw_insert_rows", self.raw_insert_rows.to_string()),
            ("lag_rate", format!("{}", self.lag_rate)),
            ("lag_secs", self.lag_secs.to_string()),
            ("rss_idle_secs", self.rss_idle_secs.to_string()),
        ]
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("BENCH_LOG").is_some() {
        frontline_runtime::telemetry::init_logging(frontline_runtime::telemetry::LogFormat::Text);
    }
    let sizes = args.sizes();
    let began = Instant::now();
    let now = sqlx::types::chrono::Utc::now();
    let (cores, cpu_model) = Context::machine();
    let mut report = Report {
        context: Context {
            started_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            quick: sizes.quick,
            cores,
            cpu_model,
            nats_version: setup::nats_version(),
            nats_durability: setup::nats_durability(),
            postgres_version: String::new(),
            sizes: sizes.list(),
            elapsed_secs: 0.0,
        },
        rows: Vec::new(),
    };
    eprintln!(
        "bench ({}), sizes: {sizes:?}",
        if sizes.quick { "QUICK" } else { "full" }
    );

    // Each section on servers of its own; one failing does not hide the others.
    let mut failed: Vec<String> = Vec::new();
    let mut note = |section: &str, r: anyhow::Result<()>| {
        if let Err(e) = r {
            eprintln!("bench section {section} failed: {e:#}");
            failed.push(format!("{section}: {e:#}"));
        }
    };
    match postgres_version().await {
        Ok(v) => report.context.postgres_version = v,
        Err(e) => note("postgres version", Err(e)),
    }
    let all = !args.only_routing && !args.only_analytics;
    if all {
        let r = intake_rows(&sizes, &mut report).await;
        let intake = r.as_ref().ok().copied();
        note("intake", r.map(|_| ()));
        note("sealing", sealing_rows(&sizes, &mut report).await);
        if let Some(intake) = intake {
            note("routing", routing_rows(&sizes, intake, &mut report).await);
        }
        note("load", load_rows(&sizes, &mut report).await);
    } else if args.only_routing {
        let r = only_intake_rate(&sizes).await;
        match r {
            Ok(intake) => note("routing", routing_rows(&sizes, intake, &mut report).await),
            Err(e) => note("intake", Err(e)),
        }
    }
    if all || args.only_analytics {
        note("analytics", analytics_rows(&sizes, &mut report).await);
    }
    if all {
        note("idle RSS", rss_rows(&sizes, &mut report).await);
    }

    report.context.elapsed_secs = began.elapsed().as_secs_f64();
    println!("\n{}", report.table());
    let path = report.write_json(
        &setup::bench_dir(),
        &now.format("%Y%m%dT%H%M%SZ").to_string(),
    )?;
    println!("written: {} (and latest.json)", path.display());
    anyhow::ensure!(failed.is_empty(), "sections failed:\n{}", failed.join("\n"));
    Ok(())
}

async fn postgres_version() -> anyhow::Result<String> {
    let cluster = frontline_e2e::Cluster::bare().await?;
    let version = setup::postgres_version(&cluster).await;
    cluster.shutdown().await;
    version
}

/// Intake's new-customer rate alone, for `BENCH_ONLY_ROUTING`.
async fn only_intake_rate(s: &Sizes) -> anyhow::Result<f64> {
    let cluster = setup::start().await?;
    let rate = intake::submit_rate(&cluster, "n16", CONCURRENCY, s.ops).await?;
    cluster.shutdown().await;
    Ok(rate)
}

/// Section 1; returns `SubmitTicket`'s new-customer rate at [`CONCURRENCY`].
async fn intake_rows(s: &Sizes, report: &mut Report) -> anyhow::Result<f64> {
    eprintln!("starting nats-server, PostgreSQL and the services…");
    let cluster = setup::start().await?;
    eprintln!("raw appends, then SubmitTicket for new customers, at {CONCURRENCY} and {HIGH}…");
    let raw = intake::raw_append_rate(&cluster, CONCURRENCY, s.ops).await?;
    let raw_high = intake::raw_append_rate(&cluster, HIGH, s.ops).await?;
    let new = intake::submit_rate(&cluster, "n16", CONCURRENCY, s.ops).await?;
    let new_high = intake::submit_rate(&cluster, "n64", HIGH, s.ops).await?;
    let returning = intake::returning_rate(&cluster, CONCURRENCY, s.ops / 2).await?;
    let replies = intake::replies(&cluster, CONCURRENCY, s.reply_ops, s.reply_secs as f64).await?;
    cluster.shutdown().await;

    let raw_of = |n: usize| format!("raw append, {n} in flight");
    for (n, rate) in [(CONCURRENCY, raw), (HIGH, raw_high)] {
        report.push(Row::new(
            format!("raw JetStream append, {n} in flight"),
            rate,
            "/s",
        ));
    }
    for (n, rate, ceiling) in [(CONCURRENCY, new, raw), (HIGH, new_high, raw_high)] {
        report.push(
            Row::new(
                format!("SubmitTicket, new customers, {n} in flight"),
                rate,
                "/s",
            )
            .ceiling(ceiling, raw_of(n))
            .target(Target::RatioAtLeast(0.60)),
        );
    }
    report.push(
        Row::new(
            format!(
                "SubmitTicket, returning customers with {} open tickets, {CONCURRENCY} in flight",
                intake::RETURNING_OPEN
            ),
            returning,
            "/s",
        )
        .ceiling(raw, raw_of(CONCURRENCY))
        .target(Target::RatioAtLeast(0.50)),
    );
    report.push(
        Row::new(
            format!("Reply (load → decide → append), most per second, {CONCURRENCY} in flight"),
            replies.max_rate,
            "/s",
        )
        .ceiling(raw, raw_of(CONCURRENCY)),
    );
    report.push(
        Row::new(
            format!("Reply p99 at {:.0}/s (half the most)", replies.rate),
            millis(replies.latency.p99),
            "ms",
        )
        .ceiling(millis(replies.raw.p99), "raw append p99, same rate")
        .target(Target::AtMost(5.0)),
    );
    Ok(new)
}

/// Section 2 (informational).
async fn sealing_rows(s: &Sizes, report: &mut Report) -> anyhow::Result<()> {
    let (sealed, clear) = sealing::measure(CONCURRENCY, s.ops / 2, s.sealing_loaded).await?;
    report.push(
        Row::new(
            format!("ticket open (new customer each), sealing log, {CONCURRENCY} in flight"),
            sealed.opens_per_sec,
            "/s",
        )
        .ceiling(clear.opens_per_sec, "clear log"),
    );
    report.push(
        Row::new(
            "ticket load cold p99 (20 events), sealing log",
            millis(sealed.load_p99),
            "ms",
        )
        .ceiling(millis(clear.load_p99), "clear log"),
    );
    let (sealed_cpu, clear_cpu) = sealing::cpu_per_event();
    report.push(
        Row::new(
            "encode + decode one ticket event (CPU), sealed",
            sealed_cpu.as_secs_f64() * 1e6,
            "µs",
        )
        .ceiling(clear_cpu.as_secs_f64() * 1e6, "clear"),
    );
    Ok(())
}

/// Section 3: routing on fresh servers, at half intake's rate.
async fn routing_rows(s: &Sizes, intake: f64, report: &mut Report) -> anyhow::Result<()> {
    let cluster = setup::start().await?;
    let half = intake / 2.0;
    eprintln!(
        "submitting {} tickets at {half:.0}/s against 5 agents…",
        s.assign_ops
    );
    let (assigned, submitted) = routing::assigned_latency(&cluster, half, s.assign_ops, 5).await?;
    report.push(
        Row::new(
            format!("submit → TicketAssigned p99 at {half:.0}/s (half intake's), 5 agents"),
            millis(assigned.p99),
            "ms",
        )
        .ceiling(millis(submitted.p99), "SubmitTicket p99, same run")
        .target(Target::AtMost(50.0)),
    );
    let lateness =
        routing::timer_lateness(&cluster, s.timers, Duration::from_secs(s.timer_window_secs))
            .await?;
    report.push(
        Row::new(
            format!(
                "SLA timer lateness p99, {} timers due within {} s",
                group(s.timers as f64),
                s.timer_window_secs
            ),
            millis(lateness.p99),
            "ms",
        )
        .target(Target::AtMost(1_000.0)),
    );
    cluster.shutdown().await;
    Ok(())
}

/// Section 4.
async fn load_rows(s: &Sizes, report: &mut Report) -> anyhow::Result<()> {
    let loads = load::measure([s.small, s.large], s.targets, s.events_per_ticket).await?;
    let [small, large] = &loads[..] else {
        anyhow::bail!("expected two stream sizes");
    };
    let same = format!("same, stream {}", human(small.size));
    report.push(
        Row::new(
            format!(
                "ticket load p99 (snapshot + tail), stream {}",
                human(large.size)
            ),
            millis(large.warm_p99),
            "ms",
        )
        .ceiling(millis(small.warm_p99), same.clone())
        .target(Target::RatioAtMost(1.5)),
    );
    report.push(
        Row::new(
            format!(
                "ticket load cold p99 (full replay), stream {}",
                human(large.size)
            ),
            millis(large.cold_p99),
            "ms",
        )
        .ceiling(millis(small.cold_p99), same),
    );
    Ok(())
}

/// Section 5.
async fn analytics_rows(s: &Sizes, report: &mut Report) -> anyhow::Result<()> {
    let a = analytics::measure(
        s.raw_insert_rows,
        s.analytics_events,
        s.lag_rate,
        s.lag_secs,
    )
    .await?;
    report.push(Row::new(
        "raw PostgreSQL insert, 1 000 rows per statement",
        a.raw_insert,
        "/s",
    ));
    report.push(
        Row::new(
            format!("full re-projection, {} events", human(a.events)),
            a.reprojection,
            "/s",
        )
        .ceiling(a.raw_insert, "raw PostgreSQL batched insert")
        .target(Target::AtLeast(50_000.0))
        .target(Target::RatioAtLeast(0.50)),
    );
    let lag = Row::new(
        format!(
            "projection lag p99 at {:.0} events/s (asked {:.0}), {} s",
            a.lag_rate, s.lag_rate, s.lag_secs
        ),
        millis(a.lag.p99),
        "ms",
    )
    .target(Target::AtMost(100.0));
    report.push(if a.lag_rate < 0.95 * s.lag_rate {
        lag.unmet(format!("appends reached {:.0}/s", a.lag_rate))
    } else {
        lag
    });
    report.push(Row::new(
        format!("ListTickets p99, {} tickets projected", human(a.tickets)),
        millis(a.list.p99),
        "ms",
    ));
    Ok(())
}

/// Section 6.
async fn rss_rows(s: &Sizes, report: &mut Report) -> anyhow::Result<()> {
    for (name, mb) in rss::idle_rss(Duration::from_secs(s.rss_idle_secs)).await? {
        report.push(Row::new(format!("idle RSS, {name}"), mb, "MB").target(Target::AtMost(30.0)));
    }
    Ok(())
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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
