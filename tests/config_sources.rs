//! The sample configuration files drive real servers: the admin portal's
//! proxy config JSON and the project's YAML, both found through
//! `THREESCALE_CONFIG`, with `THREESCALE_BACKEND_URL` pointing them at the
//! emulator, behind both adapters.

mod common;

use common::{ADAPTERS, send, serve, usage};
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::{Config, ThreeScale};

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn demo_emulator() -> threescale::emulator::EmulatorHandle {
    Emulator::start(EmulatorConfig::from_file(example("emulator.yaml")).unwrap())
        .await
        .unwrap()
}

fn config_from(file: &str, backend: &str) -> Config {
    let file = example(file);
    Config::from_vars(|name| match name {
        "THREESCALE_CONFIG" => Some(file.clone()),
        "THREESCALE_BACKEND_URL" => Some(backend.to_string()),
        _ => None,
    })
    .unwrap()
}

#[tokio::test]
async fn the_sample_proxy_config_protects_both_adapters() {
    for adapter in ADAPTERS {
        let emulator = demo_emulator().await;
        let engine = ThreeScale::new(config_from("proxy-config.json", &emulator.url())).unwrap();
        let app = serve(adapter, engine);
        let client = reqwest::Client::new();
        let key = "user_key=demo-premium-key";

        let seen = send(&client, "GET", &format!("{}/orders/7?{key}", app.url), &[]).await;
        assert_eq!(seen.status, 200, "{adapter:?}: {seen:?}");
        let seen = send(&client, "POST", &format!("{}/orders?{key}", app.url), &[]).await;
        assert_eq!(seen.status, 200, "{adapter:?}: {seen:?}");
        let seen = send(&client, "GET", &format!("{}/orders/7", app.url), &[]).await;
        assert_eq!(seen.status, 401, "{adapter:?}: {seen:?}");
        let seen = send(
            &client,
            "GET",
            &format!("{}/orders/7?user_key=wrong", app.url),
            &[],
        )
        .await;
        assert_eq!(seen.status, 403, "{adapter:?}: {seen:?}");

        // GET /orders/7 → orders 1 (last); POST /orders → orders 5 + hits 1.
        // orders is a child of hits in the emulator, so hits counts 7.
        let totals = usage(&emulator, "2555417777820", ("user_key", "demo-premium-key")).await;
        assert_eq!(totals.get("orders"), Some(&6), "{adapter:?}: {totals:?}");
        assert_eq!(totals.get("hits"), Some(&7), "{adapter:?}: {totals:?}");
    }
}

#[tokio::test]
async fn the_sample_project_file_runs_cached_with_its_bypass_and_errors() {
    for adapter in ADAPTERS {
        let emulator = demo_emulator().await;
        let engine = ThreeScale::new(config_from("threescale.yaml", &emulator.url())).unwrap();
        let app = serve(adapter, engine.clone());
        let client = reqwest::Client::new();
        let key = "user_key=demo-premium-key";

        for _ in 0..3 {
            let seen = send(&client, "GET", &format!("{}/orders/7?{key}", app.url), &[]).await;
            assert_eq!(seen.status, 200, "{adapter:?}: {seen:?}");
        }
        let seen = send(&client, "GET", &format!("{}/health", app.url), &[]).await;
        assert_eq!(seen.status, 200, "{adapter:?}: {seen:?}");

        // Cached mode: one authorization for the key, usage reported in a batch.
        assert_eq!(emulator.stats().authorize, 1, "{adapter:?}");
        engine.flush().await.unwrap();
        let totals = usage(&emulator, "2555417777820", ("user_key", "demo-premium-key")).await;
        assert_eq!(totals.get("orders"), Some(&3), "{adapter:?}: {totals:?}");
        engine.shutdown().await;
    }
}
