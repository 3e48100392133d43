//! A region a support offer posted with reach `REGIONS` is opened to, beyond its own.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "support_offer_region")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub support_offer_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub region_code: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::support_offer::Entity",
        from = "Column::SupportOfferId",
        to = "super::support_offer::Column::Id"
    )]
    SupportOffer,
}

impl ActiveModelBehavior for ActiveModel {}
