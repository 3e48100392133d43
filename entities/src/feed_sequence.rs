//! Counters that hand out change-feed positions. Writers advance a counter inside their
//! transaction, which holds its row lock until commit, so positions are taken in
//! commit order and a reader paging by position never skips a later-committed row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feed_sequence")]
pub struct Model {
    /// `observation`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The last position handed out.
    pub value: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
