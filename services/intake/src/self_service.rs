//! `RecordSelfService`: the customer says a self-service article solved their
//! problem. Without a ticket it is a record of its own (one event per caller key,
//! `frontline.selfservice.<id>`); with their ticket, the ticket is solved by the
//! article (`TicketCommand::SelfServe`). The rules are the domain's.

use frontline_domain::{
    DomainError, TenantId, Ticket, TicketCommand, article::Article, ids, limits,
    self_service::SelfService,
};
use frontline_eventlog::{CommandOptions, EventLog, execute};
use frontline_proto::v1;
use frontline_runtime::{ApiError, Call};
use uuid::Uuid;

use crate::{customers, grpc::optional_uuid};

/// The request, checked.
struct Request {
    slug: String,
    ticket: Option<Uuid>,
    customer: Option<Uuid>,
    key: Option<String>,
}

fn parse(m: &v1::RecordSelfServiceRequest) -> Result<Request, ApiError> {
    let ticket = optional_uuid("ticket_id", &m.ticket_id)?;
    // The ticket names its customer.
    let customer = match ticket {
        Some(_) => None,
        None => optional_uuid("customer_id", &m.customer_id)?,
    };
    limits::product_area("slug", &m.slug)?;
    // Required without a ticket (it is the record's identity); optional with one.
    let key = match (ticket, m.idempotency_key.as_str()) {
        (Some(_), "") => None,
        (_, key) => {
            limits::idempotency_key("idempotency_key", key)?;
            Some(key.to_string())
        }
    };
    Ok(Request {
        slug: m.slug.clone(),
        ticket,
        customer,
        key,
    })
}

/// Records the call's self-service.
pub async fn record(
    log: &EventLog,
    options: CommandOptions,
    call: &Call<v1::RecordSelfServiceRequest>,
) -> Result<v1::RecordSelfServiceResponse, ApiError> {
    let tenant = call.acting_tenant()?;
    let r = parse(&call.message)?;
    let article_id = ids::article_id(&tenant, &r.slug);
    let article = log.load::<Article>(&article_id).await?.state;
    if !article.exists() {
        return Err(DomainError::NotFound {
            kind: "article",
            id: r.slug,
        }
        .into());
    }
    let answer = match r.ticket {
        Some(ticket) => {
            on_ticket(
                log,
                options,
                call,
                (&tenant, ticket),
                (article_id, &article),
                r.key,
            )
            .await?
        }
        None => {
            if let Some(customer) = r.customer {
                customers::living(log, &call.caller, &tenant, customer, "record self-service")
                    .await?;
            }
            let actor = &call.caller.actor;
            let key = r.key.unwrap_or_default();
            let id = ids::self_service_id(&tenant, &actor.id, &key);
            let outcome = execute(
                log,
                &id,
                &call.meta,
                options,
                frontline_runtime::now_millis,
                |s: &SelfService, _| s.decide((article_id, &article), r.customer, actor),
            )
            .await?;
            // A repeat answers with what the first call recorded.
            let served = outcome.loaded.state.served;
            v1::RecordSelfServiceResponse {
                record_id: id.to_string(),
                article_id: served
                    .as_ref()
                    .map_or(article_id, |s| s.article_id)
                    .to_string(),
                revision: served.map_or(article.revision, |s| s.revision),
                recorded: outcome.appended,
            }
        }
    };
    tracing::info!(record_id = %answer.record_id, %article_id, recorded = answer.recorded, "self-service recorded");
    Ok(answer)
}

/// Solves `ticket` by the article, for a customer not forgotten.
async fn on_ticket(
    log: &EventLog,
    options: CommandOptions,
    call: &Call<v1::RecordSelfServiceRequest>,
    (tenant, ticket): (&TenantId, Uuid),
    (article_id, article): (Uuid, &Article),
    key: Option<String>,
) -> Result<v1::RecordSelfServiceResponse, ApiError> {
    let raw = ticket.to_string();
    let missing = || DomainError::NotFound {
        kind: "ticket",
        id: raw.clone(),
    };
    // Another tenant's ticket is one that does not exist.
    let state = log.load::<Ticket>(&ticket).await?.state;
    if !state.exists() || state.tenant != *tenant {
        return Err(missing().into());
    }
    customers::living(
        log,
        &call.caller,
        tenant,
        state.customer_id,
        "record self-service",
    )
    .await?;
    let command = TicketCommand::SelfServe {
        article_id,
        article_live: article.is_live(),
        idempotency_key: key,
    };
    let actor = &call.caller.actor;
    let outcome = execute(
        log,
        &ticket,
        &call.meta,
        options,
        frontline_runtime::now_millis,
        |t: &Ticket, now| {
            if !t.exists() || t.tenant != *tenant {
                return Err(missing());
            }
            t.decide(&raw, &command, actor, now)
        },
    )
    .await?;
    Ok(v1::RecordSelfServiceResponse {
        record_id: raw.clone(),
        article_id: article_id.to_string(),
        revision: article.revision,
        recorded: outcome.appended,
    })
}
