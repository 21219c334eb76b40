//! What routing records on a ticket about its promises: SLA alarms (a warning, a
//! breach — once per clock and cycle), escalations, logged work and the time
//! budget.
//!
//! Rules:
//! - An alarm is recorded once per clock, cycle and kind; a repeat records nothing.
//! - An escalation is recorded once per clock and cycle.
//! - Only staff who work tickets (agents, managers) log time: 1 to 1 440 minutes
//!   at once, on a ticket that is not closed.
//! - The time budget is exceeded once per ticket.

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{
    DomainError, UnixMillis, limits,
    sla::clocks::{Alarm, ClockKind},
};

/// Most minutes logged at once (a day).
pub const MAX_MINUTES: u32 = 24 * 60;

pub(super) fn validate_minutes(minutes: u32) -> Result<(), DomainError> {
    if (1..=MAX_MINUTES).contains(&minutes) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "minutes",
            format!("from 1 to {MAX_MINUTES}"),
        ))
    }
}

pub(super) fn validate_reason(reason: &str) -> Result<(), DomainError> {
    limits::text("reason", reason, limits::MAX_REASON_CHARS)
}

pub(super) fn alarm(
    ticket: &Ticket,
    status: TicketStatus,
    clock: ClockKind,
    cycle: u64,
    alarm: Alarm,
    due_at: UnixMillis,
) -> Result<Option<TicketEvent>, DomainError> {
    if ticket.alarms.contains(&(clock, cycle, alarm)) {
        return Ok(None);
    }
    if !status.is_active() {
        return Err(refuse(
            "record an SLA alarm",
            format!("the ticket is {}", status.as_str()),
        ));
    }
    Ok(Some(TicketEvent::SlaAlarm {
        clock,
        cycle,
        alarm,
        due_at,
    }))
}

pub(super) fn escalate(
    ticket: &Ticket,
    (clock, cycle): (ClockKind, u64),
    reason: &str,
    team: &str,
    reassign_to: &str,
) -> Option<TicketEvent> {
    (!ticket.escalations.contains(&(clock, cycle))).then(|| TicketEvent::EscalationRaised {
        clock,
        cycle,
        reason: reason.to_string(),
        team: team.to_string(),
        reassign_to: reassign_to.to_string(),
    })
}

pub(super) fn log_time(status: TicketStatus, minutes: u32) -> Result<TicketEvent, DomainError> {
    if status == TicketStatus::Closed {
        return Err(refuse("log time", "the ticket is closed"));
    }
    Ok(TicketEvent::TimeLogged { minutes })
}

pub(super) fn budget(ticket: &Ticket, budget: u32) -> Result<Option<TicketEvent>, DomainError> {
    if ticket.budget_exceeded {
        return Ok(None);
    }
    if budget == 0 || ticket.minutes_logged <= budget {
        return Err(refuse(
            "flag the time budget",
            format!("{} of {budget} minutes logged", ticket.minutes_logged),
        ));
    }
    Ok(Some(TicketEvent::TimeBudgetExceeded {
        minutes: ticket.minutes_logged,
        budget,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn alarms_and_escalations_once_per_clock_and_cycle() {
        let mut t = ticket(TicketStatus::Open);
        let first = alarm(
            &t,
            TicketStatus::Open,
            ClockKind::Resolution,
            1,
            Alarm::Breach,
            5,
        );
        assert!(first.unwrap().is_some());
        t.alarms.insert((ClockKind::Resolution, 1, Alarm::Breach));
        assert_eq!(
            alarm(
                &t,
                TicketStatus::Open,
                ClockKind::Resolution,
                1,
                Alarm::Breach,
                5
            ),
            Ok(None)
        );
        assert!(
            alarm(
                &t,
                TicketStatus::Open,
                ClockKind::Resolution,
                4,
                Alarm::Breach,
                5
            )
            .unwrap()
            .is_some()
        );
        refusal(alarm(
            &t,
            TicketStatus::Solved,
            ClockKind::Resolution,
            4,
            Alarm::Breach,
            5,
        ));
        let first = (ClockKind::FirstResponse, 1);
        assert!(escalate(&t, first, "r", "", "").is_some());
        t.escalations.insert(first);
        assert!(escalate(&t, first, "r", "", "bo").is_none());
    }

    #[test]
    fn time_is_logged_in_bounds_and_the_budget_flagged_once() {
        assert_eq!(invalid_field(validate_minutes(0)), "minutes");
        assert_eq!(invalid_field(validate_minutes(MAX_MINUTES + 1)), "minutes");
        assert!(refusal(log_time(TicketStatus::Closed, 5)).contains("closed"));
        let mut t = ticket(TicketStatus::Open);
        t.minutes_logged = 30;
        assert!(refusal(budget(&t, 30)).contains("30 of 30"));
        t.minutes_logged = 31;
        assert!(budget(&t, 30).unwrap().is_some());
        t.budget_exceeded = true;
        assert_eq!(budget(&t, 30), Ok(None));
    }
}
