//! SLA attainment under any policy: a ticket's clock cycles recomputed from its
//! events with a policy's targets and hours, and counted — what analytics answers
//! "what if this policy had been in force?" with.

use crate::{DomainError, Priority, Recorded, TicketEvent, UnixMillis, assignment::Tier};

use super::{
    clocks::{Clock, Outcome, cycles},
    policy::SlaPolicy,
};

/// The clock cycles of a ticket's events (every event, in order) under `policy`,
/// for a ticket of `tier` and `priority`.
pub fn under(
    policy: &SlaPolicy,
    tier: Tier,
    priority: Priority,
    events: &[Recorded<TicketEvent>],
) -> Result<Vec<Clock>, DomainError> {
    let hours = policy.hours()?;
    let targets = policy.targets(tier, priority);
    let numbered = (1_u64..).zip(events.iter());
    Ok(cycles(numbered, &targets, &hours))
}

/// Clock cycles and tickets counted by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attainment {
    /// Tickets counted.
    pub tickets: u64,
    /// Of them, with at least one cycle breached.
    pub tickets_breached: u64,
    /// Clock cycles counted.
    pub clocks: u64,
    /// Met by their due time.
    pub met: u64,
    /// Met late, or unmet past due.
    pub breached: u64,
    /// Unmet and not due yet.
    pub running: u64,
}

impl Attainment {
    /// Counts one ticket's cycles as they stand at `now`.
    pub fn add(&mut self, cycles: &[Clock], now: UnixMillis) {
        self.tickets += 1;
        let mut breached = false;
        for clock in cycles {
            self.clocks += 1;
            match clock.outcome(now) {
                Outcome::MetInTime => self.met += 1,
                Outcome::Breached => {
                    self.breached += 1;
                    breached = true;
                }
                Outcome::Running => self.running += 1,
            }
        }
        self.tickets_breached += u64::from(breached);
    }

    /// Adds another count to this one.
    pub fn merge(&mut self, other: &Attainment) {
        self.tickets += other.tickets;
        self.tickets_breached += other.tickets_breached;
        self.clocks += other.clocks;
        self.met += other.met;
        self.breached += other.breached;
        self.running += other.running;
    }

    /// Cycles met in time, as a percentage of the decided ones (met or breached);
    /// 100 when none is decided yet.
    pub fn percent(&self) -> f64 {
        let decided = self.met + self.breached;
        if decided == 0 {
            100.0
        } else {
            100.0 * self.met as f64 / decided as f64
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{
        Actor, Channel, Opening, Role, TenantId,
        sla::policy::{Escalation, TargetRow, Targets},
    };
    use proptest::prelude::*;

    const S: i64 = 1000;

    fn policy(first: u32, next: u32, resolution: u32) -> SlaPolicy {
        SlaPolicy {
            default_tier: Tier::Standard,
            targets: vec![TargetRow {
                tier: Tier::Standard,
                priority: Priority::Normal,
                targets: Targets {
                    first_response_secs: first,
                    next_response_secs: next,
                    resolution_secs: resolution,
                },
            }],
            calendar: None,
            warning_percent: 75,
            time_budget_minutes: [0, 0, 0],
            escalation: Escalation::Raise,
            auto_close_after_secs: 0,
            check_in_after_secs: 0,
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

    fn reply(t: i64) -> Recorded<TicketEvent> {
        at(
            TicketEvent::AgentReplied {
                body: "r".into(),
                awaiting_customer: false,
                idempotency_key: None,
            },
            t,
        )
    }

    fn customer(t: i64, reopened: bool) -> Recorded<TicketEvent> {
        at(
            TicketEvent::CustomerMessageAdded {
                body: "c".into(),
                channel: Channel::Email,
                idempotency_key: format!("c{t}"),
                reopened,
            },
            t,
        )
    }

    fn solved(t: i64) -> Recorded<TicketEvent> {
        at(
            TicketEvent::Solved {
                resolution: "done".into(),
                self_served: None,
                idempotency_key: None,
            },
            t,
        )
    }

    fn count(policy: &SlaPolicy, events: &[Recorded<TicketEvent>], now: i64) -> Attainment {
        let cycles = under(policy, Tier::Standard, Priority::Normal, events).unwrap();
        let mut a = Attainment::default();
        a.add(&cycles, now * S);
        a
    }

    #[test]
    fn every_cycle_counts_including_those_a_reopen_replaced() {
        // Opened at 0, first reply at 50 (target 60: met), customer writes at 100,
        // reply at 200 (next target 30: late), solved at 300 (resolution met),
        // the customer reopens at 400 (a new resolution cycle, and a next response
        // owed), solved at 2000 (both late).
        let events = [
            opened(0),
            reply(50),
            customer(100, false),
            reply(200),
            solved(300),
            customer(400, true),
            solved(2000),
        ];
        let a = count(&policy(60, 30, 1000), &events, 3000);
        assert_eq!(
            (a.clocks, a.met, a.breached, a.running),
            (5, 2, 3, 0),
            "{a:?}"
        );
        assert_eq!(a.tickets_breached, 1);
        assert_eq!(a.percent(), 40.0);
        // A laxer policy meets them all; no targets, no clocks.
        assert_eq!(count(&policy(60, 2000, 2000), &events, 3000).breached, 0);
        assert_eq!(count(&policy(0, 0, 0), &events, 3000).clocks, 0);
    }

    #[test]
    fn an_unmet_clock_is_running_until_due_then_breached() {
        let events = [opened(0)];
        let early = count(&policy(60, 0, 0), &events, 59);
        assert_eq!((early.running, early.breached), (1, 0));
        assert_eq!(early.percent(), 100.0, "nothing decided yet");
        let late = count(&policy(60, 0, 0), &events, 61);
        assert_eq!((late.running, late.breached), (0, 1));
    }

    fn script() -> impl Strategy<Value = Vec<Recorded<TicketEvent>>> {
        prop::collection::vec((0_u8..4, 1_i64..500), 0..12).prop_map(|steps| {
            let mut t = 0;
            let mut events = vec![opened(0)];
            let mut solved_now = false;
            for (kind, gap) in steps {
                t += gap;
                events.push(match kind {
                    0 => reply(t),
                    1 => customer(t, solved_now),
                    2 => solved(t),
                    _ => customer(t, false),
                });
                solved_now = kind == 2;
            }
            events
        })
    }

    proptest! {
        /// Longer targets never breach more: a laxer policy can only help.
        #[test]
        fn laxer_targets_never_breach_more(
            events in script(),
            targets in (1_u32..600, 1_u32..600, 1_u32..3000),
            extra in (0_u32..600, 0_u32..600, 0_u32..3000),
            now in 0_i64..10_000,
        ) {
            let strict = policy(targets.0, targets.1, targets.2);
            let lax = policy(targets.0 + extra.0, targets.1 + extra.1, targets.2 + extra.2);
            let (s, l) = (count(&strict, &events, now), count(&lax, &events, now));
            prop_assert_eq!(s.clocks, l.clocks);
            prop_assert!(l.breached <= s.breached, "strict {:?} lax {:?}", s, l);
            prop_assert!(l.tickets_breached <= s.tickets_breached);
        }
    }
}
