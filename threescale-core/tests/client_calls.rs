//! The client against a recording axum server on 127.0.0.1: every call, every
//! credential mode, parameters as the server receives them, extensions, report
//! batching.

#[path = "fixtures/support/recorder.rs"]
mod recorder;

use chrono::{TimeZone, Utc};
use http::StatusCode;
use recorder::{AUTHORIZED, DENIED, Recorded, Recorder, Reply};
use threescale_core::backend::{
    AppCredentials, AuthRequest, BackendClient, BackendError, Extensions, LimitHeaders,
    ProviderAuth, Redirect, Transaction,
};
use threescale_core::xml::Period;
use threescale_core::{Usage, UsageValue};

fn client(url: &str, auth: ProviderAuth) -> BackendClient {
    BackendClient::builder(auth).url(url).build().unwrap()
}

fn token() -> ProviderAuth {
    ProviderAuth::service_token("svc-token", "svc-1")
}

fn params(r: &Recorded) -> Vec<(&str, &str)> {
    r.params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn authorize_with_service_token_and_user_key() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    let c = client(&server.url, token());
    let answer = c
        .authorize(&AuthRequest::new(AppCredentials::user_key("uk-1")))
        .await
        .unwrap();

    let r = server.single();
    assert_eq!(r.method, http::Method::GET);
    assert_eq!(r.path, "/transactions/authorize.xml");
    assert_eq!(
        params(&r),
        [
            ("service_token", "svc-token"),
            ("service_id", "svc-1"),
            ("user_key", "uk-1"),
            ("usage[hits]", "1"),
        ]
    );
    assert_eq!(
        r.header("user-agent"),
        Some(concat!("threescale-rs/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(r.header("3scale-options"), None);

    assert!(answer.is_authorized());
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.limit_headers, None);
    assert_eq!(answer.rejection_reason, None);
    let auth = answer.authorization.unwrap();
    assert!(auth.authorized);
    assert_eq!(auth.plan.as_deref(), Some("Basic"));
    assert_eq!(auth.usage_reports.len(), 1);
    let report = &auth.usage_reports[0];
    assert_eq!(
        (report.metric.as_str(), report.period),
        ("hits", Period::Day)
    );
    assert_eq!((report.max_value, report.current_value), (100, 2));
    assert_eq!(
        report.period_start,
        Some(Utc.with_ymd_and_hms(2010, 5, 15, 0, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn every_call_hits_its_endpoint() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    let c = client(&server.url, token());
    let req = AuthRequest::new(AppCredentials::app_id("app"));
    c.authorize(&req).await.unwrap();
    c.authrep(&req).await.unwrap();
    c.oauth_authorize(&req).await.unwrap();
    c.oauth_authrep(&req).await.unwrap();
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/transactions/authorize.xml",
            "/transactions/authrep.xml",
            "/transactions/oauth_authorize.xml",
            "/transactions/oauth_authrep.xml",
        ]
    );
}

#[tokio::test]
async fn base_url_with_trailing_slash_and_path_prefix() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    for url in [
        format!("{}/", server.url),
        format!("{}/backend", server.url),
        format!("{}/backend/", server.url),
    ] {
        client(&url, token())
            .authrep(&AuthRequest::new(AppCredentials::app_id("a")))
            .await
            .unwrap();
    }
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/transactions/authrep.xml",
            "/backend/transactions/authrep.xml",
            "/backend/transactions/authrep.xml",
        ]
    );
}

#[tokio::test]
async fn provider_key_with_and_without_service_id_and_overrides() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    let req = AuthRequest::new(AppCredentials::app_id_key("app", "key")).without_usage();

    client(&server.url, ProviderAuth::provider_key("pk"))
        .authrep(&req)
        .await
        .unwrap();
    client(
        &server.url,
        ProviderAuth::provider_key("pk").with_service_id("s2"),
    )
    .authrep(&req)
    .await
    .unwrap();
    let mut overridden = req.clone();
    overridden.service_id = Some("s3".into());
    client(
        &server.url,
        ProviderAuth::provider_key("pk").with_service_id("s2"),
    )
    .authrep(&overridden)
    .await
    .unwrap();
    client(&server.url, ProviderAuth::provider_key("pk"))
        .authrep(&overridden)
        .await
        .unwrap();
    client(&server.url, token())
        .authrep(&overridden)
        .await
        .unwrap();

    let got: Vec<_> = server.requests().iter().map(|r| r.params.clone()).collect();
    let p = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        got,
        [
            p(&[
                ("provider_key", "pk"),
                ("app_id", "app"),
                ("app_key", "key")
            ]),
            p(&[
                ("provider_key", "pk"),
                ("service_id", "s2"),
                ("app_id", "app"),
                ("app_key", "key")
            ]),
            p(&[
                ("provider_key", "pk"),
                ("service_id", "s3"),
                ("app_id", "app"),
                ("app_key", "key")
            ]),
            p(&[
                ("provider_key", "pk"),
                ("service_id", "s3"),
                ("app_id", "app"),
                ("app_key", "key")
            ]),
            p(&[
                ("service_token", "svc-token"),
                ("service_id", "s3"),
                ("app_id", "app"),
                ("app_key", "key")
            ]),
        ]
    );
}

#[tokio::test]
async fn app_id_without_key_referrer_log_code_set_usage() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    let c = client(&server.url, token());
    let mut usage = Usage::new();
    usage.add("hits", 2).set("storage", 10).add("orders", 0);
    let mut req = AuthRequest::new(AppCredentials::app_id("app")).usage(usage);
    req.referrer = Some("*.example.org".into());
    req.log_code = Some(201);
    req.redirect = Some(Redirect::Url("https://ignored.example".into()));
    c.authrep(&req).await.unwrap();
    c.authorize(&req).await.unwrap();

    let requests = server.requests();
    assert_eq!(
        params(&requests[0]),
        [
            ("service_token", "svc-token"),
            ("service_id", "svc-1"),
            ("app_id", "app"),
            ("referrer", "*.example.org"),
            ("log[code]", "201"),
            ("usage[hits]", "2"),
            ("usage[storage]", "#10"),
            ("usage[orders]", "0"),
        ]
    );
    // `#` travels encoded: it would start a URL fragment otherwise.
    assert!(
        requests[0]
            .raw_query
            .as_deref()
            .unwrap()
            .contains("usage[storage]=%2310")
    );
    // authorize sends no log, and no redirect outside the OAuth calls.
    assert_eq!(requests[1].param("log[code]"), None);
    assert_eq!(requests[1].param("redirect_url"), None);
    assert_eq!(requests[1].param("usage[storage]"), Some("#10"));
}

#[tokio::test]
async fn no_usage_sends_no_usage_parameter() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    let c = client(&server.url, token());
    c.authorize(&AuthRequest::new(AppCredentials::user_key("k")).without_usage())
        .await
        .unwrap();
    c.authrep(&AuthRequest::new(AppCredentials::user_key("k")).usage(Usage::new()))
        .await
        .unwrap();
    for r in server.requests() {
        assert!(r.keys().iter().all(|k| !k.starts_with("usage")), "{r:?}");
    }
}

const OAUTH_URL: &str = r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><application><id>app</id><key>k1</key><redirect_url>https://example.com/cb</redirect_url></application><plan>Basic</plan></status>"#;
const OAUTH_URI: &str = r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><application><id>app</id><key></key><redirect_uri>https://example.com/cb?a=1&amp;b=2</redirect_uri></application><plan>Basic</plan></status>"#;

#[tokio::test]
async fn oauth_with_redirect_url_and_redirect_uri() {
    let server = Recorder::start(|r| {
        if r.param("redirect_uri").is_some() {
            Reply::new(200, OAUTH_URI)
        } else {
            Reply::new(200, OAUTH_URL)
        }
    })
    .await;
    let c = client(&server.url, token());
    let mut req = AuthRequest::new(AppCredentials::app_id_key("app", "k1"));
    req.redirect = Some(Redirect::Url("https://example.com/cb".into()));
    req.log_code = Some(200);
    let a = c.oauth_authorize(&req).await.unwrap();
    let app = a.authorization.unwrap().application.unwrap();
    assert_eq!(
        (app.id.as_str(), app.key.as_str(), app.redirect_url.as_str()),
        ("app", "k1", "https://example.com/cb")
    );

    let mut req = AuthRequest::new(AppCredentials::app_id("app"));
    req.redirect = Some(Redirect::Uri("https://example.com/cb?a=1&b=2".into()));
    req.log_code = Some(200);
    let a = c.oauth_authrep(&req).await.unwrap();
    let app = a.authorization.unwrap().application.unwrap();
    assert_eq!(
        (app.id.as_str(), app.key.as_str(), app.redirect_url.as_str()),
        ("app", "", "https://example.com/cb?a=1&b=2")
    );

    let requests = server.requests();
    assert_eq!(
        params(&requests[0]),
        [
            ("service_token", "svc-token"),
            ("service_id", "svc-1"),
            ("app_id", "app"),
            ("app_key", "k1"),
            ("redirect_url", "https://example.com/cb"),
            ("usage[hits]", "1"),
        ]
    );
    assert_eq!(
        params(&requests[1]),
        [
            ("service_token", "svc-token"),
            ("service_id", "svc-1"),
            ("app_id", "app"),
            ("redirect_uri", "https://example.com/cb?a=1&b=2"),
            ("log[code]", "200"),
            ("usage[hits]", "1"),
        ]
    );
}

#[tokio::test]
async fn extensions_header_for_each_option() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    let c = client(&server.url, token());
    let cases: [(Extensions, &str); 7] = [
        (
            Extensions {
                hierarchy: true,
                ..Default::default()
            },
            "hierarchy=1",
        ),
        (
            Extensions {
                limit_headers: true,
                ..Default::default()
            },
            "limit_headers=1",
        ),
        (
            Extensions {
                rejection_reason_header: true,
                ..Default::default()
            },
            "rejection_reason_header=1",
        ),
        (
            Extensions {
                no_body: true,
                ..Default::default()
            },
            "no_body=1",
        ),
        (
            Extensions {
                flat_usage: true,
                ..Default::default()
            },
            "flat_usage=1",
        ),
        (
            Extensions {
                list_app_keys: true,
                ..Default::default()
            },
            "list_app_keys=1",
        ),
        (
            Extensions {
                hierarchy: true,
                limit_headers: true,
                rejection_reason_header: true,
                no_body: true,
                flat_usage: true,
                list_app_keys: true,
            },
            "hierarchy=1&limit_headers=1&rejection_reason_header=1&no_body=1&flat_usage=1&list_app_keys=1",
        ),
    ];
    for (ext, _) in &cases {
        c.authrep(&AuthRequest::new(AppCredentials::user_key("k")).extensions(*ext))
            .await
            .unwrap();
    }
    c.authrep(&AuthRequest::new(AppCredentials::user_key("k")))
        .await
        .unwrap();
    let requests = server.requests();
    for (i, (ext, header)) in cases.iter().enumerate() {
        assert_eq!(ext.header_value().as_deref(), Some(*header));
        assert_eq!(requests[i].header("3scale-options"), Some(*header));
        // Extensions never travel as query parameters.
        assert!(requests[i].keys().iter().all(|k| !k.contains("no_body")));
    }
    assert_eq!(requests[cases.len()].header("3scale-options"), None);
}

#[tokio::test]
async fn limit_and_rejection_headers_are_parsed() {
    let server = Recorder::start(|r| match r.param("user_key") {
        Some("limited") => Reply::new(200, AUTHORIZED)
            .header("3scale-limit-remaining", "9")
            .header("3scale-limit-reset", "3600")
            .header("3scale-limit-max-value", "10"),
        Some("unconstrained") => Reply::new(200, AUTHORIZED)
            .header("3scale-limit-remaining", "-1")
            .header("3scale-limit-reset", "-1"),
        _ => Reply::new(409, DENIED)
            .header("3scale-rejection-reason", "limits_exceeded")
            .header("3scale-limit-remaining", "0")
            .header("3scale-limit-reset", "1")
            .header("3scale-limit-max-value", "4"),
    })
    .await;
    let c = client(&server.url, token());
    let ext = Extensions {
        limit_headers: true,
        rejection_reason_header: true,
        ..Default::default()
    };
    let limited = c
        .authrep(&AuthRequest::new(AppCredentials::user_key("limited")).extensions(ext))
        .await
        .unwrap();
    assert_eq!(
        limited.limit_headers,
        Some(LimitHeaders {
            remaining: 9,
            reset: 3600,
            max_value: Some(10)
        })
    );
    let free = c
        .authrep(&AuthRequest::new(AppCredentials::user_key("unconstrained")).extensions(ext))
        .await
        .unwrap();
    assert_eq!(
        free.limit_headers,
        Some(LimitHeaders {
            remaining: -1,
            reset: -1,
            max_value: None
        })
    );
    let denied = c
        .authrep(&AuthRequest::new(AppCredentials::user_key("over")).extensions(ext))
        .await
        .unwrap();
    assert!(!denied.is_authorized());
    assert_eq!(denied.status, StatusCode::CONFLICT);
    assert_eq!(denied.rejection_reason.as_deref(), Some("limits_exceeded"));
    assert_eq!(
        denied.limit_headers,
        Some(LimitHeaders {
            remaining: 0,
            reset: 1,
            max_value: Some(4)
        })
    );
    let auth = denied.authorization.unwrap();
    assert!(!auth.authorized);
    assert_eq!(auth.reason.as_deref(), Some("usage limits are exceeded"));
    assert!(auth.usage_reports[0].exceeded);
}

#[tokio::test]
async fn no_body_answers_without_authorization() {
    let server = Recorder::start(|r| match r.param("user_key") {
        Some("ok") => Reply::new(200, ""),
        _ => Reply::new(409, "").header("3scale-rejection-reason", "application_not_active"),
    })
    .await;
    let c = client(&server.url, token());
    let ext = Extensions {
        no_body: true,
        rejection_reason_header: true,
        ..Default::default()
    };
    let ok = c
        .authrep(&AuthRequest::new(AppCredentials::user_key("ok")).extensions(ext))
        .await
        .unwrap();
    assert!(ok.is_authorized());
    assert_eq!(ok.authorization, None);
    let denied = c
        .authorize(&AuthRequest::new(AppCredentials::user_key("no")).extensions(ext))
        .await
        .unwrap();
    assert!(!denied.is_authorized());
    assert_eq!(denied.authorization, None);
    assert_eq!(
        denied.rejection_reason.as_deref(),
        Some("application_not_active")
    );
}

#[tokio::test]
async fn hierarchy_and_app_keys_sections() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><plan>Basic</plan><app_keys app="app" svc="svc-1"><key id="k1"/><key id="k2"/></app_keys><hierarchy><metric name="hits" children="search orders"/><metric name="search" children=""/></hierarchy></status>"#;
    let server = Recorder::fixed(Reply::new(200, body)).await;
    let ext = Extensions {
        hierarchy: true,
        list_app_keys: true,
        ..Default::default()
    };
    let a = client(&server.url, token())
        .authorize(&AuthRequest::new(AppCredentials::app_id("app")).extensions(ext))
        .await
        .unwrap()
        .authorization
        .unwrap();
    let keys = a.app_keys.unwrap();
    assert_eq!((keys.app.as_str(), keys.service.as_str()), ("app", "svc-1"));
    assert_eq!(keys.keys, ["k1", "k2"]);
    let h = a.hierarchy.unwrap();
    assert_eq!(h[0].children, ["search", "orders"]);
    assert!(h[1].children.is_empty());
}

/// Every character that could end, add or change a parameter.
const HOSTILE: &str = "a&b=c#d%e+f g[h]i\nj\r?/;,:@$!'\"()*ü😀\u{0}z";

#[tokio::test]
async fn hostile_values_arrive_intact_and_add_no_parameter() {
    let server = Recorder::fixed(Reply::new(200, AUTHORIZED)).await;
    let c = client(
        &server.url,
        ProviderAuth::service_token(format!("tok{HOSTILE}"), format!("sid{HOSTILE}")),
    );
    let metric1 = format!("m{HOSTILE}");
    let metric2 = "x]&usage[hits]=999&evil=1".to_string();
    let metric3 = "[]".to_string();
    let mut usage = Usage::new();
    usage
        .add(metric1.as_str(), 3)
        .set(metric2.as_str(), 4)
        .add(metric3.as_str(), 5);
    let mut req = AuthRequest::new(AppCredentials::app_id_key(
        format!("id{HOSTILE}"),
        format!("key{HOSTILE}"),
    ))
    .usage(usage);
    req.referrer = Some(format!("ref{HOSTILE}"));
    req.redirect = Some(Redirect::Url(format!("https://x/{HOSTILE}")));
    req.log_code = Some(200);
    c.oauth_authrep(&req).await.unwrap();
    c.authrep(&AuthRequest::new(AppCredentials::user_key(format!(
        "uk{HOSTILE}"
    ))))
    .await
    .unwrap();

    let requests = server.requests();
    let usage_key = |m: &str| format!("usage[{m}]");
    let expected: Vec<(String, String)> = vec![
        ("service_token".into(), format!("tok{HOSTILE}")),
        ("service_id".into(), format!("sid{HOSTILE}")),
        ("app_id".into(), format!("id{HOSTILE}")),
        ("app_key".into(), format!("key{HOSTILE}")),
        ("referrer".into(), format!("ref{HOSTILE}")),
        ("redirect_url".into(), format!("https://x/{HOSTILE}")),
        ("log[code]".into(), "200".into()),
        (usage_key(&metric1), "3".into()),
        (usage_key(&metric2), "#4".into()),
        (usage_key(&metric3), "5".into()),
    ];
    assert_eq!(requests[0].params, expected);
    // The raw query has exactly one `&` per separator and no raw `#`, space or newline.
    let raw = requests[0].raw_query.as_deref().unwrap();
    assert_eq!(raw.matches('&').count(), expected.len() - 1);
    assert!(!raw.contains(['#', ' ', '\n', '+']), "{raw}");

    assert_eq!(
        requests[1].params,
        vec![
            ("service_token".to_string(), format!("tok{HOSTILE}")),
            ("service_id".to_string(), format!("sid{HOSTILE}")),
            ("user_key".to_string(), format!("uk{HOSTILE}")),
            ("usage[hits]".to_string(), "1".to_string()),
        ]
    );
}

fn tx(i: usize) -> Transaction {
    Transaction {
        credentials: AppCredentials::app_id(format!("app-{i}")),
        usage: Usage::hits(),
        timestamp: None,
        log_code: None,
    }
}

#[tokio::test]
async fn report_splits_2500_transactions_into_1000_1000_500() {
    let server = Recorder::fixed(Reply::new(202, "")).await;
    let c = client(&server.url, token());
    let transactions: Vec<_> = (0..2500).map(tx).collect();
    let accepted = c.report(None, &transactions).await.unwrap();
    assert_eq!(accepted.batches, 3);
    assert_eq!(accepted.transactions, 2500);

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let mut seen = Vec::new();
    for (r, size) in requests.iter().zip([1000, 1000, 500]) {
        assert_eq!(r.method, http::Method::POST);
        assert_eq!(r.path, "/transactions.xml");
        assert_eq!(r.raw_query, None);
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(r.param("service_token"), Some("svc-token"));
        assert_eq!(r.param("service_id"), Some("svc-1"));
        for i in 0..size {
            let app = r
                .param(&format!("transactions[{i}][app_id]"))
                .unwrap_or_else(|| panic!("transaction {i} missing"));
            assert_eq!(
                r.param(&format!("transactions[{i}][usage][hits]")),
                Some("1")
            );
            seen.push(app.to_string());
        }
        assert_eq!(r.param(&format!("transactions[{size}][app_id]")), None);
        assert_eq!(r.params.len(), 2 + 2 * size);
    }
    let expected: Vec<_> = (0..2500).map(|i| format!("app-{i}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn report_transaction_fields_and_timestamp_format() {
    let server = Recorder::fixed(Reply::new(202, "")).await;
    let c = client(&server.url, ProviderAuth::provider_key("pk"));
    let mut usage = Usage::new();
    usage.add("hits", 1).set("storage", 7);
    let when = chrono::DateTime::parse_from_rfc3339("2024-03-05T09:08:09+02:00")
        .unwrap()
        .with_timezone(&Utc);
    let transactions = [
        Transaction {
            credentials: AppCredentials::app_id_key("app", "never-sent"),
            usage,
            timestamp: Some(when),
            log_code: Some(404),
        },
        Transaction {
            credentials: AppCredentials::user_key("uk"),
            usage: Usage::hits(),
            timestamp: None,
            log_code: None,
        },
    ];
    let accepted = c.report(Some("s9"), &transactions).await.unwrap();
    assert_eq!((accepted.batches, accepted.transactions), (1, 2));
    let r = server.single();
    assert_eq!(
        params(&r),
        [
            ("provider_key", "pk"),
            ("service_id", "s9"),
            ("transactions[0][app_id]", "app"),
            ("transactions[0][usage][hits]", "1"),
            ("transactions[0][usage][storage]", "#7"),
            ("transactions[0][timestamp]", "2024-03-05 07:08:09 +0000"),
            ("transactions[0][log][code]", "404"),
            ("transactions[1][user_key]", "uk"),
            ("transactions[1][usage][hits]", "1"),
        ]
    );
    let body = String::from_utf8(r.body).unwrap();
    assert!(!body.contains("never-sent"));
    assert!(body.contains("transactions[0][timestamp]=2024-03-05%2007%3A08%3A09%20%2B0000"));
}

#[tokio::test]
async fn report_keeps_each_post_under_the_parameter_limit() {
    let server = Recorder::fixed(Reply::new(202, "")).await;
    let c = client(&server.url, token());
    let transactions: Vec<_> = (0..1000)
        .map(|i| {
            let usage: Usage = (0..7).map(|m| (format!("metric{m}"), 1)).collect();
            Transaction { usage, ..tx(i) }
        })
        .collect();
    let accepted = c.report(None, &transactions).await.unwrap();
    let requests = server.requests();
    assert_eq!(accepted.batches, requests.len());
    assert!(requests.len() >= 2);
    let mut total = 0;
    for r in &requests {
        assert!(r.params.len() <= 4096, "{} params", r.params.len());
        total += r.keys().iter().filter(|k| k.ends_with("[app_id]")).count();
    }
    assert_eq!(total, 1000);
    assert_eq!(accepted.transactions, 1000);
}

#[tokio::test]
async fn report_stops_at_the_first_failing_post() {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let server = Recorder::start(move |_| {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            Reply::new(503, "unavailable")
        } else {
            Reply::new(202, "")
        }
    })
    .await;
    let c = client(&server.url, token());
    let transactions: Vec<_> = (0..3000).map(tx).collect();
    let err = c.report(None, &transactions).await.unwrap_err();
    assert!(
        matches!(err, BackendError::Server { status, .. } if status == StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn empty_report_sends_nothing() {
    let server = Recorder::fixed(Reply::new(202, "")).await;
    let accepted = client(&server.url, token())
        .report(None, &[])
        .await
        .unwrap();
    assert_eq!((accepted.batches, accepted.transactions), (0, 0));
    assert!(server.requests().is_empty());
}

#[test]
fn builder_rejects_bad_urls() {
    for url in [
        "not a url",
        "ftp://example.com",
        "http://example.com/?a=1",
        "http://example.com/#x",
        "http://user:pass@example.com",
        "mailto:ops@example.com",
    ] {
        let err = BackendClient::builder(token())
            .url(url)
            .build()
            .unwrap_err();
        assert!(matches!(err, BackendError::Config(_)), "{url}: {err:?}");
        assert!(!err.is_unavailable());
        assert!(!err.to_string().contains("pass"), "{err}");
    }
    let c = BackendClient::builder(token()).build().unwrap();
    assert!(format!("{c:?}").contains("https://su1.3scale.net"));
    assert!(!format!("{c:?}").contains("svc-token"));
}

#[test]
fn usage_values_render_as_the_backend_expects() {
    assert_eq!(UsageValue::Set(3).to_string(), "#3");
}
