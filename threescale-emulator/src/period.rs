//! Limit periods and their UTC boundaries, as the real backend computes them.
//!
//! Every period starts and ends on UTC boundaries: a minute at `:00`, an hour at
//! `HH:00:00`, a day at midnight, a week on **Monday** 00:00, a month on the 1st and
//! a year on January 1st. `eternity` runs from 1970-01-01 to 9999-12-31.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// A period a usage limit can use.
///
/// Periods are ordered by length (`Minute < Hour < ... < Eternity`), which is the
/// order the real backend uses to break ties in the limit headers.
///
/// ```
/// use threescale_emulator::LimitPeriod;
/// assert_eq!("week".parse::<LimitPeriod>().unwrap(), LimitPeriod::Week);
/// assert!(LimitPeriod::Day < LimitPeriod::Month);
/// assert_eq!(LimitPeriod::Eternity.to_string(), "eternity");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitPeriod {
    /// One UTC minute.
    Minute,
    /// One UTC hour.
    Hour,
    /// One UTC day.
    Day,
    /// One ISO week, Monday to Sunday, UTC.
    Week,
    /// One calendar month, UTC.
    Month,
    /// One calendar year, UTC.
    Year,
    /// Forever.
    Eternity,
}

/// The error of parsing an unknown period name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown period {0:?} (expected minute, hour, day, week, month, year or eternity)")]
pub struct UnknownPeriod(pub String);

impl LimitPeriod {
    /// All periods, shortest first.
    pub const ALL: [LimitPeriod; 7] = [
        LimitPeriod::Minute,
        LimitPeriod::Hour,
        LimitPeriod::Day,
        LimitPeriod::Week,
        LimitPeriod::Month,
        LimitPeriod::Year,
        LimitPeriod::Eternity,
    ];

    /// All periods, longest first: the order of `usage_report` elements of one metric.
    pub const DESC: [LimitPeriod; 7] = [
        LimitPeriod::Eternity,
        LimitPeriod::Year,
        LimitPeriod::Month,
        LimitPeriod::Week,
        LimitPeriod::Day,
        LimitPeriod::Hour,
        LimitPeriod::Minute,
    ];

    /// The period's name as the backend writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitPeriod::Minute => "minute",
            LimitPeriod::Hour => "hour",
            LimitPeriod::Day => "day",
            LimitPeriod::Week => "week",
            LimitPeriod::Month => "month",
            LimitPeriod::Year => "year",
            LimitPeriod::Eternity => "eternity",
        }
    }

    /// The start of the period that contains `t`.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use threescale_emulator::LimitPeriod;
    /// // 2010-05-16 is a Sunday: its week started on Monday 2010-05-10.
    /// let t = Utc.with_ymd_and_hms(2010, 5, 16, 13, 45, 10).unwrap();
    /// assert_eq!(LimitPeriod::Week.start(t), Utc.with_ymd_and_hms(2010, 5, 10, 0, 0, 0).unwrap());
    /// assert_eq!(LimitPeriod::Month.end(t), Utc.with_ymd_and_hms(2010, 6, 1, 0, 0, 0).unwrap());
    /// ```
    pub fn start(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let date = t.date_naive();
        match self {
            LimitPeriod::Minute => at(date, t.hour(), t.minute()),
            LimitPeriod::Hour => at(date, t.hour(), 0),
            LimitPeriod::Day => at(date, 0, 0),
            LimitPeriod::Week => {
                let back = Duration::days(i64::from(t.weekday().num_days_from_monday()));
                at(
                    date.checked_sub_signed(back).unwrap_or(NaiveDate::MIN),
                    0,
                    0,
                )
            }
            LimitPeriod::Month => at(first_of_month(t.year(), t.month()), 0, 0),
            LimitPeriod::Year => at(first_of_month(t.year(), 1), 0, 0),
            LimitPeriod::Eternity => eternity_start(),
        }
    }

    /// The end (exclusive) of the period that contains `t`: the `period_end` printed in
    /// usage reports.
    pub fn end(self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            LimitPeriod::Minute => plus(self.start(t), Duration::minutes(1)),
            LimitPeriod::Hour => plus(self.start(t), Duration::hours(1)),
            LimitPeriod::Day => plus(self.start(t), Duration::days(1)),
            LimitPeriod::Week => plus(self.start(t), Duration::days(7)),
            LimitPeriod::Month => {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                at(first_of_month(y, m), 0, 0)
            }
            LimitPeriod::Year => at(first_of_month(t.year() + 1, 1), 0, 0),
            LimitPeriod::Eternity => eternity_end(),
        }
    }

    /// Seconds from `now` to the end of the period, rounded up; `-1` for eternity
    /// (the `3scale-limit-reset` value).
    pub fn remaining_seconds(self, now: DateTime<Utc>) -> i64 {
        if self == LimitPeriod::Eternity {
            return -1;
        }
        let left = self.end(now) - now;
        let whole = left.num_seconds();
        if left > Duration::seconds(whole) {
            whole + 1
        } else {
            whole
        }
    }
}

/// `t + d`, saturating at the latest representable time.
fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MAX)
}

fn at(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let naive = date
        .and_hms_opt(hour, minute, 0)
        .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN));
    Utc.from_utc_datetime(&naive)
}

fn eternity_start() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn eternity_end() -> DateTime<Utc> {
    at(
        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
        0,
        0,
    )
}

/// Formats a time like the backend's `TIME_FORMAT` (`%Y-%m-%d %H:%M:%S %z` in UTC).
pub(crate) fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S +0000").to_string()
}

impl fmt::Display for LimitPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LimitPeriod {
    type Err = UnknownPeriod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LimitPeriod::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPeriod(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn minute_hour_day_boundaries() {
        let now = t(2010, 5, 15, 13, 45, 59);
        assert_eq!(LimitPeriod::Minute.start(now), t(2010, 5, 15, 13, 45, 0));
        assert_eq!(LimitPeriod::Minute.end(now), t(2010, 5, 15, 13, 46, 0));
        assert_eq!(LimitPeriod::Hour.start(now), t(2010, 5, 15, 13, 0, 0));
        assert_eq!(LimitPeriod::Hour.end(now), t(2010, 5, 15, 14, 0, 0));
        assert_eq!(LimitPeriod::Day.start(now), t(2010, 5, 15, 0, 0, 0));
        assert_eq!(LimitPeriod::Day.end(now), t(2010, 5, 16, 0, 0, 0));
    }

    #[test]
    fn rollovers_at_end_of_year() {
        let now = t(2010, 12, 31, 23, 59, 59);
        assert_eq!(LimitPeriod::Minute.end(now), t(2011, 1, 1, 0, 0, 0));
        assert_eq!(LimitPeriod::Hour.end(now), t(2011, 1, 1, 0, 0, 0));
        assert_eq!(LimitPeriod::Day.end(now), t(2011, 1, 1, 0, 0, 0));
        assert_eq!(LimitPeriod::Month.start(now), t(2010, 12, 1, 0, 0, 0));
        assert_eq!(LimitPeriod::Month.end(now), t(2011, 1, 1, 0, 0, 0));
        assert_eq!(LimitPeriod::Year.start(now), t(2010, 1, 1, 0, 0, 0));
        assert_eq!(LimitPeriod::Year.end(now), t(2011, 1, 1, 0, 0, 0));
        // 2010-12-31 is a Friday.
        assert_eq!(LimitPeriod::Week.start(now), t(2010, 12, 27, 0, 0, 0));
        assert_eq!(LimitPeriod::Week.end(now), t(2011, 1, 3, 0, 0, 0));
    }

    #[test]
    fn weeks_start_on_monday_and_sunday_belongs_to_previous_week() {
        // Monday
        let monday = t(2024, 1, 1, 0, 0, 0);
        assert_eq!(LimitPeriod::Week.start(monday), monday);
        assert_eq!(LimitPeriod::Week.end(monday), t(2024, 1, 8, 0, 0, 0));
        // Sunday 23:59:59 is still in the week of Monday 2024-01-01.
        let sunday = t(2024, 1, 7, 23, 59, 59);
        assert_eq!(LimitPeriod::Week.start(sunday), monday);
        assert_eq!(
            LimitPeriod::Week.start(t(2024, 1, 8, 0, 0, 0)),
            t(2024, 1, 8, 0, 0, 0)
        );
    }

    #[test]
    fn february_and_leap_years() {
        assert_eq!(
            LimitPeriod::Month.end(t(2024, 2, 29, 12, 0, 0)),
            t(2024, 3, 1, 0, 0, 0)
        );
        assert_eq!(
            LimitPeriod::Month.start(t(2023, 2, 28, 23, 59, 59)),
            t(2023, 2, 1, 0, 0, 0)
        );
    }

    #[test]
    fn eternity() {
        let now = t(2010, 5, 15, 1, 2, 3);
        assert_eq!(LimitPeriod::Eternity.start(now), t(1970, 1, 1, 0, 0, 0));
        assert_eq!(LimitPeriod::Eternity.end(now), t(9999, 12, 31, 0, 0, 0));
        assert_eq!(LimitPeriod::Eternity.remaining_seconds(now), -1);
    }

    #[test]
    fn remaining_seconds_round_up() {
        let now = t(2010, 5, 15, 22, 59, 59);
        assert_eq!(LimitPeriod::Hour.remaining_seconds(now), 1);
        assert_eq!(LimitPeriod::Day.remaining_seconds(now), 3601);
        let half = now + Duration::milliseconds(500);
        assert_eq!(LimitPeriod::Hour.remaining_seconds(half), 1);
        let boundary = t(2010, 5, 16, 0, 0, 0);
        assert_eq!(LimitPeriod::Day.remaining_seconds(boundary), 86400);
    }

    #[test]
    fn extreme_times_do_not_panic() {
        for t in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            for p in LimitPeriod::ALL {
                let _ = (p.start(t), p.end(t), p.remaining_seconds(t));
            }
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(
            format_time(t(2010, 5, 1, 0, 0, 0)),
            "2010-05-01 00:00:00 +0000"
        );
    }

    #[test]
    fn parse_and_order() {
        for p in LimitPeriod::ALL {
            assert_eq!(p.as_str().parse::<LimitPeriod>().unwrap(), p);
        }
        assert!("second".parse::<LimitPeriod>().is_err());
        let mut sorted = LimitPeriod::DESC;
        sorted.sort();
        assert_eq!(sorted, LimitPeriod::ALL);
    }

    #[test]
    fn format_time_examples() {
        use chrono::{TimeZone, Utc};
        let t = Utc.with_ymd_and_hms(2010, 5, 15, 0, 0, 0).unwrap();
        assert_eq!(format_time(t), "2010-05-15 00:00:00 +0000");
    }
}
