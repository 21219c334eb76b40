//! Analytics' rows, on a cluster of its own (NATS, PostgreSQL, analytics only):
//! - a raw PostgreSQL ceiling: rows of the tickets table's shape inserted in
//!   batches of 1 000 (UNNEST), per second;
//! - full re-projection: a log of real ticket events (5 per ticket) projected
//!   from the first event, per second;
//! - projection lag (append acked → checkpoint past it) while events are appended
//!   at a steady rate;
//! - `ListTickets` latency over the projected tickets.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use frontline_domain::{
    Actor, Channel, Opening, Priority, Role, TenantId, Ticket, TicketEvent, assignment::Rule,
    ticket::Assignment,
};
use frontline_e2e::{Cluster, caller};
use frontline_eventlog::{EventLog, EventMeta, Loaded};
use frontline_proto::v1;
use futures::StreamExt as _;
use uuid::Uuid;

use crate::routing::{Spread, spread};

/// The tenant the bench's tickets belong to.
const TENANT: &str = "bench";
/// Customers the tickets are spread over (each has its own data key).
const CUSTOMERS: usize = 1_000;
/// Tickets appended at once while filling.
const FILL_IN_FLIGHT: usize = 256;
/// Events per ticket in the fill.
pub const EVENTS_PER_TICKET: u64 = 5;

/// What the analytics rows measured.
pub struct Results {
    /// Raw batched inserts per second.
    pub raw_insert: f64,
    /// Events in the log projected from scratch.
    pub events: u64,
    /// Their re-projection, events per second.
    pub reprojection: f64,
    /// Events per second appended while measuring lag (achieved).
    pub lag_rate: f64,
    /// Append-acked → applied.
    pub lag: Spread,
    /// Tickets the search ran over.
    pub tickets: u64,
    /// `ListTickets` latency.
    pub list: Spread,
}

fn meta(role: Role) -> EventMeta {
    EventMeta {
        actor: Actor::new("bench", role),
        correlation_id: "bench".into(),
        causation_id: "bench".into(),
        traceparent: None,
    }
}

fn tenant() -> TenantId {
    TenantId::parse("tenant", TENANT).unwrap_or_default()
}

fn opening(n: u64, customers: &[Uuid]) -> TicketEvent {
    TicketEvent::Opened(Opening {
        tenant: tenant(),
        channel: [Channel::Email, Channel::Chat, Channel::Web][(n % 3) as usize],
        customer_id: customers[(n as usize) % customers.len()],
        subject: format!("Router keeps rebooting ({n})"),
        body: "Since the update my router restarts every hour.".into(),
        product_area: ["billing", "router-x200", "shipping"][(n % 3) as usize].into(),
        priority: Priority::Normal,
        idempotency_key: format!("bench-{n}"),
        follow_up_of: None,
    })
}

/// A ticket's life in five events: opened, assigned, replied, time logged, solved.
async fn ticket_life(log: &EventLog, n: u64, customers: &[Uuid]) -> anyhow::Result<u64> {
    let id = Uuid::new_v4();
    let now = frontline_runtime::now_millis;
    let mut loaded = log
        .append(
            &id,
            &Loaded::<Ticket>::default(),
            opening(n, customers),
            &meta(Role::CustomerSystem),
            now(),
        )
        .await?;
    let rest = [
        TicketEvent::Assigned(Assignment {
            agent: format!("agent-{}", n % 20),
            rule: Rule::LeastLoaded,
            candidates: Vec::new(),
            reason: String::new(),
        }),
        TicketEvent::AgentReplied {
            body: "Looking into it.".into(),
            awaiting_customer: false,
            idempotency_key: None,
        },
        TicketEvent::TimeLogged { minutes: 5 },
        TicketEvent::Solved {
            resolution: "Firmware rolled back.".into(),
            self_served: None,
            idempotency_key: None,
        },
    ];
    for event in rest {
        loaded = log
            .append(&id, &loaded, event, &meta(Role::Agent), now())
            .await?;
    }
    Ok(loaded.sequence)
}

/// Rows of the tickets table's shape inserted in batches of 1 000 (UNNEST).
async fn raw_insert_rate(db: &sqlx::PgPool, rows: usize) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE bench_raw (LIKE analytics_tickets_g1 INCLUDING ALL)")
        .execute(db)
        .await?;
    const BATCH: usize = 1_000;
    let start = Instant::now();
    let now = sqlx::types::chrono::Utc::now();
    for _ in 0..rows / BATCH {
        let ids: Vec<Uuid> = (0..BATCH).map(|_| Uuid::new_v4()).collect();
        let customers: Vec<Uuid> = (0..BATCH).map(|_| Uuid::new_v4()).collect();
        let n = |v: i64| vec![v; BATCH];
        sqlx::query(
            "INSERT INTO bench_raw (ticket_id, revision, version, seq_from, valid_from, tenant, \
             customer_id, subject, status, channel, product_area, priority, tier, assignee, \
             opened_at, updated_at, minutes_logged) \
             SELECT id, 1, 1, s, $4, 'bench', c, 'Router keeps rebooting', 2, 1, 'billing', 2, 2, \
                    'agent', $4, $4, 5 \
             FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS u(id, c, s)",
        )
        .bind(&ids)
        .bind(&customers)
        .bind(n(1))
        .bind(now)
        .execute(db)
        .await?;
    }
    Ok((rows / BATCH * BATCH) as f64 / start.elapsed().as_secs_f64())
}

/// Appends single-event tickets at `rate` per second for `secs` seconds (open
/// loop) and measures how long each waits, from its acked append, until the live
/// projection's checkpoint passes it.
async fn lag(
    cluster: &Cluster,
    db: &sqlx::PgPool,
    customers: Arc<Vec<Uuid>>,
    rate: f64,
    secs: u64,
) -> anyhow::Result<(f64, Spread)> {
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let seen: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let poller = {
        let (db, seen, stop) = (db.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(at) = frontline_analytics::generations::live_checkpoint(&db).await {
                    seen.lock().map(|mut s| s.push((at, Instant::now()))).ok();
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let total = (rate * secs as f64) as u64;
    let start = Instant::now();
    let appends = futures::stream::iter(0..total)
        .map(|i| {
            let (log, customers, acked) = (cluster.log.clone(), customers.clone(), acked.clone());
            async move {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let loaded = log
                    .append(
                        &Uuid::new_v4(),
                        &Loaded::<Ticket>::default(),
                        opening(10_000_000 + i, &customers),
                        &meta(Role::CustomerSystem),
                        frontline_runtime::now_millis(),
                    )
                    .await?;
                acked
                    .lock()
                    .map(|mut a| a.push((loaded.sequence, Instant::now())))
                    .ok();
                anyhow::Ok(())
            }
        })
        .buffer_unordered(512);
    tokio::pin!(appends);
    while let Some(r) = appends.next().await {
        r?;
    }
    let achieved = total as f64 / start.elapsed().as_secs_f64();
    let last = cluster.log.last_sequence().await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while frontline_analytics::generations::live_checkpoint(db).await? < last {
        anyhow::ensure!(Instant::now() < deadline, "the projection did not catch up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    stop.cancel();
    poller.await?;
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    let lags = acked
        .iter()
        .filter_map(|(sequence, at)| {
            let applied = seen.iter().find(|(c, _)| c >= sequence)?.1;
            Some(applied.saturating_duration_since(*at))
        })
        .collect();
    Ok((achieved, spread(lags)))
}

/// `ListTickets` as a manager: newest first, filtered by status, by product area,
/// by subject text, and sorted by last change, `rounds` times each.
async fn list_latency(cluster: &Cluster, rounds: usize) -> anyhow::Result<Spread> {
    let manager = caller("bench-manager", Role::Manager, &[TENANT]);
    let mut analytics = cluster.analytics_as(&manager, None).await?;
    let requests = [
        v1::ListTicketsRequest::default(),
        v1::ListTicketsRequest {
            statuses: vec![v1::TicketStatus::New.into()],
            ..Default::default()
        },
        v1::ListTicketsRequest {
            product_area: "shipping".into(),
            ..Default::default()
        },
        v1::ListTicketsRequest {
            text: "(4242".into(),
            ..Default::default()
        },
        v1::ListTicketsRequest {
            sort_by: v1::TicketSortKey::UpdatedAt.into(),
            ..Default::default()
        },
    ];
    let mut samples = Vec::new();
    let mut by_kind = vec![Vec::new(); requests.len()];
    for _ in 0..rounds {
        for (kind, request) in requests.iter().enumerate() {
            let start = Instant::now();
            analytics.list_tickets(request.clone()).await?;
            samples.push(start.elapsed());
            by_kind[kind].push(start.elapsed());
        }
    }
    for (kind, samples) in by_kind.into_iter().enumerate() {
        let s = spread(samples);
        eprintln!(
            "  search kind {kind}: p50 {:.2} ms p99 {:.2} ms",
            s.p50.as_secs_f64() * 1e3,
            s.p99.as_secs_f64() * 1e3
        );
    }
    Ok(spread(samples))
}

/// Every analytics row: `raw_rows` rows inserted raw, `events` events
/// re-projected, then lag at `rate` events/s for `secs` seconds, then searches.
pub async fn measure(
    raw_rows: usize,
    events: u64,
    rate: f64,
    secs: u64,
) -> anyhow::Result<Results> {
    let mut cluster = crate::setup::bare().await?;
    let db = sqlx::PgPool::connect(&cluster.database.url).await?;
    frontline_runtime::service::migrate(
        &db,
        &[
            &frontline_projection::MIGRATOR,
            &frontline_analytics::MIGRATOR,
        ],
    )
    .await?;
    eprintln!("raw PostgreSQL batched inserts…");
    let raw_insert = raw_insert_rate(&db, raw_rows).await?;

    let tickets = events / EVENTS_PER_TICKET;
    eprintln!("filling the log with {tickets} tickets × {EVENTS_PER_TICKET} events…");
    let customers: Arc<Vec<Uuid>> = Arc::new((0..CUSTOMERS).map(|_| Uuid::new_v4()).collect());
    let fill_start = Instant::now();
    let log = cluster.log.clone();
    let fill_customers = customers.clone();
    let filled = futures::stream::iter(0..tickets)
        .map(|n| {
            let (log, customers) = (log.clone(), fill_customers.clone());
            async move { ticket_life(&log, n, &customers).await }
        })
        .buffer_unordered(FILL_IN_FLIGHT);
    tokio::pin!(filled);
    let mut done = 0_u64;
    while let Some(r) = filled.next().await {
        r?;
        done += 1;
        if done % 10_000 == 0 {
            eprint!("\r  {done}/{tickets} tickets");
        }
    }
    eprintln!(
        "\r  {tickets} tickets in {:.0} s",
        fill_start.elapsed().as_secs_f64()
    );
    let last = cluster.log.last_sequence().await?;

    eprintln!("re-projecting {last} events from the first…");
    let start = Instant::now();
    cluster.start_analytics().await?;
    let mut reported = Instant::now();
    loop {
        let at = frontline_analytics::generations::live_checkpoint(&db).await?;
        if at >= last {
            break;
        }
        if reported.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  {at}/{last} ({:.0}/s)",
                at as f64 / start.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reprojection = last as f64 / start.elapsed().as_secs_f64();

    eprintln!("projection lag at {rate:.0} events/s for {secs} s…");
    let (lag_rate, lag) = lag(&cluster, &db, customers.clone(), rate, secs).await?;

    // As autovacuum would have by then (it analyzes a table once a tenth of it has
    // changed, checking every minute): the planner's statistics of the new rows.
    sqlx::query("ANALYZE").execute(&db).await?;
    eprintln!("ListTickets over {tickets} tickets…");
    let list = list_latency(&cluster, 40).await?;
    cluster.shutdown().await;
    Ok(Results {
        raw_insert,
        events: last,
        reprojection,
        lag_rate,
        lag,
        tickets,
        list,
    })
}
