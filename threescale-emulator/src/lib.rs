//! A local, in-memory 3scale backend: the Service Management API of apisonator, with
//! the same parameters, XML documents (byte for byte), status codes, error codes and
//! headers, for development and tests.
//!
//! # Endpoints
//! - `GET /transactions/authorize.xml`, `/transactions/authrep.xml`,
//!   `/transactions/oauth_authorize.xml`, `/transactions/oauth_authrep.xml` (and HEAD),
//!   `POST /transactions.xml` (report: 202, counters applied at once),
//!   `GET /status`, `GET /check.txt`, `HEAD /available`, `OPTIONS *`, 404 otherwise.
//! - Extensions through the `3scale-options` header: `no_body`, `rejection_reason_header`,
//!   `limit_headers`, `hierarchy`, `flat_usage`, `list_app_keys`.
//! - Introspection (JSON):
//!   - `GET /_emulator/usage?service_id=S&app_id=A` (or `&user_key=K`):
//!     `{"service_id":"S","app_id":"A","usage":{"hits":{"minute":3,"hour":3,"day":3,"week":3,"month":3,"year":3,"eternity":3}}}`
//!     with every metric of the service and the values of the periods containing "now"
//!     (`"user_key":"K"` is added when asked by user key). 400 without `service_id` or
//!     an application, 404 for an unknown service or application.
//!   - `GET /_emulator/response_codes?service_id=S&app_id=A` (or `&user_key=K`):
//!     the `log[code]` values reported for the application (authrep and report), counted
//!     as the backend's response-code stats: `{"200":2,"2XX":2,"404":1,"4XX":1}` (groups
//!     `2XX`, `4XX`, `5XX` and the codes 200, 403, 404, 500, 503; one per transaction).
//!   - `POST /_emulator/reset`: clears counters, response codes, error logs and request stats.
//!   - `GET /_emulator/stats`: `{"authorize":0,"authrep":0,"oauth_authorize":0,
//!     "oauth_authrep":0,"report":0,"transactions":0,"transactions_applied":0,
//!     "transactions_discarded":0}` (requests received per endpoint, transactions in
//!     reports answered 202, and how many of those were applied or discarded).
//!   - `GET /_emulator/errors?service_id=S`: the service's error log, newest first:
//!     `[{"code":"metric_invalid","message":"metric \"x\" is invalid","timestamp":"2010-05-12 13:33:00 UTC","context_info":{..}}]`
//!     (report batches discarded, and errors of the auth endpoints, as the backend
//!     stores them; `context_info` is the request's `url`, `method`, `form_vars`,
//!     `user_agent`, `ip`, `content_type`, `content_length` and `extensions` for
//!     an auth call, `{}` for a report). Also `GET /internal/services/S/errors/`
//!     (`?page=&per_page=`) in the backend's shape
//!     `{"status":"found","errors":[...],"count":N}`; without the final slash it
//!     answers 404 as the backend does. `DELETE` on either clears it.
//!   - `POST /_emulator/faults` with a JSON [`Faults`], `DELETE /_emulator/faults`,
//!     `GET /_emulator/faults`.
//!   - `PUT /_emulator/proxy_rules?service_id=S` with a JSON array of mapping rules
//!     (`[{"http_method":"GET","pattern":"/v2/{id}$","metric_system_name":"hits","delta":1,"last":false}]`)
//!     replaces what the admin portal serves for S and bumps its proxy config
//!     version (`{"service_id":"S","version":2}`); `GET` shows the rules and version.
//!     `PUT /_emulator/proxy?service_id=S` replaces the whole `proxy:` section.
//!   - `POST /_emulator/portal_faults` with a JSON [`Faults`] (`DELETE`, `GET`): faults on
//!     the admin portal endpoints only; "malformed" there means a 200 that is not JSON.
//!   - `POST /_emulator/time` with `{"now":"2010-05-15T12:00:00Z"}` or
//!     `{"advance_seconds":60}` pins the clock; `DELETE /_emulator/time` restores the
//!     system clock; `GET` shows it.
//!
//! # OpenID Connect issuer
//! A development issuer for the `oauth` services (see the gateway's OIDC flow):
//! `GET /oidc/.well-known/openid-configuration`, `GET /oidc/jwks` (P-256 keys made
//! at start), `POST /oidc/token` (`grant_type=client_credentials`, the client id is
//! an application id of an `oauth` service and the secret one of its app keys,
//! any secret for an application without keys; form fields or HTTP Basic) giving
//! an ES256 JWT with `azp` = the client id, valid 300 s by the system clock.
//! `POST /_emulator/oidc/rotate` makes a new signing key (the previous one stays
//! published until the next rotation). The admin portal gives `oauth` services
//! `authentication_method: oidc` and `oidc_issuer_endpoint: http://<Host>/oidc`.
//!
//! # Admin portal
//! - `GET /admin/api/services/S/proxy/configs/{staging,production}/latest.json`:
//!   `{"proxy_config":{"id":1,"version":1,"environment":"production","content":{..}}}`
//!   where `content` is the service's proxy configuration as the gateway reads it:
//!   `id`, `system_name`, `backend_version`, `backend_authentication_type` and `_value`
//!   (the service token, else the provider key), and `proxy` with `backend.endpoint`
//!   (this emulator, from the `Host` header), credentials settings, the twelve
//!   `error_*` settings and `proxy_rules` (with the `parameters` and
//!   `querystring_parameters` the portal derives from each pattern).
//! - `GET /admin/api/services.json`: `{"services":[{"service":{"id":..,..}}]}`.
//!
//! Both need `admin_access_token` (top level, or the service's own) as
//! `?access_token=` or as the user or password of HTTP Basic auth: 403
//! `{"error":"Access denied"}` otherwise; 404 `{"status":"Not found"}` for an unknown
//! service. They are never hit by the backend's faults, only by their own.
//!
//! # Config (YAML or JSON, same shape)
//! ```yaml
//! admin_access_token: "demo-admin-token"   # reads every service's proxy config
//! services:
//!   - id: "2555417777820"
//!     backend_version: "1"          # "1" user_key, "2" app_id/app_key (default), "oauth"
//!     service_token: "demo-service-token"
//!     provider_key: "demo-provider-key"
//!     default: true                 # default service of its provider key (first one otherwise)
//!     state: active                 # or suspended
//!     referrer_filters_required: false
//!     metrics:
//!       - { name: hits }
//!       - { name: orders, parent: hits }
//!     plans:
//!       - name: basic
//!         limits:
//!           - { metric: hits, period: minute, value: 5 }
//!           - { metric: orders, period: day, value: 100 }
//!     applications:
//!       - { plan: basic, user_key: "demo-user-key" }     # id generated: app-1
//!       # { plan, app_id, app_keys: [..], state, referrer_filters: [..], redirect_url }
//!     system_name: demo                  # admin portal only
//!     admin_access_token: "svc-token"    # reads this service's proxy config only
//!     proxy:                             # optional; default one rule GET / -> hits 1
//!       credentials_location: query      # query, headers, authorization
//!       auth_user_key: user_key
//!       error_status_no_match: 404       # error_*, error_status_*, error_headers_*
//!       mapping_rules:
//!         - { http_method: GET, pattern: "/orders/{id}$", metric_system_name: orders, delta: 1 }
//!         - { http_method: GET, pattern: "/", metric_system_name: hits, delta: 1, last: false }
//! ```
//!
//! # Example
//! ```
//! use threescale_emulator::{AppRef, Emulator, EmulatorConfig};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = EmulatorConfig::from_yaml_str(r#"
//! services:
//!   - id: "42"
//!     backend_version: "1"
//!     provider_key: pk
//!     metrics: [{ name: hits }]
//!     plans: [{ name: basic, limits: [{ metric: hits, period: minute, value: 5 }] }]
//!     applications: [{ plan: basic, user_key: uk }]
//! "#)?;
//! let emulator = Emulator::start(config).await?;
//! let url = format!(
//!     "{}/transactions/authrep.xml?provider_key=pk&user_key=uk&usage%5Bhits%5D=1",
//!     emulator.url()
//! );
//! let resp = reqwest::get(&url).await?;
//! assert_eq!(resp.status(), 200);
//! let usage = emulator.usage("42", AppRef::user_key("uk")).unwrap();
//! assert_eq!(usage.usage["hits"].minute, 1);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]
#![deny(unreachable_pub)]
#![warn(missing_docs)]

mod admin;
mod auth;
mod clock;
mod config;
mod errors;
mod extensions;
mod faults;
mod limit_headers;
mod listener;
mod model;
mod oidc;
mod params;
mod period;
mod portal;
mod portal_store;
mod report;
mod request_info;
mod route;
mod ruby;
mod server;
mod state;
mod store;
mod timestamp;
mod tls;
mod usage;
mod xml;

pub use clock::{Clock, SystemClock};
pub use config::{
    ApplicationConfig, EmulatedService, EmulatorConfig, EmulatorConfigBuilder, LimitConfig,
    MappingRuleConfig, MetricConfig, PlanConfig, ProxyConfig, RULE_METHODS,
};
pub use errors::EmulatorError;
pub use faults::Faults;
pub use listener::XML_CONTENT_TYPE;
pub use period::{LimitPeriod, UnknownPeriod};
pub use request_info::{ContextInfo, Empty, RequestInfo};
pub use server::{Emulator, EmulatorHandle, serve_from_file, serve_from_file_tls};
pub use state::{AppRef, EmulatorState, PeriodTotals, UsageTotals};
pub use store::{ErrorEntry, RequestStats};
pub use tls::EmulatorTls;
