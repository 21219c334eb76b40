//! Ticket timers (SLA clocks, auto-close) on NATS message schedules: no timer wheel
//! and no polling here.
//!
//! A stream of its own (`<STREAM>_TIMERS`, `allow_msg_schedules`, purge allowed)
//! holds one schedule per ticket and timer on `frontline-timers.due.<ticket>.<timer>`
//! (`Nats-Schedule: @at <time>`). Publishing there again moves the timer. A timer is
//! never cancelled: one that fires for a clock that moved or was met finds nothing
//! due (the log is read again) — purging could land after a newer schedule and
//! cancel that instead. At the moment, the server publishes the schedule's body
//! to `frontline-timers.fired.<ticket>.<clock>` in the same stream, durably, on
//! whichever node leads it; a durable consumer takes it from there.

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{self, consumer::pull, stream},
};
use frontline_domain::{UnixMillis, sla::clocks::ClockKind};
use frontline_eventlog::EventLog;
use frontline_runtime::ApiError;
use futures::StreamExt as _;
use uuid::Uuid;

/// Subjects of the timers stream.
pub const SUBJECTS: &str = "frontline-timers.>";
const DUE: &str = "frontline-timers.due";
const FIRED: &str = "frontline-timers.fired";
/// The fired timers' durable consumer.
pub const CONSUMER: &str = "routing-timers";
/// How far ahead a timer is set at most (the stream keeps messages 7 days).
pub const HORIZON_MS: UnixMillis = 6 * 24 * 3_600_000;

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("timers: {what}: {e}"))
}

/// What a ticket's timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// An SLA clock's warning or due time.
    Clock(ClockKind),
    /// The solved ticket's auto-close.
    Close,
    /// The extended-tier customer's check-in after a solve.
    CheckIn,
}

impl Timer {
    /// Its name in timer subjects: the clock's name, or `close`.
    pub fn as_str(self) -> &'static str {
        match self {
            Timer::Clock(kind) => kind.as_str(),
            Timer::Close => "close",
            Timer::CheckIn => "check_in",
        }
    }

    fn parse(name: &str) -> Option<Timer> {
        match name {
            "close" => Some(Timer::Close),
            "check_in" => Some(Timer::CheckIn),
            other => ClockKind::parse(other).map(Timer::Clock),
        }
    }
}

/// The timers stream.
#[derive(Clone, Debug)]
pub struct Timers {
    js: jetstream::Context,
    stream: String,
}

impl Timers {
    /// Opens (creating or upgrading) the timers stream beside `log`'s.
    pub async fn open(log: &EventLog) -> Result<Timers, ApiError> {
        let js = jetstream::new(log.client().clone());
        let name = format!("{}_TIMERS", log.stream_name());
        let config = stream::Config {
            name: name.clone(),
            description: Some("Frontline SLA timers (message schedules)".into()),
            subjects: vec![SUBJECTS.into()],
            storage: stream::StorageType::File,
            num_replicas: log.config().replicas,
            allow_message_schedules: true,
            allow_rollup: true,
            deny_purge: false,
            // A fired timer is handled within minutes or parked by its consumer.
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..Default::default()
        };
        match js.get_stream(&name).await {
            Ok(mut existing) => {
                let info = existing.info().await.map_err(|e| unavailable("info", e))?;
                if !info.config.allow_message_schedules {
                    js.update_stream(config)
                        .await
                        .map_err(|e| unavailable("upgrade", e))?;
                }
            }
            Err(_) => {
                js.get_or_create_stream(config)
                    .await
                    .map_err(|e| unavailable("create", e))?;
            }
        }
        Ok(Timers { js, stream: name })
    }

    /// Sets `ticket`'s `timer` to fire at `at` (moving any earlier one).
    /// A moment beyond [`HORIZON_MS`] is set at the horizon: the stream keeps messages
    /// for a week, and a timer that fires early finds nothing due and is set again.
    pub async fn schedule(
        &self,
        ticket: Uuid,
        timer: Timer,
        at: UnixMillis,
    ) -> Result<(), ApiError> {
        let horizon = frontline_runtime::now_millis() + HORIZON_MS;
        let at = at.min(horizon);
        let when = jiff::Timestamp::from_millisecond(at)
            .map_err(|e| ApiError::Internal(format!("timer at {at}: {e}")))?;
        // Whole seconds, rounded up: never before the moment.
        let seconds = when.as_second() + i64::from(when.subsec_millisecond() > 0);
        let when = jiff::Timestamp::from_second(seconds)
            .map_err(|e| ApiError::Internal(format!("timer at {at}: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Schedule", format!("@at {when}").as_str());
        headers.insert(
            "Nats-Schedule-Target",
            format!("{FIRED}.{ticket}.{}", timer.as_str()).as_str(),
        );
        self.js
            .publish_with_headers(
                format!("{DUE}.{ticket}.{}", timer.as_str()),
                headers,
                at.to_string().into(),
            )
            .await
            .map_err(|e| unavailable("schedule", e))?
            .await
            .map_err(|e| unavailable("schedule ack", e))?;
        Ok(())
    }

    /// The fired timers, as a durable pull consumer shared by every replica.
    pub async fn fired(&self) -> Result<pull::Stream, ApiError> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| unavailable("stream", e))?;
        let consumer = stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    filter_subject: format!("{FIRED}.>"),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    // Never dropped: a fired timer's schedule is gone, so a timer
                    // given up on would be an SLA event never recorded.
                    max_deliver: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| unavailable("consumer", e))?;
        consumer
            .messages()
            .await
            .map_err(|e| unavailable("messages", e))
    }
}

/// The ticket and timer a fired timer's subject names.
pub fn parse_fired(subject: &str) -> Option<(Uuid, Timer)> {
    let rest = subject.strip_prefix(FIRED)?.strip_prefix('.')?;
    let (ticket, timer) = rest.split_once('.')?;
    Some((Uuid::parse_str(ticket).ok()?, Timer::parse(timer)?))
}

/// Consumes the fired timers with `handle` until `stop`: acked when handled, asked
/// again (with a pause) when not.
pub async fn consume<F, Fut>(
    timers: &Timers,
    stop: tokio_util::sync::CancellationToken,
    handle: F,
) -> Result<(), ApiError>
where
    F: Fn(Uuid, Timer) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let mut messages = timers.fired().await?;
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            () = stop.cancelled() => return Ok(()),
        };
        let Some(message) = next else {
            return Err(ApiError::Unavailable(
                "the fired timers' consumer ended".into(),
            ));
        };
        let message = message.map_err(|e| unavailable("delivery", e))?;
        let Some((ticket, timer)) = parse_fired(&message.subject) else {
            tracing::error!(subject = %message.subject, "a fired timer names no ticket and timer; dropped");
            message
                .ack_with(jetstream::AckKind::Term)
                .await
                .map_err(|e| unavailable("term", e))?;
            continue;
        };
        match handle(ticket, timer).await {
            Ok(()) => message.ack().await.map_err(|e| unavailable("ack", e))?,
            Err(e) => {
                tracing::warn!(%ticket, timer = timer.as_str(), error = %e, "a fired timer was not handled; it comes again");
                // 1 s, 2 s, … up to a minute between attempts.
                let delivered = message.info().map_or(1, |i| i.delivered).clamp(1, 60);
                let pause = Duration::from_secs(u64::try_from(delivered).unwrap_or(60));
                message
                    .ack_with(jetstream::AckKind::Nak(Some(pause)))
                    .await
                    .map_err(|e| unavailable("nak", e))?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fired_subjects_name_ticket_and_clock() {
        let t = Uuid::from_u128(7);
        let subject = format!("{FIRED}.{t}.next_response");
        assert_eq!(
            parse_fired(&subject),
            Some((t, Timer::Clock(ClockKind::NextResponse)))
        );
        let close = format!("{FIRED}.{t}.close");
        assert_eq!(parse_fired(&close), Some((t, Timer::Close)));
        assert_eq!(parse_fired("frontline-timers.fired.nope.resolution"), None);
        assert_eq!(parse_fired(&format!("{FIRED}.{t}.lunch")), None);
    }
}
