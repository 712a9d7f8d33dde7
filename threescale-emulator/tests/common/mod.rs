//! Shared fixtures for the integration tests: a multi-service config, a pinned clock
//! and small HTTP helpers (real HTTP over 127.0.0.1).
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use threescale_emulator::{
    ApplicationConfig, EmulatedService, Emulator, EmulatorConfig, EmulatorHandle, LimitPeriod,
    PlanConfig,
};

pub const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
pub const XML_CT: &str = "application/vnd.3scale-v2.0+xml";

/// 2010-05-15 12:00:00 UTC, a Saturday.
pub fn pinned() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2010, 5, 15, 12, 0, 0).unwrap()
}

/// Services:
/// - 1001 (v2, pk1, tok1, default of pk1): hits > search > deep, other; plans Basic, Free.
/// - 1002 (v1, pk1, tok2): hits; plan Legacy (hits 3/minute); user key uk1.
/// - 2001 (oauth, pk2, tok3): hits; plan OAuth; apps oapp (key, redirect url), onokeys.
/// - 3001 (v2, pk3): referrer filters required; app refapp with filters.
/// - 4001 (v2, pk4): suspended service.
/// - 5001 (v2, pk5, not default): pk5 has no default service.
pub fn fixture() -> EmulatorConfig {
    EmulatorConfig::builder()
        .service(
            EmulatedService::new("1001")
                .backend_version("2")
                .provider_key("pk1")
                .service_token("tok1")
                .metric("hits")
                .child_metric("search", "hits")
                .child_metric("deep", "search")
                .metric("other")
                .plan(
                    PlanConfig::new("Basic")
                        .limit("hits", LimitPeriod::Day, 100)
                        .limit("hits", LimitPeriod::Month, 10000)
                        .limit("search", LimitPeriod::Day, 50)
                        .limit("deep", LimitPeriod::Day, 20)
                        .limit("other", LimitPeriod::Eternity, 0),
                )
                .plan(PlanConfig::new("Free"))
                .application(
                    ApplicationConfig::with_app_id("Basic", "app1")
                        .app_key("key1")
                        .app_key("key2"),
                )
                .application(ApplicationConfig::with_app_id("Basic", "nokeys"))
                .application(
                    ApplicationConfig::with_app_id("Basic", "suspended").state("suspended"),
                )
                .application(ApplicationConfig::with_app_id("Free", "free").app_key("fk")),
        )
        .service(
            EmulatedService::new("1002")
                .backend_version("1")
                .provider_key("pk1")
                .service_token("tok2")
                .metric("hits")
                .plan(PlanConfig::new("Legacy").limit("hits", LimitPeriod::Minute, 3))
                .application(ApplicationConfig::with_user_key("Legacy", "uk1").id("legacy-app")),
        )
        .service(
            EmulatedService::new("2001")
                .backend_version("oauth")
                .provider_key("pk2")
                .service_token("tok3")
                .metric("hits")
                .plan(PlanConfig::new("OAuth").limit("hits", LimitPeriod::Day, 10))
                .application(
                    ApplicationConfig::with_app_id("OAuth", "oapp")
                        .app_key("osecret")
                        .redirect_url("http://3scale.net/cb?a=1&b=2"),
                )
                .application(ApplicationConfig::with_app_id("OAuth", "onokeys")),
        )
        .service(
            EmulatedService::new("3001")
                .provider_key("pk3")
                .referrer_filters_required(true)
                .metric("hits")
                .plan(PlanConfig::new("P"))
                .application(
                    ApplicationConfig::with_app_id("P", "refapp")
                        .referrer_filter("*.example.org")
                        .referrer_filter("example.com"),
                )
                .application(ApplicationConfig::with_app_id("P", "nofilters")),
        )
        .service(
            EmulatedService::new("4001")
                .provider_key("pk4")
                .state("suspended")
                .metric("hits")
                .plan(PlanConfig::new("P"))
                .application(ApplicationConfig::with_app_id("P", "a4")),
        )
        .service(
            EmulatedService::new("5001")
                .provider_key("pk5")
                .default_service(false)
                .metric("hits")
                .plan(PlanConfig::new("P"))
                .application(ApplicationConfig::with_app_id("P", "a5")),
        )
        .build()
        .expect("fixture config is valid")
}

/// Starts the fixture with the clock pinned at [`pinned`].
pub async fn start() -> EmulatorHandle {
    start_with(fixture()).await
}

pub async fn start_with(config: EmulatorConfig) -> EmulatorHandle {
    let h = Emulator::start(config).await.expect("emulator starts");
    h.set_time(pinned());
    h
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.expect("body");
    Resp {
        status,
        headers,
        body,
    }
}

/// GET `path_and_query` (already encoded) on the emulator.
pub async fn get(h: &EmulatorHandle, path_and_query: &str) -> Resp {
    into_resp(
        client()
            .get(format!("{}{}", h.url(), path_and_query))
            .send()
            .await
            .expect("request"),
    )
    .await
}

/// GET with a `3scale-options` header.
pub async fn get_ext(h: &EmulatorHandle, path_and_query: &str, options: &str) -> Resp {
    into_resp(
        client()
            .get(format!("{}{}", h.url(), path_and_query))
            .header("3scale-options", options)
            .send()
            .await
            .expect("request"),
    )
    .await
}

pub async fn request(h: &EmulatorHandle, method: reqwest::Method, path: &str) -> Resp {
    into_resp(
        client()
            .request(method, format!("{}{}", h.url(), path))
            .send()
            .await
            .expect("request"),
    )
    .await
}

/// POST a form body to `path`, with the given content type (None: no header).
pub async fn post(h: &EmulatorHandle, path: &str, body: &str, content_type: Option<&str>) -> Resp {
    let mut req = client()
        .post(format!("{}{}", h.url(), path))
        .body(body.to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    into_resp(req.send().await.expect("request")).await
}

pub async fn report(h: &EmulatorHandle, body: &str) -> Resp {
    post(
        h,
        "/transactions.xml",
        body,
        Some("application/x-www-form-urlencoded"),
    )
    .await
}

pub fn error_doc(code: &str, message: &str) -> String {
    format!("{DECL}<error code=\"{code}\">{message}</error>")
}

/// Start and end of the periods containing [`pinned`].
fn bounds(period: &str) -> Option<(&'static str, &'static str)> {
    Some(match period {
        "minute" => ("2010-05-15 12:00:00 +0000", "2010-05-15 12:01:00 +0000"),
        "hour" => ("2010-05-15 12:00:00 +0000", "2010-05-15 13:00:00 +0000"),
        "day" => ("2010-05-15 00:00:00 +0000", "2010-05-16 00:00:00 +0000"),
        "week" => ("2010-05-10 00:00:00 +0000", "2010-05-17 00:00:00 +0000"),
        "month" => ("2010-05-01 00:00:00 +0000", "2010-06-01 00:00:00 +0000"),
        "year" => ("2010-01-01 00:00:00 +0000", "2011-01-01 00:00:00 +0000"),
        _ => return None,
    })
}

/// One `<usage_report>` at the pinned time.
pub fn ur(metric: &str, period: &str, max: i64, current: i64, exceeded: bool) -> String {
    let mut s = format!("<usage_report metric=\"{metric}\" period=\"{period}\"");
    s.push_str(if exceeded { " exceeded=\"true\">" } else { ">" });
    if let Some((start, end)) = bounds(period) {
        s.push_str(&format!(
            "<period_start>{start}</period_start><period_end>{end}</period_end>"
        ));
    }
    s.push_str(&format!(
        "<max_value>{max}</max_value><current_value>{current}</current_value></usage_report>"
    ));
    s
}

/// A status document: `reason` None means authorized.
pub fn status_doc(reason: Option<&str>, plan: &str, reports: &[String]) -> String {
    status_doc_with(reason, "", plan, reports, "")
}

pub fn status_doc_with(
    reason: Option<&str>,
    application: &str,
    plan: &str,
    reports: &[String],
    tail: &str,
) -> String {
    let auth = match reason {
        None => "<authorized>true</authorized>".to_string(),
        Some(r) => format!("<authorized>false</authorized><reason>{r}</reason>"),
    };
    let reports = if reports.is_empty() {
        String::new()
    } else {
        format!("<usage_reports>{}</usage_reports>", reports.concat())
    };
    format!("{DECL}<status>{auth}{application}<plan>{plan}</plan>{reports}{tail}</status>")
}

/// The Basic plan's reports for app1 with the given stored/current values:
/// hits month, hits day, search day, deep day, other eternity.
pub fn basic_reports(hits: i64, search: i64, deep: i64, other: i64) -> Vec<String> {
    vec![
        ur("hits", "month", 10000, hits, hits > 10000),
        ur("hits", "day", 100, hits, hits > 100),
        ur("search", "day", 50, search, search > 50),
        ur("deep", "day", 20, deep, deep > 20),
        ur("other", "eternity", 0, other, other > 0),
    ]
}

/// Asserts the listener's success headers.
pub fn assert_listener_headers(r: &Resp) {
    assert_eq!(r.header("content-type"), Some(XML_CT), "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("ETag, Link, 3scale-rejection-reason")
    );
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'self'")
    );
}

/// Asserts the exception catcher's headers (no CSP).
pub fn assert_error_headers(r: &Resp) {
    assert_eq!(r.header("content-type"), Some(XML_CT), "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("ETag, Link, 3scale-rejection-reason")
    );
    assert_eq!(r.header("content-security-policy"), None);
}

/// Asserts an error answer: status, headers and exact body.
pub fn assert_error(r: &Resp, status: u16, code: &str, message: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_error_headers(r);
    assert_eq!(r.body, error_doc(code, message));
}
