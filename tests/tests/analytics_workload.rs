//! A realistic mixed workload through the real services — 2 100 tickets in three
//! tenants, every kind of ticket event (replies, notes, customer messages, solves,
//! reopens, assignments, queueing, logged time, SLA warnings, breaches and
//! escalations), tiers, a forgotten customer — then analytics' metrics compared
//! with figures computed here, independently, from the events read back from the
//! log.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, time::Duration};

use frontline_domain::{Caller, Role, Ticket, TicketEvent, sla::clocks::Alarm};
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_proto::v1;
use futures::{StreamExt as _, stream};
use uuid::Uuid;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const PER_TENANT: usize = 700;
const IN_FLIGHT: usize = 16;

fn manager(tenant: &str) -> Caller {
    caller("max", Role::Manager, &[tenant])
}

/// One ticket as the test made it.
#[derive(Clone, Debug)]
struct Made {
    tenant: &'static str,
    ticket: String,
    customer: String,
    email: String,
    channel: v1::Channel,
    extended: bool,
}

/// A ticket's figures, computed from its events (not from any read model).
#[derive(Debug, Default)]
struct Figures {
    status: &'static str,
    opened: i64,
    first_reply: Option<i64>,
    solved: Option<i64>,
    ever_solved: bool,
    reopens: u32,
    minutes: u64,
    breached: bool,
}

fn figures(events: &[frontline_eventlog::LoggedEvent<TicketEvent>]) -> Figures {
    let mut f = Figures::default();
    for e in events {
        let Some(event) = &e.event else { continue };
        match event {
            TicketEvent::Opened(_) => {
                f.status = "new";
                f.opened = e.at;
            }
            TicketEvent::AgentReplied {
                awaiting_customer, ..
            } => {
                f.first_reply.get_or_insert(e.at);
                f.status = if *awaiting_customer {
                    "pending"
                } else {
                    "open"
                };
            }
            TicketEvent::CustomerMessageAdded { reopened, .. } => {
                if *reopened {
                    f.reopens += 1;
                    f.solved = None;
                    f.status = "open";
                } else if f.status == "pending" {
                    f.status = "open";
                }
            }
            TicketEvent::Solved { .. } => {
                f.status = "solved";
                f.solved = Some(e.at);
                f.ever_solved = true;
            }
            TicketEvent::Reopened { .. } => {
                f.reopens += 1;
                f.solved = None;
                f.status = "open";
            }
            TicketEvent::TimeLogged { minutes } => f.minutes += u64::from(*minutes),
            TicketEvent::SlaAlarm {
                alarm: Alarm::Breach,
                ..
            } => f.breached = true,
            _ => {}
        }
    }
    f
}

/// PostgreSQL's `percentile_cont`: linear interpolation between the closest ranks.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = p * (values.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    values[low] + (values[high] - values[low]) * (rank - low as f64)
}

fn expected(tickets: &[&Figures]) -> v1::Metrics {
    let n = tickets.len() as u64;
    let solved = tickets.iter().filter(|f| f.status == "solved").count() as u64;
    let mut frt: Vec<f64> = tickets
        .iter()
        .filter_map(|f| Some((f.first_reply? - f.opened) as f64 / 1000.0))
        .collect();
    let mut res: Vec<f64> = tickets
        .iter()
        .filter_map(|f| Some((f.solved? - f.opened) as f64 / 1000.0))
        .collect();
    let breached = tickets.iter().filter(|f| f.breached).count() as u64;
    let ever = tickets.iter().filter(|f| f.ever_solved).count();
    let reopened = tickets
        .iter()
        .filter(|f| f.ever_solved && f.reopens > 0)
        .count();
    v1::Metrics {
        tickets: n,
        solved,
        backlog: n - solved,
        first_response: Some(v1::DurationStats {
            count: frt.len() as u64,
            p50_seconds: percentile(&mut frt, 0.5),
            p90_seconds: percentile(&mut frt, 0.9),
        }),
        resolution: Some(v1::DurationStats {
            count: res.len() as u64,
            p50_seconds: percentile(&mut res, 0.5),
            p90_seconds: percentile(&mut res, 0.9),
        }),
        breached,
        sla_attainment_percent: if n == 0 {
            0.0
        } else {
            100.0 * (n - breached) as f64 / n as f64
        },
        reopen_rate_percent: if ever == 0 {
            0.0
        } else {
            100.0 * reopened as f64 / ever as f64
        },
        minutes_logged: tickets.iter().map(|f| f.minutes).sum(),
        ..Default::default()
    }
}

fn assert_same(actual: &v1::Metrics, expected: &v1::Metrics, what: &str) {
    let close = |a: f64, b: f64| (a - b).abs() < 0.001;
    assert_eq!(
        (
            actual.tickets,
            actual.solved,
            actual.backlog,
            actual.breached,
            actual.minutes_logged
        ),
        (
            expected.tickets,
            expected.solved,
            expected.backlog,
            expected.breached,
            expected.minutes_logged
        ),
        "{what}: tickets, solved, backlog, breached, minutes"
    );
    for (a, e, name) in [
        (
            actual.first_response,
            expected.first_response,
            "first response",
        ),
        (actual.resolution, expected.resolution, "resolution"),
    ] {
        let (a, e) = (a.unwrap(), e.unwrap());
        assert_eq!(a.count, e.count, "{what}: {name} count");
        assert!(
            close(a.p50_seconds, e.p50_seconds) && close(a.p90_seconds, e.p90_seconds),
            "{what}: {name}: {a:?} != {e:?}"
        );
    }
    assert!(
        close(
            actual.sla_attainment_percent,
            expected.sla_attainment_percent
        ),
        "{what}: attainment"
    );
    assert!(
        close(actual.reopen_rate_percent, expected.reopen_rate_percent),
        "{what}: reopen rate {} != {}",
        actual.reopen_rate_percent,
        expected.reopen_rate_percent
    );
}

fn sla_policy() -> v1::SlaPolicy {
    v1::SlaPolicy {
        default_tier: v1::Tier::Standard.into(),
        targets: [v1::Tier::Standard, v1::Tier::Extended]
            .map(|tier| v1::SlaTarget {
                tier: tier.into(),
                priority: v1::Priority::Normal.into(),
                first_response_seconds: 2,
                next_response_seconds: 0,
                resolution_seconds: 0,
            })
            .to_vec(),
        calendar: None,
        warning_percent: 50,
        time_budget_minutes: Vec::new(),
        escalation: v1::Escalation::Raise.into(),
        auto_close_after_seconds: 0,
        check_in_after_seconds: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_workload_measures_exactly_as_its_events_say() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();

    // Two agents for every tenant (billing only: router tickets wait in the queue),
    // and an SLA policy in acme (unanswered tickets warn, breach and escalate).
    let all = caller("max", Role::Manager, &TENANTS);
    let mut routing = cluster.routing_as(&all, Some("acme")).await.unwrap();
    for agent in ["ana", "bob"] {
        routing
            .register_agent(v1::RegisterAgentRequest {
                agent_id: agent.into(),
                profile: Some(v1::AgentProfile {
                    display_name: agent.into(),
                    skills: vec![v1::Skill {
                        product_area: "billing".into(),
                        level: 3,
                    }],
                    capacity: 1_000,
                    team: "first-line".into(),
                    tenants: TENANTS.map(String::from).to_vec(),
                }),
            })
            .await
            .unwrap();
        routing
            .set_agent_status(v1::SetAgentStatusRequest {
                agent_id: agent.into(),
                status: v1::AgentStatus::Available.into(),
            })
            .await
            .unwrap();
    }
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(sla_policy()),
        })
        .await
        .unwrap();

    // Every ticket, from a customer of its own.
    let channels = [
        v1::Channel::Email,
        v1::Channel::Chat,
        v1::Channel::Web,
        v1::Channel::Phone,
        v1::Channel::Api,
    ];
    let plan: Vec<(&'static str, usize)> = TENANTS
        .iter()
        .flat_map(|t| (0..PER_TENANT).map(move |i| (*t, i)))
        .collect();
    let started = std::time::Instant::now();
    let made: Vec<Made> = stream::iter(plan)
        .map(|(tenant, i)| {
            let cluster = &cluster;
            async move {
                let shop = caller("web-shop", Role::CustomerSystem, &[tenant]);
                let mut intake = cluster.intake_as(&shop, None).await.unwrap();
                let key = format!("{tenant}-{i}");
                let email = format!("{key}@example.com");
                let mut request = submit_request(&key, &email);
                let channel = channels[i % channels.len()];
                request.channel = channel.into();
                request.product_area = if i % 20 == 3 { "router" } else { "billing" }.into();
                request.subject = format!("Workload {key}");
                let answer = intake.submit_ticket(request).await.unwrap().into_inner();
                Made {
                    tenant,
                    ticket: answer.ticket_id,
                    customer: answer.customer_id,
                    email,
                    channel,
                    extended: i % 10 == 0,
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;

    eprintln!(
        "{} tickets submitted in {:?}",
        made.len(),
        started.elapsed()
    );
    // Tiers, then the ticket work: replies, notes, solves, reopens, customer
    // messages, logged time.
    stream::iter(made.iter().enumerate())
        .for_each_concurrent(IN_FLIGHT, |(i, m)| {
            let cluster = &cluster;
            async move {
                let agent = caller("ana", Role::Agent, &[m.tenant]);
                let mut conversation = cluster.conversation_as(&agent, None).await.unwrap();
                let mut routing = cluster.routing_as(&manager(m.tenant), None).await.unwrap();
                if m.extended {
                    routing
                        .set_customer_tier(v1::SetCustomerTierRequest {
                            customer_id: m.customer.clone(),
                            tier: v1::Tier::Extended.into(),
                            named_agent_id: String::new(),
                        })
                        .await
                        .unwrap();
                }
                let reply = |awaiting_customer| v1::ReplyRequest {
                    ticket_id: m.ticket.clone(),
                    body: "On it.".into(),
                    awaiting_customer,
                    ..Default::default()
                };
                let solve = v1::SolveRequest {
                    ticket_id: m.ticket.clone(),
                    resolution: "Done.".into(),
                    ..Default::default()
                };
                match i % 7 {
                    0 => {} // never answered: in acme it breaches
                    1 => {
                        conversation.reply(reply(false)).await.unwrap();
                    }
                    2 => {
                        conversation.reply(reply(false)).await.unwrap();
                        conversation.solve(solve).await.unwrap();
                    }
                    3 => {
                        conversation.solve(solve).await.unwrap();
                        conversation
                            .reopen(v1::ReopenRequest {
                                ticket_id: m.ticket.clone(),
                                reason: "Not yet.".into(),
                                ..Default::default()
                            })
                            .await
                            .unwrap();
                    }
                    4 => {
                        conversation
                            .add_note(v1::AddNoteRequest {
                                ticket_id: m.ticket.clone(),
                                body: "Internal.".into(),
                                ..Default::default()
                            })
                            .await
                            .unwrap();
                        let mut as_agent = cluster.routing_as(&agent, None).await.unwrap();
                        as_agent
                            .log_time(v1::LogTimeRequest {
                                ticket_id: m.ticket.clone(),
                                minutes: 7,
                            })
                            .await
                            .unwrap();
                    }
                    5 => {
                        conversation.reply(reply(true)).await.unwrap();
                        let shop = caller("web-shop", Role::CustomerSystem, &[m.tenant]);
                        let mut intake = cluster.intake_as(&shop, None).await.unwrap();
                        let mut more = submit_request(&format!("more-{}", m.ticket), &m.email);
                        more.continue_ticket_id = m.ticket.clone();
                        intake.submit_ticket(more).await.unwrap();
                    }
                    _ => {
                        conversation.reply(reply(false)).await.unwrap();
                        conversation.solve(solve).await.unwrap();
                        let shop = caller("web-shop", Role::CustomerSystem, &[m.tenant]);
                        let mut intake = cluster.intake_as(&shop, None).await.unwrap();
                        let mut again = submit_request(&format!("again-{}", m.ticket), &m.email);
                        again.continue_ticket_id = m.ticket.clone();
                        intake.submit_ticket(again).await.unwrap();
                    }
                }
            }
        })
        .await;
    // A forgotten customer stays counted (their figures are not personal).
    let mut intake = cluster
        .intake_as(&caller("root", Role::Admin, &["initech"]), None)
        .await
        .unwrap();
    let forgotten = made.iter().find(|m| m.tenant == "initech").unwrap();
    intake
        .forget_customer(v1::ForgetCustomerRequest {
            customer_id: forgotten.customer.clone(),
            reason: "erasure request 11".into(),
        })
        .await
        .unwrap();

    // Unanswered acme tickets pass their 2 s first-response target.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let started = std::time::Instant::now();
    cluster
        .routing_settled_within(Duration::from_secs(240))
        .await
        .unwrap();
    eprintln!("routing settled in {:?}", started.elapsed());
    cluster.analytics_settled().await.unwrap();

    // The figures, from the log itself.
    let mut computed: BTreeMap<String, Figures> = BTreeMap::new();
    for m in &made {
        let id = Uuid::parse_str(&m.ticket).unwrap();
        let events = cluster.log.read::<Ticket>(&id, None).await.unwrap();
        computed.insert(m.ticket.clone(), figures(&events));
    }
    let breaches = computed.values().filter(|f| f.breached).count();
    assert!(
        breaches > 50,
        "acme's unanswered tickets breached ({breaches})"
    );

    for tenant in TENANTS {
        let mine: Vec<&Made> = made.iter().filter(|m| m.tenant == tenant).collect();
        let of = |keep: &dyn Fn(&Made) -> bool| -> Vec<&Figures> {
            mine.iter()
                .filter(|m| keep(m))
                .map(|m| &computed[&m.ticket])
                .collect()
        };
        let mut analytics = cluster.analytics_as(&manager(tenant), None).await.unwrap();
        let by = |group_by: v1::MetricsGroupBy| v1::GetMetricsRequest {
            group_by: group_by.into(),
            ..Default::default()
        };
        let channel = analytics
            .get_metrics(by(v1::MetricsGroupBy::Channel))
            .await
            .unwrap()
            .into_inner();
        assert_same(
            channel.total.as_ref().unwrap(),
            &expected(&of(&|_| true)),
            &format!("{tenant} total"),
        );
        for group in &channel.groups {
            let wanted = channels
                .iter()
                .find(|c| {
                    c.as_str_name()
                        .strip_prefix("CHANNEL_")
                        .unwrap()
                        .to_lowercase()
                        == group.key
                })
                .copied()
                .unwrap();
            assert_same(
                group.metrics.as_ref().unwrap(),
                &expected(&of(&|m| m.channel == wanted)),
                &format!("{tenant} {}", group.key),
            );
        }
        assert_eq!(channel.groups.len(), channels.len());
        let tier = analytics
            .get_metrics(by(v1::MetricsGroupBy::Tier))
            .await
            .unwrap()
            .into_inner();
        let groups: BTreeMap<_, _> = tier
            .groups
            .iter()
            .map(|g| (g.key.as_str(), g.metrics.clone().unwrap()))
            .collect();
        assert_same(
            &groups["extended"],
            &expected(&of(&|m| m.extended)),
            &format!("{tenant} extended"),
        );
        assert_same(
            &groups["standard"],
            &expected(&of(&|m| !m.extended)),
            &format!("{tenant} standard"),
        );
    }
}
