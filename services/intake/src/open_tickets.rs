//! A customer's open tickets, from the `customer_tickets` read model.
//!
//! The projection follows ticket events (a durable consumer, exactly once through
//! `frontline-projection`), with status transitions from the domain's lifecycle
//! rule. It lags the log by milliseconds: when it has not seen one of the
//! customer's newest tickets, a submit waits (briefly) until the projection has
//! applied the submit's own ticket event — and with it every ticket the customer
//! opened before. Should it still lag (or for GetCustomer, which does not wait),
//! those tickets are read from the log instead.

use std::{collections::HashSet, time::Duration};

use frontline_domain::{Channel, Ticket, TicketEvent, TicketStatus, TicketView};
use frontline_eventlog::{ConsumerConfig, Delivery, EventLog, LoggedEvent};
use frontline_projection::Projection;
use frontline_proto::{convert, v1};
use frontline_runtime::ApiError;
use sqlx::{PgConnection, PgPool, types::chrono};
use uuid::Uuid;

/// How many of a customer's tickets an answer lists, newest first.
pub const OPEN_TICKETS_LIMIT: usize = 50;
/// How many of the customer's newest tickets are checked against the projection's lag.
const RECENT: usize = 8;
/// The longest a submit waits for the projection to reach its own event.
const CATCH_UP: Duration = Duration::from_millis(200);
/// The longest a forget waits for the projection to pass the forget's key
/// destruction before blanking the customer's rows.
const ERASE_CATCH_UP: Duration = Duration::from_secs(10);
/// The projection's durable consumer, also its checkpoint's name.
const CONSUMER: &str = "intake-customer-tickets";

/// The projection: ticket events → `customer_tickets`.
#[derive(Debug)]
pub struct CustomerTickets {
    durable: String,
}

impl Default for CustomerTickets {
    fn default() -> Self {
        CustomerTickets {
            durable: CONSUMER.to_string(),
        }
    }
}

impl CustomerTickets {
    /// The same projection under another consumer and checkpoint name (a rebuild
    /// beside the live one).
    pub fn named(durable: impl Into<String>) -> Self {
        CustomerTickets {
            durable: durable.into(),
        }
    }
}

impl Projection for CustomerTickets {
    type Event = TicketEvent;

    fn consumer(&self) -> ConsumerConfig {
        ConsumerConfig::new(self.durable.clone(), "frontline.ticket.>")
    }

    async fn apply(
        &self,
        db: &mut PgConnection,
        delivery: &Delivery<TicketEvent>,
        event: &TicketEvent,
    ) -> Result<(), sqlx::Error> {
        let ticket_id = aggregate_id(delivery)?;
        let version = i64::try_from(delivery.envelope.aggregate_version).unwrap_or(i64::MAX);
        if let TicketEvent::Opened(o) = event {
            let at = delivery
                .envelope
                .occurred_at
                .as_ref()
                .map(convert::millis)
                .unwrap_or_default();
            sqlx::query(
                "INSERT INTO customer_tickets \
                 (ticket_id, customer_id, subject, product_area, channel, status, opened_at, version) \
                 VALUES ($1, $2, $3, $4, $5, 'new', $6, $7) ON CONFLICT (ticket_id) DO NOTHING",
            )
            .bind(ticket_id)
            .bind(o.customer_id)
            .bind(&o.subject)
            .bind(&o.product_area)
            .bind(o.channel.as_str())
            .bind(chrono::DateTime::from_timestamp_millis(at).unwrap_or_default())
            .bind(version)
            .execute(db)
            .await?;
            return Ok(());
        }
        // The status after this event for each status before it, from the domain's
        // one lifecycle rule; only a newer event moves a row.
        let before: Vec<&str> = TicketStatus::ALL.iter().map(|s| s.as_str()).collect();
        let after: Vec<&str> = TicketStatus::ALL
            .iter()
            .map(|before| {
                event
                    .status_after(Some(*before))
                    .unwrap_or(*before)
                    .as_str()
            })
            .collect();
        sqlx::query(
            "UPDATE customer_tickets SET version = $2, status = COALESCE( \
               (SELECT m.after FROM unnest($3::text[], $4::text[]) AS m(before, after) \
                WHERE m.before = customer_tickets.status), status) \
             WHERE ticket_id = $1 AND version < $2",
        )
        .bind(ticket_id)
        .bind(version)
        .bind(&before)
        .bind(&after)
        .execute(db)
        .await?;
        Ok(())
    }
}

/// Blanks the subjects of forgotten customers' tickets, as a rebuild would (their
/// key is destroyed: their events' subjects read as erased). Called after the key
/// is destroyed, it first waits until the projection has applied every ticket event
/// stored before that moment — it has nothing left pending, or its checkpoint has
/// passed the stream's last sequence of then — so no event it read before the key
/// went lands after the blanking with its subject in the clear.
pub async fn erase(log: &EventLog, db: &PgPool, customers: &[Uuid]) -> Result<(), ApiError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        ApiError::Unavailable(format!("the customer_tickets projection: {e}"))
    };
    let then = log.last_sequence().await?;
    let js = async_nats::jetstream::new(log.client().clone());
    let stream = js
        .get_stream(log.stream_name())
        .await
        .map_err(|e| unavailable(&e))?;
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_consumer(CONSUMER)
        .await
        .map_err(|e| unavailable(&e))?;
    let deadline = tokio::time::Instant::now() + ERASE_CATCH_UP;
    loop {
        if frontline_projection::checkpoint(db, CONSUMER).await? >= then {
            break;
        }
        let info = consumer.info().await.map_err(|e| unavailable(&e))?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable(
                "the customer_tickets read model lags behind the log; retry the forget".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("UPDATE customer_tickets SET subject = $2 WHERE customer_id = ANY($1)")
        .bind(customers)
        .bind(frontline_privacy::ERASED)
        .execute(db)
        .await
        .map_err(|e| ApiError::Unavailable(format!("blank the read model: {e}")))?;
    Ok(())
}

fn aggregate_id(delivery: &Delivery<TicketEvent>) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(&delivery.envelope.aggregate_id)
        .map_err(|e| sqlx::Error::Decode(format!("aggregate id: {e}").into()))
}

fn wire_status(name: &str) -> v1::TicketStatus {
    TicketStatus::parse(name).map_or(v1::TicketStatus::Unspecified, v1::TicketStatus::from)
}

fn wire_channel(name: &str) -> v1::Channel {
    [
        Channel::Email,
        Channel::Chat,
        Channel::Phone,
        Channel::Web,
        Channel::Api,
    ]
    .into_iter()
    .find(|c| c.as_str() == name)
    .map_or(v1::Channel::Unspecified, v1::Channel::from)
}

#[derive(sqlx::FromRow)]
struct Row {
    ticket_id: Uuid,
    subject: String,
    product_area: String,
    channel: String,
    status: String,
    opened_at: chrono::DateTime<chrono::Utc>,
    version: i64,
    open: bool,
}

impl Row {
    fn summary(&self) -> v1::TicketSummary {
        v1::TicketSummary {
            ticket_id: self.ticket_id.to_string(),
            subject: self.subject.clone(),
            status: wire_status(&self.status).into(),
            product_area: self.product_area.clone(),
            opened_at: Some(convert::timestamp(self.opened_at.timestamp_millis())),
            version: u64::try_from(self.version).unwrap_or_default(),
            channel: wire_channel(&self.channel).into(),
        }
    }
}

/// Waits until the projection has applied stream sequence `sequence` (at most
/// [`CATCH_UP`]); false if it did not get there in time.
async fn caught_up(db: &PgPool, sequence: u64) -> Result<bool, ApiError> {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    let mut pause = Duration::from_millis(1);
    loop {
        if frontline_projection::checkpoint(db, CONSUMER).await? >= sequence {
            return Ok(true);
        }
        if tokio::time::Instant::now() + pause > deadline {
            metrics::counter!("frontline_open_tickets_lagging_total").increment(1);
            return Ok(false);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The customer's tickets that are not solved or closed, newest first (at most
/// [`OPEN_TICKETS_LIMIT`]), leaving out `except`.
///
/// `recent` are the ticket ids on the customer's record, oldest first. When the
/// projection has not seen the newest of them yet, and `after` gives a stream
/// sequence that follows them (the submit's own event), it waits for the projection
/// to get there; whatever it still lacks of the newest [`RECENT`] is read from the log.
pub async fn open_tickets(
    log: &EventLog,
    db: &PgPool,
    customer_id: Uuid,
    recent: &[Uuid],
    except: Option<Uuid>,
    after: Option<u64>,
) -> Result<Vec<v1::TicketSummary>, ApiError> {
    let newest: Vec<Uuid> = recent
        .iter()
        .rev()
        .filter(|id| Some(**id) != except)
        .take(RECENT)
        .copied()
        .collect();
    let (mut rows, mut unseen) = read_rows(db, customer_id, &newest).await?;
    if !unseen.is_empty()
        && let Some(sequence) = after
        && caught_up(db, sequence).await?
    {
        (rows, unseen) = read_rows(db, customer_id, &newest).await?;
    }

    let mut open: Vec<(i64, v1::TicketSummary)> = Vec::new();
    for id in &unseen {
        let view = view_from_log(log, id).await?;
        if view.status.is_some_and(TicketStatus::is_active) {
            open.push((view.opened_at, convert::ticket_summary(id, &view)));
        }
    }
    open.extend(
        rows.iter()
            .map(|r| (r.opened_at.timestamp_millis(), r.summary())),
    );
    let except = except.map(|e| e.to_string());
    open.retain(|(_, s)| Some(&s.ticket_id) != except.as_ref());
    open.sort_by_key(|(opened_at, _)| std::cmp::Reverse(*opened_at));
    open.truncate(OPEN_TICKETS_LIMIT);
    Ok(open.into_iter().map(|(_, s)| s).collect())
}

/// In one round trip: the customer's open tickets, and which of `newest` the
/// projection has not seen.
async fn read_rows(
    db: &PgPool,
    customer_id: Uuid,
    newest: &[Uuid],
) -> Result<(Vec<Row>, Vec<Uuid>), ApiError> {
    let rows: Vec<Row> = sqlx::query_as(
        "(SELECT ticket_id, subject, product_area, channel, status, opened_at, version, true AS open \
          FROM customer_tickets \
          WHERE customer_id = $1 AND status IN ('new', 'open', 'pending', 'decline_proposed') \
          ORDER BY opened_at DESC LIMIT $2) \
         UNION ALL \
         (SELECT ticket_id, subject, product_area, channel, status, opened_at, version, false AS open \
          FROM customer_tickets WHERE ticket_id = ANY($3))",
    )
    .bind(customer_id)
    .bind(i64::try_from(OPEN_TICKETS_LIMIT + 1).unwrap_or(i64::MAX))
    .bind(newest)
    .fetch_all(db)
    .await?;
    let seen: HashSet<Uuid> = rows.iter().map(|r| r.ticket_id).collect();
    let unseen = newest
        .iter()
        .filter(|id| !seen.contains(id))
        .copied()
        .collect();
    Ok((rows.into_iter().filter(|r| r.open).collect(), unseen))
}

/// Every ticket of the customer the projection knows, oldest first.
pub async fn ticket_ids(db: &PgPool, customer_id: Uuid) -> Result<Vec<Uuid>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT ticket_id FROM customer_tickets WHERE customer_id = $1 ORDER BY opened_at, ticket_id",
    )
    .bind(customer_id)
    .fetch_all(db)
    .await?)
}

async fn view_from_log(log: &EventLog, id: &Uuid) -> Result<TicketView, ApiError> {
    let events = log.read::<Ticket>(id, None).await?;
    Ok(TicketView::replay(
        events.into_iter().map(LoggedEvent::into_recorded),
    ))
}
