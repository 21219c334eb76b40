//! The events analytics reads, from every aggregate it projects, as one type: one
//! consumer reads them in stream order, so a ticket's row sees its customer's tier
//! and its tenant's policy exactly as they stood when the ticket's event was stored
//! (and a self-service answer finds its article published).

use frontline_domain::{
    CustomerEvent, TicketEvent, article::ArticleEvent, self_service::SelfServiceEvent,
    sla::policy::PolicyEvent,
};
use frontline_privacy::Fields;
use frontline_proto::events::EventCodec;

/// An event of a ticket, a customer, a tenant's SLA policy, a self-service article
/// or a self-service answer.
#[derive(Clone, Debug, PartialEq)]
pub enum AnalyticsEvent {
    /// On `frontline.ticket.<id>`.
    Ticket(TicketEvent),
    /// On `frontline.customer.<id>`.
    Customer(CustomerEvent),
    /// On `frontline.policy.<id>`.
    Policy(PolicyEvent),
    /// On `frontline.article.<id>`.
    Article(ArticleEvent),
    /// On `frontline.selfservice.<id>`.
    SelfService(SelfServiceEvent),
}

impl EventCodec for AnalyticsEvent {
    fn event_type(&self) -> String {
        match self {
            AnalyticsEvent::Ticket(e) => e.event_type(),
            AnalyticsEvent::Customer(e) => e.event_type(),
            AnalyticsEvent::Policy(e) => e.event_type(),
            AnalyticsEvent::Article(e) => e.event_type(),
            AnalyticsEvent::SelfService(e) => e.event_type(),
        }
    }

    fn encode_payload(&self, fields: &Fields<'_>) -> Vec<u8> {
        match self {
            AnalyticsEvent::Ticket(e) => e.encode_payload(fields),
            AnalyticsEvent::Customer(e) => e.encode_payload(fields),
            AnalyticsEvent::Policy(e) => e.encode_payload(fields),
            AnalyticsEvent::Article(e) => e.encode_payload(fields),
            AnalyticsEvent::SelfService(e) => e.encode_payload(fields),
        }
    }

    /// Event type names are unique across aggregates, so the first codec that
    /// knows the type decodes it; a type none knows (agents, identity claims,
    /// newer events) is skipped.
    fn decode_payload(
        event_type: &str,
        payload: &[u8],
        fields: &Fields<'_>,
    ) -> Result<Option<Self>, String> {
        if let Some(e) = TicketEvent::decode_payload(event_type, payload, fields)? {
            return Ok(Some(AnalyticsEvent::Ticket(e)));
        }
        if let Some(e) = CustomerEvent::decode_payload(event_type, payload, fields)? {
            return Ok(Some(AnalyticsEvent::Customer(e)));
        }
        if let Some(e) = PolicyEvent::decode_payload(event_type, payload, fields)? {
            return Ok(Some(AnalyticsEvent::Policy(e)));
        }
        if let Some(e) = ArticleEvent::decode_payload(event_type, payload, fields)? {
            return Ok(Some(AnalyticsEvent::Article(e)));
        }
        Ok(
            SelfServiceEvent::decode_payload(event_type, payload, fields)?
                .map(AnalyticsEvent::SelfService),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use frontline_domain::{TenantId, article::Draft, self_service::SelfServed};
    use uuid::Uuid;

    use super::*;

    fn round_trip(event: AnalyticsEvent) {
        let fields = Fields::clear();
        let payload = event.encode_payload(&fields);
        let back = AnalyticsEvent::decode_payload(&event.event_type(), &payload, &fields);
        assert_eq!(back.unwrap(), Some(event));
    }

    #[test]
    fn article_and_self_service_events_decode_as_their_own() {
        let tenant = TenantId::parse("tenant", "acme").unwrap();
        round_trip(AnalyticsEvent::Article(ArticleEvent::Published {
            tenant: tenant.clone(),
            revision: 2,
            draft: Draft {
                slug: "reset-router".into(),
                product_area: "router-x200".into(),
                title: "Resetting".into(),
                body: "Hold the button.".into(),
            },
        }));
        round_trip(AnalyticsEvent::Article(ArticleEvent::Retired {
            revision: 2,
        }));
        round_trip(AnalyticsEvent::SelfService(SelfServiceEvent::Recorded(
            SelfServed {
                tenant,
                article_id: Uuid::from_u128(7),
                revision: 2,
                customer_id: Some(Uuid::from_u128(8)),
            },
        )));
        round_trip(AnalyticsEvent::Ticket(TicketEvent::Solved {
            resolution: String::new(),
            self_served: Some(Uuid::from_u128(7)),
            idempotency_key: Some("k".into()),
        }));
    }
}
