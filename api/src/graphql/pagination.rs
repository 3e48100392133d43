//! Relay cursor pagination shared by every list.
//!
//! Pages are keyset pages over a stable integer key (URN, row id), so a page never
//! skips or repeats rows when earlier rows are inserted, and the SQL is `key > cursor
//! ORDER BY key LIMIT first + 1` — the extra row tells whether there is a next page.
//! Cursors are opaque base64 so clients do not build them by hand.

use async_graphql::SimpleObject;
use async_graphql::connection::{Connection, CursorType, Edge};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::config::Limits;
use crate::error::Error;

/// Page size when a client does not say.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// An opaque cursor wrapping a row's integer key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCursor(pub i64);

impl CursorType for KeyCursor {
    type Error = Error;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let invalid = || Error::bad_input("`after` is not a cursor this API returned");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let key = text.strip_prefix("k:").ok_or_else(invalid)?;
        key.parse().map(KeyCursor).map_err(|_| invalid())
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("k:{}", self.0))
    }
}

/// A validated page request.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub first: usize,
    pub after: Option<i64>,
}

impl PageRequest {
    pub fn new(first: Option<i32>, after: Option<String>, limits: &Limits) -> Result<Self, Error> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE.min(limits.max_page_size),
            Some(n) if n < 0 => return Err(Error::bad_input("`first` must not be negative")),
            Some(n) if n as usize > limits.max_page_size => {
                return Err(Error::bad_input(format!(
                    "`first` is {n}, above the maximum page size of {}; page with `after`",
                    limits.max_page_size
                )));
            }
            Some(n) => n as usize,
        };
        let after = after
            .map(|c| KeyCursor::decode_cursor(&c).map(|k| k.0))
            .transpose()?;
        Ok(PageRequest { first, after })
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.first as u64 + 1
    }
}

/// Extra fields on every connection.
#[derive(SimpleObject, Clone, Copy, Debug, Default)]
pub struct Totals {
    /// How many rows match the filter, across all pages. Counted only when asked for.
    pub total_count: u64,
}

/// Complexity of a connection field: each of up to `first` nodes costs what its
/// selection costs, so a wide page of deep nodes exceeds the budget before any SQL runs.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE as i32).max(0) as usize;
    first.saturating_mul(child_complexity).saturating_add(1)
}

/// Runs a filtered query as one keyset page: counts the matches when the client asked
/// for `totalCount` (the count uses the same filter as the rows, before the cursor), then
/// fetches `first + 1` rows after the cursor in key order. `nodes` turns the page's rows
/// into GraphQL nodes (in one go, so they can share a sibling page); `key` reads a
/// node's cursor key.
pub async fn keyset_page<E, N>(
    ctx: &async_graphql::Context<'_>,
    db: &sea_orm::DatabaseConnection,
    mut query: sea_orm::Select<E>,
    key_column: E::Column,
    page: PageRequest,
    nodes: impl FnOnce(Vec<E::Model>) -> Vec<N>,
    key: impl Fn(&N) -> i64,
) -> Result<Connection<KeyCursor, N, Totals>, Error>
where
    E: sea_orm::EntityTrait,
    E::Model: Send + Sync,
    N: async_graphql::OutputType,
{
    let total_count = if ctx.look_ahead().field("totalCount").exists() {
        query.clone().count(db).await?
    } else {
        0
    };
    if let Some(after) = page.after {
        query = query.filter(key_column.gt(after));
    }
    let mut rows = query
        .order_by_asc(key_column)
        .limit(page.fetch_limit())
        .all(db)
        .await?;
    let has_next = rows.len() > page.first;
    rows.truncate(page.first);
    let mut connection =
        Connection::with_additional_fields(page.after.is_some(), has_next, Totals { total_count });
    connection.edges.extend(
        nodes(rows)
            .into_iter()
            .map(|node| Edge::new(KeyCursor(key(&node)), node)),
    );
    Ok(connection)
}
