//! The HTTP side of [`super::BackendClient`]: URLs, requests, answers, errors.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use reqwest::Url;
use tracing::Instrument as _;

use super::params::Params;
use super::redact::{Secrets, excerpt};
use super::{
    AppCredentials, AuthRequest, AuthResponse, BackendError, LimitHeaders, ProviderAuth, Redirect,
    ReportAccepted, ReportFailure, Transaction,
};
use crate::xml::{Document, Expect, XmlError, parse_document};

/// Most transactions in one report POST.
pub(super) const MAX_TRANSACTIONS_PER_POST: usize = 1000;
/// Most parameters in one report POST (Rack refuses more than 4096).
pub(super) const MAX_PARAMS_PER_POST: usize = 4000;
/// Most bytes in one report body (Rack refuses more than 4 MiB).
pub(super) const MAX_BYTES_PER_POST: usize = 3 << 20;
/// Longest response body read; the rest is dropped.
const MAX_RESPONSE_BODY: usize = 4 << 20;

/// One Service Management API endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Call {
    Authorize,
    Authrep,
    OAuthAuthorize,
    OAuthAuthrep,
    Report,
}

impl Call {
    const ALL: [Call; 5] = [
        Call::Authorize,
        Call::Authrep,
        Call::OAuthAuthorize,
        Call::OAuthAuthrep,
        Call::Report,
    ];

    fn path(self) -> &'static str {
        match self {
            Call::Authorize => "/transactions/authorize.xml",
            Call::Authrep => "/transactions/authrep.xml",
            Call::OAuthAuthorize => "/transactions/oauth_authorize.xml",
            Call::OAuthAuthrep => "/transactions/oauth_authrep.xml",
            Call::Report => "/transactions.xml",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Call::Authorize => "authorize",
            Call::Authrep => "authrep",
            Call::OAuthAuthorize => "oauth_authorize",
            Call::OAuthAuthrep => "oauth_authrep",
            Call::Report => "report",
        }
    }

    fn is_oauth(self) -> bool {
        matches!(self, Call::OAuthAuthorize | Call::OAuthAuthrep)
    }

    fn reports(self) -> bool {
        matches!(self, Call::Authrep | Call::OAuthAuthrep)
    }
}

/// What a [`super::BackendClient`] shares between its clones.
pub(super) struct Inner {
    http: reqwest::Client,
    pub(super) auth: ProviderAuth,
    /// Scheme, host, port and path prefix, for `Debug` (never with a query).
    base: String,
    endpoints: [Url; 5],
    timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendClient")
            .field("url", &self.base)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Parses and checks a backend URL: `http` or `https`, a host, a valid port, no
/// user information, query or fragment. The one check of every configuration
/// source and of the client ([`crate::config::validate_url`]).
pub(crate) fn parse_backend_url(url: &str) -> Result<Url, String> {
    let not_http = "the backend URL is not an http or https URL";
    let parsed = Url::parse(url.trim()).map_err(|e| format!("{not_http} ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(not_http.into());
    }
    if parsed.host().is_none() {
        return Err("the backend URL has no host".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("the backend URL must not have a query or a fragment".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the backend URL must not contain user information".into());
    }
    Ok(parsed)
}

impl Inner {
    pub(super) fn build(
        url: &str,
        auth: ProviderAuth,
        timeout: Duration,
        connect_timeout: Duration,
        pool_max_idle_per_host: usize,
        tls: &crate::TlsTrust,
    ) -> Result<Inner, BackendError> {
        let parsed = parse_backend_url(url).map_err(BackendError::Config)?;
        let base = parsed.as_str().trim_end_matches('/').to_string();
        let endpoint = |call: Call| {
            Url::parse(&format!("{base}{}", call.path()))
                .map_err(|e| BackendError::Config(format!("invalid backend URL: {e}")))
        };
        let endpoints = [
            endpoint(Call::ALL[0])?,
            endpoint(Call::ALL[1])?,
            endpoint(Call::ALL[2])?,
            endpoint(Call::ALL[3])?,
            endpoint(Call::ALL[4])?,
        ];
        let builder = reqwest::Client::builder()
            .user_agent(concat!("threescale-rs/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .pool_max_idle_per_host(pool_max_idle_per_host)
            // A redirect would carry the credentials to another URL.
            .redirect(reqwest::redirect::Policy::none());
        let http = tls
            .http_client(builder)
            .map_err(|e| BackendError::Config(e.to_string()))?;
        Ok(Inner {
            http,
            auth,
            base,
            endpoints,
            timeout,
            connect_timeout,
        })
    }

    fn endpoint(&self, call: Call) -> Url {
        let i = Call::ALL.iter().position(|c| *c == call).unwrap_or(0);
        self.endpoints[i].clone()
    }

    /// The provider secret plus the given application credentials.
    fn secrets<'c>(&self, apps: impl IntoIterator<Item = &'c AppCredentials>) -> Secrets {
        let mut secrets = Secrets::new();
        secrets.add(self.auth.secret().expose());
        for app in apps {
            match app {
                AppCredentials::UserKey(key) => secrets.add(key.expose()),
                AppCredentials::AppId {
                    app_key: Some(key), ..
                } => secrets.add(key.expose()),
                AppCredentials::AppId { app_key: None, .. } => {}
            }
        }
        secrets
    }

    fn transport_error(
        &self,
        err: reqwest::Error,
        secrets: impl FnOnce() -> Secrets,
    ) -> BackendError {
        // reqwest puts the URL, query string and all, into its messages.
        let err = err.without_url();
        if err.is_builder() {
            // Never sent: the request could not be built (e.g. a URI longer
            // than an HTTP request may carry). The request's fault, not an outage.
            return BackendError::Request(secrets().redact_owned(err.to_string()));
        }
        if crate::tls::is_trust_failure(&err) {
            let message = secrets().redact_owned(crate::tls::error_chain(&err));
            return BackendError::Tls(format!("{message}; {}", crate::tls::TRUST_HINT));
        }
        if err.is_timeout() {
            return BackendError::Timeout(if err.is_connect() {
                self.connect_timeout
            } else {
                self.timeout
            });
        }
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !message.contains(&cause_text) {
                let _ = write!(message, ": {cause_text}");
            }
            source = cause.source();
        }
        BackendError::Transport(secrets().redact_owned(message))
    }

    /// authorize, authrep and the OAuth variants.
    pub(super) async fn auth(
        &self,
        call: Call,
        request: &AuthRequest,
    ) -> Result<AuthResponse, BackendError> {
        let span = backend_span(call);
        let started = Instant::now();
        let result = self
            .auth_inner(call, request)
            .instrument(span.clone())
            .await;
        log_outcome(&span, call, started, result.as_ref().map(|r| r.status));
        result
    }

    async fn auth_inner(
        &self,
        call: Call,
        request: &AuthRequest,
    ) -> Result<AuthResponse, BackendError> {
        let secrets = || self.secrets([&request.credentials]);
        let mut url = self.endpoint(call);
        url.set_query(Some(&auth_query(&self.auth, call, request)));
        let mut builder = self.http.get(url).timeout(self.timeout);
        if let Some(options) = request.extensions.header_value() {
            builder = builder.header("3scale-options", options);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| self.transport_error(e, secrets))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body(response)
            .await
            .map_err(|e| self.transport_error(e, secrets))?;
        interpret_auth(
            status,
            &headers,
            &body,
            request.extensions.no_body,
            &secrets,
        )
    }

    /// POST /transactions.xml in as many batches as needed, stopping at the
    /// first POST that fails. `timeout` overrides the client's for each POST.
    pub(super) async fn report(
        &self,
        service_id: Option<&str>,
        transactions: &[Transaction],
        timeout: Option<Duration>,
    ) -> Result<ReportAccepted, ReportFailure> {
        let mut head = Params::with_capacity(128);
        provider_params(&mut head, &self.auth, service_id);
        let mut accepted = ReportAccepted {
            batches: 0,
            transactions: 0,
        };
        let mut batch = Params::with_capacity(32 * 1024);
        let mut batch_start = 0;
        let mut key = String::with_capacity(48);
        let mut i = 0;
        let fail =
            |accepted: ReportAccepted,
             sent: usize,
             (error, maybe_applied): (BackendError, bool)| ReportFailure {
                accepted,
                failed_transactions: sent,
                maybe_applied,
                error,
            };
        while i < transactions.len() {
            let index = i - batch_start;
            let mut one = Params::with_capacity(96);
            transaction_params(&mut one, &mut key, index, &transactions[i]);
            let fits = index == 0
                || (index < MAX_TRANSACTIONS_PER_POST
                    && head.count() + batch.count() + one.count() <= MAX_PARAMS_PER_POST
                    && head.len() + batch.len() + one.len() + 2 <= MAX_BYTES_PER_POST);
            if !fits {
                self.post_batch(&head, &batch, &transactions[batch_start..i], timeout)
                    .await
                    .map_err(|e| fail(accepted, i - batch_start, e))?;
                accepted.batches += 1;
                accepted.transactions += i - batch_start;
                batch = Params::with_capacity(batch.len());
                batch_start = i;
                // Encoded again with its index in the new batch.
                continue;
            }
            batch.append(&one);
            i += 1;
        }
        if batch_start < transactions.len() {
            self.post_batch(&head, &batch, &transactions[batch_start..], timeout)
                .await
                .map_err(|e| fail(accepted, transactions.len() - batch_start, e))?;
            accepted.batches += 1;
            accepted.transactions += transactions.len() - batch_start;
        }
        Ok(accepted)
    }

    /// One report POST. On failure, also whether the backend may have applied
    /// it anyway (the request was sent and no answer came in time).
    async fn post_batch(
        &self,
        head: &Params,
        batch: &Params,
        transactions: &[Transaction],
        timeout: Option<Duration>,
    ) -> Result<(), (BackendError, bool)> {
        let span = backend_span(Call::Report);
        span.record("transactions", transactions.len());
        let started = Instant::now();
        let secrets = || self.secrets(transactions.iter().map(|t| &t.credentials));
        let mut body = String::with_capacity(head.len() + batch.len() + 1);
        body.push_str(head.as_str());
        body.push('&');
        body.push_str(batch.as_str());
        let mut maybe_applied = false;
        let result = async {
            let mut request = self
                .http
                .post(self.endpoint(Call::Report))
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body);
            request = request.timeout(timeout.unwrap_or(self.timeout));
            let response = request.send().await.map_err(|e| {
                maybe_applied = e.is_timeout() && !e.is_connect();
                self.transport_error(e, secrets)
            })?;
            let status = response.status();
            let body = read_body(response).await.map_err(|e| {
                // The answer had started: the backend took the request in.
                maybe_applied = status.as_u16() == 202 || e.is_timeout();
                self.transport_error(e, secrets)
            })?;
            match status.as_u16() {
                202 => Ok(status),
                400..=499 => Err(api_error(status, &body, &secrets())),
                500..=599 => Err(server_error(status, &body, &secrets())),
                _ => Err(unexpected_status(status, &body, &secrets())),
            }
        }
        .instrument(span.clone())
        .await;
        tracing::debug!(
            target: "threescale::backend",
            transactions = transactions.len(),
            "report batch"
        );
        log_outcome(&span, Call::Report, started, result.as_ref().copied());
        result.map(|_| ()).map_err(|e| (e, maybe_applied))
    }
}

/// The span of one backend call: `threescale.backend`, with the call, then
/// its answer's `status` (or `error`) and `latency_ms`. Never a credential or
/// the request's URL.
fn backend_span(call: Call) -> tracing::Span {
    tracing::info_span!(
        target: "threescale::backend",
        "threescale.backend",
        call = call.name(),
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
        error = tracing::field::Empty,
        transactions = tracing::field::Empty,
    )
}

/// The answer's status, for an error that has one.
fn error_status(error: &BackendError) -> Option<u16> {
    match error {
        BackendError::Api { status, .. }
        | BackendError::Server { status, .. }
        | BackendError::UnexpectedStatus { status, .. } => Some(status.as_u16()),
        _ => None,
    }
}

fn log_outcome(
    span: &tracing::Span,
    call: Call,
    started: Instant,
    result: Result<StatusCode, &BackendError>,
) {
    let elapsed = started.elapsed();
    let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let status = match result {
        Ok(status) => Some(status.as_u16()),
        Err(error) => error_status(error),
    };
    crate::metrics::backend_call(call.name(), status, elapsed);
    if !span.is_disabled() {
        span.record("latency_ms", elapsed_ms);
        if let Some(status) = status {
            span.record("status", status);
        }
        if let Err(error) = result {
            // Already free of secrets and of the request URL.
            span.record("error", tracing::field::display(error));
        }
    }
    match result {
        Ok(status) => tracing::debug!(
            target: "threescale::backend",
            call = call.name(),
            path = call.path(),
            status = status.as_u16(),
            elapsed_ms,
            "3scale backend answered"
        ),
        // Every message is already free of secrets and of the request URL.
        Err(error) => tracing::debug!(
            target: "threescale::backend",
            call = call.name(),
            path = call.path(),
            elapsed_ms,
            error = %error,
            "3scale backend call failed"
        ),
    }
}

/// The body, up to [`MAX_RESPONSE_BODY`] bytes.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let hint = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(MAX_RESPONSE_BODY);
    let mut body = Vec::with_capacity(hint);
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BODY - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn provider_params(params: &mut Params, auth: &ProviderAuth, service_id: Option<&str>) {
    match auth {
        ProviderAuth::ServiceToken {
            token,
            service_id: own,
        } => {
            params.push("service_token", token.expose());
            params.push("service_id", service_id.unwrap_or(own));
        }
        ProviderAuth::ProviderKey {
            key,
            service_id: own,
        } => {
            params.push("provider_key", key.expose());
            if let Some(id) = service_id.or(own.as_deref()) {
                params.push("service_id", id);
            }
        }
    }
}

/// The query string of an auth call.
pub(super) fn auth_query(auth: &ProviderAuth, call: Call, request: &AuthRequest) -> String {
    let mut params = Params::with_capacity(256);
    provider_params(&mut params, auth, request.service_id.as_deref());
    match &request.credentials {
        AppCredentials::UserKey(key) => params.push("user_key", key.expose()),
        AppCredentials::AppId { app_id, app_key } => {
            params.push("app_id", app_id);
            if let Some(key) = app_key {
                params.push("app_key", key.expose());
            }
        }
    }
    if let Some(referrer) = &request.referrer {
        params.push("referrer", referrer);
    }
    if call.is_oauth() {
        match &request.redirect {
            Some(Redirect::Url(url)) => params.push("redirect_url", url),
            Some(Redirect::Uri(uri)) => params.push("redirect_uri", uri),
            None => {}
        }
    }
    if call.reports()
        && let Some(code) = request.log_code
    {
        params.push_number("log[code]", u64::from(code));
    }
    if let Some(usage) = &request.usage {
        params.push_usage("usage", usage);
    }
    params.finish()
}

/// The parameters of one report transaction at `index` of its batch.
fn transaction_params(params: &mut Params, key: &mut String, index: usize, tx: &Transaction) {
    let mut name = |suffix: &str| -> String {
        key.clear();
        let _ = write!(key, "transactions[{index}]{suffix}");
        key.clone()
    };
    match &tx.credentials {
        AppCredentials::UserKey(user_key) => params.push(&name("[user_key]"), user_key.expose()),
        // An app key is never reported.
        AppCredentials::AppId { app_id, .. } => params.push(&name("[app_id]"), app_id),
    }
    params.push_usage(&name("[usage]"), &tx.usage);
    if let Some(timestamp) = tx.timestamp {
        let formatted = timestamp.format("%Y-%m-%d %H:%M:%S +0000").to_string();
        params.push(&name("[timestamp]"), &formatted);
    }
    if let Some(code) = tx.log_code {
        params.push_number(&name("[log][code]"), u64::from(code));
    }
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn limit_headers(headers: &HeaderMap) -> Option<LimitHeaders> {
    let remaining = header_i64(headers, "3scale-limit-remaining");
    let reset = header_i64(headers, "3scale-limit-reset");
    let max_value = header_i64(headers, "3scale-limit-max-value");
    if remaining.is_none() && reset.is_none() && max_value.is_none() {
        return None;
    }
    Some(LimitHeaders {
        remaining: remaining.unwrap_or(-1),
        reset: reset.unwrap_or(-1),
        max_value,
    })
}

fn malformed(reason: &str, body: &[u8], secrets: &Secrets) -> BackendError {
    BackendError::MalformedXml(XmlError {
        reason: reason.to_string(),
        excerpt: excerpt(body, 0, secrets),
    })
}

/// A 200 or 409 answer (or any other status) to an auth call.
pub(super) fn interpret_auth(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    no_body: bool,
    secrets: &dyn Fn() -> Secrets,
) -> Result<AuthResponse, BackendError> {
    match status.as_u16() {
        200 | 409 => {}
        400..=499 => return Err(api_error(status, body, &secrets())),
        500..=599 => return Err(server_error(status, body, &secrets())),
        _ => return Err(unexpected_status(status, body, &secrets())),
    }
    let rejection_reason = headers
        .get("3scale-rejection-reason")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let v = v.trim();
            if v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                v.to_string()
            } else {
                secrets().redact(v).into_owned()
            }
        });
    let limit_headers = limit_headers(headers);
    if body.trim_ascii().is_empty() {
        if no_body {
            return Ok(AuthResponse {
                status,
                authorization: None,
                limit_headers,
                rejection_reason,
            });
        }
        return Err(malformed("empty response body", body, &secrets()));
    }
    match parse_document(body, Expect::Any) {
        Ok(Document::Status(mut authorization)) => {
            if authorization.authorized != (status == StatusCode::OK) {
                return Err(malformed(
                    if authorization.authorized {
                        "status 409 with <authorized>true</authorized>"
                    } else {
                        "status 200 with <authorized>false</authorized>"
                    },
                    body,
                    &secrets(),
                ));
            }
            if let Some(reason) = authorization.reason.take() {
                authorization.reason = Some(secrets().redact_owned(reason));
            }
            Ok(AuthResponse {
                status,
                authorization: Some(authorization),
                limit_headers,
                rejection_reason,
            })
        }
        Ok(Document::Error(doc)) => {
            let secrets = secrets();
            Err(BackendError::Api {
                status,
                code: secrets.redact_owned(doc.code),
                message: secrets.redact_owned(doc.message),
            })
        }
        Err(fail) => Err(BackendError::MalformedXml(XmlError::from_fail(
            fail,
            body,
            &secrets(),
        ))),
    }
}

/// A 4xx answer: the `<error>` document, or the status text when the body is
/// empty (e.g. `no_body`, or usage that is not a hash) or not an error document.
pub(super) fn api_error(status: StatusCode, body: &[u8], secrets: &Secrets) -> BackendError {
    let status_text = status.canonical_reason().unwrap_or("");
    if body.trim_ascii().is_empty() {
        return BackendError::Api {
            status,
            code: String::new(),
            message: status_text.to_string(),
        };
    }
    match parse_document(body, Expect::Any) {
        Ok(Document::Error(doc)) => BackendError::Api {
            status,
            code: secrets.redact_owned(doc.code),
            message: secrets.redact_owned(doc.message),
        },
        Ok(Document::Status(_)) => BackendError::Api {
            status,
            code: String::new(),
            message: format!("{status_text} (with a <status> document)"),
        },
        Err(_) => BackendError::Api {
            status,
            code: String::new(),
            message: format!(
                "{status_text} (body is not an <error> document: {:?})",
                excerpt(body, 0, secrets)
            ),
        },
    }
}

fn server_error(status: StatusCode, body: &[u8], secrets: &Secrets) -> BackendError {
    BackendError::Server {
        status,
        excerpt: excerpt(body, 0, secrets),
    }
}

fn unexpected_status(status: StatusCode, body: &[u8], secrets: &Secrets) -> BackendError {
    BackendError::UnexpectedStatus {
        status,
        excerpt: excerpt(body, 0, secrets),
    }
}
