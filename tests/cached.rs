//! Cached mode: exactly-once reporting under concurrency and faults, backend
//! calls that grow with applications (not requests), local 429s at the
//! backend's count, outage behaviours on both adapters, several instances.
//! The backend is the emulator, or apisonator (the real 3scale backend) when
//! `THREESCALE_APISONATOR_URL` is set; what needs the emulator's fault
//! injection or request statistics runs only against the emulator.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{ADAPTERS, Adapter, Backend, emulator_with, send, serve, usage};
use threescale::{CacheSettings, FailurePolicy, Mode, ThreeScale};

const LOAD_BACKEND: &str = r#"
services:
  - id: "3003"
    backend_version: "1"
    service_token: "tok-3003"
    metrics:
      - { name: hits }
      - { name: reads, parent: hits }
      - { name: writes, parent: hits }
    plans:
      # reads and writes: eternity limits out of reach, so that the real
      # backend's utilization endpoint lists them.
      - name: big
        limits:
          - { metric: hits, period: eternity, value: 1000000 }
          - { metric: reads, period: eternity, value: 1000000000 }
          - { metric: writes, period: eternity, value: 1000000000 }
      - name: tight
        limits:
          - { metric: hits, period: eternity, value: 40 }
          - { metric: reads, period: eternity, value: 1000000000 }
          - { metric: writes, period: eternity, value: 1000000000 }
    applications:
      - { plan: big, user_key: "k0" }
      - { plan: big, user_key: "k1" }
      - { plan: big, user_key: "k2" }
      - { plan: big, user_key: "k3" }
      - { plan: tight, user_key: "tight" }
"#;

fn cached(ttl_ms: u64, flush_ms: u64) -> Mode {
    Mode::Cached(
        CacheSettings::default()
            .ttl(Duration::from_millis(ttl_ms))
            .negative_ttl(Duration::from_millis(ttl_ms))
            .flush_interval(Duration::from_millis(flush_ms)),
    )
}

fn engine(backend: &Backend, mode: Mode) -> ThreeScale {
    engine_at(
        &backend.url(),
        &backend.sid("3003"),
        mode,
        FailurePolicy::default(),
    )
}

fn engine_with(
    backend: &threescale::emulator::EmulatorHandle,
    mode: Mode,
    policy: FailurePolicy,
) -> ThreeScale {
    engine_at(&backend.url(), "3003", mode, policy)
}

/// The engine in front of the backend at `url`, service `service_id`.
fn engine_at(url: &str, service_id: &str, mode: Mode, policy: FailurePolicy) -> ThreeScale {
    let config = threescale::Config::builder()
        .backend_url(url)
        .service_token("tok-3003", service_id)
        .rule("GET", "/r", "reads", 1)
        .rule("POST", "/w", "writes", 2)
        .mode(mode)
        .failure_policy(policy)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    ThreeScale::new(config).unwrap()
}

/// The request for client `c`, request `i`: a key (some invalid) and a method.
fn pick(c: usize, i: usize) -> (&'static str, &'static str, &'static str) {
    let keys = ["k0", "k1", "k2", "k3", "tight", "bad-key"];
    let key = keys[(c * 7 + i * 3) % keys.len()];
    if (c + i).is_multiple_of(4) {
        (key, "POST", "/w")
    } else {
        (key, "GET", "/r")
    }
}

/// Sends `clients × per_client` requests concurrently; returns what was allowed,
/// per key: metric → total.
async fn load(
    url: &str,
    clients: usize,
    per_client: usize,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let client = reqwest::Client::new();
    let allowed = Arc::new(std::sync::Mutex::new(BTreeMap::<
        String,
        BTreeMap<String, u64>,
    >::new()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, url, allowed) = (client.clone(), url.to_string(), allowed.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let (key, method, path) = pick(c, i);
                let seen = send(&client, method, &format!("{url}{path}?user_key={key}"), &[]).await;
                if seen.status == 200 {
                    let mut allowed = allowed.lock().unwrap();
                    let entry = allowed.entry(key.to_string()).or_default();
                    let (metric, n) = if method == "POST" {
                        ("writes", 2)
                    } else {
                        ("reads", 1)
                    };
                    *entry.entry(metric.to_string()).or_default() += n;
                    *entry.entry("hits".to_string()).or_default() += n;
                } else {
                    assert!(
                        [403, 429, 503].contains(&seen.status),
                        "unexpected {} for {key}: {seen:?}",
                        seen.status
                    );
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(allowed).unwrap().into_inner().unwrap()
}

async fn counted(backend: &Backend) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    backend.settle().await;
    for key in ["k0", "k1", "k2", "k3", "tight"] {
        let u = backend.usage_as_applied("3003", ("user_key", key)).await;
        if !u.is_empty() {
            out.insert(key.to_string(), u);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_allowed_hit_is_reported_exactly_once_through_faults_and_shutdown() {
    for adapter in ADAPTERS {
        let backend = Backend::start(LOAD_BACKEND).await;
        let engine = engine(&backend, cached(300, 50));
        let app = serve(adapter, engine.clone());

        let first = load(&app.url, 16, 60).await;
        let (second, third) = if let Some(emulator) = backend.emulator() {
            // The backend fails every other call and is slow for a while.
            common::faults(emulator, common::Fault::FailShare(0.5)).await;
            let second = load(&app.url, 16, 60).await;
            common::faults(emulator, common::Fault::Latency(Duration::from_millis(100))).await;
            let third = load(&app.url, 8, 40).await;
            common::faults(emulator, common::Fault::Clear).await;
            (second, third)
        } else {
            backend.skip_note("the fault phases");
            (load(&app.url, 16, 60).await, load(&app.url, 8, 40).await)
        };

        drop(app);
        let stats = engine.shutdown().await;
        assert_eq!(stats.dropped, 0, "{adapter:?}");
        assert_eq!(stats.pending_applications, 0, "{adapter:?}: {stats:?}");

        let mut allowed = first;
        for more in [second, third] {
            for (key, metrics) in more {
                let entry = allowed.entry(key).or_default();
                for (metric, n) in metrics {
                    *entry.entry(metric).or_default() += n;
                }
            }
        }
        let tight = allowed.get("tight").map_or(0, |m| m["hits"]);
        if backend.is_apisonator() && tight > 40 {
            // Known: apisonator's worker applies a report a moment after the
            // 202, and a refill in between reads the counter without it, so a
            // single instance may admit past the limit. Every admitted hit is
            // still counted exactly once (asserted below).
            println!(
                "against apisonator: {adapter:?} Cached mode admitted {tight} hits at a limit of 40 (refills read counters the worker had not yet updated)"
            );
        } else {
            assert!(tight <= 40, "{adapter:?}: {allowed:?}");
        }
        assert!(
            allowed.contains_key("k0"),
            "{adapter:?}: something was allowed"
        );
        assert_eq!(
            counted(&backend).await,
            allowed,
            "{adapter:?}: backend counts = allowed usage"
        );
        backend.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_calls_grow_with_applications_not_requests() {
    let backend = Backend::start(LOAD_BACKEND).await;
    let engine = engine(&backend, cached(60_000, 60_000));
    let app = serve(Adapter::Axum, engine.clone());
    let client = reqwest::Client::new();
    // 4 applications, 50 concurrent first requests each, then 100 more each.
    let ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for round in 0..150 {
        for key in ["k0", "k1", "k2", "k3"] {
            let (client, url, ok) = (client.clone(), app.url.clone(), ok.clone());
            tasks.push(tokio::spawn(async move {
                let seen = send(&client, "GET", &format!("{url}/r?user_key={key}"), &[]).await;
                if seen.status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }));
            if round >= 50 && tasks.len() > 64 {
                for t in tasks.drain(..) {
                    t.await.unwrap();
                }
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ok.load(Ordering::Relaxed), 600);
    if let Some(emulator) = backend.emulator() {
        let calls = common::auth_calls(emulator).await;
        assert_eq!(
            calls, 4,
            "one authorize per application (single-flight), not per request"
        );
    }
    let stats = engine.shutdown().await;
    if let Some(emulator) = backend.emulator() {
        assert!(
            common::report_calls(emulator).await <= 1,
            "one report POST for all of it"
        );
    } else {
        backend.skip_note("counting the backend calls");
    }
    assert_eq!(stats.dropped, 0);
    for key in ["k0", "k1", "k2", "k3"] {
        assert_eq!(
            backend.usage("3003", ("user_key", key)).await["reads"],
            150,
            "{key}"
        );
    }
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_429_comes_at_the_backends_count() {
    for mode in [Mode::Sync, cached(60_000, 60_000)] {
        let backend = Backend::start(LOAD_BACKEND).await;
        let sync = matches!(mode, Mode::Sync);
        let engine = engine(&backend, mode);
        let app = serve(Adapter::Axum, engine.clone());
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _ in 0..45 {
            statuses.push(
                send(
                    &client,
                    "GET",
                    &format!("{}/r?user_key=tight", app.url),
                    &[],
                )
                .await
                .status,
            );
            if sync {
                // apisonator counts an authrep in its worker, a moment after
                // answering: the next one must see it.
                backend.settle().await;
            }
        }
        assert!(
            statuses[..40].iter().all(|s| *s == 200),
            "{mode:?}: {statuses:?}"
        );
        assert!(
            statuses[40..].iter().all(|s| *s == 429),
            "{mode:?}: {statuses:?}"
        );
        engine.shutdown().await;
        assert_eq!(
            backend.usage("3003", ("user_key", "tight")).await["hits"],
            40,
            "{mode:?}"
        );
        backend.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_behaviours_on_both_adapters() {
    // (policy, known good, known bad, unknown good) while the backend is down
    // and the entries' TTL has passed; the gateway's `none` is Sync mode.
    let expectations = [
        (
            "closed",
            cached(150, 30),
            FailurePolicy::Closed,
            503,
            503,
            503,
        ),
        (
            "resilient",
            cached(150, 30),
            FailurePolicy::Resilient,
            200,
            403,
            503,
        ),
        ("open", cached(150, 30), FailurePolicy::Open, 200, 403, 200),
        ("none", Mode::Sync, FailurePolicy::Closed, 503, 503, 503),
    ];
    if std::env::var_os(common::APISONATOR_URL).is_some() {
        eprintln!(
            "against apisonator: outage_behaviours_on_both_adapters runs against the emulator (it needs fault injection)"
        );
    }
    for adapter in ADAPTERS {
        for (behaviour, mode, policy, good, bad, unknown) in expectations {
            let backend = emulator_with(LOAD_BACKEND).await;
            let engine = engine_with(&backend, mode, policy);
            let app = serve(adapter, engine.clone());
            let client = reqwest::Client::new();
            let get = |key: &str| format!("{}/r?user_key={key}", app.url);
            assert_eq!(send(&client, "GET", &get("k0"), &[]).await.status, 200);
            assert_eq!(send(&client, "GET", &get("bad-key"), &[]).await.status, 403);
            common::faults(&backend, common::Fault::FailShare(1.0)).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let what = format!("{adapter:?} {behaviour}");
            assert_eq!(
                send(&client, "GET", &get("k0"), &[]).await.status,
                good,
                "{what}: known good"
            );
            assert_eq!(
                send(&client, "GET", &get("bad-key"), &[]).await.status,
                bad,
                "{what}: known bad"
            );
            assert_eq!(
                send(&client, "GET", &get("k1"), &[]).await.status,
                unknown,
                "{what}: unknown"
            );
            common::faults(&backend, common::Fault::Clear).await;
            drop(app);
            engine.shutdown().await;
            // Whatever was allowed, during the outage too, is counted once.
            let expected_k0 = 1 + u64::from(good == 200);
            assert_eq!(
                usage(&backend, "3003", ("user_key", "k0"))
                    .await
                    .get("reads")
                    .copied()
                    .unwrap_or(0),
                expected_k0,
                "{what}"
            );
            let expected_k1 = u64::from(unknown == 200);
            assert_eq!(
                usage(&backend, "3003", ("user_key", "k1"))
                    .await
                    .get("reads")
                    .copied()
                    .unwrap_or(0),
                expected_k1,
                "{what}"
            );
            backend.shutdown().await;
        }
    }
}

/// N instances share one backend. Each counts locally from the counters it saw
/// at its last refill, so together they may admit up to N × limit within a
/// refill window; reports make every admitted hit count exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_instances_stay_within_the_documented_bound() {
    let backend = Backend::start(LOAD_BACKEND).await;
    let instances: Vec<_> = (0..3).map(|_| engine(&backend, cached(200, 50))).collect();
    let apps: Vec<_> = instances
        .iter()
        .map(|e| serve(Adapter::Axum, e.clone()))
        .collect();
    let client = reqwest::Client::new();
    let mut allowed = 0u64;
    for i in 0..200 {
        let app = &apps[i % apps.len()];
        if send(
            &client,
            "GET",
            &format!("{}/r?user_key=tight", app.url),
            &[],
        )
        .await
        .status
            == 200
        {
            allowed += 1;
        }
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    drop(apps);
    for engine in &instances {
        engine.shutdown().await;
    }
    assert!(allowed >= 40, "the limit itself is reachable: {allowed}");
    assert!(allowed <= 3 * 40, "at most instances × limit: {allowed}");
    assert_eq!(
        backend.usage("3003", ("user_key", "tight")).await["hits"],
        allowed
    );
    backend.shutdown().await;
}

/// While the backend is down, an application cached as allowed keeps its
/// cached answer within the TTL under every policy, but a metric the backend
/// has not accepted yet is never admitted from that entry: for it the
/// application is unknown (503, or admitted and checked before it is
/// reported under `Open`). Whatever was admitted is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_metric_on_a_cached_application_during_an_outage_is_an_unknown() {
    for (policy, new_metric) in [
        (FailurePolicy::Closed, 503),
        (FailurePolicy::Resilient, 503),
        (FailurePolicy::Open, 200),
    ] {
        let backend = emulator_with(LOAD_BACKEND).await;
        let engine = engine_with(&backend, cached(60_000, 30), policy);
        let app = serve(Adapter::Axum, engine.clone());
        let client = reqwest::Client::new();
        let read = format!("{}/r?user_key=k0", app.url);
        let write = format!("{}/w?user_key=k0", app.url);
        assert_eq!(send(&client, "GET", &read, &[]).await.status, 200);
        common::faults(&backend, common::Fault::FailShare(1.0)).await;
        assert_eq!(
            send(&client, "GET", &read, &[]).await.status,
            200,
            "{policy:?}: known, within its TTL"
        );
        assert_eq!(
            send(&client, "POST", &write, &[]).await.status,
            new_metric,
            "{policy:?}: a metric not accepted yet"
        );
        common::faults(&backend, common::Fault::Clear).await;
        drop(app);
        engine.shutdown().await;
        let counted = usage(&backend, "3003", ("user_key", "k0")).await;
        assert_eq!(counted.get("reads").copied(), Some(2), "{policy:?}");
        let writes = if new_metric == 200 { Some(2) } else { None };
        assert_eq!(counted.get("writes").copied(), writes, "{policy:?}");
        backend.shutdown().await;
    }
}
