//! Personal data at rest, forgetting and export, end to end: nothing personal is
//! stored in the clear (stream, key and snapshot buckets, NATS' files on disk);
//! decrypted reads show it; after ForgetCustomer nothing personal is left anywhere
//! (the read model too), the tickets live on, a new contact with the same email is
//! a new customer, and who may forget or export is exactly admins of the tenant.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use frontline_domain::{Customer, Role, Ticket};
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_proto::v1;
use frontline_runtime::{ServiceBuilder, Startup, config::CommonConfig};
use tonic::Code;
use uuid::Uuid;

type Conversation = frontline_proto::v1::conversation_service_client::ConversationServiceClient<
    frontline_e2e::Authed,
>;

const EMAIL: &str = "zelda.forgetme@example.org";
const PHONE: &str = "+49 30 5550199";
const PHONE_NORMALISED: &str = "+49305550199";
const NAME: &str = "Zelda Quasimodo";
const SUBJECT_MARKER: &str = "SUBJECT-MARKER-77c1";
const BODY_MARKER: &str = "BODY-MARKER-91f3";
const REPLY_MARKER: &str = "REPLY-MARKER-4d2e";

/// What must never be found in the clear.
fn personal() -> [&'static str; 7] {
    [
        EMAIL,
        "zelda.forgetme",
        PHONE_NORMALISED,
        NAME,
        SUBJECT_MARKER,
        BODY_MARKER,
        REPLY_MARKER,
    ]
}

fn found_in(bytes: &[u8]) -> Vec<&'static str> {
    personal()
        .into_iter()
        .filter(|p| bytes.windows(p.len()).any(|w| w == p.as_bytes()))
        .collect()
}

/// Every stored message of a stream, raw: subject, headers and payload.
async fn stream_bytes(js: &async_nats::jetstream::Context, name: &str) -> Vec<u8> {
    let Ok(stream) = js.get_stream(name).await else {
        return Vec::new();
    };
    let last = stream.clone().info().await.unwrap().state.last_sequence;
    let mut all = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = stream.get_raw_message(seq).await {
            all.extend_from_slice(m.subject.as_bytes());
            all.extend_from_slice(format!("{:?}", m.headers).as_bytes());
            all.extend_from_slice(&m.payload);
        }
    }
    all
}

/// Every file under `dir`, concatenated.
fn disk_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.file_name().is_some_and(|n| n != "nats-server.log") {
                all.extend(std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    all
}

/// What each place holds in the clear: the stream, the parking stream, the key
/// bucket, the snapshot bucket, NATS' files, the intake read model.
async fn scan(cluster: &Cluster) -> Vec<(&'static str, Vec<&'static str>)> {
    let js = async_nats::jetstream::new(cluster.log.client().clone());
    let stream = cluster.log.stream_name().to_string();
    let db = sqlx::PgPool::connect(&cluster.database.url).await.unwrap();
    let rows: Option<String> =
        sqlx::query_scalar("SELECT string_agg(t::text, '|') FROM customer_tickets t")
            .fetch_one(&db)
            .await
            .unwrap();
    let (log_bytes, disk) = (
        stream_bytes(&js, &stream).await,
        disk_bytes(cluster.nats.store_dir()),
    );
    // The scans read what is there: every event's subject is stored in the clear.
    for bytes in [&log_bytes, &disk] {
        assert!(bytes.windows(19).any(|w| w == b"frontline.customer."));
    }
    vec![
        ("stream", found_in(&log_bytes)),
        (
            "parked",
            found_in(&stream_bytes(&js, &format!("{stream}_PARKED")).await),
        ),
        (
            "keys",
            found_in(&stream_bytes(&js, &format!("KV_{stream}_KEYS")).await),
        ),
        (
            "snapshots",
            found_in(&stream_bytes(&js, &format!("KV_{stream}_SNAPSHOTS")).await),
        ),
        ("disk", found_in(&disk)),
        (
            "customer_tickets",
            found_in(rows.unwrap_or_default().as_bytes()),
        ),
    ]
}

fn clean(scan: &[(&'static str, Vec<&'static str>)], except: &[&str]) {
    for (place, found) in scan {
        if !except.contains(place) {
            assert!(found.is_empty(), "{place} holds {found:?} in the clear");
        }
    }
}

/// Intake's read model, row by row.
async fn read_model(url: &str) -> Vec<(Uuid, Uuid, String, String, i64)> {
    let db = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query_as(
        "SELECT ticket_id, customer_id, subject, status, version FROM customer_tickets \
         ORDER BY ticket_id",
    )
    .fetch_all(&db)
    .await
    .unwrap()
}

/// Waits until projection `name` in `db` has applied stream sequence `sequence`.
async fn caught_up(db: &sqlx::PgPool, name: &str, sequence: u64) {
    for _ in 0..500 {
        if frontline_projection::checkpoint(db, name).await.unwrap() >= sequence {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("projection {name} did not reach {sequence}");
}

/// Intake's read model rebuilt from the log into a fresh database, once it and the
/// live one have applied every event of `tickets`.
async fn rebuild_read_model(
    cluster: &Cluster,
    tickets: &[&str],
) -> Vec<(Uuid, Uuid, String, String, i64)> {
    let mut last = 0;
    for ticket in tickets {
        let id: Uuid = ticket.parse().unwrap();
        last = last.max(cluster.log.last_sequence_of::<Ticket>(&id).await.unwrap());
    }
    let live = sqlx::PgPool::connect(&cluster.database.url).await.unwrap();
    caught_up(&live, "intake-customer-tickets", last).await;
    let fresh = frontline_testkit::test_database().await.unwrap();
    let db = sqlx::PgPool::connect(&fresh.url).await.unwrap();
    frontline_runtime::service::migrate(
        &db,
        &[&frontline_projection::MIGRATOR, &frontline_intake::MIGRATOR],
    )
    .await
    .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let rebuild = tokio::spawn(frontline_projection::run(
        cluster.log.clone(),
        db.clone(),
        std::sync::Arc::new(frontline_intake::open_tickets::CustomerTickets::named(
            "rebuild",
        )),
        stop.clone(),
    ));
    caught_up(&db, "rebuild", last).await;
    stop.cancel();
    rebuild.await.unwrap().unwrap();
    read_model(&fresh.url).await
}

fn forget(id: &str, reason: &str) -> v1::ForgetCustomerRequest {
    v1::ForgetCustomerRequest {
        customer_id: id.into(),
        reason: reason.into(),
    }
}

fn export(id: &str) -> v1::ExportCustomerDataRequest {
    v1::ExportCustomerDataRequest {
        customer_id: id.into(),
    }
}

fn get(id: &str) -> v1::GetCustomerRequest {
    v1::GetCustomerRequest {
        customer_id: id.into(),
        identity: None,
    }
}

/// The ticket `id` as `client` reads it.
async fn ticket_of(client: &mut Conversation, id: &str) -> v1::Ticket {
    client
        .get_ticket(get_ticket(id))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap()
}

/// The ticket `id` once it reads as erased: another service drops its cached key
/// when the key bucket reports the change, within moments.
async fn erased_ticket(client: &mut Conversation, id: &str) -> v1::Ticket {
    for _ in 0..100 {
        let ticket = ticket_of(client, id).await;
        if ticket.personal_data_erased {
            return ticket;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("ticket {id} still shows personal data");
}

fn get_ticket(id: &str) -> v1::GetTicketRequest {
    v1::GetTicketRequest {
        ticket_id: id.into(),
        as_of_version: None,
        as_of_time: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_customer_is_gone_from_every_byte_and_their_tickets_live_on() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let admin_caller = caller("root", Role::Admin, &["acme"]);
    let mut admin = cluster.intake_as(&admin_caller, None).await.unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();

    // Zelda writes in, gives her phone and name; an agent replies and notes.
    let mut first = submit_request("z-1", EMAIL);
    first.customer.as_mut().unwrap().phone = PHONE.into();
    first.subject = format!("Router {SUBJECT_MARKER}");
    first.body = format!("Hello, {BODY_MARKER} here");
    first.facts = vec![v1::Fact {
        key: "name".into(),
        value: NAME.into(),
    }];
    let zelda = shop.submit_ticket(first).await.unwrap().into_inner();
    let ticket = zelda.ticket_id.clone();
    agent
        .reply(v1::ReplyRequest {
            ticket_id: ticket.clone(),
            body: format!("Dear {NAME}, {REPLY_MARKER}"),
            ..Default::default()
        })
        .await
        .unwrap();
    agent
        .add_note(v1::AddNoteRequest {
            ticket_id: ticket.clone(),
            body: format!("called {PHONE_NORMALISED}"),
            ..Default::default()
        })
        .await
        .unwrap();
    // Someone else, who stays.
    let mut other = submit_request("o-1", "otto@example.org");
    other.body = "Otto's own words".into();
    let otto = shop.submit_ticket(other).await.unwrap().into_inner();
    // A snapshot of Zelda's record, so the snapshot bucket is scanned with her in it.
    let zelda_id: Uuid = zelda.customer_id.parse().unwrap();
    let record = cluster.log.load::<Customer>(&zelda_id).await.unwrap();
    cluster
        .log
        .snapshots()
        .save(&zelda_id, &record)
        .await
        .unwrap();

    // Before: nothing personal is stored in the clear on the log, in its buckets or
    // NATS' files (the intake read model keeps ticket subjects until a forget).
    clean(&scan(&cluster).await, &["customer_tickets"]);
    // …and decrypted reads show it.
    let shown = admin
        .get_customer(get(&zelda.customer_id))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(shown.identity.as_ref().unwrap().email, EMAIL);
    assert!(shown.facts.iter().any(|f| f.value == NAME));
    let exported = admin
        .export_customer_data(export(&zelda.customer_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exported.customer.as_ref().unwrap().identities.len(), 2);
    assert_eq!(exported.tickets.len(), 1);
    let bodies: Vec<&str> = exported.tickets[0]
        .messages
        .iter()
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(bodies.len(), 3, "message, reply and note: {bodies:?}");
    assert!(bodies.iter().any(|b| b.contains(BODY_MARKER)));
    assert!(bodies.iter().any(|b| b.contains(REPLY_MARKER)));
    let before = ticket_of(&mut agent, &ticket).await;
    assert!(before.subject.contains(SUBJECT_MARKER));

    // Forget her.
    let answer = admin
        .forget_customer(forget(&zelda.customer_id, "gdpr-req-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.forgotten_customer_ids,
        vec![zelda.customer_id.clone()]
    );
    assert!(!answer.already_forgotten);
    assert!(answer.forgotten_at.is_some());
    // Again: the same answer, nothing new.
    let again = admin
        .forget_customer(forget(&zelda.customer_id, "gdpr-req-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_forgotten);
    assert_eq!(again.forgotten_at, answer.forgotten_at);

    // After: nothing personal anywhere, the read model included.
    clean(&scan(&cluster).await, &[]);

    // Every read shows the marker; counts, times and statuses stay. Conversation
    // (another process, as far as its key cache knows) had Zelda's key cached: it
    // drops it when the key bucket reports the change, within moments.
    let after = erased_ticket(&mut agent, &ticket).await;
    assert_eq!(after.subject, "[erased]");
    assert!(after.messages.iter().all(|m| m.body == "[erased]"));
    assert_eq!(
        (
            after.status,
            after.version,
            after.opened_at,
            after.messages.len()
        ),
        (
            before.status,
            before.version,
            before.opened_at,
            before.messages.len()
        )
    );
    let gone = admin
        .get_customer(get(&zelda.customer_id))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert!(gone.forgotten_at.is_some());
    assert!(gone.identities.is_empty() && gone.facts.is_empty());
    assert_eq!(gone.ticket_ids, vec![ticket.clone()]);
    assert!(gone.open_tickets.iter().all(|t| t.subject == "[erased]"));
    let remainder = admin
        .export_customer_data(export(&zelda.customer_id))
        .await
        .unwrap()
        .into_inner();
    assert!(remainder.customer.unwrap().identities.is_empty());
    assert_eq!(remainder.tickets.len(), 1);
    assert!(remainder.tickets[0].personal_data_erased);

    // The lifecycle goes on: the agent solves her ticket (the resolution text is
    // not kept).
    agent
        .solve(v1::SolveRequest {
            ticket_id: ticket.clone(),
            resolution: format!("told {NAME}"),
            expected_version: None,
        })
        .await
        .unwrap();
    let solved = ticket_of(&mut agent, &ticket).await;
    assert_eq!(solved.status, v1::TicketStatus::Solved as i32);
    clean(&scan(&cluster).await, &[]);

    // A rebuild of the read model from the log gives the same blanks.
    let rebuilt = rebuild_read_model(&cluster, &[&ticket, &otto.ticket_id]).await;
    let live = read_model(&cluster.database.url).await;
    assert_eq!(live, rebuilt);
    assert_eq!(live.len(), 2);
    assert!(live.iter().any(|row| row.2 == "[erased]"));

    // Otto is untouched.
    let otto_ticket = ticket_of(&mut agent, &otto.ticket_id).await;
    assert!(!otto_ticket.personal_data_erased);
    assert_eq!(otto_ticket.messages[0].body, "Otto's own words");

    // The same email again is somebody new.
    let back = shop
        .submit_ticket(submit_request("z-2", EMAIL))
        .await
        .unwrap()
        .into_inner();
    assert!(back.created);
    assert_ne!(back.customer_id, zelda.customer_id);
    let newcomer = admin
        .get_customer(get(&back.customer_id))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(newcomer.identity.unwrap().email, EMAIL);
    assert!(newcomer.forgotten_at.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_of_the_tenant_forgets_or_exports() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let customer = shop
        .submit_ticket(submit_request("k-1", "kim@example.org"))
        .await
        .unwrap()
        .into_inner()
        .customer_id;
    let calls = [
        (
            caller("web-shop", Role::CustomerSystem, &["acme"]),
            Code::PermissionDenied,
        ),
        (
            caller("ana", Role::Agent, &["acme"]),
            Code::PermissionDenied,
        ),
        (
            caller("max", Role::Manager, &["acme"]),
            Code::PermissionDenied,
        ),
        (caller("root-2", Role::Admin, &["globex"]), Code::NotFound),
    ];
    for (who, code) in calls {
        let mut intake = cluster.intake_as(&who, None).await.unwrap();
        let err = intake
            .forget_customer(forget(&customer, "gdpr"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "forget as {who:?}: {err:?}");
        let err = intake
            .export_customer_data(export(&customer))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "export as {who:?}: {err:?}");
    }
    let mut admin = cluster
        .intake_as(&caller("root", Role::Admin, &["acme"]), None)
        .await
        .unwrap();
    for (request, field) in [
        (forget("not-a-uuid", "gdpr"), "customer_id"),
        (forget(&customer, "  "), "reason"),
        (forget(&customer, &"x".repeat(501)), "reason"),
    ] {
        let err = admin.forget_customer(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(
            frontline_e2e::violated_field(&err).as_deref(),
            Some(field),
            "{err:?}"
        );
    }
    let err = admin
        .forget_customer(forget(&Uuid::new_v4().to_string(), "gdpr"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = admin
        .export_customer_data(export("nope"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Nothing refused changed anything: the customer is still known.
    let still = admin
        .export_customer_data(export(&customer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.customer.unwrap().identities.len(), 1);
}

/// A service started with another key-encryption key than the one the key store
/// was created with is refused at start (never answering "erased" for everyone),
/// and one without a key does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_key_encryption_key_is_refused_at_start() {
    let cluster = Cluster::start().await.unwrap();
    let run = |kek: Option<String>| {
        let mut args = vec![
            "--nats-url".to_string(),
            cluster.nats.url(),
            "--jwt-secret".into(),
            "s".into(),
            "--shutdown-grace-secs".into(),
            "1".into(),
        ];
        if let Some(kek) = kek {
            args.extend(["--kek".into(), kek]);
        }
        async move {
            let config = CommonConfig::from_args(args).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let startup = Startup {
                config,
                listener,
                shutdown: Box::pin(std::future::pending()),
            };
            let service: ServiceBuilder = frontline_conversation::service();
            tokio::time::timeout(std::time::Duration::from_secs(20), service.run(startup))
                .await
                .expect("refused at start, not left running")
        }
    };
    let wrong = run(Some(frontline_privacy::Kek::generate_base64()))
        .await
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("FRONTLINE_KEK"), "{wrong}");
    assert!(wrong.contains("another"), "{wrong}");
    let missing = run(None).await.unwrap_err().to_string();
    assert!(
        missing.contains("key-encryption key is required"),
        "{missing}"
    );
    let malformed = run(Some("not base64".into()))
        .await
        .unwrap_err()
        .to_string();
    assert!(malformed.contains("32 bytes"), "{malformed}");
}

/// Forgetting one record of a person forgets every record linked with it; a forget
/// cut off after its event (claims still held, key still there) is finished from
/// the event by intake's finisher, and a later call answers `already_forgotten`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_person_is_forgotten_and_an_interrupted_forget_finishes_itself() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut admin = cluster
        .intake_as(&caller("root", Role::Admin, &["acme"]), None)
        .await
        .unwrap();
    let first = shop
        .submit_ticket(submit_request("p-1", "pat@example.org"))
        .await
        .unwrap()
        .into_inner();
    let second = shop
        .submit_ticket(submit_request("p-2", "pat.work@example.org"))
        .await
        .unwrap()
        .into_inner();
    admin
        .link_customers(v1::LinkCustomersRequest {
            customer_id: first.customer_id.clone(),
            other_customer_id: second.customer_id.clone(),
        })
        .await
        .unwrap();
    // Named by the linked record: both go.
    let answer = admin
        .forget_customer(forget(&second.customer_id, "gdpr-2"))
        .await
        .unwrap()
        .into_inner();
    let mut forgotten = answer.forgotten_customer_ids.clone();
    forgotten.sort();
    let mut both = vec![first.customer_id.clone(), second.customer_id.clone()];
    both.sort();
    assert_eq!(forgotten, both);
    for email in ["pat@example.org", "pat.work@example.org"] {
        let again = shop
            .submit_ticket(submit_request(&format!("again-{email}"), email))
            .await
            .unwrap()
            .into_inner();
        assert!(
            !both.contains(&again.customer_id),
            "{email} is somebody new"
        );
    }

    // Interrupted: only the event was written.
    let kim = shop
        .submit_ticket(submit_request("k-1", "kim.cut@example.org"))
        .await
        .unwrap()
        .into_inner();
    let kim_id: Uuid = kim.customer_id.parse().unwrap();
    let record = cluster.log.load::<Customer>(&kim_id).await.unwrap();
    let mut claims = Vec::new();
    for key in &record.state.identities {
        claims.push(cluster.claim_id(key).await.unwrap());
    }
    let meta = frontline_eventlog::EventMeta {
        actor: frontline_domain::Actor::new("root", Role::Admin),
        correlation_id: "cut".into(),
        causation_id: "cut".into(),
        traceparent: None,
    };
    frontline_eventlog::execute::<Customer, _>(
        &cluster.log,
        &kim_id,
        &meta,
        frontline_eventlog::CommandOptions::default(),
        frontline_runtime::now_millis,
        |c, _| frontline_domain::customer::forget(c, kim_id, &meta.actor, "gdpr-3", claims.clone()),
    )
    .await
    .unwrap();
    // Intake's finisher follows the event: her key goes, her email is released and
    // the read model blanked, with no second call.
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    erased_ticket(&mut agent, &kim.ticket_id).await;
    let db = sqlx::PgPool::connect(&cluster.database.url).await.unwrap();
    let mut blanked = false;
    for _ in 0..250 {
        let subject: String =
            sqlx::query_scalar("SELECT subject FROM customer_tickets WHERE ticket_id = $1::uuid")
                .bind(&kim.ticket_id)
                .fetch_one(&db)
                .await
                .unwrap();
        if subject == "[erased]" {
            blanked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(blanked, "the read model is blanked by the finisher");
    let again = shop
        .submit_ticket(submit_request("k-2", "kim.cut@example.org"))
        .await
        .unwrap()
        .into_inner();
    // A second call finds everything done.
    let finished = admin
        .forget_customer(forget(&kim.customer_id, "gdpr-3"))
        .await
        .unwrap()
        .into_inner();
    assert!(finished.already_forgotten);
    assert_ne!(again.customer_id, kim.customer_id, "her email was released");
}
