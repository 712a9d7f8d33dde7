//! What the backend records about a request in an error log entry's
//! `context_info`: apisonator's listener stores its `request_info` (URL, method,
//! form body, user agent, client IP, content type and length, the parsed
//! `3scale-options`) with the errors of the auth endpoints. Errors found later by
//! its report worker carry an empty `context_info`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::header;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::params::{Params, Value, parse_nested_query};

/// The peer address of a connection, for `context_info.ip`: the connect info
/// both the plain and the TLS listener give.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub(crate) SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// An error log entry's `context_info`: the request, for errors of the auth
/// endpoints; empty (`{}`) for errors found while applying a report.
///
/// ```
/// let empty = threescale_emulator::ContextInfo::default();
/// assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ContextInfo {
    /// What the listener knew about the request.
    Request(RequestInfo),
    /// Nothing (`{}`).
    Empty(Empty),
}

impl Default for ContextInfo {
    fn default() -> Self {
        ContextInfo::Empty(Empty {})
    }
}

/// The empty `context_info` object, `{}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// apisonator's `request_info`, field for field and in its order.
///
/// ```
/// let json = r#"{"url":"http://127.0.0.1:3001/transactions/authorize.xml","method":"GET",
///   "form_vars":null,"user_agent":"curl/8","ip":"127.0.0.1","content_type":null,
///   "content_length":null,"extensions":{}}"#;
/// let info: threescale_emulator::RequestInfo = serde_json::from_str(json).unwrap();
/// assert_eq!(info.method, "GET");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestInfo {
    /// Rack's `Request#url`: scheme, `Host`, path and query as received.
    pub url: String,
    /// The request method.
    pub method: String,
    /// The raw body, when it was read as a url-encoded form.
    pub form_vars: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The client address as Rack's `Request#ip` tells it.
    pub ip: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Content-Length` header, as sent.
    pub content_length: Option<String>,
    /// The `3scale-options` header as Rack parses it (`{}` without one).
    pub extensions: Json,
}

/// The `context_info` of an auth call's error. `params` are the request's
/// parameters (query and form body); `form_body` is the raw body when it was
/// read as a url-encoded form (Rack's `rack.request.form_vars`).
pub(crate) fn request_info(
    parts: &Parts,
    params: &Params,
    form_body: Option<&[u8]>,
) -> ContextInfo {
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    ContextInfo::Request(RequestInfo {
        url: url(parts),
        method: parts.method.to_string(),
        form_vars: form_body.map(|b| String::from_utf8_lossy(b).into_owned()),
        user_agent: header(header::USER_AGENT),
        ip: client_ip(parts),
        content_type: header(header::CONTENT_TYPE),
        content_length: header(header::CONTENT_LENGTH),
        extensions: extensions(parts, params),
    })
}

/// Rack's `Request#url`: scheme, the `Host` header (or the local address) and
/// the path with its query, as received.
fn url(parts: &Parts) -> String {
    let host = parts
        .headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let host = host.strip_suffix(":80").unwrap_or(&host);
    let target = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    format!("http://{host}{target}")
}

/// Rack's `Request#ip`: the peer unless it is a trusted proxy (loopback or a
/// private network), else the last untrusted `X-Forwarded-For` address (the
/// first one when all are trusted), else the peer.
fn client_ip(parts: &Parts) -> Option<String> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(Peer(addr))| addr.ip().to_string());
    if let Some(p) = &peer
        && !trusted(p)
    {
        return peer;
    }
    let forwarded: Vec<String> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .or_else(|| forwarded.first())
            .cloned();
    }
    peer
}

/// Rack's trusted proxies: loopback, private IPv4 ranges, `fc00::/7`,
/// `localhost` and unix sockets.
fn trusted(ip: &str) -> bool {
    if ip.eq_ignore_ascii_case("localhost") || ip.starts_with("unix") {
        return true;
    }
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback() || v4.is_private(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => false,
    }
}

/// The listener's extensions: the `3scale-options` header parsed as Rack parses
/// it (`{}` without one), with `no_body` (from the header, else the deprecated
/// `no_body` parameter) turned into a boolean: false for `false` and `0`.
fn extensions(parts: &Parts, params: &Params) -> Json {
    let mut options = Params::new();
    if let Some(h) = parts.headers.get("3scale-options") {
        // A malformed header never gets here: the listener answers 500 first.
        let _ = parse_nested_query(h.as_bytes(), &mut options);
    }
    let no_body = options
        .get("no_body")
        .filter(|v| !matches!(v, Value::Nil))
        .or_else(|| params.get("no_body"))
        .filter(|v| !matches!(v, Value::Nil))
        .map(|v| !matches!(v, Value::Str(s) if s == b"false" || s == b"0"));
    let mut json = hash(&options);
    if let (Some(flag), Json::Object(map)) = (no_body, &mut json) {
        map.insert("no_body".into(), Json::Bool(flag));
    }
    json
}

fn hash(params: &Params) -> Json {
    Json::Object(
        params
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), value(v)))
            .collect(),
    )
}

fn value(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Str(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::Hash(h) => hash(h),
        Value::Array(a) => Json::Array(a.iter().map(value).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)], peer: Option<&str>) -> Parts {
        let mut builder = axum::http::Request::builder().uri(uri);
        for (n, v) in headers {
            builder = builder.header(*n, *v);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        if let Some(p) = peer {
            parts
                .extensions
                .insert(ConnectInfo(Peer(p.parse::<SocketAddr>().unwrap())));
        }
        parts
    }

    #[test]
    fn fields_in_the_backends_order_and_shape() {
        let p = parts(
            "/transactions/authorize.xml?user_key=x%20y",
            &[
                ("host", "example.org:99"),
                ("user-agent", "agent/1"),
                ("3scale-options", "a[b]=1&c[]=2&d"),
            ],
            Some("127.0.0.1:5000"),
        );
        assert_eq!(
            serde_json::to_string(&request_info(&p, &Params::new(), None)).unwrap(),
            r#"{"url":"http://example.org:99/transactions/authorize.xml?user_key=x%20y","method":"GET","form_vars":null,"user_agent":"agent/1","ip":"127.0.0.1","content_type":null,"content_length":null,"extensions":{"a":{"b":"1"},"c":["2"],"d":null}}"#
        );
    }

    #[test]
    fn no_body_becomes_a_boolean_from_the_header_or_the_parameter() {
        let ext = |header: Option<&str>, query: &str| {
            let headers: Vec<(&str, &str)> = header
                .map(|h| vec![("3scale-options", h)])
                .unwrap_or_default();
            let mut params = Params::new();
            parse_nested_query(query.as_bytes(), &mut params).unwrap();
            extensions(&parts("/", &headers, None), &params).to_string()
        };
        assert_eq!(ext(Some("no_body=1"), ""), r#"{"no_body":true}"#);
        assert_eq!(ext(Some("no_body=0"), ""), r#"{"no_body":false}"#);
        assert_eq!(ext(Some("no_body=false"), ""), r#"{"no_body":false}"#);
        assert_eq!(ext(Some("no_body"), ""), r#"{"no_body":null}"#);
        assert_eq!(ext(Some("no_body"), "no_body=x"), r#"{"no_body":true}"#);
        assert_eq!(ext(None, "no_body="), r#"{"no_body":true}"#);
        assert_eq!(ext(None, "no_body=0"), r#"{"no_body":false}"#);
        assert_eq!(ext(Some("hierarchy=1"), ""), r#"{"hierarchy":"1"}"#);
    }

    #[test]
    fn client_ip_follows_racks_trusted_proxies() {
        let ip = |xff: Option<&str>, peer: &str| {
            let headers: Vec<(&str, &str)> = xff
                .map(|v| vec![("x-forwarded-for", v)])
                .unwrap_or_default();
            client_ip(&parts("/", &headers, Some(peer)))
        };
        assert_eq!(ip(None, "127.0.0.1:1").as_deref(), Some("127.0.0.1"));
        assert_eq!(
            ip(Some("10.1.2.3"), "127.0.0.1:1").as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(
            ip(Some("8.8.8.8, 10.0.0.1"), "127.0.0.1:1").as_deref(),
            Some("8.8.8.8")
        );
        // An untrusted peer is the client, whatever it forwards.
        assert_eq!(ip(Some("1.2.3.4"), "9.9.9.9:1").as_deref(), Some("9.9.9.9"));
        assert!(trusted("fd00::1") && trusted("::1") && !trusted("2001:db8::1"));
    }
}
