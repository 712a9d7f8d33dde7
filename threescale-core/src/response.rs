//! [`ErrorResponses`]: what a denied request gets back, per kind of denial.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

use crate::decision::DenialKind;

/// The content type of the default error bodies.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// One error response: status, content type, body and extra headers.
///
/// ```
/// use threescale_core::ErrorResponse;
/// use http::StatusCode;
/// let json = ErrorResponse::new(StatusCode::FORBIDDEN, r#"{"error":"forbidden"}"#)
///     .content_type("application/json");
/// assert_eq!(json.status, StatusCode::FORBIDDEN);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type` header value.
    pub content_type: HeaderValue,
    /// Body.
    pub body: Bytes,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ErrorResponse {
    /// A response with the default content type.
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        ErrorResponse {
            status,
            content_type: HeaderValue::from_static(DEFAULT_CONTENT_TYPE),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// Sets the content type. A value that is not a valid header value is ignored
    /// (configuration loaders validate it first and report an error).
    pub fn content_type(mut self, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.content_type = value;
        }
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// The responses for each kind of denial. Defaults follow the 3scale gateway,
/// plus 503 for an unavailable backend.
///
/// ```
/// use threescale_core::{ErrorResponses, ErrorResponse, DenialKind};
/// use http::StatusCode;
/// let responses = ErrorResponses::default()
///     .with(DenialKind::NoMatch, ErrorResponse::new(StatusCode::NOT_FOUND, "no such route"));
/// assert_eq!(responses.get(DenialKind::AuthMissing).status, StatusCode::UNAUTHORIZED);
/// assert_eq!(&responses.get(DenialKind::NoMatch).body[..], b"no such route");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponses {
    /// 403 `Authentication failed`.
    pub auth_failed: ErrorResponse,
    /// 401 `Authentication parameters missing`.
    pub auth_missing: ErrorResponse,
    /// 429 `Limits exceeded`.
    pub limits_exceeded: ErrorResponse,
    /// 404 `No Mapping Rule matched`.
    pub no_match: ErrorResponse,
    /// 503 `Service temporarily unavailable`.
    pub backend_unavailable: ErrorResponse,
    /// 400 `Bad request`.
    pub bad_request: ErrorResponse,
}

impl Default for ErrorResponses {
    fn default() -> Self {
        ErrorResponses {
            auth_failed: ErrorResponse::new(StatusCode::FORBIDDEN, "Authentication failed"),
            auth_missing: ErrorResponse::new(
                StatusCode::UNAUTHORIZED,
                "Authentication parameters missing",
            ),
            limits_exceeded: ErrorResponse::new(StatusCode::TOO_MANY_REQUESTS, "Limits exceeded"),
            no_match: ErrorResponse::new(StatusCode::NOT_FOUND, "No Mapping Rule matched"),
            backend_unavailable: ErrorResponse::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable",
            ),
            bad_request: ErrorResponse::new(StatusCode::BAD_REQUEST, "Bad request"),
        }
    }
}

impl ErrorResponses {
    /// The response for `kind`.
    pub fn get(&self, kind: DenialKind) -> &ErrorResponse {
        match kind {
            DenialKind::AuthFailed => &self.auth_failed,
            DenialKind::AuthMissing => &self.auth_missing,
            DenialKind::LimitsExceeded => &self.limits_exceeded,
            DenialKind::NoMatch => &self.no_match,
            DenialKind::BackendUnavailable => &self.backend_unavailable,
            DenialKind::BadRequest => &self.bad_request,
        }
    }

    /// Mutable access to the response for `kind`.
    pub fn get_mut(&mut self, kind: DenialKind) -> &mut ErrorResponse {
        match kind {
            DenialKind::AuthFailed => &mut self.auth_failed,
            DenialKind::AuthMissing => &mut self.auth_missing,
            DenialKind::LimitsExceeded => &mut self.limits_exceeded,
            DenialKind::NoMatch => &mut self.no_match,
            DenialKind::BackendUnavailable => &mut self.backend_unavailable,
            DenialKind::BadRequest => &mut self.bad_request,
        }
    }

    /// Replaces the response for `kind`.
    pub fn with(mut self, kind: DenialKind, response: ErrorResponse) -> Self {
        *self.get_mut(kind) = response;
        self
    }
}
