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
    AuthContext, Decision, Denial, ErrorResponse, RequestView, engine::Outcome, engine::ThreeScale,
};

/// What an adapter does with a request once the engine has decided.
#[derive(Debug)]
pub enum Action {
    /// Call the inner service.
    Forward {
        /// The caller's context, to insert into the request's extensions
        /// (`None` for a path that bypasses 3scale). Boxed as in
        /// [`Decision::Allow`], so that the action stays small when moved.
        context: Option<Box<AuthContext>>,
        /// Headers to add to the inner service's response (rate-limit and
        /// debug headers). Each replaces a header of the same name; the inner
        /// response's other headers stay.
        headers: HeaderMap,
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
        let Outcome { decision, headers } = outcome;
        match decision {
            Decision::Allow(context) => Action::Forward {
                context: Some(context),
                headers,
            },
            Decision::Bypass => Action::Forward {
                context: None,
                headers,
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
}
