//! An organisation's request for help on one theme, with the schools concerned in
//! `support_request_school`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "support_request")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub organisation_id: i32,
    /// The requesting organisation's region: where the request is matched.
    pub region_code: String,
    pub theme: String,
    /// `LOW`, `MEDIUM` or `HIGH`.
    pub urgency: String,
    pub title: String,
    pub detail: String,
    /// `OPEN`, `MATCHED`, `AGREED` or `CLOSED`.
    pub status: String,
    /// `REGION` (its own), `REGIONS` (and those in `support_request_region`) or
    /// `NATIONAL`: where it is open.
    pub reach: String,
    /// The offer it is matched with (unique: an offer helps one request). Kept after
    /// the pair is closed, as the record of who helped.
    pub offer_id: Option<i32>,
    /// Seen only by the two sides and the schools' own LA or trust, never by the
    /// inspectorate (the access policy's rule, not the region's map of need).
    pub confidential: bool,
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
    #[sea_orm(
        belongs_to = "super::support_offer::Entity",
        from = "Column::OfferId",
        to = "super::support_offer::Column::Id"
    )]
    Offer,
}

impl ActiveModelBehavior for ActiveModel {}
