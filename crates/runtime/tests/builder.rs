//! The service builder against a real nats-server: a required task's failure turns
//! health NOT_SERVING and stops the service with an error; a restartable task is
//! restarted; shutdown drains tasks.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use frontline_runtime::{ServiceBuilder, Startup, Task, TaskError, TaskKind, config::CommonConfig};
use tokio::net::TcpListener;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn startup(
    nats: &frontline_testkit::NatsServer,
) -> (
    Startup,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = CommonConfig::from_args([
        "--nats-url",
        &nats.url(),
        "--jwt-secret",
        "s",
        "--kek",
        frontline_testkit::TEST_KEK,
        "--shutdown-grace-secs",
        "2",
    ])
    .unwrap();
    let startup = Startup {
        config,
        listener,
        shutdown: Box::pin(async move {
            let _ = stopped.await;
        }),
    };
    (startup, addr, stop)
}

async fn health(addr: std::net::SocketAddr) -> Option<i32> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .ok()?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .ok()?;
    Some(answer.into_inner().status)
}

async fn nats() -> frontline_testkit::NatsServer {
    tokio::task::spawn_blocking(frontline_testkit::NatsServer::start)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_task_failing_stops_the_service_with_its_error() {
    let nats = nats().await;
    let (startup, addr, _stop) = startup(&nats).await;
    let (fail, failed) = tokio::sync::oneshot::channel::<()>();
    let failed = Arc::new(tokio::sync::Mutex::new(Some(failed)));
    let service = ServiceBuilder::new("test").task(move |_| {
        let failed = failed.clone();
        Ok(Task::new("required", TaskKind::REQUIRED, move |_stop| {
            let failed = failed.clone();
            async move {
                if let Some(rx) = failed.lock().await.take() {
                    let _ = rx.await;
                }
                Err::<(), TaskError>("the consumer lost its stream".into())
            }
        }))
    });
    let running = tokio::spawn(service.run(startup));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while health(addr).await != Some(1) {
        assert!(tokio::time::Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fail.send(()).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .unwrap()
        .unwrap();
    let error = outcome.unwrap_err().to_string();
    assert!(
        error.contains("required") && error.contains("lost its stream"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restartable_task_is_restarted_after_an_error_and_a_panic_and_drained() {
    let nats = nats().await;
    let (startup, addr, stop) = startup(&nats).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(AtomicUsize::new(0));
    let (r, d) = (runs.clone(), drained.clone());
    let service = ServiceBuilder::new("test").task(move |_| {
        Ok(Task::new("flaky", TaskKind::PROJECTION, move |stop| {
            let (runs, drained) = (r.clone(), d.clone());
            async move {
                match runs.fetch_add(1, Ordering::SeqCst) {
                    0 => return Err::<(), TaskError>("first run fails".into()),
                    1 => panic!("second run panics"),
                    _ => {}
                }
                stop.cancelled().await;
                drained.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }))
    });
    let running = tokio::spawn(service.run(startup));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while runs.load(Ordering::SeqCst) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "never restarted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        health(addr).await,
        Some(1),
        "a restartable task keeps the service SERVING"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        drained.load(Ordering::SeqCst),
        1,
        "shutdown let the task finish"
    );
}
