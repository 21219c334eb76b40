//! Reading agents: one by id, or every agent of a tenant.

use async_nats::jetstream;
use frontline_domain::{Agent, Caller, DomainError, TenantId, ids};
use frontline_eventlog::{EventLog, Loaded};
use frontline_runtime::ApiError;
use futures::{StreamExt as _, TryStreamExt as _};
use uuid::Uuid;

/// Agent `agent_id` as `caller` may see it: NOT_FOUND when unknown or of tenants
/// the caller does not cover.
pub async fn load_visible(
    log: &EventLog,
    caller: &Caller,
    agent_id: &str,
) -> Result<Loaded<Agent>, ApiError> {
    let loaded = log.load::<Agent>(&ids::agent_id(agent_id)).await?;
    if !loaded.state.seen_by(caller) {
        return Err(DomainError::NotFound {
            kind: "agent",
            id: agent_id.to_string(),
        }
        .into());
    }
    Ok(loaded)
}

/// Every agent working for `tenant`, ordered by agent id, each as loaded (with the
/// sequence an assignment batch expects). Agents are few (people, not tickets): the
/// stream's list of agent subjects is read, then each agent.
pub async fn of_tenant(
    log: &EventLog,
    tenant: &TenantId,
    include_inactive: bool,
) -> Result<Vec<Loaded<Agent>>, ApiError> {
    let js = jetstream::new(log.client().clone());
    let unavailable =
        |e: &dyn std::fmt::Display| ApiError::Unavailable(format!("list agents: {e}"));
    let stream = js
        .get_stream(log.stream_name())
        .await
        .map_err(|e| unavailable(&e))?;
    let subjects: Vec<String> = stream
        .info_with_subjects("frontline.agent.>")
        .await
        .map_err(|e| unavailable(&e))?
        .map_ok(|(subject, _)| subject)
        .try_collect()
        .await
        .map_err(|e| unavailable(&e))?;
    let ids: Vec<Uuid> = subjects
        .iter()
        .filter_map(|s| s.strip_prefix("frontline.agent."))
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    let mut agents: Vec<Loaded<Agent>> = futures::stream::iter(ids)
        .map(|id| async move { log.load::<Agent>(&id).await })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    agents.retain(|a| {
        a.state
            .profile
            .as_ref()
            .is_some_and(|p| p.tenants.contains(tenant))
            && (include_inactive || a.state.active)
    });
    agents.sort_by(|a, b| a.state.agent_id.cmp(&b.state.agent_id));
    Ok(agents)
}
