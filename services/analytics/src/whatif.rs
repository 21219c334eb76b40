//! `SimulateSlaPolicy`: the tickets opened in a range, their events read back from
//! the log and their SLA clocks recomputed under a proposed policy and under the
//! tenant's actual one — counted per tier, nothing written.

use frontline_domain::{
    Priority, TenantId, Ticket, UnixMillis,
    assignment::Tier,
    ids,
    sla::{
        attainment::{Attainment, under},
        policy::{PolicyRecord, SlaPolicy},
    },
};
use frontline_eventlog::{EventLog, LoggedEvent};
use frontline_proto::{
    convert::{self, from_wire},
    v1,
};
use frontline_runtime::ApiError;
use futures::{StreamExt as _, TryStreamExt as _};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{filters::Range, store::LIVE};

/// The most tickets one simulation replays.
pub const MAX_TICKETS: usize = 20_000;
/// Tickets read from the log at once.
const READS_IN_FLIGHT: usize = 32;
/// The tiers, in answer order.
const TIERS: [Tier; 3] = [Tier::Basic, Tier::Standard, Tier::Extended];

/// The proposed policy against the tenant's, over `tenant`'s tickets opened in
/// `range`, with clocks still running counted at `now`.
pub async fn simulate(
    log: &EventLog,
    db: &PgPool,
    tenant: &TenantId,
    request: &v1::SimulateSlaPolicyRequest,
    range: Range,
    now: UnixMillis,
) -> Result<v1::SimulateSlaPolicyResponse, ApiError> {
    let proposed = proposed(request)?;
    let actual = log
        .load::<PolicyRecord>(&ids::sla_policy_id(tenant))
        .await?
        .state;
    let tickets = tickets(db, tenant, range).await?;

    let policies = (&proposed, actual.policy.as_ref());
    let counts: Vec<(Tier, Attainment, Attainment)> = futures::stream::iter(tickets)
        .map(|(id, tier, priority)| async move {
            let events: Vec<_> = log
                .read::<Ticket>(&id, None)
                .await?
                .into_iter()
                .filter_map(LoggedEvent::into_recorded)
                .collect();
            let count = |policy: Option<&SlaPolicy>| -> Result<Attainment, ApiError> {
                let mut a = Attainment::default();
                if let Some(policy) = policy {
                    a.add(&under(policy, tier, priority, &events)?, now);
                }
                Ok(a)
            };
            Ok::<_, ApiError>((tier, count(Some(policies.0))?, count(policies.1)?))
        })
        .buffer_unordered(READS_IN_FLIGHT)
        .try_collect()
        .await?;

    let mut response = v1::SimulateSlaPolicyResponse {
        actual_policy_version: actual.version,
        computed_at: Some(convert::timestamp(now)),
        ..Default::default()
    };
    let (mut proposed_total, mut actual_total) = (Attainment::default(), Attainment::default());
    for tier in TIERS {
        let (mut p, mut a) = (Attainment::default(), Attainment::default());
        for (_, tp, ta) in counts.iter().filter(|(t, ..)| *t == tier) {
            p.merge(tp);
            a.merge(ta);
        }
        proposed_total.merge(&p);
        actual_total.merge(&a);
        response.tiers.push(v1::TierAttainment {
            tier: v1::Tier::from(tier).into(),
            proposed: Some(wire(&p)),
            actual: Some(wire(&a)),
        });
    }
    response.proposed_total = Some(wire(&proposed_total));
    response.actual_total = Some(wire(&actual_total));
    Ok(response)
}

/// The proposed policy, checked as `PutSlaPolicy` checks it.
fn proposed(request: &v1::SimulateSlaPolicyRequest) -> Result<SlaPolicy, ApiError> {
    let wire = request
        .policy
        .as_ref()
        .ok_or_else(|| ApiError::invalid("policy", "required"))?;
    let policy = convert::sla_policy_from_wire("policy", wire)?;
    policy.validate().map_err(|e| match e {
        frontline_domain::DomainError::InvalidField { field, reason } => {
            ApiError::invalid(format!("policy.{field}"), reason)
        }
        other => other.into(),
    })?;
    Ok(policy)
}

/// The tenant's tickets opened in `range` with their tier and priority now (at
/// most [`MAX_TICKETS`]).
async fn tickets(
    db: &PgPool,
    tenant: &TenantId,
    range: Range,
) -> Result<Vec<(Uuid, Tier, Priority)>, ApiError> {
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
        "SELECT t.ticket_id, t.tier, t.priority FROM analytics_tickets t \
         WHERE t.seq_to = {LIVE} AND t.tenant = "
    ));
    q.push_bind(tenant.as_str().to_string());
    range.push(&mut q, "t.opened_at");
    q.push(" LIMIT ");
    q.push_bind(i64::try_from(MAX_TICKETS + 1).unwrap_or(i64::MAX));
    let rows: Vec<(Uuid, i16, i16)> = q.build_query_as().fetch_all(db).await?;
    if rows.len() > MAX_TICKETS {
        return Err(ApiError::invalid(
            "range",
            format!("holds more than {MAX_TICKETS} tickets: narrow it"),
        ));
    }
    Ok(rows
        .into_iter()
        .map(|(id, tier, priority)| {
            (
                id,
                from_wire::<v1::Tier, Tier>(i32::from(tier)).unwrap_or_default(),
                from_wire::<v1::Priority, Priority>(i32::from(priority)).unwrap_or_default(),
            )
        })
        .collect())
}

fn wire(a: &Attainment) -> v1::SlaAttainment {
    v1::SlaAttainment {
        tickets: a.tickets,
        tickets_breached: a.tickets_breached,
        clocks: a.clocks,
        met: a.met,
        breached: a.breached,
        running: a.running,
        attainment_percent: a.percent(),
    }
}
