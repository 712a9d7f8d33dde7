//! Response headers: rate-limit headers from the backend's limit figures, and the
//! gateway's debug headers (only for requests that carry the debug secret).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{
    backend::{AppCredentials, LimitHeaders},
    config::RateLimitHeaders,
    decision::RateLimit,
    xml::UsageReport,
};

/// `RateLimit-Limit`.
pub(crate) const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`.
pub(crate) const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`.
pub(crate) const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit` (IETF draft structured field).
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Policy` (IETF draft structured field).
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// The request header that turns on debug headers when it equals the service's secret.
pub(crate) const DEBUG_REQUEST: &str = "x-3scale-debug";

/// Rate-limit figures from the backend's `3scale-limit-*` headers, as the
/// gateway's rate-limit-headers policy reads them: none when the reset is ≤ 0
/// (no limit applies), negative values shown as 0. The window comes from the
/// usage report the figures belong to, when one matches.
///
/// ```ignore
/// // Crate-private: runs as a unit test below.
/// use threescale_core::{LimitHeaders, headers::rate_limit_from};
/// let figures = rate_limit_from(&LimitHeaders { remaining: 4, reset: 30, max_value: Some(5) }, &[]).unwrap();
/// assert_eq!((figures.limit, figures.remaining, figures.reset), (5, 4, 30));
/// assert!(rate_limit_from(&LimitHeaders { remaining: -1, reset: -1, max_value: None }, &[]).is_none());
/// ```
pub(crate) fn rate_limit_from(
    headers: &LimitHeaders,
    reports: &[UsageReport],
) -> Option<RateLimit> {
    if headers.reset <= 0 {
        return None;
    }
    let limit = headers.max_value.unwrap_or(0).max(0) as u64;
    let window = reports
        .iter()
        .filter(|r| r.max_value == limit)
        .find_map(|r| {
            let (start, end) = (r.period_start?, r.period_end?);
            Some((end - start).num_seconds().max(0) as u64)
        });
    Some(RateLimit {
        limit,
        remaining: headers.remaining.max(0) as u64,
        reset: headers.reset as u64,
        window,
    })
}

/// Adds the rate-limit headers of `style` for `figures` to `headers`.
///
/// ```ignore
/// // Crate-private: runs as a unit test below.
/// use http::HeaderMap;
/// use threescale_core::{RateLimit, RateLimitHeaders, headers::insert_rate_limit};
/// let mut headers = HeaderMap::new();
/// let figures = RateLimit { limit: 5, remaining: 4, reset: 30, window: Some(60) };
/// insert_rate_limit(&mut headers, RateLimitHeaders::Legacy, &figures);
/// assert_eq!(headers["ratelimit-remaining"], "4");
/// let mut headers = HeaderMap::new();
/// insert_rate_limit(&mut headers, RateLimitHeaders::Ietf, &figures);
/// assert_eq!(headers["ratelimit"], "\"default\";r=4;t=30");
/// assert_eq!(headers["ratelimit-policy"], "\"default\";q=5;w=60");
/// ```
pub(crate) fn insert_rate_limit(
    headers: &mut HeaderMap,
    style: RateLimitHeaders,
    figures: &RateLimit,
) {
    match style {
        RateLimitHeaders::Off => {}
        RateLimitHeaders::Legacy => {
            headers.insert(RATELIMIT_LIMIT, HeaderValue::from(figures.limit));
            headers.insert(RATELIMIT_REMAINING, HeaderValue::from(figures.remaining));
            headers.insert(RATELIMIT_RESET, HeaderValue::from(figures.reset));
        }
        RateLimitHeaders::Ietf => {
            let value = format!("\"default\";r={};t={}", figures.remaining, figures.reset);
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(RATELIMIT, value);
            }
            let mut policy = format!("\"default\";q={}", figures.limit);
            if let Some(window) = figures.window {
                policy.push_str(&format!(";w={window}"));
            }
            if let Ok(value) = HeaderValue::from_str(&policy) {
                headers.insert(RATELIMIT_POLICY, value);
            }
        }
    }
}

/// What the debug headers show for one request.
#[derive(Debug)]
pub(crate) struct DebugInfo<'a> {
    /// Original patterns of the matched rules.
    pub matched_patterns: Vec<&'a str>,
    /// The credentials found.
    pub credentials: &'a AppCredentials,
    /// The encoded usage (`usage%5Bhits%5D=1`).
    pub encoded_usage: String,
    /// Service id.
    pub service_id: &'a str,
    /// Service system name.
    pub service_name: Option<&'a str>,
}

/// Adds the gateway's debug headers (`X-3scale-matched-rules`, `X-3scale-credentials`,
/// `X-3scale-usage`, `X-3scale-service-id`, `X-3scale-service-name`).
pub(crate) fn insert_debug(headers: &mut HeaderMap, info: &DebugInfo<'_>) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-3scale-matched-rules", info.matched_patterns.join(", "));
    put("x-3scale-credentials", encode_credentials(info.credentials));
    put("x-3scale-usage", info.encoded_usage.clone());
    put("x-3scale-service-id", info.service_id.to_string());
    if let Some(name) = info.service_name {
        put("x-3scale-service-name", name.to_string());
    }
}

/// The credentials as URL-encoded args, as the gateway shows them.
fn encode_credentials(credentials: &AppCredentials) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    match credentials {
        AppCredentials::UserKey(key) => {
            out.append_pair("user_key", key.expose());
        }
        AppCredentials::AppId { app_id, app_key } => {
            out.append_pair("app_id", app_id);
            if let Some(key) = app_key {
                out.append_pair("app_key", key.expose());
            }
        }
    }
    out.finish()
}

/// The usage encoded as the gateway sends it: `usage%5Bm%5D=n`, keys sorted.
pub(crate) fn encode_usage(usage: &crate::Usage) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (metric, value) in usage.sorted() {
        out.append_pair(&format!("usage[{metric}]"), &value.to_string());
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_headers_become_figures_when_a_limit_applies() {
        let headers = LimitHeaders {
            remaining: 4,
            reset: 30,
            max_value: Some(5),
        };
        let figures = rate_limit_from(&headers, &[]).unwrap();
        assert_eq!(
            (figures.limit, figures.remaining, figures.reset),
            (5, 4, 30)
        );
        let none = LimitHeaders {
            remaining: -1,
            reset: -1,
            max_value: None,
        };
        assert!(rate_limit_from(&none, &[]).is_none());
    }

    #[test]
    fn figures_are_written_in_the_chosen_style() {
        let figures = RateLimit {
            limit: 5,
            remaining: 4,
            reset: 30,
            window: Some(60),
        };
        let mut headers = HeaderMap::new();
        insert_rate_limit(&mut headers, RateLimitHeaders::Legacy, &figures);
        assert_eq!(headers["ratelimit-remaining"], "4");
        let mut headers = HeaderMap::new();
        insert_rate_limit(&mut headers, RateLimitHeaders::Ietf, &figures);
        assert_eq!(headers["ratelimit"], "\"default\";r=4;t=30");
        assert_eq!(headers["ratelimit-policy"], "\"default\";q=5;w=60");
    }
}
