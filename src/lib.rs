//! # threescale
//!
//! 3scale API management (API keys, app id/key pairs, rate limits, usage
//! analytics) inside Rust web services, without a gateway hop.
//!
//! - [`ThreeScale`]: the engine (credentials, mapping rules, backend client,
//!   cache, batched reports), built from a [`Config`].
//! - `tower::ThreeScaleLayer` (feature `tower`): `.layer(ThreeScaleLayer::new(engine))`
//!   in axum, hyper or tonic.
//! - `actix::ThreeScaleMiddleware` (feature `actix`): `.wrap(ThreeScaleMiddleware::new(engine))` in actix-web.
//! - `emulator` (feature `emulator`): a local 3scale backend for development and
//!   tests, usually turned on in `[dev-dependencies]` only.
//!
//! ## Features
//!
//! | feature | default | what it adds | what it pulls in |
//! |---|---|---|---|
//! | `tower` | yes | the `tower` module: the tower `Layer` and the axum `Auth` extractor | `threescale-tower`, axum |
//! | `yaml` | yes | configuration files in YAML (`Config::from_file`); without it they are read as JSON only | serde_yaml_ng |
//! | `actix` | no | the `actix` module: the actix-web middleware | `threescale-actix`, actix-web |
//! | `emulator` | no | the `emulator` module: a local 3scale backend (start it, configure it, read usage, inject faults) | `threescale-emulator`, axum |
//! | `openapi` | no | mapping rules from an OpenAPI 3 document (`MappingRules::from_openapi`, the `openapi` module); turns on `yaml` | openapiv3 |
//!
//! Loading from the admin portal (`Config::from_portal`, `ThreeScale::from_env`
//! with `THREESCALE_PORTAL_ENDPOINT`) needs no feature: it uses the HTTP client
//! the engine has anyway. The command-line tool (`threescale map`, `emulate`,
//! `import-openapi`, `authrep`) is the separate `threescale-cli` package.
//!
//! A typical axum service:
//!
//! ```toml
//! [dependencies]
//! threescale = "0.1"
//!
//! [dev-dependencies]
//! threescale = { version = "0.1", features = ["emulator"] }
//! ```
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
//!
//! The README's examples are compiled as doc tests too (`cargo test --doc`).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![deny(unreachable_pub)]
#![warn(missing_docs)]

pub use threescale_core::*;

/// The local 3scale backend emulator (feature `emulator`).
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub use threescale_emulator as emulator;

/// The tower / axum adapter (feature `tower`).
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower {
    pub use threescale_tower::*;
}

/// The actix-web adapter (feature `actix`).
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix {
    pub use threescale_actix::*;
}

/// The README's code blocks, compiled and checked by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
