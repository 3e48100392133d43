//! A provider organisation grants a consumer organisation an access level over the
//! provider's scope, for a stated purpose, between two dates.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sharing_agreement")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub provider_id: i32,
    pub consumer_id: i32,
    /// `PUPIL` or `SCHOOL`.
    pub access_level: String,
    pub purpose: String,
    pub valid_from: Date,
    pub valid_to: Date,
    /// `ACTIVE` or `REVOKED`.
    pub status: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::ProviderId",
        to = "super::organisation::Column::Id"
    )]
    Provider,
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::ConsumerId",
        to = "super::organisation::Column::Id"
    )]
    Consumer,
}

/// The provider: scope is widened over what the provider holds.
impl Related<super::organisation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Provider.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
