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
//!
//! Tables are read and judged once per version of the figures, not per request: see
//! [`Protection`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use entities::{observation, organisation, school};
use sea_orm::sea_query::{Alias, Expr, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};

use super::loaders::school_figure_sums;
use super::{Loaders, RequestContext};
use crate::access::Access;
use crate::config::Disclosure;
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
    let mut by_family: BTreeMap<Family, Vec<&observation::Model>> = BTreeMap::new();
    for row in rows {
        if row.geographic_level == GeographicLevel::School.as_str() {
            continue;
        }
        let family = Family {
            indicator: row.indicator_code.clone(),
            period: row.period.clone(),
            groups: linked_groups(&row.pupil_group),
        };
        by_family.entry(family).or_default().push(row);
    }
    if by_family.is_empty() {
        return Ok(HashSet::new());
    }

    let version = loaders.figures_version().await?;
    let access = rc.access();
    // What the caller sees of school figures shapes its tables; callers who see none
    // all meet the same tables and share their decisions.
    let viewer = access
        .sees_any_school()
        .then(|| access.fingerprint().to_owned());
    let key = |family: &Family| TableKey {
        version,
        family: family.clone(),
        viewer: viewer.clone(),
        min_count: rc.protection.rules.min_count.to_bits(),
        min_schools: rc.protection.rules.min_schools,
    };
    let mut decisions: HashMap<&Family, Arc<Decision>> = HashMap::new();
    let mut missing = Vec::new();
    for (family, rows) in &by_family {
        match rc.protection.recall(&key(family)) {
            Some(decision) if rows.iter().all(|row| decision.judged(row).is_some()) => {
                decisions.insert(family, decision);
            }
            _ => missing.push(family),
        }
    }
    if !missing.is_empty() {
        let decided = decide_tables(rc, loaders, &missing).await?;
        // Remembered only if no figure changed while the tables were read: otherwise
        // the decision could belong to a newer version than the one it is filed under.
        let unchanged = crate::sync::store::head(&rc.db).await? == version;
        for (family, decision) in missing.into_iter().zip(decided) {
            let decision = Arc::new(decision);
            if unchanged {
                rc.protection.remember(key(family), decision.clone());
            }
            decisions.insert(family, decision);
        }
    }

    let mut withheld = HashSet::new();
    for (family, rows) in &by_family {
        let decision = &decisions[family];
        // A row that is not the figure its table judged (written since) fails closed.
        withheld.extend(
            rows.iter()
                .filter(|row| decision.judged(row) != Some(false))
                .map(|row| row.id),
        );
    }
    Ok(withheld)
}

/// Disclosure control as this instance applies it: the rules, and the decisions over
/// whole tables it has taken, remembered so that the many requests meeting the same
/// tables (every dashboard of one LA, every analyst) neither read them
/// nor the caller's own figures again.
///
/// A decision is filed under the version of the figures it was taken on (the
/// change-feed head, which every figure write moves in its own transaction, whichever
/// instance commits it), the caller's scope fingerprint where the caller sees school
/// figures (what it sees changes its tables; the register those scopes are resolved
/// against is written only by the seed), and the thresholds. So a write makes every
/// remembered decision unreachable at once, and a request never applies a decision
/// taken on other figures than it reads. As a second check each returned figure must
/// carry the values its decision judged, or the table is judged again.
#[derive(Clone)]
pub struct Protection {
    pub rules: Disclosure,
    remembered: moka::sync::Cache<TableKey, Arc<Decision>>,
}

impl Protection {
    pub fn new(rules: Disclosure) -> Self {
        Protection {
            rules,
            remembered: moka::sync::Cache::builder()
                .weigher(|_, decision: &Arc<Decision>| {
                    decision.cells.len().try_into().unwrap_or(u32::MAX)
                })
                // About 500,000 judged figures (some 40 MB): a thousand tables of a
                // national hierarchy.
                .max_capacity(500_000)
                .build(),
        }
    }

    fn recall(&self, key: &TableKey) -> Option<Arc<Decision>> {
        self.remembered.get(key)
    }

    fn remember(&self, key: TableKey, decision: Arc<Decision>) {
        self.remembered.insert(key, decision);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TableKey {
    version: i64,
    family: Family,
    /// The caller's scope fingerprint, for callers who see school figures.
    viewer: Option<String>,
    min_count: u64,
    min_schools: i64,
}

/// The outcome of one table: each stored figure with the values judged.
struct Decision {
    cells: HashMap<(GeographicLevel, String, PupilGroup), Judged>,
}

struct Judged {
    numerator: Option<f64>,
    denominator: Option<f64>,
    schools: Option<i32>,
    withheld: bool,
}

impl Decision {
    /// Whether `row` is withheld, if `row` is the figure this decision judged.
    fn judged(&self, row: &observation::Model) -> Option<bool> {
        let level = GeographicLevel::parse(&row.geographic_level)?;
        let group = PupilGroup::parse(&row.pupil_group)?;
        let cell = self.cells.get(&(level, row.area_code.clone(), group))?;
        (cell.numerator == row.numerator
            && cell.denominator == row.denominator
            && cell.schools == row.school_count)
            .then_some(cell.withheld)
    }
}

/// Reads and judges the tables of `families`, in order.
async fn decide_tables(
    rc: &RequestContext,
    loaders: &Loaders,
    families: &[&Family],
) -> Result<Vec<Decision>> {
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
    let mut decisions = Vec::with_capacity(families.len());
    for family in families {
        let unit = match loaders.indicator(&family.indicator).await? {
            Some(indicator) => Unit::parse(&indicator.unit).unwrap_or(Unit::Count),
            None => Unit::Count,
        };
        let mut table = Table::default();
        let mut figures = Vec::new();
        for area in &areas {
            for group in &family.groups {
                let key = FigureKey {
                    indicator: &family.indicator,
                    period: &family.period,
                    level: area.level.as_str(),
                    area: &area.code,
                    group: group.as_str(),
                };
                let cell = match by_key.get(&key) {
                    Some(row) => {
                        let counts = Counts {
                            numerator: row.numerator,
                            denominator: row.denominator,
                            schools: row.school_count.map(i64::from),
                        };
                        figures.push(Some((area, *group, *row)));
                        if area.covered(rc.access()) {
                            Cell {
                                status: disclosure::Status::Known,
                                ..Cell::figure(unit, counts)
                            }
                        } else {
                            let own = seen.of(&family.indicator, &family.period, group, area);
                            Cell::figure(unit, counts.less(&own))
                        }
                    }
                    None => {
                        figures.push(None);
                        Cell::absent(unit)
                    }
                };
                table.cells.push(cell);
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
        disclosure::protect(&mut table, &rc.protection.rules);
        let cells = table
            .cells
            .iter()
            .zip(figures)
            .filter_map(|(cell, figure)| {
                let (area, group, row) = figure?;
                Some((
                    (area.level, area.code.clone(), group),
                    Judged {
                        numerator: row.numerator,
                        denominator: row.denominator,
                        schools: row.school_count,
                        withheld: cell.withheld(),
                    },
                ))
            })
            .collect();
        decisions.push(Decision { cells });
    }
    Ok(decisions)
}

/// One protected table: an indicator, a period and the pupil groups that add up.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
