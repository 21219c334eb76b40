//! Self-service articles: admins publish revisions and retire them; every role of
//! the tenant reads them. The rules are the domain's (`frontline_domain::article`);
//! suggesting them is analytics' (full-text search over its read model).

use frontline_domain::{
    Caller, DomainError, TenantId,
    article::{Article, ArticleCommand},
    ids, limits,
};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, execute};
use frontline_proto::{convert, v1};
use frontline_runtime::{ApiError, now_millis};
use uuid::Uuid;

/// Runs `command` on the article of `tenant` it names: the article after, as
/// the wire shows it, and whether anything was recorded.
pub async fn change(
    log: &EventLog,
    options: CommandOptions,
    (caller, meta): (&Caller, &EventMeta),
    tenant: &TenantId,
    command: ArticleCommand,
) -> Result<(v1::Article, bool), ApiError> {
    let slug = match &command {
        ArticleCommand::Publish { draft, .. } => &draft.slug,
        ArticleCommand::Retire { slug, .. } => slug,
    };
    limits::product_area("slug", slug)?;
    let id = ids::article_id(tenant, slug);
    let outcome = execute(log, &id, meta, options, now_millis, |a: &Article, _| {
        a.decide(&command, &caller.actor)
    })
    .await?;
    tracing::info!(article_id = %id, recorded = outcome.appended, "article changed");
    Ok((
        convert::article_wire(id, &outcome.loaded.state),
        outcome.appended,
    ))
}

/// `tenant`'s article `slug` as it stands (retired ones too); NOT_FOUND if it was
/// never published.
pub async fn get(
    log: &EventLog,
    tenant: &TenantId,
    slug: &str,
) -> Result<(Uuid, Article), ApiError> {
    limits::product_area("slug", slug)?;
    let id = ids::article_id(tenant, slug);
    let article = log.load::<Article>(&id).await?.state;
    if !article.exists() {
        return Err(DomainError::NotFound {
            kind: "article",
            id: slug.to_string(),
        }
        .into());
    }
    Ok((id, article))
}
