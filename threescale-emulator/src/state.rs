//! The emulator's shared state, which the HTTP handlers (`listener`, `admin`,
//! `portal`) and the server's handles all work on: counters, clock, faults,
//! the admin portal's proxy configurations, request statistics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, ClockMode};
use crate::config::{EmulatorConfig, MappingRuleConfig, ProxyConfig};
use crate::errors::EmulatorError;
use crate::faults::{FaultAction, FaultState, Faults};
use crate::model::Registry;
use crate::period::LimitPeriod;
use crate::portal_store::PortalState;
use crate::report::ReportOutcome;
use crate::route::Route;
use crate::store::{ErrorEntry, RequestStats, Store};

/// How an application is named in [`EmulatorState::usage`].
///
/// ```
/// use threescale_emulator::AppRef;
/// assert_eq!(AppRef::user_key("k"), AppRef::UserKey("k".to_string()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AppRef {
    /// By application id.
    AppId(String),
    /// By user key.
    UserKey(String),
}

impl AppRef {
    /// By application id.
    pub fn app_id(id: impl Into<String>) -> Self {
        AppRef::AppId(id.into())
    }

    /// By user key.
    pub fn user_key(key: impl Into<String>) -> Self {
        AppRef::UserKey(key.into())
    }
}

/// Counter values of one metric in the periods containing "now".
///
/// ```
/// use threescale_emulator::{LimitPeriod, PeriodTotals};
/// let t = PeriodTotals { minute: 3, eternity: 7, ..PeriodTotals::default() };
/// assert_eq!(t.get(LimitPeriod::Eternity), 7);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodTotals {
    /// The current minute.
    pub minute: i64,
    /// The current hour.
    pub hour: i64,
    /// The current day.
    pub day: i64,
    /// The current week (from Monday).
    pub week: i64,
    /// The current month.
    pub month: i64,
    /// The current year.
    pub year: i64,
    /// Since the start (or the last reset).
    pub eternity: i64,
}

impl PeriodTotals {
    /// The value for one period.
    pub fn get(&self, period: LimitPeriod) -> i64 {
        match period {
            LimitPeriod::Minute => self.minute,
            LimitPeriod::Hour => self.hour,
            LimitPeriod::Day => self.day,
            LimitPeriod::Week => self.week,
            LimitPeriod::Month => self.month,
            LimitPeriod::Year => self.year,
            LimitPeriod::Eternity => self.eternity,
        }
    }

    fn set(&mut self, period: LimitPeriod, v: i64) {
        match period {
            LimitPeriod::Minute => self.minute = v,
            LimitPeriod::Hour => self.hour = v,
            LimitPeriod::Day => self.day = v,
            LimitPeriod::Week => self.week = v,
            LimitPeriod::Month => self.month = v,
            LimitPeriod::Year => self.year = v,
            LimitPeriod::Eternity => self.eternity = v,
        }
    }
}

/// The usage of one application: what `GET /_emulator/usage` returns.
///
/// ```
/// use threescale_emulator::UsageTotals;
/// let json = r#"{"service_id":"1","app_id":"a","usage":{"hits":{"minute":1,"hour":1,"day":1,"week":1,"month":1,"year":1,"eternity":1}}}"#;
/// let totals: UsageTotals = serde_json::from_str(json).unwrap();
/// assert_eq!(totals.usage["hits"].eternity, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// The service id.
    pub service_id: String,
    /// The application id.
    pub app_id: String,
    /// The user key, when the application was named by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key: Option<String>,
    /// Every metric of the service (also those never used), by name.
    pub usage: BTreeMap<String, PeriodTotals>,
}

struct Inner {
    registry: Registry,
    store: Mutex<Store>,
    clock: RwLock<ClockMode>,
    faults: Mutex<FaultState>,
    portal: Mutex<PortalState>,
    issuer: crate::oidc::Issuer,
}

/// The emulator's shared state: counters, clock, faults, statistics. Cheap to clone.
#[derive(Clone)]
pub struct EmulatorState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmulatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorState")
            .field("services", &self.inner.registry.services.len())
            .finish_non_exhaustive()
    }
}

/// Locks `m`, also after a panic elsewhere (the data stays usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EmulatorState {
    pub(crate) fn new(config: &EmulatorConfig) -> Self {
        let (registry, problems) = Registry::build(config);
        for p in &problems {
            tracing::warn!(problem = %p, "emulator config entry skipped");
        }
        Self {
            inner: Arc::new(Inner {
                registry,
                store: Mutex::new(Store::default()),
                clock: RwLock::new(ClockMode::System),
                faults: Mutex::new(FaultState::default()),
                portal: Mutex::new(PortalState::new(config)),
                issuer: crate::oidc::Issuer::new(),
            }),
        }
    }

    /// The development OpenID Connect issuer.
    pub(crate) fn issuer(&self) -> &crate::oidc::Issuer {
        &self.inner.issuer
    }

    /// Whether `client_id` is an application of an `oauth` service and
    /// `secret` one of its keys (any secret when it has none).
    pub(crate) fn oauth_client_is_valid(&self, client_id: &str, secret: &str) -> bool {
        self.inner.registry.services.iter().any(|svc| {
            svc.is_oauth()
                && svc
                    .app_index
                    .get(client_id)
                    .map(|&i| &svc.apps[i])
                    .is_some_and(|app| app.keys.is_empty() || app.keys.iter().any(|k| k == secret))
        })
    }

    /// The emulator's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner
            .clock
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .now()
    }

    fn set_clock_mode(&self, mode: ClockMode) {
        *self
            .inner
            .clock
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = mode;
    }

    /// Pins "now" to `now` (the clock stands still until changed).
    pub fn set_time(&self, now: DateTime<Utc>) {
        self.set_clock_mode(ClockMode::Fixed(now));
    }

    /// Moves "now" by `by` and pins it there (saturating at the representable range).
    pub fn advance_time(&self, by: chrono::Duration) {
        let now = self.now();
        let moved = now
            .checked_add_signed(by)
            .unwrap_or(if by < chrono::Duration::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            });
        self.set_time(moved);
    }

    /// Goes back to the system clock.
    pub fn use_system_time(&self) {
        self.set_clock_mode(ClockMode::System);
    }

    /// Uses your own clock.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        self.set_clock_mode(ClockMode::Custom(clock));
    }

    /// Runs `f` with the store locked and the current time.
    pub(crate) fn with_store<R>(
        &self,
        f: impl FnOnce(&Registry, &mut Store, DateTime<Utc>) -> R,
    ) -> R {
        let now = self.now();
        let mut store = lock(&self.inner.store);
        f(&self.inner.registry, &mut store, now)
    }

    /// Usage of an application in the periods containing "now", per metric.
    pub fn usage(&self, service_id: &str, app: AppRef) -> Option<UsageTotals> {
        let reg = &self.inner.registry;
        let svc_idx = reg.service_by_id(service_id)?;
        let svc = &reg.services[svc_idx];
        let (app_idx, user_key) = match app {
            AppRef::AppId(id) => (*svc.app_index.get(&id)?, None),
            AppRef::UserKey(k) => (*svc.user_key_index.get(&k)?, Some(k)),
        };
        let now = self.now();
        let store = lock(&self.inner.store);
        let usage = svc
            .metrics
            .iter()
            .enumerate()
            .map(|(m, metric)| {
                let mut totals = PeriodTotals::default();
                for p in LimitPeriod::ALL {
                    totals.set(p, store.value(svc_idx, app_idx, m, p, now));
                }
                (metric.name.clone(), totals)
            })
            .collect();
        Some(UsageTotals {
            service_id: svc.id.clone(),
            app_id: svc.apps[app_idx].id.clone(),
            user_key,
            usage,
        })
    }

    /// The response codes reported for an application with `log[code]`
    /// (authrep or report), counted as the backend's response-code stats:
    /// `"2XX"`, `"4XX"`, `"5XX"` and the tracked codes `"200"`, `"403"`,
    /// `"404"`, `"500"`, `"503"`, each the number of transactions. `None` for
    /// an unknown service or application.
    pub fn response_codes(
        &self,
        service_id: &str,
        app: AppRef,
    ) -> Option<std::collections::BTreeMap<String, u64>> {
        let reg = &self.inner.registry;
        let svc_idx = reg.service_by_id(service_id)?;
        let svc = &reg.services[svc_idx];
        let app_idx = match app {
            AppRef::AppId(id) => *svc.app_index.get(&id)?,
            AppRef::UserKey(k) => *svc.user_key_index.get(&k)?,
        };
        Some(lock(&self.inner.store).response_codes(svc_idx, app_idx))
    }

    /// Requests received per endpoint.
    pub fn stats(&self) -> RequestStats {
        lock(&self.inner.store).stats
    }

    /// The error log of a service (newest first); `None` for an unknown service.
    pub fn errors(&self, service_id: &str) -> Option<Vec<ErrorEntry>> {
        let idx = self.inner.registry.service_by_id(service_id)?;
        Some(lock(&self.inner.store).errors(idx))
    }

    /// Empties the error log of a service; `false` for an unknown service.
    pub fn clear_errors(&self, service_id: &str) -> bool {
        match self.inner.registry.service_by_id(service_id) {
            Some(idx) => {
                lock(&self.inner.store).clear_errors(idx);
                true
            }
            None => false,
        }
    }

    /// Clears counters, error logs and statistics (faults and clock stay).
    pub fn reset(&self) {
        lock(&self.inner.store).reset();
    }

    /// Sets the faults injected on the `/transactions` endpoints.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.inner.faults) = FaultState::new(faults);
    }

    /// Stops injecting faults.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    /// The faults currently injected.
    pub fn faults(&self) -> Faults {
        lock(&self.inner.faults).faults().clone()
    }

    pub(crate) fn next_fault(&self) -> (Duration, FaultAction) {
        lock(&self.inner.faults).next()
    }

    pub(crate) fn with_portal<R>(&self, f: impl FnOnce(&PortalState) -> R) -> R {
        f(&lock(&self.inner.portal))
    }

    /// Serves `rules` as the service's mapping rules from now on (the other proxy
    /// settings stay); returns the new proxy configuration version. Fails for an
    /// unknown service or rules the admin portal would refuse.
    pub fn set_proxy_rules(
        &self,
        service_id: &str,
        rules: Vec<MappingRuleConfig>,
    ) -> Result<u64, EmulatorError> {
        lock(&self.inner.portal).set_proxy_rules(service_id, rules)
    }

    /// Serves `proxy` as the service's proxy settings from now on; returns the new
    /// proxy configuration version.
    pub fn set_proxy(&self, service_id: &str, proxy: ProxyConfig) -> Result<u64, EmulatorError> {
        lock(&self.inner.portal).set_proxy(service_id, proxy)
    }

    /// The proxy settings served now (`None` for an unknown service).
    pub fn proxy(&self, service_id: &str) -> Option<ProxyConfig> {
        lock(&self.inner.portal).proxy(service_id)
    }

    /// The version of the proxy configuration served now: 1 at start, one more
    /// after each change.
    pub fn proxy_config_version(&self, service_id: &str) -> Option<u64> {
        lock(&self.inner.portal).version(service_id)
    }

    /// Sets the faults injected on the admin portal endpoints (`/admin/api/...`)
    /// only; the backend keeps its own [`EmulatorState::set_faults`]. A
    /// "malformed" fault answers 200 with a body that is not JSON.
    pub fn set_portal_faults(&self, faults: Faults) {
        lock(&self.inner.portal).set_faults(faults);
    }

    /// Stops injecting faults on the admin portal endpoints.
    pub fn clear_portal_faults(&self) {
        self.set_portal_faults(Faults::default());
    }

    /// The faults injected on the admin portal endpoints.
    pub fn portal_faults(&self) -> Faults {
        lock(&self.inner.portal).faults()
    }

    pub(crate) fn next_portal_fault(&self) -> (Duration, FaultAction) {
        lock(&self.inner.portal).next_fault()
    }

    pub(crate) fn count_request(&self, route: Route) {
        let mut store = lock(&self.inner.store);
        let s = &mut store.stats;
        match route {
            Route::Auth(crate::auth::AuthKind::Authorize) => s.authorize += 1,
            Route::Auth(crate::auth::AuthKind::Authrep) => s.authrep += 1,
            Route::Auth(crate::auth::AuthKind::OauthAuthorize) => s.oauth_authorize += 1,
            Route::Auth(crate::auth::AuthKind::OauthAuthrep) => s.oauth_authrep += 1,
            Route::Report => s.report += 1,
            _ => {}
        }
    }

    pub(crate) fn count_transactions(&self, outcome: ReportOutcome) {
        let mut store = lock(&self.inner.store);
        let s = &mut store.stats;
        s.transactions += outcome.received as u64;
        s.transactions_applied += outcome.applied as u64;
        s.transactions_discarded += outcome.discarded as u64;
    }

    pub(crate) fn has_service(&self, service_id: &str) -> bool {
        self.inner.registry.service_by_id(service_id).is_some()
    }
}
