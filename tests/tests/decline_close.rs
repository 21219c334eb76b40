//! The rest of a ticket's lifecycle end to end: saying *No* needs a manager who did
//! not propose it; solved tickets close (by a call or the tenant's timer); a
//! customer writing to a closed ticket opens a follow-up linked to it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontline_domain::{Role, Ticket, TicketEvent};
use frontline_e2e::{Cluster, caller, submit_request, violated_field};
use frontline_proto::v1;
use tonic::Code;
use uuid::Uuid;

const TENANT: &str = frontline_e2e::TENANT;

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

async fn ticket(cluster: &Cluster, id: Uuid, who: &str, role: Role) -> v1::Ticket {
    let mut conversation = cluster.conversation(who, role).await.unwrap();
    conversation
        .get_ticket(v1::GetTicketRequest {
            ticket_id: id.to_string(),
            as_of_version: None,
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap()
}

fn status(change: Option<v1::TicketChange>) -> v1::TicketStatus {
    change.unwrap().status()
}

fn propose(id: Uuid) -> v1::ProposeDeclineRequest {
    v1::ProposeDeclineRequest {
        ticket_id: id.to_string(),
        reason: "We cannot refund a router bought 14 months ago.".into(),
        rationale: "Outside the 12-month warranty; no goodwill history.".into(),
        expected_version: None,
    }
}

fn approve(id: Uuid) -> v1::ApproveDeclineRequest {
    v1::ApproveDeclineRequest {
        ticket_id: id.to_string(),
        note: "Agreed.".into(),
        expected_version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saying_no_needs_a_manager_who_did_not_propose_it() {
    let cluster = Cluster::start().await.unwrap();
    let id = submit(&cluster, "refund").await;
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let mut max = cluster.conversation("max", Role::Manager).await.unwrap();
    let mut mia = cluster.conversation("mia", Role::Manager).await.unwrap();

    // A proposal needs both texts.
    let err = ana
        .propose_decline(v1::ProposeDeclineRequest {
            rationale: String::new(),
            ..propose(id)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&err).as_deref(), Some("rationale"));

    // Ana proposes: the ticket waits for a manager, taking no reply and no solve.
    let proposed = ana.propose_decline(propose(id)).await.unwrap().into_inner();
    assert_eq!(status(proposed.change), v1::TicketStatus::DeclineProposed);
    let err = ana
        .solve(v1::SolveRequest {
            ticket_id: id.to_string(),
            resolution: "Declined.".into(),
            expected_version: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = ana
        .reply(v1::ReplyRequest {
            ticket_id: id.to_string(),
            body: "No.".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = ana.propose_decline(propose(id)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // Staff see the proposal; the customer's system sees neither it nor the rationale.
    let staff = ticket(&cluster, id, "bo", Role::Agent).await;
    let pending = staff.pending_decline.unwrap();
    assert_eq!(pending.proposed_by, "ana");
    assert!(pending.rationale.contains("warranty"));
    let shop = ticket(&cluster, id, "web-shop", Role::CustomerSystem).await;
    assert!(shop.pending_decline.is_none());
    assert!(shop.messages.iter().all(|m| !m.body.contains("warranty")));

    // An agent may not decide it: the role table.
    let err = ana.approve_decline(approve(id)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // Max rejects: open again, with his note for Ana.
    let rejected = max
        .reject_decline(v1::RejectDeclineRequest {
            ticket_id: id.to_string(),
            note: "Offer a 20 % voucher instead.".into(),
            expected_version: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(rejected.change), v1::TicketStatus::Open);
    let err = max.approve_decline(approve(id)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // Max proposes himself this time: he may not approve his own.
    max.propose_decline(propose(id)).await.unwrap();
    let err = max.approve_decline(approve(id)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("proposed"), "{}", err.message());

    // Mia approves: solved as declined, the reason sent as the public reply.
    let approved = mia.approve_decline(approve(id)).await.unwrap().into_inner();
    assert_eq!(status(approved.change), v1::TicketStatus::Solved);
    let err = mia.approve_decline(approve(id)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("already approved"),
        "{}",
        err.message()
    );

    let shop = ticket(&cluster, id, "web-shop", Role::CustomerSystem).await;
    assert!(shop.declined);
    assert_eq!(shop.status(), v1::TicketStatus::Solved);
    let last = shop.messages.last().unwrap();
    assert_eq!(last.kind(), v1::MessageKind::AgentReply);
    assert_eq!(last.author_id, "max");
    assert!(last.body.contains("14 months"));

    // The log holds the story, each step by its actor.
    let events = cluster.log.read::<Ticket>(&id, None).await.unwrap();
    let story: Vec<(String, String)> = events
        .iter()
        .filter(|e| {
            matches!(
                e.event,
                Some(
                    TicketEvent::DeclineProposed { .. }
                        | TicketEvent::DeclineApproved { .. }
                        | TicketEvent::DeclineRejected { .. }
                )
            )
        })
        .map(|e| (e.event_type.clone(), e.actor.id.clone()))
        .collect();
    assert_eq!(
        story,
        [
            ("frontline.v1.DeclineProposed".into(), "ana".into()),
            ("frontline.v1.DeclineRejected".into(), "max".into()),
            ("frontline.v1.DeclineProposed".into(), "max".into()),
            ("frontline.v1.DeclineApproved".into(), "mia".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_ticket_is_final_and_a_new_message_opens_a_follow_up() {
    let cluster = Cluster::start().await.unwrap();
    let id = submit(&cluster, "close").await;
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let close = v1::CloseRequest {
        ticket_id: id.to_string(),
        expected_version: None,
    };
    // Only a solved ticket closes.
    let err = ana.close(close.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    ana.solve(v1::SolveRequest {
        ticket_id: id.to_string(),
        resolution: "Firmware 2.1 fixes it.".into(),
        expected_version: None,
    })
    .await
    .unwrap();
    let closed = ana.close(close.clone()).await.unwrap().into_inner();
    assert_eq!(status(closed.change), v1::TicketStatus::Closed);
    // Closed is final.
    let err = ana.close(close).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = ana
        .reopen(v1::ReopenRequest {
            ticket_id: id.to_string(),
            reason: "again".into(),
            expected_version: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let shown = ticket(&cluster, id, "ana", Role::Agent).await;
    assert!(shown.closed_at.is_some());

    // The customer writes again: a follow-up ticket, linked, with the old subject.
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let again = v1::SubmitTicketRequest {
        continue_ticket_id: id.to_string(),
        subject: String::new(),
        body: "It started rebooting again.".into(),
        ..submit_request("close-again", "close@example.com")
    };
    let answer = intake
        .submit_ticket(again.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(answer.created);
    let follow_up: Uuid = answer.ticket_id.parse().unwrap();
    assert_ne!(follow_up, id);
    assert_eq!(answer.status(), v1::TicketStatus::New);
    let shown = ticket(&cluster, follow_up, "ana", Role::Agent).await;
    assert_eq!(shown.follow_up_of, id.to_string());
    assert_eq!(shown.subject, "Router keeps rebooting");
    assert_eq!(shown.messages[0].body, "It started rebooting again.");
    // A retry with the same key is the same follow-up, not another.
    let retry = intake.submit_ticket(again).await.unwrap().into_inner();
    assert_eq!(retry.ticket_id, follow_up.to_string());
    assert!(!retry.created);
    // The closed ticket is unchanged.
    let closed = ticket(&cluster, id, "ana", Role::Agent).await;
    assert_eq!(closed.status(), v1::TicketStatus::Closed);
    // Its messages: the opening only (solve and close add none).
    assert_eq!(closed.messages.len(), 1);

    // Another customer cannot follow up someone else's closed ticket.
    let stranger = v1::SubmitTicketRequest {
        continue_ticket_id: id.to_string(),
        ..submit_request("stranger", "stranger@example.com")
    };
    let err = intake.submit_ticket(stranger).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solved_tickets_close_by_the_tenants_timer() {
    let cluster = Cluster::start().await.unwrap();
    let mut routing = cluster
        .routing_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    // No SLA targets, only the auto-close delay: two seconds.
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(v1::SlaPolicy {
                warning_percent: 80,
                escalation: v1::Escalation::Raise.into(),
                auto_close_after_seconds: 2,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let id = submit(&cluster, "timer").await;
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    ana.solve(v1::SolveRequest {
        ticket_id: id.to_string(),
        resolution: "Done.".into(),
        expected_version: None,
    })
    .await
    .unwrap();
    let solved_at = std::time::Instant::now();

    let mut closed = None;
    for _ in 0..200 {
        let events = cluster.log.read::<Ticket>(&id, None).await.unwrap();
        if let Some(e) = events
            .iter()
            .find(|e| matches!(e.event, Some(TicketEvent::Closed { .. })))
        {
            closed = Some(e.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = closed.expect("the auto-close timer closed the ticket");
    assert!(solved_at.elapsed() >= Duration::from_secs(1));
    assert_eq!(closed.event, Some(TicketEvent::Closed { automatic: true }));
    assert_eq!(closed.actor.role, Role::Admin);
    // Once: the timer's close is not repeated.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = cluster.log.read::<Ticket>(&id, None).await.unwrap();
    let closes = events
        .iter()
        .filter(|e| matches!(e.event, Some(TicketEvent::Closed { .. })))
        .count();
    assert_eq!(closes, 1);

    // A policy delay beyond a year is refused.
    let err = routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(v1::SlaPolicy {
                warning_percent: 80,
                escalation: v1::Escalation::Raise.into(),
                auto_close_after_seconds: 366 * 24 * 3600,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_field(&err).as_deref(),
        Some("policy.auto_close_after_seconds")
    );
    let err = routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(v1::SlaPolicy {
                warning_percent: 80,
                escalation: v1::Escalation::Raise.into(),
                check_in_after_seconds: 366 * 24 * 3600,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_field(&err).as_deref(),
        Some("policy.check_in_after_seconds")
    );
}
