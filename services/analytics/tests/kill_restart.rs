//! kill -9 of the real analytics binary while it projects a mixed log (tickets
//! through their lifecycle, customers and their tiers, a policy, self-service
//! articles and their deflections, and garbage that must be parked), then a
//! restart: the read models equal a rebuild from the log, row for row — no event
//! counted twice or missed.
#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use frontline_domain::{
    Actor, Caller, Channel, Customer, CustomerEvent, Opening, Priority, Role, TenantId,
    TenantScope, Ticket, TicketEvent,
    article::{Article, ArticleEvent, Draft},
    assignment::Tier,
    ids,
    self_service::{SelfServed, SelfService, SelfServiceEvent},
    sla::{
        clocks::{Alarm, ClockKind},
        policy,
    },
    ticket::Assignment,
};
use frontline_eventlog::{EventLog, EventMeta, Loaded, LogConfig};
use frontline_proto::v1::{self, analytics_service_client::AnalyticsServiceClient};
use frontline_testkit::{NatsServer, ServiceProcess};
use sqlx::PgPool;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_frontline-analytics");
const SECRET: &str = "kill-test-secret";
const TICKETS: usize = 1_500;
const CUSTOMERS: usize = 60;
/// The customer forgotten before any of their tickets.
const FORGOTTEN: usize = 7;
/// Every this many tickets, a customer says an article helped (no ticket).
const SELF_SERVED_EVERY: usize = 50;
/// Tickets `t` with `t % SOLVED_BY_ARTICLE == 1` are solved by the router article.
const SOLVED_BY_ARTICLE: usize = 10;
/// Tickets `t` with `t % 5 == 2` are solved and reopened; by `t % RESERVED`:
/// 2, solved by the router article, reopened by support and left open; 7, the
/// same reopened by the customer writing, then solved by the article again; 12,
/// solved by the article and reopened by the customer; 17, solved by an agent
/// and reopened by support.
const RESERVED: usize = 20;

/// Whether ticket `t` ends solved by the router article (and counts for it).
fn solved_by_article(t: usize) -> bool {
    t % SOLVED_BY_ARTICLE == 1 || t % RESERVED == 7
}

fn meta(role: Role) -> EventMeta {
    EventMeta {
        actor: Actor::new("filler", role),
        correlation_id: "c".into(),
        causation_id: "r".into(),
        traceparent: None,
    }
}

fn acme() -> TenantId {
    TenantId::parse("tenant", "acme").unwrap()
}

/// Publishes revision `loaded.revision + 1` of the article `slug` (area `router`).
async fn publish(log: &EventLog, loaded: &Loaded<Article>, slug: &str, at: i64) -> Loaded<Article> {
    let revision = loaded.state.revision + 1;
    let event = ArticleEvent::Published {
        tenant: acme(),
        revision,
        draft: Draft {
            slug: slug.into(),
            product_area: "router".into(),
            title: format!("{slug} (revision {revision})"),
            body: "Hold the reset button for ten seconds.".into(),
        },
    };
    let id = ids::article_id(&acme(), slug);
    log.append(&id, loaded, event, &meta(Role::Admin), at)
        .await
        .unwrap()
}

/// A customer says `article` helped, before any ticket.
async fn self_served(log: &EventLog, article: Uuid, at: i64) {
    let event = SelfServiceEvent::Recorded(SelfServed {
        tenant: acme(),
        article_id: article,
        revision: 1,
        customer_id: None,
    });
    let loaded = Loaded::<SelfService>::default();
    log.append(
        &Uuid::new_v4(),
        &loaded,
        event,
        &meta(Role::CustomerSystem),
        at,
    )
    .await
    .unwrap();
}

/// Fills the log: a policy, customers (some given a tier), articles (one retired,
/// one published again midway) and their deflections, tickets taken through
/// replies, solves (some by an article), reopens, assignments, logged time and
/// SLA alarms, and two messages that are not events. Returns the last stream
/// sequence.
async fn fill(log: &EventLog) -> u64 {
    let t0 = frontline_runtime::now_millis() - 3_600_000;
    let sla = policy::SlaPolicy {
        default_tier: Tier::Standard,
        targets: Vec::new(),
        calendar: None,
        warning_percent: 50,
        time_budget_minutes: [0; 3],
        escalation: policy::Escalation::Raise,
        auto_close_after_secs: 0,
        check_in_after_secs: 0,
    };
    log.append(
        &ids::sla_policy_id(&acme()),
        &Loaded::<policy::PolicyRecord>::default(),
        policy::PolicyEvent::Set {
            tenant: acme(),
            policy: sla,
        },
        &meta(Role::Manager),
        t0,
    )
    .await
    .unwrap();
    let mut customers = Vec::new();
    for c in 0..CUSTOMERS {
        let id = Uuid::new_v4();
        let contacted = CustomerEvent::Contacted {
            channel: Channel::Web,
            tenant: acme(),
            identities_added: Vec::new(),
            facts_recorded: Vec::new(),
            ticket_opened: None,
            possible_duplicates: Vec::new(),
        };
        let loaded = log
            .append(
                &id,
                &Loaded::<Customer>::default(),
                contacted,
                &meta(Role::CustomerSystem),
                t0,
            )
            .await
            .unwrap();
        if c % 4 == 0 {
            let tier = CustomerEvent::TierSet {
                tier: Tier::Extended,
                named_agent: None,
            };
            log.append(&id, &loaded, tier, &meta(Role::Manager), t0 + 1)
                .await
                .unwrap();
        }
        if c == FORGOTTEN {
            // Forgotten, though its key is kept: tickets opened for it afterwards
            // (a submit racing the forget) must keep no subject all the same.
            let forgotten = CustomerEvent::Forgotten {
                reason: "erasure request".into(),
                released_claims: Vec::new(),
            };
            log.append(&id, &loaded, forgotten, &meta(Role::Admin), t0 + 1)
                .await
                .unwrap();
        }
        customers.push(id);
    }
    let mut router = publish(log, &Loaded::default(), "reset-router", t0 + 2).await;
    let old = publish(log, &Loaded::default(), "old-firmware", t0 + 2).await;
    let retired = ArticleEvent::Retired { revision: 1 };
    let old_id = ids::article_id(&acme(), "old-firmware");
    log.append(&old_id, &old, retired, &meta(Role::Admin), t0 + 3)
        .await
        .unwrap();
    let articles = [ids::article_id(&acme(), "reset-router"), old_id];
    let mut last = 0;
    for t in 0..TICKETS {
        let at = t0 + 10 + t as i64;
        if t == TICKETS / 2 {
            router = publish(log, &router, "reset-router", at).await;
        }
        if t % SELF_SERVED_EVERY == 0 {
            self_served(log, articles[(t / SELF_SERVED_EVERY) % 2], at).await;
        }
        let id = Uuid::new_v4();
        let opened = TicketEvent::Opened(Opening {
            tenant: acme(),
            channel: [Channel::Web, Channel::Email, Channel::Chat][t % 3],
            customer_id: customers[t % CUSTOMERS],
            subject: format!("ticket {t}"),
            body: "b".into(),
            product_area: ["billing", "router"][t % 2].into(),
            priority: Priority::Normal,
            idempotency_key: format!("k{t}"),
            follow_up_of: None,
        });
        let mut loaded = log
            .append(
                &id,
                &Loaded::<Ticket>::default(),
                opened,
                &meta(Role::CustomerSystem),
                at,
            )
            .await
            .unwrap();
        let assigned = TicketEvent::Assigned(Assignment {
            agent: format!("agent-{}", t % 7),
            rule: frontline_domain::assignment::Rule::LeastLoaded,
            candidates: Vec::new(),
            reason: String::new(),
        });
        let reply = TicketEvent::AgentReplied {
            body: "r".into(),
            awaiting_customer: t % 2 == 0,
            idempotency_key: None,
        };
        let solved_by = |article: Option<Uuid>| TicketEvent::Solved {
            resolution: "done".into(),
            self_served: article,
            idempotency_key: None,
        };
        let solved = solved_by((t % SOLVED_BY_ARTICLE == 1).then_some(articles[0]));
        let reopened = TicketEvent::Reopened {
            reason: "again".into(),
        };
        let wrote_again = TicketEvent::CustomerMessageAdded {
            body: "still broken".into(),
            channel: Channel::Web,
            idempotency_key: format!("m{t}"),
            reopened: true,
        };
        let steps: Vec<TicketEvent> = match t % 5 {
            0 => vec![assigned, reply],
            1 => vec![assigned, reply, solved],
            2 => match t % RESERVED {
                2 => vec![assigned, solved_by(Some(articles[0])), reopened],
                7 => vec![
                    assigned,
                    solved_by(Some(articles[0])),
                    wrote_again,
                    solved_by(Some(articles[0])),
                ],
                12 => vec![assigned, solved_by(Some(articles[0])), wrote_again],
                _ => vec![assigned, solved, reopened],
            },
            3 => vec![assigned, TicketEvent::TimeLogged { minutes: 12 }],
            _ => vec![TicketEvent::SlaAlarm {
                clock: ClockKind::FirstResponse,
                cycle: 1,
                alarm: Alarm::Breach,
                due_at: at + 1_000,
            }],
        };
        for (i, step) in steps.into_iter().enumerate() {
            let role = match step {
                _ if i == 0 => Role::Admin,
                TicketEvent::CustomerMessageAdded { .. }
                | TicketEvent::Solved {
                    self_served: Some(_),
                    ..
                } => Role::CustomerSystem,
                _ => Role::Agent,
            };
            loaded = log
                .append(&id, &loaded, step, &meta(role), at + 100 + i as i64)
                .await
                .unwrap();
        }
        last = loaded.sequence;
        if t == 300 || t == 900 {
            // Not events: parked, never stopping the projection.
            let subject = format!("frontline.ticket.{}", Uuid::new_v4());
            let ack = async_nats::jetstream::new(log.client().clone())
                .publish(subject, "garbage".into())
                .await
                .unwrap()
                .await
                .unwrap();
            last = ack.sequence;
        }
    }
    last
}

fn start(nats: &NatsServer, database: &str) -> (ServiceProcess, u16) {
    let (grpc, metrics) = (
        frontline_testkit::free_port().unwrap(),
        frontline_testkit::free_port().unwrap(),
    );
    let mut env =
        frontline_testkit::service_env(&nats.url(), SECRET, Some(database), grpc, metrics);
    env.push(("RUST_LOG", "warn".to_string()));
    let mut service = ServiceProcess::spawn(Path::new(BIN), &env).unwrap();
    service
        .wait_for_port(grpc, Duration::from_secs(30))
        .unwrap();
    (service, grpc)
}

async fn live_checkpoint(db: &PgPool) -> u64 {
    // Before the migrations the tables do not exist: 0.
    frontline_analytics::generations::live_checkpoint(db)
        .await
        .unwrap_or(0)
}

async fn until_live_reaches(db: &PgPool, sequence: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while live_checkpoint(db).await < sequence {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {} of {sequence}",
            live_checkpoint(db).await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every revision of every row the views show, as text, in a stable order.
async fn dump(db: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for (view, order) in [
        ("analytics_tickets", "ticket_id, revision"),
        ("analytics_customers", "customer_id, revision"),
        ("analytics_policies", "tenant"),
        ("analytics_articles", "article_id"),
        ("analytics_self_served", "ticket_id"),
    ] {
        let text: Vec<String> =
            sqlx::query_scalar(&format!("SELECT r::text FROM {view} r ORDER BY {order}"))
                .fetch_all(db)
                .await
                .unwrap();
        rows.extend(text.into_iter().map(|t| format!("{view}: {t}")));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_projecting_then_restart_equals_a_rebuild() {
    let nats = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let config = LogConfig {
        kek: Some(frontline_privacy::Kek::from_base64(frontline_testkit::TEST_KEK).unwrap()),
        ..LogConfig::default()
    };
    let log = EventLog::open(client, config).await.unwrap();
    let last = fill(&log).await;
    let database = frontline_testkit::test_database().await.unwrap();
    let db = PgPool::connect(&database.url).await.unwrap();

    // Killed three times at different points of the catch-up, then left to finish.
    let mut kills = 0;
    for percent in [5, 35, 70] {
        let (service, _) = start(&nats, &database.url);
        until_live_reaches(&db, last * percent / 100).await;
        let reached = live_checkpoint(&db).await;
        service.kill().unwrap();
        if reached < last {
            kills += 1;
            eprintln!("killed at {reached} of {last}");
        }
    }
    let (service, grpc) = start(&nats, &database.url);
    until_live_reaches(&db, last).await;
    let incremental = dump(&db).await;
    let tickets = incremental
        .iter()
        .filter(|r| r.starts_with("analytics_tickets"))
        .count();
    assert!(tickets > TICKETS * 3, "{tickets} ticket revisions");

    // A rebuild from the log by the same binary, into a new generation.
    let token = frontline_runtime::auth::mint(
        SECRET,
        &Caller::new(Actor::new("ops", Role::Admin), TenantScope::All).unwrap(),
        Duration::from_secs(600),
    )
    .unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let mut analytics =
        AnalyticsServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", bearer.clone());
            Ok(r)
        });
    let rebuild = analytics
        .rebuild_read_models(v1::RebuildReadModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let status = analytics
            .get_projection_status(v1::GetProjectionStatusRequest::default())
            .await
            .unwrap()
            .into_inner();
        if status
            .projections
            .first()
            .is_some_and(|p| p.generation == rebuild.generation)
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rebuilt = dump(&db).await;
    // Every read model moved: its view reads the new generation's table, and the
    // old generation's tables are dropped (the next round, shortly).
    let (old, new) = (
        frontline_analytics::store::Tables::of(1),
        frontline_analytics::store::Tables::of(i32::try_from(rebuild.generation).unwrap()),
    );
    for (view, table) in new.with_views() {
        let definition: String = sqlx::query_scalar("SELECT pg_get_viewdef($1::regclass)")
            .bind(view)
            .fetch_one(&db)
            .await
            .unwrap();
        assert!(definition.contains(table), "{view}: {definition}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (_, table) in old.with_views() {
        loop {
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&db)
                .await
                .unwrap();
            if !exists {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{table} is left");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    service.terminate(Duration::from_secs(20)).unwrap();

    // And the same log applied event by event (no batching), in-process, into a
    // database of its own.
    let fresh = frontline_testkit::test_database().await.unwrap();
    let fresh_db = PgPool::connect(&fresh.url).await.unwrap();
    frontline_runtime::service::migrate(
        &fresh_db,
        &[
            &frontline_projection::MIGRATOR,
            &frontline_analytics::MIGRATOR,
        ],
    )
    .await
    .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let one_by_one = tokio::spawn(frontline_projection::run(
        log.clone(),
        fresh_db.clone(),
        std::sync::Arc::new(frontline_analytics::projection::ReadModels::one_by_one(1)),
        stop.clone(),
    ));
    until_live_reaches(&fresh_db, last).await;
    stop.cancel();
    one_by_one.await.unwrap().unwrap();
    let event_by_event = dump(&fresh_db).await;

    assert!(kills >= 2, "killed while projecting ({kills} kills)");
    let erased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM analytics_tickets WHERE subject = $1 AND seq_to = 9223372036854775807",
    )
    .bind(frontline_privacy::ERASED)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        erased,
        (TICKETS / CUSTOMERS) as i64,
        "the forgotten customer's tickets keep no subject"
    );
    let deflections: Vec<(String, i32, bool, i64, i64)> = sqlx::query_as(
        "SELECT a.slug, a.revision, a.retired, a.self_served, \
                (SELECT count(*) FROM analytics_self_served s WHERE s.article_id = a.article_id) \
         FROM analytics_articles a ORDER BY a.slug",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let solved_by_router = (0..TICKETS).filter(|t| solved_by_article(*t)).count() as i64;
    let self_served = (TICKETS / SELF_SERVED_EVERY / 2) as i64;
    assert_eq!(
        deflections,
        [
            ("old-firmware".to_string(), 1, true, self_served, 0),
            (
                "reset-router".to_string(),
                2,
                false,
                self_served,
                solved_by_router
            ),
        ],
        "each deflection counted once"
    );
    assert_eq!(incremental.len(), rebuilt.len());
    assert_eq!(
        incremental, rebuilt,
        "kill -9 and restart equal a rebuild, row for row"
    );
    assert_eq!(
        incremental, event_by_event,
        "batches fold to the same rows as events applied one by one"
    );
}
