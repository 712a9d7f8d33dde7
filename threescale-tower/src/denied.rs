//! Who renders the response of a denied request: the configured
//! [`ErrorResponses`](threescale_core::ErrorResponses) ([`Configured`]), or a
//! function of the user's ([`OnDeniedFn`], set with
//! [`ThreeScaleLayer::on_denied`](crate::ThreeScaleLayer::on_denied)).

use std::sync::Arc;

use http::{Response, request::Parts};
use threescale_core::Denial;

/// Renders the response of a denied request.
///
/// `B` is the inner service's response body type, so a renderer answers with
/// the same kind of response as the service it guards (in axum,
/// `axum::response::Response`). Returning `None` falls back to the configured
/// response. Either way the layer then adds the engine's headers (rate-limit
/// and debug headers) and puts the [`Denial`] into the response's extensions.
///
/// Closures are wrapped by [`ThreeScaleLayer::on_denied`](crate::ThreeScaleLayer::on_denied);
/// implement the trait for a type of your own to choose per denial.
///
/// ```
/// use http::{Response, StatusCode, request::Parts};
/// use threescale_core::{Denial, DenialKind};
/// use threescale_tower::OnDenied;
///
/// /// Answers 429 as JSON; leaves every other denial to the configuration.
/// #[derive(Clone)]
/// struct JsonLimits;
///
/// impl OnDenied<String> for JsonLimits {
///     fn render(&self, denial: &Denial, _parts: &Parts) -> Option<Response<String>> {
///         (denial.kind == DenialKind::LimitsExceeded).then(|| {
///             let mut response = Response::new(r#"{"error":"slow down"}"#.to_string());
///             *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
///             response
///         })
///     }
/// }
/// ```
pub trait OnDenied<B> {
    /// The response for `denial` of the request whose head is `parts`, or
    /// `None` for the configured one.
    fn render(&self, denial: &Denial, parts: &Parts) -> Option<Response<B>>;
}

/// The default: the configured [`ErrorResponse`](threescale_core::ErrorResponse)
/// of each kind of denial.
#[derive(Clone, Copy, Debug, Default)]
pub struct Configured;

impl<B> OnDenied<B> for Configured {
    fn render(&self, _denial: &Denial, _parts: &Parts) -> Option<Response<B>> {
        None
    }
}

/// A user's function rendering every denial (see
/// [`ThreeScaleLayer::on_denied`](crate::ThreeScaleLayer::on_denied)).
/// Cloning it clones an `Arc`.
pub struct OnDeniedFn<F>(Arc<F>);

impl<F> OnDeniedFn<F> {
    /// Wraps `render`.
    pub fn new(render: F) -> Self {
        OnDeniedFn(Arc::new(render))
    }
}

impl<F> Clone for OnDeniedFn<F> {
    fn clone(&self) -> Self {
        OnDeniedFn(Arc::clone(&self.0))
    }
}

impl<F> std::fmt::Debug for OnDeniedFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnDeniedFn(..)")
    }
}

impl<F, B> OnDenied<B> for OnDeniedFn<F>
where
    F: Fn(&Denial, &Parts) -> Response<B>,
{
    fn render(&self, denial: &Denial, parts: &Parts) -> Option<Response<B>> {
        Some((self.0)(denial, parts))
    }
}
