//! One span per gRPC call, opened by a tower layer around every route of a
//! server — the only place a call's span is opened.
//!
//! The span (`grpc`, exported as `<package.Service>/<Method>`, kind server)
//! continues the caller's trace when the request carries a W3C `traceparent`, and
//! carries `frontline.service` (the serving service: several may share one
//! process), `rpc.system`, `rpc.service`, `rpc.method`, and the gRPC status of the
//! answer. [`crate::handle`] records the action, tenant, actor and correlation id
//! in it once the caller is known. Everything a handler does — loads, appends,
//! log lines — happens inside it.
//!
//! Health checks and reflection get no span: probes every few seconds would bury
//! the calls that matter.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use opentelemetry::{propagation::Extractor, trace::TraceContextExt as _};
use tracing::{Instrument as _, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Wraps a server's routes in [`CallSpan`].
#[derive(Clone, Debug)]
pub(crate) struct CallSpanLayer {
    service: Arc<str>,
}

impl CallSpanLayer {
    /// Spans naming `service` as the server.
    pub(crate) fn new(service: &str) -> CallSpanLayer {
        CallSpanLayer {
            service: Arc::from(service),
        }
    }
}

impl<S> tower::Layer<S> for CallSpanLayer {
    type Service = CallSpan<S>;

    fn layer(&self, inner: S) -> CallSpan<S> {
        CallSpan {
            inner,
            service: self.service.clone(),
        }
    }
}

/// Runs every call inside its span. See the module docs.
#[derive(Clone, Debug)]
pub(crate) struct CallSpan<S> {
    inner: S,
    service: Arc<str>,
}

type Answer<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for CallSpan<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Answer<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(span) = call_span(&request, &self.service) else {
            return Box::pin(self.inner.call(request));
        };
        let method = request.uri().path().trim_start_matches('/').to_string();
        let started = std::time::Instant::now();
        let answer = span.in_scope(|| self.inner.call(request));
        let in_span = span.clone();
        Box::pin(
            async move {
                let answer = answer.await;
                let code = answer.as_ref().map_or(tonic::Code::Unknown, |response| {
                    record_status(&span, response)
                });
                // Every call by method and code, and its latency by method (the
                // time to the answer's headers: a unary call's whole work). A path
                // no route knows is `unknown`: callers cannot mint label values.
                let method = if code == tonic::Code::Unimplemented {
                    "unknown".to_string()
                } else {
                    method
                };
                metrics::counter!(
                    "frontline_grpc_requests_total",
                    "method" => method.clone(),
                    "code" => format!("{code:?}")
                )
                .increment(1);
                metrics::histogram!("frontline_grpc_request_duration_seconds", "method" => method)
                    .record(started.elapsed().as_secs_f64());
                answer
            }
            .instrument(in_span),
        )
    }
}

/// The span of one call, or none for health checks and reflection.
fn call_span<B>(request: &http::Request<B>, service: &str) -> Option<Span> {
    let path = request.uri().path();
    let method = path.strip_prefix('/').unwrap_or(path);
    if method.starts_with("grpc.health.") || method.starts_with("grpc.reflection.") {
        return None;
    }
    let (rpc_service, rpc_method) = method.split_once('/').unwrap_or((method, ""));
    // A root by construction: the caller's trace, if any, is its only parent.
    let span = tracing::info_span!(
        parent: None,
        "grpc",
        otel.name = method,
        otel.kind = "server",
        frontline.service = service,
        action = Empty,
        tenant = Empty,
        actor = Empty,
        correlation_id = Empty,
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
    );
    if !frontline_eventlog::trace::exporting() {
        return Some(span);
    }
    // Only for the exported span: in log lines they would repeat `otel.name`.
    span.set_attribute("rpc.system", "grpc");
    span.set_attribute("rpc.service", rpc_service.to_string());
    span.set_attribute("rpc.method", rpc_method.to_string());
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&RequestHeaders(request.headers()))
    });
    if parent.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer: nothing to continue then.
        let _ = span.set_parent(parent);
    }
    Some(span)
}

/// Records the answer's gRPC status (and returns it). A refusal is a trailers-only answer, so its
/// status is in the headers; an answer without one there carries its status in
/// trailers, which a unary call only sends after a successful reply: OK. (A
/// stream that fails after its first message is not seen here.)
fn record_status<R>(span: &Span, response: &http::Response<R>) -> tonic::Code {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    span.record("rpc.grpc.status_code", code);
    // The OpenTelemetry conventions count only the server's own faults as errors
    // of a server span: a refused caller is the caller's problem.
    let server_fault = matches!(
        tonic::Code::from_i32(code),
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    );
    if server_fault {
        span.record("otel.status_code", "error");
    }
    tonic::Code::from_i32(code)
}

struct RequestHeaders<'a>(&'a http::HeaderMap);

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
