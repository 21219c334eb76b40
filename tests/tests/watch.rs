//! Watching a ticket live and reading it as of a moment, end to end: every event
//! once and in order while replies land, customer systems never see a note, a
//! watcher that stops reading is cut off, `as_of_time` shows the past exactly.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use frontline_domain::{Role, Ticket};
use frontline_e2e::{Authed, Cluster, caller, submit_request, violated_field};
use frontline_proto::v1::{self, conversation_service_client::ConversationServiceClient};
use tonic::{Code, Streaming};

async fn submit(cluster: &Cluster, key: &str) -> String {
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    intake
        .submit_ticket(submit_request(key, &format!("{key}@example.com")))
        .await
        .unwrap()
        .into_inner()
        .ticket_id
}

async fn watch(
    client: &mut ConversationServiceClient<Authed>,
    ticket: &str,
    from_version: u64,
) -> Streaming<v1::TicketUpdate> {
    client
        .watch_ticket(v1::WatchTicketRequest {
            ticket_id: ticket.into(),
            from_version,
        })
        .await
        .unwrap()
        .into_inner()
}

fn reply(ticket: &str, n: usize) -> v1::ReplyRequest {
    v1::ReplyRequest {
        ticket_id: ticket.into(),
        body: format!("reply {n}"),
        idempotency_key: format!("r{n}"),
        ..Default::default()
    }
}

fn note(ticket: &str, body: String) -> v1::AddNoteRequest {
    v1::AddNoteRequest {
        ticket_id: ticket.into(),
        body,
        ..Default::default()
    }
}

/// Reads updates until `done` says so (at most 30 s).
async fn read_until(
    updates: &mut Streaming<v1::TicketUpdate>,
    done: impl Fn(&[v1::TicketUpdate]) -> bool,
) -> Vec<v1::TicketUpdate> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&seen) {
        let next = tokio::time::timeout_at(deadline, updates.message())
            .await
            .expect("updates keep coming")
            .unwrap()
            .expect("the watch goes on");
        seen.push(next);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_zero_sees_every_event_once_in_order_while_replies_land() {
    let cluster = Cluster::start().await.unwrap();
    let ticket = submit(&cluster, "watched").await;
    let mut staff = cluster.conversation("bo", Role::Agent).await.unwrap();
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut updates = watch(&mut staff, &ticket, 0).await;
    let mut customer_updates = watch(&mut shop, &ticket, 0).await;

    // 50 replies (and 5 notes) land while both watch.
    let writer = {
        let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
        let ticket = ticket.clone();
        tokio::spawn(async move {
            for n in 0..50 {
                ana.reply(reply(&ticket, n)).await.unwrap();
                if n % 10 == 0 {
                    ana.add_note(note(&ticket, format!("note {n}")))
                        .await
                        .unwrap();
                }
            }
        })
    };
    let replies = |u: &[v1::TicketUpdate]| {
        u.iter()
            .filter(|u| u.event_type == "frontline.v1.AgentReplied")
            .count()
    };
    let seen = read_until(&mut updates, |u| replies(u) == 50).await;
    writer.await.unwrap();

    // Every event of the log up to the last seen, once, in order (routing's own
    // events included).
    let versions: Vec<u64> = seen.iter().map(|u| u.version).collect();
    let expected: Vec<u64> = (1..=versions.len() as u64).collect();
    assert_eq!(versions, expected);
    let id = ticket.parse().unwrap();
    let log = cluster.log.read::<Ticket>(&id, None).await.unwrap();
    for (update, event) in seen.iter().zip(&log) {
        assert_eq!(update.event_type, event.event_type);
    }
    let bodies: Vec<&str> = seen
        .iter()
        .flat_map(|u| &u.messages)
        .filter(|m| m.kind() == v1::MessageKind::AgentReply)
        .map(|m| m.body.as_str())
        .collect();
    let wanted: Vec<String> = (0..50).map(|n| format!("reply {n}")).collect();
    assert_eq!(bodies, wanted);
    assert_eq!(seen[0].messages[0].kind(), v1::MessageKind::Customer);

    // The customer system got the replies, never a note.
    let theirs = read_until(&mut customer_updates, |u| replies(u) == 50).await;
    assert!(
        theirs
            .iter()
            .all(|u| u.event_type != "frontline.v1.InternalNoteAdded")
    );
    assert!(
        theirs
            .iter()
            .flat_map(|u| &u.messages)
            .all(|m| m.kind() != v1::MessageKind::InternalNote && !m.body.starts_with("note"))
    );

    // Resuming from a version sees only what came after it.
    let mut resumed = watch(&mut staff, &ticket, 10).await;
    let first = resumed.message().await.unwrap().unwrap();
    assert_eq!(first.version, 11);

    // Refusals: an unknown ticket, a version the ticket has not reached.
    let err = staff
        .watch_ticket(v1::WatchTicketRequest {
            ticket_id: uuid::Uuid::new_v4().to_string(),
            from_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = staff
        .watch_ticket(v1::WatchTicketRequest {
            ticket_id: ticket.clone(),
            from_version: 10_000,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("from_version"));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_is_cut_off() {
    let cluster = Cluster::start().await.unwrap();
    let ticket = submit(&cluster, "flooded").await;
    // A watcher on a connection with small transport windows, so what it leaves
    // unread piles up in the service's buffer rather than in its own.
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", cluster.conversation_addr))
            .unwrap()
            .initial_stream_window_size(Some(16 * 1024))
            .initial_connection_window_size(Some(16 * 1024))
            .connect()
            .await
            .unwrap();
    let token: tonic::metadata::MetadataValue<_> = format!(
        "Bearer {}",
        Cluster::token_for(&caller("bo", Role::Agent, &[frontline_e2e::TENANT]))
    )
    .parse()
    .unwrap();
    let mut slow = ConversationServiceClient::with_interceptor(
        channel,
        move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
            Ok(request)
        },
    );
    let mut updates = slow
        .watch_ticket(v1::WatchTicketRequest {
            ticket_id: ticket.clone(),
            from_version: 0,
        })
        .await
        .unwrap()
        .into_inner();

    // 400 notes of 4 kB while the watcher reads nothing: more than the service's
    // send buffer and the watcher's buffer hold.
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    for n in 0..400 {
        ana.add_note(note(&ticket, format!("{n:>4000}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut received = 0;
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(30), updates.message())
            .await
            .expect("the watch answers")
        {
            Ok(Some(_)) => received += 1,
            Ok(None) => panic!("the watch ended without a status after {received}"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("watch again from version"));
    eprintln!("cut off after {received} updates");
    assert!(received < 401, "{received}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_as_of_a_moment() {
    let cluster = Cluster::bare().await.unwrap();
    let mut cluster = cluster;
    cluster.intake_addr = cluster.serve(frontline_intake::service()).await.unwrap();
    cluster.conversation_addr = cluster.add_conversation_replica().await.unwrap();
    let ticket = submit(&cluster, "past").await;
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    ana.reply(reply(&ticket, 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let between = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    ana.reply(reply(&ticket, 2)).await.unwrap();

    let at = |t: std::time::SystemTime| Some(prost_types::Timestamp::from(t));
    let get = |as_of_version, as_of_time| v1::GetTicketRequest {
        ticket_id: ticket.clone(),
        as_of_version,
        as_of_time,
    };
    let then = ana
        .get_ticket(get(None, at(between)))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(then.version, 2);
    assert_eq!(then.messages.last().unwrap().body, "reply 1");
    let by_version = ana
        .get_ticket(get(Some(2), None))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(then, by_version);

    // Before it was opened, both at once, and nonsense are refused.
    let before = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
    let err = ana.get_ticket(get(None, at(before))).await.unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("as_of_time"));
    let err = ana.get_ticket(get(Some(1), at(between))).await.unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("as_of_time"));
    let nonsense = Some(prost_types::Timestamp {
        seconds: i64::MAX,
        nanos: 0,
    });
    let err = ana.get_ticket(get(None, nonsense)).await.unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("as_of_time"));
    cluster.shutdown().await;
}
