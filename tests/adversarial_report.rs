//! Reporting under adversarial conditions: nothing lost, nothing counted twice.
//!
//! Real axum and actix servers in front of the engine, against the emulator or
//! small misbehaving backends written here (all on 127.0.0.1):
//! - an unknown application admitted during an outage loses only its own usage;
//! - a report split into several POSTs retries only the POST that failed;
//! - a backend that applies a report and answers after the timeout gets each
//!   POST at most twice;
//! - a report endpoint answering 503 gets attempts that grow with time, not with
//!   the request rate;
//! - requests racing `shutdown()` are either reported or refused with 503.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{ADAPTERS, Fault, emulator_with, faults, send, serve, usage};
use threescale::{CacheSettings, Config, FailurePolicy, Mode, ThreeScale};

const BACKEND: &str = r#"
services:
  - id: "5005"
    backend_version: "1"
    service_token: "tok-5005"
    metrics:
      - { name: hits }
      - { name: reads, parent: hits }
    plans:
      - name: big
        limits:
          - { metric: hits, period: eternity, value: 100000000 }
    applications:
      - { plan: big, user_key: "k0" }
      - { plan: big, user_key: "k1" }
      - { plan: big, user_key: "k2" }
      - { plan: big, user_key: "k3" }
"#;

fn cached(flush_ms: u64) -> Mode {
    Mode::Cached(
        CacheSettings::default()
            .ttl(Duration::from_millis(300))
            .negative_ttl(Duration::from_millis(300))
            .flush_interval(Duration::from_millis(flush_ms)),
    )
}

fn emulator_engine(
    backend: &threescale::emulator::EmulatorHandle,
    mode: Mode,
    policy: FailurePolicy,
) -> ThreeScale {
    let config = common::config_for(backend)
        .service_token("tok-5005", "5005")
        .rule("GET", "/r", "reads", 1)
        .mode(mode)
        .failure_policy(policy)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    ThreeScale::new(config).unwrap()
}

async fn reads(backend: &threescale::emulator::EmulatorHandle, key: &str) -> u64 {
    usage(backend, "5005", ("user_key", key))
        .await
        .get("reads")
        .copied()
        .unwrap_or(0)
}

// ---------------------------------------------------------------- item 4

/// During an outage, valid applications and one unknown key are admitted
/// (`FailurePolicy::Open`, in Sync and Cached mode). After
/// recovery the valid applications' usage is counted exactly once: the unknown
/// key (which makes the backend discard a whole batch) loses only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unconfirmed_unknown_application_loses_only_its_own_usage() {
    let modes = [
        ("sync fail-open", Mode::Sync, FailurePolicy::Open),
        ("cached open", cached(100), FailurePolicy::Open),
    ];
    for adapter in ADAPTERS {
        for (name, mode, policy) in modes {
            let backend = emulator_with(BACKEND).await;
            let engine = emulator_engine(&backend, mode, policy);
            let app = serve(adapter, engine.clone());
            let client = reqwest::Client::new();

            faults(&backend, Fault::FailShare(1.0)).await;
            let mut admitted = BTreeMap::<&str, u64>::new();
            for round in 0..5 {
                for key in ["k0", "k1", "k2", "k3", "no-such-key"] {
                    if key == "k3" && round > 1 {
                        continue;
                    }
                    let seen = send(
                        &client,
                        "GET",
                        &format!("{}/r?user_key={key}", app.url),
                        &[],
                    )
                    .await;
                    assert_eq!(
                        seen.status, 200,
                        "{adapter:?} {name}: {key} admitted: {seen:?}"
                    );
                    *admitted.entry(key).or_default() += 1;
                }
            }
            // Reports fail while the outage lasts; nothing is lost.
            let _ = engine.flush().await;
            faults(&backend, Fault::Clear).await;

            drop(app);
            let stats = engine.shutdown().await;
            for key in ["k0", "k1", "k2", "k3"] {
                assert_eq!(
                    reads(&backend, key).await,
                    admitted[key],
                    "{adapter:?} {name}: {key} counted exactly once ({stats:?})"
                );
            }
            assert_eq!(
                stats.unknown_applications, 1,
                "{adapter:?} {name}: {stats:?}"
            );
            assert_eq!(
                stats.pending_applications, 0,
                "{adapter:?} {name}: {stats:?}"
            );
            backend.shutdown().await;
        }
    }
}

/// During an outage a known application is admitted on a rule whose metric the
/// backend does not know (`FailurePolicy::Open`). That usage
/// would make the backend discard the whole batch it travels in: it is checked
/// before batching and dropped alone, and the other applications' usage is
/// counted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_metric_admitted_during_an_outage_loses_only_its_own_usage() {
    let modes = [
        ("sync fail-open", Mode::Sync, FailurePolicy::Open),
        ("cached open", cached(100), FailurePolicy::Open),
    ];
    for adapter in ADAPTERS {
        for (name, mode, policy) in modes {
            let backend = emulator_with(BACKEND).await;
            let config = common::config_for(&backend)
                .service_token("tok-5005", "5005")
                .rule("GET", "/r", "reads", 1)
                .rule("GET", "/ghost", "no_such_metric", 1)
                .mode(mode)
                .failure_policy(policy)
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            let engine = ThreeScale::new(config).unwrap();
            let app = serve(adapter, engine.clone());
            let client = reqwest::Client::new();

            faults(&backend, Fault::FailShare(1.0)).await;
            for _ in 0..3 {
                for (key, path) in [("k0", "/r"), ("k1", "/r"), ("k2", "/ghost")] {
                    let seen = send(
                        &client,
                        "GET",
                        &format!("{}{path}?user_key={key}", app.url),
                        &[],
                    )
                    .await;
                    assert_eq!(
                        seen.status, 200,
                        "{adapter:?} {name}: {key}{path}: {seen:?}"
                    );
                }
            }
            let _ = engine.flush().await;
            faults(&backend, Fault::Clear).await;

            drop(app);
            let stats = engine.shutdown().await;
            for key in ["k0", "k1"] {
                assert_eq!(
                    reads(&backend, key).await,
                    3,
                    "{adapter:?} {name}: {key} counted exactly once ({stats:?})"
                );
            }
            assert_eq!(
                stats.unknown_applications, 1,
                "{adapter:?} {name}: the unknown metric's usage is dropped alone: {stats:?}"
            );
            assert_eq!(
                stats.pending_applications, 0,
                "{adapter:?} {name}: {stats:?}"
            );
            backend.shutdown().await;
        }
    }
}

// --------------------------------------------------- a fake report backend

/// What the fake backend does with report POST number `n` (from 1).
#[derive(Clone, Copy, Debug)]
enum OnReport {
    /// Applies and answers 202, except POST number 2: 503, not applied.
    SecondFails,
    /// Applies at once, answers 202 after the delay.
    ApplyThenAnswerLate(Duration),
    /// Always 503, never applies.
    Always503,
}

#[derive(Default)]
struct FakeState {
    posts: AtomicU64,
    applied_transactions: AtomicU64,
    /// The sum of every usage value applied.
    applied_units: AtomicU64,
}

struct Fake {
    url: String,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const AUTHORIZED: &str = r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><plan>Basic</plan></status>"#;

/// (transactions, sum of usage values) of a report body.
fn parse_report(body: &str) -> (u64, u64) {
    let mut indexes = std::collections::BTreeSet::new();
    let mut units = 0;
    for pair in body.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let key = key.replace("%5B", "[").replace("%5D", "]");
        let Some(rest) = key.strip_prefix("transactions[") else {
            continue;
        };
        let Some((index, field)) = rest.split_once(']') else {
            continue;
        };
        indexes.insert(index.to_string());
        if field.starts_with("[usage]") {
            units += value.parse::<u64>().unwrap_or(0);
        }
    }
    (indexes.len() as u64, units)
}

async fn fake_backend(on_report: OnReport) -> Fake {
    use axum::routing::{get, post};
    let state = Arc::new(FakeState::default());
    let report_state = state.clone();
    let app = axum::Router::new()
        .route(
            "/transactions/authorize.xml",
            get(|| async {
                (
                    [("content-type", "application/vnd.3scale-v2.0+xml")],
                    AUTHORIZED,
                )
            }),
        )
        .route(
            "/transactions.xml",
            post(move |body: String| {
                let state = report_state.clone();
                async move {
                    let n = state.posts.fetch_add(1, Ordering::SeqCst) + 1;
                    let apply = |state: &FakeState| {
                        let (transactions, units) = parse_report(&body);
                        state
                            .applied_transactions
                            .fetch_add(transactions, Ordering::SeqCst);
                        state.applied_units.fetch_add(units, Ordering::SeqCst);
                    };
                    match on_report {
                        OnReport::SecondFails if n == 2 => http::StatusCode::SERVICE_UNAVAILABLE,
                        OnReport::SecondFails => {
                            apply(&state);
                            http::StatusCode::ACCEPTED
                        }
                        OnReport::ApplyThenAnswerLate(delay) => {
                            apply(&state);
                            tokio::time::sleep(delay).await;
                            http::StatusCode::ACCEPTED
                        }
                        OnReport::Always503 => http::StatusCode::SERVICE_UNAVAILABLE,
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fake { url, state, task }
}

fn fake_engine(
    fake: &Fake,
    metrics: usize,
    settings: CacheSettings,
    timeout: Duration,
) -> ThreeScale {
    let mut builder = Config::builder()
        .backend_url(fake.url.clone())
        .service_token("tok", "42");
    for m in 0..metrics {
        builder = builder.rule("GET", "/x", &format!("m{m}"), 1);
    }
    let config = builder
        .mode(Mode::Cached(settings))
        .timeout(timeout)
        .build()
        .unwrap();
    ThreeScale::new(config).unwrap()
}

/// Sends one request for each of `keys` (`concurrency` at a time); returns how
/// many were admitted.
async fn hit_each(url: &str, keys: impl Iterator<Item = String>, concurrency: usize) -> u64 {
    use futures_util::StreamExt;
    let client = reqwest::Client::new();
    futures_util::stream::iter(keys)
        .map(|key| {
            let client = client.clone();
            let url = format!("{url}/x?user_key={key}");
            async move { send(&client, "GET", &url, &[]).await.status }
        })
        .buffer_unordered(concurrency)
        .filter(|status| std::future::ready(*status == 200))
        .count()
        .await as u64
}

// ---------------------------------------------------------------- item 5

/// 400 applications × 10 metrics need two POSTs (parameter limit). The first
/// is accepted, the second fails: the retry sends the second POST only, so the
/// backend applies every transaction exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn split_report_retries_only_the_post_that_failed() {
    for adapter in ADAPTERS {
        let fake = fake_backend(OnReport::SecondFails).await;
        let settings = CacheSettings::default().flush_interval(Duration::from_secs(3600));
        let engine = fake_engine(&fake, 10, settings, Duration::from_secs(5));
        let app = serve(adapter, engine.clone());
        let admitted = hit_each(&app.url, (0..400).map(|i| format!("app-{i}")), 16).await;
        assert_eq!(admitted, 400, "{adapter:?}");

        let first = engine.flush().await;
        assert!(first.is_err(), "{adapter:?}: the second POST failed");
        assert_eq!(
            fake.state.posts.load(Ordering::SeqCst),
            2,
            "{adapter:?}: split in two"
        );
        engine.flush().await.expect("retry accepted");
        drop(app);
        let stats = engine.shutdown().await;

        assert_eq!(
            fake.state.applied_transactions.load(Ordering::SeqCst),
            400,
            "{adapter:?}: each application's transaction applied once ({stats:?})"
        );
        assert_eq!(
            fake.state.applied_units.load(Ordering::SeqCst),
            admitted * 10,
            "{adapter:?}: every admitted hit counted once"
        );
        assert_eq!(stats.pending_applications, 0, "{adapter:?}: {stats:?}");
    }
}

// ---------------------------------------------------------------- item 6

/// The report endpoint applies each POST at once and answers after the
/// client's timeout. Each POST is applied at most twice (the documented bound:
/// one duplicate per POST that timed out), not once per timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_answers_duplicate_each_post_at_most_once() {
    for adapter in ADAPTERS {
        let fake = fake_backend(OnReport::ApplyThenAnswerLate(Duration::from_millis(900))).await;
        let settings = CacheSettings::default().flush_interval(Duration::from_millis(100));
        let engine = fake_engine(&fake, 1, settings, Duration::from_millis(250));
        let app = serve(adapter, engine.clone());

        let mut admitted = 0;
        let started = std::time::Instant::now();
        let mut round = 0;
        while started.elapsed() < Duration::from_millis(1500) {
            admitted += hit_each(&app.url, (0..20).map(|i| format!("app-{i}")), 8).await;
            round += 1;
        }
        assert!(round > 1 && admitted > 0, "{adapter:?}");
        // Several flush intervals and timeouts pass.
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(app);
        let stats = engine.shutdown().await;

        let applied = fake.state.applied_units.load(Ordering::SeqCst);
        eprintln!(
            "{adapter:?}: late answers: {admitted} hits admitted, {applied} applied, {} POSTs ({stats:?})",
            fake.state.posts.load(Ordering::SeqCst)
        );
        assert!(
            stats.timed_out_posts > 0,
            "{adapter:?}: timeouts happened: {stats:?}"
        );
        assert!(
            applied >= admitted,
            "{adapter:?}: nothing lost: applied {applied}, admitted {admitted}"
        );
        assert!(
            applied <= 2 * admitted,
            "{adapter:?}: at most one duplicate per timed-out POST: applied {applied}, admitted {admitted} ({stats:?})"
        );
        assert_eq!(stats.pending_applications, 0, "{adapter:?}: {stats:?}");
    }
}

// ---------------------------------------------------------------- item 7

/// Many distinct applications (several full batches) and a report endpoint
/// answering 503: the POSTs in 3 s follow the backoff, whatever the request rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_reports_back_off_whatever_the_request_rate() {
    for adapter in ADAPTERS {
        let fake = fake_backend(OnReport::Always503).await;
        let settings = CacheSettings::default()
            .flush_interval(Duration::from_millis(200))
            .max_batch(10);
        let engine = fake_engine(&fake, 1, settings, Duration::from_secs(2));
        let app = serve(adapter, engine.clone());

        let mut requests = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            requests += hit_each(&app.url, (0..300).map(|i| format!("app-{i}")), 16).await;
        }
        let posts = fake.state.posts.load(Ordering::SeqCst);
        eprintln!("{adapter:?}: 503 storm: {posts} report POSTs for {requests} requests in 3 s");
        assert!(requests > 600, "{adapter:?}: load was applied ({requests})");
        // 200 ms, then doubling: about 5 attempts in 3 s, one POST each.
        assert!(
            (2..=12).contains(&posts),
            "{adapter:?}: {posts} report POSTs for {requests} requests in 3 s"
        );
        drop(app);
        // Let the test end without waiting for the reports.
        let stats = engine.stats();
        assert!(
            stats.reports.pending_applications >= 300,
            "{adapter:?}: kept: {stats:?}"
        );
        engine.shutdown().await;
    }
}

// ---------------------------------------------------------------- item 8

/// Concurrent load while `shutdown()` runs: every 200 answer is counted by the
/// backend, and requests after shutdown began are refused with 503. Both modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_under_load_reports_every_admitted_hit() {
    let modes = [cached(50), Mode::Sync];
    for (adapter, mode) in ADAPTERS.into_iter().flat_map(|a| modes.map(|m| (a, m))) {
        let backend = emulator_with(BACKEND).await;
        let engine = emulator_engine(&backend, mode, FailurePolicy::Closed);
        let label = format!("{adapter:?} {mode:?}");
        let app = serve(adapter, engine.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let admitted = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for c in 0..16 {
            let (client, url) = (client.clone(), app.url.clone());
            let (stop, admitted, refused) = (stop.clone(), admitted.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let key = ["k0", "k1", "k2", "k3"][(c + i) % 4];
                    i += 1;
                    let seen = send(&client, "GET", &format!("{url}/r?user_key={key}"), &[]).await;
                    match seen.status {
                        200 => {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                        503 => {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                        other => panic!("unexpected {other}: {seen:?}"),
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        let stats = engine.shutdown().await;
        // Load goes on after shutdown.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.unwrap();
        }
        drop(app);

        let mut counted = 0;
        for key in ["k0", "k1", "k2", "k3"] {
            counted += reads(&backend, key).await;
        }
        let admitted = admitted.load(Ordering::SeqCst);
        assert!(admitted > 0, "{label}");
        assert_eq!(
            counted, admitted,
            "{label}: backend usage = admitted responses ({stats:?})"
        );
        assert!(
            refused.load(Ordering::SeqCst) > 0,
            "{label}: requests after shutdown are refused"
        );
        assert_eq!(engine.stats().reports.pending_applications, 0, "{label}");
        backend.shutdown().await;
    }
}

/// After shutdown, a request gets the configured 503 with the reason
/// `shutting_down`, on both adapters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_after_shutdown_are_refused_with_503() {
    for adapter in ADAPTERS {
        let backend = emulator_with(BACKEND).await;
        let engine = emulator_engine(&backend, cached(50), FailurePolicy::Open);
        let app = serve(adapter, engine.clone());
        let client = reqwest::Client::new();
        let url = format!("{}/r?user_key=k0", app.url);
        assert_eq!(send(&client, "GET", &url, &[]).await.status, 200);
        engine.shutdown().await;
        let seen = send(&client, "GET", &url, &[]).await;
        assert_eq!(seen.status, 503, "{adapter:?}: {seen:?}");
        let outcome = engine
            .check(&threescale::SimpleRequest::get("/r?user_key=k0"))
            .await;
        match outcome.decision {
            threescale::Decision::Deny(denial) => {
                assert_eq!(denial.kind, threescale::DenialKind::BackendUnavailable);
                assert_eq!(denial.reason.as_deref(), Some("shutting_down"));
            }
            other => panic!("{adapter:?}: {other:?}"),
        }
        drop(app);
        assert_eq!(reads(&backend, "k0").await, 1, "{adapter:?}");
        backend.shutdown().await;
    }
}
