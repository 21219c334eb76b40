//! Analytics end to end: tickets driven through intake, conversation and routing,
//! projected exactly once, then searched, measured and asked as of a past moment —
//! with figures recomputed here from the rows themselves, tenants kept apart, and
//! bad input refused field by field.
#![allow(clippy::unwrap_used)]

use std::{collections::HashSet, time::Duration};

use frontline_domain::{Caller, Role};
use frontline_e2e::{Cluster, caller, submit_request, violated_field};
use frontline_proto::{convert, v1};
use tonic::Code;

const TENANT: &str = frontline_e2e::TENANT;

fn manager() -> Caller {
    caller("max", Role::Manager, &[TENANT])
}

fn agent() -> Caller {
    caller("ana", Role::Agent, &[TENANT])
}

async fn agent_online(cluster: &Cluster, id: &str, areas: &[&str]) {
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .register_agent(v1::RegisterAgentRequest {
            agent_id: id.into(),
            profile: Some(v1::AgentProfile {
                display_name: id.into(),
                skills: areas
                    .iter()
                    .map(|a| v1::Skill {
                        product_area: (*a).into(),
                        level: 3,
                    })
                    .collect(),
                capacity: 100,
                team: "first-line".into(),
                tenants: vec![TENANT.into()],
            }),
        })
        .await
        .unwrap();
    routing
        .set_agent_status(v1::SetAgentStatusRequest {
            agent_id: id.into(),
            status: v1::AgentStatus::Available.into(),
        })
        .await
        .unwrap();
}

/// Opens a ticket for a new customer; returns (ticket, customer).
async fn submit(
    cluster: &Cluster,
    key: &str,
    area: &str,
    channel: v1::Channel,
    subject: &str,
) -> (String, String) {
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut request = submit_request(key, &format!("{key}@example.com"));
    request.product_area = area.into();
    request.channel = channel.into();
    request.subject = subject.into();
    let answer = intake.submit_ticket(request).await.unwrap().into_inner();
    assert!(answer.created, "{key} opened a ticket");
    (answer.ticket_id, answer.customer_id)
}

async fn reply(cluster: &Cluster, ticket: &str) {
    let mut conversation = cluster.conversation("ana", Role::Agent).await.unwrap();
    conversation
        .reply(v1::ReplyRequest {
            ticket_id: ticket.into(),
            body: "Looking into it.".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn solve(cluster: &Cluster, ticket: &str) {
    let mut conversation = cluster.conversation("ana", Role::Agent).await.unwrap();
    conversation
        .solve(v1::SolveRequest {
            ticket_id: ticket.into(),
            resolution: "Fixed.".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn reopen(cluster: &Cluster, ticket: &str) {
    let mut conversation = cluster.conversation("ana", Role::Agent).await.unwrap();
    conversation
        .reopen(v1::ReopenRequest {
            ticket_id: ticket.into(),
            reason: "Not fixed after all.".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn log_time(cluster: &Cluster, ticket: &str, minutes: u32) {
    let mut routing = cluster.routing_as(&agent(), None).await.unwrap();
    routing
        .log_time(v1::LogTimeRequest {
            ticket_id: ticket.into(),
            minutes,
        })
        .await
        .unwrap();
}

/// Every ticket of a search, page by page (`page_size` each).
async fn all_pages(
    cluster: &Cluster,
    who: &Caller,
    mut request: v1::ListTicketsRequest,
) -> Vec<v1::TicketRow> {
    let mut analytics = cluster.analytics_as(who, None).await.unwrap();
    let mut rows = Vec::new();
    loop {
        let page = analytics
            .list_tickets(request.clone())
            .await
            .unwrap()
            .into_inner();
        rows.extend(page.tickets);
        if page.next_page_token.is_empty() {
            return rows;
        }
        request.page_token = page.next_page_token;
    }
}

async fn metrics(cluster: &Cluster, request: v1::GetMetricsRequest) -> v1::GetMetricsResponse {
    let mut analytics = cluster.analytics_as(&manager(), None).await.unwrap();
    analytics.get_metrics(request).await.unwrap().into_inner()
}

fn secs(ts: &Option<prost_types::Timestamp>) -> Option<f64> {
    ts.as_ref().map(|t| convert::millis(t) as f64 / 1000.0)
}

/// PostgreSQL's `percentile_cont`: linear interpolation between the closest ranks.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = p * (values.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    values[low] + (values[high] - values[low]) * (rank - low as f64)
}

/// The metrics the rows say, computed here, independently of the service's SQL.
fn expected(rows: &[v1::TicketRow]) -> v1::Metrics {
    let solved = |r: &v1::TicketRow| {
        [v1::TicketStatus::Solved, v1::TicketStatus::Closed]
            .map(i32::from)
            .contains(&r.status)
    };
    let mut frt: Vec<f64> = rows
        .iter()
        .filter_map(|r| Some(secs(&r.first_reply_at)? - secs(&r.opened_at)?))
        .collect();
    let mut res: Vec<f64> = rows
        .iter()
        .filter_map(|r| Some(secs(&r.solved_at)? - secs(&r.opened_at)?))
        .collect();
    let n = rows.len() as u64;
    let breached = rows.iter().filter(|r| r.breached).count() as u64;
    v1::Metrics {
        tickets: n,
        solved: rows.iter().filter(|r| solved(r)).count() as u64,
        backlog: rows.iter().filter(|r| !solved(r)).count() as u64,
        first_response: Some(v1::DurationStats {
            count: frt.len() as u64,
            p50_seconds: percentile(&mut frt, 0.5),
            p90_seconds: percentile(&mut frt, 0.9),
        }),
        resolution: Some(v1::DurationStats {
            count: res.len() as u64,
            p50_seconds: percentile(&mut res, 0.5),
            p90_seconds: percentile(&mut res, 0.9),
        }),
        minutes_logged: rows.iter().map(|r| u64::from(r.minutes_logged)).sum(),
        breached,
        sla_attainment_percent: if n == 0 {
            0.0
        } else {
            100.0 * (n - breached) as f64 / n as f64
        },
        ..Default::default()
    }
}

/// Compares the figures recomputed from rows with the service's (durations to
/// the millisecond).
fn assert_figures(actual: &v1::Metrics, expected: &v1::Metrics, what: &str) {
    assert_eq!(actual.tickets, expected.tickets, "{what}: tickets");
    assert_eq!(actual.solved, expected.solved, "{what}: solved");
    assert_eq!(actual.backlog, expected.backlog, "{what}: backlog");
    assert_eq!(
        actual.minutes_logged, expected.minutes_logged,
        "{what}: minutes"
    );
    assert_eq!(actual.breached, expected.breached, "{what}: breached");
    for (a, e, name) in [
        (
            &actual.first_response,
            &expected.first_response,
            "first response",
        ),
        (&actual.resolution, &expected.resolution, "resolution"),
    ] {
        let (a, e) = (a.unwrap(), e.unwrap());
        assert_eq!(a.count, e.count, "{what}: {name} count");
        assert!(
            (a.p50_seconds - e.p50_seconds).abs() < 0.001,
            "{what}: {name} p50 {a:?} {e:?}"
        );
        assert!(
            (a.p90_seconds - e.p90_seconds).abs() < 0.001,
            "{what}: {name} p90 {a:?} {e:?}"
        );
    }
    assert!((actual.sla_attainment_percent - expected.sla_attainment_percent).abs() < 1e-9);
}

/// Takes a full reading: every ticket (by pages) and the metrics by channel.
async fn reading(
    cluster: &Cluster,
    as_of: Option<prost_types::Timestamp>,
) -> (Vec<v1::TicketRow>, v1::GetMetricsResponse) {
    let rows = all_pages(
        cluster,
        &manager(),
        v1::ListTicketsRequest {
            page_size: 3,
            sort_by: v1::TicketSortKey::UpdatedAt.into(),
            as_of,
            ..Default::default()
        },
    )
    .await;
    let metrics = metrics(
        cluster,
        v1::GetMetricsRequest {
            group_by: v1::MetricsGroupBy::Channel.into(),
            as_of,
            ..Default::default()
        },
    )
    .await;
    (rows, metrics)
}

#[tokio::test]
async fn search_metrics_and_as_of_agree_with_the_rows() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    agent_online(&cluster, "ana", &["billing", "router"]).await;

    let mut tickets = Vec::new();
    for (i, (area, channel)) in [
        ("billing", v1::Channel::Email),
        ("router", v1::Channel::Chat),
        ("billing", v1::Channel::Web),
        ("router", v1::Channel::Email),
        ("shipping", v1::Channel::Phone),
        ("billing", v1::Channel::Chat),
    ]
    .into_iter()
    .enumerate()
    {
        let subject = format!("Case {i}: 100% broken_{area}");
        tickets.push(submit(&cluster, &format!("a{i}"), area, channel, &subject).await);
    }
    reply(&cluster, &tickets[0].0).await;
    reply(&cluster, &tickets[1].0).await;
    solve(&cluster, &tickets[1].0).await;
    log_time(&cluster, &tickets[1].0, 25).await;
    solve(&cluster, &tickets[2].0).await;
    reopen(&cluster, &tickets[2].0).await;
    cluster.routing_settled().await.unwrap();
    cluster.analytics_settled().await.unwrap();

    // Reading 1, live, and the moment it describes.
    let (rows1, metrics1) = reading(&cluster, None).await;
    let t1 = convert::timestamp(frontline_runtime::now_millis());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(rows1.len(), 6);
    let ids: HashSet<_> = rows1.iter().map(|r| r.ticket_id.clone()).collect();
    assert_eq!(ids.len(), 6, "pages neither repeat nor skip");
    assert_figures(
        metrics1.total.as_ref().unwrap(),
        &expected(&rows1),
        "reading 1",
    );
    let total = metrics1.total.clone().unwrap();
    assert_eq!(total.minutes_logged, 25);
    assert_eq!(
        total.reopen_rate_percent, 50.0,
        "one of two solved tickets reopened"
    );
    let by_channel: Vec<_> = metrics1.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(by_channel, ["chat", "email", "phone", "web"]);
    let held = rows1.iter().filter(|r| r.assignee_id == "ana").count();
    assert_eq!(held, 5, "every billing and router ticket went to ana");

    // More happens after t1.
    solve(&cluster, &tickets[0].0).await;
    reply(&cluster, &tickets[3].0).await;
    log_time(&cluster, &tickets[3].0, 10).await;
    submit(
        &cluster,
        "late",
        "billing",
        v1::Channel::Api,
        "Late arrival",
    )
    .await;
    cluster.routing_settled().await.unwrap();
    cluster.analytics_settled().await.unwrap();
    let (rows2, metrics2) = reading(&cluster, None).await;
    assert_eq!(rows2.len(), 7);
    assert_figures(
        metrics2.total.as_ref().unwrap(),
        &expected(&rows2),
        "reading 2",
    );
    assert_eq!(metrics2.total.as_ref().unwrap().minutes_logged, 35);

    // As of t1: exactly what reading 1 said.
    let (then_rows, then_metrics) = reading(&cluster, Some(t1)).await;
    assert_eq!(then_rows, rows1, "the rows as of t1 are reading 1's");
    assert_eq!(then_metrics.total, metrics1.total);
    assert_eq!(then_metrics.groups, metrics1.groups);

    // Filters.
    let count = |request: v1::ListTicketsRequest| {
        let cluster = &cluster;
        async move { all_pages(cluster, &manager(), request).await.len() }
    };
    let billing = v1::ListTicketsRequest {
        product_area: "billing".into(),
        ..Default::default()
    };
    assert_eq!(count(billing).await, 4);
    let solved = v1::ListTicketsRequest {
        statuses: vec![v1::TicketStatus::Solved.into()],
        ..Default::default()
    };
    assert_eq!(count(solved).await, 2);
    let chat = v1::ListTicketsRequest {
        channel: v1::Channel::Chat.into(),
        ..Default::default()
    };
    assert_eq!(count(chat).await, 2);
    let text = v1::ListTicketsRequest {
        text: "100% BROKEN_b".into(),
        ..Default::default()
    };
    assert_eq!(
        count(text).await,
        3,
        "literal, case-insensitive subject text"
    );
    let wildcard = v1::ListTicketsRequest {
        text: "%".into(),
        ..Default::default()
    };
    assert_eq!(
        count(wildcard).await,
        6,
        "a % in the text is a % (not 'anything')"
    );
    let customer = v1::ListTicketsRequest {
        customer_id: tickets[4].1.clone(),
        ..Default::default()
    };
    assert_eq!(count(customer).await, 1);
    let held = v1::ListTicketsRequest {
        assignee_id: "ana".into(),
        ..Default::default()
    };
    assert_eq!(count(held).await, 6);
    let opened_late = v1::ListTicketsRequest {
        opened: Some(v1::TimeRange {
            from: Some(t1),
            to: None,
        }),
        ..Default::default()
    };
    assert_eq!(count(opened_late).await, 1);
    let oldest_first = all_pages(
        &cluster,
        &manager(),
        v1::ListTicketsRequest {
            order: v1::SortOrder::Ascending.into(),
            page_size: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(oldest_first.first().unwrap().ticket_id, tickets[0].0);
    assert_eq!(oldest_first.len(), 7);

    // Grouped by day and by agent: the groups add up to the total.
    let by_agent = metrics(
        &cluster,
        v1::GetMetricsRequest {
            group_by: v1::MetricsGroupBy::Agent.into(),
            ..Default::default()
        },
    )
    .await;
    let sum: u64 = by_agent
        .groups
        .iter()
        .map(|g| g.metrics.as_ref().unwrap().tickets)
        .sum();
    assert_eq!(sum, 7);

    // The three thirds: nobody answered NPS yet, so everyone is "no answer".
    let mut analytics = cluster.analytics_as(&manager(), None).await.unwrap();
    let thirds = analytics
        .get_customer_thirds(v1::GetCustomerThirdsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let categories: Vec<_> = thirds.groups.iter().map(|g| g.category()).collect();
    assert_eq!(
        categories,
        [
            v1::NpsCategory::Promoter,
            v1::NpsCategory::Passive,
            v1::NpsCategory::Detractor,
            v1::NpsCategory::Unspecified
        ]
    );
    let none = &thirds.groups[3];
    assert_eq!(
        (none.customers, none.tickets, none.support_minutes),
        (7, 7, 35)
    );
    assert_eq!(none.support_time_percent, 100.0);
}

#[tokio::test]
async fn pages_stay_stable_while_tickets_change() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut tickets = Vec::new();
    for i in 0..9 {
        let area = "router";
        tickets.push(submit(&cluster, &format!("p{i}"), area, v1::Channel::Web, "Paged").await);
    }
    cluster.analytics_settled().await.unwrap();

    let mut analytics = cluster.analytics_as(&manager(), None).await.unwrap();
    let mut request = v1::ListTicketsRequest {
        page_size: 4,
        sort_by: v1::TicketSortKey::UpdatedAt.into(),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let page = analytics
            .list_tickets(request.clone())
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.tickets.into_iter().map(|t| t.ticket_id));
        if page.next_page_token.is_empty() {
            break;
        }
        // Between pages, the oldest tickets change (they would jump to the front of
        // an updated_at sort) and new ones arrive.
        reply(&cluster, &tickets[round].0).await;
        submit(
            &cluster,
            &format!("new{round}"),
            "router",
            v1::Channel::Web,
            "New",
        )
        .await;
        cluster.analytics_settled().await.unwrap();
        round += 1;
        request.page_token = page.next_page_token;
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(
        seen.len(),
        9,
        "the search's snapshot holds 9 tickets: {seen:?}"
    );
    assert_eq!(unique.len(), 9, "no ticket twice");
}

#[tokio::test]
async fn tenants_roles_and_forgotten_customers() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    agent_online(&cluster, "ana", &["billing"]).await;
    let (ticket, customer) = submit(
        &cluster,
        "f1",
        "billing",
        v1::Channel::Email,
        "My secret plan",
    )
    .await;
    submit(&cluster, "f2", "billing", v1::Channel::Email, "Keep me").await;
    cluster.routing_settled().await.unwrap();
    cluster.analytics_settled().await.unwrap();
    let before = convert::timestamp(frontline_runtime::now_millis());

    // A customer system sees its tenant's tickets without internal data.
    let shop = caller("web-shop", Role::CustomerSystem, &[TENANT]);
    let rows = all_pages(&cluster, &shop, v1::ListTicketsRequest::default()).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.assignee_id.is_empty()), "{rows:?}");
    let mut as_shop = cluster.analytics_as(&shop, None).await.unwrap();
    let refused = as_shop
        .list_tickets(v1::ListTicketsRequest {
            assignee_id: "ana".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    for code in [
        as_shop
            .get_metrics(v1::GetMetricsRequest::default())
            .await
            .unwrap_err()
            .code(),
        as_shop
            .get_customer_thirds(v1::GetCustomerThirdsRequest::default())
            .await
            .unwrap_err()
            .code(),
        as_shop
            .get_projection_status(v1::GetProjectionStatusRequest::default())
            .await
            .unwrap_err()
            .code(),
    ] {
        assert_eq!(code, Code::PermissionDenied);
    }
    // Staff see internal data; agents may search but not read metrics.
    let rows = all_pages(&cluster, &agent(), v1::ListTicketsRequest::default()).await;
    assert!(rows.iter().all(|r| r.assignee_id == "ana"), "{rows:?}");
    let mut as_agent = cluster.analytics_as(&agent(), None).await.unwrap();
    let refused = as_agent
        .get_metrics(v1::GetMetricsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Another tenant sees nothing of this one, and cannot name it.
    let other = caller("olga", Role::Manager, &["globex"]);
    assert!(
        all_pages(&cluster, &other, v1::ListTicketsRequest::default())
            .await
            .is_empty()
    );
    let mut as_other = cluster.analytics_as(&other, None).await.unwrap();
    let total = as_other
        .get_metrics(v1::GetMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap();
    assert_eq!(total.tickets, 0);
    let mut naming = cluster.analytics_as(&other, Some(TENANT)).await.unwrap();
    let refused = naming
        .list_tickets(v1::ListTicketsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // A page token of one tenant's search is no good in another's.
    let mut as_manager = cluster.analytics_as(&manager(), None).await.unwrap();
    let page = as_manager
        .list_tickets(v1::ListTicketsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let refused = as_other
        .list_tickets(v1::ListTicketsRequest {
            page_size: 1,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Forgetting the customer blanks their subjects, now and in every past revision.
    let admin = caller("root", Role::Admin, &[TENANT]);
    let mut intake = cluster.intake_as(&admin, None).await.unwrap();
    intake
        .forget_customer(v1::ForgetCustomerRequest {
            customer_id: customer.clone(),
            reason: "erasure request 7".into(),
        })
        .await
        .unwrap();
    cluster.analytics_settled().await.unwrap();
    for as_of in [None, Some(before)] {
        let rows = all_pages(
            &cluster,
            &manager(),
            v1::ListTicketsRequest {
                as_of,
                ..Default::default()
            },
        )
        .await;
        let forgotten = rows.iter().find(|r| r.ticket_id == ticket).unwrap();
        assert_eq!(
            forgotten.subject,
            frontline_privacy::ERASED,
            "as of {as_of:?}"
        );
        assert!(rows.iter().any(|r| r.subject == "Keep me"));
        let found = all_pages(
            &cluster,
            &manager(),
            v1::ListTicketsRequest {
                text: "secret".into(),
                as_of,
                ..Default::default()
            },
        )
        .await;
        assert!(found.is_empty(), "a forgotten subject is not searchable");
    }
}

#[tokio::test]
async fn a_new_tier_moves_open_tickets_into_its_group() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let (open, customer) = submit(&cluster, "t1", "billing", v1::Channel::Email, "Open one").await;
    cluster.analytics_settled().await.unwrap();
    let before = convert::timestamp(frontline_runtime::now_millis());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .set_customer_tier(v1::SetCustomerTierRequest {
            customer_id: customer,
            tier: v1::Tier::Extended.into(),
            named_agent_id: String::new(),
        })
        .await
        .unwrap();
    submit(
        &cluster,
        "t2",
        "billing",
        v1::Channel::Email,
        "Other customer",
    )
    .await;
    cluster.analytics_settled().await.unwrap();

    let tiers = |response: v1::GetMetricsResponse| -> Vec<(String, u64)> {
        response
            .groups
            .into_iter()
            .map(|g| (g.key, g.metrics.unwrap().tickets))
            .collect()
    };
    let by_tier = |as_of| v1::GetMetricsRequest {
        group_by: v1::MetricsGroupBy::Tier.into(),
        as_of,
        ..Default::default()
    };
    assert_eq!(
        tiers(metrics(&cluster, by_tier(None)).await),
        [("extended".to_string(), 1), ("standard".to_string(), 1)]
    );
    assert_eq!(
        tiers(metrics(&cluster, by_tier(Some(before))).await),
        [("standard".to_string(), 1)]
    );
    let extended = all_pages(
        &cluster,
        &manager(),
        v1::ListTicketsRequest {
            tier: v1::Tier::Extended.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(extended.len(), 1);
    assert_eq!(extended[0].ticket_id, open);
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut analytics = cluster.analytics_as(&manager(), None).await.unwrap();
    let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let list_cases = [
        (
            v1::ListTicketsRequest {
                page_size: 501,
                ..Default::default()
            },
            "page_size",
        ),
        (
            v1::ListTicketsRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            v1::ListTicketsRequest {
                statuses: vec![1, 99],
                ..Default::default()
            },
            "statuses[1]",
        ),
        (
            v1::ListTicketsRequest {
                tier: 9,
                ..Default::default()
            },
            "tier",
        ),
        (
            v1::ListTicketsRequest {
                channel: 42,
                ..Default::default()
            },
            "channel",
        ),
        (
            v1::ListTicketsRequest {
                sla: 7,
                ..Default::default()
            },
            "sla",
        ),
        (
            v1::ListTicketsRequest {
                customer_id: "nope".into(),
                ..Default::default()
            },
            "customer_id",
        ),
        (
            v1::ListTicketsRequest {
                text: "x".repeat(201),
                ..Default::default()
            },
            "text",
        ),
        (
            v1::ListTicketsRequest {
                opened: Some(v1::TimeRange {
                    from: ts(2_000),
                    to: ts(1_000),
                }),
                ..Default::default()
            },
            "opened.to",
        ),
        (
            v1::ListTicketsRequest {
                updated: Some(v1::TimeRange {
                    from: ts(-5),
                    to: None,
                }),
                ..Default::default()
            },
            "updated.from",
        ),
        (
            v1::ListTicketsRequest {
                as_of: ts(4_000_000_000),
                ..Default::default()
            },
            "as_of",
        ),
        (
            v1::ListTicketsRequest {
                sort_by: 5,
                ..Default::default()
            },
            "sort_by",
        ),
        (
            v1::ListTicketsRequest {
                order: 5,
                ..Default::default()
            },
            "order",
        ),
    ];
    for (request, field) in list_cases {
        let status = analytics.list_tickets(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }

    // A token from another search (other filters) is refused.
    for i in 0..2 {
        submit(&cluster, &format!("b{i}"), "billing", v1::Channel::Web, "x").await;
    }
    cluster.analytics_settled().await.unwrap();
    let page = analytics
        .list_tickets(v1::ListTicketsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!page.next_page_token.is_empty());
    let status = analytics
        .list_tickets(v1::ListTicketsRequest {
            page_size: 1,
            product_area: "billing".into(),
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&status).as_deref(), Some("page_token"));

    let metric_cases = [
        (
            v1::GetMetricsRequest {
                group_by: 99,
                ..Default::default()
            },
            "group_by",
        ),
        (
            v1::GetMetricsRequest {
                range: Some(v1::TimeRange {
                    from: ts(0),
                    to: ts(400 * 86_400),
                }),
                ..Default::default()
            },
            "range",
        ),
        (
            v1::GetMetricsRequest {
                range: Some(v1::TimeRange {
                    from: ts(10),
                    to: ts(5),
                }),
                ..Default::default()
            },
            "range.to",
        ),
        (
            v1::GetMetricsRequest {
                as_of: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: -1,
                }),
                ..Default::default()
            },
            "as_of",
        ),
    ];
    for (request, field) in metric_cases {
        let status = analytics.get_metrics(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }
    let status = analytics
        .get_customer_thirds(v1::GetCustomerThirdsRequest {
            as_of: ts(4_000_000_000),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&status).as_deref(), Some("as_of"));
}

fn sla_policy(first_response_seconds: u32, warning_percent: u32) -> v1::SlaPolicy {
    v1::SlaPolicy {
        default_tier: v1::Tier::Standard.into(),
        targets: vec![v1::SlaTarget {
            tier: v1::Tier::Standard.into(),
            priority: v1::Priority::Normal.into(),
            first_response_seconds,
            next_response_seconds: 0,
            resolution_seconds: 0,
        }],
        calendar: None,
        warning_percent,
        time_budget_minutes: Vec::new(),
        escalation: v1::Escalation::Raise.into(),
        auto_close_after_seconds: 0,
        check_in_after_seconds: 0,
    }
}

#[tokio::test]
async fn what_if_replays_past_tickets_under_a_proposed_policy_writing_nothing() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(sla_policy(3_600, 90)),
        })
        .await
        .unwrap();
    // A is answered at once, B after 1.2 s, C never.
    let (a, _) = submit(&cluster, "w-a", "billing", v1::Channel::Email, "A").await;
    let (b, _) = submit(&cluster, "w-b", "billing", v1::Channel::Email, "B").await;
    submit(&cluster, "w-c", "billing", v1::Channel::Email, "C").await;
    reply(&cluster, &a).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    reply(&cluster, &b).await;
    cluster.routing_settled().await.unwrap();
    cluster.analytics_settled().await.unwrap();
    let stored = cluster.log.last_sequence().await.unwrap();

    let mut analytics = cluster.analytics_as(&manager(), None).await.unwrap();
    let answer = analytics
        .simulate_sla_policy(v1::SimulateSlaPolicyRequest {
            policy: Some(sla_policy(1, 50)),
            range: None,
        })
        .await
        .unwrap()
        .into_inner();
    let counts = |a: &Option<v1::SlaAttainment>| {
        let a = a.unwrap();
        (a.tickets, a.clocks, a.met, a.breached, a.running)
    };
    let tiers: Vec<_> = answer.tiers.iter().map(|t| t.tier()).collect();
    assert_eq!(
        tiers,
        [v1::Tier::Basic, v1::Tier::Standard, v1::Tier::Extended]
    );
    let standard = &answer.tiers[1];
    // Proposed (1 s): A met; B late; C unmet past due. Actual (1 h): A, B met; C runs.
    assert_eq!(counts(&standard.proposed), (3, 3, 1, 2, 0));
    assert_eq!(counts(&standard.actual), (3, 3, 2, 0, 1));
    assert!((standard.proposed.unwrap().attainment_percent - 100.0 / 3.0).abs() < 1e-9);
    assert_eq!(standard.actual.unwrap().attainment_percent, 100.0);
    assert_eq!(counts(&answer.proposed_total), counts(&standard.proposed));
    assert_eq!(counts(&answer.tiers[0].proposed), (0, 0, 0, 0, 0));
    assert_eq!(answer.actual_policy_version, 1);
    assert_eq!(
        cluster.log.last_sequence().await.unwrap(),
        stored,
        "a simulation writes nothing to the log"
    );

    // A range before the tickets holds none.
    let none = analytics
        .simulate_sla_policy(v1::SimulateSlaPolicyRequest {
            policy: Some(sla_policy(1, 50)),
            range: Some(v1::TimeRange {
                from: None,
                to: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(counts(&none.proposed_total).0, 0);

    // The proposed policy is checked field by field; agents may not simulate.
    let backwards = v1::TimeRange {
        from: Some(prost_types::Timestamp {
            seconds: 20,
            nanos: 0,
        }),
        to: Some(prost_types::Timestamp {
            seconds: 10,
            nanos: 0,
        }),
    };
    for (policy, range, field) in [
        (None, None, "policy"),
        (Some(sla_policy(1, 100)), None, "policy.warning_percent"),
        (Some(sla_policy(1, 50)), Some(backwards), "range.to"),
    ] {
        let status = analytics
            .simulate_sla_policy(v1::SimulateSlaPolicyRequest { policy, range })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }
    let mut as_agent = cluster.analytics_as(&agent(), None).await.unwrap();
    let refused = as_agent
        .simulate_sla_policy(v1::SimulateSlaPolicyRequest {
            policy: Some(sla_policy(1, 50)),
            range: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

fn operator() -> Caller {
    caller("op", Role::Admin, &["*"])
}

/// Every revision of every row the views show, as text, in a stable order.
async fn dump(db: &sqlx::PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for (view, order) in [
        ("analytics_tickets", "ticket_id, revision"),
        ("analytics_customers", "customer_id, revision"),
        ("analytics_policies", "tenant"),
        ("analytics_articles", "article_id"),
        ("analytics_self_served", "ticket_id"),
    ] {
        let text: Vec<String> =
            sqlx::query_scalar(&format!("SELECT r::text FROM {view} r ORDER BY {order}"))
                .fetch_all(db)
                .await
                .unwrap();
        rows.extend(text.into_iter().map(|t| format!("{view}: {t}")));
    }
    rows
}

#[tokio::test]
async fn a_rebuild_equals_the_incremental_read_models_row_for_row() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let db = sqlx::PgPool::connect(&cluster.database.url).await.unwrap();
    agent_online(&cluster, "ana", &["billing"]).await;
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(sla_policy(3_600, 90)),
        })
        .await
        .unwrap();
    let mut tickets = Vec::new();
    for i in 0..8 {
        let area = if i % 2 == 0 { "billing" } else { "router" };
        tickets.push(
            submit(
                &cluster,
                &format!("r{i}"),
                area,
                v1::Channel::Chat,
                "Rebuild me",
            )
            .await,
        );
    }
    reply(&cluster, &tickets[0].0).await;
    solve(&cluster, &tickets[0].0).await;
    reopen(&cluster, &tickets[0].0).await;
    log_time(&cluster, &tickets[2].0, 15).await;
    routing
        .set_customer_tier(v1::SetCustomerTierRequest {
            customer_id: tickets[4].1.clone(),
            tier: v1::Tier::Basic.into(),
            named_agent_id: String::new(),
        })
        .await
        .unwrap();
    let mut intake = cluster
        .intake_as(&caller("root", Role::Admin, &[TENANT]), None)
        .await
        .unwrap();
    intake
        .forget_customer(v1::ForgetCustomerRequest {
            customer_id: tickets[6].1.clone(),
            reason: "erasure request 9".into(),
        })
        .await
        .unwrap();
    cluster.routing_settled().await.unwrap();
    cluster.analytics_settled().await.unwrap();
    let incremental = dump(&db).await;
    assert!(incremental.len() > 30, "{incremental:?}");

    let mut analytics = cluster.analytics_as(&operator(), None).await.unwrap();
    let rebuild = analytics
        .rebuild_read_models(v1::RebuildReadModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rebuild.generation, rebuild.started), (2, true));
    // Asked again while it runs: the same rebuild.
    let again = analytics
        .rebuild_read_models(v1::RebuildReadModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(again.generation == 2, "{again:?}");
    // Readers are served throughout.
    assert_eq!(
        all_pages(&cluster, &manager(), v1::ListTicketsRequest::default())
            .await
            .len(),
        8
    );

    let mut live = None;
    for _ in 0..300 {
        let status = analytics
            .get_projection_status(v1::GetProjectionStatusRequest::default())
            .await
            .unwrap()
            .into_inner();
        if let Some(p) = status.projections.first().filter(|p| p.generation == 2) {
            live = Some(p.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = live.expect("generation 2 went live within 30 s");
    assert!(live.live && live.name == "analytics-g2", "{live:?}");
    assert_eq!(
        dump(&db).await,
        incremental,
        "the rebuild equals the incremental model"
    );

    // The new generation keeps following the log; the old one is dropped.
    submit(
        &cluster,
        "after",
        "billing",
        v1::Channel::Web,
        "After the rebuild",
    )
    .await;
    cluster.analytics_settled().await.unwrap();
    assert_eq!(
        all_pages(&cluster, &manager(), v1::ListTicketsRequest::default())
            .await
            .len(),
        9
    );
    let mut dropped = false;
    for _ in 0..100 {
        let old: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('analytics_tickets_g1')::text")
                .fetch_one(&db)
                .await
                .unwrap();
        if old.is_none() {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped, "generation 1's tables are dropped");

    // Only an admin of every tenant may rebuild.
    let mut as_admin = cluster
        .analytics_as(&caller("root", Role::Admin, &[TENANT]), None)
        .await
        .unwrap();
    let refused = as_admin
        .rebuild_read_models(v1::RebuildReadModelsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn durations_count_business_hours_when_the_policy_sets_them() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    let (ticket, _) = submit(&cluster, "bh", "billing", v1::Channel::Email, "Hours").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    reply(&cluster, &ticket).await;
    cluster.analytics_settled().await.unwrap();
    let before = convert::timestamp(frontline_runtime::now_millis());

    // Open one day a week, three days from today (UTC): today and tomorrow are
    // closed, so the reply came after no business time at all.
    let days = frontline_runtime::now_millis() / 86_400_000;
    let today = ((days + 3) % 7) as usize; // 1970-01-01 was a Thursday; Monday is 0
    let mut policy = sla_policy(3_600, 90);
    policy.calendar = Some(v1::BusinessCalendar {
        time_zone: "UTC".into(),
        weekly: (0..7)
            .map(|day| v1::OpenHours {
                from_minute: 0,
                to_minute: if day == (today + 3) % 7 { 1_440 } else { 0 },
            })
            .collect(),
        holidays: Vec::new(),
    });
    let mut routing = cluster.routing_as(&manager(), None).await.unwrap();
    routing
        .put_sla_policy(v1::PutSlaPolicyRequest {
            policy: Some(policy),
        })
        .await
        .unwrap();
    cluster.routing_settled().await.unwrap();
    cluster.analytics_settled().await.unwrap();

    let now = metrics(&cluster, v1::GetMetricsRequest::default()).await;
    let first = now.total.unwrap().first_response.unwrap();
    assert!(now.business_hours);
    assert_eq!((first.count, first.p50_seconds), (1, 0.0), "{first:?}");
    // Before the policy, wall-clock time.
    let then = metrics(
        &cluster,
        v1::GetMetricsRequest {
            as_of: Some(before),
            ..Default::default()
        },
    )
    .await;
    let first = then.total.unwrap().first_response.unwrap();
    assert!(!then.business_hours);
    assert!(first.p50_seconds >= 0.03, "{first:?}");
}
