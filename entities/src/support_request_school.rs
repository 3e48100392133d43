//! A school a support request concerns.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "support_request_school")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub support_request_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub school_urn: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::support_request::Entity",
        from = "Column::SupportRequestId",
        to = "super::support_request::Column::Id"
    )]
    SupportRequest,
    #[sea_orm(
        belongs_to = "super::school::Entity",
        from = "Column::SchoolUrn",
        to = "super::school::Column::Urn"
    )]
    School,
}

impl ActiveModelBehavior for ActiveModel {}
