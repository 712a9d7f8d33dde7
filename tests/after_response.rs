//! After the response: each response's status reported with the usage
//! (`log[code]`, `response_codes`), and usage a handler adds once it knows the
//! work done (`AddedUsage`). Both adapters, both modes, counted at the
//! emulator: every hit exactly once, added usage only for the application the
//! request was allowed for, a handler's panic loses no hit.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;

use threescale::emulator::{AppRef, Emulator, EmulatorConfig, EmulatorHandle};
use threescale::{AddedUsage, CacheSettings, Config, Mode, ThreeScale, Usage};

use common::{Adapter, App};

const BACKEND: &str = r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tok-1001"
    metrics:
      - { name: hits }
      - { name: documents }
    plans:
      - name: basic
        limits:
          - { metric: hits, period: minute, value: 1000 }
    applications:
      - { plan: basic, user_key: "uk-a" }
      - { plan: basic, user_key: "uk-b" }
"#;

async fn emulator() -> EmulatorHandle {
    Emulator::start(EmulatorConfig::from_yaml_str(BACKEND).unwrap())
        .await
        .unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sync,
    Cached,
}

fn engine(emulator: &EmulatorHandle, kind: Kind, response_codes: bool) -> ThreeScale {
    let mode = match kind {
        Kind::Sync => Mode::Sync,
        Kind::Cached => Mode::Cached(CacheSettings::default()),
    };
    let config = Config::builder()
        .backend_url(emulator.url())
        .service_token("tok-1001", "1001")
        .rule("ANY", "/", "hits", 1)
        // Names `documents`, so that usage added for it joins a batch at once
        // (no request of these tests matches it).
        .rule("POST", "/documents$", "documents", 1)
        .bypass_path("/health")
        .mode(mode)
        .response_codes(response_codes)
        .build()
        .unwrap();
    ThreeScale::new(config).unwrap()
}

/// What the handler does for a path: its status and the usage it adds.
fn plan(path: &str) -> (u16, Option<AddedUsage>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["missing"] => (404, None),
        ["fail"] => (500, None),
        ["docs", n] => (
            200,
            Some(AddedUsage::new(
                Usage::new().with("documents", n.parse().unwrap()),
            )),
        ),
        ["unknown-metric"] => (200, Some(AddedUsage::new(Usage::new().with("nukes", 1)))),
        ["set"] => {
            let mut usage = Usage::new();
            usage.set("documents", 100);
            usage.add("hits", 0);
            (200, Some(AddedUsage::new(usage)))
        }
        ["health"] => (
            200,
            Some(AddedUsage::new(Usage::new().with("documents", 50))),
        ),
        ["panic"] => panic!("handler failed"),
        _ => (200, None),
    }
}

/// A real server on 127.0.0.1 whose handler answers as [`plan`] says.
fn serve(adapter: Adapter, engine: ThreeScale) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    match adapter {
        Adapter::Axum => {
            listener.set_nonblocking(true).unwrap();
            let app = axum::Router::new()
                .fallback(|uri: http::Uri| async move {
                    use axum::response::IntoResponse;
                    let (status, added) = plan(uri.path());
                    let status = http::StatusCode::from_u16(status).unwrap();
                    match added {
                        Some(added) => (status, axum::Extension(added), "body").into_response(),
                        None => (status, "body").into_response(),
                    }
                })
                .layer(threescale::tower::ThreeScaleLayer::new(engine));
            let task = tokio::spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await
            });
            App::new(url, move || task.abort())
        }
        Adapter::Actix => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = actix_web::HttpServer::new(move || {
                        actix_web::App::new()
                            .wrap(threescale::actix::ThreeScaleMiddleware::new(engine.clone()))
                            .default_service(actix_web::web::to(
                                |request: actix_web::HttpRequest| async move {
                                    let (status, added) = plan(request.path());
                                    let mut response = actix_web::HttpResponse::build(
                                        actix_web::http::StatusCode::from_u16(status).unwrap(),
                                    )
                                    .body("body");
                                    if let Some(added) = added {
                                        response.extensions_mut().insert(added);
                                    }
                                    response
                                },
                            ))
                    })
                    .workers(1)
                    .disable_signals()
                    .listen(listener)
                    .unwrap()
                    .run();
                    tx.send(server.handle()).unwrap();
                    let _ = server.await;
                })
            });
            let handle = rx.recv().unwrap();
            App::new(url, move || {
                std::thread::spawn(move || {
                    actix_rt::System::new().block_on(handle.stop(false));
                });
            })
        }
    }
}

async fn get(client: &reqwest::Client, app: &App, path: &str, key: &str) -> Option<u16> {
    let separator = if path.contains('?') { '&' } else { '?' };
    client
        .get(format!("{}{path}{separator}user_key={key}", app.url))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

fn eternity(emulator: &EmulatorHandle, key: &str, metric: &str) -> i64 {
    emulator.usage("1001", AppRef::user_key(key)).unwrap().usage[metric].eternity
}

/// The response codes the emulator recorded, read through its HTTP endpoint.
async fn codes(emulator: &EmulatorHandle, key: &str) -> BTreeMap<String, u64> {
    reqwest::get(format!(
        "{}/_emulator/response_codes?service_id=1001&user_key={key}",
        emulator.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

const CASES: [(Adapter, Kind); 4] = [
    (Adapter::Axum, Kind::Sync),
    (Adapter::Axum, Kind::Cached),
    (Adapter::Actix, Kind::Sync),
    (Adapter::Actix, Kind::Cached),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_codes_are_reported_with_each_hit_exactly_once() {
    for (adapter, kind) in CASES {
        let emulator = emulator().await;
        let engine = engine(&emulator, kind, true);
        let app = serve(adapter, engine.clone());
        let client = reqwest::Client::new();
        for path in ["/ok", "/ok", "/ok", "/missing", "/fail"] {
            assert!(get(&client, &app, path, "uk-a").await.is_some());
        }
        // Denied: no usage, no code.
        assert_eq!(get(&client, &app, "/ok", "uk-nobody").await, Some(403));
        let stats = engine.shutdown().await;
        let case = format!("{adapter:?} {kind:?}");
        assert_eq!(eternity(&emulator, "uk-a", "hits"), 5, "{case}");
        let expected: BTreeMap<String, u64> = [
            ("200", 3),
            ("2XX", 3),
            ("404", 1),
            ("4XX", 1),
            ("500", 1),
            ("5XX", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(codes(&emulator, "uk-a").await, expected, "{case}");
        // One transaction per response (the backend counts a code once per
        // transaction), none lost, none sent twice.
        assert_eq!(stats.reported_transactions, 5, "{case}");
        assert_eq!(stats.pending_applications, 0, "{case}");
        let backend = emulator.stats();
        // The check before the response stores nothing: no authrep at all.
        assert_eq!(backend.authrep, 0, "{case}");
        assert_eq!(backend.transactions_applied, 5, "{case}");
        drop(app);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_response_codes_sync_mode_keeps_one_authrep_per_request() {
    let emulator = emulator().await;
    let engine = engine(&emulator, Kind::Sync, false);
    let app = serve(Adapter::Axum, engine.clone());
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(get(&client, &app, "/ok", "uk-a").await, Some(200));
    }
    engine.shutdown().await;
    assert_eq!(emulator.stats().authrep, 3);
    assert_eq!(eternity(&emulator, "uk-a", "hits"), 3);
    assert!(codes(&emulator, "uk-a").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_usage_is_reported_once_for_the_authorized_application() {
    for response_codes in [false, true] {
        for (adapter, kind) in CASES {
            let emulator = emulator().await;
            let engine = engine(&emulator, kind, response_codes);
            let app = serve(adapter, engine.clone());
            let client = reqwest::Client::new();
            assert_eq!(get(&client, &app, "/docs/3", "uk-a").await, Some(200));
            assert_eq!(get(&client, &app, "/docs/4", "uk-a").await, Some(200));
            assert_eq!(get(&client, &app, "/ok", "uk-b").await, Some(200));
            // A set value is no increment: left out.
            assert_eq!(get(&client, &app, "/set", "uk-b").await, Some(200));
            // A bypassed request has no application: its added usage is ignored.
            assert_eq!(get(&client, &app, "/health", "uk-b").await, Some(200));
            // A denied request never reaches the handler.
            assert_eq!(get(&client, &app, "/docs/9", "uk-nobody").await, Some(403));
            engine.shutdown().await;
            let case = format!("{adapter:?} {kind:?} response_codes={response_codes}");
            assert_eq!(eternity(&emulator, "uk-a", "hits"), 2, "{case}");
            assert_eq!(eternity(&emulator, "uk-a", "documents"), 7, "{case}");
            assert_eq!(eternity(&emulator, "uk-b", "hits"), 2, "{case}");
            assert_eq!(eternity(&emulator, "uk-b", "documents"), 0, "{case}");
            drop(app);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_usage_of_an_unknown_metric_sinks_no_other_usage() {
    for (adapter, kind) in CASES {
        let emulator = emulator().await;
        let engine = engine(&emulator, kind, false);
        let app = serve(adapter, engine.clone());
        let client = reqwest::Client::new();
        assert_eq!(
            get(&client, &app, "/unknown-metric", "uk-a").await,
            Some(200)
        );
        assert_eq!(get(&client, &app, "/docs/2", "uk-b").await, Some(200));
        let stats = engine.shutdown().await;
        let case = format!("{adapter:?} {kind:?}");
        // The backend would discard a whole batch for one unknown metric: the
        // added usage was checked first and dropped alone.
        assert_eq!(eternity(&emulator, "uk-a", "hits"), 1, "{case}");
        assert_eq!(eternity(&emulator, "uk-b", "hits"), 1, "{case}");
        assert_eq!(eternity(&emulator, "uk-b", "documents"), 2, "{case}");
        assert_eq!(stats.unknown_applications, 1, "{case}");
        assert_eq!(emulator.stats().transactions_discarded, 0, "{case}");
        drop(app);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_loses_no_hit() {
    for response_codes in [false, true] {
        for (adapter, kind) in CASES {
            let emulator = emulator().await;
            let engine = engine(&emulator, kind, response_codes);
            let app = serve(adapter, engine.clone());
            let client = reqwest::Client::new();
            // The connection breaks (axum) or the worker answers 500 (actix):
            // either way the hit the backend allowed is reported.
            let _ = get(&client, &app, "/panic", "uk-a").await;
            assert_eq!(get(&client, &app, "/ok", "uk-a").await, Some(200));
            engine.shutdown().await;
            let case = format!("{adapter:?} {kind:?} response_codes={response_codes}");
            assert_eq!(eternity(&emulator, "uk-a", "hits"), 2, "{case}");
            if response_codes {
                // Only the response that came has a code.
                assert_eq!(
                    codes(&emulator, "uk-a").await.get("2XX").copied(),
                    Some(1),
                    "{case}"
                );
            }
            drop(app);
        }
    }
}

#[test]
fn response_codes_come_from_every_source() {
    let vars = |extra: &'static str| {
        move |name: &str| match name {
            "THREESCALE_SERVICE_ID" => Some("42".to_string()),
            "THREESCALE_SERVICE_TOKEN" => Some("token".to_string()),
            n if n == extra => Some("true".to_string()),
            _ => None,
        }
    };
    assert!(!Config::from_vars(vars("NONE")).unwrap().response_codes);
    assert!(
        Config::from_vars(vars("APICAST_RESPONSE_CODES"))
            .unwrap()
            .response_codes
    );
    assert!(
        Config::from_vars(vars("THREESCALE_RESPONSE_CODES"))
            .unwrap()
            .response_codes
    );
    let file = "service:\n  id: \"42\"\n  service_token: token\nresponse_codes: true\n";
    let dir = std::env::temp_dir().join(format!("threescale-rc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("threescale.yaml");
    std::fs::write(&path, file).unwrap();
    assert!(Config::from_file(&path).unwrap().response_codes);
    // A proxy config has no field for it (the gateway reads its
    // environment): the environment turns it on for one too.
    let proxy = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/proxy-config.json");
    assert!(!Config::from_file(proxy).unwrap().response_codes);
    let config = Config::from_vars(|name| match name {
        "THREESCALE_CONFIG" => Some(proxy.to_string()),
        "APICAST_RESPONSE_CODES" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    assert!(config.response_codes);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_usage_counts_against_the_limit_while_handlers_run() {
    // Cached mode, short TTL: entries are refilled while slow handlers still
    // hold their usage for the status. The refill must count that usage.
    let backend = Emulator::start(
        EmulatorConfig::from_yaml_str(
            r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tok-1001"
    metrics:
      - { name: hits }
    plans:
      - name: tight
        limits:
          - { metric: hits, period: eternity, value: 12 }
    applications:
      - { plan: tight, user_key: "uk-a" }
"#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let config = Config::builder()
        .backend_url(backend.url())
        .service_token("tok-1001", "1001")
        .mode(Mode::Cached(
            CacheSettings::default()
                .ttl(std::time::Duration::from_millis(20))
                .flush_interval(std::time::Duration::from_millis(10)),
        ))
        .response_codes(std::env::var("RC_OFF").is_err())
        .build()
        .unwrap();
    let engine = ThreeScale::new(config).unwrap();
    let app = axum::Router::new()
        .fallback(|| async {
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
            "slow"
        })
        .layer(threescale::tower::ThreeScaleLayer::new(engine.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for c in 0..8u64 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0;
            for i in 0..6u64 {
                tokio::time::sleep(std::time::Duration::from_millis((c * 7 + i * 13) % 30)).await;
                let status = client
                    .get(format!("{url}/x?user_key=uk-a"))
                    .send()
                    .await
                    .unwrap()
                    .status();
                if status == 200 {
                    allowed += 1;
                } else {
                    assert_eq!(status, 429);
                }
            }
            allowed
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap();
    }
    let before = engine.stats();
    let reports = engine.shutdown().await;
    server.abort();
    let counted = backend
        .usage("1001", AppRef::user_key("uk-a"))
        .unwrap()
        .usage["hits"]
        .eternity;
    assert_eq!(counted, allowed, "every allowed hit counted once");
    assert!(
        allowed <= 12,
        "{allowed} allowed past a limit of 12: {before:?} {reports:?} {:?}",
        backend.stats()
    );
    assert!(allowed > 0);
}
