//! The backend listener's routes, told apart by method and path.

use axum::http::Method;

use crate::auth::AuthKind;

/// The listener's routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Options,
    Available,
    Auth(AuthKind),
    Report,
    Status,
    Check,
    NotFound,
}

impl Route {
    pub(crate) fn of(method: &Method, path: &str) -> Route {
        if method == Method::OPTIONS {
            return Route::Options;
        }
        let get = method == Method::GET || method == Method::HEAD;
        match path {
            "/available" if method == Method::HEAD => Route::Available,
            "/transactions/authorize.xml" if get => Route::Auth(AuthKind::Authorize),
            "/transactions/authrep.xml" if get => Route::Auth(AuthKind::Authrep),
            "/transactions/oauth_authorize.xml" if get => Route::Auth(AuthKind::OauthAuthorize),
            "/transactions/oauth_authrep.xml" if get => Route::Auth(AuthKind::OauthAuthrep),
            "/transactions.xml" if method == Method::POST => Route::Report,
            "/status" if get => Route::Status,
            "/check.txt" if get => Route::Check,
            _ => Route::NotFound,
        }
    }

    pub(crate) fn faultable(self) -> bool {
        matches!(self, Route::Auth(_) | Route::Report)
    }
}
