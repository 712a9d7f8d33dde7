//! 3scale API management as actix-web middleware: one `.wrap()`.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use threescale_core::{AuthContext, Config};
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let engine = threescale_core::ThreeScale::new(Config::from_env()?)?;
//!     let middleware = threescale_actix::ThreeScaleMiddleware::new(engine.clone());
//!     HttpServer::new(move || {
//!         App::new().wrap(middleware.clone()).route(
//!             "/orders/{id}",
//!             web::get().to(|ctx: web::ReqData<AuthContext>| async move {
//!                 format!("plan {:?}", ctx.plan)
//!             }),
//!         )
//!     })
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await?;
//!     engine.shutdown().await; // report what is still held
//!     Ok(())
//! }
//! ```
//!
//! Allowed requests reach the handler with an [`AuthContext`] (as
//! `web::ReqData<AuthContext>`); denied requests get the configured error
//! response, as an `EitherBody` right side, or the response of the user's
//! hook ([`ThreeScaleMiddleware::on_denied`]). Either way the [`Denial`] is in the
//! response's extensions, for outer middleware to see, and the response gets
//! the engine's rate-limit (and, on request, debug) headers.
//!
//! ```
//! use actix_web::{App, HttpResponse, http::StatusCode, test, web};
//! use threescale_core::{Config, Denial};
//!
//! # actix_web::rt::System::new().block_on(async {
//! let config = Config::builder()
//!     .service_token("token", "42")
//!     .rule("GET", "/orders/{id}", "hits", 1)
//!     .build()
//!     .unwrap();
//! let engine = threescale_core::ThreeScale::new(config).unwrap();
//! let middleware = threescale_actix::ThreeScaleMiddleware::new(engine).on_denied(|denial, request| {
//!     HttpResponse::Unauthorized()
//!         .content_type("application/json")
//!         .body(format!(r#"{{"error":"{:?}","path":"{}"}}"#, denial.kind, request.path()))
//! });
//! let app = test::init_service(
//!     App::new()
//!         .wrap(middleware)
//!         .route("/orders/{id}", web::get().to(|| async { "order" })),
//! )
//! .await;
//!
//! // No credentials: decided at once, without asking the backend.
//! let request = test::TestRequest::get().uri("/orders/7").to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! let kind = response.response().extensions().get::<Denial>().map(|d| d.kind);
//! assert_eq!(kind, Some(threescale_core::DenialKind::AuthMissing));
//! let body = test::read_body(response).await;
//! assert_eq!(&body[..], br#"{"error":"AuthMissing","path":"/orders/7"}"#);
//! # });
//! ```

#![deny(unsafe_code)]
#![deny(unreachable_pub)]
#![warn(missing_docs)]

use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::{
    Error, HttpMessage, HttpRequest, HttpResponse,
    body::{EitherBody, MessageBody},
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
    http::header::{HeaderName, HeaderValue},
};
use futures_util::future::LocalBoxFuture;
use threescale_core::{Action, ErrorResponse, RequestView, Step};

pub use threescale_core::{AddedUsage, AuthContext, Denial, DenialKind};

/// The user's function rendering denied requests (see [`ThreeScaleMiddleware::on_denied`]).
type OnDenied = Arc<dyn Fn(&Denial, &HttpRequest) -> HttpResponse + Send + Sync>;

/// The middleware factory: `App::new().wrap(ThreeScaleMiddleware::new(engine))`.
///
/// ```
/// use threescale_core::Config;
/// let config = Config::builder().service_token("token", "42").build().unwrap();
/// let engine = threescale_core::ThreeScale::new(config).unwrap();
/// let _app = actix_web::App::new().wrap(threescale_actix::ThreeScaleMiddleware::new(engine));
/// ```
#[derive(Clone)]
pub struct ThreeScaleMiddleware {
    engine: threescale_core::ThreeScale,
    on_denied: Option<OnDenied>,
}

impl std::fmt::Debug for ThreeScaleMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreeScaleMiddleware")
            .field("engine", &self.engine)
            .field("on_denied", &self.on_denied.as_ref().map(|_| ".."))
            .finish()
    }
}

impl ThreeScaleMiddleware {
    /// Middleware over `engine` (clone the engine to keep a handle for `shutdown`).
    pub fn new(engine: threescale_core::ThreeScale) -> Self {
        ThreeScaleMiddleware {
            engine,
            on_denied: None,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &threescale_core::ThreeScale {
        &self.engine
    }

    /// Renders denied requests with `render` instead of the configured error
    /// responses. It gets the [`Denial`] (kind, backend reason, `retry_after`,
    /// rate-limit figures) and the request, and answers with an
    /// [`HttpResponse`]. The middleware adds the engine's rate-limit and debug
    /// headers to it and puts the `Denial` into its extensions; `Retry-After`
    /// is the hook's to set (from `denial.retry_after`).
    ///
    /// ```
    /// use actix_web::HttpResponse;
    /// use threescale_core::{Config, DenialKind};
    ///
    /// let config = Config::builder().service_token("token", "42").build().unwrap();
    /// let engine = threescale_core::ThreeScale::new(config).unwrap();
    /// let middleware = threescale_actix::ThreeScaleMiddleware::new(engine).on_denied(|denial, request| {
    ///     let body = format!(r#"{{"error":"{:?}","path":"{}"}}"#, denial.kind, request.path());
    ///     match denial.kind {
    ///         DenialKind::AuthMissing => HttpResponse::Unauthorized(),
    ///         _ => HttpResponse::Forbidden(),
    ///     }
    ///     .content_type("application/json")
    ///     .body(body)
    /// });
    /// let _app = actix_web::App::new().wrap(middleware);
    /// ```
    pub fn on_denied(
        mut self,
        render: impl Fn(&Denial, &HttpRequest) -> HttpResponse + Send + Sync + 'static,
    ) -> Self {
        self.on_denied = Some(Arc::new(render));
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for ThreeScaleMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = ThreeScaleMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ThreeScaleMiddlewareService {
            service: Rc::new(service),
            engine: self.engine.clone(),
            on_denied: self.on_denied.clone(),
        }))
    }
}

/// The middleware service made by [`ThreeScaleMiddleware`].
pub struct ThreeScaleMiddlewareService<S> {
    service: Rc<S>,
    engine: threescale_core::ThreeScale,
    on_denied: Option<OnDenied>,
}

impl<S> std::fmt::Debug for ThreeScaleMiddlewareService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreeScaleMiddlewareService")
            .field("engine", &self.engine)
            .field("on_denied", &self.on_denied.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// A [`RequestView`] over an actix `ServiceRequest`.
#[derive(Debug)]
pub struct ActixRequestView<'a>(pub &'a ServiceRequest);

impl RequestView for ActixRequestView<'_> {
    fn method(&self) -> &str {
        self.0.method().as_str()
    }
    fn path(&self) -> &str {
        self.0.uri().path()
    }
    fn query(&self) -> Option<&str> {
        self.0.uri().query()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.0.headers().get(name).and_then(|v| v.to_str().ok())
    }
    fn host(&self) -> Option<&str> {
        self.0.uri().host().or_else(|| self.header("host"))
    }
}

impl<S, B> Service<ServiceRequest> for ThreeScaleMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let engine = self.engine.clone();
        let on_denied = self.on_denied.clone();
        let step = engine.begin(&ActixRequestView(&request));
        Box::pin(async move {
            let outcome = match step {
                Step::Done(outcome) => outcome,
                Step::Pending(pending) => pending.run().await,
            };
            match engine.action(outcome) {
                Action::Forward {
                    context,
                    headers,
                    completion,
                } => {
                    if let Some(context) = context {
                        request.extensions_mut().insert(context);
                    }
                    let mut response = match service.call(request).await {
                        Ok(response) => response,
                        Err(error) => {
                            // actix answers the error with its status.
                            let status = error.as_response_error().status_code().as_u16();
                            completion.finish(status, None);
                            return Err(error);
                        }
                    };
                    // Taken out, so that an outer middleware does not count it again.
                    let added = response
                        .response_mut()
                        .extensions_mut()
                        .remove::<AddedUsage>();
                    completion.finish(response.status().as_u16(), added.as_ref());
                    copy_headers(response.headers_mut(), headers);
                    Ok(response.map_into_left_body())
                }
                Action::Respond {
                    denial,
                    response,
                    headers,
                } => {
                    let mut response = match &on_denied {
                        Some(render) => render(&denial, request.request()),
                        None => error_response(response),
                    };
                    copy_headers(response.headers_mut(), headers);
                    response.extensions_mut().insert(denial);
                    Ok(request.into_response(response).map_into_right_body())
                }
            }
        })
    }
}

/// Adds the engine's headers, each replacing a header of the same name (the
/// core's headers are `http` 1 types, actix-web's `http` 0.2: copied by bytes).
fn copy_headers(out: &mut actix_web::http::header::HeaderMap, headers: http::HeaderMap) {
    let mut last = None;
    for (name, value) in headers {
        let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) else {
            continue;
        };
        match name {
            Some(name) => {
                if let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes()) {
                    out.insert(name.clone(), value);
                    last = Some(name);
                } else {
                    last = None;
                }
            }
            // Further values of the header just named.
            None => {
                if let Some(name) = &last {
                    out.append(name.clone(), value);
                }
            }
        }
    }
}

fn error_response(error: ErrorResponse) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(error.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
    let mut response = HttpResponse::build(status);
    if let Ok(value) = HeaderValue::from_bytes(error.content_type.as_bytes()) {
        response.insert_header((actix_web::http::header::CONTENT_TYPE, value));
    }
    for (name, value) in &error.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.insert_header((name, value));
        }
    }
    response.body(error.body)
}
