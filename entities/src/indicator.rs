//! The indicator catalogue. New indicators are rows, not migrations.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "indicator")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    pub name: String,
    /// `PERCENT`, `RATE_PER_100`, `COUNT` or `SCORE`.
    pub unit: String,
    /// `HIGHER_IS_BETTER`, `LOWER_IS_BETTER` or `NEUTRAL`.
    pub polarity: String,
    /// `value = numerator / denominator * multiplier`; counts have no denominator.
    pub multiplier: f64,
    pub description: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
