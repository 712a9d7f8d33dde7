use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, request::Parts};
use threescale_core::AuthContext;

/// Axum extractor for the [`AuthContext`] of an allowed request.
///
/// ```
/// use threescale_tower::Auth;
/// async fn handler(Auth(ctx): Auth) -> String {
///     format!("plan {}", ctx.plan.as_deref().unwrap_or("unknown"))
/// }
/// let _app: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
/// ```
#[derive(Clone, Debug)]
pub struct Auth(pub AuthContext);

/// The route is not behind [`ThreeScaleLayer`](crate::ThreeScaleLayer) (or bypasses it).
#[derive(Clone, Copy, Debug)]
pub struct AuthRejection;

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "3scale AuthContext missing: is the route behind ThreeScaleLayer?",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthContext>()
            .cloned()
            .map(Auth)
            .ok_or(AuthRejection)
    }
}
