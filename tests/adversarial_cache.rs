//! Adversarial cases of cached mode, backend numbers, outage logs and
//! configuration: real axum and actix servers against the emulator on
//! 127.0.0.1, and small fake backends written here for answers the emulator
//! never gives (counters at `u64::MAX`).
//!
//! - an unknown metric gets the same answer in Cached mode as in Sync mode, and
//!   its usage never reaches a report batch (the backend would discard the
//!   whole batch, other applications' hits with it);
//! - the authorization cache is bounded in bytes, invalid keys included;
//! - extreme counters and limit headers neither panic nor wrap;
//! - a backend outage logs one line, then summaries, not one line per request;
//! - the admin portal and a file give the same configuration for the same JSON;
//! - a backend URL that `build()` accepts never fails later.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use threescale::emulator::EmulatorHandle;
use threescale::{CacheSettings, Config, FailurePolicy, Mode, ThreeScale};

fn cached_mode() -> Mode {
    Mode::Cached(
        CacheSettings::default()
            .ttl(Duration::from_secs(60))
            .negative_ttl(Duration::from_secs(60))
            .flush_interval(Duration::from_secs(3600)),
    )
}

/// Service 1001 of the test backend, with a rule whose metric the backend does not know.
fn ghost_engine(emulator: &EmulatorHandle, mode: Mode) -> ThreeScale {
    let config = config_for(emulator)
        .service_token("tok-1001", "1001")
        .rule("GET", "/orders", "orders", 1)
        .rule("GET", "/search", "search", 1)
        .rule("GET", "/ghost", "ghost", 1)
        .mode(mode)
        .build()
        .unwrap();
    ThreeScale::new(config).unwrap()
}

async fn get(client: &reqwest::Client, app: &App, path: &str) -> Seen {
    send(client, "GET", &format!("{}{path}", app.url), &[]).await
}

/// Item 4: Cached mode answers an unknown metric as Sync mode does (403), on a
/// cold entry and on a warm one, and the hits of every application are kept.
#[tokio::test]
async fn an_unknown_metric_is_refused_in_cached_mode_as_in_sync_mode() {
    for adapter in ADAPTERS {
        let mut answers: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for (name, mode) in [("sync", Mode::Sync), ("cached", cached_mode())] {
            let emulator = emulator().await;
            let engine = ghost_engine(&emulator, mode);
            let app = serve(adapter, engine.clone());
            let client = reqwest::Client::new();
            let mut seen = Vec::new();
            // a cold entry: the first request of uk-small names the unknown metric
            seen.push(get(&client, &app, "/ghost?user_key=uk-small").await.status);
            seen.push(get(&client, &app, "/orders?user_key=uk-small").await.status);
            // a warm entry: uk-basic is cached before it names the unknown metric
            seen.push(get(&client, &app, "/orders?user_key=uk-basic").await.status);
            seen.push(get(&client, &app, "/ghost?user_key=uk-basic").await.status);
            seen.push(get(&client, &app, "/search?user_key=uk-basic").await.status);
            seen.push(get(&client, &app, "/ghost?user_key=uk-basic").await.status);
            seen.push(get(&client, &app, "/orders?user_key=uk-basic").await.status);
            engine.flush().await.expect("reports accepted");
            engine.shutdown().await;
            // nothing of the admitted requests is lost, nothing of the refused ones counted
            let basic = usage(&emulator, "1001", ("user_key", "uk-basic")).await;
            assert_eq!(
                basic.get("orders"),
                Some(&2),
                "{adapter:?} {name} {basic:?}"
            );
            assert_eq!(
                basic.get("search"),
                Some(&1),
                "{adapter:?} {name} {basic:?}"
            );
            assert_eq!(basic.get("hits"), Some(&3), "{adapter:?} {name} {basic:?}");
            let small = usage(&emulator, "1001", ("user_key", "uk-small")).await;
            assert_eq!(
                small.get("orders"),
                Some(&1),
                "{adapter:?} {name} {small:?}"
            );
            assert_eq!(small.get("hits"), Some(&1), "{adapter:?} {name} {small:?}");
            answers.insert(name, seen);
        }
        assert_eq!(
            answers["sync"],
            vec![403, 200, 200, 403, 200, 403, 200],
            "{adapter:?}"
        );
        assert_eq!(answers["cached"], answers["sync"], "{adapter:?}");
    }
}

/// Item 4: a warm entry keeps its local counters across the check of a new
/// metric: the plan's limit of 3 hits a minute still holds.
#[tokio::test]
async fn checking_a_new_metric_keeps_the_local_counters() {
    for adapter in ADAPTERS {
        let emulator = emulator().await;
        let engine = ghost_engine(&emulator, cached_mode());
        let app = serve(adapter, engine.clone());
        let client = reqwest::Client::new();
        assert_eq!(
            get(&client, &app, "/orders?user_key=uk-small").await.status,
            200
        );
        assert_eq!(
            get(&client, &app, "/orders?user_key=uk-small").await.status,
            200
        );
        // search is new to this engine: asked once, then counted locally
        assert_eq!(
            get(&client, &app, "/search?user_key=uk-small").await.status,
            200
        );
        assert_eq!(
            get(&client, &app, "/search?user_key=uk-small").await.status,
            429,
            "{adapter:?}: the fourth hit of a 3-a-minute plan"
        );
        assert_eq!(
            get(&client, &app, "/orders?user_key=uk-small").await.status,
            429
        );
        engine.flush().await.expect("reports accepted");
        let small = usage(&emulator, "1001", ("user_key", "uk-small")).await;
        assert_eq!(small.get("hits"), Some(&3), "{adapter:?} {small:?}");
        engine.shutdown().await;
    }
}

/// Item 9: invalid keys fill the negative cache, which stays within its byte budget.
#[tokio::test]
async fn the_cache_stays_within_its_byte_budget() {
    const BUDGET: u64 = 64 * 1024;
    for adapter in ADAPTERS {
        let emulator = emulator().await;
        let config = config_for(&emulator)
            .service_token("tok-1001", "1001")
            .mode(Mode::Cached(
                CacheSettings::default()
                    .negative_ttl(Duration::from_secs(600))
                    .max_bytes(BUDGET),
            ))
            .build()
            .unwrap();
        let engine = ThreeScale::new(config).unwrap();
        let app = serve(adapter, engine.clone());
        let client = reqwest::Client::new();
        for i in 0..600 {
            let key = format!("{i:06}{}", "k".repeat(244));
            let seen = get(&client, &app, &format!("/x?user_key={key}")).await;
            assert_eq!(seen.status, 403, "{adapter:?}");
        }
        // a valid application is still served
        assert_eq!(get(&client, &app, "/x?user_key=uk-basic").await.status, 200);
        let stats = engine.stats();
        assert!(stats.cache_entries > 0, "{adapter:?} {stats:?}");
        assert!(
            stats.cache_bytes <= BUDGET,
            "{adapter:?}: {} bytes cached, budget {BUDGET}",
            stats.cache_bytes
        );
        // 600 keys of 250 bytes do not fit in 64 KiB
        assert!(stats.cache_entries < 600, "{adapter:?} {stats:?}");
        engine.shutdown().await;
    }
    let too_small = Config::builder()
        .service_token("t", "1")
        .mode(Mode::Cached(CacheSettings::default().max_bytes(0)))
        .build()
        .unwrap_err();
    assert!(too_small.field.contains("max_bytes"), "{too_small}");
}

/// A fake backend that answers every auth call with `xml` and `headers`, and
/// accepts reports.
async fn fake_backend(
    xml: String,
    headers: Vec<(&'static str, String)>,
) -> (String, Arc<Mutex<u64>>) {
    use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
    let calls = Arc::new(Mutex::new(0u64));
    let counter = calls.clone();
    let answer = move || {
        let xml = xml.clone();
        let headers = headers.clone();
        let counter = counter.clone();
        async move {
            *counter.lock().unwrap() += 1;
            let mut map = HeaderMap::new();
            map.insert(
                "content-type",
                HeaderValue::from_static("application/vnd.3scale-v2.0+xml"),
            );
            for (name, value) in headers {
                map.insert(
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).unwrap(),
                );
            }
            (StatusCode::OK, map, xml)
        }
    };
    let app = axum::Router::new()
        .route(
            "/transactions/authorize.xml",
            axum::routing::get(answer.clone()),
        )
        .route("/transactions/authrep.xml", axum::routing::get(answer))
        .route(
            "/transactions.xml",
            axum::routing::post(|| async { StatusCode::ACCEPTED }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn status_xml(max: &str, current: &str) -> String {
    // a period from the far past to the far future: the ends of the date range too
    let (start, end) = ("1970-01-01 00:00:00 +0000", "9999-12-31 23:59:59 +0000");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><plan>Max</plan><usage_reports><usage_report metric="hits" period="minute"><period_start>{start}</period_start><period_end>{end}</period_end><max_value>{max}</max_value><current_value>{current}</current_value></usage_report><usage_report metric="hits" period="eternity"><max_value>{max}</max_value><current_value>{current}</current_value></usage_report></usage_reports></status>"#
    )
}

/// Item 10: counters and limit headers at the ends of their ranges: every
/// request gets an answer (no panic) and the figures do not wrap.
#[tokio::test]
async fn extreme_backend_numbers_neither_panic_nor_wrap() {
    const MAX: u64 = u64::MAX;
    // (max_value, current_value) → statuses of three requests, RateLimit-Remaining of the first
    let cases: [(String, String, [u16; 3], Option<&str>); 4] = [
        (MAX.to_string(), MAX.to_string(), [429, 429, 429], Some("0")),
        (
            MAX.to_string(),
            (MAX - 1).to_string(),
            [200, 429, 429],
            Some("0"),
        ),
        (
            MAX.to_string(),
            "0".into(),
            [200, 200, 200],
            Some("18446744073709551614"),
        ),
        (
            (MAX - 1).to_string(),
            MAX.to_string(),
            [429, 429, 429],
            Some("0"),
        ),
    ];
    let limit_headers = vec![
        ("3scale-limit-remaining", i64::MAX.to_string()),
        ("3scale-limit-reset", i64::MAX.to_string()),
        ("3scale-limit-max-value", i64::MAX.to_string()),
    ];
    for adapter in ADAPTERS {
        for (max, current, statuses, remaining) in &cases {
            let (url, _) = fake_backend(status_xml(max, current), limit_headers.clone()).await;
            let config = Config::builder()
                .backend_url(url)
                .service_token("tok", "77")
                .mode(cached_mode())
                .build()
                .unwrap();
            let engine = ThreeScale::new(config).unwrap();
            let app = serve(adapter, engine.clone());
            let client = reqwest::Client::new();
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(get(&client, &app, "/x?user_key=k").await);
            }
            let got: Vec<u16> = seen.iter().map(|s| s.status).collect();
            assert_eq!(
                &got[..],
                &statuses[..],
                "{adapter:?} max {max} current {current}"
            );
            assert_eq!(
                seen[0].header("ratelimit-remaining"),
                *remaining,
                "{adapter:?} max {max} current {current}: {:?}",
                seen[0]
            );
            engine.shutdown().await;
        }
        // Sync mode reads the limit headers: extreme and negative values
        for (remaining, reset, max) in [
            (i64::MAX, i64::MAX, i64::MAX),
            (i64::MIN, i64::MIN, i64::MIN),
            (-1, -1, -1),
        ] {
            let headers = vec![
                ("3scale-limit-remaining", remaining.to_string()),
                ("3scale-limit-reset", reset.to_string()),
                ("3scale-limit-max-value", max.to_string()),
            ];
            let (url, _) = fake_backend(status_xml(&MAX.to_string(), "0"), headers).await;
            let config = Config::builder()
                .backend_url(url)
                .service_token("tok", "77")
                .build()
                .unwrap();
            let engine = ThreeScale::new(config).unwrap();
            let app = serve(adapter, engine.clone());
            let seen = get(&reqwest::Client::new(), &app, "/x?user_key=k").await;
            assert_eq!(seen.status, 200, "{adapter:?} {remaining} {reset} {max}");
            if let Some(value) = seen.header("ratelimit-remaining") {
                assert!(value.parse::<u64>().unwrap() <= i64::MAX as u64, "{value}");
            }
            if let Some(value) = seen.header("ratelimit-reset") {
                assert!(value.parse::<u64>().unwrap() <= i64::MAX as u64, "{value}");
            }
            engine.shutdown().await;
        }
        // numbers past u64::MAX are a malformed answer: an outage, not a panic
        let (url, _) = fake_backend(status_xml("18446744073709551616", "0"), Vec::new()).await;
        let config = Config::builder()
            .backend_url(url)
            .service_token("tok", "77")
            .mode(cached_mode())
            .build()
            .unwrap();
        let engine = ThreeScale::new(config).unwrap();
        let app = serve(adapter, engine.clone());
        let seen = get(&reqwest::Client::new(), &app, "/x?user_key=k").await;
        assert_eq!(seen.status, 503, "{adapter:?}");
        engine.shutdown().await;
    }
}

/// Counts the WARN lines of each service id, in every thread of this test binary.
#[derive(Clone, Default)]
struct WarnCounter(Arc<Mutex<BTreeMap<String, Vec<String>>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarnCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() != tracing::Level::WARN {
            return;
        }
        struct Fields(BTreeMap<String, String>);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0
                    .insert(field.name().to_string(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.insert(field.name().to_string(), value.to_string());
            }
        }
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        let service = fields.0.get("service_id").cloned().unwrap_or_default();
        let line = format!("{:?}", fields.0);
        self.0
            .lock()
            .unwrap()
            .entry(service)
            .or_default()
            .push(line);
    }
}

fn warn_lines() -> &'static WarnCounter {
    static COUNTER: OnceLock<WarnCounter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let counter = WarnCounter::default();
        let subscriber = tracing_subscriber::registry().with(counter.clone());
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        counter
    })
}

/// Item 11: while the backend is down, 300 failing requests give one WARN line
/// and summaries, not 300 lines; no line holds a secret.
#[tokio::test]
async fn an_outage_logs_a_line_then_summaries() {
    let counter = warn_lines();
    // a port nobody listens on
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut n = 0;
    for adapter in ADAPTERS {
        for mode in [Mode::Sync, Mode::Cached(CacheSettings::default())] {
            n += 1;
            let service_id = format!("outage-{n}");
            let config = Config::builder()
                .backend_url(dead.clone())
                .service_token("outage-secret-token", service_id.clone())
                .mode(mode)
                .failure_policy(FailurePolicy::Closed)
                .build()
                .unwrap();
            let engine = ThreeScale::new(config).unwrap();
            let app = serve(adapter, engine.clone());
            let client = reqwest::Client::new();
            for i in 0..300 {
                let seen = get(&client, &app, &format!("/x?user_key=key-{}", i % 7)).await;
                assert_eq!(seen.status, 503, "{adapter:?} {mode:?}");
            }
            assert!(engine.stats().backend_failures >= 7, "{:?}", engine.stats());
            let lines = counter
                .0
                .lock()
                .unwrap()
                .get(&service_id)
                .cloned()
                .unwrap_or_default();
            assert!(
                !lines.is_empty(),
                "{adapter:?} {mode:?}: the outage is logged"
            );
            assert!(
                lines.len() <= 3,
                "{adapter:?} {mode:?}: {} lines: {lines:#?}",
                lines.len()
            );
            for line in &lines {
                assert!(!line.contains("outage-secret-token"), "{line}");
                assert!(!line.contains("key-"), "{line}");
            }
            drop(app);
        }
    }
}

const PORTAL_BACKEND: &str = r#"
admin_access_token: "portal-token"
services:
  - id: "5005"
    backend_version: "1"
    service_token: "tok-5005"
    metrics: [{ name: hits }]
    plans: [{ name: basic, limits: [{ metric: hits, period: minute, value: 1000 }] }]
    applications: [{ plan: basic, user_key: "uk" }]
    proxy:
      mapping_rules:
        - { http_method: GET, pattern: "/", metric_system_name: hits, delta: 1 }
      policy_chain:
        - { name: apicast.policy.3scale_batcher, configuration: { auths_ttl: 30, batch_report_seconds: 7 } }
        - { name: apicast.policy.caching, configuration: { caching_type: strict } }
        - { name: apicast.policy.apicast }
"#;

/// Item 15: the same proxy config JSON, from the admin portal and from a file,
/// gives the same settings: the policy chain's batcher and caching included.
#[tokio::test]
async fn the_portal_and_a_file_give_the_same_settings() {
    use threescale::{DeploymentEnv, Portal};
    let emulator = emulator_with(PORTAL_BACKEND).await;
    let portal = Portal::new(
        emulator.url(),
        "portal-token",
        "5005",
        DeploymentEnv::Production,
    );
    let json = reqwest::Client::new()
        .get(portal.url())
        .basic_auth("portal-token", Some(""))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(json.contains("3scale_batcher"), "{json}");
    let path = std::env::temp_dir().join(format!("adversarial-cache-{}.json", std::process::id()));
    std::fs::write(&path, &json).unwrap();
    let from_file = Config::from_file(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let from_portal = Config::from_portal(
        &emulator.url(),
        "portal-token",
        "5005",
        DeploymentEnv::Production,
    )
    .await
    .unwrap();
    let expected = Mode::Cached(
        CacheSettings::default()
            .ttl(Duration::from_secs(30))
            .flush_interval(Duration::from_secs(7)),
    );
    assert_eq!(from_file.mode, expected);
    assert_eq!(from_portal.mode, from_file.mode);
    assert_eq!(from_portal.failure_policy, from_file.failure_policy);
    assert_eq!(from_portal.timeout, from_file.timeout);
    assert_eq!(from_portal.bypass_paths, from_file.bypass_paths);
    assert_eq!(from_portal.rate_limit_headers, from_file.rate_limit_headers);
    assert_eq!(from_portal.service.service_id, from_file.service.service_id);
    assert_eq!(
        from_portal.service.backend_url,
        from_file.service.backend_url
    );
    assert_eq!(
        from_portal.service.mapping_rules.rules(),
        from_file.service.mapping_rules.rules()
    );
    // and the portal's config runs Cached: a second request is decided locally
    let engine = ThreeScale::new(from_portal).unwrap();
    let app = serve(Adapter::Axum, engine.clone());
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(get(&client, &app, "/a?user_key=uk").await.status, 200);
    }
    assert_eq!(engine.stats().backend_calls, 1, "{:?}", engine.stats());
    engine.shutdown().await;
}

/// Item 16: every source refuses the backend URLs the backend client would
/// refuse, and a URL `build()` accepts always gives a working engine.
#[tokio::test]
async fn a_backend_url_that_build_accepts_never_fails_later() {
    let refused = [
        "http://user:secret@127.0.0.1:3001",
        "http://user@127.0.0.1:3001",
        "http://127.0.0.1:3001/?provider_key=x",
        "http://127.0.0.1:3001/#frag",
        "http://127.0.0.1:3001?",
        "ftp://127.0.0.1:3001",
        "http://",
        "http://[::1",
        "http://exa mple.com",
        "http://127.0.0.1:99999",
    ];
    for url in refused {
        let builder = Config::builder()
            .backend_url(url)
            .service_token("t", "1")
            .build();
        assert!(builder.is_err(), "builder accepted {url:?}");
        let env = Config::from_vars(|name| match name {
            "THREESCALE_BACKEND_URL" => Some(url.to_string()),
            "THREESCALE_SERVICE_ID" => Some("1".into()),
            "THREESCALE_SERVICE_TOKEN" => Some("t".into()),
            _ => None,
        });
        assert!(env.is_err(), "env accepted {url:?}");
        let json = serde_json::json!({
            "id": 1, "backend_authentication_type": "service_token",
            "backend_authentication_value": "t",
            "proxy": { "backend": { "endpoint": url } }
        });
        let proxy = Config::from_proxy_config(&json.to_string());
        assert!(proxy.is_err(), "proxy config accepted {url:?}");
        if let Err(error) = &builder {
            assert!(!error.to_string().contains("secret"), "{error}");
        }
    }
    let accepted = [
        "http://127.0.0.1:3001",
        "https://su1.3scale.net",
        "http://127.0.0.1:3001/",
        "http://127.0.0.1:3001/prefix",
        "http://[::1]:3001",
        " http://127.0.0.1:3001 ",
    ];
    for url in accepted {
        let config = Config::builder()
            .backend_url(url)
            .service_token("t", "1")
            .build()
            .unwrap_or_else(|e| panic!("{url:?}: {e}"));
        ThreeScale::new(config).unwrap_or_else(|e| panic!("{url:?}: {e}"));
    }
}
