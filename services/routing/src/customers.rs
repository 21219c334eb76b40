//! Customers' tiers of service: set by managers on the customer's record (the one
//! linked records point to), read by the assigner for rule 1 and the queue order.

use frontline_domain::{
    Caller, Customer, CustomerCommand, DomainError, assignment::Tier, limits,
    sla::policy::SlaPolicy,
};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, execute};
use frontline_proto::{convert, v1};
use frontline_runtime::{ApiError, now_millis};
use uuid::Uuid;

use crate::agents;

/// A customer's tier, as it applies to their tickets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierOf {
    /// The tier in force.
    pub tier: Tier,
    /// No manager set one: the tenant's default applies.
    pub default: bool,
    /// The named agent (extended tier only).
    pub named_agent: Option<String>,
    /// The record the tier was read from, when the customer's is linked into it.
    pub person: Option<Uuid>,
}

impl TierOf {
    /// On the wire, for customer `customer_id`.
    pub fn to_wire(&self, customer_id: Uuid) -> v1::CustomerTier {
        v1::CustomerTier {
            customer_id: customer_id.to_string(),
            tier: v1::Tier::from(self.tier).into(),
            default: self.default,
            named_agent_id: self.named_agent.clone().unwrap_or_default(),
            person_id: self.person.map(|p| p.to_string()).unwrap_or_default(),
        }
    }
}

/// The tier of `record`'s person (the record it is linked into, if any); when no
/// manager set one, the tenant's policy's default tier (standard without a policy).
pub async fn tier_of(log: &EventLog, record: &Customer) -> Result<TierOf, ApiError> {
    let (person, state) = person(log, record).await?;
    let default = match state.tier {
        Some(_) => Tier::default(),
        None => crate::sla::policy_of(log, &record.tenant)
            .await?
            .state
            .policy
            .map_or_else(Tier::default, |p| p.default_tier),
    };
    Ok(tier_from(person, state, default))
}

/// [`tier_of`] when the tenant's policy is already at hand.
pub async fn tier_under(
    log: &EventLog,
    record: &Customer,
    policy: Option<&SlaPolicy>,
) -> Result<TierOf, ApiError> {
    let (person, state) = person(log, record).await?;
    let default = policy.map_or_else(Tier::default, |p| p.default_tier);
    Ok(tier_from(person, state, default))
}

/// The record that carries `record`'s tier: the one it is linked into, or itself.
async fn person(log: &EventLog, record: &Customer) -> Result<(Option<Uuid>, Customer), ApiError> {
    Ok(match record.linked_into {
        Some(primary) => (Some(primary), log.load::<Customer>(&primary).await?.state),
        None => (None, record.clone()),
    })
}

fn tier_from(person: Option<Uuid>, state: Customer, default: Tier) -> TierOf {
    let tier = state.tier.unwrap_or(default);
    TierOf {
        tier,
        default: state.tier.is_none(),
        named_agent: state.named_agent.filter(|_| tier == Tier::Extended),
        person,
    }
}

/// The customer id of a request.
pub fn customer_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid("customer_id", "must be a UUID"))
}

/// Customer `id` as `caller` may see it: NOT_FOUND when unknown or another
/// tenant's.
pub async fn load_visible(log: &EventLog, caller: &Caller, id: Uuid) -> Result<Customer, ApiError> {
    let customer = log.load::<Customer>(&id).await?.state;
    if !customer.exists() {
        return Err(DomainError::NotFound {
            kind: "customer",
            id: id.to_string(),
        }
        .into());
    }
    caller.check_sees("customer", &id, &customer.tenant)?;
    Ok(customer)
}

/// A manager sets a customer's tier (and named agent).
pub async fn set_tier(
    log: &EventLog,
    (caller, meta): (&Caller, &EventMeta),
    options: CommandOptions,
    request: &v1::SetCustomerTierRequest,
) -> Result<v1::CustomerTier, ApiError> {
    let id = customer_id(&request.customer_id)?;
    let tier = convert::from_wire::<v1::Tier, Tier>(request.tier)
        .ok_or_else(|| ApiError::invalid("tier", "one of BASIC, STANDARD, EXTENDED"))?;
    let named_agent = (!request.named_agent_id.is_empty()).then(|| request.named_agent_id.clone());
    let command = CustomerCommand::SetTier {
        customer_id: id,
        tier,
        named_agent: named_agent.clone(),
    };
    command.validate()?;
    let customer = load_visible(log, caller, id).await?;
    if let Some(agent_id) = &named_agent {
        limits::idempotency_key("named_agent_id", agent_id)?;
        let agent = agents::load_visible(log, caller, agent_id).await?.state;
        let works_here = agent
            .profile
            .as_ref()
            .is_some_and(|p| p.tenants.contains(&customer.tenant));
        if !works_here || !agent.active {
            return Err(ApiError::FailedPrecondition(format!(
                "{agent_id} does not work for tenant {} (or is deactivated)",
                customer.tenant
            )));
        }
    }
    let outcome = execute(log, &id, meta, options, now_millis, |c: &Customer, now| {
        caller.check_sees("customer", &id, &c.tenant)?;
        c.decide(&command, &meta.actor, now)
    })
    .await?;
    if outcome.appended {
        tracing::info!(customer_id = %id, tier = ?tier, "customer tier set");
    }
    Ok(tier_of(log, &outcome.loaded.state).await?.to_wire(id))
}
