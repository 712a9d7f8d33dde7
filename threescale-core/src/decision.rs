//! [`Decision`]: allow with an [`AuthContext`], or deny with a [`Denial`].

use std::sync::Arc;

use crate::{Usage, xml::UsageReport};

/// The kinds of denial, each with its own configurable response.
///
/// Each kind knows its default response and its names in every configuration
/// source ([`DenialKind::key`], [`DenialKind::proxy_keys`]), so adding a kind
/// is its variant here, its row in the one table behind those methods (the
/// compiler asks for it) and its place at the end of [`DenialKind::ALL`]
/// (checked when compiling). In the project's file format a kind is written
/// as its [`key`](DenialKind::key) (`auth_failed`, `no_match`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// The backend could not be asked and the [`crate::FailurePolicy`] does
    /// not admit the request (503); also every check after `shutdown()`.
    BackendUnavailable,
    /// The request is ambiguous (a path servers read differently, a query
    /// longer than the mapping rules read) and was refused before any backend
    /// call (400).
    BadRequest,
}

/// The names of one denial kind's settings in an admin-portal proxy config
/// (`proxy.error_*`, `proxy.error_status_*`, `proxy.error_headers_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyErrorKeys {
    /// The body, e.g. `error_auth_failed`.
    pub body: &'static str,
    /// The status, e.g. `error_status_auth_failed`.
    pub status: &'static str,
    /// The `Content-Type`, e.g. `error_headers_auth_failed`.
    pub content_type: &'static str,
}

/// Everything the configuration knows about one [`DenialKind`].
struct DenialSpec {
    key: &'static str,
    status: http::StatusCode,
    body: &'static str,
    proxy: Option<ProxyErrorKeys>,
}

/// The proxy config keys of a kind named `$key` (the gateway's spelling).
macro_rules! proxy_keys {
    ($key:literal) => {
        Some(ProxyErrorKeys {
            body: concat!("error_", $key),
            status: concat!("error_status_", $key),
            content_type: concat!("error_headers_", $key),
        })
    };
}

impl DenialKind {
    /// Every kind, in the order of [`DenialKind::index`].
    pub const ALL: [DenialKind; 6] = [
        DenialKind::AuthFailed,
        DenialKind::AuthMissing,
        DenialKind::LimitsExceeded,
        DenialKind::NoMatch,
        DenialKind::BackendUnavailable,
        DenialKind::BadRequest,
    ];

    /// `ALL` lists the kinds in declaration order, so `index` is a position in it.
    const ALL_IN_ORDER: () = {
        let mut i = 0;
        while i < DenialKind::ALL.len() {
            assert!(DenialKind::ALL[i] as usize == i);
            i += 1;
        }
    };

    /// The one table of the kinds' defaults and configuration names.
    const fn spec(self) -> &'static DenialSpec {
        match self {
            DenialKind::AuthFailed => &DenialSpec {
                key: "auth_failed",
                status: http::StatusCode::FORBIDDEN,
                body: "Authentication failed",
                proxy: proxy_keys!("auth_failed"),
            },
            DenialKind::AuthMissing => &DenialSpec {
                key: "auth_missing",
                status: http::StatusCode::UNAUTHORIZED,
                body: "Authentication parameters missing",
                proxy: proxy_keys!("auth_missing"),
            },
            DenialKind::LimitsExceeded => &DenialSpec {
                key: "limits_exceeded",
                status: http::StatusCode::TOO_MANY_REQUESTS,
                body: "Limits exceeded",
                proxy: proxy_keys!("limits_exceeded"),
            },
            DenialKind::NoMatch => &DenialSpec {
                key: "no_match",
                status: http::StatusCode::NOT_FOUND,
                body: "No Mapping Rule matched",
                proxy: proxy_keys!("no_match"),
            },
            // The gateway has no setting for it: not read from proxy configs.
            DenialKind::BackendUnavailable => &DenialSpec {
                key: "backend_unavailable",
                status: http::StatusCode::SERVICE_UNAVAILABLE,
                body: "Service temporarily unavailable",
                proxy: None,
            },
            DenialKind::BadRequest => &DenialSpec {
                key: "bad_request",
                status: http::StatusCode::BAD_REQUEST,
                body: "Bad request",
                proxy: proxy_keys!("bad_request"),
            },
        }
    }

    /// This kind's position in [`DenialKind::ALL`].
    pub const fn index(self) -> usize {
        #[allow(clippy::let_unit_value)]
        let () = DenialKind::ALL_IN_ORDER;
        self as usize
    }

    /// Its name in the project's file format (`errors.<key>`) and in the
    /// `THREESCALE_ERROR_*_<KEY>` environment variables: `auth_failed`,
    /// `auth_missing`, `limits_exceeded`, `no_match`, `backend_unavailable`,
    /// `bad_request`.
    pub const fn key(self) -> &'static str {
        self.spec().key
    }

    /// The kind named `key` (see [`DenialKind::key`]).
    ///
    /// ```
    /// use threescale_core::DenialKind;
    /// assert_eq!(DenialKind::from_key("no_match"), Some(DenialKind::NoMatch));
    /// assert_eq!(DenialKind::from_key("teapot"), None);
    /// ```
    pub fn from_key(key: &str) -> Option<DenialKind> {
        DenialKind::ALL.into_iter().find(|kind| kind.key() == key)
    }

    /// Its settings' names in an admin-portal proxy config; `None` for a kind
    /// the gateway cannot configure (`BackendUnavailable`).
    pub const fn proxy_keys(self) -> Option<ProxyErrorKeys> {
        self.spec().proxy
    }

    /// The default status, as the gateway answers (503 for an unavailable backend).
    pub const fn default_status(self) -> http::StatusCode {
        self.spec().status
    }

    /// The default body.
    pub const fn default_body(self) -> &'static str {
        self.spec().body
    }

    /// Every kind's key, for error messages: `auth_failed, …, or bad_request`.
    pub(crate) fn key_list() -> String {
        let keys: Vec<&str> = DenialKind::ALL.iter().map(|k| k.key()).collect();
        match keys.split_last() {
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
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
    /// The service whose engine denied the request (set by the engine; `None`
    /// when an engine protecting several services found none for it). Its
    /// error responses answer the denial.
    pub service_id: Option<std::sync::Arc<str>>,
}

impl Denial {
    /// A denial of `kind` with no further detail.
    pub fn new(kind: DenialKind) -> Self {
        Denial {
            kind,
            reason: None,
            retry_after: None,
            rate_limit: None,
            service_id: None,
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
    pub plan: Option<Arc<str>>,
    /// The usage reported for this request.
    pub usage: Usage,
    /// Indices of the matched mapping rules.
    pub matched_rules: crate::mapping::RuleIndices,
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
            matched_rules: Default::default(),
            usage_reports: Vec::new(),
            rate_limit: None,
            degraded: false,
        }
    }
}

/// The engine's verdict on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
// Unboxed: an allowed request's context costs no allocation of its own; it
// is moved a few times, never copied per byte in a loop.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// Let the request through.
    Allow(AuthContext),
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
