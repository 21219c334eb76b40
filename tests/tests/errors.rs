//! Every public call's error paths, each answered with the one gRPC code the contract
//! gives it: INVALID_ARGUMENT (naming the field), NOT_FOUND, FAILED_PRECONDITION,
//! ALREADY_EXISTS, ABORTED, PERMISSION_DENIED, UNAUTHENTICATED, RESOURCE_EXHAUSTED
//! and UNAVAILABLE — against the real services and a real NATS server.
#![allow(clippy::unwrap_used)]

use std::{
    fmt::Debug,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use frontline_domain::Role;
use frontline_e2e::{Cluster, SECRET, submit_request, violated_field};
use frontline_proto::v1::{
    self, analytics_service_client::AnalyticsServiceClient,
    conversation_service_client::ConversationServiceClient,
    intake_service_client::IntakeServiceClient, routing_service_client::RoutingServiceClient,
};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

/// Asserts that `result` failed with `code`, and returns the status.
fn expect_code<T: Debug>(result: Result<Response<T>, Status>, code: Code, what: &str) -> Status {
    match result {
        Ok(response) => panic!("{what}: expected {code:?}, got a response {response:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{what}: {status:?}");
            status
        }
    }
}

/// Asserts that `result` failed with INVALID_ARGUMENT naming `field`.
fn expect_invalid<T: Debug>(result: Result<Response<T>, Status>, field: &str, what: &str) {
    let status = expect_code(result, Code::InvalidArgument, what);
    assert_eq!(
        violated_field(&status).as_deref(),
        Some(field),
        "{what}: {status:?}"
    );
}

fn random_id() -> String {
    Uuid::new_v4().to_string()
}

fn reply(ticket_id: &str, body: &str) -> v1::ReplyRequest {
    v1::ReplyRequest {
        ticket_id: ticket_id.to_string(),
        body: body.to_string(),
        awaiting_customer: false,
        expected_version: None,
        idempotency_key: String::new(),
    }
}

fn note(ticket_id: &str) -> v1::AddNoteRequest {
    v1::AddNoteRequest {
        ticket_id: ticket_id.to_string(),
        body: "internal".to_string(),
        expected_version: None,
        idempotency_key: String::new(),
    }
}

fn solve(ticket_id: &str) -> v1::SolveRequest {
    v1::SolveRequest {
        ticket_id: ticket_id.to_string(),
        resolution: "done".to_string(),
        expected_version: None,
    }
}

fn reopen(ticket_id: &str) -> v1::ReopenRequest {
    v1::ReopenRequest {
        ticket_id: ticket_id.to_string(),
        reason: "again".to_string(),
        expected_version: None,
    }
}

fn propose(ticket_id: &str) -> v1::ProposeDeclineRequest {
    v1::ProposeDeclineRequest {
        ticket_id: ticket_id.to_string(),
        reason: "We cannot do that.".to_string(),
        rationale: "Against policy.".to_string(),
        expected_version: None,
    }
}

fn approve(ticket_id: &str) -> v1::ApproveDeclineRequest {
    v1::ApproveDeclineRequest {
        ticket_id: ticket_id.to_string(),
        note: String::new(),
        expected_version: None,
    }
}

fn reject(ticket_id: &str) -> v1::RejectDeclineRequest {
    v1::RejectDeclineRequest {
        ticket_id: ticket_id.to_string(),
        note: "Offer a voucher.".to_string(),
        expected_version: None,
    }
}

fn close(ticket_id: &str) -> v1::CloseRequest {
    v1::CloseRequest {
        ticket_id: ticket_id.to_string(),
        expected_version: None,
    }
}

fn rate(ticket_id: &str) -> v1::RateSatisfactionRequest {
    v1::RateSatisfactionRequest {
        ticket_id: ticket_id.to_string(),
        score: 5,
        comment: String::new(),
        expected_version: None,
    }
}

fn nps(customer_id: &str) -> v1::RecordNpsRequest {
    v1::RecordNpsRequest {
        customer_id: customer_id.to_string(),
        score: 9,
        comment: String::new(),
    }
}

fn feedback(key: &str) -> v1::RecordFeedbackRequest {
    v1::RecordFeedbackRequest {
        idempotency_key: key.to_string(),
        product_area: "router-x200".to_string(),
        body: "Make the LED blue.".to_string(),
        customer_id: String::new(),
        ticket_id: String::new(),
    }
}

fn merge(source: &str, target: &str) -> v1::MergeTicketRequest {
    v1::MergeTicketRequest {
        source_ticket_id: source.to_string(),
        target_ticket_id: target.to_string(),
        reason: String::new(),
    }
}

fn unmerge(source: &str) -> v1::UnmergeTicketRequest {
    v1::UnmergeTicketRequest {
        source_ticket_id: source.to_string(),
        reason: String::new(),
    }
}

fn apply_macro(ticket_id: &str, name: &str) -> v1::ApplyMacroRequest {
    v1::ApplyMacroRequest {
        ticket_id: ticket_id.to_string(),
        name: name.to_string(),
        idempotency_key: String::new(),
    }
}

fn put_macro(name: &str, body: &str) -> v1::PutMacroRequest {
    v1::PutMacroRequest {
        r#macro: Some(v1::Macro {
            name: name.to_string(),
            body: body.to_string(),
            status_change: 0,
        }),
    }
}

fn article(slug: &str, title: &str, body: &str) -> v1::Article {
    v1::Article {
        slug: slug.to_string(),
        product_area: "router-x200".to_string(),
        title: title.to_string(),
        body: body.to_string(),
        ..Default::default()
    }
}

/// The article the tests publish: `slug`, about a rebooting router.
fn router_article(slug: &str) -> v1::Article {
    article(
        slug,
        "Router restarts by itself",
        "Hold the reset button for ten seconds.",
    )
}

fn publish(article: v1::Article, expected_revision: Option<u32>) -> v1::PublishArticleRequest {
    v1::PublishArticleRequest {
        article: Some(article),
        expected_revision,
    }
}

fn retire(slug: &str, expected_revision: Option<u32>) -> v1::RetireArticleRequest {
    v1::RetireArticleRequest {
        slug: slug.to_string(),
        expected_revision,
    }
}

fn get_article(slug: &str) -> v1::GetArticleRequest {
    v1::GetArticleRequest {
        slug: slug.to_string(),
    }
}

/// Self-service of article `slug`: with `key` and no ticket, or on `ticket_id`.
fn self_served(key: &str, slug: &str, ticket_id: &str) -> v1::RecordSelfServiceRequest {
    v1::RecordSelfServiceRequest {
        idempotency_key: key.to_string(),
        slug: slug.to_string(),
        customer_id: String::new(),
        ticket_id: ticket_id.to_string(),
    }
}

fn suggest(subject: &str, body: &str) -> v1::SuggestAnswersRequest {
    v1::SuggestAnswersRequest {
        subject: subject.to_string(),
        body: body.to_string(),
        product_area: String::new(),
        limit: 0,
    }
}

fn get_ticket(ticket_id: &str, as_of_version: Option<u64>) -> v1::GetTicketRequest {
    v1::GetTicketRequest {
        ticket_id: ticket_id.to_string(),
        as_of_version,
        as_of_time: None,
    }
}

fn history(ticket_id: &str) -> v1::GetTicketHistoryRequest {
    v1::GetTicketHistoryRequest {
        ticket_id: ticket_id.to_string(),
    }
}

fn fact(key: &str, value: &str) -> v1::Fact {
    v1::Fact {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// A request carrying `authorization` exactly as given.
fn with_auth<T>(message: T, authorization: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    request
}

/// Bad input on every call is INVALID_ARGUMENT with a field violation naming the
/// offending request field, and a refused submit stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();

    // SubmitTicket: one bad field at a time.
    let mut cases: Vec<(&str, v1::SubmitTicketRequest)> = Vec::new();
    let mut r = submit_request("bad-channel", "c@example.com");
    r.channel = v1::Channel::Unspecified.into();
    cases.push(("channel", r));
    let mut r = submit_request("no-customer", "c@example.com");
    r.customer = None;
    cases.push(("customer", r));
    let mut r = submit_request("empty-customer", "c@example.com");
    r.customer = Some(v1::CustomerIdentity::default());
    cases.push(("customer", r));
    cases.push((
        "customer.email",
        submit_request("bad-email", "not-an-email"),
    ));
    let mut r = submit_request("bad-phone", "c@example.com");
    r.customer = Some(v1::CustomerIdentity {
        phone: "030 1234567".into(),
        ..Default::default()
    });
    cases.push(("customer.phone", r));
    cases.push(("idempotency_key", submit_request("", "c@example.com")));
    cases.push((
        "idempotency_key",
        submit_request("has space", "c@example.com"),
    ));
    let mut r = submit_request("empty-subject", "c@example.com");
    r.subject = String::new();
    cases.push(("subject", r));
    let mut r = submit_request("big-body", "c@example.com");
    r.body = "x".repeat(32 * 1024 + 1);
    cases.push(("body", r));
    let mut r = submit_request("bad-area", "c@example.com");
    r.product_area = "Router X".into();
    cases.push(("product_area", r));
    let mut r = submit_request("bad-fact", "c@example.com");
    r.facts = vec![fact("serial", "SN-1"), fact("Bad Key", "x")];
    cases.push(("facts[1].key", r));
    let mut r = submit_request("many-facts", "c@example.com");
    r.facts = (0..33).map(|i| fact(&format!("k{i}"), "v")).collect();
    cases.push(("facts", r));
    let mut r = submit_request("bad-continue", "c@example.com");
    r.continue_ticket_id = "not-a-uuid".into();
    cases.push(("continue_ticket_id", r));
    for (field, request) in cases {
        let what = format!("SubmitTicket with a bad {field}");
        expect_invalid(intake.submit_ticket(request).await, field, &what);
    }

    // A refused submit stores nothing: a bad fact on a fresh key opens no ticket.
    let before = cluster.ticket_event_counts().await.unwrap();
    let mut r = submit_request("fresh-key-bad-fact", "fresh@example.com");
    r.facts = vec![fact("serial", "SN-1"), fact("Bad Key", "x")];
    expect_invalid(intake.submit_ticket(r).await, "facts[1].key", "bad fact");
    let after = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(after, before, "a refused submit must not store events");
    let would_be = frontline_domain::ids::ticket_id(
        &frontline_domain::TenantId::parse("tenant", frontline_e2e::TENANT).unwrap(),
        "web-shop",
        frontline_domain::Channel::Email,
        "fresh-key-bad-fact",
    );
    assert!(!after.contains_key(&format!("frontline.ticket.{would_be}")));

    // GetCustomer: exactly one of customer_id or identity, and a UUID.
    let neither = v1::GetCustomerRequest::default();
    expect_invalid(
        intake.get_customer(neither).await,
        "customer_id",
        "GetCustomer with neither",
    );
    let both = v1::GetCustomerRequest {
        customer_id: random_id(),
        identity: Some(v1::CustomerIdentity {
            email: "c@example.com".into(),
            ..Default::default()
        }),
    };
    expect_invalid(
        intake.get_customer(both).await,
        "customer_id",
        "GetCustomer with both",
    );
    let bad_id = v1::GetCustomerRequest {
        customer_id: "nope".into(),
        identity: None,
    };
    expect_invalid(
        intake.get_customer(bad_id).await,
        "customer_id",
        "GetCustomer with a bad customer_id",
    );

    // Link/UnlinkCustomers: both ids must be UUIDs, named in the violation.
    let mut staff = cluster.intake("ana", Role::Agent).await.unwrap();
    for (customer_id, other_customer_id, field) in [
        ("nope".to_string(), random_id(), "customer_id"),
        (random_id(), "nope".to_string(), "other_customer_id"),
    ] {
        let link = v1::LinkCustomersRequest {
            customer_id: customer_id.clone(),
            other_customer_id: other_customer_id.clone(),
        };
        expect_invalid(staff.link_customers(link).await, field, "LinkCustomers");
        let unlink = v1::UnlinkCustomersRequest {
            customer_id,
            other_customer_id,
        };
        expect_invalid(
            staff.unlink_customers(unlink).await,
            field,
            "UnlinkCustomers",
        );
    }

    // Conversation: ticket ids must be UUIDs.
    expect_invalid(agent.reply(reply("nope", "hi")).await, "ticket_id", "Reply");
    expect_invalid(agent.add_note(note("nope")).await, "ticket_id", "AddNote");
    expect_invalid(agent.solve(solve("nope")).await, "ticket_id", "Solve");
    expect_invalid(agent.reopen(reopen("nope")).await, "ticket_id", "Reopen");
    expect_invalid(
        agent.propose_decline(propose("nope")).await,
        "ticket_id",
        "ProposeDecline",
    );
    expect_invalid(agent.close(close("nope")).await, "ticket_id", "Close");
    expect_invalid(
        cluster
            .routing_as(
                &frontline_e2e::caller("max", Role::Manager, &["acme"]),
                None,
            )
            .await
            .unwrap()
            .watch_queue(v1::WatchQueueRequest {
                agent_id: "bad id".into(),
            })
            .await,
        "agent_id",
        "WatchQueue",
    );
    expect_invalid(
        agent.merge_ticket(merge("nope", &random_id())).await,
        "source_ticket_id",
        "MergeTicket",
    );
    expect_invalid(
        agent.merge_ticket(merge(&random_id(), "nope")).await,
        "target_ticket_id",
        "MergeTicket",
    );
    expect_invalid(
        agent.unmerge_ticket(unmerge("nope")).await,
        "source_ticket_id",
        "UnmergeTicket",
    );
    let mut m = merge(&random_id(), &random_id());
    m.reason = "x".repeat(32 * 1024 + 1);
    expect_invalid(agent.merge_ticket(m).await, "reason", "a long merge reason");
    expect_invalid(
        agent.apply_macro(apply_macro("nope", "ack")).await,
        "ticket_id",
        "ApplyMacro",
    );
    let mut a = apply_macro(&random_id(), "ack");
    a.idempotency_key = "bad key".into();
    expect_invalid(agent.apply_macro(a).await, "idempotency_key", "ApplyMacro");
    {
        let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
        for (request, field) in [
            (put_macro("Bad Name", "hi"), "macro.name"),
            (put_macro("ok", ""), "macro.body"),
            (put_macro("ok", "Hi {{customer.age}}"), "macro.body"),
            (put_macro("ok", "Hi {{customer.name"), "macro.body"),
            (put_macro("ok", &"x".repeat(32 * 1024 + 1)), "macro.body"),
        ] {
            expect_invalid(root.put_macro(request).await, field, "PutMacro");
        }
        let mut status = put_macro("ok", "hi");
        if let Some(m) = status.r#macro.as_mut() {
            m.status_change = v1::TicketStatus::Closed.into();
        }
        expect_invalid(
            root.put_macro(status).await,
            "macro.status_change",
            "PutMacro",
        );
        expect_invalid(
            root.remove_macro(v1::RemoveMacroRequest {
                name: "Bad Name".into(),
            })
            .await,
            "name",
            "RemoveMacro",
        );
        for (area, name, field) in [
            ("Router X", "ack", "product_area"),
            ("router", "Bad Name", "macro_name"),
        ] {
            expect_invalid(
                root.put_answer_rule(v1::PutAnswerRuleRequest {
                    rule: Some(v1::AnswerRule {
                        product_area: area.into(),
                        macro_name: name.into(),
                    }),
                })
                .await,
                field,
                "PutAnswerRule",
            );
        }
        let mut shop = cluster
            .conversation("web-shop", Role::CustomerSystem)
            .await
            .unwrap();
        expect_invalid(
            shop.request_human(v1::RequestHumanRequest {
                ticket_id: "nope".into(),
            })
            .await,
            "ticket_id",
            "RequestHuman",
        );
    }
    // Self-service articles: one bad field at a time, and none stores anything.
    {
        let before = cluster.log.last_sequence().await.unwrap();
        let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
        let ok = router_article("reset-router");
        let long_body = "x".repeat(32 * 1024 + 1);
        for (a, field) in [
            (v1::Article::default(), "article.slug"),
            (router_article(""), "article.slug"),
            (router_article("Reset Router"), "article.slug"),
            (router_article(&"x".repeat(65)), "article.slug"),
            (
                v1::Article {
                    product_area: String::new(),
                    ..ok.clone()
                },
                "article.product_area",
            ),
            (
                v1::Article {
                    product_area: "Router X".into(),
                    ..ok.clone()
                },
                "article.product_area",
            ),
            (
                v1::Article {
                    title: String::new(),
                    ..ok.clone()
                },
                "article.title",
            ),
            (
                v1::Article {
                    title: "x".repeat(201),
                    ..ok.clone()
                },
                "article.title",
            ),
            (
                v1::Article {
                    body: String::new(),
                    ..ok.clone()
                },
                "article.body",
            ),
            (
                v1::Article {
                    body: long_body.clone(),
                    ..ok.clone()
                },
                "article.body",
            ),
        ] {
            let what = format!(
                "PublishArticle with a bad {field} (slug of {} characters)",
                a.slug.len()
            );
            expect_invalid(root.publish_article(publish(a, None)).await, field, &what);
        }
        expect_invalid(
            root.publish_article(v1::PublishArticleRequest {
                article: None,
                expected_revision: None,
            })
            .await,
            "article.slug",
            "PublishArticle without an article",
        );
        for slug in ["", "Reset Router"] {
            expect_invalid(
                root.retire_article(retire(slug, None)).await,
                "slug",
                &format!("RetireArticle of {slug:?}"),
            );
            expect_invalid(
                agent.get_article(get_article(slug)).await,
                "slug",
                &format!("GetArticle of {slug:?}"),
            );
        }
        for (request, field, what) in [
            (
                self_served("", "reset-router", ""),
                "idempotency_key",
                "without a ticket or a key",
            ),
            (
                self_served("has space", "reset-router", ""),
                "idempotency_key",
                "with a bad key",
            ),
            (self_served("ss-1", "", ""), "slug", "without a slug"),
            (
                self_served("ss-1", "Reset Router", ""),
                "slug",
                "with a bad slug",
            ),
            (
                self_served("", "reset-router", "nope"),
                "ticket_id",
                "with a bad ticket_id",
            ),
            (
                v1::RecordSelfServiceRequest {
                    customer_id: "nope".into(),
                    ..self_served("ss-1", "reset-router", "")
                },
                "customer_id",
                "with a bad customer_id",
            ),
        ] {
            expect_invalid(
                intake.record_self_service(request).await,
                field,
                &format!("RecordSelfService {what}"),
            );
        }
        assert_eq!(
            cluster.log.last_sequence().await.unwrap(),
            before,
            "a refused article call must not store events"
        );

        let shop = frontline_e2e::caller("web-shop", Role::CustomerSystem, &["acme"]);
        let mut analytics = cluster.analytics_as(&shop, None).await.unwrap();
        for (request, field, what) in [
            (suggest("", ""), "subject", "neither subject nor body"),
            (suggest(" ", "\n"), "subject", "a blank subject and body"),
            (
                suggest(&"x".repeat(201), ""),
                "subject",
                "a 201-character subject",
            ),
            (suggest("Router", &long_body), "body", "a 32 KiB + 1 body"),
            (
                v1::SuggestAnswersRequest {
                    product_area: "Router X".into(),
                    ..suggest("Router", "")
                },
                "product_area",
                "a bad product area",
            ),
            (
                v1::SuggestAnswersRequest {
                    limit: 21,
                    ..suggest("Router", "")
                },
                "limit",
                "a limit over 20",
            ),
        ] {
            expect_invalid(
                analytics.suggest_answers(request).await,
                field,
                &format!("SuggestAnswers with {what}"),
            );
        }
        let manager = frontline_e2e::caller("max", Role::Manager, &["acme"]);
        expect_invalid(
            cluster
                .analytics_as(&manager, None)
                .await
                .unwrap()
                .list_articles(v1::ListArticlesRequest {
                    product_area: "Router X".into(),
                    include_retired: false,
                })
                .await,
            "product_area",
            "ListArticles with a bad product area",
        );
    }
    expect_invalid(
        agent
            .watch_ticket(v1::WatchTicketRequest {
                ticket_id: "nope".into(),
                from_version: 0,
            })
            .await,
        "ticket_id",
        "WatchTicket",
    );
    {
        let mut shop = cluster
            .conversation("web-shop", Role::CustomerSystem)
            .await
            .unwrap();
        expect_invalid(
            shop.rate_satisfaction(rate("nope")).await,
            "ticket_id",
            "RateSatisfaction",
        );
        let mut r = rate(&random_id());
        r.score = 0;
        expect_invalid(shop.rate_satisfaction(r).await, "score", "CSAT 0");
        let mut r = rate(&random_id());
        r.comment = "x".repeat(32 * 1024 + 1);
        expect_invalid(
            shop.rate_satisfaction(r).await,
            "comment",
            "a long CSAT comment",
        );
        expect_invalid(
            intake.record_nps(nps("nope")).await,
            "customer_id",
            "RecordNps",
        );
        let mut n = nps(&random_id());
        n.score = 11;
        expect_invalid(intake.record_nps(n).await, "score", "NPS 11");
        expect_invalid(
            intake.record_feedback(feedback("")).await,
            "idempotency_key",
            "RecordFeedback without a key",
        );
        let mut f = feedback("fb-bad");
        f.body = String::new();
        expect_invalid(intake.record_feedback(f).await, "body", "empty feedback");
        let mut f = feedback("fb-bad");
        f.product_area = String::new();
        expect_invalid(
            intake.record_feedback(f).await,
            "product_area",
            "feedback without a product area",
        );
        let mut f = feedback("fb-bad");
        f.customer_id = "nope".into();
        expect_invalid(intake.record_feedback(f).await, "customer_id", "feedback");
        let mut f = feedback("fb-bad");
        f.ticket_id = "nope".into();
        expect_invalid(intake.record_feedback(f).await, "ticket_id", "feedback");
    }
    {
        let mut max = cluster.conversation("max", Role::Manager).await.unwrap();
        expect_invalid(
            max.approve_decline(approve("nope")).await,
            "ticket_id",
            "ApproveDecline",
        );
        expect_invalid(
            max.reject_decline(reject("nope")).await,
            "ticket_id",
            "RejectDecline",
        );
        // A rejection says what to do instead; a proposal says why and what to say.
        let mut r = reject(&random_id());
        r.note = " ".into();
        expect_invalid(
            max.reject_decline(r).await,
            "note",
            "RejectDecline without a note",
        );
        let mut p = propose(&random_id());
        p.reason = String::new();
        expect_invalid(
            agent.propose_decline(p).await,
            "reason",
            "ProposeDecline without a reason",
        );
        let mut p = propose(&random_id());
        p.rationale = "x".repeat(32 * 1024 + 1);
        expect_invalid(
            agent.propose_decline(p).await,
            "rationale",
            "ProposeDecline with a long rationale",
        );
    }
    expect_invalid(
        agent.get_ticket(get_ticket("nope", None)).await,
        "ticket_id",
        "GetTicket",
    );
    expect_invalid(
        agent.get_ticket_history(history("nope")).await,
        "ticket_id",
        "GetTicketHistory",
    );

    // On a real ticket: an empty reply, and versions outside the ticket's history.
    let opened = intake
        .submit_ticket(submit_request("real-1", "real@example.com"))
        .await
        .unwrap()
        .into_inner();
    let id = opened.ticket_id;
    expect_invalid(
        agent.reply(reply(&id, "")).await,
        "body",
        "Reply with an empty body",
    );
    let mut r = reply(&id, "hi");
    r.idempotency_key = "has space".into();
    expect_invalid(
        agent.reply(r).await,
        "idempotency_key",
        "Reply with a bad key",
    );
    let mut n = note(&id);
    n.body = String::new();
    expect_invalid(
        agent.add_note(n).await,
        "body",
        "AddNote with an empty body",
    );
    let too_long = "x".repeat(32 * 1024 + 1);
    let mut n = note(&id);
    n.body = too_long.clone();
    expect_invalid(
        agent.add_note(n).await,
        "body",
        "AddNote with a 32 KiB + 1 body",
    );
    let mut sv = solve(&id);
    sv.resolution = too_long.clone();
    expect_invalid(
        agent.solve(sv).await,
        "resolution",
        "Solve with a long resolution",
    );
    let mut ro = reopen(&id);
    ro.reason = too_long;
    expect_invalid(
        agent.reopen(ro).await,
        "reason",
        "Reopen with a long reason",
    );
    // None of them recorded anything.
    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(counts.get(&format!("frontline.ticket.{id}")), Some(&1));
    expect_invalid(
        agent.get_ticket(get_ticket(&id, Some(0))).await,
        "as_of_version",
        "GetTicket as of version 0",
    );
    expect_invalid(
        agent
            .get_ticket(get_ticket(&id, Some(opened.ticket_version + 1)))
            .await,
        "as_of_version",
        "GetTicket beyond the ticket's version",
    );
    cluster.shutdown().await;
}

/// Unknown tickets and customers are NOT_FOUND, on every call that names one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tickets_and_customers_are_not_found() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    let unknown = random_id();

    let mut r = submit_request("continue-unknown", "c@example.com");
    r.continue_ticket_id = unknown.clone();
    expect_code(
        intake.submit_ticket(r).await,
        Code::NotFound,
        "continue an unknown ticket",
    );

    expect_code(
        agent.reply(reply(&unknown, "hi")).await,
        Code::NotFound,
        "Reply",
    );
    expect_code(
        agent.add_note(note(&unknown)).await,
        Code::NotFound,
        "AddNote",
    );
    expect_code(agent.solve(solve(&unknown)).await, Code::NotFound, "Solve");
    expect_code(
        agent.reopen(reopen(&unknown)).await,
        Code::NotFound,
        "Reopen",
    );
    expect_code(
        agent.propose_decline(propose(&unknown)).await,
        Code::NotFound,
        "ProposeDecline",
    );
    expect_code(agent.close(close(&unknown)).await, Code::NotFound, "Close");
    expect_code(
        agent.merge_ticket(merge(&unknown, &random_id())).await,
        Code::NotFound,
        "MergeTicket",
    );
    expect_code(
        agent.unmerge_ticket(unmerge(&unknown)).await,
        Code::NotFound,
        "UnmergeTicket",
    );
    expect_code(
        agent.apply_macro(apply_macro(&unknown, "ack")).await,
        Code::NotFound,
        "ApplyMacro on an unknown ticket",
    );
    expect_code(
        cluster
            .conversation("web-shop", Role::CustomerSystem)
            .await
            .unwrap()
            .request_human(v1::RequestHumanRequest {
                ticket_id: unknown.clone(),
            })
            .await,
        Code::NotFound,
        "RequestHuman",
    );
    expect_code(
        cluster
            .conversation("root", Role::Admin)
            .await
            .unwrap()
            .put_answer_rule(v1::PutAnswerRuleRequest {
                rule: Some(v1::AnswerRule {
                    product_area: "router".into(),
                    macro_name: "nope".into(),
                }),
            })
            .await,
        Code::NotFound,
        "PutAnswerRule naming an unknown macro",
    );
    expect_code(
        cluster
            .conversation("root", Role::Admin)
            .await
            .unwrap()
            .remove_macro(v1::RemoveMacroRequest {
                name: "nope".into(),
            })
            .await,
        Code::NotFound,
        "RemoveMacro of an unknown macro",
    );
    expect_code(
        agent
            .watch_ticket(v1::WatchTicketRequest {
                ticket_id: unknown.clone(),
                from_version: 0,
            })
            .await,
        Code::NotFound,
        "WatchTicket",
    );
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    expect_code(
        shop.rate_satisfaction(rate(&unknown)).await,
        Code::NotFound,
        "RateSatisfaction",
    );
    expect_code(
        intake.record_nps(nps(&unknown)).await,
        Code::NotFound,
        "RecordNps",
    );
    let mut f = feedback("fb-unknown-customer");
    f.customer_id = unknown.clone();
    expect_code(
        intake.record_feedback(f).await,
        Code::NotFound,
        "RecordFeedback naming an unknown customer",
    );
    let mut f = feedback("fb-unknown-ticket");
    f.ticket_id = unknown.clone();
    expect_code(
        intake.record_feedback(f).await,
        Code::NotFound,
        "RecordFeedback naming an unknown ticket",
    );

    // Articles: an unknown slug, and an unknown ticket or customer named with a
    // real article. Another tenant's article, ticket or customer is one that does
    // not exist: an article's id derives from its tenant and its slug.
    let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
    root.publish_article(publish(router_article("reset-router"), None))
        .await
        .unwrap();
    let globex_admin = frontline_e2e::caller("root-g", Role::Admin, &["globex"]);
    cluster
        .conversation_as(&globex_admin, None)
        .await
        .unwrap()
        .publish_article(publish(router_article("globex-only"), None))
        .await
        .unwrap();
    let globex_shop = frontline_e2e::caller("shop-g", Role::CustomerSystem, &["globex"]);
    let globex = cluster
        .intake_as(&globex_shop, None)
        .await
        .unwrap()
        .submit_ticket(submit_request("globex-1", "g@globex.example"))
        .await
        .unwrap()
        .into_inner();
    // Routing answers the new ticket by appending: let it finish before counting.
    cluster.routing_settled().await.unwrap();
    let before = cluster.log.last_sequence().await.unwrap();
    for slug in ["nothing-here", "globex-only"] {
        expect_code(
            root.retire_article(retire(slug, None)).await,
            Code::NotFound,
            &format!("RetireArticle of {slug}"),
        );
        expect_code(
            shop.get_article(get_article(slug)).await,
            Code::NotFound,
            &format!("GetArticle of {slug}"),
        );
        expect_code(
            intake
                .record_self_service(self_served("ss-unknown", slug, ""))
                .await,
            Code::NotFound,
            &format!("RecordSelfService of {slug}"),
        );
    }
    for (ticket, what) in [(&unknown, "an unknown"), (&globex.ticket_id, "a globex")] {
        expect_code(
            intake
                .record_self_service(self_served("", "reset-router", ticket))
                .await,
            Code::NotFound,
            &format!("RecordSelfService on {what} ticket"),
        );
    }
    // With a ticket, the customer named is ignored (the ticket names its own).
    expect_code(
        intake
            .record_self_service(v1::RecordSelfServiceRequest {
                customer_id: "nope".into(),
                ..self_served("", "reset-router", &unknown)
            })
            .await,
        Code::NotFound,
        "RecordSelfService on an unknown ticket naming a bad customer",
    );
    for (customer, what) in [(&unknown, "an unknown"), (&globex.customer_id, "a globex")] {
        expect_code(
            intake
                .record_self_service(v1::RecordSelfServiceRequest {
                    customer_id: customer.clone(),
                    ..self_served("ss-customer", "reset-router", "")
                })
                .await,
            Code::NotFound,
            &format!("RecordSelfService naming {what} customer"),
        );
    }
    assert_eq!(
        cluster.log.last_sequence().await.unwrap(),
        before,
        "a NOT_FOUND stores nothing"
    );
    let mut max = cluster.conversation("max", Role::Manager).await.unwrap();
    expect_code(
        max.approve_decline(approve(&unknown)).await,
        Code::NotFound,
        "ApproveDecline",
    );
    expect_code(
        max.reject_decline(reject(&unknown)).await,
        Code::NotFound,
        "RejectDecline",
    );
    expect_code(
        agent.get_ticket(get_ticket(&unknown, None)).await,
        Code::NotFound,
        "GetTicket",
    );
    expect_code(
        agent.get_ticket(get_ticket(&unknown, Some(1))).await,
        Code::NotFound,
        "GetTicket as of version 1",
    );
    expect_code(
        agent.get_ticket_history(history(&unknown)).await,
        Code::NotFound,
        "GetTicketHistory",
    );

    let by_email = v1::GetCustomerRequest {
        customer_id: String::new(),
        identity: Some(v1::CustomerIdentity {
            email: "nobody@example.com".into(),
            ..Default::default()
        }),
    };
    expect_code(
        intake.get_customer(by_email).await,
        Code::NotFound,
        "GetCustomer by an unknown email",
    );
    let by_id = v1::GetCustomerRequest {
        customer_id: random_id(),
        identity: None,
    };
    expect_code(
        intake.get_customer(by_id).await,
        Code::NotFound,
        "GetCustomer by an unknown id",
    );
    cluster.shutdown().await;
}

/// Illegal transitions are FAILED_PRECONDITION, a reused key is ALREADY_EXISTS, and
/// a stale `expected_version` is ABORTED and records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_transitions_reused_keys_and_stale_versions() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();

    // A solved ticket takes no reply and cannot be solved twice.
    let solved = intake
        .submit_ticket(submit_request("solved-1", "ana@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    agent.solve(solve(&solved)).await.unwrap();
    expect_code(
        agent.reply(reply(&solved, "more")).await,
        Code::FailedPrecondition,
        "reply on a solved ticket",
    );
    expect_code(
        agent.solve(solve(&solved)).await,
        Code::FailedPrecondition,
        "solve a solved ticket",
    );

    // An open ticket cannot be reopened.
    let open = intake
        .submit_ticket(submit_request("open-1", "ana@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let replied = agent
        .reply(reply(&open, "On it"))
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(replied.status(), v1::TicketStatus::Open);
    assert!(replied.recorded);
    expect_code(
        agent.reopen(reopen(&open)).await,
        Code::FailedPrecondition,
        "reopen an open ticket",
    );

    // Another customer cannot continue Ana's ticket.
    let mut r = submit_request("intruder-1", "bob@example.com");
    r.continue_ticket_id = open.clone();
    expect_code(
        intake.submit_ticket(r).await,
        Code::FailedPrecondition,
        "continue another customer's ticket",
    );

    // The same key on the same channel, for a different customer.
    expect_code(
        intake
            .submit_ticket(submit_request("open-1", "bob@example.com"))
            .await,
        Code::AlreadyExists,
        "reuse a key for another customer",
    );

    // A stale expected_version: the ticket moved on (version 2 → 3).
    let events_before = agent
        .get_ticket_history(history(&open))
        .await
        .unwrap()
        .into_inner()
        .events
        .len();
    agent.add_note(note(&open)).await.unwrap();
    let moved_on = events_before + 1;
    let mut stale = reply(&open, "Based on an old view");
    stale.expected_version = Some(replied.version);
    expect_code(agent.reply(stale).await, Code::Aborted, "stale reply");
    let events_after = agent
        .get_ticket_history(history(&open))
        .await
        .unwrap()
        .into_inner()
        .events
        .len();
    assert_eq!(events_after, moved_on, "a stale call records nothing");

    // Every command checks expected_version, not only Reply.
    let current = events_after as u64;
    let mut n = note(&open);
    n.expected_version = Some(current - 1);
    expect_code(agent.add_note(n).await, Code::Aborted, "stale note");
    let mut sv = solve(&open);
    sv.expected_version = Some(current - 1);
    expect_code(agent.solve(sv).await, Code::Aborted, "stale solve");
    let mut sv = solve(&open);
    sv.expected_version = Some(current);
    let solved_now = agent.solve(sv).await.unwrap().into_inner().change.unwrap();
    assert_eq!(solved_now.version, current + 1);
    assert_eq!(solved_now.status(), v1::TicketStatus::Solved);
    let mut ro = reopen(&open);
    ro.expected_version = Some(current);
    expect_code(agent.reopen(ro).await, Code::Aborted, "stale reopen");
    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(
        counts[&format!("frontline.ticket.{open}")],
        current as usize + 1,
        "only the solve at the right version was recorded"
    );

    // A ticket reopens at most 10 times; the 11th reopen is FAILED_PRECONDITION.
    let often = intake
        .submit_ticket(submit_request("often-1", "ana@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    for _ in 0..10 {
        agent.solve(solve(&often)).await.unwrap();
        agent.reopen(reopen(&often)).await.unwrap();
    }
    agent.solve(solve(&often)).await.unwrap();
    expect_code(
        agent.reopen(reopen(&often)).await,
        Code::FailedPrecondition,
        "an 11th reopen",
    );

    // Articles: a stale expected_revision is ABORTED and records nothing.
    let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
    let first = root
        .publish_article(publish(router_article("reset-router"), Some(0)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.article.map(|a| a.revision), Some(1));
    let edited = v1::Article {
        body: "Hold the reset button for twenty seconds.".into(),
        ..router_article("reset-router")
    };
    cluster.routing_settled().await.unwrap();
    let before = cluster.log.last_sequence().await.unwrap();
    expect_code(
        root.publish_article(publish(edited.clone(), Some(0))).await,
        Code::Aborted,
        "PublishArticle creating only a new slug, on an existing one",
    );
    expect_code(
        root.publish_article(publish(edited.clone(), Some(2))).await,
        Code::Aborted,
        "PublishArticle on a stale revision",
    );
    expect_code(
        root.retire_article(retire("reset-router", Some(2))).await,
        Code::Aborted,
        "RetireArticle on a stale revision",
    );
    assert_eq!(
        cluster.log.last_sequence().await.unwrap(),
        before,
        "a stale article call records nothing"
    );

    // A retired article: no customer may say it helped, with a ticket or without.
    root.retire_article(retire("reset-router", Some(1)))
        .await
        .unwrap();
    let fresh = intake
        .submit_ticket(submit_request("self-1", "erin@example.com"))
        .await
        .unwrap()
        .into_inner();
    cluster.routing_settled().await.unwrap();
    let before = cluster.log.last_sequence().await.unwrap();
    expect_code(
        intake
            .record_self_service(self_served("ss-retired", "reset-router", ""))
            .await,
        Code::FailedPrecondition,
        "RecordSelfService of a retired article",
    );
    expect_code(
        intake
            .record_self_service(self_served("", "reset-router", &fresh.ticket_id))
            .await,
        Code::FailedPrecondition,
        "RecordSelfService of a retired article on a ticket",
    );
    assert_eq!(
        cluster.log.last_sequence().await.unwrap(),
        before,
        "a refused self-service records nothing"
    );

    // Published again, it is live; but a ticket the support team worked on, or one
    // solved, is no longer the customer's to solve, and a forgotten customer
    // says nothing.
    let again = root
        .publish_article(publish(edited, Some(1)))
        .await
        .unwrap()
        .into_inner()
        .article
        .unwrap();
    assert_eq!((again.revision, again.retired), (2, false));
    let worked = intake
        .submit_ticket(submit_request("self-2", "erin@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    agent.add_note(note(&worked)).await.unwrap();
    let forgotten = intake
        .submit_ticket(submit_request("self-3", "gone@example.com"))
        .await
        .unwrap()
        .into_inner()
        .customer_id;
    cluster
        .intake("root", Role::Admin)
        .await
        .unwrap()
        .forget_customer(v1::ForgetCustomerRequest {
            customer_id: forgotten.clone(),
            reason: "gdpr".into(),
        })
        .await
        .unwrap();
    cluster.routing_settled().await.unwrap();
    let before = cluster.log.last_sequence().await.unwrap();
    for (ticket, what) in [
        (&worked, "a ticket with a note"),
        (&solved, "a solved ticket"),
    ] {
        expect_code(
            intake
                .record_self_service(self_served("", "reset-router", ticket))
                .await,
            Code::FailedPrecondition,
            &format!("RecordSelfService on {what}"),
        );
    }
    expect_code(
        intake
            .record_self_service(v1::RecordSelfServiceRequest {
                customer_id: forgotten,
                ..self_served("ss-forgotten", "reset-router", "")
            })
            .await,
        Code::FailedPrecondition,
        "RecordSelfService naming a forgotten customer",
    );
    assert_eq!(
        cluster.log.last_sequence().await.unwrap(),
        before,
        "a refused self-service records nothing"
    );
    // The untouched ticket is solved by it, once: saying so again is no error.
    for recorded in [true, false] {
        let r = intake
            .record_self_service(self_served("", "reset-router", &fresh.ticket_id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.revision, r.recorded), (2, recorded), "{r:?}");
    }
    cluster.shutdown().await;
}

/// Roles are enforced: only customer systems (and admins) submit, only agents and
/// managers work tickets, only staff read history — and the role is checked before
/// the ticket is even looked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_before_anything_else() {
    let cluster = Cluster::start().await.unwrap();
    let mut shop_intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let id = shop_intake
        .submit_ticket(submit_request("roles-1", "ana@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;

    let mut agent_intake = cluster.intake("ana", Role::Agent).await.unwrap();
    expect_code(
        agent_intake
            .submit_ticket(submit_request("roles-2", "ana@example.com"))
            .await,
        Code::PermissionDenied,
        "agent submits",
    );

    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    expect_code(
        shop.reply(reply(&id, "hi")).await,
        Code::PermissionDenied,
        "customer system replies",
    );
    expect_code(
        shop.add_note(note(&id)).await,
        Code::PermissionDenied,
        "customer system adds a note",
    );
    expect_code(
        shop.solve(solve(&id)).await,
        Code::PermissionDenied,
        "customer system solves",
    );
    expect_code(
        shop.reopen(reopen(&id)).await,
        Code::PermissionDenied,
        "customer system reopens",
    );
    expect_code(
        shop.propose_decline(propose(&id)).await,
        Code::PermissionDenied,
        "customer system proposes a decline",
    );
    expect_code(
        shop.approve_decline(approve(&id)).await,
        Code::PermissionDenied,
        "customer system approves a decline",
    );
    expect_code(
        shop.close(close(&id)).await,
        Code::PermissionDenied,
        "customer system closes",
    );
    expect_code(
        shop.merge_ticket(merge(&id, &random_id())).await,
        Code::PermissionDenied,
        "customer system merges",
    );
    expect_code(
        shop.apply_macro(apply_macro(&id, "ack")).await,
        Code::PermissionDenied,
        "customer system applies a macro",
    );
    expect_code(
        shop.list_macros(v1::ListMacrosRequest {}).await,
        Code::PermissionDenied,
        "customer system lists macros",
    );
    expect_code(
        shop.put_answer_rule(v1::PutAnswerRuleRequest::default())
            .await,
        Code::PermissionDenied,
        "customer system sets an answer rule",
    );
    expect_code(
        cluster
            .conversation("ana", Role::Agent)
            .await
            .unwrap()
            .request_human(v1::RequestHumanRequest {
                ticket_id: id.clone(),
            })
            .await,
        Code::PermissionDenied,
        "agent asks for a person",
    );
    expect_code(
        cluster
            .conversation("ana", Role::Agent)
            .await
            .unwrap()
            .put_macro(put_macro("ack", "hi"))
            .await,
        Code::PermissionDenied,
        "agent puts a macro",
    );
    expect_code(
        cluster
            .conversation("root", Role::Admin)
            .await
            .unwrap()
            .unmerge_ticket(unmerge(&id))
            .await,
        Code::PermissionDenied,
        "admin unmerges",
    );
    expect_code(
        shop.get_ticket_history(history(&id)).await,
        Code::PermissionDenied,
        "customer system reads history",
    );
    // Role before existence: the caller learns nothing about the ticket.
    expect_code(
        shop.reply(reply(&random_id(), "hi")).await,
        Code::PermissionDenied,
        "customer system replies to an unknown ticket",
    );
    expect_code(
        shop.get_ticket_history(history(&random_id())).await,
        Code::PermissionDenied,
        "customer system reads an unknown ticket's history",
    );

    let mut admin = cluster.conversation("root", Role::Admin).await.unwrap();
    expect_code(
        admin.reply(reply(&id, "hi")).await,
        Code::PermissionDenied,
        "admin replies",
    );
    // Customers' opinions come from customer systems: staff may not put words in
    // their mouths.
    expect_code(
        agent_intake.record_nps(nps(&random_id())).await,
        Code::PermissionDenied,
        "agent records an NPS answer",
    );
    expect_code(
        agent_intake.record_feedback(feedback("fb-agent")).await,
        Code::PermissionDenied,
        "agent records product feedback",
    );
    let mut manager = cluster.conversation("max", Role::Manager).await.unwrap();
    expect_code(
        manager.rate_satisfaction(rate(&id)).await,
        Code::PermissionDenied,
        "manager rates a ticket",
    );
    // Saying No: agents propose, only managers decide (before anything is read).
    expect_code(
        admin.propose_decline(propose(&id)).await,
        Code::PermissionDenied,
        "admin proposes a decline",
    );
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    for (who, client) in [("agent", &mut agent), ("admin", &mut admin)] {
        expect_code(
            client.approve_decline(approve(&random_id())).await,
            Code::PermissionDenied,
            &format!("{who} approves a decline"),
        );
        expect_code(
            client.reject_decline(reject(&random_id())).await,
            Code::PermissionDenied,
            &format!("{who} rejects a decline"),
        );
    }

    // Articles are the admins' to publish and retire; customers' say-so comes from
    // customer systems. The role is checked before the article is looked up.
    cluster.routing_settled().await.unwrap();
    let before = cluster.log.last_sequence().await.unwrap();
    for (who, client) in [
        ("customer system", &mut shop),
        ("agent", &mut agent),
        ("manager", &mut manager),
    ] {
        expect_code(
            client
                .publish_article(publish(router_article("reset-router"), None))
                .await,
            Code::PermissionDenied,
            &format!("{who} publishes an article"),
        );
        expect_code(
            client.retire_article(retire("nothing-here", None)).await,
            Code::PermissionDenied,
            &format!("{who} retires an unknown article"),
        );
    }
    expect_code(
        agent_intake
            .record_self_service(self_served("ss-agent", "nothing-here", ""))
            .await,
        Code::PermissionDenied,
        "agent records self-service",
    );
    expect_code(
        cluster
            .intake("max", Role::Manager)
            .await
            .unwrap()
            .record_self_service(self_served("", "nothing-here", &id))
            .await,
        Code::PermissionDenied,
        "manager solves a ticket by self-service",
    );
    assert_eq!(
        cluster.log.last_sequence().await.unwrap(),
        before,
        "a refused article call records nothing"
    );

    // Nothing was recorded by any refused call.
    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(counts.get(&format!("frontline.ticket.{id}")), Some(&1));
    assert_eq!(counts.len(), 1);
    cluster.shutdown().await;
}

/// Asserts that a call by `role` was allowed (`Ok`) or refused with PERMISSION_DENIED,
/// as the permission table says.
fn expect_allowed<T: Debug>(result: Result<Response<T>, Status>, allowed: bool, what: &str) {
    match (result, allowed) {
        (Ok(_), true) => {}
        (Err(status), false) => {
            assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
        }
        (Ok(response), false) => panic!("{what}: must be refused, got {response:?}"),
        (Err(status), true) => panic!("{what}: must be allowed, got {status:?}"),
    }
}

/// The whole permission table, call by call and role by role, on real tickets:
///
/// | call | customer_system | agent | manager | admin |
/// |---|---|---|---|---|
/// | SubmitTicket | yes | no | no | yes |
/// | GetCustomer, GetTicket | yes | yes | yes | yes |
/// | Reply, AddNote, Solve, Reopen | no | yes | yes | no |
/// | GetTicketHistory | no | yes | yes | yes |
/// | GetArticle, SuggestAnswers | yes | yes | yes | yes |
/// | PublishArticle | no | no | no | yes |
/// | RecordSelfService | yes | no | no | yes |
/// | ListArticles | no | no | yes | yes |
///
/// and only customer systems are kept from internal notes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_do_what() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut shop = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    // A ticket with a public reply and an internal note, for the reads.
    let shared = shop
        .submit_ticket(submit_request("matrix-shared", "matrix@example.com"))
        .await
        .unwrap()
        .into_inner();
    ana.reply(reply(&shared.ticket_id, "On it")).await.unwrap();
    ana.add_note(note(&shared.ticket_id)).await.unwrap();
    // An article, for the reads and the self-service.
    cluster
        .conversation("root", Role::Admin)
        .await
        .unwrap()
        .publish_article(publish(router_article("matrix-shared"), None))
        .await
        .unwrap();

    let roles = [
        (Role::CustomerSystem, "customer_system"),
        (Role::Agent, "agent"),
        (Role::Manager, "manager"),
        (Role::Admin, "admin"),
    ];
    for (role, name) in roles {
        let submits = matches!(role, Role::CustomerSystem | Role::Admin);
        let works = matches!(role, Role::Agent | Role::Manager);
        let staff = role != Role::CustomerSystem;
        let mut intake = cluster.intake(name, role).await.unwrap();
        let mut conversation = cluster.conversation(name, role).await.unwrap();
        let what = |call: &str| format!("{call} as {name}");

        let submitted = intake
            .submit_ticket(submit_request(
                &format!("matrix-{name}"),
                "matrix@example.com",
            ))
            .await;
        expect_allowed(submitted, submits, &what("SubmitTicket"));
        let customer = intake
            .get_customer(v1::GetCustomerRequest {
                customer_id: shared.customer_id.clone(),
                identity: None,
            })
            .await;
        expect_allowed(customer, true, &what("GetCustomer"));

        // Each role works on a ticket of its own, so the lifecycle calls can succeed.
        let own = shop
            .submit_ticket(submit_request(&format!("own-{name}"), "matrix@example.com"))
            .await
            .unwrap()
            .into_inner()
            .ticket_id;
        expect_allowed(
            conversation.reply(reply(&own, "hello")).await,
            works,
            &what("Reply"),
        );
        expect_allowed(
            conversation.add_note(note(&own)).await,
            works,
            &what("AddNote"),
        );
        expect_allowed(conversation.solve(solve(&own)).await, works, &what("Solve"));
        expect_allowed(
            conversation.reopen(reopen(&own)).await,
            works,
            &what("Reopen"),
        );
        let recorded =
            cluster.ticket_event_counts().await.unwrap()[&format!("frontline.ticket.{own}")];
        assert_eq!(recorded, if works { 5 } else { 1 }, "{}", what("events"));

        let ticket = conversation
            .get_ticket(get_ticket(&shared.ticket_id, None))
            .await;
        let ticket = ticket
            .unwrap_or_else(|s| panic!("{}: {s:?}", what("GetTicket")))
            .into_inner()
            .ticket
            .unwrap();
        let notes = ticket
            .messages
            .iter()
            .filter(|m| m.kind() == v1::MessageKind::InternalNote)
            .count();
        assert_eq!(notes, usize::from(staff), "{}", what("internal notes seen"));
        assert_eq!(ticket.messages.len(), if staff { 3 } else { 2 });
        expect_allowed(
            conversation
                .get_ticket_history(history(&shared.ticket_id))
                .await,
            staff,
            &what("GetTicketHistory"),
        );

        // Articles: each role publishes one of its own, reads and has suggested the
        // shared one, says it helped, and lists the deflection counts.
        let admin = role == Role::Admin;
        let own = router_article(&format!("matrix-{name}"));
        expect_allowed(
            conversation.publish_article(publish(own, None)).await,
            admin,
            &what("PublishArticle"),
        );
        expect_allowed(
            conversation.get_article(get_article("matrix-shared")).await,
            true,
            &what("GetArticle"),
        );
        expect_allowed(
            intake
                .record_self_service(self_served(&format!("matrix-{name}"), "matrix-shared", ""))
                .await,
            submits,
            &what("RecordSelfService"),
        );
        let mut analytics = cluster
            .analytics_as(&frontline_e2e::caller(name, role, &["acme"]), None)
            .await
            .unwrap();
        expect_allowed(
            analytics
                .suggest_answers(suggest("Router restarts", ""))
                .await,
            true,
            &what("SuggestAnswers"),
        );
        expect_allowed(
            analytics
                .list_articles(v1::ListArticlesRequest::default())
                .await,
            matches!(role, Role::Manager | Role::Admin),
            &what("ListArticles"),
        );
    }
    cluster.shutdown().await;
}

/// Every call of the services, made with `authorization` (none when `None`),
/// must be UNAUTHENTICATED.
async fn expect_all_unauthenticated(
    intake: &mut IntakeServiceClient<tonic::transport::Channel>,
    conversation: &mut ConversationServiceClient<tonic::transport::Channel>,
    routing: &mut RoutingServiceClient<tonic::transport::Channel>,
    analytics: &mut AnalyticsServiceClient<tonic::transport::Channel>,
    authorization: Option<&str>,
    what: &str,
) {
    fn request<T>(message: T, authorization: Option<&str>) -> Request<T> {
        match authorization {
            Some(header) => with_auth(message, header),
            None => Request::new(message),
        }
    }
    let a = authorization;
    let id = random_id();
    let code = Code::Unauthenticated;
    let customer = v1::GetCustomerRequest {
        customer_id: random_id(),
        identity: None,
    };
    expect_code(
        intake
            .submit_ticket(request(submit_request("anon-1", "c@example.com"), a))
            .await,
        code,
        &format!("SubmitTicket with {what}"),
    );
    expect_code(
        intake.get_customer(request(customer, a)).await,
        code,
        &format!("GetCustomer with {what}"),
    );
    let pair = (random_id(), random_id());
    expect_code(
        intake
            .link_customers(request(
                v1::LinkCustomersRequest {
                    customer_id: pair.0.clone(),
                    other_customer_id: pair.1.clone(),
                },
                a,
            ))
            .await,
        code,
        &format!("LinkCustomers with {what}"),
    );
    expect_code(
        intake
            .unlink_customers(request(
                v1::UnlinkCustomersRequest {
                    customer_id: pair.0,
                    other_customer_id: pair.1,
                },
                a,
            ))
            .await,
        code,
        &format!("UnlinkCustomers with {what}"),
    );
    expect_code(
        intake
            .forget_customer(request(
                v1::ForgetCustomerRequest {
                    customer_id: id.clone(),
                    reason: "gdpr".into(),
                },
                a,
            ))
            .await,
        code,
        &format!("ForgetCustomer with {what}"),
    );
    expect_code(
        intake
            .export_customer_data(request(
                v1::ExportCustomerDataRequest {
                    customer_id: id.clone(),
                },
                a,
            ))
            .await,
        code,
        &format!("ExportCustomerData with {what}"),
    );
    expect_code(
        intake.record_nps(request(nps(&id), a)).await,
        code,
        &format!("RecordNps with {what}"),
    );
    expect_code(
        intake
            .record_feedback(request(feedback("fb-anon"), a))
            .await,
        code,
        &format!("RecordFeedback with {what}"),
    );
    expect_code(
        intake
            .record_self_service(request(self_served("ss-anon", "reset-router", ""), a))
            .await,
        code,
        &format!("RecordSelfService with {what}"),
    );
    let agent = "ana".to_string();
    let profile = v1::AgentProfile {
        display_name: "Ana".into(),
        skills: vec![v1::Skill {
            product_area: "billing".into(),
            level: 3,
        }],
        capacity: 5,
        team: String::new(),
        tenants: vec!["acme".into()],
    };
    let routing_calls = [
        (
            "RegisterAgent",
            routing
                .register_agent(request(
                    v1::RegisterAgentRequest {
                        agent_id: agent.clone(),
                        profile: Some(profile.clone()),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "UpdateAgent",
            routing
                .update_agent(request(
                    v1::UpdateAgentRequest {
                        agent_id: agent.clone(),
                        profile: Some(profile),
                        expected_version: None,
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "SetAgentStatus",
            routing
                .set_agent_status(request(
                    v1::SetAgentStatusRequest {
                        agent_id: agent.clone(),
                        status: v1::AgentStatus::Away.into(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "DeactivateAgent",
            routing
                .deactivate_agent(request(
                    v1::DeactivateAgentRequest {
                        agent_id: agent.clone(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "GetAgent",
            routing
                .get_agent(request(
                    v1::GetAgentRequest {
                        agent_id: agent.clone(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "ListAgents",
            routing
                .list_agents(request(v1::ListAgentsRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "WatchQueue",
            routing
                .watch_queue(request(
                    v1::WatchQueueRequest {
                        agent_id: agent.clone(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "AssignTicket",
            routing
                .assign_ticket(request(
                    v1::AssignTicketRequest {
                        ticket_id: id.clone(),
                        agent_id: agent.clone(),
                        reason: "knows the router".into(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "TransferTicket",
            routing
                .transfer_ticket(request(
                    v1::TransferTicketRequest {
                        ticket_id: id.clone(),
                        agent_id: agent,
                        reason: "knows the router".into(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "GetTicketRouting",
            routing
                .get_ticket_routing(request(
                    v1::GetTicketRoutingRequest {
                        ticket_id: id.clone(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "ListQueue",
            routing
                .list_queue(request(v1::ListQueueRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "SetCustomerTier",
            routing
                .set_customer_tier(request(
                    v1::SetCustomerTierRequest {
                        customer_id: id.clone(),
                        tier: v1::Tier::Standard.into(),
                        named_agent_id: String::new(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "GetCustomerTier",
            routing
                .get_customer_tier(request(
                    v1::GetCustomerTierRequest {
                        customer_id: id.clone(),
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "PutSlaPolicy",
            routing
                .put_sla_policy(request(v1::PutSlaPolicyRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "GetSlaPolicy",
            routing
                .get_sla_policy(request(v1::GetSlaPolicyRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "LogTime",
            routing
                .log_time(request(
                    v1::LogTimeRequest {
                        ticket_id: id.clone(),
                        minutes: 5,
                    },
                    a,
                ))
                .await
                .map(|_| ()),
        ),
    ];
    for (call, result) in routing_calls {
        assert_eq!(
            result.err().map(|s| s.code()),
            Some(code),
            "{call} with {what}"
        );
    }
    let analytics_calls = [
        (
            "ListTickets",
            analytics
                .list_tickets(request(v1::ListTicketsRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "GetMetrics",
            analytics
                .get_metrics(request(v1::GetMetricsRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "GetCustomerThirds",
            analytics
                .get_customer_thirds(request(v1::GetCustomerThirdsRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "GetProjectionStatus",
            analytics
                .get_projection_status(request(v1::GetProjectionStatusRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "RebuildReadModels",
            analytics
                .rebuild_read_models(request(v1::RebuildReadModelsRequest::default(), a))
                .await
                .map(|_| ()),
        ),
        (
            "SuggestAnswers",
            analytics
                .suggest_answers(request(suggest("Router restarts", ""), a))
                .await
                .map(|_| ()),
        ),
        (
            "ListArticles",
            analytics
                .list_articles(request(v1::ListArticlesRequest::default(), a))
                .await
                .map(|_| ()),
        ),
    ];
    for (call, result) in analytics_calls {
        assert_eq!(
            result.err().map(|s| s.code()),
            Some(code),
            "{call} with {what}"
        );
    }
    expect_code(
        conversation.reply(request(reply(&id, "hi"), a)).await,
        code,
        &format!("Reply with {what}"),
    );
    expect_code(
        conversation.add_note(request(note(&id), a)).await,
        code,
        &format!("AddNote with {what}"),
    );
    expect_code(
        conversation.solve(request(solve(&id), a)).await,
        code,
        &format!("Solve with {what}"),
    );
    expect_code(
        conversation.reopen(request(reopen(&id), a)).await,
        code,
        &format!("Reopen with {what}"),
    );
    expect_code(
        conversation.propose_decline(request(propose(&id), a)).await,
        code,
        &format!("ProposeDecline with {what}"),
    );
    expect_code(
        conversation.approve_decline(request(approve(&id), a)).await,
        code,
        &format!("ApproveDecline with {what}"),
    );
    expect_code(
        conversation.reject_decline(request(reject(&id), a)).await,
        code,
        &format!("RejectDecline with {what}"),
    );
    expect_code(
        conversation.close(request(close(&id), a)).await,
        code,
        &format!("Close with {what}"),
    );
    expect_code(
        conversation
            .merge_ticket(request(merge(&id, &random_id()), a))
            .await,
        code,
        &format!("MergeTicket with {what}"),
    );
    expect_code(
        conversation.unmerge_ticket(request(unmerge(&id), a)).await,
        code,
        &format!("UnmergeTicket with {what}"),
    );
    expect_code(
        conversation
            .apply_macro(request(apply_macro(&id, "ack"), a))
            .await,
        code,
        &format!("ApplyMacro with {what}"),
    );
    expect_code(
        conversation
            .put_macro(request(put_macro("ack", "hi"), a))
            .await,
        code,
        &format!("PutMacro with {what}"),
    );
    expect_code(
        conversation
            .remove_macro(request(v1::RemoveMacroRequest { name: "ack".into() }, a))
            .await,
        code,
        &format!("RemoveMacro with {what}"),
    );
    expect_code(
        conversation
            .list_macros(request(v1::ListMacrosRequest {}, a))
            .await,
        code,
        &format!("ListMacros with {what}"),
    );
    expect_code(
        conversation
            .put_answer_rule(request(v1::PutAnswerRuleRequest::default(), a))
            .await,
        code,
        &format!("PutAnswerRule with {what}"),
    );
    expect_code(
        conversation
            .publish_article(request(publish(router_article("reset-router"), None), a))
            .await,
        code,
        &format!("PublishArticle with {what}"),
    );
    expect_code(
        conversation
            .retire_article(request(retire("reset-router", None), a))
            .await,
        code,
        &format!("RetireArticle with {what}"),
    );
    expect_code(
        conversation
            .get_article(request(get_article("reset-router"), a))
            .await,
        code,
        &format!("GetArticle with {what}"),
    );
    expect_code(
        conversation
            .request_human(request(
                v1::RequestHumanRequest {
                    ticket_id: id.clone(),
                },
                a,
            ))
            .await,
        code,
        &format!("RequestHuman with {what}"),
    );
    expect_code(
        conversation.rate_satisfaction(request(rate(&id), a)).await,
        code,
        &format!("RateSatisfaction with {what}"),
    );
    expect_code(
        conversation
            .watch_ticket(request(
                v1::WatchTicketRequest {
                    ticket_id: id.clone(),
                    from_version: 0,
                },
                a,
            ))
            .await,
        code,
        &format!("WatchTicket with {what}"),
    );
    expect_code(
        conversation
            .get_ticket(request(get_ticket(&id, None), a))
            .await,
        code,
        &format!("GetTicket with {what}"),
    );
    expect_code(
        conversation
            .get_ticket_history(request(history(&id), a))
            .await,
        code,
        &format!("GetTicketHistory with {what}"),
    );
}

/// A token signed with `secret` carrying `claims`.
fn token_with(claims: &frontline_runtime::auth::Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Calls without a valid bearer token are UNAUTHENTICATED on every call of the
/// services: no header, not a bearer header, a malformed token, a token signed with
/// another secret, an expired one, an unknown role, an empty subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_valid_token_are_unauthenticated() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    // A real ticket, so a refusal cannot be a NOT_FOUND in disguise.
    let real = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap()
        .submit_ticket(submit_request("real-1", "c@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    // A real article, likewise.
    cluster
        .conversation("root", Role::Admin)
        .await
        .unwrap()
        .publish_article(publish(router_article("reset-router"), None))
        .await
        .unwrap();
    cluster.routing_settled().await.unwrap();
    let sequence = cluster.log.last_sequence().await.unwrap();
    let before = cluster.ticket_event_counts().await.unwrap();
    let mut intake = IntakeServiceClient::new(cluster.intake_channel().await.unwrap());
    let mut conversation =
        ConversationServiceClient::new(cluster.conversation_channel().await.unwrap());
    let mut routing = RoutingServiceClient::new(cluster.routing_channel().await.unwrap());
    let mut analytics = AnalyticsServiceClient::new(cluster.analytics_channel().await.unwrap());

    let foreign = frontline_runtime::auth::mint(
        "other",
        &frontline_e2e::caller("mallory", Role::Admin, &["*"]),
        Duration::from_secs(3600),
    )
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    use frontline_runtime::auth::{Claims, Tenants};
    let claims = |sub: &str, role: &str, exp: u64| Claims {
        sub: sub.into(),
        role: role.into(),
        exp,
        tenant: Some(frontline_e2e::TENANT.into()),
        ..Claims::default()
    };
    let unknown_role = token_with(&claims("mallory", "wizard", now + 3600), SECRET);
    // Well past any clock-skew leeway.
    let expired = token_with(&claims("ana", "agent", now - 3600), SECRET);
    let no_subject = token_with(&claims(" ", "agent", now + 3600), SECRET);
    // Over the 24 h lifetime cap, by `exp` and by `exp - iat`.
    let too_long = token_with(&claims("ana", "agent", now + 3 * 86_400), SECRET);
    let too_long_iat = token_with(
        &Claims {
            iat: Some(now - 2 * 86_400),
            ..claims("ana", "agent", now + 3600)
        },
        SECRET,
    );
    let not_yet = token_with(
        &Claims {
            nbf: Some(now + 3600),
            ..claims("ana", "agent", now + 7200)
        },
        SECRET,
    );
    let no_tenant = token_with(
        &Claims {
            tenant: None,
            ..claims("ana", "agent", now + 3600)
        },
        SECRET,
    );
    let shop_in_two = token_with(
        &Claims {
            tenant: None,
            tenants: Some(Tenants::Many(vec!["acme".into(), "globex".into()])),
            ..claims("web-shop", "customer_system", now + 3600)
        },
        SECRET,
    );
    let agent_everywhere = token_with(
        &Claims {
            tenant: None,
            tenants: Some(Tenants::One("*".into())),
            ..claims("ana", "agent", now + 3600)
        },
        SECRET,
    );
    // `alg: none`: no signature at all.
    let unsigned = {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let body = serde_json::to_string(&claims("mallory", "admin", now + 3600)).unwrap();
        format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&body))
    };
    let valid = cluster.token("ana", Role::Agent);

    expect_all_unauthenticated(
        &mut intake,
        &mut conversation,
        &mut routing,
        &mut analytics,
        None,
        "no token",
    )
    .await;
    let headers = [
        ("a garbage token", "Bearer garbage".to_string()),
        ("a token that is no bearer", format!("Basic {valid}")),
        (
            "a token signed with another secret",
            format!("Bearer {foreign}"),
        ),
        ("an expired token", format!("Bearer {expired}")),
        (
            "a token with an unknown role",
            format!("Bearer {unknown_role}"),
        ),
        (
            "a token with an empty subject",
            format!("Bearer {no_subject}"),
        ),
        (
            "a token over the lifetime cap",
            format!("Bearer {too_long}"),
        ),
        (
            "a token issued longer ago than the cap",
            format!("Bearer {too_long_iat}"),
        ),
        ("a token not valid yet (nbf)", format!("Bearer {not_yet}")),
        ("a token without a tenant", format!("Bearer {no_tenant}")),
        (
            "a customer system token with two tenants",
            format!("Bearer {shop_in_two}"),
        ),
        (
            "an agent token for every tenant",
            format!("Bearer {agent_everywhere}"),
        ),
        (
            "an unsigned token (alg: none)",
            format!("Bearer {unsigned}"),
        ),
    ];
    for (what, header) in &headers {
        expect_all_unauthenticated(
            &mut intake,
            &mut conversation,
            &mut routing,
            &mut analytics,
            Some(header),
            what,
        )
        .await;
    }
    // Also on a ticket that exists.
    expect_code(
        conversation.reply(reply(&real, "hi")).await,
        Code::Unauthenticated,
        "Reply to a real ticket without a token",
    );

    // Nothing was stored by any of them.
    assert_eq!(cluster.ticket_event_counts().await.unwrap(), before);
    assert_eq!(cluster.log.last_sequence().await.unwrap(), sequence);
    cluster.shutdown().await;
}

/// A request over the 256 KiB limit is RESOURCE_EXHAUSTED, on every call of both
/// services (checked after the role, before the fields), and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_resource_exhausted() {
    let cluster = Cluster::start().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    let id = intake
        .submit_ticket(submit_request("real-1", "c@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let before = cluster.ticket_event_counts().await.unwrap();
    let huge = "x".repeat(300 * 1024);

    let mut r = submit_request("huge-1", "c@example.com");
    r.body = huge.clone();
    let mut n = note(&id);
    n.body = huge.clone();
    let mut sv = solve(&id);
    sv.resolution = huge.clone();
    let mut ro = reopen(&id);
    ro.reason = huge.clone();
    // Every call is made before asserting, so a failure reports all of them.
    let codes = [
        ("SubmitTicket", intake.submit_ticket(r).await.err()),
        (
            "GetCustomer",
            intake
                .get_customer(v1::GetCustomerRequest {
                    customer_id: huge.clone(),
                    identity: None,
                })
                .await
                .err(),
        ),
        ("Reply", agent.reply(reply(&id, &huge)).await.err()),
        ("AddNote", agent.add_note(n).await.err()),
        ("Solve", agent.solve(sv).await.err()),
        ("Reopen", agent.reopen(ro).await.err()),
        (
            "GetTicket",
            agent.get_ticket(get_ticket(&huge, None)).await.err(),
        ),
        (
            "GetTicketHistory",
            agent.get_ticket_history(history(&huge)).await.err(),
        ),
        (
            "PublishArticle",
            agent
                .publish_article(publish(article("big", "A big article", &huge), None))
                .await
                .err(),
        ),
        (
            "GetArticle",
            agent.get_article(get_article(&huge)).await.err(),
        ),
        (
            "RecordSelfService",
            intake
                .record_self_service(self_served("huge-1", &huge, ""))
                .await
                .err(),
        ),
    ];
    let wrong: Vec<_> = codes
        .iter()
        .filter(|(_, status)| status.as_ref().map(Status::code) != Some(Code::ResourceExhausted))
        .collect();
    assert!(
        wrong.is_empty(),
        "300 KiB requests not RESOURCE_EXHAUSTED: {wrong:?}"
    );

    // Size is measured on the bytes sent, before decoding — so before the role: a
    // customer system's big reply is RESOURCE_EXHAUSTED too (nothing is decoded).
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    expect_code(
        shop.reply(reply(&id, &huge)).await,
        Code::ResourceExhausted,
        "a customer system's 300 KiB reply",
    );
    assert_eq!(cluster.ticket_event_counts().await.unwrap(), before);
    cluster.shutdown().await;
}

/// The error code of `call`, which must answer within 30 s (`None` if it succeeded).
async fn within<T>(
    call: impl std::future::Future<Output = Result<Response<T>, Status>>,
) -> Option<Code> {
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("a call with NATS down must answer, not hang")
        .err()
        .map(|s| s.code())
}

/// With NATS down every call is UNAVAILABLE (but for the reads of PostgreSQL read
/// models: routing's queue, analytics' search, figures, suggested answers and
/// articles); once NATS is back,
/// retrying with the same key opens the ticket exactly once, and a further repeat
/// finds the same ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_log_is_unavailable_and_retries_double_nothing() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut agent = cluster.conversation("ana", Role::Agent).await.unwrap();
    let mut admin = cluster.intake("root", Role::Admin).await.unwrap();
    let mut routing = cluster
        .routing_as(
            &frontline_e2e::caller("max", Role::Manager, &["acme"]),
            None,
        )
        .await
        .unwrap();
    let mut analytics = cluster
        .analytics_as(
            &frontline_e2e::caller("max", Role::Manager, &["acme"]),
            None,
        )
        .await
        .unwrap();
    let mut operator = cluster
        .analytics_as(&frontline_e2e::caller("op", Role::Admin, &["*"]), None)
        .await
        .unwrap();
    let request = || submit_request("outage-1", "ana@example.com");
    let existing = intake
        .submit_ticket(submit_request("before-outage", "ana@example.com"))
        .await
        .unwrap()
        .into_inner();
    let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
    let published = root
        .publish_article(publish(router_article("reset-router"), None))
        .await
        .unwrap()
        .into_inner()
        .article
        .unwrap();
    // Analytics holds the ticket and the article before the log goes away.
    cluster.analytics_settled().await.unwrap();

    cluster.nats.kill().unwrap();
    let unavailable = [
        (
            "SubmitTicket",
            within(intake.submit_ticket(request())).await,
        ),
        (
            "GetCustomer",
            within(intake.get_customer(v1::GetCustomerRequest {
                customer_id: existing.customer_id.clone(),
                identity: None,
            }))
            .await,
        ),
        (
            "Reply",
            within(agent.reply(reply(&existing.ticket_id, "hi"))).await,
        ),
        (
            "GetTicket",
            within(agent.get_ticket(get_ticket(&existing.ticket_id, None))).await,
        ),
        (
            "AddNote",
            within(agent.add_note(note(&existing.ticket_id))).await,
        ),
        (
            "Solve",
            within(agent.solve(solve(&existing.ticket_id))).await,
        ),
        (
            "Reopen",
            within(agent.reopen(reopen(&existing.ticket_id))).await,
        ),
        (
            "ProposeDecline",
            within(agent.propose_decline(propose(&existing.ticket_id))).await,
        ),
        (
            "Close",
            within(agent.close(close(&existing.ticket_id))).await,
        ),
        (
            "MergeTicket",
            within(agent.merge_ticket(merge(&existing.ticket_id, &random_id()))).await,
        ),
        (
            "ApplyMacro",
            within(agent.apply_macro(apply_macro(&existing.ticket_id, "ack"))).await,
        ),
        (
            "ListMacros",
            within(agent.list_macros(v1::ListMacrosRequest {})).await,
        ),
        (
            "RecordNps",
            within(intake.record_nps(nps(&existing.customer_id))).await,
        ),
        (
            "WatchTicket",
            within(agent.watch_ticket(v1::WatchTicketRequest {
                ticket_id: existing.ticket_id.clone(),
                from_version: 0,
            }))
            .await,
        ),
        (
            "RecordFeedback",
            within(intake.record_feedback(feedback("fb-outage"))).await,
        ),
        (
            "PublishArticle",
            within(root.publish_article(publish(router_article("outage-article"), None))).await,
        ),
        (
            "RetireArticle",
            within(root.retire_article(retire("reset-router", None))).await,
        ),
        (
            "GetArticle",
            within(agent.get_article(get_article("reset-router"))).await,
        ),
        (
            "RecordSelfService",
            within(intake.record_self_service(self_served("ss-outage", "reset-router", ""))).await,
        ),
        (
            "RecordSelfService on a ticket",
            within(intake.record_self_service(self_served(
                "",
                "reset-router",
                &existing.ticket_id,
            )))
            .await,
        ),
        (
            "GetTicketHistory",
            within(agent.get_ticket_history(history(&existing.ticket_id))).await,
        ),
        (
            "ForgetCustomer",
            within(admin.forget_customer(v1::ForgetCustomerRequest {
                customer_id: existing.customer_id.clone(),
                reason: "gdpr".into(),
            }))
            .await,
        ),
        (
            "ExportCustomerData",
            within(admin.export_customer_data(v1::ExportCustomerDataRequest {
                customer_id: existing.customer_id.clone(),
            }))
            .await,
        ),
        (
            "GetAgent",
            within(routing.get_agent(v1::GetAgentRequest {
                agent_id: "ana".into(),
            }))
            .await,
        ),
        (
            "SetAgentStatus",
            within(routing.set_agent_status(v1::SetAgentStatusRequest {
                agent_id: "ana".into(),
                status: v1::AgentStatus::Away.into(),
            }))
            .await,
        ),
        (
            "ListAgents",
            within(routing.list_agents(v1::ListAgentsRequest::default())).await,
        ),
        (
            "WatchQueue",
            within(routing.watch_queue(v1::WatchQueueRequest {
                agent_id: "ana".into(),
            }))
            .await,
        ),
        (
            "AssignTicket",
            within(routing.assign_ticket(v1::AssignTicketRequest {
                ticket_id: existing.ticket_id.clone(),
                agent_id: "ana".into(),
                reason: "knows the router".into(),
            }))
            .await,
        ),
        (
            "TransferTicket",
            within(routing.transfer_ticket(v1::TransferTicketRequest {
                ticket_id: existing.ticket_id.clone(),
                agent_id: "ana".into(),
                reason: "knows the router".into(),
            }))
            .await,
        ),
        (
            "GetTicketRouting",
            within(routing.get_ticket_routing(v1::GetTicketRoutingRequest {
                ticket_id: existing.ticket_id.clone(),
            }))
            .await,
        ),
        (
            "SetCustomerTier",
            within(routing.set_customer_tier(v1::SetCustomerTierRequest {
                customer_id: existing.customer_id.clone(),
                tier: v1::Tier::Standard.into(),
                named_agent_id: String::new(),
            }))
            .await,
        ),
        (
            "GetCustomerTier",
            within(routing.get_customer_tier(v1::GetCustomerTierRequest {
                customer_id: existing.customer_id.clone(),
            }))
            .await,
        ),
        (
            "PutSlaPolicy",
            within(routing.put_sla_policy(v1::PutSlaPolicyRequest {
                policy: Some(v1::SlaPolicy {
                    warning_percent: 75,
                    escalation: v1::Escalation::Raise.into(),
                    ..Default::default()
                }),
            }))
            .await,
        ),
        (
            "GetSlaPolicy",
            within(routing.get_sla_policy(v1::GetSlaPolicyRequest::default())).await,
        ),
        (
            "LogTime",
            within(routing.log_time(v1::LogTimeRequest {
                ticket_id: existing.ticket_id.clone(),
                minutes: 5,
            }))
            .await,
        ),
        // The projection's standing is read against the stream.
        (
            "GetProjectionStatus",
            within(operator.get_projection_status(v1::GetProjectionStatusRequest::default())).await,
        ),
    ];
    for (call, code) in unavailable {
        assert_eq!(code, Some(Code::Unavailable), "{call} with NATS down");
    }
    // The queue is routing's PostgreSQL index: it still answers (what waited when
    // the log went away) — the one read that needs no NATS.
    assert_eq!(
        within(routing.list_queue(v1::ListQueueRequest::default())).await,
        None,
        "ListQueue with NATS down reads PostgreSQL"
    );
    // So are analytics' read models: search and figures answer from PostgreSQL,
    // with what the projection applied before the log went away.
    let listed = tokio::time::timeout(
        Duration::from_secs(30),
        analytics.list_tickets(v1::ListTicketsRequest::default()),
    )
    .await
    .expect("a call with NATS down must answer, not hang")
    .map(|r| {
        r.into_inner()
            .tickets
            .into_iter()
            .map(|t| t.ticket_id)
            .collect::<Vec<_>>()
    });
    assert_eq!(
        listed.as_ref().map_err(Status::code),
        Ok(&vec![existing.ticket_id.clone()]),
        "ListTickets with NATS down reads PostgreSQL: {listed:?}"
    );
    let reads = [
        (
            "GetMetrics",
            within(analytics.get_metrics(v1::GetMetricsRequest::default())).await,
        ),
        (
            "GetCustomerThirds",
            within(analytics.get_customer_thirds(v1::GetCustomerThirdsRequest::default())).await,
        ),
    ];
    for (call, code) in reads {
        assert_eq!(code, None, "{call} with NATS down reads PostgreSQL");
    }
    // Suggestions and the articles' list too: the article published before.
    let suggested = tokio::time::timeout(
        Duration::from_secs(30),
        analytics.suggest_answers(suggest("My router restarts", "")),
    )
    .await
    .expect("a call with NATS down must answer, not hang")
    .map(|r| {
        r.into_inner()
            .answers
            .into_iter()
            .map(|a| a.article_id)
            .collect::<Vec<_>>()
    });
    assert_eq!(
        suggested.as_ref().map_err(Status::code),
        Ok(&vec![published.article_id.clone()]),
        "SuggestAnswers with NATS down reads PostgreSQL: {suggested:?}"
    );
    let articles = tokio::time::timeout(
        Duration::from_secs(30),
        analytics.list_articles(v1::ListArticlesRequest::default()),
    )
    .await
    .expect("a call with NATS down must answer, not hang")
    .map(|r| {
        r.into_inner()
            .articles
            .into_iter()
            .map(|a| a.article_id)
            .collect::<Vec<_>>()
    });
    assert_eq!(
        articles.as_ref().map_err(Status::code),
        Ok(&vec![published.article_id.clone()]),
        "ListArticles with NATS down reads PostgreSQL: {articles:?}"
    );
    // Bad fields are refused before anything is read, reachable log or not.
    let mut bad_submit = request();
    bad_submit.subject = String::new();
    let invalid = [
        (
            "SubmitTicket",
            within(intake.submit_ticket(bad_submit)).await,
        ),
        (
            "Reply",
            within(agent.reply(reply(&existing.ticket_id, ""))).await,
        ),
        (
            "PublishArticle",
            within(root.publish_article(publish(router_article("Bad Slug"), None))).await,
        ),
        (
            "RecordSelfService",
            within(intake.record_self_service(self_served("", "reset-router", ""))).await,
        ),
        (
            "SuggestAnswers",
            within(analytics.suggest_answers(suggest("", ""))).await,
        ),
    ];
    for (call, code) in invalid {
        assert_eq!(
            code,
            Some(Code::InvalidArgument),
            "{call} with a bad field, NATS down"
        );
    }

    cluster.nats.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        match intake.submit_ticket(request()).await {
            Ok(response) => break response.into_inner(),
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("submit after NATS came back: {status:?}"),
        }
    };
    let again = intake.submit_ticket(request()).await.unwrap().into_inner();
    assert_eq!(
        again.ticket_id, first.ticket_id,
        "the same key finds the same ticket"
    );
    assert!(!again.created);
    assert_eq!(again.ticket_version, 1);

    let counts = cluster.ticket_event_counts().await.unwrap();
    assert_eq!(
        counts.get(&format!("frontline.ticket.{}", first.ticket_id)),
        Some(&1),
        "exactly one event on the ticket: {counts:?}"
    );
    assert_eq!(
        counts.get(&format!("frontline.ticket.{}", existing.ticket_id)),
        Some(&1),
        "the reply during the outage was not recorded: {counts:?}"
    );
    assert_eq!(counts.len(), 2, "no other ticket was opened: {counts:?}");
    cluster.shutdown().await;
}
