//! An organisation's self-evaluation for one academic year. The header row holds the
//! lifecycle (draft, shared, reviewed) and who may see it; the text lives in
//! `self_evaluation_version`, one row per edit.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "self_evaluation")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The author.
    pub organisation_id: i32,
    /// The author's region when it was made: the audience of a region-wide share.
    pub region_code: String,
    /// Academic year, `2024/25`.
    pub period: String,
    /// `SCHOOL`, `LA` or `REGION`: where its key figures and signals come from.
    pub area_level: String,
    pub area_code: String,
    /// `DRAFT`, `SHARED` or `REVIEWED`.
    pub status: String,
    /// `PARTNERS` or `REGION` once shared; null while a draft.
    pub audience: Option<String>,
    /// The latest `self_evaluation_version.version`.
    pub current_version: i32,
    pub shared_at: Option<DateTimeUtc>,
    /// Superseded by `self_evaluation_review` (several reviewers, one record each):
    /// no longer written or read, kept for the migration's `down`.
    pub reviewed_at: Option<DateTimeUtc>,
    pub reviewed_by_organisation_id: Option<i32>,
    pub review_comment: Option<String>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::OrganisationId",
        to = "super::organisation::Column::Id"
    )]
    Organisation,
}

impl ActiveModelBehavior for ActiveModel {}
