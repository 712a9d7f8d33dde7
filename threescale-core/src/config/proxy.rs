//! Loading the admin portal's proxy config JSON, the document the 3scale
//! gateway runs on.
//!
//! Three shapes are accepted: the portal's answer for one service
//! (`{"proxy_config": {"content": service}}`, as served at
//! `/admin/api/services/{id}/proxy/configs/{env}/latest.json`), a gateway
//! configuration file (`{"services": [service, ...]}`), or a bare service object.
//!
//! From each service it takes what the gateway takes: `id`, `system_name`,
//! `backend_version` (or `proxy.authentication_method: "oidc"`, with
//! `proxy.oidc_issuer_endpoint`, `proxy.jwt_claim_with_client_id` and its
//! `_type`: see [`crate::oidc`]),
//! `backend_authentication_type` / `backend_authentication_value`,
//! `proxy.backend.endpoint`, `proxy.credentials_location`, `proxy.auth_user_key`,
//! `proxy.auth_app_id`, `proxy.auth_app_key`, the `proxy.error_*` settings and
//! `proxy.proxy_rules`. Rules keep the order of the JSON array, as in the gateway,
//! which does not read `position`; the portal emits them sorted by it. Query
//! conditions come from `querystring_parameters` only: as in the gateway, a rule
//! without that field ignores the `?…` part of its pattern (the portal always
//! sends the field; the project's own format derives it from the pattern).
//! Without `proxy.backend.endpoint` the project's default backend (the 3scale
//! SaaS backend) is used, where the gateway would fall back to
//! `http://127.0.0.1:8081`.
//! With no rules at all every request is answered "no mapping rule matched",
//! as the gateway does. Rule `owner_id`/`owner_type` only matter behind the
//! gateway's routing policy and are ignored here.
//!
//! The engine settings come from the policy chain where the gateway has an
//! equivalent: `apicast.policy.3scale_batcher` selects [`Mode::Cached`]
//! (`auths_ttl` and `batch_report_seconds`, defaults 10 s each) and
//! `apicast.policy.caching`'s `caching_type` the [`FailurePolicy`] (`strict`
//! is `Closed`, `resilient` `Resilient`, `allow` `Open`), or, for `none`,
//! [`Mode::Sync`] (no cache). Without a batcher the mode is [`Mode::Sync`],
//! one authrep per request, as the gateway's default policy does, and the
//! caching policy is not read.
//! `apicast.policy.3scale_referrer` sends the request's `Referer` header as the
//! backend's `referrer`. Every other policy of the chain (CORS, headers, URL
//! rewriting, JWT claim checks, …), and a caching policy without a batcher, is
//! not applied here: the loader names them all in one warning (`tracing` WARN)
//! each time it loads the document.
//!
//! [`FailurePolicy`]: super::FailurePolicy

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Map, Value};

use super::{
    CacheSettings, CachingType, Config, ConfigBuilder, ConfigError, CredentialParam, ErrorSetting,
    FailurePolicy, Mode, ServiceConfig, compile_rules,
};
use crate::{
    BackendVersion, CredentialsConfig, CredentialsLocation, DenialKind, MappingRule, MappingRules,
    ProviderAuth,
};

/// Parses a proxy config JSON into its services. (Crate-private, like every
/// parser: users load one service with [`Config::from_proxy_config`]; this
/// example runs in the unit tests' `config_files`.)
///
/// ```ignore
/// use threescale_core::config::proxy::parse_proxy_config;
/// let json = r#"{"proxy_config": {"content": {
///     "id": 42, "backend_version": "1",
///     "backend_authentication_type": "service_token",
///     "backend_authentication_value": "token-value",
///     "proxy": {
///         "backend": {"endpoint": "http://127.0.0.1:3001"},
///         "proxy_rules": [{"http_method": "GET", "pattern": "/orders/{id}",
///                          "metric_system_name": "orders", "delta": 1}]
///     }
/// }}}"#;
/// let services = parse_proxy_config(json, "example").unwrap();
/// assert_eq!(services[0].service_id, "42");
/// let matched = services[0].mapping_rules.matches("GET", "/orders/7", None);
/// assert_eq!(matched.usage.get("orders"), Some(1));
/// ```
#[cfg_attr(not(test), allow(dead_code))] // the tests read several services
pub(crate) fn parse_proxy_config(
    json: &str,
    source_name: &str,
) -> Result<Vec<ServiceConfig>, ConfigError> {
    parse_services(json, source_name)?
        .into_iter()
        .map(|(_, builder)| builder.build().map(|config| config.service))
        .collect()
}

/// Parses a proxy config JSON holding one service into a full [`Config`], the
/// engine settings taken from the service's policy chain (see the module docs).
/// A file with several services is refused: one engine protects one service.
///
/// ```
/// use threescale_core::{Config, Mode};
/// let json = r#"{"services": [{
///     "id": "7", "backend_authentication_type": "provider_key",
///     "backend_authentication_value": "key",
///     "proxy": {"policy_chain": [{"name": "apicast.policy.3scale_batcher",
///                                 "configuration": {"auths_ttl": 30}}]}
/// }]}"#;
/// let config = Config::from_proxy_config(json).unwrap();
/// assert!(matches!(config.mode, Mode::Cached(s) if s.ttl.as_secs() == 30));
/// ```
pub(crate) fn config_from_proxy_json(json: &str, source_name: &str) -> Result<Config, ConfigError> {
    let root: Value = serde_json::from_str(json)
        .map_err(|e| ConfigError::new(source_name, "", format!("invalid JSON: {e}")))?;
    config_from_value(&root, source_name)
}

/// Like [`config_from_proxy_json`], from an already parsed document.
pub(crate) fn config_from_value(root: &Value, source_name: &str) -> Result<Config, ConfigError> {
    config_for_service(root, source_name, None)
}

/// The one loader of a proxy config document into a full [`Config`], for files
/// and the admin portal alike: the service with id `service_id` (or the only
/// service when `None`), with the engine settings of its policy chain.
pub(crate) fn config_for_service(
    root: &Value,
    source_name: &str,
    service_id: Option<&str>,
) -> Result<Config, ConfigError> {
    builder_for_service(root, source_name, service_id)?.build()
}

/// The builder [`config_for_service`] fills and builds.
pub(crate) fn builder_for_service(
    root: &Value,
    source_name: &str,
    service_id: Option<&str>,
) -> Result<ConfigBuilder, ConfigError> {
    let mut services = services_from_value(root, source_name)?;
    let position = match service_id {
        Some(id) => services.iter().position(|(s, _)| s == id).ok_or_else(|| {
            ConfigError::new(
                source_name,
                "proxy_config.content.id",
                format!("expected service {id}"),
            )
        })?,
        None if services.len() == 1 => 0,
        None => {
            return Err(ConfigError::new(
                source_name,
                "services",
                format!(
                    "holds {} services; one engine protects exactly one",
                    services.len()
                ),
            ));
        }
    };
    Ok(services.swap_remove(position).1)
}

impl Config {
    /// Reads an admin-portal proxy config JSON holding one service, the
    /// engine settings taken from its policy chain (the batcher policy
    /// selects Cached mode); a file with several services is refused.
    ///
    /// ```
    /// use threescale_core::Config;
    /// let json = r#"{"id": 1, "backend_authentication_type": "service_token",
    ///                "backend_authentication_value": "t", "proxy": {}}"#;
    /// assert_eq!(Config::from_proxy_config(json).unwrap().service.service_id, "1");
    /// ```
    pub fn from_proxy_config(json: &str) -> Result<Config, ConfigError> {
        config_from_proxy_json(json, "proxy config")
    }
}

/// What a configuration document is, judged by its top-level keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DocumentKind {
    /// A proxy config (portal answer, gateway file or bare service).
    ProxyConfig,
    /// The emulator's own config (services with metrics, plans, applications).
    EmulatorConfig,
    /// Anything else: the project's format.
    Project,
}

/// Tells a proxy config from the project's format and from an emulator config.
pub(crate) fn document_kind(root: &Value) -> DocumentKind {
    let Some(top) = root.as_object() else {
        return DocumentKind::Project;
    };
    if top.contains_key("proxy_config")
        || top.contains_key("proxy")
        || top.contains_key("backend_authentication_type")
    {
        return DocumentKind::ProxyConfig;
    }
    match top.get("services") {
        Some(Value::Array(services)) => {
            // Plans and applications never appear in a proxy config; metrics
            // do not either, unless next to the proxy section.
            let emulator = services.iter().any(|s| {
                ["plans", "applications"].iter().any(|k| s.get(k).is_some())
                    || (s.get("metrics").is_some() && s.get("proxy").is_none())
            });
            if emulator {
                DocumentKind::EmulatorConfig
            } else {
                DocumentKind::ProxyConfig
            }
        }
        Some(_) => DocumentKind::ProxyConfig,
        None => DocumentKind::Project,
    }
}

fn parse_services(
    json: &str,
    source_name: &str,
) -> Result<Vec<(String, ConfigBuilder)>, ConfigError> {
    let root: Value = serde_json::from_str(json)
        .map_err(|e| ConfigError::new(source_name, "", format!("invalid JSON: {e}")))?;
    services_from_value(&root, source_name)
}

/// A service object and its path in the document.
type ServiceObject<'v> = (&'v Map<String, Value>, String);

/// The service objects of a proxy config document, each with its path.
fn service_objects<'v>(
    root: &'v Value,
    reader: &Reader<'_>,
) -> Result<Vec<ServiceObject<'v>>, ConfigError> {
    let Value::Object(top) = root else {
        return Err(reader.error("", "expected a JSON object"));
    };
    if let Some(wrapper) = top.get("proxy_config") {
        let content = wrapper
            .get("content")
            .ok_or_else(|| reader.error("proxy_config.content", "missing"))?;
        let path = "proxy_config.content".to_string();
        return Ok(vec![(reader.object(content, &path)?, path)]);
    }
    if let Some(services) = top.get("services") {
        let Value::Array(services) = services else {
            return Err(reader.error("services", "expected an array"));
        };
        if services.is_empty() {
            return Err(reader.error("services", "holds no service"));
        }
        return services
            .iter()
            .enumerate()
            .map(|(i, service)| {
                let path = format!("services[{i}]");
                Ok((reader.object(service, &path)?, path))
            })
            .collect();
    }
    Ok(vec![(top, String::new())])
}

/// Reads the services of an already parsed proxy config document: each
/// service's id and the builder it fills.
pub(crate) fn services_from_value(
    root: &Value,
    source_name: &str,
) -> Result<Vec<(String, ConfigBuilder)>, ConfigError> {
    let reader = Reader {
        source: source_name,
    };
    service_objects(root, &reader)?
        .into_iter()
        .map(|(service, path)| reader.service(service, &path))
        .collect()
}

/// Only the mapping rules of one service of a proxy config document: the
/// service with id `service_id`, or the first. Nothing else is required of the
/// document (no backend credentials), so rule sets can be tried on their own.
/// Returns the service's id (empty when it has none), its rules and how many
/// services the document holds.
pub(crate) fn rules_from_value(
    root: &Value,
    source_name: &str,
    service_id: Option<&str>,
) -> Result<(String, MappingRules, usize), ConfigError> {
    let reader = Reader {
        source: source_name,
    };
    let services = service_objects(root, &reader)?;
    let count = services.len();
    let mut found = None;
    for (service, path) in &services {
        let id = reader.string(service, path, "id")?.unwrap_or_default();
        if service_id.is_none_or(|wanted| wanted == id) {
            found = Some((id, *service, path));
            break;
        }
    }
    let (id, service, path) = found.ok_or_else(|| {
        reader.error(
            "services",
            format!("no service with id {:?}", service_id.unwrap_or_default()),
        )
    })?;
    let proxy_path = join(path, "proxy");
    let empty = Map::new();
    let proxy = match service.get("proxy") {
        None | Some(Value::Null) => &empty,
        Some(value) => reader.object(value, &proxy_path)?,
    };
    let rules_path = join(&proxy_path, "proxy_rules");
    let rules = compile_rules(reader.rules(proxy, &proxy_path)?, source_name, &rules_path)?;
    Ok((id, rules, count))
}

/// Reads fields, naming the field and the source in every error.
struct Reader<'a> {
    source: &'a str,
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

impl Reader<'_> {
    fn error(&self, field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(self.source, field, reason)
    }

    fn object<'v>(
        &self,
        value: &'v Value,
        path: &str,
    ) -> Result<&'v Map<String, Value>, ConfigError> {
        value
            .as_object()
            .ok_or_else(|| self.error(path, "expected an object"))
    }

    /// A string field; numbers become strings (the gateway does `tostring`).
    /// Absent and `null` are `None`.
    fn string(
        &self,
        object: &Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Result<Option<String>, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.error(&join(path, field), "expected a string")),
        }
    }

    fn integer(
        &self,
        object: &Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Result<Option<i64>, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.error(&join(path, field), "expected an integer")),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.error(&join(path, field), format!("{s:?} is not an integer"))),
            Some(_) => Err(self.error(&join(path, field), "expected an integer")),
        }
    }

    fn boolean(
        &self,
        object: &Map<String, Value>,
        path: &str,
        field: &str,
    ) -> Result<bool, ConfigError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" => Ok(true),
            Some(Value::String(s)) if s == "false" => Ok(false),
            Some(_) => Err(self.error(&join(path, field), "expected true or false")),
        }
    }

    fn service(
        &self,
        service: &Map<String, Value>,
        path: &str,
    ) -> Result<(String, ConfigBuilder), ConfigError> {
        let empty = Map::new();
        let proxy_path = join(path, "proxy");
        let proxy = match service.get("proxy") {
            None | Some(Value::Null) => &empty,
            Some(value) => self.object(value, &proxy_path)?,
        };

        let service_id = self
            .string(service, path, "id")?
            .filter(|id| !id.is_empty())
            .ok_or_else(|| self.error(&join(path, "id"), "missing"))?;
        let mut builder = Config::builder().source(self.source);
        if let Some(name) = self.string(service, path, "system_name")? {
            builder = builder.system_name(name);
        }

        let backend_version = match self.string(service, path, "backend_version")? {
            None => BackendVersion::UserKey,
            Some(v) => BackendVersion::parse(&v).ok_or_else(|| {
                self.error(
                    &join(path, "backend_version"),
                    format!("{v:?} is not 1, 2 or oauth"),
                )
            })?,
        };
        let oidc = self
            .string(proxy, &proxy_path, "authentication_method")?
            .is_some_and(|method| method == "oidc");
        let backend_version = if oidc {
            BackendVersion::OAuth
        } else {
            backend_version
        };
        builder = builder.backend_version(backend_version);
        // Without an issuer endpoint the tokens need a user-supplied verifier
        // (`ThreeScale::with_token_verifier`), as before.
        if oidc
            && let Some(endpoint) = self
                .string(proxy, &proxy_path, "oidc_issuer_endpoint")?
                .filter(|e| !e.trim().is_empty())
        {
            let mut settings = crate::oidc::OidcSettings::new(endpoint);
            if let Some(claim) = self
                .string(proxy, &proxy_path, "jwt_claim_with_client_id")?
                .filter(|c| !c.is_empty())
            {
                let kind = self.string(proxy, &proxy_path, "jwt_claim_with_client_id_type")?;
                settings = settings.client_id_claim(
                    crate::oidc::ClientIdClaim::parse(&claim, kind.as_deref()).map_err(
                        |reason| self.error(&join(&proxy_path, "jwt_claim_with_client_id"), reason),
                    )?,
                );
            }
            builder = builder
                .oidc(settings)
                .field_path(
                    "oidc.issuer_endpoint",
                    join(&proxy_path, "oidc_issuer_endpoint"),
                )
                .field_path(
                    "oidc.client_id_claim",
                    join(&proxy_path, "jwt_claim_with_client_id"),
                );
        }

        let auth_type = self
            .string(service, path, "backend_authentication_type")?
            .ok_or_else(|| self.error(&join(path, "backend_authentication_type"), "missing"))?;
        let auth_value = self
            .string(service, path, "backend_authentication_value")?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.error(&join(path, "backend_authentication_value"), "missing"))?;
        builder = builder.provider_auth(match auth_type.as_str() {
            "service_token" => ProviderAuth::service_token(auth_value, service_id.clone()),
            "provider_key" => {
                ProviderAuth::provider_key(auth_value).with_service_id(service_id.clone())
            }
            other => {
                return Err(self.error(
                    &join(path, "backend_authentication_type"),
                    format!("{other:?} is not service_token or provider_key"),
                ));
            }
        });

        // Without an endpoint the builder's default, the 3scale SaaS backend.
        let backend_path = join(&proxy_path, "backend");
        builder = builder.field_path("backend_url", join(&backend_path, "endpoint"));
        if let Some(value) = proxy.get("backend").filter(|v| !v.is_null()) {
            let backend = self.object(value, &backend_path)?;
            if let Some(url) = self
                .string(backend, &backend_path, "endpoint")?
                .filter(|url| !url.is_empty())
            {
                builder = builder.backend_url(url);
            }
        }

        let location = match self.string(proxy, &proxy_path, "credentials_location")? {
            None => CredentialsLocation::Query,
            Some(v) => CredentialsLocation::parse(&v).ok_or_else(|| {
                self.error(
                    &join(&proxy_path, "credentials_location"),
                    format!("{v:?} is not query, headers or authorization"),
                )
            })?,
        };
        builder = builder.credentials(CredentialsConfig::new(location));
        for ((param, builder_field), field) in
            CredentialParam::ALL
                .into_iter()
                .zip(["auth_user_key", "auth_app_id", "auth_app_key"])
        {
            builder = builder.field_path(builder_field, join(&proxy_path, field));
            if let Some(name) = self.string(proxy, &proxy_path, field)? {
                builder = builder.param_name(param, name);
            }
        }

        for kind in DenialKind::ALL {
            let Some(keys) = kind.proxy_keys() else {
                continue;
            };
            let status = self
                .integer(proxy, &proxy_path, keys.status)?
                .map(|status| (status, join(&proxy_path, keys.status)));
            let body = self.string(proxy, &proxy_path, keys.body)?;
            let content_type = self
                .string(proxy, &proxy_path, keys.content_type)?
                .map(|value| (value, join(&proxy_path, keys.content_type)));
            builder = builder.error_setting(ErrorSetting {
                kind,
                status,
                body,
                content_type,
            });
        }

        let (mode, policy, referrer) = self.policy_chain(proxy, &proxy_path, &service_id)?;
        builder = builder
            .mapping_rules(self.rules(proxy, &proxy_path)?)
            .empty_rules_match_nothing()
            .field_path("mapping_rules", join(&proxy_path, "proxy_rules"))
            .mode(mode);
        if let Some(policy) = policy {
            builder = builder.failure_policy(policy);
        }
        if referrer {
            // The gateway's referrer policy sends the request's Referer header.
            builder = builder.referrer_header("Referer");
        }
        Ok((service_id, builder))
    }

    /// The rules as written; [`compile_rules`] checks them.
    fn rules(
        &self,
        proxy: &Map<String, Value>,
        path: &str,
    ) -> Result<Vec<MappingRule>, ConfigError> {
        let rules_path = join(path, "proxy_rules");
        let list = match proxy.get("proxy_rules") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(self.error(&rules_path, "expected an array")),
        };
        let mut rules = Vec::with_capacity(list.len());
        for (i, value) in list.iter().enumerate() {
            let rule_path = format!("{rules_path}[{i}]");
            let object = self.object(value, &rule_path)?;
            let metric = self
                .string(object, &rule_path, "metric_system_name")?
                .ok_or_else(|| {
                    self.error(
                        &join(&rule_path, "metric_system_name"),
                        "missing metric name of rule",
                    )
                })?;
            let pattern = self
                .string(object, &rule_path, "pattern")?
                .ok_or_else(|| self.error(&join(&rule_path, "pattern"), "missing"))?;
            let querystring_parameters = match object.get("querystring_parameters") {
                // The gateway reads query conditions only from this field; without
                // it the pattern's `?…` part is ignored (the portal always sends it).
                None | Some(Value::Null) => Some(BTreeMap::new()),
                Some(Value::Object(params)) => {
                    let qs_path = join(&rule_path, "querystring_parameters");
                    let mut map = BTreeMap::new();
                    for name in params.keys() {
                        let value = self.string(params, &qs_path, name)?.unwrap_or_default();
                        map.insert(name.clone(), value);
                    }
                    Some(map)
                }
                // An empty array (how some serialisers write an empty map) is no conditions.
                Some(Value::Array(items)) if items.is_empty() => Some(BTreeMap::new()),
                Some(_) => {
                    return Err(self.error(
                        &join(&rule_path, "querystring_parameters"),
                        "expected an object",
                    ));
                }
            };
            let rule = MappingRule {
                http_method: self
                    .string(object, &rule_path, "http_method")?
                    .unwrap_or_default(),
                pattern,
                querystring_parameters,
                metric_system_name: metric,
                delta: self.integer(object, &rule_path, "delta")?.unwrap_or(0),
                last: self.boolean(object, &rule_path, "last")?,
                // The gateway keeps the array's order and does not read `position`.
                position: None,
            };
            rules.push(rule);
        }
        Ok(rules)
    }

    /// The engine settings of the policy chain: the mode, the failure policy
    /// when the chain has a batcher and a caching policy, and whether the
    /// referrer policy is on. Entries the engine does not act on are named in
    /// one warning.
    fn policy_chain(
        &self,
        proxy: &Map<String, Value>,
        path: &str,
        service_id: &str,
    ) -> Result<(Mode, Option<FailurePolicy>, bool), ConfigError> {
        let chain_path = join(path, "policy_chain");
        let chain = match proxy.get("policy_chain") {
            None | Some(Value::Null) => return Ok((Mode::Sync, None, false)),
            Some(Value::Array(chain)) => chain,
            Some(_) => return Err(self.error(&chain_path, "expected an array")),
        };
        let mut batcher = None;
        let mut caching = None;
        let mut caching_name = None;
        let mut referrer = false;
        let mut ignored = Vec::new();
        let empty = Map::new();
        for (i, policy) in chain.iter().enumerate() {
            let policy_path = format!("{chain_path}[{i}]");
            let policy = self.object(policy, &policy_path)?;
            let name = self
                .string(policy, &policy_path, "name")?
                .unwrap_or_default();
            let conf_path = join(&policy_path, "configuration");
            let conf = match policy.get("configuration") {
                None | Some(Value::Null) => &empty,
                Some(value) => self.object(value, &conf_path)?,
            };
            match name.trim_start_matches("apicast.policy.") {
                // The gateway's own authorization and reporting: this engine.
                "apicast" => {}
                "3scale_referrer" => referrer = true,
                "3scale_batcher" => {
                    let seconds = |field: &str| -> Result<Duration, ConfigError> {
                        match self.integer(conf, &conf_path, field)? {
                            None => Ok(Duration::from_secs(10)),
                            Some(s) if s > 0 => Ok(Duration::from_secs(s as u64)),
                            Some(s) => Err(self.error(
                                &join(&conf_path, field),
                                format!("{s} is not a positive number of seconds"),
                            )),
                        }
                    };
                    batcher = Some((seconds("auths_ttl")?, seconds("batch_report_seconds")?));
                }
                "caching" => {
                    caching_name = Some(name.clone());
                    if let Some(kind) = self.string(conf, &conf_path, "caching_type")? {
                        caching = Some(CachingType::parse(&kind).ok_or_else(|| {
                            self.error(
                                &join(&conf_path, "caching_type"),
                                format!("{kind:?} is not strict, resilient, allow or none"),
                            )
                        })?);
                    }
                }
                _ => ignored.push(if name.is_empty() {
                    format!("{policy_path} (no name)")
                } else {
                    name.clone()
                }),
            }
        }
        if batcher.is_none()
            && let Some(name) = caching_name
        {
            // The caching policy sets the cache's failure policy, and only
            // the batcher policy turns the cache on.
            ignored.push(format!("{name} (without apicast.policy.3scale_batcher)"));
        }
        if !ignored.is_empty() {
            tracing::warn!(
                source = %self.source,
                service_id,
                ignored = %ignored.join(", "),
                "3scale policy chain: these policies are not applied by this middleware \
                 (only apicast, 3scale_batcher, caching and 3scale_referrer are); \
                 apply their effect in the application or a layer of its own"
            );
        }
        let (mode, policy) = match (batcher, caching) {
            (Some(_), Some(caching)) if !caching.caches() => (Mode::Sync, None),
            (Some((ttl, flush_interval)), caching) => (
                Mode::Cached(CacheSettings {
                    ttl,
                    flush_interval,
                    ..CacheSettings::default()
                }),
                caching.map(|c| c.policy(None)),
            ),
            (None, _) => (Mode::Sync, None),
        };
        Ok((mode, policy, referrer))
    }
}
