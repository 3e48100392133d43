//! Schema migrations for SQLite (the embedded default) and PostgreSQL.
//!
//! Migrations run at start-up and through `baseline-hub migrate`. Every statement is
//! built with sea-query so the same file serves both backends; foreign keys are declared
//! inside `CREATE TABLE` because SQLite cannot add them afterwards.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_baseline_tables;
mod m20261123_000002_observation_school_count;
mod m20261123_000003_sync;
mod m20261123_000004_partnership;
mod m20261202_000005_confidential_support;
mod m20261202_000006_self_evaluation_reviews;
mod m20261202_000007_support_reach;

/// Creates a named (optionally unique) index: the shape every migration's indexes take.
pub(crate) async fn index<T, C>(
    manager: &SchemaManager<'_>,
    table: T,
    name: &str,
    cols: &[C],
    unique: bool,
) -> Result<(), DbErr>
where
    T: IntoIden + Clone + 'static,
    C: IntoIden + Clone + 'static,
{
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col.clone());
    }
    if unique {
        stmt.unique();
    }
    manager.create_index(stmt.to_owned()).await
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_baseline_tables::Migration),
            Box::new(m20261123_000002_observation_school_count::Migration),
            Box::new(m20261123_000003_sync::Migration),
            Box::new(m20261123_000004_partnership::Migration),
            Box::new(m20261202_000005_confidential_support::Migration),
            Box::new(m20261202_000006_self_evaluation_reviews::Migration),
            Box::new(m20261202_000007_support_reach::Migration),
        ]
    }
}
