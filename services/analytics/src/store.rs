//! Reading and writing the read models' rows. A change closes the live revision
//! (its `valid_to` and `seq_to`) and inserts the next one, in the projection's
//! transaction.

use frontline_domain::UnixMillis;
use sqlx::{PgConnection, types::chrono};
use uuid::Uuid;

use crate::rows::{CustomerRow, TicketRow};

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
}

impl Tables {
    /// The tables of generation `generation`.
    pub fn of(generation: i32) -> Tables {
        Tables {
            tickets: format!("analytics_tickets_g{generation}"),
            customers: format!("analytics_customers_g{generation}"),
            policies: format!("analytics_policies_g{generation}"),
        }
    }
}
/// The default tier when neither the customer nor the tenant's policy names one
/// (`v1::Tier::Standard`).
const STANDARD: i16 = 2;

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

/// The ticket's live row, if the projection has seen it opened.
pub async fn live_ticket(
    db: &mut PgConnection,
    t: &Tables,
    id: Uuid,
) -> Result<Option<TicketRow>, sqlx::Error> {
    let record: Option<TicketRecord> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM {} WHERE ticket_id = $1 AND seq_to = {LIVE}",
        t.tickets
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(record.map(TicketRow::from))
}

/// The live rows of these customers' tickets that still wait on support.
pub async fn active_tickets_of(
    db: &mut PgConnection,
    t: &Tables,
    customers: &[Uuid],
) -> Result<Vec<TicketRow>, sqlx::Error> {
    let records: Vec<TicketRecord> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM {} \
         WHERE customer_id = ANY($1) AND seq_to = {LIVE} AND status IN (1, 2, 3)",
        t.tickets
    ))
    .bind(customers)
    .fetch_all(db)
    .await?;
    Ok(records.into_iter().map(TicketRow::from).collect())
}

/// Closes `old` (the live revision) at stream sequence `sequence` and writes
/// `new` as the live one.
pub async fn write_ticket(
    db: &mut PgConnection,
    t: &Tables,
    old: Option<&TicketRow>,
    new: &TicketRow,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    if let Some(old) = old {
        close(
            db,
            &t.tickets,
            "ticket_id",
            old.ticket_id,
            old.revision,
            new.valid_from,
            sequence,
        )
        .await?;
    }
    sqlx::query(&format!(
        "INSERT INTO {} (seq_from, {TICKET_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
          $20, $21, $22, $23, $24, $25, $26, $27)",
        t.tickets
    ))
    .bind(sequence)
    .bind(new.ticket_id)
    .bind(new.revision)
    .bind(new.version)
    .bind(time(new.valid_from))
    .bind(&new.tenant)
    .bind(new.customer_id)
    .bind(&new.subject)
    .bind(new.status)
    .bind(new.channel)
    .bind(&new.product_area)
    .bind(new.priority)
    .bind(new.tier)
    .bind(&new.assignee)
    .bind(time(new.opened_at))
    .bind(new.first_reply_at.map(time))
    .bind(new.solved_at.map(time))
    .bind(new.ever_solved)
    .bind(time(new.updated_at))
    .bind(new.reopens)
    .bind(new.contacts)
    .bind(&new.warned_clocks)
    .bind(new.breaches)
    .bind(new.minutes_logged)
    .bind(new.csat)
    .bind(new.declines_proposed)
    .bind(new.declines_approved)
    .execute(db)
    .await?;
    Ok(())
}

/// Ends a live revision where the next one starts.
async fn close(
    db: &mut PgConnection,
    table: &str,
    key: &str,
    id: Uuid,
    revision: i32,
    at: UnixMillis,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {table} SET seq_to = $3, valid_to = $4 WHERE {key} = $1 AND revision = $2"
    ))
    .bind(id)
    .bind(revision)
    .bind(sequence)
    .bind(time(at))
    .execute(db)
    .await?;
    Ok(())
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

/// The record's live row, if it has one.
pub async fn live_customer(
    db: &mut PgConnection,
    t: &Tables,
    id: Uuid,
) -> Result<Option<CustomerRow>, sqlx::Error> {
    let record: Option<CustomerRecord> = sqlx::query_as(&format!(
        "SELECT customer_id, revision, version, valid_from, tenant, tier, linked_into, nps, \
         forgotten, first_contact_at FROM {} \
         WHERE customer_id = $1 AND seq_to = {LIVE}",
        t.customers
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(record.map(|r| CustomerRow {
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
    }))
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
        close(
            db,
            &t.customers,
            "customer_id",
            old.customer_id,
            old.revision,
            new.valid_from,
            sequence,
        )
        .await?;
    }
    sqlx::query(&format!(
        "INSERT INTO {} (seq_from, customer_id, revision, version, valid_from, \
         tenant, tier, linked_into, nps, forgotten, first_contact_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        t.customers
    ))
    .bind(sequence)
    .bind(new.customer_id)
    .bind(new.revision)
    .bind(new.version)
    .bind(time(new.valid_from))
    .bind(&new.tenant)
    .bind(new.tier)
    .bind(new.linked_into)
    .bind(new.nps)
    .bind(new.forgotten)
    .bind(time(new.first_contact_at))
    .execute(db)
    .await?;
    Ok(())
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

/// The tier a new ticket of `customer` gets, as routing decides it: the tier of the
/// customer's person (the record it is linked into, or itself), else the tenant's
/// policy's default, else standard.
pub async fn tier_for(
    db: &mut PgConnection,
    t: &Tables,
    customer: Uuid,
    tenant: &str,
) -> Result<i16, sqlx::Error> {
    let tier: Option<i16> = sqlx::query_scalar(&format!(
        "SELECT COALESCE( \
           (SELECT CASE WHEN c.linked_into IS NULL THEN c.tier ELSE p.tier END \
            FROM {customers} c \
            LEFT JOIN {customers} p ON p.customer_id = c.linked_into AND p.seq_to = {LIVE} \
            WHERE c.customer_id = $1 AND c.seq_to = {LIVE}), \
           (SELECT default_tier FROM {policies} WHERE tenant = $2))",
        customers = t.customers,
        policies = t.policies,
    ))
    .bind(customer)
    .bind(tenant)
    .fetch_one(db)
    .await?;
    Ok(tier.unwrap_or(STANDARD))
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

/// Records a tenant's policy's default tier.
pub async fn put_policy(
    db: &mut PgConnection,
    t: &Tables,
    tenant: &str,
    default_tier: i16,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {p} AS p (tenant, default_tier, version) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant) DO UPDATE SET default_tier = $2, version = $3 \
         WHERE p.version < $3",
        p = t.policies
    ))
    .bind(tenant)
    .bind(default_tier)
    .bind(version)
    .execute(db)
    .await?;
    Ok(())
}
