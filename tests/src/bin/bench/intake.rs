//! Throughput rows: the raw JetStream append ceiling (closed loop, and latency
//! at a fixed rate), intake `SubmitTicket` for new and returning customers, and
//! conversation `Reply` on existing tickets.

use std::time::{Duration, Instant};

use async_nats::{HeaderMap, jetstream};
use bytes::Bytes;
use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request};
use frontline_proto::v1;
use futures::StreamExt as _;
use uuid::Uuid;

use crate::routing::{Spread, spread};

/// Open tickets each returning customer already has in [`returning_rate`].
pub const RETURNING_OPEN: usize = 50;

/// A realistic event message: the envelope of a TicketOpened.
pub fn sample_payload() -> Bytes {
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

/// One raw append as the event log makes it: a message id and an expected last
/// subject sequence, on a subject no consumer reads.
async fn raw_append(js: &jetstream::Context, payload: Bytes) -> anyhow::Result<()> {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
    headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
    js.publish_with_headers(
        format!("frontline.bench.{}", Uuid::new_v4()),
        headers,
        payload,
    )
    .await?
    .await?;
    Ok(())
}

/// Raw appends per second, `concurrency` publishers each awaiting its ack.
pub async fn raw_append_rate(
    cluster: &Cluster,
    concurrency: usize,
    ops: usize,
) -> anyhow::Result<f64> {
    let js = jetstream::new(cluster.log.client().clone());
    let payload = sample_payload();
    let per_task = ops.div_ceil(concurrency);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (js, payload) = (js.clone(), payload.clone());
            tokio::spawn(async move {
                for _ in 0..per_task {
                    raw_append(&js, payload.clone()).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((per_task * concurrency) as f64 / start.elapsed().as_secs_f64())
}

/// Runs `call(i)` at `rate` per second for `secs` seconds (open loop: each starts
/// on its tick, whatever the earlier ones are doing) and times each.
async fn open_loop<F, Fut>(rate: f64, secs: f64, call: F) -> anyhow::Result<Spread>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let total = (rate * secs).max(1.0) as usize;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let fut = call(i);
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            fut.await?;
            anyhow::Ok(at.elapsed())
        }));
    }
    let mut samples = Vec::with_capacity(total);
    for t in tasks {
        samples.push(t.await??);
    }
    Ok(spread(samples))
}

/// Raw append latency at `rate` per second for `secs` seconds: the floor under
/// any one-append command at that rate.
pub async fn raw_append_latency(cluster: &Cluster, rate: f64, secs: f64) -> anyhow::Result<Spread> {
    let js = jetstream::new(cluster.log.client().clone());
    let payload = sample_payload();
    open_loop(rate, secs, |_| {
        let (js, payload) = (js.clone(), payload.clone());
        async move { raw_append(&js, payload).await }
    })
    .await
}

/// `SubmitTicket` per second, each a new customer (keys and emails prefixed
/// with `prefix`, so runs do not meet), `concurrency` clients.
pub async fn submit_rate(
    cluster: &Cluster,
    prefix: &str,
    concurrency: usize,
    ops: usize,
) -> anyhow::Result<f64> {
    let per_task = ops.div_ceil(concurrency);
    let mut clients = Vec::with_capacity(concurrency);
    for c in 0..concurrency {
        let id = format!("bench-{prefix}-{c}");
        clients.push(cluster.intake(&id, Role::CustomerSystem).await?);
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut intake)| {
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                for i in 0..per_task {
                    let req = submit_request(
                        &format!("{prefix}-{c}-{i}"),
                        &format!("{prefix}-{c}-{i}@example.com"),
                    );
                    intake.submit_ticket(req).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((per_task * concurrency) as f64 / start.elapsed().as_secs_f64())
}

/// Submits by customers who already have [`RETURNING_OPEN`] open tickets, so every
/// answer lists them ("same issue or a new one?"). One customer per client.
pub async fn returning_rate(
    cluster: &Cluster,
    concurrency: usize,
    ops: usize,
) -> anyhow::Result<f64> {
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
    let per_task = ops.div_ceil(concurrency);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for (c, mut intake) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
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
    Ok((per_task * concurrency) as f64 / start.elapsed().as_secs_f64())
}

/// What the reply rows measured.
pub struct Replies {
    /// Closed loop, `concurrency` agents, replies per second.
    pub max_rate: f64,
    /// The open-loop rate the latency was measured at (half of `max_rate`).
    pub rate: f64,
    /// Reply latency at `rate`.
    pub latency: Spread,
    /// Raw append latency at `rate`.
    pub raw: Spread,
}

/// `Reply` on existing tickets (conversation: load → decide → append): the most
/// per second with `concurrency` agents each replying on tickets of its own, then
/// the latency at half that rate for `secs` seconds, beside a raw append's at the
/// same rate.
pub async fn replies(
    cluster: &Cluster,
    concurrency: usize,
    ops: usize,
    secs: f64,
) -> anyhow::Result<Replies> {
    let tickets = concurrency * 8;
    eprintln!("replies: opening {tickets} tickets…");
    let mut intake = cluster
        .intake("bench-reply-shop", Role::CustomerSystem)
        .await?;
    let mut ids = Vec::with_capacity(tickets);
    for i in 0..tickets {
        let req = submit_request(&format!("reply-{i}"), &format!("reply-{i}@example.com"));
        ids.push(intake.submit_ticket(req).await?.into_inner().ticket_id);
    }
    let agent = cluster.conversation("bench-agent", Role::Agent).await?;
    let reply = |ticket: &str, n: usize| v1::ReplyRequest {
        ticket_id: ticket.to_string(),
        body: format!("Looking into it ({n})."),
        awaiting_customer: false,
        expected_version: None,
        idempotency_key: String::new(),
    };
    // The most per second: each agent on tickets of its own (c, c + concurrency, …).
    let per_task = ops.div_ceil(concurrency);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|c| {
            let (mut agent, ids) = (agent.clone(), ids.clone());
            tokio::spawn(async move {
                let mine: Vec<&String> = ids.iter().skip(c).step_by(concurrency).collect();
                for i in 0..per_task {
                    agent.reply(reply(mine[i % mine.len()], i)).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let max_rate = (per_task * concurrency) as f64 / start.elapsed().as_secs_f64();
    let rate = max_rate / 2.0;
    eprintln!("replies: {max_rate:.0}/s at most; latency at {rate:.0}/s for {secs} s…");
    let latency = open_loop(rate, secs, |i| {
        let mut agent = agent.clone();
        let request = reply(&ids[i % ids.len()], i);
        async move {
            agent.reply(request).await?;
            Ok(())
        }
    })
    .await?;
    eprintln!("replies: raw append latency at {rate:.0}/s…");
    let raw = raw_append_latency(cluster, rate, secs).await?;
    Ok(Replies {
        max_rate,
        rate,
        latency,
        raw,
    })
}

/// Publishes `count` filler events on ticket subjects, pipelined.
pub async fn fill(js: &jetstream::Context, count: u64) -> anyhow::Result<()> {
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
