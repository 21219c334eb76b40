//! Background tasks (consumers, timer handlers), each with a declared kind: what an
//! error does and what shutdown does. The supervisor runs them beside the gRPC
//! server; a task whose error stops the service turns health NOT_SERVING and starts
//! the drain.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a task's error (or unexpected end) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Log it, count it (`frontline_task_restarts_total`), and start the task again
    /// after a backoff (1 s doubling to 60 s; reset after a minute of running).
    Restart,
    /// The service cannot work without it: report NOT_SERVING, drain, and exit with
    /// an error so the orchestrator restarts the process.
    StopService,
}

/// What shutdown does to a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnShutdown {
    /// Cancel its token and wait (within the grace period) for it to finish its
    /// current unit of work: a projection commits and acks its batch.
    Drain,
    /// Abort it at once: it holds nothing that must be finished.
    Abort,
}

/// A task's declared kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskKind {
    /// On error.
    pub on_error: OnError,
    /// On shutdown.
    pub on_shutdown: OnShutdown,
}

impl TaskKind {
    /// A consumer that keeps a read model: restarted on error, drained on shutdown.
    pub const PROJECTION: TaskKind = TaskKind {
        on_error: OnError::Restart,
        on_shutdown: OnShutdown::Drain,
    };
    /// A task the service cannot serve without: stops the service on error.
    pub const REQUIRED: TaskKind = TaskKind {
        on_error: OnError::StopService,
        on_shutdown: OnShutdown::Drain,
    };
}

/// Why a task run ended badly.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;
/// The future a task runs; it should return when its token is cancelled.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;
/// Makes a fresh run of a task (called again on every restart).
pub type TaskFactory = Arc<dyn Fn(CancellationToken) -> TaskFuture + Send + Sync>;

/// A background task: name, kind, and how to start it.
#[derive(Clone)]
pub struct Task {
    /// Name, for logs and metrics.
    pub name: &'static str,
    /// What error and shutdown do.
    pub kind: TaskKind,
    /// Starts one run.
    pub run: TaskFactory,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Task {
    /// A task named `name` of `kind`, started by `run`.
    pub fn new<F, Fut>(name: &'static str, kind: TaskKind, run: F) -> Task
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        Task {
            name,
            kind,
            run: Arc::new(move |token| Box::pin(run(token))),
        }
    }
}

/// A task that stopped the service.
#[derive(Debug, thiserror::Error)]
#[error("task {task} failed: {reason}")]
pub struct TaskFailed {
    /// The task.
    pub task: &'static str,
    /// Why.
    pub reason: String,
}

/// Runs tasks until shutdown; reports the first task that stops the service.
pub(crate) struct Supervisor {
    drained: JoinSet<()>,
    aborted: JoinSet<()>,
    drain_token: CancellationToken,
    abort_token: CancellationToken,
}

/// Failures of tasks that stop the service.
pub(crate) type Failures = tokio::sync::mpsc::UnboundedReceiver<TaskFailed>;

impl Supervisor {
    pub(crate) fn start(tasks: Vec<Task>) -> (Supervisor, Failures) {
        let (tx, failed) = tokio::sync::mpsc::unbounded_channel();
        let drain_token = CancellationToken::new();
        let abort_token = CancellationToken::new();
        let mut drained = JoinSet::new();
        let mut aborted = JoinSet::new();
        for task in tasks {
            let token = match task.kind.on_shutdown {
                OnShutdown::Drain => drain_token.clone(),
                OnShutdown::Abort => abort_token.clone(),
            };
            let set = match task.kind.on_shutdown {
                OnShutdown::Drain => &mut drained,
                OnShutdown::Abort => &mut aborted,
            };
            set.spawn(supervise(task, token, tx.clone()));
        }
        let supervisor = Supervisor {
            drained,
            aborted,
            drain_token,
            abort_token,
        };
        (supervisor, failed)
    }

    /// Stops every task: aborts the abortable, drains the rest within `grace`.
    pub(crate) async fn stop(mut self, grace: Duration) {
        self.abort_token.cancel();
        self.aborted.abort_all();
        self.drain_token.cancel();
        if tokio::time::timeout(grace, async {
            while self.drained.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!(
                ?grace,
                "background tasks did not drain in time; aborting them"
            );
            self.drained.abort_all();
        }
    }
}

async fn supervise(
    task: Task,
    token: CancellationToken,
    failed: tokio::sync::mpsc::UnboundedSender<TaskFailed>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        // Its own task, so a panic is an error of the declared kind, not a silent end.
        let mut run = AbortOnDrop(tokio::spawn((task.run)(token.clone())));
        let outcome = match (&mut run.0).await {
            Ok(outcome) => outcome,
            Err(e) => Err(format!("panicked: {e}").into()),
        };
        if token.is_cancelled() {
            if let Err(e) = outcome {
                tracing::warn!(task = task.name, error = %e, "task ended with an error while stopping");
            }
            return;
        }
        let reason = match outcome {
            Ok(()) => "ended unexpectedly".to_string(),
            Err(e) => e.to_string(),
        };
        match task.kind.on_error {
            OnError::StopService => {
                tracing::error!(task = task.name, %reason, "required task failed; stopping the service");
                let _ = failed.send(TaskFailed {
                    task: task.name,
                    reason,
                });
                return;
            }
            OnError::Restart => {
                metrics::counter!("frontline_task_restarts_total", "task" => task.name)
                    .increment(1);
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                tracing::error!(task = task.name, %reason, ?backoff, "task failed; restarting");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {},
                    () = token.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// Aborts a spawned run when its supervisor is dropped or aborted.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), TaskError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
