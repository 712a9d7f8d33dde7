//! TLS trust end to end: the emulator serves HTTPS with certificates a test
//! certificate authority issues here. A client that does not trust the CA is
//! refused with a TLS trust error (never an outage: even a fail-open engine
//! admits nothing); one that trusts it works, through the engine and both
//! adapters, and for the admin portal loader; a backend that requires client
//! certificates refuses a client without one and serves one with one.

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use threescale::emulator::{Emulator, EmulatorConfig, EmulatorHandle, EmulatorTls};
use threescale::{
    AppCredentials, AuthRequest, BackendClient, BackendError, Config, Decision, DenialKind,
    FailurePolicy, Portal, ProviderAuth, SimpleRequest, ThreeScale, TlsTrust,
};

/// A certificate authority able to issue server and client certificates.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its key, PEM.
struct Issued {
    cert: String,
    key: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "test");
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self) -> Issued {
        self.issue(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self) -> Issued {
        self.issue(&["client.test"], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

const BACKEND: &str = r#"
admin_access_token: "portal-token"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tok-1001"
    metrics: [{ name: hits }]
    plans: [{ name: basic, limits: [{ metric: hits, period: minute, value: 1000 }] }]
    applications:
      - { plan: basic, user_key: "uk-basic" }
    proxy:
      mapping_rules:
        - { http_method: GET, pattern: "/", metric_system_name: hits, delta: 1 }
"#;

async fn https_emulator(tls: EmulatorTls) -> EmulatorHandle {
    Emulator::start_tls(EmulatorConfig::from_yaml_str(BACKEND).unwrap(), tls)
        .await
        .expect("emulator starts")
}

fn client(url: &str, tls: TlsTrust) -> Result<BackendClient, BackendError> {
    BackendClient::builder(ProviderAuth::service_token("tok-1001", "1001"))
        .url(url)
        .tls(tls)
        .build()
}

fn request() -> AuthRequest {
    AuthRequest::new(AppCredentials::user_key("uk-basic"))
}

fn hits(emulator: &EmulatorHandle) -> u64 {
    emulator.stats().authrep
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_tls_error_not_an_outage() {
    let ca = TestCa::new("private CA");
    let server = ca.server();
    let emulator = https_emulator(
        EmulatorTls::from_pem(server.cert.as_bytes(), server.key.as_bytes()).unwrap(),
    )
    .await;
    assert!(emulator.url().starts_with("https://127.0.0.1:"));

    let err = client(&emulator.url(), TlsTrust::default())
        .unwrap()
        .authrep(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Tls(_)), "{err:?}");
    assert!(
        !err.is_outage(),
        "a trust failure must not be ridden out as an outage"
    );
    let text = err.to_string();
    assert!(text.contains("TLS"), "{text}");
    assert!(
        text.contains("THREESCALE_TLS_CA_FILE"),
        "names the fix: {text}"
    );
    assert!(
        !text.contains("tok-1001") && !text.contains("uk-basic"),
        "{text}"
    );
    assert_eq!(hits(&emulator), 0, "nothing reached the backend");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_fail_open_engine_admits_nothing_while_the_backend_is_untrusted() {
    let ca = TestCa::new("private CA");
    let server = ca.server();
    let emulator = https_emulator(
        EmulatorTls::from_pem(server.cert.as_bytes(), server.key.as_bytes()).unwrap(),
    )
    .await;
    for mode in [
        threescale::Mode::Sync,
        threescale::Mode::Cached(threescale::CacheSettings::default()),
    ] {
        let engine = ThreeScale::new(
            Config::builder()
                .backend_url(emulator.url())
                .service_token("tok-1001", "1001")
                .failure_policy(FailurePolicy::Open)
                .mode(mode)
                .build()
                .unwrap(),
        )
        .unwrap();
        for _ in 0..3 {
            let outcome = engine
                .check(&SimpleRequest::get("/a?user_key=uk-basic"))
                .await;
            match outcome.decision {
                Decision::Deny(denial) => {
                    assert_eq!(denial.kind, DenialKind::BackendUnavailable, "{mode:?}");
                    assert_eq!(denial.reason.as_deref(), Some("backend_tls_untrusted"));
                }
                other => panic!("{mode:?}: admitted while the backend is untrusted: {other:?}"),
            }
        }
        let stats = engine.shutdown().await;
        assert_eq!(engine.stats().degraded, 0, "{mode:?}");
        assert_eq!(
            stats.recorded, 0,
            "{mode:?}: no usage kept for an untrusted backend"
        );
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_client_that_trusts_the_ca_is_served_through_both_adapters() {
    let ca = TestCa::new("private CA");
    let server = ca.server();
    let emulator = https_emulator(
        EmulatorTls::from_pem(server.cert.as_bytes(), server.key.as_bytes()).unwrap(),
    )
    .await;
    let dir = std::env::temp_dir().join(format!("threescale-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    // The client alone, with the CA from a file and without the web PKI roots.
    let answer = client(
        &emulator.url(),
        TlsTrust::default().ca_file(&ca_file).webpki_roots(false),
    )
    .unwrap()
    .authrep(&request())
    .await
    .unwrap();
    assert!(answer.is_authorized());

    // The engine, configured from the environment's variables.
    let url = emulator.url();
    let ca_path = ca_file.display().to_string();
    let config = Config::from_vars(|name| match name {
        "THREESCALE_BACKEND_URL" => Some(url.clone()),
        "THREESCALE_SERVICE_TOKEN" => Some("tok-1001".into()),
        "THREESCALE_SERVICE_ID" => Some("1001".into()),
        "THREESCALE_TLS_CA_FILE" => Some(ca_path.clone()),
        _ => None,
    })
    .unwrap();
    let engine = ThreeScale::new(config).unwrap();
    let http = reqwest::Client::new();
    for adapter in ADAPTERS {
        let app = serve(adapter, engine.clone());
        let seen = send(
            &http,
            "GET",
            &format!("{}/a?user_key=uk-basic", app.url),
            &[],
        )
        .await;
        assert_eq!(seen.status, 200, "{adapter:?}: {seen:?}");
        let seen = send(&http, "GET", &format!("{}/a?user_key=nope", app.url), &[]).await;
        assert_eq!(seen.status, 403, "{adapter:?}: {seen:?}");
    }
    engine.shutdown().await;
    assert_eq!(
        hits(&emulator),
        5,
        "one direct call and four through the adapters"
    );
    emulator.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_portal_loader_uses_the_same_trust_and_hands_it_to_the_backend_client() {
    let ca = TestCa::new("private CA");
    let server = ca.server();
    let emulator = https_emulator(
        EmulatorTls::from_pem(server.cert.as_bytes(), server.key.as_bytes()).unwrap(),
    )
    .await;
    let portal = |tls: TlsTrust| {
        Portal::new(
            emulator.url(),
            "portal-token",
            "1001",
            threescale::DeploymentEnv::Production,
        )
        .tls(tls)
    };
    let err = portal(TlsTrust::default()).load().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("TLS trust failure"), "{text}");
    assert!(!text.contains("portal-token"), "{text}");

    let config = portal(TlsTrust::default().ca_pem(ca.pem()))
        .load()
        .await
        .expect("loads over HTTPS");
    // The proxy config names no backend: aim at the emulator, same trust.
    let config = Config::builder()
        .backend_url(emulator.url())
        .service_token("tok-1001", "1001")
        .tls(config.tls.clone())
        .build()
        .unwrap();
    let engine = ThreeScale::new(config).unwrap();
    let outcome = engine
        .check(&SimpleRequest::get("/a?user_key=uk-basic"))
        .await;
    assert!(
        matches!(outcome.decision, Decision::Allow(_)),
        "{outcome:?}"
    );
    engine.shutdown().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_gateway_variables_load_from_an_https_portal_with_the_tls_variables() {
    let ca = TestCa::new("private CA");
    let server = ca.server();
    let emulator = https_emulator(
        EmulatorTls::from_pem(server.cert.as_bytes(), server.key.as_bytes()).unwrap(),
    )
    .await;
    let ca_file =
        std::env::temp_dir().join(format!("threescale-tls-portal-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let endpoint = emulator.portal_endpoint("portal-token");
    assert!(
        endpoint.starts_with("https://portal-token@127.0.0.1:"),
        "{endpoint}"
    );
    let portal = |ca: Option<String>| {
        let endpoint = endpoint.clone();
        Portal::from_vars(move |name| match name {
            "THREESCALE_PORTAL_ENDPOINT" => Some(endpoint.clone()),
            "THREESCALE_SERVICE_ID" => Some("1001".into()),
            "THREESCALE_TLS_CA_FILE" => ca.clone(),
            _ => None,
        })
        .unwrap()
        .unwrap()
    };
    let err = portal(None).load().await.unwrap_err();
    assert!(err.to_string().contains("TLS trust failure"), "{err}");
    let config = portal(Some(ca_file.display().to_string()))
        .load()
        .await
        .expect("the CA of THREESCALE_TLS_CA_FILE is trusted");
    assert!(
        !config.tls.is_default(),
        "the backend client gets the same trust"
    );
    let _ = std::fs::remove_file(&ca_file);
    emulator.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_is_required_when_the_backend_asks_for_it() {
    let ca = TestCa::new("private CA");
    let client_ca = TestCa::new("client CA");
    let rogue_ca = TestCa::new("rogue CA");
    let server = ca.server();
    let tls = EmulatorTls::from_pem(server.cert.as_bytes(), server.key.as_bytes())
        .unwrap()
        .require_client_cert(client_ca.pem().as_bytes())
        .unwrap();
    assert!(tls.requires_client_cert());
    let emulator = https_emulator(tls).await;
    let trust = TlsTrust::default().ca_pem(ca.pem());

    // No client certificate: refused, as a trust failure.
    let err = client(&emulator.url(), trust.clone())
        .unwrap()
        .authrep(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Tls(_)), "{err:?}");

    // A certificate from an authority the backend does not accept: refused.
    let rogue = rogue_ca.client();
    let err = client(
        &emulator.url(),
        trust.clone().client_identity_pem(&rogue.cert, &rogue.key),
    )
    .unwrap()
    .authrep(&request())
    .await
    .unwrap_err();
    assert!(matches!(err, BackendError::Tls(_)), "{err:?}");
    assert_eq!(hits(&emulator), 0);

    // The right one: served.
    let good = client_ca.client();
    let answer = client(
        &emulator.url(),
        trust.clone().client_identity_pem(&good.cert, &good.key),
    )
    .unwrap()
    .authrep(&request())
    .await
    .unwrap();
    assert!(answer.is_authorized());
    assert_eq!(hits(&emulator), 1);

    // A ready client, built by the caller, works as given.
    let ready = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .identity(
            reqwest::Identity::from_pem(format!("{}\n{}", good.cert, good.key).as_bytes()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client(&emulator.url(), TlsTrust::default().client(ready))
        .unwrap()
        .authrep(&request())
        .await
        .unwrap();
    assert!(answer.is_authorized());
    emulator.shutdown().await;
}

#[test]
fn broken_tls_settings_are_configuration_errors_that_name_the_field() {
    let build = |tls: TlsTrust| {
        Config::builder()
            .service_token("t", "1")
            .tls(tls)
            .build()
            .unwrap_err()
    };
    let err = build(TlsTrust::default().ca_file("/nonexistent/ca.pem"));
    assert_eq!(err.field, "tls.ca_file");
    let err = build(
        TlsTrust::default()
            .ca_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    );
    assert_eq!(err.field, "tls.ca_file", "{err}");
    let ca = TestCa::new("ca");
    let issued = ca.client();
    let err = build(TlsTrust::default().client_identity_pem(&issued.cert, "not a key at all"));
    assert_eq!(err.field, "tls.client_key");
    assert!(
        !err.to_string().contains("not a key at all"),
        "never quotes the key: {err}"
    );
    let err = build(
        TlsTrust::default()
            .ca_pem(ca.pem())
            .client(reqwest::Client::new()),
    );
    assert_eq!(err.field, "tls.client");
    // The key never shows in Debug.
    let trust = TlsTrust::default().client_identity_pem(&issued.cert, &issued.key);
    let debug = format!("{trust:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");

    // Environment variables name themselves.
    let err = Config::from_vars(|name| match name {
        "THREESCALE_SERVICE_TOKEN" => Some("t".into()),
        "THREESCALE_SERVICE_ID" => Some("1".into()),
        "THREESCALE_TLS_CA_FILE" => Some("/nonexistent/ca.pem".into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(
        (err.source_name.as_str(), err.field.as_str()),
        ("env", "THREESCALE_TLS_CA_FILE")
    );
    let err = Config::from_vars(|name| match name {
        "THREESCALE_SERVICE_TOKEN" => Some("t".into()),
        "THREESCALE_SERVICE_ID" => Some("1".into()),
        "THREESCALE_TLS_CLIENT_CERT" => Some("/x.pem".into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(err.field, "THREESCALE_TLS_CLIENT_KEY");
}

const OAUTH_BACKEND: &str = r#"
services:
  - id: "3003"
    backend_version: oauth
    service_token: "tok-3003"
    metrics: [{ name: hits }]
    plans: [{ name: pro, limits: [{ metric: hits, period: hour, value: 1000 }] }]
    applications:
      - { plan: pro, app_id: "client-a", app_keys: ["secret-a"] }
"#;

#[tokio::test]
async fn an_openid_issuer_behind_the_private_ca_is_reached_with_the_same_trust() {
    let ca = TestCa::new("private CA");
    let server = ca.server();
    let emulator = Emulator::start_tls(
        EmulatorConfig::from_yaml_str(OAUTH_BACKEND).unwrap(),
        EmulatorTls::from_pem(server.cert.as_bytes(), server.key.as_bytes()).unwrap(),
    )
    .await
    .expect("emulator starts");
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer: serde_json::Value = trusting
        .post(format!("{}/oidc/token", emulator.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "client-a"),
            ("client_secret", "secret-a"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"]
        .as_str()
        .expect("a token")
        .to_string();

    for (name, trust, admitted) in [
        (
            "trusting the CA",
            TlsTrust::default().ca_pem(ca.pem()),
            true,
        ),
        ("not trusting it", TlsTrust::default(), false),
    ] {
        let engine = ThreeScale::new(
            Config::builder()
                .backend_url(emulator.url())
                .service_token("tok-3003", "3003")
                .oidc(threescale::oidc::OidcSettings::new(format!(
                    "{}/oidc",
                    emulator.url()
                )))
                .tls(trust)
                .build()
                .unwrap(),
        )
        .unwrap();
        let outcome = engine
            .check(&SimpleRequest::get("/a").header("authorization", format!("Bearer {token}")))
            .await;
        match (&outcome.decision, admitted) {
            (Decision::Allow(_), true) => {}
            (Decision::Deny(denial), false) => {
                assert_eq!(denial.kind, DenialKind::BackendUnavailable, "{name}");
            }
            (other, _) => panic!("{name}: {other:?}"),
        }
        engine.shutdown().await;
    }
    let usage = emulator
        .usage(
            "3003",
            threescale::emulator::AppRef::AppId("client-a".into()),
        )
        .expect("the application");
    assert_eq!(
        usage.usage["hits"].eternity, 1,
        "only the trusting engine billed the client"
    );
    emulator.shutdown().await;
}
