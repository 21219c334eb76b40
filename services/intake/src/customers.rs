//! Who a customer is: finding them by any identity (the identity index on the log),
//! following links between records of the same person, the view a caller sees, and
//! linking or unlinking two records.

use std::collections::HashMap;

use frontline_domain::{
    Caller, Customer, DomainError, IdentityClaim, IdentityKey, TenantId, customer, ids,
};
use frontline_eventlog::{Batch, EventLog, EventMeta, Loaded, LogError};
use frontline_proto::{convert, v1};
use frontline_runtime::{ApiError, now_millis};
use futures::future::try_join_all;
use sqlx::PgPool;
use uuid::Uuid;

use crate::open_tickets;

/// Customer records loaded during one request, by id.
pub type Records = HashMap<Uuid, Loaded<Customer>>;

/// What the log says about one identity of a contact.
#[derive(Debug)]
pub struct Found {
    /// The identity.
    pub key: IdentityKey,
    /// Its claim aggregate's id.
    pub claim_id: Uuid,
    /// Its claim (unclaimed: version 0).
    pub claim: Loaded<IdentityClaim>,
    /// The customer the claim leads to, links followed.
    pub customer: Option<Uuid>,
}

/// Loads the claims of `keys` and the customers they lead to (into `records`),
/// following a record linked into another to that one.
pub async fn find(
    log: &EventLog,
    tenant: &TenantId,
    keys: &[IdentityKey],
    records: &mut Records,
) -> Result<Vec<Found>, LogError> {
    let secret = ids::TenantSecret(log.tenant_secret(tenant.as_str()).await?);
    let claims = try_join_all(keys.iter().map(|key| {
        let claim_id = ids::identity_id(&secret, tenant, key);
        async move {
            let claim = log.load::<IdentityClaim>(&claim_id).await?;
            Ok::<_, LogError>(Found {
                key: key.clone(),
                claim_id,
                claim,
                customer: None,
            })
        }
    }))
    .await?;
    let owners: Vec<Uuid> = claims
        .iter()
        .filter_map(|f| f.claim.state.customer)
        .collect();
    load_missing(log, &owners, records).await?;
    let linked: Vec<Uuid> = owners
        .iter()
        .filter_map(|id| records.get(id).and_then(|r| r.state.linked_into))
        .collect();
    load_missing(log, &linked, records).await?;
    Ok(claims
        .into_iter()
        .map(|mut found| {
            found.customer = found
                .claim
                .state
                .customer
                .map(|id| records.get(&id).map_or(id, |r| r.state.shown_as(id)));
            found
        })
        .collect())
}

/// Loads the records of `ids` not in `records` yet.
pub async fn load_missing(
    log: &EventLog,
    ids: &[Uuid],
    records: &mut Records,
) -> Result<(), LogError> {
    let mut missing: Vec<Uuid> = ids
        .iter()
        .filter(|id| !records.contains_key(id))
        .copied()
        .collect();
    missing.sort();
    missing.dedup();
    let loaded = try_join_all(missing.iter().map(|id| log.load::<Customer>(id))).await?;
    records.extend(missing.into_iter().zip(loaded));
    Ok(())
}

/// Checks that `customer` is a record of `tenant` the caller sees (NOT_FOUND
/// otherwise) and was not forgotten (FAILED_PRECONDITION for `action`: nothing new
/// is kept about a forgotten person).
pub async fn living(
    log: &EventLog,
    caller: &Caller,
    tenant: &TenantId,
    customer: Uuid,
    action: &'static str,
) -> Result<(), ApiError> {
    let record = load_visible(log, caller, customer).await?;
    if record.state.tenant != *tenant {
        return Err(DomainError::NotFound {
            kind: "customer",
            id: customer.to_string(),
        }
        .into());
    }
    if record.state.forgotten_at.is_some() {
        return Err(DomainError::Precondition {
            action,
            reason: format!("customer {customer} was forgotten"),
        }
        .into());
    }
    Ok(())
}

/// The customer record `id` as `caller` may see it: NOT_FOUND when it does not exist
/// or belongs to a tenant the caller does not cover.
pub async fn load_visible(
    log: &EventLog,
    caller: &Caller,
    id: Uuid,
) -> Result<Loaded<Customer>, ApiError> {
    let loaded = log.load::<Customer>(&id).await?;
    caller.check_sees("customer", &id, &loaded.state.tenant)?;
    if !loaded.state.exists() {
        return Err(not_found(id));
    }
    Ok(loaded)
}

fn not_found(id: Uuid) -> ApiError {
    DomainError::NotFound {
        kind: "customer",
        id: id.to_string(),
    }
    .into()
}

/// The customer an identity finds in the caller's tenant, links followed.
pub async fn by_identity(
    log: &EventLog,
    tenant: &TenantId,
    keys: &[IdentityKey],
) -> Result<Uuid, ApiError> {
    let mut records = Records::new();
    let found = find(log, tenant, keys, &mut records).await?;
    let mut claimed: Vec<&Found> = found.iter().filter(|f| f.customer.is_some()).collect();
    claimed.sort_by(|a, b| a.key.cmp(&b.key));
    claimed
        .first()
        .and_then(|f| f.customer)
        .ok_or_else(|| ApiError::NotFound("no customer is known by this identity".into()))
}

/// A record and the records linked into it, loaded.
#[derive(Debug)]
pub struct Person {
    /// The record shown.
    pub id: Uuid,
    /// Its state.
    pub record: Loaded<Customer>,
    /// The records linked into it, by id.
    pub linked: Vec<(Uuid, Customer)>,
}

impl Person {
    /// Loads the record `id` shows through, and the records linked into that one.
    pub async fn load(
        log: &EventLog,
        id: Uuid,
        record: Loaded<Customer>,
    ) -> Result<Person, ApiError> {
        let (id, record) = match record.state.linked_into {
            Some(into) => (into, log.load::<Customer>(&into).await?),
            None => (id, record),
        };
        let linked_ids: Vec<Uuid> = record.state.linked.iter().copied().collect();
        let linked = try_join_all(linked_ids.iter().map(|l| log.load::<Customer>(l))).await?;
        Ok(Person {
            id,
            record,
            linked: linked_ids
                .into_iter()
                .zip(linked.into_iter().map(|l| l.state))
                .collect(),
        })
    }

    /// Every record of the person: the shown one first.
    pub fn records(&self) -> impl Iterator<Item = (Uuid, &Customer)> {
        std::iter::once((self.id, &self.record.state))
            .chain(self.linked.iter().map(|(id, c)| (*id, c)))
    }

    /// Facts of every record; the shown record's value wins.
    pub fn facts(&self) -> std::collections::BTreeMap<String, String> {
        self.record
            .state
            .person_facts(self.linked.iter().map(|(_, c)| c))
    }

    /// The person's open tickets (every record's), newest first, except `except`.
    pub async fn open_tickets(
        &self,
        log: &EventLog,
        db: &PgPool,
        except: Option<Uuid>,
        after: Option<u64>,
    ) -> Result<Vec<v1::TicketSummary>, ApiError> {
        let lists =
            try_join_all(
                self.records().map(|(id, c)| {
                    let ticket_ids = c.ticket_ids.clone();
                    async move {
                        open_tickets::open_tickets(log, db, id, &ticket_ids, except, after).await
                    }
                }),
            )
            .await?;
        let mut all: Vec<v1::TicketSummary> = lists.into_iter().flatten().collect();
        all.sort_by(|a, b| {
            let at = |t: &v1::TicketSummary| t.opened_at.as_ref().map(convert::millis);
            at(b).cmp(&at(a))
        });
        Ok(all)
    }

    /// The wire view for `caller`: customer systems see only their own external ids
    /// and no possible duplicates.
    pub async fn view(
        &self,
        log: &EventLog,
        db: &PgPool,
        caller: &Caller,
    ) -> Result<v1::Customer, ApiError> {
        let staff = caller.actor.role.is_staff();
        let mut identities: Vec<IdentityKey> = self
            .records()
            .flat_map(|(_, c)| c.identities.iter().cloned())
            .filter(|key| match key {
                IdentityKey::External { system, .. } => staff || *system == caller.actor.id,
                _ => true,
            })
            .collect();
        identities.sort();
        identities.dedup();
        let mut ticket_ids = Vec::new();
        for (id, c) in self.records() {
            ticket_ids.extend(c.ticket_ids.iter().copied());
            ticket_ids.extend(open_tickets::ticket_ids(db, id).await?);
        }
        let mut seen = std::collections::HashSet::new();
        ticket_ids.retain(|t| seen.insert(*t));
        let state = &self.record.state;
        Ok(v1::Customer {
            customer_id: self.id.to_string(),
            identity: Some(convert::first_of_each(&identities)),
            identities: identities.iter().map(convert::identity_key).collect(),
            facts: convert::facts(&self.facts()),
            open_tickets: self.open_tickets(log, db, None, None).await?,
            ticket_ids: ticket_ids.iter().map(Uuid::to_string).collect(),
            first_contact_at: self
                .records()
                .filter_map(|(_, c)| c.first_contact_at)
                .min()
                .map(convert::timestamp),
            last_contact_at: self
                .records()
                .filter_map(|(_, c)| c.last_contact_at)
                .max()
                .map(convert::timestamp),
            version: state.version,
            tenant: state.tenant.to_string(),
            linked_customer_ids: state.linked.iter().map(Uuid::to_string).collect(),
            possible_duplicates: if staff {
                state
                    .possible_duplicates
                    .iter()
                    .map(Uuid::to_string)
                    .collect()
            } else {
                Vec::new()
            },
            forgotten_at: state.forgotten_at.map(convert::timestamp),
            nps_category: convert::nps_category(state.nps),
        })
    }
}

/// Links (`link`) or unlinks the record `other` into `into`, for `caller`; both
/// events are stored together or not at all. Returns both records after.
pub async fn relink(
    log: &EventLog,
    caller: &Caller,
    meta: &EventMeta,
    (into_id, other_id): (Uuid, Uuid),
    link: bool,
    max_attempts: u32,
) -> Result<(Loaded<Customer>, Loaded<Customer>), ApiError> {
    for attempt in 0..max_attempts.max(1) {
        if attempt > 0 {
            frontline_eventlog::retry_pause(attempt).await;
        }
        let (into, other) = tokio::try_join!(
            load_visible(log, caller, into_id),
            load_visible(log, caller, other_id)
        )?;
        let target = (into_id, &into.state);
        let source = (other_id, &other.state);
        let events = if link {
            customer::link(&caller.actor, target, source)?
        } else {
            Some(customer::unlink(&caller.actor, target, source)?)
        };
        let Some((on_into, on_other)) = events else {
            return Ok((into, other));
        };
        let now = now_millis();
        let mut batch = Batch::new();
        let staged_into = batch.stage(&into_id, &into, on_into, meta, now);
        let staged_other = batch.stage(&other_id, &other, on_other, meta, now);
        match log.commit(batch).await {
            Ok(committed) => {
                return Ok((
                    committed.loaded(log, staged_into),
                    committed.loaded(log, staged_other),
                ));
            }
            Err(LogError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Aborted(
        "the customers kept changing; retry the call".into(),
    ))
}
