//! [`Action`]: the one contract between the engine and a web framework adapter.
//!
//! An adapter asks the engine for an [`Outcome`] ([`ThreeScale::begin`], then
//! [`PendingCheck::run`](crate::PendingCheck::run) when the backend must be
//! asked), turns it into an [`Action`] with [`ThreeScale::action`], and does
//! what the action says:
//!
//! - [`Action::Forward`]: put the [`AuthContext`] (if any) into the request's
//!   extensions, call the inner service, and add `headers` to its response;
//! - [`Action::Respond`]: do not call the inner service; answer with `response`
//!   (or whatever the user's denial hook renders from `denial`), add `headers`,
//!   and put the [`Denial`] into the response's extensions.
//!
//! The mapping from allow / bypass / deny to these two cases is written once,
//! here, for every adapter.
//!
//! ```
//! use http::{HeaderMap, Request};
//! use threescale_core::{Action, Config, DenialKind, Step, ThreeScale};
//!
//! let config = Config::builder().service_token("token", "42").build().unwrap();
//! let engine = ThreeScale::new(config).unwrap();
//! // No credentials: the engine decides at once, without the backend.
//! let request = Request::get("/orders/1").body(()).unwrap();
//! let Step::Done(outcome) = engine.begin(&request) else { unreachable!() };
//! match engine.action(outcome) {
//!     Action::Respond { denial, response, headers } => {
//!         assert_eq!(denial.kind, DenialKind::AuthMissing);
//!         assert_eq!(response.status, 401);
//!         let mut out = HeaderMap::new();
//!         threescale_core::action::merge_headers(&mut out, headers);
//!     }
//!     Action::Forward { .. } => unreachable!(),
//! }
//! ```

use http::HeaderMap;

use crate::{
    AuthContext, Completion, Decision, Denial, ErrorResponse, RequestView, engine::Outcome,
    engine::ThreeScale,
};

/// What an adapter does with a request once the engine has decided.
#[derive(Debug)]
// The context is carried unboxed (see `Decision`).
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Call the inner service.
    Forward {
        /// The caller's context, to insert into the request's extensions
        /// (`None` for a path that bypasses 3scale). Unboxed as in
        /// [`Decision::Allow`]: inserting it is the one allocation it costs.
        context: Option<AuthContext>,
        /// Headers to add to the inner service's response (rate-limit and
        /// debug headers). Each replaces a header of the same name; the inner
        /// response's other headers stay.
        headers: HeaderMap,
        /// Call [`Completion::finish`] with the inner response's status and
        /// the [`AddedUsage`](crate::AddedUsage) taken out of its extensions.
        completion: Completion,
    },
    /// Answer at once, without calling the inner service.
    Respond {
        /// Why. Adapters put it into the response's extensions, so that outer
        /// layers can see it, and hand it to the user's denial hook.
        denial: Denial,
        /// The configured answer for this denial ([`ThreeScale::error_response`]),
        /// used unless the user renders denials themselves.
        response: ErrorResponse,
        /// Headers to add to the answer, whoever renders it (rate-limit and
        /// debug headers), each replacing a header of the same name.
        headers: HeaderMap,
    },
}

impl Action {
    /// Whether the inner service is to be called.
    pub fn is_forward(&self) -> bool {
        matches!(self, Action::Forward { .. })
    }
}

impl ThreeScale {
    /// Turns the engine's verdict into what the adapter must do: allow and
    /// bypass forward the request (allow with its [`AuthContext`]), a denial
    /// responds with the configured [`ErrorResponse`].
    ///
    /// Moves what the outcome holds; no allocation except for a denial's
    /// configured response (a clone of the configured one).
    pub fn action(&self, outcome: Outcome) -> Action {
        let Outcome {
            decision,
            headers,
            completion,
        } = outcome;
        match decision {
            Decision::Allow(context) => Action::Forward {
                context: Some(context),
                headers,
                completion,
            },
            Decision::Bypass => Action::Forward {
                context: None,
                headers,
                completion,
            },
            Decision::Deny(denial) => Action::Respond {
                response: self.error_response(&denial),
                denial,
                headers,
            },
        }
    }
}

/// Adds `extra` to `target`: each header of `extra` replaces the values of the
/// same name in `target`; every other header of `target` stays.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use threescale_core::action::merge_headers;
/// let mut target = HeaderMap::new();
/// target.append("x-inner", HeaderValue::from_static("a"));
/// target.append("x-inner", HeaderValue::from_static("b"));
/// target.insert("ratelimit-remaining", HeaderValue::from_static("9"));
/// let mut extra = HeaderMap::new();
/// extra.insert("ratelimit-remaining", HeaderValue::from_static("4"));
/// merge_headers(&mut target, extra);
/// assert_eq!(target.get_all("x-inner").iter().count(), 2);
/// assert_eq!(target["ratelimit-remaining"], "4");
/// ```
pub fn merge_headers(target: &mut HeaderMap, extra: HeaderMap) {
    if extra.is_empty() {
        return;
    }
    // The iterator yields a name with the first value of each header only; later
    // values of the same name come without one and are appended after it.
    let mut last = None;
    for (name, value) in extra {
        match name {
            Some(name) => {
                target.insert(name.clone(), value);
                last = Some(name);
            }
            None => {
                if let Some(name) = &last {
                    target.append(name.clone(), value);
                }
            }
        }
    }
}

/// A borrowed `http::Request` is a [`RequestView`]: the tower adapter (and any
/// code holding an `http::Request`) checks requests without copying them.
///
/// ```
/// use threescale_core::RequestView;
/// let request = http::Request::get("/orders/1?user_key=k")
///     .header("X-Api", "1")
///     .body(())
///     .unwrap();
/// assert_eq!(RequestView::method(&request), "GET");
/// assert_eq!(RequestView::path(&request), "/orders/1");
/// assert_eq!(request.query(), Some("user_key=k"));
/// assert_eq!(RequestView::header(&request, "x-api"), Some("1"));
/// ```
impl<B> RequestView for http::Request<B> {
    fn method(&self) -> &str {
        http::Request::method(self).as_str()
    }
    fn path(&self) -> &str {
        self.uri().path()
    }
    fn query(&self) -> Option<&str> {
        self.uri().query()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers().get(name).and_then(|v| v.to_str().ok())
    }
    fn host(&self) -> Option<&str> {
        self.uri()
            .host()
            .or_else(|| RequestView::header(self, "host"))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, StatusCode};

    use super::*;
    use crate::{Config, DenialKind, ErrorResponse, Usage};

    fn engine() -> ThreeScale {
        let config = Config::builder()
            .service_token("token", "42")
            .error_response(
                DenialKind::AuthFailed,
                ErrorResponse::new(StatusCode::FORBIDDEN, "go away").content_type("text/x-test"),
            )
            .build()
            .unwrap();
        ThreeScale::new(config).unwrap()
    }

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    fn context() -> AuthContext {
        AuthContext {
            service_id: "42".into(),
            app_id: None,
            credential: crate::decision::CredentialKind::UserKey,
            plan: Some("basic".into()),
            usage: Usage::hits(),
            matched_rules: vec![0].into(),
            usage_reports: Vec::new(),
            rate_limit: None,
            degraded: false,
        }
    }

    #[test]
    fn allow_forwards_with_the_context_and_headers() {
        let outcome = Outcome {
            decision: Decision::Allow(context()),
            headers: headers("ratelimit-remaining", "4"),
            completion: Completion::default(),
        };
        match engine().action(outcome) {
            Action::Forward {
                context, headers, ..
            } => {
                assert_eq!(
                    context.as_ref().and_then(|c| c.plan.as_deref()),
                    Some("basic")
                );
                assert_eq!(headers["ratelimit-remaining"], "4");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bypass_forwards_without_a_context() {
        let outcome = Outcome {
            decision: Decision::Bypass,
            headers: HeaderMap::new(),
            completion: Completion::default(),
        };
        let action = engine().action(outcome);
        assert!(action.is_forward());
        assert!(matches!(action, Action::Forward { context: None, .. }));
    }

    #[test]
    fn deny_responds_with_the_configured_response() {
        let denial = Denial::new(DenialKind::AuthFailed).with_reason("user_key_invalid");
        let outcome = Outcome {
            decision: Decision::Deny(denial.clone()),
            headers: headers("x-3scale-service-id", "42"),
            completion: Completion::default(),
        };
        match engine().action(outcome) {
            Action::Respond {
                denial: got,
                response,
                headers,
            } => {
                assert_eq!(got, denial);
                assert_eq!(response.status, StatusCode::FORBIDDEN);
                assert_eq!(&response.body[..], b"go away");
                assert_eq!(response.content_type, "text/x-test");
                assert_eq!(headers["x-3scale-service-id"], "42");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_exceeded_responds_with_retry_after() {
        let mut denial = Denial::new(DenialKind::LimitsExceeded);
        denial.retry_after = Some(17);
        let outcome = Outcome {
            decision: Decision::Deny(denial),
            headers: HeaderMap::new(),
            completion: Completion::default(),
        };
        let Action::Respond { response, .. } = engine().action(outcome) else {
            panic!("a denial responds");
        };
        assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            response
                .headers
                .iter()
                .any(|(name, value)| name == http::header::RETRY_AFTER && value == "17")
        );
    }

    #[test]
    fn merging_replaces_same_names_and_keeps_the_rest() {
        let mut target = HeaderMap::new();
        target.append("x-inner", HeaderValue::from_static("a"));
        target.append("x-inner", HeaderValue::from_static("b"));
        target.insert("ratelimit-limit", HeaderValue::from_static("inner"));
        let mut extra = HeaderMap::new();
        extra.insert("ratelimit-limit", HeaderValue::from_static("5"));
        extra.append("x-multi", HeaderValue::from_static("1"));
        extra.append("x-multi", HeaderValue::from_static("2"));
        merge_headers(&mut target, extra);
        let inner: Vec<_> = target.get_all("x-inner").iter().collect();
        assert_eq!(inner, ["a", "b"]);
        let limit: Vec<_> = target.get_all("ratelimit-limit").iter().collect();
        assert_eq!(limit, ["5"]);
        let multi: Vec<_> = target.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["1", "2"]);
    }
}
