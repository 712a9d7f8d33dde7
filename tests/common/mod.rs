//! Shared harness: the emulator, and the same app behind the tower layer (axum)
//! and behind the actix middleware, each a real server on 127.0.0.1; and
//! [`Backend`], the emulator or the real 3scale backend (apisonator) when
//! `THREESCALE_APISONATOR_URL` points at one.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use threescale::emulator::{
    ApplicationConfig, EmulatedService, Emulator, EmulatorConfig, EmulatorHandle, LimitConfig,
    LimitPeriod, MetricConfig, PlanConfig,
};
use threescale::{Config, ThreeScale};

pub const TEST_BACKEND: &str = r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tok-1001"
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
      - { name: search, parent: hits }
      - { name: export, parent: hits }
    plans:
      # Eternity limits out of reach on every metric the suites count: the
      # real backend's utilization endpoint lists only limited metrics.
      - name: basic
        limits:
          - { metric: hits, period: minute, value: 1000 }
          - { metric: export, period: day, value: 0 }
          - { metric: hits, period: eternity, value: 1000000000 }
          - { metric: orders, period: eternity, value: 1000000000 }
          - { metric: search, period: eternity, value: 1000000000 }
      - name: small
        limits:
          - { metric: hits, period: minute, value: 3 }
          - { metric: hits, period: eternity, value: 1000000000 }
    applications:
      - { plan: basic, user_key: "uk-basic" }
      - { plan: small, user_key: "uk-small" }
      - { plan: basic, user_key: "uk-suspended", state: suspended }
  - id: "2002"
    backend_version: "2"
    service_token: "tok-2002"
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
    plans:
      - name: pro
        limits:
          - { metric: hits, period: hour, value: 1000 }
          - { metric: hits, period: eternity, value: 1000000000 }
          - { metric: orders, period: eternity, value: 1000000000 }
    applications:
      - { plan: pro, app_id: "app1", app_keys: ["key1", "key2"], state: active }
"#;

pub async fn emulator() -> EmulatorHandle {
    Emulator::start(EmulatorConfig::from_yaml_str(TEST_BACKEND).expect("test config"))
        .await
        .expect("emulator starts")
}

/// Which adapter serves the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    Axum,
    Actix,
}

pub const ADAPTERS: [Adapter; 2] = [Adapter::Axum, Adapter::Actix];

/// A running protected app.
pub struct App {
    pub url: String,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl App {
    /// An app at `url` that `stop` stops.
    pub fn new(url: String, stop: impl FnOnce() + Send + 'static) -> Self {
        App {
            url,
            stop: Some(Box::new(stop)),
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// Serves `engine` in front of a handler that answers `ok` on every path
/// (and `/unprotected-*` outside the middleware's reach is not needed: bypass covers it).
pub fn serve(adapter: Adapter, engine: ThreeScale) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    match adapter {
        Adapter::Axum => {
            listener.set_nonblocking(true).unwrap();
            let app = axum::Router::new()
                .fallback(|| async { "ok" })
                .layer(threescale::tower::ThreeScaleLayer::new(engine));
            let task = tokio::spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await
            });
            App {
                url,
                stop: Some(Box::new(move || task.abort())),
            }
        }
        Adapter::Actix => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = actix_web::HttpServer::new(move || {
                        actix_web::App::new()
                            .wrap(threescale::actix::ThreeScaleMiddleware::new(engine.clone()))
                            .default_service(actix_web::web::to(|| async { "ok" }))
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)
                    .expect("listen")
                    .run();
                    tx.send(server.handle()).unwrap();
                    let _ = server.await;
                })
            });
            let handle = rx.recv().expect("actix server starts");
            App {
                url,
                stop: Some(Box::new(move || {
                    std::thread::spawn(move || {
                        actix_rt::System::new().block_on(handle.stop(false));
                    });
                })),
            }
        }
    }
}

/// What a client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub status: u16,
    pub body: String,
    pub headers: BTreeMap<String, String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

pub async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Seen {
    let mut request = client.request(method.parse().unwrap(), url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("app answers");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(n, _)| {
            let n = n.as_str();
            n.starts_with("ratelimit")
                || n.starts_with("x-3scale")
                || n.starts_with("x-custom")
                || n == "retry-after"
                || n == "content-type"
        })
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = response.text().await.unwrap_or_default();
    Seen {
        status,
        body,
        headers,
    }
}

/// Totals per metric for the current minute... and eternity: `metric -> eternity total`.
pub async fn usage(
    emulator: &EmulatorHandle,
    service_id: &str,
    app: (&str, &str),
) -> BTreeMap<String, u64> {
    let url = format!(
        "{}/_emulator/usage?service_id={service_id}&{}={}",
        emulator.url(),
        app.0,
        app.1
    );
    let json: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let mut out = BTreeMap::new();
    if let Some(metrics) = json.get("usage").and_then(|u| u.as_object()) {
        for (metric, periods) in metrics {
            let total = periods
                .get("eternity")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            if total > 0 {
                out.insert(metric.clone(), total);
            }
        }
    }
    out
}

pub fn config_for(emulator: &EmulatorHandle) -> threescale::ConfigBuilder {
    Config::builder().backend_url(emulator.url())
}

pub async fn emulator_with(yaml: &str) -> EmulatorHandle {
    Emulator::start(EmulatorConfig::from_yaml_str(yaml).expect("test config"))
        .await
        .expect("emulator starts")
}

/// Faults the tests inject into the emulator.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// This share of backend calls answers 503.
    FailShare(f64),
    /// Every backend call is delayed.
    Latency(std::time::Duration),
    /// Malformed XML on every auth call.
    MalformedXml,
    /// Connections closed without an answer.
    Drop,
    /// No faults.
    Clear,
}

pub async fn faults(emulator: &EmulatorHandle, fault: Fault) {
    use threescale::emulator::Faults;
    let faults = match fault {
        Fault::FailShare(share) if share >= 1.0 => Faults {
            error_every_nth: Some(1),
            ..Faults::default()
        },
        Fault::FailShare(share) => Faults {
            error_share: share,
            seed: Some(7),
            ..Faults::default()
        },
        Fault::Latency(delay) => Faults {
            latency_ms: delay.as_millis() as u64,
            ..Faults::default()
        },
        Fault::MalformedXml => Faults {
            malformed_every_nth: Some(1),
            ..Faults::default()
        },
        Fault::Drop => Faults {
            drop_every_nth: Some(1),
            ..Faults::default()
        },
        Fault::Clear => {
            emulator.clear_faults();
            return;
        }
    };
    emulator.set_faults(faults);
}

/// authorize + authrep calls (plain and OAuth) the emulator received.
pub async fn auth_calls(emulator: &EmulatorHandle) -> u64 {
    let s = emulator.stats();
    s.authorize + s.authrep + s.oauth_authorize + s.oauth_authrep
}

/// report POSTs the emulator received.
pub async fn report_calls(emulator: &EmulatorHandle) -> u64 {
    emulator.stats().report
}

/// The variable that points the suites at a running apisonator (the kit's
/// `start` prints its URL; `.ci/run` sets it).
pub const APISONATOR_URL: &str = "THREESCALE_APISONATOR_URL";

/// The backend a test runs against: the emulator, or apisonator when
/// [`APISONATOR_URL`] is set.
///
/// Both are seeded from the same YAML. In apisonator (one stack shared by every
/// test and run) each backend gets its own namespace: service ids and provider
/// keys gain a suffix (read them through [`Backend::sid`] and [`Backend::pk`]);
/// service tokens, application ids and keys stay as written (apisonator keys
/// them per service). Usage is read from the emulator's `/_emulator/usage`, or
/// from apisonator's internal utilization endpoint after its report worker has
/// applied every job queued so far (a sentinel report, polled).
pub struct Backend {
    config: EmulatorConfig,
    suffix: String,
    kind: Kind,
}

enum Kind {
    Emulator(EmulatorHandle),
    Apisonator(Apisonator),
}

struct Apisonator {
    url: String,
    client: reqwest::Client,
    sentinel: String,
    sent: AtomicU64,
}

impl Backend {
    /// The emulator, or apisonator when [`APISONATOR_URL`] is set, seeded with `yaml`.
    pub async fn start(yaml: &str) -> Backend {
        let mut config = EmulatorConfig::from_yaml_str(yaml).expect("test config");
        // Explicit application ids, the same on both backends.
        for service in &mut config.services {
            for (i, app) in service.applications.iter_mut().enumerate() {
                if app.app_id.is_none() {
                    app.app_id = Some(format!("app-{}", i + 1));
                }
            }
        }
        match std::env::var(APISONATOR_URL) {
            Ok(url) => {
                let suffix = format!("-{}", unique());
                for service in &mut config.services {
                    service.id = format!("{}{suffix}", service.id);
                    let pk = service
                        .provider_key
                        .clone()
                        .unwrap_or_else(|| format!("pk-{}", service.id));
                    service.provider_key = Some(format!("{pk}{suffix}"));
                }
                let api = Apisonator::seed(
                    &fresh_connections(url.trim_end_matches('/')).await,
                    &config,
                    &suffix,
                )
                .await;
                Backend {
                    config,
                    suffix,
                    kind: Kind::Apisonator(api),
                }
            }
            Err(_) => {
                static NOTE: std::sync::Once = std::sync::Once::new();
                NOTE.call_once(|| {
                    eprintln!(
                        "apisonator run skipped: {APISONATOR_URL} is not set (against the emulator only)"
                    );
                });
                Backend {
                    kind: Kind::Emulator(
                        Emulator::start(config.clone())
                            .await
                            .expect("emulator starts"),
                    ),
                    config,
                    suffix: String::new(),
                }
            }
        }
    }

    /// Whether this is the real backend.
    pub fn is_apisonator(&self) -> bool {
        matches!(self.kind, Kind::Apisonator(_))
    }

    /// The emulator, when this is one (faults and request statistics).
    pub fn emulator(&self) -> Option<&EmulatorHandle> {
        match &self.kind {
            Kind::Emulator(e) => Some(e),
            Kind::Apisonator(_) => None,
        }
    }

    /// Waits for the next minute when fewer than `seconds` are left in this
    /// one: a test that fills or reads a per-minute limit must not straddle a
    /// minute boundary (both backends count by the wall clock's minute).
    /// Against the emulator a test takes milliseconds, so at most 5 seconds
    /// are asked for there; against the real backend (one puma thread, a
    /// worker) it takes seconds.
    pub async fn within_one_minute(&self, seconds: u64) {
        let seconds = if self.is_apisonator() {
            seconds
        } else {
            seconds.min(5)
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let into_minute = now.as_millis() % 60_000;
        if into_minute + u128::from(seconds) * 1000 > 60_000 {
            let wait = 60_000 - into_minute + 100;
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// Prints why part of a test does not run against apisonator.
    pub fn skip_note(&self, what: &str) {
        if self.is_apisonator() {
            eprintln!(
                "against apisonator: skipped {what} (needs the emulator's fault injection or statistics)"
            );
        }
    }

    pub fn url(&self) -> String {
        match &self.kind {
            Kind::Emulator(e) => e.url(),
            Kind::Apisonator(a) => a.url.clone(),
        }
    }

    /// The service id as seeded.
    pub fn sid(&self, id: &str) -> String {
        format!("{id}{}", self.suffix)
    }

    /// The provider key as seeded.
    pub fn pk(&self, pk: &str) -> String {
        format!("{pk}{}", self.suffix)
    }

    /// A config builder pointing at this backend.
    pub fn config(&self) -> threescale::ConfigBuilder {
        Config::builder().backend_url(self.url())
    }

    /// Waits until the backend has applied all usage reported so far (at once
    /// for the emulator; apisonator's worker applies it a moment later).
    pub async fn settle(&self) {
        if let Kind::Apisonator(a) = &self.kind {
            a.settle().await;
        }
    }

    /// Usage per metric of an application (by `app_id` or `user_key`) of the
    /// service `service_id` (as written in the YAML): the eternity totals, after
    /// [`Backend::settle`]. Metrics at 0 are left out.
    ///
    /// apisonator's utilization lists only the metrics its plan limits; of
    /// those it takes the longest period limited (eternity when there is one;
    /// the suites give every metric they count an eternity limit).
    pub async fn usage(&self, service_id: &str, app: (&str, &str)) -> BTreeMap<String, u64> {
        self.settle().await;
        self.usage_as_applied(service_id, app).await
    }

    /// [`Backend::usage`] without waiting: what the backend has applied so far
    /// (for a caller that has just settled).
    pub async fn usage_as_applied(
        &self,
        service_id: &str,
        app: (&str, &str),
    ) -> BTreeMap<String, u64> {
        match &self.kind {
            Kind::Emulator(e) => usage(e, service_id, app).await,
            Kind::Apisonator(a) => {
                let service = self.service(service_id);
                let app_id = match app.0 {
                    "app_id" => app.1.to_string(),
                    "user_key" => service
                        .applications
                        .iter()
                        .find(|x| x.user_key.as_deref() == Some(app.1))
                        .and_then(|x| x.app_id.clone())
                        .unwrap_or_else(|| panic!("no application with user key {}", app.1)),
                    other => panic!("unknown application reference {other}"),
                };
                a.utilization(&service.id, &app_id).await
            }
        }
    }

    fn service(&self, id: &str) -> &EmulatedService {
        let id = self.sid(id);
        self.config
            .services
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no service {id} in the test config"))
    }

    pub async fn shutdown(self) {
        if let Kind::Emulator(e) = self.kind {
            e.shutdown().await;
        }
    }
}

/// A forwarder on 127.0.0.1 in front of `upstream` that opens a fresh
/// connection to it for every request; returns its URL.
///
/// The kit's apisonator is one puma thread, which after answering on a
/// kept-alive connection waits up to 200 ms for that connection's next request
/// before it serves another connection: clients that alternate (an engine, the
/// test's own reads) would wait 200 ms a request. Statuses, headers and bodies
/// pass through as they are.
async fn fresh_connections(upstream: &str) -> String {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let upstream = upstream.to_string();
    let forward = move |req: axum::extract::Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let (parts, body) = req.into_parts();
            let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("request body");
            let mut request = client.request(parts.method, format!("{upstream}{target}"));
            for (name, value) in &parts.headers {
                if name != http::header::HOST && name != http::header::CONNECTION {
                    request = request.header(name, value);
                }
            }
            let answer = request.body(body).send().await.expect("apisonator answers");
            let mut response = axum::response::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != http::header::CONNECTION && name != http::header::TRANSFER_ENCODING {
                    response = response.header(name, value);
                }
            }
            let bytes = answer.bytes().await.expect("apisonator's body");
            response
                .body(axum::body::Body::from(bytes))
                .expect("response")
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new().fallback(forward);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A suffix no other backend of this or an earlier run used.
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}{:x}{}",
        nanos % (1 << 40),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The internal API's basic auth (the kit's defaults).
fn internal_credentials() -> (String, String) {
    let user = std::env::var("APISO_INTERNAL_USER").unwrap_or_else(|_| "system".into());
    let password = std::env::var("APISO_INTERNAL_PASSWORD").unwrap_or_else(|_| "password".into());
    (user, password)
}

impl Apisonator {
    /// Creates the services of `config` and a sentinel service through the
    /// internal API, as the kit's `seed` does.
    async fn seed(url: &str, config: &EmulatorConfig, suffix: &str) -> Apisonator {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let api = Apisonator {
            url: url.to_string(),
            client,
            sentinel: format!("sentinel{suffix}"),
            sent: AtomicU64::new(0),
        };
        let mut sentinel = EmulatedService {
            id: api.sentinel.clone(),
            provider_key: Some(format!("pk-sentinel{suffix}")),
            backend_version: "2".into(),
            metrics: vec![MetricConfig {
                name: "hits".into(),
                parent: None,
            }],
            plans: vec![PlanConfig {
                name: "sentinel".into(),
                limits: vec![LimitConfig {
                    metric: "hits".into(),
                    period: LimitPeriod::Eternity,
                    value: 1_000_000_000,
                }],
            }],
            ..EmulatedService::default()
        };
        sentinel.applications.push(ApplicationConfig {
            plan: Some("sentinel".into()),
            app_id: Some("sentinel".into()),
            ..ApplicationConfig::default()
        });
        for service in config.services.iter().chain([&sentinel]) {
            api.seed_service(service).await;
        }
        api
    }

    async fn internal(&self, method: reqwest::Method, path: &str, body: serde_json::Value) {
        let (user, password) = internal_credentials();
        let mut request = self
            .client
            .request(method.clone(), format!("{}/internal{path}", self.url))
            .basic_auth(user, Some(password))
            .header("content-type", "application/json");
        if !body.is_null() {
            request = request.body(body.to_string());
        }
        let resp = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("apisonator {method} {path}: {e}"));
        let status = resp.status();
        assert!(
            status.is_success(),
            "apisonator {method} /internal{path}: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }

    async fn seed_service(&self, s: &EmulatedService) {
        use reqwest::Method;
        use serde_json::json;
        let esc = url_escape;
        let mut service = json!({
            "id": s.id,
            "provider_key": s.provider_key,
            "backend_version": s.backend_version,
            "state": s.state.clone().unwrap_or_else(|| "active".into()),
            "referrer_filters_required": s.referrer_filters_required,
        });
        if let Some(default) = s.default {
            service["default_service"] = json!(default);
        }
        self.internal(Method::POST, "/services/", json!({ "service": service }))
            .await;
        let tokens: serde_json::Map<String, serde_json::Value> = s
            .service_token
            .iter()
            .chain(&s.service_tokens)
            .map(|t| (t.clone(), json!({ "service_id": s.id })))
            .collect();
        if !tokens.is_empty() {
            self.internal(
                Method::POST,
                "/service_tokens/",
                json!({ "service_tokens": tokens }),
            )
            .await;
        }
        let metric_id = |name: &str| {
            s.metrics
                .iter()
                .position(|m| m.name == name)
                .map(|i| (i + 1).to_string())
                .unwrap_or_else(|| panic!("service {}: unknown metric {name}", s.id))
        };
        for m in &s.metrics {
            let mut metric = json!({ "name": m.name });
            if let Some(parent) = &m.parent {
                metric["parent_id"] = json!(metric_id(parent));
            }
            self.internal(
                Method::POST,
                &format!("/services/{}/metrics/{}", esc(&s.id), metric_id(&m.name)),
                json!({ "metric": metric }),
            )
            .await;
        }
        for p in &s.plans {
            for l in &p.limits {
                let period = l.period.as_str();
                self.internal(
                    Method::PUT,
                    &format!(
                        "/services/{}/plans/{}/usagelimits/{}/{period}",
                        esc(&s.id),
                        esc(&p.name),
                        metric_id(&l.metric)
                    ),
                    json!({ "usagelimit": { period: l.value.to_string() } }),
                )
                .await;
            }
        }
        for a in &s.applications {
            let app_id = a.app_id.clone().expect("application ids are explicit");
            let mut app = json!({ "state": a.state.clone().unwrap_or_else(|| "active".into()) });
            if let Some(plan) = &a.plan {
                app["plan_id"] = json!(plan);
                app["plan_name"] = json!(plan);
            }
            if let Some(redirect) = &a.redirect_url {
                app["redirect_url"] = json!(redirect);
            }
            let path = format!("/services/{}/applications/{}", esc(&s.id), esc(&app_id));
            self.internal(Method::POST, &path, json!({ "application": app }))
                .await;
            if let Some(key) = &a.user_key {
                self.internal(
                    Method::PUT,
                    &format!("{path}/key/{}", esc(key)),
                    serde_json::Value::Null,
                )
                .await;
            }
            for key in &a.app_keys {
                self.internal(
                    Method::POST,
                    &format!("{path}/keys/"),
                    json!({ "application_key": { "value": key } }),
                )
                .await;
            }
            for filter in &a.referrer_filters {
                self.internal(
                    Method::POST,
                    &format!("{path}/referrer_filters"),
                    json!({ "referrer_filter": filter }),
                )
                .await;
            }
        }
    }

    /// Reports one hit for the sentinel and polls it until the worker has
    /// applied it: the worker runs jobs in order, so every report queued
    /// before it is applied too.
    async fn settle(&self) {
        let sid = &self.sentinel;
        let resp = self
            .client
            .post(format!("{}/transactions.xml", self.url))
            .form(&[
                ("provider_key", format!("pk-{sid}")),
                ("service_id", sid.clone()),
                ("transactions[0][app_id]", "sentinel".into()),
                ("transactions[0][usage][hits]", "1".into()),
            ])
            .send()
            .await
            .expect("sentinel report");
        assert_eq!(resp.status().as_u16(), 202, "sentinel report");
        let sent = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let hits = self
                .utilization(sid, "sentinel")
                .await
                .get("hits")
                .copied()
                .unwrap_or(0);
            if hits >= sent {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "apisonator's worker did not apply the sentinel report {sent} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Per metric, the current value of its longest limited period.
    async fn utilization(&self, service_id: &str, app_id: &str) -> BTreeMap<String, u64> {
        let (user, password) = internal_credentials();
        let path = format!(
            "/internal/services/{}/applications/{}/utilization/",
            url_escape(service_id),
            url_escape(app_id)
        );
        let json: serde_json::Value = self
            .client
            .get(format!("{}{path}", self.url))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: not JSON: {e}"));
        let order = ["minute", "hour", "day", "week", "month", "year", "eternity"];
        let mut best: BTreeMap<String, (usize, u64)> = BTreeMap::new();
        for entry in json["utilization"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {json}"))
        {
            let metric = entry["metric_name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let rank = order
                .iter()
                .position(|p| Some(*p) == entry["period"].as_str())
                .unwrap_or(0);
            let value = entry["current_value"].as_u64().unwrap_or(0);
            let slot = best.entry(metric).or_insert((rank, value));
            if rank >= slot.0 {
                *slot = (rank, value);
            }
        }
        best.into_iter()
            .filter(|(_, (_, v))| *v > 0)
            .map(|(m, (_, v))| (m, v))
            .collect()
    }
}

/// Percent-encodes a path segment.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
