//! Durable consumers against a real `nats-server`: ordered delivery, resume after
//! ack, redelivery, and parking of what cannot be applied.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer, message::StreamMessage};
use common::{T0, meta, note, opened, ticket_with_notes, within};
use frontline_domain::{Channel, Customer, CustomerEvent, Identity, Ticket};
use frontline_eventlog::{Delivery, EventLog, Loaded, Subscription, subject};
use uuid::Uuid;

const DURABLE: &str = "test-consumer";
const FILTER: &str = "frontline.ticket.>";
const PARKED_SUBJECT: &str = "frontline.parked.test-consumer";

/// The next delivery, failing the test on an error or after 10 s.
async fn next(sub: &mut Subscription) -> Delivery {
    match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
        Ok(Some(Ok(d))) => d,
        Ok(Some(Err(e))) => panic!("subscription error: {e}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no delivery within 10 s"),
    }
}

/// Asserts nothing is delivered for `wait`.
async fn nothing_for(sub: &mut Subscription, wait: Duration) {
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

/// A subscription delivers the ticket events (and only those) in stream order with
/// their sequence, subject and decoded envelope; acked events are not delivered to a
/// new subscription under the same durable name, which resumes after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_in_order_and_resumes_after_ack() {
    let env = common::start().await;
    let log = &env.log;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let a1 = log
        .append(
            &a,
            &Loaded::<Ticket>::default(),
            opened(Uuid::new_v4()),
            &meta(),
            T0,
        )
        .await
        .unwrap();
    let b1 = log
        .append(
            &b,
            &Loaded::<Ticket>::default(),
            opened(Uuid::new_v4()),
            &meta(),
            T0,
        )
        .await
        .unwrap();
    // A customer event: not matched by the ticket filter.
    log.append(
        &Uuid::new_v4(),
        &Loaded::<Customer>::default(),
        CustomerEvent::Contacted {
            channel: Channel::Email,
            identities_added: Identity::default(),
            facts_recorded: vec![],
            ticket_opened: Some(a),
        },
        &meta(),
        T0,
    )
    .await
    .unwrap();
    let a2 = log.append(&a, &a1, note(1), &meta(), T0 + 1).await.unwrap();
    let expected = [
        (a, a1.sequence, 1),
        (b, b1.sequence, 1),
        (a, a2.sequence, 2),
    ];

    let mut sub = log.subscribe(DURABLE, FILTER).await.unwrap();
    for (id, sequence, version) in expected {
        let d = next(&mut sub).await;
        assert_eq!(d.sequence, sequence);
        assert_eq!(d.subject, subject::<Ticket>(&id));
        assert_eq!(d.delivered, 1);
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
    let mut resumed = log.subscribe(DURABLE, FILTER).await.unwrap();
    let d = next(&mut resumed).await;
    assert_eq!(d.sequence, a3.sequence, "resumes after the acked events");
    assert_eq!(d.envelope.aggregate_version, 3);
    d.ack().await.unwrap();
    nothing_for(&mut resumed, Duration::from_millis(300)).await;
}

/// `retry(delay)` hands the same event back after the delay, counted as the second
/// delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_redelivers() {
    let env = common::start().await;
    let log = &env.log;
    let states = ticket_with_notes(log, &Uuid::new_v4(), 0).await;

    let mut sub = log.subscribe(DURABLE, FILTER).await.unwrap();
    let first = next(&mut sub).await;
    assert_eq!(first.sequence, states[0].sequence);
    assert_eq!(first.delivered, 1);
    first.retry(Duration::from_millis(100)).await.unwrap();

    let again = next(&mut sub).await;
    assert_eq!(again.sequence, states[0].sequence);
    assert_eq!(again.delivered, 2);
    assert_eq!(again.envelope.aggregate_version, 1);
    again.ack().await.unwrap();
    settled_through(log, states[0].sequence).await;
    nothing_for(&mut sub, Duration::from_millis(300)).await;
}

/// An undecodable message between two valid events is parked on the way: the
/// subscription yields both valid events (the consumer does not stop), and the
/// garbage sits in `FRONTLINE_PARKED` under `frontline.parked.<consumer>`, unchanged,
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

    let mut sub = log.subscribe(DURABLE, FILTER).await.unwrap();
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

    let mut sub = log.subscribe(DURABLE, FILTER).await.unwrap();
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
