//! Atomic batches on a real nats-server: all events stored or none, each with its
//! own expected sequence.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use frontline_domain::Ticket;
use frontline_eventlog::{Batch, LogError};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stores_every_event_contiguously() {
    let env = start().await;
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let before = env.log.last_sequence().await.unwrap();
    let mut batch = Batch::new();
    let staged: Vec<_> = [a, b, c]
        .iter()
        .map(|id| batch.stage(id, &Default::default(), opened(Uuid::new_v4()), &meta(), T0))
        .collect();
    let committed = env.log.commit(batch).await.unwrap();
    assert_eq!(committed.sequences(), [before + 1, before + 2, before + 3]);
    for (id, staged) in [a, b, c].iter().zip(staged) {
        let after = committed.loaded(&env.log, staged);
        let loaded = env.log.load::<Ticket>(id).await.unwrap();
        assert_eq!(
            (loaded.sequence, loaded.state),
            (after.sequence, after.state)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stale_event_stores_none_of_the_batch() {
    let env = start().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // b moves on after the batch was staged on its empty state.
    let mut batch = Batch::new();
    batch.stage::<Ticket>(&a, &Default::default(), opened(Uuid::new_v4()), &meta(), T0);
    batch.stage::<Ticket>(&b, &Default::default(), opened(Uuid::new_v4()), &meta(), T0);
    ticket_with_notes(&env.log, &b, 0).await;
    let before = env.log.last_sequence().await.unwrap();
    let err = env.log.commit(batch).await.unwrap_err();
    assert!(matches!(err, LogError::Conflict { .. }), "{err:?}");
    assert_eq!(env.log.last_sequence().await.unwrap(), before);
    assert!(env.log.read::<Ticket>(&a, None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_racing_batches_on_one_aggregate_exactly_one_lands() {
    let env = start().await;
    let shared = Uuid::new_v4();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let log = env.log.clone();
        tasks.push(tokio::spawn(async move {
            let own = Uuid::new_v4();
            let mut batch = Batch::new();
            batch.stage::<Ticket>(
                &own,
                &Default::default(),
                opened(Uuid::new_v4()),
                &meta(),
                T0,
            );
            batch.stage::<Ticket>(
                &shared,
                &Default::default(),
                opened(Uuid::new_v4()),
                &meta(),
                T0,
            );
            (own, log.commit(batch).await)
        }));
    }
    let mut landed = 0;
    for task in tasks {
        let (own, result) = task.await.unwrap();
        let stored = env.log.read::<Ticket>(&own, None).await.unwrap().len();
        match result {
            Ok(_) => {
                landed += 1;
                assert_eq!(stored, 1);
            }
            Err(LogError::Conflict { .. }) => assert_eq!(stored, 0),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(landed, 1);
    assert_eq!(
        env.log.read::<Ticket>(&shared, None).await.unwrap().len(),
        1
    );
}

/// Concurrent batches are committed together (one disk sync for the group), yet
/// each caller gets its own outcome: the one stale batch among 40 is refused and
/// stores nothing, the other 39 land whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_batches_keep_their_own_outcomes() {
    let env = start().await;
    let stale = Uuid::new_v4();
    ticket_with_notes(&env.log, &stale, 0).await;
    let before = env.log.last_sequence().await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let log = env.log.clone();
            tokio::spawn(async move {
                let ids = [Uuid::new_v4(), if i == 17 { stale } else { Uuid::new_v4() }];
                let mut batch = Batch::new();
                for id in &ids {
                    // Staged on the empty state: stale for the ticket that exists.
                    batch.stage::<Ticket>(
                        id,
                        &Default::default(),
                        opened(Uuid::new_v4()),
                        &meta(),
                        T0,
                    );
                }
                (i, ids, log.commit(batch).await)
            })
        })
        .collect();
    for task in tasks {
        let (i, ids, result) = task.await.unwrap();
        let stored = env.log.read::<Ticket>(&ids[0], None).await.unwrap().len();
        if i == 17 {
            assert!(
                matches!(result, Err(LogError::Conflict { .. })),
                "{result:?}"
            );
            assert_eq!(stored, 0, "nothing of the refused batch");
        } else {
            let committed = result.unwrap();
            assert_eq!(stored, 1);
            for (id, sequence) in ids.iter().zip(committed.sequences()) {
                let loaded = env.log.load::<Ticket>(id).await.unwrap();
                assert_eq!(loaded.sequence, *sequence, "its own sequences");
            }
        }
    }
    assert_eq!(env.log.last_sequence().await.unwrap(), before + 39 * 2);
}

/// A batch that can never commit is refused before anything is sent, as a fault of
/// the caller's code (not "unavailable", which would invite a retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_batch_is_refused_and_stores_nothing() {
    let env = start().await;
    let before = env.log.last_sequence().await.unwrap();
    let twice = Uuid::new_v4();
    let mut batch = Batch::new();
    for _ in 0..2 {
        batch.stage::<Ticket>(
            &twice,
            &Default::default(),
            opened(Uuid::new_v4()),
            &meta(),
            T0,
        );
    }
    let err = env.log.commit(batch).await.unwrap_err();
    assert!(
        matches!(&err, LogError::InvalidBatch(why) if why.contains("staged twice")),
        "{err}"
    );
    let mut batch = Batch::new();
    for _ in 0..=frontline_eventlog::MAX_BATCH_EVENTS {
        batch.stage::<Ticket>(
            &Uuid::new_v4(),
            &Default::default(),
            opened(Uuid::new_v4()),
            &meta(),
            T0,
        );
    }
    let err = env.log.commit(batch).await.unwrap_err();
    assert!(
        matches!(&err, LogError::InvalidBatch(why) if why.contains("at most")),
        "{err}"
    );
    assert_eq!(env.log.last_sequence().await.unwrap(), before);
    // An empty batch commits nothing and says so.
    assert!(
        env.log
            .commit(Batch::new())
            .await
            .unwrap()
            .sequences()
            .is_empty()
    );
}
