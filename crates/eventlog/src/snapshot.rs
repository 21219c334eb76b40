//! Aggregate snapshots in a JetStream KV bucket: the state with the stream sequence
//! of the last event it includes. Never the truth — a missing, stale or unreadable
//! snapshot only makes loading replay more.
//!
//! A state holding personal data (its aggregate names a data owner) is stored
//! sealed with the owner's key, so a forgotten customer's snapshot no longer opens
//! (and is not written again).

use async_nats::jetstream::{self, kv};
use frontline_domain::Aggregate;
use frontline_privacy::{Fields, PersonalKey};
use uuid::Uuid;

use crate::{Loaded, LogConfig, LogError, personal::PersonalData};

/// Snapshots larger than this are not written (NATS' default max payload is 1 MiB);
/// that is logged and counted, never silent. Aggregates keep only what `decide`
/// needs, so only an extreme aggregate gets near it.
const MAX_SNAPSHOT_BYTES: usize = 900 * 1024;

/// A stored snapshot. `schema` is the aggregate's `SNAPSHOT_SCHEMA` when written;
/// a snapshot of another schema is ignored (the aggregate replays instead).
/// The state is either in the clear (`state`) or sealed for `sealed_for`
/// (`sealed`: the state's JSON, sealed as field `state` of place `snapshot.<key>`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Record<A> {
    schema: u32,
    sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_for: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    state: Option<A>,
}

fn none<A>() -> Option<A> {
    None
}

/// The snapshot store.
#[derive(Clone, Debug)]
pub struct Snapshots {
    bucket: kv::Store,
    personal: PersonalData,
}

impl Snapshots {
    pub(crate) async fn open(
        js: &jetstream::Context,
        config: &LogConfig,
        personal: PersonalData,
    ) -> Result<Self, LogError> {
        let name = config.snapshot_bucket();
        let bucket = match js.get_key_value(&name).await {
            Ok(bucket) => bucket,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: name.clone(),
                    description: "Frontline aggregate snapshots (a cache; the log is the truth)"
                        .into(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: config.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| LogError::Setup(format!("snapshot bucket {name}: {e}")))?,
        };
        Ok(Snapshots { bucket, personal })
    }

    /// The key of an aggregate's snapshot: `<kind>.<id>`.
    pub fn key<A: Aggregate>(id: &Uuid) -> String {
        format!("{}.{id}", A::KIND)
    }

    /// The snapshot of `id`, if there is a readable one.
    pub async fn load<A: Aggregate>(&self, id: &Uuid) -> Option<Loaded<A>> {
        let key = Self::key::<A>(id);
        let bytes = match self.bucket.get(&key).await {
            Ok(bytes) => bytes?,
            Err(e) => {
                tracing::warn!(%key, error = %e, "snapshot unreadable; replaying");
                return None;
            }
        };
        // A snapshot of another schema may not even parse as this state: look at
        // the schema first.
        #[derive(serde::Deserialize)]
        struct Schema {
            schema: u32,
        }
        if serde_json::from_slice::<Schema>(&bytes)
            .ok()
            .map(|s| s.schema)
            != Some(A::SNAPSHOT_SCHEMA)
        {
            tracing::debug!(%key, "snapshot of another schema; replaying");
            return None;
        }
        let record = match serde_json::from_slice::<Record<A>>(&bytes) {
            Ok(r) if r.schema == A::SNAPSHOT_SCHEMA => r,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(%key, error = %e, "snapshot undecodable; replaying");
                return None;
            }
        };
        let state = match (record.state, record.sealed, record.sealed_for) {
            (Some(state), None, None) => state,
            (None, Some(sealed), Some(owner)) => self.open_state(&key, owner, sealed).await?,
            _ => {
                tracing::warn!(%key, "snapshot neither clear nor sealed; replaying");
                return None;
            }
        };
        Some(Loaded {
            state,
            sequence: record.sequence,
            replayed: 0,
        })
    }

    /// A sealed state: `None` (replay) when its owner was forgotten or it does not
    /// open.
    async fn open_state<A: Aggregate>(&self, key: &str, owner: Uuid, sealed: String) -> Option<A> {
        let data_key = self
            .personal
            .for_reading(&owner.to_string(), LogError::Setup)
            .await
            .inspect_err(|e| tracing::warn!(%key, error = %e, "snapshot key unreadable; replaying"))
            .ok()?;
        if matches!(data_key, PersonalKey::Forgotten) {
            return None;
        }
        let place = format!("snapshot.{key}");
        let json = Fields::new(&data_key, &place)
            .open("state", sealed)
            .inspect_err(|e| tracing::warn!(%key, error = %e, "snapshot does not open; replaying"))
            .ok()?;
        serde_json::from_str(&json)
            .inspect_err(|e| tracing::warn!(%key, error = %e, "snapshot undecodable; replaying"))
            .ok()
    }

    /// Writes the snapshot of `id`.
    pub async fn save<A: Aggregate>(&self, id: &Uuid, loaded: &Loaded<A>) -> Result<(), LogError> {
        let encoding = |e: serde_json::Error| LogError::Setup(format!("snapshot encoding: {e}"));
        let key = Self::key::<A>(id);
        let mut record = Record {
            schema: A::SNAPSHOT_SCHEMA,
            sequence: loaded.sequence,
            sealed_for: None,
            sealed: None,
            state: Some(&loaded.state),
        };
        match self
            .personal
            .for_writing(loaded.state.data_owner(id))
            .await?
        {
            (PersonalKey::Nobody, _) => {}
            // Never again in the clear, nor sealed: the log replays it.
            (PersonalKey::Forgotten, _) => return Ok(()),
            (data_key @ PersonalKey::Live(_), owner) => {
                let json = serde_json::to_string(&loaded.state).map_err(encoding)?;
                let place = format!("snapshot.{key}");
                record.sealed = Some(Fields::new(&data_key, &place).seal("state", json));
                record.sealed_for = owner;
                record.state = None;
            }
        }
        let bytes = serde_json::to_vec(&record).map_err(encoding)?;
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            skipped::<A>("too_large");
            tracing::warn!(
                aggregate = A::KIND,
                %id,
                size = bytes.len(),
                limit = MAX_SNAPSHOT_BYTES,
                "snapshot too large to keep; this aggregate replays its history on every load"
            );
            return Ok(());
        }
        self.bucket
            .put(key, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| LogError::unavailable("snapshot write", e))
    }

    /// Writes the snapshot without making the caller wait; a failure is logged only.
    pub(crate) fn save_in_background<A: Aggregate>(&self, id: &Uuid, loaded: &Loaded<A>) {
        let (this, id, loaded) = (self.clone(), *id, loaded.clone());
        tokio::spawn(async move {
            if let Err(e) = this.save(&id, &loaded).await {
                skipped::<A>("write_failed");
                tracing::warn!(aggregate = A::KIND, %id, error = %e, "snapshot not written");
            }
        });
    }

    /// Whether a snapshot of `id` is stored, and at which stream sequence.
    pub async fn sequence<A: Aggregate>(&self, id: &Uuid) -> Option<u64> {
        self.load::<A>(id).await.map(|s| s.sequence)
    }

    /// Deletes the snapshot of `id` (operations and tests; loading still works).
    pub async fn delete<A: Aggregate>(&self, id: &Uuid) -> Result<(), LogError> {
        self.bucket
            .delete(Self::key::<A>(id))
            .await
            .map_err(|e| LogError::unavailable("snapshot delete", e))
    }
}

/// Counts a snapshot that was not kept (`frontline_snapshots_skipped_total`).
fn skipped<A: Aggregate>(reason: &'static str) {
    metrics::counter!(
        "frontline_snapshots_skipped_total",
        "aggregate" => A::KIND,
        "reason" => reason
    )
    .increment(1);
}

/// Hostile snapshots: mutations of valid stored records (clear and sealed) and
/// arbitrary bytes go through the steps of [`Snapshots::load`] and
/// `Snapshots::open_state` (schema, record, sealed state, state JSON) for every
/// aggregate: never a panic, and a state that does decode re-encodes to itself and
/// can be decided on. `PROPTEST_CASES` (default 256); `make soak` runs 1 000 000.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod prop_tests {
    use std::sync::OnceLock;

    use frontline_domain::{
        Actor, Agent, Channel, Customer, CustomerCommand, IdentityClaim, Opening, Priority,
        Recorded, Role, TenantId, Ticket, TicketCommand, article::Article,
        feedback::ProductFeedback, macros::MacroBook, self_service::SelfService,
        sla::policy::PolicyRecord,
    };
    use frontline_privacy::DataKey;
    use proptest::prelude::*;

    use super::*;

    const ID: Uuid = Uuid::from_u128(7);

    fn data_key() -> &'static PersonalKey {
        static KEY: OnceLock<PersonalKey> = OnceLock::new();
        KEY.get_or_init(|| PersonalKey::Live(DataKey::generate()))
    }

    /// [`Snapshots::load`]'s decoding, the key store answering with `data_key()`.
    fn parse<A: Aggregate>(bytes: &[u8]) -> Option<A> {
        #[derive(serde::Deserialize)]
        struct Schema {
            schema: u32,
        }
        if serde_json::from_slice::<Schema>(bytes)
            .ok()
            .map(|s| s.schema)
            != Some(A::SNAPSHOT_SCHEMA)
        {
            return None;
        }
        let record = match serde_json::from_slice::<Record<A>>(bytes) {
            Ok(r) if r.schema == A::SNAPSHOT_SCHEMA => r,
            _ => return None,
        };
        match (record.state, record.sealed, record.sealed_for) {
            (Some(state), None, None) => Some(state),
            (None, Some(sealed), Some(_owner)) => {
                let place = format!("snapshot.{}", Snapshots::key::<A>(&ID));
                let json = Fields::new(data_key(), &place).open("state", sealed).ok()?;
                serde_json::from_str(&json).ok()
            }
            _ => None,
        }
    }

    /// A record as [`Snapshots::save`] writes it: clear, and sealed.
    fn records<A: Aggregate>(state: &A) -> [Vec<u8>; 2] {
        let clear = Record {
            schema: A::SNAPSHOT_SCHEMA,
            sequence: 42,
            sealed_for: None,
            sealed: None,
            state: Some(state),
        };
        let place = format!("snapshot.{}", Snapshots::key::<A>(&ID));
        let json = serde_json::to_string(state).unwrap();
        let sealed = Record::<&A> {
            schema: A::SNAPSHOT_SCHEMA,
            sequence: 42,
            sealed_for: Some(ID),
            sealed: Some(Fields::new(data_key(), &place).seal("state", json)),
            state: None,
        };
        [
            serde_json::to_vec(&clear).unwrap(),
            serde_json::to_vec(&sealed).unwrap(),
        ]
    }

    fn acme() -> TenantId {
        TenantId::parse("tenant", "acme").unwrap()
    }

    fn ticket() -> Ticket {
        let mut t = Ticket::default();
        let shop = Actor::new("shop", Role::CustomerSystem);
        let ana = Actor::new("ana", Role::Agent);
        let steps = [
            (
                TicketCommand::Open(Opening {
                    tenant: acme(),
                    channel: Channel::Email,
                    customer_id: ID,
                    subject: "Router".into(),
                    body: "It blinks".into(),
                    product_area: "router-x200".into(),
                    priority: Priority::High,
                    idempotency_key: "k1".into(),
                    follow_up_of: None,
                }),
                shop,
            ),
            (
                TicketCommand::Reply {
                    body: "Restart it".into(),
                    awaiting_customer: true,
                    idempotency_key: Some("r1".into()),
                },
                ana.clone(),
            ),
            (TicketCommand::LogTime { minutes: 15 }, ana),
        ];
        for (i, (command, actor)) in steps.iter().enumerate() {
            let at = 1_795_392_000_000 + i as i64;
            let event = t.decide("t", command, actor, at).unwrap().unwrap();
            t.apply(&Recorded {
                event,
                actor: actor.clone(),
                at,
            });
        }
        t
    }

    fn customer() -> Customer {
        let mut c = Customer::default();
        let shop = Actor::new("shop", Role::CustomerSystem);
        let command = CustomerCommand::RecordContact {
            channel: Channel::Email,
            tenant: acme(),
            identities: vec![frontline_domain::IdentityKey::Email(
                "ana@example.com".into(),
            )],
            facts: vec![("serial".into(), "SN-1".into())],
            ticket_opened: Some(Uuid::from_u128(9)),
            possible_duplicates: vec![],
        };
        let event = c.decide(&command, &shop, 1).unwrap().unwrap();
        c.apply(&Recorded {
            event,
            actor: shop,
            at: 1,
        });
        c
    }

    /// Every stored form of every sample state.
    fn encodings() -> &'static [Vec<u8>] {
        static ENCODINGS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        ENCODINGS.get_or_init(|| {
            let mut all = Vec::new();
            all.extend(records(&ticket()));
            all.extend(records(&customer()));
            all.extend(records(&Ticket::default()));
            all.extend(records(&Agent::default()));
            all.extend(records(&Article::default()));
            all.extend(records(&MacroBook::default()));
            all.extend(records(&PolicyRecord::default()));
            all.extend(records(&IdentityClaim::default()));
            all.extend(records(&ProductFeedback::default()));
            all.extend(records(&SelfService::default()));
            all
        })
    }

    /// A decoded state re-encodes to a record that decodes to the same state.
    fn round_trips<A: Aggregate>(bytes: &[u8]) -> Result<Option<A>, TestCaseError> {
        let Some(state) = parse::<A>(bytes) else {
            return Ok(None);
        };
        let _ = (state.version(), state.data_owner(&ID));
        let json = serde_json::to_value(&state).unwrap();
        for record in records(&state) {
            let back = parse::<A>(&record);
            prop_assert!(back.is_some(), "{} state does not round-trip", A::KIND);
            prop_assert_eq!(serde_json::to_value(back.unwrap()).unwrap(), json.clone());
        }
        Ok(Some(state))
    }

    /// Every aggregate's decoding of `bytes`; a ticket or customer that decodes is
    /// decided on (a corrupt but readable snapshot must not make `decide` panic).
    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Some(t) = round_trips::<Ticket>(bytes)? {
            let ana = Actor::new("ana", Role::Agent);
            for command in [
                TicketCommand::Reply {
                    body: "x".into(),
                    awaiting_customer: false,
                    idempotency_key: None,
                },
                TicketCommand::Solve {
                    resolution: "done".into(),
                },
                TicketCommand::Reopen { reason: "r".into() },
                TicketCommand::LogTime { minutes: 5 },
                TicketCommand::Close { after: Some(0) },
                TicketCommand::RequestHuman,
            ] {
                let _ = t.decide("t", &command, &ana, 1_795_392_000_000);
            }
        }
        if let Some(c) = round_trips::<Customer>(bytes)? {
            let admin = Actor::new("root", Role::Admin);
            let _ = c.decide(
                &CustomerCommand::RateNps {
                    customer_id: ID,
                    score: 9,
                    comment: String::new(),
                },
                &admin,
                1,
            );
        }
        round_trips::<Agent>(bytes)?;
        round_trips::<Article>(bytes)?;
        round_trips::<MacroBook>(bytes)?;
        round_trips::<PolicyRecord>(bytes)?;
        round_trips::<IdentityClaim>(bytes)?;
        round_trips::<ProductFeedback>(bytes)?;
        round_trips::<SelfService>(bytes)?;
        Ok(())
    }

    #[derive(Clone, Debug)]
    enum Mutation {
        FlipBit(usize, u8),
        SetByte(usize, u8),
        Truncate(usize),
        Insert(usize, Vec<u8>),
        Remove(usize, usize),
        Splice(usize, usize, usize, usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        // JSON's own characters, so mutations keep it parseable more often.
        let json_byte = prop_oneof![
            proptest::sample::select(&b"{}[]\":,0123456789-.truefalsn \\"[..]),
            any::<u8>(),
        ];
        prop_oneof![
            3 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
            3 => (any::<usize>(), json_byte.clone()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
            1 => any::<usize>().prop_map(Mutation::Truncate),
            2 => (any::<usize>(), proptest::collection::vec(json_byte, 1..6))
                .prop_map(|(i, b)| Mutation::Insert(i, b)),
            2 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
            1 => (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..40)
                .prop_map(|(at, other, from, n)| Mutation::Splice(at, other, from, n)),
        ]
    }

    fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation], others: &[Vec<u8>]) -> Vec<u8> {
        for m in mutations {
            let len = bytes.len();
            match m {
                Mutation::FlipBit(i, b) if len > 0 => bytes[i % len] ^= 1 << b,
                Mutation::SetByte(i, v) if len > 0 => bytes[i % len] = *v,
                Mutation::Truncate(n) => bytes.truncate(n % (len + 1)),
                Mutation::Insert(i, b) => {
                    let at = i % (len + 1);
                    bytes.splice(at..at, b.iter().copied());
                }
                Mutation::Remove(i, n) if len > 0 => {
                    let at = i % len;
                    bytes.drain(at..(at + n).min(len));
                }
                Mutation::Splice(at, other, from, n) => {
                    let other = &others[other % others.len()];
                    let from = from % (other.len() + 1);
                    let slice = &other[from..(from + n).min(other.len())];
                    let at = at % (len + 1);
                    bytes.splice(at..at, slice.iter().copied());
                }
                _ => {}
            }
        }
        bytes
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
            )),
            ..ProptestConfig::default()
        }
    }

    #[test]
    fn prop_sample_snapshots_decode() {
        for bytes in encodings() {
            check(bytes).unwrap();
        }
        assert!(parse::<Ticket>(&records(&ticket())[1]).is_some());
        assert!(parse::<Customer>(&records(&customer())[0]).is_some());
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn prop_mutated_snapshots_never_panic(
            sample in any::<prop::sample::Index>(),
            mutations in proptest::collection::vec(mutation(), 0..6),
        ) {
            let all = encodings();
            check(&mutate(all[sample.index(all.len())].clone(), &mutations, all))?;
        }

        #[test]
        fn prop_arbitrary_snapshots_never_panic(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..256),
                "\\{\"schema\":[0-9]{1,3},\"sequence\":[0-9]{1,5}(,\"sealed_for\":\"[0-9a-f-]{0,36}\")?(,\"sealed\":\"fl1\\.[A-Za-z0-9_-]{0,60}\")?(,\"state\":\\{\\})?\\}"
                    .prop_map(String::into_bytes),
            ],
        ) {
            check(&bytes)?;
        }
    }
}
