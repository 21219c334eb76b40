//! One customer however they come in: any known identity finds them, new identities
//! are added to them, concurrent first contacts make one customer, spelling tricks
//! do not make a second one, and an agent can link two records of the same person
//! and undo it.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use frontline_domain::{Customer, IdentityClaim, Role};
use frontline_e2e::{Cluster, submit_request};
use frontline_proto::v1;
use tonic::Code;
use uuid::Uuid;

fn fact(key: &str, value: &str) -> v1::Fact {
    v1::Fact {
        key: key.into(),
        value: value.into(),
    }
}

fn by_identity(identity: v1::CustomerIdentity) -> v1::GetCustomerRequest {
    v1::GetCustomerRequest {
        customer_id: String::new(),
        identity: Some(identity),
    }
}

fn by_id(id: &str) -> v1::GetCustomerRequest {
    v1::GetCustomerRequest {
        customer_id: id.into(),
        identity: None,
    }
}

fn phone(number: &str) -> v1::CustomerIdentity {
    v1::CustomerIdentity {
        phone: number.into(),
        ..Default::default()
    }
}

/// The customer of a GetCustomer answer.
fn customer(answer: tonic::Response<v1::GetCustomerResponse>) -> v1::Customer {
    answer.into_inner().customer.unwrap()
}

fn facts_of(customer: &v1::Customer) -> Vec<(String, String)> {
    let mut facts: Vec<_> = customer
        .facts
        .iter()
        .map(|f| (f.key.clone(), f.value.clone()))
        .collect();
    facts.sort();
    facts
}

/// The integrator's report: a customer who first wrote by email giving their phone
/// number calls from that number (spelled another way) and is recognised, with
/// their open ticket and their facts, without being asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_caller_is_the_email_writer() {
    let cluster = Cluster::start().await.unwrap();
    let mut mail = cluster
        .intake("mail-gateway", Role::CustomerSystem)
        .await
        .unwrap();
    let mut phones = cluster
        .intake("phone-system", Role::CustomerSystem)
        .await
        .unwrap();

    let mut first = submit_request("mail-1", "Alice@Example.COM ");
    first.customer.as_mut().unwrap().phone = "+49 309347052".into();
    first.facts = vec![fact("serial", "SN-77"), fact("order", "1001")];
    let first = mail.submit_ticket(first).await.unwrap().into_inner();

    let found = phones
        .get_customer(by_identity(phone("+49 309347052")))
        .await
        .map(customer)
        .unwrap();
    assert_eq!(found.customer_id, first.customer_id);

    let mut call = submit_request("call-1", "");
    call.channel = v1::Channel::Phone.into();
    call.customer = Some(phone("0049 (30) 9347052"));
    let call = phones.submit_ticket(call).await.unwrap().into_inner();
    assert_eq!(call.customer_id, first.customer_id, "the same customer");
    assert_eq!(
        call.other_open_tickets
            .iter()
            .map(|t| t.ticket_id.as_str())
            .collect::<Vec<_>>(),
        [first.ticket_id.as_str()],
        "the open ticket comes back"
    );
    let mut known: Vec<_> = call
        .known_facts
        .iter()
        .map(|f| (f.key.as_str(), f.value.as_str()))
        .collect();
    known.sort();
    assert_eq!(known, [("order", "1001"), ("serial", "SN-77")]);

    // By email too, in any spelling.
    let by_email = phones
        .get_customer(by_identity(v1::CustomerIdentity {
            email: "ALICE@example.com".into(),
            ..Default::default()
        }))
        .await
        .map(customer)
        .unwrap();
    assert_eq!(by_email.customer_id, first.customer_id);
    assert_eq!(by_email.identities.len(), 2, "{:?}", by_email.identities);
    cluster.shutdown().await;
}

/// A known customer seen for the first time with an external id stays the same
/// customer, with their facts, and the external id finds them from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_id_added_later_keeps_the_customer() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut first = submit_request("shop-1", "bo@example.com");
    first.facts = vec![fact("serial", "SN-1")];
    let first = shop.submit_ticket(first).await.unwrap().into_inner();

    let mut second = submit_request("shop-2", "bo@example.com");
    second.customer.as_mut().unwrap().external_id = "crm-42".into();
    let second = shop.submit_ticket(second).await.unwrap().into_inner();
    assert_eq!(second.customer_id, first.customer_id);
    assert_eq!(second.known_facts, [fact("serial", "SN-1")]);

    // The external id alone finds them now; so does a contact with only it.
    let found = shop
        .get_customer(by_identity(v1::CustomerIdentity {
            external_id: "crm-42".into(),
            ..Default::default()
        }))
        .await
        .map(customer)
        .unwrap();
    assert_eq!(found.customer_id, first.customer_id);
    let mut third = submit_request("shop-3", "");
    third.customer = Some(v1::CustomerIdentity {
        external_id: " crm-42 ".into(),
        ..Default::default()
    });
    let third = shop.submit_ticket(third).await.unwrap().into_inner();
    assert_eq!(third.customer_id, first.customer_id);
    assert_eq!(third.other_open_tickets.len(), 2);
    cluster.shutdown().await;
}

/// Zero-width and other format characters, full-width letters and case do not
/// make a second customer; control characters are refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spelling_tricks_make_no_second_customer() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let plain = shop
        .submit_ticket(submit_request("eve-1", "eve@example.com"))
        .await
        .unwrap()
        .into_inner();
    for (key, email) in [
        ("eve-2", "eve\u{200b}@example.com"),
        ("eve-3", "\u{feff}EVE@example.com"),
        ("eve-4", "ｅｖｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        ("eve-5", "e\u{00ad}ve@exam\u{2060}ple.com"),
    ] {
        let answer = shop
            .submit_ticket(submit_request(key, email))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.customer_id, plain.customer_id, "{email:?}");
    }
    for (email, field) in [
        ("eve\u{0}@example.com", "customer.email"),
        ("eve\n@example.com", "customer.email"),
    ] {
        let status = shop
            .submit_ticket(submit_request("eve-bad", email))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{email:?}");
        assert_eq!(
            frontline_e2e::violated_field(&status).as_deref(),
            Some(field)
        );
    }
    let mut bad_phone = submit_request("eve-bad-phone", "eve@example.com");
    bad_phone.customer.as_mut().unwrap().phone = "+49\u{7}30123456".into();
    let status = shop.submit_ticket(bad_phone).await.unwrap_err();
    assert_eq!(
        frontline_e2e::violated_field(&status).as_deref(),
        Some("customer.phone")
    );
    cluster.shutdown().await;
}

/// 50 concurrent first contacts whose identities overlap (the email, spelled
/// several ways, with a phone of their own; with the shared phone and an external
/// id of their own — a stronger identity, which derives another customer id; with
/// the shared phone alone) make exactly one customer, on two intake replicas: the identity
/// claims decide, and every contact's ticket is on that customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_contacts_with_overlapping_identities_make_one_customer() {
    let mut cluster = Cluster::start().await.unwrap();
    let second_replica = cluster.add_intake_replica().await.unwrap();
    let shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let other = {
        let channel = tonic::transport::Channel::from_shared(format!("http://{second_replica}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let token = cluster.token("web-shop", Role::CustomerSystem);
        v1::intake_service_client::IntakeServiceClient::with_interceptor(
            channel,
            move |mut r: tonic::Request<()>| {
                r.metadata_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
                Ok(r)
            },
        )
    };
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let mut request = submit_request(&format!("rush-{i}"), "");
            let customer = request.customer.as_mut().unwrap();
            match i % 3 {
                // The email, and a phone of their own.
                0 => {
                    customer.email = "rush@example.com".into();
                    customer.phone = format!("+4930556{i:04}");
                }
                // The email, the shared phone, and an external id of their own.
                1 => {
                    customer.email = " rush@EXAMPLE.com".into();
                    customer.phone = "+49 30 5550000".into();
                    customer.external_id = format!("crm-{i}");
                }
                // Both shared identities.
                _ => {
                    customer.email = "Rush@Example.com".into();
                    customer.phone = "0049 30 5550000".into();
                }
            }
            let (mut a, mut b) = (shop.clone(), other.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    a.submit_ticket(request).await
                } else {
                    b.submit_ticket(request).await
                }
            })
        })
        .collect();
    let mut customers = HashSet::new();
    let mut tickets = Vec::new();
    for call in calls {
        let answer = call.await.unwrap().unwrap().into_inner();
        customers.insert(answer.customer_id);
        tickets.push(answer.ticket_id);
    }
    // A contact with an external id derives another customer id when it comes
    // first — but its batch claims the email too, and only one batch can: the
    // others see the claim and join.
    assert_eq!(customers.len(), 1, "one customer: {customers:?}");
    let id = Uuid::parse_str(customers.iter().next().unwrap()).unwrap();
    let record = cluster.log.load::<Customer>(&id).await.unwrap().state;
    for ticket in &tickets {
        assert!(
            record
                .ticket_ids
                .contains(&Uuid::parse_str(ticket).unwrap()),
            "{ticket} on the record"
        );
    }
    // 17 own external ids + 17 own phones + the email + the shared phone.
    assert_eq!(record.identities.len(), 17 + 17 + 2);
    assert!(record.possible_duplicates.is_empty());
    // Every identity's claim names that customer, and no customer record was
    // written for anybody else.
    for key in &record.identities {
        let claim_id = cluster.claim_id(key).await.unwrap();
        let claim = cluster.log.load::<IdentityClaim>(&claim_id).await.unwrap();
        assert_eq!((claim.state.customer, claim.state.version), (Some(id), 1));
    }
    let js = async_nats::jetstream::new(cluster.log.client().clone());
    let stream = js.get_stream(cluster.log.stream_name()).await.unwrap();
    use futures::TryStreamExt as _;
    let customer_subjects: Vec<(String, usize)> = stream
        .info_with_subjects("frontline.customer.>")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(customer_subjects.len(), 1, "{customer_subjects:?}");
    cluster.shutdown().await;
}

/// Two records of the same person (one from email, one from a phone call that
/// gave nothing else): an agent links them — tickets, facts and recognition follow
/// — and unlinking restores both as they were, while what was written during the
/// link stays where it was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_and_unlink_round_trip() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.intake("ana", Role::Agent).await.unwrap();

    let mut by_mail = submit_request("link-1", "carl@example.com");
    by_mail.facts = vec![fact("serial", "SN-9")];
    let by_mail = shop.submit_ticket(by_mail).await.unwrap().into_inner();
    let mut by_phone = submit_request("link-2", "");
    by_phone.customer = Some(phone("+4930111222"));
    by_phone.facts = vec![fact("plan", "pro"), fact("serial", "SN-OLD")];
    let by_phone = shop.submit_ticket(by_phone).await.unwrap().into_inner();
    assert_ne!(by_mail.customer_id, by_phone.customer_id);
    let reader = agent.clone();
    let view = |id: String| {
        let mut agent = reader.clone();
        async move { agent.get_customer(by_id(&id)).await.map(customer).unwrap() }
    };
    let (mail_before, phone_before) = (
        view(by_mail.customer_id.clone()).await,
        view(by_phone.customer_id.clone()).await,
    );

    // A customer system may not link; a customer cannot be linked to itself.
    let link = v1::LinkCustomersRequest {
        customer_id: by_mail.customer_id.clone(),
        other_customer_id: by_phone.customer_id.clone(),
    };
    let refused = shop.link_customers(link.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut to_itself = link.clone();
    to_itself.other_customer_id = by_mail.customer_id.clone();
    assert_eq!(
        agent.link_customers(to_itself).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let linked = agent
        .link_customers(link.clone())
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(linked.customer_id, by_mail.customer_id);
    assert_eq!(
        linked.linked_customer_ids,
        std::slice::from_ref(&by_phone.customer_id)
    );
    assert_eq!(
        facts_of(&linked),
        [
            ("plan".to_string(), "pro".to_string()),
            ("serial".to_string(), "SN-9".to_string())
        ],
        "facts follow; the record linked into wins a shared key"
    );
    let mut both = vec![by_mail.ticket_id.clone(), by_phone.ticket_id.clone()];
    both.sort();
    let mut open: Vec<String> = linked
        .open_tickets
        .iter()
        .map(|t| t.ticket_id.clone())
        .collect();
    open.sort();
    assert_eq!(open, both, "tickets follow");
    // The phone record's ticket shows the person's facts.
    let ticket = cluster
        .conversation("ana", Role::Agent)
        .await
        .unwrap()
        .get_ticket(v1::GetTicketRequest {
            ticket_id: by_phone.ticket_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert!(ticket.customer_facts.contains(&fact("serial", "SN-9")));
    assert!(ticket.customer_facts.contains(&fact("plan", "pro")));
    // Linking again changes nothing; the linked record shows through the other.
    agent.link_customers(link).await.unwrap();
    assert_eq!(
        view(by_phone.customer_id.clone()).await.customer_id,
        by_mail.customer_id
    );
    // Recognition follows: the phone number now finds the email customer, and a
    // call from it lands there, with both records' facts.
    let mut call = submit_request("link-3", "");
    call.customer = Some(phone("+49 30 111222"));
    let call = shop.submit_ticket(call).await.unwrap().into_inner();
    assert_eq!(call.customer_id, by_mail.customer_id);
    assert_eq!(call.other_open_tickets.len(), 2);
    assert!(call.known_facts.contains(&fact("plan", "pro")));

    // Unlink: both as they were; the ticket opened during the link stays on the
    // record it was written to.
    let unlinked = agent
        .unlink_customers(v1::UnlinkCustomersRequest {
            customer_id: by_mail.customer_id.clone(),
            other_customer_id: by_phone.customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let (mail_after, phone_after) = (unlinked.customer.unwrap(), unlinked.other_customer.unwrap());
    assert_eq!(phone_after.customer_id, by_phone.customer_id);
    assert!(mail_after.linked_customer_ids.is_empty());
    assert_eq!(facts_of(&mail_after), facts_of(&mail_before));
    assert_eq!(facts_of(&phone_after), facts_of(&phone_before));
    assert_eq!(phone_after.ticket_ids, phone_before.ticket_ids);
    assert_eq!(phone_after.identities, phone_before.identities);
    assert_eq!(mail_after.identities, mail_before.identities);
    let mut mail_tickets = mail_before.ticket_ids.clone();
    mail_tickets.push(call.ticket_id.clone());
    assert_eq!(mail_after.ticket_ids, mail_tickets);
    // Unlinking what is not linked is refused.
    let again = agent
        .unlink_customers(v1::UnlinkCustomersRequest {
            customer_id: by_mail.customer_id.clone(),
            other_customer_id: by_phone.customer_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    cluster.shutdown().await;
}

/// A contact whose identities point to two different customers goes to the
/// strongest identity's customer and is recorded there as a possible duplicate,
/// shown to staff only; nothing is merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_bridging_two_customers_is_a_possible_duplicate() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let by_mail = shop
        .submit_ticket(submit_request("dup-1", "dora@example.com"))
        .await
        .unwrap()
        .into_inner();
    let mut by_phone = submit_request("dup-2", "");
    by_phone.customer = Some(phone("+4930999888"));
    let by_phone = shop.submit_ticket(by_phone).await.unwrap().into_inner();

    let mut bridge = submit_request("dup-3", "dora@example.com");
    bridge.customer.as_mut().unwrap().phone = "+4930999888".into();
    let bridge = shop.submit_ticket(bridge).await.unwrap().into_inner();
    assert_eq!(bridge.customer_id, by_mail.customer_id, "email beats phone");

    let staff = cluster
        .intake("ana", Role::Agent)
        .await
        .unwrap()
        .get_customer(by_id(&by_mail.customer_id))
        .await
        .map(customer)
        .unwrap();
    assert_eq!(
        staff.possible_duplicates,
        std::slice::from_ref(&by_phone.customer_id)
    );
    assert!(
        staff.linked_customer_ids.is_empty(),
        "never merged silently"
    );
    let system = shop
        .get_customer(by_id(&by_mail.customer_id))
        .await
        .map(customer)
        .unwrap();
    assert!(system.possible_duplicates.is_empty());
    // The phone still finds its own record.
    let found = shop
        .get_customer(by_identity(phone("+4930999888")))
        .await
        .map(customer)
        .unwrap();
    assert_eq!(found.customer_id, by_phone.customer_id);
    cluster.shutdown().await;
}
