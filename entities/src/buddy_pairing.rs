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
    /// `REQUESTED`, `ACTIVE` (accepted), `DECLINED` or `ENDED`.
    pub status: String,
    pub starts_on: Date,
    pub ends_on: Option<Date>,
    pub notes: Option<String>,
    /// The `sub` of whoever on the buddy's side accepted or declined the request.
    pub responded_by: Option<String>,
    pub responded_at: Option<DateTimeUtc>,
    /// The `sub` of whoever ended it (or withdrew the request), on either side.
    pub ended_by: Option<String>,
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
