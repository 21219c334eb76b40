//! Deterministic ids for things created from outside (UUIDv5), so a repeated
//! request finds what the first one created — forever, not only inside the
//! event log's duplicate window. Every id is derived inside its tenant, and a
//! customer system's keys inside that system (its token's subject): two shops may
//! both send `order-1001`.

use uuid::Uuid;

use crate::{Channel, IdentityKey, TenantId};

/// Namespace for ticket ids.
const TICKET_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b01);
/// Namespace for customer ids.
const CUSTOMER_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b02);
/// Namespace for identity claims.
const IDENTITY_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b03);

/// Joins the parts of a name. No part contains a newline: tenants, systems, keys and
/// identities are refused with control characters.
fn name(parts: &[&str]) -> String {
    parts.join("\n")
}

/// The id of the ticket that `system` opened with `idempotency_key` on `channel`.
pub fn ticket_id(tenant: &TenantId, system: &str, channel: Channel, idempotency_key: &str) -> Uuid {
    Uuid::new_v5(
        &TICKET_NAMESPACE,
        name(&[tenant.as_str(), system, channel.as_str(), idempotency_key]).as_bytes(),
    )
}

/// The id a new customer gets: derived from the strongest identity of their first
/// contact, so a retried first contact finds the same customer.
pub fn customer_id(tenant: &TenantId, strongest: &IdentityKey) -> Uuid {
    Uuid::new_v5(
        &CUSTOMER_NAMESPACE,
        name(&[tenant.as_str(), &strongest.as_key()]).as_bytes(),
    )
}

/// The id of the claim on an identity within a tenant (one small aggregate per
/// identity: its first event decides whose it is).
pub fn identity_id(tenant: &TenantId, key: &IdentityKey) -> Uuid {
    Uuid::new_v5(
        &IDENTITY_NAMESPACE,
        name(&[tenant.as_str(), &key.as_key()]).as_bytes(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(name: &str) -> TenantId {
        TenantId::parse("tenant", name).unwrap()
    }

    #[test]
    fn ticket_ids_are_per_tenant_system_channel_and_key() {
        let id = ticket_id(&t("a"), "shop", Channel::Email, "k1");
        assert_eq!(id, ticket_id(&t("a"), "shop", Channel::Email, "k1"));
        for other in [
            ticket_id(&t("b"), "shop", Channel::Email, "k1"),
            ticket_id(&t("a"), "shop-2", Channel::Email, "k1"),
            ticket_id(&t("a"), "shop", Channel::Chat, "k1"),
            ticket_id(&t("a"), "shop", Channel::Email, "k2"),
        ] {
            assert_ne!(id, other);
        }
    }

    #[test]
    fn identity_ids_are_per_tenant() {
        let email = IdentityKey::Email("ana@example.com".into());
        assert_eq!(identity_id(&t("a"), &email), identity_id(&t("a"), &email));
        assert_ne!(identity_id(&t("a"), &email), identity_id(&t("b"), &email));
        assert_ne!(identity_id(&t("a"), &email), customer_id(&t("a"), &email));
    }
}
