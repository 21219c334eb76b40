//! `frontline.v1.IntakeService`: requests in, statuses out. Rules live in the domain.

use frontline_domain::{Action, Customer, DomainError, Identity, authorize, ids};
use frontline_eventlog::{CommandOptions, EventLog};
use frontline_proto::v1::{self, intake_service_server::IntakeService};
use frontline_runtime::{auth, context, status};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{customers, submit};

/// The intake gRPC service.
#[derive(Debug, Clone)]
pub struct Intake {
    log: EventLog,
    options: CommandOptions,
}

impl Intake {
    /// An intake service on `log`.
    pub fn new(log: EventLog, options: CommandOptions) -> Self {
        Intake { log, options }
    }
}

#[tonic::async_trait]
impl IntakeService for Intake {
    #[tracing::instrument(skip_all, fields(actor))]
    async fn submit_ticket(
        &self,
        request: Request<v1::SubmitTicketRequest>,
    ) -> Result<Response<v1::SubmitTicketResponse>, Status> {
        let actor = auth::actor(&request)?;
        tracing::Span::current().record("actor", actor.id.as_str());
        status::check_size(request.get_ref())?;
        authorize(&actor, Action::SubmitContact).map_err(|e| status::from_domain(&e))?;
        let meta = context::event_meta(&request, actor);
        let contact =
            submit::Contact::parse(request.into_inner()).map_err(|e| status::from_domain(&e))?;
        let response = submit::submit(&self.log, self.options, contact, &meta)
            .await
            .map_err(|e| status::from_command(&e))?;
        tracing::info!(
            ticket_id = %response.ticket_id,
            created = response.created,
            correlation_id = %meta.correlation_id,
            "contact accepted"
        );
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn get_customer(
        &self,
        request: Request<v1::GetCustomerRequest>,
    ) -> Result<Response<v1::GetCustomerResponse>, Status> {
        let actor = auth::actor(&request)?;
        authorize(&actor, Action::ReadCustomer).map_err(|e| status::from_domain(&e))?;
        let req = request.into_inner();
        let id = customer_id(&req).map_err(|e| status::from_domain(&e))?;
        let loaded = self
            .log
            .load::<Customer>(&id)
            .await
            .map_err(|e| status::from_log(&e))?;
        if !loaded.state.exists() {
            return Err(status::from_domain(&DomainError::NotFound {
                kind: "customer",
                id: id.to_string(),
            }));
        }
        let customer = customers::view(&self.log, id, &loaded.state)
            .await
            .map_err(|e| status::from_log(&e))?;
        Ok(Response::new(v1::GetCustomerResponse {
            customer: Some(customer),
        }))
    }
}

fn customer_id(req: &v1::GetCustomerRequest) -> Result<Uuid, DomainError> {
    match (&req.customer_id, &req.identity) {
        (id, None) if !id.is_empty() => {
            Uuid::parse_str(id).map_err(|_| DomainError::invalid("customer_id", "must be a UUID"))
        }
        (id, Some(identity)) if id.is_empty() => {
            let identity = Identity::normalise(
                "identity",
                &identity.email,
                &identity.phone,
                &identity.external_id,
            )?;
            ids::customer_id(&identity)
                .ok_or_else(|| DomainError::invalid("identity", "needs an identity"))
        }
        _ => Err(DomainError::invalid(
            "customer_id",
            "give exactly one of customer_id or identity",
        )),
    }
}
