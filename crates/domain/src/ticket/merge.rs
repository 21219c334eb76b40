//! `Merge` and `Unmerge`: a duplicate ticket folded into another.
//!
//! Rules:
//! - Staff merge a ticket (the source) into another (the target) of the same
//!   tenant: an agent only tickets of the same customer, a manager any two.
//! - The source becomes read-only and points to the target; the target's timeline
//!   shows the source's messages from then on. Nothing is moved or rewritten.
//! - One level: a merged ticket takes no merges, and is never a target; a closed
//!   ticket is never a target (it takes nothing new). Merging again is a repeat.
//! - `Unmerge` writes the compensating events on both: each timeline is as it was
//!   before, and what was written while they were merged stays where it was
//!   written.

use uuid::Uuid;

use super::{Ticket, TicketEvent, TicketStatus, refuse};
use crate::{Action, Actor, DomainError, Role, actor::authorize, limits};

/// The events on (source, target).
pub type MergeEvents = (TicketEvent, TicketEvent);

fn exists(ticket: &Ticket, id: Uuid) -> Result<(), DomainError> {
    if ticket.status.is_some() {
        Ok(())
    } else {
        Err(DomainError::NotFound {
            kind: "ticket",
            id: id.to_string(),
        })
    }
}

/// The reason's limits.
pub fn validate(reason: &str) -> Result<(), DomainError> {
    limits::optional_body("reason", reason)
}

/// Merges `source` into `target` for `actor`; `Ok(None)` when it already is.
/// Tickets of tenants that differ are not found to each other.
pub fn merge(
    actor: &Actor,
    (source_id, source): (Uuid, &Ticket),
    (target_id, target): (Uuid, &Ticket),
    reason: &str,
) -> Result<Option<MergeEvents>, DomainError> {
    authorize(actor, Action::MergeTickets)?;
    validate(reason)?;
    exists(source, source_id)?;
    exists(target, target_id)?;
    if source.tenant != target.tenant {
        return Err(DomainError::NotFound {
            kind: "ticket",
            id: target_id.to_string(),
        });
    }
    if source_id == target_id {
        return Err(DomainError::invalid(
            "target_ticket_id",
            "cannot merge a ticket into itself",
        ));
    }
    if source.merged_into == Some(target_id) {
        return Ok(None);
    }
    if let Some(elsewhere) = source.merged_into {
        return Err(refuse(
            "merge",
            format!("{source_id} is already merged into {elsewhere}; unmerge it first"),
        ));
    }
    if !source.merged_from.is_empty() {
        return Err(refuse(
            "merge",
            format!("{source_id} has tickets merged into it; unmerge them first"),
        ));
    }
    if let Some(elsewhere) = target.merged_into {
        return Err(refuse(
            "merge",
            format!("{target_id} is merged into {elsewhere}; merge into that one"),
        ));
    }
    if target.status == Some(TicketStatus::Closed) {
        return Err(refuse("merge", format!("{target_id} is closed")));
    }
    if actor.role != Role::Manager && source.customer_id != target.customer_id {
        return Err(DomainError::NotPermitted {
            action: "merge",
            reason: "the tickets are of different customers: a manager may merge them".into(),
        });
    }
    Ok(Some((
        TicketEvent::MergedInto {
            target: target_id,
            reason: reason.to_string(),
        },
        TicketEvent::MergedFrom { source: source_id },
    )))
}

/// Undoes the merge of `source` into `target`: the compensating events.
pub fn unmerge(
    actor: &Actor,
    (source_id, source): (Uuid, &Ticket),
    (target_id, target): (Uuid, &Ticket),
    reason: &str,
) -> Result<MergeEvents, DomainError> {
    authorize(actor, Action::MergeTickets)?;
    validate(reason)?;
    exists(source, source_id)?;
    if source.merged_into != Some(target_id) || !target.merged_from.contains(&source_id) {
        return Err(refuse("unmerge", format!("{source_id} is not merged")));
    }
    if actor.role != Role::Manager && source.customer_id != target.customer_id {
        return Err(DomainError::NotPermitted {
            action: "unmerge",
            reason: "the tickets are of different customers: a manager may unmerge them".into(),
        });
    }
    Ok((
        TicketEvent::Unmerged {
            target: target_id,
            reason: reason.to_string(),
        },
        TicketEvent::UnmergedFrom { source: source_id },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    const A: Uuid = Uuid::from_u128(0xA);
    const B: Uuid = Uuid::from_u128(0xB);

    fn agent() -> Actor {
        Actor::new("ana", Role::Agent)
    }

    #[test]
    fn an_agent_merges_tickets_of_one_customer() {
        let (a, b) = (ticket(TicketStatus::Open), ticket(TicketStatus::New));
        let (on_source, on_target) = merge(&agent(), (A, &a), (B, &b), "same router")
            .unwrap()
            .unwrap();
        assert_eq!(
            on_source,
            TicketEvent::MergedInto {
                target: B,
                reason: "same router".into()
            }
        );
        assert_eq!(on_target, TicketEvent::MergedFrom { source: A });
    }

    #[test]
    fn other_customers_tickets_take_a_manager() {
        let a = ticket(TicketStatus::Open);
        let b = Ticket {
            customer_id: Uuid::from_u128(9),
            ..ticket(TicketStatus::Open)
        };
        let err = merge(&agent(), (A, &a), (B, &b), "").unwrap_err();
        assert!(matches!(err, DomainError::NotPermitted { .. }), "{err:?}");
        let max = Actor::new("max", Role::Manager);
        assert!(merge(&max, (A, &a), (B, &b), "").unwrap().is_some());
        let shop = Actor::new("web-shop", Role::CustomerSystem);
        assert!(matches!(
            merge(&shop, (A, &a), (B, &b), ""),
            Err(DomainError::Forbidden { .. })
        ));
    }

    #[test]
    fn one_level_and_never_into_itself_or_a_closed_ticket() {
        let open = ticket(TicketStatus::Open);
        assert!(matches!(
            merge(&agent(), (A, &open), (A, &open), ""),
            Err(DomainError::InvalidField { .. })
        ));
        let merged = Ticket {
            merged_into: Some(B),
            ..ticket(TicketStatus::Open)
        };
        assert_eq!(merge(&agent(), (A, &merged), (B, &open), ""), Ok(None));
        assert!(
            refusal(merge(
                &agent(),
                (A, &merged),
                (Uuid::from_u128(7), &open),
                ""
            ))
            .contains("already merged")
        );
        assert!(
            refusal(merge(&agent(), (A, &open), (B, &merged), "")).contains("merge into that one")
        );
        let closed = ticket(TicketStatus::Closed);
        assert!(refusal(merge(&agent(), (A, &open), (B, &closed), "")).contains("closed"));
        let mut target = ticket(TicketStatus::Open);
        target.merged_from.insert(Uuid::from_u128(3));
        assert!(refusal(merge(&agent(), (B, &target), (A, &open), "")).contains("merged into it"));
    }

    #[test]
    fn unmerge_compensates_only_a_merge() {
        let source = Ticket {
            merged_into: Some(B),
            ..ticket(TicketStatus::Open)
        };
        let mut target = ticket(TicketStatus::Open);
        target.merged_from.insert(A);
        assert_eq!(
            unmerge(&agent(), (A, &source), (B, &target), "not the same"),
            Ok((
                TicketEvent::Unmerged {
                    target: B,
                    reason: "not the same".into()
                },
                TicketEvent::UnmergedFrom { source: A }
            ))
        );
        let open = ticket(TicketStatus::Open);
        assert!(refusal(unmerge(&agent(), (A, &open), (B, &target), "")).contains("not merged"));
    }
}
