//! The engine's `tracing` spans.
//!
//! - `threescale.check` (target `threescale::check`, level INFO), one per
//!   check: `service_id`; then `app_id` (app_id and oauth services only: never
//!   a user key, app key or token), `plan`, `rules` (the matched mapping
//!   rules, `METHOD pattern`), `usage`, `outcome` (`allowed`, `denied`,
//!   `bypassed`), `denial` and `reason` for a denial, `cache` (`hit` or
//!   `miss`, cached mode), `degraded`.
//! - `threescale.backend` (target `threescale::backend`, level INFO), one per
//!   call to the backend, inside the check's span when a check made it:
//!   `call`, `status`, `latency_ms`, `error` (redacted), `transactions` (a
//!   report POST).

use tracing::{Span, field::Empty};

use crate::{Denial, backend::AppCredentials, engine::ThreeScale, mapping::MatchResult};

const CHECK: &str = "threescale.check";

/// A new check span (disabled, and free, when no subscriber wants it).
pub(crate) fn check_span(service_id: &str) -> Span {
    tracing::info_span!(
        target: "threescale::check",
        "threescale.check",
        service_id,
        app_id = Empty,
        plan = Empty,
        rules = Empty,
        usage = Empty,
        outcome = Empty,
        denial = Empty,
        reason = Empty,
        cache = Empty,
        degraded = Empty,
    )
}

/// The current check span, if the current span is one.
fn current() -> Option<Span> {
    let span = Span::current();
    span.metadata()
        .is_some_and(|m| m.name() == CHECK)
        .then_some(span)
}

/// The cache's part in the current check: `hit` or `miss`.
pub(crate) fn record_cache(event: &'static str) {
    if let Some(span) = current() {
        span.record("cache", event);
    }
}

pub(crate) fn record_bypass(span: &Span) {
    span.record("outcome", "bypassed");
}

pub(crate) fn record_denial(denial: &Denial) {
    if let Some(span) = current() {
        span.record("outcome", "denied");
        span.record("denial", denial.kind.key());
        if let Some(reason) = &denial.reason {
            span.record("reason", reason.as_str());
        }
    }
}

pub(crate) fn record_allow(
    engine: &ThreeScale,
    credentials: &AppCredentials,
    plan: Option<&str>,
    matched: &MatchResult,
    degraded: bool,
) {
    let Some(span) = current() else { return };
    span.record("outcome", "allowed");
    span.record("degraded", degraded);
    if let AppCredentials::AppId { app_id, .. } = credentials {
        span.record("app_id", app_id.as_str());
    }
    if let Some(plan) = plan {
        span.record("plan", plan);
    }
    span.record("usage", tracing::field::display(&matched.usage));
    let service = engine.service();
    let rules: Vec<String> = matched
        .rules
        .iter()
        .filter_map(|&i| service.mapping_rules.rules().get(i))
        .map(|r| format!("{} {}", r.http_method, r.pattern))
        .collect();
    span.record("rules", tracing::field::display(rules.join(", ")));
}
