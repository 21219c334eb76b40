//! Which revision of each row a question reads: the live one, the one valid at a
//! past moment, or the one at a stream position (the pages of one search).

use frontline_domain::UnixMillis;
use sqlx::{Postgres, QueryBuilder};

use crate::store::{LIVE, time};

/// The revisions a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Snapshot {
    /// The live revisions.
    Live,
    /// The revisions valid at this moment (milliseconds since the epoch).
    At(UnixMillis),
    /// The revisions the projection held when it had applied this stream sequence.
    Sequence(i64),
}

impl Snapshot {
    /// `now` or the moment asked for.
    pub fn of(as_of: Option<UnixMillis>) -> Snapshot {
        as_of.map_or(Snapshot::Live, Snapshot::At)
    }

    /// Appends `AND <alias> is the revision this snapshot reads`.
    pub fn push(&self, q: &mut QueryBuilder<'_, Postgres>, alias: &str) {
        match *self {
            Snapshot::Live => {
                q.push(format_args!(" AND {alias}.seq_to = {LIVE}"));
            }
            Snapshot::At(at) => {
                q.push(format_args!(" AND {alias}.valid_from <= "));
                q.push_bind(time(at));
                q.push(format_args!(" AND {alias}.valid_to > "));
                q.push_bind(time(at));
            }
            Snapshot::Sequence(sequence) => {
                q.push(format_args!(" AND {alias}.seq_from <= "));
                q.push_bind(sequence);
                q.push(format_args!(" AND {alias}.seq_to > "));
                q.push_bind(sequence);
            }
        }
    }
}
