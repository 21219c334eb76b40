//! `GetCustomerThirds`: the tenant's customers by NPS category — promoters,
//! passives, detractors, and those who never answered — and what each group costs
//! in tickets, contacts and support time.

use frontline_domain::TenantId;
use frontline_proto::v1;
use frontline_runtime::ApiError;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::{figures::percent, snapshot::Snapshot};

#[derive(Debug, sqlx::FromRow)]
struct Record {
    category: i32,
    customers: i64,
    tickets: i64,
    contacts: i64,
    minutes: i64,
}

/// The four groups of `tenant`'s customers, read from `snapshot`. A record linked
/// into another counts as that person (their answer, one customer); tickets of a
/// record the read model has no row for yet count under "no answer".
pub async fn thirds(
    db: &PgPool,
    tenant: &TenantId,
    snapshot: Snapshot,
) -> Result<Vec<v1::CustomerThird>, ApiError> {
    let mut q = QueryBuilder::<Postgres>::new(
        "WITH people AS ( \
           SELECT c.customer_id, COALESCE(p.customer_id, c.customer_id) AS person, \
                  CASE WHEN c.linked_into IS NULL THEN c.nps ELSE p.nps END AS nps \
           FROM analytics_customers c \
           LEFT JOIN analytics_customers p ON p.customer_id = c.linked_into",
    );
    snapshot.push(&mut q, "p");
    q.push(" WHERE c.tenant = ");
    q.push_bind(tenant.as_str().to_string());
    snapshot.push(&mut q, "c");
    q.push(
        "), tickets AS ( \
           SELECT t.customer_id, count(*) AS tickets, sum(t.contacts) AS contacts, \
                  sum(t.minutes_logged) AS minutes \
           FROM analytics_tickets t WHERE t.tenant = ",
    );
    q.push_bind(tenant.as_str().to_string());
    snapshot.push(&mut q, "t");
    q.push(
        " GROUP BY t.customer_id) \
         SELECT CASE WHEN nps IS NULL THEN 0 WHEN nps >= 9 THEN 1 WHEN nps >= 7 THEN 2 ELSE 3 END AS category, \
                count(DISTINCT COALESCE(person, tickets.customer_id)) AS customers, \
                COALESCE(sum(tickets.tickets), 0)::bigint AS tickets, \
                COALESCE(sum(tickets.contacts), 0)::bigint AS contacts, \
                COALESCE(sum(tickets.minutes), 0)::bigint AS minutes \
         FROM people FULL JOIN tickets ON tickets.customer_id = people.customer_id \
         GROUP BY 1",
    );
    let records: Vec<Record> = q.build_query_as().fetch_all(db).await?;

    let sum = |f: fn(&Record) -> i64| records.iter().map(f).sum::<i64>();
    let totals = (
        sum(|r| r.customers),
        sum(|r| r.tickets),
        sum(|r| r.contacts),
        sum(|r| r.minutes),
    );
    let order = [
        v1::NpsCategory::Promoter,
        v1::NpsCategory::Passive,
        v1::NpsCategory::Detractor,
        v1::NpsCategory::Unspecified,
    ];
    Ok(order
        .into_iter()
        .map(|category| {
            let r = records.iter().find(|r| r.category == category as i32);
            let get = |f: fn(&Record) -> i64| r.map_or(0, f);
            let (customers, tickets, contacts, minutes) = (
                get(|r| r.customers),
                get(|r| r.tickets),
                get(|r| r.contacts),
                get(|r| r.minutes),
            );
            v1::CustomerThird {
                category: category.into(),
                customers: u64::try_from(customers).unwrap_or_default(),
                tickets: u64::try_from(tickets).unwrap_or_default(),
                contacts: u64::try_from(contacts).unwrap_or_default(),
                support_minutes: u64::try_from(minutes).unwrap_or_default(),
                customers_percent: percent(customers, totals.0),
                tickets_percent: percent(tickets, totals.1),
                contacts_percent: percent(contacts, totals.2),
                support_time_percent: percent(minutes, totals.3),
            }
        })
        .collect())
}
