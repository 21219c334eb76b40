//! Reading and writing the read models' rows. A change closes the live revision
//! (its `valid_to` and `seq_to`) and inserts the next one, in the projection's
//! transaction.

use frontline_domain::UnixMillis;
use sqlx::{PgConnection, types::chrono};
use uuid::Uuid;

use frontline_domain::{article::Draft, sla::policy::SlaPolicy};
use frontline_proto::v1;

use crate::rows::{CustomerRow, Owners, TicketRow, wire};

/// `seq_to` of a live revision.
pub const LIVE: i64 = i64::MAX;

/// One generation's tables (readers use the views of the same names without the
/// suffix, which show the live generation's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    /// Ticket rows.
    pub tickets: String,
    /// Customer rows.
    pub customers: String,
    /// Policy defaults.
    pub policies: String,
    /// Self-service articles and their self-served counts (one row each, no
    /// revisions).
    pub articles: String,
    /// The tickets a self-service article solves now, with the article: one row
    /// each, from the self-served solve until the ticket is reopened (no
    /// revisions).
    pub self_served: String,
}

impl Tables {
    /// The tables of generation `generation`.
    pub fn of(generation: i32) -> Tables {
        Tables {
            tickets: format!("analytics_tickets_g{generation}"),
            customers: format!("analytics_customers_g{generation}"),
            policies: format!("analytics_policies_g{generation}"),
            articles: format!("analytics_articles_g{generation}"),
            self_served: format!("analytics_self_served_g{generation}"),
        }
    }

    /// Every table, with the view readers see it through (its name without the
    /// suffix). Rebuilds copy, switch and drop what this lists: a new read model
    /// is added here (and made for the current generations by a migration).
    pub fn with_views(&self) -> [(&'static str, &str); 5] {
        [
            ("analytics_tickets", &self.tickets),
            ("analytics_customers", &self.customers),
            ("analytics_policies", &self.policies),
            ("analytics_articles", &self.articles),
            ("analytics_self_served", &self.self_served),
        ]
    }
}
type Time = chrono::DateTime<chrono::Utc>;

/// Milliseconds since the epoch as a PostgreSQL timestamp.
pub fn time(millis: UnixMillis) -> Time {
    Time::from_timestamp_millis(millis).unwrap_or_default()
}

/// A PostgreSQL timestamp as milliseconds since the epoch.
pub fn millis(time: Time) -> UnixMillis {
    time.timestamp_millis()
}

/// The columns of a ticket row, in [`TicketRecord`]'s order.
pub const TICKET_COLUMNS: &str = "ticket_id, revision, version, valid_from, tenant, customer_id, \
     subject, status, channel, product_area, priority, tier, assignee, opened_at, first_reply_at, \
     solved_at, ever_solved, updated_at, reopens, contacts, warned_clocks, breaches, minutes_logged, \
     csat, declines_proposed, declines_approved";

/// A ticket row as PostgreSQL returns it.
#[derive(Debug, sqlx::FromRow)]
pub struct TicketRecord {
    ticket_id: Uuid,
    revision: i32,
    version: i64,
    valid_from: Time,
    tenant: String,
    customer_id: Uuid,
    subject: String,
    status: i16,
    channel: i16,
    product_area: String,
    priority: i16,
    tier: i16,
    assignee: String,
    opened_at: Time,
    first_reply_at: Option<Time>,
    solved_at: Option<Time>,
    ever_solved: bool,
    updated_at: Time,
    reopens: i32,
    contacts: i32,
    warned_clocks: Vec<i16>,
    breaches: i32,
    minutes_logged: i32,
    csat: Option<i16>,
    declines_proposed: i32,
    declines_approved: i32,
}

impl From<TicketRecord> for TicketRow {
    fn from(r: TicketRecord) -> Self {
        TicketRow {
            ticket_id: r.ticket_id,
            revision: r.revision,
            version: r.version,
            valid_from: millis(r.valid_from),
            tenant: r.tenant,
            customer_id: r.customer_id,
            subject: r.subject,
            status: r.status,
            channel: r.channel,
            product_area: r.product_area,
            priority: r.priority,
            tier: r.tier,
            assignee: r.assignee,
            opened_at: millis(r.opened_at),
            first_reply_at: r.first_reply_at.map(millis),
            solved_at: r.solved_at.map(millis),
            ever_solved: r.ever_solved,
            updated_at: millis(r.updated_at),
            reopens: r.reopens,
            contacts: r.contacts,
            warned_clocks: r.warned_clocks,
            breaches: r.breaches,
            minutes_logged: r.minutes_logged,
            csat: r.csat,
            declines_proposed: r.declines_proposed,
            declines_approved: r.declines_approved,
        }
    }
}

/// The live rows of these customers' tickets that still wait on support.
pub async fn active_tickets_of(
    db: &mut PgConnection,
    t: &Tables,
    customers: &[Uuid],
) -> Result<Vec<TicketRow>, sqlx::Error> {
    let records: Vec<TicketRecord> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM {} \
         WHERE customer_id = ANY($1) AND seq_to = {LIVE} AND status IN (1, 2, 3, 6)",
        t.tickets
    ))
    .bind(customers)
    .fetch_all(db)
    .await?;
    Ok(records.into_iter().map(TicketRow::from).collect())
}

/// Closes `old` (the live revision) at stream sequence `sequence` and writes
/// `new` as the live one (the batched statements, for one row).
pub async fn write_ticket(
    db: &mut PgConnection,
    t: &Tables,
    old: Option<&TicketRow>,
    new: &TicketRow,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    if let Some(old) = old {
        let close = (old.ticket_id, old.revision, sequence, new.valid_from);
        close_all(db, &t.tickets, "ticket_id", &[close]).await?;
    }
    insert_tickets(db, t, &[Revision::live(new.clone(), sequence)]).await
}

#[derive(Debug, sqlx::FromRow)]
struct CustomerRecord {
    customer_id: Uuid,
    revision: i32,
    version: i64,
    valid_from: Time,
    tenant: String,
    tier: Option<i16>,
    linked_into: Option<Uuid>,
    nps: Option<i16>,
    forgotten: bool,
    first_contact_at: Time,
}

impl From<CustomerRecord> for CustomerRow {
    fn from(r: CustomerRecord) -> Self {
        CustomerRow {
            customer_id: r.customer_id,
            revision: r.revision,
            version: r.version,
            valid_from: millis(r.valid_from),
            tenant: r.tenant,
            tier: r.tier,
            linked_into: r.linked_into,
            nps: r.nps,
            forgotten: r.forgotten,
            first_contact_at: millis(r.first_contact_at),
        }
    }
}

/// Closes `old` and writes `new` as the record's live row.
pub async fn write_customer(
    db: &mut PgConnection,
    t: &Tables,
    old: Option<&CustomerRow>,
    new: &CustomerRow,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    if let Some(old) = old {
        let close = (old.customer_id, old.revision, sequence, new.valid_from);
        close_all(db, &t.customers, "customer_id", &[close]).await?;
    }
    insert_customers(db, t, &[Revision::live(new.clone(), sequence)]).await
}

/// The records linked into `person` now.
pub async fn linked_into(
    db: &mut PgConnection,
    t: &Tables,
    person: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT customer_id FROM {} WHERE linked_into = $1 AND seq_to = {LIVE}",
        t.customers
    ))
    .bind(person)
    .fetch_all(db)
    .await
}

/// Blanks the personal columns of a forgotten customer's tickets, in every
/// revision (as a rebuild would read them: their key is destroyed).
pub async fn erase(db: &mut PgConnection, t: &Tables, customer: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {} SET subject = $2 WHERE customer_id = $1",
        t.tickets
    ))
    .bind(customer)
    .bind(frontline_privacy::ERASED)
    .execute(db)
    .await?;
    Ok(())
}

/// Records a tenant's policy (version `version`, stored at stream sequence
/// `sequence`, decided at `at`) as its live revision; an older version than the
/// live one changes nothing.
pub async fn put_policy(
    db: &mut PgConnection,
    t: &Tables,
    tenant: &str,
    policy: &SlaPolicy,
    (version, sequence, at): (i64, i64, UnixMillis),
) -> Result<(), sqlx::Error> {
    let live: Option<(i64, Time)> = sqlx::query_as(&format!(
        "SELECT version, valid_from FROM {} WHERE tenant = $1 AND seq_to = {LIVE}",
        t.policies
    ))
    .bind(tenant)
    .fetch_optional(&mut *db)
    .await?;
    if live.is_some_and(|(v, _)| v >= version) {
        return Ok(());
    }
    let from = live.map_or(at, |(_, from)| at.max(millis(from)));
    if live.is_some() {
        sqlx::query(&format!(
            "UPDATE {} SET seq_to = $2, valid_to = $3 WHERE tenant = $1 AND seq_to = {LIVE}",
            t.policies
        ))
        .bind(tenant)
        .bind(sequence)
        .bind(time(from))
        .execute(&mut *db)
        .await?;
    }
    let json = serde_json::to_string(policy)
        .map_err(|e| sqlx::Error::Encode(format!("policy: {e}").into()))?;
    sqlx::query(&format!(
        "INSERT INTO {} (tenant, version, seq_from, valid_from, default_tier, policy) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        t.policies
    ))
    .bind(tenant)
    .bind(version)
    .bind(sequence)
    .bind(time(from))
    .bind(wire::<v1::Tier, _>(policy.default_tier))
    .bind(json)
    .execute(db)
    .await?;
    Ok(())
}

/// Makes revision `revision` of `article` (published at `at`) its row, live again
/// if it was retired; its counts stay. An older revision than the stored one
/// changes nothing.
pub async fn publish_article(
    db: &mut PgConnection,
    t: &Tables,
    (article, tenant): (Uuid, &str),
    revision: u32,
    draft: &Draft,
    at: UnixMillis,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {table} AS a (article_id, tenant, slug, product_area, title, body, revision, \
                               retired, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8) \
         ON CONFLICT (article_id) DO UPDATE SET tenant = EXCLUDED.tenant, slug = EXCLUDED.slug, \
             product_area = EXCLUDED.product_area, title = EXCLUDED.title, body = EXCLUDED.body, \
             revision = EXCLUDED.revision, retired = false, updated_at = EXCLUDED.updated_at \
         WHERE a.revision < EXCLUDED.revision",
        table = t.articles
    ))
    .bind(article)
    .bind(tenant)
    .bind(&draft.slug)
    .bind(&draft.product_area)
    .bind(&draft.title)
    .bind(&draft.body)
    .bind(i32::try_from(revision).unwrap_or(i32::MAX))
    .bind(time(at))
    .execute(db)
    .await?;
    Ok(())
}

/// Marks `article` retired (at `at`): no longer suggested, still listed.
pub async fn retire_article(
    db: &mut PgConnection,
    t: &Tables,
    article: Uuid,
    at: UnixMillis,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {} SET retired = true, updated_at = $2 WHERE article_id = $1",
        t.articles
    ))
    .bind(article)
    .bind(time(at))
    .execute(db)
    .await?;
    Ok(())
}

/// Adds one to `article`'s self-served count (a customer said it solved their
/// problem, with no ticket). The tenant must match the row's (an id from another
/// tenant counts nothing); an article with no row counts nothing.
pub async fn count_self_served(
    db: &mut PgConnection,
    t: &Tables,
    (article, tenant): (Uuid, &str),
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {} SET self_served = self_served + 1 WHERE article_id = $1 AND tenant = $2",
        t.articles
    ))
    .bind(article)
    .bind(tenant)
    .execute(db)
    .await?;
    Ok(())
}

/// Records that `article` solved `ticket` (of `tenant`) at `at`, with no agent
/// time: the ticket's row, replaced if it had one (solved by an article again).
/// Readers count an article's rows of its own tenant only.
pub async fn solved_by_article(
    db: &mut PgConnection,
    t: &Tables,
    (ticket, tenant): (Uuid, &str),
    article: Uuid,
    at: UnixMillis,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {} (ticket_id, article_id, tenant, solved_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (ticket_id) DO UPDATE SET article_id = EXCLUDED.article_id, \
             tenant = EXCLUDED.tenant, solved_at = EXCLUDED.solved_at",
        t.self_served
    ))
    .bind(ticket)
    .bind(article)
    .bind(tenant)
    .bind(time(at))
    .execute(db)
    .await?;
    Ok(())
}

/// These tickets were reopened: no article solves them now (one statement; none
/// of them need have a row).
pub async fn reopened(
    db: &mut PgConnection,
    t: &Tables,
    tickets: &[Uuid],
) -> Result<(), sqlx::Error> {
    if tickets.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "DELETE FROM {} WHERE ticket_id = ANY($1)",
        t.self_served
    ))
    .bind(tickets)
    .execute(db)
    .await?;
    Ok(())
}

/// A revision to insert: the row, and the stream positions and time it holds
/// between (a revision superseded in the same batch is written closed).
#[derive(Clone, Debug)]
pub struct Revision<R> {
    /// The row.
    pub row: R,
    /// The stream sequence of the event that made it.
    pub seq_from: i64,
    /// Where the next revision starts ([`LIVE`] for none).
    pub seq_to: i64,
    /// When the next revision starts (`None`: it is live).
    pub valid_to: Option<UnixMillis>,
}

impl<R> Revision<R> {
    /// `row` as the live revision, from stream sequence `sequence`.
    pub fn live(row: R, sequence: i64) -> Self {
        Revision {
            row,
            seq_from: sequence,
            seq_to: LIVE,
            valid_to: None,
        }
    }
}

/// A stored live revision to close: (id, revision, seq_to, valid_to).
pub type Close = (Uuid, i32, i64, UnixMillis);

/// The live rows of these tickets.
pub async fn live_tickets(
    db: &mut PgConnection,
    t: &Tables,
    ids: &[Uuid],
) -> Result<Vec<TicketRow>, sqlx::Error> {
    let records: Vec<TicketRecord> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM {} WHERE ticket_id = ANY($1) AND seq_to = {LIVE}",
        t.tickets
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(records.into_iter().map(TicketRow::from).collect())
}

/// The live rows of these customer records.
pub async fn live_customers(
    db: &mut PgConnection,
    t: &Tables,
    ids: &[Uuid],
) -> Result<Vec<CustomerRow>, sqlx::Error> {
    let records: Vec<CustomerRecord> = sqlx::query_as(&format!(
        "SELECT customer_id, revision, version, valid_from, tenant, tier, linked_into, nps, \
         forgotten, first_contact_at FROM {} \
         WHERE customer_id = ANY($1) AND seq_to = {LIVE}",
        t.customers
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(records.into_iter().map(CustomerRow::from).collect())
}

/// The stored [`Owners`] of these customers and tenants.
pub async fn owners(
    db: &mut PgConnection,
    t: &Tables,
    customers: &[Uuid],
    tenants: &[String],
) -> Result<Owners, sqlx::Error> {
    if customers.is_empty() && tenants.is_empty() {
        return Ok(Owners::default());
    }
    let tiers: Vec<(Uuid, i16)> = sqlx::query_as(&format!(
        "SELECT c.customer_id, CASE WHEN c.linked_into IS NULL THEN c.tier ELSE p.tier END AS tier \
         FROM {customers} c \
         LEFT JOIN {customers} p ON p.customer_id = c.linked_into AND p.seq_to = {LIVE} \
         WHERE c.customer_id = ANY($1) AND c.seq_to = {LIVE} \
           AND CASE WHEN c.linked_into IS NULL THEN c.tier ELSE p.tier END IS NOT NULL",
        customers = t.customers,
    ))
    .bind(customers)
    .fetch_all(&mut *db)
    .await?;
    let defaults: Vec<(String, i16)> = sqlx::query_as(&format!(
        "SELECT tenant, default_tier FROM {} WHERE tenant = ANY($1) AND seq_to = {LIVE}",
        t.policies
    ))
    .bind(tenants)
    .fetch_all(&mut *db)
    .await?;
    let forgotten: Vec<Uuid> = sqlx::query_scalar(&format!(
        "SELECT customer_id FROM {} WHERE customer_id = ANY($1) AND seq_to = {LIVE} AND forgotten",
        t.customers
    ))
    .bind(customers)
    .fetch_all(db)
    .await?;
    Ok(Owners::new(tiers, defaults, forgotten))
}

/// Closes stored live revisions, in one statement.
pub async fn close_all(
    db: &mut PgConnection,
    table: &str,
    key: &str,
    closes: &[Close],
) -> Result<(), sqlx::Error> {
    if closes.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = closes.iter().map(|c| c.0).collect();
    let revisions: Vec<i32> = closes.iter().map(|c| c.1).collect();
    let seqs: Vec<i64> = closes.iter().map(|c| c.2).collect();
    let times: Vec<Time> = closes.iter().map(|c| time(c.3)).collect();
    sqlx::query(&format!(
        "UPDATE {table} AS t SET seq_to = u.seq, valid_to = u.at \
         FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::timestamptz[]) AS u(id, rev, seq, at) \
         WHERE t.{key} = u.id AND t.revision = u.rev"
    ))
    .bind(ids)
    .bind(revisions)
    .bind(seqs)
    .bind(times)
    .execute(db)
    .await?;
    Ok(())
}

/// Inserts ticket revisions, in one statement.
pub async fn insert_tickets(
    db: &mut PgConnection,
    t: &Tables,
    revisions: &[Revision<TicketRow>],
) -> Result<(), sqlx::Error> {
    if revisions.is_empty() {
        return Ok(());
    }
    fn col<T>(revisions: &[Revision<TicketRow>], f: impl Fn(&Revision<TicketRow>) -> T) -> Vec<T> {
        revisions.iter().map(f).collect()
    }
    let r = revisions;
    // Arrays of arrays do not bind: warned clocks travel as text ('{1,3}').
    let warned: Vec<String> = col(r, |v| {
        let list: Vec<String> = v.row.warned_clocks.iter().map(i16::to_string).collect();
        format!("{{{}}}", list.join(","))
    });
    sqlx::query(&format!(
        "INSERT INTO {} (seq_from, seq_to, valid_to, {TICKET_COLUMNS}) \
         SELECT u.seq_from, u.seq_to, COALESCE(u.valid_to, 'infinity'), u.ticket_id, u.revision, \
                u.version, u.valid_from, u.tenant, u.customer_id, u.subject, u.status, u.channel, \
                u.product_area, u.priority, u.tier, u.assignee, u.opened_at, u.first_reply_at, \
                u.solved_at, u.ever_solved, u.updated_at, u.reopens, u.contacts, \
                u.warned_clocks::smallint[], u.breaches, u.minutes_logged, u.csat, \
                u.declines_proposed, u.declines_approved \
         FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::uuid[], $5::int[], \
                     $6::bigint[], $7::timestamptz[], $8::text[], $9::uuid[], $10::text[], \
                     $11::smallint[], $12::smallint[], $13::text[], $14::smallint[], \
                     $15::smallint[], $16::text[], $17::timestamptz[], $18::timestamptz[], \
                     $19::timestamptz[], $20::bool[], $21::timestamptz[], $22::int[], $23::int[], \
                     $24::text[], $25::int[], $26::int[], $27::smallint[], $28::int[], $29::int[]) \
           AS u(seq_from, seq_to, valid_to, ticket_id, revision, version, valid_from, tenant, \
                customer_id, subject, status, channel, product_area, priority, tier, assignee, \
                opened_at, first_reply_at, solved_at, ever_solved, updated_at, reopens, contacts, \
                warned_clocks, breaches, minutes_logged, csat, declines_proposed, declines_approved)",
        t.tickets
    ))
    .bind(col(r, |v| v.seq_from))
    .bind(col(r, |v| v.seq_to))
    .bind(col(r, |v| v.valid_to.map(time)))
    .bind(col(r, |v| v.row.ticket_id))
    .bind(col(r, |v| v.row.revision))
    .bind(col(r, |v| v.row.version))
    .bind(col(r, |v| time(v.row.valid_from)))
    .bind(col(r, |v| v.row.tenant.clone()))
    .bind(col(r, |v| v.row.customer_id))
    .bind(col(r, |v| v.row.subject.clone()))
    .bind(col(r, |v| v.row.status))
    .bind(col(r, |v| v.row.channel))
    .bind(col(r, |v| v.row.product_area.clone()))
    .bind(col(r, |v| v.row.priority))
    .bind(col(r, |v| v.row.tier))
    .bind(col(r, |v| v.row.assignee.clone()))
    .bind(col(r, |v| time(v.row.opened_at)))
    .bind(col(r, |v| v.row.first_reply_at.map(time)))
    .bind(col(r, |v| v.row.solved_at.map(time)))
    .bind(col(r, |v| v.row.ever_solved))
    .bind(col(r, |v| time(v.row.updated_at)))
    .bind(col(r, |v| v.row.reopens))
    .bind(col(r, |v| v.row.contacts))
    .bind(warned)
    .bind(col(r, |v| v.row.breaches))
    .bind(col(r, |v| v.row.minutes_logged))
    .bind(col(r, |v| v.row.csat))
    .bind(col(r, |v| v.row.declines_proposed))
    .bind(col(r, |v| v.row.declines_approved))
    .execute(db)
    .await?;
    Ok(())
}

/// Inserts customer revisions, in one statement.
pub async fn insert_customers(
    db: &mut PgConnection,
    t: &Tables,
    revisions: &[Revision<CustomerRow>],
) -> Result<(), sqlx::Error> {
    if revisions.is_empty() {
        return Ok(());
    }
    fn col<T>(
        revisions: &[Revision<CustomerRow>],
        f: impl Fn(&Revision<CustomerRow>) -> T,
    ) -> Vec<T> {
        revisions.iter().map(f).collect()
    }
    let r = revisions;
    sqlx::query(&format!(
        "INSERT INTO {} (seq_from, seq_to, valid_to, customer_id, revision, version, valid_from, \
                         tenant, tier, linked_into, nps, forgotten, first_contact_at) \
         SELECT u.seq_from, u.seq_to, COALESCE(u.valid_to, 'infinity'), u.customer_id, \
                u.revision, u.version, u.valid_from, u.tenant, u.tier, u.linked_into, u.nps, \
                u.forgotten, u.first_contact_at \
         FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::uuid[], $5::int[], \
                     $6::bigint[], $7::timestamptz[], $8::text[], $9::smallint[], $10::uuid[], \
                     $11::smallint[], $12::bool[], $13::timestamptz[]) \
           AS u(seq_from, seq_to, valid_to, customer_id, revision, version, valid_from, tenant, \
                tier, linked_into, nps, forgotten, first_contact_at)",
        t.customers
    ))
    .bind(col(r, |v| v.seq_from))
    .bind(col(r, |v| v.seq_to))
    .bind(col(r, |v| v.valid_to.map(time)))
    .bind(col(r, |v| v.row.customer_id))
    .bind(col(r, |v| v.row.revision))
    .bind(col(r, |v| v.row.version))
    .bind(col(r, |v| time(v.row.valid_from)))
    .bind(col(r, |v| v.row.tenant.clone()))
    .bind(col(r, |v| v.row.tier))
    .bind(col(r, |v| v.row.linked_into))
    .bind(col(r, |v| v.row.nps))
    .bind(col(r, |v| v.row.forgotten))
    .bind(col(r, |v| time(v.row.first_contact_at)))
    .execute(db)
    .await?;
    Ok(())
}
