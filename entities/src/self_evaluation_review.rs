//! One partner's review of a shared self-evaluation. Several partners may review the
//! same evaluation; each organisation once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "self_evaluation_review")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub self_evaluation_id: i32,
    /// The reviewing organisation.
    pub organisation_id: i32,
    /// The version of the text that was reviewed.
    pub version: i32,
    pub comment: String,
    /// The `sub` of the reviewer.
    pub reviewed_by: String,
    pub reviewed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::self_evaluation::Entity",
        from = "Column::SelfEvaluationId",
        to = "super::self_evaluation::Column::Id"
    )]
    SelfEvaluation,
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::OrganisationId",
        to = "super::organisation::Column::Id"
    )]
    Organisation,
}

impl ActiveModelBehavior for ActiveModel {}
