//! Where data keys live, wrapped: one entry per customer, destroyed on request.
//!
//! [`KeyStore`] is the seam (a cloud KMS can take the place of [`NatsKeyStore`]).
//! [`NatsKeyStore`] keeps wrapped keys in a NATS KV bucket with no history, so a
//! purge leaves no earlier revision behind. Its first entry is a check value sealed
//! with the KEK: opening the store with another KEK is refused at start, never
//! answered later with every customer's data "erased".

use std::future::Future;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use uuid::Uuid;

use crate::{Kek, seal::DataKey};

/// The entry proving which KEK the store was created with.
const CHECK_KEY: &str = "kek-check";
/// What the check entry seals.
const CHECK_VALUE: &[u8] = b"frontline key store";
/// What a destroyed key's entry holds after the purge: so the key is never
/// created again by mistake.
const FORGOTTEN: &[u8] = b"forgotten";

/// Why the key store failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store was created with another key-encryption key (or it is corrupt).
    #[error(
        "the key-encryption key does not open key store {0}: it was created with another one. \
         Configure the original key (FRONTLINE_KEK / FRONTLINE_KEK_FILE); every customer's personal data depends on it"
    )]
    WrongKek(String),
    /// A stored key does not unwrap with the KEK that opened the store.
    #[error("the data key of {0} does not unwrap: the key store is corrupt")]
    Corrupt(String),
    /// NATS could not be reached or refused.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
}

/// What the store holds for one customer.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// Their data key.
    Live(DataKey),
    /// The key was destroyed: the customer is forgotten.
    Forgotten,
    /// No key was ever made for this id.
    Missing,
}

/// Customers' data keys (created once, read, destroyed for good) and each tenant's
/// secret for keyed hashes of identities.
pub trait KeyStore: Send + Sync {
    /// The key of `id`, creating it on first use. Two concurrent first uses get the
    /// same key. `Ok(None)` when the key was destroyed (the customer is forgotten).
    fn key_for(&self, id: &Uuid) -> impl Future<Output = Result<Option<DataKey>, KeyError>> + Send;

    /// What the store holds for `id`, without creating anything.
    fn lookup(&self, id: &Uuid) -> impl Future<Output = Result<Lookup, KeyError>> + Send;

    /// Destroys the key of `id` for good; repeating it is fine.
    fn destroy(&self, id: &Uuid) -> impl Future<Output = Result<(), KeyError>> + Send;

    /// The secret of `tenant` for keyed hashes (created on first use, never
    /// destroyed): identity ids derived with it confirm nothing to someone who
    /// does not hold it.
    fn tenant_secret(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<[u8; 32], KeyError>> + Send;
}

/// Keys read recently, so a load does not ask the bucket for every event. A key
/// destroyed (seen by a watch on the bucket, in every process) is dropped;
/// `generation` keeps a read that raced a change from caching the old answer. While
/// the watch is down nothing is cached: a forget elsewhere would go unseen.
#[derive(Debug, Default)]
struct Cache {
    keys: Mutex<HashMap<Uuid, Option<DataKey>>>,
    tenants: Mutex<HashMap<String, [u8; 32]>>,
    generation: AtomicU64,
    watching: AtomicBool,
}

/// The entries whose changes drop cached keys.
const WATCHED: &str = "customer.>";

/// Applies the changes a watch reports to the cache, until the watch ends or the
/// store is gone.
async fn follow(mut changes: kv::Watch, cache: &std::sync::Weak<Cache>) {
    while let Some(change) = changes.next().await {
        let Some(cache) = cache.upgrade() else { return };
        match change {
            // A key is only ever created once, and rewrapping keeps it: only a
            // destroyed key changes what a cached entry should say.
            Ok(entry) if entry.operation == kv::Operation::Put && entry.value != FORGOTTEN => {}
            Ok(entry) => {
                if let Some(id) = entry
                    .key
                    .strip_prefix("customer.")
                    .and_then(|id| Uuid::parse_str(id).ok())
                {
                    cache.forget(&id);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "key bucket watch interrupted; cached keys dropped");
                cache.forget_all();
            }
        }
    }
}

/// Cached keys are few bytes each; past this many the cache starts over.
const CACHE_LIMIT: usize = 100_000;

impl Cache {
    fn get(&self, id: &Uuid) -> Option<Option<DataKey>> {
        if !self.watching.load(Ordering::SeqCst) {
            return None;
        }
        lock(&self.keys).get(id).cloned()
    }

    fn put(&self, id: Uuid, key: Option<DataKey>, generation: u64) {
        let mut keys = lock(&self.keys);
        if self.generation.load(Ordering::SeqCst) != generation
            || !self.watching.load(Ordering::SeqCst)
        {
            return;
        }
        if keys.len() >= CACHE_LIMIT {
            keys.clear();
        }
        keys.insert(id, key);
    }

    fn forget(&self, id: &Uuid) {
        let mut keys = lock(&self.keys);
        self.generation.fetch_add(1, Ordering::SeqCst);
        keys.remove(id);
    }

    /// Unsure what changed: drop everything.
    fn forget_all(&self) {
        let mut keys = lock(&self.keys);
        self.generation.fetch_add(1, Ordering::SeqCst);
        keys.clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wrapped data keys in a NATS KV bucket.
#[derive(Clone, Debug)]
pub struct NatsKeyStore {
    bucket: kv::Store,
    name: String,
    kek: Kek,
    /// The KEK being rotated away from: still opens what it wrapped, never wraps.
    previous: Option<Kek>,
    cache: Arc<Cache>,
}

/// What [`NatsKeyStore::rotate`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Entries wrapped again with the current KEK.
    pub rewrapped: usize,
    /// Entries already wrapped with it.
    pub current: usize,
    /// Destroyed keys (nothing to wrap).
    pub destroyed: usize,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError::Unavailable(format!("{what}: {e}"))
}

impl NatsKeyStore {
    /// Opens (or creates) bucket `name` with `kek`; refuses a KEK the bucket was not
    /// created with — unless it is `previous`, the KEK being rotated away from (see
    /// [`NatsKeyStore::rotate`]), which then still opens what it wrapped.
    pub async fn open(
        js: &jetstream::Context,
        name: &str,
        replicas: usize,
        kek: Kek,
        previous: Option<Kek>,
    ) -> Result<NatsKeyStore, KeyError> {
        let bucket = match js.get_key_value(name).await {
            Ok(bucket) => bucket,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: name.to_string(),
                    description:
                        "Frontline customers' data keys, wrapped; a purged key forgets the customer"
                            .into(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable("create key bucket", e))?,
        };
        let store = NatsKeyStore {
            bucket,
            name: name.to_string(),
            kek,
            previous,
            cache: Arc::default(),
        };
        store.check_kek().await?;
        store.watch().await?;
        Ok(store)
    }

    /// Drops a cached key whenever its entry changes, here or in another process
    /// (a forget elsewhere must not leave this one reading the customer). Should
    /// the watch end, caching stops until it is back.
    async fn watch(&self) -> Result<(), KeyError> {
        let changes = self
            .bucket
            .watch(WATCHED)
            .await
            .map_err(|e| unavailable("watch the key bucket", e))?;
        self.cache.watching.store(true, Ordering::SeqCst);
        let (bucket, cache) = (self.bucket.clone(), Arc::downgrade(&self.cache));
        tokio::spawn(async move {
            let mut changes = Some(changes);
            loop {
                if let Some(watch) = changes.take() {
                    follow(watch, &cache).await;
                }
                let Some(live) = cache.upgrade() else { return };
                live.watching.store(false, Ordering::SeqCst);
                live.forget_all();
                drop(live);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                match bucket.watch(WATCHED).await {
                    Ok(watch) => {
                        let Some(live) = cache.upgrade() else { return };
                        live.forget_all();
                        live.watching.store(true, Ordering::SeqCst);
                        changes = Some(watch);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "key bucket watch not back yet; keys are not cached")
                    }
                }
            }
        });
        Ok(())
    }

    /// Writes the check entry on first open; opens it on every later one.
    async fn check_kek(&self) -> Result<(), KeyError> {
        let sealed = self.kek.seal_check(CHECK_VALUE, CHECK_KEY);
        // Whoever creates the entry first decides; everyone then checks it.
        let _ = self
            .bucket
            .create(CHECK_KEY, sealed.into_bytes().into())
            .await;
        let stored = self
            .bucket
            .get(CHECK_KEY)
            .await
            .map_err(|e| unavailable("read the key check", e))?
            .ok_or_else(|| KeyError::Unavailable("the key check entry is missing".into()))?;
        let stored = String::from_utf8_lossy(&stored);
        let opens = |kek: &Kek| {
            kek.open_check(&stored, CHECK_KEY)
                .is_ok_and(|value| value == CHECK_VALUE)
        };
        if opens(&self.kek) || self.previous.as_ref().is_some_and(opens) {
            Ok(())
        } else {
            Err(KeyError::WrongKek(self.name.clone()))
        }
    }

    /// Wraps every stored key (and the check entry) with the current KEK that is
    /// still wrapped with the previous one. Safe to run while services run (with
    /// both KEKs configured) and to repeat; a key destroyed meanwhile stays
    /// destroyed (every write expects the entry's revision it read).
    pub async fn rotate(&self) -> Result<Rotation, KeyError> {
        let names: Vec<String> = self
            .bucket
            .keys()
            .await
            .map_err(|e| unavailable("list the key bucket", e))?
            .try_collect()
            .await
            .map_err(|e| unavailable("list the key bucket", e))?;
        let mut done = Rotation::default();
        for name in names {
            loop {
                let Some(entry) = self
                    .bucket
                    .entry(&name)
                    .await
                    .map_err(|e| unavailable("read a key", e))?
                else {
                    break;
                };
                if entry.operation != kv::Operation::Put
                    || entry.value.is_empty()
                    || entry.value == FORGOTTEN
                {
                    done.destroyed += 1;
                    break;
                }
                let Some(rewrapped) = self.rewrap(&name, &entry.value)? else {
                    done.current += 1;
                    break;
                };
                match self
                    .bucket
                    .update(&name, rewrapped.into_bytes().into(), entry.revision)
                    .await
                {
                    Ok(_) => {
                        done.rewrapped += 1;
                        break;
                    }
                    // Changed since it was read (destroyed, say): read it again.
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                    Err(e) => return Err(unavailable("write a rewrapped key", e)),
                }
            }
        }
        Ok(done)
    }

    /// Entry `name` wrapped with the current KEK; `None` when it already is.
    fn rewrap(&self, name: &str, stored: &[u8]) -> Result<Option<String>, KeyError> {
        let stored = String::from_utf8_lossy(stored);
        if name == CHECK_KEY {
            if self.kek.open_check(&stored, CHECK_KEY).is_ok() {
                return Ok(None);
            }
            return Ok(Some(self.kek.seal_check(CHECK_VALUE, CHECK_KEY)));
        }
        if self.kek.unwrap_key(&stored, name).is_ok() {
            return Ok(None);
        }
        let key = self
            .previous
            .as_ref()
            .and_then(|previous| previous.unwrap_key(&stored, name).ok())
            .ok_or_else(|| KeyError::Corrupt(name.to_string()))?;
        Ok(Some(self.kek.wrap(&key, name)))
    }

    fn entry(id: &Uuid) -> String {
        format!("customer.{id}")
    }

    fn unwrap(&self, entry: &str, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        let wrapped = String::from_utf8_lossy(wrapped);
        self.kek
            .unwrap_key(&wrapped, entry)
            .or_else(|e| match &self.previous {
                Some(previous) => previous.unwrap_key(&wrapped, entry),
                None => Err(e),
            })
            .map_err(|_| KeyError::Corrupt(entry.to_string()))
    }

    /// Creates entry `entry` holding a fresh key unless the entry ever existed
    /// (expected revision 0: a deleted or purged entry is not absent, so a
    /// destroyed key is never made again); then reads it. `None`: destroyed.
    async fn create_or_read(&self, entry: &str) -> Result<Option<Bytes>, KeyError> {
        let key = DataKey::generate();
        let wrapped = Bytes::from(self.kek.wrap(&key, entry).into_bytes());
        match self.bucket.update(entry, wrapped.clone(), 0).await {
            Ok(_) => return Ok(Some(wrapped)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(e) => return Err(unavailable("store a key", e)),
        }
        let stored = self
            .bucket
            .entry(entry)
            .await
            .map_err(|e| unavailable("read a key", e))?;
        Ok(stored
            .filter(|e| e.operation == kv::Operation::Put && !e.value.is_empty())
            .filter(|e| e.value != FORGOTTEN)
            .map(|e| e.value))
    }
}

impl KeyStore for NatsKeyStore {
    async fn key_for(&self, id: &Uuid) -> Result<Option<DataKey>, KeyError> {
        if let Some(cached) = self.cache.get(id) {
            return Ok(cached);
        }
        let generation = self.cache.generation.load(Ordering::SeqCst);
        let entry = Self::entry(id);
        let key = match self.create_or_read(&entry).await? {
            Some(wrapped) => Some(self.unwrap(&entry, &wrapped)?),
            None => None,
        };
        self.cache.put(*id, key.clone(), generation);
        Ok(key)
    }

    async fn lookup(&self, id: &Uuid) -> Result<Lookup, KeyError> {
        let to_lookup = |key: Option<DataKey>| key.map_or(Lookup::Forgotten, Lookup::Live);
        if let Some(cached) = self.cache.get(id) {
            return Ok(to_lookup(cached));
        }
        let generation = self.cache.generation.load(Ordering::SeqCst);
        let entry = Self::entry(id);
        let stored = self
            .bucket
            .entry(&entry)
            .await
            .map_err(|e| unavailable("read a data key", e))?;
        let key = match stored {
            None => return Ok(Lookup::Missing),
            Some(e) if e.operation != kv::Operation::Put => None,
            Some(e) if e.value.is_empty() || e.value == FORGOTTEN => None,
            Some(e) => Some(self.unwrap(&entry, &e.value)?),
        };
        self.cache.put(*id, key.clone(), generation);
        Ok(to_lookup(key))
    }

    async fn destroy(&self, id: &Uuid) -> Result<(), KeyError> {
        // One write: the marker replaces the wrapped key, and the bucket keeps one
        // revision per entry, so no wrapped copy is left (and `key_for` never makes
        // the key again: the entry is not absent).
        self.bucket
            .put(Self::entry(id), FORGOTTEN.into())
            .await
            .map_err(|e| unavailable("destroy a data key", e))?;
        self.cache.forget(id);
        Ok(())
    }

    async fn tenant_secret(&self, tenant: &str) -> Result<[u8; 32], KeyError> {
        if let Some(secret) = lock(&self.cache.tenants).get(tenant) {
            return Ok(*secret);
        }
        let entry = format!("tenant.{tenant}");
        let wrapped = self
            .create_or_read(&entry)
            .await?
            .ok_or_else(|| KeyError::Corrupt(entry.clone()))?;
        let secret = self.unwrap(&entry, &wrapped)?.0;
        lock(&self.cache.tenants).insert(tenant.to_string(), secret);
        Ok(secret)
    }
}
