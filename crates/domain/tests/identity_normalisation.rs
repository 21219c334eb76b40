//! Properties of identity normalisation: one person is one identity, however the
//! caller's system spelled it (invisible format characters, full-width forms, case,
//! Unicode spaces), and values carrying control characters are refused.
#![allow(clippy::unwrap_used)]

use frontline_domain::DomainError;
use frontline_domain::identity::{
    clean, is_format_char, normalise_email, normalise_external_id, normalise_phone,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::FileFailurePersistence;

/// Unicode general category `Cf`, written out independently of `is_format_char`
/// (from `DerivedGeneralCategory.txt`).
const CF_RANGES: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

fn cf_chars() -> Vec<char> {
    CF_RANGES
        .iter()
        .flat_map(|&(lo, hi)| lo..=hi)
        .filter_map(char::from_u32)
        .collect()
}

/// Failing cases are kept next to this file
/// (`identity_normalisation.proptest-regressions`).
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Any format (`Cf`) character.
fn format_char() -> impl Strategy<Value = char> {
    select(cf_chars())
}

/// Any control (`Cc`) character: C0, DEL and C1.
fn control_char() -> impl Strategy<Value = char> {
    prop_oneof![0u32..=0x1F, 0x7Fu32..=0x9F].prop_map(|c| char::from_u32(c).unwrap())
}

/// Arbitrary text with the characters normalisation cares about mixed in: cased
/// letters with combining marks (some only compose in lower case), full-width and
/// other compatibility forms, Unicode spaces and format characters.
fn tricky_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("\\PC{{0,{max}}}")).unwrap(),
        any::<String>(),
        proptest::string::string_regex(&format!(
            "[a-zA-Z0-9İΣςJTHWYÅǅ\u{300}-\u{36f}\u{1dc0}-\u{1dff}ａ-ｚＡ-Ｚ０-９ﬁ①ᴬ \u{a0}\u{3000}\u{200b}\u{ad}\u{feff}\u{202e}@.＠．-]{{0,{max}}}"
        ))
        .unwrap(),
    ]
}

/// Emails that are accepted, in assorted spellings.
fn accepted_email() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z0-9éñöçÄİ._%+-]{1,16}|[ａ-ｚＡ-Ｚ０-９]{1,8}",
        "[a-zA-Z0-9üé-]{1,12}|[ａ-ｚ０-９]{1,8}",
        "[a-zA-Z]{2,6}|[ａ-ｚＡ-Ｚ]{2,4}",
        select(&["@", "＠"][..]),
        select(&[".", "．"][..]),
        select(&["", " ", "\u{a0}", "\u{3000}"][..]),
    )
        .prop_map(|(local, host, tld, at, dot, pad)| {
            format!("{pad}{local}{at}{host}{dot}{tld}{pad}")
        })
}

/// Phones that are accepted, in assorted spellings.
fn accepted_phone() -> impl Strategy<Value = String> {
    (
        select(&["+", "00", "＋", "００"][..]),
        "[1-9１-９]",
        proptest::collection::vec(
            (
                "[0-9０-９]",
                select(&["", "", " ", "-", ".", "(", ")", "/", "\u{a0}", "\u{2009}"][..]),
            ),
            7..=14,
        ),
    )
        .prop_map(|(prefix, first, rest)| {
            let mut phone = format!("{prefix}{first}");
            for (digit, sep) in rest {
                phone.push_str(&digit);
                phone.push_str(sep);
            }
            phone
        })
}

/// External ids that are accepted.
fn accepted_external_id() -> impl Strategy<Value = String> {
    "\\PC{1,100}".prop_filter("accepted", |x| normalise_external_id("x", x).is_ok())
}

fn insert_at(s: &str, at: Index, c: char) -> String {
    let chars: Vec<char> = s.chars().collect();
    let i = at.index(chars.len() + 1);
    chars[..i]
        .iter()
        .copied()
        .chain(std::iter::once(c))
        .chain(chars[i..].iter().copied())
        .collect()
}

fn refused_as_control(result: Result<String, DomainError>, expected_field: &str) {
    assert_eq!(
        result,
        Err(DomainError::invalid(
            expected_field,
            "must not contain control characters"
        ))
    );
}

#[test]
fn identity_format_chars_are_exactly_category_cf() {
    let cf = cf_chars();
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        assert_eq!(is_format_char(c), cf.contains(&c), "{:04X}", c as u32);
    }
}

#[test]
fn identity_clean_refuses_every_control_char() {
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let raw = format!("a{c}b");
        if c.is_control() {
            refused_as_control(clean("f", &raw), "f");
        } else {
            assert!(clean("f", &raw).is_ok(), "{:04X}", c as u32);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn identity_email_normalisation_is_idempotent(
        raw in prop_oneof![
            tricky_text(40),
            (tricky_text(16), tricky_text(16), "[a-zA-ZİΣＡ-Ｚ]{1,6}")
                .prop_map(|(l, d, t)| format!("{l}@{d}.{t}")),
            accepted_email(),
        ]
    ) {
        if let Ok(once) = normalise_email("email", &raw) {
            prop_assert_eq!(normalise_email("email", &once), Ok(once.clone()));
            prop_assert_eq!(&once, &once.to_lowercase());
            prop_assert!(!once.chars().any(|c| c.is_control() || is_format_char(c)));
        }
    }

    #[test]
    fn identity_phone_normalisation_is_idempotent(
        raw in prop_oneof![tricky_text(30), accepted_phone()]
    ) {
        if let Ok(once) = normalise_phone("phone", &raw) {
            prop_assert_eq!(normalise_phone("phone", &once), Ok(once.clone()));
            prop_assert!(once.starts_with('+'));
            prop_assert!(once[1..].chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn identity_external_id_normalisation_is_idempotent(
        raw in prop_oneof![tricky_text(140), accepted_external_id()]
    ) {
        if let Ok(once) = normalise_external_id("external_id", &raw) {
            prop_assert_eq!(normalise_external_id("external_id", &once), Ok(once.clone()));
            prop_assert!(once.chars().count() <= 128);
            prop_assert_eq!(once.trim(), once.as_str());
        }
    }

    #[test]
    fn identity_accepted_values_are_accepted(
        email in accepted_email(),
        phone in accepted_phone(),
    ) {
        prop_assert!(normalise_email("email", &email).is_ok(), "{:?}", email);
        prop_assert!(normalise_phone("phone", &phone).is_ok(), "{:?}", phone);
    }

    #[test]
    fn identity_format_char_anywhere_in_an_email_changes_nothing(
        email in accepted_email(),
        inserts in proptest::collection::vec((any::<Index>(), format_char()), 1..4),
    ) {
        let expected = normalise_email("email", &email).unwrap();
        let mut raw = email.clone();
        for (at, c) in inserts {
            raw = insert_at(&raw, at, c);
        }
        prop_assert_eq!(normalise_email("email", &raw), Ok(expected));
    }

    #[test]
    fn identity_format_char_anywhere_in_a_phone_or_external_id_changes_nothing(
        phone in accepted_phone(),
        external_id in accepted_external_id(),
        at in any::<Index>(),
        c in format_char(),
    ) {
        prop_assert_eq!(
            normalise_phone("phone", &insert_at(&phone, at, c)),
            normalise_phone("phone", &phone)
        );
        prop_assert_eq!(
            normalise_external_id("external_id", &insert_at(&external_id, at, c)),
            normalise_external_id("external_id", &external_id)
        );
    }

    #[test]
    fn identity_control_char_anywhere_is_refused(
        email in accepted_email(),
        phone in accepted_phone(),
        external_id in accepted_external_id(),
        at in any::<Index>(),
        c in control_char(),
    ) {
        refused_as_control(normalise_email("customer.email", &insert_at(&email, at, c)), "customer.email");
        refused_as_control(normalise_phone("customer.phone", &insert_at(&phone, at, c)), "customer.phone");
        refused_as_control(
            normalise_external_id("customer.external_id", &insert_at(&external_id, at, c)),
            "customer.external_id",
        );
    }
}
