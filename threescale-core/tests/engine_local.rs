//! Engine decisions that need no backend: bypass, missing credentials, no
//! mapping rule, configuration checks. The backend URL points at a closed port,
//! so any call would show up as a failure.

use threescale_core::{
    BackendVersion, Config, CredentialsConfig, CredentialsLocation, Decision, DenialKind,
    SimpleRequest, ThreeScale,
};

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn engine(version: BackendVersion, location: CredentialsLocation) -> ThreeScale {
    let config = Config::builder()
        .backend_url(closed_port_url())
        .service_token("token", "42")
        .backend_version(version)
        .credentials(CredentialsConfig::new(location))
        .rule("GET", "/orders/{id}$", "orders", 1)
        .bypass_path("/health")
        .build()
        .unwrap();
    ThreeScale::new(config).unwrap()
}

fn denial(decision: &Decision) -> Option<DenialKind> {
    match decision {
        Decision::Deny(d) => Some(d.kind),
        _ => None,
    }
}

#[tokio::test]
async fn decisions_without_a_backend_call() {
    let e = engine(BackendVersion::UserKey, CredentialsLocation::Query);
    let cases = [
        ("/health", None),
        ("/health/deep?x=1", None),
        ("/orders/1", Some(DenialKind::AuthMissing)),
        ("/nowhere", Some(DenialKind::AuthMissing)),
        ("/nowhere?user_key=k", Some(DenialKind::NoMatch)),
        ("/orders/1/items?user_key=k", Some(DenialKind::NoMatch)),
    ];
    for (uri, expected) in cases {
        let outcome = e.check(&SimpleRequest::get(uri)).await;
        assert_eq!(denial(&outcome.decision), expected, "{uri}");
        if expected.is_none() {
            assert_eq!(outcome.decision, Decision::Bypass, "{uri}");
        }
    }
    let stats = e.stats();
    assert_eq!(stats.backend_calls, 0);
    assert_eq!(stats.denied, 4);
}

#[tokio::test]
async fn app_id_mode_needs_both_parts() {
    let e = engine(BackendVersion::AppId, CredentialsLocation::Query);
    for uri in ["/orders/1?app_id=a", "/orders/1?app_key=k", "/orders/1"] {
        let outcome = e.check(&SimpleRequest::get(uri)).await;
        assert_eq!(
            denial(&outcome.decision),
            Some(DenialKind::AuthMissing),
            "{uri}"
        );
    }
    assert_eq!(e.stats().backend_calls, 0);
}

#[tokio::test]
async fn oauth_without_verifier_refuses_tokens_and_with_one_asks_the_backend() {
    let config = |url: String| {
        Config::builder()
            .backend_url(url)
            .service_token("token", "42")
            .backend_version(BackendVersion::OAuth)
            .build()
            .unwrap()
    };
    let request = SimpleRequest::get("/x").header("Authorization", "Bearer abc");
    let e = ThreeScale::new(config(closed_port_url())).unwrap();
    let outcome = e.check(&request).await;
    assert_eq!(denial(&outcome.decision), Some(DenialKind::AuthFailed));
    assert_eq!(e.stats().backend_calls, 0);
    let e = ThreeScale::with_token_verifier(config(closed_port_url()), |token| {
        (token == "abc").then(|| "client-1".to_string())
    })
    .unwrap();
    let outcome = e.check(&request).await;
    // Verified, then the (closed) backend is asked: fail closed.
    assert_eq!(
        denial(&outcome.decision),
        Some(DenialKind::BackendUnavailable)
    );
    assert_eq!(e.stats().backend_calls, 1);
    let outcome = e
        .check(&SimpleRequest::get("/x").header("Authorization", "Bearer forged"))
        .await;
    assert_eq!(denial(&outcome.decision), Some(DenialKind::AuthFailed));
}

#[test]
fn invalid_configurations_are_rejected_with_the_field_named() {
    let err = Config::builder().build().unwrap_err();
    assert_eq!(err.field, "provider_auth");
    let err = Config::builder()
        .service_token("t", "1")
        .backend_url("ftp://x")
        .build()
        .unwrap_err();
    assert_eq!(err.field, "backend_url");
    let err = Config::from_vars(|name| match name {
        "THREESCALE_SERVICE_TOKEN" => Some("t".into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(
        (err.source_name.as_str(), err.field.as_str()),
        ("env", "THREESCALE_SERVICE_ID")
    );
    let err = Config::from_vars(|name| match name {
        "THREESCALE_PROVIDER_KEY" => Some("k".into()),
        "THREESCALE_BACKEND_VERSION" => Some("3".into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(err.field, "THREESCALE_BACKEND_VERSION");
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let config = Config::builder()
        .service_token("very-secret-token", "42")
        .build()
        .unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("very-secret-token"), "{shown}");
    let engine = ThreeScale::new(config).unwrap();
    assert!(!format!("{engine:?}").contains("very-secret-token"));
}
