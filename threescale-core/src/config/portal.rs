//! Loading a service's configuration from the 3scale admin portal, and keeping
//! it fresh.
//!
//! The portal serves the proxy configuration the gateway uses at
//! `/admin/api/services/{id}/proxy/configs/{env}/latest.json`. A refresh that
//! fails (unreachable, 5xx, timeout, invalid JSON or config) keeps the last
//! good configuration and logs why; a valid one is put in force atomically.
//!
//! Environment (the gateway's names): `THREESCALE_PORTAL_ENDPOINT`
//! (`https://ACCESS_TOKEN@admin.example.com`), `THREESCALE_DEPLOYMENT_ENV`
//! (`staging` or `production`, default `production`), `THREESCALE_SERVICE_ID`,
//! `APICAST_CONFIGURATION_CACHE` (refresh interval in seconds; 0 or unset: load
//! once at start-up), and the TLS settings `THREESCALE_TLS_*` ([`crate::TlsTrust`]),
//! which the loaded configuration's backend client uses too.

use std::time::Duration;

use super::{Config, ConfigError, DEFAULT_TIMEOUT};
use crate::{Secret, ThreeScale};

/// Which proxy configuration to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeploymentEnv {
    /// `staging`
    Staging,
    /// `production` (default)
    #[default]
    Production,
}

impl DeploymentEnv {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentEnv::Staging => "staging",
            DeploymentEnv::Production => "production",
        }
    }

    /// Parses `staging` or `production`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "staging" => Some(DeploymentEnv::Staging),
            "production" => Some(DeploymentEnv::Production),
            _ => None,
        }
    }
}

/// Where a service's proxy configuration lives in the admin portal.
///
/// ```
/// use threescale_core::{DeploymentEnv, Portal};
/// let portal = Portal::new("https://admin.example.com", "ACCESS_TOKEN", "42", DeploymentEnv::Staging);
/// assert_eq!(portal.url(), "https://admin.example.com/admin/api/services/42/proxy/configs/staging/latest.json");
/// assert!(!format!("{portal:?}").contains("ACCESS_TOKEN"));
/// ```
#[derive(Clone, Debug)]
pub struct Portal {
    admin_url: String,
    access_token: Secret,
    service_id: String,
    env: DeploymentEnv,
    refresh: Option<Duration>,
    timeout: Duration,
    tls: crate::TlsTrust,
}

impl Portal {
    /// The portal at `admin_url` (no credentials in it), read with `access_token`.
    pub fn new(
        admin_url: impl Into<String>,
        access_token: impl Into<Secret>,
        service_id: impl Into<String>,
        env: DeploymentEnv,
    ) -> Self {
        Portal {
            admin_url: admin_url.into().trim_end_matches('/').to_string(),
            access_token: access_token.into(),
            service_id: service_id.into(),
            env,
            refresh: None,
            timeout: DEFAULT_TIMEOUT,
            tls: crate::TlsTrust::default(),
        }
    }

    /// Whom to trust when loading (and which client certificate to present).
    /// The loaded configuration carries the same trust for its backend
    /// client, unless the environment or code sets another.
    pub fn tls(mut self, tls: crate::TlsTrust) -> Self {
        self.tls = tls;
        self
    }

    /// Refreshes every `interval` once [`Portal::keep_fresh`] runs.
    pub fn refresh_every(mut self, interval: Duration) -> Self {
        self.refresh = (!interval.is_zero()).then_some(interval);
        self
    }

    /// Request timeout (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The refresh interval, if any.
    pub fn refresh_interval(&self) -> Option<Duration> {
        self.refresh
    }

    /// Reads the gateway's variables through `var` (see the module docs).
    ///
    /// ```
    /// use threescale_core::Portal;
    /// let portal = Portal::from_vars(|name| match name {
    ///     "THREESCALE_PORTAL_ENDPOINT" => Some("http://secret-token@127.0.0.1:3002".into()),
    ///     "THREESCALE_SERVICE_ID" => Some("42".into()),
    ///     "APICAST_CONFIGURATION_CACHE" => Some("60".into()),
    ///     _ => None,
    /// }).unwrap().unwrap();
    /// assert_eq!(portal.url(), "http://127.0.0.1:3002/admin/api/services/42/proxy/configs/production/latest.json");
    /// assert_eq!(portal.refresh_interval(), Some(std::time::Duration::from_secs(60)));
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Portal>, ConfigError> {
        let Some(endpoint) = var("THREESCALE_PORTAL_ENDPOINT").filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let err = |field: &str, reason: &str| ConfigError::new("env", field, reason);
        let (scheme, rest) = endpoint
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| {
                err(
                    "THREESCALE_PORTAL_ENDPOINT",
                    "expected http(s)://ACCESS_TOKEN@HOST",
                )
            })?;
        let (token, host) = rest.rsplit_once('@').ok_or_else(|| {
            err(
                "THREESCALE_PORTAL_ENDPOINT",
                "no access token: expected http(s)://ACCESS_TOKEN@HOST",
            )
        })?;
        let token = token.split(':').next().unwrap_or_default();
        let token = percent_encoding::percent_decode_str(token)
            .decode_utf8_lossy()
            .into_owned();
        if token.is_empty() || host.is_empty() {
            return Err(err(
                "THREESCALE_PORTAL_ENDPOINT",
                "access token or host is empty",
            ));
        }
        let service_id = var("THREESCALE_SERVICE_ID")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                err(
                    "THREESCALE_SERVICE_ID",
                    "required with THREESCALE_PORTAL_ENDPOINT",
                )
            })?;
        let env = match var("THREESCALE_DEPLOYMENT_ENV") {
            None => DeploymentEnv::Production,
            Some(v) => DeploymentEnv::parse(&v).ok_or_else(|| {
                err(
                    "THREESCALE_DEPLOYMENT_ENV",
                    "expected staging or production",
                )
            })?,
        };
        let mut portal = Portal::new(format!("{scheme}://{host}"), token, service_id, env);
        if let Some(seconds) = var("APICAST_CONFIGURATION_CACHE").filter(|v| !v.is_empty()) {
            let seconds: u64 = seconds
                .parse()
                .map_err(|_| err("APICAST_CONFIGURATION_CACHE", "expected whole seconds"))?;
            portal = portal.refresh_every(Duration::from_secs(seconds));
        }
        if let Some(tls) = crate::TlsTrust::from_vars(&var)? {
            tls.check().map_err(|e| {
                ConfigError::new("env", crate::TlsTrust::env_name(e.field), e.reason)
            })?;
            portal = portal.tls(tls);
        }
        Ok(Some(portal))
    }

    /// The proxy configuration URL.
    pub fn url(&self) -> String {
        format!(
            "{}/admin/api/services/{}/proxy/configs/{}/latest.json",
            self.admin_url,
            percent_encoding::utf8_percent_encode(
                &self.service_id,
                percent_encoding::NON_ALPHANUMERIC
            ),
            self.env.as_str()
        )
    }

    fn source_name(&self) -> String {
        format!("portal {}", self.url())
    }

    /// Fetches and validates the configuration. The engine settings come from
    /// the service's policy chain exactly as for the same JSON read from a file
    /// ([`Config::from_proxy_config`]): the batcher policy selects Cached mode.
    pub async fn load(&self) -> Result<Config, ConfigError> {
        let source = self.source_name();
        let fail = |reason: String| ConfigError::new(source.clone(), "", reason);
        let client = self
            .tls
            .http_client(reqwest::Client::builder().timeout(self.timeout))
            .map_err(|e| fail(e.to_string()))?;
        let response = client
            .get(self.url())
            .timeout(self.timeout)
            .basic_auth(self.access_token.expose(), Some(""))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                if crate::tls::is_trust_failure(&e) {
                    return fail(format!(
                        "TLS trust failure: {}; {}",
                        crate::tls::error_chain(&e.without_url()),
                        crate::tls::TRUST_HINT
                    ));
                }
                fail(format!("unreachable: {}", e.without_url()))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("answered {status}")));
        }
        let text = response
            .text()
            .await
            .map_err(|e| fail(format!("reading the answer: {}", e.without_url())))?;
        let root: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("invalid JSON: {e}")))?;
        // The same loader as a proxy config file: the same JSON gives the same
        // settings; the backend is reached with the portal's TLS trust.
        super::proxy::builder_for_service(&root, &source, Some(&self.service_id))?
            .tls(self.tls.clone())
            .build()
    }

    /// Loads the configuration now and puts it in force in `engine`. On any
    /// failure (portal unreachable, 5xx, timeout, invalid JSON or config, another
    /// service) the engine keeps the configuration it has and the error says why.
    /// [`Portal::keep_fresh`] calls this every interval.
    pub async fn refresh(&self, engine: &ThreeScale) -> Result<(), ConfigError> {
        let config = self.load().await?;
        engine.update_service(config.service)
    }

    /// Refreshes `engine`'s service configuration every interval until every
    /// other handle to the engine is dropped or the task is aborted (it does
    /// not keep the engine alive). Failures keep the last good configuration.
    /// Without an interval it returns at once.
    pub async fn keep_fresh(self, engine: ThreeScale) {
        let Some(interval) = self.refresh else {
            return;
        };
        let weak = engine.downgrade();
        drop(engine);
        loop {
            tokio::time::sleep(interval).await;
            let Some(engine) = weak.upgrade() else {
                return;
            };
            match self.refresh(&engine).await {
                Ok(()) => {
                    tracing::debug!(service_id = %self.service_id, "3scale configuration refreshed")
                }
                Err(error) => {
                    tracing::warn!(%error, "3scale configuration refresh failed; keeping the last good one")
                }
            }
        }
    }
}

impl Config {
    /// Loads a service's proxy configuration from the admin portal
    /// (`admin_url` without credentials; `env` staging or production).
    pub async fn from_portal(
        admin_url: &str,
        access_token: impl Into<Secret>,
        service_id: &str,
        env: DeploymentEnv,
    ) -> Result<Config, ConfigError> {
        Portal::new(admin_url, access_token, service_id, env)
            .load()
            .await
    }
}
