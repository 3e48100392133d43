//! Apollo Federation v2: the hub as one subgraph behind a router.
//!
//! A router (Apollo Router, `@apollo/gateway`…) composes the hub's SDL — `_service {
//! sdl }`, the same text as `schema.graphql` — with partners' own subgraphs, so a
//! dashboard asks one endpoint. When a query crosses from a partner's type into the
//! hub's, the router asks the hub for *entities* by key: `_entities(representations:
//! [{ __typename: "School", urn: 100001 }, …])`. The hub's entities are `School`
//! (`urn`), `Organisation` (`id`), `Region` (`code`) and `Indicator` (`code`); the
//! resolvers below are what gives each its `@key`.
//!
//! **Access.** `_entities` is a second door to every entity, beside the root fields,
//! so nothing here grants anything of its own. Resolving an entity yields what the root
//! fields give everybody (the register and the catalogue are public reference data);
//! every field that needs scope — a school's `observations` and `timeSeries` — checks
//! it on the object itself through `access` and loads through loaders that only fetch
//! in-scope rows. An entity therefore shows exactly what `school(urn:)` shows the same
//! caller, whichever door it came in by (tests/api/federation.rs asks `_entities`
//! directly to hold this).
//!
//! **Batching.** A router sends every key it needs from the hub in one `_entities`.
//! async-graphql resolves each representation on its own, so the first resolver to run
//! reads the whole `representations` argument and loads every school and organisation
//! named in it at once (`Loaders::entity_batch`); the schools come back as one page, so
//! their LAs, trusts and figures also load once for all of them. Regions and the
//! catalogue are read whole once per request anyway. The number of representations is
//! capped at `MAX_PAGE_SIZE`, like any other page.
//!
//! **Error paths.** async-graphql resolves every representation at the path of
//! `_entities` itself, without its list index, so an error inside an entity (a school's
//! figures refused) would say `["_entities", "observations"]` and a router could not
//! tell which entity it belongs to. Each entity is therefore resolved at its position
//! in `representations` ([`AtIndex`]): `["_entities", 3, "observations"]`, which a
//! router maps back onto its client's query.
//!
//! **Unknown keys** resolve to a null entity, which the federation spec allows
//! (`_entities: [_Entity]!`): a router asking for a school that has left the register
//! gets null for that one, and its siblings are unaffected — an error from an entity
//! resolver would instead fail the whole list in async-graphql. A representation the
//! hub cannot read at all (an unknown `__typename`, a key of the wrong type) is the
//! client's to fix: `BAD_USER_INPUT`.

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{
    Context, ContextSelectionSet, ID, InputType, Object, OutputType, Positioned, ServerResult,
    Value,
};

use super::figures::School;
use super::loaders::{EntityBatch, EntityKeys};
use super::reference::{Indicator, Organisation, Region};
use super::{loaders, request_context};
use crate::access;
use crate::error::{Error, Result};

/// The entity resolvers, merged into `Query`. They add no fields of their own: only
/// `_entities` reaches them.
#[derive(Default)]
pub struct EntityQuery;

#[Object]
impl EntityQuery {
    /// `{ __typename: "School", urn }`.
    #[graphql(entity)]
    async fn school_entity(&self, ctx: &Context<'_>, urn: i32) -> Result<Option<AtIndex<School>>> {
        let batch = entity_batch(ctx).await?;
        let index = batch.claim_position(&School::type_name(), &urn.to_string());
        Ok(batch
            .school(urn)
            .map(|(page, model)| AtIndex::new(index, School::on_page(page, model))))
    }

    /// `{ __typename: "Organisation", id }`.
    #[graphql(entity)]
    async fn organisation_entity(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<AtIndex<Organisation>>> {
        let batch = entity_batch(ctx).await?;
        let index = batch.claim_position(&Organisation::type_name(), &id);
        let Ok(id) = id.parse::<i32>() else {
            // Ids this hub hands out are integers; any other text names nothing here.
            return Ok(None);
        };
        let db = &request_context(ctx)?.db;
        Ok(batch
            .organisation(db, id)
            .await?
            .map(|org| AtIndex::new(index, Organisation(org))))
    }

    /// `{ __typename: "Region", code }`.
    #[graphql(entity)]
    async fn region_entity(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> Result<Option<AtIndex<Region>>> {
        let batch = entity_batch(ctx).await?;
        let index = batch.claim_position(&Region::type_name(), &code);
        Ok(loaders(ctx)?
            .region(&code)
            .await?
            .map(|region| AtIndex::new(index, Region(region))))
    }

    /// `{ __typename: "Indicator", code }`.
    #[graphql(entity)]
    async fn indicator_entity(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> Result<Option<AtIndex<Indicator>>> {
        let batch = entity_batch(ctx).await?;
        let index = batch.claim_position(&Indicator::type_name(), &code);
        Ok(loaders(ctx)?
            .indicator(&code)
            .await?
            .map(|indicator| AtIndex::new(index, Indicator::from(indicator))))
    }
}

/// The batch of the `_entities` field being resolved, after the policy's word: entities
/// are public reference data, like the root fields that return them.
async fn entity_batch(ctx: &Context<'_>) -> Result<Arc<EntityBatch>> {
    let rc = request_context(ctx)?;
    access::public(&rc.caller)?;
    // A document may ask for `_entities` twice under two aliases, each with its own
    // representations: one batch per response key.
    let field = ctx.field();
    let name = field.alias().unwrap_or(field.name());
    loaders(ctx)?
        .entity_batch(name, || representation_keys(ctx, rc.limits.max_page_size))
        .await
}

/// The keys named in the `representations` of the `_entities` field being resolved,
/// and where each stands. Keys are read exactly as async-graphql reads them for the
/// resolvers (`InputType::parse`), so the batch holds every key a resolver will ask
/// for; representations of other types, or that will not parse, are left to
/// async-graphql (which refuses them).
fn representation_keys(ctx: &Context<'_>, max: usize) -> Result<EntityKeys> {
    let arguments = ctx
        .field()
        .arguments()
        .map_err(|err| Error::bad_input(err.message))?;
    let representations = arguments
        .into_iter()
        .find(|(name, _)| name.as_str() == "representations")
        .map(|(_, value)| value);
    let Some(Value::List(representations)) = representations else {
        return Err(Error::bad_input("`representations` must be a list"));
    };
    if representations.len() > max {
        return Err(Error::bad_input(format!(
            "at most {max} representations in one `_entities`; split the request"
        )));
    }
    let mut keys = EntityKeys::default();
    for (index, representation) in representations.iter().enumerate() {
        let Value::Object(fields) = representation else {
            continue;
        };
        let Some(Value::String(typename)) = fields.get("__typename") else {
            continue;
        };
        let key = if *typename == School::type_name() {
            key::<i32>(fields.get("urn")).map(|urn| {
                keys.school_urns.push(urn);
                urn.to_string()
            })
        } else if *typename == Organisation::type_name() {
            key::<ID>(fields.get("id")).map(|id| {
                keys.organisation_ids.extend(id.parse::<i32>().ok());
                id.0
            })
        } else if *typename == Region::type_name() || *typename == Indicator::type_name() {
            key::<String>(fields.get("code"))
        } else {
            None
        };
        if let Some(key) = key {
            keys.positions
                .entry((typename.clone(), key))
                .or_default()
                .push_back(index);
        }
    }
    Ok(keys)
}

fn key<T: InputType>(value: Option<&Value>) -> Option<T> {
    T::parse(value.cloned()).ok()
}

/// An entity resolved one level deeper than `_entities`, at its index in the
/// representations, so errors inside it carry that index in their path (see the
/// module docs). The GraphQL type is the entity's own. The index is added with
/// `ContextSelectionSet::with_index`, the call async-graphql's own lists use (public
/// but undocumented); tests/api/federation.rs pins the resulting paths, directly and
/// through a gateway.
pub struct AtIndex<T> {
    index: Option<usize>,
    entity: T,
}

impl<T> AtIndex<T> {
    fn new(index: Option<usize>, entity: T) -> Self {
        AtIndex { index, entity }
    }
}

impl<T: OutputType> OutputType for AtIndex<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.entity.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match self.index {
            Some(index) => self.entity.resolve(&ctx.with_index(index), field).await,
            None => self.entity.resolve(ctx, field).await,
        }
    }
}
