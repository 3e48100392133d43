//! One published figure in tidy (long) form, as in the government's open statistics
//! files. Unique on indicator + period + geographic level + area + pupil group.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "observation")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub indicator_code: String,
    /// Academic year, `2023/24`.
    pub period: String,
    /// `SCHOOL`, `LA`, `REGION` or `NATIONAL`.
    pub geographic_level: String,
    /// URN, LA code, region code or `E92000001`.
    pub area_code: String,
    /// Set for `SCHOOL` rows so figures join to the register with a real foreign key.
    pub school_urn: Option<i32>,
    pub pupil_group: String,
    /// How many schools the figure is built from (1 at `SCHOOL` level); disclosure
    /// control withholds area figures built from too few. Null when a provider did
    /// not say, which disclosure control treats as too few.
    pub school_count: Option<i32>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub value: Option<f64>,
    pub source_organisation_id: Option<i32>,
    pub sync_run_id: Option<i64>,
    pub updated_at: DateTimeUtc,
    /// Position of the latest write to this figure in the change feed; numbers are
    /// handed out in commit order (see `feed_sequence`).
    pub change_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::indicator::Entity",
        from = "Column::IndicatorCode",
        to = "super::indicator::Column::Code"
    )]
    Indicator,
    #[sea_orm(
        belongs_to = "super::school::Entity",
        from = "Column::SchoolUrn",
        to = "super::school::Column::Urn"
    )]
    School,
}

impl ActiveModelBehavior for ActiveModel {}
