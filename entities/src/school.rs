//! A school's register entry (public reference data), keyed by its URN.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "school")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub urn: i32,
    pub name: String,
    pub phase: String,
    pub establishment_type: String,
    /// The local authority organisation the school sits in.
    pub la_id: i32,
    pub trust_id: Option<i32>,
    pub diocese_id: Option<i32>,
    pub region_code: String,
    pub is_open: bool,
    pub pupils_on_roll: i32,
    pub last_inspection_date: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::LaId",
        to = "super::organisation::Column::Id"
    )]
    LocalAuthority,
    #[sea_orm(
        belongs_to = "super::region::Entity",
        from = "Column::RegionCode",
        to = "super::region::Column::Code"
    )]
    Region,
}

impl ActiveModelBehavior for ActiveModel {}
