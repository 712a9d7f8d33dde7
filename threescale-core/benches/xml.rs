//! Parsing the backend's answers: the crate's parser against a straightforward
//! serde-based parse (quick-xml's serde deserializer into derived structs, then
//! converted into the same `Authorization` / `ErrorDocument` values, timestamps
//! included), on the same documents, in the same run.
//!
//! The documents are built the way apisonator writes them (string
//! concatenation, no white space, reports grouped by metric, periods from
//! eternity to minute): a small authorize answer, 20 usage reports with the
//! hierarchy extension, eternity reports, a limits denial and an `<error>`
//! document. Both parsers must give equal values; that is asserted once
//! before timing. Target: the crate's parser at least 10x faster.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use threescale_core::xml::{
    AppKeys, Authorization, ErrorDocument, HierarchyMetric, OAuthApplication, Period, UsageReport,
    parse_authorization, parse_error,
};

const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// One `<usage_report>` as the backend writes it.
fn report(metric: &str, period: &str, max: u64, current: u64) -> String {
    let times = match period {
        "eternity" => None,
        "year" => Some(("2010-01-01 00:00:00 +0000", "2011-01-01 00:00:00 +0000")),
        "month" => Some(("2010-05-01 00:00:00 +0000", "2010-06-01 00:00:00 +0000")),
        "week" => Some(("2010-05-10 00:00:00 +0000", "2010-05-17 00:00:00 +0000")),
        "day" => Some(("2010-05-15 00:00:00 +0000", "2010-05-16 00:00:00 +0000")),
        "hour" => Some(("2010-05-15 13:00:00 +0000", "2010-05-15 14:00:00 +0000")),
        "minute" => Some(("2010-05-15 13:33:00 +0000", "2010-05-15 13:34:00 +0000")),
        _ => unreachable!(),
    };
    let exceeded = if current > max {
        r#" exceeded="true""#
    } else {
        ""
    };
    let mut out = format!(r#"<usage_report metric="{metric}" period="{period}"{exceeded}>"#);
    if let Some((start, end)) = times {
        out.push_str(&format!(
            "<period_start>{start}</period_start><period_end>{end}</period_end>"
        ));
    }
    out.push_str(&format!(
        "<max_value>{max}</max_value><current_value>{current}</current_value></usage_report>"
    ));
    out
}

/// The documents: name and bytes.
fn documents() -> Vec<(&'static str, String)> {
    let small = format!(
        "{DECLARATION}<status><authorized>true</authorized><plan>Basic</plan><usage_reports>{}</usage_reports></status>",
        report("hits", "minute", 100, 7)
    );

    // 10 metrics (hits and nine methods of it), two limits each: 20 reports,
    // and the hierarchy extension (one <metric> per report).
    let metrics: Vec<String> = std::iter::once("hits".to_string())
        .chain((1..10).map(|i| format!("method_{i}")))
        .collect();
    let mut reports = String::new();
    let mut hierarchy = String::new();
    for (i, metric) in metrics.iter().enumerate() {
        let children = if i == 0 {
            metrics[1..].join(" ")
        } else {
            String::new()
        };
        for (period, max) in [("day", 100_000), ("minute", 1_000)] {
            reports.push_str(&report(metric, period, max, 17 * i as u64 + 3));
            hierarchy.push_str(&format!(
                r#"<metric name="{metric}" children="{children}"/>"#
            ));
        }
    }
    let twenty = format!(
        "{DECLARATION}<status><authorized>true</authorized><plan>Enterprise</plan><usage_reports>{reports}</usage_reports><hierarchy>{hierarchy}</hierarchy></status>"
    );

    let eternity = format!(
        "{DECLARATION}<status><authorized>true</authorized><plan>Lifetime</plan><usage_reports>{}{}{}</usage_reports></status>",
        report("hits", "eternity", 1_000_000, 123_456),
        report("hits", "month", 10_000, 42),
        report("downloads", "eternity", 500, 499),
    );

    let denial = format!(
        "{DECLARATION}<status><authorized>false</authorized><reason>usage limits are exceeded</reason><plan>Basic</plan><usage_reports>{}{}</usage_reports></status>",
        report("hits", "day", 4, 5),
        report("hits", "minute", 100, 5),
    );

    let error = format!(
        r#"{DECLARATION}<error code="application_not_found">application with id="boo" was not found</error>"#
    );

    vec![
        ("small", small),
        ("20_reports_hierarchy", twenty),
        ("eternity", eternity),
        ("denial", denial),
        ("error", error),
    ]
}

// The serde-based parser: derived structs for the same documents.

#[derive(Deserialize)]
struct SStatus {
    authorized: bool,
    reason: Option<String>,
    plan: Option<String>,
    application: Option<SApplication>,
    usage_reports: Option<SUsageReports>,
    app_keys: Option<SAppKeys>,
    hierarchy: Option<SHierarchy>,
}

#[derive(Deserialize)]
struct SApplication {
    #[serde(default)]
    id: String,
    #[serde(default)]
    key: String,
    #[serde(default, alias = "redirect_uri")]
    redirect_url: String,
}

#[derive(Deserialize)]
struct SUsageReports {
    #[serde(rename = "usage_report", default)]
    reports: Vec<SUsageReport>,
}

#[derive(Deserialize)]
struct SUsageReport {
    #[serde(rename = "@metric")]
    metric: String,
    #[serde(rename = "@period")]
    period: String,
    #[serde(rename = "@exceeded", default)]
    exceeded: Option<String>,
    period_start: Option<String>,
    period_end: Option<String>,
    max_value: u64,
    current_value: u64,
}

#[derive(Deserialize)]
struct SAppKeys {
    #[serde(rename = "@app", default)]
    app: String,
    #[serde(rename = "@svc", default)]
    svc: String,
    #[serde(rename = "key", default)]
    keys: Vec<SKey>,
}

#[derive(Deserialize)]
struct SKey {
    #[serde(rename = "@id")]
    id: String,
}

#[derive(Deserialize)]
struct SHierarchy {
    #[serde(rename = "metric", default)]
    metrics: Vec<SMetric>,
}

#[derive(Deserialize)]
struct SMetric {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@children", default)]
    children: String,
}

#[derive(Deserialize)]
struct SError {
    #[serde(rename = "@code", default)]
    code: String,
    #[serde(rename = "$text", default)]
    message: String,
}

fn serde_time(text: Option<String>) -> Result<Option<DateTime<Utc>>, String> {
    text.map(|t| {
        DateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S %z")
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| e.to_string())
    })
    .transpose()
}

/// `<status>` through serde, into the crate's type.
fn serde_authorization(bytes: &[u8]) -> Result<Authorization, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let status: SStatus = quick_xml::de::from_str(text).map_err(|e| e.to_string())?;
    let usage_reports = status
        .usage_reports
        .map(|r| r.reports)
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            Ok(UsageReport {
                period: Period::parse(&r.period).ok_or("bad period")?,
                metric: r.metric,
                period_start: serde_time(r.period_start)?,
                period_end: serde_time(r.period_end)?,
                max_value: r.max_value,
                current_value: r.current_value,
                exceeded: r.exceeded.as_deref() == Some("true"),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Authorization {
        authorized: status.authorized,
        reason: status.reason,
        plan: status.plan.filter(|p| !p.is_empty()),
        usage_reports,
        application: status.application.map(|a| OAuthApplication {
            id: a.id,
            key: a.key,
            redirect_url: a.redirect_url,
        }),
        app_keys: status.app_keys.map(|k| AppKeys {
            app: k.app,
            service: k.svc,
            keys: k.keys.into_iter().map(|k| k.id).collect(),
        }),
        hierarchy: status.hierarchy.map(|h| {
            h.metrics
                .into_iter()
                .map(|m| HierarchyMetric {
                    children: m
                        .children
                        .split_ascii_whitespace()
                        .map(String::from)
                        .collect(),
                    name: m.name,
                })
                .collect()
        }),
    })
}

/// `<error>` through serde.
fn serde_error(bytes: &[u8]) -> Result<ErrorDocument, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let doc: SError = quick_xml::de::from_str(text).map_err(|e| e.to_string())?;
    Ok(ErrorDocument {
        code: doc.code,
        message: doc.message,
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("xml");
    for (name, doc) in documents() {
        let bytes = doc.as_bytes();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        if name == "error" {
            let ours = parse_error(bytes).expect("parses");
            assert_eq!(ours, serde_error(bytes).expect("serde parses"), "{name}");
            group.bench_function(format!("{name}/threescale"), |b| {
                b.iter(|| parse_error(black_box(bytes)))
            });
            group.bench_function(format!("{name}/serde"), |b| {
                b.iter(|| serde_error(black_box(bytes)))
            });
        } else {
            let ours = parse_authorization(bytes).expect("parses");
            assert_eq!(
                ours,
                serde_authorization(bytes).expect("serde parses"),
                "{name}"
            );
            if name == "20_reports_hierarchy" {
                assert_eq!(ours.usage_reports.len(), 20);
                assert_eq!(ours.hierarchy.as_ref().map(Vec::len), Some(20));
            }
            group.bench_function(format!("{name}/threescale"), |b| {
                b.iter(|| parse_authorization(black_box(bytes)))
            });
            group.bench_function(format!("{name}/serde"), |b| {
                b.iter(|| serde_authorization(black_box(bytes)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
