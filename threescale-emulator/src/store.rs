//! Mutable state: usage counters per (application, metric, period bucket), the
//! per-service error logs and the request statistics.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::period::LimitPeriod;
use crate::request_info::ContextInfo;
use crate::usage::UsageVal;

/// Errors kept per service (like the backend's `MAX_NUM_ERRORS`).
const MAX_ERRORS: usize = 1000;
/// How many new counter keys between two sweeps of expired minute/hour buckets.
const SWEEP_EVERY: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CounterKey {
    service: u32,
    app: u32,
    metric: u32,
    period: LimitPeriod,
    bucket: i64,
}

/// One entry of a service's error log.
///
/// ```
/// let e = threescale_emulator::ErrorEntry {
///     code: "metric_invalid".into(),
///     message: "metric \"nukes\" is invalid".into(),
///     timestamp: "2010-05-12 13:33:00 UTC".into(),
///     context_info: Default::default(),
/// };
/// assert_eq!(e.code, "metric_invalid");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEntry {
    /// The error code, e.g. `application_not_found`.
    pub code: String,
    /// The error message.
    pub message: String,
    /// When it was recorded, like Ruby's `Time#to_s` in UTC (`2010-05-12 13:33:00 UTC`).
    pub timestamp: String,
    /// What the backend recorded about the request: for errors of the auth
    /// endpoints its `url`, `method`, `form_vars`, `user_agent`, `ip`,
    /// `content_type`, `content_length` and parsed `extensions`; empty for
    /// errors found while applying a report.
    #[serde(default)]
    pub context_info: ContextInfo,
}

/// Requests received per endpoint since start (or the last reset).
///
/// ```
/// let stats = threescale_emulator::RequestStats::default();
/// assert_eq!(stats.authrep + stats.report, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    /// `GET /transactions/authorize.xml`.
    pub authorize: u64,
    /// `GET /transactions/authrep.xml`.
    pub authrep: u64,
    /// `GET /transactions/oauth_authorize.xml`.
    pub oauth_authorize: u64,
    /// `GET /transactions/oauth_authrep.xml`.
    pub oauth_authrep: u64,
    /// `POST /transactions.xml`.
    pub report: u64,
    /// Transactions in reports answered 202.
    pub transactions: u64,
    /// Of those, transactions whose batch was applied to the counters.
    pub transactions_applied: u64,
    /// Of those, transactions whose batch was discarded by a report-time error.
    pub transactions_discarded: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    counters: HashMap<CounterKey, i64>,
    inserts_since_sweep: usize,
    errors: HashMap<usize, VecDeque<ErrorEntry>>,
    /// Response-code stats per (service, application): what the backend's
    /// `response_code` aggregator counts for a transaction's `log[code]`.
    response_codes: HashMap<(usize, usize), BTreeMap<String, u64>>,
    pub stats: RequestStats,
}

/// The codes the backend counts one by one (`Stats::CodesCommons::TRACKED_CODES`).
const TRACKED_CODES: [u16; 5] = [200, 404, 403, 500, 503];
/// The code groups it counts (`TRACKED_CODE_GROUPS`).
const TRACKED_GROUPS: [u16; 3] = [2, 4, 5];

/// A transaction's `log[code]` as the backend reads it
/// (`Transaction#extract_response_code`): three digits, else nothing.
pub(crate) fn response_code(log: Option<&crate::params::Value>) -> Option<u16> {
    let code = log?.as_hash()?.get("code")?.as_str()?;
    (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .then(|| code.parse().ok())
        .flatten()
}

fn key(
    service: usize,
    app: usize,
    metric: usize,
    period: LimitPeriod,
    t: DateTime<Utc>,
) -> CounterKey {
    CounterKey {
        service: service as u32,
        app: app as u32,
        metric: metric as u32,
        period,
        bucket: period.start(t).timestamp(),
    }
}

impl Store {
    /// The stored value of a counter for the period containing `t`.
    pub(crate) fn value(
        &self,
        service: usize,
        app: usize,
        metric: usize,
        period: LimitPeriod,
        t: DateTime<Utc>,
    ) -> i64 {
        self.counters
            .get(&key(service, app, metric, period, t))
            .copied()
            .unwrap_or(0)
    }

    /// Applies processed usage at time `t` to every period bucket: `#N` sets (and
    /// `#0` deletes), anything else adds.
    pub(crate) fn apply(
        &mut self,
        service: usize,
        app: usize,
        usage: &[(usize, UsageVal)],
        t: DateTime<Utc>,
    ) {
        for (metric, value) in usage {
            let set = value.is_set();
            let amount = value.apply_to(0);
            for period in LimitPeriod::ALL {
                let k = key(service, app, *metric, period, t);
                if set && amount == 0 {
                    self.counters.remove(&k);
                } else if set {
                    self.insert(k, amount);
                } else {
                    let current = self.counters.get(&k).copied().unwrap_or(0);
                    self.insert(k, current.saturating_add(amount));
                }
            }
        }
        if self.inserts_since_sweep >= SWEEP_EVERY {
            self.sweep(t);
        }
    }

    fn insert(&mut self, k: CounterKey, v: i64) {
        if self.counters.insert(k, v).is_none() {
            self.inserts_since_sweep += 1;
        }
    }

    /// Forgets minute and hour buckets that ended more than a day before `now`:
    /// nothing can read or report into them any more.
    fn sweep(&mut self, now: DateTime<Utc>) {
        let horizon = now
            .checked_sub_signed(Duration::hours(26))
            .map_or(i64::MIN, |t| t.timestamp());
        self.counters.retain(|k, _| {
            !matches!(k.period, LimitPeriod::Minute | LimitPeriod::Hour) || k.bucket >= horizon
        });
        self.inserts_since_sweep = 0;
    }

    pub(crate) fn log_error(
        &mut self,
        service: usize,
        code: &str,
        message: &str,
        context_info: ContextInfo,
        now: DateTime<Utc>,
    ) {
        let log = self.errors.entry(service).or_default();
        log.push_front(ErrorEntry {
            code: code.to_string(),
            message: message.to_string(),
            timestamp: now.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            context_info,
        });
        log.truncate(MAX_ERRORS);
    }

    /// Counts one response `code` of an application, as the backend's
    /// response-code stats do: its group (`2XX`, `4XX`, `5XX`) and, for the
    /// tracked codes (200, 403, 404, 500, 503), the code itself.
    pub(crate) fn log_response_code(&mut self, service: usize, app: usize, code: u16) {
        let counts = self.response_codes.entry((service, app)).or_default();
        if TRACKED_GROUPS.contains(&(code / 100)) {
            *counts.entry(format!("{}XX", code / 100)).or_default() += 1;
        }
        if TRACKED_CODES.contains(&code) {
            *counts.entry(code.to_string()).or_default() += 1;
        }
    }

    /// The response-code counts of an application (eternity).
    pub(crate) fn response_codes(&self, service: usize, app: usize) -> BTreeMap<String, u64> {
        self.response_codes
            .get(&(service, app))
            .cloned()
            .unwrap_or_default()
    }

    /// Newest first.
    pub(crate) fn errors(&self, service: usize) -> Vec<ErrorEntry> {
        self.errors
            .get(&service)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn clear_errors(&mut self, service: usize) {
        self.errors.remove(&service);
    }

    /// Clears counters, error logs and statistics.
    pub(crate) fn reset(&mut self) {
        *self = Store::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn increments_sets_and_zero_set() {
        let mut s = Store::default();
        let t = Utc.with_ymd_and_hms(2010, 5, 15, 10, 0, 0).unwrap();
        s.apply(0, 0, &[(0, UsageVal::Raw("3".into()))], t);
        s.apply(0, 0, &[(0, UsageVal::Int(2))], t);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Minute, t), 5);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Eternity, t), 5);
        let later = t + Duration::minutes(1);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Minute, later), 0);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Hour, later), 5);
        s.apply(0, 0, &[(0, UsageVal::Raw("#9".into()))], later);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Minute, later), 9);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Hour, later), 9);
        s.apply(0, 0, &[(0, UsageVal::Raw("#0".into()))], later);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Day, later), 0);
    }

    #[test]
    fn error_log_is_newest_first_and_bounded() {
        let mut s = Store::default();
        let t = Utc.with_ymd_and_hms(2010, 5, 12, 13, 33, 0).unwrap();
        for i in 0..(MAX_ERRORS + 5) {
            s.log_error(1, "c", &i.to_string(), ContextInfo::default(), t);
        }
        let log = s.errors(1);
        assert_eq!(log.len(), MAX_ERRORS);
        assert_eq!(log[0].message, (MAX_ERRORS + 4).to_string());
        assert_eq!(log[0].timestamp, "2010-05-12 13:33:00 UTC");
    }

    #[test]
    fn sweep_keeps_live_buckets() {
        let mut s = Store::default();
        let t = Utc.with_ymd_and_hms(2010, 5, 12, 13, 33, 0).unwrap();
        s.apply(0, 0, &[(0, UsageVal::Int(1))], t);
        let much_later = t + Duration::days(3);
        s.sweep(much_later);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Minute, t), 0);
        assert_eq!(s.value(0, 0, 0, LimitPeriod::Eternity, much_later), 1);
    }
}
