//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): install any recorder (Prometheus, StatsD, OpenTelemetry, …) and
//! the engine's figures appear in it. Without the feature, or without a
//! recorder, nothing is recorded and nothing is paid but a function call.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `threescale_decisions_total` | counter | `outcome` (`allowed`, `denied`, `bypassed`), `kind` (the denial kind's key, e.g. `auth_failed`, `limits_exceeded`; `none` when allowed or bypassed), `degraded` (`true` when allowed by the failure policy during an outage) | checked requests |
//! | `threescale_backend_calls_total` | counter | `call` (`authorize`, `authrep`, `oauth_authorize`, `oauth_authrep`, `report`), `status` (the HTTP status, e.g. `200`, `409`, `202`, `403`, `503`; `transport` when no answer came: refused, broken, timed out) | calls to the Service Management API (a report counts once per POST) |
//! | `threescale_backend_call_duration_seconds` | histogram | `call` | time from sending a call to its whole answer (or its failure) |
//! | `threescale_cache_total` | counter | `event` (`hit`: decided from the cache; `miss`: the backend was asked; `fill`: a miss that put an authorization into the cache) | cached mode's authorization cache |
//! | `threescale_report_queue_applications` | gauge | – | applications with usage waiting to be reported |
//! | `threescale_report_queue_bytes` | gauge | – | approximate bytes of that usage |
//! | `threescale_report_transactions_total` | counter | `result` (`reported`: accepted by the backend; `failed`: in a POST that failed, kept for retry; `dropped`: refused by a full buffer, given up after two timeouts, or of an application the backend does not know) | report transactions |
//! | `threescale_backend_outage` | gauge | `service_id` | `1` while the backend is failing (unreachable, timing out, 5xx), `0` once it answers again |
//!
//! No label holds a credential, an application id or a path: every label has
//! a few fixed values.
//!
//! With `metrics-exporter-prometheus` (see the axum example), once
//! `PrometheusBuilder::new().install_recorder()` has run and requests went
//! through, the handle's `render()` holds lines such as:
//!
//! ```text
//! threescale_decisions_total{outcome="allowed",kind="none",degraded="false"} 2
//! ```

#[cfg(feature = "metrics")]
use ::metrics::{counter, gauge, histogram};

use std::time::Duration;

/// One decision.
#[inline]
pub(crate) fn decision(outcome: &'static str, kind: &'static str, degraded: bool) {
    #[cfg(feature = "metrics")]
    match (outcome, kind, degraded) {
        // The common outcome with literal labels: a static key, no allocation.
        ("allowed", "none", false) => counter!(
            "threescale_decisions_total",
            "outcome" => "allowed",
            "kind" => "none",
            "degraded" => "false"
        )
        .increment(1),
        _ => counter!(
            "threescale_decisions_total",
            "outcome" => outcome,
            "kind" => kind,
            "degraded" => if degraded { "true" } else { "false" },
        )
        .increment(1),
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (outcome, kind, degraded);
}

/// One backend call with its answer's status (`None`: no answer) and duration.
#[inline]
pub(crate) fn backend_call(call: &'static str, status: Option<u16>, elapsed: Duration) {
    #[cfg(feature = "metrics")]
    {
        let status = match status {
            Some(status) => ::metrics::SharedString::from(status_label(status)),
            None => ::metrics::SharedString::const_str("transport"),
        };
        counter!("threescale_backend_calls_total", "call" => call, "status" => status).increment(1);
        histogram!("threescale_backend_call_duration_seconds", "call" => call)
            .record(elapsed.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (call, status, elapsed);
}

/// A status as a label without allocating for the usual ones.
#[cfg(feature = "metrics")]
fn status_label(status: u16) -> std::borrow::Cow<'static, str> {
    let fixed = match status {
        200 => "200",
        202 => "202",
        400 => "400",
        403 => "403",
        404 => "404",
        409 => "409",
        422 => "422",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        other => return std::borrow::Cow::Owned(other.to_string()),
    };
    std::borrow::Cow::Borrowed(fixed)
}

/// A cache event: `hit`, `miss` or `fill`.
#[inline]
pub(crate) fn cache(event: &'static str) {
    #[cfg(feature = "metrics")]
    match event {
        // Literal labels: a static key, no allocation per request.
        "hit" => counter!("threescale_cache_total", "event" => "hit").increment(1),
        "miss" => counter!("threescale_cache_total", "event" => "miss").increment(1),
        _ => counter!("threescale_cache_total", "event" => event).increment(1),
    }
    #[cfg(not(feature = "metrics"))]
    let _ = event;
}

/// The report queue's depth now.
#[inline]
pub(crate) fn report_queue(applications: usize, bytes: usize) {
    #[cfg(feature = "metrics")]
    {
        gauge!("threescale_report_queue_applications").set(applications as f64);
        gauge!("threescale_report_queue_bytes").set(bytes as f64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (applications, bytes);
}

/// `n` report transactions with a `result`: `reported`, `failed` or `dropped`.
#[inline]
pub(crate) fn transactions(result: &'static str, n: usize) {
    #[cfg(feature = "metrics")]
    if n > 0 {
        counter!("threescale_report_transactions_total", "result" => result).increment(n as u64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (result, n);
}

/// The backend is failing (`true`) or answering again (`false`) for a service.
#[inline]
pub(crate) fn outage(service_id: &str, failing: bool) {
    #[cfg(feature = "metrics")]
    gauge!("threescale_backend_outage", "service_id" => service_id.to_string()).set(if failing {
        1.0
    } else {
        0.0
    });
    #[cfg(not(feature = "metrics"))]
    let _ = (service_id, failing);
}
