//! Routing's rows: submit → `TicketAssigned` latency at half intake's measured
//! rate, and SLA timer lateness (NATS message schedules) for many timers due
//! within a minute.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_nats::jetstream::{self, consumer::pull};
use frontline_domain::{Role, sla::clocks::ClockKind};
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_proto::v1;
use frontline_routing::timers::{Timer, Timers};
use futures::StreamExt;
use uuid::Uuid;

/// Latency percentiles.
pub struct Spread {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// The percentiles of `samples`.
pub fn spread(mut samples: Vec<Duration>) -> Spread {
    samples.sort();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    Spread {
        p50: at(0.50),
        p99: at(0.99),
        max: samples.last().copied().unwrap_or_default(),
    }
}

/// Submits `ops` new tickets at `rate` per second (open loop) with `agents` skilled
/// agents of ample capacity online, and measures from each submit's start to its
/// `TicketAssigned` on the wire (a core subscription sees the message as the
/// assigner's batch is published). With `BENCH_LOG` set, prints routing's consumer
/// backlog every second while it waits. Also returns the submits' own latency
/// (until intake answered), the part of the path before routing.
pub async fn assigned_latency(
    cluster: &Cluster,
    rate: f64,
    ops: usize,
    agents: usize,
) -> anyhow::Result<(Spread, Spread)> {
    let manager = caller("bench-manager", Role::Manager, &[frontline_e2e::TENANT]);
    let mut routing = cluster.routing_as(&manager, None).await?;
    for a in 0..agents {
        let id = format!("bench-agent-{a}");
        routing
            .register_agent(v1::RegisterAgentRequest {
                agent_id: id.clone(),
                profile: Some(v1::AgentProfile {
                    display_name: id.clone(),
                    skills: vec![v1::Skill {
                        product_area: "router-x200".into(),
                        level: 3,
                    }],
                    capacity: 1000,
                    team: String::new(),
                    tenants: vec![frontline_e2e::TENANT.into()],
                }),
            })
            .await?;
        routing
            .set_agent_status(v1::SetAgentStatusRequest {
                agent_id: id,
                status: v1::AgentStatus::Available.into(),
            })
            .await?;
    }
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut subscription = cluster.log.client().subscribe("frontline.ticket.>").await?;
    let watcher = {
        let arrived = arrived.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let assigned = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(frontline_eventlog::HEADER_EVENT_TYPE))
                    .is_some_and(|t| t.as_str() == "frontline.v1.TicketAssigned");
                if let (true, Some(id)) =
                    (assigned, message.subject.strip_prefix("frontline.ticket."))
                {
                    if let Ok(mut map) = arrived.lock() {
                        map.entry(id.to_string()).or_insert_with(Instant::now);
                    }
                }
            }
        })
    };
    let intake = cluster.intake("bench-assign", Role::CustomerSystem).await?;
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let answered: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    let mut tasks = Vec::with_capacity(ops);
    for i in 0..ops {
        tick.tick().await;
        let (mut intake, started, answered) = (intake.clone(), started.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            let request =
                submit_request(&format!("assign-{i}"), &format!("assign-{i}@example.com"));
            let id = intake.submit_ticket(request).await?.into_inner().ticket_id;
            if let Ok(mut map) = started.lock() {
                map.insert(id, at);
            }
            if let Ok(mut all) = answered.lock() {
                all.push(at.elapsed());
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    // Wait (up to 60 s) for the last assignments.
    let deadline = Instant::now() + Duration::from_secs(60);
    let js = jetstream::new(cluster.log.client().clone());
    let stream = js.get_stream(cluster.log.stream_name()).await?;
    let mut printed = Instant::now();
    loop {
        if std::env::var_os("BENCH_LOG").is_some() && printed.elapsed() > Duration::from_secs(1) {
            printed = Instant::now();
            for name in ["routing-tickets", "routing-sla", "intake-customer-tickets"] {
                if let Ok(mut c) = stream.get_consumer::<pull::Config>(name).await
                    && let Ok(info) = c.info().await
                {
                    eprintln!(
                        "{name}: pending {} ack pending {}",
                        info.num_pending, info.num_ack_pending
                    );
                }
            }
        }
        let done = arrived.lock().map(|m| m.len()).unwrap_or_default();
        if done >= ops || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let (started, arrived) = (
        started.lock().map(|m| m.clone()).unwrap_or_default(),
        arrived.lock().map(|m| m.clone()).unwrap_or_default(),
    );
    let samples = started
        .iter()
        .filter_map(|(id, at)| {
            arrived
                .get(id)
                .map(|done| done.saturating_duration_since(*at))
        })
        .collect::<Vec<_>>();
    anyhow::ensure!(
        samples.len() == ops,
        "only {} of {ops} tickets were assigned within a minute",
        samples.len()
    );
    let answered = answered.lock().map(|a| a.clone()).unwrap_or_default();
    Ok((spread(samples), spread(answered)))
}

/// Schedules `count` timers due at random moments within the next `window`, and
/// measures how late each fires (its arrival on a consumer of the fired subjects
/// minus its due time).
pub async fn timer_lateness(
    cluster: &Cluster,
    count: usize,
    window: Duration,
) -> anyhow::Result<Spread> {
    let timers = Timers::open(&cluster.log)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let js = jetstream::new(cluster.log.client().clone());
    let stream = js
        .get_stream(format!("{}_TIMERS", cluster.log.stream_name()))
        .await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench-lateness".into()),
            filter_subject: "frontline-timers.fired.>".into(),
            ack_policy: jetstream::consumer::AckPolicy::None,
            deliver_policy: jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut fired = consumer.messages().await?;
    let now = frontline_runtime::now_millis();
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(60_000);
    let due: Vec<(Uuid, i64)> = (0..count)
        .map(|i| {
            // 2 s of lead, then spread evenly with a little jitter.
            let offset = 2_000 + (i as i64 * window_ms) / count as i64 + (i as i64 * 7919) % 97;
            (Uuid::new_v4(), now + offset)
        })
        .collect();
    eprintln!("scheduling {count} timers over {} s…", window.as_secs());
    futures::stream::iter(due.iter().copied())
        .map(|(ticket, at)| {
            let timers = timers.clone();
            async move {
                timers
                    .schedule(ticket, Timer::Clock(ClockKind::Resolution), at)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let wanted: HashMap<Uuid, i64> = due.into_iter().collect();
    let mut samples = Vec::with_capacity(count);
    let deadline = Instant::now() + window + Duration::from_secs(30);
    while samples.len() < count && Instant::now() < deadline {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), fired.next()).await
        else {
            continue;
        };
        let arrived = frontline_runtime::now_millis();
        let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some((ticket, _)) = frontline_routing::timers::parse_fired(&message.subject)
            && let Some(at) = wanted.get(&ticket)
        {
            samples.push(Duration::from_millis(
                u64::try_from(arrived - at).unwrap_or(0),
            ));
        }
    }
    anyhow::ensure!(
        samples.len() == count,
        "only {} of {count} timers fired",
        samples.len()
    );
    Ok(spread(samples))
}
