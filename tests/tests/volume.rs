//! Nothing accepted is lost: 1 000 submits from 16 clients, read back from the stream.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_submits_from_sixteen_clients_make_a_thousand_tickets() {
    const CLIENTS: usize = 16;
    const TOTAL: usize = 1000;
    let cluster = Cluster::start().await.unwrap();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut intake = cluster
            .intake(&format!("system-{c}"), Role::CustomerSystem)
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (c..TOTAL).step_by(CLIENTS) {
                // A few customers write many tickets, so customer records see
                // concurrent writers too.
                let email = format!("customer-{}@example.com", i % 50);
                let r = intake
                    .submit_ticket(submit_request(&format!("bulk-{i}"), &email))
                    .await
                    .unwrap()
                    .into_inner();
                assert!(r.created);
                ids.push(r.ticket_id);
            }
            ids
        }));
    }
    let mut accepted = HashSet::new();
    for t in tasks {
        accepted.extend(t.await.unwrap());
    }
    assert_eq!(accepted.len(), TOTAL);

    // Read the stream itself back: exactly the accepted tickets, one event each.
    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(counts.len(), TOTAL);
    for id in &accepted {
        assert_eq!(
            counts.get(&format!("frontline.ticket.{id}")),
            Some(&1),
            "{id}"
        );
    }

    // And every customer record links exactly its 20 tickets.
    let mut intake = cluster
        .intake("checker", Role::CustomerSystem)
        .await
        .unwrap();
    let mut linked = 0;
    for n in 0..50 {
        let customer = intake
            .get_customer(frontline_proto::v1::GetCustomerRequest {
                customer_id: String::new(),
                identity: Some(frontline_proto::v1::CustomerIdentity {
                    email: format!("customer-{n}@example.com"),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .customer
            .unwrap();
        assert_eq!(customer.ticket_ids.len(), TOTAL / 50);
        linked += customer.ticket_ids.len();
    }
    assert_eq!(linked, TOTAL);
}
