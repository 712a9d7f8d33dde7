//! A development OpenID Connect issuer for the emulator's `oauth` services, so
//! that the gateway's OIDC flow runs locally: discovery, key set and a
//! client-credentials token endpoint.
//!
//! - `GET /oidc/.well-known/openid-configuration`: `issuer` (`http://<Host>/oidc`,
//!   `https://` when the emulator serves HTTPS),
//!   `jwks_uri`, `token_endpoint`, `id_token_signing_alg_values_supported: ["ES256"]`.
//! - `GET /oidc/jwks`: the public keys (P-256, `ES256`), the signing one first.
//! - `POST /oidc/token` (form): `grant_type=client_credentials`, the client's id
//!   (an application id of an `oauth` service) and secret (one of its app keys;
//!   any secret for an application without keys) as `client_id`/`client_secret`
//!   or HTTP Basic. Answers `{"access_token":…,"token_type":"Bearer","expires_in":300}`;
//!   the token has `iss`, `sub` and `azp` (the client id), `aud` (the client
//!   id), `iat`, `exp` (system time, not the emulator's pinned clock), `typ:
//!   Bearer` and a `jti`. Errors as RFC 6749 §5.2: 400 `unsupported_grant_type`
//!   or `invalid_request`, 401 `invalid_client`.
//! - `POST /_emulator/oidc/rotate`: a new signing key; the previous one stays
//!   in the key set until the next rotation. Answers `{"kid":"…"}`.
//!
//! Keys are generated at start with `ring` (already the TLS stack's crypto).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::state::{EmulatorState, lock};

/// How long the issued tokens are valid.
const TOKEN_SECONDS: u64 = 300;

/// One signing key.
struct SigningKey {
    kid: String,
    encoding: jsonwebtoken::EncodingKey,
    jwk: Value,
}

impl SigningKey {
    fn generate() -> Result<SigningKey, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "P-256 key generation failed".to_string())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| "P-256 key unreadable".to_string())?;
        // An uncompressed point: 0x04, then x and y (32 bytes each).
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err("unexpected P-256 public key".into());
        }
        let kid = format!("dev-{:016x}", rand::random::<u64>());
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Ok(SigningKey {
            kid,
            encoding: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        })
    }
}

/// The issuer's keys: the signing one and the one before it.
pub(crate) struct Issuer {
    keys: Mutex<(Option<SigningKey>, Option<SigningKey>)>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

impl Issuer {
    pub(crate) fn new() -> Issuer {
        let key = SigningKey::generate()
            .inspect_err(|e| tracing::warn!(error = %e, "emulator OIDC issuer has no key"))
            .ok();
        Issuer {
            keys: Mutex::new((key, None)),
        }
    }

    /// A new signing key; returns its id.
    fn rotate(&self) -> Result<String, String> {
        let key = SigningKey::generate()?;
        let kid = key.kid.clone();
        let mut keys = lock(&self.keys);
        let previous = keys.0.take();
        *keys = (Some(key), previous);
        Ok(kid)
    }

    fn jwks(&self) -> Value {
        let keys = lock(&self.keys);
        let list: Vec<Value> = [&keys.0, &keys.1]
            .into_iter()
            .flatten()
            .map(|k| k.jwk.clone())
            .collect();
        json!({ "keys": list })
    }

    fn sign(&self, claims: &Value) -> Result<String, String> {
        let keys = lock(&self.keys);
        let key = keys.0.as_ref().ok_or("no signing key")?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| e.to_string())
    }
}

/// Marks the requests of an emulator that serves HTTPS (a request extension),
/// so the issuer's URLs carry the scheme the client used.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Https;

fn issuer_url(https: Option<Extension<Https>>, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    let scheme = if https.is_some() { "https" } else { "http" };
    format!("{scheme}://{host}/oidc")
}

/// `GET /oidc/.well-known/openid-configuration`.
pub(crate) async fn discovery(https: Option<Extension<Https>>, headers: HeaderMap) -> Response {
    let issuer = issuer_url(https, &headers);
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "token_endpoint": format!("{issuer}/token"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
    .into_response()
}

/// `GET /oidc/jwks`.
pub(crate) async fn jwks(State(state): State<EmulatorState>) -> Response {
    let mut response = axum::Json(state.issuer().jwks()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/jwk-set+json"),
    );
    response
}

fn token_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

/// `POST /oidc/token`.
pub(crate) async fn token(
    State(state): State<EmulatorState>,
    https: Option<Extension<Https>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((decode_form(id), decode_form(secret)))
        });
    let (client_id, secret) = match (basic, form.get("client_id")) {
        (Some(pair), _) => pair,
        (None, Some(id)) => (
            id.clone(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
        (None, None) => return token_error(StatusCode::BAD_REQUEST, "invalid_request"),
    };
    if !state.oauth_client_is_valid(&client_id, &secret) {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = json!({
        "iss": issuer_url(https, &headers),
        "sub": client_id,
        "aud": client_id,
        "azp": client_id,
        "typ": "Bearer",
        "iat": now,
        "exp": now + TOKEN_SECONDS,
        "jti": format!("{:016x}", rand::random::<u64>()),
    });
    match state.issuer().sign(&claims) {
        Ok(token) => axum::Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
        }))
        .into_response(),
        Err(error) => {
            tracing::warn!(%error, "emulator OIDC issuer could not sign");
            token_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error")
        }
    }
}

/// HTTP Basic credentials of a client are form-encoded (RFC 6749 §2.3.1).
fn decode_form(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `POST /_emulator/oidc/rotate`.
pub(crate) async fn rotate(State(state): State<EmulatorState>) -> Response {
    match state.issuer().rotate() {
        Ok(kid) => axum::Json(json!({ "kid": kid })).into_response(),
        Err(error) => token_error(StatusCode::INTERNAL_SERVER_ERROR, &error),
    }
}
