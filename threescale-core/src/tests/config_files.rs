// Loading configuration files: the admin portal's proxy config JSON (all its
// shapes) and the project's YAML/JSON format, and refusing broken ones with
// errors that name the source and the field.

use std::time::Duration;

use crate::{
    BackendVersion, Config, ConfigError, CredentialsLocation, DenialKind, FailurePolicy, Mode,
    ProviderAuth, RateLimitHeaders,
    config::{file::parse_project_config, proxy::parse_proxy_config},
};
use http::StatusCode;

fn example(name: &str) -> String {
    let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn usage_of(config: &Config, method: &str, target: &str) -> Vec<(String, u64)> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    config
        .service
        .mapping_rules
        .matches(method, path, query)
        .usage
        .sorted()
        .into_iter()
        .map(|(m, v)| (m.to_string(), v.amount()))
        .collect()
}

fn pairs(items: &[(&str, u64)]) -> Vec<(String, u64)> {
    items.iter().map(|(m, v)| (m.to_string(), *v)).collect()
}

#[test]
fn the_sample_portal_answer_loads_with_everything_the_gateway_reads() {
    let config = Config::from_file(format!(
        "{}/../examples/proxy-config.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let service = &config.service;
    assert_eq!(service.service_id, "2555417777820");
    assert_eq!(service.system_name.as_deref(), Some("demo"));
    assert_eq!(service.backend_version, BackendVersion::UserKey);
    assert_eq!(service.backend_url, "http://127.0.0.1:3001");
    assert!(matches!(
        &service.provider_auth,
        ProviderAuth::ServiceToken { service_id, .. } if service_id == "2555417777820"
    ));
    assert_eq!(
        service.provider_auth.secret().expose(),
        "demo-service-token"
    );
    assert_eq!(service.credentials.location(), CredentialsLocation::Query);
    let no_match = service.error_responses.get(DenialKind::NoMatch);
    assert_eq!(no_match.status, StatusCode::NOT_FOUND);
    assert_eq!(no_match.content_type, "application/json");
    assert_eq!(
        &no_match.body[..],
        br#"{"error":"no mapping rule matched"}"#
    );
    assert_eq!(
        service.error_responses.get(DenialKind::AuthFailed).status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(service.mapping_rules.rules().len(), 5);
    // No batcher in the policy chain: one authrep per request, as the gateway.
    assert_eq!(config.mode, Mode::Sync);

    assert_eq!(
        usage_of(&config, "GET", "/orders/12"),
        pairs(&[("orders", 1)])
    );
    assert_eq!(
        usage_of(&config, "POST", "/orders"),
        pairs(&[("hits", 1), ("orders", 5)])
    );
    assert_eq!(
        usage_of(
            &config,
            "GET",
            "/catalog/books/items.json?page=2&sort=price"
        ),
        pairs(&[("hits", 3)])
    );
    assert_eq!(
        usage_of(&config, "GET", "/catalog/books/items.json?page=2&sort=name"),
        pairs(&[("hits", 1)])
    );
}

#[test]
fn a_gateway_file_and_a_bare_service_are_read_too() {
    let service = r#"{
        "id": "77", "backend_version": 2,
        "backend_authentication_type": "provider_key",
        "backend_authentication_value": "pk",
        "proxy": {
            "credentials_location": "headers",
            "auth_app_id": "X-App-Id", "auth_app_key": "X-App-Key",
            "error_status_auth_missing": "403",
            "proxy_rules": [
                {"http_method": "GET", "pattern": "/b", "metric_system_name": "b", "delta": 1, "position": 2},
                {"http_method": "GET", "pattern": "/", "metric_system_name": "hits", "delta": "2", "position": 1, "last": "true"}
            ]
        }
    }"#;
    let file = format!(r#"{{"services": [{service}, {service}], "oidc": []}}"#);
    let services = parse_proxy_config(&file, "gateway.json").unwrap();
    assert_eq!(services.len(), 2);
    let bare = parse_proxy_config(service, "bare.json").unwrap();
    let s = &bare[0];
    assert_eq!(s.service_id, "77");
    assert_eq!(s.backend_version, BackendVersion::AppId);
    assert!(matches!(&s.provider_auth, ProviderAuth::ProviderKey { .. }));
    assert_eq!(s.provider_auth.service_id(), Some("77"));
    assert_eq!(s.credentials.location(), CredentialsLocation::Headers);
    // Names are lowercased, as the gateway stores them.
    assert_eq!(s.credentials.names(), ("user_key", "x-app-id", "x-app-key"));
    assert_eq!(
        s.error_responses.get(DenialKind::AuthMissing).status,
        StatusCode::FORBIDDEN
    );
    // The gateway keeps the array's order and ignores `position`: the `/`
    // rule (second) does not stop `/b` (first) from matching.
    let m = s.mapping_rules.matches("GET", "/b", None);
    assert_eq!(m.rules, vec![0, 1]);
    assert_eq!(m.usage.get("b"), Some(1));
    assert_eq!(m.usage.get("hits"), Some(2));
    // Without an endpoint the project's default backend (3scale SaaS) is used.
    assert_eq!(s.backend_url, "https://su1.3scale.net");

    // One engine protects one service: a file with two is refused for a Config.
    let err = Config::from_proxy_config(&file).unwrap_err();
    assert_eq!(err.field, "services");
    assert!(err.reason.contains("2 services"), "{err}");
}

#[test]
fn query_conditions_come_only_from_querystring_parameters_as_in_the_gateway() {
    let json = r#"{"id": 5, "backend_authentication_type": "service_token",
        "backend_authentication_value": "t", "proxy": {"proxy_rules": [
            {"http_method": "GET", "pattern": "/a?x=1", "metric_system_name": "bare", "delta": 1},
            {"http_method": "GET", "pattern": "/a?x=1", "metric_system_name": "portal", "delta": 1,
             "querystring_parameters": {"x": "1"}}
        ]}}"#;
    let config = Config::from_proxy_config(json).unwrap();
    assert_eq!(usage_of(&config, "GET", "/a"), pairs(&[("bare", 1)]));
    assert_eq!(
        usage_of(&config, "GET", "/a?x=1"),
        pairs(&[("bare", 1), ("portal", 1)])
    );
    // The project's own format derives the conditions from the pattern.
    let yaml = "service: {id: 1, service_token: t, mapping_rules: [{http_method: GET, pattern: '/a?x=1', metric_system_name: m, delta: 1}]}";
    let config = parse_project_config(yaml, "threescale.yaml").unwrap();
    assert!(usage_of(&config, "GET", "/a").is_empty());
    assert_eq!(usage_of(&config, "GET", "/a?x=1"), pairs(&[("m", 1)]));
}

#[test]
fn oidc_services_use_the_oauth_credentials() {
    let json = r#"{"id": 5, "backend_version": "oauth",
        "backend_authentication_type": "service_token", "backend_authentication_value": "t",
        "proxy": {"authentication_method": "oidc", "oidc_issuer_endpoint": "https://sso.example.com/auth/realms/x"}}"#;
    let config = Config::from_proxy_config(json).unwrap();
    assert_eq!(config.service.backend_version, BackendVersion::OAuth);
}

#[test]
fn an_empty_rule_list_matches_nothing_as_in_the_gateway() {
    let json = r#"{"id": 5, "backend_authentication_type": "service_token",
        "backend_authentication_value": "t", "proxy": {"proxy_rules": []}}"#;
    let config = Config::from_proxy_config(json).unwrap();
    assert!(usage_of(&config, "GET", "/").is_empty());
}

#[test]
fn the_policy_chain_chooses_the_engine_mode() {
    let json = |chain: &str| {
        format!(
            r#"{{"id": 5, "backend_authentication_type": "service_token",
            "backend_authentication_value": "t", "proxy": {{"policy_chain": {chain}}}}}"#
        )
    };
    let config = Config::from_proxy_config(&json(
        r#"[{"name": "apicast.policy.caching", "configuration": {"caching_type": "strict"}},
            {"name": "apicast.policy.3scale_batcher", "configuration": {"auths_ttl": 30, "batch_report_seconds": 3}},
            {"name": "apicast.policy.apicast"}]"#,
    ))
    .unwrap();
    let Mode::Cached(settings) = config.mode else {
        panic!("expected cached mode, got {:?}", config.mode);
    };
    assert_eq!(settings.ttl, Duration::from_secs(30));
    assert_eq!(settings.flush_interval, Duration::from_secs(3));
    assert_eq!(config.failure_policy, FailurePolicy::Closed);

    let config = Config::from_proxy_config(&json(r#"[{"name": "3scale_batcher"}]"#)).unwrap();
    let Mode::Cached(settings) = config.mode else {
        panic!("expected cached mode");
    };
    assert_eq!(settings.ttl, Duration::from_secs(10));
    assert_eq!(settings.flush_interval, Duration::from_secs(10));

    let err = Config::from_proxy_config(&json(
        r#"[{"name": "apicast.policy.caching", "configuration": {"caching_type": "sometimes"}}]"#,
    ))
    .unwrap_err();
    assert_eq!(
        err.field,
        "proxy.policy_chain[0].configuration.caching_type"
    );
}

/// A portal answer for one service with `proxy` replaced by `proxy_json`.
fn portal_answer(service_fields: &str, proxy_json: &str) -> String {
    format!(
        r#"{{"proxy_config": {{"id": 1, "version": 2, "environment": "production", "content": {{
            "id": 9, "backend_version": "1", {service_fields}
            "backend_authentication_type": "service_token",
            "backend_authentication_value": "secret-token-value",
            "proxy": {proxy_json}}}}}}}"#
    )
}

fn load_err(json: &str) -> ConfigError {
    let err = parse_proxy_config(json, "latest.json").unwrap_err();
    assert_eq!(err.source_name, "latest.json");
    // Secrets never appear in errors.
    assert!(!err.to_string().contains("secret-token-value"), "{err}");
    err
}

#[test]
fn broken_proxy_configs_are_refused_naming_the_field() {
    let rules = |rules: &str| portal_answer("", &format!(r#"{{"proxy_rules": {rules}}}"#));
    let cases: Vec<(String, &str, &str)> = vec![
        (
            rules(
                r#"[{"http_method": "GET", "pattern": "/a", "metric_system_name": "hits", "delta": 1},
                    {"http_method": "GET", "pattern": "/a/{id", "metric_system_name": "hits", "delta": 1}]"#,
            ),
            "proxy_config.content.proxy.proxy_rules[1].pattern",
            "/a/{id",
        ),
        (
            rules(r#"[{"http_method": "GET", "pattern": "/a", "delta": 1}]"#),
            "proxy_config.content.proxy.proxy_rules[0].metric_system_name",
            "missing metric name",
        ),
        (
            rules(r#"[{"http_method": "get", "pattern": "/a", "metric_system_name": "hits"}]"#),
            "proxy_config.content.proxy.proxy_rules[0].http_method",
            "case-sensitive",
        ),
        (
            rules(
                r#"[{"http_method": "GET", "pattern": "/a", "metric_system_name": "hits", "delta": "many"}]"#,
            ),
            "proxy_config.content.proxy.proxy_rules[0].delta",
            "not an integer",
        ),
        (
            rules(r#"{"a": 1}"#),
            "proxy_config.content.proxy.proxy_rules",
            "expected an array",
        ),
        (
            portal_answer("", r#"{"credentials_location": "cookie"}"#),
            "proxy_config.content.proxy.credentials_location",
            "\"cookie\"",
        ),
        (
            portal_answer("", r#"{"error_status_no_match": 99}"#),
            "proxy_config.content.proxy.error_status_no_match",
            "not an HTTP status",
        ),
        (
            portal_answer("", r#"{"error_headers_auth_failed": "text/plain\n"}"#),
            "proxy_config.content.proxy.error_headers_auth_failed",
            "Content-Type",
        ),
        (
            portal_answer("", r#"{"backend": {"endpoint": "su1.3scale.net"}}"#),
            "proxy_config.content.proxy.backend.endpoint",
            "not an http or https URL",
        ),
        (
            portal_answer("", r#"{"auth_user_key": "user key"}"#),
            "proxy_config.content.proxy.auth_user_key",
            "not a usable parameter name",
        ),
        (
            portal_answer(r#""system_name": ["x"],"#, "{}"),
            "proxy_config.content.system_name",
            "expected a string",
        ),
        (
            r#"{"proxy_config": {"content": {"id": 9, "backend_version": "3",
                "backend_authentication_type": "service_token",
                "backend_authentication_value": "secret-token-value"}}}"#
                .into(),
            "proxy_config.content.backend_version",
            "not 1, 2 or oauth",
        ),
        (
            r#"{"proxy_config": {"content": {"id": 9,
                "backend_authentication_value": "secret-token-value"}}}"#
                .into(),
            "proxy_config.content.backend_authentication_type",
            "missing",
        ),
        (
            r#"{"proxy_config": {"content": {"id": 9,
                "backend_authentication_type": "password",
                "backend_authentication_value": "secret-token-value"}}}"#
                .into(),
            "proxy_config.content.backend_authentication_type",
            "service_token or provider_key",
        ),
        (
            r#"{"proxy_config": {"content": {"backend_authentication_type": "service_token",
                "backend_authentication_value": "secret-token-value"}}}"#
                .into(),
            "proxy_config.content.id",
            "missing",
        ),
        (
            r#"{"proxy_config": {"version": 3}}"#.into(),
            "proxy_config.content",
            "missing",
        ),
        (r#"{"services": []}"#.into(), "services", "no service"),
        (
            r#"{"services": [{"id": 1}, 7]}"#.into(),
            "services[1]",
            "expected an object",
        ),
        (
            r#"{"services": [{"id": 1}]}"#.into(),
            "services[0].backend_authentication_type",
            "missing",
        ),
        (r#"[1, 2]"#.into(), "", "expected a JSON object"),
        (r#"{"proxy_config": "#.into(), "", "invalid JSON"),
    ];
    for (json, field, reason) in cases {
        let err = load_err(&json);
        assert_eq!(err.field, field, "{json}\n→ {err}");
        assert!(err.reason.contains(reason), "{json}\n→ {err}");
        assert!(err.to_string().starts_with("latest.json: "), "{err}");
    }
}

#[test]
fn the_sample_project_file_loads_every_setting() {
    let config = parse_project_config(&example("threescale.yaml"), "threescale.yaml").unwrap();
    assert_eq!(config.service.service_id, "2555417777820");
    assert_eq!(config.service.system_name.as_deref(), Some("demo"));
    assert_eq!(config.service.backend_url, "http://127.0.0.1:3001");
    assert_eq!(config.timeout, Duration::from_millis(2000));
    assert_eq!(config.service.mapping_rules.rules().len(), 4);
    assert_eq!(config.failure_policy, FailurePolicy::Resilient);
    assert_eq!(config.bypass_paths, vec!["/health".to_string()]);
    assert_eq!(config.rate_limit_headers, RateLimitHeaders::Legacy);
    let Mode::Cached(settings) = config.mode else {
        panic!("expected cached mode");
    };
    assert_eq!(settings.ttl, Duration::from_secs(10));
    assert_eq!(settings.flush_interval, Duration::from_secs(5));
    let no_match = config.service.error_responses.get(DenialKind::NoMatch);
    assert_eq!(no_match.content_type, "application/json");
    assert_eq!(
        usage_of(&config, "GET", "/orders/7"),
        pairs(&[("orders", 1)])
    );
    assert_eq!(
        usage_of(&config, "GET", "/catalog/x/items.json?page=1&sort=price"),
        pairs(&[("hits", 3)])
    );
}

#[test]
fn project_files_in_json_with_defaults() {
    let json = r#"{"service": {"id": 42, "provider_key": "pk", "backend_version": 2,
        "credentials": {"location": "authorization"},
        "mapping_rules": [
            {"http_method": "GET", "pattern": "/b", "metric_system_name": "b", "delta": 1, "position": 2},
            {"http_method": "GET", "pattern": "/a", "metric_system_name": "a", "delta": 1, "position": 1}
        ]},
        "mode": "cached", "failure_policy": "open", "rate_limit_headers": "ietf"}"#;
    let config = parse_project_config(json, "threescale.json").unwrap();
    assert_eq!(config.service.service_id, "42");
    assert_eq!(config.service.backend_version, BackendVersion::AppId);
    assert_eq!(
        config.service.credentials.location(),
        CredentialsLocation::Authorization
    );
    assert_eq!(config.service.backend_url, "https://su1.3scale.net");
    assert!(matches!(config.mode, Mode::Cached(_)));
    assert_eq!(config.failure_policy, FailurePolicy::Open);
    assert_eq!(config.rate_limit_headers, RateLimitHeaders::Ietf);
    // Hand-written rules with positions are sorted by them.
    assert_eq!(config.service.mapping_rules.rules()[0].pattern, "/a");

    // Without rules every request counts one hit.
    let config = parse_project_config("service: {id: 1, service_token: t}", "min.yaml").unwrap();
    assert_eq!(
        usage_of(&config, "DELETE", "/anything"),
        pairs(&[("hits", 1)])
    );
    assert_eq!(config.mode, Mode::Sync);
}

#[test]
fn broken_project_files_are_refused_naming_the_field() {
    let cases = [
        ("service: {id: 1}", "service.service_token", "required"),
        ("service: {service_token: t}", "service.id", "required"),
        (
            "service: {id: 1, service_token: t, provider_key: k}",
            "service.service_token",
            "not both",
        ),
        (
            "service: {id: 1, service_token: t, backend_version: 4}",
            "service.backend_version",
            "not 1, 2 or oauth",
        ),
        (
            "service: {id: 1, service_token: t, credentials: {location: body}}",
            "service.credentials.location",
            "\"body\"",
        ),
        (
            "service: {id: 1, service_token: t, mapping_rules: [{http_method: GET, pattern: '/a', metric_system_name: m, delta: 1}, {http_method: GET, pattern: 'a{', metric_system_name: m}]}",
            "service.mapping_rules[1].pattern",
            "a{",
        ),
        (
            "service: {id: 1, service_token: t, errors: {teapot: {status: 418}}}",
            "service.errors.teapot",
            "expected auth_failed",
        ),
        (
            "service: {id: 1, service_token: t, errors: {no_match: {status: 1000}}}",
            "service.errors.no_match.status",
            "not an HTTP status",
        ),
        (
            "service: {id: 1, service_token: t}\nbackend: {url: 'ftp://x'}",
            "backend_url",
            "not an http or https URL",
        ),
        (
            "service: {id: 1, service_token: t}\nbackend: {timeout_ms: 0}",
            "backend.timeout_ms",
            "more than zero",
        ),
        (
            "service: {id: 1, service_token: t}\nmode: fast",
            "mode",
            "\"fast\" is not sync or cached",
        ),
        (
            "service: {id: 1, service_token: t}\nmode: {cached: {max_batch: 5000}}",
            "mode.cached.max_batch",
            "between 1 and 1000",
        ),
        (
            "service: {id: 1, service_token: t}\nmode: {cached: {tll_ms: 5}}",
            "mode",
            "unknown field `tll_ms`",
        ),
        (
            "service: {id: 1, service_token: t}\nbypass_paths: [health]",
            "bypass_paths",
            "does not start with /",
        ),
        (
            "service: {id: 1, service_token: t, user_key: x}",
            "",
            "unknown field `user_key`",
        ),
        ("servce: {id: 1}", "", "unknown field `servce`"),
        ("service: [", "", "not valid YAML or JSON"),
    ];
    for (text, field, reason) in cases {
        let err = parse_project_config(text, "threescale.yaml").unwrap_err();
        assert_eq!(err.source_name, "threescale.yaml");
        assert_eq!(err.field, field, "{text}\n→ {err}");
        assert!(err.reason.contains(reason), "{text}\n→ {err}");
    }
}

#[test]
fn secrets_are_never_quoted_in_errors() {
    // A numeric token is a token, not a type error that would quote it.
    let config =
        parse_project_config("service: {id: 1, service_token: 918273645}", "t.yaml").unwrap();
    assert_eq!(config.service.provider_auth.secret().expose(), "918273645");
    let err = parse_project_config(
        "service: {id: 1, service_token: 918273645, mapping_rules: [{pattern: 1}]}",
        "t.yaml",
    )
    .unwrap_err();
    assert!(!err.to_string().contains("918273645"), "{err}");
}

#[test]
fn an_emulator_config_is_recognised_and_refused_with_advice() {
    let err = parse_project_config(&example("emulator.yaml"), "emulator.yaml").unwrap_err();
    assert!(err.reason.contains("threescale emulate"), "{err}");
}

#[test]
fn the_environment_can_point_at_a_file_and_override_its_backend() {
    let path = format!(
        "{}/../examples/proxy-config.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let config = Config::from_vars(|name| match name {
        "THREESCALE_CONFIG" => Some(path.clone()),
        "THREESCALE_BACKEND_URL" => Some("http://127.0.0.1:9/".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.service.service_id, "2555417777820");
    assert_eq!(config.service.backend_url, "http://127.0.0.1:9");
    let err = Config::from_vars(|name| match name {
        "THREESCALE_CONFIG" => Some("/nonexistent/threescale.yaml".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.reason.contains("cannot read the file"), "{err}");
}

#[test]
fn the_builder_names_the_broken_rule_and_its_field() {
    let err = Config::builder()
        .service_token("t", "1")
        .rule("GET", "/a", "hits", 1)
        .rule("get", "/b", "hits", 1)
        .build()
        .unwrap_err();
    assert_eq!(err.field, "mapping_rules[1].http_method", "{err}");
    assert!(err.reason.contains("case-sensitive"), "{err}");
    assert!(err.reason.contains("\"/b\""), "{err}");
}
