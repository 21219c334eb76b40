//! How customers rate us: CSAT after each solve (1 to 5, on the ticket) and NPS
//! (0 to 10, on the customer), with the standard NPS bands. The commands that
//! record them live with their aggregates (`ticket/satisfaction.rs`,
//! `customer/nps.rs`); the scales live here.

use crate::{DomainError, limits};

/// The CSAT scale.
pub const CSAT_RANGE: std::ops::RangeInclusive<u8> = 1..=5;
/// The NPS scale.
pub const NPS_RANGE: std::ops::RangeInclusive<u8> = 0..=10;
/// A CSAT at or below this raises a follow-up for the ticket's manager.
pub const CSAT_LOW: u8 = 2;

/// A customer's NPS category by their latest answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NpsCategory {
    /// 9 or 10: the fans.
    Promoter,
    /// 7 or 8: the indifferent.
    Passive,
    /// 0 to 6: the fault-finders.
    Detractor,
}

impl NpsCategory {
    /// The band of an answer on the 0–10 scale.
    pub fn of(score: u8) -> NpsCategory {
        match score {
            9.. => NpsCategory::Promoter,
            7..=8 => NpsCategory::Passive,
            _ => NpsCategory::Detractor,
        }
    }
}

/// A score on `range` with an optional comment; error fields name the request's.
pub(crate) fn validate(
    range: std::ops::RangeInclusive<u8>,
    score: u8,
    comment: &str,
) -> Result<(), DomainError> {
    if !range.contains(&score) {
        return Err(DomainError::invalid(
            "score",
            format!("from {} to {}", range.start(), range.end()),
        ));
    }
    limits::optional_body("comment", comment)
}

/// A wire score (`uint32`) as a scale value: out-of-range values stay out of range.
pub fn score(raw: u32) -> u8 {
    u8::try_from(raw).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_standard_bands() {
        let bands: Vec<NpsCategory> = NPS_RANGE.map(NpsCategory::of).collect();
        use NpsCategory::*;
        assert_eq!(
            bands,
            [
                Detractor, Detractor, Detractor, Detractor, Detractor, Detractor, Detractor,
                Passive, Passive, Promoter, Promoter
            ]
        );
    }

    #[test]
    fn scores_outside_their_scale_are_refused() {
        assert!(validate(CSAT_RANGE, 0, "").is_err());
        assert!(validate(CSAT_RANGE, 6, "").is_err());
        assert!(validate(NPS_RANGE, 11, "").is_err());
        assert_eq!(validate(NPS_RANGE, 0, "meh"), Ok(()));
        assert_eq!(score(300), u8::MAX);
    }

    proptest! {
        #[test]
        fn every_score_has_one_band_and_bands_rise_with_scores(a in 0u8..=10, b in 0u8..=10) {
            let rank = |c| match c {
                NpsCategory::Detractor => 0,
                NpsCategory::Passive => 1,
                NpsCategory::Promoter => 2,
            };
            if a <= b {
                prop_assert!(rank(NpsCategory::of(a)) <= rank(NpsCategory::of(b)));
            }
        }
    }
}
