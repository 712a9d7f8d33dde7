//! The tower adapter alone, driven with `tower::ServiceExt` against the emulator
//! on 127.0.0.1: readiness, the ready instance answering, header merging,
//! bypass, the `on_denied` hook and the `Denial` in the response extensions.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use http_body_util::BodyExt;
use threescale_core::{AuthContext, Config, Denial, DenialKind, ThreeScale};
use threescale_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use threescale_tower::{OnDenied, ThreeScaleLayer};
use tower::{Layer, Service, ServiceExt};

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

fn engine(emulator: &EmulatorHandle) -> ThreeScale {
    let config = Config::builder()
        .backend_url(emulator.url())
        .service_token("tok-1001", "1001")
        .rule("GET", "/orders", "hits", 1)
        .bypass_path("/health")
        .build()
        .expect("config");
    ThreeScale::new(config).expect("engine")
}

fn auth_calls(emulator: &EmulatorHandle) -> u64 {
    let stats = emulator.stats();
    stats.authorize + stats.authrep
}

fn get(uri: &str) -> Request<String> {
    Request::get(uri).body(String::new()).expect("request")
}

async fn body_text<B>(response: Response<B>) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// An inner service that answers `inner` and says whether the request carried
/// an `AuthContext`, with headers of its own.
async fn echo_handler(request: Request<String>) -> Result<Response<String>, Infallible> {
    let context = request.extensions().get::<AuthContext>();
    let body = match context {
        Some(context) => format!("inner plan={}", context.plan.as_deref().unwrap_or("-")),
        None => "inner no-context".to_string(),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.append("x-inner", HeaderValue::from_static("a"));
    headers.append("x-inner", HeaderValue::from_static("b"));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    Ok(response)
}

macro_rules! echo {
    () => {
        tower::service_fn(echo_handler)
    };
}

/// An inner service whose readiness the test controls: pending while the gate
/// is closed, an error when it is broken. Counts its calls.
#[derive(Clone, Default)]
struct Gate {
    open: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Service<Request<String>> for Gate {
    type Response = Response<String>;
    type Error = &'static str;
    type Future = std::future::Ready<Result<Response<String>, &'static str>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.broken.load(Ordering::SeqCst) {
            Poll::Ready(Err("inner overloaded"))
        } else if self.open.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, _request: Request<String>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new("gate".to_string())))
    }
}

#[tokio::test]
async fn a_pending_inner_service_keeps_the_layer_pending() {
    let backend = emulator().await;
    let gate = Gate::default();
    let mut service = ThreeScaleLayer::new(engine(&backend)).layer(gate.clone());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_pending());
    assert!(service.poll_ready(&mut cx).is_pending());
    gate.open.store(true, Ordering::SeqCst);
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let response = service
        .call(get("/orders?user_key=uk-basic"))
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "gate");
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_inner_readiness_error_is_returned_and_nothing_is_checked() {
    let backend = emulator().await;
    let gate = Gate::default();
    gate.broken.store(true, Ordering::SeqCst);
    let service = ThreeScaleLayer::new(engine(&backend)).layer(gate.clone());
    let error = service
        .oneshot(get("/orders?user_key=uk-basic"))
        .await
        .expect_err("readiness error");
    assert_eq!(error, "inner overloaded");
    assert_eq!(gate.calls.load(Ordering::SeqCst), 0);
    assert_eq!(auth_calls(&backend), 0);
}

/// An inner service that tracks instances: every clone gets a new id and is
/// not ready; `call` fails on an instance that `poll_ready` did not prepare.
struct Tracked {
    id: usize,
    ready: bool,
    next_id: Arc<AtomicUsize>,
    /// (instance made ready, instance that answered)
    log: Arc<Mutex<Vec<(&'static str, usize)>>>,
}

impl Tracked {
    fn new() -> Self {
        Tracked {
            id: 0,
            ready: false,
            next_id: Arc::new(AtomicUsize::new(1)),
            log: Arc::default(),
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked {
            id: self.next_id.fetch_add(1, Ordering::SeqCst),
            ready: false,
            next_id: self.next_id.clone(),
            log: self.log.clone(),
        }
    }
}

impl Service<Request<String>> for Tracked {
    type Response = Response<String>;
    type Error = String;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, String>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.ready = true;
        self.log.lock().unwrap().push(("ready", self.id));
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<String>) -> Self::Future {
        if !std::mem::replace(&mut self.ready, false) {
            let id = self.id;
            return Box::pin(
                async move { Err(format!("instance {id} called without poll_ready")) },
            );
        }
        self.log.lock().unwrap().push(("call", self.id));
        Box::pin(async { Ok(Response::new("tracked".to_string())) })
    }
}

#[tokio::test]
async fn the_instance_made_ready_answers_after_the_backend_call() {
    let backend = emulator().await;
    let inner = Tracked::new();
    let log = inner.log.clone();
    let mut service = ThreeScaleLayer::new(engine(&backend)).layer(inner);
    for round in 0..2 {
        log.lock().unwrap().clear();
        // Sync mode: every check asks the backend, so the call waits for it.
        let future = service
            .ready()
            .await
            .expect("ready")
            .call(get("/orders?user_key=uk-basic"));
        // While the backend is asked, the service takes the next request on
        // another (fresh) instance: make it ready too.
        service.ready().await.expect("ready again");
        let response = future.await.expect("the ready instance answers");
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
        let log = log.lock().unwrap().clone();
        let (_, first_ready) = log[0];
        assert!(
            log.contains(&("call", first_ready)),
            "round {round}: the instance made ready first answers: {log:?}"
        );
        assert_eq!(log.iter().filter(|(what, _)| *what == "call").count(), 1);
        // Ready again without a call: the next round uses this one.
        let (_, second_ready) = log[1];
        assert_ne!(first_ready, second_ready, "a fresh instance was kept");
    }
    assert_eq!(auth_calls(&backend), 2);
}

#[tokio::test]
async fn the_instance_made_ready_answers_a_bypassed_request_at_once() {
    let backend = emulator().await;
    let inner = Tracked::new();
    let log = inner.log.clone();
    let mut service = ThreeScaleLayer::new(engine(&backend)).layer(inner);
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(get("/health"))
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(*log.lock().unwrap(), vec![("ready", 0), ("call", 0)]);
}

#[tokio::test]
async fn engine_headers_are_added_and_the_inner_headers_kept() {
    let backend = emulator().await;
    let service = ThreeScaleLayer::new(engine(&backend)).layer(echo!());
    let request = Request::get("/orders?user_key=uk-basic")
        .header("x-3scale-debug", "tok-1001")
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    let inner: Vec<_> = headers.get_all("x-inner").iter().collect();
    assert_eq!(inner, ["a", "b"], "both values of the inner's header stay");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["ratelimit-limit"], "1000");
    assert_eq!(headers["ratelimit-remaining"], "999");
    assert!(headers.contains_key("ratelimit-reset"));
    assert_eq!(headers["x-3scale-service-id"], "1001");
    assert_eq!(headers["x-3scale-usage"], "usage%5Bhits%5D=1");
    assert!(response.extensions().get::<Denial>().is_none());
    assert_eq!(body_text(response).await, "inner plan=basic");
}

#[tokio::test]
async fn a_bypassed_request_reaches_the_inner_service_unchecked() {
    let backend = emulator().await;
    let service = ThreeScaleLayer::new(engine(&backend)).layer(echo!());
    let response = service.oneshot(get("/health/live")).await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("ratelimit-limit").is_none());
    assert_eq!(response.headers().get_all("x-inner").iter().count(), 2);
    assert!(response.extensions().get::<Denial>().is_none());
    assert_eq!(body_text(response).await, "inner no-context");
    assert_eq!(auth_calls(&backend), 0);
}

#[tokio::test]
async fn a_configured_denial_carries_the_denial_in_its_extensions() {
    let backend = emulator().await;
    let service = ThreeScaleLayer::new(engine(&backend)).layer(echo!());
    // Decided without the backend.
    let response = service
        .clone()
        .oneshot(get("/elsewhere?user_key=uk-basic"))
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let denial = response.extensions().get::<Denial>().expect("denial");
    assert_eq!(denial.kind, DenialKind::NoMatch);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(body_text(response).await, "No Mapping Rule matched");
    // Decided by the backend.
    let response = service
        .oneshot(get("/orders?user_key=nobody"))
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let denial = response.extensions().get::<Denial>().expect("denial");
    assert_eq!(denial.kind, DenialKind::AuthFailed);
    assert_eq!(denial.reason.as_deref(), Some("user_key_invalid"));
    assert_eq!(body_text(response).await, "Authentication failed");
}

#[tokio::test]
async fn an_outer_layer_sees_the_denial() {
    let backend = emulator().await;
    let service = tower::ServiceBuilder::new()
        .map_response(|mut response: Response<_>| {
            let kind = response
                .extensions()
                .get::<Denial>()
                .map(|denial| format!("{:?}", denial.kind));
            if let Some(kind) = kind {
                response
                    .headers_mut()
                    .insert("x-denied", HeaderValue::from_str(&kind).unwrap());
            }
            response
        })
        .layer(ThreeScaleLayer::new(engine(&backend)))
        .service(echo!());
    let denied = service.clone().oneshot(get("/orders")).await.unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(denied.headers()["x-denied"], "AuthMissing");
    let allowed = service
        .oneshot(get("/orders?user_key=uk-basic"))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert!(allowed.headers().get("x-denied").is_none());
}

/// What the hook saw.
type Seen = Arc<Mutex<Vec<(DenialKind, String, String)>>>;

fn json_hook(seen: Seen) -> impl Fn(&Denial, &Parts) -> Response<String> + Clone + Send + Sync {
    move |denial: &Denial, parts: &Parts| {
        seen.lock()
            .unwrap()
            .push((denial.kind, parts.method.to_string(), parts.uri.to_string()));
        let status = match denial.kind {
            DenialKind::AuthMissing => StatusCode::UNAUTHORIZED,
            DenialKind::LimitsExceeded => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::FORBIDDEN,
        };
        let mut response = Response::new(format!(
            r#"{{"error":"{:?}","reason":"{}","retry_after":{}}}"#,
            denial.kind,
            denial.reason.as_deref().unwrap_or(""),
            denial
                .retry_after
                .map_or("null".to_string(), |s| s.to_string()),
        ));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        response
    }
}

#[tokio::test]
async fn on_denied_renders_a_denial_decided_at_once() {
    let backend = emulator().await;
    let seen = Seen::default();
    let gate = Gate::default();
    gate.open.store(true, Ordering::SeqCst);
    let service = ThreeScaleLayer::new(engine(&backend))
        .on_denied(json_hook(seen.clone()))
        .layer(gate.clone());
    let request = Request::post("/orders?x=1")
        .header("x-api-key", "not-looked-at")
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["content-type"], "application/json");
    let denial = response.extensions().get::<Denial>().expect("denial");
    assert_eq!(denial.kind, DenialKind::AuthMissing);
    assert_eq!(
        body_text(response).await,
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
    assert_eq!(gate.calls.load(Ordering::SeqCst), 0, "inner not called");
    assert_eq!(auth_calls(&backend), 0);
}

#[tokio::test]
async fn on_denied_renders_a_backend_denial_with_the_engine_headers() {
    let backend = emulator().await;
    let seen = Seen::default();
    let service = ThreeScaleLayer::new(engine(&backend))
        .on_denied(json_hook(seen.clone()))
        .layer(echo!());
    // The first call of the small plan passes, the second passes the limit.
    let first = service
        .clone()
        .oneshot(get("/orders?user_key=uk-small"))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let request = Request::get("/orders?user_key=uk-small")
        .header("x-3scale-debug", "tok-1001")
        .body(String::new())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["ratelimit-limit"], "1");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["x-3scale-service-id"], "1001");
    assert!(headers.get("x-inner").is_none(), "inner not called");
    let denial = response
        .extensions()
        .get::<Denial>()
        .expect("denial")
        .clone();
    assert_eq!(denial.kind, DenialKind::LimitsExceeded);
    let after = denial.retry_after.expect("retry after");
    assert!((1..=60).contains(&after), "{after}");
    assert_eq!(
        body_text(response).await,
        format!(r#"{{"error":"LimitsExceeded","reason":"limits_exceeded","retry_after":{after}}}"#)
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Allowed requests never reach the hook.
    let allowed = service
        .oneshot(get("/orders?user_key=uk-basic"))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// Renders only missing credentials; leaves the rest to the configuration.
#[derive(Clone)]
struct OnlyMissing;

impl OnDenied<String> for OnlyMissing {
    fn render(&self, denial: &Denial, _parts: &Parts) -> Option<Response<String>> {
        (denial.kind == DenialKind::AuthMissing).then(|| {
            let mut response = Response::new("who are you?".to_string());
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        })
    }
}

#[tokio::test]
async fn a_renderer_can_leave_denials_to_the_configuration() {
    let backend = emulator().await;
    let service = ThreeScaleLayer::new(engine(&backend))
        .on_denied_with(OnlyMissing)
        .layer(echo!());
    let missing = service.clone().oneshot(get("/orders")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.extensions().get::<Denial>().is_some());
    assert_eq!(body_text(missing).await, "who are you?");
    let unknown = service
        .oneshot(get("/orders?user_key=nobody"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        unknown.extensions().get::<Denial>().map(|d| d.kind),
        Some(DenialKind::AuthFailed)
    );
    assert_eq!(body_text(unknown).await, "Authentication failed");
}
