//! The event store against a real `nats-server`: append with optimistic concurrency,
//! load from snapshot + tail, `read`, `execute`, the stream's settings and outages.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_nats::jetstream::{
    self,
    stream::{Config as StreamConfig, DiscardPolicy, RetentionPolicy, StorageType},
};
use common::{
    T0, TRACEPARENT, agent, eventually, meta, meta_for, note, open_log, opened, opening, start,
    start_server, start_with, ticket_with_notes, view, view_of, within,
};
use frontline_domain::{
    Actor, Aggregate, Customer, DomainError, Role, Ticket, TicketCommand, TicketEvent,
    TicketStatus, limits::MAX_BODY_BYTES,
};
use frontline_eventlog::{
    CONTENT_TYPE, CommandError, CommandOptions, EVENT_SUBJECTS, EventCodec, EventLog,
    HEADER_EVENT_TYPE, Loaded, LogConfig, LogError, Snapshots, decode_envelope, execute, subject,
};
use frontline_proto::{convert, v1};
use futures::StreamExt;
use uuid::Uuid;

/// The subjects the stream had before it owned `frontline.>`.
const OLD_EVENT_SUBJECTS: [&str; 4] = [
    "frontline.ticket.>",
    "frontline.customer.>",
    "frontline.agent.>",
    "frontline.policy.>",
];

fn assert_same(actual: &Loaded<Ticket>, expected: &Loaded<Ticket>) {
    assert_eq!(actual.state, expected.state);
    assert_eq!(actual.sequence, expected.sequence);
}

/// A log configuration that snapshots every 3 versions, so a short history
/// (6 events) gets snapshots on append and writes one back after a replay of 3 or more.
fn snapshot_every_3() -> LogConfig {
    LogConfig {
        snapshot_every: 3,
        ..common::config()
    }
}

/// Waits until the snapshot of `id` is at `version` (snapshots are written in the
/// background), so later snapshot writes in a test cannot be overtaken by it.
async fn snapshot_settles(log: &EventLog, id: &Uuid, version: u64) {
    eventually("snapshot written", || async {
        log.snapshots()
            .load::<Ticket>(id)
            .await
            .is_some_and(|s| s.state.version() == version)
    })
    .await;
}

/// Loading an aggregate that has no events answers `Loaded::default()` at once, on a
/// fresh (empty) stream and on a stream with other subjects' events; `read` is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_of_missing_aggregate_is_default() {
    let env = start().await;
    let log = &env.log;
    let missing = Uuid::new_v4();

    let fresh = within("load on a fresh stream", log.load::<Ticket>(&missing))
        .await
        .unwrap();
    assert_eq!(fresh.state, Ticket::default());
    assert_eq!(fresh.sequence, 0);

    let other = Uuid::new_v4();
    ticket_with_notes(log, &other, 2).await;

    let after = within("load with other events", log.load::<Ticket>(&missing))
        .await
        .unwrap();
    assert_eq!(after.state, Ticket::default());
    assert_eq!(after.sequence, 0);
    // Same id, other kind: a different subject, still nothing.
    let customer = within("load another kind", log.load::<Customer>(&other))
        .await
        .unwrap();
    assert_eq!(customer.state.version(), 0);
    assert_eq!(customer.sequence, 0);
    let events = within("read missing", log.read::<Ticket>(&missing, None))
        .await
        .unwrap();
    assert!(events.is_empty());
}

/// An appended event loads back with the right state, version and sequence, and the
/// stored message carries the documented headers and envelope fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_then_load_and_the_stored_message() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let customer = Uuid::new_v4();

    let v1_loaded = log
        .append(
            &id,
            &Loaded::<Ticket>::default(),
            opened(customer),
            &meta(),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(v1_loaded.state.version(), 1);
    assert_eq!(v1_loaded.state.customer_id, customer);
    assert!(v1_loaded.sequence > 0);
    let v2_loaded = log
        .append(&id, &v1_loaded, note(1), &meta(), T0 + 1)
        .await
        .unwrap();
    assert_eq!(v2_loaded.state.version(), 2);
    assert!(v2_loaded.sequence > v1_loaded.sequence);

    let loaded = log.load::<Ticket>(&id).await.unwrap();
    assert_same(&loaded, &v2_loaded);
    assert_eq!(loaded.replayed, 2, "no snapshot yet: both events replayed");
    // What is shown is built from the same events.
    let shown = view(log, &id).await;
    assert_eq!(shown.version, 2);
    assert_eq!(shown.status, loaded.state.status);
    assert_eq!(shown.customer_id, customer);
    assert_eq!(shown.messages.len(), 2);
    assert_eq!(shown.messages[1].body, "note 1");
    assert_eq!(shown.messages[1].author_id, "ana");
    assert_eq!(shown.updated_at, T0 + 1);

    // The raw message, as any NATS client sees it.
    let stream = jetstream::new(env.client.clone())
        .get_stream("FRONTLINE")
        .await
        .unwrap();
    let raw = stream
        .direct_get_last_for_subject(subject::<Ticket>(&id))
        .await
        .unwrap();
    assert_eq!(raw.sequence, v2_loaded.sequence);
    assert_eq!(raw.subject.as_str(), format!("frontline.ticket.{id}"));
    let header = |name: &str| {
        raw.headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name} missing"))
            .as_str()
            .to_string()
    };
    let envelope = decode_envelope(&raw.payload).unwrap();
    assert_eq!(header("Nats-Msg-Id"), envelope.event_id);
    assert!(Uuid::parse_str(&envelope.event_id).is_ok());
    assert_eq!(header(HEADER_EVENT_TYPE), "frontline.v1.InternalNoteAdded");
    assert_eq!(header("Frontline-Event-Type"), envelope.event_type);
    assert_eq!(header("Content-Type"), CONTENT_TYPE);
    assert_eq!(header("traceparent"), TRACEPARENT);

    assert_eq!(envelope.aggregate_type, "ticket");
    assert_eq!(envelope.aggregate_id, id.to_string());
    assert_eq!(envelope.aggregate_version, 2);
    assert_eq!(envelope.event_type, "frontline.v1.InternalNoteAdded");
    assert_eq!(
        envelope.occurred_at.as_ref().map(convert::millis),
        Some(T0 + 1)
    );
    let actor = envelope.actor.clone().unwrap();
    assert_eq!(actor.id, "ana");
    assert_eq!(actor.role, i32::from(v1::Role::Agent));
    assert_eq!(envelope.correlation_id, "corr-1");
    assert_eq!(envelope.causation_id, "req-1");
    assert_eq!(envelope.schema_version, 1);
    assert_eq!(
        TicketEvent::decode_payload(
            &envelope.event_type,
            &envelope.payload,
            &frontline_privacy::Fields::clear()
        )
        .unwrap(),
        Some(note(1))
    );

    // `read` reports the same ids and context.
    let events = log.read::<Ticket>(&id, None).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_id, envelope.event_id);
    assert_eq!(events[1].sequence, raw.sequence);
    assert_eq!(events[1].correlation_id, "corr-1");
    assert_eq!(events[1].causation_id, "req-1");
    assert_eq!(events[1].actor, agent());
    assert_eq!(events[1].at, T0 + 1);
    assert_eq!(events[1].event, Some(note(1)));
    assert_eq!(events[0].event_type, "frontline.v1.TicketOpened");
    assert_eq!(events[0].event, Some(opened(customer)));
}

/// Two appends decided on the same state: the second is a `Conflict` and stores
/// nothing — for a new aggregate (expected sequence 0) and an existing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_on_a_stale_state_conflicts() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let empty = Loaded::<Ticket>::default();

    let first = log
        .append(&id, &empty, opened(Uuid::new_v4()), &meta(), T0)
        .await
        .unwrap();
    let again = log
        .append(&id, &empty, opened(Uuid::new_v4()), &meta(), T0)
        .await;
    match again {
        Err(LogError::Conflict { subject, expected }) => {
            assert_eq!(subject, format!("frontline.ticket.{id}"));
            assert_eq!(expected, 0);
        }
        other => panic!("expected a conflict on a second creation, got {other:?}"),
    }

    let winner = log
        .append(&id, &first, note(1), &meta(), T0 + 1)
        .await
        .unwrap();
    let loser = log.append(&id, &first, note(2), &meta(), T0 + 2).await;
    match loser {
        Err(LogError::Conflict { expected, .. }) => assert_eq!(expected, first.sequence),
        other => panic!("expected a conflict, got {other:?}"),
    }

    let events = log.read::<Ticket>(&id, None).await.unwrap();
    assert_eq!(events.len(), 2, "only the winners are stored");
    assert_eq!(events[1].event, Some(note(1)));
    assert_same(&log.load::<Ticket>(&id).await.unwrap(), &winner);
}

/// `execute` from 20 concurrent tasks on one ticket, half of them through a second
/// log on its own connection (another "process": the log's sequence check decides,
/// the loser reloads and retries): every command is stored exactly once, versions
/// 1..=N without gaps, and some attempts really did lose a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_execute_across_two_logs_stores_every_event() {
    let env = start().await;
    let (_other_client, other_log) = open_log(&env.server.url()).await;
    let id = Uuid::new_v4();
    let customer = Uuid::new_v4();
    let system = Actor::new("shop", Role::CustomerSystem);

    let open = TicketCommand::Open(opening(customer, "open-key"));
    let created = execute::<Ticket, _>(
        &env.log,
        &id,
        &meta_for(system.clone()),
        CommandOptions::default(),
        || T0,
        |t, now| t.decide("t", &open, &system, now),
    )
    .await
    .unwrap();
    assert!(created.appended);

    const TASKS: u64 = 20;
    let decisions = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let log = if i % 2 == 0 {
            env.log.clone()
        } else {
            other_log.clone()
        };
        let decisions = decisions.clone();
        tasks.push(tokio::spawn(async move {
            let actor = agent();
            let command = TicketCommand::AddNote {
                body: format!("note {i}"),
                idempotency_key: Some(format!("note-{i}")),
            };
            execute::<Ticket, _>(
                &log,
                &id,
                &meta(),
                CommandOptions::default(),
                || T0 + 1,
                |t, now| {
                    decisions.fetch_add(1, Ordering::SeqCst);
                    // Widen the load→append window so the two logs really race.
                    std::thread::sleep(Duration::from_millis(3));
                    t.decide("t", &command, &actor, now)
                },
            )
            .await
        }));
    }
    for task in tasks {
        let outcome = within("execute", task).await.unwrap().unwrap();
        assert!(outcome.appended);
    }

    let events = env.log.read::<Ticket>(&id, None).await.unwrap();
    assert_eq!(events.len() as u64, TASKS + 1);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1, "versions without gaps");
    }
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let bodies: BTreeSet<String> = events[1..]
        .iter()
        .map(|e| match &e.event {
            Some(TicketEvent::NoteAdded { body, .. }) => body.clone(),
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(bodies.len() as u64, TASKS, "every note stored exactly once");

    for log in [&env.log, &other_log] {
        let loaded = log.load::<Ticket>(&id).await.unwrap();
        assert_eq!(loaded.state.version(), TASKS + 1);
        assert_eq!(loaded.sequence, events.last().unwrap().sequence);
    }
    let decided = decisions.load(Ordering::SeqCst);
    eprintln!("{decided} decisions for {TASKS} commands");
    assert!(
        decided > TASKS as usize,
        "expected some lost races across the two logs (decisions: {decided})"
    );
}

/// `execute` with a stale `expected_version` is `DomainError::StaleVersion` and
/// stores nothing; a repeated idempotent command records nothing
/// (`appended: false`), even when its expected version is stale by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_stale_version_and_idempotent_repeat() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let system = Actor::new("shop", Role::CustomerSystem);
    let open = TicketCommand::Open(opening(Uuid::new_v4(), "open-key"));
    let run = |actor: Actor, command: TicketCommand, expected_version: Option<u64>| async move {
        let options = CommandOptions {
            expected_version,
            ..Default::default()
        };
        execute::<Ticket, _>(
            log,
            &id,
            &meta_for(actor.clone()),
            options,
            || T0,
            |t, now| t.decide("t", &command, &actor, now),
        )
        .await
    };

    let created = run(system.clone(), open.clone(), Some(0)).await.unwrap();
    assert!(created.appended);
    assert_eq!(created.loaded.state.version(), 1);

    let note = TicketCommand::AddNote {
        body: "checked the logs".into(),
        idempotency_key: Some("k1".into()),
    };
    match run(agent(), note.clone(), Some(0)).await {
        Err(CommandError::Domain(DomainError::StaleVersion { expected, actual })) => {
            assert_eq!((expected, actual), (0, 1));
        }
        other => panic!("expected StaleVersion, got {other:?}"),
    }
    assert_eq!(log.read::<Ticket>(&id, None).await.unwrap().len(), 1);

    let added = run(agent(), note.clone(), Some(1)).await.unwrap();
    assert!(added.appended);
    assert_eq!(added.loaded.state.version(), 2);

    let repeat = run(agent(), note.clone(), Some(1)).await.unwrap();
    assert!(!repeat.appended);
    assert_same(&repeat.loaded, &added.loaded);
    let reopen = run(system, open, None).await.unwrap();
    assert!(!reopen.appended);
    assert_eq!(log.read::<Ticket>(&id, None).await.unwrap().len(), 2);
}

/// Snapshots are a shortcut only: a deleted, stale, "ahead" or undecodable snapshot
/// still loads the exact current state. (Snapshots every 3 versions here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_never_change_what_loads() {
    let env = start_with(snapshot_every_3()).await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let states = ticket_with_notes(log, &id, 5).await;
    let current = states.last().unwrap().clone();
    assert_eq!(current.state.version(), 6);

    // Written on the append of version 6 (6 % 3 == 0): nothing to replay.
    snapshot_settles(log, &id, 6).await;
    assert_eq!(
        log.snapshots().sequence::<Ticket>(&id).await,
        Some(current.sequence)
    );
    let loaded = log.load::<Ticket>(&id).await.unwrap();
    assert_same(&loaded, &current);
    assert_eq!(loaded.replayed, 0);

    // Deleted: full replay.
    log.snapshots().delete::<Ticket>(&id).await.unwrap();
    assert!(log.snapshots().load::<Ticket>(&id).await.is_none());
    assert_eq!(log.snapshots().sequence::<Ticket>(&id).await, None);
    let loaded = log.load::<Ticket>(&id).await.unwrap();
    assert_same(&loaded, &current);
    assert_eq!(loaded.replayed, 6);
    snapshot_settles(log, &id, 6).await; // the replay (6 >= 3) wrote one back

    // Stale (version 2 while the log is at 6): the tail is replayed.
    log.snapshots().save(&id, &states[1]).await.unwrap();
    assert_eq!(
        log.snapshots()
            .load::<Ticket>(&id)
            .await
            .unwrap()
            .state
            .version(),
        2
    );
    let loaded = log.load::<Ticket>(&id).await.unwrap();
    assert_same(&loaded, &current);
    assert_eq!(loaded.replayed, 4, "only the tail after the snapshot");
    snapshot_settles(log, &id, 6).await;

    // Ahead of the log, in sequence and version, in version only, in sequence only.
    let mut ahead = current.clone();
    ahead.state.version = 50;
    ahead.sequence += 1_000;
    let mut ahead_version = current.clone();
    ahead_version.state.version = 7;
    let mut ahead_sequence = current.clone();
    ahead_sequence.sequence += 1;
    for snapshot in [ahead, ahead_version, ahead_sequence] {
        log.snapshots().save(&id, &snapshot).await.unwrap();
        assert_same(&log.load::<Ticket>(&id).await.unwrap(), &current);
    }

    // Garbage in the key.
    let kv = jetstream::new(env.client.clone())
        .get_key_value("FRONTLINE_SNAPSHOTS")
        .await
        .unwrap();
    kv.put(Snapshots::key::<Ticket>(&id), "garbage".into())
        .await
        .unwrap();
    assert!(log.snapshots().load::<Ticket>(&id).await.is_none());
    assert_same(&log.load::<Ticket>(&id).await.unwrap(), &current);

    // A later append still builds on the right state.
    let next = log
        .append(&id, &current, note(6), &meta(), T0 + 6)
        .await
        .unwrap();
    assert_same(&log.load::<Ticket>(&id).await.unwrap(), &next);
}

/// A snapshot whose version and sequence disagree with the log (here: the state at
/// version 3 recorded with the sequence of version 1 — e.g. left over from an earlier
/// stream) is ignored like any other bad snapshot: load still gives the log's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_disagreeing_with_the_log_is_ignored() {
    let env = start_with(snapshot_every_3()).await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let states = ticket_with_notes(log, &id, 5).await;
    let current = states.last().unwrap().clone();
    snapshot_settles(log, &id, 6).await;

    let inconsistent = Loaded {
        state: states[2].state.clone(),
        sequence: states[0].sequence,
        replayed: 0,
    };
    log.snapshots().save(&id, &inconsistent).await.unwrap();
    let loaded = log.load::<Ticket>(&id).await;
    match loaded {
        Ok(loaded) => {
            assert_same(&loaded, &current);
            assert_eq!(loaded.replayed, 6, "replayed from the start");
        }
        Err(e) => panic!("a disagreeing snapshot must only cost a full replay, got {e}"),
    }
}

/// `read(id, Some(v))` returns exactly the first `v` events (in order, as stored);
/// a limit beyond the end returns them all; an empty subject reads empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_until_version() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let other = Uuid::new_v4();
    // Interleave another ticket so the subject's sequences are not contiguous.
    ticket_with_notes(log, &other, 1).await;
    let states = ticket_with_notes(log, &id, 4).await;
    ticket_with_notes(log, &Uuid::new_v4(), 1).await;

    let all = log.read::<Ticket>(&id, None).await.unwrap();
    assert_eq!(all.len(), 5);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1);
        assert_eq!(e.sequence, states[i].sequence);
    }
    assert!(matches!(all[0].event, Some(TicketEvent::Opened(_))));
    for (i, e) in all.iter().enumerate().skip(1) {
        assert_eq!(e.event, Some(note(i as u64)));
    }

    for v in 0..=5u64 {
        let first = log.read::<Ticket>(&id, Some(v)).await.unwrap();
        assert_eq!(first.len() as u64, v);
        for (a, b) in first.iter().zip(&all) {
            assert_eq!(a.event_id, b.event_id);
            assert_eq!(a.sequence, b.sequence);
        }
    }
    assert_eq!(log.read::<Ticket>(&id, Some(99)).await.unwrap().len(), 5);
    assert!(
        log.read::<Ticket>(&Uuid::new_v4(), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        log.read::<Ticket>(&Uuid::new_v4(), Some(3))
            .await
            .unwrap()
            .is_empty()
    );
}

/// `open` creates a stream that cannot lose or rewrite events (deny delete and purge,
/// no rollup, file storage, unlimited per subject, direct get) owning `frontline.>`,
/// plus the parking stream on `frontline-parked.>` and the snapshot bucket; opening
/// again is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_a_safe_stream() {
    let env = start().await;
    let js = jetstream::new(env.client.clone());
    let mut stream = js.get_stream("FRONTLINE").await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert!(config.deny_delete);
    assert!(config.deny_purge);
    assert!(!config.allow_rollup);
    assert_eq!(config.storage, StorageType::File);
    assert_eq!(config.retention, RetentionPolicy::Limits);
    assert_eq!(config.max_messages_per_subject, -1);
    assert!(config.allow_direct);
    assert_eq!(config.discard, DiscardPolicy::New);
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    assert_eq!(config.subjects, [EVENT_SUBJECTS]);
    let mut parked = js.get_stream("FRONTLINE_PARKED").await.unwrap();
    let parked_subjects = parked.info().await.unwrap().config.subjects.clone();
    assert_eq!(parked_subjects, ["frontline-parked.>"]);
    js.get_key_value("FRONTLINE_SNAPSHOTS").await.unwrap();
    assert_eq!(env.log.config().snapshot_every, 16);
    assert_eq!(env.log.last_sequence().await.unwrap(), 0);

    // Idempotent: a second service opening the same log.
    let (_c, again) = open_log(&env.server.url()).await;
    assert_eq!(again.stream_name(), "FRONTLINE");
    let config_again = stream.info().await.unwrap().config.clone();
    assert_eq!(config_again.subjects, [EVENT_SUBJECTS]);

    // `last_sequence` follows the log.
    let states = ticket_with_notes(&again, &Uuid::new_v4(), 1).await;
    assert_eq!(env.log.last_sequence().await.unwrap(), states[1].sequence);
}

/// The subjects of stream `name`.
async fn stream_subjects(client: &async_nats::Client, name: &str) -> Vec<String> {
    let mut stream = jetstream::new(client.clone())
        .get_stream(name)
        .await
        .unwrap();
    stream.info().await.unwrap().config.subjects.clone()
}

fn safe_stream_config() -> StreamConfig {
    StreamConfig {
        metadata: [(
            "frontline_log_format".to_string(),
            frontline_eventlog::LOG_FORMAT.to_string(),
        )]
        .into(),
        name: "FRONTLINE".into(),
        subjects: OLD_EVENT_SUBJECTS.iter().map(|s| s.to_string()).collect(),
        storage: StorageType::File,
        max_messages_per_subject: -1,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        ..Default::default()
    }
}

async fn open_refuses(env: &common::Env, what: &str, unsafe_config: StreamConfig) {
    let js = jetstream::new(env.client.clone());
    js.create_stream(unsafe_config).await.unwrap();
    let opened = EventLog::open(env.client.clone(), common::config()).await;
    assert!(
        matches!(opened, Err(LogError::Refused(_))),
        "a stream with {what} must be refused, got {opened:?}"
    );
    assert_eq!(
        stream_subjects(&env.client, "FRONTLINE").await,
        OLD_EVENT_SUBJECTS,
        "a refused stream ({what}) is left as it was, not upgraded"
    );
    js.delete_stream("FRONTLINE").await.unwrap();
}

/// A pre-existing FRONTLINE stream whose settings could delete or rewrite events is
/// refused with `LogError::Setup` (delete/purge allowed, rollup, per-subject limit,
/// no direct get, a limit with discard-old), and left unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_refuses_an_unsafe_existing_stream() {
    let server = start_server().await;
    let client = async_nats::connect(server.url()).await.unwrap();
    let env = common::Env {
        log: {
            // Sanity: the safe shape is accepted.
            let js = jetstream::new(client.clone());
            js.create_stream(safe_stream_config()).await.unwrap();
            EventLog::open(client.clone(), common::config())
                .await
                .unwrap()
        },
        server,
        client,
    };
    jetstream::new(env.client.clone())
        .delete_stream("FRONTLINE")
        .await
        .unwrap();

    let variants: Vec<(&str, StreamConfig)> = vec![
        (
            "deny_delete: false",
            StreamConfig {
                deny_delete: false,
                ..safe_stream_config()
            },
        ),
        (
            "deny_purge: false",
            StreamConfig {
                deny_purge: false,
                ..safe_stream_config()
            },
        ),
        (
            "allow_rollup: true (the server requires purge for it)",
            StreamConfig {
                allow_rollup: true,
                deny_purge: false,
                ..safe_stream_config()
            },
        ),
        (
            "max_messages_per_subject: 1",
            StreamConfig {
                max_messages_per_subject: 1,
                ..safe_stream_config()
            },
        ),
        (
            "allow_direct: false",
            StreamConfig {
                allow_direct: false,
                ..safe_stream_config()
            },
        ),
        (
            "max_age and discard old",
            StreamConfig {
                max_age: Duration::from_secs(3600),
                discard: DiscardPolicy::Old,
                ..safe_stream_config()
            },
        ),
    ];
    for (what, config) in variants {
        open_refuses(&env, what, config).await;
    }
}

/// A pre-existing stream with safe settings that lacks subjects (an older shape:
/// here only tickets, plus a subject outside the event namespace) is not refused:
/// `open` upgrades it in place to own `frontline.>`, keeps its other subjects and
/// its events, and from then on stores events of every kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_upgrades_a_stream_missing_subjects() {
    let server = start_server().await;
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    js.create_stream(StreamConfig {
        subjects: vec!["frontline.ticket.>".into(), "audit.frontline".into()],
        ..safe_stream_config()
    })
    .await
    .unwrap();
    let id = Uuid::new_v4();
    let customer = Uuid::new_v4();
    let (first, stream) = common::publish_raw(
        &client,
        &subject::<Ticket>(&id),
        0,
        &common::known_envelope("ticket", &id, 1, &opened(customer)),
    )
    .await;
    assert_eq!(stream, "FRONTLINE");

    let log = within("open", EventLog::open(client.clone(), common::config()))
        .await
        .unwrap();
    assert_eq!(
        stream_subjects(&client, "FRONTLINE").await,
        [EVENT_SUBJECTS, "audit.frontline"]
    );
    let loaded = log.load::<Ticket>(&id).await.unwrap();
    assert_eq!(loaded.state.version(), 1);
    assert_eq!(loaded.state.customer_id, customer);
    assert_eq!(loaded.sequence, first);

    // Every kind lands in the stream now, customers included.
    let other = log
        .append(
            &Uuid::new_v4(),
            &Loaded::<Customer>::default(),
            frontline_domain::CustomerEvent::Contacted {
                channel: frontline_domain::Channel::Email,
                tenant: frontline_domain::TenantId::parse("tenant", "acme").unwrap(),
                identities_added: Vec::new(),
                possible_duplicates: Vec::new(),
                facts_recorded: vec![],
                ticket_opened: Some(id),
            },
            &meta(),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(other.state.version(), 1);
    let next = log
        .append(&id, &loaded, note(1), &meta(), T0 + 1)
        .await
        .unwrap();
    assert_eq!(next.state.version(), 2);
    assert_same(&log.load::<Ticket>(&id).await.unwrap(), &next);

    // Opening again changes nothing.
    open_log(&server.url()).await;
    assert_eq!(
        stream_subjects(&client, "FRONTLINE").await,
        [EVENT_SUBJECTS, "audit.frontline"]
    );
}

/// A pre-existing stream that drops events by retention (interest or work-queue: a
/// message is deleted once consumed) or keeps them only in memory (lost on a server
/// restart) is refused as well: it would lose events just as surely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_refuses_a_stream_that_forgets_events() {
    let env = start().await;
    jetstream::new(env.client.clone())
        .delete_stream("FRONTLINE")
        .await
        .unwrap();
    let variants: Vec<(&str, StreamConfig)> = vec![
        (
            "memory storage",
            StreamConfig {
                storage: StorageType::Memory,
                ..safe_stream_config()
            },
        ),
        (
            "interest retention",
            StreamConfig {
                retention: RetentionPolicy::Interest,
                ..safe_stream_config()
            },
        ),
        (
            "work-queue retention",
            StreamConfig {
                retention: RetentionPolicy::WorkQueue,
                ..safe_stream_config()
            },
        ),
    ];
    let mut accepted = Vec::new();
    for (what, config) in variants {
        let js = jetstream::new(env.client.clone());
        js.create_stream(config).await.unwrap();
        let opened = EventLog::open(env.client.clone(), common::config()).await;
        if !matches!(opened, Err(LogError::Refused(_))) {
            accepted.push(what);
        }
        js.delete_stream("FRONTLINE").await.unwrap();
    }
    assert!(
        accepted.is_empty(),
        "streams that lose events were accepted: {accepted:?}"
    );
}

/// With the server gone, `append`, `load`, `read` and `execute` fail with
/// `LogError::Unavailable` instead of hanging — both right after the crash (the
/// client may not have noticed yet) and once the connection is known to be down.
/// Once the server is back (same store) the same log loads the events stored before
/// the outage; an append that was answered `Unavailable` has an unknown outcome (the
/// client may flush it after reconnecting), but it is never stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_is_unavailable() {
    let mut env = start().await;
    let log = env.log.clone();
    let id = Uuid::new_v4();
    let states = ticket_with_notes(&log, &id, 1).await;
    let current = states.last().unwrap().clone();

    tokio::task::block_in_place(|| env.server.kill()).unwrap();

    let appended = within(
        "append right after the crash",
        log.append(&id, &current, note(2), &meta(), T0 + 2),
    )
    .await;
    assert!(
        matches!(appended, Err(LogError::Unavailable(_))),
        "append: {appended:?}"
    );
    common::eventually("the client notices", || async {
        env.client.connection_state() != async_nats::connection::State::Connected
    })
    .await;

    let appended = within(
        "append while down",
        log.append(&id, &current, note(2), &meta(), T0 + 2),
    )
    .await;
    assert!(
        matches!(appended, Err(LogError::Unavailable(_))),
        "append: {appended:?}"
    );
    let loaded = within("load while down", log.load::<Ticket>(&id)).await;
    assert!(
        matches!(loaded, Err(LogError::Unavailable(_))),
        "load: {loaded:?}"
    );
    let read = within("read while down", log.read::<Ticket>(&id, None)).await;
    assert!(
        matches!(read, Err(LogError::Unavailable(_))),
        "read: {read:?}"
    );
    let executed = within(
        "execute while down",
        execute::<Ticket, _>(
            &log,
            &id,
            &meta(),
            CommandOptions::default(),
            || T0,
            |t, now| {
                t.decide(
                    "t",
                    &TicketCommand::AddNote {
                        body: "x".into(),
                        idempotency_key: None,
                    },
                    &agent(),
                    now,
                )
            },
        ),
    )
    .await;
    assert!(
        matches!(executed, Err(CommandError::Log(LogError::Unavailable(_)))),
        "execute: {executed:?}"
    );

    tokio::task::block_in_place(|| env.server.restart()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let after = loop {
        match log.load::<Ticket>(&id).await {
            Ok(loaded) => break loaded,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "still failing after restart: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let events = log.read::<Ticket>(&id, None).await.unwrap();
    assert_eq!(events.len() as u64, after.state.version());
    assert_eq!(events[1].sequence, current.sequence);
    match after.state.version() {
        2 => assert_eq!(after.sequence, current.sequence),
        // The first append's buffered publish landed after the reconnect.
        3 => assert_eq!(events[2].event, Some(note(2))),
        v => panic!("expected version 2 or 3 after the outage, got {v}"),
    }
}

/// In a long stream (~5 000 events on other tickets interleaved with 10 on one
/// ticket), loading and reading the ticket see exactly its 10 events, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_stream_loads_the_thin_subject() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    let mut loaded = Loaded::<Ticket>::default();
    let mut sequences = Vec::new();
    for round in 0..10u64 {
        let fillers = futures::stream::iter(0..500)
            .map(|_| async {
                let filler = Uuid::new_v4();
                log.append(
                    &filler,
                    &Loaded::<Ticket>::default(),
                    opened(Uuid::new_v4()),
                    &meta(),
                    T0,
                )
                .await
                .unwrap();
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>();
        within("filler", fillers).await;
        let event = if round == 0 {
            opened(Uuid::new_v4())
        } else {
            note(round)
        };
        loaded = log
            .append(&id, &loaded, event, &meta(), T0 + round as i64)
            .await
            .unwrap();
        sequences.push(loaded.sequence);
    }
    assert!(loaded.sequence > 5_000);

    log.snapshots().delete::<Ticket>(&id).await.unwrap();
    let from_log = within("load", log.load::<Ticket>(&id)).await.unwrap();
    assert_same(&from_log, &loaded);
    assert_eq!(from_log.replayed, 10);

    let events = within("read", log.read::<Ticket>(&id, None)).await.unwrap();
    assert_eq!(events.len(), 10);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1);
        assert_eq!(e.sequence, sequences[i]);
        if i > 0 {
            assert_eq!(e.event, Some(note(i as u64)));
        }
    }
    assert_eq!(view_of(events).messages.len(), 10);
}

/// Runs `command` by `actor` on ticket `id` through `execute`.
async fn run(
    log: &EventLog,
    id: &Uuid,
    actor: &Actor,
    command: &TicketCommand,
    expected_version: Option<u64>,
) -> Result<frontline_eventlog::Outcome<Ticket>, CommandError> {
    let options = CommandOptions {
        expected_version,
        ..Default::default()
    };
    let name = id.to_string();
    execute::<Ticket, _>(
        log,
        id,
        &meta_for(actor.clone()),
        options,
        || T0,
        |t, now| t.decide(&name, command, actor, now),
    )
    .await
}

/// A refusal that no retry can cure wins over a stale `expected_version`: on a
/// missing ticket a note is `NotFound`, an empty reply `InvalidField`, whatever
/// version the caller expected; on an existing ticket the empty reply is still
/// `InvalidField` and a customer system's note `Forbidden`; only a valid command on
/// an existing ticket with a stale version is `StaleVersion`. Nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_refusals_come_before_a_stale_version() {
    let env = start().await;
    let log = &env.log;
    let system = Actor::new("shop", Role::CustomerSystem);
    let note = TicketCommand::AddNote {
        body: "checked the logs".into(),
        idempotency_key: None,
    };
    let empty_reply = TicketCommand::Reply {
        body: String::new(),
        awaiting_customer: false,
        idempotency_key: None,
    };
    let reply = TicketCommand::Reply {
        body: "Restart it.".into(),
        awaiting_customer: true,
        idempotency_key: None,
    };

    let missing = Uuid::new_v4();
    match run(log, &missing, &agent(), &note, Some(3)).await {
        Err(CommandError::Domain(DomainError::NotFound { kind, id })) => {
            assert_eq!((kind, id), ("ticket", missing.to_string()));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match run(log, &missing, &agent(), &empty_reply, Some(3)).await {
        Err(CommandError::Domain(DomainError::InvalidField { field, .. })) => {
            assert_eq!(field, "body");
        }
        other => panic!("expected InvalidField, got {other:?}"),
    }
    assert!(log.read::<Ticket>(&missing, None).await.unwrap().is_empty());

    let id = Uuid::new_v4();
    let open = TicketCommand::Open(opening(Uuid::new_v4(), "open-key"));
    run(log, &id, &system, &open, Some(0)).await.unwrap();
    match run(log, &id, &agent(), &empty_reply, Some(5)).await {
        Err(CommandError::Domain(DomainError::InvalidField { field, .. })) => {
            assert_eq!(field, "body");
        }
        other => panic!("expected InvalidField, got {other:?}"),
    }
    match run(log, &id, &system, &note, Some(5)).await {
        Err(CommandError::Domain(DomainError::Forbidden { role, .. })) => {
            assert_eq!(role, Role::CustomerSystem);
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    match run(log, &id, &agent(), &reply, Some(5)).await {
        Err(CommandError::Domain(DomainError::StaleVersion { expected, actual })) => {
            assert_eq!((expected, actual), (5, 1));
        }
        other => panic!("expected StaleVersion, got {other:?}"),
    }
    assert_eq!(log.read::<Ticket>(&id, None).await.unwrap().len(), 1);
    // The same reply at the right version goes through.
    let replied = run(log, &id, &agent(), &reply, Some(1)).await.unwrap();
    assert!(replied.appended);
    assert_eq!(replied.loaded.state.version(), 2);
}

/// A snapshot stored under another schema number (an older or newer shape of the
/// state) is ignored: `load` replays every event and gives the log's state, even
/// when the record fits the log's version and sequence. The control: the same
/// record under the current schema is taken as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_another_schema_is_ignored() {
    let env = start().await;
    let log = &env.log;
    let id = Uuid::new_v4();
    // 6 events: below `snapshot_every`, so no snapshot of our own interferes.
    let states = ticket_with_notes(log, &id, 5).await;
    let current = states.last().unwrap().clone();
    assert!(current.state.version() < log.config().snapshot_every);

    // A state that fits the log's version but differs from it, so using it shows.
    let mut doctored = current.state.clone();
    doctored.status = Some(TicketStatus::Solved);
    doctored.reopen_count = 7;
    let kv = jetstream::new(env.client.clone())
        .get_key_value("FRONTLINE_SNAPSHOTS")
        .await
        .unwrap();
    let key = Snapshots::key::<Ticket>(&id);
    let put = |record: serde_json::Value| {
        let (kv, key) = (kv.clone(), key.clone());
        async move {
            kv.put(key, serde_json::to_vec(&record).unwrap().into())
                .await
                .unwrap();
        }
    };
    let record = |schema: u32| {
        serde_json::json!({
            "schema": schema,
            "sequence": current.sequence,
            "state": doctored,
        })
    };

    put(record(Ticket::SNAPSHOT_SCHEMA)).await;
    assert_eq!(
        log.snapshots().sequence::<Ticket>(&id).await,
        Some(current.sequence)
    );
    let used = log.load::<Ticket>(&id).await.unwrap();
    assert_eq!(used.state, doctored, "control: the current schema is used");
    assert_eq!(used.replayed, 0);

    for schema in [Ticket::SNAPSHOT_SCHEMA - 1, Ticket::SNAPSHOT_SCHEMA + 1, 0] {
        put(record(schema)).await;
        assert_eq!(
            log.snapshots().sequence::<Ticket>(&id).await,
            None,
            "schema {schema}"
        );
        let loaded = log.load::<Ticket>(&id).await.unwrap();
        assert_same(&loaded, &current);
        assert_eq!(loaded.replayed, 6, "schema {schema}: a full replay");
    }

    // An older shape that would not even parse as today's state.
    put(serde_json::json!({
        "schema": Ticket::SNAPSHOT_SCHEMA - 1,
        "sequence": current.sequence,
        "state": {"version": 6, "messages": [{"body": "hi"}], "idempotency_keys": 5},
    }))
    .await;
    let loaded = log.load::<Ticket>(&id).await.unwrap();
    assert_same(&loaded, &current);
    assert_eq!(loaded.replayed, 6);
}

/// A ticket with 200 internal notes of the maximum body size (32 KiB each, 6.5 MB
/// of events), appended one by one through `execute`, loads from its snapshot plus
/// a tail shorter than `snapshot_every` — the same state as a cold replay of all
/// 201 events once the snapshot is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_ticket_loads_from_snapshot_and_tail() {
    let env = start().await;
    let log = &env.log;
    let every = log.config().snapshot_every;
    let id = Uuid::new_v4();
    let started = std::time::Instant::now();
    let system = Actor::new("shop", Role::CustomerSystem);
    let open = TicketCommand::Open(opening(Uuid::new_v4(), "big"));
    let opened = execute::<Ticket, _>(
        log,
        &id,
        &meta_for(system.clone()),
        CommandOptions {
            assume_new: true,
            ..Default::default()
        },
        || T0,
        |t, now| t.decide("big", &open, &system, now),
    )
    .await
    .unwrap();
    let mut sequences = vec![opened.loaded.sequence];
    let body = "n".repeat(MAX_BODY_BYTES);
    let actor = agent();
    let mut last = opened.loaded;
    for n in 1..=200u64 {
        let command = TicketCommand::AddNote {
            body: body.clone(),
            idempotency_key: Some(format!("big-{n}")),
        };
        let outcome = within(
            "execute",
            execute::<Ticket, _>(
                log,
                &id,
                &meta(),
                CommandOptions {
                    expected_version: Some(n),
                    ..Default::default()
                },
                || T0 + n as i64,
                |t, now| {
                    // What the command loop loaded: snapshot + a short tail.
                    assert_eq!(t.version(), n);
                    t.decide("big", &command, &actor, now)
                },
            ),
        )
        .await
        .unwrap();
        assert!(outcome.appended);
        sequences.push(outcome.loaded.sequence);
        last = outcome.loaded;
    }
    assert_eq!(last.state.version(), 201);
    assert_eq!(last.state.idempotency_keys.len(), 201);
    let appended_in = started.elapsed();

    // The newest snapshot written on append is at version 192 (a multiple of 16);
    // a load that replayed 16 or more may have written a later one.
    let snapshotted = sequences[(201 / every * every) as usize - 1];
    eventually("the snapshot settles", || async {
        log.snapshots()
            .sequence::<Ticket>(&id)
            .await
            .is_some_and(|s| s >= snapshotted)
    })
    .await;
    let warm = within("warm load", log.load::<Ticket>(&id)).await.unwrap();
    assert!(
        warm.replayed < every,
        "replayed {} events past the snapshot",
        warm.replayed
    );
    assert_same(&warm, &last);

    log.snapshots().delete::<Ticket>(&id).await.unwrap();
    let cold = within("cold load", log.load::<Ticket>(&id)).await.unwrap();
    assert_eq!(cold.replayed, 201);
    assert_same(&cold, &warm);
    eprintln!(
        "big ticket: 201 events appended in {appended_in:?}, warm load replayed {}, \
         total {:?}",
        warm.replayed,
        started.elapsed()
    );
}
