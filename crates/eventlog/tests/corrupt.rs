//! What the log does with stored events that are wrong, against a real
//! `nats-server`: a gap in an aggregate's versions, a known event type whose payload
//! does not decode, an absurd version. Such an aggregate is `LogError::Corrupt` to
//! load and read; consumers park what they cannot decode and go on.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::{
    T0, agent, consumer, envelope, known_envelope, meta, note, opened, publish_raw, start, within,
};
use frontline_domain::{Ticket, TicketCommand, TicketEvent};
use frontline_eventlog::{
    CommandError, CommandOptions, Loaded, LogError, Subscription, execute, subject,
};
use uuid::Uuid;

/// A ticket with its opening appended; returns the opening's state.
async fn opened_ticket(log: &frontline_eventlog::EventLog, id: &Uuid) -> Loaded<Ticket> {
    log.append(
        id,
        &Loaded::<Ticket>::default(),
        opened(Uuid::new_v4()),
        &meta(),
        T0,
    )
    .await
    .unwrap()
}

fn assert_corrupt<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, LogError>,
    subject: &str,
    sequence: u64,
) {
    match result {
        Err(LogError::Corrupt {
            subject: s,
            sequence: q,
            reason,
        }) => {
            assert_eq!((s.as_str(), q), (subject, sequence), "{what}: {reason}");
        }
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

/// An event whose aggregate version skips one (version 3 right after version 1)
/// makes the aggregate `Corrupt` to `load`, `read` and `execute`, naming the
/// subject and the sequence of the offending event; nothing is appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_versions_is_corrupt() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let subject = subject::<Ticket>(&id);
    let first = opened_ticket(log, &id).await;
    let (skipped, _) = publish_raw(
        &env.client,
        &subject,
        first.sequence,
        &known_envelope("ticket", &id, 3, &note(1)),
    )
    .await;

    assert_corrupt("load", log.load::<Ticket>(&id).await, &subject, skipped);
    assert_corrupt(
        "read",
        log.read::<Ticket>(&id, None).await,
        &subject,
        skipped,
    );
    // The events before the gap still read.
    assert_eq!(log.read::<Ticket>(&id, Some(1)).await.unwrap().len(), 1);
    let actor = agent();
    let command = TicketCommand::AddNote {
        body: "n".into(),
        idempotency_key: None,
    };
    let executed = execute::<Ticket, _>(
        log,
        &id,
        &meta(),
        CommandOptions::default(),
        || T0,
        |t, now| t.decide("t", &command, &actor, now),
    )
    .await;
    match executed {
        Err(CommandError::Log(LogError::Corrupt { sequence, .. })) => {
            assert_eq!(sequence, skipped);
        }
        other => panic!("execute: expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        log.last_sequence().await.unwrap(),
        skipped,
        "nothing appended"
    );
}

/// A known event type whose payload is not valid protobuf is `Corrupt` to load
/// (unlike an unknown type, which is skipped); a consumer parks it with the reason
/// and delivers the next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_type_with_a_broken_payload_is_corrupt_and_parked() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let subject = subject::<Ticket>(&id);
    let first = opened_ticket(log, &id).await;
    let broken = envelope(
        "ticket",
        &id,
        2,
        "frontline.v1.InternalNoteAdded",
        vec![0xff, 0xff, 0xff],
    );
    let (broken_seq, _) = publish_raw(&env.client, &subject, first.sequence, &broken).await;
    assert_corrupt("load", log.load::<Ticket>(&id).await, &subject, broken_seq);
    let other = opened_ticket(log, &Uuid::new_v4()).await;

    let mut sub: Subscription<TicketEvent> = log
        .subscribe(consumer("broken", "frontline.ticket.>"))
        .await
        .unwrap();
    for expected in [first.sequence, other.sequence] {
        let d = within("delivery", sub.next()).await.unwrap().unwrap();
        assert_eq!(d.sequence, expected, "the broken event is not delivered");
        d.ack().await.unwrap();
    }
    let parking = jetstream::new(env.client.clone())
        .get_stream("FRONTLINE_PARKED")
        .await
        .unwrap();
    let parked = parking
        .get_last_raw_message_by_subject("frontline-parked.broken")
        .await
        .unwrap();
    let header = |name: &str| parked.headers.get(name).unwrap().as_str().to_string();
    assert_eq!(
        header("Frontline-Original-Sequence"),
        broken_seq.to_string()
    );
    assert!(
        header("Frontline-Parked-Reason").contains("InternalNoteAdded"),
        "{}",
        header("Frontline-Parked-Reason")
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sub.next())
            .await
            .is_err()
    );
}

/// An event claiming an absurd aggregate version (10^12, e.g. a bug in another
/// writer) is `Corrupt` like any gap, to `load` and to `read` — `read` once asked
/// for memory for 10^12 events up front and aborted the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_version_is_corrupt_not_an_abort() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let subject = subject::<Ticket>(&id);
    let first = opened_ticket(log, &id).await;
    let (absurd, _) = publish_raw(
        &env.client,
        &subject,
        first.sequence,
        &known_envelope("ticket", &id, 1_000_000_000_000, &note(1)),
    )
    .await;
    assert_corrupt("load", log.load::<Ticket>(&id).await, &subject, absurd);
    assert_corrupt(
        "read",
        log.read::<Ticket>(&id, None).await,
        &subject,
        absurd,
    );
}
