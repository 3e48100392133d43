//! One error type for the whole hub, mapped once to GraphQL `extensions.code` and to an
//! HTTP status.
//!
//! Resolvers return `Result<T, Error>` and use `?`; the conversion below is the only
//! place an error becomes something a client sees. Database and unexpected errors are
//! logged in full here and reach the client as a fixed message with code `INTERNAL`, so
//! no SQL, stack trace or connection string ever leaves the hub.

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;

/// The codes a client may see in `extensions.code` (DESIGN.md, Conventions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    BadUserInput,
    NotFound,
    Unavailable,
    Internal,
    /// Apollo's automatic persisted queries: the hash is unknown, send the document.
    PersistedQueryNotFound,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
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
    /// `INTERNAL`: anything else from the database. Logged when it happens (see the
    /// `From<DbErr>` impl), never shown.
    #[error("internal error")]
    Database,
    /// `INTERNAL`: a broken invariant. The detail is logged, never shown.
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
        use sea_orm::DbErr;
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                tracing::warn!(error = %err, "database unavailable");
                Error::Unavailable
            }
            other => {
                tracing::error!(error = %other, "database error");
                Error::Database
            }
        }
    }
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Unauthenticated => ErrorCode::Unauthenticated,
            Error::Forbidden(_) | Error::ForbiddenRows(_) => ErrorCode::Forbidden,
            Error::BadUserInput(_) | Error::InvalidRows(_) => ErrorCode::BadUserInput,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Unavailable => ErrorCode::Unavailable,
            Error::Database | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status for errors that end a request before GraphQL runs.
    pub fn status(&self) -> StatusCode {
        match self.code() {
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::PersistedQueryNotFound => StatusCode::OK,
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
