//! authorize, authrep, oauth_authorize and oauth_authrep: the backend's processing
//! order (credentials, service, application, validator chain, report), so that the
//! same first error wins.

use chrono::{DateTime, Utc};

use crate::errors::{BackendError, Rejection};
use crate::extensions::Extensions;
use crate::limit_headers::{self, HeaderReport, LimitHeaders};
use crate::model::{AppModel, LimitModel, Registry, ServiceModel};
use crate::params::{Params, Value};
use crate::request_info::ContextInfo;
use crate::store::Store;
use crate::usage::{get_from, process_usage, raw_value, ruby_strip, without_zeros};
use crate::xml::{self, AppSection, ReportLine, StatusDoc};

/// Which auth endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthKind {
    Authorize,
    Authrep,
    OauthAuthorize,
    OauthAuthrep,
}

impl AuthKind {
    fn oauth(self) -> bool {
        matches!(self, AuthKind::OauthAuthorize | AuthKind::OauthAuthrep)
    }

    fn reports(self) -> bool {
        matches!(self, AuthKind::Authrep | AuthKind::OauthAuthrep)
    }
}

/// The outcome of an auth call, before it becomes an HTTP response.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AuthReply {
    /// An error document (the backend's exception catcher).
    Error(BackendError),
    /// `usage` was not a hash: 403 with an empty body.
    Forbidden,
    /// 200 (authorized) or 409 (denied) with a status document.
    Status {
        authorized: bool,
        rejection_code: Option<&'static str>,
        /// `None` when `no_body` is on.
        xml: Option<String>,
        limit_headers: Option<LimitHeaders>,
    },
}

/// `normalize_non_empty_keys!`: strings only, blank ones become absent, not trimmed.
fn normalized(params: &Params, key: &str) -> Option<String> {
    match params.get(key) {
        Some(v @ Value::Str(_)) => {
            let s = v.as_str().unwrap_or("");
            (!ruby_strip(s).is_empty()).then(|| s.to_string())
        }
        _ => None,
    }
}

/// `ServiceToken.exists?` and `Service.provider_key_for`, with the listener's blank
/// checks on the token and the service id.
pub(crate) fn provider_key_from_token<'r>(
    reg: &'r Registry,
    token: Option<&Value>,
    service_id: Option<&str>,
) -> Option<&'r str> {
    match (token, service_id) {
        (Some(Value::Str(t)), Some(sid)) if !t.is_empty() && !sid.is_empty() => {
            reg.provider_key_for_token(&String::from_utf8_lossy(t), sid)
        }
        _ => None,
    }
}

/// `raise_provider_key_error`: the error when no provider key could be found.
pub(crate) fn provider_key_error(token: Option<&Value>, service_id: Option<&str>) -> BackendError {
    if token.is_none_or(Value::is_blank) {
        return BackendError::provider_key_or_service_token_required();
    }
    match service_id.filter(|s| !s.is_empty()) {
        None => BackendError::service_id_missing(),
        Some(sid) => {
            BackendError::service_token_invalid(&token.map(Value::display).unwrap_or_default(), sid)
        }
    }
}

/// Runs one auth call. The caller holds the store lock, so the check and the
/// increment of an authrep are atomic.
pub(crate) fn auth_call(
    kind: AuthKind,
    params: &Params,
    ext: &Extensions,
    reg: &Registry,
    store: &mut Store,
    now: DateTime<Utc>,
    context_info: impl FnOnce() -> ContextInfo,
) -> AuthReply {
    let mut known_pk = normalized(params, "provider_key");
    match run(kind, params, ext, reg, store, now, &mut known_pk) {
        Ok(reply) => reply,
        Err(e) => {
            let sid = normalized(params, "service_id");
            if let Some(svc) = reg.service_for_error_log(sid.as_deref(), known_pk.as_deref()) {
                store.log_error(svc, e.code, &e.message, context_info(), now);
            }
            AuthReply::Error(e)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Validator {
    Key,
    OauthKey,
    OauthSetting,
    RedirectUri,
    Referrer,
    State,
    ServiceState,
    Limits,
}

const VALIDATORS: &[Validator] = &[
    Validator::Key,
    Validator::Referrer,
    Validator::State,
    Validator::ServiceState,
    Validator::Limits,
];
const OIDC_VALIDATORS: &[Validator] = &[
    Validator::OauthKey,
    Validator::Referrer,
    Validator::State,
    Validator::ServiceState,
    Validator::Limits,
];
const OAUTH_VALIDATORS: &[Validator] = &[
    Validator::OauthSetting,
    Validator::OauthKey,
    Validator::RedirectUri,
    Validator::Referrer,
    Validator::State,
    Validator::ServiceState,
    Validator::Limits,
];

struct Ctx<'a> {
    params: &'a Params,
    ext: &'a Extensions,
    svc: &'a ServiceModel,
    app: &'a AppModel,
    limits: &'a [LimitModel],
    stored: &'a [i64],
    usage: Option<&'a Params>,
    app_key: Option<&'a str>,
}

impl Ctx<'_> {
    /// The `<status>` document of this call.
    fn status_xml(
        &self,
        kind: AuthKind,
        rejection: Option<&Rejection>,
        redirect_field: &'static str,
        currents: &[i64],
        now: DateTime<Utc>,
    ) -> String {
        let (svc, app) = (self.svc, self.app);
        let doc = StatusDoc {
            reason: rejection.map(|r| r.message.as_str()),
            application: kind.oauth().then(|| AppSection {
                id: &app.id,
                first_key: app.keys.first().map_or("", String::as_str),
                redirect_field,
                redirect_url: app.redirect_url.as_deref(),
            }),
            plan: svc.plan_name(app),
            reports: self
                .limits
                .iter()
                .zip(self.stored.iter().zip(currents))
                .map(|(l, (&stored, &current))| ReportLine {
                    metric: &svc.metrics[l.metric].name,
                    period: l.period,
                    now,
                    max_value: l.max,
                    current_value: current,
                    exceeded: stored > l.max,
                })
                .collect(),
            app_keys: self.ext.list_app_keys.then_some((
                app.id.as_str(),
                svc.id.as_str(),
                app.keys.as_slice(),
            )),
            hierarchy: self.ext.hierarchy.then(|| {
                self.limits
                    .iter()
                    .map(|l| {
                        (
                            svc.metrics[l.metric].name.as_str(),
                            svc.children_names(l.metric),
                        )
                    })
                    .collect()
            }),
        };
        xml::status_xml(&doc)
    }
}

fn run(
    kind: AuthKind,
    params: &Params,
    ext: &Extensions,
    reg: &Registry,
    store: &mut Store,
    now: DateTime<Utc>,
    known_pk: &mut Option<String>,
) -> Result<AuthReply, BackendError> {
    let service_id = normalized(params, "service_id");
    let token = params.get("service_token");
    let provider_key = match known_pk.clone() {
        Some(pk) => pk,
        None => provider_key_from_token(reg, token, service_id.as_deref())
            .map(str::to_string)
            .ok_or_else(|| provider_key_error(token, service_id.as_deref()))?,
    };
    if params
        .get("user_id")
        .is_some_and(|v| !matches!(v, Value::Nil))
    {
        return Err(BackendError::end_users_no_longer_supported());
    }
    let usage = match params.get("usage") {
        None | Some(Value::Nil) => None,
        Some(Value::Hash(h)) => Some(h),
        Some(_) => return Ok(AuthReply::Forbidden),
    };
    *known_pk = Some(provider_key.clone());

    let svc_idx = reg.load_with_provider_key(service_id.as_deref(), &provider_key)?;
    let svc = &reg.services[svc_idx];
    let oidc = !kind.oauth() && svc.is_oauth();
    let app_id = normalized(params, "app_id");
    let user_key = normalized(params, "user_key");
    if kind.oauth() && app_id.is_none() {
        return Err(BackendError::application_not_found(None));
    }
    if app_id.is_some() && user_key.is_some() {
        return Err(BackendError::authentication_error());
    }
    let app_idx = if svc.is_v1() {
        match user_key.as_deref().and_then(|k| svc.user_key_index.get(k)) {
            Some(&i) => i,
            None => return Err(BackendError::user_key_invalid(user_key.as_deref())),
        }
    } else {
        match app_id.as_deref().and_then(|id| svc.app_index.get(id)) {
            Some(&i) => i,
            None => return Err(BackendError::application_not_found(app_id.as_deref())),
        }
    };
    let app = &svc.apps[app_idx];

    if ext.no_body
        && let Some(u) = usage
    {
        for (name, _) in u.iter() {
            let name = String::from_utf8_lossy(name);
            if svc.metric(&name).is_none() {
                return Err(BackendError::metric_invalid(&name));
            }
        }
    }

    let limits = svc.limits_of(app);
    let stored: Vec<i64> = limits
        .iter()
        .map(|l| store.value(svc_idx, app_idx, l.metric, l.period, now))
        .collect();
    let app_key = match params.get("app_key") {
        Some(v @ Value::Str(_)) => Some(ruby_strip(v.as_str().unwrap_or(""))),
        _ => None,
    };
    let ctx = Ctx {
        params,
        ext,
        svc,
        app,
        limits,
        stored: &stored,
        usage,
        app_key,
    };

    let chain = if oidc {
        OIDC_VALIDATORS
    } else if kind.oauth() {
        OAUTH_VALIDATORS
    } else {
        VALIDATORS
    };
    let mut rejection: Option<Rejection> = None;
    let mut redirect_field = "redirect_url";
    for v in chain {
        if let Some(r) = validate(*v, &ctx, &mut redirect_field)? {
            rejection = Some(r);
            break;
        }
    }
    let authorized = rejection.is_none();

    // current_value: the stored value, plus this authrep's usage when authorized.
    let actual_usage = if kind.reports() { usage } else { None };
    let currents: Vec<i64> = limits
        .iter()
        .zip(&stored)
        .map(|(l, &s)| match actual_usage {
            Some(u) if authorized => with_descendants(svc, u, l.metric, s),
            _ => s,
        })
        .collect();

    let headers = (ext.limit_headers
        && (authorized
            || rejection
                .as_ref()
                .is_some_and(|r| r.code == "limits_exceeded")))
    .then(|| limit_header_values(svc, limits, &currents, usage, now));

    let xml = (!ext.no_body)
        .then(|| ctx.status_xml(kind, rejection.as_ref(), redirect_field, &currents, now));

    if authorized && kind.reports() {
        let filtered = usage.map(without_zeros).filter(|u| !u.is_empty());
        let code = crate::store::response_code(params.get("log"));
        let reported = match filtered {
            Some(f) => match process_usage(svc, &f, ext.flat_usage) {
                Ok(processed) => {
                    store.apply(svc_idx, app_idx, &processed, now);
                    true
                }
                Err(e) => {
                    // Found by the backend's report worker: no request context.
                    store.log_error(svc_idx, e.code, &e.message, ContextInfo::default(), now);
                    false
                }
            },
            // A `log[code]` alone is reported without usage: it changes no
            // counter, only the response-code stats.
            None => true,
        };
        if reported && let Some(code) = code {
            store.log_response_code(svc_idx, app_idx, code);
        }
    }

    Ok(AuthReply::Status {
        authorized,
        rejection_code: rejection.as_ref().map(|r| r.code),
        xml,
        limit_headers: headers,
    })
}

fn validate(
    v: Validator,
    c: &Ctx<'_>,
    redirect_field: &mut &'static str,
) -> Result<Option<Rejection>, BackendError> {
    let rejected = |ok: bool, r: fn() -> Rejection| if ok { None } else { Some(r()) };
    Ok(match v {
        Validator::Key => {
            let ok = c.svc.is_v1()
                || c.app.keys.is_empty()
                || c.app.keys.iter().any(|k| k == c.app_key.unwrap_or(""));
            (!ok).then(|| Rejection::application_key_invalid(c.app_key))
        }
        Validator::OauthKey => {
            let ok = match c.app_key {
                None => true,
                Some(k) => !k.is_empty() && c.app.keys.iter().any(|x| x == k),
            };
            (!ok).then(|| Rejection::application_key_invalid(c.app_key))
        }
        Validator::OauthSetting => rejected(c.svc.is_oauth(), Rejection::oauth_not_enabled),
        Validator::RedirectUri => {
            let (value, is_url) = if c.params.contains("redirect_url") {
                (c.params.get("redirect_url"), true)
            } else if c.params.contains("redirect_uri") {
                *redirect_field = "redirect_uri";
                (c.params.get("redirect_uri"), false)
            } else {
                (None, true)
            };
            match value {
                None => None,
                Some(v) if v.is_blank() => None,
                Some(v) if v.as_str().is_some() && v.as_str() == c.app.redirect_url.as_deref() => {
                    None
                }
                Some(v) => Some(if is_url {
                    Rejection::redirect_url_invalid(&v.display())
                } else {
                    Rejection::redirect_uri_invalid(&v.display())
                }),
            }
        }
        Validator::Referrer => {
            if c.svc.referrer_filters_required && !c.app.referrer_filters.is_empty() {
                let referrer = c.params.get("referrer").and_then(Value::as_str);
                let ok = c
                    .app
                    .referrer_filters
                    .iter()
                    .any(|f| referrer.is_some_and(|r| r == "*" || glob_match(f, r)));
                (!ok).then(|| Rejection::referrer_not_allowed(referrer))
            } else {
                None
            }
        }
        Validator::State => rejected(c.app.active, Rejection::application_not_active),
        Validator::ServiceState => rejected(c.svc.active, Rejection::service_not_active),
        Validator::Limits => {
            let ok = match c.usage {
                None => c.limits.iter().zip(c.stored).all(|(l, &s)| s <= l.max),
                Some(raw) => {
                    let processed = process_usage(c.svc, raw, c.ext.flat_usage)?;
                    c.limits.iter().zip(c.stored).all(|(l, &s)| {
                        let new = processed
                            .iter()
                            .find(|(m, _)| *m == l.metric)
                            .map_or(0, |(_, v)| v.apply_to(s));
                        new <= l.max
                    })
                }
            };
            rejected(ok, Rejection::limits_exceeded)
        }
    })
}

/// `get_from` of the metric's raw usage on `start`, then of each descendant's.
fn with_descendants(svc: &ServiceModel, usage: &Params, metric: usize, start: i64) -> i64 {
    let m = &svc.metrics[metric];
    let own = get_from(raw_value(usage, &m.name), start);
    m.descendants.iter().fold(own, |acc, &d| {
        get_from(raw_value(usage, &svc.metrics[d].name), acc)
    })
}

fn limit_header_values(
    svc: &ServiceModel,
    limits: &[LimitModel],
    currents: &[i64],
    usage: Option<&Params>,
    now: DateTime<Utc>,
) -> LimitHeaders {
    // Candidates: every report without usage; else the usage's metrics and ancestors.
    let wanted: Option<Vec<usize>> = usage.filter(|u| !u.is_empty()).map(|u| {
        let mut names = Vec::new();
        for (name, _) in u.iter() {
            if let Some(m) = svc.metric(&String::from_utf8_lossy(name)) {
                names.push(m);
                names.extend(svc.metrics[m].ancestors.iter().copied());
            }
        }
        names
    });
    let reports: Vec<HeaderReport> = limits
        .iter()
        .zip(currents)
        .filter(|(l, _)| wanted.as_ref().is_none_or(|w| w.contains(&l.metric)))
        .map(|(l, &current)| HeaderReport {
            period: l.period,
            max_value: l.max,
            current_value: current,
            usage: usage.map_or(0, |u| with_descendants(svc, u, l.metric, 0)),
        })
        .collect();
    limit_headers::compute(&reports, now)
}

/// A referrer filter: `*` matches any run of characters but a newline; everything
/// else is literal and the whole referrer must match.
pub(crate) fn glob_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    // reach[j]: the pattern prefix seen so far matches v[..j]
    let mut reach = vec![false; v.len() + 1];
    reach[0] = true;
    for &pc in &p {
        let mut next = vec![false; v.len() + 1];
        if pc == '*' {
            for j in 0..=v.len() {
                if reach[j] {
                    next[j] = true;
                    let mut k = j;
                    while k < v.len() && v[k] != '\n' {
                        k += 1;
                        next[k] = true;
                    }
                }
            }
        } else {
            for j in 0..v.len() {
                if reach[j] && v[j] == pc {
                    next[j + 1] = true;
                }
            }
        }
        reach = next;
    }
    reach[v.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_globs() {
        assert!(glob_match("*.bar.example.org", "foo.bar.example.org"));
        assert!(!glob_match("*.bar.example.org", "bar.example.org"));
        assert!(glob_match("example.org", "example.org"));
        assert!(!glob_match("example.org", "www.example.org"));
        assert!(!glob_match("example.org", "exampleXorg"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("*", "line\nbreak"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("", ""));
    }
}
