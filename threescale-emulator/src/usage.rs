//! Usage values (`N` increments, `#N` sets) and the roll-up to parent metrics.
//!
//! Values follow the backend's Ruby semantics: a value is a *set* only when its first
//! character is `#`; numbers are read like `String#to_i` (leading whitespace skipped,
//! digits until the first non-digit), so `" #5"` passes validation but counts as 0.

use crate::errors::BackendError;
use crate::model::ServiceModel;
use crate::params::{Params, Value};
use crate::ruby::ruby_to_i;

/// Whether a raw usage value is a set (`#N`).
pub(crate) fn is_set(raw: &str) -> bool {
    raw.starts_with('#')
}

/// `Usage.get_from`: the value after applying `raw` to `current`.
pub(crate) fn get_from(raw: Option<&str>, current: i64) -> i64 {
    match raw {
        Some(r) if is_set(r) => ruby_to_i(&r[1..]),
        Some(r) => current.saturating_add(ruby_to_i(r)),
        None => current,
    }
}

/// A processed usage value: the raw string, or an integer the roll-up computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UsageVal {
    Raw(String),
    Int(i64),
}

impl UsageVal {
    pub(crate) fn is_set(&self) -> bool {
        matches!(self, UsageVal::Raw(r) if is_set(r))
    }

    pub(crate) fn to_i(&self) -> i64 {
        match self {
            UsageVal::Raw(r) => ruby_to_i(r),
            UsageVal::Int(i) => *i,
        }
    }

    /// `Usage.get_from(self, current)`.
    pub(crate) fn apply_to(&self, current: i64) -> i64 {
        match self {
            UsageVal::Raw(r) => get_from(Some(r), current),
            UsageVal::Int(i) => current.saturating_add(*i),
        }
    }
}

/// Usage after parsing: metric index → value, in the backend's order.
pub(crate) type ProcessedUsage = Vec<(usize, UsageVal)>;

/// The backend's `/\A\s*#?\d+\s*\Z/`.
pub(crate) fn is_sane_value(s: &str) -> bool {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let t = s.trim_start_matches(ws);
    let t = t.strip_prefix('#').unwrap_or(t);
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    digits > 0 && t[digits..].chars().all(ws)
}

/// Ruby's `String#strip` (whitespace and NUL on both ends).
pub(crate) fn ruby_strip(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\0'))
}

fn upsert(usage: &mut ProcessedUsage, metric: usize, value: UsageVal) {
    match usage.iter_mut().find(|(m, _)| *m == metric) {
        Some(slot) => slot.1 = value,
        None => usage.push((metric, value)),
    }
}

/// `Metric::Collection#parse_usage`: checks each value, then each name, in order.
pub(crate) fn parse_usage(
    service: &ServiceModel,
    raw: &Params,
) -> Result<ProcessedUsage, BackendError> {
    let mut usage = ProcessedUsage::new();
    for (name, value) in raw.iter() {
        let name = String::from_utf8_lossy(name);
        let name = ruby_strip(&name);
        let text = match value {
            Value::Str(_) => value.as_str().unwrap_or(""),
            _ => return Err(BackendError::usage_value_invalid(name, None)),
        };
        if !is_sane_value(text) {
            return Err(BackendError::usage_value_invalid(name, Some(text)));
        }
        let metric = service
            .metric(name)
            .ok_or_else(|| BackendError::metric_invalid(name))?;
        upsert(&mut usage, metric, UsageVal::Raw(text.to_string()));
    }
    Ok(usage)
}

/// `Metric::Collection#process_parents`: every value goes to every ancestor too; a set
/// sets the ancestors, an increment adds to them.
pub(crate) fn process_parents(service: &ServiceModel, usage: ProcessedUsage) -> ProcessedUsage {
    let mut memo = usage.clone();
    for (metric, value) in &usage {
        for &parent in &service.metrics[*metric].ancestors {
            if value.is_set() {
                upsert(&mut memo, parent, value.clone());
            } else {
                let before = memo
                    .iter()
                    .find(|(m, _)| *m == parent)
                    .map_or(0, |(_, v)| v.to_i());
                upsert(
                    &mut memo,
                    parent,
                    UsageVal::Int(before.saturating_add(value.to_i())),
                );
            }
        }
    }
    memo
}

/// `Metric::Collection#process_usage`.
pub(crate) fn process_usage(
    service: &ServiceModel,
    raw: &Params,
    flat: bool,
) -> Result<ProcessedUsage, BackendError> {
    let usage = parse_usage(service, raw)?;
    Ok(if flat {
        usage
    } else {
        process_parents(service, usage)
    })
}

/// A raw usage entry as a string (the backend looks values up by exact raw name).
pub(crate) fn raw_value<'a>(usage: &'a Params, name: &str) -> Option<&'a str> {
    usage.get(name).and_then(Value::as_str)
}

/// Drops entries whose value is exactly `"0"` (they are not reported).
pub(crate) fn without_zeros(usage: &Params) -> Params {
    let mut out = Params::new();
    for (k, v) in usage.iter() {
        if !matches!(v, Value::Str(b) if b == b"0") {
            out.insert(k.to_vec(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EmulatedService, EmulatorConfig};
    use crate::model::Registry;
    use crate::params::parse_nested_query;

    fn service() -> ServiceModel {
        let config = EmulatorConfig {
            admin_access_token: None,
            services: vec![
                EmulatedService::new("1")
                    .metric("hits")
                    .child_metric("c1", "hits")
                    .child_metric("c2", "hits")
                    .child_metric("g", "c1"),
            ],
        };
        Registry::build(&config).0.services.remove(0)
    }

    fn usage(qs: &str) -> Params {
        let mut p = Params::new();
        parse_nested_query(qs.as_bytes(), &mut p).unwrap();
        p.get("usage").and_then(Value::as_hash).cloned().unwrap()
    }

    fn show(s: &ServiceModel, u: &ProcessedUsage) -> Vec<(String, i64, bool)> {
        u.iter()
            .map(|(m, v)| (s.metrics[*m].name.clone(), v.apply_to(0), v.is_set()))
            .collect()
    }

    #[test]
    fn sane_values() {
        for ok in ["1", " 1 ", "#1", "  #12\n", "007"] {
            assert!(is_sane_value(ok), "{ok:?}");
        }
        for bad in [
            "", " ", "-1", "##3", "#", "-#55", "tons!", "1.5", "1 2", "+1", "#-1",
        ] {
            assert!(!is_sane_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn to_i_semantics() {
        assert_eq!(ruby_to_i(" 12 "), 12);
        assert_eq!(ruby_to_i(""), 0);
        assert_eq!(ruby_to_i("1_000"), 1000);
        assert_eq!(ruby_to_i("99999999999999999999"), i64::MAX);
        assert_eq!(get_from(Some(" #5"), 7), 7);
        assert_eq!(get_from(Some("#5 "), 7), 5);
    }

    #[test]
    fn roll_up_increments_and_sets() {
        let s = service();
        let u = process_usage(&s, &usage("usage[g]=2&usage[hits]=1"), false).unwrap();
        assert_eq!(
            show(&s, &u),
            vec![
                ("g".into(), 2, false),
                ("hits".into(), 3, false),
                ("c1".into(), 2, false)
            ]
        );
        let u = process_usage(&s, &usage("usage[c1]=%2311&usage[c2]=%2312"), false).unwrap();
        let hits = u.iter().find(|(m, _)| *m == 0).unwrap();
        assert_eq!(hits.1.apply_to(100), 12);
        assert!(hits.1.is_set());
        let flat = process_usage(&s, &usage("usage[g]=2"), true).unwrap();
        assert_eq!(flat.len(), 1);
    }

    #[test]
    fn parent_given_as_set_then_child_increment() {
        let s = service();
        // "#10".to_i is 0 in Ruby: the parent ends at 0 + 1.
        let u = process_usage(&s, &usage("usage[hits]=%2310&usage[c1]=1"), false).unwrap();
        let hits = u.iter().find(|(m, _)| *m == 0).unwrap();
        assert_eq!(hits.1, UsageVal::Int(1));
    }

    #[test]
    fn errors_in_order() {
        let s = service();
        let e = parse_usage(&s, &usage("usage[nope]=1&usage[hits]=-1")).unwrap_err();
        assert_eq!(e.code, "metric_invalid");
        assert_eq!(e.message, "metric \"nope\" is invalid");
        let e = parse_usage(&s, &usage("usage[nope]=x")).unwrap_err();
        assert_eq!(
            e.message,
            "usage value \"x\" for metric \"nope\" is invalid"
        );
        let e = parse_usage(&s, &usage("usage[hits]")).unwrap_err();
        assert_eq!(
            e.message,
            "usage value for metric \"hits\" can not be empty"
        );
        let e = parse_usage(&s, &usage("usage[hits][a]=1")).unwrap_err();
        assert_eq!(
            e.message,
            "usage value for metric \"hits\" can not be empty"
        );
        // names are trimmed
        assert!(parse_usage(&s, &usage("usage[+hits+]=1")).is_ok());
    }

    #[test]
    fn zeros_are_dropped() {
        let u = without_zeros(&usage("usage[hits]=0&usage[c1]=%230&usage[c2]=00"));
        assert_eq!(u.len(), 2);
        assert!(u.get("hits").is_none());
    }

    #[test]
    fn get_from_examples() {
        assert_eq!(get_from(Some("3"), 10), 13);
        assert_eq!(get_from(Some("#3"), 10), 3);
        assert_eq!(get_from(None, 10), 10);
    }
}
