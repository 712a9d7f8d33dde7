//! The tour: an axum API protected by 3scale, against the embedded local backend.
//!
//! ```text
//! cargo run --example quickstart            # walk through the cases and exit
//! cargo run --example quickstart -- --serve # keep serving, for curl
//! ```
//!
//! With `THREESCALE_SERVICE_TOKEN` (or `THREESCALE_PROVIDER_KEY`) set, it talks
//! to that 3scale backend (`THREESCALE_BACKEND_URL`, `THREESCALE_SERVICE_ID`)
//! instead of the emulator; set `THREESCALE_USER_KEY` to a key of yours.

use std::net::SocketAddr;

use axum::{Router, routing::get};
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::tower::{Auth, ThreeScaleLayer};
use threescale::{Config, ProviderAuth, ThreeScale};

const DEMO_CONFIG: &str = include_str!("emulator.yaml");
const SERVICE_ID: &str = "2555417777820";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let serve = std::env::args().any(|a| a == "--serve");
    let real = std::env::var("THREESCALE_SERVICE_TOKEN").is_ok()
        || std::env::var("THREESCALE_PROVIDER_KEY").is_ok();

    // 1. The application's own 3scale settings: its mapping rules and bypass paths.
    let settings = Config::builder()
        .rule("GET", "/orders", "orders", 1)
        .rule("GET", "/status$", "hits", 1)
        .bypass_path("/health");

    // 2. A 3scale backend: the embedded emulator, unless THREESCALE_* points at a
    //    real one. The variables choose only the backend and its credentials; the
    //    rules and bypass paths above stay as they are.
    let (config, emulator, user_key) = if real {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let key = var("THREESCALE_USER_KEY").unwrap_or_else(|| "set-THREESCALE_USER_KEY".into());
        let mut builder = settings;
        if let Some(url) = var("THREESCALE_BACKEND_URL") {
            builder = builder.backend_url(url);
        }
        let service_id = var("THREESCALE_SERVICE_ID").unwrap_or_default();
        builder = match var("THREESCALE_SERVICE_TOKEN") {
            Some(token) => builder.service_token(token, service_id),
            None => {
                let mut auth =
                    ProviderAuth::provider_key(var("THREESCALE_PROVIDER_KEY").unwrap_or_default());
                if !service_id.is_empty() {
                    auth = auth.with_service_id(service_id);
                }
                builder.provider_auth(auth)
            }
        };
        (builder.build()?, None, key)
    } else {
        let emulator = Emulator::start(EmulatorConfig::from_yaml_str(DEMO_CONFIG)?).await?;
        println!("3scale backend emulator on {}", emulator.url());
        let config = settings
            .backend_url(emulator.url())
            .service_token("demo-service-token", SERVICE_ID)
            .build()?;
        (config, Some(emulator), "demo-user-key".to_string())
    };

    // 3. The API, protected by one layer.
    let threescale = ThreeScale::new(config)?;
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .route("/status", get(|| async { "ok\n" }))
        .route("/health", get(|| async { "healthy\n" }))
        .route("/admin", get(|| async { "admin\n" }))
        .layer(ThreeScaleLayer::new(threescale.clone()));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let api = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("API protected by 3scale on {api}\n");

    if serve {
        println!(
            "Try:\n  curl -i '{api}/orders/1?user_key={user_key}'\n  curl -i '{api}/orders/1?user_key=wrong'\n  curl -i '{api}/orders/1'\n  curl -i '{api}/admin?user_key={user_key}'\nCtrl-C to stop."
        );
        tokio::signal::ctrl_c().await?;
    } else {
        tour(&api, &user_key).await?;
        if let Some(emulator) = &emulator {
            let usage: serde_json::Value = reqwest::get(format!(
                "{}/_emulator/usage?service_id={SERVICE_ID}&user_key={user_key}",
                emulator.url()
            ))
            .await?
            .json()
            .await?;
            println!(
                "\nUsage the backend counted for {user_key}:\n{}",
                serde_json::to_string_pretty(&usage)?
            );
        }
    }

    server.abort();
    let stats = threescale.shutdown().await;
    println!(
        "\nShut down; reports pending: {}",
        stats.pending_applications
    );
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(())
}

async fn order(axum::extract::Path(id): axum::extract::Path<String>, Auth(ctx): Auth) -> String {
    format!(
        "order {id} for a {} plan application\n",
        ctx.plan.as_deref().unwrap_or("unknown")
    )
}

async fn tour(api: &str, user_key: &str) -> Result<(), reqwest::Error> {
    let client = reqwest::Client::new();
    let show = |what: &'static str| {
        move |r: (u16, String, String)| println!("{what}\n  -> {} {}{}\n", r.0, r.1.trim_end(), r.2)
    };
    show("A valid key:")(call(&client, &format!("{api}/orders/1?user_key={user_key}")).await?);
    show("A wrong key:")(call(&client, &format!("{api}/orders/1?user_key=wrong-key")).await?);
    show("No key:")(call(&client, &format!("{api}/orders/1")).await?);
    show("A path no mapping rule matches:")(
        call(&client, &format!("{api}/admin?user_key={user_key}")).await?,
    );
    show("A bypassed health check:")(call(&client, &format!("{api}/health")).await?);
    println!("Going over the plan's limit of 5 hits per minute:");
    for i in 2..=7 {
        let (status, body, headers) =
            call(&client, &format!("{api}/orders/{i}?user_key={user_key}")).await?;
        println!("  GET /orders/{i} -> {status} {}{headers}", body.trim_end());
    }
    Ok(())
}

/// Status, body and the 3scale-related response headers of a GET.
async fn call(
    client: &reqwest::Client,
    url: &str,
) -> Result<(u16, String, String), reqwest::Error> {
    let response = client.get(url).send().await?;
    let status = response.status().as_u16();
    let mut shown = String::new();
    for name in [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
    ] {
        if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            shown.push_str(&format!("  [{name}: {value}]"));
        }
    }
    Ok((status, response.text().await?, shown))
}
