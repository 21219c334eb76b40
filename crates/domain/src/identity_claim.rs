//! The identity index: which customer an identity belongs to, decided by the log.
//!
//! Every identity of a tenant (an email, a phone number, or one customer system's
//! external id) is a small aggregate of its own, `frontline.identity.<id>`, whose id is
//! a keyed hash of the tenant's secret and the identity ([`crate::ids::identity_id`]). Its first
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

use crate::{Aggregate, DomainError, Identity, Recorded, TenantId};

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
    /// The identity's customer was forgotten: the identity is free again, and the
    /// next contact with it is a new customer.
    Released {
        /// Whose it was.
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

    /// Releases the identity from forgotten customer `customer_id`: `None` when it
    /// is not (or no longer) theirs.
    pub fn release(&self, customer_id: Uuid) -> Option<IdentityClaimEvent> {
        (self.customer == Some(customer_id)).then_some(IdentityClaimEvent::Released { customer_id })
    }
}

impl Aggregate for IdentityClaim {
    type Event = IdentityClaimEvent;
    const KIND: &'static str = "identity";
    const SNAPSHOT_SCHEMA: u32 = 1;
    /// A claim, perhaps a release and a later claim: never worth a snapshot.
    const SNAPSHOTS: bool = false;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<IdentityClaimEvent>) {
        match &recorded.event {
            // A claim is appended expecting the claim's current sequence, so while
            // the identity is someone's the log never holds a second one.
            IdentityClaimEvent::Claimed {
                tenant,
                customer_id,
                ..
            } => {
                if self.customer.is_none() {
                    self.customer = Some(*customer_id);
                    self.tenant = tenant.clone();
                }
            }
            IdentityClaimEvent::Released { customer_id } => {
                if self.customer == Some(*customer_id) {
                    self.customer = None;
                }
            }
        }
        self.version += 1;
    }

    fn event_owner(&self, _id: &Uuid, event: &IdentityClaimEvent) -> Option<Uuid> {
        match event {
            // The identity itself is personal: sealed with its customer's key.
            IdentityClaimEvent::Claimed { customer_id, .. } => Some(*customer_id),
            IdentityClaimEvent::Released { .. } => None,
        }
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
/// to (`None` when unclaimed; links already followed). A new customer gets
/// `new_customer` (a fresh random id: ids derived from an identity would let anyone
/// confirm it, and would bring a forgotten customer back). `found` must not be empty.
pub fn resolve(found: &[(IdentityKey, Option<Uuid>)], new_customer: Uuid) -> Resolution {
    let mut by_strength: Vec<&(IdentityKey, Option<Uuid>)> = found.iter().collect();
    by_strength.sort_by(|a, b| a.0.cmp(&b.0));
    let claimed_by = by_strength.iter().find_map(|(_, owner)| *owner);
    let (customer_id, is_new) = match (claimed_by, by_strength.first()) {
        (Some(owner), _) => (owner, false),
        (None, Some(_)) => (new_customer, true),
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
    fn a_new_contact_gets_the_fresh_id() {
        let fresh = Uuid::from_u128(99);
        let r = resolve(&[(phone(), None), (email(), None)], fresh);
        assert!(r.is_new);
        assert_eq!(r.customer_id, fresh);
        assert_eq!(r.to_claim, [email(), phone()]);
        assert!(r.possible_duplicates.is_empty());
    }

    #[test]
    fn a_known_identity_brings_the_contact_home_and_claims_the_new_ones() {
        let c = Uuid::from_u128(7);
        let r = resolve(&[(email(), None), (phone(), Some(c))], Uuid::nil());
        assert_eq!((r.customer_id, r.is_new), (c, false));
        assert_eq!(r.to_claim, [email()]);
    }

    #[test]
    fn two_customers_go_to_the_strongest_and_the_other_is_a_possible_duplicate() {
        let (by_email, by_phone) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let r = resolve(
            &[(phone(), Some(by_phone)), (email(), Some(by_email))],
            Uuid::nil(),
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
        // Released (its customer forgotten), it is free for the next contact.
        assert_eq!(claim.release(b), None, "not b's to release");
        let released = claim.release(a).unwrap();
        claim.apply(&Recorded {
            event: released,
            actor: crate::Actor::new("admin", crate::Role::Admin),
            at: 2,
        });
        assert_eq!(claim.customer, None);
        assert!(claim.claim(&tenant(), &email(), b).unwrap().is_some());
    }
}
