//! Serving a gRPC service with what every Frontline service has: `grpc.health.v1`,
//! reflection (v1 and v1alpha, so grpcurl works), and a graceful drain on shutdown.

use std::{future::Future, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// Serves `routes` (the service, already wrapped in auth) on `listener` until
/// `shutdown` resolves; then reports NOT_SERVING, stops accepting, and waits up to
/// `grace` for in-flight calls. `names` are the full service names for health.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    names: &[&str],
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), tonic::transport::Error> {
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
    let server = tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal);
    tokio::pin!(server);
    tokio::select! {
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
    }
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

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// NATS could not be reached.
    #[error("NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Runs a service binary: logging, metrics, NATS, the event log (waiting for it
/// while it is unavailable), then serves `make_routes(log, auth)` on `listen` until
/// SIGTERM or Ctrl-C.
pub async fn run(
    common: &crate::config::CommonConfig,
    listen: std::net::SocketAddr,
    names: &[&str],
    make_routes: impl FnOnce(frontline_eventlog::EventLog, crate::auth::Authenticator) -> Routes,
) -> Result<(), StartError> {
    crate::telemetry::init_logging(common.log_format);
    if common.jwt_secret.trim().is_empty() {
        return Err(StartError::Config(
            "FRONTLINE_JWT_SECRET must not be empty".into(),
        ));
    }
    if let Some(addr) = common
        .metrics_addr()
        .map_err(|e| StartError::Config(format!("FRONTLINE_METRICS_LISTEN: {e}")))?
    {
        crate::telemetry::init_metrics(addr).map_err(StartError::Config)?;
    }
    metrics::gauge!(
        "frontline_build_info",
        "service" => names.join(","),
        "version" => env!("CARGO_PKG_VERSION")
    )
    .set(1.0);
    let client = common.connect_nats().await?;
    let mut shutdown = Box::pin(shutdown_signal());
    let log = loop {
        tokio::select! {
            opened = frontline_eventlog::EventLog::open(client.clone(), common.log_config()) => {
                match opened {
                    Ok(log) => break log,
                    Err(e) => tracing::warn!(error = %e, "event log not ready; retrying in 2s"),
                }
            }
            () = &mut shutdown => return Ok(()),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {},
            () = &mut shutdown => return Ok(()),
        }
    };
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    tracing::info!(%listen, stream = %common.stream, "serving {}", names.join(", "));
    let routes = make_routes(log, crate::auth::Authenticator::new(&common.jwt_secret));
    serve(
        listener,
        routes,
        names,
        shutdown,
        Duration::from_secs(common.shutdown_grace_secs),
    )
    .await?;
    // Flush what is buffered, but never wait on a NATS that is gone: exiting is
    // what SIGTERM asked for.
    if tokio::time::timeout(Duration::from_secs(2), client.flush())
        .await
        .is_err()
    {
        tracing::warn!("NATS unreachable at shutdown; not waiting to flush");
    }
    tracing::info!("stopped");
    Ok(())
}
