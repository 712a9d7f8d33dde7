//! The engine's spans: one `threescale.check` per check with the service,
//! application (id only), plan, matched rules, usage, outcome and cache
//! result; one `threescale.backend` per backend call with its status and
//! latency. And no secret in any span or event, whatever the outcome.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use threescale_core::{CacheSettings, Config, Decision, Mode, SimpleRequest, ThreeScale};
use threescale_emulator::{Emulator, EmulatorConfig};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const SERVICE_TOKEN: &str = "tokSECRET-1001";
const PROVIDER_KEY: &str = "pkSECRET-2002";
const USER_KEY: &str = "ukSECRET-basic";
const WRONG_KEY: &str = "ukSECRET-wrong";
const APP_KEY: &str = "akSECRET-key1";

const BACKEND: &str = r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tokSECRET-1001"
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
    plans:
      - name: basic
        limits:
          - { metric: hits, period: minute, value: 1000 }
    applications:
      - { plan: basic, user_key: "ukSECRET-basic" }
  - id: "2002"
    backend_version: "2"
    provider_key: "pkSECRET-2002"
    metrics:
      - { name: hits }
    plans:
      - name: pro
        limits:
          - { metric: hits, period: hour, value: 1000 }
    applications:
      - { plan: pro, app_id: "app1", app_keys: ["akSECRET-key1"], state: active }
"#;

/// A span as captured: its name and every field recorded on it.
#[derive(Clone, Debug, Default)]
struct Captured {
    name: String,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<BTreeMap<u64, Captured>>>,
    /// Every event's fields, as text.
    events: Arc<Mutex<Vec<String>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut captured = Captured {
            name: attrs.metadata().name().to_string(),
            ..Captured::default()
        };
        attrs.record(&mut Fields(&mut captured.fields));
        self.spans.lock().unwrap().insert(id.into_u64(), captured);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events
            .lock()
            .unwrap()
            .push(format!("{} {fields:?}", event.metadata().target()));
    }
}

fn engine(url: &str, service: &str, mode: Mode) -> ThreeScale {
    let builder = Config::builder().backend_url(url).mode(mode);
    let builder = match service {
        "1001" => {
            builder
                .service_token(SERVICE_TOKEN, "1001")
                .rule("GET", "/orders/{id}", "orders", 1)
        }
        _ => builder
            .provider_key(PROVIDER_KEY, "2002")
            .backend_version(threescale_core::BackendVersion::AppId),
    };
    ThreeScale::new(builder.build().unwrap()).unwrap()
}

#[test]
fn checks_and_backend_calls_have_spans_without_secrets() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = Emulator::start(EmulatorConfig::from_yaml_str(BACKEND).unwrap())
            .await
            .unwrap();
        let url = emulator.url();

        let sync = engine(&url, "1001", Mode::Sync);
        let allowed = sync
            .check(&SimpleRequest::get(&format!(
                "/orders/7?user_key={USER_KEY}"
            )))
            .await;
        assert!(matches!(allowed.decision, Decision::Allow(_)));
        let denied = sync
            .check(&SimpleRequest::get(&format!(
                "/orders/7?user_key={WRONG_KEY}"
            )))
            .await;
        assert!(matches!(denied.decision, Decision::Deny(_)));
        sync.shutdown().await;

        let cached = engine(&url, "1001", Mode::Cached(CacheSettings::default()));
        for _ in 0..2 {
            let outcome = cached
                .check(&SimpleRequest::get(&format!(
                    "/orders/8?user_key={USER_KEY}"
                )))
                .await;
            assert!(outcome.decision.is_allowed());
        }
        cached.shutdown().await;

        let v2 = engine(&url, "2002", Mode::Sync);
        let outcome = v2
            .check(&SimpleRequest::get(&format!(
                "/anything?app_id=app1&app_key={APP_KEY}"
            )))
            .await;
        assert!(outcome.decision.is_allowed());
        v2.shutdown().await;
    });

    let spans: Vec<Captured> = capture.spans.lock().unwrap().values().cloned().collect();
    let checks: Vec<&Captured> = spans
        .iter()
        .filter(|s| s.name == "threescale.check")
        .collect();
    assert_eq!(checks.len(), 5, "{checks:#?}");
    let field = |s: &Captured, name: &str| s.fields.get(name).cloned();

    // Sync, allowed.
    let first = checks[0];
    assert_eq!(field(first, "service_id").as_deref(), Some("1001"));
    assert_eq!(field(first, "outcome").as_deref(), Some("allowed"));
    assert_eq!(field(first, "plan").as_deref(), Some("basic"));
    assert_eq!(field(first, "rules").as_deref(), Some("GET /orders/{id}"));
    assert_eq!(field(first, "usage").as_deref(), Some("orders=1"));
    assert_eq!(
        field(first, "app_id"),
        None,
        "a user key service has no app id"
    );
    assert_eq!(field(first, "cache"), None);
    // Sync, denied.
    let second = checks[1];
    assert_eq!(field(second, "outcome").as_deref(), Some("denied"));
    assert_eq!(field(second, "denial").as_deref(), Some("auth_failed"));
    assert_eq!(field(second, "reason").as_deref(), Some("user_key_invalid"));
    // Cached: a miss, then a hit.
    assert_eq!(field(checks[2], "cache").as_deref(), Some("miss"));
    assert_eq!(field(checks[3], "cache").as_deref(), Some("hit"));
    assert_eq!(field(checks[3], "outcome").as_deref(), Some("allowed"));
    // App id service.
    assert_eq!(field(checks[4], "app_id").as_deref(), Some("app1"));
    assert_eq!(field(checks[4], "plan").as_deref(), Some("pro"));
    assert_eq!(field(checks[4], "rules").as_deref(), Some("ANY /"));

    let backend: Vec<&Captured> = spans
        .iter()
        .filter(|s| s.name == "threescale.backend")
        .collect();
    let calls = |call: &str| {
        backend
            .iter()
            .filter(|s| field(s, "call").as_deref() == Some(call))
            .count()
    };
    assert_eq!(calls("authrep"), 3, "{backend:#?}");
    assert!(calls("authorize") >= 1, "{backend:#?}");
    assert_eq!(
        calls("report"),
        1,
        "the cached engine's report: {backend:#?}"
    );
    for span in &backend {
        let status = field(span, "status").unwrap_or_default();
        assert!(
            ["200", "409", "403", "404", "202"].contains(&status.as_str()),
            "{span:?}"
        );
        let latency: u64 = field(span, "latency_ms").unwrap().parse().unwrap();
        assert!(latency < 60_000, "{span:?}");
    }

    // No secret anywhere: span fields or events.
    let everything = format!("{spans:?} {:?}", capture.events.lock().unwrap());
    for secret in [
        SERVICE_TOKEN,
        PROVIDER_KEY,
        USER_KEY,
        WRONG_KEY,
        APP_KEY,
        "SECRET",
    ] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}
