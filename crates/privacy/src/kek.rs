//! The key-encryption key (KEK): 32 bytes from configuration (base64, in an env
//! secret or a file), which wraps every data key before it is stored. Whoever has
//! the key store but not the KEK learns nothing; losing the KEK loses every
//! customer's data, so a service refuses to start with a KEK the store was not
//! created with (see [`crate::NatsKeyStore::open`]).

use std::path::Path;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chacha20poly1305::{XChaCha20Poly1305, aead::KeyInit};

use crate::seal::{DataKey, SealError, open_with, seal_with};

/// The key-encryption key.
#[derive(Clone)]
pub struct Kek(XChaCha20Poly1305);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(…)")
    }
}

/// Why a key-encryption key is refused.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// Not base64 of exactly 32 bytes.
    #[error(
        "the key-encryption key must be base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)"
    )]
    Malformed,
    /// The file could not be read.
    #[error("cannot read the key-encryption key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Kek {
    /// A KEK from its base64 form (surrounding whitespace ignored).
    pub fn from_base64(encoded: &str) -> Result<Kek, KekError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| KekError::Malformed)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KekError::Malformed)?;
        Ok(Kek(XChaCha20Poly1305::new(&key.into())))
    }

    /// A KEK from a file holding its base64 form.
    pub fn from_file(path: &Path) -> Result<Kek, KekError> {
        let encoded = std::fs::read_to_string(path).map_err(|source| KekError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Kek::from_base64(&encoded)
    }

    /// A fresh random KEK, base64 (for tools and tests).
    pub fn generate_base64() -> String {
        STANDARD.encode(DataKey::generate().0)
    }

    /// `key` wrapped for storage under `name` (the name is bound in: a wrapped key
    /// stored under another name does not unwrap).
    pub fn wrap(&self, key: &DataKey, name: &str) -> String {
        seal_with(&self.0, &key.0, name.as_bytes())
    }

    /// Unwraps a key stored under `name`.
    pub fn unwrap_key(&self, wrapped: &str, name: &str) -> Result<DataKey, SealError> {
        let bytes = open_with(&self.0, wrapped, name.as_bytes())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::Unopenable)?;
        Ok(DataKey(key))
    }

    /// Seals a known check value, so a store can tell the KEK it was created with.
    pub(crate) fn seal_check(&self, value: &[u8], name: &str) -> String {
        seal_with(&self.0, value, name.as_bytes())
    }

    /// Opens a check value sealed by [`Kek::seal_check`].
    pub(crate) fn open_check(&self, sealed: &str, name: &str) -> Result<Vec<u8>, SealError> {
        open_with(&self.0, sealed, name.as_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::seal::{open, seal};

    #[test]
    fn wrapped_keys_unwrap_only_with_the_kek_under_their_name() {
        let kek = Kek::from_base64(&Kek::generate_base64()).unwrap();
        let key = DataKey::generate();
        let wrapped = kek.wrap(&key, "customer/1");
        let back = kek.unwrap_key(&wrapped, "customer/1").unwrap();
        let sealed = seal(&key, b"x", b"a");
        assert_eq!(open(&back, &sealed, b"a").unwrap(), b"x");
        assert!(kek.unwrap_key(&wrapped, "customer/2").is_err());
        let other = Kek::from_base64(&Kek::generate_base64()).unwrap();
        assert!(other.unwrap_key(&wrapped, "customer/1").is_err());
    }

    #[test]
    fn malformed_keks_are_refused() {
        for bad in ["", "not base64!", "c2hvcnQ="] {
            assert!(
                matches!(Kek::from_base64(bad), Err(KekError::Malformed)),
                "{bad}"
            );
        }
        assert_eq!(
            format!("{:?}", Kek::from_base64(&Kek::generate_base64()).unwrap()),
            "Kek(…)"
        );
    }
}
