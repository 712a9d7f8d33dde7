//! Configuration files: the project's own format (YAML or JSON), or the admin
//! portal's proxy config JSON ([`super::proxy`]), told apart by their top-level
//! keys.
//!
//! The project's format (every field but the service's id and credentials is
//! optional; unknown fields are errors):
//!
//! ```yaml
//! backend:
//!   url: http://127.0.0.1:3001        # default: the 3scale SaaS backend
//!   timeout_ms: 5000
//! service:
//!   id: "2555417777820"
//!   system_name: demo
//!   backend_version: "1"              # "1" user_key, "2" app_id/app_key, "oauth"
//!   service_token: demo-service-token # or provider_key
//!   credentials: { location: query, user_key: user_key, app_id: app_id, app_key: app_key }
//!   # location may be a list tried in order, e.g. [headers, query]: the first
//!   # place holding credentials wins, and different credentials in two places
//!   # are refused (403, conflicting_credentials)
//!   oidc:                             # OpenID Connect (sets backend_version oauth)
//!     issuer_endpoint: https://sso.example.com/realms/demo
//!     client_id_claim: azp            # default azp
//!     client_id_claim_type: plain     # or liquid: "{{ claim }}" placeholders only
//!     leeway_seconds: 30              # clock skew allowed on exp/nbf
//!     min_refresh_seconds: 10         # shortest time between two key fetches
//!     audience: [my-api]              # optional: aud must contain one of these
//!   mapping_rules:                    # default: ANY / -> hits 1
//!     - { http_method: GET, pattern: "/orders/{id}$", metric_system_name: orders, delta: 1, last: true }
//!     - { http_method: ANY, pattern: "/", metric_system_name: hits, delta: 1 }
//!   errors:
//!     no_match: { status: 404, body: '{"error":"no route"}', content_type: application/json }
//! mode: sync                          # or: { cached: { ttl_ms: 10000, flush_interval_ms: 5000, max_bytes: 67108864 } }
//! failure_policy: resilient           # or closed, open (see FailurePolicy)
//! bypass_paths: [/health]           # whole segments: /health, /health/..., never /healthcare
//! request:                            # all optional
//!   max_credential_len: 256           # bytes of a user key, app id or app key
//!   max_token_len: 8192               # bytes of an OAuth/OIDC access token
//!   paths: strict                     # or normalise (behind a proxy that normalises)
//! rate_limit_headers: legacy          # or ietf, off
//! response_codes: false               # report each response's status (log[code])
//! referrer_header: Referer            # sent as the backend's referrer (default: none)
//! tls:                                # all optional; files are PEM
//!   ca_file: /etc/3scale/ca.pem       # also trust this CA (on-premises 3scale)
//!   native_roots: false               # also trust the operating system's roots
//!   webpki_roots: true                # trust the bundled web PKI roots
//!   client_cert: /etc/3scale/client.pem   # mutual TLS: certificate and key
//!   client_key: /etc/3scale/client.key
//! ```
//!
//! Relative file paths are read from the current directory.
//!
//! Rules with a `position` are sorted by it; `querystring_parameters` may be
//! given, or are derived from the pattern's `?a={x}&b=1` part as the portal does.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Deserialize;
// The document model of the project's format: YAML's (a superset of JSON) with
// the `yaml` feature, JSON's without it.
#[cfg(not(feature = "yaml"))]
use serde_json::{Value as DocValue, from_str as doc_from_str, from_value as doc_from_value};
#[cfg(feature = "yaml")]
use serde_yaml_ng::{Value as DocValue, from_str as doc_from_str, from_value as doc_from_value};

use super::{
    CacheSettings, CachingType, Config, ConfigBuilder, ConfigError, CredentialParam, ErrorSetting,
    FailurePolicy, Mode, RateLimitHeaders, compile_rules, default_rules, proxy::DocumentKind,
};
use crate::{
    BackendVersion, CredentialsConfig, CredentialsLocation, DenialKind, MappingRule, MappingRules,
    PathPolicy, ProviderAuth,
};

/// Parses the project's config format (YAML or JSON) or, when the document
/// has a proxy config's top-level keys, a proxy config JSON. (Crate-private:
/// users call [`Config::from_file`]; this example runs in the unit tests'
/// `config_files`.)
///
/// ```ignore
/// use threescale_core::config::file::parse_project_config;
/// let yaml = r#"
/// service:
///   id: "42"
///   service_token: secret-token
///   mapping_rules:
///     - { http_method: GET, pattern: "/orders/{id}", metric_system_name: orders, delta: 1 }
/// "#;
/// let config = parse_project_config(yaml, "threescale.yaml").unwrap();
/// assert_eq!(config.service.service_id, "42");
/// let err = parse_project_config("service: { id: 1 }", "bad.yaml").unwrap_err();
/// assert!(err.to_string().contains("service_token"));
/// ```
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn parse_project_config(text: &str, source_name: &str) -> Result<Config, ConfigError> {
    project_builder(text, source_name)?.build()
}

/// The builder a configuration file fills (project format or proxy config).
pub(crate) fn project_builder(text: &str, source_name: &str) -> Result<ConfigBuilder, ConfigError> {
    let root = parse_document(text, source_name)?;
    match super::proxy::document_kind(&root) {
        DocumentKind::ProxyConfig => super::proxy::builder_for_service(&root, source_name, None),
        DocumentKind::EmulatorConfig => Err(emulator_config_error(source_name)),
        DocumentKind::Project => {
            let file: ProjectFile =
                doc_from_str(text).map_err(|e| ConfigError::new(source_name, "", e.to_string()))?;
            file.into_builder(source_name)
        }
    }
}

/// JSON first (exact numbers and messages), then YAML, a superset of it.
#[cfg(feature = "yaml")]
fn parse_document(text: &str, source_name: &str) -> Result<serde_json::Value, ConfigError> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(_) => serde_yaml_ng::from_str(text)
            .map_err(|e| ConfigError::new(source_name, "", format!("not valid YAML or JSON: {e}"))),
    }
}

/// JSON only: YAML needs the `yaml` feature.
#[cfg(not(feature = "yaml"))]
fn parse_document(text: &str, source_name: &str) -> Result<serde_json::Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| {
        ConfigError::new(
            source_name,
            "",
            format!("not valid JSON: {e} (YAML files need the `yaml` feature of threescale-core)"),
        )
    })
}

fn emulator_config_error(source_name: &str) -> ConfigError {
    ConfigError::new(
        source_name,
        "services",
        "this is an emulator config (services with metrics, plans and applications); \
         run it with `threescale emulate --config FILE` and point the middleware at it \
         with a project config or a proxy config",
    )
}

/// The mapping rules a configuration file gives, and nothing else: the rules of
/// a proxy config's service (the one with id `service_id`, or the first; see
/// [`RulesFile::services`]) or of a project config. Only the rules have to be
/// valid, so a bare rule set can be tried with `threescale map`.
///
/// ```
/// use threescale_core::RulesFile;
/// let json = r#"{"services": [{"id": 1, "proxy": {"proxy_rules": [
///     {"http_method": "GET", "pattern": "/a", "metric_system_name": "a", "delta": 1}]}}]}"#;
/// let file = RulesFile::parse(json, "rules.json", None).unwrap();
/// assert_eq!(file.service_id, "1");
/// assert_eq!(file.rules.matches("GET", "/a/b", None).usage.get("a"), Some(1));
/// ```
pub(crate) fn parse_mapping_rules(
    text: &str,
    source_name: &str,
    service_id: Option<&str>,
) -> Result<RulesFile, ConfigError> {
    let root = parse_document(text, source_name)?;
    match super::proxy::document_kind(&root) {
        DocumentKind::ProxyConfig => {
            let (service_id, rules, services) =
                super::proxy::rules_from_value(&root, source_name, service_id)?;
            Ok(RulesFile {
                service_id,
                rules,
                services,
            })
        }
        DocumentKind::EmulatorConfig => Err(emulator_config_error(source_name)),
        DocumentKind::Project => {
            let file: ProjectFile =
                doc_from_str(text).map_err(|e| ConfigError::new(source_name, "", e.to_string()))?;
            let id = file.service.id.map(Scalar::into_string).unwrap_or_default();
            if let Some(wanted) = service_id.filter(|wanted| *wanted != id) {
                return Err(ConfigError::new(
                    source_name,
                    "service.id",
                    format!("is {id:?}, not {wanted:?}"),
                ));
            }
            let rules = file.service.mapping_rules;
            let rules = if rules.is_empty() {
                default_rules()
            } else {
                rules
            };
            let rules = compile_rules(rules, source_name, "service.mapping_rules")?;
            Ok(RulesFile {
                service_id: id,
                rules,
                services: 1,
            })
        }
    }
}

/// The mapping rules a configuration file gives (see [`RulesFile::parse`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RulesFile {
    /// The service the rules belong to (empty when the file names none).
    pub service_id: String,
    /// Its compiled rules.
    pub rules: MappingRules,
    /// How many services the file holds.
    pub services: usize,
}

impl RulesFile {
    /// Reads only the mapping rules of a configuration file's text (the
    /// rules of a proxy config's service `service_id`, or its first, or of a
    /// project config), as `threescale map` does. `source_name` names the
    /// text in errors.
    pub fn parse(
        text: &str,
        source_name: &str,
        service_id: Option<&str>,
    ) -> Result<RulesFile, ConfigError> {
        parse_mapping_rules(text, source_name, service_id)
    }
}

/// Loads a project config or a proxy config JSON file.
pub(crate) fn load_file(path: &Path) -> Result<Config, ConfigError> {
    builder_from_file(path)?.build()
}

/// The builder a configuration file fills.
pub(crate) fn builder_from_file(path: &Path) -> Result<ConfigBuilder, ConfigError> {
    let source_name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&source_name, "", format!("cannot read the file: {e}")))?;
    project_builder(&text, &source_name)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default)]
    backend: BackendSection,
    service: ServiceSection,
    #[serde(default)]
    mode: Option<DocValue>,
    #[serde(default)]
    failure_policy: Option<FailurePolicy>,
    #[serde(default)]
    bypass_paths: Vec<String>,
    #[serde(default)]
    rate_limit_headers: Option<RateLimitHeaders>,
    #[serde(default)]
    request: RequestSection,
    #[serde(default)]
    response_codes: Option<bool>,
    #[serde(default)]
    referrer_header: Option<String>,
    #[serde(default)]
    tls: Option<TlsSection>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    ca_file: Option<String>,
    native_roots: Option<bool>,
    webpki_roots: Option<bool>,
    client_cert: Option<String>,
    client_key: Option<String>,
}

impl TlsSection {
    fn into_trust(self, source: &str) -> Result<crate::TlsTrust, ConfigError> {
        let mut trust = crate::TlsTrust::default();
        if let Some(path) = self.ca_file {
            trust = trust.ca_file(path);
        }
        if let Some(on) = self.native_roots {
            trust = trust.native_roots(on);
        }
        if let Some(on) = self.webpki_roots {
            trust = trust.webpki_roots(on);
        }
        match (self.client_cert, self.client_key) {
            (Some(cert), Some(key)) => trust = trust.client_identity_files(cert, key),
            (None, None) => {}
            (Some(_), None) => {
                return Err(ConfigError::new(
                    source,
                    "tls.client_key",
                    "required with tls.client_cert",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    source,
                    "tls.client_cert",
                    "required with tls.client_key",
                ));
            }
        }
        Ok(trust)
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestSection {
    max_credential_len: Option<usize>,
    max_token_len: Option<usize>,
    paths: Option<PathPolicy>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendSection {
    url: Option<String>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSection {
    id: Option<Scalar>,
    system_name: Option<String>,
    backend_version: Option<Scalar>,
    // Scalars, so that a token YAML reads as a number is taken as it is and
    // never quoted back in a type error.
    service_token: Option<Scalar>,
    provider_key: Option<Scalar>,
    #[serde(default)]
    credentials: CredentialsSection,
    #[serde(default)]
    mapping_rules: Vec<MappingRule>,
    #[serde(default)]
    errors: BTreeMap<String, ErrorSection>,
    oidc: Option<OidcSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcSection {
    issuer_endpoint: String,
    client_id_claim: Option<String>,
    client_id_claim_type: Option<String>,
    leeway_seconds: Option<u64>,
    min_refresh_seconds: Option<u64>,
    audience: Option<Vec<String>>,
}

/// One location or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Locations {
    One(String),
    Several(Vec<String>),
}

/// A string or a number (ids and versions are written both ways).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(i64),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Number(n) => n.to_string(),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsSection {
    location: Option<Locations>,
    user_key: Option<String>,
    app_id: Option<String>,
    app_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorSection {
    status: Option<u16>,
    body: Option<String>,
    content_type: Option<String>,
}

/// `sync`, `cached`, or `{ cached: { ... } }`.
fn parse_mode(value: Option<DocValue>) -> Result<Option<CachedSection>, String> {
    match value {
        None | Some(DocValue::Null) => Ok(None),
        Some(DocValue::String(name)) => match name.as_str() {
            "sync" => Ok(None),
            "cached" => Ok(Some(CachedSection::default())),
            other => Err(format!("{other:?} is not sync or cached")),
        },
        Some(other) => match only_entry(other) {
            Some((key, settings)) if key == "cached" => {
                if settings.is_null() {
                    return Ok(Some(CachedSection::default()));
                }
                doc_from_value(settings)
                    .map(Some)
                    .map_err(|e| format!("cached: {e}"))
            }
            _ => Err("expected sync, cached, or { cached: { ttl_ms: .. } }".into()),
        },
    }
}

/// The key and value of a mapping with exactly one entry under a string key.
#[cfg(feature = "yaml")]
fn only_entry(value: DocValue) -> Option<(String, DocValue)> {
    let DocValue::Mapping(map) = value else {
        return None;
    };
    let mut entries = map.into_iter();
    match (entries.next(), entries.next()) {
        (Some((DocValue::String(key), settings)), None) => Some((key, settings)),
        _ => None,
    }
}

/// The key and value of an object with exactly one entry.
#[cfg(not(feature = "yaml"))]
fn only_entry(value: DocValue) -> Option<(String, DocValue)> {
    let DocValue::Object(map) = value else {
        return None;
    };
    let mut entries = map.into_iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Some(entry),
        _ => None,
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CachedSection {
    ttl_ms: Option<u64>,
    negative_ttl_ms: Option<u64>,
    flush_interval_ms: Option<u64>,
    max_batch: Option<usize>,
    capacity: Option<u64>,
    max_bytes: Option<u64>,
    max_pending: Option<usize>,
    /// The former outage setting (`strict`, `resilient`, `allow`, `none`),
    /// still read: see [`CachingType`].
    outage: Option<CachingType>,
}

impl ProjectFile {
    fn into_builder(self, source: &str) -> Result<ConfigBuilder, ConfigError> {
        let err = |field: &str, reason: String| ConfigError::new(source, field, reason);
        let service = self.service;
        let service_id = service
            .id
            .map(Scalar::into_string)
            .filter(|id| !id.is_empty());
        let provider_auth = match (
            service.service_token.map(Scalar::into_string),
            service.provider_key.map(Scalar::into_string),
        ) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "service.service_token",
                    "give a service_token or a provider_key, not both".into(),
                ));
            }
            (Some(token), None) => {
                let id = service_id.ok_or_else(|| {
                    err("service.id", "required with service.service_token".into())
                })?;
                ProviderAuth::service_token(token, id)
            }
            (None, Some(key)) => match service_id {
                Some(id) => ProviderAuth::provider_key(key).with_service_id(id),
                None => ProviderAuth::provider_key(key),
            },
            (None, None) => {
                return Err(err(
                    "service.service_token",
                    "a service_token (with service.id) or a provider_key is required".into(),
                ));
            }
        };

        let mut builder = Config::builder()
            .source(source)
            .provider_auth(provider_auth)
            .field_path("timeout", "backend.timeout_ms")
            .field_path("mapping_rules", "service.mapping_rules")
            .field_path("max_credential_len", "request.max_credential_len")
            .field_path("max_token_len", "request.max_token_len");
        if let Some(url) = self.backend.url {
            builder = builder.backend_url(url);
        }
        if let Some(ms) = self.backend.timeout_ms {
            builder = builder.timeout(Duration::from_millis(ms));
        }
        if let Some(name) = service.system_name {
            builder = builder.system_name(name);
        }
        let service_backend_version_given = service.backend_version.is_some();
        if let Some(version) = service.backend_version {
            let version = version.into_string();
            builder =
                builder.backend_version(BackendVersion::parse(&version).ok_or_else(|| {
                    err(
                        "service.backend_version",
                        format!("{version:?} is not 1, 2 or oauth"),
                    )
                })?);
        }

        let credentials = service.credentials;
        let locations = match credentials.location {
            None => vec![],
            Some(Locations::One(v)) => vec![v],
            Some(Locations::Several(list)) if list.is_empty() => {
                return Err(err(
                    "service.credentials.location",
                    "the list is empty".into(),
                ));
            }
            Some(Locations::Several(list)) => list,
        };
        let mut config: Option<CredentialsConfig> = None;
        for v in &locations {
            let location = CredentialsLocation::parse(v).ok_or_else(|| {
                err(
                    "service.credentials.location",
                    format!("{v:?} is not query, headers or authorization"),
                )
            })?;
            config = Some(match config {
                None => CredentialsConfig::new(location),
                Some(config) => config.fallback(location),
            });
        }
        builder = builder
            .credentials(config.unwrap_or_default())
            .field_path("credentials.location", "service.credentials.location");
        let mut names = [
            credentials.user_key,
            credentials.app_id,
            credentials.app_key,
        ]
        .into_iter();
        for (param, field) in CredentialParam::ALL {
            builder = builder.field_path(field, format!("service.{field}"));
            if let Some(name) = names.next().flatten() {
                builder = builder.param_name(param, name);
            }
        }

        builder = builder.mapping_rules(service.mapping_rules);

        if let Some(oidc) = service.oidc {
            let mut settings = crate::oidc::OidcSettings::new(oidc.issuer_endpoint);
            if let Some(claim) = oidc.client_id_claim {
                settings = settings.client_id_claim(
                    crate::oidc::ClientIdClaim::parse(&claim, oidc.client_id_claim_type.as_deref())
                        .map_err(|reason| err("service.oidc.client_id_claim", reason))?,
                );
            } else if oidc.client_id_claim_type.is_some() {
                return Err(err(
                    "service.oidc.client_id_claim_type",
                    "given without client_id_claim".into(),
                ));
            }
            if let Some(seconds) = oidc.leeway_seconds {
                settings = settings.leeway(Duration::from_secs(seconds));
            }
            if let Some(seconds) = oidc.min_refresh_seconds {
                settings = settings.min_refresh_interval(Duration::from_secs(seconds));
            }
            if let Some(audience) = oidc.audience {
                settings = settings.audience(audience);
            }
            // An explicit backend_version other than oauth is refused by build.
            let version = builder.current_backend_version();
            builder = builder
                .oidc(settings)
                .field_path("oidc.issuer_endpoint", "service.oidc.issuer_endpoint")
                .field_path("oidc.client_id_claim", "service.oidc.client_id_claim")
                .field_path("oidc.audience", "service.oidc.audience")
                .field_path("backend_version", "service.backend_version");
            if service_backend_version_given && version != BackendVersion::OAuth {
                builder = builder.backend_version(version);
            }
        }

        for (name, section) in service.errors {
            let kind = DenialKind::from_key(&name).ok_or_else(|| {
                err(
                    &format!("service.errors.{name}"),
                    format!("expected {}", DenialKind::key_list()),
                )
            })?;
            let field = |f: &str| format!("service.errors.{name}.{f}");
            builder = builder.error_setting(ErrorSetting {
                kind,
                status: section.status.map(|s| (i64::from(s), field("status"))),
                body: section.body,
                content_type: section.content_type.map(|t| (t, field("content_type"))),
            });
        }

        let cached = parse_mode(self.mode).map_err(|reason| err("mode", reason))?;
        let mut policy = self.failure_policy;
        builder = builder.mode(match cached {
            None => Mode::Sync,
            Some(c) => {
                if let Some(caching) = c.outage {
                    policy = Some(caching.policy(policy));
                }
                let defaults = CacheSettings::default();
                let ms = |v: Option<u64>, d: Duration| v.map(Duration::from_millis).unwrap_or(d);
                if c.outage.is_some_and(|caching| !caching.caches()) {
                    Mode::Sync
                } else {
                    Mode::Cached(CacheSettings {
                        ttl: ms(c.ttl_ms, defaults.ttl),
                        negative_ttl: ms(c.negative_ttl_ms, defaults.negative_ttl),
                        flush_interval: ms(c.flush_interval_ms, defaults.flush_interval),
                        max_batch: c.max_batch.unwrap_or(defaults.max_batch),
                        capacity: c.capacity.unwrap_or(defaults.capacity),
                        max_bytes: c.max_bytes.unwrap_or(defaults.max_bytes),
                        max_pending: c.max_pending.unwrap_or(defaults.max_pending),
                    })
                }
            }
        });
        if let Some(policy) = policy {
            builder = builder.failure_policy(policy);
        }
        for path in self.bypass_paths {
            builder = builder.bypass_path(path);
        }
        if let Some(headers) = self.rate_limit_headers {
            builder = builder.rate_limit_headers(headers);
        }
        if let Some(on) = self.response_codes {
            builder = builder.response_codes(on);
        }
        if let Some(n) = self.request.max_credential_len {
            builder = builder.max_credential_len(n);
        }
        if let Some(n) = self.request.max_token_len {
            builder = builder.max_token_len(n);
        }
        if let Some(paths) = self.request.paths {
            builder = builder.path_policy(paths);
        }
        if let Some(name) = self.referrer_header {
            builder = builder.referrer_header(name);
        }
        if let Some(tls) = self.tls {
            builder = builder.tls(tls.into_trust(source)?);
        }
        Ok(builder)
    }
}
