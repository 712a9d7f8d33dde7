//! The emulated admin portal: the proxy configuration of each service, as the 3scale
//! admin API serves it to gateways, and the run-time switches tests use to change it
//! or make it fail.
//!
//! - `GET /admin/api/services/{id}/proxy/configs/{env}/latest.json` (`env` is
//!   `staging` or `production`): `{"proxy_config":{"id":..,"version":..,
//!   "environment":..,"content":{service}}}`.
//! - `GET /admin/api/services.json`: the services the token can read.
//!
//! Both need an access token: `?access_token=` or HTTP Basic auth with the token as
//! user or password. A wrong or missing token gets 403 `{"error":"Access denied"}`,
//! an unknown service or environment 404 `{"status":"Not found"}`.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::config::{MappingRuleConfig, ProxyConfig};
use crate::errors::EmulatorError;
use crate::faults::{FaultAction, Faults};
use crate::portal_store::{id_json, system_name};
use crate::state::EmulatorState;

const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// The access tokens a request presents: `?access_token=`, and the user and the
/// password of HTTP Basic auth.
fn presented_tokens(query: &HashMap<String, String>, headers: &HeaderMap) -> Vec<String> {
    let mut tokens = Vec::new();
    if let Some(t) = query.get("access_token").filter(|t| !t.is_empty()) {
        tokens.push(t.clone());
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    if let Some(pair) = basic {
        let (user, password) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
        for t in [user, password] {
            if !t.is_empty() {
                tokens.push(t.to_string());
            }
        }
    }
    tokens
}

fn portal_json(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    resp
}

fn access_denied() -> Response {
    portal_json(StatusCode::FORBIDDEN, json!({ "error": "Access denied" }))
}

fn not_found() -> Response {
    portal_json(StatusCode::NOT_FOUND, json!({ "status": "Not found" }))
}

/// Applies the portal's faults: latency, then a 5xx, invalid JSON or a dropped
/// connection if one fires.
async fn portal_fault(state: &EmulatorState) -> Option<Response> {
    let (delay, action) = state.next_portal_fault();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match action {
        FaultAction::None => None,
        FaultAction::Error(code) => Some(portal_json(
            StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            json!({ "error": "fault injected by threescale-emulator" }),
        )),
        FaultAction::Malformed(n) => {
            let body = if n % 2 == 0 {
                "{\"proxy_config\":{\"id\":1,\"content\":{\"id\":"
            } else {
                "<html><body>Bad gateway, but 200</body></html>"
            };
            let mut resp = Response::new(Body::from(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(JSON_CONTENT_TYPE),
            );
            Some(resp)
        }
        FaultAction::Drop => Some(crate::faults::dropped_connection()),
    }
}

fn request_host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost")
        .to_string()
}

/// `GET /admin/api/services/{id}/proxy/configs/{env}/latest.json`.
pub(crate) async fn latest(
    State(state): State<EmulatorState>,
    Path((id, env)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = portal_fault(&state).await {
        return resp;
    }
    let tokens = presented_tokens(&query, &headers);
    state.with_portal(|portal| {
        let index = portal.index.get(&id).copied();
        if !portal.grants(&tokens, index) {
            return access_denied();
        }
        match index {
            Some(i) if env == "staging" || env == "production" => portal_json(
                StatusCode::OK,
                portal.proxy_config_json(i, &env, &request_host(&headers)),
            ),
            _ => not_found(),
        }
    })
}

/// `GET /admin/api/services.json`: the services the token reads.
pub(crate) async fn services(
    State(state): State<EmulatorState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = portal_fault(&state).await {
        return resp;
    }
    let tokens = presented_tokens(&query, &headers);
    state.with_portal(|portal| {
        if !portal.grants(&tokens, None) {
            return access_denied();
        }
        let list: Vec<Value> = portal
            .services
            .iter()
            .enumerate()
            .filter(|(i, _)| portal.grants(&tokens, Some(*i)))
            .map(|(_, s)| {
                json!({ "service": {
                    "id": id_json(&s.config.id),
                    "name": system_name(&s.config),
                    "system_name": system_name(&s.config),
                    "backend_version": s.config.backend_version,
                }})
            })
            .collect();
        portal_json(StatusCode::OK, json!({ "services": list }))
    })
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn set_result(service_id: &str, result: Result<u64, EmulatorError>) -> Response {
    match result {
        Ok(version) => {
            Json(json!({ "service_id": service_id, "version": version })).into_response()
        }
        Err(EmulatorError::Invalid(message)) if message.starts_with("unknown service") => {
            json_error(StatusCode::NOT_FOUND, message)
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `GET /_emulator/proxy_rules?service_id=..`: the rules served now and the version.
pub(crate) async fn get_proxy_rules(
    State(state): State<EmulatorState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = q.get("service_id") else {
        return json_error(StatusCode::BAD_REQUEST, "service_id is required");
    };
    match (state.proxy(id), state.proxy_config_version(id)) {
        (Some(proxy), Some(version)) => Json(json!({
            "service_id": id,
            "version": version,
            "mapping_rules": proxy.mapping_rules,
        }))
        .into_response(),
        _ => json_error(StatusCode::NOT_FOUND, "unknown service"),
    }
}

/// `PUT /_emulator/proxy_rules?service_id=..` with a JSON array of rules.
pub(crate) async fn put_proxy_rules(
    State(state): State<EmulatorState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(id) = q.get("service_id") else {
        return json_error(StatusCode::BAD_REQUEST, "service_id is required");
    };
    match serde_json::from_slice::<Vec<MappingRuleConfig>>(&body) {
        Ok(rules) => set_result(id, state.set_proxy_rules(id, rules)),
        Err(e) => json_error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `GET /_emulator/proxy?service_id=..`: the proxy settings served now.
pub(crate) async fn get_proxy(
    State(state): State<EmulatorState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = q.get("service_id") else {
        return json_error(StatusCode::BAD_REQUEST, "service_id is required");
    };
    match state.proxy(id) {
        Some(proxy) => Json(proxy).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "unknown service"),
    }
}

/// `PUT /_emulator/proxy?service_id=..` with a JSON [`ProxyConfig`].
pub(crate) async fn put_proxy(
    State(state): State<EmulatorState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(id) = q.get("service_id") else {
        return json_error(StatusCode::BAD_REQUEST, "service_id is required");
    };
    match serde_json::from_slice::<ProxyConfig>(&body) {
        Ok(proxy) => set_result(id, state.set_proxy(id, proxy)),
        Err(e) => json_error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// `GET /_emulator/portal_faults`.
pub(crate) async fn get_portal_faults(State(state): State<EmulatorState>) -> Response {
    Json(state.portal_faults()).into_response()
}

/// `POST /_emulator/portal_faults` with a JSON [`Faults`].
pub(crate) async fn set_portal_faults(State(state): State<EmulatorState>, body: Bytes) -> Response {
    match crate::faults::parse_faults(&body) {
        Ok(faults) => {
            state.set_portal_faults(faults.clone());
            Json(faults).into_response()
        }
        Err(message) => json_error(StatusCode::BAD_REQUEST, message),
    }
}

/// `DELETE /_emulator/portal_faults`.
pub(crate) async fn clear_portal_faults(State(state): State<EmulatorState>) -> Response {
    state.clear_portal_faults();
    Json(Faults::default()).into_response()
}
