//! The read models' rows and how one event changes them: pure folds, no I/O (the
//! projection loads the live row, folds the event in, and writes the result as the
//! row's next revision).

use frontline_domain::{
    CustomerEvent, TicketEvent, TicketStatus, UnixMillis,
    assignment::Tier,
    sla::clocks::{Alarm, ClockKind},
    ticket::Opening,
};
use std::collections::{HashMap, HashSet};

use frontline_proto::v1;

use uuid::Uuid;

/// Whether `event` reopened its ticket: the domain's own rule.
pub fn reopens(event: &TicketEvent) -> bool {
    event.reopens()
}

/// A ticket's row in `analytics_tickets` (times in milliseconds since the epoch,
/// enumerations as wire numbers).
#[derive(Clone, Debug, PartialEq)]
pub struct TicketRow {
    /// The ticket.
    pub ticket_id: Uuid,
    /// This row's revision (1 for the first).
    pub revision: i32,
    /// The ticket's version (events so far).
    pub version: i64,
    /// When this revision starts to hold.
    pub valid_from: UnixMillis,
    /// The tenant.
    pub tenant: String,
    /// The customer.
    pub customer_id: Uuid,
    /// Subject (personal).
    pub subject: String,
    /// `v1::TicketStatus`.
    pub status: i16,
    /// `v1::Channel`.
    pub channel: i16,
    /// Product area.
    pub product_area: String,
    /// `v1::Priority`.
    pub priority: i16,
    /// `v1::Tier`.
    pub tier: i16,
    /// The agent holding it ("" for none).
    pub assignee: String,
    /// Opened.
    pub opened_at: UnixMillis,
    /// First public reply.
    pub first_reply_at: Option<UnixMillis>,
    /// Last solve, while solved.
    pub solved_at: Option<UnixMillis>,
    /// Solved at least once.
    pub ever_solved: bool,
    /// Last change.
    pub updated_at: UnixMillis,
    /// Times reopened.
    pub reopens: i32,
    /// Customer messages (the opening one included).
    pub contacts: i32,
    /// `v1::SlaClockKind`s warned and still running.
    pub warned_clocks: Vec<i16>,
    /// Breaches recorded.
    pub breaches: i32,
    /// Minutes of work logged.
    pub minutes_logged: i32,
    /// CSAT (1–5), once satisfaction is recorded.
    pub csat: Option<i16>,
    /// Declines proposed.
    pub declines_proposed: i32,
    /// Declines approved.
    pub declines_approved: i32,
}

/// The wire number of a domain value's `v1` enumeration.
pub fn wire<W: From<D> + Into<i32>, D>(value: D) -> i16 {
    i16::try_from(W::from(value).into()).unwrap_or_default()
}

fn clock(kind: ClockKind) -> i16 {
    wire::<v1::SlaClockKind, _>(kind)
}

impl TicketRow {
    /// The first row of a ticket opened at `at`: its tier as its owners say, no
    /// subject when its customer is forgotten.
    pub fn opened(
        ticket_id: Uuid,
        (version, at): (i64, UnixMillis),
        o: &Opening,
        owners: &Owners,
    ) -> Self {
        let subject = if owners.forgotten(o.customer_id) {
            frontline_privacy::ERASED.to_string()
        } else {
            o.subject.clone()
        };
        TicketRow {
            ticket_id,
            revision: 1,
            version,
            valid_from: at,
            tenant: o.tenant.as_str().to_string(),
            customer_id: o.customer_id,
            subject,
            status: wire::<v1::TicketStatus, _>(TicketStatus::New),
            channel: wire::<v1::Channel, _>(o.channel),
            product_area: o.product_area.clone(),
            priority: wire::<v1::Priority, _>(o.priority),
            tier: owners.tier(o.customer_id, o.tenant.as_str()),
            assignee: String::new(),
            opened_at: at,
            first_reply_at: None,
            solved_at: None,
            ever_solved: false,
            updated_at: at,
            reopens: 0,
            contacts: 1,
            warned_clocks: Vec::new(),
            breaches: 0,
            minutes_logged: 0,
            csat: None,
            declines_proposed: 0,
            declines_approved: 0,
        }
    }

    /// The status as a domain value.
    pub fn status(&self) -> Option<TicketStatus> {
        v1::TicketStatus::try_from(i32::from(self.status))
            .ok()
            .and_then(|s| TicketStatus::try_from(s).ok())
    }

    /// The next revision: this row once `event` (the ticket's `version`th, stored
    /// at `at`) is applied. (`Opened` again changes nothing but the version.)
    pub fn after(&self, version: i64, at: UnixMillis, event: &TicketEvent) -> TicketRow {
        let mut row = self.next(at);
        row.version = version;
        row.updated_at = at.max(self.updated_at);
        if let Some(status) = event.status_after(self.status()) {
            row.status = wire::<v1::TicketStatus, _>(status);
        }
        match event {
            TicketEvent::Opened(_) | TicketEvent::NoteAdded { .. } => {}
            // Reopening (a solved ticket's customer writing again): below.
            TicketEvent::CustomerMessageAdded { .. } => row.contacts += 1,
            TicketEvent::AgentReplied { .. } => {
                row.first_reply_at.get_or_insert(at);
                row.stop(&[ClockKind::FirstResponse, ClockKind::NextResponse]);
            }
            TicketEvent::DeclineProposed { .. } => row.declines_proposed += 1,
            TicketEvent::HumanRequested { priority } => {
                row.priority = wire::<v1::Priority, _>(*priority);
            }
            TicketEvent::DeclineRejected { .. }
            | TicketEvent::Closed { .. }
            | TicketEvent::FollowUpRaised { .. }
            // An automated answer is no first reply.
            | TicketEvent::AutoAnswered { .. }
            | TicketEvent::CheckInDue { .. }
            | TicketEvent::MergedInto { .. }
            | TicketEvent::MergedFrom { .. }
            | TicketEvent::Unmerged { .. }
            | TicketEvent::UnmergedFrom { .. } => {}
            // The latest solve's rating (a later one of the same solve replaces it).
            TicketEvent::SatisfactionRated { score, .. } => row.csat = Some(i16::from(*score)),
            TicketEvent::Solved { .. } | TicketEvent::DeclineApproved { .. } => {
                if matches!(event, TicketEvent::DeclineApproved { .. }) {
                    // The proposal's reason went out as the public reply.
                    row.declines_approved += 1;
                    row.first_reply_at.get_or_insert(at);
                }
                row.solved_at = Some(at);
                row.ever_solved = true;
                row.warned_clocks.clear();
            }
            TicketEvent::Reopened { .. } => {}
            TicketEvent::Assigned(a) => row.assignee = a.agent.clone(),
            TicketEvent::Queued { .. } => row.assignee.clear(),
            TicketEvent::SlaAlarm {
                clock: kind, alarm, ..
            } => match alarm {
                Alarm::Warning => {
                    if !row.warned_clocks.contains(&clock(*kind)) {
                        row.warned_clocks.push(clock(*kind));
                    }
                }
                Alarm::Breach => {
                    row.breaches += 1;
                    row.stop(&[*kind]);
                }
            },
            TicketEvent::EscalationRaised { .. } | TicketEvent::TimeBudgetExceeded { .. } => {}
            TicketEvent::TimeLogged { minutes } => {
                row.minutes_logged = row
                    .minutes_logged
                    .saturating_add(i32::try_from(*minutes).unwrap_or(i32::MAX));
            }
        }
        if reopens(event) {
            row.reopened();
        }
        row
    }

    /// The next revision with the customer's tier changed (from `at`).
    pub fn retiered(&self, at: UnixMillis, tier: i16) -> TicketRow {
        let mut row = self.next(at);
        row.tier = tier;
        row
    }

    /// Whether the ticket still waits on support (new, open, pending or a decline
    /// awaiting a manager).
    pub fn active(&self) -> bool {
        self.status().is_some_and(TicketStatus::is_active)
    }

    fn next(&self, at: UnixMillis) -> TicketRow {
        let mut row = self.clone();
        row.revision += 1;
        row.valid_from = at.max(self.valid_from);
        row
    }

    fn reopened(&mut self) {
        self.reopens += 1;
        self.solved_at = None;
        // A rating belongs to the solve it followed.
        self.csat = None;
        self.stop(&[ClockKind::Resolution]);
    }

    fn stop(&mut self, kinds: &[ClockKind]) {
        let stopped: Vec<i16> = kinds.iter().map(|k| clock(*k)).collect();
        self.warned_clocks.retain(|c| !stopped.contains(c));
    }
}

/// What new tickets take from their customers and tenants: each customer's
/// person's tier, each tenant's policy default, and who is forgotten.
#[derive(Debug, Default)]
pub struct Owners {
    tiers: HashMap<Uuid, i16>,
    defaults: HashMap<String, i16>,
    forgotten: HashSet<Uuid>,
}

impl Owners {
    /// Owners from `(customer, tier)` of customers whose person has a tier,
    /// `(tenant, default tier)` of policies, and the forgotten records.
    pub fn new(
        tiers: Vec<(Uuid, i16)>,
        defaults: Vec<(String, i16)>,
        forgotten: Vec<Uuid>,
    ) -> Self {
        Owners {
            tiers: tiers.into_iter().collect(),
            defaults: defaults.into_iter().collect(),
            forgotten: forgotten.into_iter().collect(),
        }
    }

    /// The tier a new ticket of `customer` gets, as routing decides it: the tier of
    /// the customer's person (the record it is linked into, or itself), else the
    /// tenant's policy's default, else standard.
    pub fn tier(&self, customer: Uuid, tenant: &str) -> i16 {
        self.tiers
            .get(&customer)
            .or_else(|| self.defaults.get(tenant))
            .copied()
            .unwrap_or(wire::<v1::Tier, _>(Tier::Standard))
    }

    /// Whether the record is forgotten. A ticket opened after the forget (a submit
    /// racing it, before the key was destroyed) keeps no subject either: a
    /// rebuild, reading after the key is gone, would find none.
    pub fn forgotten(&self, customer: Uuid) -> bool {
        self.forgotten.contains(&customer)
    }
}

/// A customer record's row in `analytics_customers`.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerRow {
    /// The record.
    pub customer_id: Uuid,
    /// This row's revision (1 for the first).
    pub revision: i32,
    /// The record's version (events so far).
    pub version: i64,
    /// When this revision starts to hold.
    pub valid_from: UnixMillis,
    /// The tenant.
    pub tenant: String,
    /// The tier a manager set (`v1::Tier`), if any.
    pub tier: Option<i16>,
    /// The record it is linked into, if any.
    pub linked_into: Option<Uuid>,
    /// The latest NPS answer (0–10).
    pub nps: Option<i16>,
    /// Forgotten: personal columns are blanked.
    pub forgotten: bool,
    /// First contact.
    pub first_contact_at: UnixMillis,
}

impl CustomerRow {
    /// The row after `event` (the record's `version`th, at `at`); `None` when the
    /// event changes nothing analytics keeps (then no revision is written). A record
    /// with no row yet gets one from its first contact.
    pub fn after(
        current: Option<&CustomerRow>,
        (customer_id, version, at): (Uuid, i64, UnixMillis),
        event: &CustomerEvent,
    ) -> Option<CustomerRow> {
        let Some(current) = current else {
            let CustomerEvent::Contacted { tenant, .. } = event else {
                return None;
            };
            return Some(CustomerRow {
                customer_id,
                revision: 1,
                version,
                valid_from: at,
                tenant: tenant.as_str().to_string(),
                tier: None,
                linked_into: None,
                nps: None,
                forgotten: false,
                first_contact_at: at,
            });
        };
        let mut row = current.clone();
        match event {
            CustomerEvent::Contacted { .. } | CustomerEvent::Absorbed { .. } => return None,
            CustomerEvent::LinkedInto { customer_id } => row.linked_into = Some(*customer_id),
            CustomerEvent::Unlinked { customer_id } => {
                if row.linked_into != Some(*customer_id) {
                    return None;
                }
                row.linked_into = None;
            }
            CustomerEvent::Forgotten { .. } => row.forgotten = true,
            CustomerEvent::TierSet { tier, .. } => {
                row.tier = Some(wire::<v1::Tier, _>(*tier));
            }
            CustomerEvent::NpsRated { score, .. } => row.nps = Some(i16::from(*score)),
        }
        row.revision += 1;
        row.version = version;
        row.valid_from = at.max(current.valid_from);
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_statuses_are_those_the_sql_names() {
        // figures.rs, search.rs and store.rs filter active tickets with
        // `status IN (1, 2, 3, 6)`: a new active status must be added there.
        let active: Vec<i16> = TicketStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .map(wire::<v1::TicketStatus, _>)
            .collect();
        assert_eq!(active, [1, 2, 3, 6]);
    }

    /// [`reopens`] is the domain's rule: the aggregate counts a reopen exactly for
    /// the events it names, and the row's `reopens` follows it.
    #[test]
    fn reopens_is_the_domains_rule() {
        use frontline_domain::{Actor, Aggregate, Channel, Recorded, Role, Ticket};
        let message = |reopened| TicketEvent::CustomerMessageAdded {
            body: "again".into(),
            channel: Channel::Web,
            idempotency_key: "k".into(),
            reopened,
        };
        let events = [
            message(true),
            message(false),
            TicketEvent::Reopened { reason: "r".into() },
            TicketEvent::AgentReplied {
                body: "r".into(),
                awaiting_customer: false,
                idempotency_key: None,
            },
            TicketEvent::DeclineRejected { note: "n".into() },
            TicketEvent::Closed { automatic: false },
        ];
        let row = TicketRow::opened(
            Uuid::nil(),
            (1, 0),
            &Opening {
                tenant: frontline_domain::TenantId::default(),
                channel: Channel::Web,
                customer_id: Uuid::nil(),
                subject: "s".into(),
                body: "b".into(),
                product_area: "router".into(),
                priority: frontline_domain::Priority::Normal,
                idempotency_key: "o".into(),
                follow_up_of: None,
            },
            &Owners::default(),
        );
        for event in events {
            let mut ticket = Ticket::default();
            ticket.apply(&Recorded {
                event: event.clone(),
                actor: Actor::new("a", Role::Agent),
                at: 1,
            });
            assert_eq!(ticket.reopen_count == 1, reopens(&event), "{event:?}");
            assert_eq!(row.after(2, 1, &event).reopens == 1, reopens(&event));
        }
    }
}
