//! A peer review (peer challenge) of one organisation by others: a triad of LAs, or a
//! thematic review such as SEND.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "peer_review")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub reviewed_organisation_id: i32,
    /// The reviewed organisation's region: whose RSC office and inspectorate team see
    /// the review once it is shared.
    pub region_code: String,
    /// `TRIAD` or `THEMATIC`.
    pub format: String,
    pub theme: String,
    pub title: String,
    pub starts_on: Date,
    pub ends_on: Date,
    pub findings: Option<String>,
    /// `PLANNED`, `IN_PROGRESS` or `COMPLETED`.
    pub status: String,
    /// When the reviewed organisation shared it with its region's RSC office and
    /// inspectorate team; null until then.
    pub shared_at: Option<DateTimeUtc>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::ReviewedOrganisationId",
        to = "super::organisation::Column::Id"
    )]
    Reviewed,
}

impl ActiveModelBehavior for ActiveModel {}
