//! `frontline.v1.IntakeService`: requests in, answers out. Every call goes through
//! [`handle`] (authenticate, authorise, validate); rules live in the domain.

use frontline_domain::{
    Action, Caller, Customer, CustomerCommand, DomainError, Identity, IdentityKey, Ticket,
    feedback::{Feedback, ProductFeedback},
    ids, limits, satisfaction,
};
use frontline_eventlog::{CommandOptions, EventLog, execute};
use frontline_proto::{
    convert,
    v1::{self, intake_service_server::IntakeService},
};
use frontline_runtime::{ApiError, Call, handle, now_millis};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    customers::{self, Person},
    personal_data, self_service, submit,
};

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

    /// The person record `id` shows, as `caller` sees them.
    async fn view(&self, caller: &Caller, id: Uuid) -> Result<v1::Customer, ApiError> {
        let record = customers::load_visible(&self.log, caller, id).await?;
        Person::load(&self.log, id, record)
            .await?
            .view(&self.log, &self.db, caller)
            .await
    }

    /// Links or unlinks two records for the call; answers both records after.
    async fn relink(
        &self,
        call: &Call<(String, String)>,
        link: bool,
    ) -> Result<(v1::Customer, v1::Customer), ApiError> {
        let into = uuid("customer_id", &call.message.0)?;
        let other = uuid("other_customer_id", &call.message.1)?;
        customers::relink(
            &self.log,
            &call.caller,
            &call.meta,
            (into, other),
            link,
            self.options.max_attempts,
        )
        .await?;
        tracing::info!(%into, %other, link, "customer records relinked");
        let (into, other) = tokio::try_join!(
            self.view(&call.caller, into),
            self.view(&call.caller, other)
        )?;
        Ok((into, other))
    }
}

fn uuid(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

/// An optional UUID field: empty is none.
pub(crate) fn optional_uuid(field: &str, raw: &str) -> Result<Option<Uuid>, ApiError> {
    match raw {
        "" => Ok(None),
        raw => uuid(field, raw).map(Some),
    }
}

#[tonic::async_trait]
impl IntakeService for Intake {
    async fn submit_ticket(
        &self,
        request: Request<v1::SubmitTicketRequest>,
    ) -> Result<Response<v1::SubmitTicketResponse>, Status> {
        handle(request, Action::SubmitContact, |call| async move {
            let tenant = call.acting_tenant()?;
            let contact = submit::Contact::parse(call.message, call.caller, tenant)?;
            let response =
                submit::submit(&self.log, &self.db, self.options, contact, &call.meta).await?;
            tracing::info!(
                ticket_id = %response.ticket_id,
                customer_id = %response.customer_id,
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
            let id = match (&call.message.customer_id, &call.message.identity) {
                (id, None) if !id.is_empty() => uuid("customer_id", id)?,
                (id, Some(identity)) if id.is_empty() => {
                    let tenant = call.acting_tenant()?;
                    let keys = identity_keys(&call.caller, identity)?;
                    customers::by_identity(&self.log, &tenant, &keys).await?
                }
                _ => {
                    return Err(ApiError::invalid(
                        "customer_id",
                        "give exactly one of customer_id or identity",
                    ));
                }
            };
            Ok(v1::GetCustomerResponse {
                customer: Some(self.view(&call.caller, id).await?),
            })
        })
        .await
    }

    async fn link_customers(
        &self,
        request: Request<v1::LinkCustomersRequest>,
    ) -> Result<Response<v1::LinkCustomersResponse>, Status> {
        handle(request, Action::LinkCustomers, |call| async move {
            let call = call.map(|m| (m.customer_id, m.other_customer_id));
            let (customer, _) = self.relink(&call, true).await?;
            Ok(v1::LinkCustomersResponse {
                customer: Some(customer),
            })
        })
        .await
    }

    async fn unlink_customers(
        &self,
        request: Request<v1::UnlinkCustomersRequest>,
    ) -> Result<Response<v1::UnlinkCustomersResponse>, Status> {
        handle(request, Action::LinkCustomers, |call| async move {
            let call = call.map(|m| (m.customer_id, m.other_customer_id));
            let (customer, other) = self.relink(&call, false).await?;
            Ok(v1::UnlinkCustomersResponse {
                customer: Some(customer),
                other_customer: Some(other),
            })
        })
        .await
    }

    async fn forget_customer(
        &self,
        request: Request<v1::ForgetCustomerRequest>,
    ) -> Result<Response<v1::ForgetCustomerResponse>, Status> {
        handle(request, Action::ManagePersonalData, |call| async move {
            let id = uuid("customer_id", &call.message.customer_id)?;
            personal_data::forget(
                &self.log,
                &self.db,
                (&call.caller, &call.meta),
                id,
                &call.message.reason,
                self.options,
            )
            .await
        })
        .await
    }

    async fn export_customer_data(
        &self,
        request: Request<v1::ExportCustomerDataRequest>,
    ) -> Result<Response<v1::ExportCustomerDataResponse>, Status> {
        handle(request, Action::ManagePersonalData, |call| async move {
            let id = uuid("customer_id", &call.message.customer_id)?;
            personal_data::export(&self.log, &self.db, &call.caller, id).await
        })
        .await
    }

    async fn record_nps(
        &self,
        request: Request<v1::RecordNpsRequest>,
    ) -> Result<Response<v1::RecordNpsResponse>, Status> {
        handle(request, Action::RecordFeedback, |call| async move {
            let id = uuid("customer_id", &call.message.customer_id)?;
            let score = satisfaction::score(call.message.score);
            let mut command = CustomerCommand::RateNps {
                customer_id: id,
                score,
                comment: call.message.comment,
            };
            command.validate()?;
            // The answer is the person's: a linked record's goes where it is shown.
            let record = customers::load_visible(&self.log, &call.caller, id).await?;
            let person = record.state.shown_as(id);
            if let CustomerCommand::RateNps { customer_id, .. } = &mut command {
                *customer_id = person;
            }
            let actor = &call.caller.actor;
            execute(
                &self.log,
                &person,
                &call.meta,
                self.options,
                now_millis,
                |c: &Customer, now| c.decide(&command, actor, now),
            )
            .await?;
            tracing::info!(customer_id = %person, score, "NPS answer recorded");
            Ok(v1::RecordNpsResponse {
                customer_id: person.to_string(),
                category: convert::nps_category(Some(score)),
            })
        })
        .await
    }

    async fn record_feedback(
        &self,
        request: Request<v1::RecordFeedbackRequest>,
    ) -> Result<Response<v1::RecordFeedbackResponse>, Status> {
        handle(request, Action::RecordFeedback, |call| async move {
            let tenant = call.acting_tenant()?;
            let m = call.message;
            limits::idempotency_key("idempotency_key", &m.idempotency_key)?;
            let feedback = Feedback {
                customer_id: optional_uuid("customer_id", &m.customer_id)?,
                ticket_id: optional_uuid("ticket_id", &m.ticket_id)?,
                tenant,
                product_area: m.product_area,
                body: m.body,
            };
            feedback.validate()?;
            // What it names must exist in the tenant it is recorded for.
            if let Some(customer) = feedback.customer_id {
                customers::living(
                    &self.log,
                    &call.caller,
                    &feedback.tenant,
                    customer,
                    "record feedback",
                )
                .await?;
            }
            if let Some(ticket) = feedback.ticket_id {
                let state = self.log.load::<Ticket>(&ticket).await?.state;
                if !state.exists() || state.tenant != feedback.tenant {
                    return Err(not_found("ticket", ticket));
                }
            }
            let actor = &call.caller.actor;
            let id = ids::feedback_id(&feedback.tenant, &actor.id, &m.idempotency_key);
            let outcome = execute(
                &self.log,
                &id,
                &call.meta,
                self.options,
                now_millis,
                |f: &ProductFeedback, _| f.decide(&feedback, actor),
            )
            .await?;
            tracing::info!(feedback_id = %id, recorded = outcome.appended, "product feedback");
            Ok(v1::RecordFeedbackResponse {
                feedback_id: id.to_string(),
                recorded: outcome.appended,
            })
        })
        .await
    }

    async fn record_self_service(
        &self,
        request: Request<v1::RecordSelfServiceRequest>,
    ) -> Result<Response<v1::RecordSelfServiceResponse>, Status> {
        handle(request, Action::RecordFeedback, |call| async move {
            self_service::record(&self.log, self.options, &call).await
        })
        .await
    }
}

fn not_found(kind: &'static str, id: Uuid) -> ApiError {
    DomainError::NotFound {
        kind,
        id: id.to_string(),
    }
    .into()
}

/// The identities a lookup names. An external id is the caller's own unless staff
/// name the system it belongs to.
fn identity_keys(
    caller: &Caller,
    raw: &v1::CustomerIdentity,
) -> Result<Vec<IdentityKey>, ApiError> {
    let system = if raw.system.is_empty() || raw.system == caller.actor.id {
        caller.actor.id.as_str()
    } else if caller.actor.role.is_staff() {
        raw.system.as_str()
    } else {
        return Err(ApiError::PermissionDenied(
            "a customer system looks up only its own external ids".into(),
        ));
    };
    let identity = Identity::normalise("identity", &raw.email, &raw.phone, &raw.external_id)?;
    Ok(IdentityKey::of(&identity, system))
}
