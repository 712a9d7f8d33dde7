//! The XML parser against the response samples of the protocol reference
//! (§3.2, §3.3, §3.4, §4.1) and against truncated and garbage input.

use chrono::{DateTime, TimeZone, Utc};
use threescale_core::xml::{
    Authorization, HierarchyMetric, Period, XmlError, parse_authorization, parse_error,
};

const AUTHORIZED: &[u8] = include_bytes!("fixtures/xml/authorized.xml");
const DENIED: &[u8] = include_bytes!("fixtures/xml/denied.xml");
const OAUTH_URL: &[u8] = include_bytes!("fixtures/xml/oauth_redirect_url.xml");
const OAUTH_URI: &[u8] = include_bytes!("fixtures/xml/oauth_redirect_uri.xml");
const HIERARCHY: &[u8] = include_bytes!("fixtures/xml/hierarchy_app_keys.xml");

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Option<DateTime<Utc>> {
    Some(Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap())
}

fn assert_error(result: Result<Authorization, XmlError>, input: &[u8]) -> XmlError {
    let err = result.expect_err(&format!(
        "{:?} should not parse",
        String::from_utf8_lossy(input)
    ));
    assert!(err.excerpt.chars().count() <= 64, "{err:?}");
    assert!(!err.excerpt.chars().any(char::is_control), "{err:?}");
    assert!(!err.reason.is_empty());
    err
}

#[test]
fn authorized_with_usage_reports_and_eternity() {
    let a = parse_authorization(AUTHORIZED).unwrap();
    assert!(a.authorized);
    assert_eq!(a.reason, None);
    assert_eq!(a.plan.as_deref(), Some("Basic"));
    assert_eq!(a.application, None);
    assert_eq!(a.app_keys, None);
    assert_eq!(a.hierarchy, None);
    let r = &a.usage_reports;
    assert_eq!(r.len(), 3);
    assert_eq!((r[0].metric.as_str(), r[0].period), ("hits", Period::Month));
    assert_eq!(r[0].period_start, at(2010, 5, 1, 0, 0));
    assert_eq!(r[0].period_end, at(2010, 6, 1, 0, 0));
    assert_eq!((r[0].max_value, r[0].current_value), (10000, 5));
    assert!(!r[0].exceeded);
    assert_eq!(r[1].period, Period::Day);
    assert_eq!(r[1].period_start, at(2010, 5, 15, 0, 0));
    assert_eq!(r[1].period_end, at(2010, 5, 16, 0, 0));
    assert_eq!((r[1].max_value, r[1].current_value), (100, 2));
    assert_eq!(r[2].period, Period::Eternity);
    assert_eq!((r[2].period_start, r[2].period_end), (None, None));
    assert_eq!((r[2].max_value, r[2].current_value), (10, 3));
}

#[test]
fn denied_with_reason_and_exceeded() {
    let a = parse_authorization(DENIED).unwrap();
    assert!(!a.authorized);
    assert_eq!(a.reason.as_deref(), Some("usage limits are exceeded"));
    assert_eq!(a.plan.as_deref(), Some("Basic"));
    let r = &a.usage_reports[0];
    assert!(r.exceeded);
    assert_eq!((r.max_value, r.current_value), (4, 5));
}

#[test]
fn every_denial_reason() {
    for reason in [
        r#"application key "k" is invalid"#,
        "application key is missing",
        "application is not active",
        "service is not active",
        "usage limits are exceeded",
        r#"referrer "foo.example.org" is not allowed"#,
        "referrer is missing",
        "oauth is not enabled",
        r#"redirect_url "http://a.example/?x=1&y=2" is invalid"#,
        r#"redirect_uri "http://a.example/<cb>" is invalid"#,
    ] {
        let doc = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>false</authorized><reason>{reason}</reason><plan></plan></status>"#
        );
        let a = parse_authorization(doc.as_bytes()).unwrap();
        assert_eq!(a.reason.as_deref(), Some(reason));
        assert_eq!(a.plan, None);
    }
}

#[test]
fn oauth_application_with_redirect_url() {
    let a = parse_authorization(OAUTH_URL).unwrap();
    let app = a.application.unwrap();
    assert_eq!(app.id, "APPID");
    assert_eq!(app.key, "KEY1");
    assert_eq!(app.redirect_url, "http://3scale.net");
    assert_eq!(a.usage_reports[0].period, Period::Minute);
    assert_eq!(a.usage_reports[0].period_end, at(2010, 5, 15, 10, 32));
}

#[test]
fn oauth_application_with_redirect_uri_and_unescaped_reason() {
    let a = parse_authorization(OAUTH_URI).unwrap();
    assert!(!a.authorized);
    assert_eq!(
        a.reason.as_deref(),
        Some(r#"redirect_uri "http://evil.example/cb?a=1&b=2" is invalid"#)
    );
    let app = a.application.unwrap();
    assert_eq!(
        (app.id.as_str(), app.key.as_str(), app.redirect_url.as_str()),
        ("APPID", "", "")
    );
}

#[test]
fn hierarchy_and_app_keys() {
    let a = parse_authorization(HIERARCHY).unwrap();
    assert_eq!(a.plan.as_deref(), Some("Pro & Co"));
    assert_eq!(a.usage_reports[0].period, Period::Week);
    assert_eq!(a.usage_reports[1].period, Period::Year);
    assert_eq!(a.usage_reports[1].period_end, at(2011, 1, 1, 0, 0));
    assert_eq!(a.usage_reports[2].period, Period::Hour);
    let keys = a.app_keys.unwrap();
    assert_eq!(keys.app, "APPID");
    assert_eq!(keys.service, "2555417777820");
    assert_eq!(keys.keys, ["k1", "k2"]);
    let h = a.hierarchy.unwrap();
    let parent = HierarchyMetric {
        name: "parent_metric".into(),
        children: vec!["child_metric_1".into(), "child_metric_2".into()],
    };
    assert_eq!(
        h,
        [
            parent.clone(),
            parent,
            HierarchyMetric {
                name: "child_metric_1".into(),
                children: vec![]
            }
        ]
    );
}

#[test]
fn empty_sections() {
    let a = parse_authorization(
        br#"<status><authorized>true</authorized><plan/><app_keys app="a" svc="s"></app_keys><hierarchy></hierarchy></status>"#,
    )
    .unwrap();
    assert_eq!(a.plan, None);
    assert_eq!(a.app_keys.unwrap().keys, Vec::<String>::new());
    assert_eq!(a.hierarchy, Some(vec![]));
    let a = parse_authorization(
        br#"<status><authorized>true</authorized><app_keys app="a" svc="s"/><hierarchy/></status>"#,
    )
    .unwrap();
    assert_eq!(a.app_keys.unwrap().app, "a");
    assert_eq!(a.hierarchy, Some(vec![]));
}

#[test]
fn unknown_elements_comments_and_entities() {
    let a = parse_authorization(
        br#"<?xml version="1.0"?><!-- hi --><status><future a="1"><deep><x/></deep>text</future><authorized> true </authorized><plan>A &amp; B &lt;&#65;&#x42;&gt; <![CDATA[<raw>]]></plan><usage_reports><other/><usage_report metric="a&amp;b" period="day" extra="1"><new_field>9</new_field><period_start>2010-05-15 00:00:00 +0000</period_start><period_end>2010-05-16 00:00:00 +0000</period_end><max_value> 7 </max_value><current_value>0</current_value></usage_report></usage_reports></status>trailing"#,
    )
    .unwrap();
    assert!(a.authorized);
    assert_eq!(a.plan.as_deref(), Some("A & B <AB> <raw>"));
    assert_eq!(a.usage_reports[0].metric, "a&b");
    assert_eq!(a.usage_reports[0].max_value, 7);
}

#[test]
fn huge_and_bad_numbers() {
    let report = |max: &str| {
        format!(
            r#"<status><authorized>true</authorized><usage_reports><usage_report metric="m" period="eternity"><max_value>{max}</max_value><current_value>0</current_value></usage_report></usage_reports></status>"#
        )
    };
    assert_eq!(
        parse_authorization(report("18446744073709551615").as_bytes())
            .unwrap()
            .usage_reports[0]
            .max_value,
        u64::MAX
    );
    for bad in [
        "18446744073709551616",
        "999999999999999999999999999",
        "-1",
        "1.5",
        "",
        "0x10",
        "1e9",
    ] {
        let doc = report(bad);
        let err = assert_error(parse_authorization(doc.as_bytes()), doc.as_bytes());
        assert_eq!(err.reason, "invalid number", "{bad}");
    }
}

#[test]
fn bad_dates_and_periods() {
    for start in [
        "2010-13-01 00:00:00 +0000",
        "2010-02-30 00:00:00 +0000",
        "yesterday",
        "2010-05-15T00:00:00Z",
        "",
    ] {
        let doc = format!(
            r#"<status><authorized>true</authorized><usage_reports><usage_report metric="m" period="day"><period_start>{start}</period_start><max_value>1</max_value><current_value>0</current_value></usage_report></usage_reports></status>"#
        );
        let err = assert_error(parse_authorization(doc.as_bytes()), doc.as_bytes());
        assert_eq!(err.reason, "invalid date", "{start}");
    }
    let doc = br#"<status><authorized>true</authorized><usage_reports><usage_report metric="m" period="fortnight"><max_value>1</max_value><current_value>0</current_value></usage_report></usage_reports></status>"#;
    assert_error(parse_authorization(doc), doc);
}

#[test]
fn every_error_code_shape() {
    let cases = [
        ("provider_key_invalid", r#"provider key "pk" is invalid"#),
        (
            "provider_key_invalid_or_service_missing",
            r#"provider key "pk" invalid and/or service ID missing"#,
        ),
        (
            "provider_key_or_service_token_required",
            "Provider key or service token are required",
        ),
        ("service_id_missing", "Service ID is missing"),
        (
            "service_token_invalid",
            r#"service token "t" or service id "s" is invalid"#,
        ),
        ("service_id_invalid", r#"service id "s" is invalid"#),
        (
            "application_not_found",
            r#"application with id="boo" was not found"#,
        ),
        ("application_not_found", "application id is missing"),
        ("user_key_invalid", r#"user key "u" is invalid"#),
        ("user_key_invalid", "user key is missing"),
        (
            "authentication_error",
            "either app_id or user_key is allowed, not both",
        ),
        (
            "application_key_invalid",
            r#"application key "k" is invalid"#,
        ),
        ("application_not_active", "application is not active"),
        ("service_not_active", "service is not active"),
        ("limits_exceeded", "usage limits are exceeded"),
        ("referrer_not_allowed", r#"referrer "r" is not allowed"#),
        ("oauth_not_enabled", "oauth is not enabled"),
        ("redirect_url_invalid", r#"redirect_url "u" is invalid"#),
        ("redirect_uri_invalid", r#"redirect_uri "u" is invalid"#),
        ("metric_invalid", r#"metric "m" is invalid"#),
        (
            "usage_value_invalid",
            r#"usage value "-1" for metric "m" is invalid"#,
        ),
        (
            "usage_value_invalid",
            r#"usage value for metric "m" can not be empty"#,
        ),
        ("not_valid_data", "all data must be valid UTF8"),
        (
            "bad_request",
            "request contains syntax errors, should not be repeated without modification",
        ),
        (
            "bad_request",
            "Invalid query parameters: invalid %-encoding",
        ),
        (
            "bad_request",
            "total number of query parameters (5000) exceeds limit (4096)",
        ),
        (
            "content_type_invalid",
            "invalid Content-Type: application/json",
        ),
        ("transactions_is_blank", "transactions parameter is blank"),
        (
            "transactions_format_invalid",
            "transactions format is invalid",
        ),
        (
            "transactions_has_nil_transaction",
            "transactions has a nil transaction",
        ),
        (
            "end_users_no_longer_supported",
            "End-users are no longer supported, do not specify the user_id parameter",
        ),
        (
            "transaction_timestamp_too_old",
            "reporting transactions older than 86400 seconds is not allowed",
        ),
        (
            "transaction_timestamp_too_new",
            "reporting transactions more than 3600 seconds in the future is not allowed",
        ),
        ("referrer_filters_missing", "referrer filters are missing"),
    ];
    for (code, message) in cases {
        let escaped = message
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let doc = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><error code="{code}">{escaped}</error>"#
        );
        let e = parse_error(doc.as_bytes()).unwrap();
        assert_eq!((e.code.as_str(), e.message.as_str()), (code, message));
        // An error document is not a status document.
        assert!(parse_authorization(doc.as_bytes()).is_err());
    }
    let e = parse_error(b"<error>no code</error>").unwrap();
    assert_eq!((e.code.as_str(), e.message.as_str()), ("", "no code"));
    let e = parse_error(br#"<error code="x"/>"#).unwrap();
    assert_eq!((e.code.as_str(), e.message.as_str()), ("x", ""));
    assert!(parse_error(DENIED).is_err());
    assert!(parse_error(b"").is_err());
    assert!(parse_error(br#"<error code="x">trunc"#).is_err());
}

#[test]
fn reason_cannot_inject_elements() {
    let doc = br#"<status><authorized>false</authorized><reason>application key "</reason><authorized>true</authorized><plan>Free</plan><reason>" is invalid</reason><plan>Basic</plan></status>"#;
    let a = parse_authorization(doc).unwrap();
    assert!(!a.authorized);
    assert_eq!(a.plan.as_deref(), Some("Basic"));
    assert_eq!(
        a.reason.as_deref(),
        Some(
            r#"application key "</reason><authorized>true</authorized><plan>Free</plan><reason>" is invalid"#
        )
    );
    let doc = br#"<status><authorized>true</authorized><authorized>false</authorized></status>"#;
    assert_error(parse_authorization(doc), doc);
}

#[test]
fn every_truncation_of_every_sample_is_an_error() {
    for sample in [AUTHORIZED, DENIED, OAUTH_URL, OAUTH_URI, HIERARCHY] {
        let sample = sample.trim_ascii_end();
        assert!(parse_authorization(sample).is_ok());
        for len in 0..sample.len() {
            assert_error(parse_authorization(&sample[..len]), &sample[..len]);
        }
    }
}

#[test]
fn garbage_is_an_error() {
    let cases: &[&[u8]] = &[
        b"",
        b"   \n ",
        b"Internal Server Error",
        b"<html><head><title>502 Bad Gateway</title></head></html>",
        b"<status>",
        b"<status/>",
        b"<status></status>",
        b"<status><plan>Basic</plan></status>",
        b"<status><authorized>maybe</authorized></status>",
        b"<status><authorized/></status>",
        b"<status><authorized>true</authorized></wrong>",
        b"<status><authorized>true</status>",
        b"</status>",
        b"<<<>>>",
        b"<status><authorized>true</authorized><plan>\xff\xfe</plan></status>",
        b"<status><authorized>true</authorized><usage_reports><usage_report period=\"day\"><max_value>1</max_value><current_value>1</current_value></usage_report></usage_reports></status>",
        b"<status><authorized>true</authorized><usage_reports><usage_report metric=\"m\" period=\"day\"><max_value>1</max_value></usage_report></usage_reports></status>",
        b"<status><authorized>true</authorized><plan>&#0;</plan></status>",
        b"<status><authorized>true</authorized><plan>&#xFFFFFFFFF;</plan></status>",
        b"<status><authorized>true</authorized><usage_reports><usage_report metric=\"m\" period= x><max_value>1</max_value><current_value>1</current_value></usage_report></usage_reports></status>",
        b"<status><authorized>false</authorized><reason>never closed</status>",
        b"\xef\xbb\xbf\x00\x00",
        b"<?xml version=\"1.0\"?>",
        b"<!DOCTYPE x [<!ENTITY e \"boom\">]><status><authorized>true</authorized><plan>&e;</plan>",
    ];
    for &input in cases {
        let err = assert_error(parse_authorization(input), input);
        assert!(!format!("{err}").is_empty());
    }
}

#[test]
fn bom_and_whitespace_are_accepted() {
    let mut doc = b"\xef\xbb\xbf\n  ".to_vec();
    doc.extend_from_slice(DENIED);
    doc.extend_from_slice(b"\n\n");
    assert!(!parse_authorization(&doc).unwrap().authorized);
}

#[test]
fn excerpt_is_short_printable_and_near_the_problem() {
    let mut doc = String::from("<status><authorized>true</authorized><plan>");
    doc.push_str(&"p".repeat(300));
    doc.push_str("</plan><usage_reports><usage_report metric=\"m\" period=\"day\"><max_value>\nNaN\t</max_value>");
    let err = parse_authorization(doc.as_bytes()).unwrap_err();
    assert_eq!(err.reason, "invalid number");
    assert!(err.excerpt.contains("NaN"), "{err:?}");
    assert!(err.excerpt.chars().count() <= 64);
    assert!(!err.excerpt.contains('\n') && !err.excerpt.contains('\t'));
}
