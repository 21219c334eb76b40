//! The Grafana analytics dashboard (`deploy/grafana/frontline-analytics.json`)
//! against the real read-model schema: every panel's SQL and the tenant variable's
//! query run — Grafana's macros expanded to plain SQL — against the analytics
//! database of a cluster that served a few tickets, and a few panels show the
//! figures those tickets make. A dashboard that drifts from the schema fails here.
#![allow(clippy::unwrap_used)]

use frontline_domain::Role;
use frontline_e2e::{Cluster, caller, submit_request};
use frontline_proto::v1;
use serde_json::Value;

const TENANT: &str = frontline_e2e::TENANT;

const DASHBOARD: &str = include_str!("../../deploy/grafana/frontline-analytics.json");

/// The runbook, whose dashboard section creates the data source's read-only role.
const OPERATIONS: &str = include_str!("../../docs/operations.md");

/// The time range the expanded macros stand for: the last 30 days.
const FROM: &str = "(now() - interval '30 days')";
const TO: &str = "now()";

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).unwrap()
}

/// Every panel's (title, rawSql), in order.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap().to_string();
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no targets");
        for target in targets {
            let sql = target["rawSql"].as_str();
            assert!(sql.is_some(), "{title}: a target without rawSql");
            queries.push((title.clone(), sql.unwrap_or_default().to_string()));
        }
    }
    queries
}

/// A `date_trunc` field for a Grafana interval such as `1d` or `1h`.
fn trunc_unit(interval: &str) -> &'static str {
    match interval.trim().trim_matches('\'') {
        "1d" | "24h" => "day",
        "1h" | "60m" => "hour",
        "1m" | "60s" => "minute",
        "1w" | "7d" => "week",
        other => panic!("no date_trunc unit for the interval {other:?}"),
    }
}

/// Splits a macro's argument list at its top-level commas.
fn split_args(args: &str) -> Vec<String> {
    let (mut parts, mut depth, mut current) = (Vec::new(), 0usize, String::new());
    for ch in args.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_string());
    }
    parts
}

/// `sql` with Grafana's macros and the `tenant` variable replaced by the plain SQL
/// Grafana's PostgreSQL data source would send (over the last 30 days).
fn plain(sql: &str, tenant: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(start) = rest.find("$__") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let name_len = after
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let open = &after[name_len..];
        assert!(open.starts_with('('), "macro $__{name} without arguments");
        // The matching closing parenthesis.
        let mut depth = 0usize;
        let mut close = None;
        for (i, ch) in open.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let close = close.unwrap_or_else(|| panic!("unclosed $__{name}("));
        let args = split_args(&open[1..close]);
        let expanded = match (name, args.as_slice()) {
            ("timeFilter", [col]) => format!("{col} BETWEEN {FROM} AND {TO}"),
            ("timeGroupAlias", [col, interval, ..]) => {
                format!("date_trunc('{}', {col}) AS time", trunc_unit(interval))
            }
            ("timeGroup", [col, interval, ..]) => {
                format!("date_trunc('{}', {col})", trunc_unit(interval))
            }
            ("timeFrom", []) => FROM.to_string(),
            ("timeTo", []) => TO.to_string(),
            _ => panic!("unknown macro $__{name}({args:?})"),
        };
        out.push_str(&expanded);
        rest = &open[close + 1..];
    }
    out.push_str(rest);
    let out = out.replace("${tenant}", tenant).replace("$tenant", tenant);
    assert!(!out.contains('$'), "a variable or macro is left: {out}");
    out
}

#[test]
fn macros_expand_to_plain_sql() {
    assert_eq!(
        plain(
            "SELECT $__timeGroupAlias(opened_at, 1d), count(*) FROM t \
             WHERE tenant = '$tenant' AND $__timeFilter(opened_at) AND x <= $__timeTo()",
            "acme"
        ),
        "SELECT date_trunc('day', opened_at) AS time, count(*) FROM t \
         WHERE tenant = 'acme' AND opened_at BETWEEN (now() - interval '30 days') AND now() \
         AND x <= now()"
    );
    assert_eq!(
        plain("$__timeGroup(coalesce(a, b), '1h', 0) = '${tenant}'", "x"),
        "date_trunc('hour', coalesce(a, b)) = 'x'"
    );
}

#[test]
fn every_panel_queries_the_postgres_input() {
    let dashboard = dashboard();
    let input = &dashboard["__inputs"][0];
    assert_eq!(input["pluginId"], "grafana-postgresql-datasource");
    let uid = format!("${{{}}}", input["name"].as_str().unwrap());
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{} panels", panels.len());
    let mut ids = std::collections::HashSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "duplicate id");
        assert_eq!(
            panel["datasource"]["uid"],
            uid.as_str(),
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"]["uid"], uid.as_str());
            assert_eq!(target["rawQuery"], true);
        }
    }
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "tenant" && v["datasource"]["uid"] == uid.as_str())
    );
}

/// The runbook's SQL that creates the dashboard's read-only role, and the role.
fn read_only_role() -> (String, String) {
    let sql = OPERATIONS
        .split("```sql\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("GRANT SELECT ON analytics_"))
        .expect("docs/operations.md creates the dashboard's role")
        .to_string();
    let role = sql
        .split_whitespace()
        .skip_while(|w| *w != "ROLE")
        .nth(1)
        .expect("CREATE ROLE <name>")
        .to_string();
    (sql, role)
}

/// The rows `sql` returns, each as a JSON object.
async fn rows(db: &mut sqlx::PgConnection, what: &str, sql: &str) -> Vec<Value> {
    let texts: Vec<String> =
        sqlx::query_scalar(&format!("SELECT row_to_json(q)::text FROM ({sql}) AS q"))
            .fetch_all(db)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}\n{sql}"));
    texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect()
}

/// The one panel titled `title`'s rows.
async fn panel_rows(db: &mut sqlx::PgConnection, dashboard: &Value, title: &str) -> Vec<Value> {
    let (_, sql) = panel_queries(dashboard)
        .into_iter()
        .find(|(t, _)| t == title)
        .unwrap_or_else(|| panic!("no panel {title:?}"));
    rows(db, title, &plain(&sql, TENANT)).await
}

fn number(row: &Value, column: &str) -> f64 {
    row[column]
        .as_f64()
        .unwrap_or_else(|| panic!("{column} in {row}"))
}

/// Opens a ticket for a new customer; returns (ticket, customer).
async fn submit(
    cluster: &Cluster,
    key: &str,
    area: &str,
    channel: v1::Channel,
) -> (String, String) {
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    let mut request = submit_request(key, &format!("{key}@example.com"));
    request.product_area = area.into();
    request.channel = channel.into();
    let answer = intake.submit_ticket(request).await.unwrap().into_inner();
    assert!(answer.created, "{key} opened a ticket");
    (answer.ticket_id, answer.customer_id)
}

async fn agent_online(cluster: &Cluster, id: &str, area: &str) {
    let mut routing = cluster
        .routing_as(&caller("max", Role::Manager, &[TENANT]), None)
        .await
        .unwrap();
    routing
        .register_agent(v1::RegisterAgentRequest {
            agent_id: id.into(),
            profile: Some(v1::AgentProfile {
                display_name: id.into(),
                skills: vec![v1::Skill {
                    product_area: area.into(),
                    level: 3,
                }],
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_against_the_read_models() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_analytics().await.unwrap();
    agent_online(&cluster, "ana", "router-x200").await;

    // Three tickets: two by email about the router, one by chat about billing.
    let (answered, fan) = submit(&cluster, "g-a", "router-x200", v1::Channel::Email).await;
    let (_, meh) = submit(&cluster, "g-b", "router-x200", v1::Channel::Email).await;
    let (deflected, _) = submit(&cluster, "g-c", "billing", v1::Channel::Chat).await;
    cluster.routing_settled().await.unwrap();

    // Ana answers and solves the first; its customer rates it 4.
    let mut ana = cluster.conversation("ana", Role::Agent).await.unwrap();
    ana.reply(v1::ReplyRequest {
        ticket_id: answered.clone(),
        body: "Looking into it.".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    ana.solve(v1::SolveRequest {
        ticket_id: answered.clone(),
        resolution: "Firmware 2.1.".into(),
        expected_version: None,
    })
    .await
    .unwrap();
    let mut shop = cluster
        .conversation("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    shop.rate_satisfaction(v1::RateSatisfactionRequest {
        ticket_id: answered.clone(),
        score: 4,
        comment: String::new(),
        expected_version: None,
    })
    .await
    .unwrap();

    // NPS: a promoter and a passive.
    let mut intake = cluster
        .intake("web-shop", Role::CustomerSystem)
        .await
        .unwrap();
    for (customer, score) in [(&fan, 10), (&meh, 7)] {
        intake
            .record_nps(v1::RecordNpsRequest {
                customer_id: customer.clone(),
                score,
                comment: String::new(),
            })
            .await
            .unwrap();
    }

    // An article solves the billing ticket, and a customer's problem with no ticket.
    let mut root = cluster.conversation("root", Role::Admin).await.unwrap();
    root.publish_article(v1::PublishArticleRequest {
        article: Some(v1::Article {
            slug: "refunds".into(),
            product_area: "billing".into(),
            title: "Getting a refund".into(),
            body: "Refunds reach your card within five working days.".into(),
            ..Default::default()
        }),
        expected_revision: None,
    })
    .await
    .unwrap();
    for (key, ticket) in [("g-ss-1", ""), ("g-ss-2", deflected.as_str())] {
        let done = intake
            .record_self_service(v1::RecordSelfServiceRequest {
                idempotency_key: key.into(),
                slug: "refunds".into(),
                customer_id: String::new(),
                ticket_id: ticket.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(done.recorded, "{key}");
    }
    cluster.analytics_settled().await.unwrap();

    let pool = sqlx::PgPool::connect(&cluster.database.url).await.unwrap();
    let dashboard = dashboard();

    // As the data source would: as the runbook's read-only role (created in a
    // transaction that is rolled back, as roles are the server's, not the database's).
    let mut tx = pool.begin().await.unwrap();
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let (setup, role) = read_only_role();
    for statement in setup.split(';').filter(|s| !s.trim().is_empty()) {
        let statement = statement.replace("frontline_analytics", &database);
        sqlx::query(&statement)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    sqlx::query(&format!("SET LOCAL ROLE {role}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let db = &mut *tx;

    // The tenant variable lists the tenant.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    for variable in variables.iter().filter(|v| v["type"] == "query") {
        let name = variable["name"].as_str().unwrap();
        let query = variable["query"].as_str().unwrap();
        let listed = rows(db, name, &plain(query, TENANT)).await;
        if name == "tenant" {
            assert_eq!(listed, [serde_json::json!({ "tenant": TENANT })]);
        }
    }

    // Every panel's query runs.
    let queries = panel_queries(&dashboard);
    assert!(queries.len() >= 8, "{} queries", queries.len());
    for (title, sql) in &queries {
        rows(db, title, &plain(sql, TENANT)).await;
    }

    // And a few show what happened.
    let opened = panel_rows(db, &dashboard, "Tickets opened per day").await;
    let total: f64 = opened.iter().map(|r| number(r, "opened")).sum();
    assert_eq!(total, 3.0, "{opened:?}");

    let backlog = panel_rows(db, &dashboard, "Backlog now by status").await;
    let waiting: f64 = backlog.iter().map(|r| number(r, "tickets")).sum();
    assert_eq!(waiting, 1.0, "only the second ticket waits: {backlog:?}");
    let by_area = panel_rows(db, &dashboard, "Backlog now by product area").await;
    assert_eq!(
        by_area,
        [serde_json::json!({ "product_area": "router-x200", "tickets": 1 })]
    );

    let channels = panel_rows(db, &dashboard, "Tickets per channel").await;
    assert_eq!(
        channels,
        [
            serde_json::json!({ "channel": "Email", "tickets": 2 }),
            serde_json::json!({ "channel": "Chat", "tickets": 1 }),
        ]
    );

    let csat = panel_rows(db, &dashboard, "CSAT average").await;
    assert_eq!(csat.len(), 1);
    assert_eq!(
        (number(&csat[0], "CSAT"), number(&csat[0], "ratings")),
        (4.0, 1.0)
    );
    let distribution = panel_rows(db, &dashboard, "CSAT distribution").await;
    let counts: Vec<f64> = distribution.iter().map(|r| number(r, "ratings")).collect();
    assert_eq!(counts, [0.0, 0.0, 0.0, 1.0, 0.0]);

    let nps = panel_rows(db, &dashboard, "NPS now").await;
    assert_eq!(
        nps,
        [serde_json::json!({ "NPS": 50, "promoters": 1, "passives": 1, "detractors": 0 })]
    );

    let articles = panel_rows(db, &dashboard, "Self-service deflections per article").await;
    assert_eq!(articles.len(), 1, "{articles:?}");
    assert_eq!(articles[0]["slug"], "refunds");
    assert_eq!(
        (
            number(&articles[0], "tickets solved (range)"),
            number(&articles[0], "self-served without a ticket (all time)"),
        ),
        (1.0, 1.0)
    );

    tx.rollback().await.unwrap();
    pool.close().await;
    cluster.shutdown().await;
}
