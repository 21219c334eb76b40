//! The customer aggregate: who they are (identities), what they told us (facts),
//! which tickets they opened, and which other records are the same person (links).
//! Facts are recorded once and shown on every later ticket, so nobody asks for a
//! serial number twice.
//!
//! # Where things go
//!
//! A new rule is a new file. Each command has its own file with its own field checks
//! (`validate`) and its own rule (`decide`): `record_contact.rs`; linking two records
//! touches both and lives in `link.rs`. This file holds the state, the command and
//! event enums, the checks every command shares (authorise → validate fields → the
//! command's own rule) and `apply`.

mod forget;
mod link;
mod nps;
mod record_contact;
mod tier;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::{
    Action, Actor, Aggregate, Channel, DomainError, IdentityKey, Recorded, TenantId, UnixMillis,
    actor::authorize, assignment::Tier,
};

pub use forget::forget;
pub use link::{link, unlink};

/// A customer's state, rebuilt from their events. `Customer::default()` is a
/// customer we have never heard from (version 0).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Customer {
    /// How many events have been applied (unknown ones included).
    pub version: u64,
    /// The tenant (set by the first contact).
    pub tenant: TenantId,
    /// Every identity we know, strongest first.
    pub identities: BTreeSet<IdentityKey>,
    /// Facts by key.
    pub facts: BTreeMap<String, String>,
    /// Tickets they opened, oldest first.
    pub ticket_ids: Vec<Uuid>,
    /// First contact.
    pub first_contact_at: Option<UnixMillis>,
    /// Last contact that told us something new or opened a ticket.
    pub last_contact_at: Option<UnixMillis>,
    /// The record this one is linked into (the same person): contacts, tickets and
    /// facts are shown there.
    pub linked_into: Option<Uuid>,
    /// Records linked into this one.
    pub linked: BTreeSet<Uuid>,
    /// Other records a contact's identities pointed to, for an agent to resolve.
    pub possible_duplicates: BTreeSet<Uuid>,
    /// When the customer was forgotten: identities and facts are gone, and their
    /// personal data in the log is unreadable (its key destroyed).
    pub forgotten_at: Option<UnixMillis>,
    /// The identity claims released when they were forgotten (keyed-hash ids).
    pub released_claims: Vec<Uuid>,
    /// The tier a manager set; `None`: the tenant's default.
    pub tier: Option<Tier>,
    /// An extended-tier customer's named agent.
    pub named_agent: Option<String>,
    /// Their latest NPS answer (0–10).
    #[serde(default)]
    pub nps: Option<u8>,
}

/// What a caller asks of a customer.
#[derive(Clone, Debug, PartialEq)]
pub enum CustomerCommand {
    /// The customer contacted us: remember new identities and facts, and the ticket
    /// the contact opened.
    RecordContact {
        /// Channel.
        channel: Channel,
        /// The tenant the contact came in for.
        tenant: TenantId,
        /// Identities given with this contact (normalised).
        identities: Vec<IdentityKey>,
        /// Facts given with this contact, as (key, value).
        facts: Vec<(String, String)>,
        /// The ticket this contact opened, if any.
        ticket_opened: Option<Uuid>,
        /// Other customers this contact's identities point to.
        possible_duplicates: Vec<Uuid>,
    },
    /// Put the customer in a tier of service (managers and admins).
    SetTier {
        /// The customer (for messages).
        customer_id: Uuid,
        /// The tier.
        tier: Tier,
        /// The named agent, extended tier only.
        named_agent: Option<String>,
    },
    /// The customer answered the NPS question (customer systems).
    RateNps {
        /// The customer (for messages).
        customer_id: Uuid,
        /// 0 to 10.
        score: u8,
        /// Optional comment.
        comment: String,
    },
}

/// What happened to a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustomerEvent {
    /// A contact that told us something new (the first one registers the customer).
    Contacted {
        /// Channel.
        channel: Channel,
        /// The tenant (on every contact; the first one decides).
        tenant: TenantId,
        /// Identities that are new.
        identities_added: Vec<IdentityKey>,
        /// Facts that are new or changed, as (key, value).
        facts_recorded: Vec<(String, String)>,
        /// The ticket opened, if any.
        ticket_opened: Option<Uuid>,
        /// Other customers this contact's identities pointed to, newly noticed.
        possible_duplicates: Vec<Uuid>,
    },
    /// This record was linked into another: the same person.
    LinkedInto {
        /// The record it now shows through.
        customer_id: Uuid,
    },
    /// Another record was linked into this one.
    Absorbed {
        /// The record linked in.
        customer_id: Uuid,
    },
    /// A link between this record and another was undone.
    Unlinked {
        /// The other record.
        customer_id: Uuid,
    },
    /// The customer asked to be forgotten: their data key is destroyed, so every
    /// personal field of theirs in the log reads as erased.
    Forgotten {
        /// Why (e.g. the request's reference); never personal data.
        reason: String,
        /// The identity claims released (their ids are keyed hashes).
        released_claims: Vec<Uuid>,
    },
    /// A manager set the customer's tier (and named agent).
    TierSet {
        /// The tier.
        tier: Tier,
        /// The named agent, extended tier only.
        named_agent: Option<String>,
    },
    /// The customer answered the NPS question (the latest answer counts).
    NpsRated {
        /// 0 to 10.
        score: u8,
        /// Their comment.
        comment: String,
    },
}

impl CustomerCommand {
    /// The action this command needs permission for.
    fn action(&self) -> Action {
        match self {
            CustomerCommand::RecordContact { .. } => Action::SubmitContact,
            CustomerCommand::SetTier { .. } => Action::SetTier,
            CustomerCommand::RateNps { .. } => Action::RecordFeedback,
        }
    }

    /// Checks every field against [`limits`](crate::limits); error fields name the
    /// request fields (`facts[i].key`).
    pub fn validate(&self) -> Result<(), DomainError> {
        match self {
            CustomerCommand::RecordContact { facts, .. } => record_contact::validate(facts),
            CustomerCommand::SetTier {
                tier, named_agent, ..
            } => tier::validate(*tier, named_agent.as_deref()),
            CustomerCommand::RateNps { score, comment, .. } => nps::validate(*score, comment),
        }
    }
}

impl Customer {
    /// Whether we have heard from this customer.
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// The record a view of this one shows through: itself, or the one it is
    /// linked into.
    pub fn shown_as(&self, own_id: Uuid) -> Uuid {
        self.linked_into.unwrap_or(own_id)
    }

    /// The facts of a person shown through this record: the facts of the records
    /// linked into it, and this record's own, which win a key both have.
    pub fn person_facts<'a>(
        &'a self,
        linked: impl IntoIterator<Item = &'a Customer>,
    ) -> BTreeMap<String, String> {
        let mut facts = BTreeMap::new();
        for record in linked {
            facts.extend(record.facts.clone());
        }
        facts.extend(self.facts.clone());
        facts
    }

    /// Decides what `command` by `actor` records: `Ok(Some(event))` to record,
    /// `Ok(None)` when it tells us nothing new, or why not (including the
    /// per-customer fact cap, [`MAX_FACTS_PER_CUSTOMER`](crate::limits::MAX_FACTS_PER_CUSTOMER)).
    ///
    /// The event is recorded at `now`: the time is decided here, with the event, not
    /// by whoever appends it.
    pub fn decide(
        &self,
        command: &CustomerCommand,
        actor: &Actor,
        now: UnixMillis,
    ) -> Result<Option<CustomerEvent>, DomainError> {
        // No rule reads the time yet; the caller records the event at `now`.
        let _ = now;
        authorize(actor, command.action())?;
        command.validate()?;
        match command {
            CustomerCommand::RecordContact {
                channel,
                tenant,
                identities,
                facts,
                ticket_opened,
                possible_duplicates,
            } => record_contact::decide(
                self,
                record_contact::Contact {
                    channel: *channel,
                    tenant,
                    identities,
                    facts,
                    ticket_opened: *ticket_opened,
                    possible_duplicates,
                },
            ),
            CustomerCommand::SetTier {
                customer_id,
                tier,
                named_agent,
            } => tier::decide(
                self,
                &customer_id.to_string(),
                *tier,
                named_agent.as_deref(),
            ),
            CustomerCommand::RateNps {
                customer_id,
                score,
                comment,
            } => nps::decide(self, &customer_id.to_string(), *score, comment),
        }
    }
}

impl Aggregate for Customer {
    type Event = CustomerEvent;
    const KIND: &'static str = "customer";
    /// 5: tier and named agent, NPS.
    const SNAPSHOT_SCHEMA: u32 = 5;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<CustomerEvent>) {
        match &recorded.event {
            CustomerEvent::Contacted {
                tenant,
                identities_added,
                facts_recorded,
                ticket_opened,
                possible_duplicates,
                ..
            } => {
                if self.tenant.is_empty() {
                    self.tenant = tenant.clone();
                }
                self.identities.extend(identities_added.iter().cloned());
                for (k, v) in facts_recorded {
                    self.facts.insert(k.clone(), v.clone());
                }
                self.ticket_ids.extend(ticket_opened);
                self.possible_duplicates
                    .extend(possible_duplicates.iter().copied());
                self.first_contact_at.get_or_insert(recorded.at);
                self.last_contact_at = Some(recorded.at);
            }
            CustomerEvent::LinkedInto { customer_id } => {
                self.linked_into = Some(*customer_id);
                self.possible_duplicates.remove(customer_id);
            }
            CustomerEvent::Absorbed { customer_id } => {
                self.linked.insert(*customer_id);
                self.possible_duplicates.remove(customer_id);
            }
            CustomerEvent::Unlinked { customer_id } => {
                self.linked.remove(customer_id);
                if self.linked_into == Some(*customer_id) {
                    self.linked_into = None;
                }
            }
            CustomerEvent::Forgotten {
                released_claims, ..
            } => {
                self.identities.clear();
                self.facts.clear();
                if self.forgotten_at.is_none() {
                    self.forgotten_at = Some(recorded.at);
                    self.released_claims = released_claims.clone();
                }
            }
            CustomerEvent::TierSet { tier, named_agent } => {
                self.tier = Some(*tier);
                self.named_agent = named_agent.clone();
            }
            CustomerEvent::NpsRated { score, .. } => self.nps = Some(*score),
        }
        self.version += 1;
    }

    fn data_owner(&self, id: &Uuid) -> Option<Uuid> {
        Some(*id)
    }

    fn skip_unknown(&mut self) {
        self.version += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Role;

    fn system() -> Actor {
        Actor::new("web-shop", Role::CustomerSystem)
    }

    fn contact(facts: &[(&str, &str)]) -> CustomerCommand {
        CustomerCommand::RecordContact {
            channel: Channel::Email,
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            identities: vec![IdentityKey::Email("ana@example.com".into())],
            facts: facts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ticket_opened: None,
            possible_duplicates: Vec::new(),
        }
    }

    #[test]
    fn agents_do_not_submit_contacts() {
        let err = Customer::default()
            .decide(&contact(&[]), &Actor::new("ana", Role::Agent), 1)
            .unwrap_err();
        assert!(matches!(err, DomainError::Forbidden { .. }));
    }

    #[test]
    fn the_event_is_applied_at_its_time_and_the_first_tenant_stays() {
        let mut c = Customer::default();
        for at in [5, 9] {
            let event = c
                .decide(&contact(&[("serial", &at.to_string())]), &system(), at)
                .unwrap()
                .unwrap();
            c.apply(&Recorded {
                event,
                actor: system(),
                at,
            });
        }
        assert_eq!((c.first_contact_at, c.last_contact_at), (Some(5), Some(9)));
        assert_eq!(c.tenant.as_str(), "acme");
    }

    #[test]
    fn skip_unknown_counts_the_version_and_changes_nothing_else() {
        let mut c = Customer::default();
        c.skip_unknown();
        assert_eq!(
            c,
            Customer {
                version: 1,
                ..Customer::default()
            }
        );
        assert!(c.exists());
    }
}
