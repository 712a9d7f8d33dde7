use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use threescale_core::{Decision, ErrorResponse, Outcome, ThreeScale};
use tower_service::Service;

use crate::ResponseBody;

type CheckFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

pin_project! {
    /// The response future of [`ThreeScaleService`](crate::ThreeScaleService).
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Checking {
            check: CheckFuture,
            request: Option<Request<ReqBody>>,
            service: Option<S>,
            engine: ThreeScale,
        },
        Inner {
            #[pin]
            future: S::Future,
            headers: HeaderMap,
        },
        Denied {
            response: Option<(ErrorResponse, HeaderMap)>,
        },
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn inner(future: S::Future, headers: HeaderMap) -> Self {
        ResponseFuture {
            state: State::Inner { future, headers },
        }
    }

    pub(crate) fn denied(response: ErrorResponse, headers: HeaderMap) -> Self {
        ResponseFuture {
            state: State::Denied {
                response: Some((response, headers)),
            },
        }
    }

    pub(crate) fn checking(
        check: CheckFuture,
        request: Request<ReqBody>,
        service: S,
        engine: ThreeScale,
    ) -> Self {
        ResponseFuture {
            state: State::Checking {
                check,
                request: Some(request),
                service: Some(service),
                engine,
            },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Checking {
                    check,
                    request,
                    service,
                    engine,
                } => {
                    let outcome = ready!(check.as_mut().poll(cx));
                    let (Some(mut request), Some(mut service)) = (request.take(), service.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let next = match outcome.decision {
                        Decision::Allow(context) => {
                            request.extensions_mut().insert(*context);
                            State::Inner {
                                future: service.call(request),
                                headers: outcome.headers,
                            }
                        }
                        Decision::Bypass => State::Inner {
                            future: service.call(request),
                            headers: outcome.headers,
                        },
                        Decision::Deny(denial) => State::Denied {
                            response: Some((engine.error_response(&denial), outcome.headers)),
                        },
                    };
                    this.state.set(next);
                }
                StateProj::Inner { future, headers } => {
                    let response = ready!(future.poll(cx))?;
                    let (mut parts, body) = response.into_parts();
                    for (name, value) in headers.drain() {
                        if let Some(name) = name {
                            parts.headers.insert(name, value);
                        }
                    }
                    return Poll::Ready(Ok(Response::from_parts(parts, ResponseBody::inner(body))));
                }
                StateProj::Denied { response } => {
                    let (error, headers) = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(error_response(error, headers)));
                }
            }
        }
    }
}

fn error_response<B>(error: ErrorResponse, headers: HeaderMap) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::full(error.body));
    *response.status_mut() = error.status;
    let out = response.headers_mut();
    out.insert(http::header::CONTENT_TYPE, error.content_type);
    for (name, value) in error.headers {
        out.insert(name, value);
    }
    for (name, value) in headers {
        if let Some(name) = name {
            out.insert(name, value);
        }
    }
    response
}
