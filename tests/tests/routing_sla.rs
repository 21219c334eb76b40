//! SLA clocks end to end: a tenant's policy, timers on NATS message schedules,
//! warnings and breaches recorded after their moment (read back from the log),
//! pending time not counted, warnings escalated, time budgets flagged.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontline_domain::{Role, Ticket, TicketEvent, sla::clocks::Alarm};
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_eventlog::LoggedEvent;
use frontline_proto::v1;
use uuid::Uuid;

const TENANT: &str = frontline_e2e::TENANT;

fn manager() -> frontline_domain::Caller {
    caller("max", Role::Manager, &[TENANT])
}

/// Standard/normal tickets: first response `first` s, resolution `resolution` s,
/// warning at 50 %, a one-minute time budget for standard tickets.
fn policy(first: u32, resolution: u32, escalation: v1::Escalation) -> v1::SlaPolicy {
    v1::SlaPolicy {
        default_tier: v1::Tier::Standard.into(),
        targets: vec![v1::SlaTarget {
            tier: v1::Tier::Standard.into(),
            priority: v1::Priority::Normal.into(),
            first_response_seconds: first,
            next_response_seconds: 0,
            resolution_seconds: resolution,
        }],
        calendar: None,
        warning_percent: 50,
        time_budget_minutes: vec![0, 1, 0],
        escalation: escalation.into(),
        auto_close_after_seconds: 0,
        check_in_after_seconds: 0,
    }
}

async fn put_policy(cluster: &Cluster, policy: v1::SlaPolicy) {
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(policy),
        })
        .await
        .unwrap();
}

async fn agent_online(cluster: &Cluster, id: &str) {
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .register_agent(v1::RegisterAgentRequest {
            agent_id: id.into(),
            profile: Some(v1::AgentProfile {
                display_name: id.into(),
                skills: vec![v1::Skill {
                    product_area: "router-x200".into(),
                    level: 3,
                }],
                capacity: 10,
                team: "first-line".into(),
                tenants: vec![TENANT.into()],
            }),
        })
        .await
        .unwrap();
    routing
        .set_agent_status(v1::SetAgentStatusRequest {
            agent_id: id.into(),
            status: v1::AgentStatus::Available.into(),
        })
        .await
        .unwrap();
}

async fn submit(cluster: &Cluster, key: &str) -> Uuid {
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let answer = intake
        .submit_ticket(submit_request(key, &format!("{key}@example.com")))
        .await
        .unwrap()
        .into_inner();
    answer.ticket_id.parse().unwrap()
}

async fn events(cluster: &Cluster, id: Uuid) -> Vec<LoggedEvent<TicketEvent>> {
    cluster.log.read::<Ticket>(&id, None).await.unwrap()
}

/// Waits (up to 20 s) until the ticket's events satisfy `check`.
async fn until(
    cluster: &Cluster,
    id: Uuid,
    what: &str,
    check: impl Fn(&[LoggedEvent<TicketEvent>]) -> bool,
) -> Vec<LoggedEvent<TicketEvent>> {
    for _ in 0..200 {
        let events = events(cluster, id).await;
        if check(&events) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let types: Vec<String> = events(cluster, id)
        .await
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    panic!("{id}: {what}: {types:?}");
}

fn alarms(events: &[LoggedEvent<TicketEvent>]) -> Vec<(String, Alarm, i64, i64)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Some(TicketEvent::SlaAlarm {
                clock,
                alarm,
                due_at,
                ..
            }) => Some((clock.as_str().to_string(), *alarm, *due_at, e.at)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_lands_after_its_due_time_once_and_the_warning_is_raised() {
    let cluster = Cluster::start().await.unwrap();
    put_policy(&cluster, policy(2, 600, v1::Escalation::Raise)).await;
    let id = submit(&cluster, "late").await;

    // Nobody answers: the first-response clock warns at 1 s and breaches at 2 s.
    let events = until(&cluster, id, "first response breached", |e| {
        alarms(e)
            .iter()
            .any(|(c, a, ..)| c == "first_response" && *a == Alarm::Breach)
    })
    .await;
    let opened_at = events[0].at;
    let recorded = alarms(&events);
    let first: Vec<_> = recorded
        .iter()
        .filter(|(c, ..)| c == "first_response")
        .collect();
    assert_eq!(
        first.len(),
        2,
        "a warning and a breach, once each: {recorded:?}"
    );
    let (_, warning, due_at, warned_at) = first[0];
    let (_, breach, _, breached_at) = first[1];
    assert_eq!((*warning, *breach), (Alarm::Warning, Alarm::Breach));
    assert_eq!(*due_at, opened_at + 2_000);
    assert!(
        *warned_at >= opened_at + 1_000,
        "warned before the warning point"
    );
    assert!(*breached_at >= *due_at, "breached before due");
    println!(
        "first response: warned {} ms after its point, breached {} ms after due",
        warned_at - (opened_at + 1_000),
        breached_at - due_at
    );
    // The warning was raised to the team's manager (nobody else to hand it to).
    let raised = events.iter().find_map(|e| match &e.event {
        Some(TicketEvent::EscalationRaised {
            reason,
            reassign_to,
            ..
        }) => Some((reason.clone(), reassign_to.clone())),
        _ => None,
    });
    let (reason, to) = raised.unwrap();
    assert!(reason.contains("raised to the team's manager"), "{reason}");
    assert!(to.is_empty());

    // The routing view shows it.
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    let view = routing
        .get_ticket_routing(v1::GetTicketRoutingRequest {
            ticket_id: id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .routing
        .unwrap();
    let clock = view
        .clocks
        .iter()
        .find(|c| c.kind() == v1::SlaClockKind::FirstResponse)
        .unwrap();
    assert_eq!(clock.state(), v1::SlaClockState::Breached);
    assert!(clock.breached && clock.warned && clock.left_ms < 0);
    let resolution = view
        .clocks
        .iter()
        .find(|c| c.kind() == v1::SlaClockKind::Resolution)
        .unwrap();
    assert_eq!(resolution.state(), v1::SlaClockState::Running);

    // Logged time past the budget (1 minute) is flagged once.
    let agent = caller("ana", Role::Agent, &[TENANT]);
    let mut as_agent = cluster.routing_as(&agent, None).await.unwrap();
    let logged = as_agent
        .log_time(v1::LogTimeRequest {
            ticket_id: id.to_string(),
            minutes: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((logged.minutes_logged, logged.budget_minutes), (2, 1));
    assert!(logged.budget_exceeded);
    as_agent
        .log_time(v1::LogTimeRequest {
            ticket_id: id.to_string(),
            minutes: 3,
        })
        .await
        .unwrap();
    let events = until(&cluster, id, "budget flagged", |e| {
        e.iter()
            .any(|e| matches!(e.event, Some(TicketEvent::TimeBudgetExceeded { .. })))
    })
    .await;
    cluster.routing_settled().await.unwrap();
    let flagged = events
        .iter()
        .filter(|e| matches!(e.event, Some(TicketEvent::TimeBudgetExceeded { .. })))
        .count();
    assert_eq!(flagged, 1);
    let e = as_agent
        .log_time(v1::LogTimeRequest {
            ticket_id: id.to_string(),
            minutes: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_moves_the_due_time_by_exactly_the_pending_time() {
    let cluster = Cluster::start().await.unwrap();
    put_policy(&cluster, policy(600, 3600, v1::Escalation::Raise)).await;
    let id = submit(&cluster, "pending").await;
    let agent_id = "ana";
    let mut conversation = cluster.conversation(agent_id, Role::Agent).await.unwrap();
    conversation
        .reply(v1::ReplyRequest {
            ticket_id: id.to_string(),
            body: "Could you send the serial number?".into(),
            awaiting_customer: true,
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut again = submit_request("pending-2", "pending@example.com");
    again.continue_ticket_id = id.to_string();
    again.body = "SN-1234".into();
    intake.submit_ticket(again).await.unwrap();

    let events = events(&cluster, id).await;
    let at = |kind: &str| {
        events
            .iter()
            .find(|e| e.event_type.ends_with(kind))
            .unwrap()
            .at
    };
    let (opened, paused, resumed) = (
        at("TicketOpened"),
        at("AgentReplied"),
        at("CustomerMessageAdded"),
    );
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    let view = routing
        .get_ticket_routing(v1::GetTicketRoutingRequest {
            ticket_id: id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .routing
        .unwrap();
    let resolution = view
        .clocks
        .iter()
        .find(|c| c.kind() == v1::SlaClockKind::Resolution)
        .unwrap();
    let due = frontline_proto::convert::millis(resolution.due_at.as_ref().unwrap());
    assert_eq!(due, opened + 3_600_000 + (resumed - paused));
    let first = view
        .clocks
        .iter()
        .find(|c| c.kind() == v1::SlaClockKind::FirstResponse)
        .unwrap();
    assert_eq!(first.state(), v1::SlaClockState::Met);

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_hands_the_ticket_to_another_available_agent() {
    let cluster = Cluster::start().await.unwrap();
    agent_online(&cluster, "ana").await;
    put_policy(&cluster, policy(3, 600, v1::Escalation::Reassign)).await;
    let id = submit(&cluster, "slow").await;
    until(&cluster, id, "assigned to ana", |e| {
        e.iter()
            .any(|e| matches!(&e.event, Some(TicketEvent::Assigned(a)) if a.agent == "ana"))
    })
    .await;
    agent_online(&cluster, "bo").await;
    let events = until(&cluster, id, "handed to bo", |e| {
        e.iter()
            .any(|e| matches!(&e.event, Some(TicketEvent::Assigned(a)) if a.agent == "bo"))
    })
    .await;
    let handed = events
        .iter()
        .find_map(|e| match &e.event {
            Some(TicketEvent::Assigned(a)) if a.agent == "bo" => Some(a.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(handed.rule, frontline_domain::assignment::Rule::Escalated);
    assert!(
        handed.reason.contains("handed from ana to bo"),
        "{}",
        handed.reason
    );
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    for (agent, load) in [("ana", 0), ("bo", 1)] {
        let got = routing
            .get_agent(v1::GetAgentRequest {
                agent_id: agent.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .agent
            .unwrap()
            .load;
        assert_eq!(got, load, "{agent}'s load");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tier_moves_the_timers_of_open_tickets() {
    let cluster = Cluster::start().await.unwrap();
    // Standard customers: 10 minutes to a first response; extended: 2 seconds.
    let mut sla = policy(600, 3600, v1::Escalation::Raise);
    sla.targets.push(v1::SlaTarget {
        tier: v1::Tier::Extended.into(),
        priority: v1::Priority::Normal.into(),
        first_response_seconds: 2,
        next_response_seconds: 0,
        resolution_seconds: 3600,
    });
    put_policy(&cluster, sla).await;
    let id = submit(&cluster, "upgraded").await;
    let customer = cluster
        .log
        .load::<Ticket>(&id)
        .await
        .unwrap()
        .state
        .customer_id;
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .set_customer_tier(v1::SetCustomerTierRequest {
            customer_id: customer.to_string(),
            tier: v1::Tier::Extended.into(),
            named_agent_id: String::new(),
        })
        .await
        .unwrap();
    // Nothing else happens on the ticket: only the moved timer can breach it.
    let events = until(&cluster, id, "breached under the extended target", |e| {
        alarms(e)
            .iter()
            .any(|(c, a, ..)| c == "first_response" && *a == Alarm::Breach)
    })
    .await;
    let opened_at = events[0].at;
    let breach = alarms(&events)
        .into_iter()
        .find(|(_, a, ..)| *a == Alarm::Breach)
        .unwrap();
    assert_eq!(breach.2, opened_at + 2_000, "due under the extended target");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policies_and_logged_time_are_refused_naming_the_field() {
    let cluster = Cluster::start().await.unwrap();
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    let good = policy(60, 600, v1::Escalation::Raise);
    let mut cases: Vec<(v1::SlaPolicy, &str)> = Vec::new();
    let mut p = good.clone();
    p.warning_percent = 100;
    cases.push((p, "policy.warning_percent"));
    let mut p = good.clone();
    p.targets[0].tier = v1::Tier::Unspecified.into();
    cases.push((p, "policy.targets[0].tier"));
    let mut p = good.clone();
    p.targets.push(p.targets[0]);
    cases.push((p, "policy.targets[1]"));
    let mut p = good.clone();
    p.escalation = v1::Escalation::Unspecified.into();
    cases.push((p, "policy.escalation"));
    let mut p = good.clone();
    p.time_budget_minutes = vec![1, 2];
    cases.push((p, "policy.time_budget_minutes"));
    let mut p = good.clone();
    p.calendar = Some(v1::BusinessCalendar {
        time_zone: "Europe/Berlin".into(),
        weekly: vec![v1::OpenHours::default(); 6],
        holidays: vec![],
    });
    cases.push((p, "policy.calendar.weekly"));
    let mut p = good.clone();
    p.calendar = Some(v1::BusinessCalendar {
        time_zone: "Mars/Olympus".into(),
        weekly: vec![
            v1::OpenHours {
                from_minute: 540,
                to_minute: 1020,
            };
            7
        ],
        holidays: vec![],
    });
    cases.push((p, "policy.calendar.time_zone"));
    for (policy, field) in cases {
        let e = routing
            .put_sla_policy(v1::PutSlaPolicyRequest {
                policy: Some(policy),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), frontline_e2e::violated_field(&e).as_deref()),
            (tonic::Code::InvalidArgument, Some(field))
        );
    }
    let e = routing
        .put_sla_policy(v1::PutSlaPolicyRequest { policy: None })
        .await
        .unwrap_err();
    assert_eq!(frontline_e2e::violated_field(&e).as_deref(), Some("policy"));
    // Nothing was put.
    let got = routing
        .get_sla_policy(v1::GetSlaPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.policy, got.version), (None, 0));

    // Logged time: a bad id, an unknown ticket.
    let agent = caller("ana", Role::Agent, &[TENANT]);
    let mut as_agent = cluster.routing_as(&agent, None).await.unwrap();
    let e = as_agent
        .log_time(v1::LogTimeRequest {
            ticket_id: "nope".into(),
            minutes: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(
        frontline_e2e::violated_field(&e).as_deref(),
        Some("ticket_id")
    );
    let e = as_agent
        .log_time(v1::LogTimeRequest {
            ticket_id: Uuid::now_v7().to_string(),
            minutes: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    cluster.shutdown().await;
}
