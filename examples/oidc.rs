//! OpenID Connect end to end, locally: the emulator's development issuer gives
//! an application a token (client credentials), and an axum API protected by
//! 3scale checks it (signature, expiry, issuer) and reports the hit for the
//! token's client id.
//!
//! `cargo run --example oidc` prints each step and exits. With a real issuer,
//! configure `OidcSettings::new("https://sso.example.com/realms/demo")` (or the
//! proxy config's `authentication_method: oidc` and `oidc_issuer_endpoint`).

use axum::{Router, routing::get};
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::oidc::OidcSettings;
use threescale::tower::{Auth, ThreeScaleLayer};
use threescale::{Config, ThreeScale};

const BACKEND: &str = r#"
services:
  - id: "4004"
    backend_version: oauth
    service_token: demo-oidc-token
    metrics: [{ name: hits }]
    plans: [{ name: basic, limits: [{ metric: hits, period: minute, value: 100 }] }]
    applications:
      - { plan: basic, app_id: my-client, app_keys: [my-client-secret] }
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let emulator = Emulator::start(EmulatorConfig::from_yaml_str(BACKEND)?).await?;
    let issuer = format!("{}/oidc", emulator.url());
    println!("issuer:  {issuer}");

    let config = Config::builder()
        .backend_url(emulator.url())
        .service_token("demo-oidc-token", "4004")
        .oidc(OidcSettings::new(&issuer))
        .rule("GET", "/orders", "hits", 1)
        .build()?;
    let threescale = ThreeScale::new(config)?;
    let app = Router::new()
        .route(
            "/orders",
            get(|Auth(ctx): Auth| async move {
                format!("orders of {}\n", ctx.app_id.as_deref().unwrap_or("?"))
            }),
        )
        .layer(ThreeScaleLayer::new(threescale.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // 1. The application asks the issuer for a token.
    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(format!("{issuer}/token"))
        .basic_auth("my-client", Some("my-client-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let access_token = token["access_token"].as_str().ok_or("no access_token")?;
    println!(
        "token:   a signed JWT of {} bytes (not printed: it is a credential)",
        access_token.len()
    );

    // 2. It calls the API with it; then without it, and with a forged one.
    let forged = {
        let mut parts: Vec<String> = access_token.split('.').map(str::to_string).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    for (what, bearer) in [
        ("valid token", Some(access_token.to_string())),
        ("no token", None),
        ("forged signature", Some(forged)),
    ] {
        let mut request = client.get(format!("{api}/orders"));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        println!(
            "{what:17} -> {} {}",
            response.status(),
            response.text().await?.trim()
        );
    }

    // 3. The hit was reported for the token's client.
    threescale.flush().await?;
    let usage = emulator
        .usage("4004", threescale::emulator::AppRef::app_id("my-client"))
        .ok_or("no usage")?;
    println!(
        "usage:   my-client made {} hit(s) this minute",
        usage.usage["hits"].minute
    );

    server.abort();
    threescale.shutdown().await;
    emulator.shutdown().await;
    Ok(())
}
