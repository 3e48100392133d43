//! One edit of a self-evaluation: its title and content as they stood after the edit.
//! Never updated, so the history is the table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "self_evaluation_version")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub self_evaluation_id: i32,
    /// 1 for the first text, then one more per edit.
    pub version: i32,
    pub title: String,
    /// Sections (heading, judgement, narrative), priorities and the codes of the key
    /// indicators — references into the baseline, never the figures themselves.
    pub content: Json,
    pub edited_by: String,
    pub edited_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::self_evaluation::Entity",
        from = "Column::SelfEvaluationId",
        to = "super::self_evaluation::Column::Id"
    )]
    SelfEvaluation,
}

impl ActiveModelBehavior for ActiveModel {}
