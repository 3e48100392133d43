//! A named partner organisation a self-evaluation is shared with.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "self_evaluation_partner")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub self_evaluation_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: i32,
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
