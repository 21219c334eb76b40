//! One way through every call, in one order: authenticate (the interceptor, before
//! the body is read); decode (the transport refuses a body over
//! [`crate::error::MAX_REQUEST_BYTES`] or one that is not protobuf); authorise
//! (role); validate (the handler's fields); and only then load. One span per call
//! carries the ids; an error is logged where it becomes the caller's answer
//! ([`crate::error`]), not where it passes.

use std::future::Future;

use frontline_domain::{Action, Actor, authorize};
use frontline_eventlog::EventMeta;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::{ApiError, auth, context};

/// An authorised call: who, with what request context, asking what.
#[derive(Debug)]
pub struct Call<T> {
    /// The caller.
    pub actor: Actor,
    /// Event metadata (actor, correlation and causation ids, traceparent).
    pub meta: EventMeta,
    /// The request message.
    pub message: T,
}

/// Runs `handler` for `request` once the caller is authenticated and may do `action`.
pub async fn handle<T, R, F, Fut>(
    request: Request<T>,
    action: Action,
    handler: F,
) -> Result<Response<R>, Status>
where
    F: FnOnce(Call<T>) -> Fut,
    Fut: Future<Output = Result<R, ApiError>>,
{
    let span = tracing::info_span!(
        "call",
        action = %action,
        actor = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
    );
    let result = async {
        let actor = auth::actor(&request)?;
        authorize(&actor, action)?;
        let meta = context::event_meta(&request, actor.clone());
        let current = tracing::Span::current();
        current.record("actor", actor.id.as_str());
        current.record("correlation_id", meta.correlation_id.as_str());
        handler(Call {
            actor,
            meta,
            message: request.into_inner(),
        })
        .await
    }
    .instrument(span)
    .await;
    result.map(Response::new).map_err(Status::from)
}
