//! Data sync: how the baseline gets filled and kept current.
//!
//! Local authorities', trusts' and schools' systems push figures and pupil records
//! every night (bulk mutations, `graphql::sync`), the hub's operators load official
//! statistics files (`baseline-hub import`, [`import`]), and partners pull what changed
//! through the change feed. The promises, and how each is kept:
//!
//! * **All or nothing.** A call is validated in full before anything is written
//!   ([`rows`]); then its rows, its `sync_run` and its audit event are written in one
//!   transaction. A bad row anywhere means nothing is written, and the error names every
//!   bad row's index, field and reason.
//! * **Exactly once.** A call may carry an idempotency key, unique per organisation in
//!   `sync_run`. A repeat with the same key and the same rows returns the first call's
//!   run and writes nothing; the same key with different rows is refused. Two copies
//!   racing each other meet at the unique index: the loser's transaction rolls back and
//!   it answers as a repeat. Calls that failed validation do not use up their key, so a
//!   client can fix its rows and retry under the same key.
//! * **Only the writer's own data.** Every row is checked against the writer's
//!   [`WriteScope`](crate::access::WriteScope) from the access policy.
//! * **Resent rows are not changes.** Upserts skip rows equal to what is stored, so a
//!   nightly full resend neither rewrites the table nor floods the change feed.
//! * **A feed that never skips.** Every written or deleted figure takes a position from
//!   one counter row (`feed_sequence`), advanced inside the writing transaction. The
//!   advance locks the row until commit, so a transaction can only take positions after
//!   every transaction that took lower ones has committed or rolled back: positions
//!   become visible in order, and a reader that has seen position *n* will never later
//!   find a newly committed row below *n*. (A transaction that rolls back leaves a gap,
//!   which readers simply step over.) The price is that figure writes queue behind one
//!   another; with calls capped at 10,000 rows each holds the counter for well under a
//!   second. SQLite serialises writers anyway.
//!
//! Writers invalidate cached answers themselves after commit, with
//! [`Outcome::invalidation_tags`]: this module names the tags its writes touched (the
//! cache's tag vocabulary, `cache::tags`) but never calls the cache, so an import run
//! from the command line and a mutation invalidate the same way.

pub mod feed;
pub mod import;
pub mod rows;
pub mod store;

use std::collections::BTreeSet;

use chrono::Utc;
use entities::sync_run;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    SqlErr, TransactionTrait,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::access::WriteScope;
use crate::audit::{self, AuditEvent};
use crate::cache::tags;
use crate::db;
use crate::domain::{AccessLevel, AuditAction};
use crate::error::{Error, Result};
use crate::identity::Principal;
use rows::{Figure, FigureKey, Problems, PupilRow};

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// `sync_run.status` values.
pub const RUNNING: &str = "RUNNING";
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";

/// How the rows arrived (`sync_run.source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Api,
    CsvImport,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "API",
            Source::CsvImport => "CSV_IMPORT",
        }
    }
}

/// Who is writing: the authenticated caller (or, for the CLI, the operator acting for
/// an organisation) and what it may write.
pub struct Writer {
    pub principal: Principal,
    pub scope: WriteScope,
    pub source: Source,
}

/// What a run writes (`sync_run.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Observations,
    PupilRecords,
    ObservationDeletions,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Observations => "OBSERVATIONS",
            Kind::PupilRecords => "PUPIL_RECORDS",
            Kind::ObservationDeletions => "OBSERVATION_DELETIONS",
        }
    }
}

/// A validated call's rows.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Payload {
    Figures(Vec<Figure>),
    Pupils(Vec<PupilRow>),
    Deletions(Vec<FigureKey>),
}

impl Payload {
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Figures(_) => Kind::Observations,
            Payload::Pupils(_) => Kind::PupilRecords,
            Payload::Deletions(_) => Kind::ObservationDeletions,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Payload::Figures(rows) => rows.len(),
            Payload::Pupils(rows) => rows.len(),
            Payload::Deletions(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn level(&self) -> AccessLevel {
        match self {
            Payload::Pupils(_) => AccessLevel::Pupil,
            _ => AccessLevel::School,
        }
    }

    /// The indicators whose figures the call touches.
    pub fn indicators(&self) -> BTreeSet<String> {
        match self {
            Payload::Figures(rows) => rows.iter().map(|r| r.indicator_code.clone()).collect(),
            Payload::Deletions(keys) => keys.iter().map(|k| k.indicator_code.clone()).collect(),
            Payload::Pupils(_) => BTreeSet::new(),
        }
    }

    /// A digest of the validated rows, to tell a repeat from a different call under a
    /// reused key. Taken after pseudonymisation, so it never depends on a raw pupil
    /// number.
    fn digest(&self) -> Result<String> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("cannot digest a sync payload: {e}")))?;
        Ok(crate::digest::hex(&Sha256::digest(&bytes)))
    }

    /// Writes the rows in `txn`; returns how many were inserted, changed or deleted.
    async fn write(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        stamp: store::Stamp,
    ) -> std::result::Result<u64, DbErr> {
        match self {
            Payload::Figures(rows) => {
                let first = store::take_positions(txn, rows.len()).await?;
                store::upsert_figures(txn, rows, first, stamp).await
            }
            Payload::Deletions(keys) => {
                let first = store::take_positions(txn, keys.len()).await?;
                store::delete_figures(txn, keys, first, stamp).await
            }
            Payload::Pupils(rows) => store::upsert_pupils(txn, rows, stamp.at).await,
        }
    }
}

/// What a call did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub run: sync_run::Model,
    /// True when the call repeated an earlier one's idempotency key and rows: nothing
    /// was written, `run` is the first call's.
    pub replayed: bool,
    /// Indicators whose figures changed.
    pub indicators: BTreeSet<String>,
}

impl Outcome {
    /// The cache tags a writer must invalidate after this call (none for a replay).
    pub fn invalidation_tags(&self) -> Vec<String> {
        if self.replayed || self.run.rows_written == 0 || self.indicators.is_empty() {
            return Vec::new();
        }
        self.indicators
            .iter()
            .map(|code| tags::figures(code))
            .chain([tags::ALL_FIGURES.to_owned()])
            .collect()
    }
}

/// Checks an idempotency key's shape.
pub fn check_idempotency_key(key: Option<String>) -> Result<Option<String>> {
    let Some(key) = key else { return Ok(None) };
    let key = key.trim().to_owned();
    if key.is_empty()
        || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS
        || key.chars().any(char::is_control)
    {
        return Err(Error::bad_input(format!(
            "idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters"
        )));
    }
    Ok(Some(key))
}

/// Checks a call's size before its rows are looked at.
pub fn check_call_size(rows: usize) -> Result<()> {
    if rows == 0 || rows > rows::MAX_ROWS_PER_CALL {
        return Err(Error::bad_input(format!(
            "send 1 to {} rows per call (this call has {rows}); split larger loads",
            rows::MAX_ROWS_PER_CALL
        )));
    }
    Ok(())
}

/// Runs one bulk call: records a failed run and returns the error if validation found
/// problems; otherwise replays a repeat, or writes the rows, the run and the audit
/// event in one transaction.
pub async fn execute(
    db: &DatabaseConnection,
    writer: &Writer,
    kind: Kind,
    idempotency_key: Option<String>,
    received: usize,
    validated: std::result::Result<Payload, Problems>,
    operation: Option<&str>,
) -> Result<Outcome> {
    let payload = match validated {
        Ok(payload) => payload,
        Err(problems) => {
            // The client needs its rows' problems more than the hub needs the record:
            // if recording fails (the database going away), the problems still go back.
            let rejected = problems.rows.len();
            if let Err(err) =
                record_failure(db, writer, kind, received, rejected, "rows rejected").await
            {
                tracing::warn!(error = %err, "could not record a rejected sync call");
            }
            return Err(problems.into_error());
        }
    };
    let digest = payload.digest()?;
    if let Some(key) = &idempotency_key
        && let Some(outcome) = replay(db, writer, key, &digest).await?
    {
        return Ok(outcome);
    }
    // A deadlock with a concurrent call (overlapping pupil records, say) rolls the
    // whole transaction back, so it is simply run again.
    let written = db::retry_conflicts(
        || {
            write(
                db,
                writer,
                &idempotency_key,
                &digest,
                received,
                &payload,
                operation,
            )
        },
        |err| matches!(err, WriteError::Db(err) if db::is_conflict(err)),
    )
    .await;
    match written {
        Err(WriteError::KeyTaken) => {
            // A concurrent copy of this call committed first.
            let key = idempotency_key.as_deref().unwrap_or_default();
            replay(db, writer, key, &digest)
                .await?
                .ok_or_else(|| Error::Internal("idempotency key taken but no run found".to_owned()))
        }
        Err(WriteError::Db(err)) => Err(err.into()),
        Ok(run) => Ok(Outcome {
            run,
            replayed: false,
            indicators: payload.indicators(),
        }),
    }
}

enum WriteError {
    KeyTaken,
    Db(DbErr),
}

impl From<DbErr> for WriteError {
    fn from(err: DbErr) -> Self {
        WriteError::Db(err)
    }
}

async fn write(
    db: &DatabaseConnection,
    writer: &Writer,
    idempotency_key: &Option<String>,
    digest: &str,
    received: usize,
    payload: &Payload,
    operation: Option<&str>,
) -> std::result::Result<sync_run::Model, WriteError> {
    let started = Utc::now();
    let txn = db.begin().await?;
    let run = sync_run::ActiveModel {
        organisation_id: Set(Some(writer.principal.organisation.id)),
        subject: Set(writer.principal.subject.clone()),
        source: Set(writer.source.as_str().to_owned()),
        kind: Set(payload.kind().as_str().to_owned()),
        status: Set(RUNNING.to_owned()),
        idempotency_key: Set(idempotency_key.clone()),
        request_hash: Set(Some(digest.to_owned())),
        started_at: Set(started),
        rows_received: Set(received as i64),
        ..new_run()
    };
    let run = match run.insert(&txn).await {
        Ok(run) => run,
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(WriteError::KeyTaken);
        }
        Err(err) => return Err(err.into()),
    };
    let stamp = store::Stamp {
        source_organisation_id: Some(writer.principal.organisation.id),
        sync_run_id: run.id,
        at: started,
    };
    let written = payload.write(&txn, stamp).await?;
    let mut finished: sync_run::ActiveModel = run.into();
    finished.status = Set(SUCCEEDED.to_owned());
    finished.finished_at = Set(Some(Utc::now()));
    finished.rows_written = Set(written as i64);
    finished.rows_unchanged = Set((payload.len() as u64).saturating_sub(written) as i64);
    let run = finished.update(&txn).await?;
    audit::record(
        &txn,
        AuditEvent::new(
            &writer.principal,
            AuditAction::Write,
            payload.level(),
            format!("sync_run:{}", run.id),
        )
        .operation(operation)
        .rows(written as usize),
    )
    .await
    .map_err(|err| WriteError::Db(DbErr::Custom(err.to_string())))?;
    txn.commit().await?;
    Ok(run)
}

/// The earlier run under `key`, if any: returned as a replay when its rows were the
/// same, refused when they were not.
async fn replay(
    db: &DatabaseConnection,
    writer: &Writer,
    key: &str,
    digest: &str,
) -> Result<Option<Outcome>> {
    let earlier = sync_run::Entity::find()
        .filter(sync_run::Column::OrganisationId.eq(writer.principal.organisation.id))
        .filter(sync_run::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?;
    let Some(run) = earlier else { return Ok(None) };
    if run.request_hash.as_deref() != Some(digest) {
        return Err(Error::bad_input(format!(
            "idempotencyKey {key:?} was used by sync run {} for different rows; use a new key \
             for new data",
            run.id
        )));
    }
    Ok(Some(Outcome {
        run,
        replayed: true,
        indicators: BTreeSet::new(),
    }))
}

/// A run with every counter at zero and nothing optional set; callers fill in the rest.
pub fn new_run() -> sync_run::ActiveModel {
    sync_run::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        organisation_id: Set(None),
        subject: Set(String::new()),
        source: Set(Source::Api.as_str().to_owned()),
        kind: Set(String::new()),
        status: Set(RUNNING.to_owned()),
        idempotency_key: Set(None),
        request_hash: Set(None),
        started_at: Set(Utc::now()),
        finished_at: Set(None),
        rows_received: Set(0),
        rows_written: Set(0),
        rows_rejected: Set(0),
        rows_unchanged: Set(0),
        error: Set(None),
        checkpoint_offset: Set(None),
        checkpoint_line: Set(None),
    }
}

/// Records a call that wrote nothing, so the organisation can see it in its sync runs.
/// It holds no idempotency key: the client may retry under the same key once fixed.
pub async fn record_failure(
    db: &DatabaseConnection,
    writer: &Writer,
    kind: Kind,
    received: usize,
    rejected: usize,
    error: &str,
) -> Result<sync_run::Model> {
    let now = Utc::now();
    let run = sync_run::ActiveModel {
        organisation_id: Set(Some(writer.principal.organisation.id)),
        subject: Set(writer.principal.subject.clone()),
        source: Set(writer.source.as_str().to_owned()),
        kind: Set(kind.as_str().to_owned()),
        status: Set(FAILED.to_owned()),
        started_at: Set(now),
        finished_at: Set(Some(now)),
        rows_received: Set(received as i64),
        rows_rejected: Set(rejected as i64),
        error: Set(Some(error.to_owned())),
        ..new_run()
    }
    .insert(db)
    .await?;
    Ok(run)
}
