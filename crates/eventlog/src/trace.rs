//! Traces across the log: the span that appends an event writes its W3C trace
//! context (`traceparent`, `tracestate`) into the message headers, and a consumer's
//! span for that event continues it, so one request's trace follows its events
//! from service to service.
//!
//! Everything here goes through OpenTelemetry's global propagator and the
//! `tracing-opentelemetry` layer. When the process exports no traces (the runtime
//! installs neither, and never calls [`set_exporting`]), the log opens no spans at
//! all and an event carries the `traceparent` recorded in its
//! [`EventMeta`](crate::EventMeta), as before.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use async_nats::HeaderMap;
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector},
    trace::TraceContextExt as _,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C trace-context header.
pub const TRACEPARENT: &str = "traceparent";

/// Whether spans are exported (see [`set_exporting`]).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Turns the log's own spans (append, commit, load, and each delivery's) on or
/// off for the whole process; the runtime turns them on when it exports traces.
/// Off, they are not even created: with a log formatter installed a span costs
/// about 1.4 µs (its fields are rendered), which a projection would pay per
/// event for spans nobody sees.
pub fn set_exporting(on: bool) {
    EXPORTING.store(on, Ordering::Relaxed);
}

/// Whether spans are exported (the runtime said so with [`set_exporting`]).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// A span from `make` when spans are exported, else none.
pub(crate) fn span(make: impl FnOnce() -> Span) -> Span {
    if exporting() { make() } else { Span::none() }
}

/// The `traceparent` of the current span, when it is exported (its context is
/// valid): what an event recorded now should name as its cause.
pub fn current_traceparent() -> Option<String> {
    let context = Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.remove(TRACEPARENT)
}

/// The trace context a `traceparent` value names (empty when it names none, or
/// when no propagator is installed).
pub fn context_of(traceparent: &str) -> Context {
    let carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier))
}

/// The trace context a message's headers carry.
pub(crate) fn context_of_headers(headers: Option<&HeaderMap>) -> Option<Context> {
    let headers = headers?;
    headers.get(TRACEPARENT)?;
    let context =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&ReadHeaders(headers)));
    context.span().span_context().is_valid().then_some(context)
}

/// Writes the current span's trace context into `headers`; without one (traces
/// are not exported), the request's `traceparent` as recorded.
pub(crate) fn inject(headers: &mut HeaderMap, recorded: Option<&str>) {
    let context = Span::current().context();
    if context.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&context, &mut WriteHeaders(headers));
        });
    } else if let Some(traceparent) = recorded {
        headers.insert(TRACEPARENT, traceparent);
    }
}

/// Makes `span` a child of the request's `traceparent` when nothing encloses it:
/// work moved to a task of its own loses the caller's span, but the event
/// metadata it carries still names the request.
pub(crate) fn continue_request(span: &Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent
        && !Context::current().span().span_context().is_valid()
    {
        let parent = context_of(traceparent);
        if parent.span().span_context().is_valid() {
            // Fails only when no OpenTelemetry layer is installed: nothing to link.
            let _ = span.set_parent(parent);
        }
    }
}

/// [`span`] for a read that is part of something larger, or none: a load on its
/// own (a timer's, a background task's) would be a trace of one span.
pub(crate) fn nested(make: impl FnOnce() -> Span) -> Span {
    if Span::current().is_none() {
        Span::none()
    } else {
        span(make)
    }
}

struct ReadHeaders<'a>(&'a HeaderMap);

impl Extractor for ReadHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(|(name, _)| AsRef::<str>::as_ref(name))
            .collect()
    }
}

struct WriteHeaders<'a>(&'a mut HeaderMap);

impl Injector for WriteHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}
