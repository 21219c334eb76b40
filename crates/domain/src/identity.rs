//! How a customer is recognised: normalised email, phone (E.164) and external id.

use unicode_normalization::UnicodeNormalization;

use crate::DomainError;

/// Longest accepted email address (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest accepted external id.
pub const MAX_EXTERNAL_ID_CHARS: usize = 128;

/// A customer's identities, normalised. At least one is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// Lower-cased, trimmed email.
    pub email: Option<String>,
    /// E.164 phone number: `+` and 8 to 15 digits.
    pub phone: Option<String>,
    /// The caller's id for the customer, trimmed.
    pub external_id: Option<String>,
}

impl Identity {
    /// Normalises raw identities as a caller sent them; empty strings mean "not given".
    /// `field` prefixes error paths (e.g. `customer`).
    pub fn normalise(
        field: &str,
        email: &str,
        phone: &str,
        external_id: &str,
    ) -> Result<Identity, DomainError> {
        let identity = Identity {
            email: non_empty(email)
                .map(|e| normalise_email(&format!("{field}.email"), e))
                .transpose()?,
            phone: non_empty(phone)
                .map(|p| normalise_phone(&format!("{field}.phone"), p))
                .transpose()?,
            external_id: non_empty(external_id)
                .map(|x| normalise_external_id(&format!("{field}.external_id"), x))
                .transpose()?,
        };
        if identity.is_empty() {
            return Err(DomainError::invalid(
                field,
                "needs at least one of email, phone, external_id",
            ));
        }
        Ok(identity)
    }

    /// True when no identity is set.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none() && self.external_id.is_none()
    }
}

fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

/// The rule every identity goes through before its own checks, in this order:
///
/// 1. control characters (Unicode general category `Cc`: `\n`, `\t`, `\0`, `\u{7f}`,
///    `\u{85}`, ...) anywhere in `raw` are refused, not stripped: they are not part of
///    anyone's address, so the value is more likely garbage than a typo;
/// 2. format characters ([`is_format_char`]: zero-width spaces and joiners, soft
///    hyphens, byte-order marks, bidi overrides, ...) are removed: they are invisible,
///    so two values that look the same must be the same identity;
/// 3. Unicode NFKC, so full-width and other compatibility forms become their plain
///    forms (`ａｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ` is `ana@example.com`, `＋４９` is `+49`);
/// 4. leading and trailing whitespace is trimmed.
///
/// `field` names the field in the error. The result may be empty.
pub fn clean(field: &str, raw: &str) -> Result<String, DomainError> {
    if raw.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    let normalised: String = raw.chars().filter(|&c| !is_format_char(c)).nfkc().collect();
    Ok(normalised.trim().to_string())
}

/// True for the characters of Unicode general category `Cf` (format): invisible
/// characters that change how text around them is shown or joined, never what it says.
///
/// There is no general-category crate in the dependency set, so this is the `Cf` list
/// of the Unicode Character Database (`DerivedGeneralCategory.txt`, Unicode 15.1/16.0):
/// soft hyphen, Arabic and Syriac number and abbreviation marks, Mongolian vowel
/// separator, zero-width space/non-joiner/joiner, left-to-right and right-to-left marks,
/// bidi embeddings, overrides and isolates, word joiner and invisible operators,
/// deprecated format characters, byte-order mark, interlinear annotation characters,
/// Kaithi number signs, Egyptian hieroglyph format controls, shorthand format controls,
/// musical symbol beam and phrase controls, and language tags.
pub fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Normalises an email: [`clean`]s it, lower-cases it, and checks its shape
/// (`local@domain.tld`, at most [`MAX_EMAIL_CHARS`] characters).
///
/// NFKC is applied again after lower-casing: some letters only have a precomposed
/// lower-case form (`J` + caron stays two characters, `j` + caron composes to `ǰ`), so
/// without it normalising an already normalised email could still change it.
pub fn normalise_email(field: &str, raw: &str) -> Result<String, DomainError> {
    let email: String = clean(field, raw)?.to_lowercase().nfkc().collect();
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_EMAIL_CHARS} characters"),
        ));
    }
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(email)
    } else {
        Err(DomainError::invalid(field, "is not an email address"))
    }
}

/// Normalises a phone number to E.164: [`clean`]s it (so full-width digits and `＋`
/// work), removes whitespace of any kind (including non-breaking spaces), dashes, dots,
/// slashes and brackets, turns a leading `00` into `+`, and requires a country code
/// (8 to 15 digits).
pub fn normalise_phone(field: &str, raw: &str) -> Result<String, DomainError> {
    let compact: String = clean(field, raw)?
        .chars()
        .filter(|&c| !(c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')' | '/')))
        .collect();
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest
    } else {
        return Err(DomainError::invalid(
            field,
            "must start with a country code (+ or 00)",
        ));
    };
    let ok = (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(format!("+{digits}"))
    } else {
        Err(DomainError::invalid(
            field,
            "is not an E.164 phone number (+, then 8 to 15 digits)",
        ))
    }
}

/// Normalises an external id: [`clean`]s it (case is kept) and checks it is not empty
/// and at most [`MAX_EXTERNAL_ID_CHARS`] characters, counted after normalisation.
pub fn normalise_external_id(field: &str, raw: &str) -> Result<String, DomainError> {
    let id = clean(field, raw)?;
    if id.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if id.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_EXTERNAL_ID_CHARS} characters"),
        ));
    }
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let id = Identity::normalise("customer", "  Ana.Silva@Example.COM ", "", "").unwrap();
        assert_eq!(id.email.as_deref(), Some("ana.silva@example.com"));
    }

    #[test]
    fn bad_emails_are_refused_with_their_field() {
        for bad in [
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "a@b@c.de",
        ] {
            let err = Identity::normalise("customer", bad, "", "").unwrap_err();
            assert!(
                matches!(&err, DomainError::InvalidField { field, .. } if field == "customer.email"),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn phone_becomes_e164() {
        assert_eq!(
            normalise_phone("p", "+49 (30) 123-456").unwrap(),
            "+4930123456"
        );
        assert_eq!(
            normalise_phone("p", "0049 30 123456").unwrap(),
            "+4930123456"
        );
        assert!(normalise_phone("p", "030 123456").is_err());
        assert!(normalise_phone("p", "+12").is_err());
        assert!(normalise_phone("p", "+49 30 12a456").is_err());
    }

    #[test]
    fn external_id_is_strongest_then_email_then_phone() {
        let id = Identity::normalise("c", "a@b.de", "+4930123456", " crm-1 ").unwrap();
        let keys = crate::IdentityKey::of(&id, "shop");
        assert_eq!(
            keys.iter()
                .map(crate::IdentityKey::as_key)
                .collect::<Vec<_>>(),
            ["external:shop:crm-1", "email:a@b.de", "phone:+4930123456"]
        );
    }

    #[test]
    fn no_identity_is_refused() {
        let err = Identity::normalise("customer", " ", "", "").unwrap_err();
        assert!(matches!(err, DomainError::InvalidField { field, .. } if field == "customer"));
    }

    fn refused_field(result: Result<String, DomainError>) -> (String, String) {
        match result {
            Err(DomainError::InvalidField { field, reason }) => (field, reason),
            other => panic!("expected InvalidField, got {other:?}"),
        }
    }

    #[test]
    fn zero_width_space_is_removed_from_email() {
        assert_eq!(
            normalise_email("e", "eve\u{200b}@example.com").unwrap(),
            normalise_email("e", "eve@example.com").unwrap()
        );
        assert_eq!(
            normalise_email("e", "eve\u{200b}@example.com").unwrap(),
            "eve@example.com"
        );
    }

    #[test]
    fn email_is_lower_cased_and_trimmed() {
        assert_eq!(
            normalise_email("e", "Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
    }

    #[test]
    fn phone_with_spaces_or_00_and_brackets_is_e164() {
        assert_eq!(
            normalise_phone("p", "+49 309347052").unwrap(),
            "+49309347052"
        );
        assert_eq!(
            normalise_phone("p", "0049 (30) 9347052").unwrap(),
            "+49309347052"
        );
    }

    #[test]
    fn full_width_email_is_ascii() {
        assert_eq!(
            normalise_email("e", "ａｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ").unwrap(),
            "ana@example.com"
        );
        assert_eq!(
            normalise_email("e", "ＡＮＡ＠ＥＸＡＭＰＬＥ．ＣＯＭ").unwrap(),
            "ana@example.com"
        );
    }

    #[test]
    fn full_width_phone_is_ascii() {
        assert_eq!(
            normalise_phone("p", "＋４９ ３０ ９３４７０５２").unwrap(),
            "+49309347052"
        );
        assert_eq!(
            normalise_phone("p", "００４９３０９３４７０５２").unwrap(),
            "+49309347052"
        );
    }

    #[test]
    fn unicode_spaces_separate_phone_digits() {
        for raw in [
            "+49\u{a0}30\u{a0}9347052",
            "+49\u{2009}30\u{202f}9347052",
            "+49\u{3000}30\u{2003}9347052",
        ] {
            assert_eq!(
                normalise_phone("p", raw).unwrap(),
                "+49309347052",
                "{raw:?}"
            );
        }
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        let (field, reason) = refused_field(normalise_email("customer.email", "ana\n@example.com"));
        assert_eq!(field, "customer.email");
        assert_eq!(reason, "must not contain control characters");

        let (field, reason) = refused_field(normalise_phone("customer.phone", "+49\u{0}309347052"));
        assert_eq!(field, "customer.phone");
        assert_eq!(reason, "must not contain control characters");

        let (field, reason) =
            refused_field(normalise_external_id("customer.external_id", "crm\u{7f}1"));
        assert_eq!(field, "customer.external_id");
        assert_eq!(reason, "must not contain control characters");

        let (field, _) = refused_field(normalise_external_id("x", "crm\u{85}1"));
        assert_eq!(field, "x");
        let (field, _) = refused_field(clean("x", "ok\t"));
        assert_eq!(field, "x");
    }

    #[test]
    fn control_characters_refused_through_identity() {
        let err = Identity::normalise("customer", "ana\n@example.com", "", "").unwrap_err();
        assert!(
            matches!(&err, DomainError::InvalidField { field, .. } if field == "customer.email"),
            "{err:?}"
        );
    }

    #[test]
    fn soft_hyphen_and_bom_are_removed() {
        assert_eq!(
            normalise_email("e", "\u{feff}ana\u{ad}.silva@exam\u{ad}ple.com").unwrap(),
            "ana.silva@example.com"
        );
        assert_eq!(
            normalise_phone("p", "\u{feff}+49\u{ad}309347052").unwrap(),
            "+49309347052"
        );
        assert_eq!(
            normalise_external_id("x", "\u{feff}crm\u{ad}-1").unwrap(),
            "crm-1"
        );
    }

    #[test]
    fn bidi_override_is_removed() {
        assert_eq!(
            normalise_email("e", "\u{202e}moc.elpmaxe@ana").unwrap_err(),
            DomainError::invalid("e", "is not an email address")
        );
        assert_eq!(
            normalise_email("e", "ana\u{202e}@example.com\u{202c}").unwrap(),
            "ana@example.com"
        );
        assert_eq!(
            normalise_external_id("x", "crm\u{202e}1\u{2066}2\u{2069}").unwrap(),
            "crm12"
        );
    }

    #[test]
    fn format_chars_cover_the_cf_list() {
        for c in [
            '\u{ad}',
            '\u{600}',
            '\u{605}',
            '\u{61c}',
            '\u{6dd}',
            '\u{70f}',
            '\u{890}',
            '\u{891}',
            '\u{8e2}',
            '\u{180e}',
            '\u{200b}',
            '\u{200f}',
            '\u{202a}',
            '\u{202e}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{206f}',
            '\u{feff}',
            '\u{fff9}',
            '\u{fffb}',
            '\u{110bd}',
            '\u{110cd}',
            '\u{13430}',
            '\u{1343f}',
            '\u{1bca0}',
            '\u{1bca3}',
            '\u{1d173}',
            '\u{1d17a}',
            '\u{e0001}',
            '\u{e0020}',
            '\u{e007f}',
        ] {
            assert!(is_format_char(c), "{c:?}");
        }
        for c in [
            'a',
            ' ',
            '\u{a0}',
            '\u{2065}',
            '\u{2028}',
            '\u{fff8}',
            '\u{fffc}',
            '\u{e0000}',
            '\u{e0002}',
            '\u{e0080}',
            '\u{0}',
            '\u{7f}',
        ] {
            assert!(!is_format_char(c), "{c:?}");
        }
    }

    #[test]
    fn clean_is_the_shared_rule() {
        assert_eq!(clean("f", "  ＣＲＭ\u{200d}-1\u{a0}").unwrap(), "CRM-1");
        assert_eq!(clean("f", "\u{200b}").unwrap(), "");
    }

    #[test]
    fn external_id_keeps_case_and_counts_chars_after_normalisation() {
        assert_eq!(normalise_external_id("x", " CRM-1 ").unwrap(), "CRM-1");
        // 128 characters plus zero-width spaces: fine once they are removed.
        let padded: String = "a".repeat(MAX_EXTERNAL_ID_CHARS) + &"\u{200b}".repeat(10);
        assert_eq!(
            normalise_external_id("x", &padded).unwrap(),
            "a".repeat(MAX_EXTERNAL_ID_CHARS)
        );
        let long = "ａ".repeat(MAX_EXTERNAL_ID_CHARS + 1);
        assert!(normalise_external_id("x", &long).is_err());
        let (field, reason) = refused_field(normalise_external_id("x", "\u{200b}\u{feff}"));
        assert_eq!(
            (field.as_str(), reason.as_str()),
            ("x", "must not be empty")
        );
    }

    #[test]
    fn email_normalisation_is_stable_for_lower_case_only_compositions() {
        // `J` + caron has no precomposed form, `j` + caron does (`ǰ`).
        let once = normalise_email("e", "J\u{30c}@example.com").unwrap();
        assert_eq!(once, "\u{1f0}@example.com");
        assert_eq!(normalise_email("e", &once).unwrap(), once);
    }
}
