//! Deterministic ids for things created from outside (UUIDv5), so a repeated
//! request finds what the first one created — forever, not only inside the
//! event log's duplicate window.

use uuid::Uuid;

use crate::{Channel, Identity};

/// Namespace for ticket ids.
const TICKET_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0a01);
/// Namespace for customer ids.
const CUSTOMER_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0a02);

/// The id of the ticket opened by `idempotency_key` on `channel`.
pub fn ticket_id(channel: Channel, idempotency_key: &str) -> Uuid {
    Uuid::new_v5(
        &TICKET_NAMESPACE,
        format!("{}:{idempotency_key}", channel.as_str()).as_bytes(),
    )
}

/// The id of the customer with this (normalised) identity, derived from its primary
/// identity; `None` for an empty identity.
pub fn customer_id(identity: &Identity) -> Option<Uuid> {
    identity
        .primary_key()
        .map(|key| Uuid::new_v5(&CUSTOMER_NAMESPACE, key.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_ticket_other_channel_other_ticket() {
        assert_eq!(
            ticket_id(Channel::Email, "k1"),
            ticket_id(Channel::Email, "k1")
        );
        assert_ne!(
            ticket_id(Channel::Email, "k1"),
            ticket_id(Channel::Chat, "k1")
        );
        assert_ne!(
            ticket_id(Channel::Email, "k1"),
            ticket_id(Channel::Email, "k2")
        );
    }

    #[test]
    fn customer_recognised_by_normalised_email() {
        let a = Identity::normalise("c", "Ana@Example.com", "", "").unwrap();
        let b = Identity::normalise("c", " ana@example.com", "", "").unwrap();
        assert_eq!(customer_id(&a), customer_id(&b));
        assert!(customer_id(&Identity::default()).is_none());
    }
}
