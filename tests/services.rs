//! Several services in one engine, on both adapters, against the emulator:
//! the host chooses the service, that service's credentials, rules and error
//! responses decide, and every admitted hit is counted once, at its own service.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::{ADAPTERS, Adapter, App, emulator, send, usage};
use threescale::emulator::EmulatorHandle;
use threescale::{
    AuthContext, BackendVersion, CacheSettings, Config, CredentialsConfig, DenialKind,
    ErrorResponse, Mode, PathRouting, Services, ThreeScale,
};

/// Service 1001 (user keys) on `a.test`: `GET /orders` counts `orders`.
fn service_a(emulator: &EmulatorHandle, mode: Mode) -> Config {
    Config::builder()
        .backend_url(emulator.url())
        .service_token("tok-1001", "1001")
        .rule("GET", "/orders", "orders", 1)
        .error_response(
            DenialKind::AuthMissing,
            ErrorResponse::new(http::StatusCode::UNAUTHORIZED, "A: user key please"),
        )
        .error_response(
            DenialKind::NoMatch,
            ErrorResponse::new(http::StatusCode::NOT_FOUND, "A: no route"),
        )
        .mode(mode)
        .build()
        .unwrap()
}

/// Service 2002 (app id and key) on `b.test`: `GET /invoices` counts `hits`.
fn service_b(emulator: &EmulatorHandle, mode: Mode) -> Config {
    Config::builder()
        .backend_url(emulator.url())
        .service_token("tok-2002", "2002")
        .backend_version(BackendVersion::AppId)
        .credentials(CredentialsConfig::default())
        .rule("GET", "/invoices", "hits", 1)
        .error_response(
            DenialKind::AuthMissing,
            ErrorResponse::new(http::StatusCode::UNAUTHORIZED, "B: app id please"),
        )
        .error_response(
            DenialKind::NoMatch,
            ErrorResponse::new(http::StatusCode::NOT_FOUND, "B: no route"),
        )
        .mode(mode)
        .build()
        .unwrap()
}

fn two_services(emulator: &EmulatorHandle, a: Mode, b: Mode) -> Services {
    Services::builder()
        .service(service_a(emulator, a), ["a.test"])
        .service(service_b(emulator, b), ["b.test"])
}

/// The app answers with the id of the service that admitted the request.
fn serve(adapter: Adapter, engine: ThreeScale) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    match adapter {
        Adapter::Axum => {
            listener.set_nonblocking(true).unwrap();
            let app = axum::Router::new()
                .fallback(|request: axum::extract::Request| async move {
                    match request.extensions().get::<AuthContext>() {
                        Some(context) => format!("admitted by {}", context.service_id),
                        None => "admitted by nobody".to_string(),
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
                                    use actix_web::HttpMessage;
                                    match request.extensions().get::<AuthContext>() {
                                        Some(context) => {
                                            format!("admitted by {}", context.service_id)
                                        }
                                        None => "admitted by nobody".to_string(),
                                    }
                                },
                            ))
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
            App::new(url, move || {
                std::thread::spawn(move || {
                    actix_rt::System::new().block_on(handle.stop(false));
                });
            })
        }
    }
}

async fn get(client: &reqwest::Client, app: &App, host: &str, path: &str) -> (u16, String) {
    let seen = send(
        client,
        "GET",
        &format!("{}{path}", app.url),
        &[("host", host)],
    )
    .await;
    (seen.status, seen.body)
}

/// A raw HTTP/1.0 request without a `Host` header.
fn get_without_host(app: &App, path: &str) -> (u16, String) {
    let address = app.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_never_lets_a_request_through_under_another_services_rules() {
    let emulator = emulator().await;
    let client = reqwest::Client::new();
    for adapter in ADAPTERS {
        let engine = two_services(&emulator, Mode::Sync, Mode::Sync)
            .build()
            .unwrap();
        let app = serve(adapter, engine.clone());
        // B's host with A's credentials: B wants an app id, whatever the path.
        let seen = get(&client, &app, "b.test", "/orders?user_key=uk-basic").await;
        assert_eq!(seen, (401, "B: app id please".into()), "{adapter:?}");
        // B's host and credentials on a path only A's rules know: B's no-match.
        let seen = get(&client, &app, "b.test", "/orders?app_id=app1&app_key=key1").await;
        assert_eq!(seen, (404, "B: no route".into()), "{adapter:?}");
        // A's host with B's credentials: A wants a user key.
        let seen = get(
            &client,
            &app,
            "a.test",
            "/invoices?app_id=app1&app_key=key1",
        )
        .await;
        assert_eq!(seen, (401, "A: user key please".into()), "{adapter:?}");
        // A's user key sent to B's host, as an app id: B's backend refuses it.
        let seen = get(
            &client,
            &app,
            "b.test",
            "/invoices?app_id=uk-basic&app_key=key1",
        )
        .await;
        assert_eq!(seen.0, 403, "{adapter:?}: {seen:?}");
        // Unknown, look-alike or missing hosts: 404 with an empty body, no backend call.
        let calls = common::auth_calls(&emulator).await;
        for host in ["c.test", "a.test.evil", "xa.test", "a.test.", ""] {
            let seen = get(&client, &app, host, "/orders?user_key=uk-basic").await;
            assert_eq!(seen, (404, String::new()), "{adapter:?} host {host:?}");
        }
        let seen = get_without_host(&app, "/orders?user_key=uk-basic");
        assert_eq!(seen, (404, String::new()), "{adapter:?} without a host");
        assert_eq!(common::auth_calls(&emulator).await, calls, "{adapter:?}");
        assert!(engine.stats().allowed == 0, "{adapter:?}");
        engine.shutdown().await;
    }
    assert!(
        usage(&emulator, "1001", ("user_key", "uk-basic"))
            .await
            .is_empty()
    );
    assert!(
        usage(&emulator, "2002", ("app_id", "app1"))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_service_counts_its_own_hits_exactly_once() {
    let emulator = emulator().await;
    let client = reqwest::Client::new();
    let mut expected_orders = 0;
    let mut expected_invoices = 0;
    for adapter in ADAPTERS {
        // A checks every request with the backend; B caches and reports in batches.
        let cached = Mode::Cached(CacheSettings::default());
        let engine = two_services(&emulator, Mode::Sync, cached).build().unwrap();
        let app = serve(adapter, engine.clone());
        for _ in 0..3 {
            let seen = get(&client, &app, "A.Test", "/orders?user_key=uk-basic").await;
            assert_eq!(seen, (200, "admitted by 1001".into()), "{adapter:?}");
            expected_orders += 1;
        }
        for _ in 0..4 {
            let seen = get(
                &client,
                &app,
                "b.test:8080",
                "/invoices?app_id=app1&app_key=key1",
            )
            .await;
            assert_eq!(seen, (200, "admitted by 2002".into()), "{adapter:?}");
            expected_invoices += 1;
        }
        let stats = engine.stats();
        assert_eq!(stats.allowed, 7, "{adapter:?}");
        // Shutdown sends what B still holds.
        engine.shutdown().await;
        let a = usage(&emulator, "1001", ("user_key", "uk-basic")).await;
        assert_eq!(
            a.get("orders"),
            Some(&expected_orders),
            "{adapter:?}: {a:?}"
        );
        assert_eq!(a.get("hits"), Some(&expected_orders), "{adapter:?}: {a:?}");
        let b = usage(&emulator, "2002", ("app_id", "app1")).await;
        assert_eq!(
            b.get("hits"),
            Some(&expected_invoices),
            "{adapter:?}: {b:?}"
        );
        assert_eq!(b.get("orders"), None, "{adapter:?}: {b:?}");
        // After shutdown every service refuses.
        let seen = get(
            &client,
            &app,
            "b.test",
            "/invoices?app_id=app1&app_key=key1",
        )
        .await;
        assert_eq!(seen.0, 503, "{adapter:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_default_service_takes_what_no_host_selects_under_its_own_rules() {
    let emulator = emulator().await;
    let client = reqwest::Client::new();
    for adapter in ADAPTERS {
        let engine = two_services(&emulator, Mode::Sync, Mode::Sync)
            .default_service("1001")
            .not_found_response(ErrorResponse::new(
                http::StatusCode::MISDIRECTED_REQUEST,
                "x",
            ))
            .build()
            .unwrap();
        let app = serve(adapter, engine.clone());
        let seen = get(&client, &app, "other.test", "/orders?user_key=uk-basic").await;
        assert_eq!(seen, (200, "admitted by 1001".into()), "{adapter:?}");
        let seen = get(
            &client,
            &app,
            "other.test",
            "/invoices?app_id=app1&app_key=key1",
        )
        .await;
        assert_eq!(seen, (401, "A: user key please".into()), "{adapter:?}");
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn path_routing_chooses_among_services_of_one_host() {
    let emulator = emulator().await;
    let client = reqwest::Client::new();
    for adapter in ADAPTERS {
        let engine = Services::builder()
            .service(service_a(&emulator, Mode::Sync), ["api.test"])
            .service(service_b(&emulator, Mode::Sync), ["api.test"])
            .path_routing(PathRouting::On)
            .build()
            .unwrap();
        let app = serve(adapter, engine.clone());
        let seen = get(
            &client,
            &app,
            "api.test",
            "/invoices?app_id=app1&app_key=key1",
        )
        .await;
        assert_eq!(seen, (200, "admitted by 2002".into()), "{adapter:?}");
        let seen = get(&client, &app, "api.test", "/orders?user_key=uk-basic").await;
        assert_eq!(seen, (200, "admitted by 1001".into()), "{adapter:?}");
        // No rule of either: the first service of the host answers, with its rules.
        let seen = get(&client, &app, "api.test", "/else?user_key=uk-basic").await;
        assert_eq!(seen, (404, "A: no route".into()), "{adapter:?}");
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_proxy_config_with_two_services_routes_by_their_hosts() {
    let emulator = emulator().await;
    let client = reqwest::Client::new();
    let service = |id: &str, token: &str, version: &str, host: &str, path: &str| {
        serde_json::json!({
            "id": id, "backend_version": version,
            "backend_authentication_type": "service_token",
            "backend_authentication_value": token,
            "proxy": {
                "hosts": [host],
                "backend": {"endpoint": emulator.url()},
                "error_auth_missing": format!("{id}: credentials missing"),
                "proxy_rules": [{"http_method": "GET", "pattern": path,
                                 "metric_system_name": "hits", "delta": 1}]
            }
        })
    };
    let a = service("1001", "tok-1001", "1", "a.test", "/orders");
    let b = service("2002", "tok-2002", "2", "B.test", "/invoices");
    let documents = [
        serde_json::json!({"services": [a, b]}),
        serde_json::json!({"proxy_configs": [
            {"proxy_config": {"content": a}}, {"proxy_config": {"content": b}}
        ]}),
    ];
    for (adapter, document) in ADAPTERS.into_iter().zip(documents) {
        let engine = Services::from_proxy_config(&document.to_string())
            .unwrap()
            .build()
            .unwrap();
        let app = serve(adapter, engine.clone());
        let seen = get(&client, &app, "a.test", "/orders?user_key=uk-basic").await;
        assert_eq!(seen, (200, "admitted by 1001".into()), "{adapter:?}");
        let seen = get(
            &client,
            &app,
            "b.test",
            "/invoices?app_id=app1&app_key=key1",
        )
        .await;
        assert_eq!(seen, (200, "admitted by 2002".into()), "{adapter:?}");
        let seen = get(&client, &app, "b.test", "/invoices?user_key=uk-basic").await;
        assert_eq!(
            seen,
            (401, "2002: credentials missing".into()),
            "{adapter:?}"
        );
        let seen = get(&client, &app, "localhost", "/orders?user_key=uk-basic").await;
        assert_eq!(seen, (404, String::new()), "{adapter:?}");
        engine.shutdown().await;
    }
    assert_eq!(
        usage(&emulator, "1001", ("user_key", "uk-basic"))
            .await
            .get("hits"),
        Some(&2)
    );
    assert_eq!(
        usage(&emulator, "2002", ("app_id", "app1"))
            .await
            .get("hits"),
        Some(&2)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_file_with_a_services_list() {
    let emulator = emulator().await;
    let client = reqwest::Client::new();
    let yaml = format!(
        r#"
backend: {{ url: "{url}" }}
services:
  - hosts: [a.test]
    service:
      id: "1001"
      service_token: tok-1001
      mapping_rules:
        - {{ http_method: GET, pattern: /orders, metric_system_name: orders, delta: 1 }}
  - hosts: [b.test]
    service:
      id: "2002"
      service_token: tok-2002
      backend_version: "2"
      mapping_rules:
        - {{ http_method: GET, pattern: /invoices, metric_system_name: hits, delta: 1 }}
      errors:
        no_match: {{ status: 404, body: "B: no route" }}
    mode: {{ cached: {{ ttl_ms: 10000 }} }}
"#,
        url = emulator.url()
    );
    let path = std::env::temp_dir().join(format!("services-{}.yaml", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    let engine = Services::from_file(&path).unwrap().build().unwrap();
    std::fs::remove_file(&path).unwrap();
    let members = engine.services().unwrap();
    assert!(matches!(
        members[0].service().backend_version,
        BackendVersion::UserKey
    ));
    let app = serve(Adapter::Axum, engine.clone());
    let seen = get(&client, &app, "a.test", "/orders?user_key=uk-basic").await;
    assert_eq!(seen, (200, "admitted by 1001".into()));
    let seen = get(&client, &app, "b.test", "/orders?app_id=app1&app_key=key1").await;
    assert_eq!(seen, (404, "B: no route".into()));
    let seen = get(
        &client,
        &app,
        "b.test",
        "/invoices?app_id=app1&app_key=key1",
    )
    .await;
    assert_eq!(seen, (200, "admitted by 2002".into()));
    engine.shutdown().await;
    assert_eq!(
        usage(&emulator, "2002", ("app_id", "app1"))
            .await
            .get("hits"),
        Some(&1)
    );
}

#[test]
fn bad_project_files_are_refused_with_the_field() {
    let without_hosts = r#"{"services": [{"service": {"id": "1", "service_token": "t"}}]}"#;
    let error = Services::parse(without_hosts, "f.yaml").unwrap_err();
    assert!(error.to_string().contains("services[0].hosts"), "{error}");
    let unknown = r#"{"servics_typo": 1, "services": [{"hosts": ["a"], "service": {"id": "1", "service_token": "t"}}]}"#;
    let error = Services::parse(unknown, "f.yaml").unwrap_err();
    assert!(error.to_string().contains("servics_typo"), "{error}");
    let bad_routing = r#"{"path_routing": "sometimes", "services": [{"hosts": ["a"], "service": {"id": "1", "service_token": "t"}}]}"#;
    let error = Services::parse(bad_routing, "f.yaml").unwrap_err();
    assert!(error.to_string().contains("path_routing"), "{error}");
}
