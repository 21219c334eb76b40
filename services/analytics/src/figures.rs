//! `GetMetrics`: support metrics over the tickets opened in a range, in total and
//! per group, in one query over one snapshot.

use frontline_domain::{
    TenantId,
    sla::{BusinessHours, policy::SlaPolicy},
};
use frontline_proto::v1;
use frontline_runtime::ApiError;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::{filters::Range, snapshot::Snapshot};

type Time = sqlx::types::chrono::DateTime<sqlx::types::chrono::Utc>;

/// The longest range metrics are computed over, in milliseconds (366 days).
pub const MAX_SPAN: i64 = 366 * 24 * 3_600_000;

/// The grouping column for `group_by`, or `None` for totals only.
fn group_key(group_by: v1::MetricsGroupBy) -> Option<&'static str> {
    match group_by {
        v1::MetricsGroupBy::Unspecified => None,
        v1::MetricsGroupBy::Tier => Some("t.tier::text"),
        v1::MetricsGroupBy::ProductArea => Some("t.product_area"),
        v1::MetricsGroupBy::Agent => Some("t.assignee"),
        v1::MetricsGroupBy::Channel => Some("t.channel::text"),
        v1::MetricsGroupBy::Day => Some("to_char(t.opened_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
    }
}

/// One group's aggregates as PostgreSQL returns them.
#[derive(Debug, sqlx::FromRow)]
struct Record {
    total: bool,
    key: Option<String>,
    tickets: i64,
    solved: i64,
    backlog: i64,
    replied: i64,
    frt_p50: Option<f64>,
    frt_p90: Option<f64>,
    resolved: i64,
    res_p50: Option<f64>,
    res_p90: Option<f64>,
    breached: i64,
    at_risk: i64,
    ever_solved: i64,
    reopened: i64,
    minutes: i64,
    csat_n: i64,
    csat_avg: f64,
    csat_1: i64,
    csat_2: i64,
    csat_3: i64,
    csat_4: i64,
    csat_5: i64,
    nps_n: i64,
    promoters: i64,
    detractors: i64,
    declines_proposed: i64,
    declines_approved: i64,
}

const AGGREGATES: &str = "count(*) AS tickets, \
    count(*) FILTER (WHERE t.status IN (4, 5)) AS solved, \
    count(*) FILTER (WHERE t.status IN (1, 2, 3, 6)) AS backlog, \
    count(t.first_reply_at) AS replied, \
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.first_reply_at - t.opened_at)) AS frt_p50, \
    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM t.first_reply_at - t.opened_at)) AS frt_p90, \
    count(t.solved_at) AS resolved, \
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.solved_at - t.opened_at)) AS res_p50, \
    percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM t.solved_at - t.opened_at)) AS res_p90, \
    count(*) FILTER (WHERE t.breaches > 0) AS breached, \
    count(*) FILTER (WHERE cardinality(t.warned_clocks) > 0 AND t.status IN (1, 2, 3, 6)) AS at_risk, \
    count(*) FILTER (WHERE t.ever_solved) AS ever_solved, \
    count(*) FILTER (WHERE t.ever_solved AND t.reopens > 0) AS reopened, \
    COALESCE(sum(t.minutes_logged), 0)::bigint AS minutes, \
    count(t.csat) AS csat_n, \
    COALESCE(avg(t.csat), 0)::float8 AS csat_avg, \
    count(*) FILTER (WHERE t.csat = 1) AS csat_1, \
    count(*) FILTER (WHERE t.csat = 2) AS csat_2, \
    count(*) FILTER (WHERE t.csat = 3) AS csat_3, \
    count(*) FILTER (WHERE t.csat = 4) AS csat_4, \
    count(*) FILTER (WHERE t.csat = 5) AS csat_5, \
    count(DISTINCT c.customer_id) FILTER (WHERE c.nps IS NOT NULL) AS nps_n, \
    count(DISTINCT c.customer_id) FILTER (WHERE c.nps >= 9) AS promoters, \
    count(DISTINCT c.customer_id) FILTER (WHERE c.nps <= 6) AS detractors, \
    COALESCE(sum(t.declines_proposed), 0)::bigint AS declines_proposed, \
    COALESCE(sum(t.declines_approved), 0)::bigint AS declines_approved";

/// The metrics of `tenant`'s tickets opened in `range`, read from `snapshot`, and
/// whether durations count business hours.
pub async fn metrics(
    db: &PgPool,
    tenant: &TenantId,
    range: Range,
    group_by: v1::MetricsGroupBy,
    snapshot: Snapshot,
) -> Result<(v1::Metrics, Vec<v1::MetricsGroup>, bool), ApiError> {
    let key = group_key(group_by);
    let mut q = QueryBuilder::<Postgres>::new(match key {
        Some(key) => format!("SELECT GROUPING({key}) = 1 AS total, {key} AS key, "),
        None => "SELECT true AS total, NULL::text AS key, ".to_string(),
    });
    q.push(AGGREGATES);
    // NPS is the person's: a record linked into another answers through it (`c`
    // is the person, `r` the ticket's own record), counted once per person.
    q.push(
        " FROM analytics_tickets t LEFT JOIN analytics_customers r \
         ON r.customer_id = t.customer_id",
    );
    snapshot.push(&mut q, "r");
    q.push(
        " LEFT JOIN analytics_customers c \
         ON c.customer_id = COALESCE(r.linked_into, r.customer_id)",
    );
    snapshot.push(&mut q, "c");
    q.push(" WHERE t.tenant = ");
    q.push_bind(tenant.as_str().to_string());
    snapshot.push(&mut q, "t");
    range.push(&mut q, "t.opened_at");
    if let Some(key) = key {
        q.push(format_args!(" GROUP BY GROUPING SETS ((), ({key}))"));
    }
    // One snapshot for every statement below, live included.
    let mut tx = db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let records: Vec<Record> = q.build_query_as().fetch_all(&mut *tx).await?;

    let mut total = v1::Metrics::default();
    let mut groups = Vec::new();
    for record in records {
        let is_total = record.total;
        let name = record.key.clone().map(|k| key_name(group_by, &k));
        let metrics = figures(record);
        if is_total {
            total = metrics;
        } else {
            groups.push(v1::MetricsGroup {
                key: name.unwrap_or_default(),
                metrics: Some(metrics),
            });
        }
    }
    groups.sort_by(|a, b| a.key.cmp(&b.key));
    let Some(hours) = business_hours(&mut tx, tenant, snapshot).await? else {
        return Ok((total, groups, false));
    };
    // Business time: each ticket's durations counted in the policy's open hours.
    let durations = durations(&mut tx, tenant, range, group_by, snapshot, &hours).await?;
    let stats = |key: Option<&str>| {
        let (mut first, mut resolved) = (Vec::new(), Vec::new());
        for d in durations.iter().filter(|d| key.is_none_or(|k| d.key == k)) {
            first.extend(d.first_response);
            resolved.extend(d.resolution);
        }
        (duration_stats(first), duration_stats(resolved))
    };
    (total.first_response, total.resolution) = stats(None);
    for group in &mut groups {
        let (first, resolved) = stats(Some(&group.key));
        if let Some(m) = group.metrics.as_mut() {
            (m.first_response, m.resolution) = (first, resolved);
        }
    }
    Ok((total, groups, true))
}

/// The tenant's policy's business hours at `snapshot`, if it sets any.
async fn business_hours(
    db: &mut PgConnection,
    tenant: &TenantId,
    snapshot: Snapshot,
) -> Result<Option<BusinessHours>, ApiError> {
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT p.policy FROM analytics_policies p WHERE p.tenant = ",
    );
    q.push_bind(tenant.as_str().to_string());
    snapshot.push(&mut q, "p");
    let json: Option<String> = q.build_query_scalar().fetch_optional(db).await?;
    let Some(json) = json else { return Ok(None) };
    let policy: SlaPolicy = serde_json::from_str(&json)
        .map_err(|e| ApiError::Internal(format!("a stored SLA policy does not read: {e}")))?;
    if policy.calendar.is_none() {
        return Ok(None);
    }
    Ok(Some(policy.hours()?))
}

/// One ticket's durations in business time, in seconds.
#[derive(Debug)]
struct Durations {
    key: String,
    first_response: Option<f64>,
    resolution: Option<f64>,
}

/// Every ticket's business-time durations, with its group's key.
async fn durations(
    db: &mut PgConnection,
    tenant: &TenantId,
    range: Range,
    group_by: v1::MetricsGroupBy,
    snapshot: Snapshot,
    hours: &BusinessHours,
) -> Result<Vec<Durations>, ApiError> {
    let key = group_key(group_by).unwrap_or("''");
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {key} AS key, t.opened_at, t.first_reply_at, t.solved_at \
         FROM analytics_tickets t WHERE t.tenant = "
    ));
    q.push_bind(tenant.as_str().to_string());
    snapshot.push(&mut q, "t");
    range.push(&mut q, "t.opened_at");
    type Times = (Option<String>, Time, Option<Time>, Option<Time>);
    let rows: Vec<Times> = q.build_query_as().fetch_all(db).await?;
    let open = |from: Time, to: Option<Time>| {
        to.map(|to| {
            hours.open_between(from.timestamp_millis(), to.timestamp_millis()) as f64 / 1000.0
        })
    };
    Ok(rows
        .into_iter()
        .map(|(key, opened, replied, solved)| Durations {
            key: key.map(|k| key_name(group_by, &k)).unwrap_or_default(),
            first_response: open(opened, replied),
            resolution: open(opened, solved),
        })
        .collect())
}

/// Count, p50 and p90 of `values`, interpolated as PostgreSQL's `percentile_cont`.
fn duration_stats(mut values: Vec<f64>) -> Option<v1::DurationStats> {
    values.sort_by(f64::total_cmp);
    let at = |p: f64| {
        if values.is_empty() {
            return 0.0;
        }
        let rank = p * (values.len() - 1) as f64;
        let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
        values[low] + (values[high] - values[low]) * (rank - low as f64)
    };
    Some(v1::DurationStats {
        count: values.len() as u64,
        p50_seconds: at(0.5),
        p90_seconds: at(0.9),
    })
}

/// A group's key as callers read it: enumerations by their short lower-case name.
fn key_name(group_by: v1::MetricsGroupBy, raw: &str) -> String {
    let number = || raw.parse::<i32>().unwrap_or_default();
    let short = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .unwrap_or(name)
            .to_ascii_lowercase()
    };
    match group_by {
        v1::MetricsGroupBy::Tier => v1::Tier::try_from(number())
            .map(|t| short(t.as_str_name(), "TIER_"))
            .unwrap_or_else(|_| raw.to_string()),
        v1::MetricsGroupBy::Channel => v1::Channel::try_from(number())
            .map(|c| short(c.as_str_name(), "CHANNEL_"))
            .unwrap_or_else(|_| raw.to_string()),
        _ => raw.to_string(),
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
pub fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn figures(r: Record) -> v1::Metrics {
    v1::Metrics {
        tickets: count(r.tickets),
        solved: count(r.solved),
        backlog: count(r.backlog),
        first_response: Some(v1::DurationStats {
            count: count(r.replied),
            p50_seconds: r.frt_p50.unwrap_or_default(),
            p90_seconds: r.frt_p90.unwrap_or_default(),
        }),
        resolution: Some(v1::DurationStats {
            count: count(r.resolved),
            p50_seconds: r.res_p50.unwrap_or_default(),
            p90_seconds: r.res_p90.unwrap_or_default(),
        }),
        sla_attainment_percent: if r.tickets == 0 {
            0.0
        } else {
            percent(r.tickets - r.breached, r.tickets)
        },
        breached: count(r.breached),
        at_risk: count(r.at_risk),
        reopen_rate_percent: percent(r.reopened, r.ever_solved),
        minutes_logged: count(r.minutes),
        csat_responses: count(r.csat_n),
        csat_average: r.csat_avg,
        csat_distribution: [r.csat_1, r.csat_2, r.csat_3, r.csat_4, r.csat_5]
            .into_iter()
            .map(count)
            .collect(),
        nps: percent(r.promoters - r.detractors, r.nps_n),
        nps_responses: count(r.nps_n),
        declines_proposed: count(r.declines_proposed),
        declines_approved: count(r.declines_approved),
    }
}
