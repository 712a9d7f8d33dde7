//! Plan-based routing: applications on the `sandbox` plan reach a sandbox
//! deployment of the API (canned data, nothing real happens), every other
//! application reaches production. The plan comes from 3scale, in the
//! `AuthContext` the middleware hands to the app; no second lookup.
//!
//! ```text
//! cargo run --example plan_routing
//! ```
//!
//! It starts the embedded 3scale backend emulator with two applications (one per
//! plan), serves the API on 127.0.0.1, calls it with each key, prints what came
//! back and exits.

use std::net::SocketAddr;

use axum::extract::{Path, Request};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::tower::ThreeScaleLayer;
use threescale::{AuthContext, Config, ThreeScale};
use tower::ServiceExt;

/// The 3scale side: one service, a `sandbox` plan and a `production` plan, an
/// application on each.
pub const BACKEND: &str = r#"
services:
  - id: "6006"
    backend_version: "1"
    service_token: "plan-routing-token"
    metrics:
      - { name: hits }
    plans:
      - name: sandbox
        limits: [{ metric: hits, period: day, value: 1000 }]
      - name: production
        limits: [{ metric: hits, period: minute, value: 600 }]
    applications:
      - { plan: sandbox, user_key: "sandbox-key" }
      - { plan: production, user_key: "live-key" }
"#;

/// The service id in [`BACKEND`].
pub const SERVICE_ID: &str = "6006";
/// Its service token.
pub const SERVICE_TOKEN: &str = "plan-routing-token";
/// The plan whose applications go to the sandbox.
pub const SANDBOX_PLAN: &str = "sandbox";

/// Which deployment serves a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    /// Canned answers for applications on the sandbox plan.
    Sandbox,
    /// The real thing.
    Production,
}

impl Deployment {
    /// The sandbox for applications on [`SANDBOX_PLAN`] (the plan name 3scale
    /// reports, compared exactly), production for every other plan and when the
    /// backend named none.
    pub fn for_caller(context: &AuthContext) -> Self {
        match context.plan.as_deref() {
            Some(SANDBOX_PLAN) => Deployment::Sandbox,
            _ => Deployment::Production,
        }
    }

    /// Its name, as shown in answers.
    pub fn name(self) -> &'static str {
        match self {
            Deployment::Sandbox => "sandbox",
            Deployment::Production => "production",
        }
    }
}

/// The sandbox deployment: same routes, canned data.
fn sandbox_api() -> Router {
    Router::new().route(
        "/orders/{id}",
        get(|Path(id): Path<String>| async move {
            Json(json!({ "id": id, "status": "test order", "deployment": "sandbox" }))
        }),
    )
}

/// The production deployment.
fn production_api() -> Router {
    Router::new().route(
        "/orders/{id}",
        get(|Path(id): Path<String>| async move {
            Json(json!({ "id": id, "status": "shipped", "deployment": "production" }))
        }),
    )
}

/// The API behind 3scale: each allowed request goes to the deployment of its
/// caller's plan, marked with an `x-deployment` header.
pub fn app(threescale: ThreeScale) -> Router {
    let sandbox = sandbox_api();
    let production = production_api();
    Router::new()
        .fallback(move |request: Request| {
            let deployment = request
                .extensions()
                .get::<AuthContext>()
                .map_or(Deployment::Production, Deployment::for_caller);
            let api = match deployment {
                Deployment::Sandbox => sandbox.clone(),
                Deployment::Production => production.clone(),
            };
            async move {
                let mut response = api.oneshot(request).await.into_response();
                response.headers_mut().insert(
                    "x-deployment",
                    http::HeaderValue::from_static(deployment.name()),
                );
                response
            }
        })
        .layer(ThreeScaleLayer::new(threescale))
}

/// The engine for the service in [`BACKEND`], served by the backend at `backend_url`.
pub fn engine(backend_url: &str) -> Result<ThreeScale, Box<dyn std::error::Error>> {
    let config = Config::builder()
        .backend_url(backend_url)
        .service_token(SERVICE_TOKEN, SERVICE_ID)
        .build()?;
    Ok(ThreeScale::new(config)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(EmulatorConfig::from_yaml_str(BACKEND)?).await?;
    println!("3scale backend emulator on {}", emulator.url());
    let threescale = engine(&emulator.url())?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let api = format!("http://{}", listener.local_addr()?);
    let router = app(threescale.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    println!("API on {api}\n");

    let client = reqwest::Client::new();
    for (who, key) in [
        ("An application on the sandbox plan", "sandbox-key"),
        ("An application on the production plan", "live-key"),
        ("A wrong key", "no-such-key"),
    ] {
        let response = client
            .get(format!("{api}/orders/17?user_key={key}"))
            .send()
            .await?;
        let status = response.status().as_u16();
        let deployment = response
            .headers()
            .get("x-deployment")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let body = response.text().await?;
        println!("{who}:\n  -> {status} [x-deployment: {deployment}] {body}\n");
    }

    server.abort();
    threescale.shutdown().await;
    emulator.shutdown().await;
    Ok(())
}
