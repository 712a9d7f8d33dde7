//! The one decision path: a backend answer, or a backend failure, becomes a
//! [`Verdict`] (allow, deny with a [`DenialKind`], or the
//! [`FailurePolicy`]'s answer to an outage). Sync mode and Cached mode both
//! decide here; the engine applies counters and headers afterwards.
//!
//! [`Decider`] is the narrow handle the engine builds and the cache uses:
//! the failure policy, the reporter, the outage log and the backend call
//! counters, nothing else of the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{
    Denial, DenialKind, FailurePolicy, Usage,
    backend::{AppCredentials, AuthRequest, AuthResponse, BackendClient, BackendError, Extensions},
    credentials::BackendVersion,
    headers,
    outage_log::OutageLog,
    report::Reporter,
};

/// An allowed request's details, before it becomes an [`crate::AuthContext`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Allowed {
    pub(crate) plan: Option<Arc<str>>,
    pub(crate) usage_reports: Vec<crate::UsageReport>,
    pub(crate) rate_limit: Option<crate::RateLimit>,
    /// Admitted by the failure policy while the backend was unavailable,
    /// without its word on the application.
    pub(crate) degraded: bool,
    /// The usage still has to be reported (cached mode, or allowed during an outage).
    pub(crate) report_later: bool,
}

/// A decision before counters and headers are applied.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    Allow(Allowed),
    Deny(Denial),
}

impl Verdict {
    /// Allowed during an outage without the backend's word: the usage is kept
    /// and checked before it joins a report.
    pub(crate) fn admitted_unconfirmed() -> Self {
        Verdict::Allow(Allowed {
            degraded: true,
            report_later: true,
            ..Allowed::default()
        })
    }

    /// Refused because the backend cannot be asked (503 by default).
    pub(crate) fn unavailable() -> Self {
        Verdict::Deny(
            Denial::new(DenialKind::BackendUnavailable).with_reason("backend_unavailable"),
        )
    }
}

/// What the cache knows of an application when the backend cannot be asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// Nothing usable: no entry (always so in Sync mode), or the request
    /// names a metric the backend has not accepted yet.
    Nothing,
    /// An answer within its TTL.
    Fresh,
    /// An answer whose TTL has ended.
    Expired,
}

/// What to do for one request while the backend is unavailable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutageAction {
    /// Decide from the cached answer (allowed with limits counted, or denied).
    UseCached,
    /// Admit, keeping the usage to check and report later.
    Admit,
    /// Deny with `BackendUnavailable`.
    Refuse,
}

/// The one outage table (see [`FailurePolicy`]): per policy, what the
/// cache's knowledge of the application is worth while the backend is down.
pub(crate) const fn during_outage(policy: FailurePolicy, known: Known) -> OutageAction {
    match (policy, known) {
        (_, Known::Fresh) => OutageAction::UseCached,
        (FailurePolicy::Closed, Known::Expired) => OutageAction::Refuse,
        (FailurePolicy::Resilient | FailurePolicy::Open, Known::Expired) => OutageAction::UseCached,
        (FailurePolicy::Open, Known::Nothing) => OutageAction::Admit,
        (FailurePolicy::Closed | FailurePolicy::Resilient, Known::Nothing) => OutageAction::Refuse,
    }
}

/// The backend a check talks to: the client, the service's backend version,
/// and the request's referrer (sent with every auth call of the check).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backend<'a> {
    pub(crate) client: &'a BackendClient,
    pub(crate) version: BackendVersion,
    pub(crate) referrer: Option<&'a str>,
}

/// The narrow handle of the decision path: what deciding needs from the
/// engine (failure policy, reporter, outage log, backend counters).
#[derive(Debug)]
pub(crate) struct Decider {
    service_id: Arc<str>,
    policy: FailurePolicy,
    reporter: Reporter,
    outage_log: OutageLog,
    backend_failures: AtomicU64,
    backend_calls: AtomicU64,
}

impl Decider {
    pub(crate) fn new(service_id: Arc<str>, policy: FailurePolicy, reporter: Reporter) -> Self {
        Decider {
            service_id,
            policy,
            reporter,
            outage_log: OutageLog::default(),
            backend_failures: AtomicU64::new(0),
            backend_calls: AtomicU64::new(0),
        }
    }

    /// The failure policy.
    pub(crate) fn policy(&self) -> FailurePolicy {
        self.policy
    }

    pub(crate) fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// Backend calls made and failed for outages: `(calls, failures)`.
    pub(crate) fn backend_counts(&self) -> (u64, u64) {
        (
            self.backend_calls.load(Ordering::Relaxed),
            self.backend_failures.load(Ordering::Relaxed),
        )
    }

    /// One authrep for the request (Sync mode), decided from the answer or
    /// by the failure policy. With `report_after` (response codes), an
    /// `authorize` carrying the usage as predicted usage instead: the usage
    /// is reported after the response, with its status.
    pub(crate) async fn authrep(
        &self,
        backend: Backend<'_>,
        credentials: &AppCredentials,
        usage: &Usage,
        report_after: bool,
    ) -> Verdict {
        let request = auth_request(credentials, Some(usage), false, backend.referrer);
        self.backend_calls.fetch_add(1, Ordering::Relaxed);
        let oauth = backend.version == BackendVersion::OAuth;
        let answer = match (report_after, oauth) {
            (false, false) => backend.client.authrep(&request).await,
            (false, true) => backend.client.oauth_authrep(&request).await,
            (true, false) => backend.client.authorize(&request).await,
            (true, true) => backend.client.oauth_authorize(&request).await,
        };
        match answer {
            Ok(response) => {
                self.answered();
                from_answer(&response, report_after)
            }
            Err(error) => match self.failed(&error, self.policy.outage_line()) {
                Some(denial) => Verdict::Deny(denial),
                None => self.during_outage(Known::Nothing, || None),
            },
        }
    }

    /// One `authorize` (Cached mode), with the hierarchy, limit headers and
    /// rejection reason extensions, and `usage` as predicted usage.
    pub(crate) async fn authorize(
        &self,
        backend: Backend<'_>,
        credentials: &AppCredentials,
        usage: Option<&Usage>,
    ) -> Result<AuthResponse, BackendError> {
        let request = auth_request(
            credentials,
            usage.filter(|u| !u.is_empty()),
            true,
            backend.referrer,
        );
        self.backend_calls.fetch_add(1, Ordering::Relaxed);
        if backend.version == BackendVersion::OAuth {
            backend.client.oauth_authorize(&request).await
        } else {
            backend.client.authorize(&request).await
        }
    }

    /// The backend answered: ends an outage in the log.
    pub(crate) fn answered(&self) {
        self.outage_log.recovered(&self.service_id);
    }

    /// A backend call failed. A failure the request caused is its refusal
    /// (returned); an outage is counted and logged (`what`, rate-limited),
    /// and `None` is returned.
    pub(crate) fn failed(&self, error: &BackendError, what: &str) -> Option<Denial> {
        if !error.is_outage() {
            return Some(refusal(error));
        }
        self.backend_failures.fetch_add(1, Ordering::Relaxed);
        self.outage_log.failed(&self.service_id, error, what);
        None
    }

    /// The verdict while the backend is unavailable, given what is `known`
    /// of the application; `cached` decides from the cached answer (`None`
    /// when it cannot, which counts as knowing nothing).
    pub(crate) fn during_outage(
        &self,
        known: Known,
        cached: impl FnOnce() -> Option<Verdict>,
    ) -> Verdict {
        decide_outage(self.policy, known, cached)
    }
}

/// [`during_outage`] applied: the verdict for one request.
fn decide_outage(
    policy: FailurePolicy,
    known: Known,
    cached: impl FnOnce() -> Option<Verdict>,
) -> Verdict {
    let action = match during_outage(policy, known) {
        OutageAction::UseCached => match cached() {
            Some(verdict) => return verdict,
            None => during_outage(policy, Known::Nothing),
        },
        action => action,
    };
    match action {
        OutageAction::Admit => Verdict::admitted_unconfirmed(),
        OutageAction::Refuse | OutageAction::UseCached => Verdict::unavailable(),
    }
}

impl FailurePolicy {
    /// The outage log line of a failed per-request call.
    fn outage_line(self) -> &'static str {
        match self {
            FailurePolicy::Closed => "3scale backend unavailable (failure policy closed)",
            FailurePolicy::Resilient => "3scale backend unavailable (failure policy resilient)",
            FailurePolicy::Open => "3scale backend unavailable (failure policy open)",
        }
    }
}

fn auth_request(
    credentials: &AppCredentials,
    usage: Option<&Usage>,
    cache: bool,
    referrer: Option<&str>,
) -> AuthRequest {
    AuthRequest {
        credentials: credentials.clone(),
        usage: usage.cloned(),
        referrer: referrer.map(str::to_string),
        redirect: None,
        log_code: None,
        service_id: None,
        extensions: Extensions {
            hierarchy: cache,
            limit_headers: true,
            rejection_reason_header: true,
            ..Extensions::default()
        },
    }
}

/// The denial for a backend failure the request itself caused (not an outage,
/// see [`BackendError::is_outage`]): authentication failed, with the backend's
/// error code as reason when it gave one.
pub(crate) fn refusal(error: &BackendError) -> Denial {
    let denial = Denial::new(DenialKind::AuthFailed);
    match error {
        BackendError::Api { status, code, .. } => {
            tracing::debug!(%status, %code, "3scale backend refused the request");
            denial.with_reason(code.clone())
        }
        BackendError::Request(reason) => {
            tracing::debug!(%reason, "3scale backend call refused before sending");
            denial.with_reason("request_too_large")
        }
        // A configuration error, not the request's fault and not an outage:
        // refused as unavailable whatever the failure policy, and said loudly.
        BackendError::Tls(reason) => {
            tracing::error!(%reason, "3scale backend TLS trust failure; requests are refused");
            Denial::new(DenialKind::BackendUnavailable).with_reason("backend_tls_untrusted")
        }
        error => {
            tracing::debug!(%error, "3scale backend call failed because of the request");
            denial
        }
    }
}

/// Maps a backend answer (200 or 409) to a verdict, as the gateway does:
/// 200 allows; `limits_exceeded` denies with 429 and `Retry-After`, except on a
/// zero limit (a disabled metric), which is 403; any other denial is 403.
pub(crate) fn from_answer(response: &AuthResponse, report_later: bool) -> Verdict {
    let authorization = response.authorization.as_ref();
    let usage_reports = authorization
        .map(|a| a.usage_reports.clone())
        .unwrap_or_default();
    let rate_limit = response
        .limit_headers
        .as_ref()
        .and_then(|h| headers::rate_limit_from(h, &usage_reports));
    if response.is_authorized() {
        return Verdict::Allow(Allowed {
            plan: authorization.and_then(|a| a.plan.as_deref()).map(Arc::from),
            usage_reports,
            rate_limit,
            degraded: false,
            report_later,
        });
    }
    let reason = rejection_code(response);
    let limits = reason.as_deref() == Some("limits_exceeded");
    let disabled_metric = response
        .limit_headers
        .as_ref()
        .and_then(|h| h.max_value)
        .map(|max| max == 0)
        .unwrap_or_else(|| {
            usage_reports
                .iter()
                .any(|r| r.max_value == 0 && (r.exceeded || r.current_value > 0))
        });
    let mut denial = if limits && !disabled_metric {
        let mut denial = Denial::new(DenialKind::LimitsExceeded);
        denial.retry_after = response
            .limit_headers
            .as_ref()
            .filter(|h| h.reset > 0)
            .map(|h| h.reset as u64);
        denial.rate_limit = rate_limit;
        denial
    } else {
        Denial::new(DenialKind::AuthFailed)
    };
    denial.reason = reason;
    Verdict::Deny(denial)
}

/// The error code for a denial reason text of the `<status>` document.
/// The backend's error code for a denial: its `3scale-rejection-reason`
/// header, or the code of the reason in its answer's body.
pub(crate) fn rejection_code(response: &AuthResponse) -> Option<String> {
    response.rejection_reason.clone().or_else(|| {
        response
            .authorization
            .as_ref()
            .and_then(|a| a.reason.as_deref())
            .map(reason_code)
    })
}

fn reason_code(reason: &str) -> String {
    let code = match reason {
        "usage limits are exceeded" => "limits_exceeded",
        "application is not active" => "application_not_active",
        "service is not active" => "service_not_active",
        "oauth is not enabled" => "oauth_not_enabled",
        r if r.starts_with("application key") => "application_key_invalid",
        r if r.starts_with("referrer") => "referrer_not_allowed",
        r if r.starts_with("redirect_uri") => "redirect_uri_invalid",
        r if r.starts_with("redirect_url") => "redirect_url_invalid",
        _ => "denied",
    };
    code.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one request gets, as the docs' table says it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Got {
        /// Allowed from the cached answer (limits counted, backend's word).
        Allowed,
        /// Denied from the cached answer (its own kind).
        Denied,
        /// Allowed without the backend's word, usage kept for checking.
        Admitted,
        /// 503, backend unavailable.
        Unavailable,
    }

    /// The cases of the table: what the cache held for the application.
    #[derive(Clone, Copy, Debug)]
    enum Case {
        KnownAllowed,
        KnownDenied,
        ExpiredAllowed,
        ExpiredDenied,
        Unknown,
    }

    const CASES: [Case; 5] = [
        Case::KnownAllowed,
        Case::KnownDenied,
        Case::ExpiredAllowed,
        Case::ExpiredDenied,
        Case::Unknown,
    ];

    const POLICIES: [FailurePolicy; 3] = [
        FailurePolicy::Closed,
        FailurePolicy::Resilient,
        FailurePolicy::Open,
    ];

    fn cached_answer(case: Case) -> Option<Verdict> {
        match case {
            Case::KnownAllowed | Case::ExpiredAllowed => Some(Verdict::Allow(Allowed {
                plan: Some("basic".into()),
                report_later: true,
                ..Allowed::default()
            })),
            Case::KnownDenied | Case::ExpiredDenied => Some(Verdict::Deny(
                Denial::new(DenialKind::AuthFailed).with_reason("user_key_invalid"),
            )),
            Case::Unknown => None,
        }
    }

    fn got(verdict: Verdict) -> Got {
        match verdict {
            Verdict::Allow(a) if a.degraded => {
                assert!(a.report_later, "admitted usage is kept");
                assert_eq!(a.plan, None);
                Got::Admitted
            }
            Verdict::Allow(a) => {
                assert_eq!(a.plan.as_deref(), Some("basic"));
                Got::Allowed
            }
            Verdict::Deny(d) if d.kind == DenialKind::BackendUnavailable => {
                assert_eq!(d.reason.as_deref(), Some("backend_unavailable"));
                Got::Unavailable
            }
            Verdict::Deny(d) => {
                assert_eq!(d.reason.as_deref(), Some("user_key_invalid"));
                Got::Denied
            }
        }
    }

    /// Cached mode: what the cache held decides, through the table.
    fn cached_mode(policy: FailurePolicy, case: Case) -> Got {
        let known = match case {
            Case::KnownAllowed | Case::KnownDenied => Known::Fresh,
            Case::ExpiredAllowed | Case::ExpiredDenied => Known::Expired,
            Case::Unknown => Known::Nothing,
        };
        got(decide_outage(policy, known, || cached_answer(case)))
    }

    /// Sync mode holds nothing: every case is an unknown application.
    fn sync_mode(policy: FailurePolicy, case: Case) -> Got {
        let _ = case;
        got(decide_outage(policy, Known::Nothing, || {
            panic!("sync mode has no cached answer")
        }))
    }

    #[test]
    fn every_policy_and_case_in_cached_mode() {
        use Got::*;
        let expected = |policy, case| match (policy, case) {
            (_, Case::KnownAllowed) => Allowed,
            (_, Case::KnownDenied) => Denied,
            (FailurePolicy::Closed, Case::ExpiredAllowed | Case::ExpiredDenied) => Unavailable,
            (_, Case::ExpiredAllowed) => Allowed,
            (_, Case::ExpiredDenied) => Denied,
            (FailurePolicy::Open, Case::Unknown) => Admitted,
            (_, Case::Unknown) => Unavailable,
        };
        for policy in POLICIES {
            for case in CASES {
                assert_eq!(
                    cached_mode(policy, case),
                    expected(policy, case),
                    "{policy:?} {case:?}"
                );
            }
        }
    }

    #[test]
    fn every_policy_and_case_in_sync_mode() {
        for policy in POLICIES {
            for case in CASES {
                let want = match policy {
                    FailurePolicy::Open => Got::Admitted,
                    _ => Got::Unavailable,
                };
                assert_eq!(sync_mode(policy, case), want, "{policy:?} {case:?}");
            }
        }
    }

    /// The literal table, row by row, as the docs print it.
    #[test]
    fn the_table() {
        use Known::*;
        use OutageAction::*;
        let rows = [
            (FailurePolicy::Closed, [UseCached, Refuse, Refuse]),
            (FailurePolicy::Resilient, [UseCached, UseCached, Refuse]),
            (FailurePolicy::Open, [UseCached, UseCached, Admit]),
        ];
        for (policy, actions) in rows {
            for (known, action) in [Fresh, Expired, Nothing].into_iter().zip(actions) {
                assert_eq!(during_outage(policy, known), action, "{policy:?} {known:?}");
            }
        }
    }

    /// A cached entry that cannot decide (a failed fill, no answer kept)
    /// counts as knowing nothing: never an admission by accident.
    #[test]
    fn a_cached_entry_that_cannot_decide_is_unknown() {
        for policy in POLICIES {
            for known in [Known::Fresh, Known::Expired] {
                let want = match policy {
                    FailurePolicy::Open => Got::Admitted,
                    _ => Got::Unavailable,
                };
                assert_eq!(
                    got(decide_outage(policy, known, || None)),
                    want,
                    "{policy:?} {known:?}"
                );
            }
        }
    }

    #[test]
    fn a_failure_the_request_caused_is_a_refusal_not_an_outage() {
        let client = BackendClient::builder(crate::ProviderAuth::service_token("t", "1"))
            .url("http://127.0.0.1:9")
            .build()
            .unwrap();
        let reporter = Reporter::new(client, None, crate::report::ReporterSettings::default());
        let decider = Decider::new("1".into(), FailurePolicy::Open, reporter);
        let error = BackendError::Request("URI too long".into());
        let denial = decider.failed(&error, "x").expect("refused");
        assert_eq!(denial.kind, DenialKind::AuthFailed);
        assert_eq!(denial.reason.as_deref(), Some("request_too_large"));
        assert_eq!(decider.backend_counts(), (0, 0));
        let outage = BackendError::Timeout(std::time::Duration::from_secs(1));
        assert!(decider.failed(&outage, "x").is_none());
        assert_eq!(decider.backend_counts(), (0, 1));
    }
}
