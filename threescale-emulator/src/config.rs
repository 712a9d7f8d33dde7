//! The emulator's configuration: services, metrics, plans with limits, applications.
//!
//! The same shape is read from YAML or JSON (see the crate docs for a full example) and
//! built from Rust with [`EmulatorConfig::builder`].

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::errors::EmulatorError;
use crate::model::Registry;
use crate::period::Period;

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
    /// The services, in order. The first service of a provider key is its default
    /// service unless another one says `default: true`.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
}

/// One service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
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
    pub period: Period,
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
    /// use threescale_emulator::{ApplicationConfig, EmulatorConfig, Period, PlanConfig, ServiceConfig};
    /// let config = EmulatorConfig::builder()
    ///     .service(
    ///         ServiceConfig::new("42")
    ///             .backend_version("2")
    ///             .provider_key("pk")
    ///             .service_token("token")
    ///             .metric("hits")
    ///             .child_metric("orders", "hits")
    ///             .plan(PlanConfig::new("basic").limit("hits", Period::Minute, 5))
    ///             .application(ApplicationConfig::with_app_id("basic", "app1").app_key("key1")),
    ///     )
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.services.len(), 1);
    /// ```
    pub fn builder() -> EmulatorConfigBuilder {
        EmulatorConfigBuilder::default()
    }

    /// Checks the references (plans, metrics, parents) and uniqueness rules.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        let (_, problems) = Registry::build(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EmulatorError::Invalid(problems.join("; ")))
        }
    }
}

/// Builds an [`EmulatorConfig`] in code.
#[derive(Clone, Debug, Default)]
pub struct EmulatorConfigBuilder {
    services: Vec<ServiceConfig>,
}

impl EmulatorConfigBuilder {
    /// Adds a service.
    pub fn service(mut self, service: ServiceConfig) -> Self {
        self.services.push(service);
        self
    }

    /// Validates and returns the config.
    pub fn build(self) -> Result<EmulatorConfig, EmulatorError> {
        let config = EmulatorConfig {
            services: self.services,
        };
        config.validate()?;
        Ok(config)
    }
}

impl ServiceConfig {
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
    pub fn limit(mut self, metric: impl Into<String>, period: Period, value: i64) -> Self {
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
                ServiceConfig::new("1")
                    .provider_key("pk")
                    .metric("hits")
                    .child_metric("a", "nope")
                    .plan(PlanConfig::new("p").limit("zzz", Period::Day, 1))
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
