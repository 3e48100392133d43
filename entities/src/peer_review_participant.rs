//! An organisation taking part in a peer review, the reviewed one included.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "peer_review_participant")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub peer_review_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: i32,
    /// `REVIEWED`, `LEAD_REVIEWER` or `REVIEWER`.
    pub role: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::peer_review::Entity",
        from = "Column::PeerReviewId",
        to = "super::peer_review::Column::Id"
    )]
    PeerReview,
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::OrganisationId",
        to = "super::organisation::Column::Id"
    )]
    Organisation,
}

impl ActiveModelBehavior for ActiveModel {}
