//! Self-service: a customer said an article solved their problem before any ticket
//! was opened. Each such answer is a tiny aggregate of one event on its own subject
//! (`frontline.selfservice.<id>`, the id derived from the tenant, the customer
//! system and its idempotency key), so a retried call records it once. Analytics
//! counts them per article as deflections.
//!
//! When the customer already has a ticket, the article solves that ticket instead
//! (`TicketCommand::SelfServe`): the ticket is the record.
//!
//! Rules: a customer system (or an admin) records it; the article must be live.

use uuid::Uuid;

use crate::{
    Action, Actor, Aggregate, DomainError, Recorded, TenantId, actor::authorize, article::Article,
};

/// A self-service answer, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SelfServed {
    /// The tenant.
    pub tenant: TenantId,
    /// The article that helped.
    pub article_id: Uuid,
    /// Its revision when it helped.
    pub revision: u32,
    /// The customer, if the channel knows them.
    pub customer_id: Option<Uuid>,
}

/// The record: made or not.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SelfService {
    /// Events applied.
    pub version: u64,
    /// What was recorded.
    pub served: Option<SelfServed>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelfServiceEvent {
    /// An article solved a customer's problem without a ticket.
    Recorded(SelfServed),
}

impl SelfService {
    /// Records that `article` (with id `article_id`) helped, for `customer_id`, by
    /// `actor`: `Ok(None)` for a repeat.
    pub fn decide(
        &self,
        (article_id, article): (Uuid, &Article),
        customer_id: Option<Uuid>,
        actor: &Actor,
    ) -> Result<Option<SelfServiceEvent>, DomainError> {
        authorize(actor, Action::RecordFeedback)?;
        if let Some(prior) = &self.served {
            if prior.article_id == article_id {
                return Ok(None);
            }
            return Err(DomainError::AlreadyExists(format!(
                "this idempotency key already recorded that article {} helped",
                prior.article_id
            )));
        }
        live(article)?;
        Ok(Some(SelfServiceEvent::Recorded(SelfServed {
            tenant: article.tenant.clone(),
            article_id,
            revision: article.revision,
            customer_id,
        })))
    }
}

/// `article`, if a customer may say it helped: published and not retired.
pub fn live(article: &Article) -> Result<(), DomainError> {
    if !article.exists() {
        return Err(DomainError::NotFound {
            kind: "article",
            id: article.slug.clone(),
        });
    }
    if article.retired {
        return Err(DomainError::Precondition {
            action: "record self-service",
            reason: format!("article {} was retired", article.slug),
        });
    }
    Ok(())
}

impl Aggregate for SelfService {
    type Event = SelfServiceEvent;
    const KIND: &'static str = "selfservice";
    const SNAPSHOT_SCHEMA: u32 = 1;
    const SNAPSHOTS: bool = false;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<SelfServiceEvent>) {
        let SelfServiceEvent::Recorded(served) = &recorded.event;
        self.served = Some(served.clone());
        self.version += 1;
    }

    fn skip_unknown(&mut self) {
        self.version += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Role;

    fn article(retired: bool) -> Article {
        Article {
            version: 1,
            tenant: TenantId::parse("tenant", "acme").unwrap(),
            slug: "reset-router".into(),
            product_area: "router-x200".into(),
            title: "Resetting".into(),
            body: "Hold the button.".into(),
            revision: 3,
            retired,
        }
    }

    #[test]
    fn recorded_once_with_the_revision_that_helped() {
        let shop = Actor::new("web-shop", Role::CustomerSystem);
        let id = Uuid::from_u128(7);
        let event = SelfService::default()
            .decide((id, &article(false)), None, &shop)
            .unwrap()
            .unwrap();
        let SelfServiceEvent::Recorded(served) = &event;
        assert_eq!((served.article_id, served.revision), (id, 3));
        let mut done = SelfService::default();
        done.apply(&Recorded {
            event,
            actor: shop.clone(),
            at: 1,
        });
        assert_eq!(done.decide((id, &article(false)), None, &shop), Ok(None));
        // Even once the article is retired: a retry is a repeat.
        assert_eq!(done.decide((id, &article(true)), None, &shop), Ok(None));
        // The same key for another article is another request.
        assert!(matches!(
            done.decide((Uuid::from_u128(8), &article(false)), None, &shop),
            Err(DomainError::AlreadyExists(_))
        ));
    }

    #[test]
    fn only_live_articles_and_customer_systems() {
        let shop = Actor::new("web-shop", Role::CustomerSystem);
        assert!(matches!(
            SelfService::default().decide((Uuid::nil(), &article(true)), None, &shop),
            Err(DomainError::Precondition { .. })
        ));
        assert!(matches!(
            SelfService::default().decide((Uuid::nil(), &Article::default()), None, &shop),
            Err(DomainError::NotFound { .. })
        ));
        assert!(matches!(
            SelfService::default().decide(
                (Uuid::nil(), &article(false)),
                None,
                &Actor::new("ana", Role::Agent)
            ),
            Err(DomainError::Forbidden { .. })
        ));
    }
}
