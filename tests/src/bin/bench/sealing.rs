//! What sealing personal data costs: the same work on a log with a key-encryption
//! key (every event's personal fields sealed with its customer's data key, each
//! new customer's key created in the key bucket) and on one without (nothing
//! sealed), side by side in one run, each on a fresh nats-server of its own (two
//! event streams cannot share one server: each owns `frontline.>`), both with the
//! deployment's durability.

use std::time::{Duration, Instant};

use frontline_domain::{Ticket, TicketCommand};
use frontline_eventlog::{EventLog, LogConfig};
use frontline_testkit::NatsServer;
use uuid::Uuid;

use crate::tickets::{open, run_all};

/// Events per ticket in the load measurement.
const EVENTS_PER_TICKET: usize = 20;

/// Opens per second and cold-load latency, for one log.
pub struct Cost {
    pub opens_per_sec: f64,
    pub load_p99: Duration,
}

/// The cost on a sealing log and on a clear one (`loaded` tickets of
/// [`EVENTS_PER_TICKET`] events cold-loaded on each).
pub async fn measure(
    concurrency: usize,
    ops: usize,
    loaded: usize,
) -> anyhow::Result<(Cost, Cost)> {
    eprintln!("sealing cost: opening tickets (a new customer each) on a sealing and a clear log…");
    let kek = frontline_privacy::Kek::from_base64(frontline_testkit::TEST_KEK)?;
    let (sealed_server, sealed) = log(Some(kek)).await?;
    let sealed_cost = cost(&sealed, concurrency, ops, loaded).await?;
    drop((sealed, sealed_server));
    let (clear_server, clear) = log(None).await?;
    let clear_cost = cost(&clear, concurrency, ops, loaded).await?;
    drop((clear, clear_server));
    Ok((sealed_cost, clear_cost))
}

/// A fresh nats-server and a log on it, sealing with `kek` if given.
async fn log(kek: Option<frontline_privacy::Kek>) -> anyhow::Result<(NatsServer, EventLog)> {
    let server = crate::setup::nats().await?;
    let client = async_nats::connect(server.url()).await?;
    let log = EventLog::open(
        client,
        LogConfig {
            kek,
            ..LogConfig::default()
        },
    )
    .await?;
    Ok((server, log))
}

async fn cost(
    log: &EventLog,
    concurrency: usize,
    ops: usize,
    loaded: usize,
) -> anyhow::Result<Cost> {
    let ids: Vec<Uuid> = (0..ops).map(|_| Uuid::new_v4()).collect();
    let start = Instant::now();
    run_all(log, &ids, concurrency, |_| open(&Uuid::new_v4())).await?;
    let opens_per_sec = ops as f64 / start.elapsed().as_secs_f64();
    let loaded = &ids[..loaded.min(ids.len())];
    for n in 1..EVENTS_PER_TICKET {
        run_all(log, loaded, concurrency, |_| TicketCommand::AddNote {
            body: format!("note {n}: the customer says the router reboots hourly"),
            idempotency_key: None,
        })
        .await?;
    }
    // Cold loads: every event read and opened (the data keys are cached, as in a
    // running service).
    let mut samples = Vec::new();
    for _ in 0..3 {
        for id in loaded {
            log.snapshots().delete::<Ticket>(id).await?;
            let start = Instant::now();
            let t = log.load::<Ticket>(id).await?;
            samples.push(start.elapsed());
            anyhow::ensure!(t.state.version == EVENTS_PER_TICKET as u64, "{id} short");
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok(Cost {
        opens_per_sec,
        load_p99: at(0.99),
    })
}

/// CPU time to encode and decode one ticket event (a 200-byte message), sealed and
/// clear: (sealed, clear) per event.
pub fn cpu_per_event() -> (Duration, Duration) {
    use frontline_eventlog::EventCodec as _;
    use frontline_privacy::{DataKey, Fields, PersonalKey};
    const ROUNDS: u32 = 50_000;
    let event = frontline_domain::TicketEvent::CustomerMessageAdded {
        body: "My router restarts every hour since the update; serial SN-42. ".repeat(3),
        channel: frontline_domain::Channel::Email,
        idempotency_key: "mail-8812".into(),
        reopened: false,
    };
    let time = |key: &PersonalKey| {
        let start = Instant::now();
        for _ in 0..ROUNDS {
            let fields = Fields::new(key, "0190f5e2-7c1a-7b3e-9a4d-5e6f7a8b9c0d");
            let bytes = event.encode_payload(&fields);
            let back = frontline_domain::TicketEvent::decode_payload(
                "frontline.v1.CustomerMessageAdded",
                &bytes,
                &fields,
            );
            std::hint::black_box(back.ok());
        }
        start.elapsed() / ROUNDS
    };
    let sealed = time(&PersonalKey::Live(DataKey::generate()));
    let clear = time(&PersonalKey::Nobody);
    (sealed, clear)
}
