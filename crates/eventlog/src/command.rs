//! The command loop: load → decide → append, retried when another writer won the race.

use std::time::Duration;

use frontline_domain::{Aggregate, DomainError, UnixMillis};
use uuid::Uuid;

use frontline_proto::events::EventCodec;

use crate::{EventLog, EventMeta, Loaded, LogError};

/// How a command is executed.
#[derive(Clone, Copy, Debug)]
pub struct CommandOptions {
    /// Attempts before a lost race is reported as [`CommandError::Exhausted`].
    pub max_attempts: u32,
    /// When set, the aggregate must be at this version or the command fails with
    /// [`DomainError::StaleVersion`] (unless it is an idempotent repeat).
    pub expected_version: Option<u64>,
    /// The aggregate almost surely does not exist yet (its id was just derived from
    /// a new request): decide on the empty state and append expecting no events,
    /// skipping the load. If it does exist, the append conflicts and the normal
    /// load → decide path runs, so this is only ever faster or one publish slower.
    pub assume_new: bool,
}

impl Default for CommandOptions {
    fn default() -> Self {
        CommandOptions {
            max_attempts: 10,
            expected_version: None,
            assume_new: false,
        }
    }
}

/// The result of a command.
#[derive(Clone, Debug)]
pub struct Outcome<A> {
    /// The aggregate after the command.
    pub loaded: Loaded<A>,
    /// False when the command was an idempotent repeat that recorded nothing.
    pub appended: bool,
}

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Every attempt lost a race with another writer.
    #[error("gave up after {attempts} concurrent-modification retries")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
    },
}

/// The pause before retry `attempt` (1, 2, …) after a lost race: random, up to
/// 4, 8, … 128 ms, so racing writers spread out instead of colliding again.
pub async fn retry_pause(attempt: u32) {
    let cap = 2u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=cap))).await;
}

/// Runs `decide` against the latest state of aggregate `id` and appends its event,
/// recorded at the time `decide` was given.
///
/// Within one process, commands on the same aggregate take that aggregate's lock so
/// they queue instead of racing; across replicas, the log's per-subject sequence
/// check decides and the loser reloads and decides again (jittered backoff), up to
/// `max_attempts`. The lock is never held during a backoff sleep, and it is one
/// aggregate's only: a slow publish stalls nothing but that aggregate's commands.
///
/// A refusal from the domain wins over a stale `expected_version`: the caller hears
/// NOT_FOUND or INVALID_ARGUMENT, not "reload and retry", when retrying cannot help.
pub async fn execute<A, F>(
    log: &EventLog,
    id: &Uuid,
    meta: &EventMeta,
    options: CommandOptions,
    now: impl Fn() -> UnixMillis,
    decide: F,
) -> Result<Outcome<A>, CommandError>
where
    A: Aggregate,
    A::Event: EventCodec,
    F: Fn(&A, UnixMillis) -> Result<Option<A::Event>, DomainError>,
{
    execute_from(log, id, meta, options, None, now, decide).await
}

/// [`execute`], deciding the first attempt on `loaded` (a state the caller has just
/// loaded) instead of loading again. If the aggregate moved on since, the append
/// conflicts and the next attempt reloads, as after any lost race.
pub async fn execute_from<A, F>(
    log: &EventLog,
    id: &Uuid,
    meta: &EventMeta,
    options: CommandOptions,
    mut loaded: Option<Loaded<A>>,
    now: impl Fn() -> UnixMillis,
    decide: F,
) -> Result<Outcome<A>, CommandError>
where
    A: Aggregate,
    A::Event: EventCodec,
    F: Fn(&A, UnixMillis) -> Result<Option<A::Event>, DomainError>,
{
    let lock = log.lock_for(&crate::subject::<A>(id));
    let attempts = options.max_attempts.max(1);
    for attempt in 0..attempts {
        // No backoff after a missed `assume_new` guess: that was no race.
        if attempt > 1 || (attempt == 1 && !options.assume_new) {
            retry_pause(attempt).await;
        }
        let _turn = lock.lock().await;
        let loaded = match loaded.take() {
            Some(given) => given,
            None if attempt == 0 && options.assume_new => Loaded::default(),
            None => log.load::<A>(id).await?,
        };
        let at = now();
        let Some(event) = decide(&loaded.state, at)? else {
            return Ok(Outcome {
                loaded,
                appended: false,
            });
        };
        if let Some(expected) = options.expected_version
            && expected != loaded.state.version()
        {
            return Err(DomainError::StaleVersion {
                expected,
                actual: loaded.state.version(),
            }
            .into());
        }
        match log.append(id, &loaded, event, meta, at).await {
            Ok(loaded) => {
                return Ok(Outcome {
                    loaded,
                    appended: true,
                });
            }
            // A missed `assume_new` guess is no race; everything else is.
            Err(LogError::Conflict { .. }) if attempt == 0 && options.assume_new => {}
            Err(LogError::Conflict { .. }) => {
                metrics::counter!("frontline_command_conflicts_total", "aggregate" => A::KIND)
                    .increment(1);
                tracing::debug!(%id, attempt, "lost a concurrent append; reloading");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::Exhausted { attempts })
}
