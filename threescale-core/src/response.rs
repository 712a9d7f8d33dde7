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

/// The responses for each kind of denial: one table indexed by
/// [`DenialKind::index`]. Defaults (see [`DenialKind::default_status`] and
/// [`DenialKind::default_body`]) follow the 3scale gateway, plus 503 for an
/// unavailable backend.
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
    responses: [ErrorResponse; DenialKind::ALL.len()],
}

impl Default for ErrorResponses {
    fn default() -> Self {
        ErrorResponses {
            responses: DenialKind::ALL.map(ErrorResponse::default_for),
        }
    }
}

impl ErrorResponse {
    /// The default response for `kind`: its default status and body, plain text.
    pub fn default_for(kind: DenialKind) -> Self {
        ErrorResponse::new(kind.default_status(), kind.default_body())
    }
}

impl ErrorResponses {
    /// The response for `kind`.
    pub fn get(&self, kind: DenialKind) -> &ErrorResponse {
        &self.responses[kind.index()]
    }

    /// Mutable access to the response for `kind`.
    pub fn get_mut(&mut self, kind: DenialKind) -> &mut ErrorResponse {
        &mut self.responses[kind.index()]
    }

    /// Replaces the response for `kind`.
    pub fn with(mut self, kind: DenialKind, response: ErrorResponse) -> Self {
        *self.get_mut(kind) = response;
        self
    }

    /// Every kind with its response, in the order of [`DenialKind::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (DenialKind, &ErrorResponse)> {
        DenialKind::ALL.into_iter().zip(self.responses.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_slot_with_the_gateway_defaults() {
        for (i, kind) in DenialKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
        let defaults = ErrorResponses::default();
        let expected = [
            (403, "Authentication failed"),
            (401, "Authentication parameters missing"),
            (429, "Limits exceeded"),
            (404, "No Mapping Rule matched"),
            (503, "Service temporarily unavailable"),
            (400, "Bad request"),
        ];
        for ((kind, response), (status, body)) in defaults.iter().zip(expected) {
            assert_eq!(response.status.as_u16(), status, "{kind:?}");
            assert_eq!(&response.body[..], body.as_bytes(), "{kind:?}");
            assert_eq!(response.content_type, DEFAULT_CONTENT_TYPE);
        }
        // Setting one kind changes that kind only.
        let teapot = ErrorResponse::new(StatusCode::IM_A_TEAPOT, "tea");
        for kind in DenialKind::ALL {
            let changed = ErrorResponses::default().with(kind, teapot.clone());
            for other in DenialKind::ALL {
                let want = if other == kind {
                    &teapot
                } else {
                    defaults.get(other)
                };
                assert_eq!(changed.get(other), want, "{kind:?} set, {other:?} read");
            }
        }
    }
}
