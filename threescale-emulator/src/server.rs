//! Building the router, starting and stopping the server, and the shared state handle.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin;
use crate::clock::{Clock, ClockMode};
use crate::config::{EmulatorConfig, MappingRuleConfig, ProxyConfig};
use crate::errors::EmulatorError;
use crate::faults::{FaultAction, FaultState, Faults};
use crate::listener::{self, Route};
use crate::model::Registry;
use crate::period::Period;
use crate::portal::{self, PortalState};
use crate::report::ReportOutcome;
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
/// use threescale_emulator::{Period, PeriodTotals};
/// let t = PeriodTotals { minute: 3, eternity: 7, ..PeriodTotals::default() };
/// assert_eq!(t.get(Period::Eternity), 7);
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
    pub fn get(&self, period: Period) -> i64 {
        match period {
            Period::Minute => self.minute,
            Period::Hour => self.hour,
            Period::Day => self.day,
            Period::Week => self.week,
            Period::Month => self.month,
            Period::Year => self.year,
            Period::Eternity => self.eternity,
        }
    }

    fn set(&mut self, period: Period, v: i64) {
        match period {
            Period::Minute => self.minute = v,
            Period::Hour => self.hour = v,
            Period::Day => self.day = v,
            Period::Week => self.week = v,
            Period::Month => self.month = v,
            Period::Year => self.year = v,
            Period::Eternity => self.eternity = v,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EmulatorState {
    fn new(config: &EmulatorConfig) -> Self {
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
            }),
        }
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
                for p in Period::ALL {
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

/// Entry points: a router to mount, or a server on 127.0.0.1.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// The emulator as an axum router plus its state. Inconsistent config entries are
    /// skipped with a warning (use [`EmulatorConfig::validate`] to refuse them).
    ///
    /// ```
    /// use threescale_emulator::{Emulator, EmulatorConfig};
    /// let (router, state) = Emulator::router(EmulatorConfig::default());
    /// let _app: axum::Router = router;
    /// assert_eq!(state.stats().authrep, 0);
    /// ```
    pub fn router(config: EmulatorConfig) -> (Router, EmulatorState) {
        let state = EmulatorState::new(&config);
        let router = Router::new()
            .route("/_emulator/usage", get(admin::usage))
            .route("/_emulator/reset", post(admin::reset))
            .route("/_emulator/stats", get(admin::stats))
            .route(
                "/_emulator/faults",
                get(admin::get_faults)
                    .post(admin::set_faults)
                    .delete(admin::clear_faults),
            )
            .route(
                "/_emulator/errors",
                get(admin::errors).delete(admin::delete_errors),
            )
            .route(
                "/_emulator/time",
                get(admin::get_time)
                    .post(admin::set_time)
                    .delete(admin::system_time),
            )
            .route(
                "/_emulator/proxy_rules",
                get(portal::get_proxy_rules).put(portal::put_proxy_rules),
            )
            .route(
                "/_emulator/proxy",
                get(portal::get_proxy).put(portal::put_proxy),
            )
            .route(
                "/_emulator/portal_faults",
                get(portal::get_portal_faults)
                    .post(portal::set_portal_faults)
                    .delete(portal::clear_portal_faults),
            )
            .route("/admin/api/services.json", get(portal::services))
            .route(
                "/admin/api/services/{id}/proxy/configs/{env}/latest.json",
                get(portal::latest),
            )
            .route(
                "/internal/services/{id}/errors",
                get(admin::internal_errors).delete(admin::internal_delete_errors),
            )
            .fallback(listener::handle)
            .with_state(state.clone());
        (router, state)
    }

    /// Validates the config and serves it on `127.0.0.1` on a free port.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), threescale_emulator::EmulatorError> {
    /// let config = threescale_emulator::EmulatorConfig::from_yaml_str(
    ///     "services: [{id: '1', provider_key: pk}]",
    /// )?;
    /// let emulator = threescale_emulator::Emulator::start(config).await?;
    /// assert!(emulator.url().starts_with("http://127.0.0.1:"));
    /// emulator.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        Self::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Validates the config and serves it on `addr`.
    pub async fn start_on(
        config: EmulatorConfig,
        addr: SocketAddr,
    ) -> Result<EmulatorHandle, EmulatorError> {
        config.validate()?;
        let (router, state) = Self::router(config);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        Ok(EmulatorHandle {
            state,
            addr: local,
            stop: Arc::new(Mutex::new(Some((tx, task)))),
        })
    }
}

type Stopper = (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>);

/// A running emulator. Clones share the same server; the first `shutdown` stops it.
#[derive(Clone)]
pub struct EmulatorHandle {
    state: EmulatorState,
    addr: SocketAddr,
    stop: Arc<Mutex<Option<Stopper>>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (also reachable through the methods below).
    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// See [`EmulatorState::usage`].
    pub fn usage(&self, service_id: &str, app: AppRef) -> Option<UsageTotals> {
        self.state.usage(service_id, app)
    }

    /// See [`EmulatorState::stats`].
    pub fn stats(&self) -> RequestStats {
        self.state.stats()
    }

    /// See [`EmulatorState::errors`].
    pub fn errors(&self, service_id: &str) -> Option<Vec<ErrorEntry>> {
        self.state.errors(service_id)
    }

    /// See [`EmulatorState::set_faults`].
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// See [`EmulatorState::clear_faults`].
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// See [`EmulatorState::set_proxy_rules`].
    pub fn set_proxy_rules(
        &self,
        service_id: &str,
        rules: Vec<MappingRuleConfig>,
    ) -> Result<u64, EmulatorError> {
        self.state.set_proxy_rules(service_id, rules)
    }

    /// See [`EmulatorState::set_proxy`].
    pub fn set_proxy(&self, service_id: &str, proxy: ProxyConfig) -> Result<u64, EmulatorError> {
        self.state.set_proxy(service_id, proxy)
    }

    /// See [`EmulatorState::proxy_config_version`].
    pub fn proxy_config_version(&self, service_id: &str) -> Option<u64> {
        self.state.proxy_config_version(service_id)
    }

    /// See [`EmulatorState::set_portal_faults`].
    pub fn set_portal_faults(&self, faults: Faults) {
        self.state.set_portal_faults(faults);
    }

    /// See [`EmulatorState::clear_portal_faults`].
    pub fn clear_portal_faults(&self) {
        self.state.clear_portal_faults();
    }

    /// The admin portal URL with the access token in it, as the gateway's
    /// `THREESCALE_PORTAL_ENDPOINT` wants it: `http://TOKEN@127.0.0.1:PORT`.
    pub fn portal_endpoint(&self, access_token: &str) -> String {
        const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let token = percent_encoding::utf8_percent_encode(access_token, USERINFO);
        format!("http://{token}@{}", self.addr)
    }

    /// See [`EmulatorState::set_time`].
    pub fn set_time(&self, now: DateTime<Utc>) {
        self.state.set_time(now);
    }

    /// See [`EmulatorState::advance_time`].
    pub fn advance_time(&self, by: chrono::Duration) {
        self.state.advance_time(by);
    }

    /// See [`EmulatorState::use_system_time`].
    pub fn use_system_time(&self) {
        self.state.use_system_time();
    }

    /// See [`EmulatorState::reset`].
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops accepting connections and waits (at most 5 s) for open ones to finish.
    pub async fn shutdown(self) {
        let stopper = lock(&self.stop).take();
        if let Some((tx, mut task)) = stopper {
            let _ = tx.send(());
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

/// Serves the config file on `listen` until ctrl-c (used by `threescale emulate`).
pub async fn serve_from_file(path: &Path, listen: SocketAddr) -> Result<(), EmulatorError> {
    let config = EmulatorConfig::from_file(path)?;
    let services = config.services.len();
    let handle = Emulator::start_on(config, listen).await?;
    tracing::info!(url = %handle.url(), services, "3scale backend emulator listening");
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping the 3scale backend emulator");
    handle.shutdown().await;
    Ok(())
}
