//! Hostile sealed fields and keys: opening arbitrary text, mutations of a valid
//! sealed field, and unwrapping arbitrary wrapped keys never panics; what opens
//! after a mutation is exactly what was sealed (the AEAD tag catches every change).
//!
//! Case counts: `PROPTEST_CASES` (default 256); `make soak` runs 1 000 000.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use frontline_privacy::{DataKey, ERASED, Fields, Kek, PersonalKey, SealError, open, seal};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn key() -> &'static PersonalKey {
    static KEY: OnceLock<PersonalKey> = OnceLock::new();
    KEY.get_or_init(|| PersonalKey::Live(DataKey::generate()))
}

fn kek() -> &'static Kek {
    static KEK: OnceLock<Kek> = OnceLock::new();
    KEK.get_or_init(|| Kek::from_base64(&Kek::generate_base64()).unwrap())
}

const PLAIN: &str = "ana@example.com";

#[derive(Clone, Debug)]
enum Edit {
    /// On the decoded bytes (nonce ‖ ciphertext ‖ tag), re-encoded.
    FlipBit(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
    /// On the text itself.
    SetChar(usize, char),
    RemoveChars(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Edit::FlipBit(i, b)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(Edit::Append),
        2 => (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::SetChar(i, c)),
        1 => (any::<usize>(), 1usize..6).prop_map(|(i, n)| Edit::RemoveChars(i, n)),
    ]
}

fn apply(sealed: &str, edits: &[Edit]) -> String {
    let mut text = sealed.to_string();
    for e in edits {
        match e {
            Edit::SetChar(i, _) | Edit::RemoveChars(i, _) if !text.is_empty() => {
                let mut chars: Vec<char> = text.chars().collect();
                let at = i % chars.len();
                match e {
                    Edit::SetChar(_, c) => chars[at] = *c,
                    Edit::RemoveChars(_, n) => {
                        let end = (at + n).min(chars.len());
                        chars.drain(at..end);
                    }
                    _ => {}
                }
                text = chars.into_iter().collect();
            }
            Edit::FlipBit(..) | Edit::Truncate(_) | Edit::Append(_) => {
                let Some(bytes) = text
                    .strip_prefix("fl1.")
                    .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
                else {
                    continue;
                };
                let mut bytes = bytes;
                let len = bytes.len();
                match e {
                    Edit::FlipBit(i, b) if len > 0 => bytes[i % len] ^= 1 << b,
                    Edit::Truncate(n) => bytes.truncate(n % (len + 1)),
                    Edit::Append(extra) => bytes.extend_from_slice(extra),
                    _ => {}
                }
                text = format!("fl1.{}", URL_SAFE_NO_PAD.encode(bytes));
            }
            _ => {}
        }
    }
    text
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_arbitrary_text_opens_or_errs(
        text in prop_oneof![
            "\\PC{0,120}",
            "fl1\\.[A-Za-z0-9_-]{0,120}",
            "fl1\\.\\PC{0,60}",
        ],
        field in "[a-z]{1,8}",
        which in 0usize..3,
    ) {
        let keys = [PersonalKey::Nobody, key().clone(), PersonalKey::Forgotten];
        let fields = Fields::new(&keys[which], "e1");
        match (which, fields.open(&field, text.clone())) {
            // In the clear: the text itself, unless it looks sealed.
            (0, Ok(opened)) => prop_assert_eq!(opened, text.clone()),
            (1, Ok(opened)) => prop_assert!(text.is_empty() || text == ERASED, "{opened:?}"),
            (2, Ok(opened)) => prop_assert!(opened.is_empty() || opened == ERASED),
            (_, Ok(_)) => unreachable!(),
            (_, Err(_)) => {}
        }
        if let PersonalKey::Live(data_key) = key() {
            let _ = open(data_key, &text, field.as_bytes());
        }
        prop_assert!(kek().unwrap_key(&text, &field).is_err());
        let _ = Kek::from_base64(&text);
    }

    #[test]
    fn prop_mutated_sealed_fields_never_open_to_anything_else(
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let fields = Fields::new(key(), "e1");
        let sealed = fields.seal("email", PLAIN.to_string());
        let mutated = apply(&sealed, &edits);
        match fields.open("email", mutated.clone()) {
            Ok(opened) => prop_assert!(
                opened == PLAIN || (mutated.is_empty() && opened.is_empty()) || mutated == ERASED,
                "{mutated:?} opened to {opened:?}"
            ),
            Err(e) => prop_assert!(matches!(e, SealError::NotSealed | SealError::Unopenable)),
        }
        // A wrapped data key, mutated the same way, unwraps to the same key or not at all.
        let data_key = DataKey::generate();
        let wrapped = kek().wrap(&data_key, "customer/1");
        let mutated = apply(&wrapped, &edits);
        if let Ok(back) = kek().unwrap_key(&mutated, "customer/1") {
            let probe = seal(&back, b"x", b"a");
            prop_assert_eq!(open(&data_key, &probe, b"a").unwrap(), b"x".to_vec());
        }
    }
}
