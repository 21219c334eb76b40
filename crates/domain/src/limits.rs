//! Size limits on everything a caller sends, and the checks that enforce them.
//! The numbers are part of the public contract (documented in the protos and README).

use crate::DomainError;

/// Subject line: 1 to 200 characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Message bodies (customer messages, replies, notes, resolutions): at most 32 KiB.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
/// Product area: 1 to 64 characters of `[a-z0-9_-]`.
pub const MAX_PRODUCT_AREA_CHARS: usize = 64;
/// Idempotency keys: 1 to 128 printable ASCII characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;
/// Facts given with one contact.
pub const MAX_FACTS_PER_CONTACT: usize = 32;
/// Facts kept per customer.
pub const MAX_FACTS_PER_CUSTOMER: usize = 256;
/// Fact keys: 1 to 64 characters of `[a-z0-9_.-]`.
pub const MAX_FACT_KEY_CHARS: usize = 64;
/// Fact values: 1 to 512 characters.
pub const MAX_FACT_VALUE_CHARS: usize = 512;
/// How often one ticket may be reopened before a new contact must open a new ticket.
pub const MAX_REOPENS: u32 = 10;
/// Longest reason for forgetting a customer, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A required, trimmed-non-empty text of at most `max` characters, with no control
/// characters other than newlines and tabs.
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    no_control_chars(field, value)
}

/// A message body: required, at most [`MAX_BODY_BYTES`].
pub fn body(field: &str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    optional_body(field, value)
}

/// An optional long text (resolution, reason): at most [`MAX_BODY_BYTES`].
pub fn optional_body(field: &str, value: &str) -> Result<(), DomainError> {
    if value.len() > MAX_BODY_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    no_control_chars(field, value)
}

/// A product area: `[a-z0-9_-]{1,64}`.
pub fn product_area(field: &str, value: &str) -> Result<(), DomainError> {
    slug(field, value, MAX_PRODUCT_AREA_CHARS, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
    })
}

/// A fact key: `[a-z0-9_.-]{1,64}`.
pub fn fact_key(field: &str, value: &str) -> Result<(), DomainError> {
    slug(field, value, MAX_FACT_KEY_CHARS, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
    })
}

/// An idempotency key: 1 to 128 printable ASCII characters.
pub fn idempotency_key(field: &str, value: &str) -> Result<(), DomainError> {
    slug(field, value, MAX_IDEMPOTENCY_KEY_CHARS, |c| {
        c.is_ascii_graphic()
    })
}

fn slug(
    field: &str,
    value: &str,
    max_chars: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), DomainError> {
    if value.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    match value.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(DomainError::invalid(
            field,
            format!("must not contain {c:?}"),
        )),
        None => Ok(()),
    }
}

fn no_control_chars(field: &str, value: &str) -> Result<(), DomainError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_limits() {
        assert!(text("subject", "Router broken", MAX_SUBJECT_CHARS).is_ok());
        assert!(text("subject", "   ", MAX_SUBJECT_CHARS).is_err());
        assert!(text("subject", &"é".repeat(200), MAX_SUBJECT_CHARS).is_ok());
        assert!(text("subject", &"é".repeat(201), MAX_SUBJECT_CHARS).is_err());
        assert!(text("subject", "a\u{0}b", MAX_SUBJECT_CHARS).is_err());
    }

    #[test]
    fn body_limits() {
        assert!(body("body", "line one\nline two\ttab").is_ok());
        assert!(body("body", &"x".repeat(MAX_BODY_BYTES)).is_ok());
        assert!(body("body", &"x".repeat(MAX_BODY_BYTES + 1)).is_err());
        assert!(optional_body("resolution", "").is_ok());
    }

    #[test]
    fn slugs() {
        assert!(product_area("product_area", "router-x200").is_ok());
        assert!(product_area("product_area", "Router").is_err());
        assert!(fact_key("facts[0].key", "serial.number").is_ok());
        assert!(idempotency_key("idempotency_key", "order-42/mail#1").is_ok());
        assert!(idempotency_key("idempotency_key", "has space").is_err());
        let err = product_area("product_area", "").unwrap_err();
        assert!(matches!(err, DomainError::InvalidField { field, .. } if field == "product_area"));
    }
}
