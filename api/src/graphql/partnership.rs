//! What the partnership areas (`signals`, `self_evaluation`, `peer_review`, `support`,
//! `inspection`) share: record ids, guarded status changes and the tail every write
//! ends with.
//!
//! Every partnership write follows the same steps: the policy (`access`) says whether
//! the caller may make it; the lifecycle (`partnership::check_move`) says whether the
//! record may make it; the change and its audit event commit in one transaction; then
//! cached answers built on partnership records are invalidated, before the response is
//! sent, so the writer's next read sees its own write.

use async_graphql::{Context, ID};
use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, UpdateMany};

use super::RequestContext;
use crate::audit::{self, AuditEvent};
use crate::cache::tags;
use crate::domain::{AccessLevel, AuditAction};
use crate::error::{Error, Result};
use crate::identity::Principal;

/// A record id as the client sent it. Text that is not one of our ids cannot name a
/// record, so it is `NOT_FOUND`, the same as an id that does not exist.
pub(super) fn record_id(id: &ID, what: &str) -> Result<i32> {
    id.parse::<i32>()
        .map_err(|_| Error::NotFound(format!("{what} {}", id.as_str())))
}

/// Runs an update that is guarded by the state the caller saw (`WHERE id = … AND
/// status = …`, or a version number). If another writer changed the record since it
/// was read, nothing is updated and the caller is told to read it again — two people
/// matching the same request at once cannot both win.
pub(super) async fn guarded<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    update: UpdateMany<E>,
    what: &str,
    id: i32,
) -> Result<()> {
    let result = update.exec(conn).await?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "{what} {id} was changed by someone else meanwhile; read it again and retry"
        )))
    }
}

/// What a write touched, for its audit event: e.g. `self_evaluation:4`. `level` is the
/// level of the data the record is about — `SCHOOL` for records that name schools,
/// `AGGREGATE` for those about organisations and areas.
pub(super) struct Written {
    pub level: AccessLevel,
    pub scope: String,
    pub rows: usize,
}

impl Written {
    pub fn one(level: AccessLevel, scope: impl Into<String>) -> Written {
        Written {
            level,
            scope: scope.into(),
            rows: 1,
        }
    }
}

/// Ends a partnership write: its audit event in the same transaction, commit, then
/// invalidation of the answers built on partnership records.
pub(super) async fn finish_write(
    ctx: &Context<'_>,
    rc: &RequestContext,
    txn: DatabaseTransaction,
    principal: &Principal,
    written: Written,
) -> Result<()> {
    finish_write_tagged(ctx, rc, txn, principal, written, tags::PARTNERSHIP).await
}

/// [`finish_write`] for writes under another tag (signal rules).
pub(super) async fn finish_write_tagged(
    ctx: &Context<'_>,
    rc: &RequestContext,
    txn: DatabaseTransaction,
    principal: &Principal,
    written: Written,
    tag: &str,
) -> Result<()> {
    audit::record(
        &txn,
        AuditEvent::new(principal, AuditAction::Write, written.level, written.scope)
            .operation(ctx.query_env.operation_name.as_deref())
            .rows(written.rows),
    )
    .await?;
    txn.commit().await?;
    rc.cache.invalidate(&[tag.to_owned()]).await;
    Ok(())
}
