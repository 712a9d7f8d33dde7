//! [`Config`]: one protected service and how the engine treats it.
//!
//! Sources: the builder ([`Config::builder`]), `THREESCALE_*` environment
//! variables ([`Config::from_env`]), a YAML/JSON file in the project's format or
//! the admin portal's proxy config JSON ([`Config::from_file`]), the admin
//! portal itself ([`Config::from_portal`]), and OpenAPI documents for mapping rules.
//!
//! One pipeline: every source fills a [`ConfigBuilder`] and calls
//! [`ConfigBuilder::build`], where every check lives; an error names the
//! source and the field as that source spells it. Kinds of denial are listed
//! once, in [`crate::DenialKind`], with their defaults and their names in each
//! source, and every loader loops over [`crate::DenialKind::ALL`].

pub(crate) mod file;
pub(crate) mod portal;
pub(crate) mod proxy;

pub use file::RulesFile;
pub use portal::{DeploymentEnv, Portal};

use std::time::Duration;

use crate::{
    backend::{DEFAULT_BACKEND_URL, ProviderAuth},
    credentials::{BackendVersion, CredentialsConfig},
    mapping::MappingRules,
    request::{PathPolicy, RequestPolicy},
    response::ErrorResponses,
    tls::TlsTrust,
};

/// A configuration that cannot be used. Says which source and field are wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {}{reason}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct ConfigError {
    /// Where it came from: `builder`, `env`, a file path, `proxy config`, …
    pub source_name: String,
    /// The field, e.g. `proxy.proxy_rules[3].pattern`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    /// A new error.
    pub fn new(
        source_name: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError {
            source_name: source_name.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Everything 3scale knows about one service that the middleware needs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Service id.
    pub service_id: String,
    /// The service's `system_name`, when known.
    pub system_name: Option<String>,
    /// Credential mode.
    pub backend_version: BackendVersion,
    /// Backend base URL.
    pub backend_url: String,
    /// Service token or provider key (also the debug-header secret).
    pub provider_auth: ProviderAuth,
    /// Where to find credentials.
    pub credentials: CredentialsConfig,
    /// Compiled mapping rules.
    pub mapping_rules: MappingRules,
    /// Responses for denials.
    pub error_responses: ErrorResponses,
    /// The request header whose value is sent as the backend's `referrer`
    /// (the gateway's referrer policy); `None` sends none.
    pub referrer_header: Option<http::HeaderName>,
    /// OpenID Connect: how access tokens are checked (`backend_version: oauth`).
    pub oidc: Option<crate::oidc::OidcSettings>,
}

impl ServiceConfig {
    /// A service with default settings: user_key in the query, SaaS backend,
    /// no mapping rules, default error responses.
    pub fn new(provider_auth: ProviderAuth) -> Self {
        ServiceConfig {
            service_id: provider_auth.service_id().unwrap_or_default().to_string(),
            system_name: None,
            backend_version: BackendVersion::default(),
            backend_url: DEFAULT_BACKEND_URL.to_string(),
            provider_auth,
            credentials: CredentialsConfig::default(),
            mapping_rules: MappingRules::default(),
            error_responses: ErrorResponses::default(),
            referrer_header: None,
            oidc: None,
        }
    }
}

/// How the engine talks to the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// One authrep per request: exact, one backend round trip each.
    Sync,
    /// Cached authorizations and batched reports.
    Cached(CacheSettings),
}

/// Settings of [`Mode::Cached`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheSettings {
    /// How long an authorization is trusted.
    pub ttl: Duration,
    /// How long a denial (bad key) is remembered.
    pub negative_ttl: Duration,
    /// How often usage is reported.
    pub flush_interval: Duration,
    /// At most this many transactions per report POST (≤ 1000).
    pub max_batch: usize,
    /// At most this many cached authorizations.
    pub capacity: u64,
    /// At most this many bytes of cached authorizations, denials included
    /// (keys, limits and counters, with a fixed allowance per entry for the
    /// cache's own bookkeeping). Whichever of `capacity` and `max_bytes` is
    /// reached first evicts. At least [`MIN_CACHE_BYTES`].
    pub max_bytes: u64,
    /// At most this many applications' usage kept for retry during outages.
    pub max_pending: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(2),
            flush_interval: Duration::from_secs(5),
            max_batch: 1000,
            capacity: 100_000,
            max_bytes: DEFAULT_CACHE_BYTES,
            max_pending: 1_000_000,
        }
    }
}

/// Builder-style setters, for code outside this crate (the struct is
/// `#[non_exhaustive]`): `CacheSettings::default().ttl(..).max_bytes(..)`.
/// Values are checked when the configuration is built.
///
/// ```
/// use std::time::Duration;
/// use threescale_core::CacheSettings;
/// let settings = CacheSettings::default()
///     .ttl(Duration::from_secs(30))
///     .max_bytes(1 << 20);
/// assert_eq!(settings.ttl, Duration::from_secs(30));
/// assert_eq!(settings.max_bytes, 1 << 20);
/// ```
impl CacheSettings {
    /// Sets `ttl`: how long an authorization is trusted.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets `negative_ttl`: how long a denial (bad key) is remembered.
    pub fn negative_ttl(mut self, negative_ttl: Duration) -> Self {
        self.negative_ttl = negative_ttl;
        self
    }

    /// Sets `flush_interval`: how often usage is reported.
    pub fn flush_interval(mut self, flush_interval: Duration) -> Self {
        self.flush_interval = flush_interval;
        self
    }

    /// Sets `max_batch`: at most this many transactions per report POST (≤ 1000).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch;
        self
    }

    /// Sets `capacity`: at most this many cached authorizations.
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets `max_bytes`: at most this many bytes of cached authorizations (at least [`MIN_CACHE_BYTES`]).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets `max_pending`: at most this many applications' usage kept for retry during outages.
    pub fn max_pending(mut self, max_pending: usize) -> Self {
        self.max_pending = max_pending;
        self
    }
}

/// The default byte budget of the authorization cache: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The smallest byte budget of the authorization cache: 16 KiB.
pub const MIN_CACHE_BYTES: u64 = 16 * 1024;

/// The longest TTL or flush interval accepted: one year (longer ones would
/// overflow clock arithmetic on some platforms and are never meant).
pub const MAX_CACHE_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// What to do when the backend cannot be asked (down, slow past the timeout,
/// 5xx, malformed answer): the one setting for outages, in both modes.
///
/// While the backend is down, per policy and mode, for an application whose
/// cached answer is *allowed* or *denied* and within its TTL, one whose cached
/// answer has *expired*, and one *unknown* to the cache (always so in Sync
/// mode, and for a metric the backend has not accepted yet):
///
/// | policy | mode | known, allowed | known, denied | expired | unknown |
/// |---|---|---|---|---|---|
/// | `Closed` | Sync | 503 | 503 | – | 503 |
/// | `Closed` | Cached | allowed, limits counted | denied | 503 | 503 |
/// | `Resilient` (default) | Sync | 503 | 503 | – | 503 |
/// | `Resilient` (default) | Cached | allowed, limits counted | denied | last answer kept: allowed (limits counted) or denied | 503 |
/// | `Open` | Sync | allowed, usage kept | allowed, usage kept | – | allowed, usage kept |
/// | `Open` | Cached | allowed, limits counted | denied | last answer kept | allowed, usage kept |
///
/// "Usage kept" means admitted without the backend's word: the usage is
/// checked with the backend before it joins a report, so an application or
/// metric the backend refuses loses only its own usage. 503 is the
/// [`crate::DenialKind::BackendUnavailable`] response. A failure the request
/// itself causes (a backend 4xx, a call too large to send) is never an
/// outage: every policy refuses it (403).
///
/// The gateway's caching policy modes map onto it: `strict` is `Closed`,
/// `resilient` is `Resilient`, `allow` is `Open`; its `none` (no cache) is
/// not an outage setting but [`Mode::Sync`]. Deserialised from `closed`
/// (or `strict`), `resilient`, or `open` (or `allow`).
///
/// ```
/// use threescale_core::FailurePolicy;
/// assert_eq!(FailurePolicy::default(), FailurePolicy::Resilient);
/// assert_eq!(FailurePolicy::parse("allow"), Some(FailurePolicy::Open));
/// assert_eq!(FailurePolicy::parse("strict"), Some(FailurePolicy::Closed));
/// assert_eq!(FailurePolicy::parse("sometimes"), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Deny with `BackendUnavailable` (503); in Cached mode an authorization
    /// still within its TTL is honoured (the gateway's `strict`).
    #[serde(alias = "strict")]
    Closed,
    /// Like `Closed`, and in Cached mode the last known answer is kept past
    /// its TTL: an outage neither locks out applications that were working
    /// nor lets in those that were refused, and limits keep being counted
    /// from the last known counters (the gateway's `resilient`). In Sync
    /// mode, which caches nothing, it is `Closed`.
    #[default]
    Resilient,
    /// Allow, and keep the usage for later reporting; in Cached mode a
    /// cached denial stays a denial (the gateway's `allow`).
    #[serde(alias = "allow")]
    Open,
}

impl FailurePolicy {
    /// The policy named `name`: `closed` (or `strict`), `resilient`, `open`
    /// (or `allow`).
    pub fn parse(name: &str) -> Option<FailurePolicy> {
        match name {
            "closed" | "strict" => Some(FailurePolicy::Closed),
            "resilient" => Some(FailurePolicy::Resilient),
            "open" | "allow" => Some(FailurePolicy::Open),
            _ => None,
        }
    }
}

/// The gateway's caching policy modes (`caching_type`), also the project
/// file's former `mode.cached.outage` setting. `strict`, `resilient` and
/// `allow` select a [`FailurePolicy`]; `none` (no cache) selects
/// [`Mode::Sync`], one authrep per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CachingType {
    Strict,
    Resilient,
    Allow,
    None,
}

impl CachingType {
    /// The mode named `name` (`strict`, `resilient`, `allow` or `none`).
    pub(crate) fn parse(name: &str) -> Option<CachingType> {
        match name {
            "strict" => Some(CachingType::Strict),
            "resilient" => Some(CachingType::Resilient),
            "allow" => Some(CachingType::Allow),
            "none" => Some(CachingType::None),
            _ => None,
        }
    }

    /// Whether it keeps the cache (all but `none`).
    pub(crate) fn caches(self) -> bool {
        self != CachingType::None
    }

    /// The failure policy it selects, given the one set beside it in the
    /// same source (as before they were one setting: an open policy admits
    /// unknown applications whatever the caching mode, and otherwise the
    /// caching mode decides).
    pub(crate) fn policy(self, beside: Option<FailurePolicy>) -> FailurePolicy {
        match (self, beside) {
            (_, Some(FailurePolicy::Open)) | (CachingType::Allow, _) => FailurePolicy::Open,
            (CachingType::Strict, _) => FailurePolicy::Closed,
            (CachingType::Resilient, _) => FailurePolicy::Resilient,
            (CachingType::None, beside) => beside.unwrap_or_default(),
        }
    }
}

/// Which rate-limit headers allowed and 429 responses carry.
/// Deserialised from `off`, `legacy` or `ietf`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitHeaders {
    /// None.
    Off,
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (as the gateway's policy).
    #[default]
    Legacy,
    /// The IETF draft's structured `RateLimit` and `RateLimit-Policy` fields.
    Ietf,
}

/// One protected service and how the engine treats it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The service.
    pub service: ServiceConfig,
    /// Sync or cached.
    pub mode: Mode,
    /// What to do when the backend cannot be asked.
    pub failure_policy: FailurePolicy,
    /// Backend request timeout.
    pub timeout: Duration,
    /// Paths that bypass 3scale (health checks, metrics): each matches itself
    /// and the paths below it, whole segments only.
    pub bypass_paths: Vec<String>,
    /// Rate-limit headers on responses.
    pub rate_limit_headers: RateLimitHeaders,
    /// Credential length limits and the treatment of ambiguous paths.
    pub request: RequestPolicy,
    /// TLS trust and client identity for the backend (and the admin portal).
    pub tls: TlsTrust,
    /// Report each allowed request's response status with its usage
    /// (`log[code]`), as the gateway's `APICAST_RESPONSE_CODES`. The usage is
    /// then reported after the response, in both modes (see
    /// [`ConfigBuilder::response_codes`]).
    pub response_codes: bool,
}

/// Whether an environment variable turns a switch on: `1`, `true`, `yes` or
/// `on` (any case), as the gateway reads `APICAST_RESPONSE_CODES`.
pub(crate) fn env_enabled(value: Option<String>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The default backend request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl Config {
    /// Starts a builder.
    ///
    /// ```
    /// use threescale_core::{Config, Mode, CacheSettings};
    /// let config = Config::builder()
    ///     .backend_url("http://127.0.0.1:3001")
    ///     .service_token("demo-service-token", "2555417777820")
    ///     .rule("GET", "/orders/{id}$", "orders", 1)
    ///     .rule("ANY", "/", "hits", 1)
    ///     .bypass_path("/health")
    ///     .mode(Mode::Cached(CacheSettings::default()))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.service.service_id, "2555417777820");
    /// assert_eq!(config.service.mapping_rules.rules().len(), 2);
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Reads a YAML/JSON file: the project's format or an admin-portal proxy config.
    /// YAML needs the `yaml` feature (on by default); without it the file is read
    /// as JSON and a YAML one is refused with an error naming the feature.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Config, ConfigError> {
        file::load_file(path.as_ref())
    }

    /// Reads `THREESCALE_*` environment variables:
    /// `THREESCALE_CONFIG` (a file, which then wins; `THREESCALE_BACKEND_URL`
    /// still overrides its backend URL), or `THREESCALE_BACKEND_URL`,
    /// `THREESCALE_SERVICE_ID`, `THREESCALE_SERVICE_TOKEN` or `THREESCALE_PROVIDER_KEY`,
    /// `THREESCALE_BACKEND_VERSION` (`1`, `2`, `oauth`), `THREESCALE_CREDENTIALS_LOCATION`
    /// (`query`, `headers`, `authorization`, or a comma-separated chain such as
    /// `headers,query`), `THREESCALE_OIDC_ISSUER_ENDPOINT` (OpenID Connect with
    /// default settings), `THREESCALE_FAILURE_POLICY` (`closed`, `open`),
    /// `THREESCALE_BYPASS_PATHS` (comma-separated paths),
    /// `THREESCALE_MAX_CREDENTIAL_LEN` and `THREESCALE_MAX_TOKEN_LEN` (bytes),
    /// `THREESCALE_PATH_POLICY` (`strict`, `normalise`), `THREESCALE_REFERRER_HEADER`
    /// (e.g. `Referer`: sent as the backend's `referrer`), the TLS settings
    /// `THREESCALE_TLS_CA_FILE`, `THREESCALE_TLS_NATIVE_ROOTS` and
    /// `THREESCALE_TLS_WEBPKI_ROOTS` (`true`/`false`), `THREESCALE_TLS_CLIENT_CERT` and
    /// `THREESCALE_TLS_CLIENT_KEY` (the TLS and referrer settings also apply
    /// over a `THREESCALE_CONFIG` file), and per kind of denial
    /// (`KIND` the upper-cased [`crate::DenialKind::key`], e.g. `NO_MATCH`)
    /// `THREESCALE_ERROR_STATUS_KIND`, `THREESCALE_ERROR_BODY_KIND` and
    /// `THREESCALE_ERROR_CONTENT_TYPE_KIND`.
    /// Without mapping rules every request counts one `hits`.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `var`.
    ///
    /// ```
    /// use threescale_core::Config;
    /// let config = Config::from_vars(|name| match name {
    ///     "THREESCALE_SERVICE_ID" => Some("42".into()),
    ///     "THREESCALE_SERVICE_TOKEN" => Some("token".into()),
    ///     _ => None,
    /// }).unwrap();
    /// assert_eq!(config.service.service_id, "42");
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::builder_from_vars(var)?.build()
    }

    /// The builder [`Config::from_vars`] fills: from the file of
    /// `THREESCALE_CONFIG`, or from the other variables.
    fn builder_from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<ConfigBuilder, ConfigError> {
        if let Some(path) = var("THREESCALE_CONFIG").filter(|p| !p.is_empty()) {
            let mut builder = file::builder_from_file(std::path::Path::new(&path))?;
            // The backend URL of the environment wins over the file's, like the
            // gateway's BACKEND_ENDPOINT_OVERRIDE (e.g. a portal config run
            // against a local emulator).
            if let Some(url) = var("THREESCALE_BACKEND_URL").filter(|u| !u.is_empty()) {
                builder = builder.backend_url(url).field_from(
                    "backend_url",
                    "env",
                    "THREESCALE_BACKEND_URL",
                );
            }
            // So do the TLS and referrer settings of the environment.
            return env_overrides(builder, &var);
        }
        let err = |field: &str, reason: &str| ConfigError::new("env", field, reason);
        let mut builder = Config::builder().source("env");
        if let Some(url) = var("THREESCALE_BACKEND_URL") {
            builder = builder.backend_url(url);
        }
        let service_id = var("THREESCALE_SERVICE_ID");
        match (
            var("THREESCALE_SERVICE_TOKEN"),
            var("THREESCALE_PROVIDER_KEY"),
        ) {
            (Some(token), _) => {
                let id = service_id.ok_or_else(|| {
                    err(
                        "THREESCALE_SERVICE_ID",
                        "required with THREESCALE_SERVICE_TOKEN",
                    )
                })?;
                builder = builder.service_token(token, id);
            }
            (None, Some(key)) => {
                let mut auth = ProviderAuth::provider_key(key);
                if let Some(id) = service_id {
                    auth = auth.with_service_id(id);
                }
                builder = builder.provider_auth(auth);
            }
            (None, None) => {
                return Err(err(
                    "THREESCALE_SERVICE_TOKEN",
                    "set THREESCALE_SERVICE_TOKEN (with THREESCALE_SERVICE_ID) or THREESCALE_PROVIDER_KEY",
                ));
            }
        }
        if let Some(v) = var("THREESCALE_BACKEND_VERSION") {
            let version = BackendVersion::parse(&v)
                .ok_or_else(|| err("THREESCALE_BACKEND_VERSION", "expected 1, 2 or oauth"))?;
            builder = builder.backend_version(version);
        }
        if let Some(v) = var("THREESCALE_CREDENTIALS_LOCATION") {
            let mut chain: Option<CredentialsConfig> = None;
            for part in v.split(',') {
                let location = crate::CredentialsLocation::parse(part.trim()).ok_or_else(|| {
                    err(
                        "THREESCALE_CREDENTIALS_LOCATION",
                        "expected query, headers or authorization (or several, comma-separated)",
                    )
                })?;
                chain = Some(match chain {
                    None => CredentialsConfig::new(location),
                    Some(chain) => chain.fallback(location),
                });
            }
            builder = builder.credentials(chain.unwrap_or_default());
        }
        if let Some(v) = var("THREESCALE_OIDC_ISSUER_ENDPOINT").filter(|v| !v.trim().is_empty()) {
            let given = var("THREESCALE_BACKEND_VERSION").is_some();
            let version = builder.current_backend_version();
            builder = builder
                .oidc(crate::oidc::OidcSettings::new(v))
                .field_path("oidc.issuer_endpoint", "THREESCALE_OIDC_ISSUER_ENDPOINT")
                .field_path("backend_version", "THREESCALE_BACKEND_VERSION");
            // A version other than oauth given with it is refused by build.
            if given {
                builder = builder.backend_version(version);
            }
        }
        if let Some(v) = var("THREESCALE_FAILURE_POLICY") {
            let policy = FailurePolicy::parse(&v).ok_or_else(|| {
                err(
                    "THREESCALE_FAILURE_POLICY",
                    "expected closed, resilient or open (or strict, allow)",
                )
            })?;
            builder = builder.failure_policy(policy);
        }
        if let Some(v) = var("THREESCALE_BYPASS_PATHS") {
            for path in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                builder = builder.bypass_path(path);
            }
            builder = builder.field_path("bypass_paths", "THREESCALE_BYPASS_PATHS");
        }
        let bytes = |name: &str| -> Result<Option<usize>, ConfigError> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| err(name, "expected a number of bytes"))
                })
                .transpose()
        };
        if let Some(n) = bytes("THREESCALE_MAX_CREDENTIAL_LEN")? {
            builder = builder.max_credential_len(n);
        }
        if let Some(n) = bytes("THREESCALE_MAX_TOKEN_LEN")? {
            builder = builder.max_token_len(n);
        }
        if let Some(v) = var("THREESCALE_PATH_POLICY") {
            let policy = PathPolicy::parse(&v)
                .ok_or_else(|| err("THREESCALE_PATH_POLICY", "expected strict or normalise"))?;
            builder = builder.path_policy(policy);
        }
        builder = env_overrides(builder, &var)?;
        for kind in crate::DenialKind::ALL {
            let key = kind.key().to_ascii_uppercase();
            let status_var = format!("THREESCALE_ERROR_STATUS_{key}");
            let type_var = format!("THREESCALE_ERROR_CONTENT_TYPE_{key}");
            let status = match var(&status_var) {
                None => None,
                Some(v) => Some((
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| err(&status_var, "expected an HTTP status (100-599)"))?,
                    status_var,
                )),
            };
            let body = var(&format!("THREESCALE_ERROR_BODY_{key}"));
            let content_type = var(&type_var).map(|v| (v, type_var));
            if status.is_some() || body.is_some() || content_type.is_some() {
                builder = builder.error_setting(ErrorSetting {
                    kind,
                    status,
                    body,
                    content_type,
                });
            }
        }
        Ok(builder)
    }
}

/// The settings the environment gives even over a `THREESCALE_CONFIG` file:
/// `THREESCALE_TLS_*` and `THREESCALE_REFERRER_HEADER`.
fn env_overrides(
    mut builder: ConfigBuilder,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<ConfigBuilder, ConfigError> {
    if response_codes_from_env(var) {
        builder = builder.response_codes(true);
    }
    if let Some(tls) = TlsTrust::from_vars(var)? {
        builder = builder.tls(tls);
        for field in [
            "tls.ca_file",
            "tls.client_cert",
            "tls.client_key",
            "tls.client",
            "tls",
        ] {
            builder = builder.field_from(field, "env", TlsTrust::env_name(field));
        }
    }
    if let Some(name) = var("THREESCALE_REFERRER_HEADER").filter(|v| !v.trim().is_empty()) {
        builder = builder.referrer_header(name).field_from(
            "referrer_header",
            "env",
            "THREESCALE_REFERRER_HEADER",
        );
    }
    Ok(builder)
}

/// Builds a [`Config`]. Unset fields get defaults; `build` validates.
///
/// Every source fills one: code, the environment ([`Config::from_vars`]), the
/// project's file format, an admin-portal proxy config (file or portal), with
/// mapping rules from anywhere (e.g. an OpenAPI import). Every check lives in
/// [`ConfigBuilder::build`], and its errors name the source and the field as
/// the source spells it.
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    source: Option<String>,
    backend_url: Option<String>,
    provider_auth: Option<ProviderAuth>,
    system_name: Option<String>,
    backend_version: BackendVersion,
    credentials: CredentialsConfig,
    rules: Vec<crate::mapping::MappingRule>,
    error_responses: ErrorResponses,
    mode: Option<Mode>,
    failure_policy: FailurePolicy,
    timeout: Option<Duration>,
    bypass_paths: Vec<String>,
    rate_limit_headers: RateLimitHeaders,
    request: RequestPolicy,
    response_codes: bool,
    oidc: Option<crate::oidc::OidcSettings>,
    /// How the source names fields, for errors (`backend_url` →
    /// `proxy.backend.endpoint`), and which source a field came from when
    /// it is not the builder's (an environment override of a file).
    field_names: Vec<(&'static str, FieldName)>,
    /// Without rules nothing matches (proxy configs, as the gateway), instead
    /// of every request counting one `hits`.
    empty_rules_match_nothing: bool,
    /// Credential parameter names as the source wrote them, checked by `build`.
    param_names: Vec<(CredentialParam, String)>,
    /// Error responses as the source wrote them, checked by `build`.
    error_settings: Vec<ErrorSetting>,
    /// Why the OpenAPI document given to [`ConfigBuilder::openapi`] gave no rules.
    openapi_error: Option<String>,
    tls: TlsTrust,
    referrer_header: Option<String>,
}

/// A field's name in its source.
#[derive(Clone, Debug)]
struct FieldName {
    source: Option<String>,
    path: String,
}

/// A credential parameter whose name a source sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CredentialParam {
    /// The user key's name.
    UserKey,
    /// The app id's name.
    AppId,
    /// The app key's name.
    AppKey,
}

impl CredentialParam {
    /// Every parameter, with its builder field name.
    pub(crate) const ALL: [(CredentialParam, &'static str); 3] = [
        (CredentialParam::UserKey, "credentials.user_key"),
        (CredentialParam::AppId, "credentials.app_id"),
        (CredentialParam::AppKey, "credentials.app_key"),
    ];

    fn field(self) -> &'static str {
        CredentialParam::ALL
            .iter()
            .find(|(param, _)| *param == self)
            .map_or("credentials", |(_, field)| field)
    }

    fn apply(self, credentials: CredentialsConfig, name: &str) -> CredentialsConfig {
        match self {
            CredentialParam::UserKey => credentials.user_key_name(name),
            CredentialParam::AppId => credentials.app_id_name(name),
            CredentialParam::AppKey => credentials.app_key_name(name),
        }
    }
}

/// One kind's error response as a source wrote it: unchecked status and
/// content type, each with its field name in the source.
#[derive(Clone, Debug)]
pub(crate) struct ErrorSetting {
    /// The kind of denial.
    pub(crate) kind: crate::DenialKind,
    /// The status, when set, and its field.
    pub(crate) status: Option<(i64, String)>,
    /// The body, when set.
    pub(crate) body: Option<String>,
    /// The `Content-Type`, when set, and its field.
    pub(crate) content_type: Option<(String, String)>,
}

impl ConfigBuilder {
    /// Names the source in errors (`env`, a file path, `proxy config`, …).
    pub(crate) fn source(mut self, name: &str) -> Self {
        self.source = Some(name.to_string());
        self
    }

    /// Names builder field `field` as the source spells it, in errors.
    pub(crate) fn field_path(mut self, field: &'static str, path: impl Into<String>) -> Self {
        self.field_names.push((
            field,
            FieldName {
                source: None,
                path: path.into(),
            },
        ));
        self
    }

    /// Like [`ConfigBuilder::field_path`], for a field another source set.
    pub(crate) fn field_from(
        mut self,
        field: &'static str,
        source: &str,
        path: impl Into<String>,
    ) -> Self {
        self.field_names.push((
            field,
            FieldName {
                source: Some(source.to_string()),
                path: path.into(),
            },
        ));
        self
    }

    /// Without rules nothing matches, as in the gateway.
    pub(crate) fn empty_rules_match_nothing(mut self) -> Self {
        self.empty_rules_match_nothing = true;
        self
    }

    /// Sets a credential parameter's name; `build` checks it.
    pub(crate) fn param_name(mut self, param: CredentialParam, name: impl Into<String>) -> Self {
        self.param_names.push((param, name.into()));
        self
    }

    /// Sets parts of one kind's error response; `build` checks them.
    pub(crate) fn error_setting(mut self, setting: ErrorSetting) -> Self {
        self.error_settings.push(setting);
        self
    }

    /// Backend base URL (default the 3scale SaaS backend).
    pub fn backend_url(mut self, url: impl Into<String>) -> Self {
        self.backend_url = Some(url.into());
        self
    }

    /// Authenticates with a service token for `service_id`.
    pub fn service_token(
        self,
        token: impl Into<crate::Secret>,
        service_id: impl Into<String>,
    ) -> Self {
        self.provider_auth(ProviderAuth::service_token(token, service_id))
    }

    /// Authenticates with a provider key (legacy) for `service_id`.
    pub fn provider_key(
        self,
        key: impl Into<crate::Secret>,
        service_id: impl Into<String>,
    ) -> Self {
        self.provider_auth(ProviderAuth::provider_key(key).with_service_id(service_id))
    }

    /// Sets the provider credentials.
    pub fn provider_auth(mut self, auth: ProviderAuth) -> Self {
        self.provider_auth = Some(auth);
        self
    }

    /// The service's system name (shown in debug headers).
    pub fn system_name(mut self, name: impl Into<String>) -> Self {
        self.system_name = Some(name.into());
        self
    }

    /// Credential mode (default user_key).
    pub fn backend_version(mut self, version: BackendVersion) -> Self {
        self.backend_version = version;
        self
    }

    /// OpenID Connect: access tokens are JWTs of this issuer, checked in the
    /// engine (see [`crate::oidc`]). Sets `backend_version` to `oauth`.
    ///
    /// ```
    /// use threescale_core::{BackendVersion, Config, oidc::OidcSettings};
    /// let config = Config::builder()
    ///     .service_token("token", "42")
    ///     .oidc(OidcSettings::new("https://sso.example.com/realms/demo"))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.service.backend_version, BackendVersion::OAuth);
    /// ```
    pub fn oidc(mut self, settings: crate::oidc::OidcSettings) -> Self {
        self.backend_version = BackendVersion::OAuth;
        self.oidc = Some(settings);
        self
    }

    /// The backend version set so far (the file format's OIDC section reads it).
    pub(crate) fn current_backend_version(&self) -> BackendVersion {
        self.backend_version
    }

    /// Where to find credentials (default: the query string, default names).
    pub fn credentials(mut self, credentials: CredentialsConfig) -> Self {
        self.credentials = credentials;
        self
    }

    /// Adds a mapping rule.
    pub fn rule(mut self, method: &str, pattern: &str, metric: &str, delta: i64) -> Self {
        self.rules.push(crate::mapping::MappingRule {
            http_method: method.to_string(),
            pattern: pattern.to_string(),
            querystring_parameters: None,
            metric_system_name: metric.to_string(),
            delta,
            last: false,
            position: None,
        });
        self
    }

    /// Replaces the mapping rules with those of an OpenAPI 3.0 document (JSON
    /// or YAML), one per operation (see [`crate::openapi::import`]), each path
    /// behind `prefix` when given. A document that gives no rules makes
    /// [`ConfigBuilder::build`] fail, naming the field `openapi`.
    ///
    /// ```
    /// use threescale_core::Config;
    /// let doc = r#"{"openapi": "3.0.0", "info": {"title": "t", "version": "1"},
    ///   "paths": {"/pets": {"get": {"operationId": "listPets",
    ///                               "responses": {"200": {"description": "ok"}}}}}}"#;
    /// let config = Config::builder().service_token("t", "1").openapi(doc, None).build().unwrap();
    /// assert_eq!(config.service.mapping_rules.rules()[0].metric_system_name, "list_pets");
    /// let err = Config::builder().service_token("t", "1").openapi("{", None).build().unwrap_err();
    /// assert_eq!(err.field, "openapi");
    /// ```
    #[cfg(feature = "openapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
    pub fn openapi(mut self, document: &str, prefix: Option<&str>) -> Self {
        match crate::openapi::import(document, prefix) {
            Ok(import) => {
                self.rules = import.rules;
                self.openapi_error = None;
            }
            Err(e) => self.openapi_error = Some(e.to_string()),
        }
        self
    }

    /// Replaces the mapping rules. Without rules, every request counts one `hits`.
    pub fn mapping_rules(mut self, rules: Vec<crate::mapping::MappingRule>) -> Self {
        self.rules = rules;
        self.openapi_error = None;
        self
    }

    /// Sets the response of one kind of denial.
    pub fn error_response(
        mut self,
        kind: crate::DenialKind,
        response: crate::ErrorResponse,
    ) -> Self {
        *self.error_responses.get_mut(kind) = response;
        self
    }

    /// Sync (default) or cached.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// What to do when the backend cannot be asked: `Resilient` (default),
    /// `Closed` or `Open` (see [`FailurePolicy`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = policy;
        self
    }

    /// Backend request timeout (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A path that bypasses 3scale (e.g. `/health`), with every path below it
    /// (`/health/live`), never a longer name (`/healthcare`). It is compared
    /// with the normalised request path, the one the mapping rules see.
    pub fn bypass_path(mut self, prefix: impl Into<String>) -> Self {
        self.bypass_paths.push(prefix.into());
        self
    }

    /// Report each allowed request's response status with its usage
    /// (`log[code]`, default off), as the gateway's `APICAST_RESPONSE_CODES`.
    ///
    /// The usage is then reported after the response, with its status, one
    /// transaction per response (the backend counts a code once per
    /// transaction). In [`Mode::Sync`] the check before the response becomes
    /// an `authorize` with the request's usage (checked, not counted), so
    /// that each hit is counted once, by that report; in [`Mode::Cached`] the
    /// batcher holds it until the response is known. A request whose response
    /// never comes (the handler panicked, the client went away) is reported
    /// without a code.
    ///
    /// ```
    /// use threescale_core::Config;
    /// let config = Config::builder()
    ///     .service_token("token", "42")
    ///     .response_codes(true)
    ///     .build()
    ///     .unwrap();
    /// assert!(config.response_codes);
    /// ```
    pub fn response_codes(mut self, on: bool) -> Self {
        self.response_codes = on;
        self
    }

    /// Which rate-limit headers to send (default the gateway's `RateLimit-*`).
    pub fn rate_limit_headers(mut self, headers: RateLimitHeaders) -> Self {
        self.rate_limit_headers = headers;
        self
    }

    /// The longest user key, app id or app key accepted, in bytes (default
    /// 256). A longer one, or one with a control character, is an
    /// authentication failure (403) without a backend call.
    pub fn max_credential_len(mut self, bytes: usize) -> Self {
        self.request.max_credential_len = bytes;
        self
    }

    /// The longest OAuth/OIDC access token accepted, in bytes (default 8 KiB).
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.request.max_token_len = bytes;
        self
    }

    /// What to do with ambiguous paths: refuse them with 400 (default,
    /// [`PathPolicy::Strict`]) or normalise them as the gateway does
    /// ([`PathPolicy::Normalise`], for services behind a normalising proxy).
    pub fn path_policy(mut self, policy: PathPolicy) -> Self {
        self.request.paths = policy;
        self
    }

    /// Whom the backend client (and the admin portal loader) trusts, and the
    /// client certificate it presents (default: the bundled web PKI roots).
    /// Files are read and checked by [`ConfigBuilder::build`].
    pub fn tls(mut self, tls: TlsTrust) -> Self {
        self.tls = tls;
        self
    }

    /// Sends the value of this request header (normally `Referer`) as the
    /// backend's `referrer` parameter, for applications with referrer filters.
    /// A value of `*` (which the backend reads as "skip the check"), over
    /// [`MAX_REFERRER_LEN`] bytes or with control characters is not sent.
    ///
    /// ```
    /// use threescale_core::Config;
    /// let config = Config::builder().service_token("t", "1").referrer_header("Referer").build().unwrap();
    /// assert_eq!(config.service.referrer_header.unwrap(), "referer");
    /// ```
    pub fn referrer_header(mut self, name: impl Into<String>) -> Self {
        self.referrer_header = Some(name.into());
        self
    }

    /// Validates and builds. Every check of every source is here: provider
    /// credentials, backend URL, credential parameter names, error statuses and
    /// content types, mapping rules, timeout, bypass paths, request limits and
    /// cache settings.
    pub fn build(mut self) -> Result<Config, ConfigError> {
        let source = self.source.take().unwrap_or_else(|| "builder".to_string());
        let names = std::mem::take(&mut self.field_names);
        let err = |field: &str, reason: String| match names.iter().rev().find(|(f, _)| *f == field)
        {
            Some((_, name)) => ConfigError::new(
                name.source.as_deref().unwrap_or(&source),
                name.path.as_str(),
                reason,
            ),
            None => ConfigError::new(source.as_str(), field, reason),
        };
        let path = |field: &str| {
            names
                .iter()
                .rev()
                .find(|(f, _)| *f == field)
                .map_or_else(|| field.to_string(), |(_, name)| name.path.clone())
        };

        let provider_auth = self.provider_auth.ok_or_else(|| {
            err(
                "provider_auth",
                "a service token (with service id) or a provider key is required".into(),
            )
        })?;
        let service_id = provider_auth.service_id().unwrap_or_default().to_string();
        if matches!(provider_auth, ProviderAuth::ServiceToken { .. }) && service_id.is_empty() {
            return Err(err("service_id", "required with a service token".into()));
        }

        let backend_url = self
            .backend_url
            .map(|url| url.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_BACKEND_URL.to_string());
        validate_url(&backend_url).map_err(|reason| err("backend_url", reason))?;

        let mut credentials = self.credentials;
        for (param, name) in &self.param_names {
            validate_param_name(name).map_err(|reason| err(param.field(), reason))?;
            credentials = param.apply(credentials, name);
        }

        let mut error_responses = self.error_responses;
        for setting in self.error_settings {
            let response = error_responses.get_mut(setting.kind);
            if let Some((status, field)) = setting.status {
                response.status = parse_status(status)
                    .map_err(|reason| ConfigError::new(source.as_str(), field, reason))?;
            }
            if let Some(body) = setting.body {
                response.body = body.into();
            }
            if let Some((content_type, field)) = setting.content_type {
                response.content_type = parse_content_type(&content_type)
                    .map_err(|reason| ConfigError::new(source.as_str(), field, reason))?;
            }
        }

        if let Some(reason) = self.openapi_error {
            return Err(err("openapi", reason));
        }
        let rules = if self.rules.is_empty() && !self.empty_rules_match_nothing {
            default_rules()
        } else {
            self.rules
        };
        let mapping_rules = compile_rules(rules, &source, &path("mapping_rules"))?;

        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(err("timeout", "must be more than zero".into()));
        }
        if let Some(path) = self.bypass_paths.iter().find(|p| !p.starts_with('/')) {
            return Err(err(
                "bypass_paths",
                format!("{path:?} does not start with /"),
            ));
        }
        if self.request.max_credential_len == 0 {
            return Err(err("max_credential_len", "must be more than zero".into()));
        }
        if self.request.max_token_len == 0 {
            return Err(err("max_token_len", "must be more than zero".into()));
        }
        if let Some(oidc) = &self.oidc {
            if self.backend_version != BackendVersion::OAuth {
                return Err(err(
                    "backend_version",
                    "OpenID Connect needs backend_version oauth".into(),
                ));
            }
            oidc.check().map_err(|(field, reason)| err(field, reason))?;
        }
        let mode = self.mode.unwrap_or(Mode::Sync);
        if let Mode::Cached(settings) = &mode {
            validate_cache(settings).map_err(|(field, reason)| err(field, reason))?;
        }
        self.tls.check().map_err(|e| err(e.field, e.reason))?;
        let referrer_header = match &self.referrer_header {
            None => None,
            Some(name) => Some(
                http::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                    err("referrer_header", format!("{name:?} is not a header name"))
                })?,
            ),
        };
        Ok(Config {
            service: ServiceConfig {
                service_id,
                system_name: self.system_name,
                backend_version: self.backend_version,
                backend_url,
                provider_auth,
                credentials,
                mapping_rules,
                error_responses,
                referrer_header,
                oidc: self.oidc,
            },
            mode,
            failure_policy: self.failure_policy,
            timeout,
            bypass_paths: self.bypass_paths,
            rate_limit_headers: self.rate_limit_headers,
            request: self.request,
            response_codes: self.response_codes,
            tls: self.tls,
        })
    }
}

/// The longest referrer sent to the backend, in bytes; a longer `Referer` is
/// not sent (the backend then answers as for a missing referrer).
pub const MAX_REFERRER_LEN: usize = 2048;

/// Checks and compiles mapping rules, naming a broken one as
/// `{field}[{index}].{rule field}` (e.g. `service.mapping_rules[1].pattern`).
pub(crate) fn compile_rules(
    rules: Vec<crate::mapping::MappingRule>,
    source: &str,
    field: &str,
) -> Result<MappingRules, ConfigError> {
    // Compiled once: the error names the rule and its field.
    MappingRules::new(rules).map_err(|e| {
        ConfigError::new(
            source,
            format!("{field}[{}].{}", e.index, e.field),
            format!("{} ({:?})", e.reason, e.pattern),
        )
    })
}

/// The rules of a configuration that gives none: every request counts one `hits`.
pub(crate) fn default_rules() -> Vec<crate::mapping::MappingRule> {
    vec![crate::mapping::MappingRule::new("ANY", "/", "hits", 1)]
}

/// Checks a credential parameter name from a configuration file.
pub(crate) fn validate_param_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(|c: char| c.is_control() || c == ' ') {
        return Err(format!("{name:?} is not a usable parameter name"));
    }
    Ok(())
}

/// An error response's status from a configuration file (100-599).
pub(crate) fn parse_status(status: i64) -> Result<http::StatusCode, String> {
    u16::try_from(status)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .ok_or_else(|| format!("{status} is not an HTTP status (100-599)"))
}

/// An error response's `Content-Type` from a configuration file.
pub(crate) fn parse_content_type(value: &str) -> Result<http::HeaderValue, String> {
    http::HeaderValue::from_str(value)
        .map_err(|_| format!("{value:?} is not a valid Content-Type value"))
}

/// Checks a backend URL exactly as the backend client does: an absolute
/// `http` or `https` URL with a host, a valid port, and no user information,
/// query or fragment (surrounding whitespace is ignored). Every configuration
/// source uses it, so a URL a built [`Config`] holds never fails later in
/// [`crate::ThreeScale::new`]. The message never repeats user information.
///
/// ```
/// use threescale_core::Config;
/// let build = |url: &str| Config::builder().service_token("t", "1").backend_url(url).build();
/// assert!(build("http://127.0.0.1:3001").is_ok());
/// let err = build("http://user:pass@127.0.0.1:3001").unwrap_err();
/// assert_eq!(err.field, "backend_url");
/// assert!(!err.to_string().contains("pass"), "{err}");
/// assert!(build("http://127.0.0.1:3001/?a=b").is_err());
/// ```
pub(crate) fn validate_url(url: &str) -> Result<(), String> {
    crate::backend::parse_backend_url(url).map(|_| ())
}

/// Checks the cached-mode settings.
pub(crate) fn validate_cache(settings: &CacheSettings) -> Result<(), (&'static str, String)> {
    if settings.max_batch == 0 || settings.max_batch > 1000 {
        return Err(("mode.cached.max_batch", "must be between 1 and 1000".into()));
    }
    if settings.ttl.is_zero() {
        return Err(("mode.cached.ttl", "must be more than zero".into()));
    }
    if settings.flush_interval.is_zero() {
        return Err((
            "mode.cached.flush_interval",
            "must be more than zero".into(),
        ));
    }
    if settings.capacity == 0 {
        return Err(("mode.cached.capacity", "must be more than zero".into()));
    }
    if settings.max_bytes < MIN_CACHE_BYTES {
        return Err((
            "mode.cached.max_bytes",
            format!("must be at least {MIN_CACHE_BYTES} bytes"),
        ));
    }
    for (field, value) in [
        ("mode.cached.ttl", settings.ttl),
        ("mode.cached.negative_ttl", settings.negative_ttl),
        ("mode.cached.flush_interval", settings.flush_interval),
    ] {
        if value > MAX_CACHE_DURATION {
            return Err((field, "must be at most one year".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// `THREESCALE_RESPONSE_CODES` or the gateway's `APICAST_RESPONSE_CODES`.
fn response_codes_from_env(var: &impl Fn(&str) -> Option<String>) -> bool {
    env_enabled(var("THREESCALE_RESPONSE_CODES")) || env_enabled(var("APICAST_RESPONSE_CODES"))
}
