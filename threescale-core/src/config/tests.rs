//! The configuration pipeline: every source fills a [`ConfigBuilder`], and the
//! same service from every source gives the same [`Config`].

use std::time::Duration;

use http::StatusCode;

use super::{
    CacheSettings, Config, ConfigError, FailurePolicy, Mode, RateLimitHeaders,
    file::parse_project_config, proxy::config_from_proxy_json,
};
use crate::{
    BackendVersion, CredentialsConfig, CredentialsLocation, DenialKind, ErrorResponse,
    ErrorResponses, PathPolicy,
};

/// A response no default has, per kind, so a swapped slot shows.
fn custom(kind: DenialKind) -> (u16, String, String) {
    (
        460 + kind.index() as u16,
        format!("body of {}", kind.key()),
        format!("application/x-{}", kind.key()),
    )
}

fn assert_only_changed(responses: &ErrorResponses, changed: DenialKind, what: &str) {
    for (kind, response) in responses.iter() {
        if kind == changed {
            let (status, body, content_type) = custom(kind);
            assert_eq!(response.status.as_u16(), status, "{what}: {kind:?}");
            assert_eq!(&response.body[..], body.as_bytes(), "{what}: {kind:?}");
            assert_eq!(
                response.content_type,
                content_type.as_str(),
                "{what}: {kind:?}"
            );
        } else {
            assert_eq!(
                response,
                &ErrorResponse::default_for(kind),
                "{what}: {kind:?}"
            );
        }
    }
}

#[test]
fn every_denial_kind_round_trips_through_its_file_key() {
    for kind in DenialKind::ALL {
        assert_eq!(DenialKind::from_key(kind.key()), Some(kind));
        let parsed: DenialKind = serde_json::from_str(&format!("{:?}", kind.key())).unwrap();
        assert_eq!(parsed, kind);
        let (status, body, content_type) = custom(kind);
        let text = format!(
            r#"{{"service": {{"id": "1", "service_token": "t", "errors": {{"{}": {{
                "status": {status}, "body": "{body}", "content_type": "{content_type}"}}}}}}}}"#,
            kind.key()
        );
        let config = parse_project_config(&text, "file").unwrap();
        assert_only_changed(&config.service.error_responses, kind, "file");
    }
}

#[test]
fn every_denial_kind_the_gateway_configures_round_trips_through_its_proxy_keys() {
    let mut with_keys = 0;
    for kind in DenialKind::ALL {
        let Some(keys) = kind.proxy_keys() else {
            assert_eq!(kind, DenialKind::BackendUnavailable);
            continue;
        };
        with_keys += 1;
        assert_eq!(keys.body, format!("error_{}", kind.key()));
        assert_eq!(keys.status, format!("error_status_{}", kind.key()));
        assert_eq!(keys.content_type, format!("error_headers_{}", kind.key()));
        let (status, body, content_type) = custom(kind);
        let json = format!(
            r#"{{"id": 1, "backend_authentication_type": "service_token",
                "backend_authentication_value": "t", "proxy": {{
                "{}": {status}, "{}": "{body}", "{}": "{content_type}"}}}}"#,
            keys.status, keys.body, keys.content_type
        );
        let config = config_from_proxy_json(&json, "proxy").unwrap();
        assert_only_changed(&config.service.error_responses, kind, "proxy");
    }
    assert_eq!(with_keys, DenialKind::ALL.len() - 1);
}

#[test]
fn every_denial_kind_round_trips_through_its_environment_variables() {
    for kind in DenialKind::ALL {
        let (status, body, content_type) = custom(kind);
        let upper = kind.key().to_ascii_uppercase();
        let config = Config::from_vars(|name| {
            Some(match name {
                "THREESCALE_SERVICE_ID" => "1".to_string(),
                "THREESCALE_SERVICE_TOKEN" => "t".to_string(),
                n if n == format!("THREESCALE_ERROR_STATUS_{upper}") => status.to_string(),
                n if n == format!("THREESCALE_ERROR_BODY_{upper}") => body.clone(),
                n if n == format!("THREESCALE_ERROR_CONTENT_TYPE_{upper}") => content_type.clone(),
                _ => return None,
            })
        })
        .unwrap();
        assert_only_changed(&config.service.error_responses, kind, "env");
    }
}

#[test]
fn config_enums_deserialize_from_the_file_spellings() {
    fn read<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_json::from_str(&format!("{text:?}")).unwrap()
    }
    assert_eq!(read::<FailurePolicy>("open"), FailurePolicy::Open);
    assert_eq!(read::<FailurePolicy>("closed"), FailurePolicy::Closed);
    assert_eq!(read::<FailurePolicy>("resilient"), FailurePolicy::Resilient);
    // the gateway's caching modes, the former outage spellings
    assert_eq!(read::<FailurePolicy>("strict"), FailurePolicy::Closed);
    assert_eq!(read::<FailurePolicy>("allow"), FailurePolicy::Open);
    assert!(serde_json::from_str::<FailurePolicy>("\"none\"").is_err());
    assert_eq!(read::<RateLimitHeaders>("ietf"), RateLimitHeaders::Ietf);
    assert_eq!(read::<RateLimitHeaders>("off"), RateLimitHeaders::Off);
    assert_eq!(read::<BackendVersion>("1"), BackendVersion::UserKey);
    assert_eq!(read::<BackendVersion>("2"), BackendVersion::AppId);
    assert_eq!(read::<BackendVersion>("oauth"), BackendVersion::OAuth);
    assert_eq!(
        read::<CredentialsLocation>("authorization"),
        CredentialsLocation::Authorization
    );
    assert_eq!(read::<PathPolicy>("normalise"), PathPolicy::Normalise);
    assert_eq!(read::<PathPolicy>("normalize"), PathPolicy::Normalise);
    assert!(serde_json::from_str::<FailurePolicy>(r#""Open""#).is_err());
    assert!(serde_json::from_str::<DenialKind>(r#""teapot""#).is_err());
}

/// What two configurations from different sources must agree on.
fn comparable(config: &Config) -> String {
    let rules: Vec<_> = config
        .service
        .mapping_rules
        .rules()
        .iter()
        .map(|r| {
            (
                &r.http_method,
                &r.pattern,
                &r.metric_system_name,
                r.delta,
                r.last,
            )
        })
        .collect();
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {rules:?}",
        config.service.service_id,
        config.service.system_name,
        config.service.backend_version,
        config.service.backend_url,
        config.service.credentials,
        config.service.error_responses,
        config.mode,
    )
}

#[test]
fn one_service_from_every_source_gives_the_same_config() {
    let from_builder = Config::builder()
        .backend_url("http://127.0.0.1:3001/")
        .service_token("token", "77")
        .system_name("shop")
        .backend_version(BackendVersion::AppId)
        .credentials(
            CredentialsConfig::new(CredentialsLocation::Headers)
                .app_id_name("x-app-id")
                .app_key_name("x-app-key"),
        )
        .rule("GET", "/orders", "orders", 2)
        .error_response(
            DenialKind::NoMatch,
            ErrorResponse::new(StatusCode::from_u16(412).unwrap(), "no rule"),
        )
        .mode(Mode::Cached(CacheSettings {
            ttl: Duration::from_secs(30),
            flush_interval: Duration::from_secs(7),
            ..CacheSettings::default()
        }))
        .failure_policy(FailurePolicy::Closed)
        .build()
        .unwrap();
    let from_file = parse_project_config(
        r#"{"backend": {"url": "http://127.0.0.1:3001/"},
            "service": {"id": 77, "system_name": "shop", "backend_version": 2,
              "service_token": "token",
              "credentials": {"location": "headers", "app_id": "x-app-id", "app_key": "x-app-key"},
              "mapping_rules": [{"http_method": "GET", "pattern": "/orders",
                                 "metric_system_name": "orders", "delta": 2}],
              "errors": {"no_match": {"status": 412, "body": "no rule"}}},
            "mode": {"cached": {"ttl_ms": 30000, "flush_interval_ms": 7000, "outage": "strict"}}}"#,
        "file",
    )
    .unwrap();
    let from_proxy = config_from_proxy_json(
        r#"{"proxy_config": {"content": {"id": 77, "system_name": "shop",
            "backend_version": "2", "backend_authentication_type": "service_token",
            "backend_authentication_value": "token",
            "proxy": {"backend": {"endpoint": "http://127.0.0.1:3001/"},
              "credentials_location": "headers",
              "auth_app_id": "x-app-id", "auth_app_key": "x-app-key",
              "error_no_match": "no rule", "error_status_no_match": 412,
              "proxy_rules": [{"http_method": "GET", "pattern": "/orders",
                               "metric_system_name": "orders", "delta": 2}],
              "policy_chain": [
                {"name": "apicast.policy.3scale_batcher",
                 "configuration": {"auths_ttl": 30, "batch_report_seconds": 7}},
                {"name": "apicast.policy.caching",
                 "configuration": {"caching_type": "strict"}}]}}}}"#,
        "proxy",
    )
    .unwrap();
    let from_env = Config::from_vars(|name| {
        Some(
            match name {
                "THREESCALE_BACKEND_URL" => "http://127.0.0.1:3001/",
                "THREESCALE_SERVICE_ID" => "77",
                "THREESCALE_SERVICE_TOKEN" => "token",
                "THREESCALE_BACKEND_VERSION" => "2",
                "THREESCALE_CREDENTIALS_LOCATION" => "headers",
                "THREESCALE_ERROR_STATUS_NO_MATCH" => "412",
                "THREESCALE_ERROR_BODY_NO_MATCH" => "no rule",
                "THREESCALE_FAILURE_POLICY" => "strict",
                _ => return None,
            }
            .to_string(),
        )
    })
    .unwrap();

    let expected = comparable(&from_builder);
    assert!(expected.contains("\"http://127.0.0.1:3001\""), "{expected}");
    assert_eq!(comparable(&from_file), expected);
    assert_eq!(comparable(&from_proxy), expected);
    for config in [&from_file, &from_proxy, &from_env] {
        assert_eq!(
            config.service.provider_auth,
            from_builder.service.provider_auth
        );
        assert_eq!(config.timeout, from_builder.timeout);
        assert_eq!(config.failure_policy, from_builder.failure_policy);
        assert_eq!(config.request, from_builder.request);
    }
    // The environment has no mapping rules, parameter names, system name or
    // cache settings: what it does have agrees.
    assert_eq!(
        from_env.service.backend_url,
        from_builder.service.backend_url
    );
    assert_eq!(from_env.service.backend_version, BackendVersion::AppId);
    assert_eq!(
        from_env.service.error_responses,
        from_builder.service.error_responses
    );
}

fn env_err(vars: &[(&str, &str)]) -> ConfigError {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .unwrap_err()
}

#[test]
fn checks_run_in_build_for_every_source_and_name_the_source_field() {
    let builder = || Config::builder().service_token("t", "1");
    let err = builder().timeout(Duration::ZERO).build().unwrap_err();
    assert_eq!(
        (err.source_name.as_str(), err.field.as_str()),
        ("builder", "timeout")
    );
    let err = builder().bypass_path("health").build().unwrap_err();
    assert_eq!(err.field, "bypass_paths");
    assert!(err.reason.contains("does not start with /"), "{err}");
    let err = builder().rule("GET", "/a{", "hits", 1).build().unwrap_err();
    assert_eq!(err.field, "mapping_rules[0].pattern");

    let token = [
        ("THREESCALE_SERVICE_ID", "1"),
        ("THREESCALE_SERVICE_TOKEN", "t"),
    ];
    let err = env_err(&[
        token[0],
        token[1],
        ("THREESCALE_BYPASS_PATHS", "/ok,health"),
    ]);
    assert_eq!(
        (err.source_name.as_str(), err.field.as_str()),
        ("env", "THREESCALE_BYPASS_PATHS")
    );
    let err = env_err(&[
        token[0],
        token[1],
        ("THREESCALE_ERROR_STATUS_NO_MATCH", "1000"),
    ]);
    assert_eq!(err.field, "THREESCALE_ERROR_STATUS_NO_MATCH");
    assert!(err.reason.contains("not an HTTP status"), "{err}");
    let err = env_err(&[
        token[0],
        token[1],
        ("THREESCALE_ERROR_STATUS_NO_MATCH", "x"),
    ]);
    assert_eq!(err.field, "THREESCALE_ERROR_STATUS_NO_MATCH");
    let err = env_err(&[
        token[0],
        token[1],
        ("THREESCALE_ERROR_CONTENT_TYPE_AUTH_FAILED", "a\nb"),
    ]);
    assert_eq!(err.field, "THREESCALE_ERROR_CONTENT_TYPE_AUTH_FAILED");

    let err = parse_project_config(
        r#"{"service": {"id": 1, "service_token": "t", "credentials": {"user_key": "a b"}}}"#,
        "file",
    )
    .unwrap_err();
    assert_eq!(err.field, "service.credentials.user_key");
    let err = parse_project_config(
        r#"{"service": {"id": 1, "service_token": "t"}, "request": {"max_token_len": 0}}"#,
        "file",
    )
    .unwrap_err();
    assert_eq!(err.field, "request.max_token_len");
    let err = config_from_proxy_json(
        r#"{"id": 1, "backend_authentication_type": "provider_key",
            "backend_authentication_value": "k",
            "proxy": {"error_headers_auth_missing": "a\nb",
                      "proxy_rules": [{"http_method": "GET", "pattern": "/", "metric_system_name": "h"},
                                      {"http_method": "GET", "pattern": "x", "metric_system_name": "h"}]}}"#,
        "proxy",
    )
    .unwrap_err();
    assert_eq!(err.field, "proxy.error_headers_auth_missing");
}

#[test]
fn an_environment_backend_url_over_a_file_is_checked_as_the_environment_s() {
    let path = std::env::temp_dir().join(format!(
        "threescale-config-test-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, r#"{"service": {"id": 1, "service_token": "t"}}"#).unwrap();
    let file = path.display().to_string();
    let run = |url: &'static str| {
        let file = file.clone();
        Config::from_vars(move |name| match name {
            "THREESCALE_CONFIG" => Some(file.clone()),
            "THREESCALE_BACKEND_URL" => Some(url.to_string()),
            _ => None,
        })
    };
    let err = run("ftp://127.0.0.1").unwrap_err();
    let ok = run(" http://127.0.0.1:3001/ ");
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        (err.source_name.as_str(), err.field.as_str()),
        ("env", "THREESCALE_BACKEND_URL")
    );
    assert_eq!(ok.unwrap().service.backend_url, "http://127.0.0.1:3001");
}

/// The former `mode.cached.outage` key and `failure_policy: closed|open` of
/// project files still load, with the behaviour they had together.
#[test]
fn former_outage_spellings_keep_their_behaviour() {
    let file = |mode: &str, policy: Option<&str>| {
        let policy = policy.map_or(String::new(), |p| format!(r#", "failure_policy": "{p}""#));
        let json =
            format!(r#"{{"service": {{"id": 1, "service_token": "t"}}, "mode": {mode}{policy}}}"#);
        let config = parse_project_config(&json, "file").unwrap();
        (
            matches!(config.mode, Mode::Cached(_)),
            config.failure_policy,
        )
    };
    let cached = |outage: &str| format!(r#"{{"cached": {{"outage": "{outage}"}}}}"#);
    use FailurePolicy::*;
    for (outage, policy, expected) in [
        ("strict", None, (true, Closed)),
        ("strict", Some("closed"), (true, Closed)),
        ("strict", Some("open"), (true, Open)),
        ("resilient", None, (true, Resilient)),
        ("resilient", Some("closed"), (true, Resilient)),
        ("resilient", Some("open"), (true, Open)),
        ("allow", None, (true, Open)),
        ("allow", Some("closed"), (true, Open)),
        // no cache: one authrep per request, the failure policy as set
        ("none", None, (false, Resilient)),
        ("none", Some("closed"), (false, Closed)),
        ("none", Some("open"), (false, Open)),
    ] {
        assert_eq!(
            file(&cached(outage), policy),
            expected,
            "{outage} {policy:?}"
        );
    }
    // The new spellings, and the defaults of both modes.
    assert_eq!(file(r#""cached""#, None), (true, Resilient));
    assert_eq!(file(r#""sync""#, None), (false, Resilient));
    assert_eq!(file(r#""cached""#, Some("strict")), (true, Closed));
    assert_eq!(file(r#""cached""#, Some("allow")), (true, Open));
    let err = parse_project_config(
        r#"{"service": {"id": 1, "service_token": "t"}, "failure_policy": "sometimes"}"#,
        "file",
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("failure_policy") && message.contains("resilient"),
        "{message}"
    );
}

/// The gateway's caching policy: `strict`, `resilient`, `allow` select the
/// failure policy behind a batcher, `none` selects Sync mode; without a
/// batcher the caching policy is not read (Sync mode, default policy).
#[test]
fn the_gateway_caching_type_selects_the_failure_policy_or_sync_mode() {
    let proxy = |caching: &str, batcher: bool| {
        let batcher = if batcher {
            r#"{"name": "apicast.policy.3scale_batcher"},"#
        } else {
            ""
        };
        let json = format!(
            r#"{{"id": 5, "backend_authentication_type": "service_token",
            "backend_authentication_value": "t", "proxy": {{"policy_chain": [{batcher}
              {{"name": "apicast.policy.caching", "configuration": {{"caching_type": "{caching}"}}}},
              {{"name": "apicast.policy.apicast"}}]}}}}"#
        );
        let config = config_from_proxy_json(&json, "proxy").unwrap();
        (
            matches!(config.mode, Mode::Cached(_)),
            config.failure_policy,
        )
    };
    use FailurePolicy::*;
    assert_eq!(proxy("strict", true), (true, Closed));
    assert_eq!(proxy("resilient", true), (true, Resilient));
    assert_eq!(proxy("allow", true), (true, Open));
    assert_eq!(proxy("none", true), (false, Resilient));
    for caching in ["strict", "resilient", "allow", "none"] {
        assert_eq!(proxy(caching, false), (false, Resilient), "{caching}");
    }
}

#[test]
fn the_failure_policy_variable_takes_every_spelling() {
    let env = |value: &'static str| {
        Config::from_vars(move |name| {
            Some(
                match name {
                    "THREESCALE_SERVICE_ID" => "1",
                    "THREESCALE_SERVICE_TOKEN" => "t",
                    "THREESCALE_FAILURE_POLICY" => value,
                    _ => return None,
                }
                .to_string(),
            )
        })
    };
    use FailurePolicy::*;
    for (value, policy) in [
        ("closed", Closed),
        ("strict", Closed),
        ("resilient", Resilient),
        ("open", Open),
        ("allow", Open),
    ] {
        assert_eq!(env(value).unwrap().failure_policy, policy, "{value}");
    }
    let err = env("none").unwrap_err();
    assert_eq!(err.field, "THREESCALE_FAILURE_POLICY");
    assert!(err.to_string().contains("resilient"), "{err}");
}

#[test]
fn oidc_from_the_proxy_config_the_file_and_the_builder_is_the_same() {
    use crate::oidc::{ClientIdClaim, OidcSettings};
    let proxy = r#"{"id": 7, "backend_version": "oauth",
        "backend_authentication_type": "service_token", "backend_authentication_value": "t",
        "proxy": {"authentication_method": "oidc",
            "oidc_issuer_endpoint": "https://client:s3cret@sso.example.com/realms/x",
            "jwt_claim_with_client_id": "{{ client_id }}",
            "jwt_claim_with_client_id_type": "liquid"}}"#;
    let from_proxy = config_from_proxy_json(proxy, "proxy config").unwrap();
    let file = r#"
service:
  id: "7"
  service_token: t
  oidc:
    issuer_endpoint: "https://client:s3cret@sso.example.com/realms/x"
    client_id_claim: "{{ client_id }}"
    client_id_claim_type: liquid
"#;
    let from_file = parse_project_config(file, "file").unwrap();
    let expected = OidcSettings::new("https://client:s3cret@sso.example.com/realms/x")
        .client_id_claim(ClientIdClaim::Liquid("{{ client_id }}".into()));
    let from_builder = Config::builder()
        .service_token("t", "7")
        .oidc(expected.clone())
        .build()
        .unwrap();
    for config in [&from_proxy, &from_file, &from_builder] {
        assert_eq!(config.service.backend_version, BackendVersion::OAuth);
        assert_eq!(config.service.oidc.as_ref(), Some(&expected));
        // The endpoint's password never shows.
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}

#[test]
fn oidc_settings_errors_name_the_field() {
    let proxy = r#"{"id": 7, "backend_authentication_type": "service_token",
        "backend_authentication_value": "t",
        "proxy": {"authentication_method": "oidc", "oidc_issuer_endpoint": "https://sso",
            "jwt_claim_with_client_id": "{{ azp | upcase }}",
            "jwt_claim_with_client_id_type": "liquid"}}"#;
    let err = config_from_proxy_json(proxy, "proxy config").unwrap_err();
    assert!(
        err.to_string().contains("proxy.jwt_claim_with_client_id"),
        "{err}"
    );
    let proxy = r#"{"id": 7, "backend_authentication_type": "service_token",
        "backend_authentication_value": "t",
        "proxy": {"authentication_method": "oidc", "oidc_issuer_endpoint": "ftp://sso"}}"#;
    let err = config_from_proxy_json(proxy, "proxy config").unwrap_err();
    assert!(
        err.to_string().contains("proxy.oidc_issuer_endpoint"),
        "{err}"
    );
    // Without an endpoint, an oidc service needs a token verifier, as before.
    let proxy = r#"{"id": 7, "backend_authentication_type": "service_token",
        "backend_authentication_value": "t", "proxy": {"authentication_method": "oidc"}}"#;
    let config = config_from_proxy_json(proxy, "proxy config").unwrap();
    assert_eq!(config.service.backend_version, BackendVersion::OAuth);
    assert!(config.service.oidc.is_none());

    let file = "service: { id: '7', service_token: t, backend_version: '1', oidc: { issuer_endpoint: 'https://sso' } }";
    let err = parse_project_config(file, "file").unwrap_err();
    assert!(err.to_string().contains("service.backend_version"), "{err}");
    let file = "service: { id: '7', service_token: t, oidc: { issuer_endpoint: 'https://sso', audience: [] } }";
    let err = parse_project_config(file, "file").unwrap_err();
    assert!(err.to_string().contains("service.oidc.audience"), "{err}");
}

#[test]
fn a_credential_chain_from_the_file() {
    let file = "service: { id: '7', service_token: t, credentials: { location: [headers, query], user_key: api_key } }";
    let config = parse_project_config(file, "file").unwrap();
    assert_eq!(
        config.service.credentials,
        CredentialsConfig::new(CredentialsLocation::Headers)
            .fallback(CredentialsLocation::Query)
            .user_key_name("api_key")
    );
    let file = "service: { id: '7', service_token: t, credentials: { location: [headers, body] } }";
    let err = parse_project_config(file, "file").unwrap_err();
    assert!(
        err.to_string().contains("service.credentials.location"),
        "{err}"
    );
    let file = "service: { id: '7', service_token: t, credentials: { location: [] } }";
    assert!(parse_project_config(file, "file").is_err());
}

#[test]
fn oidc_and_a_credential_chain_from_the_environment() {
    let vars = |extra: &[(&'static str, &'static str)]| {
        let mut vars = vec![
            ("THREESCALE_SERVICE_TOKEN", "t"),
            ("THREESCALE_SERVICE_ID", "7"),
        ];
        vars.extend_from_slice(extra);
        vars
    };
    let get = |vars: Vec<(&'static str, &'static str)>| {
        Config::from_vars(move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    };
    let config = get(vars(&[
        ("THREESCALE_CREDENTIALS_LOCATION", "headers, query"),
        (
            "THREESCALE_OIDC_ISSUER_ENDPOINT",
            "https://sso.example.com/realms/x",
        ),
    ]))
    .unwrap();
    assert_eq!(config.service.backend_version, BackendVersion::OAuth);
    assert_eq!(
        config.service.credentials.locations(),
        vec![CredentialsLocation::Headers, CredentialsLocation::Query]
    );
    assert!(config.service.oidc.is_some());
    let err = env_err(&vars(&[
        ("THREESCALE_BACKEND_VERSION", "1"),
        ("THREESCALE_OIDC_ISSUER_ENDPOINT", "https://sso"),
    ]));
    assert_eq!(err.field, "THREESCALE_BACKEND_VERSION");
    let err = env_err(&vars(&[(
        "THREESCALE_CREDENTIALS_LOCATION",
        "headers,body",
    )]));
    assert_eq!(err.field, "THREESCALE_CREDENTIALS_LOCATION");
}
