//! Property tests of the request side: whatever the path, query, headers or
//! credential values, `ThreeScale::begin`, the credentials extractor and the
//! mapping matcher never panic, and `begin` never lets an ambiguous path, an
//! over-long query or an unacceptable credential get as far as a backend call.

use proptest::prelude::*;
use threescale_core::{
    AppCredentials, BackendVersion, CacheSettings, Config, CredentialsConfig, CredentialsLocation,
    Decision, DenialKind, MappingRule, MappingRules, Mode, RequestCredentials, RequestPolicy,
    SimpleRequest, Step, ThreeScale,
    request::{path_is_ambiguous, query_is_too_long},
};

/// A port nobody listens on: `begin` never calls the backend anyway.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn engines() -> Vec<ThreeScale> {
    let url = closed_url();
    let mut engines = Vec::new();
    for version in [
        BackendVersion::UserKey,
        BackendVersion::AppId,
        BackendVersion::OAuth,
    ] {
        for (location, mode) in [
            (CredentialsLocation::Query, Mode::Sync),
            (
                CredentialsLocation::Headers,
                Mode::Cached(CacheSettings::default()),
            ),
            (CredentialsLocation::Authorization, Mode::Sync),
        ] {
            let config = Config::builder()
                .backend_url(url.as_str())
                .service_token("token", "42")
                .backend_version(version)
                .credentials(CredentialsConfig::new(location))
                .rule("ANY", "/", "hits", 1)
                .rule("GET", "/orders/{id}$", "orders", 5)
                .rule("GET", "/search?q={q}", "search", 1)
                .bypass_path("/health")
                .mode(mode)
                .build()
                .unwrap();
            engines.push(
                ThreeScale::with_token_verifier(config, |token| {
                    Some(format!("client-{}", token.len()))
                })
                .unwrap(),
            );
        }
    }
    engines
}

/// Paths mixing separators, dots, escapes (valid, invalid, of `/` and `.`),
/// control characters and non-ASCII text.
fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("/".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("%2e".to_string()),
            Just("%2F".to_string()),
            Just("%".to_string()),
            Just("%zz".to_string()),
            Just("health".to_string()),
            Just("orders".to_string()),
            "[a-z0-9]{1,4}",
            "%[0-9A-Fa-f]{2}",
            "\\PC{1,3}",
            any::<char>().prop_map(String::from),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        "([a-z_]{0,8}(=[a-z0-9%+!]{0,8})?&){0,8}",
        "\\PC{0,40}",
        (0usize..130).prop_map(|n| (0..n).map(|i| format!("a{i}=1&")).collect::<String>()),
    ]
}

fn credential() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{0,16}",
        "\\PC{0,16}",
        any::<String>(),
        (250usize..270).prop_map(|n| "k".repeat(n)),
        (8180usize..8200).prop_map(|n| "t".repeat(n)),
    ]
}

fn check_step(step: Step, path: &str, query: &str) -> Result<(), TestCaseError> {
    let refused = matches!(
        &step,
        Step::Done(outcome)
            if matches!(&outcome.decision, Decision::Deny(d) if d.kind == DenialKind::BadRequest)
    );
    // An ambiguous path is refused first, whatever else the request holds.
    if path_is_ambiguous(path) {
        prop_assert!(refused, "{:?}", path);
    }
    if refused {
        prop_assert!(path_is_ambiguous(path) || query_is_too_long(query));
    }
    if let Step::Pending(_) = step {
        // Only a sound request gets as far as the backend.
        prop_assert!(!path_is_ambiguous(path), "{:?}", path);
        prop_assert!(!query_is_too_long(query), "{:?}", query);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn begin_never_panics_and_refuses_before_the_backend(
        path in path(),
        query in query(),
        key in credential(),
        header in "\\PC{0,40}",
    ) {
        let full_query = format!("{query}user_key={key}&app_id={key}&app_key={key}&access_token={key}");
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("user_key", &key)
            .append_pair("app_id", &key)
            .append_pair("app_key", &key)
            .append_pair("access_token", &key)
            .finish();
        for engine in engines_cached() {
            for q in [query.as_str(), full_query.as_str(), encoded.as_str()] {
                let request = SimpleRequest::new("GET", &format!("{path}?{q}"))
                    .header("user-key", key.as_str())
                    .header("app-id", key.as_str())
                    .header("app-key", key.as_str())
                    .header("authorization", header.as_str())
                    .header("x-3scale-debug", "token");
                let raw_query = request_query(&path, q);
                check_step(engine.begin(&request), request_path(&path), &raw_query)?;
            }
            let bearer = SimpleRequest::get(&path).header("authorization", format!("Bearer {key}"));
            check_step(engine.begin(&bearer), request_path(&path), &request_query(&path, ""))?;
        }
    }

    #[test]
    fn credentials_found_are_what_the_request_holds(
        key in credential(),
        header in "\\PC{0,60}",
        query in query(),
    ) {
        let policy = RequestPolicy::default();
        for location in [
            CredentialsLocation::Query,
            CredentialsLocation::Headers,
            CredentialsLocation::Authorization,
        ] {
            let config = CredentialsConfig::new(location);
            let encoded: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("user_key", &key)
                .finish();
            for (first, uri) in [(false, format!("/?{query}")), (true, format!("/?{encoded}&{query}"))] {
                let request = SimpleRequest::get(&uri)
                    .header("user_key", key.as_str())
                    .header("authorization", header.as_str());
                for version in [BackendVersion::UserKey, BackendVersion::AppId, BackendVersion::OAuth] {
                    match config.find(version, &request) {
                        Some(RequestCredentials::App(app)) => {
                            prop_assert!(version != BackendVersion::OAuth);
                            if policy.credentials_are_acceptable(&app) {
                                let parts = match &app {
                                    AppCredentials::UserKey(k) => vec![k.expose().to_string()],
                                    AppCredentials::AppId { app_id, app_key } => vec![
                                        app_id.clone(),
                                        app_key.as_ref().map(|k| k.expose().to_string()).unwrap_or_default(),
                                    ],
                                };
                                for part in parts {
                                    prop_assert!(part.len() <= policy.max_credential_len);
                                    prop_assert!(!part.chars().any(char::is_control));
                                }
                            }
                        }
                        Some(RequestCredentials::AccessToken(token)) => {
                            prop_assert_eq!(version, BackendVersion::OAuth);
                            prop_assert_eq!(format!("{:?}", token), "Secret(***)");
                        }
                        None => {}
                    }
                }
                let found = config.extract(BackendVersion::UserKey, &request);
                match location {
                    CredentialsLocation::Headers => {
                        prop_assert_eq!(found, Some(AppCredentials::user_key(key.as_str())));
                    }
                    CredentialsLocation::Query if first => {
                        prop_assert_eq!(found, Some(AppCredentials::user_key(key.as_str())));
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn the_matcher_never_panics(
        method in prop_oneof![Just("GET".to_string()), Just("ANY".to_string()), "\\PC{0,6}"],
        path in path(),
        query in query(),
    ) {
        let rules = MappingRules::new(vec![
            MappingRule::new("ANY", "/", "hits", 1),
            MappingRule::new("GET", "/orders/{id}$", "orders", 5),
            MappingRule::new("GET", "/search?q={q}", "search", 1).last(true),
            MappingRule::new("POST", "/a/{x}/b.json", "b", 2),
        ])
        .unwrap();
        let m = rules.matches(&method, &path, Some(&query));
        let _ = rules.matches(&method, &path, None);
        prop_assert!(m.usage.is_empty() || !m.rules.is_empty());
    }
}

thread_local! {
    static ENGINES: Vec<ThreeScale> = engines();
}

fn engines_cached() -> Vec<ThreeScale> {
    ENGINES.with(Clone::clone)
}

/// The path part `SimpleRequest` keeps of `path?query`: up to the first `?`.
fn request_path(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

/// The query part `SimpleRequest` keeps of `path?query`.
fn request_query(path: &str, query: &str) -> String {
    match path.split_once('?') {
        Some((_, rest)) => format!("{rest}?{query}"),
        None => query.to_string(),
    }
}
