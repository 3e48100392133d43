//! The GraphQL schema, written by hand so that every field's access rule is explicit.
//!
//! One file per domain area: `reference` (regions, organisations, the indicator
//! catalogue), `schools` (the register), `figures` (observations, time series, the
//! disadvantage gap), `pupils` (pupil records, audited), `audit` (the audit log),
//! `sync` (bulk writes, sync runs, the change feed) and `federation` (the hub's
//! entities, for a federation router); the improvement partnership adds `signals`,
//! `self_evaluation`, `peer_review`, `support` and `inspection`, with their shared
//! plumbing in `partnership`. Resolvers stay thin: they read the request context, ask the
//! `access` module, and query through sea-orm; nested fields load through `loaders`
//! (per-request reference caches and sibling pages), so the number of SQL statements a
//! request makes does not grow with the number of rows it returns.
//!
//! Limits (depth, complexity, page size) bound what one request can cost. Connections
//! cost `first × child` so a wide page of deep nodes is refused up front, before any
//! SQL runs.

mod aggregate;
mod audit;
mod federation;
mod figures;
pub mod guard;
mod loaders;
mod pagination;
mod protect;
mod pupils;
mod reference;
mod schools;
mod sharing;
mod sync;

// The improvement partnership (issue 7).
mod inspection;
mod partnership;
mod peer_review;
mod self_evaluation;
mod signals;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest,
};
use async_graphql::{
    Context, EmptySubscription, MergedObject, Response, SDLExportOptions, Schema, SchemaBuilder,
};
use sea_orm::DatabaseConnection;

use crate::access::Access;
use crate::auth::Caller;
use crate::cache::{Hints, ResponseCache, tags};
use crate::config::{Disclosure, InspectionCycle, Limits};
use crate::error::{Error, ErrorCode};
use crate::telemetry::Metrics;

pub use loaders::Loaders;

#[derive(MergedObject, Default)]
pub struct Query(
    reference::ReferenceQuery,
    schools::SchoolQuery,
    figures::FigureQuery,
    aggregate::AggregateQuery,
    pupils::PupilQuery,
    audit::AuditQuery,
    sharing::SharingQuery,
    sync::SyncQuery,
    federation::EntityQuery,
    signals::SignalQuery,
    self_evaluation::SelfEvaluationQuery,
    peer_review::PeerReviewQuery,
    support::SupportQuery,
    inspection::InspectionQuery,
);

/// Writes. Each mutation checks the policy, changes its rows and records its audit
/// event in one transaction.
#[derive(MergedObject, Default)]
pub struct Mutation(
    sharing::SharingMutation,
    sync::SyncMutation,
    signals::SignalMutation,
    self_evaluation::SelfEvaluationMutation,
    peer_review::PeerReviewMutation,
    support::SupportMutation,
    inspection::InspectionMutation,
);

pub type HubSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema with the configured limits. No data is attached: everything a
/// resolver needs arrives per request in [`RequestContext`], so the same schema value
/// serves every caller and `export-schema` needs no database.
pub fn build(limits: &Limits, metrics: Metrics) -> HubSchema {
    builder(limits, metrics).finish()
}

fn builder(limits: &Limits, metrics: Metrics) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        // A federation v2 subgraph: `_service { sdl }` and `_entities` (see `federation`).
        .enable_federation()
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        // Fragment recursion is already an error; this bounds the parser's own work.
        .limit_recursive_depth(64)
        .limit_directives(16)
        .extension(RequestOutcome { metrics })
}

/// The exported SDL, as written to `schema.graphql`: the subgraph SDL a federation
/// router composes, character for character what `_service { sdl }` answers (with the
/// federation `@link` and the entities' `@key`s), so the file in the repository is what
/// a router sees.
pub fn sdl() -> String {
    build(&Limits::default(), Metrics::new())
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

/// What every resolver needs for one request.
pub struct RequestContext {
    pub db: DatabaseConnection,
    pub caller: Caller,
    pub limits: Arc<Limits>,
    pub disclosure: Disclosure,
    pub inspection: InspectionCycle,
    /// Writers invalidate through it; readers record what they read in `hints`.
    pub cache: ResponseCache,
    pub hints: Arc<Hints>,
    /// Key of the hash that replaces pupil numbers in pupil-record writes; `None` when
    /// not configured (such writes are then refused).
    pub pupil_key_secret: Option<Arc<[u8]>>,
    access: Access,
}

impl RequestContext {
    pub fn new(
        db: DatabaseConnection,
        access: Access,
        limits: Arc<Limits>,
        disclosure: Disclosure,
        inspection: InspectionCycle,
        cache: ResponseCache,
        pupil_key_secret: Option<Arc<[u8]>>,
    ) -> Self {
        RequestContext {
            db,
            caller: access.caller(),
            limits,
            disclosure,
            inspection,
            cache,
            hints: Arc::default(),
            pupil_key_secret,
            access,
        }
    }

    /// The caller's scope under the access policy, worked out before execution.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The answer depends on data under `tag` (see `cache::tags`).
    pub fn reads(&self, tag: impl Into<String>) {
        self.hints.read(tag);
    }

    /// The figures of these indicators (all of them for `None`).
    pub fn reads_figures(&self, indicators: Option<&[String]>) {
        match indicators {
            Some(codes) => codes
                .iter()
                .for_each(|code| self.reads(tags::figures(code))),
            None => self.reads(tags::ALL_FIGURES),
        }
    }

    /// The answer must never be stored (audited reads, per-person answers).
    pub fn no_store(&self) {
        self.hints.no_store();
    }

    /// Attaches the context and fresh loaders to a request. Loaders are per request on
    /// purpose: their caches then can never hand one caller's rows to another.
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
    ctx.data::<Loaders>()
        .map_err(|_| Error::Internal("loaders missing".to_owned()))
}

/// Finishes every GraphQL request the same way: gives each error a machine-readable
/// `extensions.code`, then records the request in the metrics.
///
/// Errors raised by the hub's own code already carry a code (see `error.rs`). Whatever
/// is left came from the GraphQL engine rejecting the request itself — a syntax error,
/// an unknown field, a wrong argument type, a depth or complexity limit — which is the
/// client's to fix, hence `BAD_USER_INPUT`.
///
/// Metrics are taken here rather than in the HTTP handler because only the engine knows
/// the operation's name when the client did not send `operationName`.
struct RequestOutcome {
    metrics: Metrics,
}

impl ExtensionFactory for RequestOutcome {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestOutcomeExtension {
            metrics: self.metrics.clone(),
            operation: Mutex::new(None),
        })
    }
}

/// One per request (the factory creates a fresh one each time).
struct RequestOutcomeExtension {
    metrics: Metrics,
    operation: Mutex<Option<String>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestOutcomeExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            let has_code = error
                .extensions
                .as_ref()
                .is_some_and(|ext| ext.get("code").is_some());
            if !has_code {
                error
                    .extensions
                    .get_or_insert_with(Default::default)
                    .set("code", ErrorCode::BadUserInput.as_str());
            }
        }
        let operation = self.operation.lock().ok().and_then(|mut slot| slot.take());
        let codes = response.errors.iter().filter_map(|error| {
            let value = error.extensions.as_ref()?.get("code")?;
            match value {
                async_graphql::Value::String(code) => Some(code.as_str()),
                _ => None,
            }
        });
        self.metrics
            .record_request(operation.as_deref(), started.elapsed(), codes);
        response
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(name) = operation_name {
            // The request's log span (see `http`) names the operation it ran.
            tracing::Span::current().record("operation", name);
            if let Ok(mut slot) = self.operation.lock() {
                *slot = Some(name.to_owned());
            }
        }
        next.run(ctx, operation_name).await
    }
}
