//! One error type for the whole hub, mapped once to GraphQL `extensions.code` and to an
//! HTTP status.
//!
//! Resolvers return `Result<T, Error>` and use `?`; the conversion below is the only
//! place an error becomes something a client sees. Database and unexpected errors are
//! logged in full here and reach the client as a fixed message with code
//! `INTERNAL_SERVER_ERROR`, so
//! no SQL, stack trace or connection string ever leaves the hub.

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;

/// The codes a client may see in `extensions.code` (DESIGN.md, Conventions): Apollo's,
/// which its clients and routers branch on, and the hub's own for load and outages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    /// An argument's or a variable's value is not acceptable (page too large, unknown
    /// indicator, a string where a number belongs…).
    BadUserInput,
    /// The document is not GraphQL: a syntax error, or nesting the parser refuses.
    GraphqlParseFailed,
    /// The document is GraphQL but not a valid request of this schema: an unknown field,
    /// a missing argument, or past the depth or cost bounds.
    GraphqlValidationFailed,
    /// The HTTP request is not a GraphQL request (Apollo Server's code): a body that is
    /// not JSON, no `query`, a wrong content type or method, a body too large.
    BadRequest,
    NotFound,
    Unavailable,
    Internal,
    /// Apollo's automatic persisted queries: the hash is unknown, send the document.
    PersistedQueryNotFound,
    /// The caller's organisation has used up its request budget; retry after the
    /// `Retry-After` header's seconds.
    RateLimited,
    /// The hub is busy (the database itself is up): every database connection, or
    /// every slot of the caller's organisation, is in use, or a write kept meeting
    /// concurrent writes to the same rows. HTTP 503 with `Retry-After`. Not an outage,
    /// and never taken for one.
    Overloaded,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL_SERVER_ERROR",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Overloaded => "OVERLOADED",
        }
    }
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// `UNAUTHENTICATED`, HTTP 401: the resource needs a token and none was sent.
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthenticated,
    /// `FORBIDDEN`: the caller is known but the policy does not grant this.
    #[error("{0}")]
    Forbidden(String),
    /// `BAD_USER_INPUT`: the request is well-formed GraphQL but its arguments are not
    /// acceptable (page too large, unknown indicator, malformed period…).
    #[error("{0}")]
    BadUserInput(String),
    /// `GRAPHQL_PARSE_FAILED`: the document is not GraphQL.
    #[error("{0}")]
    ParseFailed(String),
    /// `GRAPHQL_VALIDATION_FAILED`: the document is not a request this hub runs.
    #[error("{0}")]
    ValidationFailed(String),
    /// `BAD_REQUEST`: the HTTP request itself is not a GraphQL request.
    #[error("{0}")]
    BadRequest(String),
    /// `BAD_USER_INPUT`: rows of a bulk write that cannot be stored, each named by its
    /// index, field and reason (in `extensions.rows`), so a sync client can fix its
    /// data without guessing. Nothing of the call was written.
    #[error("{} row(s) rejected; nothing was written (see extensions.rows)", .0.len())]
    InvalidRows(Vec<RowProblem>),
    /// `FORBIDDEN`: rows of a bulk write outside the caller's write scope (in
    /// `extensions.rows`). Nothing of the call was written.
    #[error("{} row(s) are outside your write scope; nothing was written (see extensions.rows)", .0.len())]
    ForbiddenRows(Vec<RowProblem>),
    /// `NOT_FOUND`: a direct request for something that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// `UNAVAILABLE`: the database could not be reached; the client may retry.
    #[error("the data store is unavailable; retry shortly")]
    Unavailable,
    /// `UNAVAILABLE`: the work took longer than the hub allows (a statement timeout,
    /// a lock not granted in time, or the request timeout) and was stopped. Retrying
    /// the same question may meet the same bound; a narrower one will not.
    #[error("the request took too long and was stopped; narrow it or retry later")]
    Timeout,
    /// `BAD_USER_INPUT`: the request ran past a bound on the work one request may do
    /// (SQL statements, answer bytes) and was stopped, its work dropped. Retrying the
    /// same question meets the same bound; a narrower one will not.
    #[error("{0}")]
    OverBudget(String),
    /// `RATE_LIMITED`, HTTP 429: the caller's organisation sent more operations than
    /// its budget allows.
    #[error("too many requests from your organisation; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// `OVERLOADED`, HTTP 503: no database connection came free within
    /// `DATABASE_ACQUIRE_TIMEOUT_MS`. The client may retry after `Retry-After`.
    #[error("the hub is busy; retry in a second")]
    Overloaded,
    /// `OVERLOADED`, HTTP 503: the write was rolled back because it deadlocked with, or
    /// could not be serialised after, concurrent writes to the same rows (the sync
    /// writes were already retried inside the hub). Nothing of it was written; the
    /// same call retried later will succeed.
    #[error(
        "the write met concurrent writes to the same rows and was rolled back; nothing was written, retry it"
    )]
    Conflict,
    /// `INTERNAL_SERVER_ERROR`: anything else from the database. Logged when it happens (see the
    /// `From<DbErr>` impl), never shown.
    #[error("internal error")]
    Database,
    /// `INTERNAL_SERVER_ERROR`: a broken invariant. The detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One reason a row of a bulk write was refused. Never carries the row's values: a
/// reason that echoed a raw pupil number would leak it into responses and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowProblem {
    /// Position of the row in the request (0-based) or line of the file (1-based).
    pub index: usize,
    /// The input field at fault, in the client's spelling (`indicatorCode`).
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}, {}: {}", self.index, self.field, self.reason)
    }
}

/// The full database error is logged here, once, and dropped: only its class travels
/// on, which keeps `Error` cloneable (DataLoader shares one error with every waiting
/// field) and makes it impossible to leak SQL to a client by accident.
impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Self {
        match DbFailure::of(&err) {
            DbFailure::Saturated => {
                tracing::warn!("no database connection came free in time");
                Error::Overloaded
            }
            DbFailure::Unavailable => {
                tracing::warn!(error = %err, "database unavailable");
                Error::Unavailable
            }
            DbFailure::Timeout => {
                tracing::warn!(error = %err, "database statement stopped by its timeout");
                Error::Timeout
            }
            DbFailure::Conflict => {
                tracing::warn!(error = %err, "write rolled back by a conflict with concurrent writes");
                Error::Conflict
            }
            DbFailure::Other => {
                tracing::error!(error = %err, "database error");
                Error::Database
            }
        }
    }
}

/// What a database error says about the database, as opposed to about the statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbFailure {
    /// The server is gone, restarting, refusing connections, or the pool had none
    /// to give in time: nothing the client sent is wrong, and a retry may succeed.
    Unavailable,
    /// The statement ran past its timeout or waited too long for a lock.
    Timeout,
    /// No connection of the pool came free in time. Usually every connection is busy
    /// (overload); the pool says the same when it cannot connect at all, so whether
    /// the database is down is left to `db::Health`, which pings on a connection of
    /// its own.
    Saturated,
    /// The transaction was rolled back because it deadlocked with another or could
    /// not be serialised with concurrent ones: nothing is wrong with it, and run again
    /// it will (almost always) go through.
    Conflict,
    /// Anything else: a bug, a constraint, a type mismatch.
    Other,
}

impl DbFailure {
    pub fn of(err: &sea_orm::DbErr) -> DbFailure {
        use sea_orm::{DbErr, RuntimeErr, sqlx};
        let sqlx_error = match err {
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout) => {
                return DbFailure::Saturated;
            }
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return DbFailure::Unavailable,
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
            _ => return DbFailure::Other,
        };
        match sqlx_error.as_ref() {
            sqlx::Error::PoolTimedOut => DbFailure::Saturated,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => DbFailure::Unavailable,
            sqlx::Error::Database(db) => db
                .code()
                .map_or(DbFailure::Other, |code| DbFailure::of_code(&code)),
            _ => DbFailure::Other,
        }
    }

    /// PostgreSQL SQLSTATEs (always five characters) and SQLite extended result codes
    /// (decimal numbers of at most four digits).
    fn of_code(code: &str) -> DbFailure {
        if code.len() == 5 {
            return match code {
                // query_canceled (statement_timeout), lock_not_available (lock_timeout)
                "57014" | "55P03" => DbFailure::Timeout,
                // serialization_failure, deadlock_detected
                "40001" | "40P01" => DbFailure::Conflict,
                // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
                "57P01" | "57P02" | "57P03" | "53300" => DbFailure::Unavailable,
                // connection_exception and its subclasses
                _ if code.starts_with("08") => DbFailure::Unavailable,
                _ => DbFailure::Other,
            };
        }
        // SQLITE_BUSY_SNAPSHOT: a transaction that read tried to write after another
        // had committed since (the busy handler is not called: waiting cannot help, a
        // fresh transaction will). Any other SQLITE_BUSY or SQLITE_LOCKED comes after
        // the busy timeout has been waited out, so it is a timeout, not retried.
        match code.parse::<i32>() {
            Ok(517) => DbFailure::Conflict,
            Ok(n) if matches!(n & 0xff, 5 | 6) => DbFailure::Timeout,
            _ => DbFailure::Other,
        }
    }
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Unauthenticated => ErrorCode::Unauthenticated,
            Error::Forbidden(_) | Error::ForbiddenRows(_) => ErrorCode::Forbidden,
            Error::BadUserInput(_) | Error::InvalidRows(_) | Error::OverBudget(_) => {
                ErrorCode::BadUserInput
            }
            Error::ParseFailed(_) => ErrorCode::GraphqlParseFailed,
            Error::ValidationFailed(_) => ErrorCode::GraphqlValidationFailed,
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Unavailable | Error::Timeout => ErrorCode::Unavailable,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Overloaded | Error::Conflict => ErrorCode::Overloaded,
            Error::Database | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status for errors that end a request before GraphQL runs.
    pub fn status(&self) -> StatusCode {
        match self.code() {
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::BadUserInput
            | ErrorCode::GraphqlParseFailed
            | ErrorCode::GraphqlValidationFailed
            | ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::PersistedQueryNotFound => StatusCode::OK,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Error::BadUserInput(message.into())
    }
}

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        if let Error::Internal(detail) = &err {
            tracing::error!(%detail, "internal error");
        }
        let code = err.code().as_str();
        let rows = match &err {
            Error::InvalidRows(problems) | Error::ForbiddenRows(problems) => {
                Some(async_graphql::Value::List(
                    problems
                        .iter()
                        .map(|p| {
                            async_graphql::value!({
                                "index": p.index,
                                "field": p.field,
                                "reason": p.reason.clone(),
                            })
                        })
                        .collect(),
                ))
            }
            _ => None,
        };
        async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(rows) = rows {
                ext.set("rows", rows);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_codes_say_whether_to_retry() {
        assert_eq!(DbFailure::of_code("57014"), DbFailure::Timeout);
        assert_eq!(DbFailure::of_code("57P01"), DbFailure::Unavailable);
        assert_eq!(DbFailure::of_code("08006"), DbFailure::Unavailable);
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_TIMEOUT: the busy timeout was waited out
        for busy in ["5", "6", "773"] {
            assert_eq!(DbFailure::of_code(busy), DbFailure::Timeout, "{busy}");
        }
        // deadlock_detected, serialization_failure, SQLITE_BUSY_SNAPSHOT
        for conflict in ["40P01", "40001", "517"] {
            assert_eq!(
                DbFailure::of_code(conflict),
                DbFailure::Conflict,
                "{conflict}"
            );
        }
        // unique_violation, SQLITE_CONSTRAINT_UNIQUE
        assert_eq!(DbFailure::of_code("23505"), DbFailure::Other);
        assert_eq!(DbFailure::of_code("2067"), DbFailure::Other);
    }
}
