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
