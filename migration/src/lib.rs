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

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_baseline_tables::Migration),
            Box::new(m20261123_000002_observation_school_count::Migration),
            Box::new(m20261123_000003_sync::Migration),
            Box::new(m20261123_000004_partnership::Migration),
        ]
    }
}
