//! LimitPeriod alignment with the injected clock, around every boundary.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::*;
use threescale_emulator::{
    AppRef, ApplicationConfig, EmulatedService, EmulatorConfig, EmulatorHandle, LimitPeriod,
    PlanConfig,
};

fn t(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn config() -> EmulatorConfig {
    let mut plan = PlanConfig::new("all");
    for p in LimitPeriod::ALL {
        plan = plan.limit("hits", p, 1000);
    }
    EmulatorConfig::builder()
        .service(
            EmulatedService::new("9")
                .provider_key("pk")
                .metric("hits")
                .plan(plan)
                .plan(PlanConfig::new("tight").limit("hits", LimitPeriod::Minute, 5))
                .application(ApplicationConfig::with_app_id("all", "a"))
                .application(ApplicationConfig::with_app_id("tight", "b")),
        )
        .build()
        .unwrap()
}

async fn hit(h: &EmulatorHandle) {
    let r = get(
        h,
        "/transactions/authrep.xml?provider_key=pk&app_id=a&usage[hits]=1",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn value(h: &EmulatorHandle, p: LimitPeriod) -> i64 {
    h.usage("9", AppRef::app_id("a")).unwrap().usage["hits"].get(p)
}

/// One hit just before `boundary`, then checks which periods rolled over at it.
async fn check_rollover(boundary: DateTime<Utc>, rolled: &[LimitPeriod]) {
    let h = start_with(config()).await;
    h.set_time(boundary - Duration::seconds(1));
    hit(&h).await;
    for p in LimitPeriod::ALL {
        assert_eq!(value(&h, p), 1, "{p} before {boundary}");
    }
    h.set_time(boundary);
    for p in LimitPeriod::ALL {
        let expected = if rolled.contains(&p) { 0 } else { 1 };
        assert_eq!(value(&h, p), expected, "{p} at {boundary}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn minute_hour_day_rollovers() {
    use LimitPeriod::*;
    check_rollover(t(2010, 5, 15, 12, 1, 0), &[Minute]).await;
    check_rollover(t(2010, 5, 15, 13, 0, 0), &[Minute, Hour]).await;
    // 2010-05-15 is a Saturday: the day ends, the week does not
    check_rollover(t(2010, 5, 16, 0, 0, 0), &[Minute, Hour, Day]).await;
}

#[tokio::test]
async fn week_starts_on_monday() {
    use LimitPeriod::*;
    // Sunday 23:59:59 -> Monday 00:00:00
    check_rollover(t(2010, 5, 17, 0, 0, 0), &[Minute, Hour, Day, Week]).await;
    // a Monday and the following Sunday share a week
    let h = start_with(config()).await;
    h.set_time(t(2010, 5, 10, 0, 0, 0));
    hit(&h).await;
    h.set_time(t(2010, 5, 16, 23, 59, 59));
    assert_eq!(value(&h, Week), 1);
    assert_eq!(value(&h, Day), 0);
}

#[tokio::test]
async fn month_and_year_rollovers() {
    use LimitPeriod::*;
    check_rollover(t(2010, 6, 1, 0, 0, 0), &[Minute, Hour, Day, Month]).await;
    // 2011-01-01 is a Saturday: the week goes on across the year
    check_rollover(t(2011, 1, 1, 0, 0, 0), &[Minute, Hour, Day, Month, Year]).await;
    // leap day
    check_rollover(t(2012, 3, 1, 0, 0, 0), &[Minute, Hour, Day, Month]).await;
}

#[tokio::test]
async fn period_strings_at_the_end_of_a_year() {
    let h = start_with(config()).await;
    h.set_time(t(2010, 12, 31, 23, 59, 59));
    let r = get(&h, "/transactions/authorize.xml?provider_key=pk&app_id=a").await;
    let report = |p: &str, start: &str, end: &str| {
        format!(
            "<usage_report metric=\"hits\" period=\"{p}\"><period_start>{start}</period_start><period_end>{end}</period_end><max_value>1000</max_value><current_value>0</current_value></usage_report>"
        )
    };
    let expected = format!(
        "{DECL}<status><authorized>true</authorized><plan>all</plan><usage_reports><usage_report metric=\"hits\" period=\"eternity\"><max_value>1000</max_value><current_value>0</current_value></usage_report>{}{}{}{}{}{}</usage_reports></status>",
        report(
            "year",
            "2010-01-01 00:00:00 +0000",
            "2011-01-01 00:00:00 +0000"
        ),
        report(
            "month",
            "2010-12-01 00:00:00 +0000",
            "2011-01-01 00:00:00 +0000"
        ),
        report(
            "week",
            "2010-12-27 00:00:00 +0000",
            "2011-01-03 00:00:00 +0000"
        ),
        report(
            "day",
            "2010-12-31 00:00:00 +0000",
            "2011-01-01 00:00:00 +0000"
        ),
        report(
            "hour",
            "2010-12-31 23:00:00 +0000",
            "2011-01-01 00:00:00 +0000"
        ),
        report(
            "minute",
            "2010-12-31 23:59:00 +0000",
            "2011-01-01 00:00:00 +0000"
        ),
    );
    assert_eq!(r.body, expected);
}

#[tokio::test]
async fn minute_limit_opens_again_next_minute() {
    let h = start_with(config()).await;
    h.set_time(t(2010, 5, 15, 12, 0, 30));
    let q = "/transactions/authrep.xml?provider_key=pk&app_id=b&usage[hits]=1";
    for _ in 0..5 {
        assert_eq!(get(&h, q).await.status, 200);
    }
    let r = get_ext(&h, q, "limit_headers=1").await;
    assert_eq!(r.status, 409);
    assert_eq!(r.header("3scale-limit-reset"), Some("30"));
    assert_eq!(r.header("3scale-limit-remaining"), Some("0"));
    h.advance_time(Duration::seconds(30));
    assert_eq!(get(&h, q).await.status, 200);
}

#[tokio::test]
async fn clock_over_http() {
    let h = start_with(config()).await;
    let r = client()
        .post(format!("{}/_emulator/time", h.url()))
        .body(r#"{"now":"2010-05-31T23:59:59Z"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    hit(&h).await;
    let r = client()
        .post(format!("{}/_emulator/time", h.url()))
        .body(r#"{"advance_seconds":1}"#)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["now"], "2010-06-01T00:00:00+00:00");
    assert_eq!(value(&h, LimitPeriod::Month), 0);
    assert_eq!(value(&h, LimitPeriod::Year), 1);
    let r = client()
        .post(format!("{}/_emulator/time", h.url()))
        .body(r#"{"now":"yesterday"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = request(&h, reqwest::Method::DELETE, "/_emulator/time").await;
    assert_eq!(r.status, 200);
    assert!(h.state().now() > t(2020, 1, 1, 0, 0, 0));
}
