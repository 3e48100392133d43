//! Database connection: pool settings per backend, migrations, and the statement
//! counter behind `hub_db_statements_total`.
//!
//! Counting statements is how the hub proves its batching: a request that returns 500
//! schools must not issue 500 queries. The counter lives on the connection (sea-orm's
//! metric callback), so it sees every statement regardless of which module sent it.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

use entities::organisation;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::config::Config;
use crate::domain::OrganisationKind;
use crate::telemetry::Metrics;

/// An organisation by its natural key (`LOCAL_AUTHORITY` + `852`): how tokens, the
/// CLI and filters name partners.
pub async fn organisation_by_code<C: ConnectionTrait>(
    db: &C,
    kind: OrganisationKind,
    code: &str,
) -> Result<Option<organisation::Model>, DbErr> {
    organisation::Entity::find()
        .filter(organisation::Column::Kind.eq(kind.as_str()))
        .filter(organisation::Column::Code.eq(code))
        .one(db)
        .await
}

/// Opens the pool for the configured backend and wires the statement counter.
pub async fn connect(config: &Config, metrics: &Metrics) -> Result<DatabaseConnection, DbErr> {
    if config.embedded {
        // The default SQLite file lives in ./data; create the folder on first start.
        std::fs::create_dir_all(crate::config::DEFAULT_DATA_DIR).map_err(|e| {
            DbErr::Custom(format!(
                "cannot create {}: {e}",
                crate::config::DEFAULT_DATA_DIR
            ))
        })?;
    }
    let mut options = ConnectOptions::new(config.database_url.clone());
    options
        .max_connections(config.db_max_connections)
        .connect_timeout(Duration::from_secs(5))
        // Fail fast when the pool is exhausted or the server is gone, rather than hold
        // a client's request for the driver's 30-second default.
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        // WAL lets readers proceed while a writer commits; the busy timeout turns a
        // momentary writer lock into a short wait instead of an error.
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    let mut db = Database::connect(options).await?;
    let statements = metrics.db_statements.clone();
    let failures = metrics.db_statement_failures.clone();
    let seconds = metrics.db_statement_seconds.clone();
    db.set_metric_callback(move |info| {
        statements.inc();
        seconds.observe(info.elapsed.as_secs_f64());
        if info.failed {
            failures.inc();
        }
    });
    Ok(db)
}

/// Applies any pending migrations. Safe to run on every start.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// True when a trivial statement succeeds: what `/readyz` reports.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}
