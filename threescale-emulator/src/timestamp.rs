//! Transaction timestamps of the report endpoint (`Time.parse_to_utc` in the backend).
//!
//! First the value is tried as a Ruby `Integer(...)` (UNIX seconds: `"0"` is 1970 and
//! then too old). Otherwise a date is looked for with year, month and day (ISO
//! `2010-04-22`, `2012/10/01`, `22/04/2010` (day first, as Ruby's `Date._parse` reads it), `22 Apr 2010`, `Apr 22, 2010`), plus an
//! optional time and zone (`Z`, `UTC`, `GMT`, `+0200`, `-02:00`, US zone names). No zone
//! means UTC. Anything else (blank, garbage) gives `None`: the caller then uses "now".

use std::sync::OnceLock;

use chrono::{Duration, NaiveDate};
use regex::Regex;

/// How far in the past a reported transaction may be (seconds).
pub(crate) const REPORT_DEADLINE_PAST: i64 = 86_400;
/// How far in the future a reported transaction may be (seconds).
pub(crate) const REPORT_DEADLINE_FUTURE: i64 = 3_600;

/// Parses a transaction timestamp into UNIX seconds (UTC, fractions dropped).
pub(crate) fn parse_to_utc(input: &str) -> Option<i64> {
    ruby_integer(input).or_else(|| parse_date(input))
}

/// Ruby's `Integer(str)`: surrounding whitespace, a sign, `0x`/`0b`/`0o`/`0` prefixes
/// and single underscores between digits. Values past `i64` saturate.
pub(crate) fn ruby_integer(input: &str) -> Option<i64> {
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = s.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0d") {
        (10, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix)?;
        value = value
            .saturating_mul(i128::from(radix))
            .saturating_add(i128::from(d));
    }
    if negative {
        value = -value;
    }
    Some(value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn cached(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

fn time_re() -> Option<&'static Regex> {
    static R: OnceLock<Option<Regex>> = OnceLock::new();
    cached(
        &R,
        r"(?i)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:\s*([ap])\.?m\.?\b)?(?:\s*(z\b|utc\b|gmt\b|ut\b|[+-]\d{1,2}(?::?\d{2})?\b|[ecmp][sd]t\b))?",
    )
}

fn iso_re() -> Option<&'static Regex> {
    static R: OnceLock<Option<Regex>> = OnceLock::new();
    cached(&R, r"(\d{4})-(\d{1,2})-(\d{1,2})")
}

fn slash_re() -> Option<&'static Regex> {
    static R: OnceLock<Option<Regex>> = OnceLock::new();
    cached(&R, r"(\d{1,4})/(\d{1,2})/(\d{1,4})")
}

fn eu_re() -> Option<&'static Regex> {
    static R: OnceLock<Option<Regex>> = OnceLock::new();
    cached(
        &R,
        r"(?i)\b(\d{1,2})(?:st|nd|rd|th)?\s*[-\s]\s*(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s*[-\s]\s*(\d{4})",
    )
}

fn us_re() -> Option<&'static Regex> {
    static R: OnceLock<Option<Regex>> = OnceLock::new();
    cached(
        &R,
        r"(?i)\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})",
    )
}

fn zone_offset(zone: &str) -> Option<i64> {
    let z = zone.to_ascii_lowercase();
    let named = match z.as_str() {
        "z" | "utc" | "gmt" | "ut" => Some(0),
        "est" => Some(-5),
        "edt" => Some(-4),
        "cst" => Some(-6),
        "cdt" => Some(-5),
        "mst" => Some(-7),
        "mdt" => Some(-6),
        "pst" => Some(-8),
        "pdt" => Some(-7),
        _ => None,
    };
    if let Some(h) = named {
        return Some(h * 3600);
    }
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        3 => (
            digits[..1].parse::<i64>().ok()?,
            digits[1..].parse::<i64>().ok()?,
        ),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    Some(sign * (h * 3600 + m * 60))
}

fn month_number(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| lower.starts_with(m))
        .map(|i| i as u32 + 1)
}

fn parse_date(input: &str) -> Option<i64> {
    // The time (and zone) is taken out first, so its digits are not read as a date.
    let mut rest = input.to_string();
    let mut clock = (0i64, 0i64, 0i64);
    let mut offset = 0i64;
    if let Some(c) = time_re().and_then(|r| r.captures(input)) {
        let mut hour: i64 = c.get(1)?.as_str().parse().ok()?;
        let min: i64 = c.get(2)?.as_str().parse().ok()?;
        let sec: i64 = c.get(3).map_or(Some(0), |m| m.as_str().parse().ok())?;
        if let Some(ampm) = c.get(5) {
            hour %= 12;
            if ampm.as_str().eq_ignore_ascii_case("p") {
                hour += 12;
            }
        }
        if let Some(z) = c.get(6) {
            offset = zone_offset(z.as_str())?;
        }
        clock = (hour, min, sec);
        let whole = c.get(0)?;
        rest.replace_range(whole.range(), &" ".repeat(whole.len()));
    }
    let (year, month, day) = find_date(&rest)?;
    let (hour, min, sec) = clock;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 24 || min > 59 || sec > 60 || (hour == 24 && (min > 0 || sec > 0)) {
        return None;
    }
    // Ruby's Time.utc rolls a day past the month's end into the next month.
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let date = first + Duration::days(i64::from(day) - 1);
    let midnight = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    Some(midnight + hour * 3600 + min * 60 + sec - offset)
}

fn find_date(s: &str) -> Option<(i32, u32, u32)> {
    if let Some(c) = iso_re().and_then(|r| r.captures(s)) {
        return Some((c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?));
    }
    if let Some(c) = eu_re().and_then(|r| r.captures(s)) {
        return Some((c[3].parse().ok()?, month_number(&c[2])?, c[1].parse().ok()?));
    }
    if let Some(c) = us_re().and_then(|r| r.captures(s)) {
        return Some((c[3].parse().ok()?, month_number(&c[1])?, c[2].parse().ok()?));
    }
    if let Some(c) = slash_re().and_then(|r| r.captures(s)) {
        let (a, b, d) = (&c[1], &c[2], &c[3]);
        if a.len() == 4 {
            return Some((a.parse().ok()?, b.parse().ok()?, d.parse().ok()?));
        }
        // Ruby's `Date._parse`: `dd/mm/yyyy` (`06/05/2010` is 6 May).
        if d.len() == 4 {
            return Some((d.parse().ok()?, b.parse().ok()?, a.parse().ok()?));
        }
    }
    None
}

/// Why a transaction timestamp is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutOfRange {
    /// More than [`REPORT_DEADLINE_PAST`] seconds before now.
    TooOld,
    /// More than [`REPORT_DEADLINE_FUTURE`] seconds after now.
    TooNew,
}

/// The backend's window check (`ensure_on_time!`), on whole seconds.
pub(crate) fn check_window(ts: i64, now: i64) -> Result<(), OutOfRange> {
    let diff = ts.saturating_sub(now);
    if diff < -REPORT_DEADLINE_PAST {
        Err(OutOfRange::TooOld)
    } else if diff > REPORT_DEADLINE_FUTURE {
        Err(OutOfRange::TooNew)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp()
    }

    #[test]
    fn unix_integers() {
        assert_eq!(parse_to_utc("1271980765"), Some(1271980765));
        assert_eq!(parse_to_utc(" 42 "), Some(42));
        assert_eq!(parse_to_utc("0"), Some(0));
        assert_eq!(parse_to_utc("-5"), Some(-5));
        assert_eq!(parse_to_utc("0x10"), Some(16));
        assert_eq!(parse_to_utc("010"), Some(8));
        assert_eq!(parse_to_utc("1_000"), Some(1000));
        assert_eq!(ruby_integer("1__0"), None);
        assert_eq!(ruby_integer("99999999999999999999999"), Some(i64::MAX));
    }

    #[test]
    fn date_times() {
        assert_eq!(
            parse_to_utc("2010-04-22 23:59:30"),
            Some(ts(2010, 4, 22, 23, 59, 30))
        );
        assert_eq!(
            parse_to_utc("2010-04-22 23:59:25 UTC"),
            Some(ts(2010, 4, 22, 23, 59, 25))
        );
        assert_eq!(
            parse_to_utc("2010-04-22 23:55:45 +0200"),
            Some(ts(2010, 4, 22, 21, 55, 45))
        );
        assert_eq!(
            parse_to_utc("2010-04-22 21:00:25 -02:00"),
            Some(ts(2010, 4, 22, 23, 0, 25))
        );
        assert_eq!(
            parse_to_utc("2010-04-22T21:00:25Z"),
            Some(ts(2010, 4, 22, 21, 0, 25))
        );
        assert_eq!(
            parse_to_utc("2010-04-22T21:00:25.123+00:00"),
            Some(ts(2010, 4, 22, 21, 0, 25))
        );
        assert_eq!(parse_to_utc("2012/10/01"), Some(ts(2012, 10, 1, 0, 0, 0)));
        assert_eq!(parse_to_utc("10/01/2012"), Some(ts(2012, 1, 10, 0, 0, 0)));
        assert_eq!(parse_to_utc("06/05/2010"), Some(ts(2010, 5, 6, 0, 0, 0)));
        assert_eq!(
            parse_to_utc("Thu, 22 Apr 2010 23:59:30 GMT"),
            Some(ts(2010, 4, 22, 23, 59, 30))
        );
        assert_eq!(
            parse_to_utc("April 22, 2010 1:05 pm"),
            Some(ts(2010, 4, 22, 13, 5, 0))
        );
        assert_eq!(parse_to_utc("2010-02-31"), Some(ts(2010, 3, 3, 0, 0, 0)));
    }

    #[test]
    fn garbage_and_blank() {
        assert_eq!(parse_to_utc(""), None);
        assert_eq!(parse_to_utc("   "), None);
        assert_eq!(parse_to_utc("2012garbage2012"), None);
        assert_eq!(parse_to_utc("yesterday"), None);
        assert_eq!(parse_to_utc("2010-13-01"), None);
        assert_eq!(parse_to_utc("12:30"), None);
    }

    #[test]
    fn window() {
        let now = 1_000_000;
        assert_eq!(check_window(now - 86_400, now), Ok(()));
        assert_eq!(check_window(now - 86_401, now), Err(OutOfRange::TooOld));
        assert_eq!(check_window(now + 3_600, now), Ok(()));
        assert_eq!(check_window(now + 3_601, now), Err(OutOfRange::TooNew));
        assert_eq!(check_window(i64::MIN, now), Err(OutOfRange::TooOld));
    }

    #[test]
    fn parse_to_utc_examples() {
        assert_eq!(parse_to_utc("1271980765"), Some(1271980765));
        assert_eq!(
            parse_to_utc("2010-04-22 23:55:45 +0200"),
            parse_to_utc("2010-04-22 21:55:45")
        );
        assert_eq!(parse_to_utc("2012garbage2012"), None);
        assert_eq!(parse_to_utc(""), None);
    }
}
