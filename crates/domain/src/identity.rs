//! How a customer is recognised: normalised email, phone (E.164) and external id.

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

    /// The identity the customer's id is derived from: external id, else email, else phone.
    pub fn primary_key(&self) -> Option<String> {
        if let Some(x) = &self.external_id {
            Some(format!("external:{x}"))
        } else if let Some(e) = &self.email {
            Some(format!("email:{e}"))
        } else {
            self.phone.as_ref().map(|p| format!("phone:{p}"))
        }
    }
}

fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

/// Trims and lower-cases an email, and checks its shape (`local@domain.tld`).
pub fn normalise_email(field: &str, raw: &str) -> Result<String, DomainError> {
    let email = raw.trim().to_lowercase();
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
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if valid {
        Ok(email)
    } else {
        Err(DomainError::invalid(field, "is not an email address"))
    }
}

/// Normalises a phone number to E.164: removes spaces, dashes, dots and brackets,
/// turns a leading `00` into `+`, and requires a country code (8 to 15 digits).
pub fn normalise_phone(field: &str, raw: &str) -> Result<String, DomainError> {
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'))
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

/// Trims an external id and checks its length and characters.
pub fn normalise_external_id(field: &str, raw: &str) -> Result<String, DomainError> {
    let id = raw.trim();
    if id.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_EXTERNAL_ID_CHARS} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(id.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let id = Identity::normalise("customer", "  Ana.Silva@Example.COM ", "", "").unwrap();
        assert_eq!(id.email.as_deref(), Some("ana.silva@example.com"));
        assert_eq!(id.primary_key().unwrap(), "email:ana.silva@example.com");
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
    fn external_id_wins_as_primary() {
        let id = Identity::normalise("c", "a@b.de", "+4930123456", " crm-1 ").unwrap();
        assert_eq!(id.primary_key().unwrap(), "external:crm-1");
        let id = Identity::normalise("c", "", "+4930123456", "").unwrap();
        assert_eq!(id.primary_key().unwrap(), "phone:+4930123456");
    }

    #[test]
    fn no_identity_is_refused() {
        let err = Identity::normalise("customer", " ", "", "").unwrap_err();
        assert!(matches!(err, DomainError::InvalidField { field, .. } if field == "customer"));
    }
}
