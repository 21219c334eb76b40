//! Returning customers are recognised, told about their open tickets, and never
//! asked twice for what they already told us.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request};
use frontline_proto::v1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_customer_gets_their_open_tickets_and_can_continue_one() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();

    let mut first = submit_request("order-1001", "Dana.Doe@Example.com");
    first.facts = vec![v1::Fact {
        key: "order".into(),
        value: "1001".into(),
    }];
    let first = intake.submit_ticket(first).await.unwrap().into_inner();
    let second = intake
        .submit_ticket(submit_request("order-1002", "dana.doe@example.com"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.customer_id, second.customer_id);
    assert_eq!(second.other_open_tickets.len(), 1);
    assert_eq!(second.other_open_tickets[0].ticket_id, first.ticket_id);
    assert_eq!(
        second.known_facts[0].value, "1001",
        "facts come back unasked"
    );

    // Same person, other spelling and whitespace, other channel: recognised.
    let mut third = submit_request("chat-77", "  DANA.DOE@example.COM ");
    third.channel = v1::Channel::Chat.into();
    let third = intake.submit_ticket(third).await.unwrap().into_inner();
    assert_eq!(third.customer_id, first.customer_id);
    let mut others: Vec<&str> = third
        .other_open_tickets
        .iter()
        .map(|t| t.ticket_id.as_str())
        .collect();
    others.sort_unstable();
    let mut expected = [first.ticket_id.as_str(), second.ticket_id.as_str()];
    expected.sort_unstable();
    assert_eq!(others, expected);

    // A solved ticket is no longer "open".
    ana.solve(v1::SolveRequest {
        ticket_id: second.ticket_id.clone(),
        resolution: "Refunded".into(),
        expected_version: None,
    })
    .await
    .unwrap();
    // Open tickets come from intake's read model, which follows conversation's
    // events within milliseconds: wait until it has seen the solve.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let open = intake
            .get_customer(v1::GetCustomerRequest {
                customer_id: first.customer_id.clone(),
                identity: None,
            })
            .await
            .unwrap()
            .into_inner()
            .customer
            .unwrap()
            .open_tickets;
        if !open.iter().any(|t| t.ticket_id == second.ticket_id) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the solved ticket is still listed as open: {open:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The channel asked "same issue?" and the customer said yes: thread it.
    let mut reply = submit_request("chat-78", "dana.doe@example.com");
    reply.channel = v1::Channel::Chat.into();
    reply.continue_ticket_id = first.ticket_id.clone();
    reply.body = "Same problem as before".into();
    let threaded = intake.submit_ticket(reply).await.unwrap().into_inner();
    assert_eq!(threaded.ticket_id, first.ticket_id);
    assert_eq!(threaded.ticket_version, 2);
    let open: Vec<&str> = threaded
        .other_open_tickets
        .iter()
        .map(|t| t.ticket_id.as_str())
        .collect();
    assert_eq!(open, [third.ticket_id.as_str()]);

    let ticket = ana
        .get_ticket(v1::GetTicketRequest {
            ticket_id: first.ticket_id.clone(),
            as_of_version: None,
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(ticket.messages[1].body, "Same problem as before");
    assert_eq!(ticket.messages[1].channel(), v1::Channel::Chat);

    // GetCustomer by identity: everything we know, open tickets newest first.
    let customer = intake
        .get_customer(v1::GetCustomerRequest {
            customer_id: String::new(),
            identity: Some(v1::CustomerIdentity {
                email: "DANA.doe@example.com".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(customer.customer_id, first.customer_id);
    assert_eq!(customer.ticket_ids.len(), 3);
    let open: Vec<&str> = customer
        .open_tickets
        .iter()
        .map(|t| t.ticket_id.as_str())
        .collect();
    assert_eq!(open, [third.ticket_id.as_str(), first.ticket_id.as_str()]);
    assert_eq!(customer.identity.unwrap().email, "dana.doe@example.com");
    assert_eq!(customer.facts.len(), 1);
}
