//! The emulator's configuration: services, metrics, plans with limits, applications.
//!
//! The same shape is read from YAML or JSON (see the crate docs for a full example) and
//! built from Rust with [`EmulatorConfig::builder`].

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::errors::EmulatorError;
use crate::period::LimitPeriod;

/// The whole emulator configuration.
///
/// ```
/// use threescale_emulator::EmulatorConfig;
/// let config = EmulatorConfig::from_yaml_str(r#"
/// services:
///   - id: "42"
///     backend_version: "1"
///     provider_key: pk
///     metrics: [{ name: hits }]
///     plans: [{ name: basic, limits: [{ metric: hits, period: minute, value: 5 }] }]
///     applications: [{ plan: basic, user_key: uk }]
/// "#).unwrap();
/// assert_eq!(config.services[0].applications[0].user_key.as_deref(), Some("uk"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmulatorConfig {
    /// The access token of the emulated admin portal: it reads the proxy
    /// configuration of every service (`/admin/api/...`). Without it (and without
    /// per-service tokens) the admin portal API answers 403 to everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_access_token: Option<String>,
    /// The services, in order. The first service of a provider key is its default
    /// service unless another one says `default: true`.
    #[serde(default)]
    pub services: Vec<EmulatedService>,
}

/// One service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmulatedService {
    /// The service id.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// `"1"` (user_key), `"2"` (app_id/app_key, the default) or `"oauth"`.
    #[serde(
        default = "default_backend_version",
        deserialize_with = "string_or_number"
    )]
    pub backend_version: String,
    /// A service token valid for this service (with `service_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_token: Option<String>,
    /// More service tokens valid for this service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_tokens: Vec<String>,
    /// The provider key owning the service. A service without one gets a private key
    /// (`emulator-provider-<id>`), reachable only through service tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_key: Option<String>,
    /// Whether this is its provider's default service (used when `service_id` is
    /// omitted). `false` on every service of a provider means "no default service".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// `active` (the default) or anything else (e.g. `suspended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Whether referrer filters of the applications are enforced.
    #[serde(default)]
    pub referrer_filters_required: bool,
    /// The metrics; `parent` makes a metric a child (a "method") of another one.
    #[serde(default)]
    pub metrics: Vec<MetricConfig>,
    /// The application plans and their limits.
    #[serde(default)]
    pub plans: Vec<PlanConfig>,
    /// The applications.
    #[serde(default)]
    pub applications: Vec<ApplicationConfig>,
    /// The service's `system_name` in the admin portal (default `service_<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_name: Option<String>,
    /// An admin portal access token that reads this service's proxy configuration
    /// (besides the top-level `admin_access_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_access_token: Option<String>,
    /// What the admin portal serves as this service's proxy configuration: mapping
    /// rules, where credentials are, error responses. Without it: the gateway's
    /// defaults and one rule `GET /` → `hits` 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
}

/// The proxy settings the emulated admin portal serves for a service (the `proxy`
/// object of the proxy configuration JSON). Unset fields get the gateway's defaults.
///
/// ```
/// use threescale_emulator::EmulatorConfig;
/// let config = EmulatorConfig::from_yaml_str(r#"
/// admin_access_token: secret
/// services:
///   - id: "42"
///     provider_key: pk
///     metrics: [{ name: hits }, { name: orders, parent: hits }]
///     proxy:
///       credentials_location: headers
///       error_status_no_match: 412
///       mapping_rules:
///         - { http_method: GET, pattern: "/orders/{id}$", metric_system_name: orders, delta: 2 }
///         - { http_method: GET, pattern: "/", metric_system_name: hits, last: true }
/// "#).unwrap();
/// let proxy = config.services[0].proxy.as_ref().unwrap();
/// assert_eq!(proxy.mapping_rules[0].delta, 2);
/// assert_eq!(proxy.mapping_rules[1].delta, 1);
/// assert!(proxy.mapping_rules[1].last);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The mapping rules, in order (`proxy_rules` is accepted too). Empty: one rule
    /// `GET /` → `hits` 1.
    #[serde(default, alias = "proxy_rules")]
    pub mapping_rules: Vec<MappingRuleConfig>,
    /// `query` (default), `headers` or `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_location: Option<String>,
    /// The user key's parameter name (default `user_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_user_key: Option<String>,
    /// The application id's parameter name (default `app_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_app_id: Option<String>,
    /// The application key's parameter name (default `app_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_app_key: Option<String>,
    /// The public hosts of the API (left out of the served JSON when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The upstream API's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_backend: Option<String>,
    /// Body of the auth-failed answer (default `Authentication failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_auth_failed: Option<String>,
    /// Status of the auth-failed answer (default 403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_status_auth_failed: Option<u16>,
    /// Content type of the auth-failed answer (default `text/plain; charset=utf-8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_headers_auth_failed: Option<String>,
    /// Body of the auth-missing answer (default `Authentication parameters missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_auth_missing: Option<String>,
    /// Status of the auth-missing answer (default 401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_status_auth_missing: Option<u16>,
    /// Content type of the auth-missing answer (default `text/plain; charset=utf-8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_headers_auth_missing: Option<String>,
    /// Body of the limits-exceeded answer (default `Limits exceeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_limits_exceeded: Option<String>,
    /// Status of the limits-exceeded answer (default 429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_status_limits_exceeded: Option<u16>,
    /// Content type of the limits-exceeded answer (default `text/plain; charset=utf-8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_headers_limits_exceeded: Option<String>,
    /// Body of the no-match answer (default `No Mapping Rule matched`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_no_match: Option<String>,
    /// Status of the no-match answer (default 404).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_status_no_match: Option<u16>,
    /// Content type of the no-match answer (default `text/plain; charset=utf-8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_headers_no_match: Option<String>,
    /// The gateway policy chain, served as given (`[{name, configuration}]`),
    /// e.g. `apicast.policy.3scale_batcher`; left out of the served JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_chain: Vec<serde_json::Value>,
}

/// One mapping rule as the admin portal holds it. The query part of `pattern`
/// (`/search?q={q}&lang=en`) becomes the served `querystring_parameters`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRuleConfig {
    /// `GET`, `POST`, `DELETE`, `PUT`, `PATCH`, `HEAD` or `OPTIONS` (`method` is
    /// accepted too).
    #[serde(alias = "method")]
    pub http_method: String,
    /// The pattern: a path with `{placeholders}`, an optional `$`, an optional query.
    pub pattern: String,
    /// The metric's system name (`metric` is accepted too).
    #[serde(alias = "metric")]
    pub metric_system_name: String,
    /// How much the metric grows (default 1; must be more than 0).
    #[serde(default = "default_delta")]
    pub delta: i64,
    /// Whether matching stops after this rule when it matches.
    #[serde(default)]
    pub last: bool,
}

fn default_delta() -> i64 {
    1
}

impl MappingRuleConfig {
    /// A rule with `last: false`.
    ///
    /// ```
    /// let rule = threescale_emulator::MappingRuleConfig::new("GET", "/orders", "orders", 1);
    /// assert_eq!(rule.metric_system_name, "orders");
    /// ```
    pub fn new(
        http_method: impl Into<String>,
        pattern: impl Into<String>,
        metric_system_name: impl Into<String>,
        delta: i64,
    ) -> Self {
        Self {
            http_method: http_method.into(),
            pattern: pattern.into(),
            metric_system_name: metric_system_name.into(),
            delta,
            last: false,
        }
    }

    /// Sets `last`.
    pub fn last(mut self, last: bool) -> Self {
        self.last = last;
        self
    }
}

/// The HTTP methods the admin portal accepts in mapping rules.
pub const RULE_METHODS: [&str; 7] = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"];

/// Checks mapping rules the way the admin portal does (method, pattern, delta,
/// and, when the service lists metrics, that the metric is one of them).
pub(crate) fn rule_problems(service: &EmulatedService, rules: &[MappingRuleConfig]) -> Vec<String> {
    let mut problems = Vec::new();
    let sid = &service.id;
    for (i, rule) in rules.iter().enumerate() {
        if !RULE_METHODS.contains(&rule.http_method.as_str()) {
            problems.push(format!(
                "service {sid}: mapping rule {i}: http_method {:?} is not one of {}",
                rule.http_method,
                RULE_METHODS.join(", ")
            ));
        }
        if !rule.pattern.starts_with('/') {
            problems.push(format!(
                "service {sid}: mapping rule {i}: pattern {:?} does not start with /",
                rule.pattern
            ));
        }
        if rule.delta <= 0 {
            problems.push(format!(
                "service {sid}: mapping rule {i}: delta must be more than 0"
            ));
        }
        if rule.metric_system_name.is_empty()
            || (!service.metrics.is_empty()
                && !service
                    .metrics
                    .iter()
                    .any(|m| m.name == rule.metric_system_name))
        {
            problems.push(format!(
                "service {sid}: mapping rule {i}: metric {:?} is not a metric of the service",
                rule.metric_system_name
            ));
        }
    }
    problems
}

/// Checks a service's `proxy` section.
pub(crate) fn proxy_problems(service: &EmulatedService, proxy: &ProxyConfig) -> Vec<String> {
    let mut problems = rule_problems(service, &proxy.mapping_rules);
    if let Some(location) = &proxy.credentials_location
        && !["query", "headers", "authorization"].contains(&location.as_str())
    {
        problems.push(format!(
            "service {}: credentials_location {location:?} is not query, headers or authorization",
            service.id
        ));
    }
    for status in [
        proxy.error_status_auth_failed,
        proxy.error_status_auth_missing,
        proxy.error_status_limits_exceeded,
        proxy.error_status_no_match,
    ]
    .into_iter()
    .flatten()
    {
        if !(100..=599).contains(&status) {
            problems.push(format!(
                "service {}: error status {status} is not an HTTP status",
                service.id
            ));
        }
    }
    problems
}

/// One metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricConfig {
    /// The metric's system name.
    pub name: String,
    /// The parent metric's name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// One application plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanConfig {
    /// The plan name (shown in `<plan>`).
    pub name: String,
    /// The usage limits.
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
}

/// One usage limit: at most `value` units of `metric` per `period`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitConfig {
    /// The metric name.
    pub metric: String,
    /// The period.
    pub period: LimitPeriod,
    /// The maximum; `0` disables the metric.
    pub value: i64,
}

/// One application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationConfig {
    /// The plan name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The application id (`app_id`, or `id`). Generated (`app-N`) when missing.
    #[serde(
        default,
        alias = "id",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string_or_number"
    )]
    pub app_id: Option<String>,
    /// The user key (services of backend_version 1; also usable in reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key: Option<String>,
    /// The application keys. An application without keys accepts any `app_key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_keys: Vec<String>,
    /// `active` (the default) or anything else (e.g. `suspended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Referrer filters (globs with `*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrer_filters: Vec<String>,
    /// The OAuth redirect URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

fn default_backend_version() -> String {
    "2".to_string()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    S(String),
    I(i64),
    U(u64),
    F(f64),
}

impl StringOrNumber {
    fn into_string(self) -> String {
        match self {
            StringOrNumber::S(s) => s,
            StringOrNumber::I(i) => i.to_string(),
            StringOrNumber::U(u) => u.to_string(),
            StringOrNumber::F(f) => f.to_string(),
        }
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    StringOrNumber::deserialize(d).map(StringOrNumber::into_string)
}

fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<StringOrNumber>::deserialize(d).map(|o| o.map(StringOrNumber::into_string))
}

impl EmulatorConfig {
    /// Parses and validates a YAML (or JSON) config.
    pub fn from_yaml_str(s: &str) -> Result<Self, EmulatorError> {
        let config: EmulatorConfig =
            serde_yaml_ng::from_str(s).map_err(|e| EmulatorError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a YAML or JSON file.
    ///
    /// ```no_run
    /// let config = threescale_emulator::EmulatorConfig::from_file("examples/emulator.yaml")?;
    /// # Ok::<(), threescale_emulator::EmulatorError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, EmulatorError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text)
    }

    /// Starts a config in code.
    ///
    /// ```
    /// use threescale_emulator::{ApplicationConfig, EmulatorConfig, LimitPeriod, PlanConfig, EmulatedService};
    /// let config = EmulatorConfig::builder()
    ///     .service(
    ///         EmulatedService::new("42")
    ///             .backend_version("2")
    ///             .provider_key("pk")
    ///             .service_token("token")
    ///             .metric("hits")
    ///             .child_metric("orders", "hits")
    ///             .plan(PlanConfig::new("basic").limit("hits", LimitPeriod::Minute, 5))
    ///             .application(ApplicationConfig::with_app_id("basic", "app1").app_key("key1")),
    ///     )
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.services.len(), 1);
    /// ```
    pub fn builder() -> EmulatorConfigBuilder {
        EmulatorConfigBuilder::default()
    }
}

/// Builds an [`EmulatorConfig`] in code.
#[derive(Clone, Debug, Default)]
pub struct EmulatorConfigBuilder {
    admin_access_token: Option<String>,
    services: Vec<EmulatedService>,
}

impl EmulatorConfigBuilder {
    /// Adds a service.
    pub fn service(mut self, service: EmulatedService) -> Self {
        self.services.push(service);
        self
    }

    /// Sets the admin portal's access token.
    pub fn admin_access_token(mut self, token: impl Into<String>) -> Self {
        self.admin_access_token = Some(token.into());
        self
    }

    /// Validates and returns the config.
    pub fn build(self) -> Result<EmulatorConfig, EmulatorError> {
        let config = EmulatorConfig {
            admin_access_token: self.admin_access_token,
            services: self.services,
        };
        config.validate()?;
        Ok(config)
    }
}

impl EmulatedService {
    /// A service with this id, backend_version `"2"`, active, nothing else.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            backend_version: default_backend_version(),
            ..Self::default()
        }
    }

    /// Sets the backend version (`"1"`, `"2"` or `"oauth"`).
    pub fn backend_version(mut self, version: impl Into<String>) -> Self {
        self.backend_version = version.into();
        self
    }

    /// Adds a service token.
    pub fn service_token(mut self, token: impl Into<String>) -> Self {
        self.service_tokens.push(token.into());
        self
    }

    /// Sets the provider key.
    pub fn provider_key(mut self, key: impl Into<String>) -> Self {
        self.provider_key = Some(key.into());
        self
    }

    /// Marks (or unmarks) the service as its provider's default service.
    pub fn default_service(mut self, default: bool) -> Self {
        self.default = Some(default);
        self
    }

    /// Sets the state (`active`, `suspended`...).
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Requires referrer filters to be checked.
    pub fn referrer_filters_required(mut self, required: bool) -> Self {
        self.referrer_filters_required = required;
        self
    }

    /// Adds a top-level metric.
    pub fn metric(mut self, name: impl Into<String>) -> Self {
        self.metrics.push(MetricConfig {
            name: name.into(),
            parent: None,
        });
        self
    }

    /// Adds a child metric of `parent`.
    pub fn child_metric(mut self, name: impl Into<String>, parent: impl Into<String>) -> Self {
        self.metrics.push(MetricConfig {
            name: name.into(),
            parent: Some(parent.into()),
        });
        self
    }

    /// Adds a plan.
    pub fn plan(mut self, plan: PlanConfig) -> Self {
        self.plans.push(plan);
        self
    }

    /// Adds an application.
    pub fn application(mut self, app: ApplicationConfig) -> Self {
        self.applications.push(app);
        self
    }

    /// Sets the `system_name` the admin portal shows.
    pub fn system_name(mut self, name: impl Into<String>) -> Self {
        self.system_name = Some(name.into());
        self
    }

    /// Sets an admin portal access token for this service only.
    pub fn admin_access_token(mut self, token: impl Into<String>) -> Self {
        self.admin_access_token = Some(token.into());
        self
    }

    /// Sets the proxy settings the admin portal serves.
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Adds a mapping rule to the proxy settings.
    pub fn mapping_rule(mut self, rule: MappingRuleConfig) -> Self {
        self.proxy
            .get_or_insert_with(ProxyConfig::default)
            .mapping_rules
            .push(rule);
        self
    }
}

impl PlanConfig {
    /// A plan without limits.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            limits: Vec::new(),
        }
    }

    /// Adds a limit.
    pub fn limit(mut self, metric: impl Into<String>, period: LimitPeriod, value: i64) -> Self {
        self.limits.push(LimitConfig {
            metric: metric.into(),
            period,
            value,
        });
        self
    }
}

impl ApplicationConfig {
    /// An application found by `user_key` (backend_version 1).
    pub fn with_user_key(plan: impl Into<String>, user_key: impl Into<String>) -> Self {
        Self {
            plan: Some(plan.into()),
            user_key: Some(user_key.into()),
            ..Self::default()
        }
    }

    /// An application found by `app_id` (backend_version 2 and oauth).
    pub fn with_app_id(plan: impl Into<String>, app_id: impl Into<String>) -> Self {
        Self {
            plan: Some(plan.into()),
            app_id: Some(app_id.into()),
            ..Self::default()
        }
    }

    /// Sets the application id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.app_id = Some(id.into());
        self
    }

    /// Adds an application key.
    pub fn app_key(mut self, key: impl Into<String>) -> Self {
        self.app_keys.push(key.into());
        self
    }

    /// Sets the state (`active`, `suspended`...).
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Adds a referrer filter.
    pub fn referrer_filter(mut self, filter: impl Into<String>) -> Self {
        self.referrer_filters.push(filter.into());
        self
    }

    /// Sets the OAuth redirect URL.
    pub fn redirect_url(mut self, url: impl Into<String>) -> Self {
        self.redirect_url = Some(url.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_numbers_are_accepted() {
        let c = EmulatorConfig::from_yaml_str(
            r#"{"services":[{"id":42,"backend_version":1,"provider_key":"pk",
                "metrics":[{"name":"hits"}],
                "plans":[{"name":"p","limits":[{"metric":"hits","period":"day","value":3}]}],
                "applications":[{"plan":"p","user_key":"uk","id":7}]}]}"#,
        )
        .unwrap();
        assert_eq!(c.services[0].id, "42");
        assert_eq!(c.services[0].backend_version, "1");
        assert_eq!(c.services[0].applications[0].app_id.as_deref(), Some("7"));
    }

    #[test]
    fn invalid_references_are_reported() {
        let err = EmulatorConfig::builder()
            .service(
                EmulatedService::new("1")
                    .provider_key("pk")
                    .metric("hits")
                    .child_metric("a", "nope")
                    .plan(PlanConfig::new("p").limit("zzz", LimitPeriod::Day, 1))
                    .application(ApplicationConfig::with_app_id("missing", "x")),
            )
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        assert!(err.contains("zzz"), "{err}");
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn bad_period_is_a_parse_error() {
        let err = EmulatorConfig::from_yaml_str(
            "services: [{id: '1', plans: [{name: p, limits: [{metric: hits, period: fortnight, value: 1}]}]}]",
        )
        .unwrap_err();
        assert!(matches!(err, EmulatorError::Parse(_)));
    }
}
