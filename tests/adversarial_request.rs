//! Requests built to get past the middleware, on both adapters and, where the
//! cache plays a part, in both modes: over-long or control-character
//! credentials under fail-open, bypass paths that are prefixes of other paths,
//! paths and queries the mapping rules and the framework's router read
//! differently, guessed debug tokens, short keys in backend messages and OAuth
//! access tokens in debug output.
//!
//! Each test checks the status, whether the handler ran, which metric the
//! emulator counted, and that the backend was not called when it must not be.
//! Paths are sent over a raw TCP connection, byte for byte: an HTTP client
//! library would resolve `..` and `%2e%2e` before sending.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ADAPTERS, Adapter, auth_calls, emulator, emulator_with, send, usage};
use threescale::{
    AppCredentials, AuthRequest, BackendClient, BackendVersion, CacheSettings, Config,
    ConfigBuilder, Decision, DenialKind, FailurePolicy, Mode, ProviderAuth, SimpleRequest, Step,
    ThreeScale,
};

// ---------------------------------------------------------------------------
// Harness: an app with real routes, raw requests, fake backends.

/// A protected app with real routes, counting the handler runs.
struct RoutedApp {
    url: String,
    reached: Arc<AtomicUsize>,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for RoutedApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

impl RoutedApp {
    fn reached(&self) -> usize {
        self.reached.load(Ordering::SeqCst)
    }
}

/// Routes `GET /orders/{id}`, `GET /reports/{id}`, `GET /search` and
/// `GET /health`; anything else is 404 `no route` (not counted as reached).
fn serve_routes(adapter: Adapter, engine: ThreeScale) -> RoutedApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reached = Arc::new(AtomicUsize::new(0));
    let stop: Box<dyn FnOnce() + Send> = match adapter {
        Adapter::Axum => {
            use axum::{extract::Path, routing::get};
            listener.set_nonblocking(true).unwrap();
            let (r1, r2, r3, r4) = (
                reached.clone(),
                reached.clone(),
                reached.clone(),
                reached.clone(),
            );
            let app = axum::Router::new()
                .route(
                    "/orders/{id}",
                    get(move |Path(id): Path<String>| async move {
                        r1.fetch_add(1, Ordering::SeqCst);
                        format!("order {id}")
                    }),
                )
                .route(
                    "/reports/{id}",
                    get(move |Path(id): Path<String>| async move {
                        r2.fetch_add(1, Ordering::SeqCst);
                        format!("report {id}")
                    }),
                )
                .route(
                    "/search",
                    get(move || async move {
                        r3.fetch_add(1, Ordering::SeqCst);
                        "search"
                    }),
                )
                .route(
                    "/health",
                    get(move || async move {
                        r4.fetch_add(1, Ordering::SeqCst);
                        "healthy"
                    }),
                )
                .fallback(|| async { (http::StatusCode::NOT_FOUND, "no route") })
                .layer(threescale::tower::ThreeScaleLayer::new(engine));
            let task = tokio::spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await
            });
            Box::new(move || task.abort())
        }
        Adapter::Actix => {
            use actix_web::{HttpResponse, web};
            let (tx, rx) = std::sync::mpsc::channel();
            let counter = reached.clone();
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = actix_web::HttpServer::new(move || {
                        let (r1, r2, r3, r4) = (
                            counter.clone(),
                            counter.clone(),
                            counter.clone(),
                            counter.clone(),
                        );
                        actix_web::App::new()
                            .wrap(threescale::actix::ThreeScaleMiddleware::new(engine.clone()))
                            .route(
                                "/orders/{id}",
                                web::get().to(move |id: web::Path<String>| {
                                    let r = r1.clone();
                                    async move {
                                        r.fetch_add(1, Ordering::SeqCst);
                                        format!("order {id}")
                                    }
                                }),
                            )
                            .route(
                                "/reports/{id}",
                                web::get().to(move |id: web::Path<String>| {
                                    let r = r2.clone();
                                    async move {
                                        r.fetch_add(1, Ordering::SeqCst);
                                        format!("report {id}")
                                    }
                                }),
                            )
                            .route(
                                "/search",
                                web::get().to(move || {
                                    let r = r3.clone();
                                    async move {
                                        r.fetch_add(1, Ordering::SeqCst);
                                        "search"
                                    }
                                }),
                            )
                            .route(
                                "/health",
                                web::get().to(move || {
                                    let r = r4.clone();
                                    async move {
                                        r.fetch_add(1, Ordering::SeqCst);
                                        "healthy"
                                    }
                                }),
                            )
                            .default_service(web::to(|| async {
                                HttpResponse::NotFound().body("no route")
                            }))
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
            Box::new(move || {
                std::thread::spawn(move || {
                    actix_rt::System::new().block_on(handle.stop(false));
                });
            })
        }
    };
    RoutedApp {
        url,
        reached,
        stop: Some(stop),
    }
}

/// What a raw request got back.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// Sends `GET <target>` exactly as written, on its own connection.
async fn raw_get(base_url: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
    let addr = base_url.trim_start_matches("http://").to_string();
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("read");
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        Raw {
            status,
            head: head.to_string(),
            body,
        }
    })
    .await
    .unwrap()
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A backend that answers every request with `status`, `content_type` and
/// `body`, and counts the requests it receives.
async fn fake_backend(status: u16, content_type: &str, body: &str) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let content_type = content_type.to_string();
    let body = body.to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        let content_type = content_type.clone();
        let body = body.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (
                http::StatusCode::from_u16(status).unwrap(),
                [(http::header::CONTENT_TYPE, content_type)],
                body,
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

/// The two settings under which a backend failure admits requests.
fn admitting_modes() -> [(&'static str, Mode, FailurePolicy); 2] {
    [
        ("sync, fail open", Mode::Sync, FailurePolicy::Open),
        (
            "cached, fail open",
            Mode::Cached(CacheSettings::default()),
            FailurePolicy::Open,
        ),
    ]
}

fn user_key_service(builder: ConfigBuilder) -> ConfigBuilder {
    builder
        .service_token("tok-1001", "1001")
        .rule("ANY", "/", "hits", 1)
        .rule("GET", "/orders/{id}$", "orders", 5)
        .rule("GET", "/search?q={q}", "search", 1)
        .timeout(Duration::from_millis(2000))
}

fn app_id_service(builder: ConfigBuilder) -> ConfigBuilder {
    builder
        .service_token("tok-2002", "2002")
        .backend_version(BackendVersion::AppId)
        .rule("ANY", "/", "hits", 1)
        .rule("GET", "/orders/{id}$", "orders", 5)
        .timeout(Duration::from_millis(2000))
}

// ---------------------------------------------------------------------------
// 1. Over-long credentials under fail-open.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_credentials_are_refused_without_a_backend_call_even_when_failures_admit() {
    let emu = emulator().await;
    let long = "!".repeat(25 * 1024);
    for adapter in ADAPTERS {
        for (name, mode, policy) in admitting_modes() {
            for (service, target) in [
                (
                    user_key_service as fn(ConfigBuilder) -> ConfigBuilder,
                    format!("/orders/1?user_key={long}"),
                ),
                (
                    app_id_service,
                    format!("/orders/1?app_id=app1&app_key={long}"),
                ),
            ] {
                let engine = ThreeScale::new(
                    service(common::config_for(&emu))
                        .mode(mode)
                        .failure_policy(policy)
                        .build()
                        .unwrap(),
                )
                .unwrap();
                let app = serve_routes(adapter, engine.clone());
                let calls_before = auth_calls(&emu).await;
                let seen = raw_get(&app.url, &target, &[]).await;
                assert_eq!(seen.status, 403, "{adapter:?} {name}: {}", seen.head);
                assert_eq!(seen.body, "Authentication failed", "{adapter:?} {name}");
                assert_eq!(app.reached(), 0, "{adapter:?} {name}: handler reached");
                assert_eq!(
                    auth_calls(&emu).await,
                    calls_before,
                    "{adapter:?} {name}: backend called"
                );
                assert_eq!(engine.stats().degraded, 0, "{adapter:?} {name}");
                engine.flush().await.ok();
            }
        }
    }
    // The victim of the app_id attack was billed nothing.
    assert!(usage(&emu, "2002", ("app_id", "app1")).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_with_control_characters_are_refused_without_a_backend_call() {
    let emu = emulator().await;
    for adapter in ADAPTERS {
        for (name, mode, policy) in admitting_modes() {
            let engine = ThreeScale::new(
                user_key_service(common::config_for(&emu))
                    .mode(mode)
                    .failure_policy(policy)
                    .build()
                    .unwrap(),
            )
            .unwrap();
            let app = serve_routes(adapter, engine.clone());
            for key in ["uk-basic%0A", "uk-basic%00", "%7Fuk-basic", "uk%C2%85basic"] {
                let calls_before = auth_calls(&emu).await;
                let seen = raw_get(&app.url, &format!("/orders/1?user_key={key}"), &[]).await;
                assert_eq!(seen.status, 403, "{adapter:?} {name} {key}: {}", seen.head);
                assert_eq!(app.reached(), 0, "{adapter:?} {name} {key}");
                assert_eq!(
                    auth_calls(&emu).await,
                    calls_before,
                    "{adapter:?} {name} {key}"
                );
            }
            // The same key without the control character works.
            let seen = raw_get(&app.url, "/orders/1?user_key=uk-basic", &[]).await;
            assert_eq!(seen.status, 200, "{adapter:?} {name}: {}", seen.head);
            assert_eq!(app.reached(), 1, "{adapter:?} {name}");
            engine.flush().await.ok();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_too_large_to_send_is_the_request_s_fault_not_an_outage() {
    let (url, received) = fake_backend(200, "application/xml", "<status/>").await;
    let client = BackendClient::builder(ProviderAuth::service_token("tok", "1"))
        .url(&url)
        .build()
        .unwrap();
    let key = "!".repeat(25 * 1024);
    let err = client
        .authrep(&AuthRequest::new(AppCredentials::user_key(key.as_str())))
        .await
        .expect_err("a URI that long cannot be sent");
    assert!(!err.is_unavailable(), "counted as an outage: {err}");
    assert!(!err.to_string().contains("!!!!"), "{err}");
    assert_eq!(received.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_4xx_answers_are_refusals_whatever_their_body() {
    for (status, content_type, body) in [
        (
            414,
            "text/html",
            "<html><body>414 Request-URI Too Large</body></html>",
        ),
        (431, "text/plain", ""),
        (400, "text/plain", "Bad Request"),
        (
            403,
            "application/xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><error code="user_key_invalid">user key "k" is invalid</error>"#,
        ),
    ] {
        let (url, received) = fake_backend(status, content_type, body).await;
        for adapter in ADAPTERS {
            for (name, mode, policy) in admitting_modes() {
                let engine = ThreeScale::new(
                    user_key_service(Config::builder().backend_url(&url))
                        .mode(mode)
                        .failure_policy(policy)
                        .build()
                        .unwrap(),
                )
                .unwrap();
                let app = serve_routes(adapter, engine.clone());
                let before = received.load(Ordering::SeqCst);
                let seen = raw_get(&app.url, "/orders/1?user_key=uk-basic", &[]).await;
                assert_eq!(
                    seen.status, 403,
                    "{adapter:?} {name} {status}: {}",
                    seen.head
                );
                assert_eq!(app.reached(), 0, "{adapter:?} {name} {status}");
                assert!(
                    received.load(Ordering::SeqCst) > before,
                    "asked the backend"
                );
                assert_eq!(engine.stats().degraded, 0, "{adapter:?} {name} {status}");
                assert_eq!(engine.stats().backend_failures, 0, "{adapter:?} {name}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Bypass paths match whole segments of the path the rules see.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypass_paths_match_whole_segments_only() {
    let emu = emulator().await;
    for adapter in ADAPTERS {
        let engine = ThreeScale::new(
            user_key_service(common::config_for(&emu))
                .bypass_path("/health")
                .build()
                .unwrap(),
        )
        .unwrap();
        let app = common::serve(adapter, engine.clone());
        for path in ["/health", "/health/", "/health/live"] {
            let seen = raw_get(&app.url, path, &[]).await;
            assert_eq!(seen.status, 200, "{adapter:?} {path}: bypassed");
            assert_eq!(seen.body, "ok", "{adapter:?} {path}");
        }
        for path in ["/healthcare/42", "/health-admin/secret", "/healthz"] {
            let seen = raw_get(&app.url, path, &[]).await;
            assert_eq!(seen.status, 401, "{adapter:?} {path}: {}", seen.head);
            assert_ne!(seen.body, "ok", "{adapter:?} {path}: handler reached");
        }
        // Ways out of /health into a protected path: refused before anything.
        for path in [
            "/health/../orders/1",
            "/health/%2e%2e/orders/1",
            "/health/%2E%2E/orders/1",
            "/health%2F..%2Forders%2F1",
            "/health/./../orders/1",
        ] {
            let calls_before = auth_calls(&emu).await;
            let seen = raw_get(&app.url, path, &[]).await;
            assert_eq!(seen.status, 400, "{adapter:?} {path}: {}", seen.head);
            assert_eq!(seen.body, "Bad request", "{adapter:?} {path}");
            assert_eq!(auth_calls(&emu).await, calls_before, "{adapter:?} {path}");
        }
        // A longer name is protected and counted like any other path.
        let seen = raw_get(&app.url, "/healthcare/42?user_key=uk-basic", &[]).await;
        assert_eq!(seen.status, 200, "{adapter:?}");
        assert_eq!(seen.body, "ok");
    }
    assert_eq!(
        usage(&emu, "1001", ("user_key", "uk-basic"))
            .await
            .get("hits"),
        Some(&2),
        "one hit per adapter for /healthcare/42"
    );
}

// ---------------------------------------------------------------------------
// 3. The metric counted is the one for the route the framework serves.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_paths_are_refused_before_any_backend_call() {
    let emu = emulator().await;
    for adapter in ADAPTERS {
        for (name, mode) in [
            ("sync", Mode::Sync),
            ("cached", Mode::Cached(CacheSettings::default())),
        ] {
            let engine = ThreeScale::new(
                user_key_service(common::config_for(&emu))
                    .mode(mode)
                    .build()
                    .unwrap(),
            )
            .unwrap();
            let app = serve_routes(adapter, engine.clone());
            for path in [
                "/orders/1%2F",
                "/orders/a%2Fb",
                "/orders/%2e",
                "/orders/%2e%2e",
                "/orders/%2E",
                "/reports/..%2Fq1",
                "/reports/%2e%2e%2forders%2f1",
                "/orders//1",
                "//orders/1",
                "/orders/./1",
                "/reports/x/../../orders/1",
                "/%6Frders/1",
                "/orders/%zz",
            ] {
                let calls_before = auth_calls(&emu).await;
                let target = format!("{path}?user_key=uk-basic");
                let seen = raw_get(&app.url, &target, &[]).await;
                assert_eq!(seen.status, 400, "{adapter:?} {name} {path}: {}", seen.head);
                assert_eq!(seen.body, "Bad request", "{adapter:?} {name} {path}");
                assert!(
                    seen.head
                        .to_ascii_lowercase()
                        .contains("content-type: text/plain"),
                    "{adapter:?} {name} {path}: {}",
                    seen.head
                );
                assert_eq!(
                    app.reached(),
                    0,
                    "{adapter:?} {name} {path}: handler reached"
                );
                assert_eq!(
                    auth_calls(&emu).await,
                    calls_before,
                    "{adapter:?} {name} {path}: backend called"
                );
            }
            engine.flush().await.ok();
        }
    }
    assert!(
        usage(&emu, "1001", ("user_key", "uk-basic"))
            .await
            .is_empty(),
        "nothing counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metric_counted_is_the_one_of_the_route_served() {
    let emu = emulator().await;
    for adapter in ADAPTERS {
        let engine =
            ThreeScale::new(user_key_service(common::config_for(&emu)).build().unwrap()).unwrap();
        let app = serve_routes(adapter, engine.clone());
        let before = usage(&emu, "1001", ("user_key", "uk-basic")).await;
        // Encoded characters that need encoding are fine, and counted as the route.
        for path in ["/orders/1", "/orders/caf%C3%A9", "/orders/a%20b"] {
            let seen = raw_get(&app.url, &format!("{path}?user_key=uk-basic"), &[]).await;
            assert_eq!(seen.status, 200, "{adapter:?} {path}: {}", seen.head);
            assert!(seen.body.starts_with("order "), "{adapter:?} {path}");
        }
        let after = usage(&emu, "1001", ("user_key", "uk-basic")).await;
        let orders = |u: &std::collections::BTreeMap<String, u64>| *u.get("orders").unwrap_or(&0);
        assert_eq!(
            orders(&after) - orders(&before),
            15,
            "{adapter:?}: 3 × orders 5"
        );
        assert_eq!(app.reached(), 3, "{adapter:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_is_read_whole_or_refused() {
    let emu = emulator().await;
    let filler = |n: usize| {
        (0..n)
            .map(|i| format!("f{i}=1"))
            .collect::<Vec<_>>()
            .join("&")
    };
    for adapter in ADAPTERS {
        let engine =
            ThreeScale::new(user_key_service(common::config_for(&emu)).build().unwrap()).unwrap();
        let app = serve_routes(adapter, engine.clone());
        // The condition `q` as the 101st argument: refused, nobody counts or serves it.
        let calls_before = auth_calls(&emu).await;
        let target = format!("/search?user_key=uk-basic&{}&q=x", filler(99));
        let seen = raw_get(&app.url, &target, &[]).await;
        assert_eq!(seen.status, 400, "{adapter:?}: {}", seen.head);
        assert_eq!(seen.body, "Bad request");
        assert_eq!(app.reached(), 0, "{adapter:?}");
        assert_eq!(auth_calls(&emu).await, calls_before, "{adapter:?}");
        // As the 100th, it is read and counted.
        let target = format!("/search?user_key=uk-basic&{}&q=x", filler(98));
        let seen = raw_get(&app.url, &target, &[]).await;
        assert_eq!(seen.status, 200, "{adapter:?}: {}", seen.head);
        assert_eq!(app.reached(), 1, "{adapter:?}");
    }
    assert_eq!(
        usage(&emu, "1001", ("user_key", "uk-basic"))
            .await
            .get("search"),
        Some(&2)
    );
}

// ---------------------------------------------------------------------------
// 12. The debug token.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_headers_need_the_exact_token() {
    let emu = emulator().await;
    let client = reqwest::Client::new();
    for adapter in ADAPTERS {
        let engine =
            ThreeScale::new(user_key_service(common::config_for(&emu)).build().unwrap()).unwrap();
        let app = common::serve(adapter, engine.clone());
        let url = format!("{}/orders/1?user_key=uk-basic", app.url);
        for guess in ["tok-100", "tok-1000", "tok-10011", "TOK-1001", "", "x"] {
            let seen = send(&client, "GET", &url, &[("X-3scale-Debug", guess)]).await;
            assert_eq!(seen.status, 200, "{adapter:?} {guess:?}");
            assert_eq!(
                seen.header("x-3scale-credentials"),
                None,
                "{adapter:?} {guess:?}"
            );
        }
        let seen = send(&client, "GET", &url, &[("X-3scale-Debug", "tok-1001")]).await;
        assert_eq!(
            seen.header("x-3scale-credentials"),
            Some("user_key=uk-basic"),
            "{adapter:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 13. Redaction masks whole values, not parts of words.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_key_does_not_mask_the_backend_s_error_code() {
    let emu = emulator().await;
    for (name, mode) in [
        ("sync", Mode::Sync),
        ("cached", Mode::Cached(CacheSettings::default())),
    ] {
        let engine = ThreeScale::new(
            user_key_service(common::config_for(&emu))
                .mode(mode)
                .build()
                .unwrap(),
        )
        .unwrap();
        for key in ["k", "e", "user", "invalid"] {
            let outcome = engine
                .check(&SimpleRequest::get(&format!("/orders/1?user_key={key}")))
                .await;
            let Decision::Deny(denial) = outcome.decision else {
                panic!("{name} {key}: {:?}", outcome.decision);
            };
            assert_eq!(denial.kind, DenialKind::AuthFailed, "{name} {key}");
            assert_eq!(
                denial.reason.as_deref(),
                Some("user_key_invalid"),
                "{name} {key}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 14. The OAuth access token is a secret wherever it travels.

const OAUTH_BACKEND: &str = r#"
services:
  - id: "3003"
    backend_version: "oauth"
    service_token: "tok-3003"
    metrics:
      - { name: hits }
    plans:
      - name: pro
        limits:
          - { metric: hits, period: hour, value: 1000 }
    applications:
      - { plan: pro, app_id: "client-1", app_keys: ["secret-1"], state: active }
"#;

const ACCESS_TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJhenAiOiJjbGllbnQtMSJ9.S3CR3T-SIGNATURE";

fn oauth_engine(url: &str, mode: Mode) -> ThreeScale {
    let config = Config::builder()
        .backend_url(url)
        .service_token("tok-3003", "3003")
        .backend_version(BackendVersion::OAuth)
        .mode(mode)
        .build()
        .unwrap();
    ThreeScale::with_token_verifier(config, |token| {
        (token == ACCESS_TOKEN).then(|| "client-1".to_string())
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_token_shows_in_no_header_and_no_debug_output() {
    let emu = emulator_with(OAUTH_BACKEND).await;
    let client = reqwest::Client::new();
    let bearer = format!("Bearer {ACCESS_TOKEN}");
    for adapter in ADAPTERS {
        for (name, mode) in [
            ("sync", Mode::Sync),
            ("cached", Mode::Cached(CacheSettings::default())),
        ] {
            let engine = oauth_engine(&emu.url(), mode);
            let app = common::serve(adapter, engine.clone());
            let seen = send(
                &client,
                "GET",
                &format!("{}/orders/1", app.url),
                &[
                    ("Authorization", bearer.as_str()),
                    ("X-3scale-Debug", "tok-3003"),
                ],
            )
            .await;
            assert_eq!(seen.status, 200, "{adapter:?} {name}: {seen:?}");
            let shown = format!("{:?}", seen.headers);
            assert!(!shown.contains("S3CR3T"), "{adapter:?} {name}: {shown}");
            assert_eq!(
                seen.header("x-3scale-credentials"),
                Some("app_id=client-1"),
                "{adapter:?} {name}"
            );
            // Neither the engine's steps nor its outcome show the token.
            let request = SimpleRequest::get("/orders/1").header("Authorization", bearer.as_str());
            let step = engine.begin(&request);
            let shown = format!("{step:?}");
            assert!(!shown.contains("S3CR3T"), "{name}: {shown}");
            let outcome = match step {
                Step::Done(outcome) => outcome,
                Step::Pending(pending) => pending.run().await,
            };
            let shown = format!("{outcome:?}");
            assert!(!shown.contains("S3CR3T"), "{name}: {shown}");
            assert!(matches!(outcome.decision, Decision::Allow(_)), "{name}");
            engine.flush().await.ok();
        }
    }
}

// ---------------------------------------------------------------------------
// Settings: raised limits, the gateway's normalise-then-match, the 400 response.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_credential_limit_still_never_turns_an_unsendable_call_into_an_outage() {
    let (url, received) = fake_backend(503, "text/plain", "down").await;
    let long = "!".repeat(25 * 1024);
    for adapter in ADAPTERS {
        for (name, mode, policy) in admitting_modes() {
            let engine = ThreeScale::new(
                user_key_service(Config::builder().backend_url(&url))
                    .max_credential_len(64 * 1024)
                    .mode(mode)
                    .failure_policy(policy)
                    .build()
                    .unwrap(),
            )
            .unwrap();
            let app = serve_routes(adapter, engine.clone());
            let seen = raw_get(&app.url, &format!("/orders/1?user_key={long}"), &[]).await;
            assert_eq!(seen.status, 403, "{adapter:?} {name}: {}", seen.head);
            assert_eq!(app.reached(), 0, "{adapter:?} {name}");
            assert_eq!(engine.stats().degraded, 0, "{adapter:?} {name}");
        }
    }
    assert_eq!(received.load(Ordering::SeqCst), 0, "nothing could be sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowered_limits_apply_to_keys_and_tokens() {
    let emu = emulator_with(OAUTH_BACKEND).await;
    let config = Config::builder()
        .backend_url(emu.url())
        .service_token("tok-3003", "3003")
        .backend_version(BackendVersion::OAuth)
        .max_token_len(ACCESS_TOKEN.len() - 1)
        .build()
        .unwrap();
    let verified = Arc::new(AtomicUsize::new(0));
    let counter = verified.clone();
    let engine = ThreeScale::with_token_verifier(config, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Some("client-1".to_string())
    })
    .unwrap();
    let request = SimpleRequest::get("/").header("Authorization", format!("Bearer {ACCESS_TOKEN}"));
    let outcome = engine.check(&request).await;
    assert!(
        matches!(&outcome.decision, Decision::Deny(d) if d.kind == DenialKind::AuthFailed),
        "{:?}",
        outcome.decision
    );
    assert_eq!(
        verified.load(Ordering::SeqCst),
        0,
        "the verifier never saw it"
    );
    assert_eq!(auth_calls(&emu).await, 0);

    let emu = emulator().await;
    let engine = ThreeScale::new(
        user_key_service(common::config_for(&emu))
            .max_credential_len(7)
            .build()
            .unwrap(),
    )
    .unwrap();
    let outcome = engine
        .check(&SimpleRequest::get("/?user_key=uk-basic"))
        .await;
    assert!(matches!(&outcome.decision, Decision::Deny(d) if d.kind == DenialKind::AuthFailed));
    assert_eq!(auth_calls(&emu).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_normalise_policy_keeps_the_gateway_s_matching_and_the_400_is_configurable() {
    let emu = emulator().await;
    for adapter in ADAPTERS {
        let engine = ThreeScale::new(
            user_key_service(common::config_for(&emu))
                .path_policy(threescale::PathPolicy::Normalise)
                .bypass_path("/health")
                .build()
                .unwrap(),
        )
        .unwrap();
        let app = serve_routes(adapter, engine.clone());
        // Normalised as the gateway does: not bypassed, counted as the orders route.
        let seen = raw_get(&app.url, "/health/../orders/1?user_key=uk-basic", &[]).await;
        assert_ne!(seen.status, 400, "{adapter:?}: {}", seen.head);
        let seen = raw_get(&app.url, "/health/../orders/1", &[]).await;
        assert_eq!(seen.status, 401, "{adapter:?}: not bypassed");

        let engine = ThreeScale::new(
            user_key_service(common::config_for(&emu))
                .error_response(
                    DenialKind::BadRequest,
                    threescale::ErrorResponse::new(http::StatusCode::NOT_FOUND, "{}")
                        .content_type("application/json"),
                )
                .build()
                .unwrap(),
        )
        .unwrap();
        let app = serve_routes(adapter, engine.clone());
        let seen = raw_get(&app.url, "/orders/%2e%2e?user_key=uk-small", &[]).await;
        assert_eq!(seen.status, 404, "{adapter:?}: {}", seen.head);
        assert_eq!(seen.body, "{}");
        assert!(seen.head.to_ascii_lowercase().contains("application/json"));
    }
    assert_eq!(
        usage(&emu, "1001", ("user_key", "uk-basic"))
            .await
            .get("orders"),
        Some(&10),
        "/health/../orders/1 counted as orders on each adapter"
    );
}
