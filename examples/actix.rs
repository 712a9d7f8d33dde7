//! A minimal actix-web API protected by 3scale, in cached mode, with graceful shutdown.
//!
//! `cargo run --example actix`: uses `THREESCALE_*` variables when set
//! (see `Config::from_env`), else starts the embedded emulator with the demo
//! service of `examples/emulator.yaml`. Then: `curl -i 'http://127.0.0.1:8080/orders/1?user_key=demo-user-key'`.

use actix_web::{App, HttpServer, web};
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::{AuthContext, CacheSettings, Config, Mode, ThreeScale};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
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
            .mode(Mode::Cached(CacheSettings::default()))
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
