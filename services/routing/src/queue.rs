//! Routing's indexes in PostgreSQL: the tenant's queue (tickets nobody could take)
//! and the agent who last handled each customer. The log decides; these only find
//! things fast. A queue row is checked against its ticket before it is used.

use frontline_domain::{Priority, TenantId, Ticket, UnixMillis, assignment::Tier};
use sqlx::PgPool;
use uuid::Uuid;

/// Most rows one look at the queue reads.
pub const MAX_PAGE: u32 = 500;

/// A ticket waiting in the queue.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Waiting {
    /// The ticket.
    pub ticket_id: Uuid,
    /// Its product area.
    pub product_area: String,
    /// Its priority, 0 (low) to 3 (urgent).
    pub priority: i16,
    /// Its customer's tier, 0 (basic) to 2 (extended).
    pub tier: i16,
    /// When it began waiting (ms since the epoch).
    pub queued_at: i64,
}

impl Waiting {
    /// The priority, as the domain names it.
    pub fn priority(&self) -> Priority {
        [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ]
        .get(usize::try_from(self.priority).unwrap_or_default())
        .copied()
        .unwrap_or_default()
    }

    /// The tier, as the domain names it.
    pub fn tier(&self) -> Tier {
        [Tier::Basic, Tier::Standard, Tier::Extended]
            .get(usize::try_from(self.tier).unwrap_or_default())
            .copied()
            .unwrap_or_default()
    }
}

fn priority_rank(p: Priority) -> i16 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

fn tier_rank(t: Tier) -> i16 {
    match t {
        Tier::Basic => 0,
        Tier::Standard => 1,
        Tier::Extended => 2,
    }
}

/// Records where `ticket` (at its version) stands: waiting in the queue since
/// `since` with its customer's `tier` (`None`: as recorded before, standard for a
/// new row), or out of it. A row written from a newer version is never overwritten
/// by an older one; a stale row that slips through is corrected when the queue is
/// next drained (every row is checked against its ticket first).
pub async fn record(
    db: &PgPool,
    ticket_id: Uuid,
    ticket: &Ticket,
    tier: Option<Tier>,
    since: UnixMillis,
) -> Result<(), sqlx::Error> {
    let version = i64::try_from(ticket.version).unwrap_or(i64::MAX);
    if !ticket.needs_agent() {
        sqlx::query("DELETE FROM routing_queue WHERE ticket_id = $1 AND version <= $2")
            .bind(ticket_id)
            .bind(version)
            .execute(db)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO routing_queue \
           (ticket_id, tenant, product_area, priority, tier, queued_at, version) \
         VALUES ($1, $2, $3, $4, COALESCE($5, 1), $6, $7) \
         ON CONFLICT (ticket_id) DO UPDATE SET \
           tier = COALESCE($5, routing_queue.tier), priority = EXCLUDED.priority, \
           version = EXCLUDED.version \
         WHERE routing_queue.version <= EXCLUDED.version",
    )
    .bind(ticket_id)
    .bind(ticket.tenant.as_str())
    .bind(&ticket.product_area)
    .bind(priority_rank(ticket.queue_priority()))
    .bind(tier.map(tier_rank))
    .bind(since)
    .bind(version)
    .execute(db)
    .await?;
    Ok(())
}

/// The tickets waiting in `tenant`'s queue, in assignment order: tier (extended
/// first), priority (urgent first), longest waiting. With `areas`, only those that
/// agents skilled in them could take (and every extended-tier one: a named agent
/// needs no skill) — draining reads these, so tickets nobody free can take never
/// hide the rest.
pub async fn waiting(
    db: &PgPool,
    tenant: &TenantId,
    areas: Option<&[String]>,
    limit: u32,
) -> Result<Vec<Waiting>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ticket_id, product_area, priority, tier, queued_at FROM routing_queue \
         WHERE tenant = $1 AND ($2::text[] IS NULL OR product_area = ANY($2) OR tier = 2) \
         ORDER BY tier DESC, priority DESC, queued_at, ticket_id LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(areas)
    .bind(i64::from(limit.min(MAX_PAGE)))
    .fetch_all(db)
    .await
}

/// Remembers that `agent_id` handled `customer_id` at `at` (a later record wins).
pub async fn handled(
    db: &PgPool,
    customer_id: Uuid,
    agent_id: &str,
    at: UnixMillis,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO routing_last_handler (customer_id, agent_id, handled_at) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (customer_id) DO UPDATE SET \
           agent_id = EXCLUDED.agent_id, handled_at = EXCLUDED.handled_at \
         WHERE routing_last_handler.handled_at <= EXCLUDED.handled_at",
    )
    .bind(customer_id)
    .bind(agent_id)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// The agent who last handled `customer_id`, and when.
pub async fn last_handler(
    db: &PgPool,
    customer_id: Uuid,
) -> Result<Option<(String, UnixMillis)>, sqlx::Error> {
    sqlx::query_as("SELECT agent_id, handled_at FROM routing_last_handler WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(db)
        .await
}
