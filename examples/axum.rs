//! A minimal axum API protected by 3scale, in cached mode, with graceful shutdown.
//!
//! `cargo run --example axum`: with `THREESCALE_SERVICE_TOKEN` (or
//! `THREESCALE_PROVIDER_KEY`) set, it talks to that 3scale backend
//! (`THREESCALE_BACKEND_URL`, `THREESCALE_SERVICE_ID`), keeping its own mapping
//! rules, bypass path and cached mode; else it starts the embedded emulator
//! with the demo service of `examples/emulator.yaml`. Then: `curl -i 'http://127.0.0.1:8080/orders/1?user_key=demo-user-key'`.
//!
//! With the `metrics` feature, `GET /metrics` serves the engine's metrics in
//! Prometheus' text format (`metrics-exporter-prometheus`), outside 3scale
//! (a bypass path).

use axum::{Router, extract::Path, routing::get};
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::tower::{Auth, ThreeScaleLayer};
use threescale::{CacheSettings, Config, ConfigBuilder, Mode, ProviderAuth, ThreeScale};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    // Installed before the engine is built, so that it sees every figure.
    #[cfg(feature = "metrics")]
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    // The application's own 3scale settings: mapping rules, bypass path, mode.
    let settings = Config::builder()
        .rule("GET", "/orders/{id}$", "orders", 1)
        .bypass_path("/health")
        .bypass_path("/metrics")
        .mode(Mode::Cached(CacheSettings::default()));
    // The backend: the one THREESCALE_* names, else the embedded emulator.
    let (config, _emulator) = if std::env::var("THREESCALE_SERVICE_TOKEN").is_ok()
        || std::env::var("THREESCALE_PROVIDER_KEY").is_ok()
    {
        (backend_from_env(settings).build()?, None)
    } else {
        let emulator = Emulator::start(EmulatorConfig::from_yaml_str(include_str!(
            "emulator.yaml"
        ))?)
        .await?;
        let config = settings
            .backend_url(emulator.url())
            .service_token("demo-service-token", "2555417777820")
            .build()?;
        (config, Some(emulator))
    };
    let threescale = ThreeScale::new(config)?;

    let app = Router::new()
        .route("/orders/{id}", get(order))
        .route("/health", get(|| async { "ok" }));
    #[cfg(feature = "metrics")]
    let app = app.route(
        "/metrics",
        get(move || std::future::ready(prometheus.render())),
    );
    let app = app.layer(ThreeScaleLayer::new(threescale.clone()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    tracing::info!("listening on http://127.0.0.1:8080");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let stats = threescale.shutdown().await;
    tracing::info!(?stats, "reported everything still held");
    Ok(())
}

async fn order(Path(id): Path<u64>, Auth(ctx): Auth) -> String {
    format!("order {id}, plan {}\n", ctx.plan.as_deref().unwrap_or("?"))
}

/// The application's settings pointed at the 3scale backend the `THREESCALE_*`
/// variables name: `THREESCALE_BACKEND_URL`, `THREESCALE_SERVICE_ID` and
/// `THREESCALE_SERVICE_TOKEN` (or `THREESCALE_PROVIDER_KEY`). Only the backend
/// and its credentials come from them; rules, bypass paths and mode stay.
fn backend_from_env(settings: ConfigBuilder) -> ConfigBuilder {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut builder = settings;
    if let Some(url) = var("THREESCALE_BACKEND_URL") {
        builder = builder.backend_url(url);
    }
    let service_id = var("THREESCALE_SERVICE_ID").unwrap_or_default();
    match var("THREESCALE_SERVICE_TOKEN") {
        Some(token) => builder.service_token(token, service_id),
        None => {
            let mut auth =
                ProviderAuth::provider_key(var("THREESCALE_PROVIDER_KEY").unwrap_or_default());
            if !service_id.is_empty() {
                auth = auth.with_service_id(service_id);
            }
            builder.provider_auth(auth)
        }
    }
}
