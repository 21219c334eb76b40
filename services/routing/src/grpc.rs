//! `frontline.v1.RoutingService`: requests in, answers out. Every call goes through
//! [`handle`] (authenticate, authorise, validate); the domain decides.

use frontline_domain::{Action, Agent, AgentCommand, Availability, Caller, agent, ids};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, execute};
use frontline_proto::{
    convert::{self, from_wire},
    v1::{self, routing_service_server::RoutingService},
};
use frontline_runtime::{ApiError, Call, handle, now_millis};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{
    agents,
    assigner::Assigner,
    customers, policies, queue, sla,
    tickets::{self, ByHand},
    timers,
};

/// The routing gRPC service.
#[derive(Debug, Clone)]
pub struct Routing {
    log: EventLog,
    db: PgPool,
    assigner: Assigner,
    options: CommandOptions,
    /// The timers stream, opened on first use (a tier change moves timers).
    timers: std::sync::Arc<tokio::sync::OnceCell<timers::Timers>>,
}

impl Routing {
    /// A routing service on `log`, with its indexes in `db`.
    pub fn new(log: EventLog, db: PgPool, assigner: Assigner, options: CommandOptions) -> Self {
        Routing {
            log,
            db,
            assigner,
            options,
            timers: std::sync::Arc::default(),
        }
    }

    /// The SLA side, for calls that move timers.
    async fn sla(&self) -> Result<sla::Sla, ApiError> {
        let timers = self
            .timers
            .get_or_try_init(|| timers::Timers::open(&self.log))
            .await?;
        Ok(sla::Sla::new(
            self.log.clone(),
            self.db.clone(),
            timers.clone(),
            self.assigner.clone(),
            self.options,
        ))
    }

    /// Runs one agent command for the caller; answers with the agent after it, and
    /// whether anything was recorded.
    async fn command(
        &self,
        (caller, meta): (&Caller, &EventMeta),
        agent_id: &str,
        expected_version: Option<u64>,
        command: AgentCommand,
    ) -> Result<(Option<v1::Agent>, bool), ApiError> {
        // The fields before anything is read (decide checks them again).
        frontline_domain::limits::idempotency_key("agent_id", agent_id)?;
        command.validate()?;
        let options = CommandOptions {
            expected_version,
            ..self.options
        };
        let outcome = execute(
            &self.log,
            &ids::agent_id(agent_id),
            meta,
            options,
            now_millis,
            |a: &Agent, _| a.decide(agent_id, &command, caller),
        )
        .await?;
        if outcome.appended {
            tracing::info!(%agent_id, version = outcome.loaded.state.version, "agent changed");
        }
        Ok((
            Some(convert::agent(&outcome.loaded.state)),
            outcome.appended,
        ))
    }
}

impl Routing {
    /// A manager gives a ticket to an agent (`transfer`: from the agent it has).
    async fn by_hand(
        &self,
        call: Call<v1::AssignTicketRequest>,
        transfer: bool,
    ) -> Result<v1::TicketRouting, ApiError> {
        let m = &call.message;
        let request = ByHand {
            ticket_id: &m.ticket_id,
            agent_id: &m.agent_id,
            reason: &m.reason,
            transfer,
        };
        let who = (&call.caller, &call.meta);
        tickets::by_hand(&self.log, &self.assigner, who, request).await
    }
}

fn profile(raw: Option<v1::AgentProfile>) -> Result<agent::Profile, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::invalid("profile", "required"))?;
    Ok(convert::agent_profile_from_wire("profile", &raw)?)
}

fn status(raw: i32) -> Result<Availability, ApiError> {
    from_wire::<v1::AgentStatus, Availability>(raw)
        .ok_or_else(|| ApiError::invalid("status", "one of AVAILABLE, AWAY, OFFLINE"))
}

#[tonic::async_trait]
impl RoutingService for Routing {
    async fn register_agent(
        &self,
        request: Request<v1::RegisterAgentRequest>,
    ) -> Result<Response<v1::RegisterAgentResponse>, Status> {
        handle(request, Action::ManageAgents, |call| async move {
            let profile = profile(call.message.profile)?;
            let who = (&call.caller, &call.meta);
            let command = AgentCommand::Register(profile);
            let (agent, created) = self
                .command(who, &call.message.agent_id, None, command)
                .await?;
            Ok(v1::RegisterAgentResponse { agent, created })
        })
        .await
    }

    async fn update_agent(
        &self,
        request: Request<v1::UpdateAgentRequest>,
    ) -> Result<Response<v1::UpdateAgentResponse>, Status> {
        handle(request, Action::ManageAgents, |call| async move {
            let profile = profile(call.message.profile)?;
            let (who, expected) = ((&call.caller, &call.meta), call.message.expected_version);
            let command = AgentCommand::Update(profile);
            let (agent, _) = self
                .command(who, &call.message.agent_id, expected, command)
                .await?;
            Ok(v1::UpdateAgentResponse { agent })
        })
        .await
    }

    async fn set_agent_status(
        &self,
        request: Request<v1::SetAgentStatusRequest>,
    ) -> Result<Response<v1::SetAgentStatusResponse>, Status> {
        handle(request, Action::SetAvailability, |call| async move {
            let availability = status(call.message.status)?;
            let who = (&call.caller, &call.meta);
            let command = AgentCommand::SetAvailability(availability);
            let (agent, _) = self
                .command(who, &call.message.agent_id, None, command)
                .await?;
            Ok(v1::SetAgentStatusResponse { agent })
        })
        .await
    }

    async fn deactivate_agent(
        &self,
        request: Request<v1::DeactivateAgentRequest>,
    ) -> Result<Response<v1::DeactivateAgentResponse>, Status> {
        handle(request, Action::ManageAgents, |call| async move {
            let who = (&call.caller, &call.meta);
            let (agent, _) = self
                .command(who, &call.message.agent_id, None, AgentCommand::Deactivate)
                .await?;
            Ok(v1::DeactivateAgentResponse { agent })
        })
        .await
    }

    type WatchQueueStream = crate::watch_queue::Updates;

    async fn watch_queue(
        &self,
        request: Request<v1::WatchQueueRequest>,
    ) -> Result<Response<Self::WatchQueueStream>, Status> {
        handle(request, Action::ReadRouting, |call| async move {
            crate::watch_queue::start(&self.log, &call.caller, &call.message.agent_id).await
        })
        .await
    }

    async fn get_agent(
        &self,
        request: Request<v1::GetAgentRequest>,
    ) -> Result<Response<v1::GetAgentResponse>, Status> {
        handle(request, Action::ReadAgents, |call| async move {
            frontline_domain::limits::idempotency_key("agent_id", &call.message.agent_id)?;
            let agent =
                agents::load_visible(&self.log, &call.caller, &call.message.agent_id).await?;
            Ok(v1::GetAgentResponse {
                agent: Some(convert::agent(&agent.state)),
            })
        })
        .await
    }

    async fn list_agents(
        &self,
        request: Request<v1::ListAgentsRequest>,
    ) -> Result<Response<v1::ListAgentsResponse>, Status> {
        handle(request, Action::ReadAgents, |call| async move {
            let tenant = call.acting_tenant()?;
            let agents =
                agents::of_tenant(&self.log, &tenant, call.message.include_inactive).await?;
            Ok(v1::ListAgentsResponse {
                agents: agents.iter().map(|a| convert::agent(&a.state)).collect(),
            })
        })
        .await
    }

    async fn assign_ticket(
        &self,
        request: Request<v1::AssignTicketRequest>,
    ) -> Result<Response<v1::AssignTicketResponse>, Status> {
        handle(request, Action::AssignTickets, |call| async move {
            let routing = self.by_hand(call, false).await?;
            Ok(v1::AssignTicketResponse {
                routing: Some(routing),
            })
        })
        .await
    }

    async fn transfer_ticket(
        &self,
        request: Request<v1::TransferTicketRequest>,
    ) -> Result<Response<v1::TransferTicketResponse>, Status> {
        handle(request, Action::AssignTickets, |call| async move {
            // The same three fields; only the ticket's starting point differs.
            let call = call.map(|m| v1::AssignTicketRequest {
                ticket_id: m.ticket_id,
                agent_id: m.agent_id,
                reason: m.reason,
            });
            let routing = self.by_hand(call, true).await?;
            Ok(v1::TransferTicketResponse {
                routing: Some(routing),
            })
        })
        .await
    }

    async fn get_ticket_routing(
        &self,
        request: Request<v1::GetTicketRoutingRequest>,
    ) -> Result<Response<v1::GetTicketRoutingResponse>, Status> {
        handle(request, Action::ReadRouting, |call| async move {
            let id = tickets::ticket_id(&call.message.ticket_id)?;
            let routing = tickets::routing(&self.log, &call.caller, id).await?;
            Ok(v1::GetTicketRoutingResponse {
                routing: Some(routing),
            })
        })
        .await
    }

    async fn list_queue(
        &self,
        request: Request<v1::ListQueueRequest>,
    ) -> Result<Response<v1::ListQueueResponse>, Status> {
        handle(request, Action::ReadRouting, |call| async move {
            let tenant = call.acting_tenant()?;
            let size = match call.message.page_size {
                0 => 100,
                n if n > queue::MAX_PAGE => {
                    return Err(ApiError::invalid(
                        "page_size",
                        format!("at most {}", queue::MAX_PAGE),
                    ));
                }
                n => n,
            };
            let waiting = queue::waiting(&self.db, &tenant, None, size).await?;
            Ok(v1::ListQueueResponse {
                tickets: waiting
                    .iter()
                    .map(|w| v1::QueuedTicket {
                        ticket_id: w.ticket_id.to_string(),
                        product_area: w.product_area.clone(),
                        priority: v1::Priority::from(w.priority()).into(),
                        tier: v1::Tier::from(w.tier()).into(),
                        queued_at: Some(convert::timestamp(w.queued_at)),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn set_customer_tier(
        &self,
        request: Request<v1::SetCustomerTierRequest>,
    ) -> Result<Response<v1::SetCustomerTierResponse>, Status> {
        handle(request, Action::SetTier, |call| async move {
            let who = (&call.caller, &call.meta);
            let tier = customers::set_tier(&self.log, who, self.options, &call.message).await?;
            // Their open tickets take the new tier's clocks and queue place now. (A
            // failure here answers UNAVAILABLE; the repeat records nothing new and
            // moves them then.)
            let id = customers::customer_id(&call.message.customer_id)?;
            self.sla().await?.tier_changed(id).await?;
            Ok(v1::SetCustomerTierResponse { tier: Some(tier) })
        })
        .await
    }

    async fn get_customer_tier(
        &self,
        request: Request<v1::GetCustomerTierRequest>,
    ) -> Result<Response<v1::GetCustomerTierResponse>, Status> {
        handle(request, Action::ReadRouting, |call| async move {
            let id = customers::customer_id(&call.message.customer_id)?;
            let customer = customers::load_visible(&self.log, &call.caller, id).await?;
            let tier = customers::tier_of(&self.log, &customer).await?;
            Ok(v1::GetCustomerTierResponse {
                tier: Some(tier.to_wire(id)),
            })
        })
        .await
    }

    async fn put_sla_policy(
        &self,
        request: Request<v1::PutSlaPolicyRequest>,
    ) -> Result<Response<v1::PutSlaPolicyResponse>, Status> {
        handle(request, Action::ManagePolicies, |call| async move {
            let tenant = call.acting_tenant()?;
            let who = (&call.caller, &call.meta);
            policies::put(&self.log, who, tenant, self.options, &call.message).await
        })
        .await
    }

    async fn get_sla_policy(
        &self,
        request: Request<v1::GetSlaPolicyRequest>,
    ) -> Result<Response<v1::GetSlaPolicyResponse>, Status> {
        handle(request, Action::ReadRouting, |call| async move {
            let tenant = call.acting_tenant()?;
            policies::get(&self.log, &tenant).await
        })
        .await
    }

    async fn log_time(
        &self,
        request: Request<v1::LogTimeRequest>,
    ) -> Result<Response<v1::LogTimeResponse>, Status> {
        handle(request, Action::Reply, |call| async move {
            let who = (&call.caller, &call.meta);
            tickets::log_time(&self.log, who, self.options, &call.message).await
        })
        .await
    }
}
