//! A region a support request posted with reach `REGIONS` is opened to, beyond its own.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "support_request_region")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub support_request_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub region_code: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::support_request::Entity",
        from = "Column::SupportRequestId",
        to = "super::support_request::Column::Id"
    )]
    SupportRequest,
}

impl ActiveModelBehavior for ActiveModel {}
