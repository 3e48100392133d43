//! The change feed: every write and deletion of a figure, in the order positions were
//! handed out (see the module docs of `sync` for why that order is safe to page by).
//!
//! A partner's nightly job keeps the position of the last change it saw and asks for
//! what came after. A figure appears once per change: a figure written, then changed
//! again later, appears at its latest position only (the feed carries current values,
//! not history), and a deleted figure appears as a deletion at the position of its
//! deletion.

use entities::{observation, observation_deletion};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// One entry of the feed.
#[derive(Clone, Debug)]
pub enum Change {
    Upsert(observation::Model),
    Delete(observation_deletion::Model),
}

impl Change {
    /// Position in the feed: the cursor a reader continues from.
    pub fn position(&self) -> i64 {
        match self {
            Change::Upsert(row) => row.change_seq,
            Change::Delete(row) => row.change_seq,
        }
    }
}

/// Up to `limit` changes after position `since`, oldest first. `figures` and
/// `deletions` are the caller's visibility conditions (from the access policy) and any
/// filters, over each table.
pub async fn after<C: ConnectionTrait>(
    db: &C,
    since: i64,
    limit: u64,
    figures: Condition,
    deletions: Condition,
) -> Result<Vec<Change>, DbErr> {
    let upserts = observation::all(
        db,
        observation::Entity::find()
            .filter(observation::Column::ChangeSeq.gt(since))
            .filter(figures)
            .order_by_asc(observation::Column::ChangeSeq)
            .limit(limit),
    )
    .await?;
    let removed = observation_deletion::Entity::find()
        .filter(observation_deletion::Column::ChangeSeq.gt(since))
        .filter(deletions)
        .order_by_asc(observation_deletion::Column::ChangeSeq)
        .limit(limit)
        .all(db)
        .await?;
    let mut changes: Vec<Change> = upserts
        .into_iter()
        .map(Change::Upsert)
        .chain(removed.into_iter().map(Change::Delete))
        .collect();
    changes.sort_by_key(Change::position);
    changes.truncate(limit as usize);
    Ok(changes)
}
