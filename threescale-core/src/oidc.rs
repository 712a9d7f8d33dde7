//! OpenID Connect: access tokens that are JWTs signed by an issuer, checked in
//! the engine as the 3scale gateway does for `authentication_method: oidc`.
//!
//! The issuer's discovery document (`<issuer>/.well-known/openid-configuration`)
//! and its key set (`jwks_uri`) are fetched on the first token and kept. A
//! token whose `kid` is not in the kept set makes the engine fetch them again
//! (key rotation), at most once per [`OidcSettings::min_refresh_interval`] and
//! one fetch at a time, so tokens with made-up key ids cannot make it hammer
//! the issuer: between refreshes they are refused at once.
//!
//! A token is accepted when (as the gateway's `oauth/oidc.lua`, after RFC 7523):
//! - its header names a key (`kid`) of the set and an algorithm that key is for
//!   (RSA keys: `RS*`/`PS*`, P-256: `ES256`, P-384: `ES384`, Ed25519: `EdDSA`; the
//!   key's own `alg` when it has one; and one the discovery document lists in
//!   `id_token_signing_alg_values_supported` when it lists any). `none` and the
//!   `HS*` algorithms are never accepted, and symmetric (`oct`) keys of a key
//!   set are ignored, so a token cannot pass by being signed with the public key
//!   as an HMAC secret;
//! - its signature verifies;
//! - it has `iss` (equal to the discovery document's `issuer`), `sub`, `aud`
//!   and `exp`; `exp` and `nbf` hold, give or take [`OidcSettings::leeway`];
//!   `aud` contains one of [`OidcSettings::audience`] when that is set;
//! - its `typ`, when present, is `Bearer` (an ID token is not an access token);
//! - the client id claim ([`ClientIdClaim`], `azp` by default) gives a
//!   non-empty string (the first element of an array).
//!
//! The client id becomes the `app_id` of an `oauth_authrep` call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind, jwk::Jwk};
use serde_json::{Map, Value};

/// Largest discovery document or key set read from an issuer.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Where the client id of a token comes from (`proxy.jwt_claim_with_client_id`
/// and `proxy.jwt_claim_with_client_id_type`).
///
/// ```
/// use threescale_core::oidc::ClientIdClaim;
/// assert_eq!(ClientIdClaim::default(), ClientIdClaim::Plain("azp".into()));
/// let claim = ClientIdClaim::parse("{{ client_id }}", Some("liquid")).unwrap();
/// assert!(matches!(claim, ClientIdClaim::Liquid(_)));
/// assert!(ClientIdClaim::parse("{{ aud | first }}", Some("liquid")).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientIdClaim {
    /// The value of one claim (type `plain`).
    Plain(String),
    /// A Liquid template rendered with the claims (type `liquid`). Supported:
    /// literal text and `{{ name }}` or `{{ name.field }}` placeholders. Filters
    /// (`|`), tags (`{% %}`) and anything else are refused when the
    /// configuration is built.
    Liquid(String),
}

impl Default for ClientIdClaim {
    fn default() -> Self {
        ClientIdClaim::Plain("azp".to_string())
    }
}

impl ClientIdClaim {
    /// The claim from the proxy config's two fields: `kind` is `plain`
    /// (the default) or `liquid`.
    pub fn parse(value: &str, kind: Option<&str>) -> Result<Self, String> {
        let claim = match kind.unwrap_or("plain") {
            "plain" => ClientIdClaim::Plain(value.to_string()),
            "liquid" => ClientIdClaim::Liquid(value.to_string()),
            other => return Err(format!("{other:?} is not plain or liquid")),
        };
        claim.compile()?;
        Ok(claim)
    }

    fn compile(&self) -> Result<ClientIdTemplate, String> {
        match self {
            ClientIdClaim::Plain(name) if name.is_empty() => Err("the claim name is empty".into()),
            ClientIdClaim::Plain(name) => Ok(ClientIdTemplate::Claim(name.clone())),
            ClientIdClaim::Liquid(template) => compile_liquid(template),
        }
    }
}

/// A compiled [`ClientIdClaim`].
#[derive(Clone, Debug)]
enum ClientIdTemplate {
    Claim(String),
    Parts(Vec<Part>),
}

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    /// A claim, then fields inside it.
    Claim(Vec<String>),
}

fn compile_liquid(template: &str) -> Result<ClientIdTemplate, String> {
    if template.contains("{%") {
        return Err("Liquid tags ({% %}) are not supported, only {{ claim }}".into());
    }
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a {{ is not closed".to_string())?;
        let name = after[..end].trim();
        let path: Vec<String> = name.split('.').map(str::to_string).collect();
        let valid = path.iter().all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        if !valid {
            return Err(format!(
                "{{{{ {name} }}}} is not supported: only {{{{ claim }}}} or {{{{ claim.field }}}}, no filters"
            ));
        }
        parts.push(Part::Claim(path));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err("a }} is not opened".into());
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    if !parts.iter().any(|p| matches!(p, Part::Claim(_))) {
        return Err("the template names no claim".into());
    }
    Ok(ClientIdTemplate::Parts(parts))
}

impl ClientIdTemplate {
    fn client_id(&self, claims: &Map<String, Value>) -> Option<String> {
        let id = match self {
            ClientIdTemplate::Claim(name) => scalar(claims.get(name)?)?,
            ClientIdTemplate::Parts(parts) => {
                let mut id = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => id.push_str(text),
                        Part::Claim(path) => {
                            let mut value = claims.get(&path[0]);
                            for field in &path[1..] {
                                value = value.and_then(|v| v.get(field));
                            }
                            // Liquid renders a missing value as nothing.
                            if let Some(text) = value.and_then(scalar) {
                                id.push_str(&text);
                            }
                        }
                    }
                }
                id
            }
        };
        (!id.is_empty()).then_some(id)
    }
}

/// A claim's value as text: a string or number, or an array's first element.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items.first().and_then(|first| match first {
            Value::Array(_) => None,
            other => scalar(other),
        }),
        _ => None,
    }
}

/// How a service's OpenID Connect tokens are checked.
///
/// ```
/// use std::time::Duration;
/// use threescale_core::oidc::{ClientIdClaim, OidcSettings};
/// let settings = OidcSettings::new("https://sso.example.com/realms/demo")
///     .client_id_claim(ClientIdClaim::Plain("client_id".into()))
///     .leeway(Duration::from_secs(10));
/// assert_eq!(settings.issuer_endpoint(), "https://sso.example.com/realms/demo");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OidcSettings {
    issuer_endpoint: String,
    /// Where the client id comes from (default `azp`).
    pub client_id_claim: ClientIdClaim,
    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub leeway: Duration,
    /// Shortest time between two fetches of the issuer's keys (default 10 s).
    pub min_refresh_interval: Duration,
    /// When set, the token's `aud` must contain one of these.
    pub audience: Option<Vec<String>>,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer_endpoint", &redact_userinfo(&self.issuer_endpoint))
            .field("client_id_claim", &self.client_id_claim)
            .field("leeway", &self.leeway)
            .field("min_refresh_interval", &self.min_refresh_interval)
            .field("audience", &self.audience)
            .finish()
    }
}

impl OidcSettings {
    /// Tokens of the issuer at `issuer_endpoint` (`proxy.oidc_issuer_endpoint`).
    /// User and password in the URL (the portal's `https://client:secret@…`)
    /// are never sent to the issuer nor shown.
    pub fn new(issuer_endpoint: impl Into<String>) -> Self {
        OidcSettings {
            issuer_endpoint: issuer_endpoint.into().trim().to_string(),
            client_id_claim: ClientIdClaim::default(),
            leeway: Duration::from_secs(30),
            min_refresh_interval: Duration::from_secs(10),
            audience: None,
        }
    }

    /// The issuer's URL as configured.
    pub fn issuer_endpoint(&self) -> &str {
        &self.issuer_endpoint
    }

    /// Sets where the client id comes from.
    pub fn client_id_claim(mut self, claim: ClientIdClaim) -> Self {
        self.client_id_claim = claim;
        self
    }

    /// Sets the clock skew allowed on `exp` and `nbf`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the shortest time between two key fetches.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Requires the token's `aud` to contain one of `audience`.
    pub fn audience<S: Into<String>>(mut self, audience: impl IntoIterator<Item = S>) -> Self {
        self.audience = Some(audience.into_iter().map(Into::into).collect());
        self
    }

    /// Checks the settings (used by the configuration builder): the error
    /// names the field.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        let url = reqwest::Url::parse(&self.issuer_endpoint).map_err(|e| {
            (
                "oidc.issuer_endpoint",
                format!(
                    "{:?} is not a URL: {e}",
                    redact_userinfo(&self.issuer_endpoint)
                ),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(("oidc.issuer_endpoint", "must be http or https".into()));
        }
        self.client_id_claim
            .compile()
            .map_err(|reason| ("oidc.client_id_claim", reason))?;
        if self
            .audience
            .as_ref()
            .is_some_and(|a| a.is_empty() || a.iter().any(String::is_empty))
        {
            return Err(("oidc.audience", "must name at least one audience".into()));
        }
        Ok(())
    }

    /// The discovery document's URL, without user and password.
    fn discovery_url(&self) -> Result<reqwest::Url, OidcError> {
        let mut url = reqwest::Url::parse(&self.issuer_endpoint)
            .map_err(|_| OidcError::Config("the issuer endpoint is not a URL".into()))?;
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{path}/.well-known/openid-configuration"));
        Ok(url)
    }
}

/// `scheme://user:password@host/…` without its user and password.
fn redact_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// Why the issuer's keys could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum OidcError {
    #[error("OpenID Connect issuer unreachable: {0}")]
    Transport(String),
    #[error("OpenID Connect issuer answered {status} for its {what}")]
    Status {
        status: reqwest::StatusCode,
        what: &'static str,
    },
    #[error("OpenID Connect issuer's {what} is not usable: {reason}")]
    Document { what: &'static str, reason: String },
    #[error("OpenID Connect settings: {0}")]
    Config(String),
}

/// One verification key of the issuer.
struct Key {
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The issuer's discovery document and keys, as last fetched.
struct KeySet {
    issuer: String,
    keys: HashMap<String, Key>,
}

/// What a token is worth without fetching anything.
pub(crate) enum Checked {
    /// Valid: the client id.
    ClientId(String),
    /// Refused (403), with the reason.
    Rejected(&'static str),
    /// The keys must be fetched first ([`Oidc::resolve`]).
    NeedKeys,
}

/// What a token is worth, keys fetched if need be.
pub(crate) enum Resolved {
    /// Valid: the client id.
    ClientId(String),
    /// Refused (403), with the reason.
    Rejected(&'static str),
    /// No keys could ever be fetched: an outage.
    Unavailable(OidcError),
}

#[derive(Default)]
struct FetchState {
    /// When the keys were last asked for, successfully or not.
    last_attempt: Option<Instant>,
    /// Why the last fetch failed, while no keys are held.
    last_error: Option<String>,
}

/// A service's token checker with its issuer's keys.
pub(crate) struct Oidc {
    settings: OidcSettings,
    template: ClientIdTemplate,
    http: reqwest::Client,
    /// Each fetch's timeout (set per request, so a ready client gets it too).
    timeout: Duration,
    keys: arc_swap::ArcSwapOption<KeySet>,
    state: Mutex<FetchState>,
    /// One fetch at a time; the others wait for its result.
    fetching: tokio::sync::Mutex<()>,
    outage_log: crate::outage_log::OutageLog,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// The checker for `settings`; the issuer is reached with the same TLS
    /// trust as the backend (`tls`), so an issuer behind a private CA works.
    pub(crate) fn new(
        settings: OidcSettings,
        timeout: Duration,
        tls: &crate::TlsTrust,
    ) -> Result<Self, String> {
        let template = settings.client_id_claim.compile()?;
        let http = tls
            .http_client(
                reqwest::Client::builder()
                    .timeout(timeout)
                    .redirect(reqwest::redirect::Policy::limited(3)),
            )
            .map_err(|e| e.to_string())?;
        Ok(Oidc {
            settings,
            template,
            http,
            timeout,
            keys: arc_swap::ArcSwapOption::empty(),
            state: Mutex::new(FetchState::default()),
            fetching: tokio::sync::Mutex::new(()),
            outage_log: crate::outage_log::OutageLog::default(),
        })
    }

    pub(crate) fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Whether a fetch may start now (none in the last `min_refresh_interval`).
    fn may_fetch(&self) -> bool {
        let state = crate::lock(&self.state);
        state
            .last_attempt
            .is_none_or(|at| at.elapsed() >= self.settings.min_refresh_interval)
    }

    /// Checks `token` with the keys held now.
    pub(crate) fn check(&self, token: &str) -> Checked {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Checked::Rejected("invalid_token");
        };
        let Some(kid) = header.kid else {
            return Checked::Rejected("unknown_key");
        };
        let keys = self.keys.load();
        let held = keys.as_deref();
        if let Some((set, key)) = held.and_then(|set| Some((set, set.keys.get(&kid)?))) {
            return self.verify(token, set, key);
        }
        match held {
            _ if self.may_fetch() => Checked::NeedKeys,
            Some(_) => Checked::Rejected("unknown_key"),
            // No keys and a fetch failed a moment ago: `resolve` says so.
            None => Checked::NeedKeys,
        }
    }

    /// Checks `token`, fetching the issuer's keys first when it names a key
    /// not held (at most once per `min_refresh_interval`).
    pub(crate) async fn resolve(&self, token: &str, service_id: &str) -> Resolved {
        match self.check(token) {
            Checked::ClientId(id) => return Resolved::ClientId(id),
            Checked::Rejected(reason) => return Resolved::Rejected(reason),
            Checked::NeedKeys => {}
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another fetch may have brought the key while this one waited.
        if self.may_fetch() {
            crate::lock(&self.state).last_attempt = Some(Instant::now());
            match self.fetch().await {
                Ok(set) => {
                    self.outage_log.recovered(service_id);
                    crate::lock(&self.state).last_error = None;
                    self.keys.store(Some(Arc::new(set)));
                }
                Err(error) => {
                    self.outage_log.failed(
                        service_id,
                        &error,
                        "OpenID Connect issuer keys could not be fetched",
                    );
                    crate::lock(&self.state).last_error = Some(error.to_string());
                }
            }
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Resolved::Rejected("invalid_token");
        };
        let kid = header.kid.unwrap_or_default();
        match self.keys.load().as_deref() {
            Some(set) => match set.keys.get(&kid) {
                Some(key) => match self.verify(token, set, key) {
                    Checked::ClientId(id) => Resolved::ClientId(id),
                    Checked::Rejected(reason) => Resolved::Rejected(reason),
                    Checked::NeedKeys => Resolved::Rejected("unknown_key"),
                },
                None => Resolved::Rejected("unknown_key"),
            },
            None => {
                let reason = crate::lock(&self.state)
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no keys fetched yet".into());
                Resolved::Unavailable(OidcError::Transport(reason))
            }
        }
    }

    fn verify(&self, token: &str, set: &KeySet, key: &Key) -> Checked {
        let Some(&first) = key.algorithms.first() else {
            return Checked::Rejected("algorithm_not_allowed");
        };
        let mut validation = Validation::new(first);
        validation.algorithms = key.algorithms.clone();
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[set.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        match &self.settings.audience {
            Some(audience) => validation.set_audience(audience),
            None => validation.validate_aud = false,
        }
        let claims =
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation) {
                Ok(data) => data.claims,
                Err(error) => {
                    let reason = match error.kind() {
                        ErrorKind::ExpiredSignature => "token_expired",
                        ErrorKind::ImmatureSignature => "token_not_yet_valid",
                        ErrorKind::InvalidIssuer => "wrong_issuer",
                        ErrorKind::InvalidAudience => "wrong_audience",
                        ErrorKind::InvalidSignature => "invalid_signature",
                        ErrorKind::InvalidAlgorithm => "algorithm_not_allowed",
                        ErrorKind::MissingRequiredClaim(_) => "missing_claim",
                        _ => "invalid_token",
                    };
                    tracing::debug!(reason, "OpenID Connect token refused");
                    return Checked::Rejected(reason);
                }
            };
        if claims
            .get("typ")
            .is_some_and(|typ| typ.as_str() != Some("Bearer"))
        {
            return Checked::Rejected("not_an_access_token");
        }
        match self.template.client_id(&claims) {
            Some(id) => Checked::ClientId(id),
            None => Checked::Rejected("client_id_missing"),
        }
    }

    async fn fetch(&self) -> Result<KeySet, OidcError> {
        let url = self.settings.discovery_url()?;
        let discovery = self.get_json(url, "discovery document").await?;
        let issuer = discovery
            .get("issuer")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OidcError::Document {
                what: "discovery document",
                reason: "no issuer".into(),
            })?
            .to_string();
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .and_then(|uri| reqwest::Url::parse(uri).ok())
            .filter(|uri| matches!(uri.scheme(), "http" | "https"))
            .ok_or_else(|| OidcError::Document {
                what: "discovery document",
                reason: "no usable jwks_uri".into(),
            })?;
        let supported: Option<Vec<Algorithm>> = discovery
            .get("id_token_signing_alg_values_supported")
            .and_then(Value::as_array)
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str()?.parse::<Algorithm>().ok())
                    .collect()
            });
        let jwks = self.get_json(jwks_uri, "key set").await?;
        let entries =
            jwks.get("keys")
                .and_then(Value::as_array)
                .ok_or_else(|| OidcError::Document {
                    what: "key set",
                    reason: "no keys array".into(),
                })?;
        let mut keys = HashMap::new();
        for entry in entries {
            if let Some((kid, key)) = parse_key(entry, supported.as_deref()) {
                keys.insert(kid, key);
            }
        }
        Ok(KeySet { issuer, keys })
    }

    async fn get_json(&self, url: reqwest::Url, what: &'static str) -> Result<Value, OidcError> {
        let mut response = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| OidcError::Transport(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Status {
                status: response.status(),
                what,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| OidcError::Transport(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(OidcError::Document {
                    what,
                    reason: "larger than 1 MiB".into(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| OidcError::Document {
            what,
            reason: e.to_string(),
        })
    }
}

/// A usable verification key of a key set, with its id; `None` for keys
/// without an id, encryption keys, symmetric keys and unknown kinds.
fn parse_key(entry: &Value, supported: Option<&[Algorithm]>) -> Option<(String, Key)> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, PublicKeyUse};
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    let kid = jwk.common.key_id.clone()?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        // Symmetric keys never verify tokens here.
        _ => return None,
    };
    let own: Option<Algorithm> = match jwk.common.key_algorithm {
        Some(alg) => Some(alg.to_string().parse().ok()?),
        None => None,
    };
    let algorithms: Vec<Algorithm> = family
        .iter()
        .copied()
        .filter(|alg| own.is_none_or(|own| own == *alg))
        .filter(|alg| supported.is_none_or(|s| s.is_empty() || s.contains(alg)))
        .collect();
    if algorithms.is_empty() {
        return None;
    }
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some((
        kid,
        Key {
            decoding,
            algorithms,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plain_claim_takes_strings_numbers_and_first_of_arrays() {
        let t = ClientIdClaim::default().compile().unwrap();
        assert_eq!(
            t.client_id(&claims(r#"{"azp":"app-1"}"#)).as_deref(),
            Some("app-1")
        );
        assert_eq!(
            t.client_id(&claims(r#"{"azp":["a","b"]}"#)).as_deref(),
            Some("a")
        );
        assert_eq!(t.client_id(&claims(r#"{"azp":42}"#)).as_deref(), Some("42"));
        assert_eq!(t.client_id(&claims(r#"{"azp":""}"#)), None);
        assert_eq!(t.client_id(&claims(r#"{"azp":{"x":1}}"#)), None);
        assert_eq!(t.client_id(&claims(r#"{"client_id":"x"}"#)), None);
    }

    #[test]
    fn liquid_renders_simple_placeholders_and_refuses_the_rest() {
        let t = ClientIdClaim::parse("{{ realm_access.client }}-{{azp}}", Some("liquid"))
            .unwrap()
            .compile()
            .unwrap();
        assert_eq!(
            t.client_id(&claims(r#"{"azp":"a","realm_access":{"client":"r"}}"#))
                .as_deref(),
            Some("r-a")
        );
        for bad in [
            "{{ azp | upcase }}",
            "{% if x %}a{% endif %}",
            "{{ azp",
            "azp }}",
            "no claim",
            "{{ }}",
        ] {
            assert!(ClientIdClaim::parse(bad, Some("liquid")).is_err(), "{bad}");
        }
        assert!(ClientIdClaim::parse("azp", Some("other")).is_err());
        assert!(ClientIdClaim::parse("", None).is_err());
    }

    #[test]
    fn endpoint_credentials_are_never_shown_nor_sent() {
        let s = OidcSettings::new("https://client:s3cret@sso.example.com/realms/x/");
        assert!(!format!("{s:?}").contains("s3cret"));
        let url = s.discovery_url().unwrap();
        assert_eq!(
            url.as_str(),
            "https://sso.example.com/realms/x/.well-known/openid-configuration"
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_ignored() {
        let oct = serde_json::json!({"kty":"oct","kid":"h","k":"c2VjcmV0"});
        assert!(parse_key(&oct, None).is_none());
        let enc = serde_json::json!({"kty":"EC","kid":"e","use":"enc","crv":"P-256",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert!(parse_key(&enc, None).is_none());
        let sig = serde_json::json!({"kty":"EC","kid":"s","crv":"P-256",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let (kid, key) = parse_key(&sig, None).unwrap();
        assert_eq!(kid, "s");
        assert_eq!(key.algorithms, vec![Algorithm::ES256]);
        // The discovery document's list narrows it.
        assert!(parse_key(&sig, Some(&[Algorithm::RS256])).is_none());
    }
}
