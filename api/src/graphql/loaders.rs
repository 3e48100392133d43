//! Per-request DataLoaders: every nested field that reads the database goes through
//! one of these, so sibling fields across a page of results share one `IN (…)` query.
//!
//! Each loader returns `Arc<Error>`-wrapped failures because async-graphql clones the
//! error to every field that waited on the batch.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entities::{indicator, observation, organisation, region, school};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::domain::{GeographicLevel, OrganisationKind, PupilGroup};
use crate::error::Error;

/// The loaders of one request.
pub struct Loaders {
    pub regions: DataLoader<RegionLoader>,
    pub organisations: DataLoader<OrganisationLoader>,
    pub local_authorities: DataLoader<LocalAuthoritiesLoader>,
    pub indicators: DataLoader<IndicatorLoader>,
    pub schools: DataLoader<SchoolLoader>,
    pub school_figures: DataLoader<SchoolFiguresLoader>,
}

impl Loaders {
    pub fn new(db: DatabaseConnection) -> Self {
        Loaders {
            regions: DataLoader::new(RegionLoader(db.clone()), tokio::spawn),
            organisations: DataLoader::new(OrganisationLoader(db.clone()), tokio::spawn),
            local_authorities: DataLoader::new(LocalAuthoritiesLoader(db.clone()), tokio::spawn),
            indicators: DataLoader::new(IndicatorLoader(db.clone()), tokio::spawn),
            schools: DataLoader::new(SchoolLoader(db.clone()), tokio::spawn),
            school_figures: DataLoader::new(SchoolFiguresLoader(db), tokio::spawn),
        }
    }
}

type LoadResult<K, V> = Result<HashMap<K, V>, Arc<Error>>;

fn db_error(err: sea_orm::DbErr) -> Arc<Error> {
    Arc::new(Error::from(err))
}

pub struct RegionLoader(DatabaseConnection);

impl Loader<String> for RegionLoader {
    type Value = region::Model;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[String]) -> LoadResult<String, region::Model> {
        let rows = region::Entity::find()
            .filter(region::Column::Code.is_in(keys.iter().cloned()))
            .all(&self.0)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (r.code.clone(), r)).collect())
    }
}

pub struct OrganisationLoader(DatabaseConnection);

impl Loader<i32> for OrganisationLoader {
    type Value = organisation::Model;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[i32]) -> LoadResult<i32, organisation::Model> {
        let rows = organisation::Entity::find()
            .filter(organisation::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|o| (o.id, o)).collect())
    }
}

/// The local authorities of each region, by region code.
pub struct LocalAuthoritiesLoader(DatabaseConnection);

impl Loader<String> for LocalAuthoritiesLoader {
    type Value = Vec<organisation::Model>;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[String]) -> LoadResult<String, Vec<organisation::Model>> {
        let rows = organisation::Entity::find()
            .filter(organisation::Column::Kind.eq(OrganisationKind::LocalAuthority.as_str()))
            .filter(organisation::Column::RegionCode.is_in(keys.iter().cloned()))
            .order_by_asc(organisation::Column::Code)
            .all(&self.0)
            .await
            .map_err(db_error)?;
        let mut by_region: HashMap<String, Vec<organisation::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for org in rows {
            if let Some(list) = org.region_code.as_ref().and_then(|code| by_region.get_mut(code)) {
                list.push(org);
            }
        }
        Ok(by_region)
    }
}

pub struct IndicatorLoader(DatabaseConnection);

impl Loader<String> for IndicatorLoader {
    type Value = indicator::Model;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[String]) -> LoadResult<String, indicator::Model> {
        let rows = indicator::Entity::find()
            .filter(indicator::Column::Code.is_in(keys.iter().cloned()))
            .all(&self.0)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|i| (i.code.clone(), i)).collect())
    }
}

pub struct SchoolLoader(DatabaseConnection);

impl Loader<i32> for SchoolLoader {
    type Value = school::Model;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[i32]) -> LoadResult<i32, school::Model> {
        let rows = school::Entity::find()
            .filter(school::Column::Urn.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|s| (s.urn, s)).collect())
    }
}

/// Which figures a nested `School.observations` asked for. Part of the loader key, so
/// every school in a page that asks the same question shares one query, and two
/// different questions in one document get one query each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FigureSelection {
    /// Sorted; `None` for every indicator.
    pub indicators: Option<Vec<String>>,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    /// Sorted and de-duplicated.
    pub groups: Vec<PupilGroup>,
}

/// `SCHOOL`-level observations per (selection, URN), ordered by indicator, group and period.
pub struct SchoolFiguresLoader(DatabaseConnection);

impl Loader<(FigureSelection, i32)> for SchoolFiguresLoader {
    type Value = Vec<observation::Model>;
    type Error = Arc<Error>;

    async fn load(&self, keys: &[(FigureSelection, i32)]) -> LoadResult<(FigureSelection, i32), Vec<observation::Model>> {
        let mut by_selection: HashMap<&FigureSelection, Vec<i32>> = HashMap::new();
        for (selection, urn) in keys {
            by_selection.entry(selection).or_default().push(*urn);
        }
        let mut out: HashMap<(FigureSelection, i32), Vec<observation::Model>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for (selection, urns) in by_selection {
            let mut query = observation::Entity::find()
                .filter(observation::Column::SchoolUrn.is_in(urns))
                .filter(observation::Column::GeographicLevel.eq(GeographicLevel::School.as_str()))
                .filter(observation::Column::PupilGroup.is_in(selection.groups.iter().map(|g| g.as_str())));
            if let Some(indicators) = &selection.indicators {
                query = query.filter(observation::Column::IndicatorCode.is_in(indicators.iter().cloned()));
            }
            if let Some(from) = &selection.period_from {
                query = query.filter(observation::Column::Period.gte(from.clone()));
            }
            if let Some(to) = &selection.period_to {
                query = query.filter(observation::Column::Period.lte(to.clone()));
            }
            let rows = query
                .order_by_asc(observation::Column::IndicatorCode)
                .order_by_asc(observation::Column::PupilGroup)
                .order_by_asc(observation::Column::Period)
                .all(&self.0)
                .await
                .map_err(db_error)?;
            for row in rows {
                if let Some(urn) = row.school_urn
                    && let Some(list) = out.get_mut(&(selection.clone(), urn))
                {
                    list.push(row);
                }
            }
        }
        Ok(out)
    }
}
