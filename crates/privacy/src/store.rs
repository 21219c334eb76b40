//! Where data keys live, wrapped: one entry per customer, destroyed on request.
//!
//! [`KeyStore`] is the seam (a cloud KMS can take the place of [`NatsKeyStore`]).
//! [`NatsKeyStore`] keeps wrapped keys in a NATS KV bucket with no history, so a
//! purge leaves no earlier revision behind. Its first entry is a check value sealed
//! with the KEK: opening the store with another KEK is refused at start, never
//! answered later with every customer's data "erased".

use std::future::Future;

use async_nats::jetstream::{self, kv};
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

/// Customers' data keys: created once, read, destroyed for good.
pub trait KeyStore: Send + Sync {
    /// The key of `id`, creating it on first use. Two concurrent first uses get the
    /// same key. `Ok(None)` when the key was destroyed (the customer is forgotten).
    fn key_for(&self, id: &Uuid) -> impl Future<Output = Result<Option<DataKey>, KeyError>> + Send;

    /// The key of `id` if it exists; `Ok(None)` if it never did or was destroyed.
    fn existing(&self, id: &Uuid)
    -> impl Future<Output = Result<Option<DataKey>, KeyError>> + Send;

    /// Destroys the key of `id` for good; repeating it is fine.
    fn destroy(&self, id: &Uuid) -> impl Future<Output = Result<(), KeyError>> + Send;
}

/// Wrapped data keys in a NATS KV bucket.
#[derive(Clone, Debug)]
pub struct NatsKeyStore {
    bucket: kv::Store,
    name: String,
    kek: Kek,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError::Unavailable(format!("{what}: {e}"))
}

impl NatsKeyStore {
    /// Opens (or creates) bucket `name` with `kek`; refuses a KEK the bucket was not
    /// created with.
    pub async fn open(
        js: &jetstream::Context,
        name: &str,
        replicas: usize,
        kek: Kek,
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
        };
        store.check_kek().await?;
        Ok(store)
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
        match self.kek.open_check(&stored, CHECK_KEY) {
            Ok(value) if value == CHECK_VALUE => Ok(()),
            _ => Err(KeyError::WrongKek(self.name.clone())),
        }
    }

    fn entry(id: &Uuid) -> String {
        format!("customer.{id}")
    }

    fn unwrap(&self, id: &Uuid, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        self.kek
            .unwrap_key(&String::from_utf8_lossy(wrapped), &Self::entry(id))
            .map_err(|_| KeyError::Corrupt(id.to_string()))
    }
}

impl KeyStore for NatsKeyStore {
    async fn key_for(&self, id: &Uuid) -> Result<Option<DataKey>, KeyError> {
        let entry = Self::entry(id);
        let key = DataKey::generate();
        let wrapped = self.kek.wrap(&key, &entry);
        match self
            .bucket
            .create(&entry, wrapped.into_bytes().into())
            .await
        {
            Ok(_) => return Ok(Some(key)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(unavailable("store a data key", e)),
        }
        // It exists — or it was destroyed (the marker: `existing` says so).
        self.existing(id).await
    }

    async fn existing(&self, id: &Uuid) -> Result<Option<DataKey>, KeyError> {
        match self
            .bucket
            .get(Self::entry(id))
            .await
            .map_err(|e| unavailable("read a data key", e))?
        {
            Some(wrapped) if !wrapped.is_empty() && wrapped != FORGOTTEN => {
                self.unwrap(id, &wrapped).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn destroy(&self, id: &Uuid) -> Result<(), KeyError> {
        let entry = Self::entry(id);
        // The purge removes every stored revision of the wrapped key; the marker
        // after it keeps `key_for` from creating a new key under the same id.
        self.bucket
            .purge(&entry)
            .await
            .map_err(|e| unavailable("destroy a data key", e))?;
        self.bucket
            .put(&entry, FORGOTTEN.into())
            .await
            .map_err(|e| unavailable("mark a data key destroyed", e))?;
        Ok(())
    }
}
