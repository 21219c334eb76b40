//! `Link` and `Unlink`: two customer records that are the same person.
//!
//! Rules: an agent links a record (`other`) into another (`into`) of the same
//! tenant; nothing moves: the linked record points to the one it is shown through,
//! and that one lists it, so tickets, facts and later contacts through either
//! record's identities go to one place. A link is one level deep: a record linked
//! into another cannot take links itself, and a record with links of its own cannot
//! be linked elsewhere. Linking again is a repeat (`Ok(None)`). `Unlink` writes the
//! compensating events: both records show as they were, and everything written while
//! they were linked stays where it was written.

use uuid::Uuid;

use super::{Customer, CustomerEvent};
use crate::{Action, Actor, DomainError, actor::authorize};

/// The events on (`into`, `other`) that link `other` into `into`.
pub type LinkEvents = (CustomerEvent, CustomerEvent);

fn refuse(action: &'static str, reason: impl Into<String>) -> DomainError {
    DomainError::Precondition {
        action,
        reason: reason.into(),
    }
}

fn exists(customer: &Customer, id: Uuid) -> Result<(), DomainError> {
    if customer.exists() {
        Ok(())
    } else {
        Err(DomainError::NotFound {
            kind: "customer",
            id: id.to_string(),
        })
    }
}

/// Records of two tenants never meet: the other one is not found, whoever asks.
fn same_tenant(into: &Customer, (other_id, other): (Uuid, &Customer)) -> Result<(), DomainError> {
    if into.tenant == other.tenant {
        Ok(())
    } else {
        Err(DomainError::NotFound {
            kind: "customer",
            id: other_id.to_string(),
        })
    }
}

/// Links record `other` into record `into`.
pub fn link(
    actor: &Actor,
    (into_id, into): (Uuid, &Customer),
    (other_id, other): (Uuid, &Customer),
) -> Result<Option<LinkEvents>, DomainError> {
    authorize(actor, Action::LinkCustomers)?;
    exists(into, into_id)?;
    exists(other, other_id)?;
    if into_id == other_id {
        return Err(DomainError::invalid(
            "other_customer_id",
            "cannot link a customer to itself",
        ));
    }
    same_tenant(into, (other_id, other))?;
    if other.linked_into == Some(into_id) {
        return Ok(None);
    }
    for (id, record) in [(into_id, into), (other_id, other)] {
        if record.forgotten_at.is_some() {
            return Err(refuse("link", format!("{id} was forgotten")));
        }
    }
    if let Some(elsewhere) = other.linked_into {
        return Err(refuse(
            "link",
            format!("{other_id} is already linked into {elsewhere}; unlink it first"),
        ));
    }
    if let Some(elsewhere) = into.linked_into {
        return Err(refuse(
            "link",
            format!("{into_id} is itself linked into {elsewhere}; link into that one"),
        ));
    }
    if !other.linked.is_empty() {
        return Err(refuse(
            "link",
            format!("{other_id} has records linked into it; link the other way round"),
        ));
    }
    Ok(Some((
        CustomerEvent::Absorbed {
            customer_id: other_id,
        },
        CustomerEvent::LinkedInto {
            customer_id: into_id,
        },
    )))
}

/// Undoes the link of `other` into `into`.
pub fn unlink(
    actor: &Actor,
    (into_id, into): (Uuid, &Customer),
    (other_id, other): (Uuid, &Customer),
) -> Result<LinkEvents, DomainError> {
    authorize(actor, Action::LinkCustomers)?;
    exists(into, into_id)?;
    exists(other, other_id)?;
    same_tenant(into, (other_id, other))?;
    if other.linked_into != Some(into_id) || !into.linked.contains(&other_id) {
        return Err(refuse(
            "unlink",
            format!("{other_id} is not linked into {into_id}"),
        ));
    }
    Ok((
        CustomerEvent::Unlinked {
            customer_id: other_id,
        },
        CustomerEvent::Unlinked {
            customer_id: into_id,
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Aggregate, Recorded, Role, TenantId};

    fn agent() -> Actor {
        Actor::new("ana", Role::Agent)
    }

    fn customer(tenant: &str) -> Customer {
        Customer {
            version: 1,
            tenant: TenantId::parse("tenant", tenant).unwrap(),
            ..Customer::default()
        }
    }

    fn apply(c: &mut Customer, event: CustomerEvent) {
        c.apply(&Recorded {
            event,
            actor: agent(),
            at: 1,
        });
    }

    #[test]
    fn link_then_unlink_restores_both() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (mut ca, mut cb) = (customer("t"), customer("t"));
        let (before_a, before_b) = (ca.clone(), cb.clone());
        let (ea, eb) = link(&agent(), (a, &ca), (b, &cb)).unwrap().unwrap();
        apply(&mut ca, ea);
        apply(&mut cb, eb);
        assert_eq!((cb.shown_as(b), ca.linked.len()), (a, 1));
        assert_eq!(link(&agent(), (a, &ca), (b, &cb)), Ok(None));
        let (ea, eb) = unlink(&agent(), (a, &ca), (b, &cb)).unwrap();
        apply(&mut ca, ea);
        apply(&mut cb, eb);
        assert_eq!(
            (&ca.linked, cb.linked_into),
            (&before_a.linked, before_b.linked_into)
        );
        assert!(unlink(&agent(), (a, &ca), (b, &cb)).is_err());
    }

    #[test]
    fn links_are_one_level_and_within_a_tenant() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let (mut ca, mut cb, cc) = (customer("t"), customer("t"), customer("t"));
        let (ea, eb) = link(&agent(), (a, &ca), (b, &cb)).unwrap().unwrap();
        apply(&mut ca, ea);
        apply(&mut cb, eb);
        // Into a linked record, or a record that has links, or itself: refused.
        assert!(matches!(
            link(&agent(), (b, &cb), (c, &cc)),
            Err(DomainError::Precondition { .. })
        ));
        assert!(matches!(
            link(&agent(), (c, &cc), (a, &ca)),
            Err(DomainError::Precondition { .. })
        ));
        assert!(matches!(
            link(&agent(), (c, &cc), (b, &cb)),
            Err(DomainError::Precondition { .. })
        ));
        assert!(matches!(
            link(&agent(), (a, &ca), (a, &ca)),
            Err(DomainError::InvalidField { .. })
        ));
        let other_tenant = customer("u");
        assert!(matches!(
            link(&agent(), (a, &ca), (c, &other_tenant)),
            Err(DomainError::NotFound { .. })
        ));
        assert!(matches!(
            link(&agent(), (a, &ca), (c, &Customer::default())),
            Err(DomainError::NotFound { .. })
        ));
        let shop = Actor::new("shop", Role::CustomerSystem);
        assert!(matches!(
            link(&shop, (a, &ca), (c, &cc)),
            Err(DomainError::Forbidden { .. })
        ));
    }
}
