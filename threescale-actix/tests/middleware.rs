//! The actix-web middleware alone, driven with `actix_web::test` against the
//! emulator on 127.0.0.1: readiness, header merging, bypass, the `on_denied`
//! hook and the `Denial` in the response extensions.

use std::cell::Cell;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use actix_web::{
    App, Error, HttpMessage, HttpRequest, HttpResponse,
    dev::{Service, ServiceRequest, ServiceResponse, Transform},
    http::{StatusCode, header::HeaderValue},
    test, web,
};
use threescale_actix::ThreeScaleMiddleware;
use threescale_core::{AuthContext, Config, Denial, DenialKind};
use threescale_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

const BACKEND: &str = r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tok-1001"
    metrics:
      - { name: hits }
    plans:
      - name: basic
        limits:
          - { metric: hits, period: minute, value: 1000 }
      - name: small
        limits:
          - { metric: hits, period: minute, value: 1 }
    applications:
      - { plan: basic, user_key: "uk-basic" }
      - { plan: small, user_key: "uk-small" }
"#;

async fn emulator() -> EmulatorHandle {
    Emulator::start(EmulatorConfig::from_yaml_str(BACKEND).expect("emulator config"))
        .await
        .expect("emulator starts")
}

fn engine(emulator: &EmulatorHandle) -> threescale_core::ThreeScale {
    let config = Config::builder()
        .backend_url(emulator.url())
        .service_token("tok-1001", "1001")
        .rule("GET", "/orders", "hits", 1)
        .bypass_path("/health")
        .build()
        .expect("config");
    threescale_core::ThreeScale::new(config).expect("engine")
}

fn auth_calls(emulator: &EmulatorHandle) -> u64 {
    let stats = emulator.stats();
    stats.authorize + stats.authrep
}

/// Answers `inner` with the plan of the request's `AuthContext`, and headers of
/// its own.
async fn echo(request: HttpRequest) -> HttpResponse {
    let body = match request.extensions().get::<AuthContext>() {
        Some(context) => format!("inner plan={}", context.plan.as_deref().unwrap_or("-")),
        None => "inner no-context".to_string(),
    };
    HttpResponse::Ok()
        .append_header(("x-inner", "a"))
        .append_header(("x-inner", "b"))
        .content_type("application/json")
        .body(body)
}

/// A header's value, which must be there.
fn header<'a>(headers: &'a actix_web::http::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("header {name}"))
        .to_str()
        .expect("text")
}

fn body_text(bytes: actix_web::web::Bytes) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// An inner service whose readiness the test controls.
#[derive(Clone, Default)]
struct Gate {
    open: Rc<Cell<bool>>,
    broken: Rc<Cell<bool>>,
    calls: Rc<Cell<usize>>,
}

impl Service<ServiceRequest> for Gate {
    type Response = ServiceResponse;
    type Error = Error;
    type Future = Ready<Result<ServiceResponse, Error>>;

    fn poll_ready(&self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.broken.get() {
            Poll::Ready(Err(actix_web::error::ErrorServiceUnavailable(
                "inner overloaded",
            )))
        } else if self.open.get() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&self, request: ServiceRequest) -> Self::Future {
        self.calls.set(self.calls.get() + 1);
        ready(Ok(request.into_response(HttpResponse::Ok().body("gate"))))
    }
}

#[actix_web::test]
async fn a_pending_inner_service_keeps_the_middleware_pending() {
    let backend = emulator().await;
    let gate = Gate::default();
    let middleware = ThreeScaleMiddleware::new(engine(&backend))
        .new_transform(gate.clone())
        .await
        .expect("middleware");
    let mut cx = Context::from_waker(Waker::noop());
    assert!(middleware.poll_ready(&mut cx).is_pending());
    gate.open.set(true);
    assert!(matches!(
        middleware.poll_ready(&mut cx),
        Poll::Ready(Ok(()))
    ));
    let request = test::TestRequest::get()
        .uri("/orders?user_key=uk-basic")
        .to_srv_request();
    let response = middleware.call(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(test::read_body(response).await), "gate");
    assert_eq!(gate.calls.get(), 1);
}

#[actix_web::test]
async fn an_inner_readiness_error_is_returned() {
    let backend = emulator().await;
    let gate = Gate::default();
    gate.broken.set(true);
    let middleware = ThreeScaleMiddleware::new(engine(&backend))
        .new_transform(gate.clone())
        .await
        .expect("middleware");
    let mut cx = Context::from_waker(Waker::noop());
    match middleware.poll_ready(&mut cx) {
        Poll::Ready(Err(error)) => assert_eq!(error.to_string(), "inner overloaded"),
        _ => panic!("the inner's readiness error"),
    }
    assert_eq!(gate.calls.get(), 0);
    assert_eq!(auth_calls(&backend), 0);
}

#[actix_web::test]
async fn engine_headers_are_added_and_the_inner_headers_kept() {
    let backend = emulator().await;
    let app = test::init_service(
        App::new()
            .wrap(ThreeScaleMiddleware::new(engine(&backend)))
            .default_service(web::to(echo)),
    )
    .await;
    let request = test::TestRequest::get()
        .uri("/orders?user_key=uk-basic")
        .insert_header(("x-3scale-debug", "tok-1001"))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    let inner: Vec<_> = headers.get_all("x-inner").collect();
    assert_eq!(inner, ["a", "b"], "both values of the inner's header stay");
    assert_eq!(header(headers, "content-type"), "application/json");
    assert_eq!(header(headers, "ratelimit-limit"), "1000");
    assert_eq!(header(headers, "ratelimit-remaining"), "999");
    assert!(headers.contains_key("ratelimit-reset"));
    assert_eq!(header(headers, "x-3scale-service-id"), "1001");
    assert_eq!(header(headers, "x-3scale-usage"), "usage%5Bhits%5D=1");
    assert!(response.response().extensions().get::<Denial>().is_none());
    assert_eq!(
        body_text(test::read_body(response).await),
        "inner plan=basic"
    );
}

#[actix_web::test]
async fn a_bypassed_request_reaches_the_handler_unchecked() {
    let backend = emulator().await;
    let app = test::init_service(
        App::new()
            .wrap(ThreeScaleMiddleware::new(engine(&backend)))
            .default_service(web::to(echo)),
    )
    .await;
    let request = test::TestRequest::get().uri("/health/live").to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("ratelimit-limit").is_none());
    assert_eq!(response.headers().get_all("x-inner").count(), 2);
    assert!(response.response().extensions().get::<Denial>().is_none());
    assert_eq!(
        body_text(test::read_body(response).await),
        "inner no-context"
    );
    assert_eq!(auth_calls(&backend), 0);
}

#[actix_web::test]
async fn a_configured_denial_carries_the_denial_in_its_extensions() {
    let backend = emulator().await;
    let app = test::init_service(
        App::new()
            .wrap(ThreeScaleMiddleware::new(engine(&backend)))
            .default_service(web::to(echo)),
    )
    .await;
    // Decided without the backend.
    let request = test::TestRequest::get()
        .uri("/elsewhere?user_key=uk-basic")
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let kind = response
        .response()
        .extensions()
        .get::<Denial>()
        .map(|d| d.kind);
    assert_eq!(kind, Some(DenialKind::NoMatch));
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        body_text(test::read_body(response).await),
        "No Mapping Rule matched"
    );
    // Decided by the backend.
    let request = test::TestRequest::get()
        .uri("/orders?user_key=nobody")
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let denial = response
        .response()
        .extensions()
        .get::<Denial>()
        .cloned()
        .expect("denial");
    assert_eq!(denial.kind, DenialKind::AuthFailed);
    assert_eq!(denial.reason.as_deref(), Some("user_key_invalid"));
    assert_eq!(
        body_text(test::read_body(response).await),
        "Authentication failed"
    );
}

#[actix_web::test]
async fn an_outer_middleware_sees_the_denial() {
    use actix_web::dev::Service as _;
    let backend = emulator().await;
    let app = test::init_service(
        App::new()
            .wrap(ThreeScaleMiddleware::new(engine(&backend)))
            // Wrapped last: outside the 3scale middleware.
            .wrap_fn(|request, service| {
                let response = service.call(request);
                async move {
                    let mut response = response.await?;
                    let kind = response
                        .response()
                        .extensions()
                        .get::<Denial>()
                        .map(|denial| format!("{:?}", denial.kind));
                    if let Some(kind) = kind {
                        response.headers_mut().insert(
                            actix_web::http::header::HeaderName::from_static("x-denied"),
                            HeaderValue::from_str(&kind).unwrap(),
                        );
                    }
                    Ok(response)
                }
            })
            .default_service(web::to(echo)),
    )
    .await;
    let denied =
        test::call_service(&app, test::TestRequest::get().uri("/orders").to_request()).await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(denied.headers(), "x-denied"), "AuthMissing");
    let allowed = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/orders?user_key=uk-basic")
            .to_request(),
    )
    .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert!(allowed.headers().get("x-denied").is_none());
}

/// What the hook saw.
type Seen = Arc<Mutex<Vec<(DenialKind, String, String)>>>;

fn json_hook(seen: Seen) -> impl Fn(&Denial, &HttpRequest) -> HttpResponse + Send + Sync + 'static {
    move |denial: &Denial, request: &HttpRequest| {
        seen.lock().unwrap().push((
            denial.kind,
            request.method().to_string(),
            request.uri().to_string(),
        ));
        let mut response = match denial.kind {
            DenialKind::AuthMissing => HttpResponse::Unauthorized(),
            DenialKind::LimitsExceeded => HttpResponse::TooManyRequests(),
            _ => HttpResponse::Forbidden(),
        };
        response.content_type("application/json").body(format!(
            r#"{{"error":"{:?}","reason":"{}","retry_after":{}}}"#,
            denial.kind,
            denial.reason.as_deref().unwrap_or(""),
            denial
                .retry_after
                .map_or("null".to_string(), |s| s.to_string()),
        ))
    }
}

#[actix_web::test]
async fn on_denied_renders_a_denial_decided_at_once() {
    let backend = emulator().await;
    let seen = Seen::default();
    let handled = Rc::new(Cell::new(0));
    let counter = handled.clone();
    let app = test::init_service(
        App::new()
            .wrap(ThreeScaleMiddleware::new(engine(&backend)).on_denied(json_hook(seen.clone())))
            .default_service(web::to(move || {
                counter.set(counter.get() + 1);
                async { HttpResponse::Ok().finish() }
            })),
    )
    .await;
    let request = test::TestRequest::post().uri("/orders?x=1").to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(response.headers(), "content-type"),
        "application/json"
    );
    let kind = response
        .response()
        .extensions()
        .get::<Denial>()
        .map(|d| d.kind);
    assert_eq!(kind, Some(DenialKind::AuthMissing));
    assert_eq!(
        body_text(test::read_body(response).await),
        r#"{"error":"AuthMissing","reason":"","retry_after":null}"#
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(
            DenialKind::AuthMissing,
            "POST".to_string(),
            "/orders?x=1".to_string()
        )]
    );
    assert_eq!(handled.get(), 0, "handler not called");
    assert_eq!(auth_calls(&backend), 0);
}

#[actix_web::test]
async fn on_denied_renders_a_backend_denial_with_the_engine_headers() {
    let backend = emulator().await;
    let seen = Seen::default();
    let app = test::init_service(
        App::new()
            .wrap(ThreeScaleMiddleware::new(engine(&backend)).on_denied(json_hook(seen.clone())))
            .default_service(web::to(echo)),
    )
    .await;
    // The first call of the small plan passes, the second passes the limit.
    let first = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/orders?user_key=uk-small")
            .to_request(),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let request = test::TestRequest::get()
        .uri("/orders?user_key=uk-small")
        .insert_header(("x-3scale-debug", "tok-1001"))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers();
    assert_eq!(header(headers, "content-type"), "application/json");
    assert_eq!(header(headers, "ratelimit-limit"), "1");
    assert_eq!(header(headers, "ratelimit-remaining"), "0");
    assert_eq!(header(headers, "x-3scale-service-id"), "1001");
    assert!(headers.get("x-inner").is_none(), "handler not called");
    let denial = response
        .response()
        .extensions()
        .get::<Denial>()
        .cloned()
        .expect("denial");
    assert_eq!(denial.kind, DenialKind::LimitsExceeded);
    let after = denial.retry_after.expect("retry after");
    assert!((1..=60).contains(&after), "{after}");
    assert_eq!(
        body_text(test::read_body(response).await),
        format!(r#"{{"error":"LimitsExceeded","reason":"limits_exceeded","retry_after":{after}}}"#)
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Allowed requests never reach the hook.
    let allowed = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/orders?user_key=uk-basic")
            .to_request(),
    )
    .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(seen.lock().unwrap().len(), 1);
}
