//! The identity index: which customer an identity belongs to, decided by the log.
//!
//! Every identity of a tenant (an email, a phone number, or one customer system's
//! external id) is a small aggregate of its own, `frontline.identity.<id>`, whose id is
//! derived from the tenant and the identity ([`crate::ids::identity_id`]). Its first
//! event claims it for a customer, appended expecting the subject to be empty — so of
//! two concurrent first contacts with the same identity exactly one claims it, and
//! the other sees the claim and joins that customer. A contact writes its claims,
//! its ticket and its customer's record in one atomic batch.
//!
//! [`resolve`] says which customer a contact belongs to, given what its identities'
//! claims say: the customer of the strongest claimed identity (external id, then
//! email, then phone); the others a contact points to are recorded as possible
//! duplicates for an agent to resolve, never merged silently.

use std::fmt;

use uuid::Uuid;

use crate::{Aggregate, DomainError, Identity, Recorded, TenantId, ids};

/// One identity of a customer, normalised. Ordered strongest first.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum IdentityKey {
    /// A customer system's own id for the customer: only that system's, so two shops'
    /// customer "42" are two people.
    External {
        /// The customer system (its token's subject).
        system: String,
        /// Its id for the customer.
        id: String,
    },
    /// An email address.
    Email(String),
    /// An E.164 phone number.
    Phone(String),
}

impl IdentityKey {
    /// The identities of a normalised contact, strongest first; external ids belong
    /// to `system`.
    pub fn of(identity: &Identity, system: &str) -> Vec<IdentityKey> {
        let mut keys = Vec::new();
        if let Some(id) = &identity.external_id {
            keys.push(IdentityKey::External {
                system: system.to_string(),
                id: id.clone(),
            });
        }
        keys.extend(identity.email.clone().map(IdentityKey::Email));
        keys.extend(identity.phone.clone().map(IdentityKey::Phone));
        keys
    }

    /// A stable spelling, used in derived ids: `email:<email>`, `phone:<number>`,
    /// `external:<system>:<id>`.
    pub fn as_key(&self) -> String {
        match self {
            IdentityKey::External { system, id } => format!("external:{system}:{id}"),
            IdentityKey::Email(e) => format!("email:{e}"),
            IdentityKey::Phone(p) => format!("phone:{p}"),
        }
    }

    /// The kind, for messages: `external id`, `email`, `phone`.
    pub fn kind(&self) -> &'static str {
        match self {
            IdentityKey::External { .. } => "external id",
            IdentityKey::Email(_) => "email",
            IdentityKey::Phone(_) => "phone",
        }
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_key())
    }
}

/// The claim on one identity: whose it is. `IdentityClaim::default()` is unclaimed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdentityClaim {
    /// Events applied.
    pub version: u64,
    /// The customer it belongs to, once claimed.
    pub customer: Option<Uuid>,
    /// The tenant.
    pub tenant: TenantId,
}

/// What happened to an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityClaimEvent {
    /// The identity was claimed for a customer (its first event).
    Claimed {
        /// The tenant.
        tenant: TenantId,
        /// The identity.
        identity: IdentityKey,
        /// Whose it is.
        customer_id: Uuid,
    },
}

impl IdentityClaim {
    /// Claims an unclaimed identity for `customer_id`: `Ok(None)` when it already
    /// is theirs, `FAILED_PRECONDITION` when it is someone else's.
    pub fn claim(
        &self,
        tenant: &TenantId,
        identity: &IdentityKey,
        customer_id: Uuid,
    ) -> Result<Option<IdentityClaimEvent>, DomainError> {
        match self.customer {
            Some(owner) if owner == customer_id => Ok(None),
            Some(_) => Err(DomainError::Precondition {
                action: "claim an identity",
                reason: format!("the {} belongs to another customer", identity.kind()),
            }),
            None => Ok(Some(IdentityClaimEvent::Claimed {
                tenant: tenant.clone(),
                identity: identity.clone(),
                customer_id,
            })),
        }
    }
}

impl Aggregate for IdentityClaim {
    type Event = IdentityClaimEvent;
    const KIND: &'static str = "identity";
    const SNAPSHOT_SCHEMA: u32 = 1;
    /// One event, ever: the last event is the whole state.
    const SNAPSHOTS: bool = false;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<IdentityClaimEvent>) {
        let IdentityClaimEvent::Claimed {
            tenant,
            customer_id,
            ..
        } = &recorded.event;
        // The first claim decides; the log never holds a second (expected sequence 0).
        if self.customer.is_none() {
            self.customer = Some(*customer_id);
            self.tenant = tenant.clone();
        }
        self.version += 1;
    }

    fn skip_unknown(&mut self) {
        self.version += 1;
    }
}

/// Which customer a contact belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The customer.
    pub customer_id: Uuid,
    /// True when no identity of the contact is claimed: a new customer.
    pub is_new: bool,
    /// The contact's identities nobody has claimed yet: claimed for the customer now.
    pub to_claim: Vec<IdentityKey>,
    /// Other customers the contact's identities point to (possible duplicates).
    pub possible_duplicates: Vec<Uuid>,
}

/// Resolves a contact from its identities and the customer each one's claim leads
/// to (`None` when unclaimed; links already followed). `found` must not be empty.
pub fn resolve(tenant: &TenantId, found: &[(IdentityKey, Option<Uuid>)]) -> Resolution {
    let mut by_strength: Vec<&(IdentityKey, Option<Uuid>)> = found.iter().collect();
    by_strength.sort_by(|a, b| a.0.cmp(&b.0));
    let claimed_by = by_strength.iter().find_map(|(_, owner)| *owner);
    let (customer_id, is_new) = match (claimed_by, by_strength.first()) {
        (Some(owner), _) => (owner, false),
        (None, Some((strongest, _))) => (ids::customer_id(tenant, strongest), true),
        (None, None) => (Uuid::nil(), true),
    };
    let mut possible_duplicates: Vec<Uuid> = Vec::new();
    for (_, owner) in &by_strength {
        if let Some(owner) = owner
            && *owner != customer_id
            && !possible_duplicates.contains(owner)
        {
            possible_duplicates.push(*owner);
        }
    }
    Resolution {
        customer_id,
        is_new,
        to_claim: by_strength
            .iter()
            .filter(|(_, owner)| owner.is_none())
            .map(|(key, _)| key.clone())
            .collect(),
        possible_duplicates,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("tenant", "acme").unwrap()
    }

    fn email() -> IdentityKey {
        IdentityKey::Email("ana@example.com".into())
    }

    fn phone() -> IdentityKey {
        IdentityKey::Phone("+4930123456".into())
    }

    fn external(system: &str) -> IdentityKey {
        IdentityKey::External {
            system: system.into(),
            id: "42".into(),
        }
    }

    #[test]
    fn strongest_first_external_email_phone() {
        let mut keys = vec![phone(), email(), external("shop")];
        keys.sort();
        assert_eq!(keys, [external("shop"), email(), phone()]);
    }

    #[test]
    fn a_new_contact_gets_the_id_of_its_strongest_identity() {
        let r = resolve(&tenant(), &[(phone(), None), (email(), None)]);
        assert!(r.is_new);
        assert_eq!(r.customer_id, ids::customer_id(&tenant(), &email()));
        assert_eq!(r.to_claim, [email(), phone()]);
        assert!(r.possible_duplicates.is_empty());
    }

    #[test]
    fn a_known_identity_brings_the_contact_home_and_claims_the_new_ones() {
        let c = Uuid::from_u128(7);
        let r = resolve(&tenant(), &[(email(), None), (phone(), Some(c))]);
        assert_eq!((r.customer_id, r.is_new), (c, false));
        assert_eq!(r.to_claim, [email()]);
    }

    #[test]
    fn two_customers_go_to_the_strongest_and_the_other_is_a_possible_duplicate() {
        let (by_email, by_phone) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let r = resolve(
            &tenant(),
            &[(phone(), Some(by_phone)), (email(), Some(by_email))],
        );
        assert_eq!(r.customer_id, by_email);
        assert_eq!(r.possible_duplicates, [by_phone]);
        assert!(r.to_claim.is_empty());
    }

    #[test]
    fn a_claim_is_decided_once() {
        let mut claim = IdentityClaim::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let event = claim.claim(&tenant(), &email(), a).unwrap().unwrap();
        claim.apply(&Recorded {
            event,
            actor: crate::Actor::new("shop", crate::Role::CustomerSystem),
            at: 1,
        });
        assert_eq!(claim.claim(&tenant(), &email(), a), Ok(None));
        assert!(claim.claim(&tenant(), &email(), b).is_err());
    }
}
