//! Conformance: status documents, limits, hierarchy, `#N` sets and extensions.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use threescale_emulator::{
    AppRef, ApplicationConfig, EmulatedService, EmulatorConfig, LimitPeriod, PlanConfig,
};

const APP1: &str = "provider_key=pk1&app_id=app1&app_key=key1";

fn authorize(extra: &str) -> String {
    format!("/transactions/authorize.xml?{APP1}{extra}")
}

fn authrep(extra: &str) -> String {
    format!("/transactions/authrep.xml?{APP1}{extra}")
}

fn day(h: &threescale_emulator::EmulatorHandle, metric: &str) -> i64 {
    h.usage("1001", AppRef::app_id("app1")).unwrap().usage[metric].day
}

#[tokio::test]
async fn authorize_document_is_byte_exact() {
    let h = start().await;
    let r = get(&h, &authorize("")).await;
    assert_eq!(r.status, 200);
    assert_listener_headers(&r);
    assert_eq!(
        r.body,
        status_doc(None, "Basic", &basic_reports(0, 0, 0, 0))
    );
    assert_eq!(
        r.body,
        format!(
            "{DECL}<status><authorized>true</authorized><plan>Basic</plan><usage_reports><usage_report metric=\"hits\" period=\"month\"><period_start>2010-05-01 00:00:00 +0000</period_start><period_end>2010-06-01 00:00:00 +0000</period_end><max_value>10000</max_value><current_value>0</current_value></usage_report><usage_report metric=\"hits\" period=\"day\"><period_start>2010-05-15 00:00:00 +0000</period_start><period_end>2010-05-16 00:00:00 +0000</period_end><max_value>100</max_value><current_value>0</current_value></usage_report><usage_report metric=\"search\" period=\"day\"><period_start>2010-05-15 00:00:00 +0000</period_start><period_end>2010-05-16 00:00:00 +0000</period_end><max_value>50</max_value><current_value>0</current_value></usage_report><usage_report metric=\"deep\" period=\"day\"><period_start>2010-05-15 00:00:00 +0000</period_start><period_end>2010-05-16 00:00:00 +0000</period_end><max_value>20</max_value><current_value>0</current_value></usage_report><usage_report metric=\"other\" period=\"eternity\"><max_value>0</max_value><current_value>0</current_value></usage_report></usage_reports></status>"
        )
    );
    // a plan without limits has no usage_reports
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=free&app_key=fk",
    )
    .await;
    assert_eq!(r.body, status_doc(None, "Free", &[]));
    // backend_version 1
    let r = get(
        &h,
        "/transactions/authorize.xml?service_token=tok2&service_id=1002&user_key=uk1",
    )
    .await;
    assert_eq!(
        r.body,
        status_doc(None, "Legacy", &[ur("hits", "minute", 3, 0, false)])
    );
}

#[tokio::test]
async fn authrep_reports_and_shows_its_usage() {
    let h = start().await;
    let r = get(&h, &authrep("&usage[hits]=1&usage[search]=1")).await;
    assert_eq!(r.status, 200);
    // hits shows its own 1 plus the child's 1; search its own 1
    assert_eq!(
        r.body,
        status_doc(None, "Basic", &basic_reports(2, 1, 0, 0))
    );
    assert_eq!(day(&h, "hits"), 2);
    assert_eq!(day(&h, "search"), 1);
    // authorize shows the stored values and stores nothing
    let r = get(&h, &authorize("&usage[hits]=5")).await;
    assert_eq!(
        r.body,
        status_doc(None, "Basic", &basic_reports(2, 1, 0, 0))
    );
    assert_eq!(day(&h, "hits"), 2);
}

#[tokio::test]
async fn three_level_hierarchy_rolls_up() {
    let h = start().await;
    let r = get(&h, &authrep("&usage[deep]=3")).await;
    assert_eq!(
        r.body,
        status_doc(None, "Basic", &basic_reports(3, 3, 3, 0))
    );
    let u = h.usage("1001", AppRef::app_id("app1")).unwrap();
    assert_eq!(
        (
            u.usage["hits"].month,
            u.usage["search"].day,
            u.usage["deep"].eternity
        ),
        (3, 3, 3)
    );
    // reporting to the grandchild counts against the grandparent's limits
    let r = get(&h, &authorize("&usage[deep]=98")).await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn flat_usage_does_not_roll_up() {
    let h = start().await;
    let r = get_ext(&h, &authrep("&usage[deep]=3"), "flat_usage=1").await;
    // current_value still adds descendants
    assert_eq!(
        r.body,
        status_doc(None, "Basic", &basic_reports(3, 3, 3, 0))
    );
    assert_eq!(
        (day(&h, "hits"), day(&h, "search"), day(&h, "deep")),
        (0, 0, 3)
    );
    // and the limit check only sees what was sent
    let r = get_ext(&h, &authorize("&usage[deep]=17"), "flat_usage=1").await;
    assert_eq!(r.status, 200);
    let r = get_ext(&h, &authorize("&usage[deep]=18"), "flat_usage=1").await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn limits_are_inclusive_and_denied_authreps_count_nothing() {
    let h = start().await;
    let r = get(&h, &authrep("&usage[deep]=20")).await;
    assert_eq!(r.status, 200);
    let r = get(&h, &authrep("&usage[deep]=1")).await;
    assert_eq!(r.status, 409);
    assert_listener_headers(&r);
    // stored values, no exceeded attribute (stored == max is not exceeded)
    assert_eq!(
        r.body,
        status_doc(
            Some("usage limits are exceeded"),
            "Basic",
            &basic_reports(20, 20, 20, 0)
        )
    );
    assert_eq!(day(&h, "deep"), 20);
    // stored == max without usage is still authorized
    assert_eq!(get(&h, &authorize("")).await.status, 200);
    // usage 0 on a metric at its limit passes (20 + 0 <= 20)
    assert_eq!(get(&h, &authorize("&usage[deep]=0")).await.status, 200);
}

#[tokio::test]
async fn exceeded_attribute_and_denial_without_usage() {
    let h = start().await;
    // reports do not check limits
    let r = report(
        &h,
        "provider_key=pk1&transactions[0][app_id]=app1&transactions[0][usage][deep]=25",
    )
    .await;
    assert_eq!(r.status, 202);
    let r = get(&h, &authorize("")).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body,
        status_doc(
            Some("usage limits are exceeded"),
            "Basic",
            &[
                ur("hits", "month", 10000, 25, false),
                ur("hits", "day", 100, 25, false),
                ur("search", "day", 50, 25, false),
                ur("deep", "day", 20, 25, true),
                ur("other", "eternity", 0, 0, false),
            ]
        )
    );
    // usage 0 of a metric already over its limit is denied (25 + 0 > 20)
    assert_eq!(get(&h, &authorize("&usage[deep]=0")).await.status, 409);
}

#[tokio::test]
async fn predicted_usage_checks_only_its_metrics() {
    let config = EmulatorConfig::builder()
        .service(
            EmulatedService::new("7")
                .provider_key("pk")
                .metric("a")
                .metric("b")
                .plan(PlanConfig::new("p").limit("a", LimitPeriod::Day, 5).limit(
                    "b",
                    LimitPeriod::Day,
                    5,
                ))
                .application(ApplicationConfig::with_app_id("p", "x")),
        )
        .build()
        .unwrap();
    let h = start_with(config).await;
    let r = report(
        &h,
        "provider_key=pk&transactions[0][app_id]=x&transactions[0][usage][a]=7",
    )
    .await;
    assert_eq!(r.status, 202);
    let q = "/transactions/authorize.xml?provider_key=pk&app_id=x";
    assert_eq!(get(&h, q).await.status, 409);
    assert_eq!(get(&h, &format!("{q}&usage[b]=5")).await.status, 200);
    assert_eq!(get(&h, &format!("{q}&usage[b]=6")).await.status, 409);
    assert_eq!(get(&h, &format!("{q}&usage[a]=0")).await.status, 409);
}

#[tokio::test]
async fn zero_limit_disables_a_metric() {
    let h = start().await;
    assert_eq!(get(&h, &authorize("&usage[other]=1")).await.status, 409);
    assert_eq!(get(&h, &authorize("&usage[other]=0")).await.status, 200);
    assert_eq!(get(&h, &authorize("")).await.status, 200);
    assert_eq!(get(&h, &authrep("&usage[other]=1")).await.status, 409);
}

#[tokio::test]
async fn set_usage_with_hash_n() {
    let h = start().await;
    let r = get(&h, &authrep("&usage[hits]=%235")).await;
    assert_eq!(
        r.body,
        status_doc(None, "Basic", &basic_reports(5, 0, 0, 0))
    );
    assert_eq!(day(&h, "hits"), 5);
    get(&h, &authrep("&usage[hits]=1")).await;
    assert_eq!(day(&h, "hits"), 6);
    // a set on a child sets the ancestors
    get(&h, &authrep("&usage[search]=%233")).await;
    assert_eq!((day(&h, "hits"), day(&h, "search")), (3, 3));
    // sets are checked against the limit as the new value
    assert_eq!(get(&h, &authrep("&usage[hits]=%23101")).await.status, 409);
    assert_eq!(get(&h, &authrep("&usage[hits]=%23100")).await.status, 200);
    assert_eq!(day(&h, "hits"), 100);
    // #0 resets
    get(&h, &authrep("&usage[hits]=%230")).await;
    assert_eq!(day(&h, "hits"), 0);
}

#[tokio::test]
async fn zero_usage_is_not_reported() {
    let h = start().await;
    let r = get(&h, &authrep("&usage[hits]=0")).await;
    assert_eq!(r.status, 200);
    assert_eq!(day(&h, "hits"), 0);
    get(&h, &authrep("&usage[hits]=0&usage[search]=2")).await;
    assert_eq!((day(&h, "hits"), day(&h, "search")), (2, 2));
    // a log without usage changes nothing
    get(&h, &authrep("&log[code]=200")).await;
    assert_eq!(day(&h, "hits"), 2);
}

#[tokio::test]
async fn rejection_reason_header() {
    let h = start().await;
    let r = get_ext(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=app1&app_key=bad",
        "rejection_reason_header=1",
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.header("3scale-rejection-reason"),
        Some("application_key_invalid")
    );
    let r = get_ext(
        &h,
        &authorize("&usage[other]=1"),
        "rejection_reason_header=1",
    )
    .await;
    assert_eq!(r.header("3scale-rejection-reason"), Some("limits_exceeded"));
    // not on success, not on errors, not without the option
    let r = get_ext(&h, &authorize(""), "rejection_reason_header=1").await;
    assert_eq!(r.header("3scale-rejection-reason"), None);
    let r = get_ext(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=nope",
        "rejection_reason_header=1",
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("3scale-rejection-reason"), None);
    let r = get(&h, &authorize("&usage[other]=1")).await;
    assert_eq!(r.header("3scale-rejection-reason"), None);
    let r = get_ext(
        &h,
        "/transactions/authorize.xml?provider_key=pk4&app_id=a4",
        "rejection_reason_header=1",
    )
    .await;
    assert_eq!(
        r.header("3scale-rejection-reason"),
        Some("service_not_active")
    );
}

fn limit_headers(r: &Resp) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        r.header("3scale-limit-remaining"),
        r.header("3scale-limit-reset"),
        r.header("3scale-limit-max-value"),
    )
}

#[tokio::test]
async fn limit_headers_values() {
    let h = start().await;
    // day limit 100, authrep of 10 at stored 0: 90/10 = 9 calls left, 12 h to midnight
    let r = get_ext(&h, &authrep("&usage[hits]=10"), "limit_headers=1").await;
    assert_eq!(limit_headers(&r), (Some("9"), Some("43200"), Some("100")));
    // authorize: the predicted usage is not added: 90/10 = 9 again
    let r = get_ext(&h, &authorize("&usage[hits]=10"), "limit_headers=1").await;
    assert_eq!(limit_headers(&r), (Some("9"), Some("43200"), Some("100")));
    // without usage every report with room left gives -1 (no usage to divide by), but
    // the zero eternity limit of "other" has none: -1 loses against 0 here
    let r = get_ext(&h, &authorize(""), "limit_headers=1").await;
    assert_eq!(limit_headers(&r), (Some("0"), Some("-1"), Some("0")));
    let r = get_ext(
        &h,
        "/transactions/authorize.xml?service_token=tok2&service_id=1002&user_key=uk1",
        "limit_headers=1",
    )
    .await;
    assert_eq!(limit_headers(&r), (Some("-1"), Some("-1"), None));
    // a parent's limit can be the constraint of a child's usage
    let r = get_ext(&h, &authorize("&usage[deep]=2"), "limit_headers=1").await;
    // deep: 20/2 = 10, search: 50/2 = 25, hits day: 90/2 = 45 -> deep
    assert_eq!(limit_headers(&r), (Some("10"), Some("43200"), Some("20")));
    // no limits at all
    let r = get_ext(
        &h,
        "/transactions/authrep.xml?provider_key=pk1&app_id=free&app_key=fk&usage[hits]=10",
        "limit_headers=1",
    )
    .await;
    assert_eq!(limit_headers(&r), (Some("-1"), Some("-1"), None));
    // not for other denials, not without the option
    let r = get_ext(
        &h,
        "/transactions/authrep.xml?provider_key=pk1&app_id=app1&app_key=bad&usage[hits]=1",
        "limit_headers=1",
    )
    .await;
    assert_eq!(limit_headers(&r), (None, None, None));
    let r = get(&h, &authrep("&usage[hits]=1")).await;
    assert_eq!(limit_headers(&r), (None, None, None));
    // eternity resets never
    let r = get_ext(&h, &authorize("&usage[other]=0"), "limit_headers=1").await;
    assert_eq!(r.status, 200);
    let r = get_ext(&h, &authorize("&usage[other]=1"), "limit_headers=1").await;
    assert_eq!(limit_headers(&r), (Some("0"), Some("-1"), Some("0")));
}

#[tokio::test]
async fn limit_headers_when_rate_limited_and_ties() {
    let config = EmulatorConfig::builder()
        .service(
            EmulatedService::new("8")
                .provider_key("pk")
                .metric("hits")
                .metric("tied")
                .plan(
                    PlanConfig::new("p")
                        .limit("hits", LimitPeriod::Hour, 10)
                        .limit("hits", LimitPeriod::Day, 100)
                        .limit("tied", LimitPeriod::Hour, 10)
                        .limit("tied", LimitPeriod::Day, 10),
                )
                .application(ApplicationConfig::with_app_id("p", "x")),
        )
        .build()
        .unwrap();
    let h = start_with(config).await;
    h.set_time(Utc.with_ymd_and_hms(2010, 5, 15, 22, 59, 59).unwrap());
    let q = "/transactions/authrep.xml?provider_key=pk&app_id=x";
    // hour limit 10 exceeded at 22:59:59: remaining 0, reset 1, max 10
    let r = get_ext(&h, &format!("{q}&usage[hits]=11"), "limit_headers=1").await;
    assert_eq!(r.status, 409);
    assert_eq!(limit_headers(&r), (Some("0"), Some("1"), Some("10")));
    // equal remaining calls: the longer period wins
    let r = get_ext(&h, &format!("{q}&usage[tied]=5"), "limit_headers=1").await;
    assert_eq!(r.status, 200);
    assert_eq!(limit_headers(&r), (Some("1"), Some("3601"), Some("10")));
}

#[tokio::test]
async fn hierarchy_and_list_app_keys() {
    let h = start().await;
    let hierarchy = "<hierarchy><metric name=\"hits\" children=\"search\"/><metric name=\"hits\" children=\"search\"/><metric name=\"search\" children=\"deep\"/><metric name=\"deep\" children=\"\"/><metric name=\"other\" children=\"\"/></hierarchy>";
    let r = get_ext(&h, &authorize(""), "hierarchy=1").await;
    assert_eq!(
        r.body,
        status_doc_with(None, "", "Basic", &basic_reports(0, 0, 0, 0), hierarchy)
    );
    let keys =
        "<app_keys app=\"app1\" svc=\"1001\"><key id=\"key1\"/><key id=\"key2\"/></app_keys>";
    let r = get_ext(&h, &authorize(""), "list_app_keys=1&hierarchy=1").await;
    assert_eq!(
        r.body,
        status_doc_with(
            None,
            "",
            "Basic",
            &basic_reports(0, 0, 0, 0),
            &format!("{keys}{hierarchy}")
        )
    );
    let r = get_ext(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=free&app_key=fk",
        "hierarchy=1&list_app_keys=1",
    )
    .await;
    assert_eq!(
        r.body,
        status_doc_with(
            None,
            "",
            "Free",
            &[],
            "<app_keys app=\"free\" svc=\"1001\"><key id=\"fk\"/></app_keys><hierarchy></hierarchy>"
        )
    );
    let r = get_ext(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=nokeys",
        "list_app_keys=1",
    )
    .await;
    assert!(
        r.body
            .contains("<app_keys app=\"nokeys\" svc=\"1001\"></app_keys></status>")
    );
    // anything but "1" is off
    let r = get_ext(&h, &authorize(""), "hierarchy=true").await;
    assert!(!r.body.contains("<hierarchy>"));
}

#[tokio::test]
async fn no_body_on_success_and_denial() {
    let h = start().await;
    let r = get_ext(&h, &authrep("&usage[hits]=1"), "no_body=1").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_listener_headers(&r);
    assert_eq!(day(&h, "hits"), 1);
    let r = get(&h, &authorize("&usage[other]=1&no_body=true")).await;
    assert_eq!((r.status, r.body.as_str()), (409, ""));
    let r = get(&h, &authorize("&no_body=0")).await;
    assert_eq!(r.status, 200);
    assert!(!r.body.is_empty());
    let r = get(&h, &authorize("&no_body=false")).await;
    assert!(!r.body.is_empty());
}
