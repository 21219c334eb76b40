//! A ticket's SLA clocks, rebuilt from its events, its tier's targets and the
//! business hours: pure, so routing, tests and read models compute the same.
//!
//! - First response: starts when the ticket opens; met by the first public agent
//!   reply (not a note, not an automated answer).
//! - Next response: starts when the customer writes after an agent's reply; met by
//!   the next public agent reply.
//! - Resolution: starts when the ticket opens or is reopened (a new cycle); paused
//!   exactly while the ticket is pending (waiting on the customer), resumed when it
//!   leaves pending (the customer writes, or an agent replies without waiting); met
//!   by solve.
//!
//! A clock's cycle is the ticket version that started it: warnings and breaches are
//! recorded once per clock and cycle.

use crate::{Recorded, TicketEvent, TicketStatus, UnixMillis};

use super::{BusinessHours, due, policy::Targets};

/// Which promise a clock keeps.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ClockKind {
    /// The first public agent reply.
    FirstResponse,
    /// The next public agent reply after a customer message.
    NextResponse,
    /// Solved.
    Resolution,
}

impl ClockKind {
    /// Every kind.
    pub const ALL: [ClockKind; 3] = [
        ClockKind::FirstResponse,
        ClockKind::NextResponse,
        ClockKind::Resolution,
    ];

    /// A stable snake-case name (subjects, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::FirstResponse => "first_response",
            ClockKind::NextResponse => "next_response",
            ClockKind::Resolution => "resolution",
        }
    }

    /// The kind named by [`ClockKind::as_str`].
    pub fn parse(name: &str) -> Option<ClockKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn target(self, t: &Targets) -> u32 {
        match self {
            ClockKind::FirstResponse => t.first_response_secs,
            ClockKind::NextResponse => t.next_response_secs,
            ClockKind::Resolution => t.resolution_secs,
        }
    }
}

/// What a clock's moment means.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Alarm {
    /// The warning point passed.
    Warning,
    /// The due time passed.
    Breach,
}

/// Where a clock stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockState {
    /// Counting.
    Running,
    /// Stopped while the ticket waits on the customer.
    Paused,
    /// Met (in time or not: see [`Clock::breached`]).
    Met,
    /// Past its due time and not met.
    Breached,
}

/// One clock of the current cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Which promise.
    pub kind: ClockKind,
    /// The ticket version that started it.
    pub cycle: u64,
    /// When it started.
    pub started_at: UnixMillis,
    /// Its target, in milliseconds of business time.
    pub target_ms: i64,
    /// Pauses (from, to; `None` while still paused), in order.
    pub pauses: Vec<(UnixMillis, Option<UnixMillis>)>,
    /// When it was met.
    pub met_at: Option<UnixMillis>,
    /// Its due time; `None` while paused.
    pub due_at: Option<UnixMillis>,
    /// Its warning point; `None` while paused.
    pub warn_at: Option<UnixMillis>,
    /// A warning was recorded for this cycle.
    pub warned: bool,
    /// A breach was recorded for this cycle.
    pub breached: bool,
}

impl Clock {
    fn start(kind: ClockKind, cycle: u64, at: UnixMillis, target_secs: u32) -> Option<Clock> {
        (target_secs > 0).then(|| Clock {
            kind,
            cycle,
            started_at: at,
            target_ms: i64::from(target_secs) * 1000,
            pauses: Vec::new(),
            met_at: None,
            due_at: None,
            warn_at: None,
            warned: false,
            breached: false,
        })
    }

    fn running(&self) -> bool {
        self.met_at.is_none()
    }

    fn paused(&self) -> bool {
        self.pauses.last().is_some_and(|(_, to)| to.is_none())
    }

    /// Where it stands at `now`.
    pub fn state(&self, now: UnixMillis) -> ClockState {
        if self.met_at.is_some() {
            ClockState::Met
        } else if self.breached || self.due_at.is_some_and(|d| d <= now) {
            ClockState::Breached
        } else if self.paused() {
            ClockState::Paused
        } else {
            ClockState::Running
        }
    }

    /// Milliseconds of wall time left until due at `now` (negative once past);
    /// `None` when met or paused.
    pub fn left(&self, now: UnixMillis) -> Option<i64> {
        self.due_at.filter(|_| self.running()).map(|d| d - now)
    }

    /// The next moment something must be recorded, and what: the warning, then the
    /// breach. `None` when met, paused, or both recorded.
    pub fn next_alarm(&self) -> Option<(Alarm, UnixMillis)> {
        if !self.running() {
            return None;
        }
        if !self.warned
            && let Some(at) = self.warn_at
        {
            return Some((Alarm::Warning, at));
        }
        if !self.breached {
            return self.due_at.map(|at| (Alarm::Breach, at));
        }
        None
    }

    /// The alarms due at `now` and not yet recorded, warning first.
    pub fn due_alarms(&self, now: UnixMillis) -> Vec<Alarm> {
        if !self.running() {
            return Vec::new();
        }
        let mut due = Vec::new();
        if !self.warned && self.warn_at.is_some_and(|at| at <= now) {
            due.push(Alarm::Warning);
        }
        if !self.breached && self.due_at.is_some_and(|at| at <= now) {
            due.push(Alarm::Breach);
        }
        due
    }
}

/// The clocks of a ticket's current cycles, from its events `(version, event)` in
/// order, the targets of its tier and priority, the business hours and the
/// warning point (percent of each target). A target of 0 has no clock.
pub fn clocks<'a>(
    events: impl IntoIterator<Item = (u64, &'a Recorded<TicketEvent>)>,
    targets: &Targets,
    hours: &BusinessHours,
    warning_percent: u8,
) -> Vec<Clock> {
    let (_, current) = fold(events, targets);
    current
        .into_iter()
        .map(|mut c| {
            if c.running() {
                c.timed(hours, warning_percent);
            }
            c
        })
        .collect()
}

/// Every cycle of every clock the events started, in the order they started, each
/// with its due time (also once met): what a ticket's history says about its SLA
/// under these targets and hours — for recomputing attainment under any policy.
pub fn cycles<'a>(
    events: impl IntoIterator<Item = (u64, &'a Recorded<TicketEvent>)>,
    targets: &Targets,
    hours: &BusinessHours,
) -> Vec<Clock> {
    let (mut past, current) = fold(events, targets);
    past.extend(current);
    past.sort_by_key(|c| (c.cycle, c.kind));
    for c in &mut past {
        c.timed(hours, 100);
    }
    past
}

/// How a clock's cycle ended, or stands at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Met by its due time.
    MetInTime,
    /// Met late, or still unmet past its due time.
    Breached,
    /// Unmet, and not due yet (or paused).
    Running,
}

impl Clock {
    /// The cycle's outcome at `now`.
    pub fn outcome(&self, now: UnixMillis) -> Outcome {
        match (self.met_at, self.due_at) {
            (Some(met), Some(due)) if met > due => Outcome::Breached,
            (Some(_), _) => Outcome::MetInTime,
            (None, Some(due)) if due <= now => Outcome::Breached,
            (None, _) => Outcome::Running,
        }
    }

    /// Sets the due time and warning point from the start, the target and pauses.
    fn timed(&mut self, hours: &BusinessHours, warning_percent: u8) {
        self.due_at = due(hours, self.started_at, self.target_ms, &self.pauses);
        let warn = self.target_ms * i64::from(warning_percent) / 100;
        self.warn_at = due(hours, self.started_at, warn, &self.pauses);
    }
}

/// Replaces the clock in `slot` with a new cycle; the one it replaces is kept in
/// `past`.
fn restart(slot: &mut Option<Clock>, new: Option<Clock>, past: &mut Vec<Clock>) {
    if let Some(old) = std::mem::replace(slot, new) {
        past.push(old);
    }
}

/// The clocks the events started: those replaced by a later cycle, and the current
/// ones (without due times).
fn fold<'a>(
    events: impl IntoIterator<Item = (u64, &'a Recorded<TicketEvent>)>,
    targets: &Targets,
) -> (Vec<Clock>, Vec<Clock>) {
    let mut past: Vec<Clock> = Vec::new();
    let mut first: Option<Clock> = None;
    let mut next: Option<Clock> = None;
    let mut resolution: Option<Clock> = None;
    let mut status: Option<TicketStatus> = None;
    let start =
        |kind: ClockKind, v: u64, at: UnixMillis| Clock::start(kind, v, at, kind.target(targets));
    for (version, recorded) in events {
        let at = recorded.at;
        let event = &recorded.event;
        match event {
            TicketEvent::Opened(_) => {
                restart(
                    &mut first,
                    start(ClockKind::FirstResponse, version, at),
                    &mut past,
                );
                restart(
                    &mut resolution,
                    start(ClockKind::Resolution, version, at),
                    &mut past,
                );
            }
            TicketEvent::AgentReplied { .. } => {
                for clock in [&mut first, &mut next].into_iter().flatten() {
                    if clock.running() {
                        clock.met_at = Some(at);
                    }
                }
            }
            TicketEvent::CustomerMessageAdded { reopened, .. } => {
                if *reopened {
                    restart(
                        &mut resolution,
                        start(ClockKind::Resolution, version, at),
                        &mut past,
                    );
                }
                let answered = first.as_ref().is_none_or(|f| !f.running());
                let waiting = next.as_ref().is_some_and(Clock::running);
                if answered && !waiting {
                    restart(
                        &mut next,
                        start(ClockKind::NextResponse, version, at),
                        &mut past,
                    );
                }
            }
            TicketEvent::Reopened { .. } => {
                restart(
                    &mut resolution,
                    start(ClockKind::Resolution, version, at),
                    &mut past,
                );
            }
            // The customer solved it with a self-service article: nobody answered,
            // and no answer is owed any more. A response cycle not yet breached is
            // dropped (neither met nor breached: no agent's figure); one already
            // breached stays breached, stopped now. The resolution is met.
            TicketEvent::Solved {
                self_served: Some(_),
                ..
            } => {
                for slot in [&mut first, &mut next] {
                    match slot {
                        Some(clock) if clock.running() && clock.breached => {
                            clock.met_at = Some(at);
                        }
                        Some(clock) if clock.running() => *slot = None,
                        _ => {}
                    }
                }
                if let Some(clock) = resolution.as_mut().filter(|c| c.running()) {
                    clock.met_at = Some(at);
                }
            }
            // A decline's approval sends its reason to the customer and solves.
            TicketEvent::Solved { .. } | TicketEvent::DeclineApproved { .. } => {
                for clock in [&mut first, &mut next, &mut resolution]
                    .into_iter()
                    .flatten()
                {
                    if clock.running() {
                        clock.met_at = Some(at);
                    }
                }
            }
            TicketEvent::SlaAlarm {
                clock,
                cycle,
                alarm,
                ..
            } => {
                let target = match clock {
                    ClockKind::FirstResponse => &mut first,
                    ClockKind::NextResponse => &mut next,
                    ClockKind::Resolution => &mut resolution,
                };
                if let Some(c) = target.as_mut().filter(|c| c.cycle == *cycle) {
                    match alarm {
                        Alarm::Warning => c.warned = true,
                        Alarm::Breach => c.breached = true,
                    }
                }
            }
            _ => {}
        }
        // The resolution clock stands still exactly while the ticket is pending,
        // whatever moved it there or out of it.
        let pending = event.status_after(status) == Some(TicketStatus::Pending);
        if let Some(r) = resolution.as_mut().filter(|r| r.running()) {
            if pending && !r.paused() {
                r.pauses.push((at, None));
            } else if !pending && let Some(pause) = r.pauses.last_mut().filter(|p| p.1.is_none()) {
                pause.1 = Some(at);
            }
        }
        status = event.status_after(status);
    }
    (
        past,
        [first, next, resolution].into_iter().flatten().collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Actor, Channel, Opening, Priority, Role, TenantId};

    const S: i64 = 1000;

    fn targets() -> Targets {
        Targets {
            first_response_secs: 60,
            next_response_secs: 30,
            resolution_secs: 600,
        }
    }

    fn at(event: TicketEvent, t: i64) -> Recorded<TicketEvent> {
        Recorded {
            event,
            actor: Actor::new("ana", Role::Agent),
            at: t * S,
        }
    }

    fn opened(t: i64) -> Recorded<TicketEvent> {
        at(
            TicketEvent::Opened(Opening {
                tenant: TenantId::parse("tenant", "acme").unwrap(),
                channel: Channel::Email,
                customer_id: uuid::Uuid::from_u128(1),
                subject: "s".into(),
                body: "b".into(),
                product_area: "billing".into(),
                priority: Priority::Normal,
                idempotency_key: "k".into(),
                follow_up_of: None,
            }),
            t,
        )
    }

    fn reply(t: i64, awaiting: bool) -> Recorded<TicketEvent> {
        at(
            TicketEvent::AgentReplied {
                body: "r".into(),
                awaiting_customer: awaiting,
                idempotency_key: None,
            },
            t,
        )
    }

    fn customer(t: i64) -> Recorded<TicketEvent> {
        at(
            TicketEvent::CustomerMessageAdded {
                body: "m".into(),
                channel: Channel::Email,
                idempotency_key: format!("m{t}"),
                reopened: false,
            },
            t,
        )
    }

    fn run(events: &[Recorded<TicketEvent>]) -> Vec<Clock> {
        clocks(
            events.iter().enumerate().map(|(i, r)| (i as u64 + 1, r)),
            &targets(),
            &BusinessHours::always(),
            75,
        )
    }

    fn of(clocks: &[Clock], kind: ClockKind) -> Clock {
        clocks.iter().find(|c| c.kind == kind).unwrap().clone()
    }

    #[test]
    fn first_response_is_met_by_a_public_reply_not_a_note() {
        let note = at(
            TicketEvent::NoteAdded {
                body: "n".into(),
                idempotency_key: None,
            },
            10,
        );
        let c = run(&[opened(0), note]);
        let first = of(&c, ClockKind::FirstResponse);
        assert_eq!((first.due_at, first.warn_at), (Some(60 * S), Some(45 * S)));
        assert_eq!(first.next_alarm(), Some((Alarm::Warning, 45 * S)));
        assert_eq!(first.state(61 * S), ClockState::Breached);
        let c = run(&[opened(0), reply(20, false)]);
        let first = of(&c, ClockKind::FirstResponse);
        assert_eq!(
            (first.state(100 * S), first.next_alarm()),
            (ClockState::Met, None)
        );
    }

    #[test]
    fn pending_moves_the_resolution_due_time_by_exactly_its_length() {
        let c = run(&[opened(0)]);
        assert_eq!(of(&c, ClockKind::Resolution).due_at, Some(600 * S));
        // Pending from 100 s to 250 s: due 150 s later.
        let c = run(&[opened(0), reply(100, true), customer(250)]);
        let r = of(&c, ClockKind::Resolution);
        assert_eq!(r.due_at, Some(750 * S));
        // While pending: no due time, paused.
        let c = run(&[opened(0), reply(100, true)]);
        let r = of(&c, ClockKind::Resolution);
        assert_eq!((r.due_at, r.state(200 * S)), (None, ClockState::Paused));
        assert_eq!(r.next_alarm(), None);
    }

    #[test]
    fn a_self_served_solve_meets_no_response_clock() {
        let self_served = |t| {
            at(
                TicketEvent::Solved {
                    resolution: String::new(),
                    self_served: Some(uuid::Uuid::from_u128(7)),
                    idempotency_key: None,
                },
                t,
            )
        };
        // Before the first response was due: that cycle is gone, not met.
        let c = run(&[opened(0), self_served(30)]);
        assert!(
            c.iter().all(|c| c.kind != ClockKind::FirstResponse),
            "{c:?}"
        );
        assert_eq!(of(&c, ClockKind::Resolution).met_at, Some(30 * S));
        // After its breach was recorded: it stays breached.
        let breach = at(
            TicketEvent::SlaAlarm {
                clock: ClockKind::FirstResponse,
                cycle: 1,
                alarm: Alarm::Breach,
                due_at: 60 * S,
            },
            61,
        );
        let events = [opened(0), breach, self_served(90)];
        let first = of(&run(&events), ClockKind::FirstResponse);
        assert_eq!(first.next_alarm(), None);
        let history = cycles(
            events.iter().enumerate().map(|(i, r)| (i as u64 + 1, r)),
            &targets(),
            &BusinessHours::always(),
        );
        let first = of(&history, ClockKind::FirstResponse);
        assert_eq!(first.outcome(100 * S), Outcome::Breached);
    }

    #[test]
    fn the_customer_writing_starts_the_next_response_clock() {
        let c = run(&[opened(0), reply(10, true), customer(40)]);
        let next = of(&c, ClockKind::NextResponse);
        assert_eq!((next.cycle, next.due_at), (3, Some(70 * S)));
        let c = run(&[opened(0), reply(10, true), customer(40), reply(50, false)]);
        assert_eq!(of(&c, ClockKind::NextResponse).met_at, Some(50 * S));
    }

    #[test]
    fn alarms_are_recorded_once_per_cycle_and_a_reopen_starts_a_new_one() {
        let warned = at(
            TicketEvent::SlaAlarm {
                clock: ClockKind::Resolution,
                cycle: 1,
                alarm: Alarm::Warning,
                due_at: 600 * S,
            },
            450,
        );
        let c = run(&[opened(0), warned.clone()]);
        let r = of(&c, ClockKind::Resolution);
        assert!(r.warned);
        assert_eq!(r.next_alarm(), Some((Alarm::Breach, 600 * S)));
        assert_eq!(r.due_alarms(700 * S), vec![Alarm::Breach]);
        let solved = at(
            TicketEvent::Solved {
                resolution: String::new(),
                self_served: None,
                idempotency_key: None,
            },
            500,
        );
        let reopened = at(
            TicketEvent::Reopened {
                reason: String::new(),
            },
            900,
        );
        let c = run(&[opened(0), warned, solved, reopened]);
        let r = of(&c, ClockKind::Resolution);
        assert_eq!((r.cycle, r.warned, r.due_at), (4, false, Some(1500 * S)));
    }
}
