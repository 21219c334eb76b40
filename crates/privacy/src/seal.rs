//! Sealing one field: `fl1.` + base64url(nonce ‖ ciphertext+tag), XChaCha20-Poly1305
//! with a random 192-bit nonce (random nonces are safe at this size), and associated
//! data that says where the field belongs, so a sealed value moved elsewhere does
//! not open.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
};

/// Prefix of a sealed field (format version 1).
const PREFIX: &str = "fl1.";
/// Nonce length of XChaCha20-Poly1305.
const NONCE_LEN: usize = 24;

/// A customer's data key (256 bits). Never logged, never stored unwrapped.
#[derive(Clone)]
pub struct DataKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> DataKey {
        DataKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    pub(crate) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

/// Why a sealed field did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not in the sealed format.
    #[error("not a sealed field")]
    NotSealed,
    /// Wrong key, wrong place (associated data), or altered.
    #[error("the sealed field does not open with this key here (wrong key, moved or altered)")]
    Unopenable,
}

/// Seals `plaintext` with `key`, bound to `aad` (where the field belongs).
pub fn seal(key: &DataKey, plaintext: &[u8], aad: &[u8]) -> String {
    seal_with(&key.cipher(), plaintext, aad)
}

pub(crate) fn seal_with(cipher: &XChaCha20Poly1305, plaintext: &[u8], aad: &[u8]) -> String {
    // The thread's CSPRNG (ChaCha, seeded from the OS): a system call per field
    // would cost more than the encryption itself.
    let nonce = XChaCha20Poly1305::generate_nonce(&mut rand::thread_rng());
    // Encryption with a valid key and nonce cannot fail for in-memory buffers.
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&sealed);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Opens a field sealed with `key` for `aad`.
pub fn open(key: &DataKey, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
    open_with(&key.cipher(), sealed, aad)
}

pub(crate) fn open_with(
    cipher: &XChaCha20Poly1305,
    sealed: &str,
    aad: &[u8],
) -> Result<Vec<u8>, SealError> {
    let bytes = sealed
        .strip_prefix(PREFIX)
        .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
        .filter(|b| b.len() > NONCE_LEN)
        .ok_or(SealError::NotSealed)?;
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::NotSealed)?;
    cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| SealError::Unopenable)
}

/// Whether `value` has the sealed format (it may still not open).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_only_with_its_key_in_its_place() {
        let key = DataKey::generate();
        let sealed = seal(&key, b"ana@example.com", b"evt-1/email");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("ana"));
        assert_eq!(
            open(&key, &sealed, b"evt-1/email").unwrap(),
            b"ana@example.com"
        );
        assert_eq!(
            open(&key, &sealed, b"evt-2/email"),
            Err(SealError::Unopenable),
            "moved to another event"
        );
        assert_eq!(
            open(&DataKey::generate(), &sealed, b"evt-1/email"),
            Err(SealError::Unopenable)
        );
        // One bit of the ciphertext flipped (decoded first, so the base64 stays
        // valid: editing the text itself can make it undecodable instead).
        let mut bytes = URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(PREFIX).unwrap())
            .unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        let altered = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            open(&key, &altered, b"evt-1/email"),
            Err(SealError::Unopenable)
        );
        assert_eq!(
            open(&key, "ana@example.com", b""),
            Err(SealError::NotSealed)
        );
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let key = DataKey::generate();
        assert_ne!(seal(&key, b"same", b"x"), seal(&key, b"same", b"x"));
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        assert_eq!(format!("{:?}", DataKey::generate()), "DataKey(…)");
    }
}
