//! Many writers on one ticket: every command recorded, in one total order, no gaps.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request};
use frontline_proto::v1;

async fn open_ticket(cluster: &Cluster) -> String {
    cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap()
        .submit_ticket(submit_request("race-1", "race@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id
}

async fn reply_all(
    cluster: &Cluster,
    addrs: &[std::net::SocketAddr],
    id: &str,
    n: usize,
) -> Vec<Result<u64, tonic::Status>> {
    let mut calls = Vec::new();
    for i in 0..n {
        let mut client = cluster
            .conversation_at(addrs[i % addrs.len()], &format!("agent-{i}"), Role::Agent)
            .await
            .unwrap();
        let id = id.to_string();
        calls.push(tokio::spawn(async move {
            client
                .reply(v1::ReplyRequest {
                    ticket_id: id,
                    body: format!("reply {i}"),
                    awaiting_customer: false,
                    expected_version: None,
                    idempotency_key: String::new(),
                })
                .await
                .map(|r| r.into_inner().change.unwrap().version)
        }));
    }
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

async fn assert_total_order(cluster: &Cluster, id: &str, replies: usize) {
    let history = cluster
        .conversation("auditor", Role::Manager)
        .await
        .unwrap()
        .get_ticket_history(v1::GetTicketHistoryRequest {
            ticket_id: id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(history.len(), replies + 1);
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1, "no gaps, no duplicates");
    }
    assert!(
        history
            .windows(2)
            .all(|w| w[0].stream_sequence < w[1].stream_sequence)
    );
    let mut authors: Vec<String> = history[1..]
        .iter()
        .map(|e| e.actor.clone().unwrap().id)
        .collect();
    authors.sort();
    authors.dedup();
    assert_eq!(authors.len(), replies, "every agent's reply is there once");
}

/// 32 concurrent replies through one server: all 32 recorded, versions 2..=33.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_replies_are_all_recorded_in_order() {
    let cluster = Cluster::start().await.unwrap();
    let id = open_ticket(&cluster).await;
    let versions = reply_all(&cluster, &[cluster.conversation_addr], &id, 32).await;
    let mut versions: Vec<u64> = versions.into_iter().map(Result::unwrap).collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=33).collect::<Vec<_>>());
    assert_total_order(&cluster, &id, 32).await;
}

/// The same across two conversation replicas with their own NATS connections:
/// here the log's per-subject sequence check arbitrates, and losers retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replies_across_two_replicas_are_all_recorded() {
    let mut cluster = Cluster::start().await.unwrap();
    let second = cluster.add_conversation_replica().await.unwrap();
    let id = open_ticket(&cluster).await;
    let results = reply_all(&cluster, &[cluster.conversation_addr, second], &id, 32).await;
    // A reply may only fail as ABORTED (retries exhausted); none may be lost silently.
    let ok = results.iter().filter(|r| r.is_ok()).count();
    for r in &results {
        if let Err(s) = r {
            assert_eq!(s.code(), tonic::Code::Aborted, "{s:?}");
        }
    }
    assert_total_order(&cluster, &id, ok).await;
}

/// A caller that decided on an old version is refused with ABORTED, and nothing is
/// recorded for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_expected_version_is_aborted() {
    let cluster = Cluster::start().await.unwrap();
    let id = open_ticket(&cluster).await;
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let reply = |version| v1::ReplyRequest {
        ticket_id: id.clone(),
        body: "Answer".into(),
        awaiting_customer: false,
        expected_version: Some(version),
        idempotency_key: String::new(),
    };
    ana.reply(reply(1)).await.unwrap();
    let stale = ana.reply(reply(1)).await.unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(counts[&format!("frontline.ticket.{id}")], 2);
}
