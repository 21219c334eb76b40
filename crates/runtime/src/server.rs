//! Serving gRPC with what every Frontline service has: `grpc.health.v1`, reflection
//! (v1 and v1alpha, so grpcurl works), one span per call, one counting point for
//! refusals, and a graceful drain on shutdown.

use std::{future::Future, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{service::Routes, transport::ServerTlsConfig};
use tonic_health::ServingStatus;

/// Serves `routes` (the service, already wrapped in auth) on `listener` until
/// `shutdown` resolves; then reports NOT_SERVING, stops accepting, and waits up to
/// `grace` for in-flight calls. `names` are the full service names for health;
/// `service` names the server on every call's span. With `tls`, every connection —
/// health and reflection included — is TLS (mutual when it names a client CA);
/// `health_only` then serves the same health statuses in plaintext, for probes.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    (service, names): (&str, &[&str]),
    (tls, health_only): (Option<ServerTlsConfig>, Option<TcpListener>),
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), tonic::transport::Error> {
    // First, so a TLS setting tonic refuses stops the start before anything serves.
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        // Handshakes run on the accepted (already TCP_NODELAY) streams.
        builder = builder.tls_config(tls)?;
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in names.iter().copied().chain([""]) {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(frontline_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // Clones of the health service share the reporter's statuses.
    let probes = health_only.map(|listener| {
        let health = health_service.clone();
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(no_delay(listener))
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "health-only listener failed");
            }
        })
    });
    let routes = routes.add_service(health_service);
    let routes = match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => routes.add_service(v1).add_service(v1alpha),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "reflection unavailable");
            routes
        }
    };

    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let owned: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight calls");
        for name in owned.iter().map(String::as_str).chain([""]) {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let _ = drain_tx.send(());
    };
    // The span is outermost, so it sees the status as the caller will.
    let server = builder
        .layer(crate::call_span::CallSpanLayer::new(service))
        .layer(tower::util::MapResponseLayer::new(refusals))
        .add_routes(routes)
        .serve_with_incoming_shutdown(no_delay(listener), signal);
    tokio::pin!(server);
    let served = tokio::select! {
        result = &mut server => result,
        () = async {
            if drain_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(?grace, "grace period over; abandoning in-flight calls");
            Ok(())
        }
    };
    if let Some(probes) = probes {
        probes.abort();
    }
    served
}

/// Accepted connections with Nagle's algorithm off: a gRPC answer is several small
/// writes (headers, data, trailers), and with Nagle on, the last one waits for the
/// client's delayed ACK — 40 ms a call (measured: 340 submits/s instead of
/// thousands for answers of a few KiB).
fn no_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt as _;
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

/// Every refusal passes here once: it is counted
/// (`frontline_grpc_errors_total{code}`), and tonic's own answer to a request over
/// the decoding limit (`OUT_OF_RANGE`, a code Frontline never uses) becomes the
/// documented `RESOURCE_EXHAUSTED`. Unary refusals are trailers-only responses, so
/// the status is in the headers.
fn refusals<B>(mut response: http::Response<B>) -> http::Response<B> {
    let Some(code) = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
    else {
        return response;
    };
    let code = if code == tonic::Code::OutOfRange {
        let headers = response.headers_mut();
        headers.insert(
            "grpc-status",
            http::HeaderValue::from(tonic::Code::ResourceExhausted as i32),
        );
        let message = format!(
            "request%20over%20the%20{}-byte%20limit",
            crate::error::MAX_REQUEST_BYTES
        );
        if let Ok(message) = http::HeaderValue::from_str(&message) {
            headers.insert("grpc-message", message);
        }
        tonic::Code::ResourceExhausted
    } else {
        code
    };
    if code != tonic::Code::Ok {
        metrics::counter!("frontline_grpc_errors_total", "code" => format!("{code:?}"))
            .increment(1);
    }
    response
}

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
