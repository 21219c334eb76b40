//! `SuggestAnswers` and `ListArticles`: the tenant's self-service articles, as the
//! projection keeps them in `analytics_articles` (one row each: the live revision's
//! text, whether it is retired, and how many customers it self-served), with the
//! tickets each solves now with no agent time (its rows in
//! `analytics_self_served`: a ticket counts once, and not once reopened).
//!
//! Suggestions are PostgreSQL full-text search (English stemming; the title
//! weighs more than the body, see migration 401). The question is every word of
//! the customer's subject and message OR-ed together, so a long, chatty message
//! still finds the article sharing a couple of its words; ranking sorts the
//! rest.

use frontline_domain::{TenantId, limits};
use frontline_proto::{convert, v1};
use frontline_runtime::ApiError;
use sqlx::{PgPool, types::chrono};
use uuid::Uuid;

use crate::{filters, store::millis};

/// Suggestions when the caller names no limit.
pub const DEFAULT_SUGGESTIONS: u32 = 3;
/// The most suggestions one call returns.
pub const MAX_SUGGESTIONS: u32 = 20;

/// The suggestions: `$1` tenant, `$2` the customer's text, `$3` product area
/// (`''`: any), `$4` how many.
///
/// The query is every distinct lexeme of the text (as `to_tsvector` stems it, stop
/// words gone) OR-ed together. Each lexeme is quoted for tsquery input —
/// backslashes and quotes doubled — so no character in it is read as an operator
/// (`quote_literal` would not do: it writes `E'…'` for a backslash, which tsquery
/// does not parse). A text of stop words and punctuation alone has no lexemes: the
/// query is NULL and matches nothing (no error, and no NOTICE as `''::tsquery`
/// would raise).
const SUGGEST: &str = r#"
WITH question AS (
    SELECT array_to_string(
               array_agg('''' || replace(replace(lexeme, E'\\', E'\\\\'), '''', '''''') || ''''),
               ' | ')::tsquery AS q
    FROM unnest(tsvector_to_array(to_tsvector('english', $2))) AS lexeme
)
SELECT a.article_id, a.slug, a.revision, a.product_area, a.title, a.body,
       ts_headline('english', a.body, question.q,
                   'MaxFragments=1, MaxWords=30, MinWords=10, StartSel=<b>, StopSel=</b>')
           AS snippet,
       ts_rank(a.search, question.q)::real AS rank
FROM analytics_articles a CROSS JOIN question
WHERE a.tenant = $1 AND NOT a.retired AND ($3 = '' OR a.product_area = $3)
  AND a.search @@ question.q
ORDER BY rank DESC, a.slug
LIMIT $4
"#;

/// A validated `SuggestAnswers` request.
#[derive(Debug, PartialEq)]
struct Question {
    /// Subject and body, as one text to search with.
    text: String,
    /// Only this area's articles, if set.
    product_area: Option<String>,
    /// At most this many answers.
    limit: u32,
}

/// Checks a request: the texts within a customer message's limits (what intake
/// would accept), at least one of them not blank, a well-formed area, a limit of
/// at most [`MAX_SUGGESTIONS`].
fn question(r: &v1::SuggestAnswersRequest) -> Result<Question, ApiError> {
    if r.subject.chars().count() > limits::MAX_SUBJECT_CHARS {
        return Err(ApiError::invalid(
            "subject",
            format!("must be at most {} characters", limits::MAX_SUBJECT_CHARS),
        ));
    }
    // A body's checks: at most 32 KiB, no control characters but line breaks and
    // tabs (a NUL would not even reach PostgreSQL's text). A subject within its
    // 200 characters is far within the size.
    limits::optional_body("subject", &r.subject)?;
    limits::optional_body("body", &r.body)?;
    if r.subject.trim().is_empty() && r.body.trim().is_empty() {
        return Err(ApiError::invalid(
            "subject",
            "subject or body must have a word",
        ));
    }
    let limit = match r.limit {
        0 => DEFAULT_SUGGESTIONS,
        n if n > MAX_SUGGESTIONS => {
            return Err(ApiError::invalid(
                "limit",
                format!("at most {MAX_SUGGESTIONS}"),
            ));
        }
        n => n,
    };
    Ok(Question {
        text: format!("{}\n{}", r.subject, r.body),
        product_area: filters::product_area("product_area", &r.product_area)?,
        limit,
    })
}

/// A suggestion as PostgreSQL returns it.
#[derive(Debug, sqlx::FromRow)]
struct Suggestion {
    article_id: Uuid,
    slug: String,
    revision: i32,
    product_area: String,
    title: String,
    body: String,
    snippet: String,
    rank: f32,
}

impl From<Suggestion> for v1::SuggestedAnswer {
    fn from(s: Suggestion) -> Self {
        v1::SuggestedAnswer {
            article_id: s.article_id.to_string(),
            slug: s.slug,
            revision: u32::try_from(s.revision).unwrap_or_default(),
            product_area: s.product_area,
            title: s.title,
            body: s.body,
            snippet: s.snippet,
            rank: s.rank,
        }
    }
}

/// `tenant`'s live articles best matching the request, best first; none when
/// nothing matches (or the text has only stop words).
pub async fn suggest(
    db: &PgPool,
    tenant: &TenantId,
    request: &v1::SuggestAnswersRequest,
) -> Result<v1::SuggestAnswersResponse, ApiError> {
    let q = question(request)?;
    let answers: Vec<Suggestion> = sqlx::query_as(SUGGEST)
        .bind(tenant.as_str())
        .bind(&q.text)
        .bind(q.product_area.unwrap_or_default())
        .bind(i64::from(q.limit))
        .fetch_all(db)
        .await?;
    Ok(v1::SuggestAnswersResponse {
        answers: answers.into_iter().map(Into::into).collect(),
    })
}

/// An article's row as `ListArticles` reads it.
#[derive(Debug, sqlx::FromRow)]
struct Listed {
    article_id: Uuid,
    slug: String,
    product_area: String,
    title: String,
    revision: i32,
    retired: bool,
    self_served: i64,
    tickets_solved: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Listed> for v1::ArticleDeflection {
    fn from(a: Listed) -> Self {
        v1::ArticleDeflection {
            article_id: a.article_id.to_string(),
            slug: a.slug,
            product_area: a.product_area,
            title: a.title,
            revision: u32::try_from(a.revision).unwrap_or_default(),
            retired: a.retired,
            self_served: u64::try_from(a.self_served).unwrap_or_default(),
            tickets_solved: u64::try_from(a.tickets_solved).unwrap_or_default(),
            updated_at: Some(convert::timestamp(millis(a.updated_at))),
        }
    }
}

/// `ListArticles`: `$1` tenant, `$2` product area (`''`: any), `$3` whether
/// retired ones too. `tickets_solved` counts the tickets of the tenant's that the
/// article solves now (solved by it and not reopened since; a ticket of another
/// tenant naming its id counts nothing).
const LIST: &str = "\
SELECT a.article_id, a.slug, a.product_area, a.title, a.revision, a.retired, a.self_served, \
       (SELECT count(*) FROM analytics_self_served s \
        WHERE s.article_id = a.article_id AND s.tenant = a.tenant) AS tickets_solved, \
       a.updated_at \
FROM analytics_articles a \
WHERE a.tenant = $1 AND ($2 = '' OR a.product_area = $2) AND ($3 OR NOT a.retired) \
ORDER BY a.product_area, a.slug";

/// `tenant`'s articles (of one area, if asked; retired ones only if asked) with
/// their deflection counts, by product area and slug.
pub async fn list(
    db: &PgPool,
    tenant: &TenantId,
    request: &v1::ListArticlesRequest,
) -> Result<v1::ListArticlesResponse, ApiError> {
    let area = filters::product_area("product_area", &request.product_area)?;
    let articles: Vec<Listed> = sqlx::query_as(LIST)
        .bind(tenant.as_str())
        .bind(area.unwrap_or_default())
        .bind(request.include_retired)
        .fetch_all(db)
        .await?;
    Ok(v1::ListArticlesResponse {
        articles: articles.into_iter().map(Into::into).collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ask(subject: &str, body: &str) -> v1::SuggestAnswersRequest {
        v1::SuggestAnswersRequest {
            subject: subject.into(),
            body: body.into(),
            ..Default::default()
        }
    }

    fn refused(r: &v1::SuggestAnswersRequest) -> String {
        match question(r) {
            Err(ApiError::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_question_needs_a_word_and_stays_within_a_messages_limits() {
        let q = question(&ask("No internet", "")).unwrap();
        assert_eq!((q.limit, q.product_area), (DEFAULT_SUGGESTIONS, None));
        assert!(question(&ask("", "the router blinks")).is_ok());
        // Stop words alone are a question (answered with nothing), blanks are not.
        assert!(question(&ask("the of", "")).is_ok());
        assert_eq!(refused(&ask("", "")), "subject");
        assert_eq!(refused(&ask(" \n", "\t ")), "subject");
        assert_eq!(refused(&ask(&"s".repeat(201), "")), "subject");
        assert!(question(&ask(&"é".repeat(200), "")).is_ok());
        assert_eq!(refused(&ask("a", &"b".repeat(32 * 1024 + 1))), "body");
        assert_eq!(refused(&ask("a", "nul \0 byte")), "body");
        assert_eq!(refused(&ask("a\u{7}", "b")), "subject");
    }

    #[test]
    fn limits_and_areas_are_checked() {
        let with = |limit: u32, area: &str| v1::SuggestAnswersRequest {
            limit,
            product_area: area.into(),
            ..ask("router", "")
        };
        assert_eq!(question(&with(20, "")).unwrap().limit, 20);
        assert_eq!(refused(&with(21, "")), "limit");
        assert_eq!(refused(&with(1, "Router X")), "product_area");
        assert_eq!(
            question(&with(1, "router-x200")).unwrap().product_area,
            Some("router-x200".into())
        );
    }
}

/// The projection's article handling and the suggest and list queries, against a
/// real PostgreSQL with the migrations.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod db {
    use frontline_domain::{
        Channel, Opening, Priority, TenantId, TicketEvent,
        article::{ArticleEvent, Draft},
        ids,
        self_service::{SelfServed, SelfServiceEvent},
    };
    use frontline_proto::v1;
    use frontline_runtime::ApiError;
    use sqlx::PgPool;
    use uuid::Uuid;

    use crate::{
        events::AnalyticsEvent,
        projection::{Change, apply_one},
        store::Tables,
    };

    /// How a ticket is reopened.
    #[derive(Clone, Copy)]
    enum Reopen {
        /// Support reopens it.
        BySupport,
        /// Its customer writes again.
        ByCustomer,
    }

    const T0: i64 = 1_700_000_000_000;

    fn acme() -> TenantId {
        TenantId::parse("tenant", "acme").unwrap()
    }

    fn globex() -> TenantId {
        TenantId::parse("tenant", "globex").unwrap()
    }

    /// A migrated database of its own.
    async fn database() -> PgPool {
        let database = frontline_testkit::test_database().await.unwrap();
        let db = PgPool::connect(&database.url).await.unwrap();
        frontline_runtime::service::migrate(
            &db,
            &[&frontline_projection::MIGRATOR, &crate::MIGRATOR],
        )
        .await
        .unwrap();
        db
    }

    /// Feeds events to the projection of generation `generation`, as the log
    /// would: each with its aggregate, version and time.
    struct Log {
        db: PgPool,
        tables: Tables,
        sequence: i64,
        /// Everything applied, in order (to apply again, batched).
        applied: Vec<(Change, AnalyticsEvent)>,
    }

    impl Log {
        fn new(db: &PgPool, generation: i32) -> Self {
            Log {
                db: db.clone(),
                tables: Tables::of(generation),
                sequence: 0,
                applied: Vec::new(),
            }
        }

        /// Applies everything applied so far to generation `generation`, as one
        /// batch of the batched path.
        async fn apply_batched(&self, generation: i32) {
            let changes: Vec<(Change, &AnalyticsEvent)> =
                self.applied.iter().map(|(c, e)| (*c, e)).collect();
            let mut tx = self.db.begin().await.unwrap();
            crate::batch::apply_changes(&mut tx, &Tables::of(generation), &changes)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }

        async fn apply(&mut self, id: Uuid, version: i64, event: AnalyticsEvent) {
            self.sequence += 1;
            let change = Change {
                id,
                version,
                at: T0 + self.sequence * 1_000,
                sequence: self.sequence,
            };
            let mut tx = self.db.begin().await.unwrap();
            apply_one(&mut tx, &self.tables, change, &event)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            self.applied.push((change, event));
        }

        /// Publishes revision `revision` of `slug`; returns the article's id.
        async fn publish(
            &mut self,
            tenant: &TenantId,
            (slug, area): (&str, &str),
            (title, body): (&str, &str),
            revision: u32,
        ) -> Uuid {
            let id = ids::article_id(tenant, slug);
            let draft = Draft {
                slug: slug.into(),
                product_area: area.into(),
                title: title.into(),
                body: body.into(),
            };
            let event = ArticleEvent::Published {
                tenant: tenant.clone(),
                revision,
                draft,
            };
            self.apply(id, i64::from(revision), AnalyticsEvent::Article(event))
                .await;
            id
        }

        async fn retire(&mut self, id: Uuid, version: i64, revision: u32) {
            let event = ArticleEvent::Retired { revision };
            self.apply(id, version, AnalyticsEvent::Article(event))
                .await;
        }

        async fn self_served(&mut self, tenant: &TenantId, article_id: Uuid) {
            let event = SelfServiceEvent::Recorded(SelfServed {
                tenant: tenant.clone(),
                article_id,
                revision: 1,
                customer_id: None,
            });
            self.apply(Uuid::new_v4(), 1, AnalyticsEvent::SelfService(event))
                .await;
        }

        /// Opens a ticket of `tenant` (its version 1); returns its id.
        async fn open_ticket(&mut self, tenant: &TenantId) -> Uuid {
            let ticket = Uuid::new_v4();
            let opened = TicketEvent::Opened(Opening {
                tenant: tenant.clone(),
                channel: Channel::Web,
                customer_id: Uuid::new_v4(),
                subject: "no internet".into(),
                body: "b".into(),
                product_area: "router-x200".into(),
                priority: Priority::Normal,
                idempotency_key: ticket.to_string(),
                follow_up_of: None,
            });
            self.apply(ticket, 1, AnalyticsEvent::Ticket(opened)).await;
            ticket
        }

        /// Solves `ticket` (by `article`, if any) as its `version`th event.
        async fn solve(&mut self, ticket: Uuid, version: i64, article: Option<Uuid>) {
            let solved = TicketEvent::Solved {
                resolution: String::new(),
                self_served: article,
                idempotency_key: None,
            };
            self.apply(ticket, version, AnalyticsEvent::Ticket(solved.clone()))
                .await;
            // The same event again (a stale repeat): the ticket's row ignores it,
            // and so does the count.
            self.apply(ticket, version, AnalyticsEvent::Ticket(solved))
                .await;
        }

        /// Reopens `ticket` as its `version`th event.
        async fn reopen(&mut self, ticket: Uuid, version: i64, how: Reopen) {
            let event = match how {
                Reopen::BySupport => TicketEvent::Reopened {
                    reason: "not solved".into(),
                },
                Reopen::ByCustomer => TicketEvent::CustomerMessageAdded {
                    body: "still broken".into(),
                    channel: Channel::Web,
                    idempotency_key: format!("{ticket}-{version}"),
                    reopened: true,
                },
            };
            self.apply(ticket, version, AnalyticsEvent::Ticket(event))
                .await;
        }

        /// Opens a ticket of `tenant` and solves it (by `article`, if any);
        /// returns its id (at version 2).
        async fn solved_ticket(&mut self, tenant: &TenantId, article: Option<Uuid>) -> Uuid {
            let ticket = self.open_ticket(tenant).await;
            self.solve(ticket, 2, article).await;
            ticket
        }
    }

    const ROUTER: (&str, &str) = (
        "Resetting your router",
        "Hold the reset button on the back for ten seconds until the lights blink. \
         Then wait two minutes for the router to restart.",
    );

    /// A long message sharing two words with [`ROUTER`] ("button", "blink") and
    /// none with the other articles.
    fn long_message() -> String {
        let chatter = "Dear support team, since yesterday evening nothing works at home. \
            My daughter cannot do her homework, my husband is angry, and the television \
            shows a grey picture. I pay a lot every month for this service, so please \
            phone me as soon as possible. ";
        let mut body = chatter.repeat(60);
        body.push_str("I pressed the button twice and saw a green blink, nothing else.");
        body.push_str(&chatter.repeat(60));
        assert!(body.len() < 32 * 1024);
        body
    }

    async fn suggest(
        db: &PgPool,
        tenant: &TenantId,
        request: v1::SuggestAnswersRequest,
    ) -> Vec<(String, String)> {
        let answers = super::suggest(db, tenant, &request).await.unwrap().answers;
        answers.into_iter().map(|a| (a.slug, a.snippet)).collect()
    }

    fn ask(subject: &str, body: &str, area: &str) -> v1::SuggestAnswersRequest {
        v1::SuggestAnswersRequest {
            subject: subject.into(),
            body: body.into(),
            product_area: area.into(),
            limit: 0,
        }
    }

    fn slugs(answers: &[(String, String)]) -> Vec<&str> {
        answers.iter().map(|(slug, _)| slug.as_str()).collect()
    }

    #[tokio::test]
    async fn suggestions_match_a_long_message_but_never_retired_or_foreign_articles() {
        let db = database().await;
        let mut log = Log::new(&db, 1);
        let router = log
            .publish(&acme(), ("reset-router", "router-x200"), ROUTER, 1)
            .await;
        log.publish(
            &acme(),
            ("refund", "billing"),
            (
                "Getting a refund",
                "Refunds go back to the card you paid with.",
            ),
            1,
        )
        .await;
        // A better match than the live one, but retired.
        let old = log
            .publish(
                &acme(),
                ("old-firmware", "router-x200"),
                ("Button blink", "The button and its blink: a button blink."),
                1,
            )
            .await;
        log.retire(old, 2, 1).await;
        // The same text in another tenant.
        log.publish(&globex(), ("reset-router", "router-x200"), ROUTER, 1)
            .await;

        let found = suggest(&db, &acme(), ask("Internet down", &long_message(), "")).await;
        assert_eq!(slugs(&found), ["reset-router"]);
        let snippet = &found[0].1;
        assert!(snippet.contains("<b>button</b>"), "{snippet}");
        assert!(snippet.contains("<b>blink</b>"), "{snippet}");

        // The product area narrows; stop words alone find nothing, without error.
        let refund = ask("refund please", "", "billing");
        assert_eq!(slugs(&suggest(&db, &acme(), refund).await), ["refund"]);
        let elsewhere = ask("refund please", "", "router-x200");
        assert!(suggest(&db, &acme(), elsewhere).await.is_empty());
        let nothing = ask("the of", "and is it? !!!", "");
        assert!(suggest(&db, &acme(), nothing).await.is_empty());
        // Quotes, backslashes and tsquery operators in the text are only text.
        let odd = ask(
            "it's O'Reilly's | & ! <-> :* \\ router",
            "C:\\dir 'x' \"y\"",
            "",
        );
        assert_eq!(slugs(&suggest(&db, &acme(), odd).await), ["reset-router"]);
        let blank = super::suggest(&db, &acme(), &ask(" ", "\n", "")).await;
        assert!(
            matches!(blank, Err(ApiError::InvalidArgument { field, .. }) if field == "subject")
        );

        // The title weighs more than the body (a tie would put "cables" first),
        // and the limit holds.
        log.publish(
            &acme(),
            ("cables", "modem"),
            ("Cables", "Check the modem."),
            1,
        )
        .await;
        log.publish(&acme(), ("modem", "modem"), ("Modem", "Unplug it."), 1)
            .await;
        let modem = ask("modem", "", "");
        assert_eq!(
            slugs(&suggest(&db, &acme(), modem.clone()).await),
            ["modem", "cables"]
        );
        let one = v1::SuggestAnswersRequest { limit: 1, ..modem };
        assert_eq!(slugs(&suggest(&db, &acme(), one).await), ["modem"]);

        // Published again, the retired article is back, as its new revision.
        log.publish(
            &acme(),
            ("old-firmware", "router-x200"),
            ("Button blink", "The button and its blink: a button blink."),
            2,
        )
        .await;
        let answers = super::suggest(&db, &acme(), &ask("button blink", "", ""))
            .await
            .unwrap()
            .answers;
        let first = &answers[0];
        assert_eq!((first.slug.as_str(), first.revision), ("old-firmware", 2));
        assert_eq!(answers[1].article_id, router.to_string());
        assert!(answers[0].rank > answers[1].rank);
    }

    #[tokio::test]
    async fn deflections_count_per_article_and_tenant() {
        let db = database().await;
        let mut log = Log::new(&db, 1);
        let router = log
            .publish(&acme(), ("reset-router", "router-x200"), ROUTER, 1)
            .await;
        let refund = log
            .publish(
                &acme(),
                ("refund", "billing"),
                (
                    "Getting a refund",
                    "Refunds go back to the card you paid with.",
                ),
                1,
            )
            .await;
        log.self_served(&acme(), router).await;
        log.self_served(&acme(), router).await;
        // Another tenant's answer naming this id, and an article with no row:
        // nothing counts (and nothing fails).
        log.self_served(&globex(), router).await;
        log.self_served(&acme(), Uuid::new_v4()).await;
        log.solved_ticket(&acme(), Some(router)).await;
        log.solved_ticket(&acme(), None).await;
        log.solved_ticket(&globex(), Some(refund)).await;
        // A new revision keeps the counts; retiring too.
        log.publish(
            &acme(),
            ("reset-router", "router-x200"),
            ("Reset", "Hold it."),
            2,
        )
        .await;
        log.retire(refund, 2, 1).await;

        let list = |area: &str, include_retired: bool| {
            let request = v1::ListArticlesRequest {
                product_area: area.into(),
                include_retired,
            };
            let db = db.clone();
            async move { super::list(&db, &acme(), &request).await.unwrap().articles }
        };
        let all = list("", true).await;
        let rows: Vec<_> = all
            .iter()
            .map(|a| {
                let counts = (a.self_served, a.tickets_solved);
                (a.slug.as_str(), a.revision, a.retired, counts)
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("refund", 1, true, (0, 0)),
                ("reset-router", 2, false, (2, 1)),
            ]
        );
        assert_eq!(all[1].title, "Reset");
        assert_eq!(all[1].article_id, router.to_string());
        // Updated when published or retired, not when counted.
        let updated = all[1].updated_at.unwrap();
        assert!(updated.seconds * 1_000 > T0);
        let live = list("", false).await;
        assert_eq!(live.len(), 1);
        assert!(list("billing", false).await.is_empty());
        assert_eq!(list("billing", true).await.len(), 1);
        let bad = v1::ListArticlesRequest {
            product_area: "Billing".into(),
            include_retired: false,
        };
        assert!(matches!(
            super::list(&db, &acme(), &bad).await,
            Err(ApiError::InvalidArgument { .. })
        ));
    }

    /// `tenant`'s articles' `tickets_solved`, by slug.
    async fn tickets_solved(db: &PgPool, tenant: &TenantId) -> Vec<(String, u64)> {
        let request = v1::ListArticlesRequest {
            product_area: String::new(),
            include_retired: true,
        };
        let listed = super::list(db, tenant, &request).await.unwrap().articles;
        listed
            .into_iter()
            .map(|a| (a.slug, a.tickets_solved))
            .collect()
    }

    /// A generation's table (or view), row by row, as text.
    async fn rows(db: &PgPool, table: &str, order: &str) -> Vec<String> {
        sqlx::query_scalar(&format!("SELECT r::text FROM {table} r ORDER BY {order}"))
            .fetch_all(db)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_ticket_counts_once_for_its_article_and_not_once_reopened() {
        let db = database().await;
        let mut log = Log::new(&db, 1);
        let router = log
            .publish(&acme(), ("reset-router", "router-x200"), ROUTER, 1)
            .await;
        let refund = log
            .publish(
                &acme(),
                ("refund", "billing"),
                ("Refunds", "To the card."),
                1,
            )
            .await;
        let counts = |router: u64, refund: u64| {
            vec![
                ("refund".to_string(), refund),
                ("reset-router".to_string(), router),
            ]
        };

        // Solved by the article (and a stale repeat of that): once.
        let first = log.solved_ticket(&acme(), Some(router)).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(1, 0));
        // Reopened by support: no more.
        log.reopen(first, 3, Reopen::BySupport).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(0, 0));
        // Solved by the article again: once again, not twice.
        log.solve(first, 4, Some(router)).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(1, 0));
        // A stale repeat of the reopen changes nothing.
        let stale = TicketEvent::Reopened {
            reason: "not solved".into(),
        };
        log.apply(first, 3, AnalyticsEvent::Ticket(stale)).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(1, 0));
        // Another ticket.
        let second = log.solved_ticket(&acme(), Some(router)).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(2, 0));
        // Its customer writes again: reopened, and left open.
        log.reopen(second, 3, Reopen::ByCustomer).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(1, 0));
        // Reopened, then solved by another article: it counts for that one.
        log.reopen(first, 5, Reopen::ByCustomer).await;
        log.solve(first, 6, Some(refund)).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(0, 1));
        // Reopened, then solved by an agent: no article's.
        log.reopen(first, 7, Reopen::BySupport).await;
        log.solve(first, 8, None).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(0, 0));
        let third = log.solved_ticket(&acme(), Some(router)).await;
        // Another tenant's ticket naming the article counts for no one.
        log.solved_ticket(&globex(), Some(router)).await;
        assert_eq!(tickets_solved(&db, &acme()).await, counts(1, 0));
        assert!(tickets_solved(&db, &globex()).await.is_empty());
        let stored: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
            "SELECT ticket_id, article_id, tenant FROM analytics_self_served WHERE tenant = 'acme'",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(stored, [(third, router, "acme".to_string())]);

        // The batched path (the reopens folded, the deletes at the runs' ends)
        // makes the same rows of the same log.
        let (generation, _) = crate::generations::rebuild(&db).await.unwrap();
        log.apply_batched(generation).await;
        for (table, order) in [
            ("analytics_self_served", "ticket_id"),
            ("analytics_tickets", "ticket_id, revision"),
            ("analytics_articles", "article_id"),
        ] {
            assert_eq!(
                rows(&db, &format!("{table}_g1"), order).await,
                rows(&db, &format!("{table}_g{generation}"), order).await,
                "{table}"
            );
        }
        let table = format!("analytics_self_served_g{generation}");
        assert_eq!(rows(&db, &table, "ticket_id").await.len(), 2);
    }

    #[tokio::test]
    async fn a_rebuilt_generation_gets_the_search_column_and_index() {
        let db = database().await;
        let (generation, started) = crate::generations::rebuild(&db).await.unwrap();
        assert_eq!((generation, started), (2, true));
        let mut log = Log::new(&db, generation);
        log.publish(&acme(), ("reset-router", "router-x200"), ROUTER, 1)
            .await;
        let matched: bool = sqlx::query_scalar(
            "SELECT search @@ 'blink'::tsquery FROM analytics_articles_g2 WHERE slug = 'reset-router'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        assert!(matched, "the generated search vector was copied");
        let gin: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'analytics_articles_g2' \
             AND indexdef LIKE '%USING gin (search)%'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(gin, 1, "the GIN index was copied");
        // The tickets solved by an article: keyed by ticket, indexed by article.
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'analytics_self_served_g2' \
             ORDER BY indexdef",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(indexes.len(), 2, "{indexes:?}");
        assert!(indexes[0].contains("(article_id)"), "{indexes:?}");
        assert!(indexes[1].contains("UNIQUE") && indexes[1].contains("(ticket_id)"));
    }
}
