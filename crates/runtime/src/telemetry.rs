//! Structured logging (tracing), OpenTelemetry trace export, and Prometheus metrics.
//!
//! Traces are exported only when asked for: [`TracingConfig::from_env`] reads the
//! standard `OTEL_*` variables and is `None` unless an OTLP endpoint is set. Then
//! [`init`] adds a `tracing-opentelemetry` layer exporting over OTLP/gRPC in
//! batches, and installs the W3C trace-context propagator, which the gRPC span
//! layer (`call_span`) and the event log ([`frontline_eventlog::trace`])
//! use to continue traces across calls and events. Without it, logging is exactly
//! what it was and no span leaves the process.

use std::{net::SocketAddr, time::Duration};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider},
};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{
    EnvFilter, Layer, filter::Targets, fmt, prelude::*, registry::LookupSpan,
};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// Where and how spans are exported (OTLP over gRPC).
#[derive(Clone, Debug)]
pub struct TracingConfig {
    /// The resource's `service.name` — unless `OTEL_SERVICE_NAME` (or `service.name`
    /// in `OTEL_RESOURCE_ATTRIBUTES`) names one, which wins.
    pub service_name: String,
    /// The collector's OTLP/gRPC endpoint (`http://host:4317`); `None` reads
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: Option<String>,
    /// Time between batch exports; `None` reads `OTEL_BSP_SCHEDULE_DELAY` (5 s by
    /// default).
    pub export_delay: Option<Duration>,
}

impl TracingConfig {
    /// Export settings from the standard variables, for a service whose
    /// `service.name` defaults to `service_name`. `None` (traces off) unless
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set;
    /// also off with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    /// Everything else (sampler, batch sizes, headers, timeout, resource
    /// attributes) the SDK and the exporter read from their own `OTEL_*` variables.
    pub fn from_env(service_name: impl Into<String>) -> Option<TracingConfig> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let endpoint_set = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        (endpoint_set && !disabled).then(|| TracingConfig {
            service_name: service_name.into(),
            endpoint: None,
            export_delay: None,
        })
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter refused its settings (e.g. an endpoint that is not a URI).
    #[error("OTLP trace exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The longest a service waits at shutdown for its last spans to be exported.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// What [`init`] installed. Shut it down last: [`Telemetry::shutdown`] exports
/// the spans still buffered.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn is_tracing(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every span ended so far, now (tests; before a planned pause).
    pub async fn flush(&self) {
        if let Some(provider) = self.provider.clone() {
            // The exporter's thread may be busy; never block a runtime worker on it.
            let flushed = tokio::task::spawn_blocking(move || provider.force_flush()).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!(error = %e, "exporting spans failed");
            }
        }
    }

    /// Exports what is buffered and stops exporting (graceful shutdown), waiting
    /// at most [`SHUTDOWN_FLUSH`]: a collector that does not answer must not keep
    /// a stopping service from exiting.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            frontline_eventlog::trace::set_exporting(false);
            let done = tokio::task::spawn_blocking(move || provider.shutdown());
            match tokio::time::timeout(SHUTDOWN_FLUSH, done).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "flushing spans at shutdown failed"),
                Ok(Err(_)) => {}
                Err(_) => tracing::warn!(
                    ?SHUTDOWN_FLUSH,
                    "the trace collector did not answer; exiting without its last spans"
                ),
            }
        }
    }
}

/// Installs the global log subscriber, and span export when `tracing` is given.
/// The log filter comes from `RUST_LOG` (default `info`); spans are exported at
/// `info` and above whatever `RUST_LOG` says, so quieter logs keep their traces.
/// Needs a Tokio runtime (the exporter's gRPC channel lives on it). A second call
/// in one process (several servers in a test) changes nothing and exports nothing.
pub fn init(
    format: LogFormat,
    tracing: Option<TracingConfig>,
) -> Result<Telemetry, TelemetryError> {
    let Some(config) = tracing else {
        let _ = tracing_subscriber::registry()
            .with(log_filter())
            .with(log_layer(format))
            .try_init();
        return Ok(Telemetry::default());
    };
    let provider = tracer_provider(&config)?;
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("frontline"))
        // Async tasks hop threads, and the code location says little a span's
        // name does not: both would only make every span larger.
        .with_threads(false)
        .with_location(false)
        .with_filter(span_filter());
    let installed = tracing_subscriber::registry()
        .with(log_layer(format).with_filter(log_filter()))
        .with(spans)
        .try_init();
    if installed.is_err() {
        // Another subscriber was first: this provider would never see a span.
        let _ = provider.shutdown();
        return Ok(Telemetry::default());
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    frontline_eventlog::trace::set_exporting(true);
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// Installs the global log subscriber without span export. Safe to call more
/// than once (later calls do nothing).
pub fn init_logging(format: LogFormat) {
    let _ = init(format, None);
}

fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

fn log_layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed(),
        LogFormat::Text => fmt::layer().boxed(),
    }
}

/// Frontline's spans and what is logged inside them, at `info` and above. The
/// exporter's own stack (the SDK, its gRPC client) stays out: a span about
/// exporting spans would be exported in turn.
fn span_filter() -> Targets {
    Targets::new().with_default(LevelFilter::INFO).with_targets(
        [
            "opentelemetry",
            "opentelemetry_sdk",
            "opentelemetry_otlp",
            "tonic",
            "h2",
            "hyper",
            "hyper_util",
            "tower",
        ]
        .map(|target| (target, LevelFilter::OFF)),
    )
}

fn tracer_provider(config: &TracingConfig) -> Result<SdkTracerProvider, TelemetryError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(endpoint) = &config.endpoint {
        exporter = exporter.with_endpoint(endpoint.clone());
    }
    let mut batch = BatchConfigBuilder::default();
    if let Some(delay) = config.export_delay {
        batch = batch.with_scheduled_delay(delay);
    }
    let processor = BatchSpanProcessor::builder(exporter.build()?)
        .with_batch_config(batch.build())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource(&config.service_name))
        .build())
}

/// The standard resource (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`, SDK
/// attributes), with `service_name` when the environment names no service.
fn resource(service_name: &str) -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| name.as_str() != "unknown_service");
    if named {
        detected
    } else {
        Resource::builder()
            .with_service_name(service_name.to_string())
            .build()
    }
}

/// Seconds-valued histograms (call latency, timer lateness) are exported as
/// Prometheus histograms with these buckets, so dashboards can aggregate
/// quantiles across replicas (`histogram_quantile`).
const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Serves Prometheus metrics on `addr` (`GET /metrics`, or any path).
pub fn init_metrics(addr: SocketAddr) -> Result<(), String> {
    use metrics_exporter_prometheus::Matcher;
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .map_err(|e| format!("metrics buckets: {e}"))?
        .install()
        .map_err(|e| format!("metrics on {addr}: {e}"))
}
