//! What the emulated admin portal holds: each service's proxy configuration now,
//! its version, the portal's own faults, and the proxy config JSON documents
//! gateways read (the HTTP handlers are in `portal`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::config::{
    EmulatedService, EmulatorConfig, MappingRuleConfig, ProxyConfig, proxy_problems, rule_problems,
};
use crate::errors::EmulatorError;
use crate::faults::{FaultAction, FaultState, Faults};

const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// One service as the portal holds it.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) config: EmulatedService,
    proxy: ProxyConfig,
    version: u64,
    config_id: u64,
}

/// The portal's run-time state: what each service's proxy configuration is now.
#[derive(Debug)]
pub(crate) struct PortalState {
    admin_token: Option<String>,
    pub(crate) services: Vec<Served>,
    pub(crate) index: HashMap<String, usize>,
    next_config_id: u64,
    faults: FaultState,
}

impl PortalState {
    pub(crate) fn new(config: &EmulatorConfig) -> Self {
        let mut services = Vec::new();
        let mut index = HashMap::new();
        for service in &config.services {
            if service.id.is_empty() || index.contains_key(&service.id) {
                continue;
            }
            index.insert(service.id.clone(), services.len());
            services.push(Served {
                config: service.clone(),
                proxy: service.proxy.clone().unwrap_or_default(),
                version: 1,
                config_id: services.len() as u64 + 1,
            });
        }
        let next_config_id = services.len() as u64 + 1;
        Self {
            admin_token: config.admin_access_token.clone().filter(|t| !t.is_empty()),
            services,
            index,
            next_config_id,
            faults: FaultState::default(),
        }
    }

    fn served(&self, service_id: &str) -> Option<&Served> {
        self.index.get(service_id).map(|&i| &self.services[i])
    }

    /// Puts a new proxy configuration in force; returns its version.
    pub(crate) fn set_proxy(
        &mut self,
        service_id: &str,
        proxy: ProxyConfig,
    ) -> Result<u64, EmulatorError> {
        let i = *self
            .index
            .get(service_id)
            .ok_or_else(|| EmulatorError::Invalid(format!("unknown service {service_id:?}")))?;
        let problems = proxy_problems(&self.services[i].config, &proxy);
        if !problems.is_empty() {
            return Err(EmulatorError::Invalid(problems.join("; ")));
        }
        let config_id = self.next_config_id;
        self.next_config_id += 1;
        let served = &mut self.services[i];
        served.proxy = proxy;
        served.version += 1;
        served.config_id = config_id;
        Ok(served.version)
    }

    /// Replaces the mapping rules only; returns the new version.
    pub(crate) fn set_proxy_rules(
        &mut self,
        service_id: &str,
        rules: Vec<MappingRuleConfig>,
    ) -> Result<u64, EmulatorError> {
        let served = self
            .served(service_id)
            .ok_or_else(|| EmulatorError::Invalid(format!("unknown service {service_id:?}")))?;
        let problems = rule_problems(&served.config, &rules);
        if !problems.is_empty() {
            return Err(EmulatorError::Invalid(problems.join("; ")));
        }
        let mut proxy = served.proxy.clone();
        proxy.mapping_rules = rules;
        self.set_proxy(service_id, proxy)
    }

    pub(crate) fn version(&self, service_id: &str) -> Option<u64> {
        self.served(service_id).map(|s| s.version)
    }

    pub(crate) fn proxy(&self, service_id: &str) -> Option<ProxyConfig> {
        self.served(service_id).map(|s| s.proxy.clone())
    }

    pub(crate) fn set_faults(&mut self, faults: Faults) {
        self.faults = FaultState::new(faults);
    }

    pub(crate) fn faults(&self) -> Faults {
        self.faults.faults().clone()
    }

    pub(crate) fn next_fault(&mut self) -> (std::time::Duration, FaultAction) {
        self.faults.next()
    }

    /// Whether one of `tokens` reads `service` (`None`: any service).
    pub(crate) fn grants(&self, tokens: &[String], service: Option<usize>) -> bool {
        tokens.iter().any(|t| {
            self.admin_token.as_deref() == Some(t.as_str())
                || match service {
                    Some(i) => self.services[i].config.admin_access_token.as_deref() == Some(t),
                    None => self
                        .services
                        .iter()
                        .any(|s| s.config.admin_access_token.as_deref() == Some(t)),
                }
        })
    }

    /// The proxy configuration answer for service `i`.
    pub(crate) fn proxy_config_json(&self, i: usize, env: &str, host: &str) -> Value {
        let served = &self.services[i];
        json!({
            "proxy_config": {
                "id": served.config_id,
                "version": served.version,
                "environment": env,
                "content": service_json(served, i, host),
            }
        })
    }
}

pub(crate) fn id_json(id: &str) -> Value {
    match id.parse::<u64>() {
        Ok(n) if n.to_string() == id => Value::from(n),
        _ => Value::from(id),
    }
}

pub(crate) fn system_name(config: &EmulatedService) -> String {
    config
        .system_name
        .clone()
        .unwrap_or_else(|| format!("service_{}", config.id))
}

/// The service object of the proxy configuration (gateway-behaviour §6.2).
fn service_json(served: &Served, index: usize, host: &str) -> Value {
    let config = &served.config;
    let proxy = &served.proxy;
    let proxy_id = index as u64 + 1;
    let (auth_type, auth_value) = match config
        .service_token
        .as_ref()
        .or(config.service_tokens.first())
    {
        Some(token) => ("service_token", token.clone()),
        None => (
            "provider_key",
            config
                .provider_key
                .clone()
                .filter(|k| !k.trim().is_empty())
                .unwrap_or_else(|| format!("emulator-provider-{}", config.id)),
        ),
    };
    let default_rule = [MappingRuleConfig::new("GET", "/", "hits", 1)];
    let rules: &[MappingRuleConfig] = if proxy.mapping_rules.is_empty() {
        &default_rule
    } else {
        &proxy.mapping_rules
    };
    let proxy_rules: Vec<Value> = rules
        .iter()
        .enumerate()
        .map(|(n, rule)| {
            json!({
                "id": proxy_id * 1000 + n as u64 + 1,
                "http_method": rule.http_method,
                "pattern": rule.pattern,
                "metric_system_name": rule.metric_system_name,
                "delta": rule.delta,
                "last": rule.last,
                "position": n + 1,
                "parameters": path_parameters(&rule.pattern),
                "querystring_parameters": querystring_parameters(&rule.pattern),
                "owner_id": proxy_id,
                "owner_type": "Proxy",
                "redirect_url": null,
            })
        })
        .collect();
    let text = |v: &Option<String>, default: &str| Value::from(v.as_deref().unwrap_or(default));
    let status = |v: Option<u16>, default: u16| Value::from(v.unwrap_or(default));
    let mut p = Map::new();
    p.insert("id".into(), Value::from(proxy_id));
    p.insert("service_id".into(), id_json(&config.id));
    if !proxy.hosts.is_empty() {
        p.insert("hosts".into(), json!(proxy.hosts));
    }
    if let Some(api_backend) = &proxy.api_backend {
        p.insert("api_backend".into(), Value::from(api_backend.as_str()));
    }
    p.insert(
        "backend".into(),
        json!({ "endpoint": format!("http://{host}"), "host": host_name(host) }),
    );
    p.insert(
        "credentials_location".into(),
        text(&proxy.credentials_location, "query"),
    );
    p.insert(
        "auth_user_key".into(),
        text(&proxy.auth_user_key, "user_key"),
    );
    p.insert("auth_app_id".into(), text(&proxy.auth_app_id, "app_id"));
    p.insert("auth_app_key".into(), text(&proxy.auth_app_key, "app_key"));
    let errors = [
        (
            "auth_failed",
            &proxy.error_auth_failed,
            proxy.error_status_auth_failed,
            &proxy.error_headers_auth_failed,
            "Authentication failed",
            403,
        ),
        (
            "auth_missing",
            &proxy.error_auth_missing,
            proxy.error_status_auth_missing,
            &proxy.error_headers_auth_missing,
            "Authentication parameters missing",
            401,
        ),
        (
            "limits_exceeded",
            &proxy.error_limits_exceeded,
            proxy.error_status_limits_exceeded,
            &proxy.error_headers_limits_exceeded,
            "Limits exceeded",
            429,
        ),
        (
            "no_match",
            &proxy.error_no_match,
            proxy.error_status_no_match,
            &proxy.error_headers_no_match,
            "No Mapping Rule matched",
            404,
        ),
    ];
    for (kind, body, code, content_type, default_body, default_code) in errors {
        p.insert(format!("error_{kind}"), text(body, default_body));
        p.insert(format!("error_status_{kind}"), status(code, default_code));
        p.insert(
            format!("error_headers_{kind}"),
            text(content_type, DEFAULT_CONTENT_TYPE),
        );
    }
    if config.backend_version == "oauth" {
        p.insert("authentication_method".into(), Value::from("oidc"));
        p.insert(
            "oidc_issuer_endpoint".into(),
            Value::from(format!("http://{host}/oidc")),
        );
    }
    p.insert("proxy_rules".into(), Value::Array(proxy_rules));
    if !proxy.policy_chain.is_empty() {
        p.insert(
            "policy_chain".into(),
            Value::Array(proxy.policy_chain.clone()),
        );
    }
    json!({
        "id": id_json(&config.id),
        "name": system_name(config),
        "system_name": system_name(config),
        "backend_version": config.backend_version,
        "backend_authentication_type": auth_type,
        "backend_authentication_value": auth_value,
        "proxy": Value::Object(p),
    })
}

/// `127.0.0.1:3001` → `127.0.0.1`; `[::1]:3001` → `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.split(':').next().unwrap_or(host)
}

/// The `{names}` in the path part of a pattern, each once, in order (the portal's
/// `parameters`): `/{env}/video/{id}.json?size={size}` gives `env`, `id`.
pub(crate) fn path_parameters(pattern: &str) -> Vec<String> {
    let path = pattern.split('?').next().unwrap_or("");
    let mut names: Vec<String> = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        let name = &after[..close];
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        rest = &after[close + 1..];
    }
    names
}

/// The query part of a pattern as `{key: value}` (the portal's
/// `querystring_parameters`): split on `&`, then on the first `=`; a key without
/// `=` maps to `null`.
pub(crate) fn querystring_parameters(pattern: &str) -> Value {
    let mut map = Map::new();
    if let Some((_, query)) = pattern.split_once('?') {
        for piece in query.split('&').filter(|p| !p.is_empty()) {
            match piece.split_once('=') {
                Some((key, value)) => map.insert(key.to_string(), Value::from(value)),
                None => map.insert(piece.to_string(), Value::Null),
            };
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_like_the_portal() {
        assert_eq!(
            path_parameters("/{env}/video/{id}.json?size={size}"),
            ["env", "id"]
        );
        assert_eq!(path_parameters("/a/{x}/b/{x}$"), ["x"]);
        assert!(path_parameters("/").is_empty());
        assert_eq!(
            querystring_parameters("/{env}/video/encode?size={size}&speed=2x"),
            json!({ "size": "{size}", "speed": "2x" })
        );
        assert_eq!(querystring_parameters("/a?flag"), json!({ "flag": null }));
        assert_eq!(querystring_parameters("/a?x=1=2"), json!({ "x": "1=2" }));
        assert_eq!(querystring_parameters("/a$"), json!({}));
        assert_eq!(querystring_parameters("/a?"), json!({}));
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("127.0.0.1:3001"), "127.0.0.1");
        assert_eq!(host_name("[::1]:3001"), "[::1]");
        assert_eq!(host_name("example.com"), "example.com");
    }

    #[test]
    fn numeric_ids_become_numbers() {
        assert_eq!(id_json("42"), json!(42));
        assert_eq!(id_json("042"), json!("042"));
        assert_eq!(id_json("abc"), json!("abc"));
    }
}
