//! The customer aggregate: who they are (identities), what they told us (facts),
//! and which tickets they opened. Facts are recorded once and shown on every later
//! ticket, so nobody asks for a serial number twice.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::{
    Action, Actor, Aggregate, Channel, DomainError, Identity, Recorded, UnixMillis,
    actor::authorize, limits,
};

/// A customer's state, rebuilt from their events. `Customer::default()` is a
/// customer we have never heard from (version 0).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Customer {
    /// How many events have been applied.
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
    /// Checks facts against [`limits`]; error fields name the request fields (`facts[i].key`).
    pub fn validate(&self) -> Result<(), DomainError> {
        let CustomerCommand::RecordContact { facts, .. } = self;
        if facts.len() > limits::MAX_FACTS_PER_CONTACT {
            return Err(DomainError::invalid(
                "facts",
                format!(
                    "at most {} facts per contact",
                    limits::MAX_FACTS_PER_CONTACT
                ),
            ));
        }
        for (i, (key, value)) in facts.iter().enumerate() {
            limits::fact_key(&format!("facts[{i}].key"), key)?;
            limits::text(
                &format!("facts[{i}].value"),
                value,
                limits::MAX_FACT_VALUE_CHARS,
            )?;
            if facts[..i].iter().any(|(k, _)| k == key) {
                return Err(DomainError::invalid(
                    format!("facts[{i}].key"),
                    format!("{key:?} is given twice"),
                ));
            }
        }
        Ok(())
    }
}

impl Customer {
    /// Whether we have heard from this customer.
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// Decides what a contact records: `Ok(None)` when it tells us nothing new.
    pub fn decide(
        &self,
        command: &CustomerCommand,
        actor: &Actor,
    ) -> Result<Option<CustomerEvent>, DomainError> {
        authorize(actor, Action::SubmitContact)?;
        command.validate()?;
        let CustomerCommand::RecordContact {
            channel,
            identity,
            facts,
            ticket_opened,
        } = command;

        let newer = |given: &Option<String>, known: &Option<String>| {
            given.clone().filter(|g| known.as_ref() != Some(g))
        };
        let identities_added = Identity {
            email: newer(&identity.email, &self.identity.email),
            phone: newer(&identity.phone, &self.identity.phone),
            external_id: newer(&identity.external_id, &self.identity.external_id),
        };
        let facts_recorded: Vec<(String, String)> = facts
            .iter()
            .filter(|(k, v)| self.facts.get(k) != Some(v))
            .cloned()
            .collect();
        let new_keys = facts_recorded
            .iter()
            .filter(|(k, _)| !self.facts.contains_key(k))
            .count();
        if self.facts.len() + new_keys > limits::MAX_FACTS_PER_CUSTOMER {
            return Err(DomainError::invalid(
                "facts",
                format!(
                    "a customer keeps at most {} facts",
                    limits::MAX_FACTS_PER_CUSTOMER
                ),
            ));
        }
        let ticket_opened = ticket_opened.filter(|t| !self.ticket_ids.contains(t));

        let nothing_new =
            identities_added.is_empty() && facts_recorded.is_empty() && ticket_opened.is_none();
        if self.exists() && nothing_new {
            return Ok(None);
        }
        Ok(Some(CustomerEvent::Contacted {
            channel: *channel,
            identities_added,
            facts_recorded,
            ticket_opened,
        }))
    }
}

impl Aggregate for Customer {
    type Event = CustomerEvent;
    const KIND: &'static str = "customer";

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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Role;

    fn system() -> Actor {
        Actor::new("web-shop", Role::CustomerSystem)
    }

    fn contact(facts: &[(&str, &str)], ticket: Option<Uuid>) -> CustomerCommand {
        CustomerCommand::RecordContact {
            channel: Channel::Email,
            identity: Identity::normalise("customer", "ana@example.com", "", "").unwrap(),
            facts: facts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ticket_opened: ticket,
        }
    }

    fn run(customer: &mut Customer, command: &CustomerCommand) -> Option<CustomerEvent> {
        let event = customer.decide(command, &system()).unwrap();
        if let Some(e) = &event {
            customer.apply(&Recorded {
                event: e.clone(),
                actor: system(),
                at: 1,
            });
        }
        event
    }

    #[test]
    fn facts_are_recorded_once_and_kept() {
        let mut c = Customer::default();
        let t1 = Uuid::from_u128(1);
        assert!(run(&mut c, &contact(&[("serial", "SN-1")], Some(t1))).is_some());
        // Same facts, same ticket: nothing new.
        assert!(run(&mut c, &contact(&[("serial", "SN-1")], Some(t1))).is_none());
        // A second ticket, no facts: recorded, facts kept.
        assert!(run(&mut c, &contact(&[], Some(Uuid::from_u128(2)))).is_some());
        assert_eq!(c.facts.get("serial").map(String::as_str), Some("SN-1"));
        assert_eq!(c.ticket_ids.len(), 2);
        assert_eq!(c.version, 2);
    }

    #[test]
    fn first_contact_registers_even_without_news() {
        let mut c = Customer::default();
        assert!(run(&mut c, &contact(&[], None)).is_some());
        assert_eq!(c.identity.email.as_deref(), Some("ana@example.com"));
        assert!(run(&mut c, &contact(&[], None)).is_none());
    }

    #[test]
    fn bad_facts_are_refused_with_their_index() {
        let err = Customer::default()
            .decide(&contact(&[("ok", "1"), ("Bad Key", "2")], None), &system())
            .unwrap_err();
        assert!(matches!(err, DomainError::InvalidField { field, .. } if field == "facts[1].key"));
        let err = Customer::default()
            .decide(&contact(&[("a", "1"), ("a", "2")], None), &system())
            .unwrap_err();
        assert!(matches!(err, DomainError::InvalidField { field, .. } if field == "facts[1].key"));
    }

    #[test]
    fn agents_do_not_submit_contacts() {
        let err = Customer::default()
            .decide(&contact(&[], None), &Actor::new("ana", Role::Agent))
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden { .. }));
    }
}
