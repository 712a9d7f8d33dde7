//! Referrer filters end to end: the engine sends the request's `Referer` (or a
//! configured header) as the backend's `referrer`, the emulator enforces the
//! application's filters as the backend does, through both adapters and both
//! modes. In Cached mode an authorization obtained for one referrer never
//! admits another, and a `*` referrer (the backend's "skip the check") is
//! never passed on.

mod common;

use common::*;
use threescale::{CacheSettings, Config, Mode, ThreeScale};

const BACKEND: &str = r#"
services:
  - id: "5005"
    backend_version: "1"
    service_token: "tok-5005"
    referrer_filters_required: true
    metrics: [{ name: hits }]
    plans: [{ name: basic, limits: [{ metric: hits, period: minute, value: 1000 }] }]
    applications:
      - { plan: basic, user_key: "uk-web", referrer_filters: ["https://*.shop.test/*", "https://partner.test/"] }
      - { plan: basic, user_key: "uk-any" }
"#;

const GOOD: &str = "https://www.shop.test/cart";
const OTHER_GOOD: &str = "https://partner.test/";
const BAD: &str = "https://evil.test/";

fn engine(emulator: &threescale::emulator::EmulatorHandle, mode: Mode, header: &str) -> ThreeScale {
    ThreeScale::new(
        Config::builder()
            .backend_url(emulator.url())
            .service_token("tok-5005", "5005")
            .referrer_header(header)
            .mode(mode)
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn modes() -> [Mode; 2] {
    [
        Mode::Sync,
        Mode::Cached(CacheSettings::default().flush_interval(std::time::Duration::from_millis(50))),
    ]
}

async fn hits(emulator: &threescale::emulator::EmulatorHandle, key: &str) -> u64 {
    usage(emulator, "5005", ("user_key", key))
        .await
        .get("hits")
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn allowed_refused_and_missing_referrers_on_both_adapters_and_modes() {
    let http = reqwest::Client::new();
    for mode in modes() {
        for adapter in ADAPTERS {
            let emulator = emulator_with(BACKEND).await;
            let engine = engine(&emulator, mode, "Referer");
            let app = serve(adapter, engine.clone());
            let url = format!("{}/a?user_key=uk-web", app.url);
            let at = |referrer: &'static str| [("referer", referrer)];

            let seen = send(&http, "GET", &url, &at(GOOD)).await;
            assert_eq!(seen.status, 200, "{mode:?} {adapter:?} allowed: {seen:?}");
            let seen = send(&http, "GET", &url, &at(OTHER_GOOD)).await;
            assert_eq!(seen.status, 200, "{mode:?} {adapter:?} allowed: {seen:?}");
            let seen = send(&http, "GET", &url, &at(BAD)).await;
            assert_eq!(seen.status, 403, "{mode:?} {adapter:?} refused: {seen:?}");
            let seen = send(&http, "GET", &url, &[]).await;
            assert_eq!(seen.status, 403, "{mode:?} {adapter:?} missing: {seen:?}");
            // An application without filters needs no referrer.
            let seen = send(&http, "GET", &format!("{}/a?user_key=uk-any", app.url), &[]).await;
            assert_eq!(
                seen.status, 200,
                "{mode:?} {adapter:?} no filters: {seen:?}"
            );

            drop(app);
            engine.shutdown().await;
            assert_eq!(
                hits(&emulator, "uk-web").await,
                2,
                "{mode:?} {adapter:?}: only allowed hits count"
            );
            assert_eq!(hits(&emulator, "uk-any").await, 1, "{mode:?} {adapter:?}");
            emulator.shutdown().await;
        }
    }
}

#[tokio::test]
async fn a_cached_allow_for_one_referrer_never_admits_another() {
    let emulator = emulator_with(BACKEND).await;
    let engine = engine(&emulator, modes()[1], "Referer");
    let http = reqwest::Client::new();
    for adapter in ADAPTERS {
        let app = serve(adapter, engine.clone());
        let url = format!("{}/a?user_key=uk-web", app.url);
        // Warm the cache with an allowed referrer...
        for _ in 0..3 {
            let seen = send(&http, "GET", &url, &[("referer", GOOD)]).await;
            assert_eq!(seen.status, 200, "{adapter:?}: {seen:?}");
        }
        // ...then the same key from elsewhere, with no referrer, and with the
        // backend's wildcard, which must not be passed on.
        for (name, headers) in [
            ("refused", vec![("referer", BAD)]),
            ("missing", vec![]),
            ("wildcard", vec![("referer", "*")]),
            ("empty", vec![("referer", "")]),
        ] {
            for _ in 0..2 {
                let seen = send(&http, "GET", &url, &headers).await;
                assert_eq!(seen.status, 403, "{adapter:?} {name}: {seen:?}");
            }
        }
        let seen = send(&http, "GET", &url, &[("referer", GOOD)]).await;
        assert_eq!(
            seen.status, 200,
            "{adapter:?}: the good referrer still works"
        );
    }
    engine.shutdown().await;
    assert_eq!(
        hits(&emulator, "uk-web").await,
        8,
        "only the allowed requests are reported"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_configured_header_is_sent_instead_of_referer() {
    let emulator = emulator_with(BACKEND).await;
    let engine = engine(&emulator, Mode::Sync, "X-Origin-Page");
    let http = reqwest::Client::new();
    let app = serve(Adapter::Axum, engine.clone());
    let url = format!("{}/a?user_key=uk-web", app.url);
    let seen = send(
        &http,
        "GET",
        &url,
        &[("x-origin-page", GOOD), ("referer", BAD)],
    )
    .await;
    assert_eq!(seen.status, 200, "{seen:?}");
    let seen = send(&http, "GET", &url, &[("referer", GOOD)]).await;
    assert_eq!(
        seen.status, 403,
        "Referer is not read when another header is configured"
    );
    drop(app);
    engine.shutdown().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn without_the_setting_no_referrer_is_sent() {
    let emulator = emulator_with(BACKEND).await;
    let engine = ThreeScale::new(
        Config::builder()
            .backend_url(emulator.url())
            .service_token("tok-5005", "5005")
            .build()
            .unwrap(),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let app = serve(Adapter::Axum, engine.clone());
    let seen = send(
        &http,
        "GET",
        &format!("{}/a?user_key=uk-web", app.url),
        &[("referer", GOOD)],
    )
    .await;
    assert_eq!(
        seen.status, 403,
        "the backend refuses an app with filters and no referrer"
    );
    drop(app);
    engine.shutdown().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_new_referrer_per_request_never_gets_fresh_counters() {
    // An application without filters accepts any referrer: a client that
    // sends a different `Referer` with every request must still meet its
    // plan's limit once, not once per referrer.
    const LIMITED: &str = r#"
services:
  - id: "5005"
    backend_version: "1"
    service_token: "tok-5005"
    referrer_filters_required: true
    metrics: [{ name: hits }]
    plans: [{ name: small, limits: [{ metric: hits, period: day, value: 5 }] }]
    applications:
      - { plan: small, user_key: "uk-any" }
      - { plan: small, user_key: "uk-web", referrer_filters: ["https://*.shop.test/*"] }
"#;
    let http = reqwest::Client::new();
    for adapter in ADAPTERS {
        let emulator = emulator_with(LIMITED).await;
        let engine = engine(&emulator, modes()[1], "Referer");
        let app = serve(adapter, engine.clone());
        for key in ["uk-any", "uk-web"] {
            let url = format!("{}/a?user_key={key}", app.url);
            let mut admitted = 0;
            for i in 0..20 {
                let referrer = format!("https://site{i}.shop.test/page");
                let seen = send(&http, "GET", &url, &[("referer", referrer.as_str())]).await;
                match seen.status {
                    200 => admitted += 1,
                    429 => {}
                    other => panic!("{adapter:?} {key}: unexpected {other}: {seen:?}"),
                }
            }
            assert_eq!(admitted, 5, "{adapter:?} {key}: one limit per application");
        }
        drop(app);
        engine.shutdown().await;
        assert_eq!(hits(&emulator, "uk-any").await, 5, "{adapter:?}");
        assert_eq!(hits(&emulator, "uk-web").await, 5, "{adapter:?}");
        emulator.shutdown().await;
    }
}
