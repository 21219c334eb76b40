//! A cap on one caller's calls in flight at a service: one tenant's system (or one
//! agent's runaway script) cannot take every worker and connection of a service
//! from everyone else. A call over the cap is refused at once with
//! `RESOURCE_EXHAUSTED` — before its body is read — rather than queued: the caller
//! retries with backoff, and the service's memory stays bounded.
//!
//! The authenticator takes the slot (it knows the caller first) and puts it in the
//! request's extensions; [`crate::handle`] holds it until the handler has answered.
//! A streaming call (`WatchTicket`, `WatchQueue`) holds it only while the stream
//! is set up, not while it runs: long-lived watches are not counted here.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
};

use frontline_domain::{Caller, TenantScope};

use crate::ApiError;

/// Default for `FRONTLINE_CALLER_MAX_IN_FLIGHT`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The calls each caller has in flight; entries exist only while calls do.
pub struct InFlightLimit {
    max: usize,
    counts: Mutex<HashMap<String, usize>>,
}

impl fmt::Debug for InFlightLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlightLimit")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// One call's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct InFlight {
    limit: Arc<InFlightLimit>,
    key: String,
}

impl InFlightLimit {
    /// At most `max` calls in flight per caller (at least 1).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(InFlightLimit {
            max: max.max(1),
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one call of `caller`, or `RESOURCE_EXHAUSTED` when they already
    /// have `max` in flight here.
    pub fn enter(self: &Arc<Self>, caller: &Caller) -> Result<InFlight, ApiError> {
        let key = key(caller);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            metrics::counter!("frontline_caller_limited_total").increment(1);
            return Err(ApiError::ResourceExhausted(format!(
                "{} has {} calls in flight here, the most one caller may have \
                 (FRONTLINE_CALLER_MAX_IN_FLIGHT); retry with backoff",
                caller.actor.id, self.max
            )));
        }
        *count += 1;
        Ok(InFlight {
            limit: Arc::clone(self),
            key,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = self.limit.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// One caller: the same subject with another role or other tenants is another
/// caller (tokens of different systems may share a subject).
fn key(caller: &Caller) -> String {
    let tenants = match &caller.tenants {
        TenantScope::All => "*".to_string(),
        TenantScope::Named(named) => named
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    };
    format!(
        "{}\u{0}{}\u{0}{tenants}",
        caller.actor.role, caller.actor.id
    )
}

#[cfg(test)]
mod tests {
    use frontline_domain::{Actor, Role, TenantId};

    use super::*;

    fn caller(id: &str) -> Caller {
        let tenant = TenantId::parse("tenant", "acme").unwrap();
        Caller::new(
            Actor::new(id, Role::Agent),
            TenantScope::Named([tenant].into()),
        )
        .unwrap()
    }

    #[test]
    fn a_caller_over_the_cap_is_refused_until_a_slot_frees() {
        let limit = InFlightLimit::new(2);
        let ana = caller("ana");
        let first = limit.enter(&ana).unwrap();
        let _second = limit.enter(&ana).unwrap();
        let refused = limit.enter(&ana).unwrap_err();
        assert!(
            matches!(refused, ApiError::ResourceExhausted(_)),
            "{refused:?}"
        );
        // Another caller is not affected.
        let _bo = limit.enter(&caller("bo")).unwrap();
        drop(first);
        let _third = limit.enter(&ana).unwrap();
    }

    #[test]
    fn entries_are_dropped_with_their_last_call() {
        let limit = InFlightLimit::new(1);
        for i in 0..100 {
            let _slot = limit.enter(&caller(&format!("agent-{i}"))).unwrap();
        }
        assert!(limit.counts.lock().unwrap().is_empty());
    }
}
