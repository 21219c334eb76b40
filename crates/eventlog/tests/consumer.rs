//! Durable consumers against a real `nats-server`: ordered delivery, resume after
//! ack, redelivery with backoff, parking of what cannot be applied (also after the
//! last attempt), and a changed filter on an existing consumer.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer, message::StreamMessage};
use common::{T0, consumer, meta, note, opened, ticket_with_notes, within};
use frontline_domain::{Channel, Customer, CustomerEvent, Ticket, TicketEvent};
use frontline_eventlog::{ConsumerConfig, Delivery, EventLog, Loaded, Subscription, subject};
use uuid::Uuid;

const DURABLE: &str = "test-consumer";
const FILTER: &str = "frontline.ticket.>";
const PARKED_SUBJECT: &str = "frontline-parked.test-consumer";

type Tickets = Subscription<TicketEvent>;

/// The test consumer's configuration (short backoff and ack wait).
fn config() -> ConsumerConfig {
    consumer(DURABLE, FILTER)
}

/// The next delivery, failing the test on an error or after 10 s.
async fn next<E: frontline_eventlog::EventCodec>(sub: &mut Subscription<E>) -> Delivery<E> {
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(Ok(d))) => d,
        Ok(Some(Err(e))) => panic!("subscription error: {e}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no delivery within 10 s"),
    }
}

/// Asserts nothing is delivered for `wait`.
async fn nothing_for<E: frontline_eventlog::EventCodec>(sub: &mut Subscription<E>, wait: Duration) {
    if let Ok(got) = tokio::time::timeout(wait, sub.next()).await {
        panic!("expected no delivery, got {got:?}");
    }
}

async fn consumer_info(log: &EventLog) -> jetstream::consumer::Info {
    let stream = jetstream::new(log.client().clone())
        .get_stream("FRONTLINE")
        .await
        .unwrap();
    let mut consumer: PullConsumer = stream.get_consumer(DURABLE).await.unwrap();
    consumer.info().await.unwrap().clone()
}

/// Waits until the consumer has every delivery up to `sequence` settled.
async fn settled_through(log: &EventLog, sequence: u64) {
    common::eventually("acks reach the server", || async {
        let info = consumer_info(log).await;
        info.num_ack_pending == 0 && info.ack_floor.stream_sequence >= sequence
    })
    .await;
}

/// Every parked message of the test consumer, oldest first.
async fn parked(log: &EventLog) -> Vec<StreamMessage> {
    let mut stream = jetstream::new(log.client().clone())
        .get_stream("FRONTLINE_PARKED")
        .await
        .unwrap();
    let info = stream.info().await.unwrap().clone();
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if info.state.messages == 0 {
            break;
        }
        if let Ok(m) = stream.get_raw_message(seq).await
            && m.subject.as_str() == PARKED_SUBJECT
        {
            out.push(m);
        }
    }
    out
}

fn header(m: &StreamMessage, name: &str) -> String {
    m.headers
        .get(name)
        .unwrap_or_else(|| panic!("parked message lacks header {name}"))
        .as_str()
        .to_string()
}

/// A customer event (not matched by the ticket filter).
async fn customer_event(log: &EventLog, ticket: Uuid) -> Loaded<Customer> {
    log.append(
        &Uuid::new_v4(),
        &Loaded::<Customer>::default(),
        CustomerEvent::Contacted {
            channel: Channel::Email,
            tenant: frontline_domain::TenantId::parse("tenant", "acme").unwrap(),
            identities_added: Vec::new(),
            possible_duplicates: Vec::new(),
            facts_recorded: vec![],
            ticket_opened: Some(ticket),
        },
        &meta(),
        T0,
    )
    .await
    .unwrap()
}

/// A subscription delivers the ticket events (and only those) in stream order with
/// their sequence, subject, decoded event and envelope; acked events are not
/// delivered to a new subscription under the same durable name, which resumes after
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_in_order_and_resumes_after_ack() {
    let env = common::start().await;
    let log = &env.log;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let customer = Uuid::new_v4();
    let a1 = log
        .append(
            &a,
            &Loaded::<Ticket>::default(),
            opened(customer),
            &meta(),
            T0,
        )
        .await
        .unwrap();
    let b1 = log
        .append(
            &b,
            &Loaded::<Ticket>::default(),
            opened(customer),
            &meta(),
            T0,
        )
        .await
        .unwrap();
    customer_event(log, a).await;
    let a2 = log.append(&a, &a1, note(1), &meta(), T0 + 1).await.unwrap();
    let expected = [
        (a, a1.sequence, 1, opened(customer)),
        (b, b1.sequence, 1, opened(customer)),
        (a, a2.sequence, 2, note(1)),
    ];

    let mut sub: Tickets = log.subscribe(config()).await.unwrap();
    assert_eq!(sub.durable(), DURABLE);
    for (id, sequence, version, event) in expected {
        let d = next(&mut sub).await;
        assert_eq!(d.sequence, sequence);
        assert_eq!(d.subject, subject::<Ticket>(&id));
        assert_eq!(d.delivered, 1);
        assert_eq!(d.event.as_ref(), Some(&event));
        assert_eq!(d.envelope.aggregate_type, "ticket");
        assert_eq!(d.envelope.aggregate_id, id.to_string());
        assert_eq!(d.envelope.aggregate_version, version);
        let event_type = if version == 1 {
            "frontline.v1.TicketOpened"
        } else {
            "frontline.v1.InternalNoteAdded"
        };
        assert_eq!(d.envelope.event_type, event_type);
        assert_eq!(d.envelope.correlation_id, "corr-1");
        d.ack().await.unwrap();
    }
    nothing_for(&mut sub, Duration::from_millis(300)).await;
    settled_through(log, a2.sequence).await;
    drop(sub);

    let a3 = log.append(&a, &a2, note(2), &meta(), T0 + 2).await.unwrap();
    let mut resumed: Tickets = log.subscribe(config()).await.unwrap();
    let d = next(&mut resumed).await;
    assert_eq!(d.sequence, a3.sequence, "resumes after the acked events");
    assert_eq!(d.envelope.aggregate_version, 3);
    assert_eq!(d.event, Some(note(2)));
    d.ack().await.unwrap();
    nothing_for(&mut resumed, Duration::from_millis(300)).await;
}

/// `next_batch(max)` waits for the first event, then takes what has already
/// arrived, up to `max`, in stream order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_batch_takes_what_arrived() {
    let env = common::start().await;
    let log = &env.log;
    let states = ticket_with_notes(log, &Uuid::new_v4(), 4).await;

    let mut sub: Tickets = log.subscribe(config()).await.unwrap();
    let mut got = Vec::new();
    while got.len() < states.len() {
        let batch = within("next_batch", sub.next_batch(3)).await.unwrap();
        assert!(!batch.is_empty() && batch.len() <= 3, "{}", batch.len());
        for d in batch {
            got.push(d.sequence);
            d.ack().await.unwrap();
        }
    }
    let expected: Vec<u64> = states.iter().map(|s| s.sequence).collect();
    assert_eq!(got, expected);
    nothing_for(&mut sub, Duration::from_millis(300)).await;
}

/// `retry(reason)` hands the same event back after the configured backoff, counted
/// as the second delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_redelivers() {
    let env = common::start().await;
    let log = &env.log;
    let states = ticket_with_notes(log, &Uuid::new_v4(), 0).await;

    let mut sub: Tickets = log
        .subscribe(ConsumerConfig {
            backoff: vec![Duration::from_millis(200)],
            ..config()
        })
        .await
        .unwrap();
    let first = next(&mut sub).await;
    assert_eq!(first.sequence, states[0].sequence);
    assert_eq!(first.delivered, 1);
    let retried_at = tokio::time::Instant::now();
    first.retry("read model busy").await.unwrap();

    let again = next(&mut sub).await;
    assert!(
        retried_at.elapsed() >= Duration::from_millis(150),
        "redelivered after {:?}, before the backoff",
        retried_at.elapsed()
    );
    assert_eq!(again.sequence, states[0].sequence);
    assert_eq!(again.delivered, 2);
    assert_eq!(again.envelope.aggregate_version, 1);
    again.ack().await.unwrap();
    settled_through(log, states[0].sequence).await;
    nothing_for(&mut sub, Duration::from_millis(300)).await;
    assert!(parked(log).await.is_empty());
}

/// An event retried on every delivery is parked after its last attempt
/// (`max_deliver`), with a reason saying so, and the consumer goes on to the next
/// event. (One unacked event at a time, so the order of deliveries is fixed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_to_the_last_attempt_is_parked() {
    let env = common::start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let states = ticket_with_notes(log, &id, 1).await;

    let mut sub: Tickets = log
        .subscribe(ConsumerConfig {
            max_deliver: 3,
            backoff: vec![Duration::from_millis(5), Duration::from_millis(10)],
            max_ack_pending: 1,
            ..config()
        })
        .await
        .unwrap();
    for attempt in 1..=3 {
        let d = next(&mut sub).await;
        assert_eq!(d.sequence, states[0].sequence, "attempt {attempt}");
        assert_eq!(d.delivered, attempt);
        within("retry", d.retry("projection down")).await.unwrap();
    }
    let d = next(&mut sub).await;
    assert_eq!(d.sequence, states[1].sequence, "the consumer went on");
    assert_eq!(d.delivered, 1);
    d.ack().await.unwrap();
    settled_through(log, states[1].sequence).await;
    nothing_for(&mut sub, Duration::from_millis(300)).await;

    let parked = parked(log).await;
    assert_eq!(parked.len(), 1);
    let p = &parked[0];
    assert_eq!(
        header(p, "Frontline-Parked-Reason"),
        "gave up after 3 deliveries: projection down"
    );
    assert_eq!(
        header(p, "Frontline-Original-Subject"),
        subject::<Ticket>(&id)
    );
    assert_eq!(
        header(p, "Frontline-Original-Sequence"),
        states[0].sequence.to_string()
    );
    assert_eq!(header(p, "Frontline-Consumer"), DURABLE);
    let envelope = frontline_eventlog::decode_envelope(&p.payload).unwrap();
    assert_eq!(envelope.aggregate_version, 1);
}

/// An undecodable message between two valid events is parked on the way: the
/// subscription yields both valid events (the consumer does not stop), and the
/// garbage sits in `FRONTLINE_PARKED` under `frontline-parked.<consumer>`, unchanged,
/// with the reason, original subject and original sequence in headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_message_is_parked_and_skipped() {
    let env = common::start().await;
    let log = &env.log;
    let js = jetstream::new(env.client.clone());
    let first = ticket_with_notes(log, &Uuid::new_v4(), 0).await;
    let garbage_subject = format!("frontline.ticket.{}", Uuid::new_v4());
    let garbage_seq = js
        .publish(garbage_subject.clone(), "garbage".into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let second = ticket_with_notes(log, &Uuid::new_v4(), 0).await;

    let mut sub: Tickets = log.subscribe(config()).await.unwrap();
    let d1 = next(&mut sub).await;
    assert_eq!(d1.sequence, first[0].sequence);
    d1.ack().await.unwrap();
    let d2 = next(&mut sub).await;
    assert_eq!(d2.sequence, second[0].sequence, "the garbage was skipped");
    d2.ack().await.unwrap();
    settled_through(log, second[0].sequence).await;
    nothing_for(&mut sub, Duration::from_millis(300)).await;

    let parked = parked(log).await;
    assert_eq!(parked.len(), 1);
    let p = &parked[0];
    assert_eq!(p.subject.as_str(), PARKED_SUBJECT);
    assert_eq!(&p.payload[..], b"garbage");
    assert!(!header(p, "Frontline-Parked-Reason").is_empty());
    assert_eq!(header(p, "Frontline-Original-Subject"), garbage_subject);
    assert_eq!(
        header(p, "Frontline-Original-Sequence"),
        garbage_seq.to_string()
    );
    assert_eq!(header(p, "Frontline-Consumer"), DURABLE);
}

/// `Delivery::park(reason)` on valid events (a ticket's first event and a later one,
/// which was appended with a non-zero expected sequence) copies each to the parking
/// lot with the reason and origin in headers, and neither is delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn park_settles_valid_events() {
    let env = common::start().await;
    let log = &env.log;
    // Two events elsewhere first, so the parked events' sequences differ from the
    // parking stream's own.
    let before = ticket_with_notes(log, &Uuid::new_v4(), 1).await;
    let id = Uuid::new_v4();
    let states = ticket_with_notes(log, &id, 1).await;

    let mut sub: Tickets = log.subscribe(config()).await.unwrap();
    for s in &before {
        let d = next(&mut sub).await;
        assert_eq!(d.sequence, s.sequence);
        d.ack().await.unwrap();
    }
    for (i, s) in states.iter().enumerate() {
        let d = next(&mut sub).await;
        assert_eq!(d.sequence, s.sequence);
        assert_eq!(d.delivered, 1);
        let parked = within("park", d.park(&format!("cannot apply #{i}"))).await;
        assert!(
            parked.is_ok(),
            "parking the event at sequence {} (version {}) failed: {parked:?}",
            s.sequence,
            i + 1
        );
    }
    settled_through(log, states[1].sequence).await;
    nothing_for(&mut sub, Duration::from_millis(500)).await;

    let parked = parked(log).await;
    assert_eq!(parked.len(), 2);
    for (i, (p, s)) in parked.iter().zip(&states).enumerate() {
        assert_eq!(
            header(p, "Frontline-Parked-Reason"),
            format!("cannot apply #{i}")
        );
        assert_eq!(
            header(p, "Frontline-Original-Subject"),
            subject::<Ticket>(&id)
        );
        assert_eq!(
            header(p, "Frontline-Original-Sequence"),
            s.sequence.to_string()
        );
        let envelope = frontline_eventlog::decode_envelope(&p.payload).unwrap();
        assert_eq!(envelope.aggregate_version, i as u64 + 1);
    }
}

/// Subscribing again under an existing durable name with another filter applies the
/// new filter: the consumer's info shows it, and the events it now matches are
/// delivered (from where the consumer stands).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_filter_applies_to_an_existing_consumer() {
    let env = common::start().await;
    let log = &env.log;
    let ticket = Uuid::new_v4();
    let contacted = customer_event(log, ticket).await;

    let mut customers: Subscription<CustomerEvent> = log
        .subscribe(consumer(DURABLE, "frontline.customer.>"))
        .await
        .unwrap();
    let d = next(&mut customers).await;
    assert_eq!(d.sequence, contacted.sequence);
    assert_eq!(d.envelope.aggregate_type, "customer");
    d.ack().await.unwrap();
    settled_through(log, contacted.sequence).await;
    drop(customers);
    assert_eq!(
        consumer_info(log).await.config.filter_subject,
        "frontline.customer.>"
    );

    let states = ticket_with_notes(log, &ticket, 1).await;
    let mut tickets: Tickets = log.subscribe(config()).await.unwrap();
    assert_eq!(consumer_info(log).await.config.filter_subject, FILTER);
    for s in &states {
        let d = next(&mut tickets).await;
        assert_eq!(d.sequence, s.sequence);
        assert_eq!(d.subject, subject::<Ticket>(&ticket));
        assert!(d.event.is_some());
        d.ack().await.unwrap();
    }
    // Another customer event is no longer delivered; a new ticket event is.
    customer_event(log, ticket).await;
    let next_note = log
        .append(&ticket, &states[1], note(2), &meta(), T0 + 2)
        .await
        .unwrap();
    let d = next(&mut tickets).await;
    assert_eq!(d.sequence, next_note.sequence);
    d.ack().await.unwrap();
    settled_through(log, next_note.sequence).await;
    nothing_for(&mut tickets, Duration::from_millis(300)).await;
}

/// A delivery left unsettled on its last attempt (the handler crashed or hung, so
/// the ack wait ran out) ends up in the parking lot like one retried to the end:
/// the server gets one delivery more than the handler, and that extra delivery
/// parks it instead of the server silently dropping the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsettled_last_attempt_is_parked() {
    let env = common::start().await;
    let log = &env.log;
    let states = ticket_with_notes(log, &Uuid::new_v4(), 1).await;

    let mut sub: Tickets = log
        .subscribe(ConsumerConfig {
            max_deliver: 2,
            ack_wait: Duration::from_millis(300),
            max_ack_pending: 1,
            ..config()
        })
        .await
        .unwrap();
    for attempt in 1..=2 {
        let d = next(&mut sub).await;
        assert_eq!((d.sequence, d.delivered), (states[0].sequence, attempt));
        // Never settled: as if the handler crashed.
        drop(d);
    }
    let d = next(&mut sub).await;
    assert_eq!(d.sequence, states[1].sequence);
    d.ack().await.unwrap();
    common::eventually("the unsettled event is parked", || async {
        parked(log).await.len() == 1
    })
    .await;
}
