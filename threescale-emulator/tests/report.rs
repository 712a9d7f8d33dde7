//! The report endpoint: counters applied at once, timestamps, the 24 h / 1 h window,
//! whole-batch discards visible in the error log, and big batches.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::*;
use threescale_emulator::{AppRef, EmulatorHandle, LimitPeriod, PeriodTotals};

fn totals(h: &EmulatorHandle, metric: &str) -> PeriodTotals {
    h.usage("1001", AppRef::app_id("app1")).unwrap().usage[metric]
}

/// The value of `hits` for app1 in the period containing `at`.
async fn hits_at(h: &EmulatorHandle, period: LimitPeriod, at: DateTime<Utc>) -> i64 {
    let saved = h.state().now();
    h.set_time(at);
    let v = totals(h, "hits").get(period);
    h.set_time(saved);
    v
}

fn tx(i: usize, fields: &str) -> String {
    fields
        .split('&')
        .map(|f| format!("transactions[{i}]{f}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn report_applies_counters_immediately() {
    let h = start().await;
    let body = format!(
        "provider_key=pk1&{}&{}&{}",
        tx(0, "[app_id]=app1&[usage][hits]=1&[usage][search]=2"),
        tx(1, "[app_id]=nokeys&[usage][hits]=5"),
        tx(2, "[app_id]=app1&[usage][deep]=1&[log][code]=200"),
    );
    let r = report(&h, &body).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.body, "");
    let t = totals(&h, "hits");
    // 1 + 2 (search) + 1 (deep, via search)
    assert_eq!((t.minute, t.day, t.eternity), (4, 4, 4));
    assert_eq!(totals(&h, "search").day, 3);
    assert_eq!(totals(&h, "deep").day, 1);
    let other = h.usage("1001", AppRef::app_id("nokeys")).unwrap();
    assert_eq!(other.usage["hits"].day, 5);
    // report ignores state, keys and limits
    let body = format!(
        "provider_key=pk1&{}&{}",
        tx(0, "[app_id]=suspended&[usage][other]=3"),
        tx(1, "[app_id]=app1&[usage][deep]=500"),
    );
    assert_eq!(report(&h, &body).await.status, 202);
    assert_eq!(totals(&h, "deep").day, 501);
    let s = h.usage("1001", AppRef::app_id("suspended")).unwrap();
    assert_eq!(s.usage["other"].eternity, 3);
    let stats = h.stats();
    assert_eq!(
        (stats.report, stats.transactions, stats.transactions_applied),
        (2, 5, 5)
    );
}

#[tokio::test]
async fn user_keys_sets_and_flat_usage_in_reports() {
    let h = start().await;
    // user_key works whatever the backend_version, within the service
    let body = "service_token=tok2&service_id=1002&transactions[0][user_key]=uk1&transactions[0][usage][hits]=2";
    assert_eq!(report(&h, body).await.status, 202);
    let u = h.usage("1002", AppRef::user_key("uk1")).unwrap();
    assert_eq!(u.app_id, "legacy-app");
    assert_eq!(u.usage["hits"].minute, 2);
    // #N sets, "0" is dropped, flat_usage skips the roll-up
    let body = format!(
        "provider_key=pk1&{}",
        tx(0, "[app_id]=app1&[usage][hits]=%2340&[usage][search]=0")
    );
    report(&h, &body).await;
    assert_eq!((totals(&h, "hits").day, totals(&h, "search").day), (40, 0));
    let r = client()
        .post(format!("{}/transactions.xml", h.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("3scale-options", "flat_usage=1")
        .body(format!(
            "provider_key=pk1&{}",
            tx(0, "[app_id]=app1&[usage][deep]=2")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        (
            totals(&h, "hits").day,
            totals(&h, "search").day,
            totals(&h, "deep").day
        ),
        (40, 0, 2)
    );
}

#[tokio::test]
async fn a_bad_transaction_discards_the_whole_batch() {
    let h = start().await;
    let good = tx(0, "[app_id]=app1&[usage][hits]=1");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            tx(1, "[app_id]=boo&[usage][hits]=1"),
            "application_not_found",
            "application with id=\"boo\" was not found",
        ),
        (
            tx(1, "[usage][hits]=1"),
            "application_not_found",
            "application id is missing",
        ),
        (
            tx(1, "[user_key]=nope&[usage][hits]=1"),
            "user_key_invalid",
            "user key \"nope\" is invalid",
        ),
        (
            tx(1, "[app_id]=app1&[user_key]=uk1&[usage][hits]=1"),
            "authentication_error",
            "either app_id or user_key is allowed, not both",
        ),
        (
            tx(1, "[app_id]=app1&[usage][nukes]=1"),
            "metric_invalid",
            "metric \"nukes\" is invalid",
        ),
        (
            tx(1, "[app_id]=app1&[usage][hits]="),
            "usage_value_invalid",
            "usage value for metric \"hits\" can not be empty",
        ),
        (
            tx(1, "[app_id]=app1&[usage][hits]=-1"),
            "usage_value_invalid",
            "usage value \"-1\" for metric \"hits\" is invalid",
        ),
        (
            tx(
                1,
                "[app_id]=app1&[usage][hits]=1&[timestamp]=2010-05-14+11:59:59",
            ),
            "transaction_timestamp_too_old",
            "reporting transactions older than 86400 seconds is not allowed",
        ),
        (
            tx(1, "[app_id]=app1&[usage][hits]=1&[timestamp]=0"),
            "transaction_timestamp_too_old",
            "reporting transactions older than 86400 seconds is not allowed",
        ),
        (
            tx(
                1,
                "[app_id]=app1&[usage][hits]=1&[timestamp]=2010-05-15+13:00:01",
            ),
            "transaction_timestamp_too_new",
            "reporting transactions more than 3600 seconds in the future is not allowed",
        ),
    ];
    for (bad, code, message) in &cases {
        let r = report(&h, &format!("provider_key=pk1&{good}&{bad}")).await;
        assert_eq!(r.status, 202, "{bad}");
        assert_eq!(r.body, "");
        assert_eq!(totals(&h, "hits").eternity, 0, "{bad}");
        let log = h.errors("1001").unwrap();
        assert_eq!(
            (log[0].code.as_str(), log[0].message.as_str()),
            (*code, *message)
        );
    }
    assert_eq!(h.errors("1001").unwrap().len(), cases.len());
    let stats = h.stats();
    assert_eq!(stats.transactions_discarded, 2 * cases.len() as u64);
    assert_eq!(stats.transactions_applied, 0);

    // the same log over HTTP
    let r = get(&h, "/_emulator/errors?service_id=1001").await;
    assert_eq!(r.status, 200);
    let list: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(list[0]["code"], "transaction_timestamp_too_new");
    assert_eq!(list[0]["timestamp"], "2010-05-15 12:00:00 UTC");
    let r = get(&h, "/internal/services/1001/errors/?per_page=2&page=2").await;
    let page: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(page["status"], "found");
    assert_eq!(page["count"], cases.len());
    assert_eq!(page["errors"].as_array().unwrap().len(), 2);
    assert_eq!(page["errors"][0]["code"], "transaction_timestamp_too_old");
    // Found while applying the report (apisonator's worker): no request context.
    assert_eq!(page["errors"][0]["context_info"], serde_json::json!({}));
    assert_eq!(get(&h, "/internal/services/nope/errors/").await.status, 404);
    assert_eq!(
        get(&h, "/internal/services/1001/errors/?per_page=0")
            .await
            .status,
        400
    );
    let r = request(
        &h,
        reqwest::Method::DELETE,
        "/internal/services/1001/errors/",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(h.errors("1001").unwrap().is_empty());
}

#[tokio::test]
async fn zero_only_transactions_are_dropped_before_any_check() {
    let h = start().await;
    // an unknown app whose usage is all "0" is never looked at
    let body = format!(
        "provider_key=pk1&{}&{}",
        tx(0, "[app_id]=boo&[usage][hits]=0"),
        tx(1, "[app_id]=app1&[usage][hits]=2")
    );
    assert_eq!(report(&h, &body).await.status, 202);
    assert_eq!(totals(&h, "hits").day, 2);
    assert!(h.errors("1001").unwrap().is_empty());
    // a transaction without usage still has its application checked
    let body = format!(
        "provider_key=pk1&{}&{}",
        tx(0, "[app_id]=boo"),
        tx(1, "[app_id]=app1&[usage][hits]=2")
    );
    assert_eq!(report(&h, &body).await.status, 202);
    assert_eq!(totals(&h, "hits").day, 2);
    assert_eq!(h.errors("1001").unwrap()[0].code, "application_not_found");
}

#[tokio::test]
async fn timestamp_formats() {
    let h = start().await;
    h.set_time(Utc.with_ymd_and_hms(2010, 4, 23, 0, 0, 0).unwrap());
    let send = |ts: &'static str| {
        let h = h.clone();
        async move {
            let body = format!(
                "provider_key=pk1&{}",
                tx(
                    0,
                    &format!("[app_id]=app1&[usage][hits]=1&[timestamp]={ts}")
                )
            );
            assert_eq!(report(&h, &body).await.status, 202);
        }
    };
    let apr22 = Utc.with_ymd_and_hms(2010, 4, 22, 12, 0, 0).unwrap();
    let apr23 = Utc.with_ymd_and_hms(2010, 4, 23, 0, 0, 0).unwrap();
    send("2010-04-22+23:59:30").await;
    send("2010-04-22+23:59:25+UTC").await;
    send("2010-04-22+23:55:45+%2B0200").await; // 21:55:45 UTC
    send("2010-04-22+21:00:25+-02:00").await; // 23:00:25 UTC
    send("1271980765").await; // 2010-04-22 23:59:25 UTC
    send("2010-04-22T23:00:00Z").await;
    assert_eq!(hits_at(&h, LimitPeriod::Day, apr22).await, 6);
    assert_eq!(hits_at(&h, LimitPeriod::Day, apr23).await, 0);
    // 21:55:45 UTC is the only one in the 21:00 hour
    let nine_pm = Utc.with_ymd_and_hms(2010, 4, 22, 21, 30, 0).unwrap();
    assert_eq!(hits_at(&h, LimitPeriod::Hour, nine_pm).await, 1);
    // blank and garbage mean "now"
    send("").await;
    send("2012garbage2012").await;
    assert_eq!(hits_at(&h, LimitPeriod::Day, apr23).await, 2);
    // no timestamp at all
    let body = format!(
        "provider_key=pk1&{}",
        tx(0, "[app_id]=app1&[usage][hits]=1")
    );
    report(&h, &body).await;
    assert_eq!(hits_at(&h, LimitPeriod::Day, apr23).await, 3);
    // slashes
    h.set_time(Utc.with_ymd_and_hms(2012, 10, 1, 0, 0, 0).unwrap());
    send("2012%2F10%2F01").await;
    let oct = Utc.with_ymd_and_hms(2012, 10, 1, 0, 0, 0).unwrap();
    assert_eq!(hits_at(&h, LimitPeriod::Month, oct).await, 1);
    assert!(h.errors("1001").unwrap().is_empty());
}

#[tokio::test]
async fn window_edges() {
    let h = start().await;
    let now = pinned();
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%d+%H:%M:%S").to_string();
    for (t, ok) in [
        (now - Duration::seconds(86_400), true),
        (now - Duration::seconds(86_401), false),
        (now + Duration::seconds(3_600), true),
        (now + Duration::seconds(3_601), false),
    ] {
        h.reset();
        let body = format!(
            "provider_key=pk1&{}",
            tx(
                0,
                &format!("[app_id]=app1&[usage][hits]=1&[timestamp]={}", at(t))
            )
        );
        assert_eq!(report(&h, &body).await.status, 202);
        assert_eq!(totals(&h, "hits").eternity, i64::from(ok), "{t}");
        assert_eq!(h.errors("1001").unwrap().is_empty(), ok);
    }
}

async fn big_batch(n: usize) {
    let h = start().await;
    let mut body = String::from("provider_key=pk1");
    for i in 0..n {
        let app = if i % 2 == 0 { "app1" } else { "nokeys" };
        body.push_str(&format!(
            "&transactions[{i}][app_id]={app}&transactions[{i}][usage][hits]=1"
        ));
    }
    let r = report(&h, &body).await;
    assert_eq!(r.status, 202);
    assert!(h.errors("1001").unwrap().is_empty());
    assert_eq!(totals(&h, "hits").day, (n / 2) as i64);
    let other = h.usage("1001", AppRef::app_id("nokeys")).unwrap();
    assert_eq!(other.usage["hits"].minute, (n / 2) as i64);
    assert_eq!(h.stats().transactions, n as u64);
}

#[tokio::test]
async fn report_of_1000_transactions_is_counted_exactly() {
    big_batch(1000).await;
}

#[tokio::test]
async fn report_of_2000_transactions_is_counted_exactly() {
    big_batch(2000).await;
}

#[tokio::test]
async fn rack_limits_apply_to_the_body() {
    let h = start().await;
    let mut body = String::from("provider_key=pk1");
    for i in 0..2050 {
        body.push_str(&format!(
            "&transactions[{i}][user_key]=uk&transactions[{i}][usage][hits]=1"
        ));
    }
    let r = report(&h, &body).await;
    assert_error(
        &r,
        400,
        "bad_request",
        "total number of query parameters (4101) exceeds limit (4096)",
    );
    let big = format!("big={}", "x".repeat(4 * 1024 * 1024 + 1));
    let r = report(&h, &big).await;
    assert_error(
        &r,
        400,
        "bad_request",
        "total query size exceeds limit (4194304)",
    );
    let r = report(&h, "testparam=value1%").await;
    assert_error(
        &r,
        400,
        "bad_request",
        "Invalid query parameters: invalid %-encoding",
    );
}
