//! Database connection: pool settings per backend, migrations, the statement counter
//! behind `hub_db_statements_total`, and [`Health`], which lets requests fail fast while
//! the database is down.
//!
//! Counting statements is how the hub proves its batching: a request that returns 500
//! schools must not issue 500 queries. The counter lives on the connection (sea-orm's
//! metric callback), so it sees every statement regardless of which module sent it.
//!
//! **Bounds.** Every statement a request sends is bounded by
//! `DATABASE_STATEMENT_TIMEOUT_MS`: on PostgreSQL as the session's `statement_timeout`
//! (set when each connection opens, so it also covers waiting for locks); SQLite has no
//! server to stop a statement, so there it bounds the wait for a lock (the busy
//! timeout), and the request timeout (`http`) bounds the rest. Migrations and seeding
//! use [`connect_unbounded`]: building an index over national data may rightly take
//! longer than any request should.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

use entities::organisation;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::budget::Budget;
use crate::config::Config;
use crate::domain::OrganisationKind;
use crate::error::DbFailure;
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

/// Opens the pool requests use, every statement bounded by the statement timeout, and
/// wires the statement counter.
pub async fn connect(config: &Config, metrics: &Metrics) -> Result<DatabaseConnection, DbErr> {
    let pool = Pool {
        max_connections: config.db_max_connections,
        acquire_timeout: config.db_acquire_timeout,
    };
    let mut db = open(config, Some(config.db_statement_timeout), pool).await?;
    db.set_metric_callback(observer(metrics));
    Ok(db)
}

/// The health check's own connection, apart from the pool requests use: a pool
/// saturated by requests must not make the hub think its database is down (it once
/// answered `UNAVAILABLE` to everyone while PostgreSQL was up), and `/readyz` must
/// still answer while every request connection is busy.
pub async fn connect_probe(config: &Config) -> Result<DatabaseConnection, DbErr> {
    // Two: the monitor's ping and one request's `Health::confirm` at a time.
    let pool = Pool {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(1),
    };
    open(config, Some(Duration::from_secs(1)), pool).await
}

/// Size of a pool and how long a caller waits for one of its connections.
struct Pool {
    max_connections: u32,
    acquire_timeout: Duration,
}

/// Records each statement in the metrics.
fn observer(metrics: &Metrics) -> impl Fn(&sea_orm::metric::Info<'_>) + Send + Sync + 'static {
    let statements = metrics.db_statements.clone();
    let failures = metrics.db_statement_failures.clone();
    let seconds = metrics.db_statement_seconds.clone();
    move |info| {
        statements.inc();
        seconds.observe(info.elapsed.as_secs_f64());
        if info.failed {
            failures.inc();
        }
    }
}

/// The pool as one request sees it: the same connections, with every statement also
/// counted against the request's budget. A clone of the handle carries its own
/// callback, so the count is the request's alone.
pub fn counted(
    db: &DatabaseConnection,
    metrics: &Metrics,
    budget: Arc<Budget>,
) -> DatabaseConnection {
    let mut db = db.clone();
    let observe = observer(metrics);
    db.set_metric_callback(move |info| {
        observe(info);
        budget.statement();
    });
    db
}

/// A connection for migrations, seeding and the command line: no statement timeout.
pub async fn connect_unbounded(config: &Config) -> Result<DatabaseConnection, DbErr> {
    let pool = Pool {
        max_connections: config.db_max_connections,
        acquire_timeout: Duration::from_secs(5),
    };
    open(config, None, pool).await
}

async fn open(
    config: &Config,
    statement_timeout: Option<Duration>,
    pool: Pool,
) -> Result<DatabaseConnection, DbErr> {
    if config.embedded {
        // The default SQLite file lives in ./data; create the folder on first start,
        // private to the hub's user (it holds pupil records).
        crate::config::create_data_dir(Path::new(crate::config::DEFAULT_DATA_DIR)).map_err(
            |e| {
                DbErr::Custom(format!(
                    "cannot create {}: {e}",
                    crate::config::DEFAULT_DATA_DIR
                ))
            },
        )?;
    }
    // A writer holding SQLite's lock for longer than this makes the waiting statement
    // fail (and the request say so) rather than queue indefinitely.
    let busy_timeout = statement_timeout.unwrap_or(Duration::from_secs(5));
    let mut options = ConnectOptions::new(config.database_url.clone());
    options
        .max_connections(pool.max_connections)
        .connect_timeout(Duration::from_secs(5))
        // Fail fast when the pool is exhausted or the server is gone, rather than hold
        // a client's request for the driver's 30-second default.
        .acquire_timeout(pool.acquire_timeout)
        .sqlx_logging(false)
        // WAL lets readers proceed while a writer commits; the busy timeout turns a
        // momentary writer lock into a short wait instead of an error.
        .map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
        });
    if let Some(timeout) = statement_timeout {
        let millis = timeout.as_millis().to_string();
        options.map_sqlx_postgres_opts(move |opts| {
            opts.options([("statement_timeout", millis.as_str())])
        });
    }
    Database::connect(options).await
}

/// How many times a write transaction is run in all before a conflict is returned.
pub const WRITE_ATTEMPTS: u32 = 4;

/// Runs a write transaction (`attempt` begins, writes and commits it) again when the
/// database rolled it back for a conflict with concurrent writers — a deadlock or a
/// serialisation failure ([`DbFailure::Conflict`], told apart by `conflict`) — up to
/// [`WRITE_ATTEMPTS`] runs in all, after a short random pause that grows each time so
/// that the writers that collided do not collide again in step. Such a rollback says
/// nothing about the write: overlapping pupil-record upserts deadlock at random on
/// PostgreSQL (4 and 12 of 30 concurrent calls in two runs), and each would succeed
/// alone. The last conflict is returned for the client to retry (`OVERLOADED`).
///
/// `attempt` must be safe to run again after a rollback: all it wrote went with it.
pub async fn retry_conflicts<T, E, F, Fut>(
    mut attempt: F,
    conflict: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut run = 1;
    loop {
        match attempt().await {
            Err(err) if run < WRITE_ATTEMPTS && conflict(&err) => {
                let pause = Duration::from_millis(rand::random_range(5..=20) << run);
                tracing::info!(
                    run,
                    pause_ms = pause.as_millis() as u64,
                    "write rolled back by a conflict; running it again"
                );
                tokio::time::sleep(pause).await;
                run += 1;
            }
            done => return done,
        }
    }
}

/// Whether the database rolled a transaction back for a conflict with concurrent ones.
pub fn is_conflict(err: &DbErr) -> bool {
    DbFailure::of(err) == DbFailure::Conflict
}

/// Applies any pending migrations. Safe to run on every start.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// True when a trivial statement succeeds within a second.
/// Refreshes the query planner's statistics on `tables` after a bulk write. Until then
/// PostgreSQL plans from estimates for a table it last saw empty (autovacuum's analyze
/// comes later, after a threshold of changed rows) and SQLite has no statistics at all,
/// so the first requests after a seed or an import would scan where an index serves.
/// The names are the hub's own constants, never input; none means every table.
pub async fn analyze<C: ConnectionTrait>(db: &C, tables: &[&str]) -> Result<(), DbErr> {
    if tables.is_empty() {
        db.execute_unprepared("ANALYZE").await?;
    }
    for table in tables {
        db.execute_unprepared(&format!("ANALYZE {table}")).await?;
    }
    Ok(())
}

pub async fn ping(db: &DatabaseConnection) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), db.execute_unprepared("SELECT 1")).await,
        Ok(Ok(_))
    )
}

/// Samples the pool's size and idle connections into the metrics (when scraped).
pub fn observe_pool(db: &DatabaseConnection, metrics: &Metrics) {
    let (size, idle, max) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => return,
    };
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    metrics.db_pool_connections.set(i64::from(size));
    metrics.db_pool_idle.set(idle);
    metrics
        .db_pool_in_use
        .set(i64::from(size).saturating_sub(idle));
    metrics.db_pool_max.set(i64::from(max));
}

/// Whether the database is reachable, as last seen — so that while it is down,
/// requests are refused at once with `UNAVAILABLE` instead of each waiting for the
/// pool's connect timeout, and the hub notices by itself when it is back.
///
/// A background task pings the database (every two seconds while up, four times a
/// second while down); a request that meets an unavailable database reports it
/// ([`Health::recheck`]) so the task looks at once rather than at its next
/// tick. Cloning shares the state; the task ends soon after the last clone is dropped.
#[derive(Clone)]
pub struct Health {
    up: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    probe: DatabaseConnection,
    /// The last [`Health::confirm`]: when, and whether the database answered.
    confirmed: Arc<tokio::sync::Mutex<Option<(std::time::Instant, bool)>>>,
}

impl Health {
    /// Starts watching the database through `probe`, a connection of its own
    /// ([`connect_probe`]); the database counts as up until a ping says otherwise.
    pub fn watch(probe: DatabaseConnection, metrics: Metrics) -> Health {
        let health = Health {
            up: Arc::new(AtomicBool::new(true)),
            wake: Arc::new(tokio::sync::Notify::new()),
            probe: probe.clone(),
            confirmed: Arc::default(),
        };
        let db = probe;
        metrics.db_up.set(1);
        tokio::spawn(monitor(
            Arc::downgrade(&health.up),
            health.wake.clone(),
            db,
            metrics,
        ));
        health
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Pings the database now, on the probe's own connection (for `/readyz`).
    pub async fn ping(&self) -> bool {
        ping(&self.probe).await
    }

    /// Whether the database answers, for a request that found no free connection:
    /// the pool says "timed out" both when every connection is busy and when it
    /// cannot connect at all, and only a connection of another pool tells the two
    /// apart. One ping answers every request asking within 250 ms, so a burst of
    /// such requests costs the database one statement. An unreachable database is
    /// reported to the monitor, which marks it down.
    pub async fn confirm(&self) -> bool {
        const FRESH: Duration = Duration::from_millis(250);
        let mut confirmed = self.confirmed.lock().await;
        if let Some((at, up)) = *confirmed
            && at.elapsed() < FRESH
        {
            return up;
        }
        let up = ping(&self.probe).await;
        *confirmed = Some((std::time::Instant::now(), up));
        if !up {
            self.recheck();
        }
        up
    }

    /// A request found the database unavailable: check now rather than at the next tick.
    pub fn recheck(&self) {
        self.wake.notify_one();
    }
}

/// Pings until the hub's last [`Health`] is gone.
async fn monitor(
    up: std::sync::Weak<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    db: DatabaseConnection,
    metrics: Metrics,
) {
    const WHILE_UP: Duration = Duration::from_secs(2);
    const WHILE_DOWN: Duration = Duration::from_millis(250);
    loop {
        let reachable = ping(&db).await;
        let Some(state) = up.upgrade() else {
            return;
        };
        let was_up = state.swap(reachable, Ordering::AcqRel);
        drop(state);
        metrics.db_up.set(i64::from(reachable));
        match (was_up, reachable) {
            (true, false) => {
                tracing::warn!("database unreachable: refusing requests until it is back")
            }
            (false, true) => tracing::info!("database reachable again"),
            _ => {}
        }
        let wait = if reachable { WHILE_UP } else { WHILE_DOWN };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A database error with a SQLSTATE, as the driver reports one.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sea_orm::sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            "from the test"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sea_orm::sqlx::error::ErrorKind {
            sea_orm::sqlx::error::ErrorKind::Other
        }
    }

    fn failed(code: &'static str) -> DbErr {
        let error = sea_orm::sqlx::Error::Database(Box::new(Coded(code)));
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(Arc::new(error)))
    }

    #[tokio::test]
    async fn a_conflicting_write_is_run_again_a_bounded_number_of_times() {
        let runs = AtomicU32::new(0);
        // Two conflicts, then success: the caller sees the success.
        let result: Result<&str, &str> = retry_conflicts(
            || async {
                let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                if run < 3 {
                    Err("conflict")
                } else {
                    Ok("written")
                }
            },
            |err| *err == "conflict",
        )
        .await;
        assert_eq!((result, runs.load(Ordering::SeqCst)), (Ok("written"), 3));

        // Conflicts every time: given up after WRITE_ATTEMPTS runs, the conflict returned.
        runs.store(0, Ordering::SeqCst);
        let result: Result<(), &str> = retry_conflicts(
            || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Err("conflict")
            },
            |err| *err == "conflict",
        )
        .await;
        assert_eq!(
            (result, runs.load(Ordering::SeqCst)),
            (Err("conflict"), WRITE_ATTEMPTS)
        );

        // As the database reports them: a deadlock is run again, a constraint
        // violation is returned at once (running a bad write again cannot help).
        for (code, expected_runs) in [
            ("40P01", WRITE_ATTEMPTS),
            ("40001", WRITE_ATTEMPTS),
            ("23505", 1),
        ] {
            runs.store(0, Ordering::SeqCst);
            let result: Result<(), DbErr> = retry_conflicts(
                || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Err(failed(code))
                },
                is_conflict,
            )
            .await;
            assert!(result.is_err());
            assert_eq!(runs.load(Ordering::SeqCst), expected_runs, "{code}");
        }
    }
}
