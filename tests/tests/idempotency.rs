//! The same request, many times, at once: one ticket, one event.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request};
use frontline_proto::v1;

/// 50 concurrent submits with one idempotency key open exactly one ticket with
/// exactly one opened-event; exactly one caller is told it created it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_submits_with_one_key_open_one_ticket() {
    let cluster = Cluster::start().await.unwrap();
    let intake = cluster
        .intake("mail-gateway", Role::CustomerSystem)
        .await
        .unwrap();
    let calls = (0..50).map(|_| {
        let mut client = intake.clone();
        tokio::spawn(async move {
            client
                .submit_ticket(submit_request("msg-<abc@mail>", "bo@example.com"))
                .await
                .map(|r| r.into_inner())
        })
    });
    let answers: Vec<v1::SubmitTicketResponse> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let id = &answers[0].ticket_id;
    assert!(answers.iter().all(|a| &a.ticket_id == id));
    assert_eq!(answers.iter().filter(|a| a.created).count(), 1);

    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(counts.len(), 1, "one ticket subject: {counts:?}");
    assert_eq!(
        counts[&format!("frontline.ticket.{id}")],
        1,
        "one opened-event"
    );

    // The customer links the ticket once, however often the contact repeats.
    let customer = cluster
        .intake("mail-gateway", Role::CustomerSystem)
        .await
        .unwrap()
        .get_customer(v1::GetCustomerRequest {
            customer_id: answers[0].customer_id.clone(),
            identity: None,
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(customer.ticket_ids, std::slice::from_ref(id));
    assert_eq!(customer.version, 1);
}

/// A continued message and an agent reply with a repeated key are recorded once,
/// also long after the log's duplicate window would matter (the ticket remembers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_keys_on_an_open_ticket_record_once() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster.intake("chat", Role::CustomerSystem).await.unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let id = intake
        .submit_ticket(submit_request("k-1", "cy@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;

    let mut more = submit_request("k-2", "cy@example.com");
    more.continue_ticket_id = id.clone();
    for _ in 0..3 {
        let r = intake
            .submit_ticket(more.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.ticket_version, 2);
        assert!(!r.created);
    }
    for attempt in 0..3 {
        let t = ana
            .reply(v1::ReplyRequest {
                ticket_id: id.clone(),
                body: "On it".into(),
                awaiting_customer: false,
                expected_version: None,
                idempotency_key: "reply-1".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .change
            .unwrap();
        assert_eq!(t.version, 3);
        assert_eq!(t.ticket_id, id);
        assert_eq!(t.recorded, attempt == 0, "only the first reply is recorded");
    }
    let history = ana
        .get_ticket_history(v1::GetTicketHistoryRequest { ticket_id: id })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(history.len(), 3);
}
