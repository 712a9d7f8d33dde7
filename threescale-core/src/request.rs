//! [`RequestPolicy`]: what the engine refuses to take from a request before it
//! asks anyone anything.
//!
//! - **Credentials** longer than a maximum (by default [`DEFAULT_MAX_CREDENTIAL_LEN`]
//!   bytes for keys and ids, [`DEFAULT_MAX_TOKEN_LEN`] for bearer tokens) or
//!   holding a control character are refused as an authentication failure (403),
//!   with no backend call: an over-long value would otherwise make the backend
//!   call itself fail.
//! - **Ambiguous paths** (an encoded `/`, `.` or other character that never
//!   needs encoding, an invalid `%` escape, a `.` or `..` segment, an empty
//!   segment) are refused with 400 under [`PathPolicy::Strict`] (the default):
//!   web frameworks and proxies read such paths differently, so the route served
//!   and the mapping rule counted could disagree. [`PathPolicy::Normalise`] keeps
//!   the gateway's normalise-then-match, for services behind a proxy that already
//!   normalises paths.
//! - **Queries** with more arguments than the mapping rules read
//!   ([`MAX_QUERY_ARGS`]) are refused with 400: a query is read whole or not at all.
//! - **Bypass paths** match whole segments of the normalised path the mapping
//!   rules see: `/health` matches `/health` and `/health/live`, never `/healthcare`.
//!
//! ```
//! use threescale_core::request::{PathPolicy, RequestPolicy};
//! let policy = RequestPolicy::default();
//! assert!(policy.path_is_acceptable("/orders/1"));
//! assert!(!policy.path_is_acceptable("/orders/a%2Fb"));
//! assert!(!policy.path_is_acceptable("/orders//1"));
//! let lenient = RequestPolicy::default().paths(PathPolicy::Normalise);
//! assert!(lenient.path_is_acceptable("/orders//1"));
//! ```

use crate::backend::AppCredentials;
use crate::mapping::path::{hex_value, normalize_path};

/// The default maximum length in bytes of a user key, app id or app key.
pub const DEFAULT_MAX_CREDENTIAL_LEN: usize = 256;

/// The default maximum length in bytes of an OAuth/OIDC access token (JWTs run
/// to several KB).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// The most query arguments a request may carry: as many as the mapping rules
/// read (the gateway's limit), so a condition is never hidden past the end.
pub const MAX_QUERY_ARGS: usize = crate::mapping::query::MAX_ARGS;

/// What to do with a path that web servers read in different ways.
/// Deserialised from `strict` or `normalise` (also spelt `normalize`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathPolicy {
    /// Refuse ambiguous paths with 400 (`DenialKind::BadRequest`) before any
    /// backend call (default).
    #[default]
    Strict,
    /// Normalise the path as the gateway does (decode, merge slashes, resolve dot
    /// segments) and match that. Only safe when a proxy in front of the service
    /// already normalises paths the same way, so the framework routes what the
    /// rules count.
    #[serde(alias = "normalize")]
    Normalise,
}

impl PathPolicy {
    /// Parses `strict` or `normalise` (also spelt `normalize`).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "strict" => Some(PathPolicy::Strict),
            "normalise" | "normalize" => Some(PathPolicy::Normalise),
            _ => None,
        }
    }
}

/// Limits a request must meet before the engine asks the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RequestPolicy {
    /// Longest user key, app id or app key, in bytes.
    pub max_credential_len: usize,
    /// Longest OAuth/OIDC access token, in bytes.
    pub max_token_len: usize,
    /// What to do with ambiguous paths.
    pub paths: PathPolicy,
}

impl Default for RequestPolicy {
    fn default() -> Self {
        RequestPolicy {
            max_credential_len: DEFAULT_MAX_CREDENTIAL_LEN,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            paths: PathPolicy::default(),
        }
    }
}

impl RequestPolicy {
    /// Sets `max_credential_len` (builder style, for code outside this crate).
    ///
    /// ```
    /// use threescale_core::{PathPolicy, RequestPolicy};
    /// let policy = RequestPolicy::default().max_credential_len(64).paths(PathPolicy::Normalise);
    /// assert_eq!((policy.max_credential_len, policy.paths), (64, PathPolicy::Normalise));
    /// ```
    pub fn max_credential_len(mut self, bytes: usize) -> Self {
        self.max_credential_len = bytes;
        self
    }

    /// Sets `max_token_len` (builder style).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Sets `paths` (builder style).
    pub fn paths(mut self, paths: PathPolicy) -> Self {
        self.paths = paths;
        self
    }

    /// Whether a key or id may be sent to the backend: at most
    /// `max_credential_len` bytes, no control character.
    pub fn credential_is_acceptable(&self, value: &str) -> bool {
        value_is_acceptable(value, self.max_credential_len)
    }

    /// Whether an access token may be given to the token verifier: at most
    /// `max_token_len` bytes, no control character.
    pub fn token_is_acceptable(&self, token: &str) -> bool {
        value_is_acceptable(token, self.max_token_len)
    }

    /// Whether every part of `credentials` is acceptable.
    ///
    /// ```
    /// use threescale_core::{AppCredentials, request::RequestPolicy};
    /// let policy = RequestPolicy::default();
    /// assert!(policy.credentials_are_acceptable(&AppCredentials::app_id_key("app", "key")));
    /// assert!(!policy.credentials_are_acceptable(&AppCredentials::app_id_key("app", "k".repeat(300))));
    /// assert!(!policy.credentials_are_acceptable(&AppCredentials::user_key("a\nb")));
    /// ```
    pub fn credentials_are_acceptable(&self, credentials: &AppCredentials) -> bool {
        match credentials {
            AppCredentials::UserKey(key) => self.credential_is_acceptable(key.expose()),
            AppCredentials::AppId { app_id, app_key } => {
                self.credential_is_acceptable(app_id)
                    && app_key
                        .as_ref()
                        .is_none_or(|key| self.credential_is_acceptable(key.expose()))
            }
        }
    }

    /// Whether the raw path (percent-encoded, as received) may be matched:
    /// always under [`PathPolicy::Normalise`], else when it is not ambiguous
    /// (see [`path_is_ambiguous`]).
    pub fn path_is_acceptable(&self, raw_path: &str) -> bool {
        match self.paths {
            PathPolicy::Normalise => true,
            PathPolicy::Strict => !path_is_ambiguous(raw_path),
        }
    }
}

fn value_is_acceptable(value: &str, max_len: usize) -> bool {
    value.len() <= max_len && !value.chars().any(char::is_control)
}

/// Whether web servers may read the raw path `raw` (percent-encoded, as
/// received, without the query) in different ways: it does not start with `/`
/// (an empty path is `/`), has an empty segment (`//`), a `.` or `..` segment,
/// an invalid `%` escape, or an escape of a character that never needs one
/// (`/`, `\`, letters, digits, `-`, `.`, `_`, `~`).
///
/// ```
/// use threescale_core::request::path_is_ambiguous;
/// for ok in ["/", "", "/orders/1", "/orders/1/", "/caf%C3%A9", "/100%25", "/a%20b", "/.well-known/x"] {
///     assert!(!path_is_ambiguous(ok), "{ok}");
/// }
/// for bad in ["/orders//1", "/orders/./1", "/orders/..", "/a/%2e%2e/b", "/a%2Fb", "/%6Frders", "/a%zz", "/a%2", "orders"] {
///     assert!(path_is_ambiguous(bad), "{bad}");
/// }
/// ```
pub fn path_is_ambiguous(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    if bytes[0] != b'/' {
        return true;
    }
    // Each segment after the leading `/`; the last one may be empty (a trailing `/`).
    let mut segments = raw[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if (segment.is_empty() && !last) || segment == "." || segment == ".." {
            return true;
        }
        let s = segment.as_bytes();
        let mut i = 0;
        while i < s.len() {
            if s[i] == b'%' {
                let (Some(hi), Some(lo)) = (
                    s.get(i + 1).copied().and_then(hex_value),
                    s.get(i + 2).copied().and_then(hex_value),
                ) else {
                    return true;
                };
                let decoded = (hi << 4) | lo;
                if decoded.is_ascii_alphanumeric()
                    || matches!(decoded, b'/' | b'\\' | b'-' | b'.' | b'_' | b'~')
                {
                    return true;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
    }
    false
}

/// Whether the raw query holds more arguments than the mapping rules read
/// (arguments with an empty name are not counted, as the rules skip them).
///
/// ```
/// use threescale_core::request::{query_is_too_long, MAX_QUERY_ARGS};
/// let args = |n: usize| (0..n).map(|i| format!("a{i}=1")).collect::<Vec<_>>().join("&");
/// assert!(!query_is_too_long(&args(MAX_QUERY_ARGS)));
/// assert!(query_is_too_long(&args(MAX_QUERY_ARGS + 1)));
/// assert!(!query_is_too_long(&"&".repeat(500)));
/// ```
pub fn query_is_too_long(query: &str) -> bool {
    query
        .split('&')
        .filter(|piece| !piece.is_empty() && !piece.starts_with('='))
        .nth(MAX_QUERY_ARGS)
        .is_some()
}

/// A bypass path prepared for matching whole segments of normalised paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BypassPath(String);

impl BypassPath {
    /// `prefix` normalised as request paths are, without a trailing `/`
    /// (so `/` bypasses everything).
    pub(crate) fn new(prefix: &str) -> Self {
        let normal = normalize_path(prefix);
        BypassPath(normal.trim_end_matches('/').to_string())
    }

    /// Whether the normalised path is this path or below it.
    pub(crate) fn matches(&self, normal_path: &str) -> bool {
        match normal_path.strip_prefix(self.0.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bypassed(prefix: &str, raw: &str) -> bool {
        BypassPath::new(prefix).matches(&normalize_path(raw))
    }

    #[test]
    fn bypass_matches_whole_segments_of_the_normalised_path() {
        for yes in ["/health", "/health/", "/health/live", "/health%2Flive"] {
            assert!(bypassed("/health", yes), "{yes}");
            assert!(bypassed("/health/", yes), "{yes}");
        }
        for no in [
            "/healthcare/42",
            "/health-admin/secret",
            "/health/../orders/1",
            "/health/%2e%2e/orders/1",
            "/health%2F..%2Forders%2F1",
            "/heal",
            "/",
        ] {
            assert!(!bypassed("/health", no), "{no}");
        }
        assert!(bypassed("/", "/anything"));
        assert!(bypassed("/a b", "/a%20b/c"));
    }

    #[test]
    fn the_issue_paths_are_ambiguous() {
        for raw in [
            "/orders/1%2F",
            "/orders/a%2Fb",
            "/orders/%2e",
            "/orders/%2E%2E",
            "/reports/..%2Fq1",
            "/orders//1",
            "//orders/1",
            "/health/../orders/1",
            "/a/%5c/b",
        ] {
            assert!(path_is_ambiguous(raw), "{raw}");
        }
    }

    #[test]
    fn credentials_limits_and_control_characters() {
        let policy = RequestPolicy {
            max_credential_len: 4,
            max_token_len: 6,
            paths: PathPolicy::Strict,
        };
        assert!(policy.credential_is_acceptable("abcd"));
        assert!(policy.credential_is_acceptable(""));
        assert!(!policy.credential_is_acceptable("abcde"));
        assert!(!policy.credential_is_acceptable("a\u{7f}"));
        assert!(!policy.credential_is_acceptable("a\u{85}"));
        assert!(policy.token_is_acceptable("abcdef"));
        assert!(!policy.token_is_acceptable("abcdefg"));
        assert!(!policy.token_is_acceptable("a\tb"));
    }

    proptest::proptest! {
        #[test]
        fn no_panic_on_any_path_or_query(raw in "\\PC{0,64}", query in "\\PC{0,64}") {
            let _ = path_is_ambiguous(&raw);
            let _ = query_is_too_long(&query);
            let _ = bypassed("/health", &raw);
        }

        #[test]
        fn an_unambiguous_path_normalises_to_the_same_segments(raw in "(/([a-z0-9]|%[2-7][0-9A-F]|%C3%A9){0,3}){1,4}") {
            // A path that is not ambiguous keeps its segment count when normalised.
            if !path_is_ambiguous(&raw) {
                let normal = normalize_path(&raw);
                proptest::prop_assert_eq!(raw.matches('/').count(), normal.matches('/').count());
            }
        }
    }
}
