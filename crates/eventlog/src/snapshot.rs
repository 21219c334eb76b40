//! Aggregate snapshots in a JetStream KV bucket: the state with the stream sequence
//! of the last event it includes. Never the truth — a missing, stale or unreadable
//! snapshot only makes loading replay more.

use async_nats::jetstream::{self, kv};
use frontline_domain::Aggregate;
use uuid::Uuid;

use crate::{Loaded, LogConfig, LogError};

/// Bump when a domain state's shape changes so old snapshots are ignored.
const SNAPSHOT_SCHEMA: u32 = 1;
/// Snapshots larger than this are not written (NATS' default max payload is 1 MiB).
const MAX_SNAPSHOT_BYTES: usize = 900 * 1024;

#[derive(serde::Serialize, serde::Deserialize)]
struct Record<A> {
    schema: u32,
    sequence: u64,
    state: A,
}

/// The snapshot store.
#[derive(Clone, Debug)]
pub struct Snapshots {
    bucket: kv::Store,
}

impl Snapshots {
    pub(crate) async fn open(
        js: &jetstream::Context,
        config: &LogConfig,
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
        Ok(Snapshots { bucket })
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
        match serde_json::from_slice::<Record<A>>(&bytes) {
            Ok(r) if r.schema == SNAPSHOT_SCHEMA => Some(Loaded {
                state: r.state,
                sequence: r.sequence,
            }),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(%key, error = %e, "snapshot undecodable; replaying");
                None
            }
        }
    }

    /// Writes the snapshot of `id`.
    pub async fn save<A: Aggregate>(&self, id: &Uuid, loaded: &Loaded<A>) -> Result<(), LogError> {
        let record = Record {
            schema: SNAPSHOT_SCHEMA,
            sequence: loaded.sequence,
            state: &loaded.state,
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| LogError::Setup(format!("snapshot encoding: {e}")))?;
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            tracing::debug!(id = %id, size = bytes.len(), "snapshot too large; not kept");
            return Ok(());
        }
        self.bucket
            .put(Self::key::<A>(id), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| LogError::unavailable("snapshot write", e))
    }

    /// Writes the snapshot without making the caller wait; a failure is logged only.
    pub(crate) fn save_in_background<A: Aggregate>(&self, id: &Uuid, loaded: &Loaded<A>) {
        let (this, id, loaded) = (self.clone(), *id, loaded.clone());
        tokio::spawn(async move {
            if let Err(e) = this.save(&id, &loaded).await {
                tracing::debug!(%id, error = %e, "snapshot not written");
            }
        });
    }

    /// Deletes the snapshot of `id` (operations and tests; loading still works).
    pub async fn delete<A: Aggregate>(&self, id: &Uuid) -> Result<(), LogError> {
        self.bucket
            .delete(Self::key::<A>(id))
            .await
            .map_err(|e| LogError::unavailable("snapshot delete", e))
    }
}
