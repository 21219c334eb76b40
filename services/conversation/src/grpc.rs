//! `frontline.v1.ConversationService`: requests in, statuses out. Rules live in the
//! domain; this maps requests to ticket commands and errors to status codes.

use frontline_domain::{Action, Actor, DomainError, Ticket, TicketCommand, authorize};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, execute};
use frontline_proto::v1::{self, conversation_service_server::ConversationService};
use frontline_runtime::{auth, context, now_millis, status};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::tickets::{self, ReadError};

/// The conversation gRPC service.
#[derive(Debug, Clone)]
pub struct Conversation {
    log: EventLog,
    options: CommandOptions,
}

fn ticket_id(raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw)
        .map_err(|_| status::from_domain(&DomainError::invalid("ticket_id", "must be a UUID")))
}

/// Who is calling, allowed to do `action`, with a request within limits: the event
/// metadata for what they ask. Role first, so a caller who may not act learns
/// nothing about the ticket (not even whether its id parses).
fn caller<T: prost::Message>(request: &Request<T>, action: Action) -> Result<EventMeta, Status> {
    let actor: Actor = auth::actor(request)?;
    authorize(&actor, action).map_err(|e| status::from_domain(&e))?;
    status::check_size(request.get_ref())?;
    Ok(context::event_meta(request, actor))
}

fn optional_key(key: String) -> Option<String> {
    (!key.is_empty()).then_some(key)
}

fn read_status(e: &ReadError) -> Status {
    match e {
        ReadError::Domain(d) => status::from_domain(d),
        ReadError::Log(l) => status::from_log(l),
    }
}

impl Conversation {
    /// A conversation service on `log`.
    pub fn new(log: EventLog, options: CommandOptions) -> Self {
        Conversation { log, options }
    }

    /// Runs one ticket command for `meta`'s caller and returns the ticket after it.
    async fn command(
        &self,
        meta: EventMeta,
        raw_id: &str,
        expected_version: Option<u64>,
        command: TicketCommand,
    ) -> Result<v1::Ticket, Status> {
        let id = ticket_id(raw_id)?;
        let options = CommandOptions {
            expected_version,
            ..self.options
        };
        let outcome = execute(&self.log, &id, &meta, options, now_millis, |t: &Ticket| {
            t.decide(raw_id, &command, &meta.actor)
        })
        .await
        .map_err(|e| status::from_command(&e))?;
        tracing::info!(
            ticket_id = %id,
            version = outcome.loaded.state.version,
            appended = outcome.appended,
            actor = %meta.actor.id,
            correlation_id = %meta.correlation_id,
            "ticket command"
        );
        tickets::view(
            &self.log,
            &id,
            &outcome.loaded.state,
            meta.actor.role.is_staff(),
        )
        .await
        .map_err(|e| status::from_log(&e))
    }
}

#[tonic::async_trait]
impl ConversationService for Conversation {
    async fn reply(
        &self,
        request: Request<v1::ReplyRequest>,
    ) -> Result<Response<v1::ReplyResponse>, Status> {
        let meta = caller(&request, Action::Reply)?;
        let r = request.into_inner();
        let command = TicketCommand::Reply {
            body: r.body,
            awaiting_customer: r.awaiting_customer,
            idempotency_key: optional_key(r.idempotency_key),
        };
        let ticket = self
            .command(meta, &r.ticket_id, r.expected_version, command)
            .await?;
        Ok(Response::new(v1::ReplyResponse {
            ticket: Some(ticket),
        }))
    }

    async fn add_note(
        &self,
        request: Request<v1::AddNoteRequest>,
    ) -> Result<Response<v1::AddNoteResponse>, Status> {
        let meta = caller(&request, Action::AddNote)?;
        let r = request.into_inner();
        let command = TicketCommand::AddNote {
            body: r.body,
            idempotency_key: optional_key(r.idempotency_key),
        };
        let ticket = self
            .command(meta, &r.ticket_id, r.expected_version, command)
            .await?;
        Ok(Response::new(v1::AddNoteResponse {
            ticket: Some(ticket),
        }))
    }

    async fn solve(
        &self,
        request: Request<v1::SolveRequest>,
    ) -> Result<Response<v1::SolveResponse>, Status> {
        let meta = caller(&request, Action::Solve)?;
        let r = request.into_inner();
        let command = TicketCommand::Solve {
            resolution: r.resolution,
        };
        let ticket = self
            .command(meta, &r.ticket_id, r.expected_version, command)
            .await?;
        Ok(Response::new(v1::SolveResponse {
            ticket: Some(ticket),
        }))
    }

    async fn reopen(
        &self,
        request: Request<v1::ReopenRequest>,
    ) -> Result<Response<v1::ReopenResponse>, Status> {
        let meta = caller(&request, Action::Reopen)?;
        let r = request.into_inner();
        let command = TicketCommand::Reopen { reason: r.reason };
        let ticket = self
            .command(meta, &r.ticket_id, r.expected_version, command)
            .await?;
        Ok(Response::new(v1::ReopenResponse {
            ticket: Some(ticket),
        }))
    }

    async fn get_ticket(
        &self,
        request: Request<v1::GetTicketRequest>,
    ) -> Result<Response<v1::GetTicketResponse>, Status> {
        let actor = auth::actor(&request)?;
        authorize(&actor, Action::ReadTicket).map_err(|e| status::from_domain(&e))?;
        let r = request.into_inner();
        let id = ticket_id(&r.ticket_id)?;
        let ticket = tickets::state(&self.log, &id, r.as_of_version)
            .await
            .map_err(|e| read_status(&e))?;
        let view = tickets::view(&self.log, &id, &ticket, actor.role.is_staff())
            .await
            .map_err(|e| status::from_log(&e))?;
        Ok(Response::new(v1::GetTicketResponse { ticket: Some(view) }))
    }

    async fn get_ticket_history(
        &self,
        request: Request<v1::GetTicketHistoryRequest>,
    ) -> Result<Response<v1::GetTicketHistoryResponse>, Status> {
        let actor = auth::actor(&request)?;
        authorize(&actor, Action::ReadHistory).map_err(|e| status::from_domain(&e))?;
        let id = ticket_id(&request.get_ref().ticket_id)?;
        let events = tickets::history(&self.log, &id)
            .await
            .map_err(|e| read_status(&e))?;
        Ok(Response::new(v1::GetTicketHistoryResponse { events }))
    }
}
