//! `RecordContact`: the customer contacted us.
//!
//! Rules: at most [`limits::MAX_FACTS_PER_CONTACT`] facts per contact, each key once;
//! only what is new is recorded (new or changed identities and facts, a ticket not
//! yet listed), and a known customer's contact that tells us nothing new records
//! nothing; a customer keeps at most [`limits::MAX_FACTS_PER_CUSTOMER`] facts.

use uuid::Uuid;

use super::{Customer, CustomerEvent};
use crate::{Channel, DomainError, IdentityKey, TenantId, limits};

/// The facts: within limits, no key twice; error fields name `facts[i].key`.
pub(super) fn validate(facts: &[(String, String)]) -> Result<(), DomainError> {
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

/// One contact, as [`decide`] reads it.
pub(super) struct Contact<'a> {
    pub(super) channel: Channel,
    pub(super) tenant: &'a TenantId,
    pub(super) identities: &'a [IdentityKey],
    pub(super) facts: &'a [(String, String)],
    pub(super) ticket_opened: Option<Uuid>,
    pub(super) possible_duplicates: &'a [Uuid],
}

/// What the contact tells us that `customer` does not know yet; `Ok(None)` for a
/// known customer when that is nothing.
pub(super) fn decide(
    customer: &Customer,
    contact: Contact<'_>,
) -> Result<Option<CustomerEvent>, DomainError> {
    // Their identities were released: a contact that resolved to them just before
    // the forget resolves again (to a new customer).
    if customer.forgotten_at.is_some() {
        return Err(DomainError::Precondition {
            action: "record a contact",
            reason: "the customer was forgotten".into(),
        });
    }
    let identities_added: Vec<IdentityKey> = contact
        .identities
        .iter()
        .filter(|i| !customer.identities.contains(i))
        .cloned()
        .collect();
    let facts_recorded: Vec<(String, String)> = contact
        .facts
        .iter()
        .filter(|(k, v)| customer.facts.get(k) != Some(v))
        .cloned()
        .collect();
    let new_keys = facts_recorded
        .iter()
        .filter(|(k, _)| !customer.facts.contains_key(k))
        .count();
    if customer.facts.len() + new_keys > limits::MAX_FACTS_PER_CUSTOMER {
        return Err(DomainError::invalid(
            "facts",
            format!(
                "a customer keeps at most {} facts",
                limits::MAX_FACTS_PER_CUSTOMER
            ),
        ));
    }
    let ticket_opened = contact
        .ticket_opened
        .filter(|t| !customer.ticket_ids.contains(t));
    let possible_duplicates: Vec<Uuid> = contact
        .possible_duplicates
        .iter()
        .filter(|d| {
            !customer.possible_duplicates.contains(d)
                && !customer.linked.contains(d)
                && customer.linked_into != Some(**d)
        })
        .copied()
        .collect();

    let nothing_new = identities_added.is_empty()
        && facts_recorded.is_empty()
        && ticket_opened.is_none()
        && possible_duplicates.is_empty();
    if customer.exists() && nothing_new {
        return Ok(None);
    }
    Ok(Some(CustomerEvent::Contacted {
        channel: contact.channel,
        tenant: contact.tenant.clone(),
        identities_added,
        facts_recorded,
        ticket_opened,
        possible_duplicates,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Actor, Aggregate, CustomerCommand, Recorded, Role, UnixMillis};

    fn system() -> Actor {
        Actor::new("web-shop", Role::CustomerSystem)
    }

    fn tenant() -> TenantId {
        TenantId::parse("tenant", "acme").unwrap()
    }

    fn contact(facts: &[(&str, &str)], ticket: Option<Uuid>) -> CustomerCommand {
        CustomerCommand::RecordContact {
            channel: Channel::Email,
            tenant: tenant(),
            identities: vec![IdentityKey::Email("ana@example.com".into())],
            facts: facts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ticket_opened: ticket,
            possible_duplicates: Vec::new(),
        }
    }

    fn facts_only<'a>(tenant: &'a TenantId, facts: &'a [(String, String)]) -> Contact<'a> {
        Contact {
            channel: Channel::Web,
            tenant,
            identities: &[],
            facts,
            ticket_opened: None,
            possible_duplicates: &[],
        }
    }

    fn run(
        customer: &mut Customer,
        command: &CustomerCommand,
        now: UnixMillis,
    ) -> Option<CustomerEvent> {
        let event = customer.decide(command, &system(), now).unwrap();
        if let Some(e) = &event {
            customer.apply(&Recorded {
                event: e.clone(),
                actor: system(),
                at: now,
            });
        }
        event
    }

    fn facts(range: std::ops::Range<usize>) -> Vec<(String, String)> {
        range
            .map(|i| (format!("fact.{i}"), "v".to_string()))
            .collect()
    }

    #[test]
    fn facts_are_recorded_once_and_kept() {
        let mut c = Customer::default();
        let t1 = Uuid::from_u128(1);
        assert!(run(&mut c, &contact(&[("serial", "SN-1")], Some(t1)), 1).is_some());
        // Same facts, same ticket: nothing new.
        assert!(run(&mut c, &contact(&[("serial", "SN-1")], Some(t1)), 2).is_none());
        // A second ticket, no facts: recorded, facts kept.
        assert!(run(&mut c, &contact(&[], Some(Uuid::from_u128(2))), 3).is_some());
        assert_eq!(c.facts.get("serial").map(String::as_str), Some("SN-1"));
        assert_eq!(c.ticket_ids.len(), 2);
        assert_eq!(c.version, 2);
    }

    #[test]
    fn only_changed_facts_and_identities_are_recorded() {
        let mut c = Customer::default();
        run(
            &mut c,
            &contact(&[("serial", "SN-1"), ("os", "v1")], None),
            1,
        );
        let event = run(
            &mut c,
            &contact(&[("serial", "SN-1"), ("os", "v2")], None),
            2,
        );
        assert_eq!(
            event,
            Some(CustomerEvent::Contacted {
                channel: Channel::Email,
                tenant: tenant(),
                identities_added: Vec::new(),
                facts_recorded: vec![("os".into(), "v2".into())],
                ticket_opened: None,
                possible_duplicates: Vec::new(),
            })
        );
    }

    #[test]
    fn first_contact_registers_even_without_news() {
        let mut c = Customer::default();
        assert!(run(&mut c, &contact(&[], None), 1).is_some());
        assert!(
            c.identities
                .contains(&IdentityKey::Email("ana@example.com".into()))
        );
        assert!(run(&mut c, &contact(&[], None), 2).is_none());
    }

    #[test]
    fn bad_facts_are_refused_with_their_index() {
        let field = |facts: &[(&str, &str)]| match Customer::default().decide(
            &contact(facts, None),
            &system(),
            1,
        ) {
            Err(DomainError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&[("ok", "1"), ("Bad Key", "2")]), "facts[1].key");
        assert_eq!(field(&[("a", "1"), ("a", "2")]), "facts[1].key");
        assert_eq!(field(&[("a", "")]), "facts[0].value");
        let too_many = facts(0..limits::MAX_FACTS_PER_CONTACT + 1);
        let err = validate(&too_many).unwrap_err();
        assert!(matches!(err, DomainError::InvalidField { field, .. } if field == "facts"));
    }

    #[test]
    fn a_customer_keeps_at_most_the_fact_cap() {
        let mut c = Customer::default();
        let per = limits::MAX_FACTS_PER_CONTACT;
        let mut next = 0;
        while next < limits::MAX_FACTS_PER_CUSTOMER {
            let batch = facts(next..(next + per).min(limits::MAX_FACTS_PER_CUSTOMER));
            let event = decide(&c, facts_only(&tenant(), &batch)).unwrap();
            c.apply(&Recorded {
                event: event.unwrap(),
                actor: system(),
                at: 1,
            });
            next += per;
        }
        assert_eq!(c.facts.len(), limits::MAX_FACTS_PER_CUSTOMER);
        // Changing a known fact is fine; one more key is not.
        let changed = vec![("fact.0".to_string(), "w".to_string())];
        assert!(decide(&c, facts_only(&tenant(), &changed)).is_ok());
        let one_more = facts(limits::MAX_FACTS_PER_CUSTOMER..limits::MAX_FACTS_PER_CUSTOMER + 1);
        let err = decide(&c, facts_only(&tenant(), &one_more)).unwrap_err();
        assert!(matches!(err, DomainError::InvalidField { field, .. } if field == "facts"));
    }
}
