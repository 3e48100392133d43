//! An organisation's offer of support on one theme. It is matched with at most one
//! request (`support_request.offer_id`) and shares that request's lifecycle.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "support_offer")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub organisation_id: i32,
    /// The offering organisation's region: where the offer is matched.
    pub region_code: String,
    pub theme: String,
    pub title: String,
    pub detail: String,
    /// What can be given, e.g. `6 adviser days in the spring term`.
    pub capacity: String,
    /// `OPEN`, `MATCHED`, `AGREED` or `CLOSED`.
    pub status: String,
    /// `REGION` (its own), `REGIONS` (and those in `support_offer_region`) or
    /// `NATIONAL`: where it is open.
    pub reach: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::OrganisationId",
        to = "super::organisation::Column::Id"
    )]
    Organisation,
}

impl ActiveModelBehavior for ActiveModel {}
