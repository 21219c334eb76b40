//! The customer aggregate: who they are (identities), what they told us (facts),
//! and which tickets they opened. Facts are recorded once and shown on every later
//! ticket, so nobody asks for a serial number twice.
//!
//! # Where things go
//!
//! A new rule is a new file. Each command has its own file with its own field checks
//! (`validate`) and its own rule (`decide`): `record_contact.rs`. This file holds the
//! state, the command and event enums, the checks every command shares (authorise →
//! validate fields → the command's own rule) and `apply`. A new command is a new
//! variant of [`CustomerCommand`] (and usually of [`CustomerEvent`]), a new file, and
//! one arm in each `match` here.

mod record_contact;

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::{
    Action, Actor, Aggregate, Channel, DomainError, Identity, Recorded, UnixMillis,
    actor::authorize,
};

/// A customer's state, rebuilt from their events. `Customer::default()` is a
/// customer we have never heard from (version 0).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Customer {
    /// How many events have been applied (unknown ones included).
    pub version: u64,
    /// Every identity we know.
    pub identity: Identity,
    /// Facts by key.
    pub facts: BTreeMap<String, String>,
    /// Tickets they opened, oldest first.
    pub ticket_ids: Vec<Uuid>,
    /// First contact.
    pub first_contact_at: Option<UnixMillis>,
    /// Last contact that told us something new or opened a ticket.
    pub last_contact_at: Option<UnixMillis>,
}

/// What a caller asks of a customer.
#[derive(Clone, Debug, PartialEq)]
pub enum CustomerCommand {
    /// The customer contacted us: remember new identities and facts, and the ticket
    /// the contact opened.
    RecordContact {
        /// Channel.
        channel: Channel,
        /// Identities given with this contact (normalised).
        identity: Identity,
        /// Facts given with this contact, as (key, value).
        facts: Vec<(String, String)>,
        /// The ticket this contact opened, if any.
        ticket_opened: Option<Uuid>,
    },
}

/// What happened to a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustomerEvent {
    /// A contact that told us something new (the first one registers the customer).
    Contacted {
        /// Channel.
        channel: Channel,
        /// Identities that are new or changed.
        identities_added: Identity,
        /// Facts that are new or changed, as (key, value).
        facts_recorded: Vec<(String, String)>,
        /// The ticket opened, if any.
        ticket_opened: Option<Uuid>,
    },
}

impl CustomerCommand {
    /// The action this command needs permission for.
    fn action(&self) -> Action {
        match self {
            CustomerCommand::RecordContact { .. } => Action::SubmitContact,
        }
    }

    /// Checks every field against [`limits`](crate::limits); error fields name the
    /// request fields (`facts[i].key`).
    pub fn validate(&self) -> Result<(), DomainError> {
        match self {
            CustomerCommand::RecordContact { facts, .. } => record_contact::validate(facts),
        }
    }
}

impl Customer {
    /// Whether we have heard from this customer.
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// Decides what `command` by `actor` records: `Ok(Some(event))` to record,
    /// `Ok(None)` when it tells us nothing new, or why not (including the
    /// per-customer fact cap, [`MAX_FACTS_PER_CUSTOMER`](crate::limits::MAX_FACTS_PER_CUSTOMER)).
    ///
    /// The event is recorded at `now`: the time is decided here, with the event, not
    /// by whoever appends it.
    pub fn decide(
        &self,
        command: &CustomerCommand,
        actor: &Actor,
        now: UnixMillis,
    ) -> Result<Option<CustomerEvent>, DomainError> {
        // No rule reads the time yet; the caller records the event at `now`.
        let _ = now;
        authorize(actor, command.action())?;
        command.validate()?;
        match command {
            CustomerCommand::RecordContact {
                channel,
                identity,
                facts,
                ticket_opened,
            } => record_contact::decide(self, *channel, identity, facts, *ticket_opened),
        }
    }

    /// Runs every rule of [`Customer::decide`] and keeps only the verdict: a dry run,
    /// so a caller can check a contact before writing anything (say, before opening
    /// the ticket the contact would record). Pure: nothing is recorded.
    pub fn check_contact(
        &self,
        command: &CustomerCommand,
        actor: &Actor,
        now: UnixMillis,
    ) -> Result<(), DomainError> {
        self.decide(command, actor, now).map(drop)
    }
}

impl Aggregate for Customer {
    type Event = CustomerEvent;
    const KIND: &'static str = "customer";
    const SNAPSHOT_SCHEMA: u32 = 1;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<CustomerEvent>) {
        let CustomerEvent::Contacted {
            identities_added,
            facts_recorded,
            ticket_opened,
            ..
        } = &recorded.event;
        let known = &mut self.identity;
        for (added, known) in [
            (&identities_added.email, &mut known.email),
            (&identities_added.phone, &mut known.phone),
            (&identities_added.external_id, &mut known.external_id),
        ] {
            if added.is_some() {
                known.clone_from(added);
            }
        }
        for (k, v) in facts_recorded {
            self.facts.insert(k.clone(), v.clone());
        }
        self.ticket_ids.extend(ticket_opened);
        self.first_contact_at.get_or_insert(recorded.at);
        self.last_contact_at = Some(recorded.at);
        self.version += 1;
    }

    fn skip_unknown(&mut self) {
        self.version += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Role;

    fn system() -> Actor {
        Actor::new("web-shop", Role::CustomerSystem)
    }

    fn contact(facts: &[(&str, &str)]) -> CustomerCommand {
        CustomerCommand::RecordContact {
            channel: Channel::Email,
            identity: Identity::normalise("customer", "ana@example.com", "", "").unwrap(),
            facts: facts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ticket_opened: None,
        }
    }

    #[test]
    fn agents_do_not_submit_contacts() {
        let err = Customer::default()
            .decide(&contact(&[]), &Actor::new("ana", Role::Agent), 1)
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden { .. }));
    }

    #[test]
    fn check_contact_is_decide_without_the_event() {
        let c = Customer::default();
        assert_eq!(
            c.check_contact(&contact(&[("serial", "SN-1")]), &system(), 1),
            Ok(())
        );
        let bad = contact(&[("Bad Key", "1")]);
        assert_eq!(
            c.check_contact(&bad, &system(), 1),
            c.decide(&bad, &system(), 1).map(drop)
        );
        let err = c
            .check_contact(&contact(&[]), &Actor::new("ana", Role::Agent), 1)
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden { .. }));
    }

    #[test]
    fn the_event_is_applied_at_its_time() {
        let mut c = Customer::default();
        for at in [5, 9] {
            let event = c
                .decide(&contact(&[("serial", &at.to_string())]), &system(), at)
                .unwrap()
                .unwrap();
            c.apply(&Recorded {
                event,
                actor: system(),
                at,
            });
        }
        assert_eq!((c.first_contact_at, c.last_contact_at), (Some(5), Some(9)));
    }

    #[test]
    fn skip_unknown_counts_the_version_and_changes_nothing_else() {
        let mut c = Customer::default();
        c.skip_unknown();
        assert_eq!(
            c,
            Customer {
                version: 1,
                ..Customer::default()
            }
        );
        assert!(c.exists());
    }
}
