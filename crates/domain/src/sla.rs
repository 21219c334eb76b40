//! SLA time, as pure code: a tenant's business hours (an IANA time zone, weekly open
//! hours, holidays) and the due time of a clock that runs only in open hours and
//! not while the ticket waits on the customer.
//!
//! - [`policy`]: a tenant's SLA policy (targets, hours, warning point, budgets).
//! - [`clocks`]: a ticket's clocks, rebuilt from its events and the policy.
//!
//! Times are [`UnixMillis`]; the calendar is read in the tenant's time zone, so a
//! due time moves over a closed weekend or a holiday, and daylight-saving changes
//! shorten or lengthen a day as the wall clock says.

use std::collections::BTreeSet;

use jiff::{
    Timestamp,
    civil::{Date, Time},
    tz::TimeZone,
};

use crate::{DomainError, UnixMillis};

pub mod attainment;
pub mod clocks;
pub mod policy;

/// Days looked ahead for open time before giving up (a calendar with open hours
/// on some weekday always finds them well within this).
const HORIZON_DAYS: i32 = 3 * 366;

/// When support is open.
#[derive(Clone, Debug)]
pub struct BusinessHours {
    tz: TimeZone,
    /// Monday first: open from and to, minutes of the local day; `None` closed.
    weekly: [Option<(u16, u16)>; 7],
    holidays: BTreeSet<Date>,
}

impl BusinessHours {
    /// Open around the clock, every day, in UTC.
    pub fn always() -> BusinessHours {
        BusinessHours {
            tz: TimeZone::UTC,
            weekly: [Some((0, 24 * 60)); 7],
            holidays: BTreeSet::new(),
        }
    }

    /// Hours in IANA time zone `zone`, with `weekly` open windows (Monday first;
    /// minutes from local midnight, `from < to <= 1440`) and closed `holidays`.
    pub fn new(
        zone: &str,
        weekly: [Option<(u16, u16)>; 7],
        holidays: impl IntoIterator<Item = Date>,
    ) -> Result<BusinessHours, DomainError> {
        let tz = TimeZone::get(zone).map_err(|_| {
            DomainError::invalid("time_zone", format!("{zone:?} is not an IANA time zone"))
        })?;
        for (day, window) in weekly.iter().enumerate() {
            if let Some((from, to)) = window
                && !(from < to && *to <= 24 * 60)
            {
                return Err(DomainError::invalid(
                    format!("weekly_hours[{day}]"),
                    "open from before to, within the day",
                ));
            }
        }
        if weekly.iter().all(Option::is_none) {
            return Err(DomainError::invalid(
                "weekly_hours",
                "open on at least one day",
            ));
        }
        Ok(BusinessHours {
            tz,
            weekly,
            holidays: holidays.into_iter().collect(),
        })
    }

    /// The open window of local `date`, as instants; `None` when closed.
    fn window(&self, date: Date) -> Option<(UnixMillis, UnixMillis)> {
        if self.holidays.contains(&date) {
            return None;
        }
        let weekday = usize::try_from(date.weekday().to_monday_zero_offset()).ok()?;
        let (from, to) = (*self.weekly.get(weekday)?)?;
        let at = |minutes: u16| -> Option<UnixMillis> {
            let instant = if minutes >= 24 * 60 {
                date.tomorrow().ok()?.to_zoned(self.tz.clone()).ok()?
            } else {
                let time = Time::new(
                    i8::try_from(minutes / 60).ok()?,
                    i8::try_from(minutes % 60).ok()?,
                    0,
                    0,
                )
                .ok()?;
                date.to_datetime(time).to_zoned(self.tz.clone()).ok()?
            };
            Some(instant.timestamp().as_millisecond())
        };
        Some((at(from)?, at(to)?))
    }

    fn local_date(&self, at: UnixMillis) -> Option<Date> {
        Some(
            Timestamp::from_millisecond(at)
                .ok()?
                .to_zoned(self.tz.clone())
                .date(),
        )
    }

    /// The instant `open_ms` milliseconds of open time after `start` (`start` itself
    /// when `open_ms` is 0 and support is open then). `None` only when no open time
    /// is found within three years.
    pub fn add(&self, start: UnixMillis, open_ms: i64) -> Option<UnixMillis> {
        let mut now = start;
        let mut left = open_ms.max(0);
        let mut date = self.local_date(start)?;
        for _ in 0..HORIZON_DAYS {
            if let Some((open, close)) = self.window(date) {
                now = now.max(open);
                if now < close {
                    let here = close - now;
                    if left <= here {
                        return Some(now + left);
                    }
                    left -= here;
                    now = close;
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// Open time between `from` and `to` (0 when `to <= from`).
    pub fn open_between(&self, from: UnixMillis, to: UnixMillis) -> i64 {
        let Some(mut date) = self.local_date(from) else {
            return 0;
        };
        let mut total = 0;
        for _ in 0..HORIZON_DAYS {
            if self.window_start(date).is_none_or(|start| start >= to) {
                break;
            }
            if let Some((open, close)) = self.window(date) {
                let (lo, hi) = (open.max(from), close.min(to));
                total += (hi - lo).max(0);
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        total
    }

    /// The local midnight starting `date`.
    fn window_start(&self, date: Date) -> Option<UnixMillis> {
        Some(
            date.to_zoned(self.tz.clone())
                .ok()?
                .timestamp()
                .as_millisecond(),
        )
    }
}

/// A clock's due time: `target_ms` of open time after `started_at`, not counting the
/// `pauses` (from, to — `None` while still paused), which must be in order and not
/// overlap. `None` while paused: the clock stands still and has no due time.
pub fn due(
    hours: &BusinessHours,
    started_at: UnixMillis,
    target_ms: i64,
    pauses: &[(UnixMillis, Option<UnixMillis>)],
) -> Option<UnixMillis> {
    let mut running_since = started_at;
    let mut left = target_ms;
    for (from, to) in pauses {
        if *from >= running_since {
            let run = hours.open_between(running_since, *from);
            if run >= left {
                return hours.add(running_since, left);
            }
            left -= run;
        }
        running_since = running_since.max((*to)?);
    }
    hours.add(running_since, left)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;

    fn at(s: &str) -> UnixMillis {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    /// Berlin, Monday to Friday 09:00–17:00.
    fn office(holidays: &[&str]) -> BusinessHours {
        let day = Some((9 * 60, 17 * 60));
        BusinessHours::new(
            "Europe/Berlin",
            [day, day, day, day, day, None, None],
            holidays.iter().map(|d| d.parse::<Date>().unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn a_due_time_moves_over_a_closed_weekend_and_a_holiday() {
        // Friday 2026-11-27 16:00 Berlin (15:00Z) + 4 open hours: 1 h on Friday,
        // 3 h on Monday from 09:00 → Monday 12:00 Berlin (11:00Z).
        let friday = at("2026-11-27T15:00:00Z");
        assert_eq!(
            office(&[]).add(friday, 4 * HOUR),
            Some(at("2026-11-30T11:00:00Z"))
        );
        // Monday a holiday: Tuesday 12:00.
        assert_eq!(
            office(&["2026-11-30"]).add(friday, 4 * HOUR),
            Some(at("2026-12-01T11:00:00Z"))
        );
        // Saturday counts from Monday's opening.
        assert_eq!(
            office(&[]).add(at("2026-11-28T10:00:00Z"), 30 * MINUTE),
            Some(at("2026-11-30T08:30:00Z"))
        );
        assert_eq!(
            office(&[]).open_between(friday, at("2026-11-30T11:00:00Z")),
            4 * HOUR
        );
    }

    #[test]
    fn a_pending_period_moves_the_due_time_by_exactly_its_length() {
        let hours = BusinessHours::always();
        let start = at("2026-11-24T10:00:00Z");
        let plain = due(&hours, start, 8 * HOUR, &[]).unwrap();
        assert_eq!(plain, start + 8 * HOUR);
        let paused = due(
            &hours,
            start,
            8 * HOUR,
            &[(start + HOUR, Some(start + HOUR + 37 * MINUTE))],
        )
        .unwrap();
        assert_eq!(paused - plain, 37 * MINUTE);
        // While still pending, there is no due time.
        assert_eq!(due(&hours, start, 8 * HOUR, &[(start + HOUR, None)]), None);
        // A pause after the due time changes nothing.
        assert_eq!(
            due(
                &hours,
                start,
                HOUR,
                &[(start + 2 * HOUR, Some(start + 3 * HOUR))]
            ),
            Some(start + HOUR)
        );
        // In office hours, a pause only counts where support was open.
        let friday = at("2026-11-27T15:00:00Z");
        let over_weekend = due(
            &office(&[]),
            friday,
            4 * HOUR,
            &[(at("2026-11-27T15:30:00Z"), Some(at("2026-11-30T08:30:00Z")))],
        );
        // 30 min on Friday, then from Monday 09:30 Berlin 3.5 h → 13:00 Berlin.
        assert_eq!(over_weekend, Some(at("2026-11-30T12:00:00Z")));
    }

    #[test]
    fn bad_calendars_are_refused_by_field() {
        let field = |r: Result<BusinessHours, DomainError>| match r.unwrap_err() {
            DomainError::InvalidField { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(BusinessHours::new("Mars/Olympus", [Some((0, 60)); 7], [])),
            "time_zone"
        );
        let mut week = [None; 7];
        week[2] = Some((600, 500));
        assert_eq!(
            field(BusinessHours::new("UTC", week, [])),
            "weekly_hours[2]"
        );
        assert_eq!(
            field(BusinessHours::new("UTC", [None; 7], [])),
            "weekly_hours"
        );
    }
}
