//! Batched loading for nested fields: the number of SQL statements a request makes
//! depends on the shape of the query, never on how many rows it returns.
//!
//! Two mechanisms, both deterministic:
//!
//! * **Small reference tables** (regions, the indicator catalogue, local authorities)
//!   are read whole, at most once per request, behind a `OnceCell`.
//! * **Sibling pages.** Nodes that come from one list (a page of schools, a page of
//!   observations) share a page object that knows every key in the list. The first
//!   node that needs related rows — its LA, its figures — loads them for all its
//!   siblings in one `IN (…)` query; the others await the same cell.
//!
//! Why not async-graphql's `DataLoader`: it batches by time window (1 ms by default).
//! Lists longer than 32 items are resolved by `FuturesUnordered`, which yields to the
//! executor every 32 polls; if the window closes during such a yield the batch splits,
//! so the statement count would depend on timing and machine load. A sibling page
//! knows its full key set up front, so it never splits and never waits.
//!
//! Federation's `_entities` is a sibling page too: its `representations` argument names
//! every key up front, so the entities of one `_entities` field load as one
//! [`EntityBatch`].
//!
//! Everything here is per request, so nothing loaded for one caller can reach another.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use entities::{indicator, observation, organisation, region, school};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::OnceCell;

use crate::access::Access;
use crate::domain::AccessLevel;
use crate::domain::{GeographicLevel, OrganisationKind, PupilGroup};
use crate::error::Error;

/// Lets the task yield once it has worked for a while (tokio's cooperative budget).
/// Nested fields answered from these per-request caches await nothing that would
/// ever be pending, so without it a request resolving thousands of them runs to its
/// end in one poll: the request timeout could not fire, nor an aborted request stop.
/// Every loader access passes here, which puts a yield point on every path through
/// nested reference data.
async fn yield_point() {
    tokio::task::consume_budget().await;
}

/// Every LA, by region and by code.
#[derive(Default)]
struct LocalAuthorities {
    by_region: HashMap<String, Vec<organisation::Model>>,
    by_code: HashMap<String, organisation::Model>,
}

/// One `_entities` field's batch, once made (or its failure).
type EntityCell = OnceCell<Result<Arc<EntityBatch>, Error>>;

/// Reference tables of one request, each read at most once.
pub struct Loaders {
    db: DatabaseConnection,
    regions: OnceCell<HashMap<String, region::Model>>,
    local_authorities: OnceCell<LocalAuthorities>,
    indicators: OnceCell<HashMap<String, indicator::Model>>,
    /// Ids of the LAs with at least one school in the register.
    las_with_schools: OnceCell<HashSet<i32>>,
    /// The change-feed position of the last committed figure write, read once so that
    /// every table of a request is judged against the same version of the figures.
    figures_version: OnceCell<i64>,
    /// By the response key of their `_entities` field. A failure is kept too, so the
    /// representations are read once however many entities then fail with it.
    entities: Mutex<HashMap<String, Arc<EntityCell>>>,
}

impl Loaders {
    pub fn new(db: DatabaseConnection) -> Self {
        Loaders {
            db,
            regions: OnceCell::new(),
            local_authorities: OnceCell::new(),
            indicators: OnceCell::new(),
            las_with_schools: OnceCell::new(),
            figures_version: OnceCell::new(),
            entities: Mutex::new(HashMap::new()),
        }
    }

    /// A region by code.
    pub async fn region(&self, code: &str) -> Result<Option<region::Model>, Error> {
        yield_point().await;
        let regions = self
            .regions
            .get_or_try_init(|| async {
                let rows = region::Entity::find().all(&self.db).await?;
                Ok::<_, Error>(rows.into_iter().map(|r| (r.code.clone(), r)).collect())
            })
            .await?;
        Ok(regions.get(code).cloned())
    }

    /// The local authorities of a region, by LA code.
    pub async fn local_authorities(
        &self,
        region_code: &str,
    ) -> Result<Vec<organisation::Model>, Error> {
        yield_point().await;
        let index = self.la_index().await?;
        Ok(index
            .by_region
            .get(region_code)
            .cloned()
            .unwrap_or_default())
    }

    /// A local authority by LA code.
    pub async fn local_authority(&self, code: &str) -> Result<Option<organisation::Model>, Error> {
        yield_point().await;
        Ok(self.la_index().await?.by_code.get(code).cloned())
    }

    /// Whether the register places any school in this LA. An LA with none adds nothing
    /// to its region's figures, which anyone reading the register can know.
    pub async fn la_has_schools(&self, la_id: i32) -> Result<bool, Error> {
        let ids = self
            .las_with_schools
            .get_or_try_init(|| async {
                let ids: Vec<Option<i32>> = school::Entity::find()
                    .select_only()
                    .column(school::Column::LaId)
                    .distinct()
                    .into_tuple()
                    .all(&self.db)
                    .await?;
                Ok::<_, Error>(ids.into_iter().flatten().collect())
            })
            .await?;
        Ok(ids.contains(&la_id))
    }

    /// Which version of the figures this request reads: every figure write takes
    /// change-feed positions in its own transaction, so the feed's head moves with
    /// any change to any figure, committed by any instance.
    pub async fn figures_version(&self) -> Result<i64, Error> {
        self.figures_version
            .get_or_try_init(|| async { Ok::<_, Error>(crate::sync::store::head(&self.db).await?) })
            .await
            .copied()
    }

    /// Every region code, sorted.
    pub async fn region_codes(&self) -> Result<Vec<String>, Error> {
        self.region("").await?;
        let mut codes: Vec<String> = self
            .regions
            .get()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        codes.sort();
        Ok(codes)
    }

    async fn la_index(&self) -> Result<&LocalAuthorities, Error> {
        self.local_authorities
            .get_or_try_init(|| async {
                let rows = organisation::Entity::find()
                    .filter(
                        organisation::Column::Kind.eq(OrganisationKind::LocalAuthority.as_str()),
                    )
                    .order_by_asc(organisation::Column::Code)
                    .all(&self.db)
                    .await?;
                let mut index = LocalAuthorities::default();
                for la in rows {
                    if let Some(region) = la.region_code.clone() {
                        index.by_region.entry(region).or_default().push(la.clone());
                    }
                    index.by_code.insert(la.code.clone(), la);
                }
                Ok::<_, Error>(index)
            })
            .await
    }

    /// An indicator of the catalogue by code.
    pub async fn indicator(&self, code: &str) -> Result<Option<indicator::Model>, Error> {
        yield_point().await;
        let catalogue = self
            .indicators
            .get_or_try_init(|| async {
                let rows = indicator::Entity::find().all(&self.db).await?;
                Ok::<_, Error>(rows.into_iter().map(|i| (i.code.clone(), i)).collect())
            })
            .await?;
        Ok(catalogue.get(code).cloned())
    }

    /// The entities of one `_entities` field (`name`, its response key); the first call
    /// reads the keys with `keys` and loads them all.
    pub async fn entity_batch(
        &self,
        name: &str,
        keys: impl FnOnce() -> Result<EntityKeys, Error>,
    ) -> Result<Arc<EntityBatch>, Error> {
        let cell = {
            let mut cells = self
                .entities
                .lock()
                .map_err(|_| Error::Internal("entity batches poisoned".to_owned()))?;
            cells.entry(name.to_owned()).or_default().clone()
        };
        cell.get_or_init(|| async {
            let keys = keys()?;
            Ok(Arc::new(EntityBatch::load(&self.db, keys).await?))
        })
        .await
        .clone()
    }
}

/// The keys named in one `_entities` field's representations.
#[derive(Debug, Default)]
pub struct EntityKeys {
    pub school_urns: Vec<i32>,
    pub organisation_ids: Vec<i32>,
    /// Where each entity, as `(type name, key)`, stands in the representations, in order.
    pub positions: HashMap<(String, String), VecDeque<usize>>,
}

/// The schools and organisations one `_entities` field asks for. Schools load when the
/// batch is made (one query) and form one [`SchoolPage`], so their LAs and figures load
/// together too; organisations load on first use (one query).
pub struct EntityBatch {
    page: Arc<SchoolPage>,
    schools: HashMap<i32, school::Model>,
    organisations: OrganisationSet,
    positions: Mutex<HashMap<(String, String), VecDeque<usize>>>,
}

impl EntityBatch {
    async fn load(db: &DatabaseConnection, keys: EntityKeys) -> Result<EntityBatch, Error> {
        let rows = if keys.school_urns.is_empty() {
            Vec::new()
        } else {
            school::Entity::find()
                .filter(school::Column::Urn.is_in(keys.school_urns))
                .order_by_asc(school::Column::Urn)
                .all(db)
                .await?
        };
        Ok(EntityBatch {
            page: SchoolPage::new(&rows),
            schools: rows.into_iter().map(|s| (s.urn, s)).collect(),
            organisations: OrganisationSet::new(keys.organisation_ids),
            positions: Mutex::new(keys.positions),
        })
    }

    /// The position in the representations of the next entity resolved for this type
    /// and key. A key named twice is resolved twice, to the same answer, so which of the
    /// two takes which position does not matter.
    pub fn claim_position(&self, typename: &str, key: &str) -> Option<usize> {
        let mut positions = self.positions.lock().ok()?;
        positions
            .get_mut(&(typename.to_owned(), key.to_owned()))?
            .pop_front()
    }

    /// A school of the batch, with the page it shares with the others; `None` when the
    /// register has no such URN.
    pub fn school(&self, urn: i32) -> Option<(Arc<SchoolPage>, school::Model)> {
        let model = self.schools.get(&urn)?.clone();
        Some((self.page.clone(), model))
    }

    /// An organisation of the batch; `None` when there is no such id.
    pub async fn organisation(
        &self,
        db: &DatabaseConnection,
        id: i32,
    ) -> Result<Option<organisation::Model>, Error> {
        yield_point().await;
        self.organisations.get(db, id).await
    }
}

/// Which figures a nested `School.observations` asked for. Two different questions in
/// one document (e.g. two aliases) are two keys, each loaded once for the page.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FigureSelection {
    /// Sorted; `None` for every indicator.
    pub indicators: Option<Vec<String>>,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    /// Sorted and de-duplicated.
    pub groups: Vec<PupilGroup>,
}

type FiguresByUrn = HashMap<i32, Vec<observation::Model>>;

/// The organisations one list refers to (schools' LAs and trusts, audit events'
/// organisations), loaded together the first time any row of the list needs one.
pub struct OrganisationSet {
    ids: Vec<i32>,
    rows: OnceCell<HashMap<i32, organisation::Model>>,
}

impl OrganisationSet {
    pub fn new(ids: impl IntoIterator<Item = i32>) -> Self {
        let mut ids: Vec<i32> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        OrganisationSet {
            ids,
            rows: OnceCell::new(),
        }
    }

    /// One organisation of the set; the first call loads them all.
    pub async fn get(
        &self,
        db: &DatabaseConnection,
        id: i32,
    ) -> Result<Option<organisation::Model>, Error> {
        yield_point().await;
        let rows = self
            .rows
            .get_or_try_init(|| async {
                let rows = organisation::Entity::find()
                    .filter(organisation::Column::Id.is_in(self.ids.iter().copied()))
                    .all(db)
                    .await?;
                Ok::<_, Error>(rows.into_iter().map(|o| (o.id, o)).collect())
            })
            .await?;
        Ok(rows.get(&id).cloned())
    }
}

/// The schools of one list, shared by their nodes.
pub struct SchoolPage {
    schools: Vec<school::Model>,
    organisations: OrganisationSet,
    figures: Mutex<HashMap<FigureSelection, Arc<OnceCell<FiguresByUrn>>>>,
}

impl SchoolPage {
    pub fn new(schools: &[school::Model]) -> Arc<Self> {
        let organisation_ids = schools
            .iter()
            .flat_map(|s| [Some(s.la_id), s.trust_id, s.diocese_id])
            .flatten();
        Arc::new(SchoolPage {
            schools: schools.to_vec(),
            organisations: OrganisationSet::new(organisation_ids),
            figures: Mutex::new(HashMap::new()),
        })
    }

    /// The LA, trust or diocese of any school on the page.
    pub async fn organisation(
        &self,
        db: &DatabaseConnection,
        id: i32,
    ) -> Result<Option<organisation::Model>, Error> {
        yield_point().await;
        self.organisations.get(db, id).await
    }

    /// `SCHOOL`-level figures of one school on the page, ordered by indicator, group and
    /// period; the first call for a selection loads it for every school on the page.
    pub async fn figures(
        &self,
        db: &DatabaseConnection,
        access: &Access,
        selection: &FigureSelection,
        urn: i32,
    ) -> Result<Vec<observation::Model>, Error> {
        yield_point().await;
        let cell = {
            let mut cells = self
                .figures
                .lock()
                .map_err(|_| Error::Internal("figure cache poisoned".to_owned()))?;
            cells.entry(selection.clone()).or_default().clone()
        };
        let by_urn = cell
            .get_or_try_init(|| async {
                // The caller checked this school; siblings out of SCHOOL scope are left
                // out of the batch, so their figures never reach memory either.
                let urns = self
                    .schools
                    .iter()
                    .filter(|s| access.covers_school(AccessLevel::School, s))
                    .map(|s| s.urn);
                let query = figures_query(selection)
                    .filter(observation::Column::SchoolUrn.is_in(urns))
                    .filter(
                        observation::Column::GeographicLevel.eq(GeographicLevel::School.as_str()),
                    )
                    .order_by_asc(observation::Column::IndicatorCode)
                    .order_by_asc(observation::Column::PupilGroup)
                    .order_by_asc(observation::Column::Period);
                let rows = observation::all(db, query).await?;
                let mut by_urn: FiguresByUrn = HashMap::new();
                for row in rows {
                    if let Some(urn) = row.school_urn {
                        by_urn.entry(urn).or_default().push(row);
                    }
                }
                Ok::<_, Error>(by_urn)
            })
            .await?;
        Ok(by_urn.get(&urn).cloned().unwrap_or_default())
    }
}

/// The observations of one list: the schools they describe load together.
pub struct ObservationPage {
    urns: Vec<i32>,
    schools: OnceCell<(Arc<SchoolPage>, HashMap<i32, school::Model>)>,
}

impl ObservationPage {
    pub fn new(rows: &[observation::Model]) -> Arc<Self> {
        let mut urns: Vec<i32> = rows.iter().filter_map(|o| o.school_urn).collect();
        urns.sort_unstable();
        urns.dedup();
        Arc::new(ObservationPage {
            urns,
            schools: OnceCell::new(),
        })
    }

    /// The school a `SCHOOL`-level figure describes, with the page its siblings share.
    pub async fn school(
        &self,
        db: &DatabaseConnection,
        urn: i32,
    ) -> Result<Option<(Arc<SchoolPage>, school::Model)>, Error> {
        yield_point().await;
        let (page, schools) = self
            .schools
            .get_or_try_init(|| async {
                let rows = school::Entity::find()
                    .filter(school::Column::Urn.is_in(self.urns.iter().copied()))
                    .all(db)
                    .await?;
                let page = SchoolPage::new(&rows);
                Ok::<_, Error>((page, rows.into_iter().map(|s| (s.urn, s)).collect()))
            })
            .await?;
        Ok(schools.get(&urn).map(|s| (page.clone(), s.clone())))
    }
}

/// Observations matching a validated selection (indicators, periods, groups).
pub fn figures_query(selection: &FigureSelection) -> sea_orm::Select<observation::Entity> {
    let mut query = observation::Entity::find();
    if let Some(indicators) = &selection.indicators {
        query = query.filter(observation::Column::IndicatorCode.is_in(indicators.iter().cloned()));
    }
    if let Some(from) = &selection.period_from {
        query = query.filter(observation::Column::Period.gte(from.clone()));
    }
    if let Some(to) = &selection.period_to {
        query = query.filter(observation::Column::Period.lte(to.clone()));
    }
    if selection.groups.len() < PupilGroup::ALL.len() {
        query = query.filter(
            observation::Column::PupilGroup.is_in(selection.groups.iter().map(|g| g.as_str())),
        );
    }
    query
}

/// `SELECT … FROM observation JOIN school` over school figures, with the sums of their
/// numerators and denominators (as `numerator`, `denominator`): the start of every
/// query that adds school figures up by some grouping of schools (`aggregate`, and what
/// a caller sees of an area for disclosure control). The caller adds its filters,
/// groupings and further columns.
pub fn school_figure_sums() -> sea_orm::sea_query::SelectStatement {
    use observation::Column as O;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query};
    let mut query = Query::select();
    query
        .expr_as(
            Func::sum(Expr::col((observation::Entity, O::Numerator))),
            Alias::new("numerator"),
        )
        .expr_as(
            Func::sum(Expr::col((observation::Entity, O::Denominator))),
            Alias::new("denominator"),
        )
        .from(observation::Entity)
        .inner_join(
            school::Entity,
            Expr::col((school::Entity, school::Column::Urn))
                .equals((observation::Entity, O::SchoolUrn)),
        )
        .and_where(O::GeographicLevel.eq(GeographicLevel::School.as_str()));
    query
}
