use std::task::{Context, Poll};

use http::{Request, Response};
use threescale_core::{Decision, RequestView, Step, ThreeScale};
use tower_service::Service;

use crate::{ResponseBody, future::ResponseFuture};

/// A [`RequestView`] over an `http::Request`, borrowing it.
#[derive(Debug)]
pub struct HttpRequestView<'a, B>(pub &'a Request<B>);

impl<B> RequestView for HttpRequestView<'_, B> {
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

/// The service made by [`ThreeScaleLayer`](crate::ThreeScaleLayer).
#[derive(Clone, Debug)]
pub struct ThreeScaleService<S> {
    inner: S,
    engine: ThreeScale,
}

impl<S> ThreeScaleService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, engine: ThreeScale) -> Self {
        ThreeScaleService { inner, engine }
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ThreeScaleService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.engine.begin(&HttpRequestView(&request)) {
            Step::Done(outcome) => match outcome.decision {
                Decision::Allow(context) => {
                    request.extensions_mut().insert(*context);
                    ResponseFuture::inner(self.inner.call(request), outcome.headers)
                }
                Decision::Bypass => {
                    ResponseFuture::inner(self.inner.call(request), outcome.headers)
                }
                Decision::Deny(denial) => {
                    ResponseFuture::denied(self.engine.error_response(&denial), outcome.headers)
                }
            },
            Step::Pending(pending) => {
                // The instance that was made ready runs later; keep a fresh clone here.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::checking(
                    Box::pin(pending.run()),
                    request,
                    ready,
                    self.engine.clone(),
                )
            }
        }
    }
}
