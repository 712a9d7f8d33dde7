//! Configuration from the admin portal: the engine loads a service's proxy
//! configuration from the emulator's admin portal on 127.0.0.1, real requests
//! go through the tower adapter with the portal's rules and error settings, a
//! changed rule set is picked up by a refresh, and a failing portal leaves the
//! last good configuration in force.

mod common;

use std::time::Duration;

use common::*;
use threescale::emulator::{EmulatorHandle, Faults, MappingRuleConfig};
use threescale::{Config, ThreeScale};
use threescale::{DeploymentEnv, Portal};

const SERVICE: &str = "3003";
const TOKEN: &str = "portal-token";

const BACKEND: &str = r#"
admin_access_token: "portal-token"
services:
  - id: "3003"
    backend_version: "1"
    service_token: "tok-3003"
    system_name: shop
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
      - { name: search, parent: hits }
    plans:
      - { name: basic, limits: [{ metric: hits, period: minute, value: 1000 }] }
    applications:
      - { plan: basic, user_key: "uk" }
    proxy:
      credentials_location: query
      auth_user_key: api_key
      error_no_match: "no rule here"
      error_status_no_match: 412
      error_auth_missing: "key please"
      mapping_rules:
        - { http_method: GET, pattern: "/orders/{id}$", metric_system_name: orders, delta: 1 }
        - { http_method: GET, pattern: "/search?q={q}", metric_system_name: search, delta: 2 }
  - id: "4004"
    backend_version: "2"
    service_token: "tok-4004"
    metrics: [{ name: hits }]
    plans: [{ name: pro }]
    applications:
      - { plan: pro, app_id: "app1", app_keys: ["key1"] }
"#;

/// The gateway's variables, pointing at the emulator's admin portal.
fn portal_for(emulator: &EmulatorHandle, service_id: &str, env: &str) -> Portal {
    let endpoint = emulator.portal_endpoint(TOKEN);
    let service_id = service_id.to_string();
    let env = env.to_string();
    Portal::from_vars(move |name| match name {
        "THREESCALE_PORTAL_ENDPOINT" => Some(endpoint.clone()),
        "THREESCALE_SERVICE_ID" => Some(service_id.clone()),
        "THREESCALE_DEPLOYMENT_ENV" => Some(env.clone()),
        "APICAST_CONFIGURATION_CACHE" => Some("300".into()),
        _ => None,
    })
    .expect("valid variables")
    .expect("a portal is configured")
}

fn rule_count(engine: &ThreeScale) -> usize {
    engine.service().mapping_rules.rules().len()
}

#[tokio::test]
async fn the_portal_configuration_governs_requests() {
    let emulator = emulator_with(BACKEND).await;
    let portal = portal_for(&emulator, SERVICE, "production");
    assert_eq!(portal.refresh_interval(), Some(Duration::from_secs(300)));
    assert_eq!(
        portal.url(),
        format!(
            "{}/admin/api/services/3003/proxy/configs/production/latest.json",
            emulator.url()
        )
    );
    let config = portal.load().await.expect("the portal answers");
    assert_eq!(config.service.service_id, SERVICE);
    assert_eq!(config.service.system_name.as_deref(), Some("shop"));
    assert_eq!(config.service.backend_url, emulator.url());
    let rules = config.service.mapping_rules.rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].http_method, "GET");
    assert_eq!(rules[0].pattern, "/orders/{id}$");
    assert_eq!(rules[0].metric_system_name, "orders");
    assert_eq!(rules[1].delta, 2);

    let engine = ThreeScale::new(config).expect("engine");
    let app = serve(Adapter::Axum, engine.clone());
    let client = reqwest::Client::new();

    // the portal's credential name and rules
    let seen = send(
        &client,
        "GET",
        &format!("{}/orders/7?api_key=uk", app.url),
        &[],
    )
    .await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(seen.body, "ok");
    let seen = send(
        &client,
        "GET",
        &format!("{}/search?q=shoes&api_key=uk", app.url),
        &[],
    )
    .await;
    assert_eq!(seen.status, 200, "{seen:?}");
    // the querystring_parameters the portal derived: no `q`, no match
    let seen = send(
        &client,
        "GET",
        &format!("{}/search?api_key=uk", app.url),
        &[],
    )
    .await;
    assert_eq!(seen.status, 412);
    assert_eq!(seen.body, "no rule here");
    // `$`: exact match only
    let seen = send(
        &client,
        "GET",
        &format!("{}/orders/7/items?api_key=uk", app.url),
        &[],
    )
    .await;
    assert_eq!(seen.status, 412);
    // the default name is not the portal's
    let seen = send(
        &client,
        "GET",
        &format!("{}/orders/7?user_key=uk", app.url),
        &[],
    )
    .await;
    assert_eq!(seen.status, 401);
    assert_eq!(seen.body, "key please");

    let usage = usage(&emulator, SERVICE, ("user_key", "uk")).await;
    assert_eq!(usage.get("orders"), Some(&1));
    assert_eq!(usage.get("search"), Some(&2));
    assert_eq!(usage.get("hits"), Some(&3));
    engine.shutdown().await;
}

#[tokio::test]
async fn config_from_portal_for_an_app_id_service() {
    let emulator = emulator_with(BACKEND).await;
    let config = Config::from_portal(&emulator.url(), TOKEN, "4004", DeploymentEnv::Staging)
        .await
        .expect("the portal answers");
    assert_eq!(config.service.service_id, "4004");
    // no proxy section: one rule GET / -> hits 1
    assert_eq!(config.service.mapping_rules.rules().len(), 1);
    let engine = ThreeScale::new(config).expect("engine");
    let app = serve(Adapter::Axum, engine.clone());
    let client = reqwest::Client::new();
    let ok = format!("{}/anything?app_id=app1&app_key=key1", app.url);
    assert_eq!(send(&client, "GET", &ok, &[]).await.status, 200);
    let bad = format!("{}/anything?app_id=app1&app_key=wrong", app.url);
    assert_eq!(send(&client, "GET", &bad, &[]).await.status, 403);
    let post = send(&client, "POST", &ok, &[]).await;
    assert_eq!(post.status, 404, "the default rule is GET only");
    assert_eq!(
        usage(&emulator, "4004", ("app_id", "app1"))
            .await
            .get("hits"),
        Some(&1)
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn the_portal_refuses_a_wrong_token_or_an_unknown_service() {
    let emulator = emulator_with(BACKEND).await;
    let wrong = Config::from_portal(&emulator.url(), "nope", SERVICE, DeploymentEnv::Production)
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("403"), "{wrong}");
    assert!(!wrong.to_string().contains(TOKEN));
    let unknown = Config::from_portal(&emulator.url(), TOKEN, "999", DeploymentEnv::Production)
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("404"), "{unknown}");
}

#[tokio::test]
async fn a_refresh_puts_changed_rules_in_force() {
    let emulator = emulator_with(BACKEND).await;
    let portal = portal_for(&emulator, SERVICE, "staging");
    let engine = ThreeScale::new(portal.load().await.unwrap()).unwrap();
    let app = serve(Adapter::Axum, engine.clone());
    let client = reqwest::Client::new();
    let old = format!("{}/orders/7?api_key=uk", app.url);
    let new = format!("{}/v2/orders?api_key=uk", app.url);
    assert_eq!(send(&client, "GET", &old, &[]).await.status, 200);
    assert_eq!(send(&client, "GET", &new, &[]).await.status, 412);

    let version = emulator
        .set_proxy_rules(
            SERVICE,
            vec![MappingRuleConfig::new("GET", "/v2/orders", "orders", 5)],
        )
        .unwrap();
    assert_eq!(version, 2);
    // nothing changes until the refresh
    assert_eq!(send(&client, "GET", &new, &[]).await.status, 412);
    portal.refresh(&engine).await.expect("refresh succeeds");
    assert_eq!(rule_count(&engine), 1);
    assert_eq!(send(&client, "GET", &new, &[]).await.status, 200);
    let gone = send(&client, "GET", &old, &[]).await;
    assert_eq!(gone.status, 412);
    assert_eq!(
        gone.body, "no rule here",
        "error settings survive the refresh"
    );
    let usage = usage(&emulator, SERVICE, ("user_key", "uk")).await;
    assert_eq!(usage.get("orders"), Some(&6));
    engine.shutdown().await;
}

#[tokio::test]
async fn keep_fresh_refreshes_in_the_background() {
    let emulator = emulator_with(BACKEND).await;
    let portal =
        portal_for(&emulator, SERVICE, "production").refresh_every(Duration::from_millis(50));
    let engine = ThreeScale::new(portal.load().await.unwrap()).unwrap();
    let task = tokio::spawn(portal.keep_fresh(engine.clone()));
    assert_eq!(rule_count(&engine), 2);
    emulator
        .set_proxy_rules(
            SERVICE,
            vec![
                MappingRuleConfig::new("GET", "/a", "hits", 1),
                MappingRuleConfig::new("GET", "/b", "hits", 1),
                MappingRuleConfig::new("GET", "/c", "hits", 1),
            ],
        )
        .unwrap();
    // wait (bounded) for the background task to pick the change up
    let mut waited = Duration::ZERO;
    while rule_count(&engine) != 3 {
        assert!(
            waited < Duration::from_secs(30),
            "the refresh never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert_eq!(engine.service().mapping_rules.rules()[2].pattern, "/c");
    task.abort();
    engine.shutdown().await;
}

/// How the portal fails in [`a_failing_portal_keeps_the_last_good_config`].
fn portal_failures() -> Vec<(&'static str, Faults)> {
    vec![
        (
            "5xx",
            Faults {
                error_every_nth: Some(1),
                error_status: Some(500),
                ..Faults::default()
            },
        ),
        (
            "invalid JSON",
            Faults {
                malformed_every_nth: Some(1),
                ..Faults::default()
            },
        ),
        (
            "timeout",
            Faults {
                latency_ms: 3_000,
                ..Faults::default()
            },
        ),
        (
            "dropped connection",
            Faults {
                drop_every_nth: Some(1),
                ..Faults::default()
            },
        ),
    ]
}

#[tokio::test]
async fn a_failing_portal_keeps_the_last_good_config() {
    let emulator = emulator_with(BACKEND).await;
    let portal = portal_for(&emulator, SERVICE, "production").timeout(Duration::from_secs(1));
    let engine = ThreeScale::new(portal.load().await.unwrap()).unwrap();
    let app = serve(Adapter::Axum, engine.clone());
    let client = reqwest::Client::new();
    let old = format!("{}/orders/7?api_key=uk", app.url);
    let new = format!("{}/v3/orders?api_key=uk", app.url);

    // a change is waiting in the portal, but the portal fails to deliver it
    emulator
        .set_proxy_rules(
            SERVICE,
            vec![MappingRuleConfig::new("GET", "/v3/orders", "orders", 1)],
        )
        .unwrap();
    for (what, faults) in portal_failures() {
        emulator.set_portal_faults(faults);
        let error = portal.refresh(&engine).await;
        assert!(error.is_err(), "{what}: the refresh should fail");
        assert!(
            !error.unwrap_err().to_string().contains(TOKEN),
            "{what}: no secret in the error"
        );
        assert_eq!(rule_count(&engine), 2, "{what}");
        // the backend keeps working and the old rules stay in force
        assert_eq!(send(&client, "GET", &old, &[]).await.status, 200, "{what}");
        let seen = send(&client, "GET", &new, &[]).await;
        assert_eq!(seen.status, 412, "{what}");
    }

    // the portal is back: the change arrives
    emulator.clear_portal_faults();
    portal.refresh(&engine).await.expect("refresh succeeds");
    assert_eq!(rule_count(&engine), 1);
    assert_eq!(send(&client, "GET", &new, &[]).await.status, 200);
    assert_eq!(send(&client, "GET", &old, &[]).await.status, 412);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_portal_down_at_start_is_an_error() {
    let emulator = emulator_with(BACKEND).await;
    emulator.set_portal_faults(Faults {
        error_every_nth: Some(1),
        ..Faults::default()
    });
    let error = portal_for(&emulator, SERVICE, "production")
        .load()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_selection_of_services_from_the_portal_in_one_engine() {
    let emulator = emulator_with(BACKEND).await;
    // Neither service has `proxy.hosts`: both answer on `localhost`, the
    // gateway's default, and path routing tells them apart.
    let engine = threescale::Services::from_portal(
        &emulator.url(),
        TOKEN,
        &["3003", "4004"],
        DeploymentEnv::Production,
    )
    .await
    .expect("the portal answers")
    .path_routing(threescale::PathRouting::On)
    .build()
    .expect("engine");
    let members = engine.services().expect("several services");
    assert_eq!(members.len(), 2);
    let app = serve(Adapter::Axum, engine.clone());
    let client = reqwest::Client::new();
    let host = [("host", "localhost")];
    let orders = format!("{}/orders/1?api_key=uk", app.url);
    assert_eq!(send(&client, "GET", &orders, &host).await.status, 200);
    let other = format!("{}/anything?app_id=app1&app_key=key1", app.url);
    assert_eq!(send(&client, "GET", &other, &host).await.status, 200);
    // 3003's own error settings for its requests.
    let missing = send(&client, "GET", &format!("{}/orders/1", app.url), &host).await;
    assert_eq!((missing.status, missing.body.as_str()), (401, "key please"));
    // Another host: no service.
    let elsewhere = send(&client, "GET", &orders, &[("host", "shop.test")]).await;
    assert_eq!((elsewhere.status, elsewhere.body.as_str()), (404, ""));
    engine.shutdown().await;
    assert_eq!(
        usage(&emulator, "3003", ("user_key", "uk"))
            .await
            .get("orders"),
        Some(&1)
    );
    assert_eq!(
        usage(&emulator, "4004", ("app_id", "app1"))
            .await
            .get("hits"),
        Some(&1)
    );
    // An id the portal does not know is an error naming it.
    let unknown = threescale::Services::from_portal(
        &emulator.url(),
        TOKEN,
        &["3003", "999"],
        DeploymentEnv::Production,
    )
    .await
    .unwrap_err();
    assert!(unknown.to_string().contains("999"), "{unknown}");
}
