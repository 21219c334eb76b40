//! kill -9 of the real routing binary while it assigns tickets and records SLA
//! events, then restarts: every ticket ends up assigned exactly once or queued,
//! every agent's load matches the tickets they hold (never above capacity), and
//! every warning, breach and escalation is on the log exactly once.
#![allow(clippy::unwrap_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::Duration,
};

use frontline_domain::{
    Actor, Agent, AgentEvent, Availability, Channel, Opening, Priority, Role, TenantId, Ticket,
    TicketEvent, agent::Profile, assignment::Tier, ids, sla::policy,
};
use frontline_eventlog::{EventLog, EventMeta, Loaded, LogConfig};
use frontline_testkit::{NatsServer, ServiceProcess};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_frontline-routing");
const TICKETS: usize = 150;
const AGENTS: usize = 4;
const CAPACITY: u32 = 25;

fn meta(role: Role) -> EventMeta {
    EventMeta {
        actor: Actor::new("setup", role),
        correlation_id: "c".into(),
        causation_id: "r".into(),
        traceparent: None,
    }
}

fn acme() -> TenantId {
    TenantId::parse("tenant", "acme").unwrap()
}

fn now() -> i64 {
    frontline_runtime::now_millis()
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

async fn tickets(log: &EventLog, ids: &[Uuid]) -> Vec<Vec<TicketEvent>> {
    let mut all = Vec::new();
    for id in ids {
        let events = log.read::<Ticket>(id, None).await.unwrap();
        all.push(events.into_iter().filter_map(|e| e.event).collect());
    }
    all
}

fn count(events: &[TicketEvent], what: fn(&TicketEvent) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_assigning_and_timing_loses_and_doubles_nothing() {
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
    let database = frontline_testkit::test_database().await.unwrap();

    // A policy: first response 2 s, resolution 3 s, warning at 50 %, raised.
    let sla = policy::SlaPolicy {
        default_tier: Tier::Standard,
        targets: vec![policy::TargetRow {
            tier: Tier::Standard,
            priority: Priority::Normal,
            targets: policy::Targets {
                first_response_secs: 2,
                next_response_secs: 0,
                resolution_secs: 3,
            },
        }],
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
        now(),
    )
    .await
    .unwrap();
    let agent_ids: Vec<String> = (0..AGENTS).map(|i| format!("agent-{i}")).collect();
    for id in &agent_ids {
        let registered = log
            .append(
                &ids::agent_id(id),
                &Loaded::<Agent>::default(),
                AgentEvent::Registered {
                    agent_id: id.clone(),
                    profile: Profile {
                        display_name: id.clone(),
                        skills: [("router-x200".to_string(), 3)].into(),
                        capacity: CAPACITY,
                        team: "first-line".into(),
                        tenants: [acme()].into(),
                    },
                },
                &meta(Role::Manager),
                now(),
            )
            .await
            .unwrap();
        log.append(
            &ids::agent_id(id),
            &registered,
            AgentEvent::AvailabilityChanged(Availability::Available),
            &meta(Role::Manager),
            now(),
        )
        .await
        .unwrap();
    }

    let mut routing = start(&nats, &database.url);
    let mut ticket_ids = Vec::new();
    for t in 0..TICKETS {
        let id = Uuid::new_v4();
        log.append(
            &id,
            &Loaded::<Ticket>::default(),
            TicketEvent::Opened(Opening {
                tenant: acme(),
                channel: Channel::Web,
                customer_id: Uuid::new_v4(),
                subject: format!("ticket {t}"),
                body: "b".into(),
                product_area: "router-x200".into(),
                priority: Priority::Normal,
                idempotency_key: format!("k{t}"),
                follow_up_of: None,
            }),
            &meta(Role::CustomerSystem),
            now(),
        )
        .await
        .unwrap();
        ticket_ids.push(id);
        // Kill it twice while it assigns.
        if t == 40 || t == 100 {
            routing.kill().unwrap();
            routing = start(&nats, &database.url);
        }
    }
    // Once more while the timers fire (warnings at 1–1.5 s, breaches at 2–3 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    routing.kill().unwrap();
    let routing = start(&nats, &database.url);

    // Every ticket: four alarms (first response and resolution, warned and
    // breached), two escalations, and assigned or queued. (What a killed process
    // had in hand comes again after the consumers' 30 s ack wait.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut all;
    loop {
        all = tickets(&log, &ticket_ids).await;
        let timed = all
            .iter()
            .filter(|e| {
                count(e, |e| matches!(e, TicketEvent::SlaAlarm { .. })) == 4
                    && count(e, |e| matches!(e, TicketEvent::EscalationRaised { .. })) == 2
            })
            .count();
        let routed = all
            .iter()
            .filter(|e| {
                count(e, |e| {
                    matches!(e, TicketEvent::Assigned(_) | TicketEvent::Queued { .. })
                }) > 0
            })
            .count();
        if timed == TICKETS && routed == TICKETS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{timed} of {TICKETS} tickets have their alarms, {routed} are routed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing doubled on the log.
    let mut holders: BTreeMap<String, usize> = BTreeMap::new();
    for (id, events) in ticket_ids.iter().zip(&all) {
        let assigned = count(events, |e| matches!(e, TicketEvent::Assigned(_)));
        assert!(assigned <= 1, "{id} assigned {assigned} times");
        let mut seen = BTreeSet::new();
        for e in events {
            if let TicketEvent::SlaAlarm {
                clock,
                cycle,
                alarm,
                ..
            } = e
            {
                assert!(seen.insert((*clock, *cycle, *alarm)), "{id}: {e:?} twice");
            }
        }
        let escalations = count(events, |e| {
            matches!(e, TicketEvent::EscalationRaised { .. })
        });
        assert_eq!(escalations, 2, "{id}: one escalation per warning");
        if let Some(TicketEvent::Assigned(a)) = events
            .iter()
            .find(|e| matches!(e, TicketEvent::Assigned(_)))
        {
            *holders.entry(a.agent.clone()).or_default() += 1;
        }
    }
    let total: usize = holders.values().sum();
    assert_eq!(total, AGENTS * CAPACITY as usize, "every seat taken once");
    for id in &agent_ids {
        let agent = log.load::<Agent>(&ids::agent_id(id)).await.unwrap().state;
        assert_eq!(
            agent.load() as usize,
            holders.get(id).copied().unwrap_or_default(),
            "{id}'s load is the tickets they hold"
        );
        assert!(agent.load() <= CAPACITY);
    }
    println!(
        "{TICKETS} tickets, 3 kills: {total} assigned once each, {} queued, {} alarms and {} escalations, none doubled",
        TICKETS - total,
        TICKETS * 4,
        TICKETS * 2
    );
    routing.terminate(Duration::from_secs(20)).unwrap();
}
