//! Finding an application's credentials in a request, as the 3scale gateway does.
//!
//! Where to look ([`CredentialsLocation`]) and under which names
//! ([`CredentialsConfig`]) come from the service's settings; what to look for
//! comes from its [`BackendVersion`]. Rules (reference: gateway-behaviour §2):
//! - query: the first occurrence of the name, compared case-insensitively;
//!   values are percent-decoded;
//! - headers: the name compared case-insensitively, `-` and `_` alike;
//! - `Authorization`: `Basic` (user → user key or app id, password → app key)
//!   or `Bearer`;
//! - an empty value counts as present (the backend judges it);
//! - app_id mode needs both `app_id` and `app_key`.

use std::borrow::Cow;

use base64::Engine as _;

use crate::{Secret, backend::AppCredentials};

/// A read-only view of an HTTP request, implemented by the adapters without
/// copying the request.
pub trait RequestView {
    /// The method, e.g. `GET`.
    fn method(&self) -> &str;
    /// The raw path, as received (percent-encoded).
    fn path(&self) -> &str;
    /// The raw query string without `?`.
    fn query(&self) -> Option<&str>;
    /// A header's value by name (case-insensitive); `None` if absent or not text.
    fn header(&self, name: &str) -> Option<&str>;
    /// The host the request was sent to, as received: the request line's
    /// authority when it has one, else the `Host` header. Chooses the service
    /// in an engine protecting several ([`crate::Services`]).
    fn host(&self) -> Option<&str> {
        self.header("host")
    }
}

/// A simple owned request, handy in tests and tools.
///
/// ```
/// use threescale_core::{SimpleRequest, RequestView};
/// let req = SimpleRequest::get("/orders/1?user_key=k").header("x-api", "1");
/// assert_eq!(req.path(), "/orders/1");
/// assert_eq!(req.query(), Some("user_key=k"));
/// assert_eq!(RequestView::header(&req, "X-Api"), Some("1"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct SimpleRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
}

impl SimpleRequest {
    /// A request with `method` and `uri` (`/path?query`).
    pub fn new(method: impl Into<String>, uri: &str) -> Self {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (uri.to_string(), None),
        };
        SimpleRequest {
            method: method.into(),
            path,
            query,
            headers: Vec::new(),
        }
    }

    /// A `GET` request.
    pub fn get(uri: &str) -> Self {
        SimpleRequest::new("GET", uri)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl RequestView for SimpleRequest {
    fn method(&self) -> &str {
        &self.method
    }
    fn path(&self) -> &str {
        &self.path
    }
    fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Which credentials a service uses (its `backend_version`). Deserialised
/// from `"1"`, `"2"` or `"oauth"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum BackendVersion {
    /// `"1"`: a `user_key`.
    #[default]
    #[serde(rename = "1")]
    UserKey,
    /// `"2"`: `app_id` + `app_key`.
    #[serde(rename = "2")]
    AppId,
    /// `"oauth"`: an OAuth/OIDC access token whose client id is the app id.
    #[serde(rename = "oauth")]
    OAuth,
}

impl BackendVersion {
    /// Parses `"1"`, `"2"` or `"oauth"`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "1" => Some(BackendVersion::UserKey),
            "2" => Some(BackendVersion::AppId),
            "oauth" => Some(BackendVersion::OAuth),
            _ => None,
        }
    }

    /// `"1"`, `"2"` or `"oauth"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendVersion::UserKey => "1",
            BackendVersion::AppId => "2",
            BackendVersion::OAuth => "oauth",
        }
    }
}

/// Where credentials are read from (`proxy.credentials_location`). Deserialised
/// from `query`, `headers` or `authorization`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsLocation {
    /// The query string (default).
    #[default]
    Query,
    /// Request headers.
    Headers,
    /// The `Authorization` header (Basic or Bearer).
    Authorization,
}

impl CredentialsLocation {
    /// Parses `"query"`, `"headers"` or `"authorization"`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "query" => Some(CredentialsLocation::Query),
            "headers" => Some(CredentialsLocation::Headers),
            "authorization" => Some(CredentialsLocation::Authorization),
            _ => None,
        }
    }
}

/// Credentials found in a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestCredentials {
    /// A user key, or an app id with its key (backend_version 1 and 2).
    App(AppCredentials),
    /// An OAuth/OIDC access token (backend_version oauth), still to be resolved
    /// into the application's (client's) id.
    AccessToken(Secret),
}

/// Two locations of a credential chain hold credentials of different
/// applications ([`CredentialsConfig::find_checked`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("different credentials in two places of the request")]
#[non_exhaustive]
pub struct ConflictingCredentials;

/// A parameter name with its header spellings precomputed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ParamName {
    name: String,
    dashed: String,
    underscored: String,
}

impl ParamName {
    fn new(name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        ParamName {
            dashed: name.replace('_', "-"),
            underscored: name.replace('-', "_"),
            name,
        }
    }
}

/// Where and under which names to look for credentials.
///
/// ```
/// use threescale_core::{CredentialsConfig, CredentialsLocation, BackendVersion, SimpleRequest, AppCredentials};
/// let config = CredentialsConfig::new(CredentialsLocation::Headers).user_key_name("X-Api-Key");
/// let req = SimpleRequest::get("/").header("x_api_key", "secret");
/// assert_eq!(
///     config.extract(BackendVersion::UserKey, &req),
///     Some(AppCredentials::user_key("secret"))
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsConfig {
    location: CredentialsLocation,
    /// Further locations, tried after `location` in order.
    fallbacks: Vec<CredentialsLocation>,
    user_key: ParamName,
    app_id: ParamName,
    app_key: ParamName,
    access_token: ParamName,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig::new(CredentialsLocation::Query)
    }
}

impl CredentialsConfig {
    /// Default names (`user_key`, `app_id`, `app_key`) at `location`.
    pub fn new(location: CredentialsLocation) -> Self {
        CredentialsConfig {
            location,
            fallbacks: Vec::new(),
            user_key: ParamName::new("user_key"),
            app_id: ParamName::new("app_id"),
            app_key: ParamName::new("app_key"),
            access_token: ParamName::new("access_token"),
        }
    }

    /// The location (the first one of a chain).
    pub fn location(&self) -> CredentialsLocation {
        self.location
    }

    /// Adds a location tried after the ones before it: a chain, such as the
    /// headers then the query. The first location holding the credentials
    /// wins, and a request holding different credentials in two of them is
    /// refused ([`CredentialsConfig::find_checked`]). A location already in the
    /// chain is not added twice.
    ///
    /// ```
    /// use threescale_core::{AppCredentials, BackendVersion, CredentialsConfig, CredentialsLocation, SimpleRequest};
    /// let config = CredentialsConfig::new(CredentialsLocation::Headers).fallback(CredentialsLocation::Query);
    /// let from_query = SimpleRequest::get("/?user_key=k1");
    /// assert_eq!(config.extract(BackendVersion::UserKey, &from_query), Some(AppCredentials::user_key("k1")));
    /// let both = SimpleRequest::get("/?user_key=k1").header("user-key", "k2");
    /// assert!(config.find_checked(BackendVersion::UserKey, &both).is_err());
    /// ```
    pub fn fallback(mut self, location: CredentialsLocation) -> Self {
        if location != self.location && !self.fallbacks.contains(&location) {
            self.fallbacks.push(location);
        }
        self
    }

    /// Every location, in the order they are tried.
    pub fn locations(&self) -> Vec<CredentialsLocation> {
        std::iter::once(self.location)
            .chain(self.fallbacks.iter().copied())
            .collect()
    }

    /// Sets the user key's name (lowercased, as the gateway does).
    pub fn user_key_name(mut self, name: &str) -> Self {
        self.user_key = ParamName::new(name);
        self
    }

    /// Sets the app id's name.
    pub fn app_id_name(mut self, name: &str) -> Self {
        self.app_id = ParamName::new(name);
        self
    }

    /// Sets the app key's name.
    pub fn app_key_name(mut self, name: &str) -> Self {
        self.app_key = ParamName::new(name);
        self
    }

    /// The configured names: user key, app id, app key.
    pub fn names(&self) -> (&str, &str, &str) {
        (&self.user_key.name, &self.app_id.name, &self.app_key.name)
    }

    /// Finds the application credentials `version` needs; `None` if any part
    /// is missing, and for [`BackendVersion::OAuth`], whose access token is not
    /// application credentials until a token verifier resolves it (use
    /// [`CredentialsConfig::find`]).
    pub fn extract(
        &self,
        version: BackendVersion,
        request: &impl RequestView,
    ) -> Option<AppCredentials> {
        match self.find(version, request)? {
            RequestCredentials::App(credentials) => Some(credentials),
            RequestCredentials::AccessToken(_) => None,
        }
    }

    /// Finds the credentials `version` needs; `None` if any part is missing.
    /// With a chain of locations, the first location holding them wins (use
    /// [`CredentialsConfig::find_checked`] to refuse conflicting ones).
    /// For [`BackendVersion::OAuth`] the result is the access token, held as a
    /// [`Secret`], to be resolved into an app id by a token verifier.
    ///
    /// ```
    /// use threescale_core::{BackendVersion, CredentialsConfig, SimpleRequest};
    /// use threescale_core::credentials::RequestCredentials;
    /// let req = SimpleRequest::get("/").header("Authorization", "Bearer t0ken");
    /// let found = CredentialsConfig::default().find(BackendVersion::OAuth, &req);
    /// let Some(RequestCredentials::AccessToken(token)) = found else { panic!() };
    /// assert_eq!(token.expose(), "t0ken");
    /// assert!(!format!("{token:?}").contains("t0ken"));
    /// ```
    pub fn find(
        &self,
        version: BackendVersion,
        request: &impl RequestView,
    ) -> Option<RequestCredentials> {
        self.places(version)
            .find_map(|location| self.find_at(location, version, request))
    }

    /// Like [`CredentialsConfig::find`], for a chain of several locations
    /// ([`CredentialsConfig::fallback`]): `Err` when two locations hold
    /// credentials naming different applications (different user keys, app
    /// ids or tokens; a location holding an app id without its key counts), so
    /// that a request is never metered as one application while carrying
    /// another's credentials for the upstream to read. With one location it is
    /// `find`.
    pub fn find_checked(
        &self,
        version: BackendVersion,
        request: &impl RequestView,
    ) -> Result<Option<RequestCredentials>, ConflictingCredentials> {
        if !self.fallbacks.is_empty() {
            let mut seen: Option<Cow<'_, str>> = None;
            for location in self.places(version) {
                if let Some(identity) = self.identity_at(location, version, request) {
                    match &seen {
                        Some(first) if *first != identity => return Err(ConflictingCredentials),
                        Some(_) => {}
                        None => seen = Some(Cow::Owned(identity.into_owned())),
                    }
                }
            }
        }
        Ok(self.find(version, request))
    }

    /// The places searched, in order: the locations, then for OAuth the
    /// `Authorization` header's Bearer token when no location is it.
    fn places(&self, version: BackendVersion) -> impl Iterator<Item = CredentialsLocation> + '_ {
        let bearer = version == BackendVersion::OAuth
            && self.location != CredentialsLocation::Authorization
            && !self.fallbacks.contains(&CredentialsLocation::Authorization);
        std::iter::once(self.location)
            .chain(self.fallbacks.iter().copied())
            .chain(bearer.then_some(CredentialsLocation::Authorization))
    }

    /// The value naming the application at `location` (user key, app id or
    /// token), complete credentials or not.
    fn identity_at<'r>(
        &self,
        location: CredentialsLocation,
        version: BackendVersion,
        request: &'r impl RequestView,
    ) -> Option<Cow<'r, str>> {
        if location == CredentialsLocation::Authorization {
            return match (
                version,
                parse_authorization(request.header("authorization")?)?,
            ) {
                (BackendVersion::UserKey, AuthHeader::Basic { user, password }) => {
                    Some(Cow::Owned(if user.is_empty() { password } else { user }))
                }
                (BackendVersion::AppId, AuthHeader::Basic { user, .. }) => Some(Cow::Owned(user)),
                (BackendVersion::AppId, AuthHeader::Bearer(_)) => None,
                (BackendVersion::OAuth, AuthHeader::Basic { .. }) => None,
                (_, AuthHeader::Bearer(token)) => Some(Cow::Owned(token)),
            };
        }
        let name = match version {
            BackendVersion::UserKey => &self.user_key,
            BackendVersion::AppId => &self.app_id,
            BackendVersion::OAuth => &self.access_token,
        };
        self.lookup(location, name, request)
    }

    /// The credentials `version` needs at one location.
    fn find_at(
        &self,
        location: CredentialsLocation,
        version: BackendVersion,
        request: &impl RequestView,
    ) -> Option<RequestCredentials> {
        let app = match version {
            BackendVersion::UserKey => {
                let key = match location {
                    CredentialsLocation::Authorization => {
                        match parse_authorization(request.header("authorization")?)? {
                            AuthHeader::Basic { user, password } => {
                                if !user.is_empty() {
                                    user
                                } else {
                                    password
                                }
                            }
                            AuthHeader::Bearer(token) => token,
                        }
                    }
                    // Copied once, straight into the shared string.
                    _ => {
                        let key = self.lookup(location, &self.user_key, request)?;
                        return Some(RequestCredentials::App(AppCredentials::UserKey(
                            Secret::new(&*key),
                        )));
                    }
                };
                AppCredentials::UserKey(Secret::new(key))
            }
            BackendVersion::AppId => match location {
                CredentialsLocation::Authorization => {
                    match parse_authorization(request.header("authorization")?)? {
                        AuthHeader::Basic { user, password } => AppCredentials::AppId {
                            app_id: user,
                            app_key: Some(Secret::new(password)),
                        },
                        // A Bearer token gives an app id and no key: incomplete.
                        AuthHeader::Bearer(_) => return None,
                    }
                }
                _ => {
                    let app_id = self.lookup(location, &self.app_id, request)?.into_owned();
                    let app_key = self.lookup(location, &self.app_key, request)?;
                    AppCredentials::AppId {
                        app_id,
                        app_key: Some(Secret::new(&*app_key)),
                    }
                }
            },
            BackendVersion::OAuth => {
                let token = match location {
                    CredentialsLocation::Authorization => {
                        match parse_authorization(request.header("authorization")?)? {
                            AuthHeader::Bearer(token) => token,
                            AuthHeader::Basic { .. } => return None,
                        }
                    }
                    _ => self
                        .lookup(location, &self.access_token, request)?
                        .into_owned(),
                };
                return Some(RequestCredentials::AccessToken(Secret::new(token)));
            }
        };
        Some(RequestCredentials::App(app))
    }

    fn lookup<'r>(
        &self,
        location: CredentialsLocation,
        name: &ParamName,
        request: &'r impl RequestView,
    ) -> Option<Cow<'r, str>> {
        match location {
            CredentialsLocation::Query => query_arg(request.query()?, &name.name),
            CredentialsLocation::Headers => request
                .header(&name.name)
                .or_else(|| request.header(&name.dashed))
                .or_else(|| request.header(&name.underscored))
                .map(Cow::Borrowed),
            CredentialsLocation::Authorization => None,
        }
    }
}

/// The first query argument named `name` (case-insensitive), percent-decoded.
/// A bare `name` without `=` counts as present and empty.
///
/// Same result as `form_urlencoded::parse(query).find(..)`, but only the
/// names holding `%` or `+` and the value found are decoded.
pub fn query_arg<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    for pair in query.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let found = if needs_decoding(key) {
            form_decode(key).eq_ignore_ascii_case(name)
        } else {
            key.eq_ignore_ascii_case(name)
        };
        if found {
            return Some(if needs_decoding(value) {
                Cow::Owned(form_decode(value).into_owned())
            } else {
                Cow::Borrowed(value)
            });
        }
    }
    None
}

#[inline]
fn needs_decoding(text: &str) -> bool {
    text.bytes().any(|b| b == b'%' || b == b'+')
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then
/// percent-decoding, invalid UTF-8 replaced.
fn form_decode(text: &str) -> Cow<'_, str> {
    let plus_free: Cow<'_, str> = if text.contains('+') {
        Cow::Owned(text.replace('+', " "))
    } else {
        Cow::Borrowed(text)
    };
    match percent_encoding::percent_decode_str(&plus_free).decode_utf8_lossy() {
        Cow::Borrowed(_) => plus_free,
        Cow::Owned(decoded) => Cow::Owned(decoded),
    }
}

enum AuthHeader {
    Basic { user: String, password: String },
    Bearer(String),
}

/// Parses `Basic <base64 user:password>` (split at the last `:`) or `Bearer <token>`.
fn parse_authorization(value: &str) -> Option<AuthHeader> {
    let value = value.trim_start();
    let scheme_end = value
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    let rest = rest.trim_start();
    match scheme {
        "Basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim_end())
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.rsplit_once(':')?;
            let password = password.trim_end_matches(['\n', '\r']);
            Some(AuthHeader::Basic {
                user: user.to_string(),
                password: password.to_string(),
            })
        }
        "Bearer" if !rest.is_empty() => Some(AuthHeader::Bearer(rest.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::prop;

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn query_user_key_first_occurrence_case_insensitive_and_empty_counts() {
        let c = CredentialsConfig::default();
        let r = SimpleRequest::get("/?USER_KEY=a%26b&user_key=second");
        assert_eq!(
            c.extract(BackendVersion::UserKey, &r),
            Some(AppCredentials::user_key("a&b"))
        );
        let r = SimpleRequest::get("/?user_key=");
        assert_eq!(
            c.extract(BackendVersion::UserKey, &r),
            Some(AppCredentials::user_key(""))
        );
        assert_eq!(
            c.extract(BackendVersion::UserKey, &SimpleRequest::get("/?x=1")),
            None
        );
    }

    /// The reference: the first pair `form_urlencoded` finds.
    fn reference<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    #[test]
    fn query_arg_decodes_as_form_urlencoded_does() {
        for (query, name) in [
            ("user_key=a+b%20c&x=1", "user_key"),
            ("x=1&&user%5Fkey=k%C3%A9&user_key=2", "user_key"),
            ("User+Key=1&user key=2", "user key"),
            ("user_key", "user_key"),
            ("user_key=%ZZ%e9+", "user_key"),
            ("a=1=2&user_key==", "user_key"),
            ("=&user_key=", "user_key"),
            ("", "user_key"),
            ("x=1", "user_key"),
        ] {
            assert_eq!(query_arg(query, name), reference(query, name), "{query}");
        }
    }

    proptest::proptest! {
        #[test]
        fn query_arg_agrees_with_form_urlencoded(
            query in "([a-zA-Z_%+=&2-5CEF]|%5F|%5f|%C3%A9|%FF){0,40}",
            name in prop::sample::select(vec!["user_key", "app_id", "user key", "a", ""]),
        ) {
            proptest::prop_assert_eq!(query_arg(&query, name), reference(&query, name));
        }
    }

    #[test]
    fn app_id_needs_both_parts() {
        let c = CredentialsConfig::default();
        let both = SimpleRequest::get("/?app_id=a&app_key=k");
        assert_eq!(
            c.extract(BackendVersion::AppId, &both),
            Some(AppCredentials::app_id_key("a", "k"))
        );
        assert_eq!(
            c.extract(BackendVersion::AppId, &SimpleRequest::get("/?app_key=k")),
            None
        );
        assert_eq!(
            c.extract(BackendVersion::AppId, &SimpleRequest::get("/?app_id=a")),
            None
        );
    }

    #[test]
    fn a_chain_takes_the_first_place_and_refuses_different_credentials() {
        let c = CredentialsConfig::new(CredentialsLocation::Headers)
            .fallback(CredentialsLocation::Query)
            .fallback(CredentialsLocation::Headers);
        assert_eq!(
            c.locations(),
            vec![CredentialsLocation::Headers, CredentialsLocation::Query]
        );
        let query = SimpleRequest::get("/?user_key=q");
        assert_eq!(
            c.find_checked(BackendVersion::UserKey, &query),
            Ok(Some(RequestCredentials::App(AppCredentials::user_key("q"))))
        );
        let same = SimpleRequest::get("/?user_key=k").header("user-key", "k");
        assert_eq!(
            c.extract(BackendVersion::UserKey, &same),
            Some(AppCredentials::user_key("k"))
        );
        assert!(c.find_checked(BackendVersion::UserKey, &same).is_ok());
        let two = SimpleRequest::get("/?user_key=q").header("user-key", "h");
        assert_eq!(
            c.find_checked(BackendVersion::UserKey, &two),
            Err(ConflictingCredentials)
        );
        // `find` alone takes the first place.
        assert_eq!(
            c.extract(BackendVersion::UserKey, &two),
            Some(AppCredentials::user_key("h"))
        );
        assert_eq!(
            c.find_checked(BackendVersion::UserKey, &SimpleRequest::get("/")),
            Ok(None)
        );
        // An app id without its key in a later place still counts.
        let partial = SimpleRequest::get("/?app_id=other")
            .header("app-id", "a")
            .header("app-key", "k");
        assert!(c.find_checked(BackendVersion::AppId, &partial).is_err());
        // OAuth: the Bearer token is the last place of a chain.
        let token = SimpleRequest::get("/?access_token=t1").header("Authorization", "Bearer t2");
        assert!(c.find_checked(BackendVersion::OAuth, &token).is_err());
        // One location: as before, the query token first, no conflict check.
        let single = CredentialsConfig::default();
        let Ok(Some(RequestCredentials::AccessToken(found))) =
            single.find_checked(BackendVersion::OAuth, &token)
        else {
            panic!("found")
        };
        assert_eq!(found.expose(), "t1");
    }

    #[test]
    fn headers_dash_and_underscore_alike() {
        let c = CredentialsConfig::new(CredentialsLocation::Headers);
        let r = SimpleRequest::get("/").header("User-Key", "k1");
        assert_eq!(
            c.extract(BackendVersion::UserKey, &r),
            Some(AppCredentials::user_key("k1"))
        );
    }

    #[test]
    fn authorization_basic_and_bearer() {
        let c = CredentialsConfig::new(CredentialsLocation::Authorization);
        let r = SimpleRequest::get("/").header("Authorization", basic("value:\n"));
        assert_eq!(
            c.extract(BackendVersion::UserKey, &r),
            Some(AppCredentials::user_key("value"))
        );
        let r = SimpleRequest::get("/").header("Authorization", basic("id:with:key"));
        assert_eq!(
            c.extract(BackendVersion::AppId, &r),
            Some(AppCredentials::app_id_key("id:with", "key"))
        );
        let r = SimpleRequest::get("/").header("Authorization", "Bearer tok");
        assert_eq!(
            c.extract(BackendVersion::UserKey, &r),
            Some(AppCredentials::user_key("tok"))
        );
        let r = SimpleRequest::get("/").header("Authorization", "Basic !123!");
        assert_eq!(c.extract(BackendVersion::UserKey, &r), None);
    }
}
