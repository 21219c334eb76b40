//! An agent's queue watched live, end to end: the ticket assigned to them and the
//! SLA warning and breach on it arrive as they land; agents watch only their own
//! queue, managers any agent's they see.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontline_domain::Role;
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_proto::v1;
use tonic::Code;

const TENANT: &str = frontline_e2e::TENANT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_assignments_and_sla_alarms_as_they_land() {
    let cluster = Cluster::start().await.unwrap();
    let mut routing = cluster
        .routing_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(v1::SlaPolicy {
                default_tier: v1::Tier::Standard.into(),
                targets: vec![v1::SlaTarget {
                    tier: v1::Tier::Standard.into(),
                    priority: v1::Priority::Normal.into(),
                    first_response_seconds: 2,
                    next_response_seconds: 0,
                    resolution_seconds: 0,
                }],
                warning_percent: 50,
                escalation: v1::Escalation::Raise.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    for id in ["ana", "bo"] {
        routing
            .register_agent(v1::RegisterAgentRequest {
                agent_id: id.into(),
                profile: Some(v1::AgentProfile {
                    display_name: id.into(),
                    skills: vec![v1::Skill {
                        product_area: if id == "ana" {
                            "router-x200"
                        } else {
                            "billing"
                        }
                        .into(),
                        level: 3,
                    }],
                    capacity: 10,
                    team: "first-line".into(),
                    tenants: vec![TENANT.into()],
                }),
            })
            .await
            .unwrap();
    }
    let mut as_ana = cluster
        .routing_as(&caller("ana", Role::Agent, &[TENANT]), None)
        .await
        .unwrap();
    as_ana
        .set_agent_status(v1::SetAgentStatusRequest {
            agent_id: "ana".into(),
            status: v1::AgentStatus::Available.into(),
        })
        .await
        .unwrap();
    let mut updates = as_ana
        .watch_queue(v1::WatchQueueRequest {
            agent_id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // Her manager may watch it too; another agent may not; nobody watches a ghost.
    routing
        .watch_queue(v1::WatchQueueRequest {
            agent_id: "ana".into(),
        })
        .await
        .unwrap();
    let mut as_bo = cluster
        .routing_as(&caller("bo", Role::Agent, &[TENANT]), None)
        .await
        .unwrap();
    let err = as_bo
        .watch_queue(v1::WatchQueueRequest {
            agent_id: "ana".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = routing
        .watch_queue(v1::WatchQueueRequest {
            agent_id: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let ticket = intake
        .submit_ticket(submit_request("queue-1", "queue@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;

    // Nobody answers: assigned, then warned at 1 s, breached at 2 s.
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let update = tokio::time::timeout(Duration::from_secs(20), updates.message())
            .await
            .expect("updates arrive")
            .unwrap()
            .unwrap();
        assert_eq!(update.ticket_id, ticket);
        assert_eq!(update.tenant, TENANT);
        kinds.push(update.kind());
    }
    assert_eq!(
        kinds,
        [
            v1::QueueUpdateKind::Assigned,
            v1::QueueUpdateKind::SlaWarning,
            v1::QueueUpdateKind::SlaBreached
        ]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_tier_customer_gets_a_check_in_from_their_named_agent() {
    let cluster = Cluster::start().await.unwrap();
    let mut routing = cluster
        .routing_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    // Check in a second after a solve (no SLA targets, no auto-close soon).
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(v1::SlaPolicy {
                warning_percent: 80,
                escalation: v1::Escalation::Raise.into(),
                check_in_after_seconds: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    routing
        .register_agent(v1::RegisterAgentRequest {
            agent_id: "ana".into(),
            profile: Some(v1::AgentProfile {
                display_name: "Ana".into(),
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
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut solve_one = async |key: &str, email: &str, extended: bool| {
        let opened = intake
            .submit_ticket(submit_request(key, email))
            .await
            .unwrap()
            .into_inner();
        if extended {
            routing
                .set_customer_tier(v1::SetCustomerTierRequest {
                    customer_id: opened.customer_id.clone(),
                    tier: v1::Tier::Extended.into(),
                    named_agent_id: "ana".into(),
                })
                .await
                .unwrap();
        }
        let mut bo = cluster.conversation("bo", Role::Agent).await.unwrap();
        bo.solve(v1::SolveRequest {
            ticket_id: opened.ticket_id.clone(),
            resolution: "Done.".into(),
            expected_version: None,
        })
        .await
        .unwrap();
        opened.ticket_id
    };
    let mut as_ana = cluster
        .routing_as(&caller("ana", Role::Agent, &[TENANT]), None)
        .await
        .unwrap();
    let mut updates = as_ana
        .watch_queue(v1::WatchQueueRequest {
            agent_id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let standard = solve_one("check-std", "std@example.com", false).await;
    let extended = solve_one("check-ext", "ext@example.com", true).await;

    let update = tokio::time::timeout(Duration::from_secs(20), updates.message())
        .await
        .expect("a check-in arrives")
        .unwrap()
        .unwrap();
    assert_eq!(update.kind(), v1::QueueUpdateKind::CheckInDue);
    assert_eq!(update.ticket_id, extended);
    // Once, and none for the standard-tier customer.
    cluster.routing_settled().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (ticket, expected) in [(&extended, 1), (&standard, 0)] {
        let id = ticket.parse().unwrap();
        let events = cluster
            .log
            .read::<frontline_domain::Ticket>(&id, None)
            .await
            .unwrap();
        let due = events
            .iter()
            .filter(|e| {
                matches!(
                    e.event,
                    Some(frontline_domain::TicketEvent::CheckInDue { .. })
                )
            })
            .count();
        assert_eq!(due, expected, "{ticket}");
    }
    cluster.shutdown().await;
}
