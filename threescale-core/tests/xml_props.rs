//! Property tests: the parser never panics on arbitrary bytes or on mutations
//! and truncations of valid documents, its errors stay short and printable,
//! and documents rendered from arbitrary values parse back to those values.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use threescale_core::xml::{
    Authorization, HierarchyMetric, Period, UsageReport, XmlError, parse_authorization, parse_error,
};

const SAMPLES: &[&[u8]] = &[
    include_bytes!("fixtures/xml/authorized.xml"),
    include_bytes!("fixtures/xml/denied.xml"),
    include_bytes!("fixtures/xml/oauth_redirect_url.xml"),
    include_bytes!("fixtures/xml/oauth_redirect_uri.xml"),
    include_bytes!("fixtures/xml/hierarchy_app_keys.xml"),
    br#"<?xml version="1.0" encoding="UTF-8"?><error code="application_not_found">application with id="a&amp;b" was not found</error>"#,
];

fn check_error(err: &XmlError) {
    assert!(err.excerpt.chars().count() <= 64, "{err:?}");
    assert!(!err.excerpt.chars().any(char::is_control), "{err:?}");
    let _ = err.to_string();
}

fn parse_both(bytes: &[u8]) {
    if let Err(e) = parse_authorization(bytes) {
        check_error(&e);
    }
    if let Err(e) = parse_error(bytes) {
        check_error(&e);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![
        b"<".to_vec(),
        b">".to_vec(),
        b"</status>".to_vec(),
        b"</reason>".to_vec(),
        b"<reason>".to_vec(),
        b"&".to_vec(),
        b"&amp;".to_vec(),
        b"&#x0;".to_vec(),
        b"\"".to_vec(),
        b"<![CDATA[".to_vec(),
        b"<!--".to_vec(),
        b"\xff".to_vec(),
        b"\xe2\x82".to_vec(),
        b"99999999999999999999999".to_vec(),
    ]);
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop_oneof![prop::collection::vec(any::<u8>(), 1..8), interesting]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 1usize..60).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    let len = doc.len().max(1);
    match m {
        Mutation::Truncate(i) => doc.truncate(i % len),
        Mutation::Flip(i, b) => {
            if !doc.is_empty() {
                let i = i % doc.len();
                doc[i] = *b;
            }
        }
        Mutation::Insert(i, bytes) => {
            let i = i % (doc.len() + 1);
            doc.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = i % len;
            let end = (i + n).min(doc.len());
            if i < end {
                doc.drain(i..end);
            }
        }
        Mutation::Duplicate(i, n) => {
            let i = i % len;
            let end = (i + n).min(doc.len());
            if i < end {
                let copy = doc[i..end].to_vec();
                doc.splice(end..end, copy);
            }
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn time(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn period() -> impl Strategy<Value = Period> {
    prop::sample::select(vec![
        Period::Minute,
        Period::Hour,
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Year,
        Period::Eternity,
    ])
}

fn report() -> impl Strategy<Value = UsageReport> {
    (
        "[a-zA-Z0-9_&<>\"' ü-]{1,12}",
        period(),
        0i64..4_000_000_000,
        0i64..4_000_000_000,
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(metric, period, s, e, max_value, current_value, exceeded)| {
                let eternity = period == Period::Eternity;
                UsageReport {
                    metric,
                    period,
                    period_start: (!eternity).then(|| time(s)),
                    period_end: (!eternity).then(|| time(e)),
                    max_value,
                    current_value,
                    exceeded,
                }
            },
        )
}

fn authorization() -> impl Strategy<Value = Authorization> {
    (
        any::<bool>(),
        // Reasons are written unescaped by the backend; any text without `</reason>`.
        "[a-zA-Z0-9 \"'&<>=?/.:ü😀]{0,40}",
        prop::option::of("[a-zA-Z0-9 &<>\"ü]{1,12}"),
        prop::collection::vec(report(), 0..6),
        prop::option::of(prop::collection::vec(
            ("[a-z_]{1,8}", prop::collection::vec("[a-z_0-9]{1,6}", 0..3)),
            0..4,
        )),
    )
        .prop_map(
            |(authorized, reason, plan, usage_reports, hierarchy)| Authorization {
                authorized,
                reason: (!authorized).then_some(reason),
                plan,
                usage_reports,
                application: None,
                app_keys: None,
                hierarchy: hierarchy.map(|h| {
                    h.into_iter()
                        .map(|(name, children)| HierarchyMetric { name, children })
                        .collect()
                }),
            },
        )
        .prop_filter("reason must not contain </reason>", |a| {
            a.reason.as_deref().is_none_or(|r| !r.contains("</reason>"))
        })
}

fn render(a: &Authorization) -> String {
    let fmt = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S %z").to_string();
    let mut s = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><status>"#);
    s += &format!("<authorized>{}</authorized>", a.authorized);
    if let Some(reason) = &a.reason {
        // As the backend does it: not escaped.
        s += &format!("<reason>{reason}</reason>");
    }
    s += &format!("<plan>{}</plan>", escape(a.plan.as_deref().unwrap_or("")));
    if !a.usage_reports.is_empty() {
        s += "<usage_reports>";
        for r in &a.usage_reports {
            s += &format!(
                r#"<usage_report metric="{}" period="{}"{}>"#,
                escape(&r.metric),
                r.period.as_str(),
                if r.exceeded {
                    r#" exceeded="true""#
                } else {
                    ""
                }
            );
            if let (Some(start), Some(end)) = (&r.period_start, &r.period_end) {
                s += &format!(
                    "<period_start>{}</period_start><period_end>{}</period_end>",
                    fmt(start),
                    fmt(end)
                );
            }
            s += &format!(
                "<max_value>{}</max_value><current_value>{}</current_value></usage_report>",
                r.max_value, r.current_value
            );
        }
        s += "</usage_reports>";
    }
    if let Some(h) = &a.hierarchy {
        s += "<hierarchy>";
        for m in h {
            s += &format!(
                r#"<metric name="{}" children="{}"/>"#,
                m.name,
                m.children.join(" ")
            );
        }
        s += "</hierarchy>";
    }
    s += "</status>";
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_both(&bytes);
    }

    #[test]
    fn arbitrary_markup_never_panics(text in r#"[<>/a-z_="'&#;!\[\]? -]{0,200}"#) {
        parse_both(text.as_bytes());
        let wrapped = format!("<status><authorized>true</authorized>{text}</status>");
        parse_both(wrapped.as_bytes());
    }

    #[test]
    fn mutated_documents_never_panic(
        sample in prop::sample::select(SAMPLES.to_vec()),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut doc = sample.to_vec();
        for m in &mutations {
            apply(&mut doc, m);
        }
        parse_both(&doc);
    }

    #[test]
    fn truncated_documents_are_errors(
        sample in prop::sample::select(SAMPLES[..5].to_vec()),
        cut in any::<prop::sample::Index>(),
    ) {
        let sample = sample.trim_ascii_end();
        let len = cut.index(sample.len());
        let err = parse_authorization(&sample[..len]);
        prop_assert!(err.is_err());
        check_error(&err.unwrap_err());
    }

    #[test]
    fn rendered_documents_parse_back(a in authorization()) {
        let doc = render(&a);
        let parsed = parse_authorization(doc.as_bytes());
        prop_assert_eq!(parsed.as_ref().ok(), Some(&a), "{}", doc);
    }
}
