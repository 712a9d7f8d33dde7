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

/// rack-protection's `PathTraversal` cleanup: `%2e`, `%2f` and `%5c` unescaped,
/// backslashes read as slashes, empty and `.` segments dropped, `..` removing the
/// previous one; a trailing slash is kept.
pub(crate) fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut unescaped = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        unescaped.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3).map(str::to_ascii_lowercase);
        match code.as_deref() {
            Some("2e") => unescaped.push('.'),
            Some("2f") | Some("5c") => unescaped.push('/'),
            _ => {
                unescaped.push('%');
                rest = &rest[at + 1..];
                continue;
            }
        }
        rest = &rest[at + 3..];
    }
    unescaped.push_str(rest);
    let unescaped = unescaped.replace('\\', "/");
    let mut parts: Vec<&str> = Vec::new();
    for part in unescaped.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut cleaned = format!("/{}", parts.join("/"));
    if !parts.is_empty()
        && (unescaped.ends_with('/') || unescaped.ends_with("/.") || unescaped.ends_with("/.."))
    {
        cleaned.push('/');
    }
    cleaned
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_like_rack_protection() {
        assert_eq!(
            clean_path("/transactions/authorize.xml"),
            "/transactions/authorize.xml"
        );
        assert_eq!(
            clean_path("//transactions//authorize.xml"),
            "/transactions/authorize.xml"
        );
        assert_eq!(
            clean_path("/./transactions/x/../authorize.xml"),
            "/transactions/authorize.xml"
        );
        assert_eq!(
            clean_path("/transactions%2Fauthorize.xml"),
            "/transactions/authorize.xml"
        );
        assert_eq!(
            clean_path("/transactions%2e%2e%2fstatus"),
            "/transactions../status"
        );
        assert_eq!(clean_path("/a/%2E%2E/status"), "/status");
        assert_eq!(clean_path("/x\\..\\status"), "/status");
        assert_eq!(clean_path("/status/"), "/status/");
        assert_eq!(clean_path("/../.."), "/");
        assert_eq!(clean_path("/100%"), "/100%");
    }
}
