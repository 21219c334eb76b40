//! A projection applies every event exactly once, even when the process dies
//! between its commit and its ack: the redelivered batch is skipped by the
//! checkpoint, and the read model equals one rebuilt from scratch, row for row.
#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use frontline_domain::{Actor, Channel, Opening, Priority, Role, Ticket, TicketEvent};
use frontline_eventlog::{ConsumerConfig, Delivery, EventLog, EventMeta, Loaded, LogConfig};
use frontline_projection::{MIGRATOR, Projection, apply_batch, checkpoint, run};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Writes one row per event; a plain INSERT, so applying an event twice fails.
struct Rows {
    durable: &'static str,
}

impl Projection for Rows {
    type Event = TicketEvent;

    fn consumer(&self) -> ConsumerConfig {
        ConsumerConfig {
            ack_wait: Duration::from_secs(1),
            backoff: vec![Duration::from_millis(50)],
            ..ConsumerConfig::new(self.durable, "frontline.ticket.>")
        }
    }

    async fn apply(
        &self,
        db: &mut PgConnection,
        delivery: &Delivery<TicketEvent>,
        event: &TicketEvent,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO rows (sequence, ticket, version, kind) VALUES ($1, $2, $3, $4)")
            .bind(i64::try_from(delivery.sequence).unwrap())
            .bind(&delivery.envelope.aggregate_id)
            .bind(i64::try_from(delivery.envelope.aggregate_version).unwrap())
            .bind(event.summary())
            .execute(db)
            .await?;
        Ok(())
    }
}

async fn database() -> PgPool {
    let db = frontline_testkit::test_database().await.unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    sqlx::query(
        "CREATE TABLE rows (sequence bigint PRIMARY KEY, ticket text NOT NULL, \
         version bigint NOT NULL, kind text NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool
}

async fn rows(db: &PgPool) -> Vec<(i64, String, i64, String)> {
    sqlx::query_as("SELECT sequence, ticket, version, kind FROM rows ORDER BY sequence")
        .fetch_all(db)
        .await
        .unwrap()
}

/// Opens `tickets` tickets with `notes` notes each; returns the last stream sequence.
async fn fill(log: &EventLog, tickets: usize, notes: u64) -> u64 {
    let meta = EventMeta {
        actor: Actor::new("ana", Role::Agent),
        correlation_id: "c".into(),
        causation_id: "r".into(),
        traceparent: None,
    };
    let mut last = 0;
    for t in 0..tickets {
        let id = Uuid::new_v4();
        let opened = TicketEvent::Opened(Opening {
            tenant: frontline_domain::TenantId::parse("tenant", "acme").unwrap(),
            channel: Channel::Email,
            customer_id: Uuid::new_v4(),
            subject: format!("ticket {t}"),
            body: "b".into(),
            product_area: "p".into(),
            priority: Priority::Normal,
            idempotency_key: format!("k{t}"),
            follow_up_of: None,
        });
        let mut loaded = log
            .append(&id, &Loaded::<Ticket>::default(), opened, &meta, 1)
            .await
            .unwrap();
        for n in 0..notes {
            let note = TicketEvent::NoteAdded {
                body: format!("note {n}"),
                idempotency_key: None,
            };
            loaded = log.append(&id, &loaded, note, &meta, 2).await.unwrap();
        }
        last = loaded.sequence;
    }
    last
}

async fn caught_up(db: &PgPool, name: &str, last: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while checkpoint(db, name).await.unwrap() < last {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_ack_changes_nothing() {
    let nats = tokio::task::spawn_blocking(frontline_testkit::NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let log = EventLog::open(client, LogConfig::default()).await.unwrap();
    let last = fill(&log, 10, 4).await;

    // First life, on its own connection: apply a batch, commit — and die before
    // acking anything (the connection goes with it, as with kill -9).
    let db = database().await;
    let projection = Rows { durable: "rows" };
    {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let first_life = EventLog::open(client, LogConfig::default()).await.unwrap();
        let mut subscription = first_life
            .subscribe::<TicketEvent>(projection.consumer())
            .await
            .unwrap();
        let mut batch = Vec::new();
        while batch.len() < 20 {
            batch.extend(subscription.next_batch(20 - batch.len()).await.unwrap());
        }
        let mut conn = db.acquire().await.unwrap();
        assert_eq!(
            apply_batch(&mut conn, &projection, &batch).await.unwrap(),
            20
        );
        // Dropped unacked: the server redelivers all 20 after the ack wait.
    }
    assert_eq!(rows(&db).await.len(), 20);

    // Second life: it resumes right after its checkpoint — the 20 are not applied
    // again (the plain INSERT would refuse them), the rest are.
    let stop = CancellationToken::new();
    let running = tokio::spawn(run(
        log.clone(),
        db.clone(),
        Arc::new(projection),
        stop.clone(),
    ));
    caught_up(&db, "rows", last).await;
    stop.cancel();
    running.await.unwrap().unwrap();

    // A rebuild from scratch, in another database, equals it row for row.
    let fresh = database().await;
    let stop = CancellationToken::new();
    let rebuild = tokio::spawn(run(
        log.clone(),
        fresh.clone(),
        Arc::new(Rows {
            durable: "rows-rebuild",
        }),
        stop.clone(),
    ));
    caught_up(&fresh, "rows-rebuild", last).await;
    stop.cancel();
    rebuild.await.unwrap().unwrap();

    let (kept, rebuilt) = (rows(&db).await, rows(&fresh).await);
    assert_eq!(kept.len(), 50, "10 tickets × (1 opened + 4 notes)");
    assert_eq!(kept, rebuilt);
    assert_eq!(checkpoint(&db, "rows").await.unwrap(), last);
}

/// Two replicas run the same projection at once: one applies, the other waits its
/// turn (advisory lock); killing the active one hands over without a gap or a
/// double, even while events keep arriving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_take_turns_without_gaps_or_doubles() {
    let nats = tokio::task::spawn_blocking(frontline_testkit::NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let log = EventLog::open(client, LogConfig::default()).await.unwrap();
    fill(&log, 10, 4).await;
    let db = database().await;

    let replica = |db: &PgPool| {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(run(
            log.clone(),
            db.clone(),
            Arc::new(Rows { durable: "rows" }),
            stop.clone(),
        ));
        (stop, handle)
    };
    // Each replica has its own pool, as separate processes would.
    let other = PgPool::connect_with((*db.connect_options()).clone())
        .await
        .unwrap();
    let (stop_a, a) = replica(&db);
    let (stop_b, b) = replica(&other);
    let mid = fill(&log, 10, 4).await;
    caught_up(&db, "rows", mid).await;
    // The active one goes away (its lock with it); the other takes over.
    a.abort();
    let _ = a.await;
    stop_a.cancel();
    let last = fill(&log, 10, 4).await;
    caught_up(&db, "rows", last).await;
    stop_b.cancel();
    b.await.unwrap().unwrap();

    let kept = rows(&db).await;
    assert_eq!(kept.len(), 150, "30 tickets × 5 events, each once");
    let sequences: Vec<i64> = kept.iter().map(|r| r.0).collect();
    let mut sorted = sequences.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 150, "no event applied twice");
}

/// Fails every attempt at third events; applies the rest like [`Rows`].
struct Poisoned;

impl Projection for Poisoned {
    type Event = TicketEvent;

    fn consumer(&self) -> ConsumerConfig {
        ConsumerConfig {
            max_deliver: 2,
            ..Rows {
                durable: "poisoned",
            }
            .consumer()
        }
    }

    async fn apply(
        &self,
        db: &mut PgConnection,
        delivery: &Delivery<TicketEvent>,
        event: &TicketEvent,
    ) -> Result<(), sqlx::Error> {
        if delivery.envelope.aggregate_version == 3 {
            return Err(sqlx::Error::Decode("this event cannot be applied".into()));
        }
        Rows {
            durable: "poisoned",
        }
        .apply(db, delivery, event)
        .await
    }
}

/// An event that fails every attempt is retried in place, parked, and passed: the
/// events after it are applied, in order, and the checkpoint reaches the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_parked_and_passed() {
    let nats = tokio::task::spawn_blocking(frontline_testkit::NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let log = EventLog::open(client.clone(), LogConfig::default())
        .await
        .unwrap();
    let last = fill(&log, 4, 4).await;
    let db = database().await;
    let stop = CancellationToken::new();
    let running = tokio::spawn(run(
        log.clone(),
        db.clone(),
        Arc::new(Poisoned),
        stop.clone(),
    ));
    caught_up(&db, "poisoned", last).await;
    stop.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(
        rows(&db).await.len(),
        16,
        "4 tickets × 5 events, less the 4 poisoned"
    );
    let js = async_nats::jetstream::new(client);
    let mut parked = js.get_stream("FRONTLINE_PARKED").await.unwrap();
    assert_eq!(parked.info().await.unwrap().state.messages, 4);
}
