//! The `metrics` feature: a Prometheus recorder installed as in the axum
//! example, a real axum server on 127.0.0.1 serving `/metrics` beside an API
//! protected in cached mode, real requests, then the scraped page's counters.
//! (One test in this binary: the recorder is process-wide.)

use std::collections::BTreeMap;

use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::tower::ThreeScaleLayer;
use threescale::{CacheSettings, Config, Mode, ThreeScale};

const BACKEND: &str = r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tok-1001"
    metrics:
      - { name: hits }
    plans:
      - name: basic
        limits:
          - { metric: hits, period: minute, value: 1000 }
    applications:
      - { plan: basic, user_key: "uk-a" }
"#;

/// The samples of a Prometheus text page: `name{labels}` → value.
fn samples(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_page_counts_real_requests() {
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let emulator = Emulator::start(EmulatorConfig::from_yaml_str(BACKEND).unwrap())
        .await
        .unwrap();
    let config = Config::builder()
        .backend_url(emulator.url())
        .service_token("tok-1001", "1001")
        .bypass_path("/metrics")
        .mode(Mode::Cached(CacheSettings::default()))
        .build()
        .unwrap();
    let engine = ThreeScale::new(config).unwrap();
    let app = axum::Router::new()
        .route("/orders", axum::routing::get(|| async { "orders" }))
        .route(
            "/metrics",
            axum::routing::get(move || std::future::ready(prometheus.render())),
        )
        .layer(ThreeScaleLayer::new(engine.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .get(format!("{url}{path}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..3 {
        assert_eq!(status("/orders?user_key=uk-a").await, 200);
    }
    assert_eq!(status("/orders").await, 401);
    assert_eq!(status("/orders?user_key=uk-nobody").await, 403);
    engine.flush().await.unwrap();

    let page = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = samples(&page);
    let value = |key: &str| {
        samples
            .get(key)
            .copied()
            .unwrap_or_else(|| panic!("{key} missing in:\n{page}"))
    };
    assert_eq!(
        value(r#"threescale_decisions_total{outcome="allowed",kind="none",degraded="false"}"#),
        3.0
    );
    assert_eq!(
        value(
            r#"threescale_decisions_total{outcome="denied",kind="auth_missing",degraded="false"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            r#"threescale_decisions_total{outcome="denied",kind="auth_failed",degraded="false"}"#
        ),
        1.0
    );
    // The scrape itself bypasses 3scale, decided before the page was rendered.
    assert_eq!(
        value(r#"threescale_decisions_total{outcome="bypassed",kind="none",degraded="false"}"#),
        1.0
    );
    // Two applications missed the cache (one unknown): two fills, then two hits.
    assert_eq!(value(r#"threescale_cache_total{event="miss"}"#), 2.0);
    assert_eq!(value(r#"threescale_cache_total{event="fill"}"#), 2.0);
    assert_eq!(value(r#"threescale_cache_total{event="hit"}"#), 2.0);
    assert_eq!(
        value(r#"threescale_backend_calls_total{call="authorize",status="200"}"#),
        1.0
    );
    assert_eq!(
        value(r#"threescale_backend_calls_total{call="authorize",status="403"}"#),
        1.0
    );
    assert_eq!(
        value(r#"threescale_backend_calls_total{call="report",status="202"}"#),
        1.0
    );
    assert_eq!(
        value(r#"threescale_backend_call_duration_seconds_count{call="authorize"}"#),
        2.0
    );
    // The three hits of one application: one transaction.
    assert_eq!(
        value(r#"threescale_report_transactions_total{result="reported"}"#),
        1.0
    );
    assert_eq!(value("threescale_report_queue_applications"), 0.0);
    assert_eq!(value("threescale_report_queue_bytes"), 0.0);
    assert_eq!(
        value(r#"threescale_backend_outage{service_id="1001"}"#),
        0.0
    );
    assert_eq!(emulator.stats().transactions_applied, 1);

    engine.shutdown().await;
    server.abort();
}
