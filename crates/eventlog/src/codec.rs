//! Domain events ⇄ protobuf payloads. Payload messages are the ones in
//! `proto/frontline/v1/events.proto`; `event_type` is their full name.

use frontline_domain::{
    Channel, CustomerEvent, Identity, Opening, Priority, TicketEvent, UnixMillis,
};
use frontline_proto::{
    convert::{self, from_wire},
    v1,
};
use prost::Message as _;
use uuid::Uuid;

/// Header naming the event type, so any NATS client can route without decoding.
pub const HEADER_EVENT_TYPE: &str = "Frontline-Event-Type";
/// Content type of every event message.
pub const CONTENT_TYPE: &str = "application/x-protobuf; proto=frontline.v1.EventEnvelope";
/// Schema version of every payload written by this code.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// An event type that can travel on the log.
pub trait EventCodec: Sized {
    /// Full protobuf name of the payload, e.g. `frontline.v1.TicketOpened`.
    fn event_type(&self) -> &'static str;
    /// The protobuf payload.
    fn encode_payload(&self) -> Vec<u8>;
    /// Decodes a payload of `event_type`; `Err` says why it is not a valid event.
    fn decode_payload(event_type: &str, payload: &[u8]) -> Result<Self, String>;
}

/// Decodes a message body as an envelope.
pub fn decode_envelope(bytes: &[u8]) -> Result<v1::EventEnvelope, String> {
    v1::EventEnvelope::decode(bytes).map_err(|e| format!("not an EventEnvelope: {e}"))
}

pub(crate) fn envelope_millis(envelope: &v1::EventEnvelope) -> UnixMillis {
    envelope
        .occurred_at
        .as_ref()
        .map(convert::millis)
        .unwrap_or_default()
}

fn decode<M: prost::Message + Default>(payload: &[u8]) -> Result<M, String> {
    M::decode(payload).map_err(|e| e.to_string())
}

fn channel(raw: i32) -> Result<Channel, String> {
    from_wire::<v1::Channel, Channel>(raw).ok_or_else(|| format!("unknown channel {raw}"))
}

fn uuid(raw: &str, field: &str) -> Result<Uuid, String> {
    Uuid::parse_str(raw).map_err(|e| format!("{field}: {e}"))
}

fn key(k: Option<&String>) -> String {
    k.cloned().unwrap_or_default()
}

fn optional_key(k: String) -> Option<String> {
    (!k.is_empty()).then_some(k)
}

const TICKET_OPENED: &str = "frontline.v1.TicketOpened";
const CUSTOMER_MESSAGE_ADDED: &str = "frontline.v1.CustomerMessageAdded";
const AGENT_REPLIED: &str = "frontline.v1.AgentReplied";
const INTERNAL_NOTE_ADDED: &str = "frontline.v1.InternalNoteAdded";
const TICKET_SOLVED: &str = "frontline.v1.TicketSolved";
const TICKET_REOPENED: &str = "frontline.v1.TicketReopened";
const CUSTOMER_CONTACTED: &str = "frontline.v1.CustomerContacted";

impl EventCodec for TicketEvent {
    fn event_type(&self) -> &'static str {
        match self {
            TicketEvent::Opened(_) => TICKET_OPENED,
            TicketEvent::CustomerMessageAdded { .. } => CUSTOMER_MESSAGE_ADDED,
            TicketEvent::AgentReplied { .. } => AGENT_REPLIED,
            TicketEvent::NoteAdded { .. } => INTERNAL_NOTE_ADDED,
            TicketEvent::Solved { .. } => TICKET_SOLVED,
            TicketEvent::Reopened { .. } => TICKET_REOPENED,
        }
    }

    fn encode_payload(&self) -> Vec<u8> {
        match self.clone() {
            TicketEvent::Opened(o) => v1::TicketOpened {
                channel: v1::Channel::from(o.channel).into(),
                customer_id: o.customer_id.to_string(),
                subject: o.subject,
                body: o.body,
                product_area: o.product_area,
                priority: v1::Priority::from(o.priority).into(),
                idempotency_key: o.idempotency_key,
            }
            .encode_to_vec(),
            TicketEvent::CustomerMessageAdded {
                body,
                channel,
                idempotency_key,
                reopened,
            } => v1::CustomerMessageAdded {
                body,
                channel: v1::Channel::from(channel).into(),
                idempotency_key,
                reopened,
            }
            .encode_to_vec(),
            TicketEvent::AgentReplied {
                body,
                awaiting_customer,
                idempotency_key,
            } => v1::AgentReplied {
                body,
                awaiting_customer,
                idempotency_key: key(idempotency_key.as_ref()),
            }
            .encode_to_vec(),
            TicketEvent::NoteAdded {
                body,
                idempotency_key,
            } => v1::InternalNoteAdded {
                body,
                idempotency_key: key(idempotency_key.as_ref()),
            }
            .encode_to_vec(),
            TicketEvent::Solved { resolution } => v1::TicketSolved { resolution }.encode_to_vec(),
            TicketEvent::Reopened { reason } => v1::TicketReopened { reason }.encode_to_vec(),
        }
    }

    fn decode_payload(event_type: &str, payload: &[u8]) -> Result<Self, String> {
        Ok(match event_type {
            TICKET_OPENED => {
                let e: v1::TicketOpened = decode(payload)?;
                TicketEvent::Opened(Opening {
                    channel: channel(e.channel)?,
                    customer_id: uuid(&e.customer_id, "customer_id")?,
                    subject: e.subject,
                    body: e.body,
                    product_area: e.product_area,
                    priority: from_wire::<v1::Priority, Priority>(e.priority).unwrap_or_default(),
                    idempotency_key: e.idempotency_key,
                })
            }
            CUSTOMER_MESSAGE_ADDED => {
                let e: v1::CustomerMessageAdded = decode(payload)?;
                TicketEvent::CustomerMessageAdded {
                    body: e.body,
                    channel: channel(e.channel)?,
                    idempotency_key: e.idempotency_key,
                    reopened: e.reopened,
                }
            }
            AGENT_REPLIED => {
                let e: v1::AgentReplied = decode(payload)?;
                TicketEvent::AgentReplied {
                    body: e.body,
                    awaiting_customer: e.awaiting_customer,
                    idempotency_key: optional_key(e.idempotency_key),
                }
            }
            INTERNAL_NOTE_ADDED => {
                let e: v1::InternalNoteAdded = decode(payload)?;
                TicketEvent::NoteAdded {
                    body: e.body,
                    idempotency_key: optional_key(e.idempotency_key),
                }
            }
            TICKET_SOLVED => TicketEvent::Solved {
                resolution: decode::<v1::TicketSolved>(payload)?.resolution,
            },
            TICKET_REOPENED => TicketEvent::Reopened {
                reason: decode::<v1::TicketReopened>(payload)?.reason,
            },
            other => return Err(format!("unknown ticket event type {other:?}")),
        })
    }
}

impl EventCodec for CustomerEvent {
    fn event_type(&self) -> &'static str {
        CUSTOMER_CONTACTED
    }

    fn encode_payload(&self) -> Vec<u8> {
        let CustomerEvent::Contacted {
            channel,
            identities_added,
            facts_recorded,
            ticket_opened,
        } = self;
        v1::CustomerContacted {
            channel: v1::Channel::from(*channel).into(),
            identities_added: Some(convert::identity(identities_added)),
            facts_recorded: convert::facts(facts_recorded.iter().map(|(k, v)| (k, v))),
            ticket_opened: ticket_opened.map(|t| t.to_string()).unwrap_or_default(),
        }
        .encode_to_vec()
    }

    fn decode_payload(event_type: &str, payload: &[u8]) -> Result<Self, String> {
        if event_type != CUSTOMER_CONTACTED {
            return Err(format!("unknown customer event type {event_type:?}"));
        }
        let e: v1::CustomerContacted = decode(payload)?;
        let ids = e.identities_added.unwrap_or_default();
        let some = |s: String| (!s.is_empty()).then_some(s);
        Ok(CustomerEvent::Contacted {
            channel: channel(e.channel)?,
            identities_added: Identity {
                email: some(ids.email),
                phone: some(ids.phone),
                external_id: some(ids.external_id),
            },
            facts_recorded: e
                .facts_recorded
                .into_iter()
                .map(|f| (f.key, f.value))
                .collect(),
            ticket_opened: some(e.ticket_opened)
                .map(|t| uuid(&t, "ticket_opened"))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<E: EventCodec + PartialEq + std::fmt::Debug>(e: E) {
        let back = E::decode_payload(e.event_type(), &e.encode_payload()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn every_event_round_trips() {
        round_trip(TicketEvent::Opened(Opening {
            channel: Channel::Chat,
            customer_id: Uuid::from_u128(7),
            subject: "s".into(),
            body: "b".into(),
            product_area: "billing".into(),
            priority: Priority::Urgent,
            idempotency_key: "k".into(),
        }));
        round_trip(TicketEvent::CustomerMessageAdded {
            body: "b".into(),
            channel: Channel::Email,
            idempotency_key: "k2".into(),
            reopened: true,
        });
        round_trip(TicketEvent::AgentReplied {
            body: "r".into(),
            awaiting_customer: true,
            idempotency_key: None,
        });
        round_trip(TicketEvent::NoteAdded {
            body: "n".into(),
            idempotency_key: Some("x".into()),
        });
        round_trip(TicketEvent::Solved {
            resolution: "done".into(),
        });
        round_trip(TicketEvent::Reopened { reason: "".into() });
        round_trip(CustomerEvent::Contacted {
            channel: Channel::Phone,
            identities_added: Identity {
                email: Some("a@b.de".into()),
                phone: None,
                external_id: None,
            },
            facts_recorded: vec![("serial".into(), "SN-1".into())],
            ticket_opened: Some(Uuid::from_u128(9)),
        });
    }

    #[test]
    fn unknown_types_and_garbage_are_errors() {
        assert!(TicketEvent::decode_payload("frontline.v1.Nope", b"").is_err());
        assert!(TicketEvent::decode_payload(TICKET_OPENED, b"\xff\xff\xff").is_err());
        assert!(CustomerEvent::decode_payload(TICKET_OPENED, b"").is_err());
    }
}
