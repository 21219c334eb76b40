//! A batch of events in a handful of statements: runs of common events (every
//! ticket event, a customer's contacts) are folded in memory over the rows they
//! touch — loaded at once — and written at once (the stored live revisions closed
//! in one statement, the new revisions inserted in one). The rare events whose
//! effects reach across rows (a tier, a link, a forget, a policy, a ticket solved
//! by an article) and the articles' own events are applied one by one between the
//! runs, so each run reads the state it would have read event by event: the rows
//! come out the same.
//!
//! A ticket reopened in a run no longer counts as solved by an article: its row in
//! `analytics_self_served` goes, with the others' of the run, in one statement at
//! the run's end. No solve by an article is in a run (it is applied one by one),
//! so nothing in the run could have written that row after the reopen: deleting
//! at the end is deleting at once.

use std::collections::{HashMap, HashSet};

use frontline_domain::{CustomerEvent, TicketEvent};
use frontline_eventlog::Delivery;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    events::AnalyticsEvent,
    projection::{Change, apply_one},
    rows::{self, CustomerRow, TicketRow},
    store::{self, Close, Revision, Tables},
};

/// Applies `events` (in stream order).
pub async fn apply_all(
    db: &mut PgConnection,
    t: &Tables,
    events: &[(&Delivery<AnalyticsEvent>, &AnalyticsEvent)],
) -> Result<(), sqlx::Error> {
    let mut changes = Vec::with_capacity(events.len());
    for (delivery, event) in events {
        changes.push((Change::of(delivery)?, *event));
    }
    apply_changes(db, t, &changes).await
}

/// Applies these events (in stream order), each where its [`Change`] says.
pub(crate) async fn apply_changes(
    db: &mut PgConnection,
    t: &Tables,
    changes: &[(Change, &AnalyticsEvent)],
) -> Result<(), sqlx::Error> {
    let mut rest = changes;
    while !rest.is_empty() {
        let run = rest
            .iter()
            .position(|(_, e)| !common(e))
            .unwrap_or(rest.len());
        fold(db, t, &rest[..run]).await?;
        if let Some((change, event)) = rest.get(run) {
            apply_one(db, t, *change, event).await?;
            rest = &rest[run + 1..];
        } else {
            rest = &[];
        }
    }
    Ok(())
}

/// Whether an event changes only its own row (and so folds in memory). A ticket
/// solved by an article also writes its row in `analytics_self_served`; articles
/// and self-service answers are rare: one by one. (A reopen only deletes from
/// `analytics_self_served`: it folds, see [`fold`].)
fn common(event: &AnalyticsEvent) -> bool {
    match event {
        AnalyticsEvent::Ticket(TicketEvent::Solved {
            self_served: Some(_),
            ..
        }) => false,
        AnalyticsEvent::Ticket(_) => true,
        AnalyticsEvent::Customer(e) => {
            matches!(
                e,
                CustomerEvent::Contacted { .. } | CustomerEvent::Absorbed { .. }
            )
        }
        AnalyticsEvent::Policy(_) | AnalyticsEvent::Article(_) | AnalyticsEvent::SelfService(_) => {
            false
        }
    }
}

/// A row's live state during a run, and what the run adds to it.
struct Slot<R> {
    /// The stored live revision, to close when the run changes the row.
    stored: Option<i32>,
    current: R,
    new: Vec<Revision<R>>,
}

impl<R: Clone> Slot<R> {
    fn stored(row: R, revision: i32) -> Self {
        Slot {
            stored: Some(revision),
            current: row,
            new: Vec::new(),
        }
    }

    fn created(row: R, sequence: i64) -> Self {
        Slot {
            stored: None,
            current: row.clone(),
            new: vec![Revision::live(row, sequence)],
        }
    }

    /// `next` (valid from `valid_from`) supersedes the current revision at
    /// `sequence`; a stored one goes to `closes`.
    fn push(&mut self, id: Uuid, next: R, valid_from: i64, sequence: i64, closes: &mut Vec<Close>) {
        match (self.new.last_mut(), self.stored) {
            (Some(last), _) => {
                last.seq_to = sequence;
                last.valid_to = Some(valid_from);
            }
            (None, Some(revision)) => closes.push((id, revision, sequence, valid_from)),
            (None, None) => {}
        }
        self.new.push(Revision::live(next.clone(), sequence));
        self.current = next;
    }
}

/// Folds a run of common events over their rows and writes the result; the
/// tickets the run reopens are no longer solved by an article.
async fn fold(
    db: &mut PgConnection,
    t: &Tables,
    run: &[(Change, &AnalyticsEvent)],
) -> Result<(), sqlx::Error> {
    if run.is_empty() {
        return Ok(());
    }
    let (mut ticket_ids, mut customer_ids) = (Vec::new(), Vec::new());
    let (mut owners, mut tenants) = (HashSet::new(), HashSet::new());
    for (c, event) in run {
        match event {
            AnalyticsEvent::Ticket(e) => {
                ticket_ids.push(c.id);
                if let TicketEvent::Opened(o) = e {
                    owners.insert(o.customer_id);
                    tenants.insert(o.tenant.as_str().to_string());
                }
            }
            AnalyticsEvent::Customer(_) => customer_ids.push(c.id),
            // Not common: never in a run.
            AnalyticsEvent::Policy(_)
            | AnalyticsEvent::Article(_)
            | AnalyticsEvent::SelfService(_) => {}
        }
    }
    let mut tickets: HashMap<Uuid, Slot<TicketRow>> = store::live_tickets(db, t, &ticket_ids)
        .await?
        .into_iter()
        .map(|row| (row.ticket_id, Slot::stored(row.clone(), row.revision)))
        .collect();
    let mut customers: HashMap<Uuid, Slot<CustomerRow>> =
        store::live_customers(db, t, &customer_ids)
            .await?
            .into_iter()
            .map(|row| (row.customer_id, Slot::stored(row.clone(), row.revision)))
            .collect();
    // New tickets' tiers and forgotten owners: nothing in a run changes them
    // (customers it creates have no tier), so the stored state answers for it all.
    let owners: Vec<Uuid> = owners.into_iter().collect();
    let tenants: Vec<String> = tenants.into_iter().collect();
    let owners = store::owners(db, t, &owners, &tenants).await?;

    let (mut ticket_closes, mut customer_closes) = (Vec::new(), Vec::new());
    // Tickets an applied event reopened (a stale repeat, skipped, reopens nothing).
    let mut reopened = Vec::new();
    for (c, event) in run {
        match event {
            AnalyticsEvent::Ticket(e) => match (tickets.get_mut(&c.id), e) {
                (None, TicketEvent::Opened(o)) => {
                    let row = TicketRow::opened(c.id, (c.version, c.at), o, &owners);
                    tickets.insert(c.id, Slot::created(row, c.sequence));
                }
                (None, _) => {}
                (Some(slot), _) if slot.current.version >= c.version => {}
                (Some(slot), _) => {
                    let next = slot.current.after(c.version, c.at, e);
                    let from = next.valid_from;
                    slot.push(c.id, next, from, c.sequence, &mut ticket_closes);
                    if rows::reopens(e) {
                        reopened.push(c.id);
                    }
                }
            },
            AnalyticsEvent::Customer(e) => {
                let slot = customers.get_mut(&c.id);
                if slot
                    .as_ref()
                    .is_some_and(|s| s.current.version >= c.version)
                {
                    continue;
                }
                let current = slot.as_ref().map(|s| &s.current);
                let Some(next) = CustomerRow::after(current, (c.id, c.version, c.at), e) else {
                    continue;
                };
                match slot {
                    Some(slot) => {
                        let from = next.valid_from;
                        slot.push(c.id, next, from, c.sequence, &mut customer_closes);
                    }
                    None => {
                        customers.insert(c.id, Slot::created(next, c.sequence));
                    }
                }
            }
            // Not common: never in a run.
            AnalyticsEvent::Policy(_)
            | AnalyticsEvent::Article(_)
            | AnalyticsEvent::SelfService(_) => {}
        }
    }

    let ticket_revisions: Vec<Revision<TicketRow>> =
        tickets.into_values().flat_map(|s| s.new).collect();
    let customer_revisions: Vec<Revision<CustomerRow>> =
        customers.into_values().flat_map(|s| s.new).collect();
    // Closed first: a ticket has one live revision at a time (a unique index).
    store::close_all(db, &t.tickets, "ticket_id", &ticket_closes).await?;
    store::close_all(db, &t.customers, "customer_id", &customer_closes).await?;
    store::insert_tickets(db, t, &ticket_revisions).await?;
    store::insert_customers(db, t, &customer_revisions).await?;
    store::reopened(db, t, &reopened).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use frontline_domain::{article::ArticleEvent, self_service::SelfServiceEvent};

    use super::*;

    #[test]
    fn articles_and_tickets_solved_by_one_are_applied_one_by_one() {
        let solved = |self_served| {
            AnalyticsEvent::Ticket(TicketEvent::Solved {
                resolution: String::new(),
                self_served,
                idempotency_key: None,
            })
        };
        assert!(common(&solved(None)));
        assert!(!common(&solved(Some(Uuid::nil()))));
        assert!(!common(&AnalyticsEvent::Article(ArticleEvent::Retired {
            revision: 1
        })));
        let served = frontline_domain::self_service::SelfServed {
            tenant: frontline_domain::TenantId::default(),
            article_id: Uuid::nil(),
            revision: 1,
            customer_id: None,
        };
        assert!(!common(&AnalyticsEvent::SelfService(
            SelfServiceEvent::Recorded(served)
        )));
    }
}
