use threescale_core::ThreeScale;
use tower_layer::Layer;

use crate::ThreeScaleService;

/// Wraps services with 3scale authorization and reporting.
///
/// ```
/// use threescale_core::{Config, ThreeScale};
/// use threescale_tower::ThreeScaleLayer;
/// let config = Config::builder().service_token("token", "42").build().unwrap();
/// let layer = ThreeScaleLayer::new(ThreeScale::new(config).unwrap());
/// let router: axum::Router = axum::Router::new().layer(layer);
/// ```
#[derive(Clone, Debug)]
pub struct ThreeScaleLayer {
    engine: ThreeScale,
}

impl ThreeScaleLayer {
    /// A layer over `engine` (clone the engine to keep a handle for `shutdown`).
    pub fn new(engine: ThreeScale) -> Self {
        ThreeScaleLayer { engine }
    }

    /// The engine.
    pub fn engine(&self) -> &ThreeScale {
        &self.engine
    }
}

impl<S> Layer<S> for ThreeScaleLayer {
    type Service = ThreeScaleService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ThreeScaleService::new(inner, self.engine.clone())
    }
}
