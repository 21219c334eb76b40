//! Forgetting a customer (GDPR Art. 17): admins only, with a reason; recorded once.

use uuid::Uuid;

use super::{Customer, CustomerEvent};
use crate::{Action, Actor, DomainError, actor::authorize, limits};

/// Decides forgetting `customer` (whose identity claims are `claims`): `Ok(None)`
/// when they already are forgotten (forgetting again changes nothing).
pub fn forget(
    customer: &Customer,
    id: Uuid,
    actor: &Actor,
    reason: &str,
    claims: Vec<Uuid>,
) -> Result<Option<CustomerEvent>, DomainError> {
    authorize(actor, Action::ManagePersonalData)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DomainError::invalid(
            "reason",
            "say why the customer is forgotten (e.g. the request's reference)",
        ));
    }
    if reason.chars().count() > limits::MAX_REASON_CHARS {
        return Err(DomainError::invalid(
            "reason",
            format!("at most {} characters", limits::MAX_REASON_CHARS),
        ));
    }
    if !customer.exists() {
        return Err(DomainError::NotFound {
            kind: "customer",
            id: id.to_string(),
        });
    }
    if customer.forgotten_at.is_some() {
        return Ok(None);
    }
    Ok(Some(CustomerEvent::Forgotten {
        reason: reason.to_string(),
        released_claims: claims,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Aggregate, Recorded, Role};

    fn admin() -> Actor {
        Actor::new("root", Role::Admin)
    }

    fn known() -> Customer {
        Customer {
            version: 1,
            identities: [crate::IdentityKey::Email("ana@example.com".into())].into(),
            facts: [("name".to_string(), "Ana".to_string())].into(),
            ..Customer::default()
        }
    }

    #[test]
    fn only_admins_forget_with_a_reason_and_once() {
        let c = known();
        for role in [Role::Agent, Role::Manager, Role::CustomerSystem] {
            let err =
                forget(&c, Uuid::nil(), &Actor::new("x", role), "gdpr-1", vec![]).unwrap_err();
            assert!(matches!(err, DomainError::Forbidden { .. }), "{role:?}");
        }
        assert!(matches!(
            forget(&c, Uuid::nil(), &admin(), "  ", vec![]).unwrap_err(),
            DomainError::InvalidField { .. }
        ));
        assert!(matches!(
            forget(
                &Customer::default(),
                Uuid::nil(),
                &admin(),
                "gdpr-1",
                vec![]
            )
            .unwrap_err(),
            DomainError::NotFound { .. }
        ));
        let mut c = c;
        let event = forget(&c, Uuid::nil(), &admin(), "gdpr-1", vec![])
            .unwrap()
            .unwrap();
        c.apply(&Recorded {
            event,
            actor: admin(),
            at: 7,
        });
        assert!(c.identities.is_empty() && c.facts.is_empty());
        assert_eq!(c.forgotten_at, Some(7));
        assert_eq!(
            forget(&c, Uuid::nil(), &admin(), "gdpr-1", vec![]).unwrap(),
            None
        );
    }
}
