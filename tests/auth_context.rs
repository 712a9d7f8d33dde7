//! What a handler learns about its caller: the kind of credential used (never
//! its value), for each backend version, from an engine that asks the emulator.

use threescale::emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use threescale::{
    AuthContext, BackendVersion, Config, CredentialKind, Decision, SimpleRequest, ThreeScale,
};

const BACKEND: &str = r#"
services:
  - id: "701"
    backend_version: "1"
    service_token: "tok-701"
    metrics: [{ name: hits }]
    plans: [{ name: basic, limits: [{ metric: hits, period: minute, value: 100 }] }]
    applications:
      - { plan: basic, user_key: "uk-701" }
  - id: "702"
    backend_version: "2"
    service_token: "tok-702"
    metrics: [{ name: hits }]
    plans: [{ name: pro, limits: [{ metric: hits, period: minute, value: 100 }] }]
    applications:
      - { plan: pro, app_id: "app-702", app_keys: ["key-702"], state: active }
  - id: "703"
    backend_version: "oauth"
    service_token: "tok-703"
    metrics: [{ name: hits }]
    plans: [{ name: pro, limits: [{ metric: hits, period: minute, value: 100 }] }]
    applications:
      - { plan: pro, app_id: "client-703", app_keys: ["secret-703"], state: active }
"#;

fn config(emulator: &EmulatorHandle, id: &str, version: BackendVersion) -> Config {
    Config::builder()
        .backend_url(emulator.url())
        .service_token(format!("tok-{id}"), id)
        .backend_version(version)
        .rule("GET", "/", "hits", 1)
        .build()
        .expect("config")
}

async fn allowed(engine: &ThreeScale, request: SimpleRequest) -> AuthContext {
    match engine.check(&request).await.decision {
        Decision::Allow(context) => context,
        other => panic!("expected an allowed request, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_names_the_kind_of_credential_and_never_its_value() {
    let emulator = Emulator::start(EmulatorConfig::from_yaml_str(BACKEND).expect("backend"))
        .await
        .expect("emulator");

    let engine = ThreeScale::new(config(&emulator, "701", BackendVersion::UserKey)).unwrap();
    let context = allowed(&engine, SimpleRequest::get("/orders?user_key=uk-701")).await;
    assert_eq!(context.credential, CredentialKind::UserKey);
    assert_eq!(context.app_id, None);
    assert!(!format!("{context:?}").contains("uk-701"), "{context:?}");
    engine.shutdown().await;

    let engine = ThreeScale::new(config(&emulator, "702", BackendVersion::AppId)).unwrap();
    let context = allowed(
        &engine,
        SimpleRequest::get("/orders?app_id=app-702&app_key=key-702"),
    )
    .await;
    assert_eq!(context.credential, CredentialKind::AppId);
    assert_eq!(context.app_id.as_deref(), Some("app-702"));
    assert!(!format!("{context:?}").contains("key-702"), "{context:?}");
    engine.shutdown().await;

    let engine =
        ThreeScale::with_token_verifier(config(&emulator, "703", BackendVersion::OAuth), |token| {
            (token == "token-703").then(|| "client-703".to_string())
        })
        .unwrap();
    let context = allowed(
        &engine,
        SimpleRequest::get("/orders?access_token=token-703"),
    )
    .await;
    assert_eq!(context.credential, CredentialKind::AccessToken);
    assert_eq!(context.app_id.as_deref(), Some("client-703"));
    assert!(!format!("{context:?}").contains("token-703"), "{context:?}");
    engine.shutdown().await;

    emulator.shutdown().await;
}

/// Checked when this file compiles: `new` and `with_token_verifier` give the
/// same `StartError` as `from_env` (whose `?` on a `ConfigError` needs it).
#[allow(dead_code)]
fn every_engine_constructor_fails_with_the_one_start_error() {
    let _: fn(Config) -> Result<ThreeScale, threescale::StartError> = ThreeScale::new;
    let _: fn(Config) -> Result<ThreeScale, threescale::StartError> =
        |config| ThreeScale::with_token_verifier(config, |_| None);
    drop(async {
        let _: Result<ThreeScale, threescale::StartError> = ThreeScale::from_env().await;
    });
}
