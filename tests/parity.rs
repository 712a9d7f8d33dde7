//! One table of end-to-end cases, run against BOTH adapters: the same inputs must
//! give the same status, body, headers and counted usage on axum and actix.
//! The backend is the emulator, or apisonator (the real 3scale backend) when
//! `THREESCALE_APISONATOR_URL` is set; usage is read from either.

mod common;

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use common::{Adapter, Backend, Seen, TEST_BACKEND, send, serve};
use threescale::{BackendVersion, CredentialsConfig, CredentialsLocation, ThreeScale};

/// The engines under test, by name.
fn engines(backend: &Backend) -> HashMap<&'static str, ThreeScale> {
    let user_key_rules = |b: threescale::ConfigBuilder| {
        b.service_token("tok-1001", backend.sid("1001"))
            .rule("GET", "/orders/{id}$", "orders", 1)
            .rule("GET", "/orders$", "orders", 1)
            .rule("GET", "/search?q={q}", "search", 2)
            .rule("POST", "/orders$", "orders", 3)
            .rule("GET", "/export", "export", 1)
            .rule("ANY", "/status$", "hits", 1)
            .bypass_path("/health")
    };
    let mut engines = HashMap::new();
    let query = user_key_rules(backend.config()).build().unwrap();
    engines.insert("query", ThreeScale::new(query).unwrap());
    let headers = user_key_rules(backend.config())
        .credentials(
            CredentialsConfig::new(CredentialsLocation::Headers).user_key_name("X-Api-Key"),
        )
        .build()
        .unwrap();
    engines.insert("headers", ThreeScale::new(headers).unwrap());
    let app_id = |location| {
        backend
            .config()
            .service_token("tok-2002", backend.sid("2002"))
            .backend_version(BackendVersion::AppId)
            .credentials(CredentialsConfig::new(location))
            .rule("ANY", "/", "orders", 1)
            .build()
            .unwrap()
    };
    let custom = user_key_rules(backend.config())
        .rate_limit_headers(threescale::RateLimitHeaders::Ietf)
        .error_response(
            threescale::DenialKind::AuthFailed,
            threescale::ErrorResponse::new(
                http::StatusCode::FORBIDDEN,
                r#"{"type":"about:blank","title":"Forbidden","status":403}"#,
            )
            .content_type("application/problem+json")
            .header(
                http::HeaderName::from_static("x-custom-error"),
                http::HeaderValue::from_static("auth"),
            ),
        )
        .error_response(
            threescale::DenialKind::LimitsExceeded,
            threescale::ErrorResponse::new(http::StatusCode::PAYMENT_REQUIRED, "upgrade your plan"),
        )
        .build()
        .unwrap();
    engines.insert("custom", ThreeScale::new(custom).unwrap());
    // Credential chains: the headers then the query (user key), the
    // Authorization header then the query (app id and key).
    let chain = user_key_rules(backend.config())
        .credentials(
            CredentialsConfig::new(CredentialsLocation::Headers)
                .fallback(CredentialsLocation::Query),
        )
        .build()
        .unwrap();
    engines.insert("chain", ThreeScale::new(chain).unwrap());
    let app_id_chain = backend
        .config()
        .service_token("tok-2002", backend.sid("2002"))
        .backend_version(BackendVersion::AppId)
        .credentials(
            CredentialsConfig::new(CredentialsLocation::Authorization)
                .fallback(CredentialsLocation::Query),
        )
        .rule("ANY", "/", "orders", 1)
        .build()
        .unwrap();
    engines.insert("app_id_chain", ThreeScale::new(app_id_chain).unwrap());
    engines.insert(
        "app_id_query",
        ThreeScale::new(app_id(CredentialsLocation::Query)).unwrap(),
    );
    engines.insert(
        "app_id_basic",
        ThreeScale::new(app_id(CredentialsLocation::Authorization)).unwrap(),
    );
    engines
}

/// (service, credential kind, value).
type AppRef = (&'static str, &'static str, &'static str);

struct Case {
    name: &'static str,
    engine: &'static str,
    method: &'static str,
    uri: &'static str,
    headers: Vec<(&'static str, String)>,
    status: u16,
    body: Option<&'static str>,
    /// header → expected value (`Some("*")`: present with any value; `None`: absent).
    expect_headers: Vec<(&'static str, Option<&'static str>)>,
    /// (service, credential kind, value) and the usage it must gain.
    usage: Option<(AppRef, Vec<(&'static str, u64)>)>,
}

fn case(
    name: &'static str,
    engine: &'static str,
    method: &'static str,
    uri: &'static str,
    status: u16,
) -> Case {
    Case {
        name,
        engine,
        method,
        uri,
        headers: Vec::new(),
        status,
        body: None,
        expect_headers: Vec::new(),
        usage: None,
    }
}

impl Case {
    fn body(mut self, body: &'static str) -> Self {
        self.body = Some(body);
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn expect(mut self, name: &'static str, value: Option<&'static str>) -> Self {
        self.expect_headers.push((name, value));
        self
    }
    fn counts(
        mut self,
        app: (&'static str, &'static str, &'static str),
        usage: &[(&'static str, u64)],
    ) -> Self {
        self.usage = Some((app, usage.to_vec()));
        self
    }
}

const BASIC: (&str, &str, &str) = ("1001", "user_key", "uk-basic");
const SMALL: (&str, &str, &str) = ("1001", "user_key", "uk-small");
const APP1: (&str, &str, &str) = ("2002", "app_id", "app1");

fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "valid key",
            "query",
            "GET",
            "/orders/1?user_key=uk-basic",
            200,
        )
        .body("ok")
        .expect("ratelimit-limit", Some("1000"))
        .expect("ratelimit-remaining", Some("*"))
        .expect("x-3scale-matched-rules", None)
        .counts(BASIC, &[("hits", 1), ("orders", 1)]),
        case("wrong key", "query", "GET", "/orders/1?user_key=nope", 403)
            .body("Authentication failed")
            .expect("content-type", Some("text/plain; charset=utf-8"))
            .expect("ratelimit-limit", None),
        case("no key", "query", "GET", "/orders/1", 401).body("Authentication parameters missing"),
        case(
            "no key and no rule: 401 first",
            "query",
            "GET",
            "/nowhere",
            401,
        )
        .body("Authentication parameters missing"),
        case(
            "empty key goes to the backend",
            "query",
            "GET",
            "/orders/1?user_key=",
            403,
        )
        .body("Authentication failed"),
        case(
            "no mapping rule",
            "query",
            "GET",
            "/nowhere?user_key=uk-basic",
            404,
        )
        .body("No Mapping Rule matched")
        .counts(BASIC, &[]),
        case(
            "exact rule does not match a longer path",
            "query",
            "GET",
            "/orders/1/items?user_key=uk-basic",
            404,
        ),
        case(
            "query condition met",
            "query",
            "GET",
            "/search?q=rust&user_key=uk-basic",
            200,
        )
        .counts(BASIC, &[("hits", 2), ("search", 2)]),
        case(
            "query condition missing",
            "query",
            "GET",
            "/search?user_key=uk-basic",
            404,
        ),
        case(
            "method decides the rule",
            "query",
            "POST",
            "/orders?user_key=uk-basic",
            200,
        )
        .counts(BASIC, &[("hits", 3), ("orders", 3)]),
        case(
            "method without rule",
            "query",
            "DELETE",
            "/orders?user_key=uk-basic",
            404,
        ),
        case("ANY rule", "query", "PUT", "/status?user_key=uk-basic", 200)
            .counts(BASIC, &[("hits", 1)]),
        case(
            "disabled metric (zero limit) is 403",
            "query",
            "GET",
            "/export?user_key=uk-basic",
            403,
        )
        .body("Authentication failed")
        .counts(BASIC, &[]),
        case(
            "suspended application",
            "query",
            "GET",
            "/orders/1?user_key=uk-suspended",
            403,
        ),
        case("bypassed path", "query", "GET", "/health", 200)
            .body("ok")
            .expect("ratelimit-limit", None),
        case(
            "hostile key characters",
            "query",
            "GET",
            "/orders/1?user_key=uk-basic%26user_key%3Dx%23",
            403,
        ),
        case(
            "debug headers with the service token",
            "query",
            "GET",
            "/orders/2?user_key=uk-basic",
            200,
        )
        .header("X-3scale-Debug", "tok-1001")
        .expect("x-3scale-matched-rules", Some("/orders/{id}$"))
        .expect("x-3scale-usage", Some("usage%5Borders%5D=1"))
        .expect("x-3scale-service-id", Some("1001"))
        .expect("x-3scale-credentials", Some("user_key=uk-basic"))
        .counts(BASIC, &[("hits", 1), ("orders", 1)]),
        case(
            "no debug headers with a wrong secret",
            "query",
            "GET",
            "/orders/2?user_key=uk-basic",
            200,
        )
        .header("X-3scale-Debug", "guess")
        .expect("x-3scale-matched-rules", None)
        .expect("x-3scale-credentials", None),
        case("key in a custom header", "headers", "GET", "/orders/3", 200)
            .header("X-Api-Key", "uk-basic")
            .counts(BASIC, &[("hits", 1), ("orders", 1)]),
        case(
            "custom header with underscores",
            "headers",
            "GET",
            "/orders/3",
            200,
        )
        .header("x_api_key", "uk-basic"),
        case(
            "header mode ignores the query",
            "headers",
            "GET",
            "/orders/3?user_key=uk-basic",
            401,
        ),
        case(
            "app id and key in the query",
            "app_id_query",
            "GET",
            "/anything?app_id=app1&app_key=key2",
            200,
        )
        .counts(APP1, &[("hits", 1), ("orders", 1)]),
        case(
            "app id without key",
            "app_id_query",
            "GET",
            "/anything?app_id=app1",
            401,
        ),
        case(
            "wrong app key",
            "app_id_query",
            "GET",
            "/anything?app_id=app1&app_key=bad",
            403,
        )
        .counts(APP1, &[]),
        case(
            "unknown app id",
            "app_id_query",
            "GET",
            "/anything?app_id=ghost&app_key=key1",
            403,
        ),
        case(
            "basic auth app id and key",
            "app_id_basic",
            "GET",
            "/x",
            200,
        )
        .header("Authorization", basic_auth("app1", "key1"))
        .counts(APP1, &[("hits", 1), ("orders", 1)]),
        case("basic auth wrong key", "app_id_basic", "GET", "/x", 403)
            .header("Authorization", basic_auth("app1", "nope")),
        case(
            "bearer is not an app id + key",
            "app_id_basic",
            "GET",
            "/x",
            401,
        )
        .header("Authorization", "Bearer app1"),
        case("broken basic auth", "app_id_basic", "GET", "/x", 401)
            .header("Authorization", "Basic !123!"),
        case("chain: key in a header", "chain", "GET", "/orders/4", 200)
            .header("User-Key", "uk-basic")
            .counts(BASIC, &[("hits", 1), ("orders", 1)]),
        case(
            "chain: key in the query",
            "chain",
            "GET",
            "/orders/4?user_key=uk-basic",
            200,
        )
        .counts(BASIC, &[("hits", 1), ("orders", 1)]),
        case(
            "chain: the same key in both places",
            "chain",
            "GET",
            "/orders/4?user_key=uk-basic",
            200,
        )
        .header("user_key", "uk-basic")
        .counts(BASIC, &[("hits", 1), ("orders", 1)]),
        case(
            "chain: two different keys are refused",
            "chain",
            "GET",
            "/orders/4?user_key=uk-small",
            403,
        )
        .header("User-Key", "uk-basic")
        .body("Authentication failed")
        .counts(BASIC, &[]),
        case(
            "chain: two different keys bill no one",
            "chain",
            "GET",
            "/orders/4?user_key=uk-basic",
            403,
        )
        .header("User-Key", "uk-small")
        .counts(SMALL, &[]),
        case("chain: no key anywhere", "chain", "GET", "/orders/4", 401),
        case("chain: basic auth first", "app_id_chain", "GET", "/x", 200)
            .header("Authorization", basic_auth("app1", "key1"))
            .counts(APP1, &[("hits", 1), ("orders", 1)]),
        case(
            "chain: app id and key in the query",
            "app_id_chain",
            "GET",
            "/x?app_id=app1&app_key=key2",
            200,
        )
        .counts(APP1, &[("hits", 1), ("orders", 1)]),
        case(
            "chain: another app id in the query, even without its key",
            "app_id_chain",
            "GET",
            "/x?app_id=ghost",
            403,
        )
        .header("Authorization", basic_auth("app1", "key1"))
        .counts(APP1, &[]),
        case(
            "chain: the same app id in the query",
            "app_id_chain",
            "GET",
            "/x?app_id=app1",
            200,
        )
        .header("Authorization", basic_auth("app1", "key1"))
        .counts(APP1, &[("hits", 1), ("orders", 1)]),
        case(
            "custom JSON denial",
            "custom",
            "GET",
            "/orders/1?user_key=nope",
            403,
        )
        .body(r#"{"type":"about:blank","title":"Forbidden","status":403}"#)
        .expect("content-type", Some("application/problem+json"))
        .expect("x-custom-error", Some("auth")),
        case(
            "IETF headers",
            "custom",
            "GET",
            "/orders/1?user_key=uk-basic",
            200,
        )
        .expect("ratelimit-limit", None)
        .expect("ratelimit", Some("*"))
        .expect("ratelimit-policy", Some("\"default\";q=1000;w=60")),
        // The small plan allows 3 hits a minute.
        case(
            "limit: 1st",
            "query",
            "GET",
            "/status?user_key=uk-small",
            200,
        )
        .expect("ratelimit-limit", Some("3"))
        .expect("ratelimit-remaining", Some("2"))
        .counts(SMALL, &[("hits", 1)]),
        case(
            "limit: 2nd",
            "query",
            "GET",
            "/status?user_key=uk-small",
            200,
        )
        .expect("ratelimit-remaining", Some("1")),
        case(
            "limit: 3rd",
            "query",
            "GET",
            "/status?user_key=uk-small",
            200,
        )
        .expect("ratelimit-remaining", Some("0")),
        case(
            "limit: 4th is 429",
            "query",
            "GET",
            "/status?user_key=uk-small",
            429,
        )
        .body("Limits exceeded")
        .expect("retry-after", Some("*"))
        .expect("ratelimit-limit", Some("3"))
        .expect("ratelimit-remaining", Some("0"))
        .counts(SMALL, &[]),
    ]
}

async fn run_all(adapter: Adapter) -> Vec<(String, Seen, BTreeMap<String, u64>)> {
    let backend = Backend::start(TEST_BACKEND).await;
    // The small plan's limit is per minute; the minute window shows in headers.
    backend.within_one_minute(20).await;
    let engines = engines(&backend);
    let apps: HashMap<_, _> = engines
        .iter()
        .map(|(name, engine)| (*name, serve(adapter, engine.clone())))
        .collect();
    let client = reqwest::Client::new();
    let mut seen_all = Vec::new();
    for case in cases() {
        let before = match case.usage {
            // Settled after the previous case.
            Some(((svc, kind, value), _)) => backend.usage_as_applied(svc, (kind, value)).await,
            None => BTreeMap::new(),
        };
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let url = format!("{}{}", apps[case.engine].url, case.uri);
        let mut seen = send(&client, case.method, &url, &headers).await;
        // apisonator counts an authrep in its worker, a moment after answering.
        backend.settle().await;
        // The service id as the case table writes it.
        if let Some(id) = seen.headers.get_mut("x-3scale-service-id") {
            for written in ["1001", "2002"] {
                if *id == backend.sid(written) {
                    *id = written.to_string();
                }
            }
        }
        let what = format!("{adapter:?} / {}", case.name);
        assert_eq!(seen.status, case.status, "{what}: {seen:?}");
        if let Some(body) = case.body {
            assert_eq!(seen.body, body, "{what}");
        }
        for (name, expected) in &case.expect_headers {
            match expected {
                None => assert_eq!(seen.header(name), None, "{what}: header {name}"),
                Some("*") => assert!(
                    seen.header(name).is_some(),
                    "{what}: header {name} missing: {seen:?}"
                ),
                Some(value) => assert_eq!(seen.header(name), Some(*value), "{what}: header {name}"),
            }
        }
        let mut gained = BTreeMap::new();
        if let Some(((svc, kind, value), expected)) = &case.usage {
            let after = backend.usage_as_applied(svc, (kind, value)).await;
            for (metric, total) in &after {
                let delta = total - before.get(metric).copied().unwrap_or(0);
                if delta > 0 {
                    gained.insert(metric.clone(), delta);
                }
            }
            let expected: BTreeMap<String, u64> =
                expected.iter().map(|(m, n)| (m.to_string(), *n)).collect();
            assert_eq!(gained, expected, "{what}: usage counted");
        }
        let mut comparable = seen.clone();
        comparable.headers.remove("ratelimit-reset");
        comparable.headers.remove("retry-after");
        if let Some(value) = comparable.headers.get_mut("ratelimit") {
            // `t=` is the seconds until the window resets: it moves with the clock.
            *value = value.split(";t=").next().unwrap_or_default().to_string();
        }
        seen_all.push((case.name.to_string(), comparable, gained));
    }
    drop(apps);
    for engine in engines.values() {
        engine.shutdown().await;
    }
    backend.shutdown().await;
    seen_all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_adapters_answer_every_case_alike() {
    let axum = run_all(Adapter::Axum).await;
    let actix = run_all(Adapter::Actix).await;
    assert_eq!(axum.len(), cases().len());
    assert_eq!(actix.len(), cases().len());
    for (a, b) in axum.iter().zip(&actix) {
        assert_eq!(a, b, "axum and actix differ on {}", a.0);
    }
}
