//! [`ThreeScale`]: the shared engine handle. Cheap to clone, `Send + Sync`.
//!
//! A check has two steps so that adapters need no boxing on the hot path:
//! [`ThreeScale::begin`] does everything that needs the request (bypass,
//! credentials, mapping, cache lookup) and either decides at once
//! ([`Step::Done`]) or hands back an owned [`PendingCheck`] whose
//! [`PendingCheck::run`] asks the backend. [`ThreeScale::check`] does both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use http::{HeaderMap, HeaderValue};
use tracing::Instrument as _;

use crate::{
    AuthContext, Config, CredentialKind, Decision, Denial, DenialKind, Mode, RateLimitHeaders,
    backend::{AppCredentials, BackendClient, BackendError},
    cache::{AuthCache, CacheLookup},
    completion::Completion,
    config::ServiceConfig,
    credentials::{BackendVersion, RequestCredentials, RequestView},
    headers::{self, DebugInfo},
    mapping::MatchResult,
    report::{ReportKey, ReportStats, Reporter, ReporterSettings},
    request::{BypassPath, RequestPolicy, query_is_too_long},
    response::ErrorResponse,
    verdict::{Backend, Decider, Verdict},
};

/// Turns an OAuth/OIDC access token into the application (client) id, or
/// `None` when the token is not valid. Required for `backend_version: oauth`.
pub type TokenVerifier = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The verdict plus the headers to add to the response (debug and rate-limit
/// headers) and what is left to do once the response is known.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Allow, deny or bypass.
    pub decision: Decision,
    /// Headers for the response, whatever it is.
    pub headers: HeaderMap,
    /// For an allowed request: call [`Completion::finish`] with the
    /// response's status (and any [`AddedUsage`](crate::AddedUsage)) once it
    /// is known. Dropping it reports the request's usage without a status.
    /// A clone of the outcome carries an empty one.
    pub completion: Completion,
}

/// The engine could not be started: the one error of every constructor of
/// [`ThreeScale`] (`new`, `with_token_verifier`, `from_env`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid or could not be loaded.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// The backend client could not be built.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The first step of a check.
#[derive(Debug)]
pub enum Step {
    /// Decided without the backend.
    Done(Outcome),
    /// Needs a backend call: run it.
    Pending(PendingCheck),
}

/// Counters of the engine, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests denied.
    pub denied: u64,
    /// Requests allowed by the failure policy while the backend was unavailable.
    pub degraded: u64,
    /// Backend calls that failed (unreachable, timeout, 5xx, malformed answer).
    pub backend_failures: u64,
    /// Auth calls made to the backend.
    pub backend_calls: u64,
    /// Authorizations (allowed and denied) held by the cache (cached mode).
    pub cache_entries: u64,
    /// Bytes the cache accounts for those entries, at most `CacheSettings::max_bytes`.
    pub cache_bytes: u64,
    /// The report batcher's counters.
    pub reports: ReportStats,
}

/// The part of the engine a configuration refresh replaces as a whole.
#[derive(Debug)]
struct Live {
    service: Arc<ServiceConfig>,
    client: BackendClient,
    /// The OpenID Connect checker with its issuer's keys (`service.oidc`).
    oidc: Option<Arc<crate::oidc::Oidc>>,
}

impl Live {
    fn backend<'a>(&'a self, referrer: Option<&'a str>) -> Backend<'a> {
        Backend {
            client: &self.client,
            version: self.service.backend_version,
            referrer,
        }
    }
}

struct Inner {
    live: arc_swap::ArcSwap<Live>,
    mode: Mode,
    rate_limit_headers: RateLimitHeaders,
    /// Report each response's status with the usage, after the response.
    response_codes: bool,
    bypass_paths: Vec<BypassPath>,
    request: RequestPolicy,
    timeout: std::time::Duration,
    tls: crate::TlsTrust,
    service_id: Arc<str>,
    /// The decision path: failure policy, reporter, outage log, backend counters.
    decider: Decider,
    cache: Option<AuthCache>,
    token_verifier: Option<TokenVerifier>,
    allowed: AtomicU64,
    denied: AtomicU64,
    /// Set when `shutdown()` begins: new checks are refused.
    shutting_down: AtomicBool,
    /// Checks past the shutdown gate and not finished yet.
    checks_in_flight: Arc<AtomicUsize>,
    degraded: AtomicU64,
}

/// The 3scale engine: one per protected service, shared by every request.
///
/// ```no_run
/// use threescale_core::{Config, ThreeScale, SimpleRequest, Decision};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::builder()
///     .backend_url("http://127.0.0.1:3001")
///     .service_token("demo-service-token", "2555417777820")
///     .build()?;
/// let threescale = ThreeScale::new(config)?;
/// let outcome = threescale.check(&SimpleRequest::get("/orders/1?user_key=demo-user-key")).await;
/// assert!(matches!(outcome.decision, Decision::Allow(_)));
/// threescale.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ThreeScale {
    inner: Arc<Inner>,
    /// Set when the engine protects several services ([`crate::Services`]):
    /// every request is routed to one of them, and `inner` is unused for checks.
    set: Option<Arc<crate::services::ServiceSet>>,
}

/// A handle that does not keep the engine alive (for background tasks).
#[derive(Clone)]
pub(crate) struct WeakThreeScale(std::sync::Weak<Inner>);

impl WeakThreeScale {
    /// The engine, if it is still in use somewhere.
    pub(crate) fn upgrade(&self) -> Option<ThreeScale> {
        self.0
            .upgrade()
            .map(|inner| ThreeScale { inner, set: None })
    }
}

impl ThreeScale {
    pub(crate) fn downgrade(&self) -> WeakThreeScale {
        WeakThreeScale(Arc::downgrade(&self.inner))
    }
}

impl std::fmt::Debug for ThreeScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(set) = &self.set {
            return f.debug_tuple("ThreeScale").field(set).finish();
        }
        f.debug_struct("ThreeScale")
            .field("service_id", &self.inner.service_id)
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

impl ThreeScale {
    /// Builds the engine. Call it inside a tokio runtime or not: background
    /// reporting starts with the first request. Fails with
    /// [`StartError::Backend`] when the backend client cannot be built.
    pub fn new(config: Config) -> Result<Self, StartError> {
        ThreeScale::build(config, None, None)
    }

    /// Builds the engine for an `oauth` service, with the function that turns an
    /// access token into the client id (e.g. after checking a JWT's signature).
    pub fn with_token_verifier(
        config: Config,
        verifier: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, StartError> {
        ThreeScale::build(config, Some(Arc::new(verifier)), None)
    }

    /// Builds a one-service engine; its backend calls go through `shared`'s
    /// connection pool when given (several services in one engine).
    pub(crate) fn build(
        config: Config,
        token_verifier: Option<TokenVerifier>,
        shared: Option<&BackendClient>,
    ) -> Result<Self, StartError> {
        let client = match shared {
            Some(shared) => shared.for_service(
                &config.service.backend_url,
                config.service.provider_auth.clone(),
            )?,
            None => backend_client(&config.service, config.timeout, &config.tls)?,
        };
        // Reports go out on the reporter's own thread, with connections of their own.
        let report_client = backend_client(&config.service, config.timeout, &config.tls)?;
        // The one retry of a report POST that timed out waits longer for its answer.
        let late_answer_timeout = (config.timeout * 10).clamp(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(60),
        );
        let settings = match &config.mode {
            Mode::Cached(c) => ReporterSettings {
                flush_interval: c.flush_interval,
                max_batch: c.max_batch,
                max_pending: c.max_pending,
                late_answer_timeout,
                ..ReporterSettings::default()
            },
            Mode::Sync => ReporterSettings {
                late_answer_timeout,
                ..ReporterSettings::default()
            },
        };
        let service_id: Arc<str> = config.service.service_id.as_str().into();
        crate::metrics::outage(&service_id, false);
        let oidc = oidc_checker(&config.service, None, config.timeout, &config.tls)?;
        let reporter = Reporter::new(report_client, Some(service_id.to_string()), settings);
        let cache = match &config.mode {
            Mode::Cached(c) => Some(AuthCache::new(c)),
            Mode::Sync => None,
        };
        Ok(ThreeScale {
            inner: Arc::new(Inner {
                live: arc_swap::ArcSwap::from_pointee(Live {
                    service: Arc::new(config.service),
                    client,
                    oidc,
                }),
                mode: config.mode,
                rate_limit_headers: config.rate_limit_headers,
                response_codes: config.response_codes,
                bypass_paths: config
                    .bypass_paths
                    .iter()
                    .map(|path| BypassPath::new(path))
                    .collect(),
                request: config.request,
                timeout: config.timeout,
                tls: config.tls,
                decider: Decider::new(service_id.clone(), config.failure_policy, reporter),
                service_id,
                cache,
                token_verifier,
                allowed: AtomicU64::new(0),
                denied: AtomicU64::new(0),
                shutting_down: AtomicBool::new(false),
                checks_in_flight: Arc::new(AtomicUsize::new(0)),
                degraded: AtomicU64::new(0),
            }),
            set: None,
        })
    }

    /// An engine routing every request to one of the engines of `set`.
    pub(crate) fn from_set(set: crate::services::ServiceSet, inner: ThreeScale) -> Self {
        ThreeScale {
            inner: inner.inner,
            set: Some(Arc::new(set)),
        }
    }

    /// The routing part of an engine protecting several services.
    #[cfg(test)]
    pub(crate) fn set(&self) -> Option<&crate::services::ServiceSet> {
        self.set.as_deref()
    }

    /// The engines of the services this engine protects, when it protects
    /// several ([`crate::Services`]); `None` for a one-service engine.
    pub fn services(&self) -> Option<&[ThreeScale]> {
        self.set
            .as_deref()
            .map(crate::services::ServiceSet::engines)
    }

    /// Builds the engine from the environment: the admin portal when
    /// `THREESCALE_PORTAL_ENDPOINT` is set (refreshed in the background every
    /// `APICAST_CONFIGURATION_CACHE` seconds), else [`Config::from_env`].
    pub async fn from_env() -> Result<Self, StartError> {
        let var = |name: &str| std::env::var(name).ok();
        if let Some(portal) = crate::config::portal::Portal::from_vars(var)? {
            let mut config = portal.load().await?;
            // The gateway's switch: the proxy config has no field for it.
            if crate::config::env_enabled(var("APICAST_RESPONSE_CODES"))
                || crate::config::env_enabled(var("THREESCALE_RESPONSE_CODES"))
            {
                config.response_codes = true;
            }
            let engine = ThreeScale::new(config)?;
            if portal.refresh_interval().is_some() {
                tokio::spawn(portal.keep_fresh(engine.clone()));
            }
            return Ok(engine);
        }
        ThreeScale::new(Config::from_env()?)
    }

    /// The service's settings in force now (for an engine protecting several
    /// services: the first one's; see [`ThreeScale::services`]).
    pub fn service(&self) -> Arc<ServiceConfig> {
        self.inner.live.load().service.clone()
    }

    /// Puts a new configuration of the same service in force (e.g. refreshed
    /// from the admin portal). Requests already being checked finish with the
    /// settings they started with; the cache and pending reports are kept.
    /// An engine protecting several services hands it to the one with the same id.
    pub fn update_service(&self, service: ServiceConfig) -> Result<(), crate::ConfigError> {
        if let Some(set) = &self.set {
            return set.update_service(service);
        }
        if service.service_id != *self.inner.service_id {
            return Err(crate::ConfigError::new(
                "update",
                "service_id",
                format!(
                    "the engine serves service {}, not {}",
                    self.inner.service_id, service.service_id
                ),
            ));
        }
        let current = self.inner.live.load_full();
        let client = if current.service.backend_url == service.backend_url
            && current.service.provider_auth == service.provider_auth
        {
            current.client.clone()
        } else {
            let build = || {
                backend_client(&service, self.inner.timeout, &self.inner.tls)
                    .map_err(|e| crate::ConfigError::new("update", "backend", e.to_string()))
            };
            let client = build()?;
            self.inner.decider.reporter().set_client(build()?);
            client
        };
        let oidc = oidc_checker(
            &service,
            current.oidc.as_ref(),
            self.inner.timeout,
            &self.inner.tls,
        )?;
        self.inner.live.store(Arc::new(Live {
            service: Arc::new(service),
            client,
            oidc,
        }));
        Ok(())
    }

    /// The response configured for a denial, with `Retry-After` for 429.
    pub fn error_response(&self, denial: &Denial) -> ErrorResponse {
        if let Some(set) = &self.set {
            return set.error_response(denial);
        }
        let mut response = self
            .inner
            .live
            .load()
            .service
            .error_responses
            .get(denial.kind)
            .clone();
        if denial.kind == DenialKind::LimitsExceeded
            && let Some(after) = denial.retry_after
        {
            response
                .headers
                .push((http::header::RETRY_AFTER, HeaderValue::from(after)));
        }
        response
    }

    /// Checks a request: bypass, credentials, mapping rules, then the backend
    /// (or the cache).
    pub async fn check(&self, request: &impl RequestView) -> Outcome {
        match self.begin(request) {
            Step::Done(outcome) => outcome,
            Step::Pending(pending) => pending.run().await,
        }
    }

    /// The synchronous first step of [`ThreeScale::check`].
    ///
    /// In order: an ambiguous path is refused (400, unless the path policy is
    /// `Normalise`); a bypass path is let through; a query longer than the
    /// mapping rules read is refused (400); missing credentials are 401,
    /// unacceptable ones (too long, control characters) or different ones in
    /// two places of a credential chain 403; then the mapping rules, the token
    /// verifier or the OpenID Connect check (OAuth) and the cache. Nothing
    /// before the cache calls the backend; a token whose issuer keys are not
    /// held yet makes the step [`Step::Pending`], which fetches them first.
    pub fn begin(&self, request: &impl RequestView) -> Step {
        if let Some(set) = &self.set {
            return set.begin(request);
        }
        let span = crate::spans::check_span(&self.inner.service_id);
        let _entered = span.enter();
        let inner = &self.inner;
        let live = inner.live.load();
        let service = &live.service;
        let path = request.path();
        if !inner.request.path_is_acceptable(path) {
            tracing::debug!("ambiguous request path refused");
            return Step::Done(self.deny(
                Denial::new(DenialKind::BadRequest).with_reason("ambiguous_path"),
                HeaderMap::new(),
            ));
        }
        if !inner.bypass_paths.is_empty() {
            let normal = crate::mapping::normalize_path(path);
            if inner.bypass_paths.iter().any(|b| b.matches(&normal)) {
                crate::metrics::decision("bypassed", "none", false);
                crate::spans::record_bypass(&span);
                return Step::Done(Outcome {
                    decision: Decision::Bypass,
                    headers: HeaderMap::new(),
                    completion: Completion::default(),
                });
            }
        }
        if request.query().is_some_and(query_is_too_long) {
            return Step::Done(self.deny(
                Denial::new(DenialKind::BadRequest).with_reason("too_many_query_arguments"),
                HeaderMap::new(),
            ));
        }
        // Shutdown gate: a check either sees the flag and is refused, or is
        // counted before shutdown() looks, which then waits for it.
        let check = CheckInFlight::enter(&inner.checks_in_flight);
        if inner.shutting_down.load(Ordering::SeqCst) {
            drop(check);
            return Step::Done(self.deny(
                Denial::new(DenialKind::BackendUnavailable).with_reason("shutting_down"),
                HeaderMap::new(),
            ));
        }
        let version = service.backend_version;
        let found = match service.credentials.find_checked(version, request) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Step::Done(
                    self.deny(Denial::new(DenialKind::AuthMissing), HeaderMap::new()),
                );
            }
            Err(_) => {
                return Step::Done(self.deny(
                    Denial::new(DenialKind::AuthFailed).with_reason("conflicting_credentials"),
                    HeaderMap::new(),
                ));
            }
        };
        let acceptable = match &found {
            RequestCredentials::App(app) => inner.request.credentials_are_acceptable(app),
            RequestCredentials::AccessToken(token) => {
                inner.request.token_is_acceptable(token.expose())
            }
        };
        if !acceptable {
            return Step::Done(self.deny(
                Denial::new(DenialKind::AuthFailed).with_reason("invalid_credentials"),
                HeaderMap::new(),
            ));
        }
        let matched = service
            .mapping_rules
            .matches(request.method(), path, request.query());
        if matched.is_empty() {
            return Step::Done(self.deny(Denial::new(DenialKind::NoMatch), HeaderMap::new()));
        }
        let debug = debug_requested(service, request);
        let referrer = service
            .referrer_header
            .as_ref()
            .and_then(|name| referrer_of(request, name));
        let credentials = match found {
            RequestCredentials::App(app) => app,
            RequestCredentials::AccessToken(token) => match (&inner.token_verifier, &live.oidc) {
                (None, Some(oidc)) => match oidc.check(token.expose()) {
                    crate::oidc::Checked::ClientId(app_id) => {
                        match self.client_id_credentials(app_id) {
                            Some(credentials) => credentials,
                            None => return Step::Done(self.unacceptable_client_id()),
                        }
                    }
                    crate::oidc::Checked::Rejected(reason) => {
                        return Step::Done(self.deny(
                            Denial::new(DenialKind::AuthFailed).with_reason(reason),
                            HeaderMap::new(),
                        ));
                    }
                    crate::oidc::Checked::NeedKeys => {
                        return Step::Pending(PendingCheck {
                            span: span.clone(),
                            engine: self.clone(),
                            stage: Stage::Token { token, debug },
                            referrer,
                            matched,
                            headers: HeaderMap::new(),
                            live: arc_swap::Guard::into_inner(live),
                            _check: check,
                        });
                    }
                },
                _ => {
                    let client_id = inner
                        .token_verifier
                        .as_ref()
                        .and_then(|verify| verify(token.expose()));
                    match client_id {
                        Some(app_id) if inner.request.credential_is_acceptable(&app_id) => {
                            AppCredentials::app_id(app_id)
                        }
                        _ => {
                            // Said once per process, not once per request.
                            static SAID: std::sync::atomic::AtomicBool =
                                std::sync::atomic::AtomicBool::new(false);
                            if inner.token_verifier.is_none() && !SAID.swap(true, Ordering::Relaxed)
                            {
                                tracing::error!(
                                    "oauth service without a token verifier nor OpenID Connect \
                                     settings: every token is refused"
                                );
                            }
                            return Step::Done(self.deny(
                                Denial::new(DenialKind::AuthFailed).with_reason("invalid_token"),
                                HeaderMap::new(),
                            ));
                        }
                    }
                }
            },
        };
        match self.with_credentials(&live, &credentials, matched, debug, referrer.as_deref()) {
            AfterCredentials::Backend {
                slot,
                headers,
                matched,
            } => Step::Pending(PendingCheck {
                span: span.clone(),
                engine: self.clone(),
                stage: Stage::Backend { credentials, slot },
                referrer,
                matched,
                headers,
                live: arc_swap::Guard::into_inner(live),
                _check: check,
            }),
            AfterCredentials::Decided(outcome) => Step::Done(outcome),
        }
    }

    /// The client id of a verified token as application credentials; `None`
    /// when it is not an acceptable app id.
    fn client_id_credentials(&self, app_id: String) -> Option<AppCredentials> {
        self.inner
            .request
            .credential_is_acceptable(&app_id)
            .then(|| AppCredentials::app_id(app_id))
    }

    fn unacceptable_client_id(&self) -> Outcome {
        self.deny(
            Denial::new(DenialKind::AuthFailed).with_reason("invalid_credentials"),
            HeaderMap::new(),
        )
    }

    /// The rest of [`ThreeScale::begin`] once the application is known: the
    /// debug headers, then the cache.
    fn with_credentials(
        &self,
        live: &Live,
        credentials: &AppCredentials,
        matched: MatchResult,
        debug: bool,
        referrer: Option<&str>,
    ) -> AfterCredentials {
        let inner = &self.inner;
        let service = &live.service;
        let version = service.backend_version;
        let mut response_headers = HeaderMap::new();
        if debug {
            let patterns = matched
                .rules
                .iter()
                .filter_map(|&i| service.mapping_rules.rules().get(i))
                .map(|r| r.pattern.as_str())
                .collect();
            headers::insert_debug(
                &mut response_headers,
                &DebugInfo {
                    matched_patterns: patterns,
                    credentials,
                    encoded_usage: headers::encode_usage(&matched.usage),
                    service_id: &inner.service_id,
                    service_name: service.system_name.as_deref(),
                },
            );
        }
        let slot = match &inner.cache {
            Some(cache) => match cache.lookup(credentials, referrer, &matched.usage) {
                CacheLookup::Decided(decision) => {
                    crate::metrics::cache("hit");
                    crate::spans::record_cache("hit");
                    return AfterCredentials::Decided(self.finish(
                        decision,
                        credentials,
                        version,
                        matched,
                        response_headers,
                    ));
                }
                CacheLookup::Miss(slot) => {
                    crate::metrics::cache("miss");
                    crate::spans::record_cache("miss");
                    Some(slot)
                }
            },
            None => None,
        };
        AfterCredentials::Backend {
            slot,
            headers: response_headers,
            matched,
        }
    }

    /// Sends everything held for reporting and stops background work. Call it
    /// on graceful shutdown.
    ///
    /// From the moment it is called, new checks are refused with
    /// [`DenialKind::BackendUnavailable`] (reason `shutting_down`, a 503 by
    /// default), so no hit is admitted that could not be reported. Checks that
    /// had already started finish normally; the final flush waits for them
    /// (at most twice the backend timeout plus a second), so their hits are
    /// reported too.
    pub async fn shutdown(&self) -> ReportStats {
        match &self.set {
            Some(set) => set.shutdown().await,
            None => self.shutdown_one().await,
        }
    }

    /// [`ThreeScale::shutdown`] of a one-service engine.
    pub(crate) async fn shutdown_one(&self) -> ReportStats {
        self.close();
        let inner = &self.inner;
        let deadline =
            tokio::time::Instant::now() + inner.timeout * 2 + std::time::Duration::from_secs(1);
        while inner.checks_in_flight.load(Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    checks = inner.checks_in_flight.load(Ordering::SeqCst),
                    "3scale shutdown: checks still running; their usage may not be reported"
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        inner.decider.reporter().shutdown(5).await
    }

    /// Refuses new checks from now on (the first step of `shutdown`).
    pub(crate) fn close(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Sends held usage now (cached mode, or usage kept during an outage).
    pub async fn flush(&self) -> Result<(), BackendError> {
        match &self.set {
            Some(set) => set.flush().await,
            None => self.flush_one().await,
        }
    }

    /// [`ThreeScale::flush`] of a one-service engine.
    pub(crate) async fn flush_one(&self) -> Result<(), BackendError> {
        self.inner.decider.reporter().flush().await
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        if let Some(set) = &self.set {
            return set.stats();
        }
        let (cache_entries, cache_bytes) = self
            .inner
            .cache
            .as_ref()
            .map(AuthCache::size)
            .unwrap_or_default();
        let (backend_calls, backend_failures) = self.inner.decider.backend_counts();
        EngineStats {
            cache_entries,
            cache_bytes,
            allowed: self.inner.allowed.load(Ordering::Relaxed),
            denied: self.inner.denied.load(Ordering::Relaxed),
            degraded: self.inner.degraded.load(Ordering::Relaxed),
            backend_failures,
            backend_calls,
            reports: self.inner.decider.reporter().stats(),
        }
    }

    /// The report batcher (for what is reported after the response).
    pub(crate) fn reporter(&self) -> &Reporter {
        self.inner.decider.reporter()
    }

    fn deny(&self, mut denial: Denial, mut headers: HeaderMap) -> Outcome {
        self.inner.denied.fetch_add(1, Ordering::Relaxed);
        denial.service_id = Some(self.inner.service_id.clone());
        crate::metrics::decision("denied", denial.kind.key(), false);
        crate::spans::record_denial(&denial);
        if denial.kind == DenialKind::LimitsExceeded
            && let Some(figures) = &denial.rate_limit
        {
            headers::insert_rate_limit(&mut headers, self.inner.rate_limit_headers, figures);
        }
        Outcome {
            decision: Decision::Deny(denial),
            headers,
            completion: Completion::default(),
        }
    }

    /// Completes a decision made from a backend answer or the cache.
    fn finish(
        &self,
        decision: Verdict,
        credentials: &AppCredentials,
        version: BackendVersion,
        matched: MatchResult,
        mut headers: HeaderMap,
    ) -> Outcome {
        match decision {
            Verdict::Deny(denial) => self.deny(denial, headers),
            Verdict::Allow(allow) => {
                self.inner.allowed.fetch_add(1, Ordering::Relaxed);
                if allow.degraded {
                    self.inner.degraded.fetch_add(1, Ordering::Relaxed);
                }
                let reporter = self.inner.decider.reporter();
                // With response codes the usage waits for the response's status.
                let deferred = self.inner.response_codes && allow.report_later;
                if allow.report_later && !deferred {
                    if allow.degraded {
                        // Admitted without the backend's word on the application.
                        reporter.record_unconfirmed(credentials, &matched.usage);
                    } else {
                        reporter.record(credentials, &matched.usage);
                    }
                }
                // Shutdown's final flush also waits for usage held until the response.
                let key = ReportKey::of(credentials);
                let held = deferred.then(|| {
                    (
                        reporter.hold(&key, &matched.usage),
                        CheckInFlight::enter(&self.inner.checks_in_flight),
                    )
                });
                let completion = Completion::new(self.clone(), key, held, !allow.degraded);
                // After the usage is recorded: nothing widens the window
                // between the cache's admission and the batcher.
                crate::metrics::decision("allowed", "none", allow.degraded);
                crate::spans::record_allow(
                    self,
                    credentials,
                    allow.plan.as_deref(),
                    &matched,
                    allow.degraded,
                );
                if let Some(figures) = &allow.rate_limit {
                    headers::insert_rate_limit(
                        &mut headers,
                        self.inner.rate_limit_headers,
                        figures,
                    );
                }
                let (app_id, credential) = match credentials {
                    AppCredentials::UserKey(_) => (None, CredentialKind::UserKey),
                    // An access token is resolved into its client's app id
                    // before the backend is asked: the check's service says which.
                    AppCredentials::AppId { app_id, .. } => {
                        let kind = match version {
                            BackendVersion::OAuth => CredentialKind::AccessToken,
                            _ => CredentialKind::AppId,
                        };
                        (Some(app_id.clone()), kind)
                    }
                };
                Outcome {
                    completion,
                    decision: Decision::Allow(AuthContext {
                        service_id: self.inner.service_id.clone(),
                        app_id,
                        credential,
                        plan: allow.plan,
                        usage: matched.usage,
                        matched_rules: matched.rules,
                        usage_reports: allow.usage_reports,
                        rate_limit: allow.rate_limit,
                        degraded: allow.degraded,
                    }),
                    headers,
                }
            }
        }
    }

    /// No key of the OpenID Connect issuer could be had (it never answered):
    /// an outage, decided by the failure policy. Open admits the request
    /// degraded but for no application: a token that could not be verified
    /// names no one to bill, so nothing is reported.
    fn issuer_unavailable(&self, matched: MatchResult) -> Outcome {
        if self.inner.decider.policy() != crate::FailurePolicy::Open {
            return self.deny(
                Denial::new(DenialKind::BackendUnavailable).with_reason("issuer_unavailable"),
                HeaderMap::new(),
            );
        }
        self.inner.allowed.fetch_add(1, Ordering::Relaxed);
        self.inner.degraded.fetch_add(1, Ordering::Relaxed);
        crate::metrics::decision("allowed", "none", true);
        Outcome {
            // No application to bill: nothing is reported after the response.
            completion: Completion::default(),
            decision: Decision::Allow(AuthContext {
                service_id: self.inner.service_id.clone(),
                app_id: None,
                credential: CredentialKind::AccessToken,
                plan: None,
                usage: matched.usage,
                matched_rules: matched.rules,
                usage_reports: Vec::new(),
                rate_limit: None,
                degraded: true,
            }),
            headers: HeaderMap::new(),
        }
    }
}

/// The OpenID Connect checker of `service`: the current one (and its keys)
/// when the settings did not change.
fn oidc_checker(
    service: &ServiceConfig,
    current: Option<&Arc<crate::oidc::Oidc>>,
    timeout: std::time::Duration,
    tls: &crate::TlsTrust,
) -> Result<Option<Arc<crate::oidc::Oidc>>, crate::ConfigError> {
    let Some(settings) = &service.oidc else {
        return Ok(None);
    };
    if let Some(current) = current.filter(|c| c.settings() == settings) {
        return Ok(Some(current.clone()));
    }
    crate::oidc::Oidc::new(settings.clone(), timeout, tls)
        .map(|oidc| Some(Arc::new(oidc)))
        .map_err(|reason| crate::ConfigError::new("oidc", "oidc", reason))
}

fn backend_client(
    service: &ServiceConfig,
    timeout: std::time::Duration,
    tls: &crate::TlsTrust,
) -> Result<BackendClient, BackendError> {
    BackendClient::builder(service.provider_auth.clone())
        .url(service.backend_url.clone())
        .timeout(timeout)
        .tls(tls.clone())
        .build()
}

/// The request's referrer as the backend may see it: the header's value, unless
/// it is empty, `*` (the backend's "skip the check"), longer than
/// [`crate::config::MAX_REFERRER_LEN`] or holds a control character; those are
/// not sent, so the backend answers as for a missing referrer.
fn referrer_of(request: &impl RequestView, header: &http::HeaderName) -> Option<Arc<str>> {
    let value = request.header(header.as_str())?;
    let usable = !value.is_empty()
        && value != "*"
        && value.len() <= crate::config::MAX_REFERRER_LEN
        && !value.chars().any(char::is_control);
    if !usable {
        tracing::debug!(
            "request referrer not sent to the backend (empty, `*`, too long or control characters)"
        );
        return None;
    }
    Some(value.into())
}

fn debug_requested(service: &ServiceConfig, request: &impl RequestView) -> bool {
    let secret = service.provider_auth.secret();
    request
        .header(headers::DEBUG_REQUEST)
        .is_some_and(|value| !secret.is_empty() && constant_time_eq(value, secret.expose()))
}

/// Whether `given` equals `secret`, in a time that depends on the length of
/// `secret` only, never on where `given` first differs.
fn constant_time_eq(given: &str, secret: &str) -> bool {
    let (given, secret) = (given.as_bytes(), secret.as_bytes());
    let mut diff = u8::from(given.len() != secret.len());
    for (i, &s) in secret.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!s);
        diff |= std::hint::black_box(g ^ s);
    }
    std::hint::black_box(diff) == 0
}

/// The backend part of a check. Owns everything it needs.
#[derive(Debug)]
pub struct PendingCheck {
    /// The check's span, entered again while the backend is asked.
    span: tracing::Span,
    engine: ThreeScale,
    stage: Stage,
    /// Sent as the backend's `referrer` (and part of the cache key).
    referrer: Option<Arc<str>>,
    matched: MatchResult,
    headers: HeaderMap,
    live: Arc<Live>,
    /// Keeps shutdown waiting until this check has recorded its usage.
    _check: CheckInFlight,
}

/// A check once its application is known.
enum AfterCredentials {
    /// The cache decided.
    Decided(Outcome),
    /// Ask the backend: the cache slot to fill (cached mode) and the response
    /// headers so far.
    Backend {
        slot: Option<crate::cache::Slot>,
        headers: HeaderMap,
        matched: MatchResult,
    },
}

/// What a pending check still has to do.
#[derive(Debug)]
enum Stage {
    /// Ask the backend (or wait for the cache fill).
    Backend {
        credentials: AppCredentials,
        slot: Option<crate::cache::Slot>,
    },
    /// Fetch the OpenID Connect issuer's keys, check the token, then go on.
    Token { token: crate::Secret, debug: bool },
}

/// Counts a check between the shutdown gate and its end (dropped after the
/// usage is recorded).
#[derive(Debug)]
pub(crate) struct CheckInFlight(Arc<AtomicUsize>);

impl CheckInFlight {
    pub(crate) fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        CheckInFlight(counter.clone())
    }
}

impl Drop for CheckInFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PendingCheck {
    /// Asks the backend (or waits for the cache fill) and decides.
    pub async fn run(self) -> Outcome {
        let PendingCheck {
            span,
            engine,
            stage,
            referrer,
            matched,
            headers,
            live,
            _check,
        } = self;
        let (credentials, slot, matched, headers, live, _check) = match stage {
            Stage::Backend { credentials, slot } => {
                (credentials, slot, matched, headers, live, _check)
            }
            Stage::Token { token, debug } => {
                let Some(oidc) = live.oidc.clone() else {
                    return engine.deny(
                        Denial::new(DenialKind::AuthFailed).with_reason("invalid_token"),
                        HeaderMap::new(),
                    );
                };
                let app_id = match oidc.resolve(token.expose(), &engine.inner.service_id).await {
                    crate::oidc::Resolved::ClientId(app_id) => app_id,
                    crate::oidc::Resolved::Rejected(reason) => {
                        return engine.deny(
                            Denial::new(DenialKind::AuthFailed).with_reason(reason),
                            HeaderMap::new(),
                        );
                    }
                    crate::oidc::Resolved::Unavailable(error) => {
                        tracing::debug!(%error, "OpenID Connect issuer unavailable");
                        return engine.issuer_unavailable(matched);
                    }
                };
                let Some(credentials) = engine.client_id_credentials(app_id) else {
                    return engine.unacceptable_client_id();
                };
                match engine.with_credentials(
                    &live,
                    &credentials,
                    matched,
                    debug,
                    referrer.as_deref(),
                ) {
                    AfterCredentials::Decided(outcome) => return outcome,
                    AfterCredentials::Backend {
                        slot,
                        headers,
                        matched,
                    } => (credentials, slot, matched, headers, live, _check),
                }
            }
        };
        let inner = &engine.inner;
        let verdict = match (slot, &inner.cache) {
            (Some(slot), Some(cache)) => {
                cache
                    .fill_and_decide(
                        &inner.decider,
                        live.backend(referrer.as_deref()),
                        slot,
                        &credentials,
                        &matched.usage,
                    )
                    .instrument(span.clone())
                    .await
            }
            _ => {
                inner
                    .decider
                    .authrep(
                        live.backend(referrer.as_deref()),
                        &credentials,
                        &matched.usage,
                        inner.response_codes,
                    )
                    .instrument(span.clone())
                    .await
            }
        };
        let version = live.service.backend_version;
        let _entered = span.enter();
        engine.finish(verdict, &credentials, version, matched, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq("tok-1001", "tok-1001"));
        for given in [
            "",
            "tok-100",
            "tok-10011",
            "tok-1002",
            "TOK-1001",
            "uok-1001",
        ] {
            assert!(!constant_time_eq(given, "tok-1001"), "{given}");
        }
        assert!(constant_time_eq("", ""));
        // The given value, a prefix of the secret, is no match.
        assert!(!constant_time_eq("a", "a\u{9e}"));
    }
}
