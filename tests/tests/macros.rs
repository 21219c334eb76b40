//! Macros end to end: admins keep a tenant's canned answers; applying one fills its
//! placeholders from what the customer already told us, and a placeholder with no
//! known value refuses the macro, naming it — nothing is ever sent blank.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, submit_request, violated_field};
use frontline_proto::v1;
use tonic::Code;

fn firmware(status_change: v1::TicketStatus) -> v1::Macro {
    v1::Macro {
        name: "firmware".into(),
        body: "Hi {{customer.name}}, your router {{facts.serial_number}} needs firmware 2.1. \
               We wrote to {{customer.email}}."
            .into(),
        status_change: status_change.into(),
    }
}

fn apply(ticket: &str, name: &str) -> v1::ApplyMacroRequest {
    v1::ApplyMacroRequest {
        ticket_id: ticket.into(),
        name: name.into(),
        idempotency_key: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_macro_is_filled_from_known_facts_or_refused_naming_what_it_needs() {
    let cluster = Cluster::start().await.unwrap();
    let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();

    // Admins keep the book; agents read it.
    let put = root
        .put_macro(v1::PutMacroRequest {
            r#macro: Some(firmware(v1::TicketStatus::Pending)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(put.recorded);
    let err = ana
        .put_macro(v1::PutMacroRequest {
            r#macro: Some(firmware(v1::TicketStatus::Pending)),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = root
        .put_macro(v1::PutMacroRequest {
            r#macro: Some(v1::Macro {
                body: "Hi {{customer.age}}".into(),
                ..firmware(v1::TicketStatus::Pending)
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err).as_deref(), Some("macro.body"));
    let listed = ana
        .list_macros(v1::ListMacrosRequest {})
        .await
        .unwrap()
        .into_inner()
        .macros;
    assert_eq!(listed, [firmware(v1::TicketStatus::Pending)]);

    // The customer told us their serial number, not their name.
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut first = submit_request("macro-1", "dana@example.com");
    first.facts = vec![v1::Fact {
        key: "serial_number".into(),
        value: "SN-42".into(),
    }];
    let ticket = intake
        .submit_ticket(first)
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let stored =
        |c: std::collections::HashMap<String, usize>| c[&format!("frontline.ticket.{ticket}")];
    let before = stored(cluster.ticket_event_counts().await.unwrap());
    let err = ana
        .apply_macro(apply(&ticket, "firmware"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("{{customer.name}}"),
        "{}",
        err.message()
    );
    assert!(
        !err.message().contains("serial_number"),
        "{}",
        err.message()
    );
    // Nothing was sent.
    assert_eq!(stored(cluster.ticket_event_counts().await.unwrap()), before);

    // They tell us their name: the macro goes out, filled, and the ticket waits.
    let mut again = submit_request("macro-2", "dana@example.com");
    again.continue_ticket_id = ticket.clone();
    again.facts = vec![v1::Fact {
        key: "name".into(),
        value: "Dana".into(),
    }];
    intake.submit_ticket(again).await.unwrap();
    let applied = ana
        .apply_macro(apply(&ticket, "firmware"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        applied.body,
        "Hi Dana, your router SN-42 needs firmware 2.1. We wrote to dana@example.com."
    );
    assert_eq!(applied.change.unwrap().status(), v1::TicketStatus::Pending);
    let shown = ana
        .get_ticket(v1::GetTicketRequest {
            ticket_id: ticket.clone(),
            as_of_version: None,
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(shown.messages.last().unwrap().body, applied.body);

    // A solving macro solves; an unknown one is not found; removed is gone.
    root.put_macro(v1::PutMacroRequest {
        r#macro: Some(firmware(v1::TicketStatus::Solved)),
    })
    .await
    .unwrap();
    let solved = ana
        .apply_macro(apply(&ticket, "firmware"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(solved.change.unwrap().status(), v1::TicketStatus::Solved);
    let err = ana.apply_macro(apply(&ticket, "nope")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    root.remove_macro(v1::RemoveMacroRequest {
        name: "firmware".into(),
    })
    .await
    .unwrap();
    let err = root
        .remove_macro(v1::RemoveMacroRequest {
            name: "firmware".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let err = shop
        .list_macros(v1::ListMacrosRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    cluster.shutdown().await;
}
