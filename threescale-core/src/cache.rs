//! Cached mode: authorizations cached per (service, credentials), hits counted
//! locally against the plan's limits, one backend call per key at a time.
//!
//! Referrer: the backend's answer depends on the referrer sent (referrer
//! filters), yet an application has one set of counters whatever the referrer:
//! one entry per application, which remembers the referrers the backend let
//! through for it (at most [`MAX_REFERRERS`], each at most
//! [`MAX_REMEMBERED_REFERRER`] bytes). A request with any other referrer (or
//! none, when the entry was filled with one) is checked with `authorize` first,
//! and counted in the same entry when the backend lets it through. So an allow
//! seen for one referrer never admits another, and a client choosing a new
//! `Referer` for each request never gets a fresh set of counters. A refusal of
//! the referrer itself (`referrer_not_allowed`) is that request's answer only,
//! never cached for the application.
//!
//! An entry is filled by `authorize` (with the `hierarchy` and `limit_headers`
//! extensions, and the request's usage as *predicted* usage, which the backend
//! checks and does not store), which returns the application's limits and
//! counters. Later requests are decided locally: each limit touched by the
//! request's usage (the metric itself, or an ancestor of it) must stay within
//! its maximum once this request is counted. The counters start from the
//! backend's values plus the usage recorded but not yet reported, so
//! a refill never forgets admitted hits. An entry lives for `ttl`, or until the
//! earliest period of its limits ends; a denial (bad key) for `negative_ttl`.
//!
//! Metrics: a metric the backend does not know makes the real backend discard
//! a whole report batch, other applications' hits included. So usage is only
//! ever admitted for metrics the backend has accepted: the cache keeps a
//! bounded set of them per service (filled from answers to requests that
//! carried them), and a request naming any other metric asks the backend once
//! with `authorize` and that usage (a warm entry keeps its local counters).
//! An unknown metric is refused as in Sync mode (403, `metric_invalid`).
//!
//! Memory: the cache is bounded in bytes as well as entries
//! ([`CacheSettings::max_bytes`]); each entry weighs its key, its limits and
//! counters, the entry it replaces (kept for outages) and a fixed allowance
//! for the cache's own bookkeeping.
//!
//! Over-admission bound: one instance admits exactly up to each limit between
//! refills. With `N` instances sharing an application, each one sees the others'
//! hits only when it refills and they have reported, so in the worst case an
//! application gets up to `N × limit` in a period where every instance refilled
//! before any hit was reported; in a steady state the excess is bounded by
//! the hits the other instances admit within `ttl + flush_interval`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::ops::compute::Op;
use smallvec::SmallVec;
use tokio::sync::OnceCell;

use crate::{
    CacheSettings, Denial, DenialKind, RateLimit, Usage, UsageReport, UsageValue,
    backend::{AppCredentials, BackendError},
    lock,
    report::ReportKey,
    verdict::{self, Allowed, Backend, Decider, Known, Verdict},
};

/// How long a failed fill is shared by concurrent requests before the next try.
const UNAVAILABLE_FOR: Duration = Duration::from_millis(250);

/// At most this many metric names are remembered as accepted per service.
const MAX_ACCEPTED_METRICS: usize = 1024;

/// Longer metric names are never remembered (they are checked every time).
const MAX_METRIC_NAME: usize = 256;

/// At most this many referrers are remembered per entry; others are checked
/// with the backend every time.
pub(crate) const MAX_REFERRERS: usize = 8;

/// Longer referrers are never remembered (they are checked every time).
pub(crate) const MAX_REMEMBERED_REFERRER: usize = 256;

/// The backend's error code for a referrer its filters refuse.
const REFERRER_REFUSED: &str = "referrer_not_allowed";

/// The bytes each entry is charged for the cache's own bookkeeping (hash
/// table slot, access-order and write-order nodes, reference counts), measured
/// with the `memory` benchmark.
const ENTRY_OVERHEAD: usize = 576;

/// What an entry is cached under: the application's credentials. The
/// referrers the backend let through live in the entry's slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    credentials: AppCredentials,
}

impl CacheKey {
    fn new(credentials: &AppCredentials) -> Self {
        CacheKey {
            credentials: credentials.clone(),
        }
    }
}

/// A warm lookup goes by the request's credentials, with no key built: the
/// derived `Hash` and `Eq` of the one-field key are those of the credentials.
impl std::borrow::Borrow<AppCredentials> for CacheKey {
    fn borrow(&self) -> &AppCredentials {
        &self.credentials
    }
}

/// The cache of authorizations.
pub(crate) struct AuthCache {
    entries: moka::sync::Cache<CacheKey, Slot>,
    settings: CacheSettings,
    /// Metric names the backend has accepted for this service.
    accepted: arc_swap::ArcSwap<HashSet<Arc<str>>>,
}

/// One key's place in the cache; the cell is filled once, by one backend call.
#[derive(Clone, Debug)]
pub(crate) struct Slot(Arc<SlotInner>);

#[derive(Debug)]
struct SlotInner {
    cell: OnceCell<Entry>,
    /// The entry this one replaces, kept for outages (see `FailurePolicy`).
    previous: Option<Slot>,
    /// The referrers the backend let through for this entry (`None`: the
    /// request sent no referrer).
    referrers: Mutex<Vec<Option<Arc<str>>>>,
}

#[derive(Debug)]
enum Entry {
    Allowed {
        state: Mutex<AllowedState>,
        expires: Instant,
    },
    Denied {
        denial: Denial,
        expires: Instant,
        /// The backend refused the filling request's referrer: this says
        /// nothing of other referrers, so the entry is stale at once.
        referrer_refused: bool,
    },
    Unavailable {
        until: Instant,
    },
}

#[derive(Debug)]
struct AllowedState {
    plan: Option<Arc<str>>,
    limits: Vec<Limit>,
    reports: Vec<UsageReport>,
}

#[derive(Debug)]
struct Limit {
    metric: Arc<str>,
    /// The metrics whose usage counts against this limit: the metric and
    /// its descendants in the hierarchy (a few names, compared directly).
    counted: Vec<Arc<str>>,
    max: u64,
    used: u64,
    period_end: Option<DateTime<Utc>>,
    window: Option<u64>,
}

/// The result of a lookup.
pub(crate) enum CacheLookup {
    Decided(Verdict),
    Miss(Slot),
}

impl AuthCache {
    pub(crate) fn new(settings: &CacheSettings) -> Self {
        // One budget for both bounds: each entry weighs at least its share of
        // the bytes per allowed entry, so no more than `capacity` fit.
        let floor = (settings.max_bytes / settings.capacity.max(1)).max(1);
        AuthCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(settings.max_bytes.max(1))
                .weigher(move |key: &CacheKey, slot: &Slot| {
                    let bytes = (key_bytes(key) + slot.bytes()) as u64;
                    u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
                })
                .build(),
            settings: *settings,
            accepted: arc_swap::ArcSwap::from_pointee(HashSet::new()),
        }
    }

    /// Entries held and the bytes they are charged.
    pub(crate) fn size(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.entry_count(), self.entries.weighted_size())
    }

    /// Whether the backend has accepted every metric of `usage`.
    fn accepts(&self, usage: &Usage) -> bool {
        let accepted = self.accepted.load();
        usage
            .entries()
            .iter()
            .all(|(metric, _)| accepted.contains(metric))
    }

    /// Forgets the metrics of `usage` (the backend refused one of them: it may
    /// have been deleted), so requests naming them are checked again.
    fn forget(&self, usage: &Usage) {
        if !usage
            .entries()
            .iter()
            .any(|(metric, _)| self.accepted.load().contains(metric))
        {
            return;
        }
        self.accepted.rcu(|current| {
            let mut next = HashSet::clone(current);
            for (metric, _) in usage.entries() {
                next.remove(metric);
            }
            next
        });
    }

    /// Remembers the metrics of `usage` as accepted by the backend.
    fn accept(&self, usage: &Usage) {
        if self.accepts(usage) {
            return;
        }
        self.accepted.rcu(|current| {
            let mut next = HashSet::clone(current);
            for (metric, _) in usage.entries() {
                if next.len() < MAX_ACCEPTED_METRICS && metric.len() <= MAX_METRIC_NAME {
                    next.insert(metric.clone());
                }
            }
            next
        });
    }

    /// Charges a just-filled slot its real size, if it is still the key's slot.
    fn reweigh(&self, key: CacheKey, slot: &Slot) {
        self.entries
            .entry(key)
            .and_compute_with(|current| match current {
                Some(current) if Arc::ptr_eq(&current.value().0, &slot.0) => Op::Put(slot.clone()),
                _ => Op::Nop,
            });
    }

    pub(crate) fn lookup(
        &self,
        credentials: &AppCredentials,
        referrer: Option<&str>,
        usage: &Usage,
    ) -> CacheLookup {
        let now = Instant::now();
        if let Some(slot) = self.entries.get(credentials) {
            match slot.0.cell.get() {
                None => return CacheLookup::Miss(slot),
                Some(entry) if !entry.expired(now) => {
                    if matches!(entry, Entry::Allowed { .. })
                        && (!self.accepts(usage) || !slot.knows(referrer))
                    {
                        // A metric or a referrer the backend has not let
                        // through for this entry yet: ask it once.
                        return CacheLookup::Miss(slot);
                    }
                    return match entry.decide(usage) {
                        Some(verdict) => CacheLookup::Decided(verdict),
                        // A recent failed fill: decide from the fallback, no new call.
                        None => CacheLookup::Miss(slot),
                    };
                }
                Some(_) => {}
            }
            // Expired: replace it, once, keeping it as the outage fallback.
            let stale = slot;
            let result = self
                .entries
                .entry(CacheKey::new(credentials))
                .and_compute_with(|current| match current {
                    Some(current) if !Arc::ptr_eq(&current.value().0, &stale.0) => Op::Nop,
                    _ => Op::Put(Slot::new(Some(stale.clone()))),
                });
            return CacheLookup::Miss(slot_of(result).unwrap_or_else(|| Slot::new(Some(stale))));
        }
        let slot = self
            .entries
            .entry(CacheKey::new(credentials))
            .or_insert_with(|| Slot::new(None))
            .into_value();
        CacheLookup::Miss(slot)
    }
}

fn slot_of(result: moka::ops::compute::CompResult<CacheKey, Slot>) -> Option<Slot> {
    use moka::ops::compute::CompResult::*;
    match result {
        Unchanged(e) | Inserted(e) | ReplacedWith(e) | Removed(e) => Some(e.into_value()),
        StillNone(_) => None,
    }
}

/// The bytes a key holds.
fn key_bytes(key: &CacheKey) -> usize {
    std::mem::size_of::<CacheKey>()
        + match &key.credentials {
            AppCredentials::UserKey(key) => key.expose().len(),
            AppCredentials::AppId { app_id, app_key } => {
                app_id.len() + app_key.as_ref().map_or(0, |k| k.expose().len())
            }
        }
}

impl Slot {
    /// The bytes this slot holds: its entry, the entry it replaces, and the
    /// cache's bookkeeping.
    fn bytes(&self) -> usize {
        let own = |slot: &Slot| {
            std::mem::size_of::<SlotInner>()
                + slot.0.cell.get().map_or(0, Entry::bytes)
                + lock(&slot.0.referrers)
                    .iter()
                    .map(|r| {
                        std::mem::size_of::<Option<Arc<str>>>() + r.as_ref().map_or(0, |r| r.len())
                    })
                    .sum::<usize>()
        };
        ENTRY_OVERHEAD + own(self) + self.0.previous.as_ref().map_or(0, own)
    }

    fn new(previous: Option<Slot>) -> Self {
        // Keep one generation only: the fallback of a fallback is not needed.
        let previous = previous.map(|p| match &p.0.previous {
            Some(_)
                if p.0
                    .cell
                    .get()
                    .is_none_or(|e| matches!(e, Entry::Unavailable { .. })) =>
            {
                p.0.previous.clone().unwrap_or(p)
            }
            _ => p,
        });
        Slot(Arc::new(SlotInner {
            cell: OnceCell::new(),
            previous,
            referrers: Mutex::new(Vec::new()),
        }))
    }

    /// Whether the backend let `referrer` through for this entry.
    fn knows(&self, referrer: Option<&str>) -> bool {
        lock(&self.0.referrers)
            .iter()
            .any(|known| known.as_deref() == referrer)
    }

    /// Remembers that the backend let `referrer` through for this entry
    /// (within the bounds; others are checked every time).
    fn learn(&self, referrer: Option<&str>) {
        if referrer.is_some_and(|r| r.len() > MAX_REMEMBERED_REFERRER) {
            return;
        }
        let mut known = lock(&self.0.referrers);
        if known.len() < MAX_REFERRERS && !known.iter().any(|k| k.as_deref() == referrer) {
            known.push(referrer.map(Arc::from));
        }
    }
}

impl Entry {
    /// The heap bytes of the entry.
    fn bytes(&self) -> usize {
        match self {
            Entry::Allowed { state, .. } => {
                let state = lock(state);
                state.bytes()
            }
            Entry::Denied { denial, .. } => denial.reason.as_ref().map_or(0, String::len),
            Entry::Unavailable { .. } => 0,
        }
    }

    fn expired(&self, now: Instant) -> bool {
        match self {
            Entry::Allowed { expires, .. } | Entry::Denied { expires, .. } => now >= *expires,
            Entry::Unavailable { until } => now >= *until,
        }
    }

    /// The local decision; `None` for an entry that cannot decide (unavailable).
    fn decide(&self, usage: &Usage) -> Option<Verdict> {
        match self {
            Entry::Allowed { state, .. } => {
                let mut state = lock(state);
                Some(state.admit(usage))
            }
            Entry::Denied { denial, .. } => Some(Verdict::Deny(denial.clone())),
            Entry::Unavailable { .. } => None,
        }
    }
}

impl Limit {
    /// The part of `usage` that counts against this limit.
    fn touching(&self, usage: &Usage) -> u64 {
        usage
            .iter()
            .filter(|(m, _)| self.counted.iter().any(|c| **c == **m))
            .map(|(_, v)| match v {
                UsageValue::Add(n) | UsageValue::Set(n) => n,
            })
            .fold(0u64, u64::saturating_add)
    }
}

impl AllowedState {
    /// The heap bytes of the state.
    fn bytes(&self) -> usize {
        let arc = |s: &Arc<str>| s.len() + 2 * std::mem::size_of::<usize>();
        self.plan.as_ref().map_or(0, |p| p.len())
            + self
                .limits
                .iter()
                .map(|l| {
                    std::mem::size_of::<Limit>()
                        + arc(&l.metric)
                        + l.counted
                            .iter()
                            .map(|c| arc(c) + std::mem::size_of::<Arc<str>>())
                            .sum::<usize>()
                })
                .sum::<usize>()
            + self
                .reports
                .iter()
                .map(|r| std::mem::size_of::<UsageReport>() + r.metric.len())
                .sum::<usize>()
    }

    fn from_reports(
        plan: Option<Arc<str>>,
        reports: Vec<UsageReport>,
        hierarchy: &[crate::xml::HierarchyMetric],
        unreported: &Usage,
    ) -> Self {
        let mut parent_of: HashMap<&str, &str> = HashMap::new();
        for metric in hierarchy {
            for child in &metric.children {
                parent_of.insert(child, &metric.name);
            }
        }
        // Whether `ancestor` is `metric` or one of its ancestors (a cycle or
        // a chain deeper than 32 in a malformed hierarchy stops the walk).
        let counts_against = |metric: &str, ancestor: &str| {
            let mut current = metric;
            for _ in 0..=32 {
                if current == ancestor {
                    return true;
                }
                match parent_of.get(current) {
                    Some(parent) => current = parent,
                    None => return false,
                }
            }
            false
        };
        let limits = reports
            .iter()
            .map(|r| Limit {
                metric: Arc::from(r.metric.as_str()),
                counted: std::iter::once(r.metric.as_str())
                    .chain(
                        parent_of
                            .keys()
                            .copied()
                            .filter(|child| *child != r.metric && counts_against(child, &r.metric)),
                    )
                    .map(Arc::from)
                    .collect(),
                max: r.max_value,
                used: r.current_value,
                period_end: r.period_end,
                window: match (r.period_start, r.period_end) {
                    (Some(s), Some(e)) => Some((e - s).num_seconds().max(0) as u64),
                    _ => None,
                },
            })
            .collect();
        let mut state = AllowedState {
            plan,
            limits,
            reports,
        };
        // Hits admitted but not yet reported count as used.
        for limit in &mut state.limits {
            let extra = limit.touching(unreported);
            limit.used = limit.used.saturating_add(extra);
        }
        state
    }

    fn admit(&mut self, usage: &Usage) -> Verdict {
        // Read the clock only when a limit has a period end (not for eternity).
        let mut now = None;
        let mut tightest: Option<(u64, RateLimit)> = None;
        // What the request adds to each limit, worked out once.
        let wanted: SmallVec<[u64; 8]> = self.limits.iter().map(|l| l.touching(usage)).collect();
        for (limit, &wanted) in self.limits.iter().zip(&wanted) {
            if wanted == 0 {
                continue;
            }
            let reset = limit
                .period_end
                .map(|end| {
                    (end - *now.get_or_insert_with(Utc::now))
                        .num_seconds()
                        .max(0) as u64
                        + 1
                })
                .unwrap_or(0);
            // Past u64::MAX is past any limit: no arithmetic on backend numbers wraps.
            let Some(after) = limit
                .used
                .checked_add(wanted)
                .filter(|after| *after <= limit.max)
            else {
                let kind = if limit.max == 0 {
                    DenialKind::AuthFailed
                } else {
                    DenialKind::LimitsExceeded
                };
                let mut denial = Denial::new(kind).with_reason("limits_exceeded");
                if kind == DenialKind::LimitsExceeded && limit.period_end.is_some() {
                    denial.retry_after = Some(reset);
                    denial.rate_limit = Some(RateLimit {
                        limit: limit.max,
                        remaining: 0,
                        reset,
                        window: limit.window,
                    });
                }
                return Verdict::Deny(denial);
            };
            let remaining = limit.max - after;
            let same_calls = remaining / wanted;
            if limit.period_end.is_some() && tightest.as_ref().is_none_or(|(c, _)| same_calls < *c)
            {
                tightest = Some((
                    same_calls,
                    RateLimit {
                        limit: limit.max,
                        remaining: same_calls,
                        reset,
                        window: limit.window,
                    },
                ));
            }
        }
        for (limit, wanted) in self.limits.iter_mut().zip(wanted) {
            limit.used = limit.used.saturating_add(wanted);
        }
        Verdict::Allow(Allowed {
            plan: self.plan.clone(),
            usage_reports: Vec::new(),
            rate_limit: tightest.map(|(_, r)| r),
            degraded: false,
            report_later: true,
        })
    }

    /// When the entry must be refreshed because a period ended.
    fn earliest_period_end(&self) -> Option<DateTime<Utc>> {
        self.limits.iter().filter_map(|l| l.period_end).min()
    }
}

/// `now + by`, or far ahead when that does not fit in an `Instant`.
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by)
        .or_else(|| now.checked_add(crate::config::MAX_CACHE_DURATION))
        .unwrap_or(now)
}

impl AuthCache {
    /// Fills the slot (one backend call for all concurrent waiters), then
    /// decides; while the backend is unavailable, the failure policy decides
    /// what the slot's previous answer is worth ([`Decider::during_outage`]).
    pub(crate) async fn fill_and_decide(
        &self,
        decider: &Decider,
        backend: Backend<'_>,
        slot: Slot,
        credentials: &AppCredentials,
        usage: &Usage,
    ) -> Verdict {
        // Set when this request's fill ran: `Some(denial)` when the backend refused
        // this request's usage (an unknown metric) while the entry was filled.
        let mut filled_here: Option<Option<Denial>> = None;
        let entry = {
            let filled_here = &mut filled_here;
            slot.0
                .cell
                .get_or_init(|| async {
                    let (entry, refusal) = self.fetch(decider, backend, credentials, usage).await;
                    if !matches!(
                        entry,
                        Entry::Denied {
                            referrer_refused: true,
                            ..
                        }
                    ) {
                        slot.learn(backend.referrer);
                    }
                    *filled_here = Some(refusal);
                    entry
                })
                .await
        };
        let referrer = backend.referrer;
        if let Some(refusal) = filled_here {
            crate::metrics::cache("fill");
            self.reweigh(CacheKey::new(credentials), &slot);
            if let Some(denial) = refusal {
                return Verdict::Deny(denial);
            }
        }
        if let Entry::Denied {
            referrer_refused: true,
            ..
        } = entry
        {
            // Another request's referrer was refused while it filled this
            // entry: that says nothing of this request's referrer.
            return match self.verify(decider, backend, credentials, usage).await {
                Checked::Accepted(response) => verdict::from_answer(&response, true),
                Checked::Refused(verdict) => verdict,
                Checked::Unavailable => decider.during_outage(Known::Nothing, || None),
            };
        }
        if let Entry::Allowed { .. } = entry
            && (!self.accepts(usage) || !slot.knows(referrer))
        {
            // The entry was filled for another request's metrics or referrer:
            // check these once; the hits still count in this entry.
            match self.verify(decider, backend, credentials, usage).await {
                Checked::Accepted(_) => {
                    slot.learn(referrer);
                    self.reweigh(CacheKey::new(credentials), &slot);
                }
                Checked::Refused(verdict) => return verdict,
                // Usage the backend has not accepted is never admitted from a
                // cached entry: for it, the application is unknown.
                Checked::Unavailable => return decider.during_outage(Known::Nothing, || None),
            }
        }
        if let Some(verdict) = entry.decide(usage) {
            return verdict;
        }
        // The backend is unavailable. Usage of a metric the backend has not
        // accepted is never admitted from a cached entry.
        let previous = slot.0.previous.as_ref().and_then(|p| p.0.cell.get());
        let known = match previous {
            Some(old)
                if self.accepts(usage)
                    && (!matches!(old, Entry::Allowed { .. })
                        || slot.0.previous.as_ref().is_some_and(|p| p.knows(referrer))) =>
            {
                if old.expired(Instant::now()) {
                    Known::Expired
                } else {
                    Known::Fresh
                }
            }
            _ => Known::Nothing,
        };
        decider.during_outage(known, || previous.and_then(|old| old.decide(usage)))
    }

    /// Asks the backend about `usage` (predicted: checked, not stored) and the
    /// request's referrer for a warm entry, and remembers its metrics when it
    /// accepts them.
    async fn verify(
        &self,
        decider: &Decider,
        backend: Backend<'_>,
        credentials: &AppCredentials,
        usage: &Usage,
    ) -> Checked {
        match decider.authorize(backend, credentials, Some(usage)).await {
            Ok(response) if usage_accepted(&response) => {
                decider.answered();
                self.accept(usage);
                Checked::Accepted(Box::new(response))
            }
            Ok(response) => {
                decider.answered();
                Checked::Refused(verdict::from_answer(&response, false))
            }
            Err(error) => match decider.failed(
                &error,
                "3scale backend unavailable while checking a request's metrics",
            ) {
                Some(denial) if usage_refused(&error) => {
                    self.forget(usage);
                    Checked::Refused(Verdict::Deny(denial))
                }
                Some(denial) => Checked::Refused(Verdict::Deny(denial)),
                None => Checked::Unavailable,
            },
        }
    }

    /// Fills an entry, sending `usage` as predicted usage. When the backend
    /// refuses that usage (an unknown metric), the entry is filled by a second
    /// call without it, and the refusal is returned for this request alone.
    async fn fetch(
        &self,
        decider: &Decider,
        backend: Backend<'_>,
        credentials: &AppCredentials,
        usage: &Usage,
    ) -> (Entry, Option<Denial>) {
        let settings = &self.settings;
        // Reports the backend accepts while this call is on the way may or may
        // not be in its answer: counted as unreported, never missed.
        let generation = decider.reporter().generation();
        let mut answer = decider.authorize(backend, credentials, Some(usage)).await;
        let mut refusal = None;
        match &answer {
            Ok(response) if usage_accepted(response) => self.accept(usage),
            Err(error) if usage_refused(error) => {
                // A metric accepted before may have been deleted since.
                self.forget(usage);
                refusal = Some(verdict::refusal(error));
                answer = decider.authorize(backend, credentials, None).await;
            }
            _ => {}
        }
        let now = Instant::now();
        let entry = match answer {
            Ok(response) if referrer_refused(&response) => {
                decider.answered();
                let denial = match verdict::from_answer(&response, false) {
                    Verdict::Deny(denial) => denial,
                    Verdict::Allow(_) => Denial::new(DenialKind::AuthFailed),
                };
                refusal = Some(denial.clone());
                Entry::Denied {
                    denial,
                    expires: now,
                    referrer_refused: true,
                }
            }
            Ok(response) => {
                decider.answered();
                let limits_denial = limits_denial(&response);
                match (
                    response.is_authorized() || limits_denial,
                    response.authorization,
                ) {
                    (true, Some(authorization)) => {
                        let unreported = decider
                            .reporter()
                            .unreported_since(&ReportKey::of(credentials), generation);
                        let hierarchy = authorization.hierarchy.unwrap_or_default();
                        let state = AllowedState::from_reports(
                            authorization.plan.map(Arc::from),
                            authorization.usage_reports,
                            &hierarchy,
                            &unreported,
                        );
                        let mut expires = later(now, settings.ttl);
                        if let Some(end) = state.earliest_period_end() {
                            let left = (end - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                            expires = expires.min(later(now, left));
                        }
                        Entry::Allowed {
                            state: Mutex::new(state),
                            expires,
                        }
                    }
                    _ => {
                        let denial = match verdict::from_answer(
                            &crate::AuthResponse {
                                status: response.status,
                                authorization: None,
                                limit_headers: response.limit_headers,
                                rejection_reason: response.rejection_reason,
                            },
                            false,
                        ) {
                            Verdict::Deny(denial) => denial,
                            Verdict::Allow(_) => Denial::new(DenialKind::AuthFailed),
                        };
                        Entry::Denied {
                            denial,
                            expires: later(now, settings.negative_ttl),
                            referrer_refused: false,
                        }
                    }
                }
            }
            Err(error) => {
                match decider.failed(&error, "3scale backend unavailable while filling the cache") {
                    Some(denial) => Entry::Denied {
                        denial,
                        expires: later(now, settings.negative_ttl),
                        referrer_refused: false,
                    },
                    None => Entry::Unavailable {
                        until: later(now, UNAVAILABLE_FOR),
                    },
                }
            }
        };
        (entry, refusal)
    }
}

/// Whether the backend refused the request's referrer (its filters), which
/// says nothing of the application's other requests.
fn referrer_refused(response: &crate::AuthResponse) -> bool {
    !response.is_authorized()
        && verdict::rejection_code(response).as_deref() == Some(REFERRER_REFUSED)
}

/// What checking a request's metrics for a warm entry found.
enum Checked {
    /// The backend accepts them (the metrics now remembered): its answer.
    Accepted(Box<crate::AuthResponse>),
    /// The backend refused the request: its verdict, as Sync mode would give it.
    Refused(Verdict),
    /// The backend could not be asked.
    Unavailable,
}

/// Whether an answer to a request carrying usage proves the backend accepted
/// its metrics: authorized, or denied by the limits check (which reads them).
fn usage_accepted(response: &crate::AuthResponse) -> bool {
    response.is_authorized() || limits_denial(response)
}

fn limits_denial(response: &crate::AuthResponse) -> bool {
    response.rejection_reason.as_deref() == Some("limits_exceeded")
        || response
            .authorization
            .as_ref()
            .and_then(|a| a.reason.as_deref())
            == Some("usage limits are exceeded")
}

/// An error about the request's usage rather than the application.
fn usage_refused(error: &BackendError) -> bool {
    matches!(error, BackendError::Api { code, .. }
        if code == "metric_invalid" || code == "usage_value_invalid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A counter or limit: mostly the ends of the range, sometimes anything.
    fn extreme() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(u64::MAX),
            Just(u64::MAX - 1),
            Just(i64::MAX as u64),
            Just(i64::MAX as u64 + 1),
            any::<u64>(),
        ]
    }

    fn date(year: i32) -> String {
        format!("{year:04}-01-01 00:00:00 +0000")
    }

    fn status_xml(max: u64, current: u64, start: i32, end: i32, child: bool) -> String {
        let hierarchy = if child {
            r#"<hierarchy><metric name="hits" children="orders"/></hierarchy>"#
        } else {
            ""
        };
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><plan>p</plan><usage_reports><usage_report metric="hits" period="year"><period_start>{}</period_start><period_end>{}</period_end><max_value>{max}</max_value><current_value>{current}</current_value></usage_report><usage_report metric="hits" period="eternity"><max_value>{max}</max_value><current_value>{current}</current_value></usage_report></usage_reports>{hierarchy}</status>"#,
            date(start),
            date(end)
        )
    }

    proptest! {
        /// Backend numbers at the ends of their range, through the XML parser
        /// and the cache decision: no panic, no wrap, and the answer is exact.
        #[test]
        fn extreme_counters_decide_exactly(
            max in extreme(),
            current in extreme(),
            wanted in extreme(),
            extra in extreme(),
            start in 1970i32..=9999,
            end in 1970i32..=9999,
            child in any::<bool>(),
        ) {
            let xml = status_xml(max, current, start, end, child);
            let authorization = crate::xml::parse_authorization(xml.as_bytes()).unwrap();
            let hierarchy = authorization.hierarchy.clone().unwrap_or_default();
            // hits admitted earlier and not yet reported
            let unreported = Usage::new().with("hits", extra);
            let mut state = AllowedState::from_reports(
                authorization.plan.map(Arc::from),
                authorization.usage_reports,
                &hierarchy,
                &unreported,
            );
            let used = current.saturating_add(extra);
            let metric = if child { "orders" } else { "hits" };
            let usage = Usage::new().with(metric, wanted);
            let verdict = state.admit(&usage);
            let fits = wanted == 0 || used.checked_add(wanted).is_some_and(|n| n <= max);
            match verdict {
                Verdict::Allow(allowed) => {
                    prop_assert!(fits, "allowed {wanted} on {used} of {max}");
                    if let Some(figures) = allowed.rate_limit.filter(|_| wanted > 0) {
                        prop_assert_eq!(figures.limit, max);
                        prop_assert_eq!(figures.remaining, (max - used - wanted) / wanted);
                    }
                    let after = used.saturating_add(wanted);
                    prop_assert!(state.limits.iter().all(|l| l.used == after));
                }
                Verdict::Deny(denial) => {
                    prop_assert!(!fits, "denied {wanted} on {used} of {max}");
                    let kind = if max == 0 { DenialKind::AuthFailed } else { DenialKind::LimitsExceeded };
                    prop_assert_eq!(denial.kind, kind);
                    prop_assert!(state.limits.iter().all(|l| l.used == used));
                }
            }
        }

        /// Limit headers at any value: no panic, nothing negative or wrapped.
        #[test]
        fn extreme_limit_headers_never_wrap(
            remaining in any::<i64>(),
            reset in any::<i64>(),
            max_value in proptest::option::of(any::<i64>()),
            authorized in any::<bool>(),
            max in extreme(),
            current in extreme(),
        ) {
            let headers = crate::LimitHeaders { remaining, reset, max_value };
            let xml = status_xml(max, current, 1970, 9999, false);
            let mut authorization = crate::xml::parse_authorization(xml.as_bytes()).unwrap();
            authorization.authorized = authorized;
            if !authorized {
                authorization.reason = Some("usage limits are exceeded".into());
            }
            if let Some(figures) = crate::headers::rate_limit_from(&headers, &authorization.usage_reports) {
                prop_assert!(figures.reset > 0 && figures.reset <= i64::MAX as u64);
                prop_assert!(figures.remaining <= i64::MAX as u64);
                prop_assert!(figures.limit <= i64::MAX as u64);
            }
            let response = crate::AuthResponse {
                status: if authorized { http::StatusCode::OK } else { http::StatusCode::CONFLICT },
                authorization: Some(authorization),
                limit_headers: Some(headers),
                rejection_reason: None,
            };
            if let Verdict::Deny(denial) = verdict::from_answer(&response, false)
                && let Some(after) = denial.retry_after {
                    prop_assert!(after > 0 && after <= i64::MAX as u64);
                }
        }
    }

    #[test]
    fn the_cache_is_bounded_in_bytes_not_entries() {
        let settings = CacheSettings {
            max_bytes: 1024 * 1024,
            ..CacheSettings::default()
        };
        let cache = AuthCache::new(&settings);
        // 2,000 keys of 20 KB: 40 MB of keys offered to a 1 MiB cache
        for i in 0..2_000 {
            let key = AppCredentials::user_key(format!("{i:05}{}", "x".repeat(20_000)));
            assert!(matches!(
                cache.lookup(&key, None, &Usage::hits()),
                CacheLookup::Miss(_)
            ));
        }
        let (entries, bytes) = cache.size();
        assert!(
            bytes <= settings.max_bytes,
            "{bytes} bytes in {entries} entries"
        );
        assert!(entries <= 52, "{entries} entries of 20 KB in 1 MiB");
        assert!(entries > 0);
    }

    #[test]
    fn the_entry_count_still_bounds_small_entries() {
        let settings = CacheSettings {
            capacity: 100,
            ..CacheSettings::default()
        };
        let cache = AuthCache::new(&settings);
        for i in 0..1_000 {
            let key = AppCredentials::user_key(format!("k{i}"));
            let _ = cache.lookup(&key, None, &Usage::hits());
        }
        let (entries, _) = cache.size();
        assert!(entries <= 100, "{entries}");
    }

    #[test]
    fn the_accepted_metrics_are_bounded() {
        let cache = AuthCache::new(&CacheSettings::default());
        let usage: Usage = (0..3_000).map(|i| (format!("m{i}"), 1)).collect();
        cache.accept(&usage);
        assert_eq!(cache.accepted.load().len(), MAX_ACCEPTED_METRICS);
        let long = Usage::new().with("x".repeat(MAX_METRIC_NAME + 1), 1);
        cache.accept(&long);
        assert!(!cache.accepts(&long));
        assert!(cache.accepts(&Usage::new().with("m0", 1)));
        assert!(!cache.accepts(&Usage::new().with("m0", 1).with("other", 1)));
    }

    #[test]
    fn a_refused_metric_is_forgotten_and_checked_again() {
        let cache = AuthCache::new(&CacheSettings::default());
        cache.accept(&Usage::new().with("hits", 1).with("gone", 1));
        assert!(cache.accepts(&Usage::new().with("gone", 1)));
        cache.forget(&Usage::new().with("gone", 1));
        assert!(!cache.accepts(&Usage::new().with("gone", 1)));
        assert!(cache.accepts(&Usage::new().with("hits", 1)));
    }

    #[test]
    fn durations_past_the_clock_do_not_overflow() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
