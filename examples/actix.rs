//! A minimal actix-web API protected by 3scale, in cached mode, with graceful shutdown.
//!
//! `cargo run --example actix`: with `THREESCALE_SERVICE_TOKEN` (or
//! `THREESCALE_PROVIDER_KEY`) set, it talks to that 3scale backend
//! (`THREESCALE_BACKEND_URL`, `THREESCALE_SERVICE_ID`), keeping its own mapping
//! rules, bypass path and cached mode; else it starts the embedded emulator
//! with the demo service of `examples/emulator.yaml`. Then: `curl -i 'http://127.0.0.1:8080/orders/1?user_key=demo-user-key'`.

use actix_web::{App, HttpServer, web};
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::{
    AuthContext, CacheSettings, Config, ConfigBuilder, Mode, ProviderAuth, ThreeScale,
};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    // The application's own 3scale settings: mapping rules, bypass path, mode.
    let settings = Config::builder()
        .rule("GET", "/orders/{id}$", "orders", 1)
        .bypass_path("/health")
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
    let middleware = threescale::actix::ThreeScaleMiddleware::new(threescale.clone());

    tracing::info!("listening on http://127.0.0.1:8080");
    HttpServer::new(move || {
        App::new()
            .wrap(middleware.clone())
            .route("/orders/{id}", web::get().to(order))
            .route("/health", web::get().to(|| async { "ok" }))
    })
    .bind("127.0.0.1:8080")?
    .run() // stops gracefully on Ctrl-C
    .await?;
    let stats = threescale.shutdown().await;
    tracing::info!(?stats, "reported everything still held");
    Ok(())
}

async fn order(id: web::Path<u64>, ctx: web::ReqData<AuthContext>) -> String {
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
