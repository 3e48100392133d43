//! A rule that turns figures into a named signal of risk or success. Thresholds are
//! rows, not code: a region tunes them without a release.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "signal_rule")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Stable name, e.g. `persistent_absence_rising`.
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub description: String,
    /// `RISK` or `SUCCESS`.
    pub kind: String,
    /// `RISING`, `FALLING`, `ABOVE_COMPARATOR`, `BELOW_COMPARATOR`, `GAP_WIDER` or
    /// `GAP_NARROWER`.
    pub method: String,
    pub indicator_code: String,
    /// The pupil group compared; null for the gap methods, which compare
    /// `DISADVANTAGED` with `NOT_DISADVANTAGED`.
    pub pupil_group: Option<String>,
    /// Consecutive year-on-year changes the trend methods need; null for the others.
    pub years_running: Option<i32>,
    /// How far past the comparison a figure must be for the signal to be raised.
    pub threshold: f64,
    pub active: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::indicator::Entity",
        from = "Column::IndicatorCode",
        to = "super::indicator::Column::Code"
    )]
    Indicator,
}

impl ActiveModelBehavior for ActiveModel {}
