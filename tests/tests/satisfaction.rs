//! What customers think, end to end: CSAT after each solve (a later answer of the
//! same solve replaces it; 1–2 raises a follow-up for the handling agent's team
//! manager), NPS on the person with the standard bands, product feedback on its own
//! subject — and analytics counting all of it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontline_domain::{Role, Ticket, TicketEvent, feedback::ProductFeedback};
use frontline_e2e::{Cluster, caller, submit_request, violated_field};
use frontline_proto::v1;
use tonic::Code;
use uuid::Uuid;

const TENANT: &str = frontline_e2e::TENANT;

async fn submit(cluster: &Cluster, key: &str) -> (String, String) {
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let answer = intake
        .submit_ticket(submit_request(key, &format!("{key}@example.com")))
        .await
        .unwrap()
        .into_inner();
    (answer.ticket_id, answer.customer_id)
}

async fn solve(cluster: &Cluster, ticket: &str) {
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    ana.solve(v1::SolveRequest {
        ticket_id: ticket.into(),
        resolution: "Firmware 2.1.".into(),
        expected_version: None,
    })
    .await
    .unwrap();
}

fn rate(ticket: &str, score: u32, comment: &str) -> v1::RateSatisfactionRequest {
    v1::RateSatisfactionRequest {
        ticket_id: ticket.into(),
        score,
        comment: comment.into(),
        expected_version: None,
    }
}

fn nps(customer: &str, score: u32) -> v1::RecordNpsRequest {
    v1::RecordNpsRequest {
        customer_id: customer.into(),
        score,
        comment: String::new(),
    }
}

async fn shown(cluster: &Cluster, ticket: &str) -> v1::Ticket {
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    shop.get_ticket(v1::GetTicketRequest {
        ticket_id: ticket.into(),
        as_of_version: None,
        as_of_time: None,
    })
    .await
    .unwrap()
    .into_inner()
    .ticket
    .unwrap()
}

async fn agent_online(cluster: &Cluster, id: &str) {
    let mut routing = cluster
        .routing_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csat_per_solve_and_a_low_one_raises_a_follow_up() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    agent_online(&cluster, "ana").await;
    let (ticket, _) = submit(&cluster, "csat").await;
    cluster.routing_settled().await.unwrap();
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();

    // Not before a solve, not by an agent, and only 1 to 5.
    let err = shop
        .rate_satisfaction(rate(&ticket, 5, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    solve(&cluster, &ticket).await;
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let err = ana
        .rate_satisfaction(rate(&ticket, 5, ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    for score in [0, 6, 1_000] {
        let err = shop
            .rate_satisfaction(rate(&ticket, score, ""))
            .await
            .unwrap_err();
        assert_eq!(violated_field(&err).as_deref(), Some("score"), "{score}");
    }

    // A 4, then the customer changes their mind: a 1 replaces it.
    shop.rate_satisfaction(rate(&ticket, 4, "quick"))
        .await
        .unwrap();
    assert_eq!(
        shown(&cluster, &ticket).await.satisfaction.unwrap().score,
        4
    );
    shop.rate_satisfaction(rate(&ticket, 1, "it broke again"))
        .await
        .unwrap();
    let rating = shown(&cluster, &ticket).await.satisfaction.unwrap();
    assert_eq!(
        (rating.score, rating.comment.as_str()),
        (1, "it broke again")
    );

    // Routing raises the 1 to the manager of Ana's team, once.
    let id: Uuid = ticket.parse().unwrap();
    let mut raised = Vec::new();
    for _ in 0..100 {
        let events = cluster.log.read::<Ticket>(&id, None).await.unwrap();
        raised = events
            .into_iter()
            .filter_map(|e| match e.event {
                Some(TicketEvent::FollowUpRaised { team, reason, .. }) => Some((team, reason)),
                _ => None,
            })
            .collect();
        if !raised.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.routing_settled().await.unwrap();
    let events = cluster.log.read::<Ticket>(&id, None).await.unwrap();
    let follow_ups = events
        .iter()
        .filter(|e| matches!(e.event, Some(TicketEvent::FollowUpRaised { .. })))
        .count();
    assert_eq!(follow_ups, 1, "{raised:?}");
    assert_eq!(raised[0].0, "first-line");
    assert!(raised[0].1.contains("1 of 5"), "{}", raised[0].1);
    assert!(raised[0].1.contains("it broke again"), "{}", raised[0].1);
    // The 4 raised nothing; the customer never sees the follow-up.
    assert!(
        shown(&cluster, &ticket)
            .await
            .messages
            .iter()
            .all(|m| !m.body.contains("manager"))
    );

    // Analytics counts the latest solve's rating.
    cluster.analytics_settled().await.unwrap();
    let mut analytics = cluster
        .analytics_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    let total = analytics
        .get_metrics(v1::GetMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!(total.csat_responses, 1);
    assert_eq!(total.csat_distribution, [1, 0, 0, 0, 0]);

    // Reopened, the rating is gone: it belonged to the first solve.
    ana.reopen(v1::ReopenRequest {
        ticket_id: ticket.clone(),
        reason: "the customer wrote".into(),
        expected_version: None,
    })
    .await
    .unwrap();
    assert!(shown(&cluster, &ticket).await.satisfaction.is_none());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nps_bands_on_the_person() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let (_, fan) = submit(&cluster, "fan").await;
    let (_, meh) = submit(&cluster, "meh").await;
    let (_, critic) = submit(&cluster, "critic").await;
    let (_, critic_again) = submit(&cluster, "critic-other-address").await;

    for (customer, score, category) in [
        (&fan, 10, v1::NpsCategory::Promoter),
        (&fan, 9, v1::NpsCategory::Promoter),
        (&meh, 7, v1::NpsCategory::Passive),
        (&critic, 8, v1::NpsCategory::Passive),
        (&critic, 6, v1::NpsCategory::Detractor),
    ] {
        let answer = intake
            .record_nps(nps(customer, score))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.category(), category, "{score}");
        assert_eq!(&answer.customer_id, customer);
    }
    // The latest answer counts.
    let shown = intake
        .get_customer(v1::GetCustomerRequest {
            customer_id: critic.clone(),
            identity: None,
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(shown.nps_category(), v1::NpsCategory::Detractor);

    // A record linked into another answers for the person: it is recorded there.
    let mut staff = cluster.intake("ana", Role::Agent).await.unwrap();
    staff
        .link_customers(v1::LinkCustomersRequest {
            customer_id: critic.clone(),
            other_customer_id: critic_again.clone(),
        })
        .await
        .unwrap();
    let answer = intake
        .record_nps(nps(&critic_again, 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.customer_id, critic);

    // Refusals: the scale, an unknown customer, a role that does not ask customers.
    let err = intake.record_nps(nps(&fan, 11)).await.unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("score"));
    let err = intake
        .record_nps(nps(&Uuid::new_v4().to_string(), 5))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = staff.record_nps(nps(&fan, 5)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Analytics: one promoter, one passive, one detractor (the linked pair is one
    // person).
    cluster.analytics_settled().await.unwrap();
    let mut analytics = cluster
        .analytics_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    let thirds = analytics
        .get_customer_thirds(v1::GetCustomerThirdsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let customers: Vec<(v1::NpsCategory, u64)> = thirds
        .groups
        .iter()
        .map(|g| (g.category(), g.customers))
        .collect();
    // Metrics count each person once: the linked pair's two tickets, one answer.
    let total = analytics
        .get_metrics(v1::GetMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!((total.tickets, total.nps_responses), (4, 3));
    assert_eq!(total.nps, 0.0, "one promoter, one passive, one detractor");
    assert_eq!(
        customers,
        [
            (v1::NpsCategory::Promoter, 1),
            (v1::NpsCategory::Passive, 1),
            (v1::NpsCategory::Detractor, 1),
            (v1::NpsCategory::Unspecified, 0),
        ]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_feedback_lands_on_its_own_subject() {
    let cluster = Cluster::start().await.unwrap();
    let (ticket, customer) = submit(&cluster, "feedback").await;
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let request = v1::RecordFeedbackRequest {
        idempotency_key: "fb-1".into(),
        product_area: "router-x200".into(),
        body: "The LED colours are confusing.".into(),
        customer_id: customer.clone(),
        ticket_id: ticket.clone(),
    };
    let answer = intake
        .record_feedback(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(answer.recorded);
    // A repeat of the key is the same feedback, recorded once.
    let again = intake
        .record_feedback(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.feedback_id, answer.feedback_id);
    assert!(!again.recorded);
    let id: Uuid = answer.feedback_id.parse().unwrap();
    let events = cluster
        .log
        .read::<ProductFeedback>(&id, None)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "frontline.v1.ProductFeedbackRecorded");

    // Refusals: fields, unknown references, roles.
    let err = intake
        .record_feedback(v1::RecordFeedbackRequest {
            product_area: "Router X".into(),
            ..request.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("product_area"));
    let err = intake
        .record_feedback(v1::RecordFeedbackRequest {
            idempotency_key: "fb-2".into(),
            ticket_id: Uuid::new_v4().to_string(),
            ..request.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut agent = cluster.intake("ana", Role::Agent).await.unwrap();
    let err = agent.record_feedback(request.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A forgotten customer's words cannot be kept: refused, not stored erased.
    let mut admin = cluster.intake("root", Role::Admin).await.unwrap();
    admin
        .forget_customer(v1::ForgetCustomerRequest {
            customer_id: customer.clone(),
            reason: "gdpr-7".into(),
        })
        .await
        .unwrap();
    let err = intake
        .record_feedback(v1::RecordFeedbackRequest {
            idempotency_key: "fb-3".into(),
            ticket_id: String::new(),
            ..request
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    cluster.shutdown().await;
}
