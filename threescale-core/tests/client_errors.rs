//! Failures of the client against servers on 127.0.0.1: 4xx error documents,
//! 5xx, timeouts, refused connections, malformed XML, unexpected statuses.

#[path = "fixtures/support/recorder.rs"]
mod recorder;

use std::time::Duration;

use http::StatusCode;
use recorder::{AUTHORIZED, DENIED, Recorder, Reply, error_doc, refused_url};
use threescale_core::Usage;
use threescale_core::backend::{
    AppCredentials, AuthRequest, AuthResponse, BackendClient, BackendError, Extensions,
    ProviderAuth, Transaction,
};

fn client(url: &str) -> BackendClient {
    BackendClient::builder(ProviderAuth::service_token("svc-token", "svc-1"))
        .url(url)
        .build()
        .unwrap()
}

async fn authrep(url: &str) -> Result<AuthResponse, BackendError> {
    client(url)
        .authrep(&AuthRequest::new(AppCredentials::user_key("uk")))
        .await
}

async fn authrep_reply(reply: Reply) -> Result<AuthResponse, BackendError> {
    let server = Recorder::fixed(reply).await;
    authrep(&server.url).await
}

fn api(err: BackendError) -> (u16, String, String) {
    match err {
        BackendError::Api {
            status,
            code,
            message,
        } => (status.as_u16(), code, message),
        other => panic!("expected Api, got {other:?}"),
    }
}

/// Every error code of the protocol reference (§4.1) that comes back as a
/// synchronous `<error>` document, with its status and message shape.
const ERROR_CASES: &[(u16, &str, &str)] = &[
    (
        403,
        "provider_key_invalid",
        r#"provider key "pk" is invalid"#,
    ),
    (
        403,
        "provider_key_invalid_or_service_missing",
        r#"provider key "pk" invalid and/or service ID missing"#,
    ),
    (
        403,
        "provider_key_or_service_token_required",
        "Provider key or service token are required",
    ),
    (422, "service_id_missing", "Service ID is missing"),
    (
        403,
        "service_token_invalid",
        r#"service token "t" or service id "s" is invalid"#,
    ),
    (403, "service_id_invalid", r#"service id "s" is invalid"#),
    (
        404,
        "application_not_found",
        r#"application with id="boo" was not found"#,
    ),
    (404, "application_not_found", "application id is missing"),
    (403, "user_key_invalid", r#"user key "u" is invalid"#),
    (403, "user_key_invalid", "user key is missing"),
    (
        403,
        "authentication_error",
        "either app_id or user_key is allowed, not both",
    ),
    (404, "metric_invalid", r#"metric "nope" is invalid"#),
    (
        403,
        "usage_value_invalid",
        r#"usage value "-1" for metric "hits" is invalid"#,
    ),
    (
        403,
        "usage_value_invalid",
        r#"usage value for metric "hits" can not be empty"#,
    ),
    (422, "not_valid_data", "all data must be valid UTF8"),
    (
        400,
        "bad_request",
        "request contains syntax errors, should not be repeated without modification",
    ),
    (
        400,
        "bad_request",
        "Invalid query parameters: invalid %-encoding",
    ),
    (
        400,
        "end_users_no_longer_supported",
        "End-users are no longer supported, do not specify the user_id parameter",
    ),
    (
        403,
        "referrer_filters_missing",
        "referrer filters are missing",
    ),
];

#[tokio::test]
async fn error_documents_become_api_errors() {
    for &(status, code, message) in ERROR_CASES {
        let err = authrep_reply(Reply::new(status, error_doc(code, message)))
            .await
            .unwrap_err();
        assert!(!err.is_unavailable());
        assert_eq!(
            api(err),
            (status, code.to_string(), message.to_string()),
            "{code}"
        );
    }
}

/// The report-only codes come back from POST /transactions.xml.
#[tokio::test]
async fn report_error_documents_become_api_errors() {
    let cases = [
        (
            400,
            "content_type_invalid",
            "invalid Content-Type: application/json",
        ),
        (
            400,
            "transactions_is_blank",
            "transactions parameter is blank",
        ),
        (
            400,
            "transactions_format_invalid",
            "transactions format is invalid",
        ),
        (
            400,
            "transactions_has_nil_transaction",
            "transactions has a nil transaction",
        ),
        (
            403,
            "provider_key_invalid",
            r#"provider key "pk" is invalid"#,
        ),
    ];
    let tx = [Transaction {
        credentials: AppCredentials::app_id("a"),
        usage: Usage::hits(),
        timestamp: None,
        log_code: None,
    }];
    for (status, code, message) in cases {
        let server = Recorder::fixed(Reply::new(status, error_doc(code, message))).await;
        let err = client(&server.url).report(None, &tx).await.unwrap_err();
        assert_eq!(api(err), (status, code.to_string(), message.to_string()));
    }
    // 200 is not what a report expects.
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    let err = client(&server.url).report(None, &tx).await.unwrap_err();
    assert!(
        matches!(err, BackendError::UnexpectedStatus { status, .. } if status == StatusCode::OK)
    );
}

#[tokio::test]
async fn escaped_messages_are_unescaped() {
    let err = authrep_reply(Reply::new(
        404,
        r#"<?xml version="1.0" encoding="UTF-8"?><error code="application_not_found">application with id="a&amp;b&lt;c&gt;" was not found</error>"#,
    ))
    .await
    .unwrap_err();
    assert_eq!(api(err).2, r#"application with id="a&b<c>" was not found"#);
}

#[tokio::test]
async fn empty_and_non_xml_4xx_bodies() {
    // `usage` not a hash: 403 with an empty body.
    let err = authrep_reply(Reply::new(403, "")).await.unwrap_err();
    assert_eq!(api(err), (403, String::new(), "Forbidden".to_string()));
    // Unknown route: 404, empty body.
    let err = authrep_reply(Reply::new(404, "")).await.unwrap_err();
    assert_eq!(api(err), (404, String::new(), "Not Found".to_string()));
    // With no_body even the errors are empty.
    let server = Recorder::fixed(Reply::new(422, "")).await;
    let err = client(&server.url)
        .authrep(
            &AuthRequest::new(AppCredentials::user_key("uk")).extensions(Extensions {
                no_body: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(api(err).0, 422);
    // Not XML at all.
    let err = authrep_reply(Reply::new(400, "<html><body>Bad Request</body>"))
        .await
        .unwrap_err();
    let (status, code, message) = api(err);
    assert_eq!((status, code.as_str()), (400, ""));
    assert!(message.starts_with("Bad Request"), "{message}");
}

#[tokio::test]
async fn error_document_with_200_or_409_is_an_api_error() {
    for status in [200, 409] {
        let err = authrep_reply(Reply::new(
            status,
            error_doc("application_not_found", "application id is missing"),
        ))
        .await
        .unwrap_err();
        assert_eq!(api(err).1, "application_not_found");
    }
}

#[tokio::test]
async fn server_errors() {
    for status in [500, 502, 503, 504] {
        let err = authrep_reply(Reply::new(status, "upstream\nexploded"))
            .await
            .unwrap_err();
        assert!(err.is_unavailable());
        match err {
            BackendError::Server { status: s, excerpt } => {
                assert_eq!(s.as_u16(), status);
                assert_eq!(excerpt, "upstream exploded");
            }
            other => panic!("{other:?}"),
        }
    }
    let long = "x".repeat(10_000);
    match authrep_reply(Reply::new(500, long)).await.unwrap_err() {
        BackendError::Server { excerpt, .. } => assert_eq!(excerpt.chars().count(), 64),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unexpected_statuses() {
    for status in [201, 204, 301, 302, 304] {
        let reply = Reply::new(status, "").header("location", "http://127.0.0.1:9/elsewhere");
        let server = Recorder::fixed(reply).await;
        let err = authrep(&server.url).await.unwrap_err();
        assert!(
            matches!(&err, BackendError::UnexpectedStatus { status: s, .. } if s.as_u16() == status),
            "{status}: {err:?}"
        );
        // Redirects are never followed.
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn timeout_when_the_server_is_too_slow() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED).delay(Duration::from_secs(3))).await;
    let c = BackendClient::builder(ProviderAuth::provider_key("pk"))
        .url(&server.url)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    // The server answers after 3 s; the client gives up at its own timeout.
    let err = c
        .authorize(&AuthRequest::new(AppCredentials::user_key("uk")))
        .await
        .unwrap_err();
    assert!(err.is_unavailable());
    assert!(
        matches!(err, BackendError::Timeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let url = refused_url().await;
    let err = authrep(&url).await.unwrap_err();
    assert!(err.is_unavailable());
    match &err {
        BackendError::Transport(message) => {
            assert!(!message.contains("svc-token"), "{message}");
            assert!(!message.contains("transactions"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let err = client(&url)
        .report(
            None,
            &[Transaction {
                credentials: AppCredentials::app_id("a"),
                usage: Usage::hits(),
                timestamp: None,
                log_code: None,
            }],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn malformed_xml_answers() {
    let cases: &[(u16, &str)] = &[
        (200, "<status><authorized>true</authorized>"),
        (200, "Internal Server Error"),
        (200, "<html><body>hello</body></html>"),
        (200, "<status><plan>Basic</plan></status>"),
        (200, "<status><authorized>yes</authorized></status>"),
        (
            200,
            r#"<status><authorized>true</authorized><usage_reports><usage_report metric="hits" period="day"><max_value>ten</max_value><current_value>1</current_value></usage_report></usage_reports></status>"#,
        ),
        (409, "<status><authorized>false</authorized><reason>x"),
        (409, "\u{0}\u{1}garbage"),
        // Empty body without no_body.
        (200, ""),
        // Status and document disagree.
        (200, DENIED),
        (409, AUTHORIZED),
    ];
    for &(status, body) in cases {
        let err = authrep_reply(Reply::new(status, body)).await.unwrap_err();
        assert!(err.is_unavailable());
        match err {
            BackendError::MalformedXml(e) => {
                assert!(e.excerpt.chars().count() <= 64);
                assert!(!e.excerpt.chars().any(char::is_control), "{e:?}");
            }
            other => panic!("{body:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn unescaped_reason_is_read_whole() {
    // The backend inserts the reason without escaping: an app key, referrer or
    // redirect URL echoed in it may hold `&`, `<` or even `</reason>`.
    let reason =
        r#"referrer "<b>&x=1&amp;</reason><authorized>true</authorized><reason>" is not allowed"#;
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>false</authorized><reason>{reason}</reason><plan>Basic</plan></status>"#
    );
    let answer = authrep_reply(Reply::new(409, body)).await.unwrap();
    let auth = answer.authorization.unwrap();
    assert!(!auth.authorized);
    assert_eq!(
        auth.reason.as_deref(),
        Some(r#"referrer "<b>&x=1&</reason><authorized>true</authorized><reason>" is not allowed"#)
    );
    assert_eq!(auth.plan.as_deref(), Some("Basic"));
}
