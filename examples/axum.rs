//! A minimal axum API protected by 3scale, in cached mode, with graceful shutdown.
//!
//! `cargo run --example axum`: uses `THREESCALE_*` variables when set
//! (see `Config::from_env`), else starts the embedded emulator with the demo
//! service of `examples/emulator.yaml`. Then: `curl -i 'http://127.0.0.1:8080/orders/1?user_key=demo-user-key'`.
//!
//! With the `metrics` feature, `GET /metrics` serves the engine's metrics in
//! Prometheus' text format (`metrics-exporter-prometheus`), outside 3scale
//! (a bypass path).

use axum::{Router, extract::Path, routing::get};
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::tower::{Auth, ThreeScaleLayer};
use threescale::{CacheSettings, Config, Mode, ThreeScale};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    // Installed before the engine is built, so that it sees every figure.
    #[cfg(feature = "metrics")]
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let (config, _emulator) = if std::env::var("THREESCALE_SERVICE_TOKEN").is_ok()
        || std::env::var("THREESCALE_PROVIDER_KEY").is_ok()
    {
        (Config::from_env()?, None)
    } else {
        let emulator = Emulator::start(EmulatorConfig::from_yaml_str(include_str!(
            "emulator.yaml"
        ))?)
        .await?;
        let config = Config::builder()
            .backend_url(emulator.url())
            .service_token("demo-service-token", "2555417777820")
            .rule("GET", "/orders/{id}$", "orders", 1)
            .bypass_path("/health")
            .bypass_path("/metrics")
            .mode(Mode::Cached(CacheSettings::default()))
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
