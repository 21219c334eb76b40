//! `RateNps`: how likely the customer is to recommend us (0 to 10), with a comment.
//!
//! Rules: the answer is the person's — recorded on the record others are linked
//! into (the service sends it there); a forgotten customer's is not recorded; a
//! later answer replaces the earlier one.

use super::{Customer, CustomerEvent};
use crate::{
    DomainError,
    satisfaction::{self, NPS_RANGE},
};

/// The answer's fields.
pub(super) fn validate(score: u8, comment: &str) -> Result<(), DomainError> {
    satisfaction::validate(NPS_RANGE, score, comment)
}

/// Records the answer on `customer` (`id` for messages).
pub(super) fn decide(
    customer: &Customer,
    id: &str,
    score: u8,
    comment: &str,
) -> Result<Option<CustomerEvent>, DomainError> {
    if !customer.exists() {
        return Err(DomainError::NotFound {
            kind: "customer",
            id: id.to_string(),
        });
    }
    let refuse = |reason: String| DomainError::Precondition {
        action: "record the NPS answer",
        reason,
    };
    if customer.forgotten_at.is_some() {
        return Err(refuse(format!("customer {id} was forgotten")));
    }
    if let Some(primary) = customer.linked_into {
        return Err(refuse(format!(
            "customer {id} is linked into {primary}: record it there"
        )));
    }
    Ok(Some(CustomerEvent::NpsRated {
        score,
        comment: comment.to_string(),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn known() -> Customer {
        Customer {
            version: 1,
            ..Customer::default()
        }
    }

    #[test]
    fn an_answer_is_recorded_on_the_person() {
        assert_eq!(
            decide(&known(), "c", 9, "great"),
            Ok(Some(CustomerEvent::NpsRated {
                score: 9,
                comment: "great".into()
            }))
        );
        let linked = Customer {
            linked_into: Some(Uuid::from_u128(2)),
            ..known()
        };
        assert!(matches!(
            decide(&linked, "c", 9, ""),
            Err(DomainError::Precondition { .. })
        ));
        let forgotten = Customer {
            forgotten_at: Some(1),
            ..known()
        };
        assert!(matches!(
            decide(&forgotten, "c", 9, ""),
            Err(DomainError::Precondition { .. })
        ));
        assert!(matches!(
            decide(&Customer::default(), "c", 9, ""),
            Err(DomainError::NotFound { .. })
        ));
    }

    #[test]
    fn scores_are_zero_to_ten() {
        assert!(validate(11, "").is_err());
        assert_eq!(validate(0, ""), Ok(()));
    }
}
