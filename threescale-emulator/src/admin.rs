//! The emulator's own JSON endpoints (`/_emulator/...`) and the backend's internal
//! error-log route (`/internal/services/{id}/errors`).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::faults::{Faults, parse_faults};
use crate::state::{AppRef, EmulatorState};

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// `GET /_emulator/usage?service_id=..&app_id=..` (or `user_key=..`).
pub(crate) async fn usage(
    State(state): State<EmulatorState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(service_id) = q.get("service_id") else {
        return json_error(StatusCode::BAD_REQUEST, "service_id is required");
    };
    let app = match (q.get("app_id"), q.get("user_key")) {
        (Some(id), _) => AppRef::app_id(id),
        (None, Some(key)) => AppRef::user_key(key),
        (None, None) => {
            return json_error(StatusCode::BAD_REQUEST, "app_id or user_key is required");
        }
    };
    match state.usage(service_id, app) {
        Some(totals) => Json(totals).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "unknown service or application"),
    }
}

/// `GET /_emulator/response_codes?service_id=..&app_id=..` (or `user_key=..`):
/// the application's response-code counts (`{"2XX": 3, "200": 2, ...}`).
pub(crate) async fn response_codes(
    State(state): State<EmulatorState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(service_id) = q.get("service_id") else {
        return json_error(StatusCode::BAD_REQUEST, "service_id is required");
    };
    let app = match (q.get("app_id"), q.get("user_key")) {
        (Some(id), _) => AppRef::app_id(id),
        (None, Some(key)) => AppRef::user_key(key),
        (None, None) => {
            return json_error(StatusCode::BAD_REQUEST, "app_id or user_key is required");
        }
    };
    match state.response_codes(service_id, app) {
        Some(codes) => Json(codes).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "unknown service or application"),
    }
}

/// `POST /_emulator/reset`.
pub(crate) async fn reset(State(state): State<EmulatorState>) -> Response {
    state.reset();
    Json(json!({ "status": "reset" })).into_response()
}

/// `GET /_emulator/stats`.
pub(crate) async fn stats(State(state): State<EmulatorState>) -> Response {
    Json(state.stats()).into_response()
}

/// `GET /_emulator/faults`.
pub(crate) async fn get_faults(State(state): State<EmulatorState>) -> Response {
    Json(state.faults()).into_response()
}

/// `POST /_emulator/faults` with a JSON [`Faults`] body.
pub(crate) async fn set_faults(State(state): State<EmulatorState>, body: Bytes) -> Response {
    match parse_faults(&body) {
        Ok(faults) => {
            state.set_faults(faults.clone());
            Json(faults).into_response()
        }
        Err(message) => json_error(StatusCode::BAD_REQUEST, message),
    }
}

/// `DELETE /_emulator/faults`.
pub(crate) async fn clear_faults(State(state): State<EmulatorState>) -> Response {
    state.clear_faults();
    Json(Faults::default()).into_response()
}

/// `GET /_emulator/errors?service_id=..`: the error log, newest first.
pub(crate) async fn errors(
    State(state): State<EmulatorState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(service_id) = q.get("service_id") else {
        return json_error(StatusCode::BAD_REQUEST, "service_id is required");
    };
    match state.errors(service_id) {
        Some(list) => Json(list).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "unknown service"),
    }
}

/// `DELETE /_emulator/errors?service_id=..`.
pub(crate) async fn delete_errors(
    State(state): State<EmulatorState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match q.get("service_id") {
        Some(id) if state.clear_errors(id) => Json(json!({ "status": "deleted" })).into_response(),
        Some(_) => json_error(StatusCode::NOT_FOUND, "unknown service"),
        None => json_error(StatusCode::BAD_REQUEST, "service_id is required"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeBody {
    now: Option<String>,
    advance_seconds: Option<i64>,
}

fn time_json(state: &EmulatorState) -> Response {
    Json(json!({ "now": state.now().to_rfc3339() })).into_response()
}

/// `GET /_emulator/time`.
pub(crate) async fn get_time(State(state): State<EmulatorState>) -> Response {
    time_json(&state)
}

/// `POST /_emulator/time` with `{"now": "<RFC 3339>"}` or `{"advance_seconds": N}`.
pub(crate) async fn set_time(State(state): State<EmulatorState>, body: Bytes) -> Response {
    let body: TimeBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match (body.now, body.advance_seconds) {
        (Some(now), None) => match DateTime::parse_from_rfc3339(&now) {
            Ok(t) => state.set_time(t.with_timezone(&Utc)),
            Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
        },
        (None, Some(secs)) => match chrono::Duration::try_seconds(secs) {
            Some(d) => state.advance_time(d),
            None => return json_error(StatusCode::BAD_REQUEST, "advance_seconds is out of range"),
        },
        _ => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "give exactly one of \"now\" and \"advance_seconds\"",
            );
        }
    }
    time_json(&state)
}

/// `DELETE /_emulator/time`: back to the system clock.
pub(crate) async fn system_time(State(state): State<EmulatorState>) -> Response {
    state.use_system_time();
    time_json(&state)
}

/// The internal API's 404, `{"status":"not_found","error":"..."}` (in the
/// backend's key order).
fn internal_not_found(error: &str) -> Response {
    let body = serde_json::json!({ "error": error }).to_string();
    let body = format!(r#"{{"status":"not_found",{}"#, &body[1..]);
    (
        StatusCode::NOT_FOUND,
        [(http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `GET /internal/services/{id}/errors/?page=&per_page=`, shaped like the
/// backend's internal API.
pub(crate) async fn internal_errors(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !state.has_service(&id) {
        return internal_not_found("service not found");
    }
    let per_page = match q.get("per_page") {
        Some(p) => {
            let n = crate::ruby::ruby_to_i(p);
            if n <= 0 {
                return json_error(StatusCode::BAD_REQUEST, "per_page needs to be > 0");
            }
            n as usize
        }
        None => 100,
    };
    let page = q
        .get("page")
        .map_or(1, |p| crate::ruby::ruby_to_i(p).max(1) as usize);
    let all = state.errors(&id).unwrap_or_default();
    let count = all.len();
    let errors: Vec<_> = all
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    // In the backend's key order.
    #[derive(Serialize)]
    struct Page {
        status: &'static str,
        errors: Vec<crate::ErrorEntry>,
        count: usize,
    }
    Json(Page {
        status: "found",
        errors,
        count,
    })
    .into_response()
}

/// Any other request under `/internal/services/{id}/errors` (the path without
/// the final slash, or another method): 404, "service not found" for an unknown
/// service as the backend's `before` filter says, else its "Not found".
pub(crate) async fn internal_errors_not_found(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Response {
    let error = if state.has_service(&id) {
        "Not found"
    } else {
        "service not found"
    };
    internal_not_found(error)
}

/// `DELETE /internal/services/{id}/errors/`.
pub(crate) async fn internal_delete_errors(
    State(state): State<EmulatorState>,
    Path(id): Path<String>,
) -> Response {
    if state.clear_errors(&id) {
        Json(json!({ "status": "deleted" })).into_response()
    } else {
        internal_not_found("service not found")
    }
}
