//! `frontline.v1.AnalyticsService`: requests in, answers out. Every call goes
//! through `handle` (authenticate, authorise, validate), acts in one tenant, and
//! reads the read models at one snapshot.

use frontline_domain::{Action, Role, TenantScope};
use frontline_eventlog::EventLog;
use frontline_proto::{
    convert,
    v1::{self, analytics_service_server::AnalyticsService},
};
use frontline_runtime::{ApiError, Call, handle, now_millis};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{
    articles, figures, filters, generations, search, snapshot::Snapshot, status, thirds, whatif,
};

/// The analytics gRPC service.
#[derive(Debug, Clone)]
pub struct Analytics {
    log: EventLog,
    db: PgPool,
}

impl Analytics {
    /// Analytics over the read models in `db`, projected from `log`.
    pub fn new(log: EventLog, db: PgPool) -> Self {
        Analytics { log, db }
    }
}

/// The read models hold every tenant: operating them needs a token for all.
fn every_tenant<T>(call: &Call<T>) -> Result<(), ApiError> {
    match call.caller.tenants {
        TenantScope::All => Ok(()),
        TenantScope::Named(_) => Err(ApiError::PermissionDenied(
            "the read models hold every tenant: this needs an admin token for all tenants (`*`)"
                .into(),
        )),
    }
}

/// The moment an answer describes.
fn moment(snapshot: Snapshot) -> prost_types::Timestamp {
    match snapshot {
        Snapshot::At(at) => convert::timestamp(at),
        _ => convert::timestamp(now_millis()),
    }
}

#[tonic::async_trait]
impl AnalyticsService for Analytics {
    async fn list_tickets(
        &self,
        request: Request<v1::ListTicketsRequest>,
    ) -> Result<Response<v1::ListTicketsResponse>, Status> {
        handle(request, Action::ReadTicket, |call| async move {
            let tenant = call.acting_tenant()?;
            let internal = call.caller.actor.role != Role::CustomerSystem;
            search::list(&self.db, &tenant, internal, &call.message, now_millis()).await
        })
        .await
    }

    async fn get_metrics(
        &self,
        request: Request<v1::GetMetricsRequest>,
    ) -> Result<Response<v1::GetMetricsResponse>, Status> {
        handle(request, Action::ReadMetrics, |call| async move {
            let tenant = call.acting_tenant()?;
            let m = &call.message;
            let range = filters::range("range", m.range.as_ref())?;
            if range.span().is_some_and(|span| span > figures::MAX_SPAN) {
                return Err(ApiError::invalid("range", "spans more than 366 days"));
            }
            let group_by = v1::MetricsGroupBy::try_from(m.group_by)
                .map_err(|_| ApiError::invalid("group_by", "unknown grouping"))?;
            let snapshot = Snapshot::of(filters::as_of(m.as_of.as_ref())?);
            let (total, groups, business_hours) =
                figures::metrics(&self.db, &tenant, range, group_by, snapshot).await?;
            Ok(v1::GetMetricsResponse {
                total: Some(total),
                groups,
                as_of: Some(moment(snapshot)),
                business_hours,
            })
        })
        .await
    }

    async fn get_customer_thirds(
        &self,
        request: Request<v1::GetCustomerThirdsRequest>,
    ) -> Result<Response<v1::GetCustomerThirdsResponse>, Status> {
        handle(request, Action::ReadMetrics, |call| async move {
            let tenant = call.acting_tenant()?;
            let snapshot = Snapshot::of(filters::as_of(call.message.as_of.as_ref())?);
            Ok(v1::GetCustomerThirdsResponse {
                groups: thirds::thirds(&self.db, &tenant, snapshot).await?,
                as_of: Some(moment(snapshot)),
            })
        })
        .await
    }

    async fn simulate_sla_policy(
        &self,
        request: Request<v1::SimulateSlaPolicyRequest>,
    ) -> Result<Response<v1::SimulateSlaPolicyResponse>, Status> {
        handle(request, Action::ReadMetrics, |call| async move {
            let tenant = call.acting_tenant()?;
            let range = filters::range("range", call.message.range.as_ref())?;
            whatif::simulate(
                &self.log,
                &self.db,
                &tenant,
                &call.message,
                range,
                now_millis(),
            )
            .await
        })
        .await
    }

    async fn suggest_answers(
        &self,
        request: Request<v1::SuggestAnswersRequest>,
    ) -> Result<Response<v1::SuggestAnswersResponse>, Status> {
        handle(request, Action::ReadArticles, |call| async move {
            let tenant = call.acting_tenant()?;
            articles::suggest(&self.db, &tenant, &call.message).await
        })
        .await
    }

    async fn list_articles(
        &self,
        request: Request<v1::ListArticlesRequest>,
    ) -> Result<Response<v1::ListArticlesResponse>, Status> {
        // Deflection counts are support metrics: managers and admins.
        handle(request, Action::ReadMetrics, |call| async move {
            let tenant = call.acting_tenant()?;
            articles::list(&self.db, &tenant, &call.message).await
        })
        .await
    }

    async fn get_projection_status(
        &self,
        request: Request<v1::GetProjectionStatusRequest>,
    ) -> Result<Response<v1::GetProjectionStatusResponse>, Status> {
        handle(request, Action::OperateReadModels, |call| async move {
            every_tenant(&call)?;
            Ok(v1::GetProjectionStatusResponse {
                projections: status::of(&self.log, &self.db).await?,
            })
        })
        .await
    }

    async fn rebuild_read_models(
        &self,
        request: Request<v1::RebuildReadModelsRequest>,
    ) -> Result<Response<v1::RebuildReadModelsResponse>, Status> {
        handle(request, Action::OperateReadModels, |call| async move {
            every_tenant(&call)?;
            let (generation, started) = generations::rebuild(&self.db).await?;
            if started {
                tracing::info!(generation, actor = %call.caller.actor.id, "rebuild asked");
            }
            Ok(v1::RebuildReadModelsResponse {
                generation: u32::try_from(generation).unwrap_or_default(),
                started,
            })
        })
        .await
    }
}
