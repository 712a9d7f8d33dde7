use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use threescale_core::{
    Action, AddedUsage, Completion, Denial, ErrorResponse, Outcome, ThreeScale,
    action::merge_headers,
};
use tower_service::Service;

use crate::{Configured, OnDenied, ResponseBody};

type CheckFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

pin_project! {
    /// The response future of [`ThreeScaleService`](crate::ThreeScaleService).
    pub struct ResponseFuture<S, ReqBody, D = Configured>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, D>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, D>
    where
        S: Service<Request<ReqBody>>,
    {
        Checking {
            check: CheckFuture,
            request: Option<Request<ReqBody>>,
            service: Option<S>,
            engine: ThreeScale,
            on_denied: D,
        },
        Inner {
            #[pin]
            future: S::Future,
            headers: HeaderMap,
            completion: Completion,
        },
        Denied {
            response: Option<Denied<S::Response>>,
        },
    }
}

/// A denied request's answer, before its body is wrapped.
// `R` is a whole `http::Response`, about as large as the other variant.
#[allow(clippy::large_enum_variant)]
enum Denied<R> {
    /// The configured response, with the engine's headers and the denial still to add.
    Configured {
        response: ErrorResponse,
        headers: HeaderMap,
        denial: Denial,
    },
    /// The user's response, complete.
    Rendered(R),
}

impl<S, ReqBody, D> ResponseFuture<S, ReqBody, D>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn checking(
        check: CheckFuture,
        request: Request<ReqBody>,
        service: S,
        engine: ThreeScale,
        on_denied: D,
    ) -> Self {
        ResponseFuture {
            state: State::Checking {
                check,
                request: Some(request),
                service: Some(service),
                engine,
                on_denied,
            },
        }
    }
}

impl<S, ReqBody, D, ResBody> ResponseFuture<S, ReqBody, D>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    D: OnDenied<ResBody>,
{
    /// The future once the engine has decided: `service` (made ready) is
    /// called, or the denial is rendered.
    pub(crate) fn decided(
        action: Action,
        request: Request<ReqBody>,
        service: &mut S,
        on_denied: &D,
    ) -> Self {
        ResponseFuture {
            state: next_state(action, request, service, on_denied),
        }
    }
}

/// What the adapter does with an [`Action`], in one place for both the
/// immediate and the backend-checked path.
fn next_state<S, ReqBody, D, ResBody>(
    action: Action,
    mut request: Request<ReqBody>,
    service: &mut S,
    on_denied: &D,
) -> State<S, ReqBody, D>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    D: OnDenied<ResBody>,
{
    match action {
        Action::Forward {
            context,
            headers,
            completion,
        } => {
            if let Some(context) = context {
                request.extensions_mut().insert(context);
            }
            State::Inner {
                future: service.call(request),
                headers,
                completion,
            }
        }
        Action::Respond {
            denial,
            response,
            headers,
        } => {
            let (parts, _body) = request.into_parts();
            let denied = match on_denied.render(&denial, &parts) {
                Some(mut rendered) => {
                    merge_headers(rendered.headers_mut(), headers);
                    rendered.extensions_mut().insert(denial);
                    Denied::Rendered(rendered)
                }
                None => Denied::Configured {
                    response,
                    headers,
                    denial,
                },
            };
            State::Denied {
                response: Some(denied),
            }
        }
    }
}

impl<S, ReqBody, D, ResBody> Future for ResponseFuture<S, ReqBody, D>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    D: OnDenied<ResBody>,
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
                    on_denied,
                } => {
                    let outcome = ready!(check.as_mut().poll(cx));
                    let (Some(request), Some(mut service)) = (request.take(), service.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let next = next_state(engine.action(outcome), request, &mut service, on_denied);
                    this.state.set(next);
                }
                StateProj::Inner {
                    future,
                    headers,
                    completion,
                } => {
                    // An error (or a panic) drops the completion: the request's
                    // usage is still reported, without a status.
                    let response = ready!(future.poll(cx))?;
                    let (mut parts, body) = response.into_parts();
                    // Taken out, so that an outer layer does not count it again.
                    let added = parts.extensions.remove::<AddedUsage>();
                    std::mem::take(completion).finish(parts.status.as_u16(), added.as_ref());
                    merge_headers(&mut parts.headers, std::mem::take(headers));
                    return Poll::Ready(Ok(Response::from_parts(parts, ResponseBody::inner(body))));
                }
                StateProj::Denied { response } => {
                    let response = match response
                        .take()
                        .expect("ResponseFuture polled after completion")
                    {
                        Denied::Rendered(rendered) => rendered.map(ResponseBody::inner),
                        Denied::Configured {
                            response,
                            headers,
                            denial,
                        } => configured_response(response, headers, denial),
                    };
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

/// The configured error response, with the engine's headers and the denial.
fn configured_response<B>(
    error: ErrorResponse,
    headers: HeaderMap,
    denial: Denial,
) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::full(error.body));
    *response.status_mut() = error.status;
    let out = response.headers_mut();
    out.insert(http::header::CONTENT_TYPE, error.content_type);
    for (name, value) in error.headers {
        out.insert(name, value);
    }
    merge_headers(out, headers);
    response.extensions_mut().insert(denial);
    response
}
