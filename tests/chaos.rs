//! Chaos: the emulator's faults (5xx answers, dropped connections, latency)
//! switched on and off every 200 ms for 20 s, under concurrent load from many
//! applications, Cached mode, on both adapters. After `shutdown()` the usage the
//! emulator counted equals the admitted hits (no report timed out here, so the
//! duplicate bound is zero), nothing is pending, and the process memory stayed
//! bounded.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Adapter, emulator_with, send, serve, usage};
use threescale::emulator::{EmulatorHandle, Faults};
use threescale::{CacheSettings, FailurePolicy, Mode, ThreeScale};

const APPS: usize = 40;
const CLIENTS: usize = 16;
const RUN: Duration = Duration::from_secs(20);
const TOGGLE: Duration = Duration::from_millis(200);

fn backend_yaml() -> String {
    let mut yaml = String::from(
        r#"
services:
  - id: "7007"
    backend_version: "1"
    service_token: "tok-7007"
    metrics:
      - { name: hits }
      - { name: reads, parent: hits }
      - { name: writes, parent: hits }
    plans:
      - name: big
        limits:
          - { metric: hits, period: eternity, value: 1000000000 }
    applications:
"#,
    );
    for i in 0..APPS {
        yaml.push_str(&format!("      - {{ plan: big, user_key: \"app-{i}\" }}\n"));
    }
    yaml
}

/// Resident memory of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn faults_on(round: u64) -> Faults {
    Faults {
        error_share: 0.4,
        drop_share: 0.2,
        latency_range_ms: Some([0, 30]),
        seed: Some(round),
        ..Faults::default()
    }
}

async fn counted(backend: &EmulatorHandle, key: &str) -> BTreeMap<String, u64> {
    let mut out = usage(backend, "7007", ("user_key", key)).await;
    out.remove("hits");
    out
}

async fn chaos(adapter: Adapter, policy: FailurePolicy) {
    let backend = emulator_with(&backend_yaml()).await;
    let config = common::config_for(&backend)
        .service_token("tok-7007", "7007")
        .rule("GET", "/r", "reads", 1)
        .rule("POST", "/w", "writes", 2)
        .mode(Mode::Cached(
            CacheSettings::default()
                .ttl(Duration::from_millis(300))
                .negative_ttl(Duration::from_millis(300))
                .flush_interval(Duration::from_millis(100))
                .max_batch(16),
        ))
        .failure_policy(policy)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let engine = ThreeScale::new(config).unwrap();
    let app = serve(adapter, engine.clone());

    let stop = Arc::new(AtomicBool::new(false));
    // key -> metric -> admitted units.
    let admitted = Arc::new(Mutex::new(BTreeMap::<String, BTreeMap<String, u64>>::new()));
    let requests = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, url) = (client.clone(), app.url.clone());
        let (stop, admitted, requests) = (stop.clone(), admitted.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let n = c * 31 + i * 7;
                // One request in 50 uses a key the backend does not know.
                let key = if n.is_multiple_of(50) {
                    format!("unknown-{}", n % 3)
                } else {
                    format!("app-{}", n % APPS)
                };
                let (method, path, metric, units) = if n.is_multiple_of(5) {
                    ("POST", "/w", "writes", 2)
                } else {
                    ("GET", "/r", "reads", 1)
                };
                let seen = send(&client, method, &format!("{url}{path}?user_key={key}"), &[]).await;
                requests.fetch_add(1, Ordering::Relaxed);
                match seen.status {
                    200 => {
                        let mut admitted = admitted.lock().unwrap();
                        *admitted
                            .entry(key)
                            .or_default()
                            .entry(metric.to_string())
                            .or_default() += units;
                    }
                    403 | 503 => {}
                    other => panic!("unexpected {other} for {key}: {seen:?}"),
                }
            }
        }));
    }

    // Faults on and off every 200 ms; memory sampled meanwhile.
    let started = Instant::now();
    let mut round = 0;
    let mut baseline = None;
    let mut peak = 0;
    while started.elapsed() < RUN {
        round += 1;
        if round % 2 == 1 {
            backend.set_faults(faults_on(round));
        } else {
            backend.clear_faults();
        }
        tokio::time::sleep(TOGGLE).await;
        let rss = rss_kib();
        if started.elapsed() >= Duration::from_secs(2) && baseline.is_none() {
            baseline = Some(rss);
        }
        peak = peak.max(rss);
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    backend.clear_faults();
    drop(app);
    let stats = engine.shutdown().await;

    let admitted = Arc::try_unwrap(admitted).unwrap().into_inner().unwrap();
    let requests = requests.load(Ordering::Relaxed);
    assert!(
        requests > 1000,
        "{adapter:?}: load was applied ({requests} requests)"
    );
    assert!(
        stats.failed_flushes > 0,
        "{adapter:?}: the faults hit the reports: {stats:?}"
    );
    assert_eq!(
        stats.pending_applications, 0,
        "{adapter:?}: nothing pending: {stats:?}"
    );
    assert_eq!(stats.pending_bytes, 0, "{adapter:?}: {stats:?}");
    assert_eq!(stats.dropped, 0, "{adapter:?}: {stats:?}");
    assert_eq!(stats.abandoned, 0, "{adapter:?}: {stats:?}");
    let engine_stats = engine.stats();
    assert!(engine_stats.allowed > 0, "{adapter:?}: {engine_stats:?}");

    let mut total_admitted = 0;
    let mut total_counted = 0;
    for (key, metrics) in &admitted {
        let seen = counted(&backend, key).await;
        total_admitted += metrics.values().sum::<u64>();
        total_counted += seen.values().sum::<u64>();
        if key.starts_with("unknown-") {
            // Admitted during an outage (Open), unknown to the backend: only
            // its own usage is lost.
            assert!(seen.is_empty(), "{adapter:?}: {key}: {seen:?}");
            continue;
        }
        if stats.timed_out_posts == 0 {
            assert_eq!(
                &seen, metrics,
                "{adapter:?}: {key}: counted = admitted ({stats:?})"
            );
        } else {
            // The documented bound: a POST that timed out may be applied twice.
            for (metric, n) in metrics {
                let c = seen.get(metric).copied().unwrap_or(0);
                assert!(
                    *n <= c && c <= 2 * n,
                    "{adapter:?}: {key} {metric}: counted {c}, admitted {n} ({stats:?})"
                );
            }
        }
    }
    let unknown_admitted = admitted.keys().any(|k| k.starts_with("unknown-"));
    if unknown_admitted {
        assert!(stats.unknown_applications > 0, "{adapter:?}: {stats:?}");
    }
    let baseline = baseline.unwrap_or(peak);
    eprintln!(
        "chaos {adapter:?} {policy:?}: {requests} requests, {total_admitted} units admitted, \
         {total_counted} counted; reports {stats:?}; RSS baseline {baseline} KiB, peak {peak} KiB"
    );
    assert!(
        peak <= baseline + 256 * 1024,
        "{adapter:?}: memory bounded: baseline {baseline} KiB, peak {peak} KiB"
    );
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_axum_resilient() {
    chaos(Adapter::Axum, FailurePolicy::Resilient).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_actix_allow() {
    chaos(Adapter::Actix, FailurePolicy::Open).await;
}
