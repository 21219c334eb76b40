//! Ticket load latency with each target ticket's events spread thinly through a
//! small and a large stream: with snapshots (the normal path) and cold (snapshot
//! deleted: full replay of the subject).

use std::time::{Duration, Instant};

use async_nats::jetstream;
use frontline_domain::{Ticket, TicketCommand};
use frontline_eventlog::EventLog;
use uuid::Uuid;

use crate::{intake::fill, ms, tickets};

/// Load latency on one stream size.
pub struct Loads {
    /// Events in the stream.
    pub size: u64,
    pub warm_p99: Duration,
    pub cold_p99: Duration,
}

/// Fills a fresh cluster's stream to each of `sizes` in turn, spreading
/// `targets` tickets of `per_ticket` events through it, and times their loads.
pub async fn measure(
    sizes: [u64; 2],
    targets: usize,
    per_ticket: usize,
) -> anyhow::Result<Vec<Loads>> {
    let cluster = crate::setup::bare().await?;
    let js = jetstream::new(cluster.log.client().clone());
    let mut filled = stream_len(&js, &cluster.log).await?;
    let mut results = Vec::new();
    for size in sizes {
        eprintln!(
            "filling the stream to {size} events with {targets} target tickets spread through it…"
        );
        let ids = spread_targets(&cluster.log, &js, targets, per_ticket, filled, size).await?;
        filled = stream_len(&js, &cluster.log).await?;
        let warm = latency_p99(&cluster.log, &ids, false).await?;
        let cold = latency_p99(&cluster.log, &ids, true).await?;
        results.push(Loads {
            size: filled,
            warm_p99: warm,
            cold_p99: cold,
        });
    }
    cluster.shutdown().await;
    Ok(results)
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

/// The p99 of five passes over `targets` (cold: each snapshot deleted first).
async fn latency_p99(log: &EventLog, targets: &[Uuid], cold: bool) -> anyhow::Result<Duration> {
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
        let pass_samples = crate::routing::spread(samples[from..].to_vec());
        eprintln!(
            "  {} pass {pass}: p50 {} p99 {} max {}",
            if cold { "cold" } else { "warm" },
            ms(pass_samples.p50),
            ms(pass_samples.p99),
            ms(pass_samples.max),
        );
        if cold {
            // Cold loads write snapshots back in the background; let them land.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(crate::routing::spread(samples).p99)
}
