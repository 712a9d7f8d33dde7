//! The load run: `cargo bench --bench load`.
//!
//! Starts the emulator and hello-world servers on 127.0.0.1 (bare axum,
//! protected axum, bare actix, protected actix; the protected ones in Cached
//! and in Sync mode), drives each with the same concurrent HTTP client load,
//! and prints one line per pair:
//!
//! ```text
//! ratio protected/bare axum cached: 0.95  (bare 21000 req/s p50 ... p99 ...; protected ...; backend calls per 10,000 requests: 0.2)
//! ```
//!
//! Sync mode is also compared with the raw authrep round trip (the same client
//! calling the emulator's `authrep.xml` directly): under the same load, and
//! one request at a time, where the middleware's own cost is the protected
//! latency minus the bare latency minus the raw authrep latency.
//!
//! The client is a minimal keep-alive HTTP/1.1 client (one connection per
//! worker), so that the servers, not the client, set the pace.
//!
//! Every server runs on its own runtime thread (axum: a one-worker tokio
//! runtime; actix: one worker), the emulator on another, the client on
//! another; all of them share the machine's cores. Scenarios alternate over
//! rounds so that drift in the machine's load hits every one of them alike.
//!
//! Settings (environment): `LOAD_DURATION_SECS` (3, per scenario and round),
//! `LOAD_WARMUP_SECS` (1), `LOAD_CONCURRENCY` (32), `LOAD_ROUNDS` (2),
//! `LOAD_MAX_REQUESTS` (2,000,000 per measurement), `LOAD_LATENCY_SECS` (2, the
//! one-at-a-time runs), `LOAD_CLIENT_THREADS` (1). The run only prints; with
//! `THREESCALE_BENCH_WRITE=1` it also rewrites `docs/perf.svg` and the load
//! section of `PERFORMANCE.md` (tracked files, so never by default).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use threescale::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use threescale::{CacheSettings, Config, Mode, ThreeScale};

/// A service with applications whose limits no run reaches (eternity periods:
/// cached entries live for their TTL, as with long-period plans).
const BACKEND: &str = r#"
services:
  - id: "9001"
    backend_version: "1"
    service_token: "load-token"
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
    plans:
      - name: unlimited
        limits:
          - { metric: hits, period: eternity, value: 1000000000000000 }
          - { metric: orders, period: eternity, value: 1000000000000000 }
    applications:
      - { plan: unlimited, user_key: "load-key-0" }
      - { plan: unlimited, user_key: "load-key-1" }
      - { plan: unlimited, user_key: "load-key-2" }
      - { plan: unlimited, user_key: "load-key-3" }
"#;

const KEYS: [&str; 4] = ["load-key-0", "load-key-1", "load-key-2", "load-key-3"];

/// The settings of a run.
#[derive(Clone, Copy, Debug)]
struct Settings {
    duration: Duration,
    warmup: Duration,
    concurrency: usize,
    rounds: usize,
    max_requests: u64,
    latency_duration: Duration,
    client_threads: usize,
    write: bool,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        Settings {
            duration: Duration::from_secs_f64(env_or("LOAD_DURATION_SECS", 3.0)),
            warmup: Duration::from_secs_f64(env_or("LOAD_WARMUP_SECS", 1.0)),
            concurrency: env_or("LOAD_CONCURRENCY", 32usize).max(1),
            rounds: env_or("LOAD_ROUNDS", 2usize).max(1),
            max_requests: env_or("LOAD_MAX_REQUESTS", 2_000_000u64).max(1),
            latency_duration: Duration::from_secs_f64(env_or("LOAD_LATENCY_SECS", 2.0)),
            client_threads: env_or("LOAD_CLIENT_THREADS", 1usize).max(1),
            write: env_or("THREESCALE_BENCH_WRITE", 0u8) != 0,
        }
    }
}

// ---------------------------------------------------------------- servers

/// Which web framework serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Framework {
    Axum,
    Actix,
}

impl Framework {
    fn name(self) -> &'static str {
        match self {
            Framework::Axum => "axum",
            Framework::Actix => "actix",
        }
    }
}

/// Bare, or protected in a mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Protection {
    Bare,
    Cached,
    Sync,
}

impl Protection {
    fn name(self) -> &'static str {
        match self {
            Protection::Bare => "bare",
            Protection::Cached => "cached",
            Protection::Sync => "sync",
        }
    }
}

/// What a measurement drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Server(Framework, Protection),
    RawAuthrep,
}

impl Target {
    fn label(self) -> String {
        match self {
            Target::Server(f, p) => format!("{} {}", f.name(), p.name()),
            Target::RawAuthrep => "raw authrep".to_string(),
        }
    }
}

/// A running hello-world server.
struct Server {
    url: String,
    engine: Option<ThreeScale>,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

fn engine(backend_url: &str, protection: Protection) -> Option<ThreeScale> {
    let mode = match protection {
        Protection::Bare => return None,
        Protection::Cached => Mode::Cached(CacheSettings::default()),
        Protection::Sync => Mode::Sync,
    };
    let config = Config::builder()
        .backend_url(backend_url)
        .service_token("load-token", "9001")
        .rule("GET", "/v1/orders/{id}$", "orders", 1)
        .rule("POST", "/v1/orders$", "orders", 1)
        .rule("ANY", "/", "hits", 1)
        .mode(mode)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("config");
    Some(ThreeScale::new(config).expect("engine"))
}

fn start_axum(engine: Option<ThreeScale>, name: &str) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("axum-{name}"))
        .enable_all()
        .build()
        .expect("runtime");
    let router =
        axum::Router::new().route("/v1/orders/{id}", axum::routing::get(|| async { "ok" }));
    let router = match &engine {
        Some(engine) => router.layer(threescale::tower::ThreeScaleLayer::new(engine.clone())),
        None => router,
    };
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        let _ = axum::serve(listener, router).await;
    });
    Server {
        url,
        engine,
        stop: Some(Box::new(move || runtime.shutdown_background())),
    }
}

fn start_actix(engine: Option<ThreeScale>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    let server_engine = engine.clone();
    std::thread::Builder::new()
        .name("actix-system".into())
        .spawn(move || {
            actix_rt::System::new().block_on(async move {
                let hello = || actix_web::web::get().to(|| async { "ok" });
                // The bare app has no middleware at all (not even a disabled one).
                let server = match server_engine {
                    Some(engine) => actix_web::HttpServer::new(move || {
                        actix_web::App::new()
                            .wrap(threescale::actix::ThreeScaleMiddleware::new(engine.clone()))
                            .route("/v1/orders/{id}", hello())
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)
                    .expect("listen")
                    .run(),
                    None => actix_web::HttpServer::new(move || {
                        actix_web::App::new().route("/v1/orders/{id}", hello())
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)
                    .expect("listen")
                    .run(),
                };
                tx.send(server.handle()).expect("handle");
                let _ = server.await;
            })
        })
        .expect("actix thread");
    let handle = rx.recv().expect("actix server starts");
    Server {
        url,
        engine,
        stop: Some(Box::new(move || {
            let _ = std::thread::spawn(move || {
                actix_rt::System::new().block_on(handle.stop(false));
            })
            .join();
        })),
    }
}

// ---------------------------------------------------------------- client

/// What one measurement saw.
#[derive(Clone, Debug, Default)]
struct Sample {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    /// Latencies in microseconds.
    latencies: Vec<u32>,
    backend_calls: u64,
    report_posts: u64,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.backend_calls += other.backend_calls;
        self.report_posts += other.report_posts;
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile_ms(&self, sorted: &[u32], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
    }

    fn summary(&self) -> Summary {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let mean = if sorted.is_empty() {
            0.0
        } else {
            sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / sorted.len() as f64 / 1000.0
        };
        Summary {
            rps: self.rps(),
            p50_ms: self.percentile_ms(&sorted, 50.0),
            p99_ms: self.percentile_ms(&sorted, 99.0),
            mean_ms: mean,
            requests: self.requests,
            errors: self.errors,
            calls_per_10k: self.backend_calls as f64 * 10_000.0 / (self.requests.max(1) as f64),
            report_posts: self.report_posts,
        }
    }
}

/// Aggregated figures of one target.
#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    requests: u64,
    errors: u64,
    calls_per_10k: f64,
    report_posts: u64,
}

/// The path and query the client asks for `target`, per worker.
fn paths(target: Target, concurrency: usize) -> Vec<String> {
    (0..concurrency)
        .map(|w| {
            let key = KEYS[w % KEYS.len()];
            match target {
                Target::Server(..) => format!("/v1/orders/42?user_key={key}"),
                Target::RawAuthrep => format!(
                    "/transactions/authrep.xml?service_token=load-token&service_id=9001&user_key={key}&usage%5Borders%5D=1&usage%5Bhits%5D=1"
                ),
            }
        })
        .collect()
}

/// A keep-alive HTTP/1.1 connection sending one fixed GET again and again.
///
/// The load client is deliberately minimal: a general-purpose client costs
/// more CPU per request than a hello-world server, and on a small machine it
/// would cap bare and protected servers alike at its own rate.
struct Connection {
    addr: std::net::SocketAddr,
    stream: Option<tokio::net::TcpStream>,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl Connection {
    fn new(addr: std::net::SocketAddr, path: &str) -> Self {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: threescale-load\r\nAccept: */*\r\n\r\n"
        )
        .into_bytes();
        Connection {
            addr,
            stream: None,
            request,
            buf: Vec::with_capacity(4096),
        }
    }

    /// One request; `Ok(true)` for a 2xx answer read in full.
    async fn round_trip(&mut self) -> std::io::Result<bool> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if self.stream.is_none() {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let result = async {
            let stream = self.stream.as_mut().expect("connected");
            stream.write_all(&self.request).await?;
            self.buf.clear();
            let eof = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
            let head_end = loop {
                if stream.read_buf(&mut self.buf).await? == 0 {
                    return Err(eof());
                }
                if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
            };
            let head = std::str::from_utf8(&self.buf[..head_end])
                .map_err(|_| std::io::Error::other("non-UTF-8 head"))?;
            let ok = head.starts_with("HTTP/1.1 2");
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .ok_or_else(|| std::io::Error::other("no content-length"))?;
            while self.buf.len() < head_end + length {
                if stream.read_buf(&mut self.buf).await? == 0 {
                    return Err(eof());
                }
            }
            Ok(ok)
        }
        .await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }
}

/// Drives the connections (one worker each) until `duration` has passed or
/// `max_requests` have been sent; records latencies when `record`.
async fn drive(
    connections: Vec<Connection>,
    duration: Duration,
    max_requests: u64,
    record: bool,
) -> (Sample, Vec<Connection>) {
    let started = Instant::now();
    let deadline = started + duration;
    let budget = Arc::new(AtomicU64::new(max_requests));
    let mut workers = Vec::with_capacity(connections.len());
    for mut connection in connections {
        let budget = budget.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(if record { 65_536 } else { 0 });
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline
                && budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                    .is_ok()
            {
                let sent = Instant::now();
                if let Ok(true) = connection.round_trip().await {
                    ok += 1;
                    if record {
                        let micros = sent.elapsed().as_micros().min(u128::from(u32::MAX));
                        latencies.push(micros as u32);
                    }
                } else {
                    errors += 1;
                }
            }
            (ok, errors, latencies, connection)
        }));
    }
    let mut sample = Sample::default();
    let mut connections = Vec::with_capacity(workers.len());
    for worker in workers {
        let (ok, errors, latencies, connection) = worker.await.expect("worker");
        sample.requests += ok;
        sample.errors += errors;
        sample.latencies.extend(latencies);
        connections.push(connection);
    }
    sample.elapsed = started.elapsed();
    (sample, connections)
}

/// Warm-up, then one measured run: one connection per path.
async fn measure(
    addr: std::net::SocketAddr,
    paths: &[String],
    emulator: &EmulatorHandle,
    warmup: Duration,
    duration: Duration,
    max_requests: u64,
) -> Sample {
    let mut connections: Vec<Connection> = paths.iter().map(|p| Connection::new(addr, p)).collect();
    if !warmup.is_zero() {
        connections = drive(connections, warmup, max_requests, false).await.1;
    }
    let auth_calls = |s: threescale::emulator::RequestStats| {
        s.authorize + s.authrep + s.oauth_authorize + s.oauth_authrep
    };
    let before = emulator.stats();
    let (mut sample, _) = drive(connections, duration, max_requests, true).await;
    let after = emulator.stats();
    sample.backend_calls = auth_calls(after) - auth_calls(before);
    sample.report_posts = after.report - before.report;
    sample
}

/// One authrep at a time through the project's `BackendClient`, with the
/// request the Sync engine sends for `GET /v1/orders/42` (usage `orders=1`,
/// `hits=1`, the `limit_headers` and `rejection_reason_header` extensions).
async fn measure_client_authrep(backend_url: &str, warmup: Duration, duration: Duration) -> Sample {
    use threescale::{AppCredentials, AuthRequest, BackendClient, Extensions, ProviderAuth, Usage};
    let client = BackendClient::builder(ProviderAuth::service_token("load-token", "9001"))
        .url(backend_url)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let request = AuthRequest::new(AppCredentials::user_key(KEYS[0]))
        .usage(Usage::default().with("orders", 1).with("hits", 1))
        .extensions(Extensions {
            limit_headers: true,
            rejection_reason_header: true,
            ..Extensions::default()
        });
    one_at_a_time(warmup, duration, || async {
        matches!(client.authrep(&request).await, Ok(answer) if answer.is_authorized())
    })
    .await
}

/// One plain reqwest GET of the raw authrep URL at a time: what the same call
/// costs through a general-purpose Rust HTTP client, without the project's code.
async fn measure_reqwest_authrep(
    backend_url: &str,
    warmup: Duration,
    duration: Duration,
) -> Sample {
    let client = reqwest::Client::new();
    let url = format!("{backend_url}{}", paths(Target::RawAuthrep, 1)[0]);
    let call = || async {
        match client.get(&url).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        }
    };
    one_at_a_time(warmup, duration, call).await
}

/// Calls `call` again and again, one call at a time: for `warmup`, then
/// timing each call for `duration`. A call answers whether it succeeded.
async fn one_at_a_time<F, Fut>(warmup: Duration, duration: Duration, mut call: F) -> Sample
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + warmup;
    while Instant::now() < until {
        call().await;
    }
    let mut sample = Sample::default();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        if call().await {
            sample.requests += 1;
        } else {
            sample.errors += 1;
        }
        sample
            .latencies
            .push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    sample.elapsed = started.elapsed();
    sample
}

// ---------------------------------------------------------------- output

/// Everything a run measured.
struct Results {
    settings: Settings,
    /// Under load (`concurrency` workers).
    load: BTreeMap<Target, Summary>,
    /// One request at a time.
    serial: BTreeMap<Target, Summary>,
    /// One at a time: the same authrep the Sync engine sends, made with the
    /// project's `BackendClient` (reqwest) straight to the emulator.
    client_authrep: Option<Summary>,
    /// One at a time: a plain reqwest GET of the raw authrep URL.
    reqwest_authrep: Option<Summary>,
}

fn ratio_line(results: &Results, framework: Framework, mode: Protection) -> String {
    let bare = results.load[&Target::Server(framework, Protection::Bare)];
    let protected = results.load[&Target::Server(framework, mode)];
    format!(
        "ratio protected/bare {} {}: {:.2}  (bare {:.0} req/s p50 {:.2} ms p99 {:.2} ms; protected {:.0} req/s p50 {:.2} ms p99 {:.2} ms; backend calls per 10,000 requests: {:.1}; {} protected requests, {} report POSTs)",
        framework.name(),
        mode.name(),
        protected.rps / bare.rps,
        bare.rps,
        bare.p50_ms,
        bare.p99_ms,
        protected.rps,
        protected.p50_ms,
        protected.p99_ms,
        protected.calls_per_10k,
        protected.requests,
        protected.report_posts,
    )
}

/// The Sync comparison with the raw authrep round trip.
struct SyncOverhead {
    /// Protected Sync req/s over raw authrep req/s, under load.
    load_ratio: f64,
    /// One at a time: (protected - bare - raw) / raw, mean latencies.
    serial_overhead: f64,
    bare_ms: f64,
    sync_ms: f64,
    raw_ms: f64,
}

fn sync_overhead(results: &Results, framework: Framework) -> SyncOverhead {
    let raw = results.load[&Target::RawAuthrep];
    let sync = results.load[&Target::Server(framework, Protection::Sync)];
    let s_raw = results.serial[&Target::RawAuthrep];
    let s_sync = results.serial[&Target::Server(framework, Protection::Sync)];
    let s_bare = results.serial[&Target::Server(framework, Protection::Bare)];
    SyncOverhead {
        load_ratio: sync.rps / raw.rps,
        serial_overhead: (s_sync.mean_ms - s_bare.mean_ms - s_raw.mean_ms) / s_raw.mean_ms,
        bare_ms: s_bare.mean_ms,
        sync_ms: s_sync.mean_ms,
        raw_ms: s_raw.mean_ms,
    }
}

fn sync_line(results: &Results, framework: Framework) -> String {
    let o = sync_overhead(results, framework);
    format!(
        "sync overhead over raw authrep {}: {:+.1}%  (one at a time, mean: protected {:.3} ms = bare {:.3} ms + raw authrep {:.3} ms + middleware {:.3} ms; under load protected sync/raw authrep req/s: {:.2})",
        framework.name(),
        o.serial_overhead * 100.0,
        o.sync_ms,
        o.bare_ms,
        o.raw_ms,
        o.sync_ms - o.bare_ms - o.raw_ms,
        o.load_ratio,
    )
}

/// Sync against the same authrep made with the project's backend client: the
/// middleware's own share on top of the backend call it cannot avoid.
fn client_sync_overhead(results: &Results, framework: Framework) -> Option<(f64, f64, f64, f64)> {
    let client = results.client_authrep?;
    let s_sync = results
        .serial
        .get(&Target::Server(framework, Protection::Sync))?;
    let s_bare = results
        .serial
        .get(&Target::Server(framework, Protection::Bare))?;
    let middleware = s_sync.mean_ms - s_bare.mean_ms - client.mean_ms;
    Some((
        middleware / client.mean_ms,
        s_sync.mean_ms,
        s_bare.mean_ms,
        client.mean_ms,
    ))
}

fn client_sync_line(results: &Results, framework: Framework) -> Option<String> {
    let (overhead, sync, bare, client) = client_sync_overhead(results, framework)?;
    Some(format!(
        "sync overhead over the backend client's authrep {}: {:+.1}%  (one at a time, mean: protected {:.3} ms = bare {:.3} ms + BackendClient::authrep {:.3} ms + middleware {:.3} ms)",
        framework.name(),
        overhead * 100.0,
        sync,
        bare,
        client,
        sync - bare - client,
    ))
}

/// Cached mode one request at a time: the latency the middleware adds to a
/// request when nothing else competes for the machine.
fn cached_serial(results: &Results, framework: Framework) -> Option<(f64, f64)> {
    let bare = results
        .serial
        .get(&Target::Server(framework, Protection::Bare))?;
    let cached = results
        .serial
        .get(&Target::Server(framework, Protection::Cached))?;
    Some((bare.mean_ms, cached.mean_ms))
}

fn cached_serial_line(results: &Results, framework: Framework) -> Option<String> {
    let (bare, cached) = cached_serial(results, framework)?;
    Some(format!(
        "cached latency one at a time {}: bare {:.1} us, protected {:.1} us, added {:+.1} us",
        framework.name(),
        bare * 1000.0,
        cached * 1000.0,
        (cached - bare) * 1000.0
    ))
}

/// Escapes text for SVG.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A grouped bar chart (bare vs protected per framework and mode) of req/s
/// and p99 latency, as plain SVG (no fonts embedded, no dependencies).
fn chart(results: &Results) -> String {
    const W: f64 = 960.0;
    const H: f64 = 420.0;
    const BARE: &str = "#8c96a8";
    const PROTECTED: &str = "#2f6fd6";
    const RAW: &str = "#d08a2a";
    let groups: Vec<(String, Option<Summary>, Summary, &str)> = [Framework::Axum, Framework::Actix]
        .into_iter()
        .flat_map(|f| {
            [Protection::Cached, Protection::Sync]
                .into_iter()
                .map(move |p| (f, p))
        })
        .map(|(f, p)| {
            (
                format!("{} {}", f.name(), p.name()),
                Some(results.load[&Target::Server(f, Protection::Bare)]),
                results.load[&Target::Server(f, p)],
                PROTECTED,
            )
        })
        .chain(std::iter::once((
            "raw authrep".to_string(),
            None,
            results.load[&Target::RawAuthrep],
            RAW,
        )))
        .collect();

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">threescale-rs load run: bare vs protected ({} concurrent clients, loopback)</text>"#,
        W / 2.0,
        results.settings.concurrency
    );
    type Panel = (&'static str, fn(&Summary) -> f64);
    let panels: [Panel; 2] = [
        ("requests per second (higher is better)", |s| s.rps),
        ("p99 latency, ms (lower is better)", |s| s.p99_ms),
    ];
    let panel_w = (W - 60.0) / 2.0;
    for (pi, (title, value)) in panels.iter().enumerate() {
        let x0 = 40.0 + pi as f64 * (panel_w + 20.0);
        let (top, bottom) = (60.0, H - 70.0);
        let plot_h = bottom - top;
        let max = groups
            .iter()
            .flat_map(|(_, bare, protected, _)| bare.iter().chain(std::iter::once(protected)))
            .map(value)
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.15;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="48" text-anchor="middle" font-size="13">{}</text>"#,
            x0 + panel_w / 2.0,
            esc(title)
        );
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333"/>"##,
            x0 + panel_w
        );
        let group_w = panel_w / groups.len() as f64;
        let bar_w = group_w * 0.32;
        for (gi, (label, bare, protected, color)) in groups.iter().enumerate() {
            let gx = x0 + gi as f64 * group_w;
            let bars: Vec<(f64, &str, f64)> = match bare {
                Some(bare) => vec![
                    (gx + group_w * 0.16, BARE, value(bare)),
                    (gx + group_w * 0.16 + bar_w, color, value(protected)),
                ],
                None => vec![(gx + group_w * 0.5 - bar_w / 2.0, color, value(protected))],
            };
            for (bx, fill, v) in bars {
                let h = plot_h * v / max;
                let text = if pi == 0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                };
                let _ = writeln!(
                    svg,
                    r#"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{fill}"/>"#,
                    bottom - h,
                    bar_w - 2.0
                );
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{text}</text>"#,
                    bx + (bar_w - 2.0) / 2.0,
                    bottom - h - 4.0
                );
            }
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                gx + group_w / 2.0,
                bottom + 16.0,
                esc(label)
            );
        }
    }
    let legend_y = H - 24.0;
    for (i, (fill, name)) in [
        (BARE, "bare"),
        (PROTECTED, "protected (threescale middleware)"),
        (RAW, "emulator authrep called directly"),
    ]
    .iter()
    .enumerate()
    {
        let lx = 60.0 + i as f64 * 260.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{fill}"/><text x="{}" y="{legend_y}">{}</text>"#,
            legend_y - 10.0,
            lx + 18.0,
            esc(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// `nproc`, CPU model, rustc version, date (UTC), load average.
fn machine() -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    out.insert(
        "cores",
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into()),
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    out.insert("cpu", cpu);
    let rustc =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
    out.insert("rustc", rustc);
    out.insert("date", today_utc());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    out.insert("load", load);
    out
}

/// `YYYY-MM-DD` (UTC) from the system clock.
fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

const BEGIN: &str = "<!-- load:begin (written by `cargo bench --bench load`) -->";
const END: &str = "<!-- load:end -->";

/// The load section of PERFORMANCE.md.
fn report(results: &Results) -> String {
    let s = &results.settings;
    let m = machine();
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(out, "### Load run\n");
    let _ = writeln!(
        out,
        "Machine: {} cores, {}; {}; {} (UTC); load average at the end of the run {}.\n",
        m["cores"], m["cpu"], m["rustc"], m["date"], m["load"]
    );
    let _ = writeln!(
        out,
        "Command: `cargo bench --bench load` ({} concurrent clients, {} s per scenario and round after {} s of warm-up, {} rounds; client, servers and emulator share the machine).\n",
        s.concurrency,
        s.duration.as_secs_f64(),
        s.warmup.as_secs_f64(),
        s.rounds
    );
    let _ = writeln!(
        out,
        "| framework | mode | bare req/s | protected req/s | ratio | bare p50 / p99 ms | protected p50 / p99 ms | backend calls per 10,000 requests |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
    for f in [Framework::Axum, Framework::Actix] {
        for p in [Protection::Cached, Protection::Sync] {
            let bare = results.load[&Target::Server(f, Protection::Bare)];
            let prot = results.load[&Target::Server(f, p)];
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | **{:.2}** | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} |",
                f.name(),
                p.name(),
                bare.rps,
                prot.rps,
                prot.rps / bare.rps,
                bare.p50_ms,
                bare.p99_ms,
                prot.p50_ms,
                prot.p99_ms,
                prot.calls_per_10k
            );
        }
    }
    let raw = results.load[&Target::RawAuthrep];
    let _ = writeln!(
        out,
        "| (emulator) | raw authrep | | {:.0} | | | {:.2} / {:.2} | 10,000 |\n",
        raw.rps, raw.p50_ms, raw.p99_ms
    );
    let _ = writeln!(
        out,
        "Sync mode against the raw authrep round trip, one request at a time (mean latency; the middleware's share is protected - bare - raw authrep):\n"
    );
    let _ = writeln!(
        out,
        "| framework | bare ms | raw authrep ms | protected sync ms | middleware ms | overhead over the backend call | protected sync / raw authrep req/s under load |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for f in [Framework::Axum, Framework::Actix] {
        let o = sync_overhead(results, f);
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | **{:+.1}%** | {:.2} |",
            f.name(),
            o.bare_ms,
            o.raw_ms,
            o.sync_ms,
            o.sync_ms - o.bare_ms - o.raw_ms,
            o.serial_overhead * 100.0,
            o.load_ratio
        );
    }
    if let (Some(client), Some(plain)) = (results.client_authrep, results.reqwest_authrep) {
        let _ = writeln!(
            out,
            "\nThe backend call through a general-purpose client costs more than through the load client: a plain reqwest GET of the raw authrep URL takes {:.3} ms, the same authrep made with the project's `BackendClient` (reqwest, plus request building, the `3scale-options` extensions and the XML parse) {:.3} ms. On top of that call, the middleware's share:\n",
            plain.mean_ms, client.mean_ms
        );
        let _ = writeln!(
            out,
            "| framework | BackendClient::authrep ms | middleware ms | overhead over the backend call |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for f in [Framework::Axum, Framework::Actix] {
            if let Some((overhead, sync, bare, client)) = client_sync_overhead(results, f) {
                let _ = writeln!(
                    out,
                    "| {} | {:.3} | {:.3} | **{:+.1}%** |",
                    f.name(),
                    client,
                    sync - bare - client,
                    overhead * 100.0
                );
            }
        }
    }
    let cached: Vec<_> = [Framework::Axum, Framework::Actix]
        .into_iter()
        .filter_map(|f| cached_serial(results, f).map(|c| (f, c)))
        .collect();
    if !cached.is_empty() {
        let _ = writeln!(
            out,
            "\nCached mode one request at a time (mean latency, nothing else competing): what the middleware adds to one request.\n"
        );
        let _ = writeln!(out, "| framework | bare us | protected us | added us |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for (f, (bare, prot)) in cached {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | **{:+.1}** |",
                f.name(),
                bare * 1000.0,
                prot * 1000.0,
                (prot - bare) * 1000.0
            );
        }
    }
    let errors: u64 = results
        .load
        .values()
        .chain(results.serial.values())
        .map(|s| s.errors)
        .sum();
    let _ = writeln!(
        out,
        "\nFailed requests: {errors}. Chart: [docs/perf.svg](docs/perf.svg).\n\n![bare vs protected](docs/perf.svg)\n"
    );
    let _ = writeln!(out, "{END}");
    out
}

/// Replaces the load section of PERFORMANCE.md (or appends it).
fn write_files(results: &Results) -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("docs/perf.svg"), chart(results))?;
    let path = root.join("PERFORMANCE.md");
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Performance\n\n".into());
    let section = report(results);
    let updated = match (current.find(BEGIN), current.find(END)) {
        (Some(begin), Some(end)) if end > begin => format!(
            "{}{}{}",
            &current[..begin],
            section.trim_end(),
            &current[end + END.len()..]
        ),
        _ => format!("{}\n{section}", current.trim_end()),
    };
    std::fs::write(path, updated)
}

// ---------------------------------------------------------------- main

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: stay quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: run with `cargo bench --bench load`");
        return;
    }
    let settings = Settings::from_env();
    println!(
        "load: {} concurrent clients, {:.1} s per scenario and round (+{:.1} s warm-up), {} rounds, {:.1} s one-at-a-time runs",
        settings.concurrency,
        settings.duration.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        settings.rounds,
        settings.latency_duration.as_secs_f64()
    );

    let emulator_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("emulator")
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = emulator_rt
        .block_on(Emulator::start(
            EmulatorConfig::from_yaml_str(BACKEND).expect("emulator config"),
        ))
        .expect("emulator starts");
    let backend_url = emulator.url();

    let mut servers: BTreeMap<Target, Server> = BTreeMap::new();
    for framework in [Framework::Axum, Framework::Actix] {
        for protection in [Protection::Bare, Protection::Cached, Protection::Sync] {
            let engine = engine(&backend_url, protection);
            let server = match framework {
                Framework::Axum => start_axum(engine, protection.name()),
                Framework::Actix => start_actix(engine),
            };
            servers.insert(Target::Server(framework, protection), server);
        }
    }

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .thread_name("load-client")
        .enable_all()
        .build()
        .expect("runtime");
    let mut targets: Vec<Target> = vec![Target::RawAuthrep];
    targets.extend(servers.keys().copied());
    let addr_of = |target: Target| -> std::net::SocketAddr {
        let url = match target {
            Target::RawAuthrep => backend_url.clone(),
            other => servers[&other].url.clone(),
        };
        url.trim_start_matches("http://").parse().expect("address")
    };

    let mut load: BTreeMap<Target, Sample> = BTreeMap::new();
    let mut serial: BTreeMap<Target, Sample> = BTreeMap::new();
    let mut client_authrep: Option<Sample> = None;
    let mut reqwest_authrep: Option<Sample> = None;
    let serial_targets: Vec<Target> = vec![
        Target::RawAuthrep,
        Target::Server(Framework::Axum, Protection::Bare),
        Target::Server(Framework::Axum, Protection::Cached),
        Target::Server(Framework::Axum, Protection::Sync),
        Target::Server(Framework::Actix, Protection::Bare),
        Target::Server(Framework::Actix, Protection::Cached),
        Target::Server(Framework::Actix, Protection::Sync),
    ];
    for round in 0..settings.rounds {
        // Alternate the order between rounds.
        let mut order = targets.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for &target in &order {
            let sample = client_rt.block_on(measure(
                addr_of(target),
                &paths(target, settings.concurrency),
                &emulator,
                settings.warmup,
                settings.duration,
                settings.max_requests,
            ));
            let s = sample.summary();
            println!(
                "  round {} {:<14} {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}  backend calls {}",
                round + 1,
                target.label(),
                s.rps,
                s.p50_ms,
                s.p99_ms,
                s.errors,
                sample.backend_calls
            );
            load.entry(target).or_default().merge(sample);
        }
        if !settings.latency_duration.is_zero() {
            for &target in &serial_targets {
                let sample = client_rt.block_on(measure(
                    addr_of(target),
                    &paths(target, 1),
                    &emulator,
                    settings.warmup.min(Duration::from_millis(500)),
                    settings.latency_duration,
                    settings.max_requests,
                ));
                serial.entry(target).or_default().merge(sample);
            }
            // In the same rounds as the Sync servers, so drift hits both alike.
            let sample = client_rt.block_on(measure_client_authrep(
                &backend_url,
                settings.warmup.min(Duration::from_millis(500)),
                settings.latency_duration,
            ));
            client_authrep
                .get_or_insert_with(Sample::default)
                .merge(sample);
            let sample = client_rt.block_on(measure_reqwest_authrep(
                &backend_url,
                settings.warmup.min(Duration::from_millis(500)),
                settings.latency_duration,
            ));
            reqwest_authrep
                .get_or_insert_with(Sample::default)
                .merge(sample);
        }
    }

    let client_authrep = client_authrep.map(|sample| sample.summary());
    let reqwest_authrep = reqwest_authrep.map(|sample| sample.summary());
    let results = Results {
        settings,
        load: load.iter().map(|(t, s)| (*t, s.summary())).collect(),
        serial: serial.iter().map(|(t, s)| (*t, s.summary())).collect(),
        client_authrep,
        reqwest_authrep,
    };
    println!();
    for framework in [Framework::Axum, Framework::Actix] {
        for mode in [Protection::Cached, Protection::Sync] {
            println!("{}", ratio_line(&results, framework, mode));
        }
    }
    if !results.serial.is_empty() {
        for framework in [Framework::Axum, Framework::Actix] {
            println!("{}", sync_line(&results, framework));
        }
        for framework in [Framework::Axum, Framework::Actix] {
            if let Some(line) = client_sync_line(&results, framework) {
                println!("{line}");
            }
        }
        for framework in [Framework::Axum, Framework::Actix] {
            if let Some(line) = cached_serial_line(&results, framework) {
                println!("{line}");
            }
        }
    }
    let raw = results.load[&Target::RawAuthrep];
    println!(
        "raw authrep (emulator called directly): {:.0} req/s p50 {:.2} ms p99 {:.2} ms",
        raw.rps, raw.p50_ms, raw.p99_ms
    );
    if let (Some(client), Some(plain)) = (results.client_authrep, results.reqwest_authrep) {
        println!(
            "one authrep at a time, mean: load client {:.3} ms, plain reqwest GET {:.3} ms, BackendClient::authrep {:.3} ms",
            results.serial[&Target::RawAuthrep].mean_ms,
            plain.mean_ms,
            client.mean_ms
        );
    }
    if settings.write && !results.serial.is_empty() {
        match write_files(&results) {
            Ok(()) => println!("wrote docs/perf.svg and the load section of PERFORMANCE.md"),
            Err(e) => eprintln!("could not write the report: {e}"),
        }
    } else if !results.serial.is_empty() {
        println!(
            "docs/perf.svg and PERFORMANCE.md left as they are (THREESCALE_BENCH_WRITE=1 writes them)"
        );
    }

    // Stop everything: servers, engines (final reports), emulator.
    let engines: Vec<ThreeScale> = servers.values().filter_map(|s| s.engine.clone()).collect();
    drop(servers);
    client_rt.block_on(async {
        for engine in engines {
            engine.shutdown().await;
        }
    });
    emulator_rt.block_on(emulator.shutdown());
}
