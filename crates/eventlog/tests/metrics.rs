//! What the log reports as metrics, against a real `nats-server`: snapshots too
//! large to keep are counted (never silently dropped), consumer lag, parked and
//! unknown events. A small in-process recorder captures the metrics.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use common::{T0, consumer, meta, ticket_with_notes, within};
use frontline_domain::{Aggregate, Ticket, TicketEvent};
use frontline_eventlog::{Loaded, Subscription, subject};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use uuid::Uuid;

/// Counters and gauges by `name{label=value,…}` (labels in the order given).
#[derive(Debug, Default)]
struct Captured(Mutex<HashMap<String, Arc<AtomicU64>>>);

impl Captured {
    fn cell(&self, key: &Key) -> Arc<AtomicU64> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0.lock().unwrap().entry(name).or_default().clone()
    }

    fn get(&self, name: &str) -> Option<Arc<AtomicU64>> {
        self.0.lock().unwrap().get(name).cloned()
    }
}

#[derive(Debug)]
struct TestRecorder(Arc<Captured>);

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.0.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.0.cell(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// The process-wide captured metrics (the recorder is installed once).
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Arc<Captured>> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Arc::new(Captured::default());
        metrics::set_global_recorder(TestRecorder(captured.clone())).unwrap();
        captured
    })
}

/// A counter's value (0 when never touched).
fn counter(name: &str) -> u64 {
    captured().get(name).map_or(0, |c| c.load(Ordering::SeqCst))
}

/// A gauge's value, if it was ever set.
fn gauge(name: &str) -> Option<f64> {
    captured()
        .get(name)
        .map(|g| f64::from_bits(g.load(Ordering::SeqCst)))
}

/// A snapshot over the size limit is not written, and that is counted
/// (`frontline_snapshots_skipped_total{reason="too_large"}`); the aggregate still
/// loads, by replaying. A snapshot of ordinary size is written (the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_snapshot_is_counted_not_written() {
    const TOO_LARGE: &str = "frontline_snapshots_skipped_total{aggregate=ticket,reason=too_large}";
    captured();
    let env = common::start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let states = ticket_with_notes(log, &id, 2).await;
    let current = states.last().unwrap().clone();

    log.snapshots().save(&id, &current).await.unwrap();
    assert_eq!(
        log.snapshots().sequence::<Ticket>(&id).await,
        Some(current.sequence)
    );
    log.snapshots().delete::<Ticket>(&id).await.unwrap();

    // About 1.2 MB of idempotency keys: over the limit, under nothing else.
    let mut huge = current.clone();
    huge.state
        .idempotency_keys
        .extend((0..10_000).map(|n| format!("note:{n:0>100}")));
    let before = counter(TOO_LARGE);
    log.snapshots().save(&id, &huge).await.unwrap();
    assert_eq!(counter(TOO_LARGE), before + 1, "counted");
    assert_eq!(log.snapshots().sequence::<Ticket>(&id).await, None);
    let loaded = log.load::<Ticket>(&id).await.unwrap();
    assert_eq!(loaded.state, current.state);
    assert_eq!(loaded.replayed, 3);
}

/// `frontline_consumer_lag{consumer}` tells how many matching events wait behind
/// the one just delivered; a parked event counts in
/// `frontline_events_parked_total{consumer}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_and_parked_events_are_reported() {
    const LAG: &str = "frontline_consumer_lag{consumer=lagging}";
    const PARKED: &str = "frontline_events_parked_total{consumer=lagging}";
    captured();
    let env = common::start().await;
    let log = &env.log;
    let states = ticket_with_notes(log, &Uuid::new_v4(), 4).await;

    let mut sub: Subscription<TicketEvent> = log
        .subscribe(consumer("lagging", "frontline.ticket.>"))
        .await
        .unwrap();
    let first = within("first delivery", sub.next()).await.unwrap().unwrap();
    assert_eq!(first.sequence, states[0].sequence);
    assert_eq!(gauge(LAG), Some(4.0), "four events behind the first");
    let parked_before = counter(PARKED);
    first.park("cannot apply").await.unwrap();
    assert_eq!(counter(PARKED), parked_before + 1);
    for s in &states[1..] {
        let d = within("delivery", sub.next()).await.unwrap().unwrap();
        assert_eq!(d.sequence, s.sequence);
        d.ack().await.unwrap();
    }
    assert_eq!(gauge(LAG), Some(0.0), "caught up");
}

/// An event of a type this reader does not know is counted
/// (`frontline_events_unknown_total{event_type}`) each time it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_events_are_counted() {
    const TYPE: &str = "frontline.v1.TicketMerged";
    let name = format!("frontline_events_unknown_total{{event_type={TYPE}}}");
    captured();
    let env = common::start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let first = log
        .append(
            &id,
            &Loaded::<Ticket>::default(),
            common::opened(Uuid::new_v4()),
            &meta(),
            T0,
        )
        .await
        .unwrap();
    let newer = common::envelope("ticket", &id, 2, TYPE, Vec::new());
    common::publish_raw(&env.client, &subject::<Ticket>(&id), first.sequence, &newer).await;

    let before = counter(&name);
    let loaded = log.load::<Ticket>(&id).await.unwrap();
    assert_eq!(loaded.state.version(), 2);
    let after_load = counter(&name);
    assert!(after_load > before, "counted on load");
    let events = log.read::<Ticket>(&id, None).await.unwrap();
    assert!(events[1].event.is_none());
    assert!(counter(&name) > after_load, "counted on read");
}
