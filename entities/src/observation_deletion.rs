//! A deleted figure: its natural key and its position in the change feed, so partners
//! following the feed learn that it is gone. One row per key; deleting again moves it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "observation_deletion")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub change_seq: i64,
    pub indicator_code: String,
    pub period: String,
    pub geographic_level: String,
    pub area_code: String,
    pub school_urn: Option<i32>,
    pub pupil_group: String,
    pub sync_run_id: Option<i64>,
    pub deleted_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
