//! Data sync over GraphQL: bulk writes for sync agents and officers, the runs they
//! leave, and the change feed partners pull.
//!
//! Resolvers here only translate: the access policy says who may write what
//! (`Access::require_writer`, `WriteScope`), `sync` validates, writes and keeps the
//! exactly-once promise, and the cache is told what changed after commit.

use std::sync::Arc;

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entities::{observation, observation_deletion, sync_run};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::figures::Observation;
use super::loaders::OrganisationSet;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::reference::Organisation;
use super::{RequestContext, request_context};
use crate::domain::{GeographicLevel, PupilGroup};
use crate::error::{Error, Result};
use crate::sync::feed::{self, Change};
use crate::sync::rows::{self, FigureInput, FigureKeyInput, PupilInput, Reference};
use crate::sync::{self as engine, Kind, Outcome, Payload, Source, Writer};

/// A bulk write or import, as its organisation and hub administrators see it.
pub struct SyncRun(sync_run::Model, Arc<OrganisationSet>);

impl SyncRun {
    fn list(rows: Vec<sync_run::Model>) -> Vec<SyncRun> {
        let organisations = Arc::new(OrganisationSet::new(
            rows.iter().filter_map(|r| r.organisation_id),
        ));
        rows.into_iter()
            .map(|row| SyncRun(row, organisations.clone()))
            .collect()
    }
}

#[Object]
impl SyncRun {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn organisation(&self, ctx: &Context<'_>) -> Result<Option<Organisation>> {
        let Some(id) = self.0.organisation_id else {
            return Ok(None);
        };
        let rc = request_context(ctx)?;
        Ok(self.1.get(&rc.db, id).await?.map(Organisation))
    }

    /// The token's `sub` (or `cli:<user>` for imports).
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// `API` or `CSV_IMPORT`.
    async fn source(&self) -> &str {
        &self.0.source
    }

    /// `OBSERVATIONS`, `PUPIL_RECORDS` or `OBSERVATION_DELETIONS`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    /// `RUNNING`, `SUCCEEDED` or `FAILED`.
    async fn status(&self) -> &str {
        &self.0.status
    }

    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }

    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }

    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }

    /// Milliseconds from start to finish; null while running.
    async fn duration_ms(&self) -> Option<i64> {
        self.0
            .finished_at
            .map(|end| (end - self.0.started_at).num_milliseconds())
    }

    async fn rows_received(&self) -> i64 {
        self.0.rows_received
    }

    /// Rows inserted, changed or deleted.
    async fn rows_written(&self) -> i64 {
        self.0.rows_written
    }

    /// Rows equal to what was stored already (or, for deletions, already absent).
    async fn rows_unchanged(&self) -> i64 {
        self.0.rows_unchanged
    }

    async fn rows_rejected(&self) -> i64 {
        self.0.rows_rejected
    }

    /// Why a `FAILED` run failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

/// What a bulk call did.
#[derive(SimpleObject)]
pub struct SyncResult {
    pub run: SyncRun,
    /// True when the call repeated an earlier call's idempotency key and rows: nothing
    /// was written and `run` is the earlier call's run.
    pub replayed: bool,
}

impl From<Outcome> for SyncResult {
    fn from(outcome: Outcome) -> Self {
        SyncResult {
            replayed: outcome.replayed,
            run: SyncRun::list(vec![outcome.run]).remove(0),
        }
    }
}

/// Figures to insert or update.
#[derive(InputObject)]
pub struct UpsertObservationsInput {
    /// Makes a retry safe: a repeat with the same key and rows writes nothing and
    /// returns the first result. Unique per organisation.
    pub idempotency_key: Option<String>,
    /// 1 to 10,000 figures, written all or none.
    pub rows: Vec<FigureInput>,
}

/// Pupil records to insert or update.
#[derive(InputObject)]
pub struct UpsertPupilRecordsInput {
    pub idempotency_key: Option<String>,
    /// 1 to 10,000 records, written all or none.
    pub rows: Vec<PupilInput>,
}

/// Figures to delete.
#[derive(InputObject)]
pub struct DeleteObservationsInput {
    pub idempotency_key: Option<String>,
    /// 1 to 10,000 keys; keys with no figure are counted as unchanged.
    pub keys: Vec<FigureKeyInput>,
}

#[derive(Default)]
pub struct SyncMutation;

#[Object]
impl SyncMutation {
    /// Inserts or updates figures within the caller's write scope, in one transaction.
    async fn upsert_observations(
        &self,
        ctx: &Context<'_>,
        input: UpsertObservationsInput,
    ) -> Result<SyncResult> {
        let rc = request_context(ctx)?;
        let (writer, key) = begin(rc, input.idempotency_key, input.rows.len())?;
        let urns: Vec<i32> = school_urns(input.rows.iter().map(|r| (r.level, &r.area_code)));
        let reference = Reference::load(&rc.db, Some(&urns)).await?;
        let received = input.rows.len();
        let validated = rows::figures(&reference, &writer.scope, input.rows).map(Payload::Figures);
        finish(
            ctx,
            rc,
            &writer,
            Kind::Observations,
            key,
            received,
            validated,
        )
        .await
    }

    /// Inserts or updates pupil records within the caller's write scope, in one
    /// transaction. Pupil numbers are replaced by their keyed hash before anything is
    /// stored; they are never stored, logged or returned.
    async fn upsert_pupil_records(
        &self,
        ctx: &Context<'_>,
        input: UpsertPupilRecordsInput,
    ) -> Result<SyncResult> {
        let rc = request_context(ctx)?;
        let (writer, key) = begin(rc, input.idempotency_key, input.rows.len())?;
        let secret = rc.pupil_key_secret.clone().ok_or_else(|| {
            Error::Internal(
                "PUPIL_KEY_SECRET is not configured: pupil records cannot be keyed".to_owned(),
            )
        })?;
        let urns: Vec<i32> = input.rows.iter().map(|r| r.school_urn).collect();
        let reference = Reference::load(&rc.db, Some(&urns)).await?;
        let received = input.rows.len();
        let validated =
            rows::pupils(&reference, &writer.scope, &secret, input.rows).map(Payload::Pupils);
        finish(
            ctx,
            rc,
            &writer,
            Kind::PupilRecords,
            key,
            received,
            validated,
        )
        .await
    }

    /// Deletes figures within the caller's write scope, in one transaction; partners
    /// following the change feed see each deletion.
    async fn delete_observations(
        &self,
        ctx: &Context<'_>,
        input: DeleteObservationsInput,
    ) -> Result<SyncResult> {
        let rc = request_context(ctx)?;
        let (writer, key) = begin(rc, input.idempotency_key, input.keys.len())?;
        let urns: Vec<i32> = school_urns(input.keys.iter().map(|k| (k.level, &k.area_code)));
        let reference = Reference::load(&rc.db, Some(&urns)).await?;
        let received = input.keys.len();
        let validated =
            rows::figure_keys(&reference, &writer.scope, input.keys).map(Payload::Deletions);
        finish(
            ctx,
            rc,
            &writer,
            Kind::ObservationDeletions,
            key,
            received,
            validated,
        )
        .await
    }
}

/// The checks every bulk call makes before its rows are looked at.
fn begin(
    rc: &RequestContext,
    idempotency_key: Option<String>,
    rows: usize,
) -> Result<(Writer, Option<String>)> {
    let access = rc.access();
    let scope = access.require_writer()?;
    let principal = access.require_principal()?.clone();
    engine::check_call_size(rows)?;
    let key = engine::check_idempotency_key(idempotency_key)?;
    Ok((
        Writer {
            principal,
            scope,
            source: Source::Api,
        },
        key,
    ))
}

/// Runs the call, then invalidates what it changed before the response leaves.
async fn finish(
    ctx: &Context<'_>,
    rc: &RequestContext,
    writer: &Writer,
    kind: Kind,
    key: Option<String>,
    received: usize,
    validated: std::result::Result<Payload, rows::Problems>,
) -> Result<SyncResult> {
    let operation = ctx.query_env.operation_name.as_deref();
    let outcome =
        engine::execute(&rc.db, writer, kind, key, received, validated, operation).await?;
    let tags = outcome.invalidation_tags();
    if !tags.is_empty() {
        rc.cache.invalidate(&tags).await;
    }
    Ok(outcome.into())
}

/// URNs named by `SCHOOL` rows, to load just those schools for validation.
fn school_urns<'a>(rows: impl Iterator<Item = (GeographicLevel, &'a String)>) -> Vec<i32> {
    rows.filter(|(level, _)| *level == GeographicLevel::School)
        .filter_map(|(_, code)| code.parse().ok())
        .collect()
}

/// Whether a change wrote a figure or deleted it.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Upsert,
    Delete,
}

/// One entry of the change feed.
pub struct ObservationChange {
    kind: ChangeKind,
    position: i64,
    indicator_code: String,
    period: String,
    level: String,
    area_code: String,
    pupil_group: String,
    changed_at: DateTime<Utc>,
    observation: Option<Observation>,
}

#[Object]
impl ObservationChange {
    async fn kind(&self) -> ChangeKind {
        self.kind
    }

    /// Position in the feed; also this edge's cursor.
    async fn position(&self) -> String {
        self.position.to_string()
    }

    async fn indicator_code(&self) -> &str {
        &self.indicator_code
    }

    async fn period(&self) -> &str {
        &self.period
    }

    async fn level(&self) -> Result<GeographicLevel> {
        GeographicLevel::parse(&self.level)
            .ok_or_else(|| Error::Internal("change level".to_owned()))
    }

    async fn area_code(&self) -> &str {
        &self.area_code
    }

    async fn pupil_group(&self) -> Result<PupilGroup> {
        PupilGroup::parse(&self.pupil_group)
            .ok_or_else(|| Error::Internal("change pupil group".to_owned()))
    }

    async fn changed_at(&self) -> DateTime<Utc> {
        self.changed_at
    }

    /// The figure as it now stands (under disclosure control); null for a deletion.
    async fn observation(&self) -> Option<&Observation> {
        self.observation.as_ref()
    }
}

/// Which changes to follow.
#[derive(InputObject, Default)]
pub struct ChangeFilter {
    /// Only these indicators' figures; every indicator when absent.
    pub indicator_codes: Option<Vec<String>>,
    /// Only this level's figures.
    pub level: Option<GeographicLevel>,
}

/// Which sync runs to list.
#[derive(InputObject, Default)]
pub struct SyncRunFilter {
    /// `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub status: Option<String>,
}

#[derive(Default)]
pub struct SyncQuery;

#[Object]
impl SyncQuery {
    /// Figures written or deleted after the position `since` (an `endCursor` or
    /// `position` from an earlier page; from the beginning when absent), oldest first.
    /// Only figures the caller may read appear — and, for a sync agent or another
    /// writer, the figures it may write, so an agent follows its own data; area figures
    /// are under disclosure control. A job keeps the last `endCursor` and asks again from there: a page
    /// never skips a change, even while writes are happening.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        since: Option<String>,
        first: Option<i32>,
        filter: Option<ChangeFilter>,
    ) -> Result<Connection<KeyCursor, ObservationChange, EmptyFields, EmptyFields>> {
        let filter = filter.unwrap_or_default();
        let rc = request_context(ctx)?;
        // Every answer depends on the latest write, so it is never worth storing.
        rc.no_store();
        let access = rc.access();
        access.require_principal()?;
        let page = PageRequest::new(first, since, &rc.limits)?;
        let since = page.after.unwrap_or(0);
        let mut figures = Condition::all().add(access.visible_changes_in(
            observation::Column::GeographicLevel,
            observation::Column::SchoolUrn,
            observation::Column::AreaCode,
        ));
        let mut deletions = Condition::all().add(access.visible_changes_in(
            observation_deletion::Column::GeographicLevel,
            observation_deletion::Column::SchoolUrn,
            observation_deletion::Column::AreaCode,
        ));
        if let Some(codes) = filter.indicator_codes {
            figures = figures.add(observation::Column::IndicatorCode.is_in(codes.clone()));
            deletions = deletions.add(observation_deletion::Column::IndicatorCode.is_in(codes));
        }
        if let Some(level) = filter.level {
            figures = figures.add(observation::Column::GeographicLevel.eq(level.as_str()));
            deletions =
                deletions.add(observation_deletion::Column::GeographicLevel.eq(level.as_str()));
        }
        let mut changes =
            feed::after(&rc.db, since, page.fetch_limit(), figures, deletions).await?;
        let has_next = changes.len() > page.first;
        changes.truncate(page.first);
        let upserts: Vec<observation::Model> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Upsert(row) => Some(row.clone()),
                Change::Delete(_) => None,
            })
            .collect();
        let mut nodes = Observation::protected(ctx, upserts).await?.into_iter();
        let mut connection = Connection::new(page.after.is_some(), has_next);
        for change in changes {
            let position = change.position();
            let node = match change {
                Change::Upsert(row) => ObservationChange {
                    kind: ChangeKind::Upsert,
                    position,
                    indicator_code: row.indicator_code,
                    period: row.period,
                    level: row.geographic_level,
                    area_code: row.area_code,
                    pupil_group: row.pupil_group,
                    changed_at: row.updated_at,
                    observation: nodes.next(),
                },
                Change::Delete(row) => ObservationChange {
                    kind: ChangeKind::Delete,
                    position,
                    indicator_code: row.indicator_code,
                    period: row.period,
                    level: row.geographic_level,
                    area_code: row.area_code,
                    pupil_group: row.pupil_group,
                    changed_at: row.deleted_at,
                    observation: None,
                },
            };
            connection.edges.push(Edge::new(KeyCursor(position), node));
        }
        Ok(connection)
    }

    /// The feed's current end, as a cursor: a partner that has just loaded a snapshot
    /// follows `changes(since:)` from here.
    async fn change_feed_head(&self, ctx: &Context<'_>) -> Result<String> {
        let rc = request_context(ctx)?;
        rc.no_store();
        rc.access().require_principal()?;
        let head = crate::sync::store::head(&rc.db).await?;
        Ok(KeyCursor(head).encode_cursor())
    }

    /// Bulk writes and imports: the caller's organisation's (every organisation's for
    /// `HUB_ADMIN`), newest last.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn sync_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: SyncRunFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, SyncRun, Totals>> {
        let rc = request_context(ctx)?;
        rc.no_store();
        let access = rc.access();
        let mut query = sync_run::Entity::find().filter(access.visible_sync_runs()?);
        if let Some(status) = filter.status {
            query = query.filter(sync_run::Column::Status.eq(status));
        }
        let page = PageRequest::new(first, after, &rc.limits)?;
        keyset_page(
            ctx,
            &rc.db,
            query,
            sync_run::Column::Id,
            page,
            SyncRun::list,
            |r| r.0.id,
        )
        .await
    }
}
