//! Disclosure control for stored area figures (LA, region, national observations).
//!
//! A returned area figure is judged together with its *family*: the figures it can be
//! added up with to reach a total the caller can also read. That is its siblings in the
//! same geography (the other LAs of its region, the other regions of England) for the
//! same indicator, period and pupil group, and its partner in the disadvantaged / not
//! disadvantaged split of all pupils. The family is loaded in one query whatever the
//! request asked for, so a figure is withheld or shown the same way on every request
//! (see `disclosure`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use entities::observation;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{Loaders, RequestContext};
use crate::access::Access;
use crate::disclosure::{self, Cell};
use crate::domain::{GeographicLevel, PupilGroup, Unit};
use crate::error::Result;

/// Ids of the rows that must be withheld from this caller. `SCHOOL` rows are never in
/// it: they are only ever fetched within the caller's SCHOOL scope, where figures are
/// unsuppressed by design.
pub async fn withheld_figures(
    rc: &RequestContext,
    loaders: &Loaders,
    rows: &[observation::Model],
) -> Result<HashSet<i64>> {
    let area_rows: Vec<&observation::Model> = rows
        .iter()
        .filter(|r| r.geographic_level != GeographicLevel::School.as_str())
        .collect();
    if area_rows.is_empty() {
        return Ok(HashSet::new());
    }
    let access = rc.access();
    let mut indicators = BTreeSet::new();
    let mut periods = BTreeSet::new();
    let mut levels = BTreeSet::new();
    let mut groups = BTreeSet::new();
    let mut areas = BTreeSet::new();
    for row in &area_rows {
        indicators.insert(row.indicator_code.clone());
        periods.insert(row.period.clone());
        levels.insert(row.geographic_level.clone());
        groups.insert(row.pupil_group.clone());
        if let Some(partner) = PupilGroup::parse(&row.pupil_group).and_then(partner) {
            groups.insert(partner.as_str().to_owned());
        }
        areas.extend(siblings(loaders, &row.geographic_level, &row.area_code).await?);
    }
    let query = observation::Entity::find()
        .filter(observation::Column::GeographicLevel.is_in(levels))
        .filter(observation::Column::IndicatorCode.is_in(indicators))
        .filter(observation::Column::Period.is_in(periods))
        .filter(observation::Column::PupilGroup.is_in(groups))
        .filter(observation::Column::AreaCode.is_in(areas));
    let mut family = observation::all(&rc.db, query).await?;
    // Canonical order, so ties in "next-smallest" break the same way every time.
    family.sort_by(|a, b| key(a).cmp(&key(b)));

    let mut cells = Vec::with_capacity(family.len());
    for row in &family {
        cells.push(cell(access, loaders, row).await?);
    }
    let mut by_split: BTreeMap<(&str, &str, &str, &str), Vec<usize>> = BTreeMap::new();
    let mut by_geography: BTreeMap<(&str, &str, &str, &str, String), Vec<usize>> = BTreeMap::new();
    for (i, row) in family.iter().enumerate() {
        if matches!(
            PupilGroup::parse(&row.pupil_group),
            Some(PupilGroup::Disadvantaged | PupilGroup::NotDisadvantaged)
        ) {
            by_split
                .entry((
                    &row.indicator_code,
                    &row.period,
                    &row.geographic_level,
                    &row.area_code,
                ))
                .or_default()
                .push(i);
        }
        let parent = parent(loaders, &row.geographic_level, &row.area_code).await?;
        by_geography
            .entry((
                &row.indicator_code,
                &row.period,
                &row.geographic_level,
                &row.pupil_group,
                parent,
            ))
            .or_default()
            .push(i);
    }
    let breakdowns: Vec<Vec<usize>> = by_split
        .into_values()
        .chain(by_geography.into_values())
        .collect();
    disclosure::protect(&mut cells, &breakdowns, &rc.disclosure);

    let wanted: HashSet<i64> = area_rows.iter().map(|r| r.id).collect();
    Ok(family
        .iter()
        .zip(&cells)
        .filter(|(row, cell)| cell.withheld && wanted.contains(&row.id))
        .map(|(row, _)| row.id)
        .collect())
}

fn key(row: &observation::Model) -> (&str, &str, &str, &str, &str) {
    (
        &row.indicator_code,
        &row.period,
        &row.geographic_level,
        &row.pupil_group,
        &row.area_code,
    )
}

/// The other half of the disadvantaged split.
fn partner(group: PupilGroup) -> Option<PupilGroup> {
    match group {
        PupilGroup::Disadvantaged => Some(PupilGroup::NotDisadvantaged),
        PupilGroup::NotDisadvantaged => Some(PupilGroup::Disadvantaged),
        _ => None,
    }
}

/// The areas whose figures add up with this one's: the LAs of its region, the regions
/// of England. An LA the register does not place stands alone.
async fn siblings(loaders: &Loaders, level: &str, area: &str) -> Result<Vec<String>> {
    Ok(match GeographicLevel::parse(level) {
        Some(GeographicLevel::La) => match loaders.local_authority(area).await? {
            Some(la) => match la.region_code {
                Some(region) => loaders
                    .local_authorities(&region)
                    .await?
                    .into_iter()
                    .map(|la| la.code)
                    .collect(),
                None => vec![area.to_owned()],
            },
            None => vec![area.to_owned()],
        },
        Some(GeographicLevel::Region) => loaders.region_codes().await?,
        _ => vec![area.to_owned()],
    })
}

/// The area whose total this area's figures add up to.
async fn parent(loaders: &Loaders, level: &str, area: &str) -> Result<String> {
    Ok(match GeographicLevel::parse(level) {
        Some(GeographicLevel::La) => loaders
            .local_authority(area)
            .await?
            .and_then(|la| la.region_code)
            .unwrap_or_else(|| area.to_owned()),
        Some(GeographicLevel::Region) => crate::domain::ENGLAND_CODE.to_owned(),
        _ => area.to_owned(),
    })
}

async fn cell(access: &Access, loaders: &Loaders, row: &observation::Model) -> Result<Cell> {
    let unit = match loaders.indicator(&row.indicator_code).await? {
        Some(indicator) => Unit::parse(&indicator.unit).unwrap_or(Unit::Count),
        None => Unit::Count,
    };
    let caller_sees_schools = match GeographicLevel::parse(&row.geographic_level) {
        Some(GeographicLevel::La) => match loaders.local_authority(&row.area_code).await? {
            Some(la) => {
                let region = la.region_code.clone().unwrap_or_default();
                access.covers_area(Some(&la), &region)
            }
            None => false,
        },
        Some(GeographicLevel::Region) => access.covers_area(None, &row.area_code),
        _ => false,
    };
    Ok(Cell {
        unit,
        numerator: row.numerator,
        denominator: row.denominator,
        value: row.value,
        schools: row.school_count.map(i64::from),
        caller_sees_schools,
        withheld: false,
    })
}
