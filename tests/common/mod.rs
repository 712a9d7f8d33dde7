//! Shared harness: the emulator, and the same app behind the tower layer (axum)
//! and behind the actix middleware, each a real server on 127.0.0.1.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;

use threescale::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use threescale::{Config, ThreeScale};

pub const TEST_BACKEND: &str = r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tok-1001"
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
      - { name: search, parent: hits }
      - { name: export, parent: hits }
    plans:
      - name: basic
        limits:
          - { metric: hits, period: minute, value: 1000 }
          - { metric: export, period: day, value: 0 }
      - name: small
        limits:
          - { metric: hits, period: minute, value: 3 }
    applications:
      - { plan: basic, user_key: "uk-basic" }
      - { plan: small, user_key: "uk-small" }
      - { plan: basic, user_key: "uk-suspended", state: suspended }
  - id: "2002"
    backend_version: "2"
    service_token: "tok-2002"
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
    plans:
      - name: pro
        limits:
          - { metric: hits, period: hour, value: 1000 }
    applications:
      - { plan: pro, app_id: "app1", app_keys: ["key1", "key2"], state: active }
"#;

pub async fn emulator() -> EmulatorHandle {
    Emulator::start(EmulatorConfig::from_yaml_str(TEST_BACKEND).expect("test config"))
        .await
        .expect("emulator starts")
}

/// Which adapter serves the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    Axum,
    Actix,
}

pub const ADAPTERS: [Adapter; 2] = [Adapter::Axum, Adapter::Actix];

/// A running protected app.
pub struct App {
    pub url: String,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl App {
    /// An app at `url` that `stop` stops.
    pub fn new(url: String, stop: impl FnOnce() + Send + 'static) -> Self {
        App {
            url,
            stop: Some(Box::new(stop)),
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// Serves `engine` in front of a handler that answers `ok` on every path
/// (and `/unprotected-*` outside the middleware's reach is not needed: bypass covers it).
pub fn serve(adapter: Adapter, engine: ThreeScale) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    match adapter {
        Adapter::Axum => {
            listener.set_nonblocking(true).unwrap();
            let app = axum::Router::new()
                .fallback(|| async { "ok" })
                .layer(threescale::tower::ThreeScaleLayer::new(engine));
            let task = tokio::spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await
            });
            App {
                url,
                stop: Some(Box::new(move || task.abort())),
            }
        }
        Adapter::Actix => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let server = actix_web::HttpServer::new(move || {
                        actix_web::App::new()
                            .wrap(threescale::actix::ThreeScaleMiddleware::new(engine.clone()))
                            .default_service(actix_web::web::to(|| async { "ok" }))
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
            App {
                url,
                stop: Some(Box::new(move || {
                    std::thread::spawn(move || {
                        actix_rt::System::new().block_on(handle.stop(false));
                    });
                })),
            }
        }
    }
}

/// What a client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub status: u16,
    pub body: String,
    pub headers: BTreeMap<String, String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

pub async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Seen {
    let mut request = client.request(method.parse().unwrap(), url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("app answers");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(n, _)| {
            let n = n.as_str();
            n.starts_with("ratelimit")
                || n.starts_with("x-3scale")
                || n.starts_with("x-custom")
                || n == "retry-after"
                || n == "content-type"
        })
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = response.text().await.unwrap_or_default();
    Seen {
        status,
        body,
        headers,
    }
}

/// Totals per metric for the current minute... and eternity: `metric -> eternity total`.
pub async fn usage(
    emulator: &EmulatorHandle,
    service_id: &str,
    app: (&str, &str),
) -> BTreeMap<String, u64> {
    let url = format!(
        "{}/_emulator/usage?service_id={service_id}&{}={}",
        emulator.url(),
        app.0,
        app.1
    );
    let json: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let mut out = BTreeMap::new();
    if let Some(metrics) = json.get("usage").and_then(|u| u.as_object()) {
        for (metric, periods) in metrics {
            let total = periods
                .get("eternity")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            if total > 0 {
                out.insert(metric.clone(), total);
            }
        }
    }
    out
}

pub fn config_for(emulator: &EmulatorHandle) -> threescale::ConfigBuilder {
    Config::builder().backend_url(emulator.url())
}

pub async fn emulator_with(yaml: &str) -> EmulatorHandle {
    Emulator::start(EmulatorConfig::from_yaml_str(yaml).expect("test config"))
        .await
        .expect("emulator starts")
}

/// Faults the tests inject into the emulator.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// This share of backend calls answers 503.
    FailShare(f64),
    /// Every backend call is delayed.
    Latency(std::time::Duration),
    /// Malformed XML on every auth call.
    MalformedXml,
    /// Connections closed without an answer.
    Drop,
    /// No faults.
    Clear,
}

pub async fn faults(emulator: &EmulatorHandle, fault: Fault) {
    use threescale::emulator::Faults;
    let faults = match fault {
        Fault::FailShare(share) if share >= 1.0 => Faults {
            error_every_nth: Some(1),
            ..Faults::default()
        },
        Fault::FailShare(share) => Faults {
            error_share: share,
            seed: Some(7),
            ..Faults::default()
        },
        Fault::Latency(delay) => Faults {
            latency_ms: delay.as_millis() as u64,
            ..Faults::default()
        },
        Fault::MalformedXml => Faults {
            malformed_every_nth: Some(1),
            ..Faults::default()
        },
        Fault::Drop => Faults {
            drop_every_nth: Some(1),
            ..Faults::default()
        },
        Fault::Clear => {
            emulator.clear_faults();
            return;
        }
    };
    emulator.set_faults(faults);
}

/// authorize + authrep calls (plain and OAuth) the emulator received.
pub async fn auth_calls(emulator: &EmulatorHandle) -> u64 {
    let s = emulator.stats();
    s.authorize + s.authrep + s.oauth_authorize + s.oauth_authrep
}

/// report POSTs the emulator received.
pub async fn report_calls(emulator: &EmulatorHandle) -> u64 {
    emulator.stats().report
}
