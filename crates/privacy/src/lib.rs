//! Personal data at rest ("crypto-shredding"): what is personal in an event is
//! sealed with its customer's data key, and forgetting the customer destroys the key.
//!
//! - [`seal`]: a data key and the sealed form of one field (XChaCha20-Poly1305, a
//!   fresh random nonce per field, associated data binding the field to its place,
//!   e.g. the event id and field name).
//! - [`kek`]: the key-encryption key from configuration, which wraps data keys
//!   before they are stored, so the store alone reveals nothing.
//! - [`store`]: where wrapped data keys live and are destroyed — a [`KeyStore`]
//!   trait, and [`NatsKeyStore`] on a NATS KV bucket (a cloud KMS can take its
//!   place later).

pub mod fields;
pub mod kek;
pub mod seal;
pub mod store;

pub use fields::{ERASED, Fields, PersonalKey};
pub use kek::{Kek, KekError};
pub use seal::{DataKey, SealError, is_sealed, open, seal};
pub use store::{KeyError, KeyStore, Lookup, NatsKeyStore, Rotation};
