//! Self-service articles: a tenant's help texts, which a channel offers a customer
//! before a ticket is opened (analytics ranks them by full-text search).
//!
//! One aggregate per article (`frontline.article.<id>`, the id derived from the
//! tenant and the article's slug, so a slug names one article forever). Every
//! publish is a new revision (1, 2, …) carrying the whole text; retiring takes it
//! out of suggestions, and publishing again brings it back as the next revision.
//!
//! Rules: only admins publish and retire; a publish that changes nothing records
//! nothing; `expected_revision`, when given, must be the current revision (two
//! editors never overwrite each other unseen).

use crate::{Action, Actor, Aggregate, DomainError, Recorded, TenantId, actor::authorize, limits};

/// Most characters in an article's title.
pub const MAX_TITLE_CHARS: usize = limits::MAX_SUBJECT_CHARS;

/// An article's text, as an admin writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// Its name in the tenant, `[a-z0-9_-]{1,64}`: what its id derives from.
    pub slug: String,
    /// The product area it helps with.
    pub product_area: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
}

impl Draft {
    /// The fields, named as `PublishArticle`'s request names them.
    pub fn validate(&self) -> Result<(), DomainError> {
        limits::product_area("article.slug", &self.slug)?;
        limits::product_area("article.product_area", &self.product_area)?;
        limits::text("article.title", &self.title, MAX_TITLE_CHARS)?;
        limits::body("article.body", &self.body)
    }
}

/// An article, rebuilt from its events.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Article {
    /// Events applied.
    pub version: u64,
    /// The tenant (empty until published).
    pub tenant: TenantId,
    /// Its slug.
    pub slug: String,
    /// Its product area.
    pub product_area: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// The current revision (0: never published).
    pub revision: u32,
    /// Retired: no longer suggested.
    pub retired: bool,
}

/// What admins ask of an article.
#[derive(Clone, Debug, PartialEq)]
pub enum ArticleCommand {
    /// Publish a new revision (the first one creates the article).
    Publish {
        /// The tenant.
        tenant: TenantId,
        /// The text.
        draft: Draft,
        /// The revision the admin edited, if they say.
        expected_revision: Option<u32>,
    },
    /// Take it out of suggestions.
    Retire {
        /// Its slug (for the answer when there is no such article).
        slug: String,
        /// The revision the admin saw, if they say.
        expected_revision: Option<u32>,
    },
}

/// What happened to an article.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArticleEvent {
    /// A revision was published.
    Published {
        /// The tenant.
        tenant: TenantId,
        /// The revision (1, 2, …).
        revision: u32,
        /// Its text.
        draft: Draft,
    },
    /// It was retired.
    Retired {
        /// The revision it was at.
        revision: u32,
    },
}

impl Article {
    /// Whether it was ever published.
    pub fn exists(&self) -> bool {
        self.revision > 0
    }

    /// Whether a channel may offer it (and a customer say it helped).
    pub fn is_live(&self) -> bool {
        self.exists() && !self.retired
    }

    /// Decides `command` by `actor`; `Ok(None)` when it changes nothing.
    pub fn decide(
        &self,
        command: &ArticleCommand,
        actor: &Actor,
    ) -> Result<Option<ArticleEvent>, DomainError> {
        authorize(actor, Action::ManageArticles)?;
        let expected = match command {
            ArticleCommand::Publish {
                expected_revision, ..
            }
            | ArticleCommand::Retire {
                expected_revision, ..
            } => *expected_revision,
        };
        match command {
            ArticleCommand::Publish { draft, .. } => draft.validate()?,
            // Nothing to retire wins over a stale revision: retrying cannot help.
            ArticleCommand::Retire { slug, .. } if !self.exists() => {
                return Err(DomainError::NotFound {
                    kind: "article",
                    id: slug.clone(),
                });
            }
            ArticleCommand::Retire { .. } => {}
        }
        // Already so: a retry answers as the repeat it is, even with the revision
        // it was made on.
        let already = match command {
            ArticleCommand::Publish { draft, .. } => {
                self.is_live()
                    && self.product_area == draft.product_area
                    && self.title == draft.title
                    && self.body == draft.body
            }
            ArticleCommand::Retire { .. } => self.retired,
        };
        if already {
            return Ok(None);
        }
        if let Some(expected) = expected.filter(|e| *e != self.revision) {
            return Err(DomainError::StaleVersion {
                expected: expected.into(),
                actual: self.revision.into(),
            });
        }
        Ok(Some(match command {
            ArticleCommand::Publish { tenant, draft, .. } => ArticleEvent::Published {
                tenant: tenant.clone(),
                revision: self.revision + 1,
                draft: draft.clone(),
            },
            ArticleCommand::Retire { .. } => ArticleEvent::Retired {
                revision: self.revision,
            },
        }))
    }
}

impl Aggregate for Article {
    type Event = ArticleEvent;
    const KIND: &'static str = "article";
    const SNAPSHOT_SCHEMA: u32 = 1;
    // Every revision carries the whole text (up to 32 KiB): an often-edited
    // article loads from its snapshot, not by replaying them all.
    const SNAPSHOTS: bool = true;

    fn version(&self) -> u64 {
        self.version
    }

    fn apply(&mut self, recorded: &Recorded<ArticleEvent>) {
        match &recorded.event {
            ArticleEvent::Published {
                tenant,
                revision,
                draft,
            } => {
                self.tenant = tenant.clone();
                self.slug = draft.slug.clone();
                self.product_area = draft.product_area.clone();
                self.title = draft.title.clone();
                self.body = draft.body.clone();
                self.revision = *revision;
                self.retired = false;
            }
            ArticleEvent::Retired { .. } => self.retired = true,
        }
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

    fn tenant() -> TenantId {
        TenantId::parse("tenant", "acme").unwrap()
    }

    fn draft() -> Draft {
        Draft {
            slug: "reset-router".into(),
            product_area: "router-x200".into(),
            title: "Resetting your router".into(),
            body: "Hold the reset button for ten seconds.".into(),
        }
    }

    fn publish(expected_revision: Option<u32>) -> ArticleCommand {
        ArticleCommand::Publish {
            tenant: tenant(),
            draft: draft(),
            expected_revision,
        }
    }

    fn after(article: &Article, event: ArticleEvent) -> Article {
        let mut next = article.clone();
        next.apply(&Recorded {
            event,
            actor: admin(),
            at: 1,
        });
        next
    }

    fn admin() -> Actor {
        Actor::new("root", Role::Admin)
    }

    #[test]
    fn publishing_makes_revisions_and_a_repeat_records_nothing() {
        let first = Article::default().decide(&publish(None), &admin()).unwrap();
        let article = after(&Article::default(), first.unwrap());
        assert_eq!((article.revision, article.is_live()), (1, true));
        assert_eq!(article.decide(&publish(Some(1)), &admin()), Ok(None));
        let edited = ArticleCommand::Publish {
            tenant: tenant(),
            draft: Draft {
                body: "Hold it for thirty seconds.".into(),
                ..draft()
            },
            expected_revision: Some(1),
        };
        let second = article.decide(&edited, &admin()).unwrap().unwrap();
        assert!(matches!(
            second,
            ArticleEvent::Published { revision: 2, .. }
        ));
    }

    #[test]
    fn a_stale_revision_is_refused() {
        let article = after(
            &Article::default(),
            Article::default()
                .decide(&publish(None), &admin())
                .unwrap()
                .unwrap(),
        );
        let edited = ArticleCommand::Publish {
            tenant: tenant(),
            draft: Draft {
                title: "Another title".into(),
                ..draft()
            },
            expected_revision: Some(0),
        };
        assert_eq!(
            article.decide(&edited, &admin()),
            Err(DomainError::StaleVersion {
                expected: 0,
                actual: 1
            })
        );
        // A retry of the publish that made revision 1 is a repeat, not a conflict.
        assert_eq!(article.decide(&publish(Some(0)), &admin()), Ok(None));
    }

    #[test]
    fn retiring_takes_it_out_and_publishing_brings_it_back() {
        let retire = ArticleCommand::Retire {
            slug: "reset-router".into(),
            expected_revision: None,
        };
        assert!(matches!(
            Article::default().decide(&retire, &admin()),
            Err(DomainError::NotFound {
                kind: "article",
                ..
            })
        ));
        let live = after(
            &Article::default(),
            Article::default()
                .decide(&publish(None), &admin())
                .unwrap()
                .unwrap(),
        );
        let retired = after(&live, live.decide(&retire, &admin()).unwrap().unwrap());
        assert!(!retired.is_live());
        assert_eq!(retired.decide(&retire, &admin()), Ok(None));
        // The same text again: a new revision, live again.
        let back = retired.decide(&publish(None), &admin()).unwrap().unwrap();
        assert!(matches!(back, ArticleEvent::Published { revision: 2, .. }));
    }

    #[test]
    fn only_admins_publish_and_fields_are_checked() {
        for role in [Role::Agent, Role::Manager, Role::CustomerSystem] {
            assert!(matches!(
                Article::default().decide(&publish(None), &Actor::new("x", role)),
                Err(DomainError::Forbidden { .. })
            ));
        }
        for (field, bad) in [
            (
                "slug",
                Draft {
                    slug: "Reset Router".into(),
                    ..draft()
                },
            ),
            (
                "product_area",
                Draft {
                    product_area: String::new(),
                    ..draft()
                },
            ),
            (
                "title",
                Draft {
                    title: " ".into(),
                    ..draft()
                },
            ),
            (
                "title",
                Draft {
                    title: "t".repeat(MAX_TITLE_CHARS + 1),
                    ..draft()
                },
            ),
            (
                "body",
                Draft {
                    body: String::new(),
                    ..draft()
                },
            ),
        ] {
            let command = ArticleCommand::Publish {
                tenant: tenant(),
                draft: bad,
                expected_revision: None,
            };
            assert!(
                matches!(
                    Article::default().decide(&command, &admin()),
                    Err(DomainError::InvalidField { field: f, .. }) if f == format!("article.{field}")
                ),
                "{field}"
            );
        }
    }
}
