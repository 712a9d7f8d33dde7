//! The `limit_headers` extension: `3scale-limit-remaining`, `3scale-limit-reset` and
//! `3scale-limit-max-value`, computed like the backend's `LimitHeaders`.

use chrono::{DateTime, Utc};

use crate::period::LimitPeriod;

/// The three limit header values; `max_value` is `None` in the unconstrained case
/// (`remaining = reset = -1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LimitHeaders {
    pub remaining: i64,
    pub reset: i64,
    pub max_value: Option<i64>,
}

/// What the algorithm needs of one usage report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderReport {
    pub period: LimitPeriod,
    pub max_value: i64,
    /// `compute_current_value` (stored, plus this authrep's usage when authorized).
    pub current_value: i64,
    /// The request's usage of the metric plus its descendants (`#N` counts as N).
    pub usage: i64,
}

impl HeaderReport {
    /// How many identical calls fit before the limit; `-1` when unbounded.
    pub(crate) fn remaining_same_calls(&self) -> i64 {
        let remaining = self.max_value.saturating_sub(self.current_value).max(0);
        if remaining <= 0 {
            0
        } else if self.usage > 0 {
            remaining / self.usage
        } else {
            -1
        }
    }
}

/// The backend's comparator: equal `remaining_same_calls` → the longer period first;
/// otherwise `-1` counts as smaller when it is `other`'s value or `one`'s value
/// compared with a positive one (the order-dependent quirk is kept).
fn compare(one: &HeaderReport, other: &HeaderReport) -> i32 {
    let one_rem = one.remaining_same_calls();
    let other_rem = other.remaining_same_calls();
    if one_rem == other_rem {
        match other.period.cmp(&one.period) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        }
    } else if other_rem == -1 || one_rem < other_rem {
        -1
    } else {
        1
    }
}

/// Ruby's `Array#min { |a, b| compare(a, b) }`: a later element replaces the current
/// minimum when `compare(later, current) < 0`.
fn most_constrained(reports: &[HeaderReport]) -> Option<&HeaderReport> {
    let mut min: Option<&HeaderReport> = None;
    for r in reports {
        min = match min {
            None => Some(r),
            Some(m) if compare(r, m) < 0 => Some(r),
            keep => keep,
        };
    }
    min
}

/// Computes the headers from the candidate reports at `now`.
pub(crate) fn compute(reports: &[HeaderReport], now: DateTime<Utc>) -> LimitHeaders {
    match most_constrained(reports) {
        Some(r) if r.remaining_same_calls() != -1 => LimitHeaders {
            remaining: r.remaining_same_calls(),
            reset: r.period.remaining_seconds(now),
            max_value: Some(r.max_value),
        },
        _ => LimitHeaders {
            remaining: -1,
            reset: -1,
            max_value: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn r(period: LimitPeriod, max_value: i64, current_value: i64, usage: i64) -> HeaderReport {
        HeaderReport {
            period,
            max_value,
            current_value,
            usage,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2010, 5, 15, 22, 59, 59).unwrap()
    }

    #[test]
    fn day_limit_after_authrep() {
        // day limit 100, authrep of 10 at stored 0: current 10, remaining 90/10 = 9.
        let h = compute(&[r(LimitPeriod::Day, 100, 10, 10)], now());
        assert_eq!(h.remaining, 9);
        assert_eq!(h.reset, 3601);
        assert_eq!(h.max_value, Some(100));
    }

    #[test]
    fn exceeded_hour_limit() {
        // hour limit 10 exceeded at 22:59:59: remaining 0, reset 1.
        let h = compute(
            &[
                r(LimitPeriod::Day, 100, 11, 11),
                r(LimitPeriod::Hour, 10, 11, 11),
            ],
            now(),
        );
        assert_eq!(
            h,
            LimitHeaders {
                remaining: 0,
                reset: 1,
                max_value: Some(10)
            }
        );
    }

    #[test]
    fn tie_goes_to_longer_period() {
        let h = compute(
            &[
                r(LimitPeriod::Hour, 10, 0, 5),
                r(LimitPeriod::Day, 10, 0, 5),
            ],
            now(),
        );
        assert_eq!(h.max_value, Some(10));
        assert_eq!(h.reset, 3601);
        let h = compute(
            &[
                r(LimitPeriod::Day, 10, 0, 5),
                r(LimitPeriod::Hour, 10, 0, 5),
            ],
            now(),
        );
        assert_eq!(h.reset, 3601);
    }

    #[test]
    fn unconstrained_cases() {
        assert_eq!(compute(&[], now()).remaining, -1);
        let h = compute(&[r(LimitPeriod::Day, 10, 3, 0)], now());
        assert_eq!(
            h,
            LimitHeaders {
                remaining: -1,
                reset: -1,
                max_value: None
            }
        );
    }

    #[test]
    fn minus_one_quirk_is_order_dependent() {
        let exhausted = r(LimitPeriod::Day, 10, 10, 0);
        let open = r(LimitPeriod::Hour, 10, 3, 0);
        assert_eq!(compute(&[exhausted, open], now()).remaining, -1);
        assert_eq!(compute(&[open, exhausted], now()).remaining, 0);
    }

    #[test]
    fn eternity_reset_is_minus_one() {
        let h = compute(&[r(LimitPeriod::Eternity, 10, 2, 2)], now());
        assert_eq!((h.remaining, h.reset, h.max_value), (4, -1, Some(10)));
    }
}
