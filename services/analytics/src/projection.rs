//! The projection: every ticket, customer, SLA-policy, article and self-service
//! event, in stream order, into the read models, exactly once (through
//! `frontline-projection`: the rows and the stream sequence they reach commit
//! together).

use frontline_domain::{
    CustomerEvent, TicketEvent, article::ArticleEvent, self_service::SelfServiceEvent,
    sla::policy::PolicyEvent,
};
use frontline_eventlog::{ConsumerConfig, Delivery};
use frontline_projection::Projection;
use frontline_proto::convert;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    events::AnalyticsEvent,
    rows::{self, CustomerRow, TicketRow},
    store::{self, Tables},
};

/// Ticket, customer, policy, article and self-service events → one generation's
/// tables (`analytics_tickets_g<n>`, `analytics_customers_g<n>`,
/// `analytics_policies_g<n>`, `analytics_articles_g<n>`,
/// `analytics_self_served_g<n>`).
#[derive(Debug)]
pub struct ReadModels {
    durable: String,
    tables: Tables,
    /// Each event with statements of its own, never folded in batches (slower:
    /// what tests compare the batched path with).
    one_by_one: bool,
}

impl ReadModels {
    /// The projection that keeps generation `generation`.
    pub fn generation(generation: i32) -> Self {
        ReadModels {
            durable: consumer(generation),
            tables: Tables::of(generation),
            one_by_one: false,
        }
    }

    /// The same, applying each event on its own (for comparison).
    pub fn one_by_one(generation: i32) -> Self {
        ReadModels {
            one_by_one: true,
            ..ReadModels::generation(generation)
        }
    }
}

/// The durable consumer (and checkpoint name) of generation `generation`.
pub fn consumer(generation: i32) -> String {
    format!("analytics-g{generation}")
}

impl Projection for ReadModels {
    type Event = AnalyticsEvent;

    fn consumer(&self) -> ConsumerConfig {
        // Every aggregate's subject: one order for tickets and the customers and
        // policies their rows depend on. Events of other kinds are skipped unread.
        ConsumerConfig::new(self.durable.clone(), "frontline.>")
    }

    async fn apply(
        &self,
        db: &mut PgConnection,
        delivery: &Delivery<AnalyticsEvent>,
        event: &AnalyticsEvent,
    ) -> Result<(), sqlx::Error> {
        apply_one(db, &self.tables, Change::of(delivery)?, event).await
    }

    async fn apply_all(
        &self,
        db: &mut PgConnection,
        events: &[(&Delivery<AnalyticsEvent>, &AnalyticsEvent)],
    ) -> Result<(), sqlx::Error> {
        if self.one_by_one {
            for (delivery, event) in events {
                apply_one(db, &self.tables, Change::of(delivery)?, event).await?;
            }
            return Ok(());
        }
        crate::batch::apply_all(db, &self.tables, events).await
    }
}

/// Applies one event with a few statements of its own.
pub(crate) async fn apply_one(
    db: &mut PgConnection,
    t: &Tables,
    change: Change,
    event: &AnalyticsEvent,
) -> Result<(), sqlx::Error> {
    match event {
        AnalyticsEvent::Ticket(e) => {
            // Only an event that changed the ticket's row (not a stale repeat)
            // changes which article solves it.
            let Some(row) = ticket(db, t, change, e).await? else {
                return Ok(());
            };
            match e {
                // Solved by an article, with no agent time (again, after a reopen:
                // still one row).
                TicketEvent::Solved {
                    self_served: Some(article),
                    ..
                } => {
                    let key = (change.id, row.tenant.as_str());
                    store::solved_by_article(db, t, key, *article, change.at).await
                }
                // Reopened: no article solves it now.
                e if rows::reopens(e) => store::reopened(db, t, &[change.id]).await,
                _ => Ok(()),
            }
        }
        AnalyticsEvent::Customer(e) => customer(db, t, change, e).await,
        AnalyticsEvent::Policy(PolicyEvent::Set { tenant, policy }) => {
            let at = (change.version, change.sequence, change.at);
            store::put_policy(db, t, tenant.as_str(), policy, at).await
        }
        AnalyticsEvent::Article(e) => article(db, t, change, e).await,
        AnalyticsEvent::SelfService(SelfServiceEvent::Recorded(served)) => {
            let key = (served.article_id, served.tenant.as_str());
            store::count_self_served(db, t, key).await
        }
    }
}

/// An article's row: each published revision replaces its text (keeping its
/// counts); retiring marks it.
async fn article(
    db: &mut PgConnection,
    t: &Tables,
    c: Change,
    event: &ArticleEvent,
) -> Result<(), sqlx::Error> {
    match event {
        ArticleEvent::Published {
            tenant,
            revision,
            draft,
        } => {
            let key = (c.id, tenant.as_str());
            store::publish_article(db, t, key, *revision, draft, c.at).await
        }
        ArticleEvent::Retired { .. } => store::retire_article(db, t, c.id, c.at).await,
    }
}

/// Where an event applies: its aggregate, version, time and stream sequence.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Change {
    /// The aggregate.
    pub id: Uuid,
    /// Its version after the event.
    pub version: i64,
    /// When the event was decided.
    pub at: i64,
    /// Its stream sequence.
    pub sequence: i64,
}

impl Change {
    /// Where `delivery`'s event applies.
    pub fn of<E>(delivery: &Delivery<E>) -> Result<Change, sqlx::Error> {
        let envelope = &delivery.envelope;
        Ok(Change {
            id: Uuid::parse_str(&envelope.aggregate_id)
                .map_err(|e| sqlx::Error::Decode(format!("aggregate id: {e}").into()))?,
            version: i64::try_from(envelope.aggregate_version).unwrap_or(i64::MAX),
            at: envelope
                .occurred_at
                .as_ref()
                .map(convert::millis)
                .unwrap_or_default(),
            sequence: i64::try_from(delivery.sequence).unwrap_or(i64::MAX),
        })
    }
}

/// Applies a ticket's event to its row; returns the row written (`None`: the
/// event changed nothing).
async fn ticket(
    db: &mut PgConnection,
    t: &Tables,
    c: Change,
    event: &TicketEvent,
) -> Result<Option<TicketRow>, sqlx::Error> {
    let live = store::live_tickets(db, t, &[c.id]).await?.pop();
    let next = match (&live, event) {
        (None, TicketEvent::Opened(opening)) => {
            let tenant = opening.tenant.as_str().to_string();
            let owners = store::owners(db, t, &[opening.customer_id], &[tenant]).await?;
            TicketRow::opened(c.id, (c.version, c.at), opening, &owners)
        }
        // An event of a ticket whose opening the log no longer holds (or that came
        // before it) has no row to change.
        (None, _) => return Ok(None),
        (Some(row), _) if row.version >= c.version => return Ok(None),
        (Some(row), _) => row.after(c.version, c.at, event),
    };
    store::write_ticket(db, t, live.as_ref(), &next, c.sequence).await?;
    Ok(Some(next))
}

async fn customer(
    db: &mut PgConnection,
    t: &Tables,
    c: Change,
    event: &CustomerEvent,
) -> Result<(), sqlx::Error> {
    let live = store::live_customers(db, t, &[c.id]).await?.pop();
    if live.as_ref().is_some_and(|row| row.version >= c.version) {
        return Ok(());
    }
    let Some(next) = CustomerRow::after(live.as_ref(), (c.id, c.version, c.at), event) else {
        return Ok(());
    };
    store::write_customer(db, t, live.as_ref(), &next, c.sequence).await?;
    match event {
        CustomerEvent::Forgotten { .. } => store::erase(db, t, c.id).await,
        // The person's open tickets take the new tier at once (as routing times
        // them), with the tickets of records linked into it.
        CustomerEvent::TierSet { .. } => {
            let owners = store::owners(db, t, &[c.id], std::slice::from_ref(&next.tenant)).await?;
            let tier = owners.tier(c.id, &next.tenant);
            let mut records = store::linked_into(db, t, c.id).await?;
            records.push(c.id);
            for row in store::active_tickets_of(db, t, &records).await? {
                if row.tier != tier {
                    let retiered = row.retiered(c.at, tier);
                    store::write_ticket(db, t, Some(&row), &retiered, c.sequence).await?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
