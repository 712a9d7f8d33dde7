//! The 3scale Service Management API client: authorize, authrep, report,
//! oauth_authorize, oauth_authrep (reqwest + rustls).
//!
//! One [`BackendClient`] holds one connection pool; clone it freely. Every
//! parameter name and value is percent-encoded, so no credential, metric name
//! or referrer can add or change a parameter. Answers are parsed by
//! [`crate::xml`]. Errors ([`BackendError`]) and `tracing` events never carry a
//! secret sent in the call (provider key, service token, app key, user key) nor
//! a URL with its query string: the backend echoes secrets in its messages, and
//! every occurrence is replaced by `***`.
//!
//! ```no_run
//! use threescale_core::backend::{AppCredentials, AuthRequest, BackendClient, ProviderAuth};
//! # async fn run() -> Result<(), threescale_core::backend::BackendError> {
//! let client = BackendClient::builder(ProviderAuth::service_token("token", "2555417777820"))
//!     .url("http://127.0.0.1:3001")
//!     .build()?;
//! let answer = client.authrep(&AuthRequest::new(AppCredentials::user_key("key"))).await?;
//! if answer.is_authorized() {
//!     // serve the request
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::{Secret, Usage, xml::Authorization};

mod client;
pub(crate) use client::parse_backend_url;
mod params;
pub(crate) mod redact;

use client::{Call, Inner};

/// The 3scale SaaS backend.
pub const DEFAULT_BACKEND_URL: &str = "https://su1.3scale.net";

/// How the client proves it may call the backend for a service.
///
/// ```
/// use threescale_core::backend::ProviderAuth;
/// let auth = ProviderAuth::service_token("token", "2555417777820");
/// assert_eq!(auth.service_id(), Some("2555417777820"));
/// let legacy = ProviderAuth::provider_key("key");
/// assert_eq!(legacy.service_id(), None);
/// assert_eq!(legacy.with_service_id("42").service_id(), Some("42"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProviderAuth {
    /// A service token with its service id (preferred).
    ServiceToken {
        /// The token.
        token: Secret,
        /// The service it belongs to.
        service_id: String,
    },
    /// A provider key (legacy), optionally with a service id (else the default service).
    ProviderKey {
        /// The key.
        key: Secret,
        /// Service id; `None` uses the provider's default service.
        service_id: Option<String>,
    },
}

impl ProviderAuth {
    /// A service token for `service_id`.
    pub fn service_token(token: impl Into<Secret>, service_id: impl Into<String>) -> Self {
        ProviderAuth::ServiceToken {
            token: token.into(),
            service_id: service_id.into(),
        }
    }

    /// A provider key (default service unless [`ProviderAuth::with_service_id`]).
    pub fn provider_key(key: impl Into<Secret>) -> Self {
        ProviderAuth::ProviderKey {
            key: key.into(),
            service_id: None,
        }
    }

    /// Sets the service id.
    pub fn with_service_id(self, id: impl Into<String>) -> Self {
        match self {
            ProviderAuth::ServiceToken { token, .. } => ProviderAuth::ServiceToken {
                token,
                service_id: id.into(),
            },
            ProviderAuth::ProviderKey { key, .. } => ProviderAuth::ProviderKey {
                key,
                service_id: Some(id.into()),
            },
        }
    }

    /// The service id, if set.
    pub fn service_id(&self) -> Option<&str> {
        match self {
            ProviderAuth::ServiceToken { service_id, .. } => Some(service_id),
            ProviderAuth::ProviderKey { service_id, .. } => service_id.as_deref(),
        }
    }

    /// The token or key.
    pub fn secret(&self) -> &Secret {
        match self {
            ProviderAuth::ServiceToken { token, .. } => token,
            ProviderAuth::ProviderKey { key, .. } => key,
        }
    }
}

/// An application's credentials.
///
/// ```
/// use threescale_core::backend::AppCredentials;
/// let v1 = AppCredentials::user_key("secret-key");
/// let v2 = AppCredentials::app_id_key("app", "secret-key");
/// assert_ne!(v1, v2);
/// assert!(!format!("{v1:?} {v2:?}").contains("secret-key"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AppCredentials {
    /// `user_key` (backend_version 1).
    UserKey(Secret),
    /// `app_id` with an optional `app_key` (backend_version 2 and oauth).
    AppId {
        /// Application id.
        app_id: String,
        /// Application key.
        app_key: Option<Secret>,
    },
}

impl AppCredentials {
    /// A user key.
    pub fn user_key(key: impl Into<Secret>) -> Self {
        AppCredentials::UserKey(key.into())
    }

    /// An app id without key.
    pub fn app_id(app_id: impl Into<String>) -> Self {
        AppCredentials::AppId {
            app_id: app_id.into(),
            app_key: None,
        }
    }

    /// An app id with its key.
    pub fn app_id_key(app_id: impl Into<String>, app_key: impl Into<Secret>) -> Self {
        AppCredentials::AppId {
            app_id: app_id.into(),
            app_key: Some(app_key.into()),
        }
    }
}

/// `redirect_url` or `redirect_uri` for the OAuth calls (ignored by the
/// others).
///
/// ```
/// use threescale_core::backend::{AppCredentials, AuthRequest, Redirect};
/// let mut request = AuthRequest::new(AppCredentials::app_id("client-id"));
/// request.redirect = Some(Redirect::Uri("https://example.com/cb".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// Sent as `redirect_url`.
    Url(String),
    /// Sent as `redirect_uri`.
    Uri(String),
}

/// The `3scale-options` extensions to ask for.
///
/// ```
/// use threescale_core::backend::Extensions;
/// let ext = Extensions { limit_headers: true, hierarchy: true, ..Extensions::default() };
/// assert_eq!(ext.header_value().as_deref(), Some("hierarchy=1&limit_headers=1"));
/// assert_eq!(Extensions::default().header_value(), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Extensions {
    /// `hierarchy=1`: add the `<hierarchy>` section.
    pub hierarchy: bool,
    /// `limit_headers=1`: `3scale-limit-*` response headers.
    pub limit_headers: bool,
    /// `rejection_reason_header=1`: `3scale-rejection-reason` on denials.
    pub rejection_reason_header: bool,
    /// `no_body=1`: empty response body.
    pub no_body: bool,
    /// `flat_usage=1`: no roll-up to parent metrics.
    pub flat_usage: bool,
    /// `list_app_keys=1`: add the `<app_keys>` section.
    pub list_app_keys: bool,
}

impl Extensions {
    /// Whether no option is on.
    ///
    /// ```
    /// use threescale_core::backend::Extensions;
    /// assert!(Extensions::default().is_empty());
    /// assert!(!Extensions { no_body: true, ..Extensions::default() }.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        *self == Extensions::default()
    }

    /// The `3scale-options` header value: `name=1` for each option that is on,
    /// joined by `&`; `None` when none is on (no header is sent then).
    pub fn header_value(&self) -> Option<String> {
        let options = [
            (self.hierarchy, "hierarchy"),
            (self.limit_headers, "limit_headers"),
            (self.rejection_reason_header, "rejection_reason_header"),
            (self.no_body, "no_body"),
            (self.flat_usage, "flat_usage"),
            (self.list_app_keys, "list_app_keys"),
        ];
        let mut value = String::new();
        for (on, name) in options {
            if on {
                if !value.is_empty() {
                    value.push('&');
                }
                value.push_str(name);
                value.push_str("=1");
            }
        }
        (!value.is_empty()).then_some(value)
    }
}

/// Parameters of authorize / authrep / oauth_authorize / oauth_authrep.
///
/// `redirect` is sent on the OAuth calls only and `log_code` on the authrep
/// calls only; `usage: None` (or an empty usage) sends no usage parameter.
///
/// ```
/// use threescale_core::{Usage, backend::{AppCredentials, AuthRequest}};
/// let mut usage = Usage::new();
/// usage.add("hits", 1).set("orders", 3);
/// let request = AuthRequest::new(AppCredentials::app_id_key("app", "key")).usage(usage);
/// assert_eq!(request.usage.as_ref().map(|u| u.to_string()).as_deref(), Some("hits=1&orders=#3"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRequest {
    /// The application's credentials.
    pub credentials: AppCredentials,
    /// Usage: checked (and on authrep, reported). `None` sends no usage parameter.
    pub usage: Option<Usage>,
    /// `referrer`.
    pub referrer: Option<String>,
    /// OAuth calls only.
    pub redirect: Option<Redirect>,
    /// `log[code]` (authrep only): the response code to record.
    pub log_code: Option<u16>,
    /// Service id for this call; overrides the client's.
    pub service_id: Option<String>,
    /// Extensions header.
    pub extensions: Extensions,
}

impl AuthRequest {
    /// A request for `credentials` with usage `hits=1` and no extensions.
    pub fn new(credentials: AppCredentials) -> Self {
        AuthRequest {
            credentials,
            usage: Some(Usage::hits()),
            referrer: None,
            redirect: None,
            log_code: None,
            service_id: None,
            extensions: Extensions::default(),
        }
    }

    /// Sets the usage.
    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Sends no usage parameter.
    pub fn without_usage(mut self) -> Self {
        self.usage = None;
        self
    }

    /// Sets the extensions.
    pub fn extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = extensions;
        self
    }
}

/// One transaction of a report. The timestamp is sent as
/// `YYYY-MM-DD HH:MM:SS +0000`; an `app_key` in the credentials is never sent.
///
/// ```
/// use threescale_core::{Usage, backend::{AppCredentials, Transaction}};
/// let tx = Transaction {
///     credentials: AppCredentials::user_key("key"),
///     usage: Usage::hits(),
///     timestamp: None,
///     log_code: Some(200),
/// };
/// assert_eq!(tx.usage.get("hits"), Some(1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// `app_id` or `user_key` (an app key is never reported).
    pub credentials: AppCredentials,
    /// Usage to add.
    pub usage: Usage,
    /// When it happened (default: now, at the backend).
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
    /// `log[code]`.
    pub log_code: Option<u16>,
}

/// The `3scale-limit-*` headers (`limit_headers` extension). A header that is
/// missing or not a number reads as -1 (`max_value`: `None`).
///
/// ```
/// use threescale_core::backend::LimitHeaders;
/// let unconstrained = LimitHeaders { remaining: -1, reset: -1, max_value: None };
/// assert!(unconstrained.max_value.is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitHeaders {
    /// `3scale-limit-remaining` (-1: unconstrained).
    pub remaining: i64,
    /// `3scale-limit-reset` in seconds (-1: none).
    pub reset: i64,
    /// `3scale-limit-max-value` (absent when unconstrained).
    pub max_value: Option<i64>,
}

/// The backend's answer to an auth call (200 authorized or 409 denied).
///
/// `authorization` is `None` only when the `no_body` extension was asked for
/// and the body is empty. A `reason` in it never holds a secret of the call.
///
/// ```
/// use http::StatusCode;
/// use threescale_core::backend::AuthResponse;
/// let answer = AuthResponse {
///     status: StatusCode::CONFLICT,
///     authorization: None,
///     limit_headers: None,
///     rejection_reason: Some("limits_exceeded".into()),
/// };
/// assert!(!answer.is_authorized());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthResponse {
    /// 200 or 409.
    pub status: StatusCode,
    /// The parsed `<status>` body (`None` with `no_body`).
    pub authorization: Option<Authorization>,
    /// Limit headers, if sent.
    pub limit_headers: Option<LimitHeaders>,
    /// `3scale-rejection-reason`, if sent.
    pub rejection_reason: Option<String>,
}

impl AuthResponse {
    /// Whether the backend authorized the call (status 200).
    pub fn is_authorized(&self) -> bool {
        self.status == StatusCode::OK
    }
}

/// What can go wrong talking to the backend. Messages never contain secrets:
/// every occurrence of a credential sent in the call (as sent, XML-escaped or
/// URL-encoded) is replaced by `***`, and no message holds the request URL.
///
/// ```
/// use http::StatusCode;
/// use threescale_core::backend::BackendError;
/// let err = BackendError::Api {
///     status: StatusCode::FORBIDDEN,
///     code: "user_key_invalid".into(),
///     message: r#"user key "***" is invalid"#.into(),
/// };
/// assert!(!err.is_unavailable());
/// assert!(!err.is_outage());
/// assert!(BackendError::Timeout(std::time::Duration::from_secs(5)).is_outage());
/// assert!(!BackendError::Request("URI too long".into()).is_outage());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend answered with an `<error>` document (4xx, or defensively a
    /// 200/409 carrying one). For a 4xx whose body is empty (`no_body`, or a
    /// `usage` that is not a hash) or not an `<error>` document, `code` is
    /// empty and `message` is the status text (plus an excerpt of the body).
    #[error("backend error {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Error code, e.g. `user_key_invalid`.
        code: String,
        /// Message, with any secret replaced by `***`.
        message: String,
    },
    /// Could not connect or the connection broke.
    #[error("backend unreachable: {0}")]
    Transport(String),
    /// No answer within the timeout.
    #[error("backend timed out after {0:?}")]
    Timeout(Duration),
    /// 5xx.
    #[error("backend server error {status}: {excerpt:?}")]
    Server {
        /// HTTP status.
        status: StatusCode,
        /// Start of the body.
        excerpt: String,
    },
    /// The body was not the XML we expected.
    #[error(transparent)]
    MalformedXml(#[from] crate::xml::XmlError),
    /// A status the call does not expect.
    #[error("unexpected backend status {status}: {excerpt:?}")]
    UnexpectedStatus {
        /// HTTP status.
        status: StatusCode,
        /// Start of the body.
        excerpt: String,
    },
    /// A client built with an invalid setting (e.g. a bad URL).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The TLS handshake refused a certificate: the backend's is not trusted,
    /// or the backend refused ours (missing or unknown client certificate). A
    /// configuration error, never an outage: no failure policy admits requests
    /// because of it.
    #[error("backend TLS trust failure: {0}")]
    Tls(String),
    /// The call could not be sent as built from the request (e.g. a URI too
    /// long to send): the request's fault, never an outage.
    #[error("backend call refused before sending: {0}")]
    Request(String),
}

impl BackendError {
    /// Whether the backend is unavailable: the one place that tells an outage
    /// (transport failure, timeout, 5xx, malformed or unexpected answer), which
    /// a failure policy or outage behaviour may ride out, from a failure the
    /// request itself caused (any 4xx answer, `<error>` document or not; a call
    /// too large to send), which must be treated as a refusal.
    pub fn is_outage(&self) -> bool {
        match self {
            BackendError::Transport(_)
            | BackendError::Timeout(_)
            | BackendError::Server { .. }
            | BackendError::MalformedXml(_)
            | BackendError::UnexpectedStatus { .. } => true,
            BackendError::Api { .. }
            | BackendError::Config(_)
            | BackendError::Tls(_)
            | BackendError::Request(_) => false,
        }
    }

    /// Same as [`BackendError::is_outage`].
    pub fn is_unavailable(&self) -> bool {
        self.is_outage()
    }
}

/// A report that the backend accepted (202).
///
/// ```
/// use threescale_core::backend::ReportAccepted;
/// let accepted = ReportAccepted { batches: 3, transactions: 2500 };
/// assert!(accepted.transactions <= accepted.batches * 1000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportAccepted {
    /// How many POSTs it took (at most 1000 transactions each).
    pub batches: usize,
    /// How many transactions were sent.
    pub transactions: usize,
}

/// Settings of a [`BackendClient`].
///
/// ```
/// use std::time::Duration;
/// use threescale_core::backend::{BackendClient, ProviderAuth};
/// let client = BackendClient::builder(ProviderAuth::service_token("token", "42"))
///     .url("http://127.0.0.1:3001")
///     .timeout(Duration::from_secs(1))
///     .connect_timeout(Duration::from_millis(300))
///     .pool_max_idle_per_host(16)
///     .build()
///     .unwrap();
/// # drop(client);
/// ```
#[derive(Clone, Debug)]
pub struct BackendClientBuilder {
    url: String,
    auth: ProviderAuth,
    timeout: Duration,
    connect_timeout: Duration,
    pool_max_idle_per_host: usize,
    tls: crate::TlsTrust,
}

impl BackendClientBuilder {
    /// Whom to trust and which client certificate to present (default: the
    /// bundled web PKI roots, no client certificate). See [`crate::TlsTrust`].
    pub fn tls(mut self, tls: crate::TlsTrust) -> Self {
        self.tls = tls;
        self
    }

    /// Backend base URL (default [`DEFAULT_BACKEND_URL`]).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Whole-request timeout (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connect timeout (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Idle connections kept per host (default 64).
    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// Builds the client. Fails with [`BackendError::Config`] when the URL is
    /// not an `http`/`https` URL with a host, or has a query, a fragment or
    /// user information. A trailing slash and a path prefix are fine.
    ///
    /// ```
    /// use threescale_core::backend::{BackendClient, ProviderAuth};
    /// let auth = ProviderAuth::provider_key("key");
    /// assert!(BackendClient::builder(auth.clone()).url("http://127.0.0.1:3001/").build().is_ok());
    /// assert!(BackendClient::builder(auth).url("ftp://example.com").build().is_err());
    /// ```
    pub fn build(self) -> Result<BackendClient, BackendError> {
        let inner = Inner::build(
            &self.url,
            self.auth,
            self.timeout,
            self.connect_timeout,
            self.pool_max_idle_per_host,
            &self.tls,
        )?;
        Ok(BackendClient {
            inner: Arc::new(inner),
        })
    }
}

/// The Service Management API client. Cheap to clone (shares its connection pool).
///
/// `Debug` shows the base URL and `***` for the credentials.
#[derive(Clone)]
pub struct BackendClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BackendClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl BackendClient {
    /// Starts a builder with the given provider credentials.
    pub fn builder(auth: ProviderAuth) -> BackendClientBuilder {
        BackendClientBuilder {
            url: DEFAULT_BACKEND_URL.to_string(),
            auth,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            pool_max_idle_per_host: 64,
            tls: crate::TlsTrust::default(),
        }
    }

    /// The provider credentials.
    ///
    /// ```
    /// use threescale_core::backend::{BackendClient, ProviderAuth};
    /// let client = BackendClient::builder(ProviderAuth::service_token("t", "42")).build().unwrap();
    /// assert_eq!(client.provider_auth().service_id(), Some("42"));
    /// ```
    pub fn provider_auth(&self) -> &ProviderAuth {
        &self.inner.auth
    }

    /// `GET /transactions/authorize.xml`: checks the credentials and whether the
    /// (predicted) usage fits the limits; stores nothing.
    ///
    /// 200 and 409 are answers ([`AuthResponse`]); 4xx is [`BackendError::Api`],
    /// 5xx [`BackendError::Server`].
    ///
    /// ```no_run
    /// # use threescale_core::backend::*;
    /// # async fn run(client: BackendClient) -> Result<(), BackendError> {
    /// let answer = client.authorize(&AuthRequest::new(AppCredentials::app_id_key("app", "key"))).await?;
    /// println!("{:?}", answer.authorization.map(|a| a.usage_reports));
    /// # Ok(()) }
    /// ```
    pub async fn authorize(&self, request: &AuthRequest) -> Result<AuthResponse, BackendError> {
        self.inner.auth(Call::Authorize, request).await
    }

    /// `GET /transactions/authrep.xml`: authorize, and report the usage (and
    /// `log[code]`) when authorized.
    ///
    /// ```no_run
    /// # use threescale_core::backend::*;
    /// # async fn run(client: BackendClient) -> Result<(), BackendError> {
    /// let mut request = AuthRequest::new(AppCredentials::user_key("key"));
    /// request.log_code = Some(200);
    /// let answer = client.authrep(&request).await?;
    /// # Ok(()) }
    /// ```
    pub async fn authrep(&self, request: &AuthRequest) -> Result<AuthResponse, BackendError> {
        self.inner.auth(Call::Authrep, request).await
    }

    /// `GET /transactions/oauth_authorize.xml` (`app_id` required; the answer
    /// carries the `<application>` section).
    ///
    /// ```no_run
    /// # use threescale_core::backend::*;
    /// # async fn run(client: BackendClient) -> Result<(), BackendError> {
    /// let mut request = AuthRequest::new(AppCredentials::app_id("client-id"));
    /// request.redirect = Some(Redirect::Url("https://example.com/cb".into()));
    /// let answer = client.oauth_authorize(&request).await?;
    /// # Ok(()) }
    /// ```
    pub async fn oauth_authorize(
        &self,
        request: &AuthRequest,
    ) -> Result<AuthResponse, BackendError> {
        self.inner.auth(Call::OAuthAuthorize, request).await
    }

    /// `GET /transactions/oauth_authrep.xml`.
    ///
    /// ```no_run
    /// # use threescale_core::backend::*;
    /// # async fn run(client: BackendClient) -> Result<(), BackendError> {
    /// let answer = client.oauth_authrep(&AuthRequest::new(AppCredentials::app_id("client-id"))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn oauth_authrep(&self, request: &AuthRequest) -> Result<AuthResponse, BackendError> {
        self.inner.auth(Call::OAuthAuthrep, request).await
    }

    /// `POST /transactions.xml`, split into batches of at most 1000 transactions.
    /// `service_id` overrides the client's.
    ///
    /// A batch also stays under 4000 parameters and 3 MiB (the backend's Rack
    /// limits are 4096 and 4 MiB), so transactions with many metrics make
    /// smaller batches. Each accepted POST (202) is final at the backend; the
    /// call stops at the first POST that fails and returns its error, so the
    /// earlier batches of a large slice have then been reported. Callers who
    /// must not report any usage twice should send at most 1000 transactions
    /// per call (one POST) and retry only a failed call. An empty slice sends
    /// nothing and returns zero batches.
    ///
    /// ```no_run
    /// # use threescale_core::{Usage, backend::*};
    /// # async fn run(client: BackendClient) -> Result<(), BackendError> {
    /// let tx = Transaction {
    ///     credentials: AppCredentials::app_id("app"),
    ///     usage: Usage::hits(),
    ///     timestamp: Some(chrono::Utc::now()),
    ///     log_code: Some(200),
    /// };
    /// let accepted = client.report(None, &[tx]).await?;
    /// assert_eq!(accepted.transactions, 1);
    /// # Ok(()) }
    /// ```
    pub async fn report(
        &self,
        service_id: Option<&str>,
        transactions: &[Transaction],
    ) -> Result<ReportAccepted, BackendError> {
        self.inner
            .report(service_id, transactions, None)
            .await
            .map_err(|failure| failure.error)
    }

    /// Like [`BackendClient::report`], but on failure says how far it got:
    /// the transactions of the POSTs already accepted (a prefix of
    /// `transactions`), those of the POST that failed (the ones after them),
    /// and whether that POST may have been applied anyway (it timed out after
    /// being sent). The rest were not sent. `timeout`, when given, replaces the
    /// client's timeout for each POST.
    pub async fn report_partial(
        &self,
        service_id: Option<&str>,
        transactions: &[Transaction],
        timeout: Option<std::time::Duration>,
    ) -> Result<ReportAccepted, ReportFailure> {
        self.inner.report(service_id, transactions, timeout).await
    }
}

/// A report that stopped at a POST the backend did not accept.
#[derive(Debug)]
pub struct ReportFailure {
    /// What the POSTs before the failed one carried (all accepted).
    pub accepted: ReportAccepted,
    /// Transactions in the POST that failed, right after the accepted ones.
    pub failed_transactions: usize,
    /// Whether the failed POST may have been applied by the backend: it was
    /// sent and the answer did not come in time (a timeout after sending).
    /// Refused connections, error answers and connections closed without an
    /// answer count as not applied.
    pub maybe_applied: bool,
    /// Why it failed.
    pub error: BackendError,
}
