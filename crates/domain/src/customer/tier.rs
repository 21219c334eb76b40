//! `SetTier`: a manager puts a customer in a tier of service, and names the agent
//! of an extended-tier customer.
//!
//! Rules:
//! - Only an extended-tier customer has a named agent.
//! - The tier is the person's: set it on the record others are linked into, not on
//!   a linked one.
//! - A forgotten customer's tier is not changed.
//! - Setting what is already set records nothing.

use super::{Customer, CustomerEvent};
use crate::{DomainError, assignment::Tier, limits};

/// The command's fields.
pub(super) fn validate(tier: Tier, named_agent: Option<&str>) -> Result<(), DomainError> {
    match named_agent {
        Some(_) if tier != Tier::Extended => Err(DomainError::invalid(
            "named_agent_id",
            "only an extended-tier customer has a named agent",
        )),
        Some(agent) => limits::idempotency_key("named_agent_id", agent),
        None => Ok(()),
    }
}

/// Sets the tier of `customer` (`id` for messages).
pub(super) fn decide(
    customer: &Customer,
    id: &str,
    tier: Tier,
    named_agent: Option<&str>,
) -> Result<Option<CustomerEvent>, DomainError> {
    if !customer.exists() {
        return Err(DomainError::NotFound {
            kind: "customer",
            id: id.to_string(),
        });
    }
    let refuse = |reason: String| DomainError::Precondition {
        action: "set the tier",
        reason,
    };
    if customer.forgotten_at.is_some() {
        return Err(refuse(format!("customer {id} was forgotten")));
    }
    if let Some(primary) = customer.linked_into {
        return Err(refuse(format!(
            "customer {id} is linked into {primary}: set the tier there"
        )));
    }
    let named_agent = named_agent.map(str::to_string);
    if customer.tier == Some(tier) && customer.named_agent == named_agent {
        return Ok(None);
    }
    Ok(Some(CustomerEvent::TierSet { tier, named_agent }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn known() -> Customer {
        Customer {
            version: 1,
            ..Customer::default()
        }
    }

    #[test]
    fn a_named_agent_only_for_the_extended_tier() {
        assert!(validate(Tier::Extended, Some("ana")).is_ok());
        assert!(validate(Tier::Standard, None).is_ok());
        for tier in [Tier::Basic, Tier::Standard] {
            assert!(matches!(
                validate(tier, Some("ana")),
                Err(DomainError::InvalidField { field, .. }) if field == "named_agent_id"
            ));
        }
        assert!(validate(Tier::Extended, Some("")).is_err());
    }

    #[test]
    fn set_once_then_nothing_new() {
        let c = known();
        let event = decide(&c, "c", Tier::Extended, Some("ana"))
            .unwrap()
            .unwrap();
        assert_eq!(
            event,
            CustomerEvent::TierSet {
                tier: Tier::Extended,
                named_agent: Some("ana".into())
            }
        );
        let set = Customer {
            tier: Some(Tier::Extended),
            named_agent: Some("ana".into()),
            ..c
        };
        assert_eq!(decide(&set, "c", Tier::Extended, Some("ana")), Ok(None));
        assert!(
            decide(&set, "c", Tier::Extended, Some("bo"))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn unknown_forgotten_and_linked_records_are_refused() {
        assert!(matches!(
            decide(&Customer::default(), "c", Tier::Basic, None),
            Err(DomainError::NotFound { .. })
        ));
        let forgotten = Customer {
            forgotten_at: Some(1),
            ..known()
        };
        assert!(matches!(
            decide(&forgotten, "c", Tier::Basic, None),
            Err(DomainError::Precondition { .. })
        ));
        let linked = Customer {
            linked_into: Some(uuid::Uuid::from_u128(2)),
            ..known()
        };
        assert!(matches!(
            decide(&linked, "c", Tier::Basic, None),
            Err(DomainError::Precondition { reason, .. }) if reason.contains("set the tier there")
        ));
    }
}
