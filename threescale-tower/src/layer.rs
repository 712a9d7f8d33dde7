use http::{Response, request::Parts};
use threescale_core::{Denial, ThreeScale};
use tower_layer::Layer;

use crate::{Configured, OnDeniedFn, ThreeScaleService};

/// Wraps services with 3scale authorization and reporting.
///
/// ```
/// use threescale_core::{Config, ThreeScale};
/// use threescale_tower::ThreeScaleLayer;
/// let config = Config::builder().service_token("token", "42").build().unwrap();
/// let layer = ThreeScaleLayer::new(ThreeScale::new(config).unwrap());
/// let router: axum::Router = axum::Router::new().layer(layer);
/// ```
///
/// `D` renders denied requests: [`Configured`] (the configured error
/// responses) unless set with [`ThreeScaleLayer::on_denied`].
#[derive(Clone, Debug)]
pub struct ThreeScaleLayer<D = Configured> {
    engine: ThreeScale,
    on_denied: D,
}

impl ThreeScaleLayer {
    /// A layer over `engine` (clone the engine to keep a handle for `shutdown`).
    pub fn new(engine: ThreeScale) -> Self {
        ThreeScaleLayer {
            engine,
            on_denied: Configured,
        }
    }
}

impl<D> ThreeScaleLayer<D> {
    /// The engine.
    pub fn engine(&self) -> &ThreeScale {
        &self.engine
    }

    /// Renders denied requests with `render` instead of the configured error
    /// responses. It gets the [`Denial`] (kind, backend reason, `retry_after`,
    /// rate-limit figures) and the head of the request, and answers with a
    /// response of the inner service's body type (in axum:
    /// `axum::response::Response`, so anything `IntoResponse`). The layer adds
    /// the engine's rate-limit and debug headers to it and puts the `Denial`
    /// into its extensions; `Retry-After` is the hook's to set (from
    /// `denial.retry_after`).
    ///
    /// ```
    /// use axum::{Json, response::IntoResponse};
    /// use http::StatusCode;
    /// use threescale_core::{Config, ThreeScale};
    /// use threescale_tower::ThreeScaleLayer;
    ///
    /// let config = Config::builder().service_token("token", "42").build().unwrap();
    /// let layer = ThreeScaleLayer::new(ThreeScale::new(config).unwrap()).on_denied(
    ///     |denial, parts| {
    ///         let status = match denial.kind {
    ///             threescale_core::DenialKind::AuthMissing => StatusCode::UNAUTHORIZED,
    ///             _ => StatusCode::FORBIDDEN,
    ///         };
    ///         let body = std::collections::BTreeMap::from([
    ///             ("error", format!("{:?}", denial.kind)),
    ///             ("path", parts.uri.path().to_string()),
    ///         ]);
    ///         (status, Json(body)).into_response()
    ///     },
    /// );
    /// let router: axum::Router = axum::Router::new().layer(layer);
    /// ```
    pub fn on_denied<F, B>(self, render: F) -> ThreeScaleLayer<OnDeniedFn<F>>
    where
        F: Fn(&Denial, &Parts) -> Response<B>,
    {
        ThreeScaleLayer {
            engine: self.engine,
            on_denied: OnDeniedFn::new(render),
        }
    }

    /// Renders denied requests with `renderer` (any [`OnDenied`](crate::OnDenied),
    /// which may leave some denials to the configuration).
    pub fn on_denied_with<D2>(self, renderer: D2) -> ThreeScaleLayer<D2> {
        ThreeScaleLayer {
            engine: self.engine,
            on_denied: renderer,
        }
    }
}

impl<S, D: Clone> Layer<S> for ThreeScaleLayer<D> {
    type Service = ThreeScaleService<S, D>;

    fn layer(&self, inner: S) -> Self::Service {
        ThreeScaleService::with_renderer(inner, self.engine.clone(), self.on_denied.clone())
    }
}
