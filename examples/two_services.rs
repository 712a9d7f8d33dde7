//! Two 3scale services behind one axum app and one engine, chosen by host.
//!
//! `cargo run --example two_services`: starts the embedded emulator with two
//! services (`orders`, user keys; `billing`, app id and key), serves the app on
//! a free port, sends a few requests with different `Host` headers, prints what
//! each got and what each service counted, and stops.

use axum::Router;
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::tower::{Auth, ThreeScaleLayer};
use threescale::{
    BackendVersion, CacheSettings, Config, DenialKind, ErrorResponse, Mode, Services,
};

const BACKEND: &str = r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: orders-token
    metrics: [{ name: hits }, { name: orders, parent: hits }]
    plans: [{ name: basic, limits: [{ metric: hits, period: minute, value: 100 }] }]
    applications: [{ plan: basic, user_key: orders-user-key }]
  - id: "1002"
    backend_version: "2"
    service_token: billing-token
    metrics: [{ name: hits }]
    plans: [{ name: pro, limits: [{ metric: hits, period: minute, value: 100 }] }]
    applications: [{ plan: pro, app_id: billing-app, app_keys: [billing-key] }]
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(EmulatorConfig::from_yaml_str(BACKEND)?).await?;
    let orders = Config::builder()
        .backend_url(emulator.url())
        .service_token("orders-token", "1001")
        .rule("GET", "/orders/{id}$", "orders", 1)
        .build()?;
    let billing = Config::builder()
        .backend_url(emulator.url())
        .service_token("billing-token", "1002")
        .backend_version(BackendVersion::AppId)
        .rule("GET", "/invoices", "hits", 1)
        .error_response(
            DenialKind::AuthMissing,
            ErrorResponse::new(
                http::StatusCode::UNAUTHORIZED,
                r#"{"error":"app_id and app_key"}"#,
            )
            .content_type("application/json"),
        )
        .mode(Mode::Cached(CacheSettings::default()))
        .build()?;
    // Requests for any other host get 404 (set `default_service` to change that).
    let engine = Services::builder()
        .service(orders, ["orders.example.com"])
        .service(billing, ["billing.example.com"])
        .build()?;

    let app = Router::new()
        .fallback(
            |Auth(ctx): Auth| async move { format!("served for service {}\n", ctx.service_id) },
        )
        .layer(ThreeScaleLayer::new(engine.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    for (host, path) in [
        ("orders.example.com", "/orders/7?user_key=orders-user-key"),
        (
            "billing.example.com",
            "/invoices?app_id=billing-app&app_key=billing-key",
        ),
        ("billing.example.com", "/invoices?user_key=orders-user-key"),
        (
            "billing.example.com",
            "/orders/7?app_id=billing-app&app_key=billing-key",
        ),
        ("unknown.example.com", "/orders/7?user_key=orders-user-key"),
    ] {
        let response = client
            .get(format!("{url}{path}"))
            .header("host", host)
            .send()
            .await?;
        let status = response.status();
        println!(
            "{host}{path}\n  -> {status} {}",
            response.text().await?.trim()
        );
    }

    // Shutdown reports what the cached service still holds.
    engine.shutdown().await;
    server.abort();
    for (service, app) in [
        ("1001", "user_key=orders-user-key"),
        ("1002", "app_id=billing-app"),
    ] {
        let usage = reqwest::get(format!(
            "{}/_emulator/usage?service_id={service}&{app}",
            emulator.url()
        ))
        .await?
        .text()
        .await?;
        println!("service {service} counted: {usage}");
    }
    Ok(())
}
