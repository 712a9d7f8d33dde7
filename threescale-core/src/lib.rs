//! The 3scale authrep engine, independent of any web framework.
//!
//! It finds credentials in a request ([`credentials`]), maps method, path and
//! query to metric usage with 3scale mapping rules ([`mapping`]), asks the 3scale
//! Service Management API ([`backend`]), and decides: allow, or deny with a
//! reason ([`decision`]).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![deny(unreachable_pub)]
#![warn(missing_docs)]

pub mod action;
pub mod backend;
mod cache;
pub mod completion;
pub mod config;
pub mod credentials;
pub mod decision;
pub mod engine;
mod headers;
pub mod mapping;
pub mod metrics;
pub mod oidc;
#[cfg(feature = "openapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub mod openapi;
mod outage_log;
mod report;
pub mod request;
pub mod response;
pub mod secret;
pub mod services;
mod spans;
pub mod tls;
pub mod usage;
mod verdict;
pub mod xml;

#[cfg(test)]
mod tests;

/// Locks `mutex`, taking the data even when a thread panicked while holding
/// it: every lock in this crate guards state that stays consistent between
/// statements, so a panic elsewhere must not turn into a panic here.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use action::Action;
pub use backend::{
    AppCredentials, AuthRequest, AuthResponse, BackendClient, BackendClientBuilder, BackendError,
    Extensions, LimitHeaders, ProviderAuth, Redirect, ReportAccepted, Transaction,
};
pub use completion::{AddedUsage, Completion};
pub use config::{
    CacheSettings, Config, ConfigBuilder, ConfigError, DeploymentEnv, FailurePolicy, Mode, Portal,
    RateLimitHeaders, RulesFile, ServiceConfig,
};
pub use credentials::{
    BackendVersion, ConflictingCredentials, CredentialsConfig, CredentialsLocation,
    RequestCredentials, RequestView, SimpleRequest,
};
pub use decision::{
    AuthContext, CredentialKind, Decision, Denial, DenialKind, ProxyErrorKeys, RateLimit,
};
pub use engine::{EngineStats, Outcome, PendingCheck, StartError, Step, ThreeScale, TokenVerifier};
pub use mapping::{MappingError, MappingRule, MappingRules, MatchResult, RuleIndices};
pub use report::ReportStats;
pub use request::{PathPolicy, RequestPolicy};
pub use response::{ErrorResponse, ErrorResponses};
pub use secret::Secret;
pub use services::{PathRouting, Services};
pub use tls::{TlsError, TlsTrust};
pub use usage::{Usage, UsageValue};
pub use xml::{Authorization, Period, UsageReport, XmlError};
