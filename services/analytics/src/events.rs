//! The events analytics reads, from every aggregate it projects, as one type: one
//! consumer reads them in stream order, so a ticket's row sees its customer's tier
//! and its tenant's policy exactly as they stood when the ticket's event was stored.

use frontline_domain::{CustomerEvent, TicketEvent, sla::policy::PolicyEvent};
use frontline_privacy::Fields;
use frontline_proto::events::EventCodec;

/// An event of a ticket, a customer or a tenant's SLA policy.
#[derive(Clone, Debug, PartialEq)]
pub enum AnalyticsEvent {
    /// On `frontline.ticket.<id>`.
    Ticket(TicketEvent),
    /// On `frontline.customer.<id>`.
    Customer(CustomerEvent),
    /// On `frontline.policy.<id>`.
    Policy(PolicyEvent),
}

impl EventCodec for AnalyticsEvent {
    fn event_type(&self) -> String {
        match self {
            AnalyticsEvent::Ticket(e) => e.event_type(),
            AnalyticsEvent::Customer(e) => e.event_type(),
            AnalyticsEvent::Policy(e) => e.event_type(),
        }
    }

    fn encode_payload(&self, fields: &Fields<'_>) -> Vec<u8> {
        match self {
            AnalyticsEvent::Ticket(e) => e.encode_payload(fields),
            AnalyticsEvent::Customer(e) => e.encode_payload(fields),
            AnalyticsEvent::Policy(e) => e.encode_payload(fields),
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
        Ok(PolicyEvent::decode_payload(event_type, payload, fields)?.map(AnalyticsEvent::Policy))
    }
}
