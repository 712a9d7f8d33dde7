use std::task::{Context, Poll};

use http::{Request, Response};
use threescale_core::{RequestView, Step, ThreeScale};
use tower_service::Service;

use crate::{Configured, OnDenied, ResponseBody, future::ResponseFuture};

/// A [`RequestView`] over an `http::Request`, borrowing it.
#[deprecated(
    since = "0.1.0",
    note = "`http::Request` implements `RequestView` itself: pass `&request`"
)]
#[derive(Debug)]
pub struct HttpRequestView<'a, B>(pub &'a Request<B>);

#[allow(deprecated)]
impl<B> RequestView for HttpRequestView<'_, B> {
    fn method(&self) -> &str {
        RequestView::method(self.0)
    }
    fn path(&self) -> &str {
        RequestView::path(self.0)
    }
    fn query(&self) -> Option<&str> {
        RequestView::query(self.0)
    }
    fn header(&self, name: &str) -> Option<&str> {
        RequestView::header(self.0, name)
    }
}

/// The service made by [`ThreeScaleLayer`](crate::ThreeScaleLayer).
///
/// `D` renders denied requests (see [`OnDenied`]).
#[derive(Clone, Debug)]
pub struct ThreeScaleService<S, D = Configured> {
    inner: S,
    engine: ThreeScale,
    on_denied: D,
}

impl<S> ThreeScaleService<S> {
    /// Wraps `inner`; denials get the configured responses.
    pub fn new(inner: S, engine: ThreeScale) -> Self {
        ThreeScaleService::with_renderer(inner, engine, Configured)
    }
}

impl<S, D> ThreeScaleService<S, D> {
    /// Wraps `inner`; denials are rendered by `on_denied`.
    pub fn with_renderer(inner: S, engine: ThreeScale, on_denied: D) -> Self {
        ThreeScaleService {
            inner,
            engine,
            on_denied,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, D, ReqBody, ResBody> Service<Request<ReqBody>> for ThreeScaleService<S, D>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    D: OnDenied<ResBody> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, D>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.engine.begin(&request) {
            // The instance made ready by `poll_ready` answers now.
            Step::Done(outcome) => ResponseFuture::decided(
                self.engine.action(outcome),
                request,
                &mut self.inner,
                &self.on_denied,
            ),
            Step::Pending(pending) => {
                // The instance that was made ready runs later; keep a fresh clone here.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::checking(
                    Box::pin(pending.run()),
                    request,
                    ready,
                    self.engine.clone(),
                    self.on_denied.clone(),
                )
            }
        }
    }
}
