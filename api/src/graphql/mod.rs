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
mod cost;
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

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use async_graphql::OutputType;
use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{
    Context, EmptySubscription, MergedObject, Response, SDLExportOptions, Schema, SchemaBuilder,
};
use sea_orm::DatabaseConnection;

use crate::access::Access;
use crate::cache::{Hints, ResponseCache, tags};
use crate::config::{InspectionCycle, Limits};
use crate::error::{Error, ErrorCode};
use crate::identity::Caller;

pub use loaders::Loaders;
pub use protect::Protection;

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
///
/// With `introspection` off, validation errors do not suggest fields ("Did you mean
/// …"): a hub that will not describe its schema must not spell it out one typo at a
/// time either.
pub fn build(limits: &Limits, introspection: bool) -> HubSchema {
    let builder = builder(limits);
    if introspection {
        builder.finish()
    } else {
        builder.disable_suggestions().finish()
    }
}

fn builder(limits: &Limits) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    // No `limit_depth`: the depth limit is `guard::check_depth`'s, which does not count
    // introspection's `ofType` chains as the engine would.
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        // A federation v2 subgraph: `_service { sdl }` and `_entities` (see `federation`).
        .enable_federation()
        .limit_complexity(limits.max_complexity)
        // Fragment recursion is already an error; this bounds the parser's own work.
        .limit_recursive_depth(64)
        .limit_directives(16)
}

/// The names of the fields that return lists or connections, on any type: what
/// `guard::check_list_repeats` limits. Read once from the schema's own types, so a
/// list field added later is covered without being named anywhere.
pub fn list_fields() -> &'static HashSet<String> {
    static FIELDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
        let mut registry = Registry::default();
        Query::create_type_info(&mut registry);
        Mutation::create_type_info(&mut registry);
        registry
            .types
            .iter()
            .filter(|(name, _)| !name.starts_with("__"))
            .filter_map(|(_, ty)| match ty {
                MetaType::Object { fields, .. } => Some(fields),
                _ => None,
            })
            .flat_map(|fields| fields.values())
            .filter(|field| {
                field.ty.starts_with('[') || field.ty.trim_end_matches('!').ends_with("Connection")
            })
            .map(|field| field.name.clone())
            .collect()
    });
    &FIELDS
}

/// The exported SDL, as written to `schema.graphql`: the subgraph SDL a federation
/// router composes, character for character what `_service { sdl }` answers (with the
/// federation `@link` and the entities' `@key`s), so the file in the repository is what
/// a router sees.
pub fn sdl() -> String {
    build(&Limits::default(), false)
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

/// What every resolver needs for one request.
pub struct RequestContext {
    pub db: DatabaseConnection,
    pub caller: Caller,
    pub limits: Arc<Limits>,
    /// Disclosure control: its rules and the decisions this instance remembers.
    pub protection: Protection,
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
        protection: Protection,
        inspection: InspectionCycle,
        cache: ResponseCache,
        pupil_key_secret: Option<Arc<[u8]>>,
    ) -> Self {
        RequestContext {
            db,
            caller: access.caller(),
            limits,
            protection,
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

/// Gives each error of an executed operation a machine-readable `extensions.code`.
///
/// Errors raised by the hub's own code already carry a code (see `error.rs`). Whatever
/// is left came from the GraphQL engine, and gets Apollo's code for its phase: a
/// document that did not parse (`parsed` false) `GRAPHQL_PARSE_FAILED`; a value the
/// arguments or variables do not accept `BAD_USER_INPUT`, whether found by validation
/// or while resolving; any other refusal before execution (an unknown field or
/// operation, the complexity bound) `GRAPHQL_VALIDATION_FAILED`.
///
/// This is a function the transport calls after execution rather than an engine
/// extension: with any extension installed, async-graphql wraps the resolution of every
/// field and every list item in the extension chain (building type names as strings
/// each time), which on a dashboard answer of a few thousand figures costs more than the
/// figures' SQL.
pub fn code_errors(response: &mut Response, parsed: bool, entities: bool) {
    let executed = executed(response, entities);
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if has_code {
            continue;
        }
        // The engine's wording for a value of the wrong type (literal or variable).
        let bad_value = error.message.starts_with("Invalid value for argument");
        let code = if !parsed {
            ErrorCode::GraphqlParseFailed
        } else if executed || bad_value {
            ErrorCode::BadUserInput
        } else {
            ErrorCode::GraphqlValidationFailed
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_str());
    }
}

/// Whether execution began: the engine refuses a request before it (parse, validation,
/// limits, variables) with no data and errors that have no path; once executing, data
/// is present or the error that nulled it carries its field's path. A request that was
/// never executed is a *request error* in GraphQL over HTTP's terms: its answer has no
/// `data` entry, and a 4xx status for clients that accept
/// `application/graphql-response+json`. The one exception is the federation's
/// `_entities` (`entities`: the operation selects it), whose lookups the engine
/// reports without a path: its errors are the router's representations, read while
/// executing.
pub fn executed(response: &Response, entities: bool) -> bool {
    entities
        || response.data != async_graphql::Value::Null
        || response.errors.is_empty()
        || response.errors.iter().any(|error| !error.path.is_empty())
}

/// The codes of a response's errors, for the metrics.
pub fn error_codes(response: &Response) -> impl Iterator<Item = &str> {
    response
        .errors
        .iter()
        .filter_map(|error| match error.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(code) => Some(code.as_str()),
            _ => None,
        })
}

/// The operation a request selects, read from its document: whether it is a query, and
/// its name (the client's `operationName`, else the name of the document's only
/// operation). `None` when the document does not parse or names no such operation; the
/// engine then answers with the error. Parsing here costs the engine nothing: the
/// parsed document travels with the request.
pub fn operation(request: &mut async_graphql::Request) -> Option<Operation> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    // A named operation is kept in `Multiple` even when it is the only one.
    let (name, operation) = match (&document.operations, name) {
        (DocumentOperations::Single(operation), name) => (name, operation),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            let operation = operations.get(name.as_str())?;
            (Some(name), operation)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            let (name, operation) = operations.iter().next()?;
            (Some(name.to_string()), operation)
        }
        (DocumentOperations::Multiple(_), None) => return None,
    };
    Some(Operation {
        is_query: operation.node.ty == OperationType::Query,
        entities: guard::selects_entities(document),
        name,
    })
}

/// The mutations a scheduled sync sends its rows to; only these may arrive in a
/// body larger than `MAX_BODY_BYTES` (see `http`).
pub const SYNC_MUTATIONS: [&str; 3] = [
    "upsertObservations",
    "upsertPupilRecords",
    "deleteObservations",
];

/// Whether the operation a request selects is a mutation of [`SYNC_MUTATIONS`] only
/// (`__typename` aside), selected directly rather than through fragments.
pub fn only_sync_mutations(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => {
            match operations.get(name.as_str()) {
                Some(operation) => operation,
                None => return false,
            }
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            match operations.values().next() {
                Some(operation) => operation,
                None => return false,
            }
        }
        (DocumentOperations::Multiple(_), None) => return false,
    };
    operation.node.ty == OperationType::Mutation
        && operation
            .node
            .selection_set
            .node
            .items
            .iter()
            .all(|selection| {
                matches!(&selection.node, Selection::Field(field)
                if SYNC_MUTATIONS.contains(&field.node.name.node.as_str())
                    || field.node.name.node == "__typename")
            })
}

/// See [`operation`].
pub struct Operation {
    pub is_query: bool,
    /// Whether the document selects the federation's `_entities` (see [`executed`]).
    pub entities: bool,
    pub name: Option<String>,
}
