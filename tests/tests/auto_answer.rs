//! The basic tier's automated first answer, end to end: a new basic-tier ticket of
//! a product area with an answer rule is answered by the system, owes no agent, and
//! is no first response for the SLA; the customer asking for a person puts it in
//! the queue at once with raised priority. Other tiers go straight to a person.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontline_domain::{Role, Ticket, TicketEvent};
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_proto::v1;
use tonic::Code;
use uuid::Uuid;

const TENANT: &str = frontline_e2e::TENANT;

async fn events_until(
    cluster: &Cluster,
    id: &str,
    what: &str,
    done: impl Fn(&[TicketEvent]) -> bool,
) -> Vec<TicketEvent> {
    let id: Uuid = id.parse().unwrap();
    for _ in 0..100 {
        let events: Vec<TicketEvent> = cluster
            .log
            .read::<Ticket>(&id, None)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| e.event)
            .collect();
        if done(&events) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_tier_gets_an_automated_answer_and_a_person_on_request() {
    let cluster = Cluster::start().await.unwrap();
    let manager = caller("max", Role::Manager, &[TENANT]);
    let mut routing = cluster.routing_as(&manager, None).await.unwrap();
    // Everyone is basic unless put elsewhere; the first response is due in an hour.
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(v1::SlaPolicy {
                default_tier: v1::Tier::Basic.into(),
                targets: vec![v1::SlaTarget {
                    tier: v1::Tier::Basic.into(),
                    priority: v1::Priority::Normal.into(),
                    first_response_seconds: 3_600,
                    next_response_seconds: 0,
                    resolution_seconds: 0,
                }],
                warning_percent: 80,
                escalation: v1::Escalation::Raise.into(),
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
    routing
        .set_agent_status(v1::SetAgentStatusRequest {
            agent_id: "ana".into(),
            status: v1::AgentStatus::Available.into(),
        })
        .await
        .unwrap();
    let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
    root.put_macro(v1::PutMacroRequest {
        r#macro: Some(v1::Macro {
            name: "router-first-aid".into(),
            body: "Most reboots stop after a firmware update: Settings → Update. \
                   Not solved? Ask for a person and one takes over."
                .into(),
            status_change: 0,
        }),
    })
    .await
    .unwrap();
    root.put_answer_rule(v1::PutAnswerRuleRequest {
        rule: Some(v1::AnswerRule {
            product_area: "router-x200".into(),
            macro_name: "router-first-aid".into(),
        }),
    })
    .await
    .unwrap();

    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let ticket = intake
        .submit_ticket(submit_request("basic-1", "basic@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;

    // Answered by the system; no agent; the first-response clock still runs.
    let events = events_until(&cluster, &ticket, "automated answer", |e| {
        e.iter()
            .any(|e| matches!(e, TicketEvent::AutoAnswered { .. }))
    })
    .await;
    cluster.routing_settled().await.unwrap();
    assert!(!events.iter().any(|e| matches!(e, TicketEvent::Assigned(_))));
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let shown = shop
        .get_ticket(v1::GetTicketRequest {
            ticket_id: ticket.clone(),
            as_of_version: None,
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(shown.status(), v1::TicketStatus::Pending);
    let answer = shown.messages.last().unwrap();
    assert_eq!(answer.kind(), v1::MessageKind::Automated);
    assert!(answer.body.contains("Ask for a person"));
    let clocks = routing
        .get_ticket_routing(v1::GetTicketRoutingRequest {
            ticket_id: ticket.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .routing
        .unwrap()
        .clocks;
    let first = clocks
        .iter()
        .find(|c| c.kind() == v1::SlaClockKind::FirstResponse)
        .unwrap();
    assert_eq!(first.state(), v1::SlaClockState::Running, "{first:?}");

    // The customer asks for a person: queued at once, one priority higher, Ana.
    let asked = shop
        .request_human(v1::RequestHumanRequest {
            ticket_id: ticket.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(asked.change.unwrap().status(), v1::TicketStatus::Open);
    let events = events_until(&cluster, &ticket, "assigned after asking", |e| {
        e.iter().any(|e| matches!(e, TicketEvent::Assigned(_)))
    })
    .await;
    assert!(events.iter().any(|e| matches!(
        e,
        TicketEvent::HumanRequested {
            priority: frontline_domain::Priority::High
        }
    )));
    // Asking again records nothing.
    let again = shop
        .request_human(v1::RequestHumanRequest {
            ticket_id: ticket.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.change.unwrap().recorded);

    // A standard-tier customer goes straight to a person.
    let other = intake
        .submit_ticket(submit_request("standard-1", "standard@example.com"))
        .await
        .unwrap()
        .into_inner();
    routing
        .set_customer_tier(v1::SetCustomerTierRequest {
            customer_id: other.customer_id.clone(),
            tier: v1::Tier::Standard.into(),
            named_agent_id: String::new(),
        })
        .await
        .unwrap();
    let next = intake
        .submit_ticket(submit_request("standard-2", "standard@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let events = events_until(&cluster, &next, "a standard ticket assigned", |e| {
        e.iter().any(|e| matches!(e, TicketEvent::Assigned(_)))
    })
    .await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, TicketEvent::AutoAnswered { .. }))
    );
    // A ticket that was never answered automatically has nobody to ask for.
    let err = shop
        .request_human(v1::RequestHumanRequest { ticket_id: next })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    cluster.shutdown().await;
}
