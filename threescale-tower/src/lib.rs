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
//! extensions (in axum: the [`Auth`] extractor, or `Extension<AuthContext>`),
//! and their response gets the engine's rate-limit (and, on request, debug)
//! headers. Denied requests get the configured error response, or the response
//! of a hook set with [`ThreeScaleLayer::on_denied`]; either way the [`Denial`]
//! is in the response's extensions, for outer layers to see. The future is a
//! named state machine; nothing is boxed unless the backend must be asked.
//!
//! ```
//! use axum::{Json, Router, response::IntoResponse, routing::get};
//! use http::{HeaderValue, Request, StatusCode};
//! use threescale_core::{Config, Denial, ThreeScale};
//! use threescale_tower::ThreeScaleLayer;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let config = Config::builder()
//!     .service_token("token", "42")
//!     .rule("GET", "/orders/{id}", "hits", 1)
//!     .build()
//!     .unwrap();
//! let engine = ThreeScale::new(config).unwrap();
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "order" }))
//!     // Denials as JSON, with the request's path.
//!     .layer(ThreeScaleLayer::new(engine).on_denied(|denial, parts| {
//!         let body = std::collections::BTreeMap::from([
//!             ("error", format!("{:?}", denial.kind)),
//!             ("path", parts.uri.path().to_string()),
//!         ]);
//!         (StatusCode::UNAUTHORIZED, Json(body)).into_response()
//!     }))
//!     // An outer layer sees why a request was denied.
//!     .layer(tower::util::MapResponseLayer::new(|mut response: axum::response::Response| {
//!         if let Some(denial) = response.extensions().get::<Denial>() {
//!             let kind = HeaderValue::from_str(&format!("{:?}", denial.kind)).unwrap();
//!             response.headers_mut().insert("x-denied", kind);
//!         }
//!         response
//!     }));
//!
//! // No credentials: decided at once, without asking the backend.
//! let request = Request::get("/orders/7").body(axum::body::Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["x-denied"], "AuthMissing");
//! let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
//! assert_eq!(&body[..], br#"{"error":"AuthMissing","path":"/orders/7"}"#);
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![deny(unreachable_pub)]
#![warn(missing_docs)]

mod body;
mod denied;
mod future;
mod layer;
mod service;

#[cfg(feature = "axum")]
mod extract;

pub use body::ResponseBody;
pub use denied::{Configured, OnDenied, OnDeniedFn};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{Auth, AuthRejection};
pub use future::ResponseFuture;
pub use layer::ThreeScaleLayer;
#[allow(deprecated)]
pub use service::HttpRequestView;
pub use service::ThreeScaleService;
pub use threescale_core::{AddedUsage, AuthContext, Denial, DenialKind};
