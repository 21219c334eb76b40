//! One event's personal fields: sealed on the way to the log, opened on the way
//! back, or shown as [`ERASED`] once their customer is forgotten.

use crate::seal::{DataKey, SealError, is_sealed, open, seal};

/// What a personal field reads as once its customer is forgotten: a clear marker,
/// never ciphertext or garbage.
pub const ERASED: &str = "[erased]";

/// The key personal fields of one event (or snapshot) are sealed with.
#[derive(Clone, Debug)]
pub enum PersonalKey {
    /// The event concerns no customer: it holds no personal fields.
    Nobody,
    /// The customer's data key.
    Live(DataKey),
    /// The customer was forgotten: their fields read as [`ERASED`], and what is
    /// written for them now is not kept.
    Forgotten,
}

/// Seals or opens the personal fields of one event: each field's associated data
/// is `<event id>/<field>`, so a sealed value moved to another event or field does
/// not open.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    key: &'a PersonalKey,
    event_id: &'a str,
}

impl<'a> Fields<'a> {
    /// The fields of event `event_id`, under `key`.
    pub fn new(key: &'a PersonalKey, event_id: &'a str) -> Fields<'a> {
        Fields { key, event_id }
    }

    /// Fields of an event that concerns no customer: nothing is sealed.
    pub fn clear() -> Fields<'static> {
        static NOBODY: PersonalKey = PersonalKey::Nobody;
        Fields {
            key: &NOBODY,
            event_id: "",
        }
    }

    fn aad(&self, field: &str) -> Vec<u8> {
        format!("{}/{field}", self.event_id).into_bytes()
    }

    /// The stored form of personal field `field`. Empty stays empty (emptiness
    /// tells nothing about anyone).
    pub fn seal(&self, field: &str, value: String) -> String {
        if value.is_empty() {
            return value;
        }
        match self.key {
            PersonalKey::Nobody => value,
            PersonalKey::Live(key) => seal(key, value.as_bytes(), &self.aad(field)),
            PersonalKey::Forgotten => ERASED.to_string(),
        }
    }

    /// The readable form of stored personal field `field`.
    pub fn open(&self, field: &str, stored: String) -> Result<String, SealError> {
        if stored.is_empty() {
            return Ok(stored);
        }
        match self.key {
            // A sealed value in an event that names no customer: its envelope lost
            // its `sealed_for`. An error, never ciphertext shown as text.
            PersonalKey::Nobody if is_sealed(&stored) => Err(SealError::Unopenable),
            PersonalKey::Nobody => Ok(stored),
            PersonalKey::Forgotten => Ok(ERASED.to_string()),
            // Written after the customer was forgotten: the marker was stored.
            PersonalKey::Live(_) if stored == ERASED => Ok(stored),
            PersonalKey::Live(key) => {
                let plain = open(key, &stored, &self.aad(field))?;
                String::from_utf8(plain).map_err(|_| SealError::Unopenable)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key_sealed(key: &PersonalKey) -> String {
        Fields::new(key, "e1").seal("body", "hello".into())
    }

    #[test]
    fn fields_seal_open_and_erase() {
        let key = PersonalKey::Live(DataKey::generate());
        let fields = Fields::new(&key, "e1");
        let sealed = fields.seal("body", "hello ana".into());
        assert!(!sealed.contains("ana"));
        assert_eq!(fields.open("body", sealed.clone()).unwrap(), "hello ana");
        assert!(
            fields.open("subject", sealed.clone()).is_err(),
            "other field"
        );
        assert!(
            Fields::new(&key, "e2")
                .open("body", sealed.clone())
                .is_err(),
            "other event"
        );
        assert!(fields.open("body", "plain text".into()).is_err());
        assert_eq!(fields.seal("body", String::new()), "");
        let gone = PersonalKey::Forgotten;
        assert_eq!(
            Fields::new(&gone, "e1").open("body", sealed).unwrap(),
            ERASED
        );
        assert_eq!(Fields::new(&gone, "e1").seal("body", "x".into()), ERASED);
        let nobody = PersonalKey::Nobody;
        assert_eq!(Fields::new(&nobody, "e1").seal("b", "x".into()), "x");
        assert!(
            Fields::new(&nobody, "e1")
                .open("body", key_sealed(&key))
                .is_err(),
            "a sealed value where nothing is sealed is an error"
        );
    }
}
