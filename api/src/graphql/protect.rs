//! Disclosure control for stored area figures (LA, region and national observations):
//! the read side of `disclosure`, shared by every path that returns them
//! (`observations`, `timeSeries`, `disadvantageGap`, `changes`, signals, self-evaluation
//! key figures).
//!
//! A returned figure is judged inside its whole *table*: every stored figure of the same
//! indicator and period at every level (England, the regions, their LAs), in the pupil
//! groups that add up with it (`ALL` = `DISADVANTAGED` + `NOT_DISADVANTAGED`; any other
//! group on its own). The table is loaded whatever the request asked for, so a figure is
//! treated the same way on every request and through every field.
//!
//! What the caller already sees counts: figures of schools in its SCHOOL scope are
//! summed per LA and region and taken off the area figures before the thresholds apply,
//! and an area whose every school the caller sees is known to it (and shown).

use std::collections::{BTreeSet, HashMap, HashSet};

use entities::{observation, organisation, school};
use sea_orm::sea_query::{Alias, Expr, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};

use super::loaders::school_figure_sums;
use super::{Loaders, RequestContext};
use crate::access::Access;
use crate::disclosure::{self, Cell, Counts, Relation, Table};
use crate::domain::{AccessLevel, ENGLAND_CODE, GeographicLevel, PupilGroup, Unit};
use crate::error::Result;

/// Ids of the rows that must be withheld from this caller. `SCHOOL` rows are never in
/// it: they are only ever fetched within the caller's SCHOOL scope, where figures are
/// unsuppressed by design.
pub async fn withheld_figures(
    rc: &RequestContext,
    loaders: &Loaders,
    rows: &[observation::Model],
) -> Result<HashSet<i64>> {
    let wanted: Vec<&observation::Model> = rows
        .iter()
        .filter(|r| r.geographic_level != GeographicLevel::School.as_str())
        .collect();
    if wanted.is_empty() {
        return Ok(HashSet::new());
    }
    let mut families = BTreeSet::new();
    for row in &wanted {
        families.insert(Family {
            indicator: row.indicator_code.clone(),
            period: row.period.clone(),
            groups: linked_groups(&row.pupil_group),
        });
    }
    let indicators: BTreeSet<&str> = families.iter().map(|f| f.indicator.as_str()).collect();
    let periods: BTreeSet<&str> = families.iter().map(|f| f.period.as_str()).collect();
    let groups: BTreeSet<&str> = families
        .iter()
        .flat_map(|f| f.groups.iter().map(|g| g.as_str()))
        .collect();

    let stored = observation::all(
        &rc.db,
        observation::Entity::find()
            // Named levels rather than "not SCHOOL", so the key index (indicator,
            // period, level, …) serves the read without visiting school rows.
            .filter(observation::Column::GeographicLevel.is_in([
                GeographicLevel::La.as_str(),
                GeographicLevel::Region.as_str(),
                GeographicLevel::National.as_str(),
            ]))
            .filter(observation::Column::IndicatorCode.is_in(indicators.iter().copied()))
            .filter(observation::Column::Period.is_in(periods.iter().copied()))
            .filter(observation::Column::PupilGroup.is_in(groups.iter().copied())),
    )
    .await?;
    let by_key: HashMap<FigureKey<'_>, &observation::Model> =
        stored.iter().map(|row| (FigureKey::of(row), row)).collect();
    let geography = Geography::load(loaders).await?;
    let seen = Seen::load(rc, &geography, &indicators, &periods, &groups).await?;

    // One hierarchy for every table of the request; an area with a stored figure that
    // the hierarchy does not place stands alone (an absent cell in tables without it).
    let unplaced: Vec<(GeographicLevel, &str)> = stored
        .iter()
        .filter_map(|r| {
            Some((
                GeographicLevel::parse(&r.geographic_level)?,
                r.area_code.as_str(),
            ))
        })
        .collect();
    let areas = geography.areas(&unplaced);
    let index: HashMap<(GeographicLevel, &str), usize> = areas
        .iter()
        .enumerate()
        .map(|(i, a)| ((a.level, a.code.as_str()), i))
        .collect();
    let wanted_ids: HashSet<i64> = wanted.iter().map(|r| r.id).collect();
    let mut withheld = HashSet::new();
    for family in &families {
        let unit = match loaders.indicator(&family.indicator).await? {
            Some(indicator) => Unit::parse(&indicator.unit).unwrap_or(Unit::Count),
            None => Unit::Count,
        };
        let mut table = Table::default();
        let mut ids = Vec::new();
        for area in &areas {
            for group in &family.groups {
                let key = FigureKey {
                    indicator: &family.indicator,
                    period: &family.period,
                    level: area.level.as_str(),
                    area: &area.code,
                    group: group.as_str(),
                };
                let (cell, id) = match by_key.get(&key) {
                    Some(row) => {
                        let counts = Counts {
                            numerator: row.numerator,
                            denominator: row.denominator,
                            schools: row.school_count.map(i64::from),
                        };
                        let cell = if area.covered(rc.access()) {
                            Cell {
                                status: disclosure::Status::Known,
                                ..Cell::figure(unit, counts)
                            }
                        } else {
                            let own = seen.of(&family.indicator, &family.period, group, area);
                            Cell::figure(unit, counts.less(&own))
                        };
                        (cell, Some(row.id))
                    }
                    None => (Cell::absent(unit), None),
                };
                table.cells.push(cell);
                ids.push(id);
            }
        }
        let width = family.groups.len();
        for (a, area) in areas.iter().enumerate() {
            let children: Vec<usize> = area
                .children
                .iter()
                .filter_map(|child| index.get(&(child.0, child.1.as_str())).copied())
                .collect();
            if !children.is_empty() {
                for g in 0..width {
                    table.relations.push(Relation {
                        total: a * width + g,
                        parts: children.iter().map(|c| c * width + g).collect(),
                    });
                }
            }
            if width == 3 {
                table.relations.push(Relation {
                    total: a * width,
                    parts: vec![a * width + 1, a * width + 2],
                });
            }
        }
        disclosure::protect(&mut table, &rc.disclosure);
        withheld.extend(
            table
                .cells
                .iter()
                .zip(&ids)
                .filter(|(cell, _)| cell.withheld())
                .filter_map(|(_, id)| *id)
                .filter(|id| wanted_ids.contains(id)),
        );
    }
    Ok(withheld)
}

/// One protected table: an indicator, a period and the pupil groups that add up.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Family {
    indicator: String,
    period: String,
    groups: Vec<PupilGroup>,
}

/// The groups a group adds up with: the disadvantaged split, or itself alone.
fn linked_groups(group: &str) -> Vec<PupilGroup> {
    match PupilGroup::parse(group) {
        Some(PupilGroup::All | PupilGroup::Disadvantaged | PupilGroup::NotDisadvantaged) => vec![
            PupilGroup::All,
            PupilGroup::Disadvantaged,
            PupilGroup::NotDisadvantaged,
        ],
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FigureKey<'a> {
    indicator: &'a str,
    period: &'a str,
    level: &'a str,
    area: &'a str,
    group: &'a str,
}

impl<'a> FigureKey<'a> {
    fn of(row: &'a observation::Model) -> Self {
        FigureKey {
            indicator: &row.indicator_code,
            period: &row.period,
            level: &row.geographic_level,
            area: &row.area_code,
            group: &row.pupil_group,
        }
    }
}

/// An area of the hierarchy and the areas whose figures add up to its own.
#[derive(Clone, Debug)]
struct Area {
    level: GeographicLevel,
    code: String,
    children: Vec<(GeographicLevel, String)>,
    /// The LA, for LA areas (to ask the policy whether the caller covers it).
    la: Option<organisation::Model>,
    /// The region the area lies in (its own code for a region).
    region: Option<String>,
}

impl Area {
    /// Whether the caller holds SCHOOL scope over every school of the area.
    fn covered(&self, access: &Access) -> bool {
        match (self.level, &self.region) {
            (GeographicLevel::La, Some(region)) => access.covers_area(self.la.as_ref(), region),
            (GeographicLevel::Region, Some(region)) => access.covers_area(None, region),
            _ => false,
        }
    }
}

/// England, its regions and their LAs, as far as they have schools: an area with no
/// school in the register adds nothing to its parent, and anyone can know that.
struct Geography {
    /// Regions with schools, sorted, and their LAs with schools, sorted by code.
    regions: Vec<(String, Vec<organisation::Model>)>,
    la_codes: HashMap<i32, String>,
}

impl Geography {
    async fn load(loaders: &Loaders) -> Result<Geography> {
        let mut regions = Vec::new();
        let mut la_codes = HashMap::new();
        for region in loaders.region_codes().await? {
            let mut las = Vec::new();
            for la in loaders.local_authorities(&region).await? {
                if loaders.la_has_schools(la.id).await? {
                    las.push(la);
                }
            }
            for la in &las {
                la_codes.insert(la.id, la.code.clone());
            }
            if !las.is_empty() {
                regions.push((region, las));
            }
        }
        Ok(Geography { regions, la_codes })
    }

    /// The areas of one table in canonical order (England, regions, LAs), plus any
    /// area with a stored figure that the hierarchy does not place, on its own.
    fn areas(&self, stored: &[(GeographicLevel, &str)]) -> Vec<Area> {
        let mut areas = vec![Area {
            level: GeographicLevel::National,
            code: ENGLAND_CODE.to_owned(),
            children: self
                .regions
                .iter()
                .map(|(r, _)| (GeographicLevel::Region, r.clone()))
                .collect(),
            la: None,
            region: None,
        }];
        for (region, las) in &self.regions {
            areas.push(Area {
                level: GeographicLevel::Region,
                code: region.clone(),
                children: las
                    .iter()
                    .map(|la| (GeographicLevel::La, la.code.clone()))
                    .collect(),
                la: None,
                region: Some(region.clone()),
            });
        }
        for (region, las) in &self.regions {
            for la in las {
                areas.push(Area {
                    level: GeographicLevel::La,
                    code: la.code.clone(),
                    children: Vec::new(),
                    la: Some(la.clone()),
                    region: Some(region.clone()),
                });
            }
        }
        let placed: HashSet<(GeographicLevel, String)> =
            areas.iter().map(|a| (a.level, a.code.clone())).collect();
        let mut unplaced: BTreeSet<(GeographicLevel, &str)> = BTreeSet::new();
        for &(level, code) in stored {
            if !placed.contains(&(level, code.to_owned())) {
                unplaced.insert((level, code));
            }
        }
        areas.extend(unplaced.into_iter().map(|(level, code)| Area {
            level,
            code: code.to_owned(),
            children: Vec::new(),
            la: None,
            region: None,
        }));
        areas
    }
}

/// The caller's own knowledge: sums of the school figures in its SCHOOL scope, by
/// indicator, period, group and LA (regions and England are sums of those).
#[derive(Default)]
struct Seen {
    by_la: HashMap<(String, String, String, String), Counts>,
    by_region: HashMap<(String, String, String, String), Counts>,
    national: HashMap<(String, String, String), Counts>,
}

#[derive(FromQueryResult)]
struct SeenRow {
    indicator_code: String,
    period: String,
    pupil_group: String,
    la_id: Option<i32>,
    region_code: Option<String>,
    numerator: Option<f64>,
    denominator: Option<f64>,
    schools: i64,
}

impl Seen {
    async fn load(
        rc: &RequestContext,
        geography: &Geography,
        indicators: &BTreeSet<&str>,
        periods: &BTreeSet<&str>,
        groups: &BTreeSet<&str>,
    ) -> Result<Seen> {
        let access = rc.access();
        if !access.sees_any_school() {
            return Ok(Seen::default());
        }
        use observation::Column as O;
        use school::Column as S;
        let mut query = school_figure_sums();
        query
            .column((observation::Entity, O::IndicatorCode))
            .column((observation::Entity, O::Period))
            .column((observation::Entity, O::PupilGroup))
            .column((school::Entity, S::LaId))
            .column((school::Entity, S::RegionCode))
            .expr_as(
                Func::count(Expr::col((observation::Entity, O::SchoolUrn))),
                Alias::new("schools"),
            )
            .and_where(O::IndicatorCode.is_in(indicators.iter().copied()))
            .and_where(O::Period.is_in(periods.iter().copied()))
            .and_where(O::PupilGroup.is_in(groups.iter().copied()))
            .and_where(access.visible_schools(AccessLevel::School))
            .group_by_col((observation::Entity, O::IndicatorCode))
            .group_by_col((observation::Entity, O::Period))
            .group_by_col((observation::Entity, O::PupilGroup))
            .group_by_col((school::Entity, S::LaId))
            .group_by_col((school::Entity, S::RegionCode));
        let statement = rc.db.get_database_backend().build(&query);
        let mut seen = Seen::default();
        for row in rc.db.query_all_raw(statement).await? {
            let row = SeenRow::from_query_result(&row, "")?;
            let counts = Counts {
                numerator: row.numerator,
                denominator: row.denominator,
                schools: Some(row.schools),
            };
            let figure = (row.indicator_code, row.period, row.pupil_group);
            seen.national
                .entry(figure.clone())
                .or_default()
                .add(&counts);
            if let Some(region) = row.region_code {
                let key = (figure.0.clone(), figure.1.clone(), figure.2.clone(), region);
                seen.by_region.entry(key).or_default().add(&counts);
            }
            if let Some(code) = row.la_id.and_then(|id| geography.la_codes.get(&id)) {
                let key = (figure.0, figure.1, figure.2, code.clone());
                seen.by_la.entry(key).or_default().add(&counts);
            }
        }
        Ok(seen)
    }

    /// What the caller sees of one area figure (nothing, for most callers).
    fn of(&self, indicator: &str, period: &str, group: &PupilGroup, area: &Area) -> Counts {
        let figure = (
            indicator.to_owned(),
            period.to_owned(),
            group.as_str().to_owned(),
        );
        let found = match area.level {
            GeographicLevel::National => self.national.get(&figure),
            GeographicLevel::Region => {
                self.by_region
                    .get(&(figure.0, figure.1, figure.2, area.code.clone()))
            }
            GeographicLevel::La => {
                self.by_la
                    .get(&(figure.0, figure.1, figure.2, area.code.clone()))
            }
            GeographicLevel::School => None,
        };
        found.copied().unwrap_or(Counts {
            numerator: None,
            denominator: None,
            schools: Some(0),
        })
    }
}
