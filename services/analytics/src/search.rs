//! `ListTickets`: filters, sort, and keyset pages read from one snapshot, so a
//! search's pages neither skip nor repeat a ticket while tickets change.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use frontline_domain::{TenantId, UnixMillis, limits};
use frontline_proto::{convert, v1};
use frontline_runtime::ApiError;
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::{
    filters::{self, Range},
    rows::TicketRow,
    snapshot::Snapshot,
    store::{TICKET_COLUMNS, TicketRecord, time},
};

/// Tickets per page when the caller names no size.
pub const DEFAULT_PAGE: u32 = 50;
/// The largest page.
pub const MAX_PAGE: u32 = 500;
/// The longest subject text filter, in characters.
const MAX_TEXT: usize = 200;

/// A validated search.
#[derive(Debug)]
struct Search {
    statuses: Vec<i16>,
    assignee: Option<String>,
    tier: Option<i16>,
    product_area: Option<String>,
    customer: Option<Uuid>,
    channel: Option<i16>,
    sla: v1::SlaStanding,
    opened: Range,
    updated: Range,
    text: Option<String>,
    by_updated: bool,
    ascending: bool,
    page_size: u32,
}

/// Where the next page starts, and what it reads (base64url JSON in the token).
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cursor {
    /// The search's snapshot.
    snapshot: Snapshot,
    /// The moment of the search's first page.
    as_of: UnixMillis,
    /// The last ticket's sort key and id.
    key: UnixMillis,
    id: Uuid,
    /// A digest of the tenant, filters and sort: a token fits only its own search.
    search: String,
}

/// One page of tickets for `tenant`; `internal`: the caller may see internal data.
pub async fn list(
    db: &PgPool,
    tenant: &TenantId,
    internal: bool,
    request: &v1::ListTicketsRequest,
    now: UnixMillis,
) -> Result<v1::ListTicketsResponse, ApiError> {
    let search = validate(request, internal)?;
    let digest = digest(tenant, request);
    let (snapshot, as_of, after) = if request.page_token.is_empty() {
        let snapshot = match filters::as_of(request.as_of.as_ref())? {
            Some(at) => Snapshot::At(at),
            // Pages of a live search read the revisions of this stream position.
            None => Snapshot::Sequence(
                i64::try_from(crate::generations::live_checkpoint(db).await?).unwrap_or(i64::MAX),
            ),
        };
        let as_of = match snapshot {
            Snapshot::At(at) => at,
            _ => now,
        };
        (snapshot, as_of, None)
    } else {
        let cursor = decode(&request.page_token)?;
        if cursor.search != digest {
            return Err(ApiError::invalid(
                "page_token",
                "belongs to another search (filters, sort or as_of changed)",
            ));
        }
        (cursor.snapshot, cursor.as_of, Some((cursor.key, cursor.id)))
    };

    let key = if search.by_updated {
        "updated_at"
    } else {
        "opened_at"
    };
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {TICKET_COLUMNS} FROM analytics_tickets t WHERE t.tenant = "
    ));
    q.push_bind(tenant.as_str().to_string());
    snapshot.push(&mut q, "t");
    push_filters(&mut q, &search);
    if let Some((last, id)) = after {
        let op = if search.ascending { ">" } else { "<" };
        q.push(format_args!(" AND (t.{key}, t.ticket_id) {op} ("));
        q.push_bind(time(last));
        q.push(", ");
        q.push_bind(id);
        q.push(")");
    }
    let dir = if search.ascending { "ASC" } else { "DESC" };
    q.push(format_args!(
        " ORDER BY t.{key} {dir}, t.ticket_id {dir} LIMIT "
    ));
    q.push_bind(i64::from(search.page_size) + 1);
    let mut rows: Vec<TicketRow> = q
        .build_query_as::<TicketRecord>()
        .fetch_all(db)
        .await?
        .into_iter()
        .map(TicketRow::from)
        .collect();

    let more = rows.len() > search.page_size as usize;
    rows.truncate(search.page_size as usize);
    let next_page_token = match rows.last() {
        Some(last) if more => encode(&Cursor {
            snapshot,
            as_of,
            key: if search.by_updated {
                last.updated_at
            } else {
                last.opened_at
            },
            id: last.ticket_id,
            search: digest,
        })?,
        _ => String::new(),
    };
    Ok(v1::ListTicketsResponse {
        tickets: rows.iter().map(|r| wire(r, internal)).collect(),
        next_page_token,
        as_of: Some(convert::timestamp(as_of)),
    })
}

fn validate(r: &v1::ListTicketsRequest, internal: bool) -> Result<Search, ApiError> {
    let staff_only = |field: &str| {
        ApiError::PermissionDenied(format!(
            "customer systems cannot filter on {field}: it is internal data"
        ))
    };
    if !internal && !r.assignee_id.is_empty() {
        return Err(staff_only("assignee_id"));
    }
    let sla = v1::SlaStanding::try_from(r.sla)
        .map_err(|_| ApiError::invalid("sla", "unknown SLA standing"))?;
    if !internal && sla != v1::SlaStanding::Unspecified {
        return Err(staff_only("sla"));
    }
    let statuses = r
        .statuses
        .iter()
        .enumerate()
        .map(|(i, raw)| filters::known::<v1::TicketStatus>(&format!("statuses[{i}]"), *raw))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    // No control characters (a NUL would not even reach PostgreSQL's text: the
    // query would fail as INTERNAL; found by `make soak`'s fuzzer).
    limits::optional_body("text", &r.text)?;
    limits::optional_body("assignee_id", &r.assignee_id)?;
    let text = r.text.trim();
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid(
            "text",
            format!("at most {MAX_TEXT} characters"),
        ));
    }
    let page_size = match r.page_size {
        0 => DEFAULT_PAGE,
        n if n > MAX_PAGE => {
            return Err(ApiError::invalid(
                "page_size",
                format!("at most {MAX_PAGE}"),
            ));
        }
        n => n,
    };
    let by_updated = match v1::TicketSortKey::try_from(r.sort_by) {
        Ok(v1::TicketSortKey::UpdatedAt) => true,
        Ok(_) => false,
        Err(_) => return Err(ApiError::invalid("sort_by", "unknown sort key")),
    };
    let ascending = match v1::SortOrder::try_from(r.order) {
        Ok(v1::SortOrder::Ascending) => true,
        Ok(_) => false,
        Err(_) => return Err(ApiError::invalid("order", "unknown order")),
    };
    Ok(Search {
        statuses,
        assignee: filters::optional(&r.assignee_id),
        tier: filters::known::<v1::Tier>("tier", r.tier)?,
        product_area: filters::product_area("product_area", &r.product_area)?,
        customer: filters::uuid("customer_id", &r.customer_id)?,
        channel: filters::known::<v1::Channel>("channel", r.channel)?,
        sla,
        opened: filters::range("opened", r.opened.as_ref())?,
        updated: filters::range("updated", r.updated.as_ref())?,
        text: (!text.is_empty()).then(|| text.to_string()),
        by_updated,
        ascending,
        page_size,
    })
}

fn push_filters(q: &mut QueryBuilder<'_, Postgres>, s: &Search) {
    if !s.statuses.is_empty() {
        q.push(" AND t.status = ANY(");
        q.push_bind(s.statuses.clone());
        q.push(")");
    }
    if let Some(assignee) = &s.assignee {
        q.push(" AND t.assignee = ");
        q.push_bind(assignee.clone());
    }
    if let Some(tier) = s.tier {
        q.push(" AND t.tier = ");
        q.push_bind(tier);
    }
    if let Some(area) = &s.product_area {
        q.push(" AND t.product_area = ");
        q.push_bind(area.clone());
    }
    if let Some(customer) = s.customer {
        q.push(" AND t.customer_id = ");
        q.push_bind(customer);
    }
    if let Some(channel) = s.channel {
        q.push(" AND t.channel = ");
        q.push_bind(channel);
    }
    match s.sla {
        v1::SlaStanding::Breached => {
            q.push(" AND t.breaches > 0");
        }
        v1::SlaStanding::AtRisk => {
            q.push(" AND cardinality(t.warned_clocks) > 0 AND t.status IN (1, 2, 3, 6)");
        }
        v1::SlaStanding::Unspecified => {}
    }
    s.opened.push(q, "t.opened_at");
    s.updated.push(q, "t.updated_at");
    if let Some(text) = &s.text {
        // The text is matched literally: LIKE's wildcards in it are escaped.
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q.push(" AND t.subject ILIKE ");
        q.push_bind(format!("%{escaped}%"));
    }
}

/// A ticket row on the wire; customer systems get no internal data.
fn wire(r: &TicketRow, internal: bool) -> v1::TicketRow {
    let time = |ms: Option<UnixMillis>| ms.map(convert::timestamp);
    v1::TicketRow {
        ticket_id: r.ticket_id.to_string(),
        customer_id: r.customer_id.to_string(),
        subject: r.subject.clone(),
        status: i32::from(r.status),
        channel: i32::from(r.channel),
        product_area: r.product_area.clone(),
        priority: i32::from(r.priority),
        tier: i32::from(r.tier),
        assignee_id: if internal {
            r.assignee.clone()
        } else {
            String::new()
        },
        opened_at: time(Some(r.opened_at)),
        first_reply_at: time(r.first_reply_at),
        solved_at: time(r.solved_at),
        updated_at: time(Some(r.updated_at)),
        reopens: u32::try_from(r.reopens).unwrap_or_default(),
        at_risk: internal && !r.warned_clocks.is_empty() && r.active(),
        breached: internal && r.breaches > 0,
        minutes_logged: if internal {
            u32::try_from(r.minutes_logged).unwrap_or_default()
        } else {
            0
        },
        version: u64::try_from(r.version).unwrap_or_default(),
    }
}

/// The search a token belongs to: tenant, filters and sort, not the page.
fn digest(tenant: &TenantId, r: &v1::ListTicketsRequest) -> String {
    let mut same = r.clone();
    same.page_token.clear();
    same.page_size = 0;
    let mut hash = Sha256::new();
    hash.update(tenant.as_str().as_bytes());
    hash.update([0]);
    hash.update(same.encode_to_vec());
    let digest = hash.finalize();
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

fn encode(cursor: &Cursor) -> Result<String, ApiError> {
    let json =
        serde_json::to_vec(cursor).map_err(|e| ApiError::Internal(format!("page token: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn decode(token: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::invalid("page_token", "not a token this search returned");
    let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    serde_json::from_slice(&json).map_err(|_| bad())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_garbage_is_refused() {
        let cursor = Cursor {
            snapshot: Snapshot::Sequence(42),
            as_of: 1_700_000_000_000,
            key: 1_700_000_000_123,
            id: Uuid::nil(),
            search: "abc".into(),
        };
        assert_eq!(decode(&encode(&cursor).unwrap()).unwrap(), cursor);
        for bad in ["", "!!!", "e30", "bm90IGpzb24"] {
            assert!(
                matches!(decode(bad), Err(ApiError::InvalidArgument { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_digest_ignores_the_page_but_not_the_filters() {
        let tenant = TenantId::parse("t", "acme").unwrap();
        let first = v1::ListTicketsRequest {
            product_area: "billing".into(),
            ..Default::default()
        };
        let mut later = first.clone();
        later.page_token = "x".into();
        later.page_size = 7;
        assert_eq!(digest(&tenant, &first), digest(&tenant, &later));
        later.product_area = "router".into();
        assert_ne!(digest(&tenant, &first), digest(&tenant, &later));
        let other = TenantId::parse("t", "globex").unwrap();
        assert_ne!(digest(&tenant, &first), digest(&other, &first));
    }

    #[test]
    fn customer_systems_may_not_filter_on_internal_data() {
        let r = v1::ListTicketsRequest {
            assignee_id: "ana".into(),
            ..Default::default()
        };
        assert!(matches!(
            validate(&r, false),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(validate(&r, true).is_ok());
        let r = v1::ListTicketsRequest {
            page_size: 501,
            ..Default::default()
        };
        assert!(matches!(
            validate(&r, true),
            Err(ApiError::InvalidArgument { .. })
        ));
    }
}
