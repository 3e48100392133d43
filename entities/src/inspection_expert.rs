//! The directory of staff with inspection experience who can be called on. Contact
//! details are personal data: the API shows them only to partners of the same region.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inspection_expert")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The employer.
    pub organisation_id: i32,
    /// The employer's region.
    pub region_code: String,
    pub name: String,
    pub job_title: String,
    /// The phase the person knows best, when they have one.
    pub phase: Option<String>,
    /// Inspection experience and specialisms, in the person's words.
    pub expertise: String,
    /// `AVAILABLE`, `LIMITED` or `UNAVAILABLE`.
    pub availability: String,
    pub availability_note: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
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
