//! [`Services`]: one engine protecting several 3scale services, each chosen
//! per request as the 3scale gateway chooses it.
//!
//! Every service keeps its own engine (credentials, mapping rules, error
//! responses, cache and reporter); the engine [`Services::build`] returns
//! routes each request to one of them and is used exactly like a one-service
//! [`ThreeScale`]: the tower layer and the actix middleware take it as it is.
//!
//! Routing, as the gateway's `find_service` policy does it:
//!
//! 1. The request's host ([`RequestView::host`]: the request line's authority,
//!    else the `Host` header), lowercased and without its port, must equal one
//!    of a service's hosts exactly (no wildcards).
//! 2. With [`PathRouting::Off`] (the default) the first service holding that
//!    host is chosen. With [`PathRouting::On`] (`APICAST_PATH_ROUTING`) the
//!    first service holding the host whose mapping rules match the method, path
//!    and query is chosen, else the first holding the host;
//!    [`PathRouting::Only`] (`APICAST_PATH_ROUTING_ONLY`) has no such fallback.
//! 3. No service found: the [`Services::default_service`] when one is set
//!    explicitly, else the request is refused without calling the backend,
//!    as [`DenialKind::NoMatch`] with reason `service_not_found` and the
//!    [`Services::not_found_response`] (the gateway's `404` with an empty body).
//!
//! The chosen service's rules and credentials then decide, exactly as in a
//! one-service engine: a `Host` naming another service never lets a request
//! through under rules that are not that service's, and the
//! [`AuthContext::service_id`](crate::AuthContext::service_id) tells the handler
//! which service admitted it.
//!
//! Shared: the connection pool of the backend calls made while checking
//! (services with the same timeout). Per service: the reporter (its batches are
//! per service anyway, as the backend's report call is), cache and counters;
//! [`ThreeScale::shutdown`] stops every service before flushing each, and
//! [`ThreeScale::stats`] adds up their counters.
//!
//! ```no_run
//! use threescale_core::{Config, Services, SimpleRequest, Decision};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let orders = Config::builder()
//!     .backend_url("http://127.0.0.1:3001")
//!     .service_token("orders-token", "1001")
//!     .build()?;
//! let billing = Config::builder()
//!     .backend_url("http://127.0.0.1:3001")
//!     .service_token("billing-token", "1002")
//!     .build()?;
//! let engine = Services::builder()
//!     .service(orders, ["orders.example.com"])
//!     .service(billing, ["billing.example.com"])
//!     .build()?;
//! let request = SimpleRequest::get("/o/1?user_key=k").header("host", "orders.example.com");
//! let outcome = engine.check(&request).await;
//! if let Decision::Allow(context) = outcome.decision {
//!     assert_eq!(&*context.service_id, "1001");
//! }
//! engine.shutdown().await;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::{
    Config, ConfigError, Decision, Denial, DenialKind, EngineStats, ErrorResponse, Outcome,
    ReportStats, RequestView, ServiceConfig, StartError, Step, ThreeScale, TokenVerifier,
    backend::{BackendClient, BackendError},
    config::{DeploymentEnv, Portal},
    secret::Secret,
};

/// Whether the mapping rules take part in choosing the service (the gateway's
/// `APICAST_PATH_ROUTING` and `APICAST_PATH_ROUTING_ONLY`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathRouting {
    /// By host only: the first service holding the request's host.
    #[default]
    Off,
    /// The first service holding the host whose rules match the request, else
    /// the first holding the host.
    On,
    /// The first service holding the host whose rules match the request; none
    /// otherwise.
    Only,
}

impl PathRouting {
    /// Parses `off`, `on` or `only` (as in the project file's `path_routing`).
    ///
    /// ```
    /// use threescale_core::PathRouting;
    /// assert_eq!(PathRouting::parse("only"), Some(PathRouting::Only));
    /// assert_eq!(PathRouting::parse("sometimes"), None);
    /// ```
    pub fn parse(name: &str) -> Option<PathRouting> {
        match name {
            "off" | "false" => Some(PathRouting::Off),
            "on" | "true" => Some(PathRouting::On),
            "only" => Some(PathRouting::Only),
            _ => None,
        }
    }
}

/// One service to protect: its configuration and the hosts it answers on.
struct Entry {
    config: Config,
    hosts: Vec<String>,
    verifier: Option<TokenVerifier>,
}

/// Builds an engine protecting several services (see the [module docs](self)).
///
/// ```
/// use threescale_core::{Config, PathRouting, Services};
/// let a = Config::builder().service_token("token-a", "1").build().unwrap();
/// let b = Config::builder().service_token("token-b", "2").build().unwrap();
/// let engine = Services::builder()
///     .service(a, ["api.example.com"])
///     .service(b, ["api.example.com"])
///     .path_routing(PathRouting::On)
///     .build()
///     .unwrap();
/// assert_eq!(engine.services().unwrap().len(), 2);
/// ```
#[must_use]
pub struct Services {
    entries: Vec<Entry>,
    path_routing: PathRouting,
    default_service: Option<String>,
    not_found: ErrorResponse,
    /// Services named by a token verifier before (or without) being added.
    unknown_verifiers: Vec<String>,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            entries: Vec::new(),
            path_routing: PathRouting::Off,
            default_service: None,
            not_found: ErrorResponse::new(StatusCode::NOT_FOUND, ""),
            unknown_verifiers: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field(
                "services",
                &self
                    .entries
                    .iter()
                    .map(|e| (&e.config.service.service_id, &e.hosts))
                    .collect::<Vec<_>>(),
            )
            .field("path_routing", &self.path_routing)
            .field("default_service", &self.default_service)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// No services yet; add them with [`Services::service`].
    pub fn builder() -> Services {
        Services::default()
    }

    /// Adds a service answering on `hosts` (matched exactly, case-insensitive,
    /// port ignored). Services are tried in the order they are added.
    pub fn service<H: Into<String>>(
        mut self,
        config: Config,
        hosts: impl IntoIterator<Item = H>,
    ) -> Services {
        self.entries.push(Entry {
            config,
            hosts: hosts
                .into_iter()
                .map(|h| normalize_host(&h.into()))
                .collect(),
            verifier: None,
        });
        self
    }

    /// Sets the token verifier of the `oauth` service `service_id` (see
    /// [`ThreeScale::with_token_verifier`]). An unknown id is an error at
    /// [`Services::build`].
    pub fn token_verifier(
        mut self,
        service_id: &str,
        verifier: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Services {
        let verifier: TokenVerifier = Arc::new(verifier);
        match self
            .entries
            .iter_mut()
            .find(|e| e.config.service.service_id == service_id)
        {
            Some(entry) => entry.verifier = Some(verifier),
            None => self.unknown_verifiers.push(service_id.to_string()),
        }
        self
    }

    /// Whether the mapping rules take part in choosing the service (default
    /// [`PathRouting::Off`]).
    pub fn path_routing(mut self, routing: PathRouting) -> Services {
        self.path_routing = routing;
        self
    }

    /// The service that answers requests no host (or path) selects. Without
    /// one (the default) such requests are refused.
    pub fn default_service(mut self, service_id: impl Into<String>) -> Services {
        self.default_service = Some(service_id.into());
        self
    }

    /// The answer when no service is found (default: 404 with an empty body,
    /// as the gateway answers).
    pub fn not_found_response(mut self, response: ErrorResponse) -> Services {
        self.not_found = response;
        self
    }

    /// Builds the engine. Fails when there is no service, when two services
    /// have the same id, when a service has no host, when the default service
    /// or a token verifier names an unknown service, or when a backend client
    /// cannot be built.
    pub fn build(self) -> Result<ThreeScale, StartError> {
        let error = |field: &str, reason: String| {
            StartError::Config(ConfigError::new("services", field, reason))
        };
        if self.entries.is_empty() {
            return Err(error("services", "holds no service".into()));
        }
        if let Some(id) = self.unknown_verifiers.first() {
            return Err(error(
                "token_verifier",
                format!("no service with id {id} (add the service first)"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for entry in &self.entries {
            let id = &entry.config.service.service_id;
            if !seen.insert(id.as_str()) {
                return Err(error("service_id", format!("service {id} is given twice")));
            }
            if entry.hosts.is_empty() || entry.hosts.iter().any(String::is_empty) {
                return Err(error(
                    "hosts",
                    format!("service {id} has no host (or an empty one)"),
                ));
            }
        }
        let default = match &self.default_service {
            Some(id) => Some(
                self.entries
                    .iter()
                    .position(|e| e.config.service.service_id == *id)
                    .ok_or_else(|| error("default_service", format!("no service with id {id}")))?,
            ),
            None => None,
        };
        // One pool for the checks' backend calls of every service with the
        // first one's timeout and, unless it is the first, the default TLS trust.
        let first = &self.entries[0].config;
        let timeout = first.timeout;
        let first_tls_is_default = first.tls.is_default();
        let shared = BackendClient::builder(first.service.provider_auth.clone())
            .url(first.service.backend_url.clone())
            .timeout(timeout)
            .tls(first.tls.clone())
            .build()?;
        let mut engines = Vec::with_capacity(self.entries.len());
        let mut hosts = Vec::with_capacity(self.entries.len());
        for (i, entry) in self.entries.into_iter().enumerate() {
            let same_tls = i == 0 || (first_tls_is_default && entry.config.tls.is_default());
            let pool = (entry.config.timeout == timeout && same_tls).then_some(&shared);
            engines.push(ThreeScale::build(entry.config, entry.verifier, pool)?);
            hosts.push(entry.hosts);
        }
        let handle = engines[0].clone();
        Ok(ThreeScale::from_set(
            ServiceSet {
                engines,
                hosts,
                path_routing: self.path_routing,
                default,
                not_found: self.not_found,
                unrouted: AtomicU64::new(0),
            },
            handle,
        ))
    }

    /// The services of a proxy config JSON with several services: the
    /// gateway's configuration file (`{"services": [...]}`), the portal's list
    /// of proxy configs (`{"proxy_configs": [{"proxy_config": {"content":
    /// ...}}]}`) or one service. Each answers on its `proxy.hosts` (default
    /// `localhost`, as in the gateway) with the engine settings of its policy
    /// chain. Set path routing or a default service on the result, then build.
    ///
    /// ```
    /// use threescale_core::Services;
    /// let json = r#"{"services": [
    ///   {"id": 1, "backend_authentication_type": "service_token",
    ///    "backend_authentication_value": "t1", "proxy": {"hosts": ["A.example.com"]}},
    ///   {"id": 2, "backend_authentication_type": "service_token",
    ///    "backend_authentication_value": "t2", "proxy": {"hosts": ["b.example.com"]}}
    /// ]}"#;
    /// let engine = Services::from_proxy_config(json).unwrap().build().unwrap();
    /// assert_eq!(engine.services().unwrap()[1].service().service_id, "2");
    /// ```
    pub fn from_proxy_config(json: &str) -> Result<Services, ConfigError> {
        let root: Value = serde_json::from_str(json)
            .map_err(|e| ConfigError::new("proxy config", "", format!("invalid JSON: {e}")))?;
        Services::from_proxy_value(&root, "proxy config")
    }

    fn from_proxy_value(root: &Value, source: &str) -> Result<Services, ConfigError> {
        let builders = crate::config::proxy::services_from_value(root, source)?;
        let hosts = crate::config::proxy::hosts_from_value(root, source)?;
        let mut services = Services::builder();
        for ((_, builder), hosts) in builders.into_iter().zip(hosts) {
            services = services.service(builder.build()?, hosts);
        }
        Ok(services)
    }

    /// Reads a file with several services: a proxy config (see
    /// [`Services::from_proxy_config`]) or the project's format with a
    /// `services:` list, each entry a one-service project document plus its
    /// `hosts` (a top-level `backend` is every entry's default):
    ///
    /// ```yaml
    /// backend: { url: http://127.0.0.1:3001 }
    /// path_routing: off          # on, only
    /// default_service: "1001"    # optional; without it unknown hosts get 404
    /// services:
    ///   - hosts: [orders.example.com]
    ///     service: { id: "1001", service_token: orders-token }
    ///   - hosts: [billing.example.com]
    ///     service: { id: "1002", service_token: billing-token, backend_version: "2" }
    ///     mode: { cached: { ttl_ms: 10000 } }
    /// ```
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Services, ConfigError> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&source, "", format!("cannot read the file: {e}")))?;
        Services::parse(&text, &source)
    }

    /// Like [`Services::from_file`], from the file's text; `source_name` names
    /// it in errors.
    ///
    /// ```
    /// use threescale_core::Services;
    /// let yaml = r#"{"services": [
    ///   {"hosts": ["a.example.com"], "service": {"id": "1", "service_token": "t1"}},
    ///   {"hosts": ["b.example.com"], "service": {"id": "2", "service_token": "t2"}}]}"#;
    /// let engine = Services::parse(yaml, "services.yaml").unwrap().build().unwrap();
    /// assert_eq!(engine.services().unwrap().len(), 2);
    /// ```
    pub fn parse(text: &str, source_name: &str) -> Result<Services, ConfigError> {
        let root = crate::config::file::parse_document(text, source_name)?;
        let project = root
            .get("services")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty() && s.iter().all(|e| e.get("service").is_some()));
        if !project {
            return Services::from_proxy_value(&root, source_name);
        }
        let error = |field: &str, reason: String| ConfigError::new(source_name, field, reason);
        let Some(top) = root.as_object() else {
            return Err(error("", "expected a mapping".into()));
        };
        let mut services = Services::builder();
        for (key, value) in top {
            match key.as_str() {
                "services" | "backend" => {}
                "path_routing" => {
                    let routing = value
                        .as_str()
                        .and_then(PathRouting::parse)
                        .or_else(|| {
                            value
                                .as_bool()
                                .map(|on| [PathRouting::Off, PathRouting::On][usize::from(on)])
                        })
                        .ok_or_else(|| error("path_routing", "expected off, on or only".into()))?;
                    services = services.path_routing(routing);
                }
                "default_service" => {
                    let id = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return Err(error("default_service", "expected a service id".into())),
                    };
                    services = services.default_service(id);
                }
                other => return Err(error(other, "unknown field".into())),
            }
        }
        let backend = top.get("backend");
        let entries = top
            .get("services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (i, entry) in entries.enumerate() {
            let field = format!("services[{i}]");
            let Some(entry) = entry.as_object() else {
                return Err(error(&field, "expected a mapping".into()));
            };
            let mut entry = entry.clone();
            let hosts = match entry.remove("hosts") {
                Some(Value::Array(hosts)) => hosts
                    .iter()
                    .map(|h| h.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .filter(|h| !h.is_empty()),
                _ => None,
            }
            .ok_or_else(|| {
                error(
                    &format!("{field}.hosts"),
                    "expected a list of host names".into(),
                )
            })?;
            if let Some(backend) = backend {
                entry.entry("backend").or_insert_with(|| backend.clone());
            }
            let text = Value::Object(entry).to_string();
            let builder =
                crate::config::file::project_builder(&text, &format!("{source_name} {field}"))?;
            services = services.service(builder.build()?, hosts);
        }
        Ok(services)
    }

    /// Loads the services `service_ids` from the admin portal (a selection,
    /// like the gateway's `APICAST_SERVICES_LIST`), each answering on its
    /// `proxy.hosts`. To keep them fresh, run [`Portal::keep_fresh`] for each
    /// service with its engine from [`ThreeScale::services`].
    pub async fn from_portal(
        admin_url: &str,
        access_token: impl Into<Secret>,
        service_ids: &[&str],
        env: DeploymentEnv,
    ) -> Result<Services, ConfigError> {
        let token = access_token.into();
        let mut services = Services::builder();
        for id in service_ids {
            let portal = Portal::new(admin_url, token.clone(), *id, env);
            let (config, hosts) = portal.load_with_hosts().await?;
            services = services.service(config, hosts);
        }
        Ok(services)
    }
}

/// The lowercased host without its port (`[::1]:8080` gives `[::1]`).
fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = match host.strip_prefix('[') {
        Some(rest) => match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    host.to_ascii_lowercase()
}

/// The engines of an engine protecting several services, and how to choose one.
pub(crate) struct ServiceSet {
    engines: Vec<ThreeScale>,
    hosts: Vec<Vec<String>>,
    path_routing: PathRouting,
    default: Option<usize>,
    not_found: ErrorResponse,
    /// Requests no service was found for.
    unrouted: AtomicU64,
}

impl std::fmt::Debug for ServiceSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("services", &self.engines)
            .field("hosts", &self.hosts)
            .field("path_routing", &self.path_routing)
            .finish_non_exhaustive()
    }
}

impl ServiceSet {
    pub(crate) fn engines(&self) -> &[ThreeScale] {
        &self.engines
    }

    /// The service for `request` (see the module docs), or `None`.
    fn route(&self, request: &impl RequestView) -> Option<&ThreeScale> {
        let host = request.host().map(normalize_host);
        let holding = || {
            self.hosts.iter().enumerate().filter_map(|(i, hosts)| {
                host.as_ref()
                    .is_some_and(|h| hosts.iter().any(|x| x == h))
                    .then_some(i)
            })
        };
        let by_path = || {
            holding().find(|&i| {
                !self.engines[i]
                    .service()
                    .mapping_rules
                    .matches(request.method(), request.path(), request.query())
                    .is_empty()
            })
        };
        let found = match self.path_routing {
            PathRouting::Off => holding().next(),
            PathRouting::On => by_path().or_else(|| holding().next()),
            PathRouting::Only => by_path(),
        };
        found.or(self.default).map(|i| &self.engines[i])
    }

    pub(crate) fn begin(&self, request: &impl RequestView) -> Step {
        match self.route(request) {
            Some(engine) => engine.begin(request),
            None => {
                self.unrouted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("no 3scale service for the request's host");
                Step::Done(Outcome {
                    decision: Decision::Deny(
                        Denial::new(DenialKind::NoMatch).with_reason("service_not_found"),
                    ),
                    headers: HeaderMap::new(),
                    completion: Default::default(),
                })
            }
        }
    }

    pub(crate) fn error_response(&self, denial: &Denial) -> ErrorResponse {
        let engine = denial
            .service_id
            .as_deref()
            .and_then(|id| self.engines.iter().find(|e| e.service().service_id == id));
        match engine {
            Some(engine) => engine.error_response(denial),
            None if denial.reason.as_deref() == Some("service_not_found") => self.not_found.clone(),
            None => crate::ErrorResponses::default().get(denial.kind).clone(),
        }
    }

    pub(crate) fn update_service(&self, service: ServiceConfig) -> Result<(), ConfigError> {
        match self
            .engines
            .iter()
            .find(|e| e.service().service_id == service.service_id)
        {
            Some(engine) => engine.update_service(service),
            None => Err(ConfigError::new(
                "update",
                "service_id",
                format!("the engine serves no service {}", service.service_id),
            )),
        }
    }

    pub(crate) async fn shutdown(&self) -> ReportStats {
        // No service admits a request once shutdown has begun for any.
        for engine in &self.engines {
            engine.close();
        }
        let mut total = ReportStats::default();
        for engine in &self.engines {
            add_reports(&mut total, &engine.shutdown_one().await);
        }
        total
    }

    pub(crate) async fn flush(&self) -> Result<(), BackendError> {
        let mut first_error = None;
        for engine in &self.engines {
            if let Err(error) = engine.flush_one().await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(crate) fn stats(&self) -> EngineStats {
        let mut total = EngineStats {
            denied: self.unrouted.load(Ordering::Relaxed),
            ..EngineStats::default()
        };
        for engine in &self.engines {
            let s = engine.stats();
            total.allowed += s.allowed;
            total.denied += s.denied;
            total.degraded += s.degraded;
            total.backend_failures += s.backend_failures;
            total.backend_calls += s.backend_calls;
            total.cache_entries += s.cache_entries;
            total.cache_bytes += s.cache_bytes;
            add_reports(&mut total.reports, &s.reports);
        }
        total
    }
}

fn add_reports(total: &mut ReportStats, s: &ReportStats) {
    total.recorded += s.recorded;
    total.reported_transactions += s.reported_transactions;
    total.batches += s.batches;
    total.failed_flushes += s.failed_flushes;
    total.dropped += s.dropped;
    total.pending_applications += s.pending_applications;
    total.pending_bytes += s.pending_bytes;
    total.timed_out_posts += s.timed_out_posts;
    total.abandoned += s.abandoned;
    total.unknown_applications += s.unknown_applications;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimpleRequest;

    #[test]
    fn hosts_lose_their_port_and_case() {
        assert_eq!(normalize_host("API.Example.com:8080"), "api.example.com");
        assert_eq!(normalize_host("api.example.com"), "api.example.com");
        assert_eq!(normalize_host("[::1]:8080"), "[::1]");
        assert_eq!(normalize_host("[::1]"), "[::1]");
    }

    fn two(routing: PathRouting) -> ThreeScale {
        let a = Config::builder()
            .service_token("token-a", "1")
            .rule("GET", "/a", "hits", 1)
            .build()
            .unwrap();
        let b = Config::builder()
            .service_token("token-b", "2")
            .rule("GET", "/b", "hits", 1)
            .build()
            .unwrap();
        Services::builder()
            .service(a, ["shared.example", "a.example"])
            .service(b, ["shared.example", "b.example"])
            .path_routing(routing)
            .build()
            .unwrap()
    }

    fn routed(engine: &ThreeScale, host: Option<&str>, path: &str) -> Option<String> {
        let mut request = SimpleRequest::get(path);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let Some(set) = engine.set() else {
            panic!("one-service engine")
        };
        set.route(&request).map(|e| e.service().service_id.clone())
    }

    #[test]
    fn routes_by_host_then_path() {
        let off = two(PathRouting::Off);
        assert_eq!(
            routed(&off, Some("B.EXAMPLE:443"), "/a").as_deref(),
            Some("2")
        );
        assert_eq!(
            routed(&off, Some("shared.example"), "/b").as_deref(),
            Some("1")
        );
        assert_eq!(routed(&off, Some("other.example"), "/a"), None);
        assert_eq!(routed(&off, None, "/a"), None);
        // A host is matched whole, never as a suffix or prefix.
        assert_eq!(routed(&off, Some("xa.example"), "/a"), None);
        assert_eq!(routed(&off, Some("a.example.evil"), "/a"), None);
        let on = two(PathRouting::On);
        assert_eq!(
            routed(&on, Some("shared.example"), "/b").as_deref(),
            Some("2")
        );
        assert_eq!(
            routed(&on, Some("shared.example"), "/c").as_deref(),
            Some("1")
        );
        // Path routing never reaches a service of another host.
        assert_eq!(routed(&on, Some("a.example"), "/b").as_deref(), Some("1"));
        let only = two(PathRouting::Only);
        assert_eq!(routed(&only, Some("shared.example"), "/c"), None);
        assert_eq!(
            routed(&only, Some("shared.example"), "/b").as_deref(),
            Some("2")
        );
    }

    #[test]
    fn an_unknown_host_is_refused_with_the_not_found_response() {
        let engine = two(PathRouting::Off);
        let request = SimpleRequest::get("/a?user_key=k").header("host", "evil.example");
        let Step::Done(outcome) = engine.begin(&request) else {
            panic!("no backend call for an unknown host")
        };
        let crate::Action::Respond {
            denial, response, ..
        } = engine.action(outcome)
        else {
            panic!("forwarded")
        };
        assert_eq!(denial.kind, DenialKind::NoMatch);
        assert_eq!(denial.reason.as_deref(), Some("service_not_found"));
        assert_eq!(denial.service_id, None);
        assert_eq!(response.status, StatusCode::NOT_FOUND);
        assert!(response.body.is_empty());
        assert_eq!(engine.stats().denied, 1);
    }

    #[test]
    fn debug_shows_services_and_hosts_never_tokens() {
        let engine = two(PathRouting::Off);
        let shown = format!("{engine:?}");
        assert!(shown.contains("b.example"), "{shown}");
        assert!(
            !shown.contains("token-a") && !shown.contains("token-b"),
            "{shown}"
        );
        let a = Config::builder()
            .service_token("token-a", "1")
            .build()
            .unwrap();
        let shown = format!("{:?}", Services::builder().service(a, ["x"]));
        assert!(!shown.contains("token-a"), "{shown}");
    }

    #[test]
    fn an_update_goes_to_the_service_with_its_id() {
        let engine = two(PathRouting::Off);
        let mut b = (*engine.services().unwrap()[1].service()).clone();
        b.system_name = Some("billing".into());
        engine.update_service(b).unwrap();
        assert_eq!(
            engine.services().unwrap()[1]
                .service()
                .system_name
                .as_deref(),
            Some("billing")
        );
        assert_eq!(engine.services().unwrap()[0].service().system_name, None);
        let mut unknown = (*engine.service()).clone();
        unknown.service_id = "9".into();
        assert!(engine.update_service(unknown).is_err());
    }

    #[test]
    fn bad_sets_are_refused() {
        let a = || Config::builder().service_token("t", "1").build().unwrap();
        assert!(Services::builder().build().is_err());
        assert!(
            Services::builder()
                .service(a(), ["x"])
                .service(a(), ["y"])
                .build()
                .is_err()
        );
        assert!(
            Services::builder()
                .service(a(), Vec::<String>::new())
                .build()
                .is_err()
        );
        assert!(
            Services::builder()
                .service(a(), ["x"])
                .default_service("9")
                .build()
                .is_err()
        );
        assert!(
            Services::builder()
                .service(a(), ["x"])
                .token_verifier("9", |_| None)
                .build()
                .is_err()
        );
    }
}
