//! Building the router, starting and stopping the server.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{EmulatorConfig, MappingRuleConfig, ProxyConfig};
use crate::errors::EmulatorError;
use crate::faults::Faults;
use crate::state::{AppRef, EmulatorState, UsageTotals, lock};
use crate::store::{ErrorEntry, RequestStats};
use crate::tls::{EmulatorTls, TlsListener};
use crate::{admin, listener, oidc, portal};

/// Entry points: a router to mount, or a server on 127.0.0.1.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// The emulator as an axum router plus its state. Inconsistent config entries are
    /// skipped with a warning (use [`EmulatorConfig::validate`] to refuse them).
    ///
    /// ```
    /// use threescale_emulator::{Emulator, EmulatorConfig};
    /// let (router, state) = Emulator::router(EmulatorConfig::default());
    /// let _app: axum::Router = router;
    /// assert_eq!(state.stats().authrep, 0);
    /// ```
    pub fn router(config: EmulatorConfig) -> (Router, EmulatorState) {
        let state = EmulatorState::new(&config);
        let router = Router::new()
            .route("/_emulator/usage", get(admin::usage))
            .route("/_emulator/response_codes", get(admin::response_codes))
            .route("/_emulator/reset", post(admin::reset))
            .route("/_emulator/stats", get(admin::stats))
            .route(
                "/_emulator/faults",
                get(admin::get_faults)
                    .post(admin::set_faults)
                    .delete(admin::clear_faults),
            )
            .route(
                "/_emulator/errors",
                get(admin::errors).delete(admin::delete_errors),
            )
            .route(
                "/_emulator/time",
                get(admin::get_time)
                    .post(admin::set_time)
                    .delete(admin::system_time),
            )
            .route(
                "/_emulator/proxy_rules",
                get(portal::get_proxy_rules).put(portal::put_proxy_rules),
            )
            .route(
                "/_emulator/proxy",
                get(portal::get_proxy).put(portal::put_proxy),
            )
            .route(
                "/_emulator/portal_faults",
                get(portal::get_portal_faults)
                    .post(portal::set_portal_faults)
                    .delete(portal::clear_portal_faults),
            )
            .route(
                "/oidc/.well-known/openid-configuration",
                get(oidc::discovery),
            )
            .route("/oidc/jwks", get(oidc::jwks))
            .route("/oidc/token", post(oidc::token))
            .route("/_emulator/oidc/rotate", post(oidc::rotate))
            .route("/admin/api/services.json", get(portal::services))
            .route(
                "/admin/api/services/{id}/proxy/configs/{env}/latest.json",
                get(portal::latest),
            )
            // The backend's path ends with a slash; without it (and for other
            // methods) its `before` filter still answers for an unknown service,
            // then no route matches: 404 either way.
            .route(
                "/internal/services/{id}/errors/",
                get(admin::internal_errors)
                    .delete(admin::internal_delete_errors)
                    .fallback(admin::internal_errors_not_found),
            )
            .route(
                "/internal/services/{id}/errors",
                any(admin::internal_errors_not_found),
            )
            .fallback(listener::handle)
            .with_state(state.clone());
        (router, state)
    }

    /// Validates the config and serves it on `127.0.0.1` on a free port.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), threescale_emulator::EmulatorError> {
    /// let config = threescale_emulator::EmulatorConfig::from_yaml_str(
    ///     "services: [{id: '1', provider_key: pk}]",
    /// )?;
    /// let emulator = threescale_emulator::Emulator::start(config).await?;
    /// assert!(emulator.url().starts_with("http://127.0.0.1:"));
    /// emulator.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        Self::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Validates the config and serves it on `addr`.
    pub async fn start_on(
        config: EmulatorConfig,
        addr: SocketAddr,
    ) -> Result<EmulatorHandle, EmulatorError> {
        Self::serve(config, addr, None).await
    }

    /// Validates the config and serves it over HTTPS on `127.0.0.1` on a free
    /// port ([`EmulatorHandle::url`] is then `https://127.0.0.1:PORT`). With
    /// [`EmulatorTls::require_client_cert`], connections without a client
    /// certificate from those authorities are refused during the handshake.
    pub async fn start_tls(
        config: EmulatorConfig,
        tls: EmulatorTls,
    ) -> Result<EmulatorHandle, EmulatorError> {
        Self::serve(
            config,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            Some(tls),
        )
        .await
    }

    /// Validates the config and serves it on `addr`, over HTTPS when `tls` is given.
    pub async fn start_on_tls(
        config: EmulatorConfig,
        addr: SocketAddr,
        tls: Option<EmulatorTls>,
    ) -> Result<EmulatorHandle, EmulatorError> {
        Self::serve(config, addr, tls).await
    }

    async fn serve(
        config: EmulatorConfig,
        addr: SocketAddr,
        tls: Option<EmulatorTls>,
    ) -> Result<EmulatorHandle, EmulatorError> {
        config.validate()?;
        let (router, state) = Self::router(config);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let https = tls.is_some();
        let task = match tls {
            // The peer address feeds the error log's `context_info.ip`.
            None => tokio::spawn(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<crate::request_info::Peer>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            }),
            Some(tls) => {
                let listener = TlsListener::new(listener, &tls)?;
                let router = router.layer(axum::Extension(crate::oidc::Https));
                tokio::spawn(async move {
                    axum::serve(
                        listener,
                        router.into_make_service_with_connect_info::<crate::request_info::Peer>(),
                    )
                    .with_graceful_shutdown(shutdown)
                    .await
                })
            }
        };
        Ok(EmulatorHandle {
            state,
            addr: local,
            https,
            stop: Arc::new(Mutex::new(Some((tx, task)))),
        })
    }
}

type Stopper = (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>);

/// A running emulator. Clones share the same server; the first `shutdown` stops it.
#[derive(Clone)]
pub struct EmulatorHandle {
    state: EmulatorState,
    addr: SocketAddr,
    https: bool,
    stop: Arc<Mutex<Option<Stopper>>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// The base URL, `http://127.0.0.1:PORT` (`https://` when serving TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (also reachable through the methods below).
    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// See [`EmulatorState::usage`].
    pub fn usage(&self, service_id: &str, app: AppRef) -> Option<UsageTotals> {
        self.state.usage(service_id, app)
    }

    /// See [`EmulatorState::stats`].
    pub fn stats(&self) -> RequestStats {
        self.state.stats()
    }

    /// See [`EmulatorState::errors`].
    pub fn errors(&self, service_id: &str) -> Option<Vec<ErrorEntry>> {
        self.state.errors(service_id)
    }

    /// See [`EmulatorState::set_faults`].
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// See [`EmulatorState::clear_faults`].
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// See [`EmulatorState::set_proxy_rules`].
    pub fn set_proxy_rules(
        &self,
        service_id: &str,
        rules: Vec<MappingRuleConfig>,
    ) -> Result<u64, EmulatorError> {
        self.state.set_proxy_rules(service_id, rules)
    }

    /// See [`EmulatorState::set_proxy`].
    pub fn set_proxy(&self, service_id: &str, proxy: ProxyConfig) -> Result<u64, EmulatorError> {
        self.state.set_proxy(service_id, proxy)
    }

    /// See [`EmulatorState::proxy_config_version`].
    pub fn proxy_config_version(&self, service_id: &str) -> Option<u64> {
        self.state.proxy_config_version(service_id)
    }

    /// See [`EmulatorState::set_portal_faults`].
    pub fn set_portal_faults(&self, faults: Faults) {
        self.state.set_portal_faults(faults);
    }

    /// See [`EmulatorState::clear_portal_faults`].
    pub fn clear_portal_faults(&self) {
        self.state.clear_portal_faults();
    }

    /// The admin portal URL with the access token in it, as the gateway's
    /// `THREESCALE_PORTAL_ENDPOINT` wants it: `http://TOKEN@127.0.0.1:PORT`
    /// (`https://` when serving TLS).
    pub fn portal_endpoint(&self, access_token: &str) -> String {
        const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let token = percent_encoding::utf8_percent_encode(access_token, USERINFO);
        format!("{}://{token}@{}", self.scheme(), self.addr)
    }

    /// See [`EmulatorState::set_time`].
    pub fn set_time(&self, now: DateTime<Utc>) {
        self.state.set_time(now);
    }

    /// See [`EmulatorState::advance_time`].
    pub fn advance_time(&self, by: chrono::Duration) {
        self.state.advance_time(by);
    }

    /// See [`EmulatorState::use_system_time`].
    pub fn use_system_time(&self) {
        self.state.use_system_time();
    }

    /// See [`EmulatorState::reset`].
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops accepting connections and waits (at most 5 s) for open ones to finish.
    pub async fn shutdown(self) {
        let stopper = lock(&self.stop).take();
        if let Some((tx, mut task)) = stopper {
            let _ = tx.send(());
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

/// Serves the config file on `listen` until ctrl-c (used by `threescale emulate`).
pub async fn serve_from_file(path: &Path, listen: SocketAddr) -> Result<(), EmulatorError> {
    serve_from_file_tls(path, listen, None).await
}

/// Like [`serve_from_file`], over HTTPS when `tls` is given.
pub async fn serve_from_file_tls(
    path: &Path,
    listen: SocketAddr,
    tls: Option<EmulatorTls>,
) -> Result<(), EmulatorError> {
    let config = EmulatorConfig::from_file(path)?;
    let services = config.services.len();
    let handle = Emulator::start_on_tls(config, listen, tls).await?;
    tracing::info!(url = %handle.url(), services, "3scale backend emulator listening");
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping the 3scale backend emulator");
    handle.shutdown().await;
    Ok(())
}
