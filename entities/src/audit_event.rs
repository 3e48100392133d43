//! Who read or wrote what, when, through which operation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub occurred_at: DateTimeUtc,
    /// The token's `sub`.
    pub subject: String,
    pub organisation_id: i32,
    pub role: String,
    /// `READ` or `WRITE`.
    pub action: String,
    pub access_level: String,
    pub operation_name: Option<String>,
    /// What was touched, e.g. `school:852001` or `la:852`.
    pub scope: String,
    pub row_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
