//! The GraphQL schema, written by hand so that every field's access rule is explicit.
//!
//! One file per domain area: `reference` (regions, organisations, the indicator
//! catalogue), `schools` (the register), `figures` (observations, time series, the
//! disadvantage gap). Resolvers stay thin: they read the request context, ask the
//! `access` module, and query through sea-orm; nested fields go through the per-request
//! DataLoaders in `loaders`, so the number of SQL statements a request makes does not
//! grow with the number of rows it returns.
//!
//! Limits (depth, complexity, page size) bound what one request can cost. Connections
//! cost `first × child` so a wide page of deep nodes is refused up front, before any
//! SQL runs.

mod figures;
mod loaders;
mod pagination;
mod reference;
mod schools;

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{Context, EmptyMutation, EmptySubscription, MergedObject, Response, Schema, SchemaBuilder};
use sea_orm::DatabaseConnection;

use crate::auth::Caller;
use crate::config::Limits;
use crate::error::{Error, ErrorCode};

pub use loaders::Loaders;

#[derive(MergedObject, Default)]
pub struct Query(reference::ReferenceQuery, schools::SchoolQuery, figures::FigureQuery);

pub type HubSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the schema with the configured limits. No data is attached: everything a
/// resolver needs arrives per request in [`RequestContext`], so the same schema value
/// serves every caller and `export-schema` needs no database.
pub fn build(limits: &Limits) -> HubSchema {
    builder(limits).finish()
}

fn builder(limits: &Limits) -> SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query::default(), EmptyMutation, EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        // Fragment recursion is already an error; this bounds the parser's own work.
        .limit_recursive_depth(64)
        .limit_directives(16)
        .extension(ClientErrorCodes)
}

/// The exported SDL, as written to `schema.graphql`.
pub fn sdl() -> String {
    build(&Limits::default()).sdl()
}

/// What every resolver needs for one request.
pub struct RequestContext {
    pub db: DatabaseConnection,
    pub caller: Caller,
    pub limits: Arc<Limits>,
}

impl RequestContext {
    /// Attaches the context and fresh DataLoaders to a request. Loaders are per request
    /// on purpose: their cache then can never hand one caller's rows to another.
    pub fn attach(self, request: async_graphql::Request) -> async_graphql::Request {
        let loaders = Loaders::new(self.db.clone());
        request.data(self).data(loaders)
    }
}

/// The request context, or an internal error if the transport forgot to attach it.
pub(crate) fn request_context<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext, Error> {
    ctx.data::<RequestContext>()
        .map_err(|_| Error::Internal("request context missing".to_owned()))
}

pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> Result<&'a Loaders, Error> {
    ctx.data::<Loaders>().map_err(|_| Error::Internal("loaders missing".to_owned()))
}

/// Gives every error a machine-readable `extensions.code`.
///
/// Errors raised by the hub's own code already carry one (see `error.rs`). Whatever is
/// left came from the GraphQL engine rejecting the request itself — a syntax error, an
/// unknown field, a wrong argument type, a depth or complexity limit — which is the
/// client's to fix, hence `BAD_USER_INPUT`.
struct ClientErrorCodes;

impl ExtensionFactory for ClientErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ClientErrorCodes)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ClientErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            let has_code = error.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some());
            if !has_code {
                error
                    .extensions
                    .get_or_insert_with(Default::default)
                    .set("code", ErrorCode::BadUserInput.as_str());
            }
        }
        response
    }
}
