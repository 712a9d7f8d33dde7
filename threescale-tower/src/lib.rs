//! 3scale API management as a tower [`Layer`](tower_layer::Layer): one line in an
//! axum (or hyper, tonic) stack.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use threescale_core::{Config, ThreeScale};
//! use threescale_tower::ThreeScaleLayer;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let threescale = ThreeScale::new(Config::from_env()?)?;
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "order" }))
//!     .layer(ThreeScaleLayer::new(threescale.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! threescale.shutdown().await; // report what is still held
//! # Ok(()) }
//! ```
//!
//! Allowed requests reach the inner service with an [`AuthContext`] in their
//! extensions (in axum: the [`Auth`] extractor, or `Extension<AuthContext>`).
//! Denied requests get the configured error response. The future is a named
//! state machine; nothing is boxed unless the backend must be asked.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod future;
mod layer;
mod service;

#[cfg(feature = "axum")]
mod extract;

pub use body::ResponseBody;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{Auth, AuthRejection};
pub use future::ResponseFuture;
pub use layer::ThreeScaleLayer;
pub use service::{HttpRequestView, ThreeScaleService};
pub use threescale_core::AuthContext;
