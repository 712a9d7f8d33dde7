//! The core client against the emulator over 127.0.0.1 (or against apisonator,
//! the real backend, when `THREESCALE_APISONATOR_URL` is set): every call and
//! credential mode, the error codes, extensions, limits, `#N`, reports of 1,000
//! and 2,500 transactions, and concurrent authreps ending exactly at the limit.
//! Each side was written from the backend's documented behaviour; here they
//! must agree.

mod common;

use http::StatusCode;
use threescale::{
    AppCredentials, AuthRequest, BackendClient, BackendError, Extensions, Period, ProviderAuth,
    Redirect, Transaction, Usage,
};

const BACKEND: &str = r#"
services:
  - id: "501"
    backend_version: "1"
    service_token: "tok-501"
    provider_key: "pk-5"
    default: true
    metrics:
      - { name: hits }
      - { name: search, parent: hits }
      - { name: deep, parent: search }
    plans:
      - name: gold
        limits:
          - { metric: hits, period: day, value: 100 }
          - { metric: hits, period: minute, value: 3 }
          - { metric: search, period: month, value: 1000 }
          - { metric: deep, period: eternity, value: 20 }
      - name: roomy
        limits:
          - { metric: hits, period: eternity, value: 100000 }
    applications:
      - { plan: gold, user_key: "uk-gold" }
      - { plan: roomy, user_key: "uk-roomy" }
      - { plan: gold, user_key: "uk-off", state: suspended }
  - id: "502"
    backend_version: "2"
    service_token: "tok-502"
    provider_key: "pk-5"
    metrics:
      - { name: hits }
    plans:
      - name: pro
        limits:
          - { metric: hits, period: eternity, value: 20 }
    applications:
      - { plan: pro, app_id: "app-a", app_keys: ["ka1", "ka2"], state: active }
      - { plan: pro, app_id: "app-nokeys", state: active }
  - id: "503"
    backend_version: "oauth"
    service_token: "tok-503"
    provider_key: "pk-5"
    metrics:
      - { name: hits }
    plans:
      - name: pro
        limits:
          - { metric: hits, period: eternity, value: 20 }
    applications:
      - { plan: pro, app_id: "client-1", app_keys: ["secret-1"], redirect_url: "https://app.example.com/cb", state: active }
"#;

fn client(url: &str, auth: ProviderAuth) -> BackendClient {
    BackendClient::builder(auth).url(url).build().unwrap()
}

fn user_key(key: &str) -> AuthRequest {
    AuthRequest::new(AppCredentials::user_key(key))
}

#[tokio::test]
async fn authorize_and_authrep_with_every_provider_credential() {
    let backend = common::Backend::start(BACKEND).await;
    for auth in [
        ProviderAuth::service_token("tok-501", backend.sid("501")),
        ProviderAuth::provider_key(backend.pk("pk-5")).with_service_id(backend.sid("501")),
        ProviderAuth::provider_key(backend.pk("pk-5")), // the provider's default service
    ] {
        let c = client(&backend.url(), auth.clone());
        let answer = c.authorize(&user_key("uk-roomy")).await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{auth:?}");
        let status = answer.authorization.unwrap();
        assert!(status.authorized);
        assert_eq!(status.plan.as_deref(), Some("roomy"));
        assert_eq!(status.usage_reports.len(), 1);
        assert_eq!(status.usage_reports[0].period, Period::Eternity);
        let answer = c.authrep(&user_key("uk-roomy")).await.unwrap();
        assert!(answer.is_authorized());
    }
    // 3 authreps counted, each one hit.
    assert_eq!(
        backend.usage("501", ("user_key", "uk-roomy")).await["hits"],
        3
    );
    backend.shutdown().await;
}

#[tokio::test]
async fn usage_reports_hierarchy_and_current_values() {
    let backend = common::Backend::start(BACKEND).await;
    // A per-minute limit.
    backend.within_one_minute(10).await;
    let c = client(
        &backend.url(),
        ProviderAuth::service_token("tok-501", backend.sid("501")),
    );
    let request = user_key("uk-gold")
        .usage(Usage::new().with("deep", 2))
        .extensions(Extensions {
            hierarchy: true,
            limit_headers: true,
            ..Extensions::default()
        });
    let answer = c.authrep(&request).await.unwrap();
    let status = answer.authorization.clone().unwrap();
    assert!(status.authorized);
    let value = |metric: &str, period: Period| {
        status
            .usage_reports
            .iter()
            .find(|r| r.metric == metric && r.period == period)
            .map(|r| (r.current_value, r.max_value))
    };
    // deep rolls up into search and hits; authrep shows the values with this usage.
    assert_eq!(value("hits", Period::Minute), Some((2, 3)));
    assert_eq!(value("hits", Period::Day), Some((2, 100)));
    assert_eq!(value("search", Period::Month), Some((2, 1000)));
    assert_eq!(value("deep", Period::Eternity), Some((2, 20)));
    let minute = status
        .usage_reports
        .iter()
        .find(|r| r.period == Period::Minute)
        .unwrap();
    let (start, end) = (minute.period_start.unwrap(), minute.period_end.unwrap());
    assert_eq!((end - start).num_seconds(), 60);
    let hierarchy = status.hierarchy.unwrap();
    let children = |name: &str| {
        hierarchy
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.children.clone())
    };
    assert_eq!(children("hits"), Some(vec!["search".to_string()]));
    assert_eq!(children("search"), Some(vec!["deep".to_string()]));
    // Minute limit 3, 2 used, usage 2 → 0 calls of the same size left, in this minute.
    let limits = answer.limit_headers.unwrap();
    assert_eq!(limits.remaining, 0);
    assert_eq!(limits.max_value, Some(3));
    assert!(limits.reset > 0 && limits.reset <= 60);
    backend.shutdown().await;
}

#[tokio::test]
async fn limits_deny_with_409_and_the_rejection_reason() {
    let backend = common::Backend::start(BACKEND).await;
    // A per-minute limit.
    backend.within_one_minute(10).await;
    let c = client(
        &backend.url(),
        ProviderAuth::service_token("tok-501", backend.sid("501")),
    );
    let ext = Extensions {
        rejection_reason_header: true,
        limit_headers: true,
        ..Extensions::default()
    };
    for _ in 0..3 {
        assert!(
            c.authrep(&user_key("uk-gold").extensions(ext))
                .await
                .unwrap()
                .is_authorized()
        );
        // apisonator counts an authrep in its worker, a moment after answering.
        backend.settle().await;
    }
    let denied = c
        .authrep(&user_key("uk-gold").extensions(ext))
        .await
        .unwrap();
    assert_eq!(denied.status, StatusCode::CONFLICT);
    assert_eq!(denied.rejection_reason.as_deref(), Some("limits_exceeded"));
    let status = denied.authorization.unwrap();
    assert_eq!(status.reason.as_deref(), Some("usage limits are exceeded"));
    assert_eq!(denied.limit_headers.unwrap().max_value, Some(3));
    // authorize without usage: stored == max is still authorized.
    assert!(
        c.authorize(&user_key("uk-gold").without_usage())
            .await
            .unwrap()
            .is_authorized()
    );
    // Denied authreps counted nothing.
    assert_eq!(
        backend.usage("501", ("user_key", "uk-gold")).await["hits"],
        3
    );
    // A suspended application.
    let off = c
        .authrep(&user_key("uk-off").extensions(ext))
        .await
        .unwrap();
    assert_eq!(
        off.rejection_reason.as_deref(),
        Some("application_not_active")
    );
    backend.shutdown().await;
}

#[tokio::test]
async fn app_id_and_key_modes() {
    let backend = common::Backend::start(BACKEND).await;
    let c = client(
        &backend.url(),
        ProviderAuth::service_token("tok-502", backend.sid("502")),
    );
    let ok = c
        .authrep(&AuthRequest::new(AppCredentials::app_id_key(
            "app-a", "ka2",
        )))
        .await
        .unwrap();
    assert!(ok.is_authorized());
    let bad = c
        .authrep(&AuthRequest::new(AppCredentials::app_id_key(
            "app-a",
            "wrong-key-value",
        )))
        .await
        .unwrap();
    assert_eq!(bad.status, StatusCode::CONFLICT);
    let reason = bad.authorization.unwrap().reason.unwrap();
    assert!(reason.starts_with("application key"), "{reason}");
    assert!(
        !reason.contains("wrong-key-value"),
        "the key is redacted: {reason}"
    );
    let missing = c
        .authrep(&AuthRequest::new(AppCredentials::app_id("app-a")))
        .await
        .unwrap();
    assert_eq!(
        missing.authorization.unwrap().reason.as_deref(),
        Some("application key is missing")
    );
    // An application without keys accepts any key.
    let any = c
        .authrep(&AuthRequest::new(AppCredentials::app_id_key(
            "app-nokeys",
            "whatever",
        )))
        .await
        .unwrap();
    assert!(any.is_authorized());
    backend.shutdown().await;
}

#[tokio::test]
async fn oauth_calls_return_the_application() {
    let backend = common::Backend::start(BACKEND).await;
    let c = client(
        &backend.url(),
        ProviderAuth::service_token("tok-503", backend.sid("503")),
    );
    let mut request = AuthRequest::new(AppCredentials::app_id("client-1"));
    request.redirect = Some(Redirect::Url("https://app.example.com/cb".into()));
    let answer = c.oauth_authorize(&request).await.unwrap();
    assert!(answer.is_authorized());
    let app = answer.authorization.unwrap().application.unwrap();
    assert_eq!(
        (app.id.as_str(), app.key.as_str()),
        ("client-1", "secret-1")
    );
    assert_eq!(app.redirect_url, "https://app.example.com/cb");
    request.redirect = Some(Redirect::Uri("https://evil.example.com/".into()));
    let denied = c.oauth_authrep(&request).await.unwrap();
    assert_eq!(denied.status, StatusCode::CONFLICT);
    // oauth_* on a non-oauth service is a denial.
    let c = client(
        &backend.url(),
        ProviderAuth::service_token("tok-502", backend.sid("502")),
    );
    let answer = c
        .oauth_authorize(&AuthRequest::new(AppCredentials::app_id("app-a")))
        .await
        .unwrap();
    assert_eq!(
        answer.authorization.unwrap().reason.as_deref(),
        Some("oauth is not enabled")
    );
    backend.shutdown().await;
}

#[tokio::test]
async fn extensions_no_body_and_list_app_keys() {
    let backend = common::Backend::start(BACKEND).await;
    let c = client(
        &backend.url(),
        ProviderAuth::service_token("tok-502", backend.sid("502")),
    );
    let request = AuthRequest::new(AppCredentials::app_id_key("app-a", "ka1"));
    let quiet = c
        .authorize(&request.clone().extensions(Extensions {
            no_body: true,
            ..Extensions::default()
        }))
        .await
        .unwrap();
    assert!(quiet.is_authorized());
    assert!(quiet.authorization.is_none());
    let keys = c
        .authorize(&request.extensions(Extensions {
            list_app_keys: true,
            ..Extensions::default()
        }))
        .await
        .unwrap()
        .authorization
        .unwrap()
        .app_keys
        .unwrap();
    let mut ids = keys.keys.clone();
    ids.sort();
    assert_eq!(
        (keys.app.as_str(), keys.service.as_str(), ids),
        (
            "app-a",
            backend.sid("502").as_str(),
            vec!["ka1".to_string(), "ka2".to_string()]
        )
    );
    backend.shutdown().await;
}

#[tokio::test]
async fn error_documents_become_typed_errors() {
    let backend = common::Backend::start(BACKEND).await;
    let url = backend.url();
    let api = |e: BackendError| match e {
        BackendError::Api {
            status,
            code,
            message,
        } => (status.as_u16(), code, message),
        other => panic!("expected an API error, got {other:?}"),
    };
    let c = client(
        &url,
        ProviderAuth::service_token("tok-501", backend.sid("501")),
    );
    let (status, code, message) = api(c.authorize(&user_key("no-such-key-123")).await.unwrap_err());
    assert_eq!((status, code.as_str()), (403, "user_key_invalid"));
    assert!(!message.contains("no-such-key-123"), "{message}");
    let (status, code, _) = api(c
        .authorize(&user_key("uk-gold").usage(Usage::new().with("nope", 1)))
        .await
        .unwrap_err());
    assert_eq!((status, code.as_str()), (404, "metric_invalid"));
    let c = client(
        &url,
        ProviderAuth::service_token("tok-wrong", backend.sid("501")),
    );
    let (status, code, message) = api(c.authorize(&user_key("uk-gold")).await.unwrap_err());
    assert_eq!((status, code.as_str()), (403, "service_token_invalid"));
    assert!(!message.contains("tok-wrong"), "{message}");
    let c = client(&url, ProviderAuth::provider_key("pk-unknown"));
    let (_, code, _) = api(c.authorize(&user_key("uk-gold")).await.unwrap_err());
    assert_eq!(code, "provider_key_invalid_or_service_missing");
    let c = client(
        &url,
        ProviderAuth::service_token("tok-502", backend.sid("502")),
    );
    let (status, code, _) = api(c
        .authorize(&AuthRequest::new(AppCredentials::app_id_key("ghost", "k")))
        .await
        .unwrap_err());
    assert_eq!((status, code.as_str()), (404, "application_not_found"));
    backend.shutdown().await;
}

#[tokio::test]
async fn reports_of_1000_and_2500_transactions_are_counted_exactly() {
    let backend = common::Backend::start(BACKEND).await;
    let c = client(
        &backend.url(),
        ProviderAuth::service_token("tok-501", backend.sid("501")),
    );
    for (n, batches) in [(1000usize, 1usize), (2500, 3)] {
        let transactions: Vec<Transaction> = (0..n)
            .map(|i| Transaction {
                credentials: AppCredentials::user_key("uk-roomy"),
                usage: Usage::new().with("hits", 1 + (i % 2) as u64),
                timestamp: None,
                log_code: Some(200),
            })
            .collect();
        let accepted = c.report(None, &transactions).await.unwrap();
        assert_eq!((accepted.transactions, accepted.batches), (n, batches));
    }
    // 1000 → 1500 hits, 2500 → 3750 hits.
    assert_eq!(
        backend.usage("501", ("user_key", "uk-roomy")).await["hits"],
        5250
    );
    // `#N` sets the counter.
    let set = Transaction {
        credentials: AppCredentials::user_key("uk-roomy"),
        usage: {
            let mut u = Usage::new();
            u.set("hits", 7);
            u
        },
        timestamp: None,
        log_code: None,
    };
    c.report(None, &[set]).await.unwrap();
    assert_eq!(
        backend.usage("501", ("user_key", "uk-roomy")).await["hits"],
        7
    );
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_authreps_end_exactly_at_the_limit() {
    let backend = common::Backend::start(BACKEND).await;
    let c = client(
        &backend.url(),
        ProviderAuth::service_token("tok-502", backend.sid("502")),
    );
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.authrep(&AuthRequest::new(AppCredentials::app_id_key(
                    "app-a", "ka1",
                )))
                .await
                .unwrap()
                .is_authorized()
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    let counted = backend.usage("502", ("app_id", "app-a")).await["hits"];
    if backend.is_apisonator() {
        // apisonator checks an authrep against the counters its worker has
        // applied so far: concurrent authreps may pass the limit together. What
        // holds is that every admitted call is counted once, and that no call
        // is admitted once the limit is counted.
        assert!(allowed >= 20, "under-admission: {allowed}");
        assert_eq!(
            counted, allowed as u64,
            "every admitted authrep counted once"
        );
        println!("apisonator admitted {allowed} of 60 concurrent authreps at a limit of 20");
        let after = c
            .authrep(&AuthRequest::new(AppCredentials::app_id_key(
                "app-a", "ka1",
            )))
            .await
            .unwrap();
        assert_eq!(after.status, StatusCode::CONFLICT);
    } else {
        assert_eq!(allowed, 20, "no over- or under-admission");
        assert_eq!(counted, 20);
    }
    backend.shutdown().await;
}
