//! kill -9 of the real intake binary while its projection applies events: after a
//! restart, `customer_tickets` equals a rebuild from scratch, row for row. Batches
//! commit and then ack, so some kills land between the two; the checkpoint makes the
//! redelivered batch change nothing.
#![allow(clippy::unwrap_used)]

use std::{path::Path, sync::Arc, time::Duration};

use frontline_domain::{Actor, Channel, Opening, Priority, Role, Ticket, TicketEvent};
use frontline_eventlog::{EventLog, EventMeta, Loaded, LogConfig};
use frontline_intake::open_tickets::CustomerTickets;
use frontline_testkit::{NatsServer, ServiceProcess};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_frontline-intake");
const CHECKPOINT: &str = "intake-customer-tickets";

/// Opens `tickets` tickets (customers reused), replying to every third one.
async fn fill(log: &EventLog, tickets: usize) -> u64 {
    let meta = |role| EventMeta {
        actor: Actor::new("filler", role),
        correlation_id: "c".into(),
        causation_id: "r".into(),
        traceparent: None,
    };
    let customers: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
    let mut last = 0;
    for t in 0..tickets {
        let opened = TicketEvent::Opened(Opening {
            tenant: frontline_domain::TenantId::parse("tenant", "acme").unwrap(),
            channel: Channel::Web,
            customer_id: customers[t % customers.len()],
            subject: format!("ticket {t}"),
            body: "b".into(),
            product_area: "area".into(),
            priority: Priority::Normal,
            idempotency_key: format!("k{t}"),
            follow_up_of: None,
        });
        let id = Uuid::new_v4();
        let meta_shop = meta(Role::CustomerSystem);
        let mut loaded = log
            .append(
                &id,
                &Loaded::<Ticket>::default(),
                opened,
                &meta_shop,
                1_000 + t as i64,
            )
            .await
            .unwrap();
        if t % 3 == 0 {
            let reply = TicketEvent::AgentReplied {
                body: "r".into(),
                awaiting_customer: t % 2 == 0,
                idempotency_key: None,
            };
            loaded = log
                .append(&id, &loaded, reply, &meta(Role::Agent), 2_000 + t as i64)
                .await
                .unwrap();
        }
        last = loaded.sequence;
    }
    last
}

async fn checkpoint(db: &PgPool, name: &str) -> u64 {
    // Before the first migration the table does not exist: 0.
    frontline_projection::checkpoint(db, name)
        .await
        .unwrap_or(0)
}

type Row = (Uuid, Uuid, String, String, String, String, i64);

async fn rows(db: &PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT ticket_id, customer_id, subject, product_area, channel, status, version \
         FROM customer_tickets ORDER BY ticket_id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

fn start(nats: &NatsServer, database: &str) -> ServiceProcess {
    let (grpc, metrics) = (
        frontline_testkit::free_port().unwrap(),
        frontline_testkit::free_port().unwrap(),
    );
    let mut env = frontline_testkit::service_env(&nats.url(), "s", Some(database), grpc, metrics);
    env.push(("RUST_LOG", "warn".to_string()));
    let mut service = ServiceProcess::spawn(Path::new(BIN), &env).unwrap();
    service
        .wait_for_port(grpc, Duration::from_secs(30))
        .unwrap();
    service
}

async fn until(db: &PgPool, name: &str, sequence: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while checkpoint(db, name).await < sequence {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stuck at {} of {sequence}",
            checkpoint(db, name).await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_projection_then_restart_equals_a_rebuild() {
    let nats = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let log = EventLog::open(client, LogConfig::default()).await.unwrap();
    let last = fill(&log, 3000).await;

    let live = frontline_testkit::test_database().await.unwrap();
    let db = PgPool::connect(&live.url).await.unwrap();
    // Kill it three times at different points of the catch-up, then let it finish.
    let mut kills = 0;
    for fraction in [5, 35, 70] {
        let service = start(&nats, &live.url);
        until(&db, CHECKPOINT, last * fraction / 100).await;
        let reached = checkpoint(&db, CHECKPOINT).await;
        if reached < last {
            service.kill().unwrap();
            kills += 1;
            eprintln!("killed at checkpoint {reached} of {last}");
        } else {
            service.kill().unwrap();
        }
    }
    let service = start(&nats, &live.url);
    until(&db, CHECKPOINT, last).await;
    // Redeliveries of the unacked batches come after the 30 s ack wait; the
    // checkpoint already covers them, so they change nothing (and the rows below are
    // compared right away: a doubled apply would have shown as a wrong status or
    // version, or been refused by the primary key).
    service.terminate(Duration::from_secs(20)).unwrap();

    // A rebuild from scratch, in-process, under another consumer and database.
    let fresh = frontline_testkit::test_database().await.unwrap();
    let fresh_db = PgPool::connect(&fresh.url).await.unwrap();
    frontline_runtime::service::migrate(
        &fresh_db,
        &[&frontline_projection::MIGRATOR, &frontline_intake::MIGRATOR],
    )
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let rebuild = tokio::spawn(frontline_projection::run(
        log.clone(),
        fresh_db.clone(),
        Arc::new(CustomerTickets::named("rebuild")),
        stop.clone(),
    ));
    until(&fresh_db, "rebuild", last).await;
    stop.cancel();
    rebuild.await.unwrap().unwrap();

    let (kept, rebuilt) = (rows(&db).await, rows(&fresh_db).await);
    assert!(
        kills >= 2,
        "the binary was killed while projecting ({kills} kills)"
    );
    assert_eq!(kept.len(), 3000);
    assert_eq!(
        kept, rebuilt,
        "kill -9 and restart equal a rebuild, row for row"
    );
}
