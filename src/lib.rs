//! # threescale
//!
//! 3scale API management (API keys, app id/key pairs, rate limits, usage
//! analytics) inside Rust web services, without a gateway hop.
//!
//! - [`ThreeScale`]: the engine (credentials, mapping rules, backend client,
//!   cache, batched reports), built from a [`Config`].
//! - [`tower::ThreeScaleLayer`] (feature `tower`): `.layer(ThreeScaleLayer::new(engine))`
//!   in axum, hyper or tonic.
//! - [`actix::ThreeScale`] (feature `actix`): `.wrap(ThreeScale::new(engine))` in actix-web.
//! - [`emulator`]: a local 3scale backend for development and tests.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use threescale::{Config, ThreeScale, tower::ThreeScaleLayer};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = ThreeScale::new(Config::from_env()?)?;
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "order" }))
//!     .layer(ThreeScaleLayer::new(engine.clone()));
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]

pub use threescale_core::*;

/// The local 3scale backend emulator.
pub use threescale_emulator as emulator;

/// The tower / axum adapter.
#[cfg(feature = "tower")]
pub mod tower {
    pub use threescale_tower::*;
}

/// The actix-web adapter.
#[cfg(feature = "actix")]
pub mod actix {
    pub use threescale_actix::*;
}
