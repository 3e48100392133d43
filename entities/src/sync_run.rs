//! One bulk write or import: who ran it, what it received, wrote and rejected.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_run")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organisation_id: Option<i32>,
    pub subject: String,
    /// `API`, `CSV_IMPORT` or `SEED`.
    pub source: String,
    /// `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub idempotency_key: Option<String>,
    /// Hash of the request payload, so a reused idempotency key with a different
    /// payload can be refused.
    pub request_hash: Option<String>,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub rows_received: i64,
    pub rows_written: i64,
    pub rows_rejected: i64,
    /// `OBSERVATIONS`, `PUPIL_RECORDS` or `OBSERVATION_DELETIONS`.
    pub kind: String,
    /// Rows that matched what was already stored, so nothing was written for them.
    pub rows_unchanged: i64,
    /// Why a `FAILED` run failed.
    pub error: Option<String>,
    /// Imports: byte offset just past the last committed row, so a rerun resumes there.
    pub checkpoint_offset: Option<i64>,
    /// Imports: number of the line that starts at `checkpoint_offset`.
    pub checkpoint_line: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
