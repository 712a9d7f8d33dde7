//! [`Decision`]: allow with an [`AuthContext`], or deny with a [`Denial`].

use std::sync::Arc;

use crate::{Usage, xml::UsageReport};

/// The kinds of denial, each with its own configurable response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenialKind {
    /// The backend rejected the credentials or the request (403).
    AuthFailed,
    /// No credentials in the request (401).
    AuthMissing,
    /// A usage limit would be passed (429).
    LimitsExceeded,
    /// No mapping rule matched (404).
    NoMatch,
    /// The backend could not be asked and the failure policy is closed (503).
    BackendUnavailable,
    /// The request is ambiguous (a path servers read differently, a query
    /// longer than the mapping rules read) and was refused before any backend
    /// call (400).
    BadRequest,
}

/// Rate-limit figures for the `RateLimit-*` response headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// The limit (`RateLimit-Limit`).
    pub limit: u64,
    /// Calls left (`RateLimit-Remaining`).
    pub remaining: u64,
    /// Seconds until the window resets (`RateLimit-Reset`).
    pub reset: u64,
    /// Length of the window in seconds, when known (for `RateLimit-Policy`).
    pub window: Option<u64>,
}

/// Why a request was denied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Denial {
    /// The kind, which selects the response.
    pub kind: DenialKind,
    /// The backend's error code or rejection reason, when there is one
    /// (e.g. `user_key_invalid`, `limits_exceeded`). Never contains a secret.
    pub reason: Option<String>,
    /// Seconds until the exceeded limit resets (`Retry-After`), for 429.
    pub retry_after: Option<u64>,
    /// Rate-limit figures to show, when known.
    pub rate_limit: Option<RateLimit>,
}

impl Denial {
    /// A denial of `kind` with no further detail.
    pub fn new(kind: DenialKind) -> Self {
        Denial {
            kind,
            reason: None,
            retry_after: None,
            rate_limit: None,
        }
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Which kind of credential the caller presented (its value is never kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// A user key (backend_version 1).
    UserKey,
    /// An application id, with or without its key (backend_version 2).
    AppId,
    /// An OAuth/OIDC access token, resolved to its client's app id
    /// (backend_version oauth).
    AccessToken,
}

/// What the handler of an allowed request can learn about its caller.
///
/// Inserted into the request's extensions by both adapters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthContext {
    /// The service id.
    pub service_id: Arc<str>,
    /// The application id (app_id and oauth modes) — `None` in user_key mode.
    pub app_id: Option<String>,
    /// The kind of credential the caller used (its value is not kept here).
    pub credential: CredentialKind,
    /// The application's plan, when the backend named it.
    pub plan: Option<String>,
    /// The usage reported for this request.
    pub usage: Usage,
    /// Indices of the matched mapping rules.
    pub matched_rules: Vec<usize>,
    /// The plan's limits and counters, when the backend sent them.
    pub usage_reports: Vec<UsageReport>,
    /// Rate-limit figures for the response headers, when known.
    pub rate_limit: Option<RateLimit>,
    /// Allowed by the failure policy while the backend was unavailable.
    pub degraded: bool,
}

impl AuthContext {
    /// A context for a caller of `service_id` that used a `credential`, with
    /// no application id, plan, usage, matched rules or limits yet (set the
    /// public fields for the rest). The engine makes these; this is for
    /// tests of code that reads them.
    ///
    /// ```
    /// use threescale_core::{AuthContext, CredentialKind};
    /// let mut context = AuthContext::new("42", CredentialKind::UserKey);
    /// context.plan = Some("basic".into());
    /// assert!(!context.degraded);
    /// ```
    pub fn new(service_id: impl Into<Arc<str>>, credential: CredentialKind) -> Self {
        AuthContext {
            service_id: service_id.into(),
            app_id: None,
            credential,
            plan: None,
            usage: Usage::new(),
            matched_rules: Vec::new(),
            usage_reports: Vec::new(),
            rate_limit: None,
            degraded: false,
        }
    }
}

/// The engine's verdict on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Allow(Box<AuthContext>),
    /// Answer with the response configured for the denial.
    Deny(Denial),
    /// The path is configured to bypass 3scale.
    Bypass,
}

impl Decision {
    /// Whether the request may go on.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Decision::Deny(_))
    }
}
