//! A buddy for a school's head while the school is in its inspection window: a leader
//! elsewhere, from the inspection expert directory.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "buddy_pairing")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub school_urn: i32,
    pub expert_id: i32,
    /// `ACTIVE` or `ENDED`.
    pub status: String,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
    pub notes: Option<String>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
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
    #[sea_orm(
        belongs_to = "super::inspection_expert::Entity",
        from = "Column::ExpertId",
        to = "super::inspection_expert::Column::Id"
    )]
    Expert,
}

impl ActiveModelBehavior for ActiveModel {}
