//! Pupil-level data for targeted work. `pupil_key` is a keyed hash of the pupil
//! number: the raw number is never stored.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "pupil_record")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub pupil_key: String,
    pub period: String,
    pub school_urn: i32,
    /// LA code of the pupil's home address (may differ from the school's LA).
    pub home_la_code: String,
    /// 0 is Reception.
    pub year_group: i16,
    pub disadvantaged: bool,
    /// `NONE`, `SEN_SUPPORT` or `EHCP`.
    pub sen_status: String,
    pub eal: bool,
    pub in_care: bool,
    pub sessions_possible: i32,
    pub sessions_missed: i32,
    pub suspensions: i32,
    pub permanently_excluded: bool,
    pub left_for_ehe: bool,
    pub missing_education: bool,
    /// Year 6 only: met the expected standard in reading, writing and maths.
    pub ks2_rwm_expected: Option<bool>,
    /// Year 11 only.
    pub ks4_attainment8: Option<f64>,
    /// Year 11 only.
    pub ks4_progress8: Option<f64>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::school::Entity",
        from = "Column::SchoolUrn",
        to = "super::school::Column::Urn"
    )]
    School,
}

impl ActiveModelBehavior for ActiveModel {}
