//! The whole in-process decision on the cached path: a request through
//! `ThreeScaleLayer` with a warm cache, against the same bare service, in the
//! same run (tower `oneshot`, polled once: a cached decision never waits).
//!
//! Two inner services: a `service_fn` answering `ok` (the layer's own cost,
//! nothing else) and an axum `Router` with one route (what an axum user runs).
//! `engine_begin` is the engine's synchronous step alone (credentials, mapping,
//! cache admission, usage recorded for the batcher). Target: protected - bare
//! under 2 microseconds. The `/prometheus` cases run the same decisions with a
//! Prometheus recorder installed (feature `metrics`): the cost of recording.
//! Without one the `metrics` facade's calls go nowhere.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::tower::ThreeScaleLayer;
use threescale::{CacheSettings, Config, Mode, SimpleRequest, Step, ThreeScale};
use tower::{Layer, ServiceExt};

/// One application with limits no benchmark reaches, in eternity periods (a
/// cached entry then lives for its TTL, not until the end of a minute).
const BACKEND: &str = r#"
services:
  - id: "9001"
    backend_version: "1"
    service_token: "bench-token"
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
      - { name: search, parent: hits }
    plans:
      - name: unlimited
        limits:
          - { metric: hits, period: eternity, value: 1000000000000000 }
          - { metric: orders, period: eternity, value: 1000000000000000 }
    applications:
      - { plan: unlimited, user_key: "bench-user-key-0123456789abcdef" }
"#;

const URI: &str = "/v1/orders/42?user_key=bench-user-key-0123456789abcdef&fields=id,total";

fn engine(backend_url: &str) -> ThreeScale {
    let config = Config::builder()
        .backend_url(backend_url)
        .service_token("bench-token", "9001")
        .rule("GET", "/v1/orders/{id}$", "orders", 1)
        .rule("POST", "/v1/orders$", "orders", 1)
        .rule("GET", "/v1/search?q={q}", "search", 1)
        .rule("ANY", "/", "hits", 1)
        .mode(Mode::Cached(
            CacheSettings::default().ttl(Duration::from_secs(3600)),
        ))
        .build()
        .expect("config");
    ThreeScale::new(config).expect("engine")
}

fn request() -> Request<axum::body::Body> {
    Request::get(URI)
        .header("host", "api.example.com")
        .header("user-agent", "bench/1.0")
        .header("accept", "application/json")
        .body(axum::body::Body::empty())
        .expect("request")
}

/// The response of a future polled once: it must be ready, and a 200.
fn check<B>(response: Option<Result<Response<B>, Infallible>>) -> Response<B> {
    let response = response
        .expect("decided without waiting")
        .expect("infallible");
    assert_eq!(response.status(), 200);
    response
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = rt
        .block_on(Emulator::start(
            EmulatorConfig::from_yaml_str(BACKEND).expect("emulator config"),
        ))
        .expect("emulator starts");
    let engine = engine(&emulator.url());
    let _guard = rt.enter();

    let hello = tower::service_fn(|_req: Request<axum::body::Body>| async {
        Ok::<_, Infallible>(Response::new("ok"))
    });
    let hello_protected = ThreeScaleLayer::new(engine.clone()).layer(hello);
    let router =
        axum::Router::new().route("/v1/orders/{id}", axum::routing::get(|| async { "ok" }));
    let router_protected = router.clone().layer(ThreeScaleLayer::new(engine.clone()));

    // Warm the cache: the first request asks the backend.
    let first = rt
        .block_on(router_protected.clone().oneshot(request()))
        .expect("infallible");
    assert_eq!(first.status(), 200);
    let calls = engine.stats().backend_calls;
    assert_eq!(calls, 1);
    // From now on, every decision is made in the first poll.
    check(hello_protected.clone().oneshot(request()).now_or_never());
    check(router_protected.clone().oneshot(request()).now_or_never());

    let mut group = c.benchmark_group("decision");
    group.bench_function("service_fn/bare", |b| {
        b.iter_batched(
            request,
            |req| check(hello.oneshot(req).now_or_never()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("service_fn/protected", |b| {
        b.iter_batched(
            request,
            |req| check(hello_protected.clone().oneshot(req).now_or_never()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("axum_router/bare", |b| {
        b.iter_batched(
            request,
            |req| check(router.clone().oneshot(req).now_or_never()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("axum_router/protected", |b| {
        b.iter_batched(
            request,
            |req| check(router_protected.clone().oneshot(req).now_or_never()),
            BatchSize::SmallInput,
        )
    });
    let simple = SimpleRequest::get(URI)
        .header("host", "api.example.com")
        .header("user-agent", "bench/1.0")
        .header("accept", "application/json");
    group.bench_function("engine_begin", |b| {
        b.iter(|| match engine.begin(black_box(&simple)) {
            Step::Done(outcome) => outcome,
            Step::Pending(_) => panic!("cache miss"),
        })
    });
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        group.bench_function("service_fn/protected/prometheus", |b| {
            b.iter_batched(
                request,
                |req| check(hello_protected.clone().oneshot(req).now_or_never()),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("engine_begin/prometheus", |b| {
            b.iter(|| match engine.begin(black_box(&simple)) {
                Step::Done(outcome) => outcome,
                Step::Pending(_) => panic!("cache miss"),
            })
        });
    });
    let rendered = recorder.handle().render();
    assert!(
        rendered.contains("threescale_decisions_total"),
        "the recorder saw the decisions"
    );
    group.finish();
    assert_eq!(
        engine.stats().backend_calls,
        calls,
        "no backend call while timing"
    );
    drop(_guard);
    rt.block_on(engine.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
