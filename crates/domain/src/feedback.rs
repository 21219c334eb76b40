//! Product feedback: what customers tell us about the product, for the people who
//! build it. Each piece is a tiny aggregate of one event on its own subject
//! (`frontline.feedback.<id>`), so product teams follow the subject
//! `frontline.feedback.>` and nothing else.
//!
//! Rules: a customer system (or an admin) records it, with a product area and the
//! text, optionally naming the customer and the ticket it came from; the caller's
//! key makes a repeat record nothing.

use uuid::Uuid;

use crate::{Action, Actor, Aggregate, DomainError, Recorded, TenantId, actor::authorize, limits};

/// A piece of product feedback, as asked and as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feedback {
    /// The tenant.
    pub tenant: TenantId,
    /// The product area it is about.
    pub product_area: String,
    /// What the customer said.
    pub body: String,
    /// The customer who said it, if known.
    pub customer_id: Option<Uuid>,
    /// The ticket it came from, if any.
    pub ticket_id: Option<Uuid>,
}

/// The feedback aggregate: recorded or not.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProductFeedback {
    /// Events applied.
    pub version: u64,
    /// The customer whose key seals its text.
    pub customer_id: Option<Uuid>,
}

/// What happened to a piece of feedback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedbackEvent {
    /// It was recorded.
    Recorded(Feedback),
}

impl Feedback {
    /// The fields, named as the request's.
    pub fn validate(&self) -> Result<(), DomainError> {
        limits::product_area("product_area", &self.product_area)?;
        limits::body("body", &self.body)
    }
}

impl ProductFeedback {
    /// Records `feedback` by `actor`: `Ok(None)` for a repeat of its key.
    pub fn decide(
        &self,
        feedback: &Feedback,
        actor: &Actor,
    ) -> Result<Option<FeedbackEvent>, DomainError> {
        authorize(actor, Action::RecordFeedback)?;
        feedback.validate()?;
        if self.version > 0 {
            return Ok(None);
        }
        Ok(Some(FeedbackEvent::Recorded(feedback.clone())))
    }
}

impl Aggregate for ProductFeedback {
    type Event = FeedbackEvent;
    const KIND: &'static str = "feedback";
    const SNAPSHOT_SCHEMA: u32 = 1;
    const SNAPSHOTS: bool = false;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<FeedbackEvent>) {
        let FeedbackEvent::Recorded(f) = &recorded.event;
        self.customer_id = f.customer_id;
        self.version += 1;
    }

    fn skip_unknown(&mut self) {
        self.version += 1;
    }

    // The text is the customer's words: sealed with their key, so forgetting them
    // erases it here too.
    fn event_owner(&self, _id: &Uuid, event: &FeedbackEvent) -> Option<Uuid> {
        let FeedbackEvent::Recorded(f) = event;
        f.customer_id
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Role;

    fn feedback() -> Feedback {
        Feedback {
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            product_area: "router-x200".into(),
            body: "The LED colours are confusing.".into(),
            customer_id: None,
            ticket_id: None,
        }
    }

    #[test]
    fn customer_systems_record_it_once() {
        let shop = Actor::new("web-shop", Role::CustomerSystem);
        let event = ProductFeedback::default()
            .decide(&feedback(), &shop)
            .unwrap();
        assert_eq!(event, Some(FeedbackEvent::Recorded(feedback())));
        let mut recorded = ProductFeedback::default();
        recorded.apply(&Recorded {
            event: event.unwrap(),
            actor: shop.clone(),
            at: 1,
        });
        assert_eq!(recorded.decide(&feedback(), &shop), Ok(None));
    }

    #[test]
    fn agents_do_not_and_fields_are_checked() {
        let agent = Actor::new("ana", Role::Agent);
        assert!(matches!(
            ProductFeedback::default().decide(&feedback(), &agent),
            Err(DomainError::Forbidden { .. })
        ));
        let shop = Actor::new("web-shop", Role::CustomerSystem);
        let empty = Feedback {
            body: " ".into(),
            ..feedback()
        };
        assert!(matches!(
            ProductFeedback::default().decide(&empty, &shop),
            Err(DomainError::InvalidField { field, .. }) if field == "body"
        ));
    }
}
