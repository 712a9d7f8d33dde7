// The request-side settings from every source (builder, environment, project
// file, proxy config) and what the engine does with them.

use crate::{
    Config, Decision, DenialKind, PathPolicy, RequestPolicy, SimpleRequest, Step, ThreeScale,
    config::file::parse_project_config,
};
use http::StatusCode;

fn kind(step: &Step) -> Option<DenialKind> {
    match step {
        Step::Done(outcome) => match &outcome.decision {
            Decision::Deny(denial) => Some(denial.kind),
            _ => None,
        },
        Step::Pending(_) => None,
    }
}

fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[test]
fn defaults_refuse_ambiguous_paths_and_limit_credentials() {
    let config = Config::builder().service_token("t", "1").build().unwrap();
    assert_eq!(config.request, RequestPolicy::default());
    assert_eq!(config.request.paths, PathPolicy::Strict);
    assert_eq!(config.request.max_credential_len, 256);
    assert_eq!(config.request.max_token_len, 8192);
    let bad = config.service.error_responses.get(DenialKind::BadRequest);
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(&bad.body[..], b"Bad request");
    assert!(bad.content_type.to_str().unwrap().starts_with("text/plain"));
}

#[test]
fn the_builder_refuses_zero_limits() {
    for builder in [
        Config::builder().max_credential_len(0),
        Config::builder().max_token_len(0),
    ] {
        let err = builder.service_token("t", "1").build().unwrap_err();
        assert!(err.field.starts_with("max_"), "{err}");
    }
}

#[test]
fn the_project_file_sets_limits_paths_and_the_400() {
    let yaml = r#"
service:
  id: "42"
  service_token: tok
  errors:
    bad_request: { status: 422, body: '{"error":"ambiguous"}', content_type: application/json }
request:
  max_credential_len: 32
  max_token_len: 4096
  paths: normalise
"#;
    let config = parse_project_config(yaml, "threescale.yaml").unwrap();
    assert_eq!(
        config.request,
        RequestPolicy {
            max_credential_len: 32,
            max_token_len: 4096,
            paths: PathPolicy::Normalise,
        }
    );
    let bad = config.service.error_responses.get(DenialKind::BadRequest);
    assert_eq!(bad.status.as_u16(), 422);
    assert_eq!(bad.content_type, "application/json");

    let err = parse_project_config(
        "service: { id: '42', service_token: tok }\nrequest: { paths: lax }",
        "bad.yaml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("lax"), "{err}");
    let err = parse_project_config(
        "service: { id: '42', service_token: tok }\nrequest: { max_credential_len: 0 }",
        "bad.yaml",
    )
    .unwrap_err();
    assert_eq!(err.field, "request.max_credential_len");
    let err = parse_project_config(
        "service: { id: '42', service_token: tok }\nrequest: { max_key: 3 }",
        "bad.yaml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_key"), "{err}");
}

#[test]
fn the_environment_sets_limits_and_paths() {
    let vars = |extra: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            let base = [
                ("THREESCALE_SERVICE_ID", "42"),
                ("THREESCALE_SERVICE_TOKEN", "tok"),
            ];
            base.iter()
                .chain(extra.iter())
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let config = Config::from_vars(vars(&[
        ("THREESCALE_MAX_CREDENTIAL_LEN", "100"),
        ("THREESCALE_MAX_TOKEN_LEN", "2000"),
        ("THREESCALE_PATH_POLICY", "normalise"),
    ]))
    .unwrap();
    assert_eq!(config.request.max_credential_len, 100);
    assert_eq!(config.request.max_token_len, 2000);
    assert_eq!(config.request.paths, PathPolicy::Normalise);
    for bad in [
        &[("THREESCALE_MAX_CREDENTIAL_LEN", "many")][..],
        &[("THREESCALE_MAX_TOKEN_LEN", "0")][..],
        &[("THREESCALE_PATH_POLICY", "loose")][..],
    ] {
        assert!(Config::from_vars(vars(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn the_proxy_config_sets_the_400() {
    let json = r#"{"id": 1, "backend_authentication_type": "service_token",
        "backend_authentication_value": "t",
        "proxy": {"error_status_bad_request": 418, "error_bad_request": "nope",
                  "error_headers_bad_request": "text/html"}}"#;
    let config = Config::from_proxy_config(json).unwrap();
    let bad = config.service.error_responses.get(DenialKind::BadRequest);
    assert_eq!(bad.status.as_u16(), 418);
    assert_eq!(&bad.body[..], b"nope");
    assert_eq!(bad.content_type, "text/html");
}

#[test]
fn the_engine_refuses_before_mapping_and_normalises_on_request() {
    let strict = ThreeScale::new(
        Config::builder()
            .backend_url(closed_url())
            .service_token("t", "1")
            .rule("GET", "/orders/{id}$", "orders", 1)
            .bypass_path("/health/")
            .build()
            .unwrap(),
    )
    .unwrap();
    let normalise = ThreeScale::new(
        Config::builder()
            .backend_url(closed_url())
            .service_token("t", "1")
            .rule("GET", "/orders/{id}$", "orders", 1)
            .bypass_path("/health/")
            .path_policy(PathPolicy::Normalise)
            .build()
            .unwrap(),
    )
    .unwrap();
    for (path, strict_kind, normalised_kind) in [
        // (what Strict gives, what Normalise gives; None = goes to the backend)
        ("/orders//1?user_key=k", Some(DenialKind::BadRequest), None),
        (
            "/orders/1%2F?user_key=k",
            Some(DenialKind::BadRequest),
            Some(DenialKind::NoMatch),
        ),
        (
            "/x/../orders/1?user_key=k",
            Some(DenialKind::BadRequest),
            None,
        ),
        ("/orders/1?user_key=k", None, None),
        (
            "/nowhere?user_key=k",
            Some(DenialKind::NoMatch),
            Some(DenialKind::NoMatch),
        ),
        (
            "/orders/1?user_key=k%01",
            Some(DenialKind::AuthFailed),
            Some(DenialKind::AuthFailed),
        ),
    ] {
        let request = SimpleRequest::get(path);
        assert_eq!(kind(&strict.begin(&request)), strict_kind, "strict {path}");
        assert_eq!(
            kind(&normalise.begin(&request)),
            normalised_kind,
            "normalise {path}"
        );
    }
    for (engine, name) in [(&strict, "strict"), (&normalise, "normalise")] {
        let step = engine.begin(&SimpleRequest::get("/health"));
        assert!(
            matches!(&step, Step::Done(o) if matches!(o.decision, Decision::Bypass)),
            "{name}"
        );
        let step = engine.begin(&SimpleRequest::get("/healthz"));
        assert_eq!(kind(&step), Some(DenialKind::AuthMissing), "{name}");
    }
    // The 400 is served as configured.
    let response = strict.error_response(&crate::Denial::new(DenialKind::BadRequest));
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
}
