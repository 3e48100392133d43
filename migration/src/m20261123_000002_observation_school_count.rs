//! `observation.school_count`: how many schools an area figure sums. Disclosure control
//! withholds a figure built from too few schools from callers without SCHOOL scope over
//! them, so the count must travel with the figure. Existing rows get null, which
//! disclosure control treats as "too few" until a provider supplies it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Observation::Table)
                    .add_column(integer_null(Observation::SchoolCount))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Observation::Table)
                    .drop_column(Observation::SchoolCount)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Observation {
    Table,
    SchoolCount,
}
