//! Merging a duplicate ticket into another and undoing it, end to end: the source
//! reads in the target's timeline and is read-only, the customer's messages to it
//! go to the target, and an unmerge restores both timelines exactly — what was
//! written meanwhile stays where it was written, also under concurrent replies.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request, violated_field};
use frontline_proto::v1;
use tonic::Code;

async fn submit(cluster: &Cluster, key: &str, email: &str) -> String {
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    intake
        .submit_ticket(submit_request(key, email))
        .await
        .unwrap()
        .into_inner()
        .ticket_id
}

async fn ticket(cluster: &Cluster, id: &str) -> v1::Ticket {
    let mut staff = cluster.conversation("bo", Role::Agent).await.unwrap();
    staff
        .get_ticket(v1::GetTicketRequest {
            ticket_id: id.into(),
            as_of_version: None,
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap()
}

/// A ticket as its timeline shows it: without its version, last change and
/// assignee (routing hands an unmerged ticket out again).
fn timeline(mut t: v1::Ticket) -> v1::Ticket {
    t.version = 0;
    t.updated_at = None;
    t.assignee = String::new();
    t
}

fn merge(source: &str, target: &str) -> v1::MergeTicketRequest {
    v1::MergeTicketRequest {
        source_ticket_id: source.into(),
        target_ticket_id: target.into(),
        reason: "the same broken router".into(),
    }
}

fn unmerge(source: &str) -> v1::UnmergeTicketRequest {
    v1::UnmergeTicketRequest {
        source_ticket_id: source.into(),
        reason: "two routers after all".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_and_unmerge_restore_both_timelines_under_concurrent_replies() {
    let cluster = Cluster::start().await.unwrap();
    let a = submit(&cluster, "dup-a", "dana@example.com").await;
    let b = submit(&cluster, "dup-b", "dana@example.com").await;
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    ana.add_note(v1::AddNoteRequest {
        ticket_id: a.clone(),
        body: "Probably the same as the other one.".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    cluster.routing_settled().await.unwrap();
    let (before_a, before_b) = (ticket(&cluster, &a).await, ticket(&cluster, &b).await);

    // Replies land on the target the whole time.
    let replies = {
        let mut bo = cluster.conversation("bo", Role::Agent).await.unwrap();
        let b = b.clone();
        tokio::spawn(async move {
            for n in 0..20 {
                bo.reply(v1::ReplyRequest {
                    ticket_id: b.clone(),
                    body: format!("reply {n}"),
                    idempotency_key: format!("r{n}"),
                    ..Default::default()
                })
                .await
                .unwrap();
            }
        })
    };

    let merged = ana.merge_ticket(merge(&a, &b)).await.unwrap().into_inner();
    assert!(merged.source.unwrap().recorded && merged.target.unwrap().recorded);
    // Again: a repeat.
    let again = ana.merge_ticket(merge(&a, &b)).await.unwrap().into_inner();
    assert!(!again.source.unwrap().recorded);

    // The source is read-only and points to the target, which shows its messages.
    let source = ticket(&cluster, &a).await;
    assert_eq!(source.merged_into_ticket_id, b);
    let target = ticket(&cluster, &b).await;
    assert_eq!(target.merged_ticket_ids, std::slice::from_ref(&a));
    let from_source: Vec<&str> = target
        .messages
        .iter()
        .filter(|m| m.ticket_id == a)
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(
        from_source,
        [
            "Since the update my router restarts every hour.",
            "Probably the same as the other one."
        ]
    );
    let err = ana
        .reply(v1::ReplyRequest {
            ticket_id: a.clone(),
            body: "hello".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("merged into"), "{}", err.message());

    // The customer writes to the source: it lands on the target.
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let written = intake
        .submit_ticket(v1::SubmitTicketRequest {
            continue_ticket_id: a.clone(),
            body: "Any news?".into(),
            ..submit_request("dup-c", "dana@example.com")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.ticket_id, b);

    let undone = ana.unmerge_ticket(unmerge(&a)).await.unwrap().into_inner();
    assert!(undone.source.unwrap().recorded);
    replies.await.unwrap();
    let err = ana.unmerge_ticket(unmerge(&a)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    cluster.routing_settled().await.unwrap();

    // The source is exactly as before.
    assert_eq!(timeline(ticket(&cluster, &a).await), timeline(before_a));
    // The target is as before, plus what was written to it meanwhile.
    let after_b = ticket(&cluster, &b).await;
    assert!(after_b.merged_ticket_ids.is_empty());
    assert!(after_b.messages.iter().all(|m| m.ticket_id.is_empty()));
    assert_eq!(after_b.messages[..1], before_b.messages[..]);
    let later: Vec<&str> = after_b.messages[1..]
        .iter()
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(later.len(), 21, "{later:?}");
    assert!(later.contains(&"Any news?"));
    for n in 0..20 {
        assert!(later.contains(&format!("reply {n}").as_str()), "reply {n}");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_merge_what() {
    let cluster = Cluster::start().await.unwrap();
    let dana = submit(&cluster, "m-dana", "dana@example.com").await;
    let dana_again = submit(&cluster, "m-dana-2", "dana@example.com").await;
    let eve = submit(&cluster, "m-eve", "eve@example.com").await;
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    let mut max = cluster.conversation("max", Role::Manager).await.unwrap();

    // Another customer's ticket takes a manager.
    let err = ana.merge_ticket(merge(&eve, &dana)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    max.merge_ticket(merge(&eve, &dana)).await.unwrap();
    // One level: the target of a merge is never merged itself, a merged ticket is
    // never a target.
    let err = max
        .merge_ticket(merge(&dana, &dana_again))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = max
        .merge_ticket(merge(&dana_again, &eve))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // An agent may not undo a manager's merge of two customers either.
    let err = ana.unmerge_ticket(unmerge(&eve)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    max.unmerge_ticket(unmerge(&eve)).await.unwrap();

    // Bad input, unknown tickets, roles.
    let err = ana.merge_ticket(merge(&dana, &dana)).await.unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("target_ticket_id"));
    let err = ana.merge_ticket(merge("nope", &dana)).await.unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("source_ticket_id"));
    let unknown = uuid::Uuid::new_v4().to_string();
    let err = ana.merge_ticket(merge(&dana, &unknown)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = ana.unmerge_ticket(unmerge(&unknown)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let err = shop
        .merge_ticket(merge(&dana_again, &dana))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    cluster.shutdown().await;
}
