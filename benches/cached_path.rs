//! The cached path near its limit: `cargo bench --bench cached_path`.
//!
//! Prints two sets of figures for an allowed request decided from a warm
//! cache (Cached mode), with no tracing subscriber and no metrics recorder:
//!
//! - **Heap allocations per request**, counted by this binary's global
//!   allocator on the calling thread: `engine.begin` plus dropping its
//!   outcome (the engine's whole work, usage recorded for the batcher
//!   included), and a request through `ThreeScaleLayer` around a
//!   `service_fn` and around an axum `Router`, each against the same bare
//!   service (the figure is protected minus bare). Target: at most 2.
//! - **Time per decision against the number of applications in the cache**
//!   (1, 1,000, 10,000 and 100,000, each one filled by a real `authorize` to
//!   the emulator), requests cycling through every application in a shuffled
//!   order so that the cache's size shows. Median of `CACHED_PATH_ROUNDS`
//!   rounds (7) of `CACHED_PATH_ITERATIONS` (200,000) decisions, as the
//!   calling thread's CPU time (what the decision costs; the emulator and the
//!   report batcher run on other threads, and more applications mean more
//!   report transactions for them) and as elapsed time. Target: the
//!   100,000-application figure within 20% of the one-application figure.
//!
//! `CACHED_PATH_MAX_APPS` (100,000) lowers the largest size for a quick run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::{Request, Response};
use threescale::emulator::{
    ApplicationConfig, EmulatedService, Emulator, EmulatorConfig, LimitPeriod, PlanConfig,
};
use threescale::tower::ThreeScaleLayer;
use threescale::{CacheSettings, Config, Decision, Mode, SimpleRequest, Step, ThreeScale};
use tower::{Layer, ServiceExt};

/// Counts the allocations made on each thread (a `const` thread local needs
/// no allocation of its own).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations per call of `f`, averaged over `n` calls after a warm-up.
fn allocations_per_call(n: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let before = allocations();
    for _ in 0..n {
        f();
    }
    (allocations() - before) as f64 / n as f64
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn user_key(i: usize) -> String {
    format!("bench-user-key-{i:08}-0123456789abcdef")
}

/// One service whose plan's limits no run reaches (eternity periods: an entry
/// lives for its TTL), with `apps` applications.
fn backend(apps: usize) -> EmulatorConfig {
    let mut service = EmulatedService::new("9001")
        .backend_version("1")
        .service_token("bench-token")
        .metric("hits")
        .child_metric("orders", "hits")
        .child_metric("search", "hits")
        .plan(
            PlanConfig::new("unlimited")
                .limit("hits", LimitPeriod::Eternity, 1_000_000_000_000_000)
                .limit("orders", LimitPeriod::Eternity, 1_000_000_000_000_000),
        );
    for i in 0..apps {
        service = service.application(ApplicationConfig::with_user_key("unlimited", user_key(i)));
    }
    EmulatorConfig::builder()
        .service(service)
        .build()
        .expect("emulator config")
}

fn new_engine(backend_url: &str) -> ThreeScale {
    let config = Config::builder()
        .backend_url(backend_url)
        .service_token("bench-token", "9001")
        .rule("GET", "/v1/orders/{id}$", "orders", 1)
        .rule("POST", "/v1/orders$", "orders", 1)
        .rule("GET", "/v1/search?q={q}", "search", 1)
        .rule("ANY", "/", "hits", 1)
        .mode(Mode::Cached(
            CacheSettings::default()
                .ttl(Duration::from_secs(3600))
                .capacity(1_000_000)
                .max_bytes(4 << 30),
        ))
        .build()
        .expect("config");
    ThreeScale::new(config).expect("engine")
}

fn uri(i: usize) -> String {
    format!("/v1/orders/42?user_key={}&fields=id,total", user_key(i))
}

fn simple(i: usize) -> SimpleRequest {
    SimpleRequest::get(&uri(i))
        .header("host", "api.example.com")
        .header("user-agent", "bench/1.0")
        .header("accept", "application/json")
}

fn http_request(uri: &str) -> Request<axum::body::Body> {
    Request::get(uri)
        .header("host", "api.example.com")
        .header("user-agent", "bench/1.0")
        .header("accept", "application/json")
        .body(axum::body::Body::empty())
        .expect("request")
}

fn decided(engine: &ThreeScale, request: &SimpleRequest) {
    match engine.begin(black_box(request)) {
        Step::Done(outcome) => {
            assert!(matches!(outcome.decision, Decision::Allow(_)), "allowed");
            drop(black_box(outcome));
        }
        Step::Pending(_) => panic!("not in the cache"),
    }
}

fn ready<B>(response: Option<Result<Response<B>, Infallible>>) {
    let response = response.expect("decided in the first poll").expect("ok");
    assert_eq!(response.status(), 200);
    drop(black_box(response));
}

/// A deterministic shuffle (xorshift), so runs visit entries alike.
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// The calling thread's CPU time (user and system).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to write.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "thread CPU clock");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn main() {
    let rounds: usize = env_or("CACHED_PATH_ROUNDS", 7);
    let iterations: usize = env_or("CACHED_PATH_ITERATIONS", 200_000);
    let max_apps: usize = env_or("CACHED_PATH_MAX_APPS", 100_000);
    let sizes: Vec<usize> = [1, 1_000, 10_000, 100_000]
        .into_iter()
        .filter(|n| *n <= max_apps.max(1))
        .collect();
    let largest = *sizes.last().expect("a size");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = rt
        .block_on(Emulator::start(backend(largest)))
        .expect("emulator starts");
    let _guard = rt.enter();

    // Allocations, one application.
    let engine = new_engine(&emulator.url());
    let request = simple(0);
    rt.block_on(engine.check(&request));
    let per_begin = allocations_per_call(100_000, || decided(&engine, &request));
    let hello = tower::service_fn(|_req: Request<axum::body::Body>| async {
        Ok::<_, Infallible>(Response::new("ok"))
    });
    let hello_protected = ThreeScaleLayer::new(engine.clone()).layer(hello);
    let router =
        axum::Router::new().route("/v1/orders/{id}", axum::routing::get(|| async { "ok" }));
    let router_protected = router.clone().layer(ThreeScaleLayer::new(engine.clone()));
    let target = uri(0);
    // The request itself is built outside the count: it is the same for both.
    let through = |service: &dyn Fn(Request<axum::body::Body>)| {
        let mut requests: Vec<_> = (0..101_000).map(|_| http_request(&target)).collect();
        allocations_per_call(100_000, || service(requests.pop().expect("request")))
    };
    let bare_fn = through(&|req| ready(hello.oneshot(req).now_or_never()));
    let protected_fn = through(&|req| ready(hello_protected.clone().oneshot(req).now_or_never()));
    let bare_router = through(&|req| ready(router.clone().oneshot(req).now_or_never()));
    let protected_router =
        through(&|req| ready(router_protected.clone().oneshot(req).now_or_never()));
    println!("allocations per allowed cached request (target <= 2):");
    println!("  engine.begin + outcome dropped: {per_begin:.2}");
    println!(
        "  tower service_fn: bare {bare_fn:.2}, protected {protected_fn:.2}, added {:.2}",
        protected_fn - bare_fn
    );
    println!(
        "  axum Router: bare {bare_router:.2}, protected {protected_router:.2}, added {:.2}",
        protected_router - bare_router
    );
    rt.block_on(engine.shutdown());

    // Time per decision against the cache's size.
    println!(
        "time per cached decision (engine.begin), {rounds} rounds of {iterations} decisions, median [min-max]; thread CPU, then elapsed:"
    );
    let mut first = None;
    for &apps in &sizes {
        let engine = new_engine(&emulator.url());
        let requests: Vec<SimpleRequest> = shuffled(apps).into_iter().map(simple).collect();
        let fill = Instant::now();
        rt.block_on(async {
            for request in &requests {
                engine.check(request).await;
            }
        });
        let fill = fill.elapsed();
        assert_eq!(engine.stats().backend_calls, apps as u64, "one fill each");
        let mut cpu = Vec::new();
        let mut elapsed = Vec::new();
        for _ in 0..rounds {
            let (start, start_cpu) = (Instant::now(), thread_cpu());
            for i in 0..iterations {
                decided(&engine, &requests[i % apps]);
            }
            cpu.push((thread_cpu() - start_cpu).as_nanos() as f64 / iterations as f64);
            elapsed.push(start.elapsed().as_nanos() as f64 / iterations as f64);
        }
        assert_eq!(
            engine.stats().backend_calls,
            apps as u64,
            "no backend call while timing"
        );
        let (mid, low, high) = median(cpu);
        let (wall, wall_low, wall_high) = median(elapsed);
        let base = *first.get_or_insert(mid);
        println!(
            "  {apps:>7} applications: cpu {mid:.0} ns [{low:.0}-{high:.0}], {:.2}x one application; elapsed {wall:.0} ns [{wall_low:.0}-{wall_high:.0}] (filled in {:.1} s)",
            mid / base,
            fill.as_secs_f64()
        );
        rt.block_on(engine.shutdown());
    }
    drop(_guard);
    rt.block_on(emulator.shutdown());
}
