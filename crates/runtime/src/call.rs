//! One way through every call, in one order: authenticate (the interceptor, before
//! the body is read); decode (the transport refuses a body over
//! [`crate::error::MAX_REQUEST_BYTES`] or one that is not protobuf); authorise
//! (role); validate (the handler's fields); and only then load. The call's span
//! (opened by the server's layer, `call_span`) gets the action, tenant,
//! actor and correlation id here; an error is logged where it becomes the
//! caller's answer ([`crate::error`]), not where it passes.

use std::future::Future;

use frontline_domain::{Action, Caller, TenantId, TenantScope, authorize};
use frontline_eventlog::EventMeta;
use tonic::{Request, Response, Status};

use crate::{ApiError, auth, context};

/// Request header naming the tenant a call acts in, for tokens that cover several.
pub const TENANT_HEADER: &str = "x-tenant";

/// An authorised call: who, with what request context, asking what.
#[derive(Debug)]
pub struct Call<T> {
    /// The caller: who, and the tenants they may act in.
    pub caller: Caller,
    /// Event metadata (actor, correlation and causation ids, traceparent).
    pub meta: EventMeta,
    /// The request message.
    pub message: T,
    /// The `x-tenant` header, if sent.
    requested_tenant: Option<String>,
}

impl<T> Call<T> {
    /// The same call with its message turned into `U` (e.g. the fields a shared
    /// helper needs).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Call<U> {
        Call {
            caller: self.caller,
            meta: self.meta,
            message: f(self.message),
            requested_tenant: self.requested_tenant,
        }
    }

    /// The tenant a creating or identity-addressed call acts in: the token's only
    /// tenant, or the one named in `x-tenant` (which the token must cover).
    pub fn acting_tenant(&self) -> Result<TenantId, ApiError> {
        Ok(self
            .caller
            .acting_tenant(self.requested_tenant.as_deref())?)
    }
}

/// Runs `handler` for `request` once the caller is authenticated and may do `action`.
pub async fn handle<T, R, F, Fut>(
    mut request: Request<T>,
    action: Action,
    handler: F,
) -> Result<Response<R>, Status>
where
    F: FnOnce(Call<T>) -> Fut,
    Fut: Future<Output = Result<R, ApiError>>,
{
    // The call's span, opened around the route; outside a server (a handler
    // called directly) there is none and recording does nothing.
    let span = tracing::Span::current();
    span.record("action", tracing::field::display(action));
    // The caller's in-flight slot, taken by the authenticator, lasts the call.
    let _slot = request
        .extensions_mut()
        .remove::<std::sync::Arc<crate::in_flight::InFlight>>();
    let result = async {
        let caller = auth::caller(&request)?;
        span.record("actor", caller.actor.id.as_str());
        authorize(&caller.actor, action)?;
        let meta = context::event_meta(&request, caller.actor.clone());
        span.record("correlation_id", meta.correlation_id.as_str());
        let requested_tenant = request
            .metadata()
            .get(TENANT_HEADER)
            .map(|v| v.to_str().map(str::to_string))
            .transpose()
            .map_err(|_| ApiError::invalid(TENANT_HEADER, "must be ASCII"))?;
        span.record(
            "tenant",
            tenant_of(&caller, requested_tenant.as_deref()).as_str(),
        );
        handler(Call {
            caller,
            meta,
            message: request.into_inner(),
            requested_tenant,
        })
        .await
    }
    .await;
    result.map(Response::new).map_err(Status::from)
}

/// The tenant a call acts in, for its span: the one it names or the token's only
/// one; for a token of several that names none, the tenants it covers (`a,b`,
/// or `*`).
fn tenant_of(caller: &Caller, requested: Option<&str>) -> String {
    if let Ok(tenant) = caller.acting_tenant(requested) {
        return tenant.to_string();
    }
    match &caller.tenants {
        TenantScope::All => "*".to_string(),
        TenantScope::Named(tenants) => tenants
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use frontline_domain::{Actor, Role, TenantId};
    use tonic::{Code, service::Interceptor as _};

    use super::*;
    use crate::auth::Authenticator;

    /// The authenticator takes a caller's slot before the body is read, and
    /// `handle` keeps it until the handler has answered.
    #[tokio::test]
    async fn a_call_holds_its_in_flight_slot_until_it_answers() {
        let mut auth = Authenticator::hs256("secret").with_in_flight_limit(1);
        let tenant = TenantId::parse("tenant", "acme").unwrap();
        let ana = Caller::new(
            Actor::new("ana", Role::Agent),
            TenantScope::Named([tenant].into()),
        )
        .unwrap();
        let token = auth::mint("secret", &ana, Duration::from_secs(60)).unwrap();
        let request = || {
            let mut r = Request::new(());
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            r
        };

        let first = auth.call(request()).unwrap();
        let refused = auth.call(request()).unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");

        let (answer, answered) = tokio::sync::oneshot::channel::<()>();
        let call = tokio::spawn(handle(first, Action::Reply, |_call| async move {
            let _ = answered.await;
            Ok::<_, ApiError>(())
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let still = auth.call(request()).unwrap_err();
        assert_eq!(still.code(), Code::ResourceExhausted, "{still:?}");

        answer.send(()).unwrap();
        call.await.unwrap().unwrap();
        assert!(
            auth.call(request()).is_ok(),
            "the slot is free once answered"
        );
    }
}
