//! The emulator's own endpoints, the Rust handle, and the shipped example config.

mod common;

use common::*;
use threescale_emulator::{AppRef, Emulator, EmulatorConfig, EmulatorError, RequestStats};

#[tokio::test]
async fn usage_endpoint_shape() {
    let h = start().await;
    get(
        &h,
        "/transactions/authrep.xml?provider_key=pk1&app_id=app1&app_key=key1&usage[search]=3",
    )
    .await;
    let r = get(&h, "/_emulator/usage?service_id=1001&app_id=app1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let three = r#"{"minute":3,"hour":3,"day":3,"week":3,"month":3,"year":3,"eternity":3}"#;
    let zero = r#"{"minute":0,"hour":0,"day":0,"week":0,"month":0,"year":0,"eternity":0}"#;
    assert_eq!(
        r.body,
        format!(
            r#"{{"service_id":"1001","app_id":"app1","usage":{{"deep":{zero},"hits":{three},"other":{zero},"search":{three}}}}}"#
        )
    );
    let r = get(&h, "/_emulator/usage?service_id=1002&user_key=uk1").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["app_id"], "legacy-app");
    assert_eq!(v["user_key"], "uk1");
    assert_eq!(
        get(&h, "/_emulator/usage?service_id=1001").await.status,
        400
    );
    assert_eq!(get(&h, "/_emulator/usage?app_id=app1").await.status, 400);
    assert_eq!(
        get(&h, "/_emulator/usage?service_id=1001&app_id=nope")
            .await
            .status,
        404
    );
    assert_eq!(
        get(&h, "/_emulator/usage?service_id=nope&app_id=app1")
            .await
            .status,
        404
    );
    assert!(h.usage("1001", AppRef::app_id("nope")).is_none());
}

#[tokio::test]
async fn stats_and_reset() {
    let h = start().await;
    let app = "provider_key=pk1&app_id=app1&app_key=key1";
    get(&h, &format!("/transactions/authorize.xml?{app}")).await;
    get(
        &h,
        &format!("/transactions/authrep.xml?{app}&usage[hits]=1"),
    )
    .await;
    get(
        &h,
        &format!("/transactions/authrep.xml?{app}&usage[hits]=1"),
    )
    .await;
    get(
        &h,
        "/transactions/oauth_authorize.xml?provider_key=pk2&app_id=oapp",
    )
    .await;
    get(
        &h,
        "/transactions/oauth_authrep.xml?provider_key=pk2&app_id=oapp&usage[hits]=1",
    )
    .await;
    report(&h, "provider_key=pk1&transactions[0][app_id]=app1&transactions[0][usage][hits]=1&transactions[1][app_id]=app1&transactions[1][usage][hits]=1").await;
    get(&h, "/transactions/authrep.xml?provider_key=pk1&app_id=nope").await;
    let expected = RequestStats {
        authorize: 1,
        authrep: 3,
        oauth_authorize: 1,
        oauth_authrep: 1,
        report: 1,
        transactions: 2,
        transactions_applied: 2,
        transactions_discarded: 0,
    };
    assert_eq!(h.stats(), expected);
    let r = get(&h, "/_emulator/stats").await;
    assert_eq!(
        r.body,
        r#"{"authorize":1,"authrep":3,"oauth_authorize":1,"oauth_authrep":1,"report":1,"transactions":2,"transactions_applied":2,"transactions_discarded":0}"#
    );
    assert_eq!(
        h.usage("1001", AppRef::app_id("app1")).unwrap().usage["hits"].day,
        4
    );
    assert_eq!(h.errors("1001").unwrap().len(), 1);

    let r = post(&h, "/_emulator/reset", "", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.stats(), RequestStats::default());
    assert_eq!(
        h.usage("1001", AppRef::app_id("app1")).unwrap().usage["hits"].eternity,
        0
    );
    assert!(h.errors("1001").unwrap().is_empty());
    // the Rust reset does the same
    get(
        &h,
        &format!("/transactions/authrep.xml?{app}&usage[hits]=1"),
    )
    .await;
    h.reset();
    assert_eq!(h.stats().authrep, 0);
}

#[tokio::test]
async fn invalid_configs_are_refused_by_start() {
    let config: EmulatorConfig = serde_json::from_str(
        r#"{"services":[{"id":"1","applications":[{"plan":"missing","app_id":"a"}]}]}"#,
    )
    .unwrap();
    assert!(matches!(
        Emulator::start(config.clone()).await,
        Err(EmulatorError::Invalid(_))
    ));
    // the router alone skips the bad entry
    let (_router, state) = Emulator::router(config);
    assert!(state.usage("1", AppRef::app_id("a")).is_none());
    assert!(matches!(
        EmulatorConfig::from_yaml_str("services: [{id: 1, metrics: nope}]"),
        Err(EmulatorError::Parse(_))
    ));
    assert!(matches!(
        EmulatorConfig::from_file("does-not-exist.yaml"),
        Err(EmulatorError::Io { .. })
    ));
}

#[tokio::test]
async fn shipped_example_config() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/emulator.yaml");
    let config = EmulatorConfig::from_file(path).unwrap();
    let first = &config.services[0];
    assert_eq!(first.id, "2555417777820");
    assert_eq!(first.backend_version, "1");
    assert_eq!(first.service_token.as_deref(), Some("demo-service-token"));
    assert_eq!(first.provider_key.as_deref(), Some("demo-provider-key"));
    let h = start_with(config).await;
    let q = "/transactions/authrep.xml?service_token=demo-service-token&service_id=2555417777820&user_key=demo-user-key&usage[hits]=1";
    for _ in 0..5 {
        assert_eq!(get(&h, q).await.status, 200);
    }
    let r = get(&h, q).await;
    assert_eq!(r.status, 409);
    assert!(
        r.body
            .contains("<reason>usage limits are exceeded</reason><plan>basic</plan>")
    );
    // orders is a method of hits
    let q = "/transactions/authrep.xml?provider_key=demo-provider-key&user_key=demo-premium-key&usage[orders]=2";
    assert_eq!(get(&h, q).await.status, 200);
    let u = h
        .usage("2555417777820", AppRef::user_key("demo-premium-key"))
        .unwrap();
    assert_eq!((u.usage["hits"].minute, u.usage["orders"].day), (2, 2));
    // the app_id/app_key service
    let q = "/transactions/authrep.xml?service_token=demo-v2-service-token&service_id=2555417777821&app_id=demo-app&app_key=demo-app-key&usage[hits]=1";
    assert_eq!(get(&h, q).await.status, 200);
    let q = "/transactions/authrep.xml?provider_key=demo-provider-key&service_id=2555417777821&app_id=demo-app&app_key=wrong";
    assert_eq!(get(&h, q).await.status, 409);
}

#[tokio::test]
async fn graceful_shutdown_and_clones() {
    let h = start().await;
    let other = h.clone();
    let url = h.url();
    assert_eq!(h.addr().ip().to_string(), "127.0.0.1");
    h.shutdown().await;
    assert!(client().get(format!("{url}/status")).send().await.is_err());
    // a second shutdown through a clone is a no-op
    other.shutdown().await;
}
