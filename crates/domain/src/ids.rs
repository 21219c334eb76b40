//! Deterministic ids for things created from outside, so a repeated request finds
//! what the first one created — forever, not only inside the event log's duplicate
//! window. Every id is derived inside its tenant, and a customer system's keys
//! inside that system (its token's subject): two shops may both send `order-1001`.
//!
//! Ids derived from personal data (an identity) are keyed hashes with the tenant's
//! secret, so an id never lets anyone without the secret confirm that a given email
//! was a customer. New customers get random ids (see [`crate::identity_claim::resolve`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::{Channel, IdentityKey, TenantId};

/// Namespace for ticket ids.
const TICKET_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b01);

/// A tenant's secret for keyed hashes of identities (kept by the key store).
#[derive(Clone)]
pub struct TenantSecret(pub [u8; 32]);

impl std::fmt::Debug for TenantSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantSecret(…)")
    }
}

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

/// Namespace for agents.
const POLICY_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b05);

/// The id of `tenant`'s SLA policy aggregate (`frontline.policy.<id>`).
pub fn sla_policy_id(tenant: &TenantId) -> Uuid {
    Uuid::new_v5(&POLICY_NAMESPACE, format!("sla/{tenant}").as_bytes())
}

const FEEDBACK_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b06);

/// The id of the product feedback `system` sends with `idempotency_key` in `tenant`
/// (`frontline.feedback.<id>`): a repeat of the key is the same feedback.
pub fn feedback_id(tenant: &TenantId, system: &str, idempotency_key: &str) -> Uuid {
    Uuid::new_v5(
        &FEEDBACK_NAMESPACE,
        name(&[tenant.as_str(), system, idempotency_key]).as_bytes(),
    )
}

const MACROS_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b07);

/// The id of `tenant`'s macro book (`frontline.macros.<id>`).
pub fn macro_book_id(tenant: &TenantId) -> Uuid {
    Uuid::new_v5(&MACROS_NAMESPACE, format!("macros/{tenant}").as_bytes())
}

const ARTICLE_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b08);

/// The id of `tenant`'s article `slug` (`frontline.article.<id>`).
pub fn article_id(tenant: &TenantId, slug: &str) -> Uuid {
    Uuid::new_v5(
        &ARTICLE_NAMESPACE,
        name(&[tenant.as_str(), slug]).as_bytes(),
    )
}

const SELF_SERVICE_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b09);

/// The id of the self-service answer `system` records with `idempotency_key` in
/// `tenant` (`frontline.selfservice.<id>`): a repeat of the key is the same answer.
pub fn self_service_id(tenant: &TenantId, system: &str, idempotency_key: &str) -> Uuid {
    Uuid::new_v5(
        &SELF_SERVICE_NAMESPACE,
        name(&[tenant.as_str(), system, idempotency_key]).as_bytes(),
    )
}

const AGENT_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_0c2e_6a3d_4e8f_9a71_3c4d_2e1f_0b04);

/// The id of the agent whose token subject is `agent_id` (one person, whatever
/// tenants they work for).
pub fn agent_id(agent_id: &str) -> Uuid {
    Uuid::new_v5(&AGENT_NAMESPACE, agent_id.as_bytes())
}

/// The id of the claim on an identity within a tenant (one small aggregate per
/// identity): HMAC-SHA-256 with the tenant's secret, as a version-8 UUID.
pub fn identity_id(secret: &TenantSecret, tenant: &TenantId, key: &IdentityKey) -> Uuid {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.0) else {
        unreachable!("HMAC accepts every key length")
    };
    mac.update(name(&["identity", tenant.as_str(), &key.as_key()]).as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
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
    fn identity_ids_are_keyed_per_tenant() {
        let email = IdentityKey::Email("ana@example.com".into());
        let (s1, s2) = (TenantSecret([1; 32]), TenantSecret([2; 32]));
        let id = identity_id(&s1, &t("a"), &email);
        assert_eq!(id, identity_id(&s1, &t("a"), &email));
        assert_ne!(id, identity_id(&s1, &t("b"), &email));
        assert_ne!(id, identity_id(&s2, &t("a"), &email), "another secret");
        assert_eq!(id.get_version_num(), 8);
    }
}
