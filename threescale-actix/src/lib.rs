//! 3scale API management as actix-web middleware: one `.wrap()`.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use threescale_core::{AuthContext, Config};
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let engine = threescale_core::ThreeScale::new(Config::from_env()?)?;
//!     let middleware = threescale_actix::ThreeScale::new(engine.clone());
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
//! response, as an `EitherBody` right side.

#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::{
    Error, HttpMessage, HttpResponse,
    body::{EitherBody, MessageBody},
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
    http::header::{HeaderName, HeaderValue},
};
use futures_util::future::LocalBoxFuture;
use threescale_core::{Decision, ErrorResponse, RequestView, Step};

pub use threescale_core::AuthContext;

/// The middleware factory: `App::new().wrap(ThreeScale::new(engine))`.
///
/// ```
/// use threescale_core::Config;
/// let config = Config::builder().service_token("token", "42").build().unwrap();
/// let engine = threescale_core::ThreeScale::new(config).unwrap();
/// let _app = actix_web::App::new().wrap(threescale_actix::ThreeScale::new(engine));
/// ```
#[derive(Clone, Debug)]
pub struct ThreeScale {
    engine: threescale_core::ThreeScale,
}

impl ThreeScale {
    /// Middleware over `engine` (clone the engine to keep a handle for `shutdown`).
    pub fn new(engine: threescale_core::ThreeScale) -> Self {
        ThreeScale { engine }
    }

    /// The engine.
    pub fn engine(&self) -> &threescale_core::ThreeScale {
        &self.engine
    }
}

impl<S, B> Transform<S, ServiceRequest> for ThreeScale
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = ThreeScaleMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ThreeScaleMiddleware {
            service: Rc::new(service),
            engine: self.engine.clone(),
        }))
    }
}

/// The middleware service made by [`ThreeScale`].
#[derive(Debug)]
pub struct ThreeScaleMiddleware<S> {
    service: Rc<S>,
    engine: threescale_core::ThreeScale,
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
}

impl<S, B> Service<ServiceRequest> for ThreeScaleMiddleware<S>
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
        let step = engine.begin(&ActixRequestView(&request));
        Box::pin(async move {
            let outcome = match step {
                Step::Done(outcome) => outcome,
                Step::Pending(pending) => pending.run().await,
            };
            match outcome.decision {
                Decision::Allow(context) => {
                    request.extensions_mut().insert(*context);
                    let mut response = service.call(request).await?;
                    copy_headers(response.headers_mut(), outcome.headers);
                    Ok(response.map_into_left_body())
                }
                Decision::Bypass => Ok(service.call(request).await?.map_into_left_body()),
                Decision::Deny(denial) => {
                    let error = engine.error_response(&denial);
                    let mut response = error_response(error);
                    copy_headers(response.headers_mut(), outcome.headers);
                    Ok(request.into_response(response).map_into_right_body())
                }
            }
        })
    }
}

fn copy_headers(out: &mut actix_web::http::header::HeaderMap, headers: http::HeaderMap) {
    for (name, value) in headers {
        if let Some(name) = name
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            out.insert(name, value);
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
