//! An action agreed in a peer review, with an owner and a due date.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "peer_review_action")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub peer_review_id: i32,
    pub description: String,
    /// The participant organisation that owns it.
    pub owner_organisation_id: i32,
    /// The person who owns it, when named.
    pub owner_name: Option<String>,
    pub due_on: Date,
    /// `OPEN` or `DONE`.
    pub status: String,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
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
        from = "Column::OwnerOrganisationId",
        to = "super::organisation::Column::Id"
    )]
    Owner,
}

impl ActiveModelBehavior for ActiveModel {}
