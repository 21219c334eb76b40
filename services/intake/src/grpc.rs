//! `frontline.v1.IntakeService`: requests in, answers out. Every call goes through
//! [`handle`] (authenticate, authorise, validate); rules live in the domain.

use frontline_domain::{Action, Customer, DomainError, Identity, ids};
use frontline_eventlog::{CommandOptions, EventLog};
use frontline_proto::{
    convert,
    v1::{self, intake_service_server::IntakeService},
};
use frontline_runtime::{ApiError, handle};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{open_tickets, submit};

/// The intake gRPC service.
#[derive(Debug, Clone)]
pub struct Intake {
    log: EventLog,
    db: PgPool,
    options: CommandOptions,
}

impl Intake {
    /// An intake service on `log`, with its read model in `db`.
    pub fn new(log: EventLog, db: PgPool, options: CommandOptions) -> Self {
        Intake { log, db, options }
    }
}

#[tonic::async_trait]
impl IntakeService for Intake {
    async fn submit_ticket(
        &self,
        request: Request<v1::SubmitTicketRequest>,
    ) -> Result<Response<v1::SubmitTicketResponse>, Status> {
        handle(request, Action::SubmitContact, |call| async move {
            let contact = submit::Contact::parse(call.message)?;
            let response =
                submit::submit(&self.log, &self.db, self.options, contact, &call.meta).await?;
            tracing::info!(
                ticket_id = %response.ticket_id,
                created = response.created,
                "contact accepted"
            );
            Ok(response)
        })
        .await
    }

    async fn get_customer(
        &self,
        request: Request<v1::GetCustomerRequest>,
    ) -> Result<Response<v1::GetCustomerResponse>, Status> {
        handle(request, Action::ReadCustomer, |call| async move {
            let id = customer_id(&call.message)?;
            let loaded = self.log.load::<Customer>(&id).await?;
            if !loaded.state.exists() {
                return Err(ApiError::from(DomainError::NotFound {
                    kind: "customer",
                    id: id.to_string(),
                }));
            }
            let customer = self.view(id, &loaded.state).await?;
            Ok(v1::GetCustomerResponse {
                customer: Some(customer),
            })
        })
        .await
    }
}

impl Intake {
    /// The wire view of a customer: the record, with tickets from the record and the
    /// projection (which also knows a ticket whose record update was cut off).
    async fn view(&self, id: Uuid, customer: &Customer) -> Result<v1::Customer, ApiError> {
        let mut ticket_ids = customer.ticket_ids.clone();
        for known in open_tickets::ticket_ids(&self.db, id).await? {
            if !ticket_ids.contains(&known) {
                ticket_ids.push(known);
            }
        }
        Ok(v1::Customer {
            customer_id: id.to_string(),
            identity: Some(convert::identity(&customer.identity)),
            facts: convert::facts(&customer.facts),
            open_tickets: open_tickets::open_tickets(
                &self.log,
                &self.db,
                id,
                &customer.ticket_ids,
                None,
                None,
            )
            .await?,
            ticket_ids: ticket_ids.iter().map(Uuid::to_string).collect(),
            first_contact_at: customer.first_contact_at.map(convert::timestamp),
            last_contact_at: customer.last_contact_at.map(convert::timestamp),
            version: customer.version,
        })
    }
}

fn customer_id(req: &v1::GetCustomerRequest) -> Result<Uuid, ApiError> {
    match (&req.customer_id, &req.identity) {
        (id, None) if !id.is_empty() => {
            Uuid::parse_str(id).map_err(|_| ApiError::invalid("customer_id", "must be a UUID"))
        }
        (id, Some(identity)) if id.is_empty() => {
            let identity = Identity::normalise(
                "identity",
                &identity.email,
                &identity.phone,
                &identity.external_id,
            )?;
            ids::customer_id(&identity)
                .ok_or_else(|| ApiError::invalid("identity", "needs an identity"))
        }
        _ => Err(ApiError::invalid(
            "customer_id",
            "give exactly one of customer_id or identity",
        )),
    }
}
