//! The log's side of personal data: which key seals an event's personal fields
//! (its customer's, from the key store), and the refusal when the store cannot be
//! opened with the configured key-encryption key.

use async_nats::jetstream;
use frontline_privacy::{KeyError, KeyStore, Lookup, NatsKeyStore, PersonalKey};
use uuid::Uuid;

use crate::{LogConfig, LogError};

/// The data keys of the log's customers: `None` when the log was opened without a
/// key-encryption key (the log's own tests); then nothing is sealed, and an event
/// that is sealed does not open.
#[derive(Clone, Debug)]
pub(crate) struct PersonalData(Option<NatsKeyStore>);

impl From<KeyError> for LogError {
    fn from(e: KeyError) -> LogError {
        match e {
            KeyError::WrongKek(_) => LogError::Refused(e.to_string()),
            KeyError::Corrupt(_) | KeyError::Unavailable(_) => LogError::Unavailable(e.to_string()),
        }
    }
}

impl PersonalData {
    /// Opens the key store when a KEK is configured; refuses another KEK than the
    /// one the store was created with.
    pub(crate) async fn open(
        js: &jetstream::Context,
        config: &LogConfig,
    ) -> Result<PersonalData, LogError> {
        let Some(kek) = &config.kek else {
            return Ok(PersonalData(None));
        };
        let store = NatsKeyStore::open(
            js,
            &config.key_bucket(),
            config.replicas,
            kek.clone(),
            config.previous_kek.clone(),
        )
        .await?;
        Ok(PersonalData(Some(store)))
    }

    /// The store, when there is one.
    pub(crate) fn store(&self) -> Option<&NatsKeyStore> {
        self.0.as_ref()
    }

    /// The key to seal an event of `owner` with (creating the customer's key on
    /// first use), and whom to name in the envelope.
    pub(crate) async fn for_writing(
        &self,
        owner: Option<Uuid>,
    ) -> Result<(PersonalKey, Option<Uuid>), LogError> {
        let (Some(store), Some(owner)) = (&self.0, owner) else {
            return Ok((PersonalKey::Nobody, None));
        };
        let key = match store.key_for(&owner).await? {
            Some(key) => PersonalKey::Live(key),
            None => PersonalKey::Forgotten,
        };
        Ok((key, Some(owner)))
    }

    /// The key that opens an event sealed for `sealed_for` (empty: nobody). What
    /// cannot be right about the event itself is `corrupt`; a store that cannot
    /// be reached is unavailable.
    pub(crate) async fn for_reading(
        &self,
        sealed_for: &str,
        corrupt: impl Fn(String) -> LogError,
    ) -> Result<PersonalKey, LogError> {
        if sealed_for.is_empty() {
            return Ok(PersonalKey::Nobody);
        }
        let owner = Uuid::parse_str(sealed_for).map_err(|e| corrupt(format!("sealed_for: {e}")))?;
        let Some(store) = &self.0 else {
            return Err(corrupt(format!(
                "sealed for customer {owner}, but the log was opened without a key-encryption key"
            )));
        };
        match store.lookup(&owner).await? {
            Lookup::Live(key) => Ok(PersonalKey::Live(key)),
            Lookup::Forgotten => Ok(PersonalKey::Forgotten),
            Lookup::Missing => Err(corrupt(format!(
                "sealed for customer {owner}, whose data key was never stored (wrong key bucket?)"
            ))),
        }
    }
}
