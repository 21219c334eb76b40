//! Snapshots are a shortcut, never the truth: deleting them or leaving them stale
//! changes nothing a caller sees.
#![allow(clippy::unwrap_used)]

use frontline_domain::{Role, Ticket};
use frontline_e2e::{Cluster, submit_request};
use frontline_proto::v1;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_loads_the_same_without_or_with_a_stale_snapshot() {
    let cluster = Cluster::start().await.unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let id = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap()
        .submit_ticket(submit_request("snap-1", "snap@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let uuid = Uuid::parse_str(&id).unwrap();
    let get = v1::GetTicketRequest {
        ticket_id: id.clone(),
        as_of_version: None,
        as_of_time: None,
    };
    let reply = |n: u32| v1::ReplyRequest {
        ticket_id: id.clone(),
        body: format!("reply {n}"),
        awaiting_customer: n % 2 == 0,
        expected_version: None,
        idempotency_key: String::new(),
    };
    for n in 0..3 {
        ana.reply(reply(n)).await.unwrap();
    }
    // Keep the state at version 4 as a soon-stale snapshot.
    let at_v4 = cluster.log.load::<Ticket>(&uuid).await.unwrap();
    assert_eq!(at_v4.state.version, 4);
    for n in 3..8 {
        ana.reply(reply(n)).await.unwrap();
    }
    let truth = ana.get_ticket(get.clone()).await.unwrap().into_inner();
    assert_eq!(truth.ticket.as_ref().unwrap().version, 9);

    cluster
        .log
        .snapshots()
        .delete::<Ticket>(&uuid)
        .await
        .unwrap();
    let without = ana.get_ticket(get.clone()).await.unwrap().into_inner();
    assert_eq!(without, truth, "no snapshot: same state");

    // Loading without a snapshot writes one back in the background; let it land
    // before planting the stale one, so the stale one is what the next load sees.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    cluster.log.snapshots().save(&uuid, &at_v4).await.unwrap();
    let planted = cluster.log.snapshots().load::<Ticket>(&uuid).await.unwrap();
    assert_eq!(planted.state.version, 4);
    let stale = ana.get_ticket(get.clone()).await.unwrap().into_inner();
    assert_eq!(stale, truth, "stale snapshot: same state");

    // A command decided on a stale snapshot is still right: version 10, not 5.
    let after = ana
        .reply(reply(9))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(after.version, 10);
    let now = ana.get_ticket(get.clone()).await.unwrap().into_inner();
    assert_eq!(now.ticket.unwrap().version, 10);
}
