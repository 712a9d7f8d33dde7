//! Errors of the crate: [`EmulatorError`] for callers, and the backend's own error codes
//! (code, message, HTTP status) that the emulator answers with.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong when configuring or starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The config file could not be read.
    #[error("cannot read emulator config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The config is not valid YAML/JSON of the expected shape.
    #[error("cannot parse emulator config: {0}")]
    Parse(String),
    /// The config is well formed but inconsistent (unknown plan, metric, duplicate id...).
    #[error("invalid emulator config: {0}")]
    Invalid(String),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("emulator server failed: {0}")]
    Serve(#[source] io::Error),
    /// The TLS certificate, key or client CA could not be read or used.
    #[error("emulator TLS: {0}")]
    Tls(String),
}

/// One of the backend's errors: the `code` attribute, the message and the HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BackendError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

/// Ruby's `String#blank?` as the backend defines it: no non-whitespace character.
pub(crate) fn ruby_blank(s: &str) -> bool {
    !s.chars()
        .any(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
}

fn new(code: &'static str, status: u16, message: impl Into<String>) -> BackendError {
    BackendError {
        code,
        message: message.into(),
        status,
    }
}

impl BackendError {
    /// An exception the backend does not handle: the HTTP server in front of it
    /// (puma) answers a bare 500.
    pub(crate) fn internal() -> Self {
        new("internal_server_error", 500, "Internal Server Error")
    }
    pub(crate) fn bad_request() -> Self {
        new(
            "bad_request",
            400,
            "request contains syntax errors, should not be repeated without modification",
        )
    }
    pub(crate) fn bad_request_with(message: impl Into<String>) -> Self {
        new("bad_request", 400, message)
    }
    pub(crate) fn not_valid_data() -> Self {
        new("not_valid_data", 422, "all data must be valid UTF8")
    }
    pub(crate) fn provider_key_invalid(key: &str) -> Self {
        new(
            "provider_key_invalid",
            403,
            format!("provider key \"{key}\" is invalid"),
        )
    }
    pub(crate) fn provider_key_invalid_or_service_missing(key: &str) -> Self {
        new(
            "provider_key_invalid_or_service_missing",
            403,
            format!("provider key \"{key}\" invalid and/or service ID missing"),
        )
    }
    pub(crate) fn provider_key_or_service_token_required() -> Self {
        new(
            "provider_key_or_service_token_required",
            403,
            "Provider key or service token are required",
        )
    }
    pub(crate) fn service_id_missing() -> Self {
        new("service_id_missing", 422, "Service ID is missing")
    }
    pub(crate) fn service_token_invalid(token: &str, service_id: &str) -> Self {
        new(
            "service_token_invalid",
            403,
            format!("service token \"{token}\" or service id \"{service_id}\" is invalid"),
        )
    }
    pub(crate) fn service_id_invalid(id: &str) -> Self {
        new(
            "service_id_invalid",
            403,
            format!("service id \"{id}\" is invalid"),
        )
    }
    pub(crate) fn application_not_found(id: Option<&str>) -> Self {
        match id {
            Some(id) if !ruby_blank(id) => new(
                "application_not_found",
                404,
                format!("application with id=\"{id}\" was not found"),
            ),
            _ => new("application_not_found", 404, "application id is missing"),
        }
    }
    pub(crate) fn user_key_invalid(key: Option<&str>) -> Self {
        match key {
            Some(k) if !ruby_blank(k) => new(
                "user_key_invalid",
                403,
                format!("user key \"{k}\" is invalid"),
            ),
            _ => new("user_key_invalid", 403, "user key is missing"),
        }
    }
    pub(crate) fn authentication_error() -> Self {
        new(
            "authentication_error",
            403,
            "either app_id or user_key is allowed, not both",
        )
    }
    pub(crate) fn metric_invalid(name: &str) -> Self {
        new(
            "metric_invalid",
            404,
            format!("metric \"{name}\" is invalid"),
        )
    }
    /// `value` is `None` when the value is not a string.
    pub(crate) fn usage_value_invalid(metric: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) if !ruby_blank(v) => new(
                "usage_value_invalid",
                403,
                format!("usage value \"{v}\" for metric \"{metric}\" is invalid"),
            ),
            _ => new(
                "usage_value_invalid",
                403,
                format!("usage value for metric \"{metric}\" can not be empty"),
            ),
        }
    }
    pub(crate) fn content_type_invalid(media_type: &str) -> Self {
        new(
            "content_type_invalid",
            400,
            format!("invalid Content-Type: {media_type}"),
        )
    }
    pub(crate) fn transactions_is_blank() -> Self {
        new(
            "transactions_is_blank",
            400,
            "transactions parameter is blank",
        )
    }
    pub(crate) fn transactions_format_invalid() -> Self {
        new(
            "transactions_format_invalid",
            400,
            "transactions format is invalid",
        )
    }
    pub(crate) fn transactions_has_nil_transaction() -> Self {
        new(
            "transactions_has_nil_transaction",
            400,
            "transactions has a nil transaction",
        )
    }
    pub(crate) fn end_users_no_longer_supported() -> Self {
        new(
            "end_users_no_longer_supported",
            400,
            "End-users are no longer supported, do not specify the user_id parameter",
        )
    }
    pub(crate) fn transaction_timestamp_too_old() -> Self {
        new(
            "transaction_timestamp_too_old",
            403,
            format!(
                "reporting transactions older than {} seconds is not allowed",
                crate::timestamp::REPORT_DEADLINE_PAST
            ),
        )
    }
    pub(crate) fn transaction_timestamp_too_new() -> Self {
        new(
            "transaction_timestamp_too_new",
            403,
            format!(
                "reporting transactions more than {} seconds in the future is not allowed",
                crate::timestamp::REPORT_DEADLINE_FUTURE
            ),
        )
    }
}

/// A denial of the validator chain (answered with 409 and a `<status>` body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub(crate) fn application_key_invalid(key: Option<&str>) -> Self {
        match key {
            Some(k) if !ruby_blank(k) => Self::new(
                "application_key_invalid",
                format!("application key \"{k}\" is invalid"),
            ),
            _ => Self::new("application_key_invalid", "application key is missing"),
        }
    }
    pub(crate) fn application_not_active() -> Self {
        Self::new("application_not_active", "application is not active")
    }
    pub(crate) fn service_not_active() -> Self {
        Self::new("service_not_active", "service is not active")
    }
    pub(crate) fn limits_exceeded() -> Self {
        Self::new("limits_exceeded", "usage limits are exceeded")
    }
    pub(crate) fn referrer_not_allowed(referrer: Option<&str>) -> Self {
        match referrer {
            Some(r) if !ruby_blank(r) => Self::new(
                "referrer_not_allowed",
                format!("referrer \"{r}\" is not allowed"),
            ),
            _ => Self::new("referrer_not_allowed", "referrer is missing"),
        }
    }
    pub(crate) fn oauth_not_enabled() -> Self {
        Self::new("oauth_not_enabled", "oauth is not enabled")
    }
    pub(crate) fn redirect_url_invalid(url: &str) -> Self {
        Self::new(
            "redirect_url_invalid",
            format!("redirect_url \"{url}\" is invalid"),
        )
    }
    pub(crate) fn redirect_uri_invalid(uri: &str) -> Self {
        Self::new(
            "redirect_uri_invalid",
            format!("redirect_uri \"{uri}\" is invalid"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_backend() {
        assert_eq!(
            BackendError::application_not_found(Some("boo")).message,
            "application with id=\"boo\" was not found"
        );
        assert_eq!(
            BackendError::application_not_found(Some("  ")).message,
            "application id is missing"
        );
        assert_eq!(
            BackendError::user_key_invalid(None).message,
            "user key is missing"
        );
        assert_eq!(
            BackendError::usage_value_invalid("hits", Some(" ")).message,
            "usage value for metric \"hits\" can not be empty"
        );
        assert_eq!(
            BackendError::usage_value_invalid("hits", Some("-1")).message,
            "usage value \"-1\" for metric \"hits\" is invalid"
        );
        assert_eq!(BackendError::service_id_missing().status, 422);
        assert_eq!(
            BackendError::transaction_timestamp_too_old().message,
            "reporting transactions older than 86400 seconds is not allowed"
        );
        assert_eq!(
            Rejection::application_key_invalid(Some("")).message,
            "application key is missing"
        );
    }
}
