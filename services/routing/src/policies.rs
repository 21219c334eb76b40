//! Tenants' SLA policies (`frontline.policy.<id>`): put by managers, read by staff.

use frontline_domain::{Caller, ids, sla::policy::PolicyRecord};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, execute};
use frontline_proto::{convert, v1};
use frontline_runtime::{ApiError, now_millis};

use crate::sla::policy_of;

/// Puts `request`'s policy for the tenant `caller` acts in.
pub async fn put(
    log: &EventLog,
    (caller, meta): (&Caller, &EventMeta),
    tenant: frontline_domain::TenantId,
    options: CommandOptions,
    request: &v1::PutSlaPolicyRequest,
) -> Result<v1::PutSlaPolicyResponse, ApiError> {
    let wire = request
        .policy
        .as_ref()
        .ok_or_else(|| ApiError::invalid("policy", "required"))?;
    let policy = convert::sla_policy_from_wire("policy", wire)?;
    let outcome = execute(
        log,
        &ids::sla_policy_id(&tenant),
        meta,
        options,
        now_millis,
        |record: &PolicyRecord, _| record.decide(&tenant, &policy, &caller.actor),
    )
    .await?;
    if outcome.appended {
        tracing::info!(%tenant, version = outcome.loaded.state.version, "SLA policy put");
    }
    Ok(v1::PutSlaPolicyResponse {
        policy: outcome
            .loaded
            .state
            .policy
            .as_ref()
            .map(convert::sla_policy),
        version: outcome.loaded.state.version,
    })
}

/// The policy of `tenant`.
pub async fn get(
    log: &EventLog,
    tenant: &frontline_domain::TenantId,
) -> Result<v1::GetSlaPolicyResponse, ApiError> {
    let record = policy_of(log, tenant).await?.state;
    Ok(v1::GetSlaPolicyResponse {
        policy: record.policy.as_ref().map(convert::sla_policy),
        version: record.version,
    })
}
