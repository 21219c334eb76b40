//! A ticket's whole life through the real services: submit → reply → note → solve →
//! the customer writes again → reopened; history and past states.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request};
use frontline_proto::v1::{self, conversation_service_client::ConversationServiceClient};

/// The whole ticket now, as an agent sees it.
async fn ticket_now(
    agent: &mut ConversationServiceClient<frontline_e2e::Authed>,
    id: &str,
) -> v1::Ticket {
    agent
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_lives_and_its_history_tells_the_story() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();

    // 1. The customer writes in.
    let mut req = submit_request("mail-1", "ana.customer@example.com");
    req.facts = vec![v1::Fact {
        key: "serial".into(),
        value: "SN-42".into(),
    }];
    let opened = intake.submit_ticket(req).await.unwrap().into_inner();
    assert!(opened.created);
    assert_eq!(opened.ticket_version, 1);
    assert_eq!(opened.status(), v1::TicketStatus::New);
    assert!(opened.other_open_tickets.is_empty());
    let id = opened.ticket_id.clone();

    // 2. An agent replies, asking something: the ticket waits on the customer.
    let replied = ana
        .reply(v1::ReplyRequest {
            ticket_id: id.clone(),
            body: "Which firmware version do you run?".into(),
            awaiting_customer: true,
            expected_version: Some(1),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(replied.ticket_id, id);
    assert_eq!(replied.version, 2);
    assert_eq!(replied.status(), v1::TicketStatus::Pending);
    assert!(replied.recorded);

    // 3. An internal note.
    let noted = ana
        .add_note(v1::AddNoteRequest {
            ticket_id: id.clone(),
            body: "Known issue with 2.1, fix in 2.2".into(),
            expected_version: None,
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(noted.version, 3);
    assert_eq!(
        noted.status(),
        v1::TicketStatus::Pending,
        "a note moves nothing"
    );
    let noted = ticket_now(&mut ana, &id).await;
    assert_eq!(noted.version, 3);
    let note = noted.messages.last().unwrap();
    assert_eq!(note.kind(), v1::MessageKind::InternalNote);
    assert!(!note.customer_visible);

    // 4. Solved.
    let solved = ana
        .solve(v1::SolveRequest {
            ticket_id: id.clone(),
            resolution: "Firmware 2.2".into(),
            expected_version: Some(3),
        })
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(solved.version, 4);
    assert_eq!(solved.status(), v1::TicketStatus::Solved);
    let solved = ticket_now(&mut ana, &id).await;
    assert_eq!(solved.status(), v1::TicketStatus::Solved);
    assert!(solved.solved_at.is_some());

    // 5. The customer writes again on the same ticket: it reopens.
    let mut again = submit_request("mail-2", "ana.customer@example.com");
    again.continue_ticket_id = id.clone();
    again.body = "Still rebooting after 2.2".into();
    let continued = intake.submit_ticket(again).await.unwrap().into_inner();
    assert_eq!(continued.ticket_id, id);
    assert!(!continued.created);
    assert_eq!(continued.ticket_version, 5);
    assert_eq!(continued.status(), v1::TicketStatus::Open);
    assert_eq!(
        continued.known_facts.len(),
        1,
        "the serial number is remembered"
    );

    let now = ana
        .get_ticket(v1::GetTicketRequest {
            ticket_id: id.clone(),
            as_of_version: None,
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(now.version, 5);
    assert_eq!(now.reopen_count, 1);
    assert_eq!(now.status(), v1::TicketStatus::Open);
    assert!(now.solved_at.is_none());
    assert_eq!(now.messages.len(), 4);
    assert_eq!(now.customer_facts[0].value, "SN-42");

    // History: every event, in order, with its actor.
    let history = ana
        .get_ticket_history(v1::GetTicketHistoryRequest {
            ticket_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "frontline.v1.TicketOpened",
            "frontline.v1.AgentReplied",
            "frontline.v1.InternalNoteAdded",
            "frontline.v1.TicketSolved",
            "frontline.v1.CustomerMessageAdded",
        ]
    );
    let actors: Vec<&str> = history
        .iter()
        .map(|e| e.actor.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(actors, ["web-shop", "ana", "ana", "ana", "web-shop"]);
    assert!(
        history.windows(2).all(
            |w| w[0].version + 1 == w[1].version && w[0].stream_sequence < w[1].stream_sequence
        )
    );
    assert!(history[4].summary.contains("reopened"));

    // The past, exactly: as of version 2 the ticket was pending with two messages.
    let past = ana
        .get_ticket(v1::GetTicketRequest {
            ticket_id: id.clone(),
            as_of_version: Some(2),
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(past.version, 2);
    assert_eq!(past.status(), v1::TicketStatus::Pending);
    assert_eq!(past.messages.len(), 2);
    let as_of_4 = ana
        .get_ticket(v1::GetTicketRequest {
            ticket_id: id.clone(),
            as_of_version: Some(4),
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(as_of_4.status(), v1::TicketStatus::Solved);

    // The customer's system never sees internal notes.
    let mut shop_view = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let visible = shop_view
        .get_ticket(v1::GetTicketRequest {
            ticket_id: id.clone(),
            as_of_version: None,
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(visible.messages.len(), 3);
    assert!(visible.messages.iter().all(|m| m.customer_visible));

    // An agent can reopen too, after solving again.
    ana.solve(v1::SolveRequest {
        ticket_id: id.clone(),
        resolution: "Replaced the unit".into(),
        expected_version: None,
    })
    .await
    .unwrap();
    let reopened = ana
        .reopen(v1::ReopenRequest {
            ticket_id: id.clone(),
            reason: "Customer called back".into(),
            expected_version: None,
        })
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(reopened.status(), v1::TicketStatus::Open);
    assert_eq!(reopened.version, 7);
    let reopened = ticket_now(&mut ana, &id).await;
    assert_eq!(reopened.status(), v1::TicketStatus::Open);
    assert_eq!(reopened.reopen_count, 2);
    cluster.shutdown().await;
}
