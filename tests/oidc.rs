//! OpenID Connect end to end, on both adapters: tokens of a fake issuer written
//! here (RS256 with a fixture key, ES256 with a key made at run time) and of the
//! emulator's development issuer, checked by the engine, then `oauth_authrep`
//! against the emulator with the token's client id.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Adapter, Seen, send, serve, usage};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use threescale::oidc::{ClientIdClaim, OidcSettings};
use threescale::{Decision, DenialKind, ErrorResponse, FailurePolicy, SimpleRequest, ThreeScale};

const BACKEND: &str = r#"
services:
  - id: "3003"
    backend_version: oauth
    service_token: "tok-3003"
    metrics: [{ name: hits }]
    plans: [{ name: pro, limits: [{ metric: hits, period: hour, value: 1000 }] }]
    applications:
      - { plan: pro, app_id: "client-a", app_keys: ["secret-a"] }
      - { plan: pro, app_id: "client-b", app_keys: ["secret-b"] }
      - { plan: pro, app_id: "client-c", app_keys: ["secret-c"] }
"#;

const REFUSED: &str = "token refused";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signing keys the tests hold.
struct Keys {
    rsa: EncodingKey,
    rsa_jwk: Value,
    /// The RSA key's public parts, as an attacker would use them for HS256.
    rsa_public_bytes: Vec<u8>,
    ec: EncodingKey,
    ec_jwk: Value,
}

fn ec_key(kid: &str) -> (EncodingKey, Value) {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

fn keys() -> Keys {
    let fixture: Value =
        serde_json::from_str(include_str!("data/oidc-test-rsa.json")).expect("fixture");
    let der = STANDARD
        .decode(fixture["pkcs1_der_base64"].as_str().unwrap())
        .unwrap();
    let n = fixture["n"].as_str().unwrap();
    let (ec, ec_jwk) = ec_key("ec-1");
    Keys {
        rsa: EncodingKey::from_rsa_der(&der),
        rsa_jwk: json!({"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"}),
        rsa_public_bytes: URL_SAFE_NO_PAD.decode(n).unwrap(),
        ec,
        ec_jwk,
    }
}

fn mint(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A fake issuer on 127.0.0.1: discovery and key set, counting fetches; it
/// can be taken down (503) and given new keys.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
    jwks_fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn issuer(keys: Vec<Value>) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/realms/demo", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(keys));
    let down = Arc::new(AtomicBool::new(false));
    let jwks_fetches = Arc::new(AtomicUsize::new(0));
    let discovery = json!({
        "issuer": url,
        "jwks_uri": format!("{url}/protocol/openid-connect/certs"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    });
    let app = {
        let (keys, down, fetches) = (keys.clone(), down.clone(), jwks_fetches.clone());
        let down2 = down.clone();
        axum::Router::new()
            .route(
                "/realms/demo/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let down = down2.clone();
                    let discovery = discovery.clone();
                    async move {
                        if down.load(Ordering::SeqCst) {
                            return Err(http::StatusCode::SERVICE_UNAVAILABLE);
                        }
                        Ok(axum::Json(discovery))
                    }
                }),
            )
            .route(
                "/realms/demo/protocol/openid-connect/certs",
                axum::routing::get(move || {
                    let (keys, down, fetches) = (keys.clone(), down.clone(), fetches.clone());
                    async move {
                        if down.load(Ordering::SeqCst) {
                            return Err(http::StatusCode::SERVICE_UNAVAILABLE);
                        }
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let keys = keys.lock().unwrap().clone();
                        Ok(axum::Json(json!({ "keys": keys })))
                    }
                }),
            )
    };
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Issuer {
        url,
        keys,
        down,
        jwks_fetches,
        task,
    }
}

fn engine(
    backend: &threescale::emulator::EmulatorHandle,
    settings: OidcSettings,
    policy: FailurePolicy,
) -> ThreeScale {
    let config = common::config_for(backend)
        .service_token("tok-3003", "3003")
        .oidc(settings)
        .failure_policy(policy)
        .rule("ANY", "/", "hits", 1)
        .error_response(
            DenialKind::AuthFailed,
            ErrorResponse::new(http::StatusCode::FORBIDDEN, REFUSED),
        )
        .build()
        .unwrap();
    ThreeScale::new(config).unwrap()
}

/// Standard claims for `client` from issuer `iss`.
fn claims(iss: &str, client: &str) -> Value {
    json!({"iss": iss, "sub": client, "aud": "account", "azp": client, "typ": "Bearer",
        "iat": now(), "exp": now() + 300})
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(field);
    } else {
        claims[field] = value;
    }
    claims
}

struct Case {
    name: &'static str,
    /// `None`: no Authorization header.
    token: Option<String>,
    status: u16,
    body: Option<&'static str>,
    /// The application that must gain one hit (`None`: none of the three).
    counted: Option<&'static str>,
}

fn case(name: &'static str, token: Option<String>, status: u16) -> Case {
    Case {
        name,
        token,
        status,
        body: None,
        counted: None,
    }
}

impl Case {
    fn body(mut self, body: &'static str) -> Self {
        self.body = Some(body);
        self
    }
    fn counts(mut self, app: &'static str) -> Self {
        self.counted = Some(app);
        self
    }
}

fn cases(keys: &Keys, iss: &str) -> Vec<Case> {
    let rs = |claims: &Value| Some(mint(Algorithm::RS256, Some("rsa-1"), &keys.rsa, claims));
    let es = |claims: &Value| Some(mint(Algorithm::ES256, Some("ec-1"), &keys.ec, claims));
    let good = claims(iss, "client-a");
    // A valid token whose payload is swapped for client-b's, signature kept.
    let tampered = {
        let token = rs(&good).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(claims(iss, "client-b").to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let none_alg = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims(iss, "client-b").to_string());
        format!("{header}.{payload}.")
    };
    // Algorithm confusion: HS256 "signed" with the RSA key's public modulus.
    let hs_confusion = mint(
        Algorithm::HS256,
        Some("rsa-1"),
        &EncodingKey::from_secret(&keys.rsa_public_bytes),
        &claims(iss, "client-b"),
    );
    // ES256 header on the RSA key's id: the key is not for that algorithm.
    let wrong_family = mint(
        Algorithm::ES256,
        Some("rsa-1"),
        &keys.ec,
        &claims(iss, "client-b"),
    );
    let other_key = ec_key("ec-1").0;
    vec![
        case("RS256 token", rs(&good), 200).counts("client-a"),
        case("ES256 token", es(&claims(iss, "client-b")), 200).counts("client-b"),
        case("no token", None, 401).body("Authentication parameters missing"),
        case("not a JWT", Some("not-a-jwt".into()), 403).body(REFUSED),
        case(
            "expired beyond the leeway",
            rs(&with(good.clone(), "exp", json!(now() - 120))),
            403,
        )
        .body(REFUSED),
        case(
            "expired within the leeway (clock skew)",
            rs(&with(good.clone(), "exp", json!(now() - 10))),
            200,
        )
        .counts("client-a"),
        case(
            "not yet valid within the leeway (clock skew)",
            es(&with(good.clone(), "nbf", json!(now() + 10))),
            200,
        )
        .counts("client-a"),
        case(
            "not yet valid beyond the leeway",
            es(&with(good.clone(), "nbf", json!(now() + 120))),
            403,
        ),
        case(
            "wrong issuer",
            rs(&with(
                good.clone(),
                "iss",
                json!("http://127.0.0.1:1/realms/evil"),
            )),
            403,
        )
        .body(REFUSED),
        case("no exp", rs(&with(good.clone(), "exp", Value::Null)), 403),
        case("no sub", rs(&with(good.clone(), "sub", Value::Null)), 403),
        case("no aud", rs(&with(good.clone(), "aud", Value::Null)), 403),
        case(
            "an ID token is not an access token",
            rs(&with(good.clone(), "typ", json!("ID"))),
            403,
        ),
        case(
            "no client id claim",
            rs(&with(good.clone(), "azp", Value::Null)),
            403,
        ),
        case("client unknown to 3scale", rs(&claims(iss, "ghost")), 403).body(REFUSED),
        case(
            "unknown key id",
            Some(mint(
                Algorithm::ES256,
                Some("nobody"),
                &other_key,
                &claims(iss, "client-b"),
            )),
            403,
        ),
        case(
            "known key id, other key",
            Some(mint(
                Algorithm::ES256,
                Some("ec-1"),
                &other_key,
                &claims(iss, "client-b"),
            )),
            403,
        ),
        case(
            "no key id",
            Some(mint(Algorithm::RS256, None, &keys.rsa, &good)),
            403,
        ),
        case("tampered payload", Some(tampered), 403).body(REFUSED),
        case("alg none", Some(none_alg), 403).body(REFUSED),
        case("HS256 with the RSA public key", Some(hs_confusion), 403).body(REFUSED),
        case("ES256 on an RSA key", Some(wrong_family), 403),
    ]
}

async fn counts(backend: &threescale::emulator::EmulatorHandle) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for app in ["client-a", "client-b", "client-c"] {
        let hits = usage(backend, "3003", ("app_id", app))
            .await
            .get("hits")
            .copied()
            .unwrap_or(0);
        out.insert(app, hits);
    }
    out
}

async fn run_cases(adapter: Adapter) -> Vec<(String, Seen)> {
    let backend = common::emulator_with(BACKEND).await;
    let keys = keys();
    let issuer = issuer(vec![keys.rsa_jwk.clone(), keys.ec_jwk.clone()]).await;
    let engine = engine(
        &backend,
        OidcSettings::new(&issuer.url),
        FailurePolicy::Closed,
    );
    let app = serve(adapter, engine.clone());
    let client = reqwest::Client::new();
    let mut seen_all = Vec::new();
    for case in cases(&keys, &issuer.url) {
        let before = counts(&backend).await;
        let auth = case.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        let seen = send(&client, "GET", &format!("{}/orders", app.url), &headers).await;
        let what = format!("{adapter:?} / {}", case.name);
        assert_eq!(seen.status, case.status, "{what}: {seen:?}");
        if let Some(body) = case.body {
            assert_eq!(seen.body, body, "{what}");
        }
        let after = counts(&backend).await;
        for (app, hits) in &after {
            let expected = u64::from(case.counted == Some(*app));
            assert_eq!(hits - before[app], expected, "{what}: hits of {app}");
        }
        let mut seen = seen;
        // Seconds until the window resets: they move with the clock.
        seen.headers.remove("ratelimit-reset");
        seen_all.push((case.name.to_string(), seen));
    }
    // Every token above named a key the first fetch brought, or a made-up one
    // (refused without another fetch within the refresh interval).
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 1, "{adapter:?}");
    drop(app);
    engine.shutdown().await;
    backend.shutdown().await;
    seen_all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_adapters_check_tokens_alike() {
    let axum = run_cases(Adapter::Axum).await;
    let actix = run_cases(Adapter::Actix).await;
    assert_eq!(axum.len(), actix.len());
    for (a, b) in axum.iter().zip(&actix) {
        assert_eq!(a, b, "axum and actix differ on {}", a.0);
    }
}

fn bearer(token: &str) -> SimpleRequest {
    SimpleRequest::get("/orders").header("Authorization", format!("Bearer {token}"))
}

fn reason(decision: &Decision) -> Option<&str> {
    match decision {
        Decision::Deny(denial) => denial.reason.as_deref(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_name_the_reason() {
    let backend = common::emulator_with(BACKEND).await;
    let keys = keys();
    let issuer = issuer(vec![keys.rsa_jwk.clone()]).await;
    let engine = engine(
        &backend,
        OidcSettings::new(&issuer.url),
        FailurePolicy::Closed,
    );
    let good = claims(&issuer.url, "client-a");
    let rs = |claims: &Value| mint(Algorithm::RS256, Some("rsa-1"), &keys.rsa, claims);
    for (token, expected) in [
        (
            rs(&with(good.clone(), "exp", json!(now() - 120))),
            "token_expired",
        ),
        (
            rs(&with(good.clone(), "nbf", json!(now() + 120))),
            "token_not_yet_valid",
        ),
        (
            rs(&with(good.clone(), "iss", json!("https://evil"))),
            "wrong_issuer",
        ),
        (rs(&with(good.clone(), "sub", Value::Null)), "missing_claim"),
        (
            rs(&with(good.clone(), "azp", Value::Null)),
            "client_id_missing",
        ),
        (
            mint(
                Algorithm::HS256,
                Some("rsa-1"),
                &EncodingKey::from_secret(&keys.rsa_public_bytes),
                &good,
            ),
            "algorithm_not_allowed",
        ),
    ] {
        let outcome = engine.check(&bearer(&token)).await;
        assert_eq!(reason(&outcome.decision), Some(expected), "{outcome:?}");
        // The token never shows in what the engine hands back.
        assert!(!format!("{outcome:?}").contains(&token));
    }
    engine.shutdown().await;
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_and_client_id_claim_settings() {
    let backend = common::emulator_with(BACKEND).await;
    let keys = keys();
    let issuer = issuer(vec![keys.ec_jwk.clone()]).await;
    let es = |claims: &Value| mint(Algorithm::ES256, Some("ec-1"), &keys.ec, claims);
    let base = claims(&issuer.url, "client-a");

    let audience = engine(
        &backend,
        OidcSettings::new(&issuer.url).audience(["orders-api"]),
        FailurePolicy::Closed,
    );
    let wrong = es(&base);
    let outcome = audience.check(&bearer(&wrong)).await;
    assert_eq!(reason(&outcome.decision), Some("wrong_audience"));
    let right = es(&with(base.clone(), "aud", json!(["x", "orders-api"])));
    let outcome = audience.check(&bearer(&right)).await;
    assert!(
        matches!(outcome.decision, Decision::Allow(_)),
        "{outcome:?}"
    );

    // The client id from another claim: azp says client-a, client_id client-b.
    let plain = engine(
        &backend,
        OidcSettings::new(&issuer.url).client_id_claim(ClientIdClaim::Plain("client_id".into())),
        FailurePolicy::Closed,
    );
    let token = es(&with(base.clone(), "client_id", json!("client-b")));
    let Decision::Allow(context) = plain.check(&bearer(&token)).await.decision else {
        panic!("allowed")
    };
    assert_eq!(context.app_id.as_deref(), Some("client-b"));

    let liquid = engine(
        &backend,
        OidcSettings::new(&issuer.url).client_id_claim(
            ClientIdClaim::parse("client-{{ ext.suffix }}", Some("liquid")).unwrap(),
        ),
        FailurePolicy::Closed,
    );
    let token = es(&with(base.clone(), "ext", json!({"suffix": "c"})));
    let Decision::Allow(context) = liquid.check(&bearer(&token)).await.decision else {
        panic!("allowed")
    };
    assert_eq!(context.app_id.as_deref(), Some("client-c"));
    for engine in [audience, plain, liquid] {
        engine.shutdown().await;
    }
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_picked_up_and_made_up_key_ids_do_not_hammer_the_issuer() {
    let backend = common::emulator_with(BACKEND).await;
    let keys = keys();
    let issuer = issuer(vec![keys.ec_jwk.clone()]).await;
    let engine = engine(
        &backend,
        OidcSettings::new(&issuer.url).min_refresh_interval(Duration::from_millis(300)),
        FailurePolicy::Closed,
    );
    let token = mint(
        Algorithm::ES256,
        Some("ec-1"),
        &keys.ec,
        &claims(&issuer.url, "client-a"),
    );
    assert!(matches!(
        engine.check(&bearer(&token)).await.decision,
        Decision::Allow(_)
    ));
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 1);

    // Two hundred tokens with made-up key ids, at once: at most one more fetch.
    let (attacker_key, _) = ec_key("x");
    let forged: Vec<String> = (0..200)
        .map(|i| {
            mint(
                Algorithm::ES256,
                Some(&format!("kid-{i}")),
                &attacker_key,
                &claims(&issuer.url, "client-b"),
            )
        })
        .collect();
    let checks = forged.iter().map(|t| {
        let engine = engine.clone();
        let request = bearer(t);
        async move { engine.check(&request).await }
    });
    for outcome in futures_util::future::join_all(checks).await {
        assert_eq!(
            reason(&outcome.decision),
            Some("unknown_key"),
            "{outcome:?}"
        );
    }
    assert!(issuer.jwks_fetches.load(Ordering::SeqCst) <= 2);

    // The issuer rotates: a new key, its tokens are accepted once the
    // refresh interval allows a fetch.
    let (new_key, new_jwk) = ec_key("ec-2");
    issuer.keys.lock().unwrap().push(new_jwk);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let fetches = issuer.jwks_fetches.load(Ordering::SeqCst);
    let token = mint(
        Algorithm::ES256,
        Some("ec-2"),
        &new_key,
        &claims(&issuer.url, "client-c"),
    );
    let Decision::Allow(context) = engine.check(&bearer(&token)).await.decision else {
        panic!("the new key is fetched")
    };
    assert_eq!(context.app_id.as_deref(), Some("client-c"));
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), fetches + 1);
    engine.shutdown().await;
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_that_is_down_follows_the_failure_policy() {
    let backend = common::emulator_with(BACKEND).await;
    let keys = keys();
    let issuer = issuer(vec![keys.ec_jwk.clone()]).await;
    issuer.down.store(true, Ordering::SeqCst);
    let token = mint(
        Algorithm::ES256,
        Some("ec-1"),
        &keys.ec,
        &claims(&issuer.url, "client-a"),
    );

    let closed = engine(
        &backend,
        OidcSettings::new(&issuer.url),
        FailurePolicy::Closed,
    );
    let outcome = closed.check(&bearer(&token)).await;
    assert_eq!(reason(&outcome.decision), Some("issuer_unavailable"));
    assert_eq!(
        closed
            .error_response(match &outcome.decision {
                Decision::Deny(d) => d,
                _ => unreachable!(),
            })
            .status,
        503
    );

    // Open: admitted, degraded, billed to no one (the token is unverified).
    let open = engine(
        &backend,
        OidcSettings::new(&issuer.url),
        FailurePolicy::Open,
    );
    let Decision::Allow(context) = open.check(&bearer(&token)).await.decision else {
        panic!("open admits")
    };
    assert!(context.degraded);
    assert_eq!(context.app_id, None);
    open.flush().await.unwrap();
    assert!(
        usage(&backend, "3003", ("app_id", "client-a"))
            .await
            .is_empty()
    );

    // Back up: keys fetched (after the refresh interval); then down again: the
    // keys held keep working.
    issuer.down.store(false, Ordering::SeqCst);
    let quick = engine(
        &backend,
        OidcSettings::new(&issuer.url).min_refresh_interval(Duration::ZERO),
        FailurePolicy::Closed,
    );
    assert!(matches!(
        quick.check(&bearer(&token)).await.decision,
        Decision::Allow(_)
    ));
    issuer.down.store(true, Ordering::SeqCst);
    assert!(matches!(
        quick.check(&bearer(&token)).await.decision,
        Decision::Allow(_)
    ));
    // An unknown key while the issuer is down is a refusal, not an outage.
    let (other, _) = ec_key("ec-9");
    let forged = mint(
        Algorithm::ES256,
        Some("ec-9"),
        &other,
        &claims(&issuer.url, "client-a"),
    );
    assert_eq!(
        reason(&quick.check(&bearer(&forged)).await.decision),
        Some("unknown_key")
    );
    for engine in [closed, open, quick] {
        engine.shutdown().await;
    }
    backend.shutdown().await;
}

/// The emulator's development issuer, from the admin portal's proxy config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_issuer_runs_the_flow_end_to_end() {
    let backend = common::emulator_with(&format!(
        "admin_access_token: adm\n{}",
        BACKEND.trim_start_matches('\n')
    ))
    .await;
    let client = reqwest::Client::new();
    let proxy_config = client
        .get(format!(
            "{}/admin/api/services/3003/proxy/configs/production/latest.json?access_token=adm",
            backend.url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut config = threescale::Config::from_proxy_config(&proxy_config).unwrap();
    assert_eq!(
        config
            .service
            .oidc
            .as_ref()
            .map(|o| o.issuer_endpoint().to_string()),
        Some(format!("{}/oidc", backend.url()))
    );
    // Rotation below: let a new key be fetched at once.
    if let Some(oidc) = config.service.oidc.as_mut() {
        oidc.min_refresh_interval = Duration::ZERO;
    }
    let engine = ThreeScale::new(config).unwrap();
    let token_for = |id: &'static str, secret: &'static str| {
        let client = client.clone();
        let url = format!("{}/oidc/token", backend.url());
        async move {
            let response = client
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id),
                    ("client_secret", secret),
                ])
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = token_for("client-a", "wrong").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    for adapter in common::ADAPTERS {
        let app = serve(adapter, engine.clone());
        let (status, body) = token_for("client-a", "secret-a").await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_string();
        let before = usage(&backend, "3003", ("app_id", "client-a")).await;
        let seen = send(
            &client,
            "GET",
            &format!("{}/anything", app.url),
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(seen.status, 200, "{adapter:?}: {seen:?}");
        let after = usage(&backend, "3003", ("app_id", "client-a")).await;
        assert_eq!(after["hits"], before.get("hits").copied().unwrap_or(0) + 1);

        // Key rotation at the issuer: the new key's tokens pass.
        let rotated: Value = client
            .post(format!("{}/_emulator/oidc/rotate", backend.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (_, body) = token_for("client-b", "secret-b").await;
        let token = body["access_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.kid.as_deref(), rotated["kid"].as_str());
        let seen = send(
            &client,
            "GET",
            &format!("{}/anything", app.url),
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(seen.status, 200, "{adapter:?} after rotation: {seen:?}");
    }
    engine.shutdown().await;
    backend.shutdown().await;
}

/// Cached mode: the first token waits for the keys, then fills the cache; the
/// next is decided from it; both hits are reported for the token's client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_mode_bills_the_token_s_client() {
    let backend = common::emulator_with(BACKEND).await;
    let keys = keys();
    let issuer = issuer(vec![keys.ec_jwk.clone()]).await;
    let config = common::config_for(&backend)
        .service_token("tok-3003", "3003")
        .oidc(OidcSettings::new(&issuer.url))
        .mode(threescale::Mode::Cached(
            threescale::CacheSettings::default(),
        ))
        .rule("ANY", "/", "hits", 1)
        .build()
        .unwrap();
    let engine = ThreeScale::new(config).unwrap();
    let a = mint(
        Algorithm::ES256,
        Some("ec-1"),
        &keys.ec,
        &claims(&issuer.url, "client-a"),
    );
    let b = mint(
        Algorithm::ES256,
        Some("ec-1"),
        &keys.ec,
        &claims(&issuer.url, "client-b"),
    );
    for token in [&a, &a, &b] {
        let Decision::Allow(context) = engine.check(&bearer(token)).await.decision else {
            panic!("allowed")
        };
        let expected = if token == &a { "client-a" } else { "client-b" };
        assert_eq!(context.app_id.as_deref(), Some(expected));
    }
    engine.flush().await.unwrap();
    assert_eq!(counts(&backend).await["client-a"], 2);
    assert_eq!(counts(&backend).await["client-b"], 1);
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), 1);
    engine.shutdown().await;
    backend.shutdown().await;
}

/// A writer collecting what the tracing subscriber prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Neither the tokens nor the password of the issuer endpoint show in logs
/// (all levels), outcomes or the configuration's `Debug`.
#[tokio::test(flavor = "current_thread")]
async fn no_token_nor_issuer_password_in_logs_or_outcomes() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let backend = common::emulator_with(BACKEND).await;
    let keys = keys();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://client:pa55-word-9@127.0.0.1:{closed_port}/realms/x");
    let config = common::config_for(&backend)
        .service_token("tok-3003", "3003")
        .oidc(OidcSettings::new(&endpoint))
        .failure_policy(FailurePolicy::Closed)
        .build()
        .unwrap();
    let config_debug = format!("{config:?}");
    let engine = ThreeScale::new(config).unwrap();
    let token = mint(
        Algorithm::ES256,
        Some("ec-1"),
        &keys.ec,
        &claims("http://issuer", "client-a"),
    );
    let garbage = "garbage-token-marker-77".to_string();
    let mut outcomes = Vec::new();
    for token in [&token, &garbage] {
        let outcome = engine.check(&bearer(token)).await;
        outcomes.push(format!("{outcome:?}"));
    }
    assert!(outcomes[0].contains("issuer_unavailable"), "{outcomes:?}");
    engine.shutdown().await;
    backend.shutdown().await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("OpenID Connect"), "{logs}");
    for (what, text) in [
        ("logs", &logs),
        ("config", &config_debug),
        ("outcomes", &outcomes.join("\n")),
    ] {
        for secret in [&token, &garbage, &"pa55-word-9".to_string()] {
            assert!(
                !text.contains(secret.as_str()),
                "{what} leak {secret}:\n{text}"
            );
        }
    }
}
