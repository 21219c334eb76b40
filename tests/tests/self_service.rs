//! Self-service end to end: admins publish versioned articles; a channel has the
//! best matches suggested for what a customer is about to ask (full-text search in
//! analytics); a customer who says an article solved it is recorded as
//! self-served — with no ticket, or with their ticket solved at no agent time —
//! and analytics counts both per article.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, caller, submit_request, violated_field};
use frontline_proto::v1;
use tonic::Code;

const TENANT: &str = frontline_e2e::TENANT;

fn article(slug: &str, area: &str, title: &str, body: &str) -> v1::Article {
    v1::Article {
        slug: slug.into(),
        product_area: area.into(),
        title: title.into(),
        body: body.into(),
        ..Default::default()
    }
}

fn reset() -> v1::Article {
    article(
        "reset-router",
        "router-x200",
        "Router restarts by itself",
        "If your router reboots every hour after an update, hold the reset button for \
         ten seconds and wait until the light turns green.",
    )
}

fn publish(a: v1::Article, expected_revision: Option<u32>) -> v1::PublishArticleRequest {
    v1::PublishArticleRequest {
        article: Some(a),
        expected_revision,
    }
}

fn suggest(subject: &str, body: &str, area: &str) -> v1::SuggestAnswersRequest {
    v1::SuggestAnswersRequest {
        subject: subject.into(),
        body: body.into(),
        product_area: area.into(),
        limit: 0,
    }
}

fn served(slug: &str, key: &str, ticket: &str) -> v1::RecordSelfServiceRequest {
    v1::RecordSelfServiceRequest {
        idempotency_key: key.into(),
        slug: slug.into(),
        customer_id: String::new(),
        ticket_id: ticket.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_article_is_suggested_solves_the_problem_and_is_counted() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();

    // Admins publish; every publish of new text is the next revision.
    let first = root
        .publish_article(publish(reset(), Some(0)))
        .await
        .unwrap()
        .into_inner();
    assert!(first.recorded);
    let stored = first.article.unwrap();
    assert_eq!((stored.revision, stored.retired), (1, false));
    let again = root
        .publish_article(publish(reset(), None))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.recorded, "the same text again records nothing");
    let edited = v1::Article {
        body: format!("{} Then restart it once more.", reset().body),
        ..reset()
    };
    let second = root
        .publish_article(publish(edited.clone(), Some(1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.article.unwrap().revision, 2);
    // A retry of that call (its answer lost) is a repeat, not a conflict.
    let retry = root
        .publish_article(publish(edited.clone(), Some(1)))
        .await
        .unwrap()
        .into_inner();
    assert!(!retry.recorded);
    // Someone else's edit was made on revision 1: refused, not overwritten.
    let err = root
        .publish_article(publish(reset(), Some(1)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    let err = ana
        .publish_article(publish(reset(), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    for other in [
        article(
            "wifi-password",
            "router-x200",
            "Changing the Wi-Fi password",
            "Open the admin page and choose a new wireless password.",
        ),
        article(
            "refunds",
            "billing",
            "Getting a refund",
            "Refunds reach your card within five working days.",
        ),
        article(
            "old-firmware",
            "router-x200",
            "Router restarts on old firmware",
            "Routers on firmware 1.0 reboot every hour; update the firmware.",
        ),
    ] {
        root.publish_article(publish(other, None)).await.unwrap();
    }
    root.retire_article(v1::RetireArticleRequest {
        slug: "old-firmware".into(),
        expected_revision: Some(1),
    })
    .await
    .unwrap();

    // Every role reads an article, retired ones too.
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let got = shop
        .get_article(v1::GetArticleRequest {
            slug: "old-firmware".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .article
        .unwrap();
    assert!(got.retired);
    let err = shop
        .get_article(v1::GetArticleRequest {
            slug: "nothing-here".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A channel asks what might answer the customer before opening a ticket: the
    // words they use, not the article's exact phrase. The retired one never shows.
    cluster.analytics_settled().await.unwrap();
    let shop_caller = caller("web-shop", Role::CustomerSystem, &[TENANT]);
    let mut shop_analytics = cluster.analytics_as(&shop_caller, None).await.unwrap();
    let request = submit_request("ss-1", "erin@example.com");
    let answers = shop_analytics
        .suggest_answers(suggest(&request.subject, &request.body, ""))
        .await
        .unwrap()
        .into_inner()
        .answers;
    let slugs: Vec<&str> = answers.iter().map(|a| a.slug.as_str()).collect();
    assert_eq!(slugs.first(), Some(&"reset-router"), "{answers:?}");
    assert!(!slugs.contains(&"old-firmware"), "{slugs:?}");
    assert!(!slugs.contains(&"refunds"), "{slugs:?}");
    assert_eq!(answers[0].revision, 2);
    assert!(
        answers[0].snippet.contains("<b>"),
        "{:?}",
        answers[0].snippet
    );
    // Another product area's articles only.
    let billing = shop_analytics
        .suggest_answers(suggest("refund please", "my card", "billing"))
        .await
        .unwrap()
        .into_inner()
        .answers;
    assert_eq!(billing.len(), 1);
    assert_eq!(billing[0].slug, "refunds");

    // It solved it: no ticket needed. A retry of the same key records nothing.
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let done = intake
        .record_self_service(served("reset-router", "ss-1", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(done.recorded);
    assert_eq!(done.revision, 2);
    let repeat = intake
        .record_self_service(served("reset-router", "ss-1", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!repeat.recorded);
    assert_eq!(repeat.record_id, done.record_id);
    let err = intake
        .record_self_service(served("old-firmware", "ss-2", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // Retired after it helped: a retry is still answered as the repeat.
    root.publish_article(publish(
        article(
            "temp",
            "router-x200",
            "Temporary",
            "Unplug it for a minute.",
        ),
        None,
    ))
    .await
    .unwrap();
    let first = intake
        .record_self_service(served("temp", "ss-temp", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(first.recorded);
    root.retire_article(v1::RetireArticleRequest {
        slug: "temp".into(),
        expected_revision: None,
    })
    .await
    .unwrap();
    let late = intake
        .record_self_service(served("temp", "ss-temp", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!late.recorded);

    // A customer whose ticket is open says the article solved it: solved, with no
    // agent time, and the ticket says by which article.
    let ticket = intake
        .submit_ticket(submit_request("ss-3", "fred@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let solved = intake
        .record_self_service(served("reset-router", "ss-3", &ticket))
        .await
        .unwrap()
        .into_inner();
    assert!(solved.recorded);
    assert_eq!(solved.record_id, ticket);
    let view = shop
        .get_ticket(v1::GetTicketRequest {
            ticket_id: ticket.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(view.status(), v1::TicketStatus::Solved);
    assert_eq!(view.self_served_article_id, solved.article_id);
    let repeat = intake
        .record_self_service(served("reset-router", "", &ticket))
        .await
        .unwrap()
        .into_inner();
    assert!(!repeat.recorded);
    // The customer writes again: reopened. A late retry of the same call (same
    // key) is still the repeat it is, and leaves the customer's new question open.
    let mut again = submit_request("ss-3b", "fred@example.com");
    again.continue_ticket_id = ticket.clone();
    intake.submit_ticket(again).await.unwrap();
    let retry = intake
        .record_self_service(served("reset-router", "ss-3", &ticket))
        .await
        .unwrap()
        .into_inner();
    assert!(!retry.recorded);
    let view = shop
        .get_ticket(v1::GetTicketRequest {
            ticket_id: ticket.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(view.status(), v1::TicketStatus::Open);
    assert_eq!(view.self_served_article_id, "");
    // A key that recorded one article cannot record another.
    let err = intake
        .record_self_service(served("wifi-password", "ss-1", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");

    // Another customer's ticket, solved by it and left so.
    let kept = intake
        .submit_ticket(submit_request("ss-5", "hugo@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    intake
        .record_self_service(served("reset-router", "", &kept))
        .await
        .unwrap();

    // Once an agent has worked on a ticket, it is theirs to solve.
    let worked = intake
        .submit_ticket(submit_request("ss-4", "gina@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    ana.reply(v1::ReplyRequest {
        ticket_id: worked.clone(),
        body: "Looking into it.".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let err = intake
        .record_self_service(served("reset-router", "", &worked))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // Analytics counts deflection per article.
    cluster.analytics_settled().await.unwrap();
    let mut max = cluster
        .analytics_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    let listed = max
        .list_articles(v1::ListArticlesRequest {
            product_area: String::new(),
            include_retired: true,
        })
        .await
        .unwrap()
        .into_inner()
        .articles;
    let counts: Vec<(&str, u64, u64, bool)> = listed
        .iter()
        .map(|a| (a.slug.as_str(), a.self_served, a.tickets_solved, a.retired))
        .collect();
    assert_eq!(
        counts,
        [
            ("refunds", 0, 0, false),
            ("old-firmware", 0, 0, true),
            ("reset-router", 1, 1, false),
            ("temp", 1, 0, true),
            ("wifi-password", 0, 0, false),
        ]
    );
    let err = shop_analytics
        .list_articles(v1::ListArticlesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_article_and_self_service_requests_are_refused_precisely() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
    for (field, bad) in [
        (
            "article.slug",
            v1::Article {
                slug: "Reset Router".into(),
                ..reset()
            },
        ),
        (
            "article.product_area",
            v1::Article {
                product_area: String::new(),
                ..reset()
            },
        ),
        (
            "article.title",
            v1::Article {
                title: " ".into(),
                ..reset()
            },
        ),
        (
            "article.body",
            v1::Article {
                body: String::new(),
                ..reset()
            },
        ),
    ] {
        let err = root.publish_article(publish(bad, None)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert_eq!(violated_field(&err).as_deref(), Some(field));
    }
    let err = root
        .retire_article(v1::RetireArticleRequest {
            slug: "never-published".into(),
            expected_revision: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    root.publish_article(publish(reset(), None)).await.unwrap();

    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let ticket = intake
        .submit_ticket(submit_request("bad-1", "hana@example.com"))
        .await
        .unwrap()
        .into_inner()
        .ticket_id;
    let counts = cluster.ticket_event_counts().await.unwrap();
    for (request, code, field) in [
        (
            served("reset-router", "", ""),
            Code::InvalidArgument,
            Some("idempotency_key"),
        ),
        (
            served("Bad Slug", "k", ""),
            Code::InvalidArgument,
            Some("slug"),
        ),
        (
            served("reset-router", "k", "not-a-uuid"),
            Code::InvalidArgument,
            Some("ticket_id"),
        ),
        (
            v1::RecordSelfServiceRequest {
                customer_id: "x".into(),
                ..served("reset-router", "k", "")
            },
            Code::InvalidArgument,
            Some("customer_id"),
        ),
        (served("no-such-article", "k", ""), Code::NotFound, None),
        (
            served("reset-router", "k", &uuid::Uuid::new_v4().to_string()),
            Code::NotFound,
            None,
        ),
        (
            v1::RecordSelfServiceRequest {
                customer_id: uuid::Uuid::new_v4().to_string(),
                ..served("reset-router", "k", "")
            },
            Code::NotFound,
            None,
        ),
    ] {
        let err = intake.record_self_service(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert_eq!(violated_field(&err).as_deref(), field, "{err:?}");
    }
    // Agents do not speak for customers.
    let mut agent = cluster.intake("ana", Role::Agent).await.unwrap();
    let err = agent
        .record_self_service(served("reset-router", "", &ticket))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Nothing refused was stored.
    assert_eq!(cluster.ticket_event_counts().await.unwrap(), counts);

    let shop = caller("web-shop", Role::CustomerSystem, &[TENANT]);
    let mut analytics = cluster.analytics_as(&shop, None).await.unwrap();
    for (request, field) in [
        (suggest("", " ", ""), "subject"),
        (suggest(&"x".repeat(201), "", ""), "subject"),
        (suggest("router", "", "Not An Area"), "product_area"),
        (
            v1::SuggestAnswersRequest {
                limit: 21,
                ..suggest("router", "", "")
            },
            "limit",
        ),
    ] {
        let err = analytics.suggest_answers(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(violated_field(&err).as_deref(), Some(field), "{err:?}");
    }
    // Only stop words: no match, not an error.
    cluster.analytics_settled().await.unwrap();
    let none = analytics
        .suggest_answers(suggest("the", "and of", ""))
        .await
        .unwrap()
        .into_inner()
        .answers;
    assert!(none.is_empty());
    cluster.shutdown().await;
}
