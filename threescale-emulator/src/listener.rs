//! The public listener: routes, parameter parsing, and responses with the backend's
//! status codes, headers and bodies.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use crate::auth::{AuthReply, auth_call};
use crate::errors::BackendError;
use crate::extensions::Extensions;
use crate::faults::{FaultAction, dropped_connection, malformed_body};
use crate::params::{BYTESIZE_LIMIT, Params, ParseError, parse_multipart, parse_nested_query};
use crate::report::report_call;
use crate::request_info::request_info;
use crate::route::Route;
use crate::state::EmulatorState;
use crate::xml::error_xml;

/// The backend's content type.
pub const XML_CONTENT_TYPE: &str = "application/vnd.3scale-v2.0+xml";
const EXPOSE_HEADERS: &str = "ETag, Link, 3scale-rejection-reason";
const CSP: &str = "default-src 'self'";
const ALLOW_METHODS: &str = "GET, POST, PATCH, PUT, DELETE";
const ALLOW_HEADERS: &str = "Authorization, Accept-Encoding, Content-Type, Cache-Control, Accept, If-Match, If-Modified-Since, If-None-Match, If-Unmodified-Since, X-Requested-With, X-HTTP-Method-Override, 3scale-options";
const STATUS_JSON: &str = "{\"status\":\"ok\",\"version\":{\"backend\":\"3.4.3\"}}";

/// Which headers a response carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Set by the listener's `before` filter: XML content type, CORS and CSP.
    Listener,
    /// Built by the exception catcher: XML content type and CORS, no CSP.
    Error,
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn build(status: StatusCode, kind: Kind, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(XML_CONTENT_TYPE),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    if kind == Kind::Listener {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN)
}

/// What puma answers when the application raises: a bare 500, no content type.
fn puma_500() -> Response {
    let mut resp = Response::new(Body::from("Internal Server Error\n"));
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

/// What puma answers for a request it refuses to parse (e.g. a query string over
/// its 10 KiB limit): 400, no body, and the connection is closed.
fn puma_400() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// puma's limit on the query string (`MAX_QUERY_STRING_LENGTH`).
const MAX_QUERY_STRING_LENGTH: usize = 10 * 1024;

/// rack-protection's `JsonCsrf`: a JSON answer to a request whose `Referer`
/// names another host (and that has no `Origin` and is not an XHR) is refused.
fn json_csrf_refused(headers: &HeaderMap) -> bool {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    if text("x-requested-with").as_deref() == Some("XMLHttpRequest")
        || headers.contains_key(header::ORIGIN)
    {
        return false;
    }
    let referer = text("referer").unwrap_or_default();
    if referer.is_empty() {
        return false;
    }
    let host = text("host").unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => host,
    };
    // `URI.parse(referer).host`, or the request's own host when it has none.
    let ref_host = match referer.split_once("://") {
        Some((_, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            match authority.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
                _ => authority.to_string(),
            }
        }
        None => host.clone(),
    };
    ref_host != host
}

/// An error document from the exception catcher (`no_body` empties it).
fn error_response(e: &BackendError, no_body: bool) -> Response {
    if e.status == 500 {
        return puma_500();
    }
    let body = if no_body {
        String::new()
    } else {
        error_xml(e.code, &e.message)
    };
    build(status(e.status), Kind::Error, body)
}

/// What Sinatra answers for parameter errors the backend does not rewrite.
fn sinatra_bad_request(message: &str) -> Response {
    let text = html_escape(&format!(
        "Invalid query parameters: {}",
        html_escape(message)
    ));
    sinatra_400(text)
}

fn sinatra_400(text: String) -> Response {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    h.insert(
        HeaderName::from_static("x-xss-protection"),
        HeaderValue::from_static("1; mode=block"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    resp
}

/// Rack's `escape_html`: the XML text escapes plus both quotes.
fn html_escape(s: &str) -> String {
    crate::xml::escape_text(s)
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn parse_error_response(e: ParseError) -> Response {
    match e {
        ParseError::InvalidPercentEncoding => error_response(
            &BackendError::bad_request_with("Invalid query parameters: invalid %-encoding"),
            false,
        ),
        ParseError::Type {
            hash_got_array: true,
            ..
        } => error_response(&BackendError::bad_request(), false),
        ParseError::Type { message, .. } => sinatra_bad_request(&message),
        ParseError::Limit(message) => {
            error_response(&BackendError::bad_request_with(message), false)
        }
        ParseError::Multipart(message) => sinatra_400(html_escape(&format!(
            "Invalid multipart/form-data: {}",
            html_escape(&message)
        ))),
    }
}

/// Rack's `media_type`: before `;` or `,`, trimmed right, lower case.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(raw.as_bytes());
    let first = text.split([';', ',']).next()?;
    if text.is_empty() {
        return None;
    }
    Some(first.trim_end().to_ascii_lowercase())
}

/// Handles every request that is not an `/_emulator` or `/internal` route.
pub(crate) async fn handle(State(state): State<EmulatorState>, req: Request) -> Response {
    let head = req.method() == Method::HEAD;
    let mut resp = dispatch(state, req).await;
    if head {
        *resp.body_mut() = Body::empty();
    }
    resp
}

async fn dispatch(state: EmulatorState, req: Request) -> Response {
    if req
        .uri()
        .query()
        .is_some_and(|q| q.len() > MAX_QUERY_STRING_LENGTH)
    {
        return puma_400();
    }
    // rack-protection cleans the path (`//`, `/./`, `/x/../`, `%2F`) before routing.
    let route = Route::of(req.method(), &crate::route::clean_path(req.uri().path()));
    state.count_request(route);
    if route.faultable()
        && let Some(resp) = inject_fault(&state).await
    {
        return resp;
    }
    let (parts, body) = req.into_parts();
    let media = media_type(&parts.headers);
    let (query_params, params, form_body) = match read_params(&parts, media.as_deref(), body).await
    {
        Ok(p) => p,
        Err(e) => return parse_error_response(e),
    };
    let options_header = parts
        .headers
        .get("3scale-options")
        .map(HeaderValue::as_bytes);
    // The backend parses the header with Rack's query parser and does not catch
    // its error: a malformed header is a 500.
    if matches!(route, Route::Auth(_) | Route::Report)
        && let Some(h) = options_header
        && crate::params::parse_nested_query(h, &mut Params::new()).is_err()
    {
        return puma_500();
    }
    // Error bodies look at the query string only; auth responses at all parameters.
    let error_ext = Extensions::parse(options_header, &query_params);
    let ext = Extensions::parse(options_header, &params);

    match route {
        Route::Auth(kind) => {
            if !params.is_valid_utf8() {
                return error_response(&BackendError::not_valid_data(), false);
            }
            let context_info = || request_info(&parts, &params, form_body.as_deref());
            let reply = state.with_store(|reg, store, now| {
                auth_call(kind, &params, &ext, reg, store, now, context_info)
            });
            auth_response(reply, &ext, &error_ext)
        }
        Route::Report => {
            let outcome = state.with_store(|reg, store, now| {
                report_call(&params, media.as_deref(), &ext, reg, store, now)
            });
            match outcome {
                Ok(o) => {
                    state.count_transactions(o);
                    build(StatusCode::ACCEPTED, Kind::Listener, Body::empty())
                }
                Err(e) => {
                    let no_body = error_ext.no_body && e.code != "not_valid_data";
                    error_response(&e, no_body)
                }
            }
        }
        Route::Status if json_csrf_refused(&parts.headers) => {
            let mut resp = Response::new(Body::from("Forbidden"));
            *resp.status_mut() = StatusCode::FORBIDDEN;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            resp
        }
        other => fixed_response(other),
    }
}

/// Applies the configured latency, then answers for the fault, if one fires.
async fn inject_fault(state: &EmulatorState) -> Option<Response> {
    let (delay, action) = state.next_fault();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match action {
        FaultAction::None => None,
        FaultAction::Error(code) => {
            let mut resp = Response::new(Body::from("fault injected by threescale-emulator\n"));
            *resp.status_mut() = status(code);
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Some(resp)
        }
        FaultAction::Malformed(n) => Some(build(StatusCode::OK, Kind::Listener, malformed_body(n))),
        FaultAction::Drop => Some(dropped_connection()),
    }
}

/// The query-string parameters, and those merged with the form body (Rack's
/// `GET.merge(POST)`); the body is read only for form media types, or a POST
/// without a content type.
async fn read_params(
    parts: &axum::http::request::Parts,
    media: Option<&str>,
    body: Body,
) -> Result<(Params, Params, Option<bytes::Bytes>), ParseError> {
    let mut query = Params::new();
    parse_nested_query(parts.uri.query().unwrap_or("").as_bytes(), &mut query)?;
    let form = (parts.method == Method::POST && media.is_none())
        || matches!(
            media,
            Some("application/x-www-form-urlencoded" | "multipart/form-data")
        );
    let mut params = query.clone();
    let mut form_body = None;
    if form {
        // Larger than the limit (or unreadable): Rack's size error.
        let bytes = axum::body::to_bytes(body, BYTESIZE_LIMIT + 2)
            .await
            .map_err(|_| crate::params::size_limit_error())?;
        let mut body_params = Params::new();
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        // Rack reads a multipart body without a boundary as a url-encoded one.
        if media == Some("multipart/form-data") && crate::params::has_boundary(&ct) {
            parse_multipart(&bytes, &ct, &mut body_params)?;
        } else {
            let trimmed = bytes.strip_suffix(b"\0").unwrap_or(&bytes);
            parse_nested_query(trimmed, &mut body_params)?;
            form_body = Some(bytes.clone());
        }
        params.merge(body_params);
    }
    Ok((query, params, form_body))
}

/// The routes whose answer does not depend on the parameters.
fn fixed_response(route: Route) -> Response {
    let with = |mut resp: Response, name: HeaderName, value: &'static str| {
        resp.headers_mut()
            .insert(name, HeaderValue::from_static(value));
        resp
    };
    match route {
        Route::Options => {
            let mut resp = build(StatusCode::NO_CONTENT, Kind::Listener, Body::empty());
            let h = resp.headers_mut();
            h.remove(header::CONTENT_TYPE);
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            resp
        }
        Route::Available => build(StatusCode::OK, Kind::Listener, Body::empty()),
        Route::Status => with(
            build(StatusCode::OK, Kind::Listener, STATUS_JSON),
            header::CONTENT_TYPE,
            "application/json",
        ),
        Route::Check => with(
            build(StatusCode::OK, Kind::Listener, "ok"),
            header::CONTENT_TYPE,
            "text/plain;charset=utf-8",
        ),
        _ => with(
            build(StatusCode::NOT_FOUND, Kind::Listener, Body::empty()),
            HeaderName::from_static("x-cascade"),
            "pass",
        ),
    }
}

fn auth_response(reply: AuthReply, ext: &Extensions, error_ext: &Extensions) -> Response {
    match reply {
        AuthReply::Error(e) => error_response(&e, error_ext.no_body),
        AuthReply::Forbidden => build(StatusCode::FORBIDDEN, Kind::Listener, Body::empty()),
        AuthReply::Status {
            authorized,
            rejection_code,
            xml,
            limit_headers,
        } => {
            let code = if authorized {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            let mut resp = build(code, Kind::Listener, xml.unwrap_or_default());
            let h = resp.headers_mut();
            if let (false, true, Some(reason)) =
                (authorized, ext.rejection_reason_header, rejection_code)
            {
                h.insert(
                    HeaderName::from_static("3scale-rejection-reason"),
                    hv(reason),
                );
            }
            if let Some(lh) = limit_headers {
                h.insert(
                    HeaderName::from_static("3scale-limit-remaining"),
                    hv(&lh.remaining.to_string()),
                );
                h.insert(
                    HeaderName::from_static("3scale-limit-reset"),
                    hv(&lh.reset.to_string()),
                );
                if let Some(max) = lh.max_value {
                    h.insert(
                        HeaderName::from_static("3scale-limit-max-value"),
                        hv(&max.to_string()),
                    );
                }
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthKind;

    #[test]
    fn routes() {
        assert_eq!(
            Route::of(&Method::GET, "/transactions/authrep.xml"),
            Route::Auth(AuthKind::Authrep)
        );
        assert_eq!(
            Route::of(&Method::HEAD, "/transactions/authrep.xml"),
            Route::Auth(AuthKind::Authrep)
        );
        assert_eq!(
            Route::of(&Method::GET, "/transactions.xml"),
            Route::NotFound
        );
        assert_eq!(
            Route::of(&Method::POST, "/transaction/authorize.xml"),
            Route::NotFound
        );
        assert_eq!(Route::of(&Method::GET, "/available"), Route::NotFound);
        assert_eq!(Route::of(&Method::OPTIONS, "/whatever"), Route::Options);
    }

    #[test]
    fn media_types() {
        let mut h = HeaderMap::new();
        assert_eq!(media_type(&h), None);
        h.insert(header::CONTENT_TYPE, hv("Application/JSON ; charset=utf-8"));
        assert_eq!(media_type(&h).as_deref(), Some("application/json"));
        h.insert(header::CONTENT_TYPE, hv(""));
        assert_eq!(media_type(&h), None);
    }

    #[test]
    fn sinatra_escaping_is_double() {
        assert_eq!(html_escape("`usage'"), "`usage&#39;");
        assert_eq!(html_escape(&html_escape("'")), "&amp;#39;");
    }
}
