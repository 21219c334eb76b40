//! Reading agents: one by id, or every agent of a tenant.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

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
    let ids = agent_ids(log).await?;
    load_of_tenant(log, ids, tenant, include_inactive).await
}

/// Which agents exist, remembered for [`Roster::FRESH`]: listing the stream's agent
/// subjects is the costly part of reading a tenant's agents, and it changes only
/// when an agent is registered. The agents themselves are always loaded fresh (an
/// assignment's batch checks the chosen one's state anyway).
#[derive(Clone, Debug, Default)]
pub struct Roster {
    cached: Arc<Mutex<Option<Listing>>>,
}

/// When the agents were listed, and their ids.
type Listing = (Instant, Vec<Uuid>);

impl Roster {
    /// How long a listing is reused.
    pub const FRESH: Duration = Duration::from_secs(2);

    /// Lists again on the next read (an agent was registered).
    pub fn forget(&self) {
        if let Ok(mut cached) = self.cached.lock() {
            *cached = None;
        }
    }

    /// The active agents of `tenant`, as [`of_tenant`] reads them.
    pub async fn of_tenant(
        &self,
        log: &EventLog,
        tenant: &TenantId,
    ) -> Result<Vec<Loaded<Agent>>, ApiError> {
        let fresh = self
            .cached
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(at, _)| at.elapsed() < Self::FRESH)
            .map(|(_, ids)| ids);
        let ids = match fresh {
            Some(ids) => ids,
            None => {
                let ids = agent_ids(log).await?;
                if let Ok(mut cached) = self.cached.lock() {
                    *cached = Some((Instant::now(), ids.clone()));
                }
                ids
            }
        };
        load_of_tenant(log, ids, tenant, false).await
    }
}

/// Each tenant's agents as this process last saw them, behind one lock per tenant.
/// Decisions for a tenant are taken one at a time here — two at once would both
/// pick the least-loaded agent and one would lose the race — from agents kept
/// current by this process's own commits, and loaded again after a lost race (a
/// change made elsewhere) or when older than [`Roster::FRESH`]. Correctness does not
/// rest on this: an assignment's batch checks the chosen agent's state.
#[derive(Clone, Debug, Default)]
pub struct Desks {
    desks: Arc<Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<Desk>>>>>,
    roster: Roster,
}

/// One tenant's agents, as last seen.
#[derive(Debug, Default)]
pub struct Desk {
    seen: Option<(Instant, Vec<Loaded<Agent>>)>,
}

impl Desks {
    /// Waits for `tenant`'s desk.
    pub async fn lock(&self, tenant: &TenantId) -> tokio::sync::OwnedMutexGuard<Desk> {
        let desk = match self.desks.lock() {
            Ok(mut desks) => desks.entry(tenant.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        desk.lock_owned().await
    }

    /// An agent was registered: list the agents again.
    pub fn forget(&self) {
        self.roster.forget();
        if let Ok(desks) = self.desks.lock() {
            for desk in desks.values() {
                if let Ok(mut desk) = desk.try_lock() {
                    desk.seen = None;
                }
            }
        }
    }

    /// `tenant`'s active agents: as last seen, or loaded (`fresh`: always loaded).
    pub async fn agents(
        &self,
        desk: &mut Desk,
        log: &EventLog,
        tenant: &TenantId,
        fresh: bool,
    ) -> Result<Vec<Loaded<Agent>>, ApiError> {
        if !fresh
            && let Some((at, agents)) = &desk.seen
            && at.elapsed() < Roster::FRESH
        {
            return Ok(agents.clone());
        }
        let agents = self.roster.of_tenant(log, tenant).await?;
        desk.seen = Some((Instant::now(), agents.clone()));
        Ok(agents)
    }
}

impl Desk {
    /// `agent` as this process just wrote it.
    pub fn update(&mut self, agent: Loaded<Agent>) {
        if let Some((_, agents)) = &mut self.seen
            && let Some(slot) = agents
                .iter_mut()
                .find(|a| a.state.agent_id == agent.state.agent_id)
        {
            *slot = agent;
        }
    }

    /// Something changed elsewhere: load again next time.
    pub fn forget(&mut self) {
        self.seen = None;
    }
}

/// The ids of every agent ever registered, from the stream's subjects.
async fn agent_ids(log: &EventLog) -> Result<Vec<Uuid>, ApiError> {
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
    Ok(subjects
        .iter()
        .filter_map(|s| s.strip_prefix("frontline.agent."))
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect())
}

/// Loads `ids` and keeps `tenant`'s, ordered by agent id.
async fn load_of_tenant(
    log: &EventLog,
    ids: Vec<Uuid>,
    tenant: &TenantId,
    include_inactive: bool,
) -> Result<Vec<Loaded<Agent>>, ApiError> {
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
