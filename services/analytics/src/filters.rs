//! Request fields shared by every analytics call, checked once: enumerations,
//! ids, time ranges and `as_of`.

use frontline_domain::UnixMillis;
use frontline_proto::{convert, v1};
use frontline_runtime::ApiError;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::store::time;

/// A known enumeration value as its wire number; `None` for unspecified (no
/// filter); an unknown number is INVALID_ARGUMENT.
pub fn known<W: TryFrom<i32>>(field: &str, raw: i32) -> Result<Option<i16>, ApiError> {
    if raw == 0 {
        return Ok(None);
    }
    W::try_from(raw).map_err(|_| ApiError::invalid(field, format!("unknown value {raw}")))?;
    Ok(Some(
        i16::try_from(raw).map_err(|_| ApiError::invalid(field, "out of range"))?,
    ))
}

/// A trimmed text filter; `None` when empty.
pub fn optional(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (!raw.is_empty()).then(|| raw.to_string())
}

/// A product area filter: `None` when empty (any area); otherwise it must be one
/// (`[a-z0-9_-]{1,64}`), so a typo is an error rather than an empty answer.
pub fn product_area(field: &str, raw: &str) -> Result<Option<String>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    frontline_domain::limits::product_area(field, raw)?;
    Ok(Some(raw.to_string()))
}

/// A UUID filter; `None` when empty.
pub fn uuid(field: &str, raw: &str) -> Result<Option<Uuid>, ApiError> {
    optional(raw)
        .map(|s| Uuid::parse_str(&s).map_err(|_| ApiError::invalid(field, "not a UUID")))
        .transpose()
}

/// A valid timestamp in milliseconds.
pub fn timestamp(field: &str, ts: &prost_types::Timestamp) -> Result<UnixMillis, ApiError> {
    convert::millis_checked(ts)
        .ok_or_else(|| ApiError::invalid(field, "not a valid time between 1970 and 9999"))
}

/// `as_of`: unset for now; a past (or present) moment otherwise.
pub fn as_of(raw: Option<&prost_types::Timestamp>) -> Result<Option<UnixMillis>, ApiError> {
    let Some(ts) = raw else { return Ok(None) };
    let at = timestamp("as_of", ts)?;
    if at > frontline_runtime::now_millis() {
        return Err(ApiError::invalid("as_of", "is in the future"));
    }
    Ok(Some(at))
}

/// A half-open range [from, to) with open ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// The start, inclusive.
    pub from: Option<UnixMillis>,
    /// The end, exclusive.
    pub to: Option<UnixMillis>,
}

impl Range {
    /// Appends `AND column >= from AND column < to` for the ends that are set.
    pub fn push(&self, q: &mut QueryBuilder<'_, Postgres>, column: &str) {
        if let Some(from) = self.from {
            q.push(format_args!(" AND {column} >= "));
            q.push_bind(time(from));
        }
        if let Some(to) = self.to {
            q.push(format_args!(" AND {column} < "));
            q.push_bind(time(to));
        }
    }

    /// Its length in milliseconds, when both ends are set.
    pub fn span(&self) -> Option<i64> {
        Some(self.to? - self.from?)
    }
}

/// A time range field (`field.from`, `field.to`); its end may not come before its start.
pub fn range(field: &str, raw: Option<&v1::TimeRange>) -> Result<Range, ApiError> {
    let Some(raw) = raw else {
        return Ok(Range::default());
    };
    let end = |name: &str, ts: Option<&prost_types::Timestamp>| {
        ts.map(|ts| timestamp(&format!("{field}.{name}"), ts))
            .transpose()
    };
    let range = Range {
        from: end("from", raw.from.as_ref())?,
        to: end("to", raw.to.as_ref())?,
    };
    if range.span().is_some_and(|span| span < 0) {
        return Err(ApiError::invalid(
            format!("{field}.to"),
            "comes before the range's start",
        ));
    }
    Ok(range)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos: 0 }
    }

    #[test]
    fn ranges_must_run_forwards_and_stay_in_years_1970_to_9999() {
        let ok = v1::TimeRange {
            from: Some(ts(10)),
            to: Some(ts(20)),
        };
        assert_eq!(range("r", Some(&ok)).unwrap().span(), Some(10_000));
        let backwards = v1::TimeRange {
            from: Some(ts(20)),
            to: Some(ts(10)),
        };
        assert!(
            matches!(range("r", Some(&backwards)), Err(ApiError::InvalidArgument { field, .. }) if field == "r.to")
        );
        let huge = v1::TimeRange {
            from: Some(ts(i64::MAX)),
            to: None,
        };
        assert!(range("r", Some(&huge)).is_err());
        assert!(as_of(Some(&ts(convert::LATEST_SECONDS))).is_err());
    }

    #[test]
    fn enumerations_are_known_or_refused() {
        assert_eq!(known::<v1::Tier>("tier", 0).unwrap(), None);
        assert_eq!(known::<v1::Tier>("tier", 3).unwrap(), Some(3));
        assert!(known::<v1::Tier>("tier", 9).is_err());
        assert!(uuid("customer_id", "nope").is_err());
        assert_eq!(uuid("customer_id", " ").unwrap(), None);
    }

    #[test]
    fn product_areas_are_empty_or_well_formed() {
        assert_eq!(product_area("product_area", "").unwrap(), None);
        assert_eq!(
            product_area("product_area", "router-x200").unwrap(),
            Some("router-x200".into())
        );
        for bad in [" ", "Router", "a b", &"a".repeat(65)] {
            assert!(
                matches!(product_area("product_area", bad), Err(ApiError::InvalidArgument { field, .. }) if field == "product_area"),
                "{bad:?}"
            );
        }
    }
}
