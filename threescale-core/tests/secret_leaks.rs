//! Secrets never leak: not through `Debug`/`Display`, not through
//! `BackendError` messages or `Authorization.reason`, not through `tracing`
//! output (including the `log` records of the HTTP stack), whatever way a call
//! fails and however the backend (or a proxy in front of it) echoes them.

#[path = "fixtures/support/recorder.rs"]
mod recorder;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recorder::{Recorded, Recorder, Reply, error_doc, refused_url};
use threescale_core::backend::{
    AppCredentials, AuthRequest, BackendClient, BackendError, Extensions, ProviderAuth, Transaction,
};
use threescale_core::{Secret, Usage};

const TOKEN: &str = "tokS3CR3TA&<x> +/=";
const PROVIDER_KEY: &str = "pkS3CR3TB-0f9e8d7c6b5a";
const USER_KEY: &str = "ukS3CR3TC-1234567890abcdef";
const APP_KEY: &str = "akS3CR3TD \"q\" &amp; <k>";

/// Parts of the secrets that must appear nowhere.
const MARKERS: &[&str] = &["S3CR3TA", "S3CR3TB", "S3CR3TC", "S3CR3TD"];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a scenario (picked by the `referrer` parameter, or the report body)
/// answers: the backend's echoing error messages, and a proxy that echoes the
/// whole request.
fn respond(r: &Recorded) -> Reply {
    let query = r.raw_query.clone().unwrap_or_default();
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let scenario = r.param("referrer").unwrap_or("report").to_string();
    let user_key = r.param("user_key").unwrap_or("").to_string();
    let app_key = r.param("app_key").unwrap_or("").to_string();
    let token = r.param("service_token").unwrap_or("").to_string();
    let provider_key = r.param("provider_key").unwrap_or("").to_string();
    match scenario.as_str() {
        "provider_key_invalid" => Reply::new(
            403,
            error_doc(
                "provider_key_invalid",
                &format!(r#"provider key "{provider_key}" is invalid"#),
            ),
        ),
        "provider_key_missing_service" => Reply::new(
            403,
            error_doc(
                "provider_key_invalid_or_service_missing",
                &format!(r#"provider key "{provider_key}" invalid and/or service ID missing"#),
            ),
        ),
        "service_token_invalid" => Reply::new(
            403,
            error_doc(
                "service_token_invalid",
                &format!(r#"service token "{token}" or service id "svc-1" is invalid"#),
            ),
        ),
        "user_key_invalid" => Reply::new(
            403,
            error_doc("user_key_invalid", &format!(r#"user key "{user_key}" is invalid"#)),
        ),
        "application_key_invalid" => Reply::new(
            409,
            // The backend does not escape the reason.
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>false</authorized><reason>application key "{app_key}" is invalid</reason><plan>Basic</plan></status>"#
            ),
        )
        .header("3scale-rejection-reason", "application_key_invalid"),
        "rejection_header_echo" => Reply::new(
            409,
            r#"<status><authorized>false</authorized><reason>referrer is missing</reason></status>"#,
        )
        .header("3scale-rejection-reason", &user_key),
        "proxy_500_raw" => Reply::new(502, format!("bad gateway for GET /?{query}")),
        "proxy_500_decoded" => Reply::new(
            500,
            format!("{user_key}{app_key}{token}{provider_key} in the body"),
        ),
        "malformed_cut" => Reply::new(
            200,
            format!(
                r#"<status><authorized>true</authorized><plan>{}</plan><plan>{}"#,
                escape(&app_key),
                escape(&user_key)
            ),
        ),
        "malformed_number" => Reply::new(
            200,
            format!(
                r#"<status><authorized>true</authorized><usage_reports><usage_report metric="{}" period="day"><max_value>{}</max_value>"#,
                escape(&user_key).replace('"', "&quot;"),
                escape(&app_key)
            ),
        ),
        "malformed_reason" => Reply::new(
            409,
            format!(
                r#"<status><authorized>false</authorized><reason>application key "{app_key}" is invalid"#
            ),
        ),
        "non_xml_4xx" => Reply::new(
            400,
            format!("bad request: user_key={user_key} app_key={app_key} {query}"),
        ),
        "redirect" => Reply::new(302, format!("moved: /?{query}"))
            .header("location", "http://127.0.0.1:9/elsewhere"),
        "slow" => Reply::new(200, "").delay(Duration::from_secs(3)),
        _ if body.contains("fail403") => Reply::new(
            403,
            error_doc(
                "user_key_invalid",
                &format!(
                    r#"user key "{}" is invalid; token "{token}", key "{provider_key}""#,
                    r.param("transactions[0][user_key]").unwrap_or("")
                ),
            ),
        ),
        _ => Reply::new(503, format!("overloaded: {body}")),
    }
}

fn forms(secret: &str) -> Vec<String> {
    let percent: String =
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![secret.to_string(), escape(secret), percent, form]
}

fn assert_clean(what: &str, text: &str) {
    for marker in MARKERS {
        assert!(!text.contains(marker), "{what} leaks {marker}:\n{text}");
    }
    for secret in [TOKEN, PROVIDER_KEY, USER_KEY, APP_KEY] {
        for form in forms(secret) {
            assert!(!text.contains(&form), "{what} leaks {form:?}:\n{text}");
        }
    }
}

#[tokio::test]
async fn no_secret_in_errors_reasons_or_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("install the tracing subscriber");

    let server = Recorder::start(respond).await;
    let by_token = BackendClient::builder(ProviderAuth::service_token(TOKEN, "svc-1"))
        .url(&server.url)
        .build()
        .unwrap();
    let by_key = BackendClient::builder(ProviderAuth::provider_key(PROVIDER_KEY))
        .url(&server.url)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let refused = BackendClient::builder(ProviderAuth::service_token(TOKEN, "svc-1"))
        .url(refused_url().await)
        .build()
        .unwrap();

    let request = |scenario: &str, credentials: AppCredentials| {
        let mut r = AuthRequest::new(credentials).extensions(Extensions {
            rejection_reason_header: true,
            ..Default::default()
        });
        r.referrer = Some(scenario.to_string());
        r
    };
    let user = || AppCredentials::user_key(USER_KEY);
    let app = || AppCredentials::app_id_key("app-1", APP_KEY);

    let mut outcomes: Vec<String> = Vec::new();
    let mut record = |label: &str, result: Result<_, BackendError>| {
        match &result {
            Ok(answer) => outcomes.push(format!("{label}: {answer:?}")),
            Err(err) => outcomes.push(format!("{label}: {err} / {err:?}")),
        }
        result
    };

    let scenarios = [
        "provider_key_invalid",
        "provider_key_missing_service",
        "service_token_invalid",
        "user_key_invalid",
        "application_key_invalid",
        "rejection_header_echo",
        "proxy_500_raw",
        "proxy_500_decoded",
        "malformed_cut",
        "malformed_number",
        "malformed_reason",
        "non_xml_4xx",
        "redirect",
    ];
    let mut failures = 0;
    for scenario in scenarios {
        for client in [&by_token, &by_key] {
            for credentials in [user(), app()] {
                let req = request(scenario, credentials);
                let a = record(scenario, client.authrep(&req).await);
                let b = record(scenario, client.oauth_authorize(&req).await);
                failures += usize::from(a.is_err()) + usize::from(b.is_err());
            }
        }
    }
    // The 409 with the echoed application key is an answer; its reason is masked.
    let denied = by_token
        .authrep(&request("application_key_invalid", app()))
        .await
        .unwrap();
    let reason = denied.authorization.unwrap().reason.unwrap();
    assert_eq!(reason, r#"application key "***" is invalid"#);
    let echoed = by_token
        .authrep(&request("rejection_header_echo", user()))
        .await
        .unwrap();
    assert_eq!(echoed.rejection_reason.as_deref(), Some("***"));

    // Timeout and refused connection.
    let timeout = record("slow", by_key.authorize(&request("slow", user())).await);
    assert!(matches!(timeout, Err(BackendError::Timeout(_))));
    let refused_err = record("refused", refused.authrep(&request("x", app())).await);
    assert!(matches!(refused_err, Err(BackendError::Transport(_))));

    // Reports: an error document echoing secrets, and a proxy echoing the body.
    let txs = |marker: &str| {
        vec![
            Transaction {
                credentials: AppCredentials::user_key(USER_KEY),
                usage: Usage::hits(),
                timestamp: None,
                log_code: None,
            },
            Transaction {
                credentials: AppCredentials::app_id_key(marker, APP_KEY),
                usage: Usage::hits(),
                timestamp: None,
                log_code: None,
            },
        ]
    };
    for client in [&by_token, &by_key, &refused] {
        for marker in ["fail403", "fail503"] {
            let result = client.report(None, &txs(marker)).await;
            assert!(result.is_err());
            outcomes.push(match result {
                Ok(r) => format!("{r:?}"),
                Err(e) => format!("report: {e} / {e:?}"),
            });
        }
    }

    assert!(failures >= scenarios.len() * 4, "{outcomes:#?}");
    for outcome in &outcomes {
        assert_clean("an outcome", outcome);
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{outcomes:#?}");
    }
    assert!(logs.contains("3scale backend call failed"), "{logs}");
    assert!(logs.contains("3scale backend answered"), "{logs}");
    assert_clean("the tracing output", &logs);
    // No request URL with its query string (the echoing proxy's excerpts are
    // there, masked).
    assert!(!logs.contains(".xml?"), "{logs}");
    for name in ["service_token=", "provider_key=", "user_key=", "app_key="] {
        for (i, _) in logs.match_indices(name) {
            let next = logs[i + name.len()..].chars().next();
            assert!(
                matches!(next, Some('*' | '&' | ' ' | '"')),
                "unmasked {name} in the logs: {}",
                &logs[i..(i + 60).min(logs.len())]
            );
        }
    }
}

#[test]
fn debug_and_display_never_show_secrets() {
    let auth = ProviderAuth::service_token(TOKEN, "svc-1");
    let key = ProviderAuth::provider_key(PROVIDER_KEY).with_service_id("svc-1");
    let mut request = AuthRequest::new(AppCredentials::app_id_key("app", APP_KEY));
    request.referrer = Some("ref".into());
    let user = AuthRequest::new(AppCredentials::user_key(USER_KEY));
    let tx = Transaction {
        credentials: AppCredentials::user_key(USER_KEY),
        usage: Usage::hits(),
        timestamp: None,
        log_code: Some(200),
    };
    let client = BackendClient::builder(auth.clone()).build().unwrap();
    let builder = BackendClient::builder(key.clone());
    let secret = Secret::new(TOKEN);
    let shown = format!(
        "{auth:?} {key:?} {request:?} {user:?} {tx:?} {client:?} {builder:?} {secret} {secret:?} {:#?} {:#?}",
        request.credentials, tx
    );
    assert_clean("Debug output", &shown);
    assert!(shown.contains("***"));
}
