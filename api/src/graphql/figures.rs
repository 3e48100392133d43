//! Figures: observations, time series and the disadvantage gap — and the `School`
//! object they hang on. A school's figures and a figure's school name each other, so
//! the three object types live in this one file; `schools` lists schools.
//!
//! Every resolver here goes through the caller's `Access` before it reads: school
//! figures need SCHOOL scope, area figures AGGREGATE access and then pass disclosure
//! control (`protect`) before they are returned. Figures travel
//! with their numerator and denominator so a reader always sees the cohort size behind
//! a rate — the hub is for improvement, not league tables.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entities::{observation, school};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::cost;
use super::loaders::{FigureSelection, ObservationPage, SchoolPage, figures_query};
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::protect::withheld_figures;
use super::reference::{Indicator, Organisation, Region};
use super::{RequestContext, loaders, request_context};
use crate::disclosure;
use crate::domain::{EstablishmentType, GeographicLevel, Phase, PupilGroup, is_valid_period};
use crate::error::{Error, Result};

/// The most indicator codes one filter may name.
const MAX_INDICATORS_PER_FILTER: usize = 50;

/// A school on the register. Nodes of one list share a [`SchoolPage`], so their LAs,
/// trusts and figures load in one query for the whole list.
pub struct School {
    pub(super) model: Arc<school::Model>,
    page: Arc<SchoolPage>,
}

impl School {
    /// Nodes for one list of schools, sharing one page.
    pub fn list(rows: Vec<school::Model>) -> Vec<School> {
        let page = SchoolPage::new(&rows);
        rows.into_iter()
            .map(|model| School {
                model: Arc::new(model),
                page: page.clone(),
            })
            .collect()
    }

    pub fn on_page(page: Arc<SchoolPage>, model: school::Model) -> School {
        School {
            model: Arc::new(model),
            page,
        }
    }

    async fn figures(
        &self,
        ctx: &Context<'_>,
        filter: FigureArgs,
    ) -> Result<Vec<entities::observation::Model>> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_school(&self.model)?;
        let selection = filter.selection()?;
        rc.reads_figures(selection.indicators.as_deref());
        self.page
            .figures(&rc.db, access, &selection, self.model.urn)
            .await
    }

    fn as_source(&self) -> SchoolSource {
        SchoolSource::Known(self.page.clone(), self.model.clone())
    }

    async fn organisation(&self, ctx: &Context<'_>, id: i32) -> Result<Option<Organisation>> {
        let rc = request_context(ctx)?;
        Ok(self.page.organisation(&rc.db, id).await?.map(Organisation))
    }
}

#[Object]
impl School {
    /// Unique reference number.
    async fn urn(&self) -> i32 {
        self.model.urn
    }

    async fn name(&self) -> &str {
        &self.model.name
    }

    async fn phase(&self) -> Result<Phase> {
        Phase::parse(&self.model.phase)
            .ok_or_else(|| Error::Internal(format!("school {} phase", self.model.urn)))
    }

    async fn establishment_type(&self) -> Result<EstablishmentType> {
        EstablishmentType::parse(&self.model.establishment_type)
            .ok_or_else(|| Error::Internal(format!("school {} type", self.model.urn)))
    }

    async fn is_open(&self) -> bool {
        self.model.is_open
    }

    async fn pupils_on_roll(&self) -> i32 {
        self.model.pupils_on_roll
    }

    async fn last_inspection_date(&self) -> Option<NaiveDate> {
        self.model.last_inspection_date
    }

    async fn local_authority(&self, ctx: &Context<'_>) -> Result<Organisation> {
        self.organisation(ctx, self.model.la_id)
            .await?
            .ok_or_else(|| Error::Internal(format!("school {} has no LA row", self.model.urn)))
    }

    /// The academy trust, for academies and free schools.
    async fn trust(&self, ctx: &Context<'_>) -> Result<Option<Organisation>> {
        match self.model.trust_id {
            Some(id) => self.organisation(ctx, id).await,
            None => Ok(None),
        }
    }

    /// The diocese, for church schools.
    async fn diocese(&self, ctx: &Context<'_>) -> Result<Option<Organisation>> {
        match self.model.diocese_id {
            Some(id) => self.organisation(ctx, id).await,
            None => Ok(None),
        }
    }

    async fn region(&self, ctx: &Context<'_>) -> Result<Region> {
        loaders(ctx)?
            .region(&self.model.region_code)
            .await?
            .map(Region)
            .ok_or_else(|| Error::Internal(format!("school {} region", self.model.urn)))
    }

    /// This school's figures, ordered by indicator, pupil group and period. Needs
    /// SCHOOL scope over the school: otherwise null, with a `FORBIDDEN` error for this
    /// school only (its siblings in a list are unaffected).
    #[graphql(complexity = "10 * child_complexity")]
    async fn observations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: FigureArgs,
    ) -> Result<Option<Vec<Observation>>> {
        let rows = self.figures(ctx, filter).await?;
        let source = self.as_source();
        Ok(Some(
            rows.into_iter()
                .map(|row| Observation::new(row, source.clone()))
                .collect(),
        ))
    }

    /// This school's figures as one series per indicator and pupil group; same access
    /// rule as `observations`.
    #[graphql(complexity = "10 * child_complexity")]
    async fn time_series(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: FigureArgs,
    ) -> Result<Option<Vec<Series>>> {
        let rows = self.figures(ctx, filter).await?;
        Ok(Some(Series::group(
            rows,
            self.as_source(),
            Default::default(),
        )))
    }
}

/// Where an observation finds the school it describes: its parent school when it was
/// reached through one, otherwise the list it came in (loaded once for all siblings).
#[derive(Clone)]
pub enum SchoolSource {
    Known(Arc<SchoolPage>, Arc<school::Model>),
    Page(Arc<ObservationPage>),
}

/// One published figure.
pub struct Observation {
    row: observation::Model,
    school: SchoolSource,
    /// Withheld by disclosure control: the numbers are not shown.
    withheld: bool,
}

impl Observation {
    pub fn new(row: observation::Model, school: SchoolSource) -> Self {
        Observation {
            row,
            school,
            withheld: false,
        }
    }

    /// The row's numbers, unless disclosure control withheld them.
    fn shown(&self, number: Option<f64>) -> Option<f64> {
        if self.withheld { None } else { number }
    }

    /// Nodes for rows fetched outside the figure queries (the change feed), each
    /// marked as disclosure control decides for this caller.
    pub async fn protected(
        ctx: &Context<'_>,
        rows: Vec<observation::Model>,
    ) -> Result<Vec<Observation>> {
        let rc = request_context(ctx)?;
        let withheld = withheld_figures(rc, loaders(ctx)?, &rows).await?;
        Ok(Observation::list(rows)
            .into_iter()
            .map(|mut node| {
                node.withheld = withheld.contains(&node.row.id);
                node
            })
            .collect())
    }

    /// Nodes for one list of rows.
    fn list(rows: Vec<observation::Model>) -> Vec<Observation> {
        let source = SchoolSource::Page(ObservationPage::new(&rows));
        rows.into_iter()
            .map(|row| Observation::new(row, source.clone()))
            .collect()
    }
}

#[Object]
impl Observation {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    async fn indicator_code(&self) -> &str {
        &self.row.indicator_code
    }

    async fn indicator(&self, ctx: &Context<'_>) -> Result<Indicator> {
        indicator(ctx, &self.row.indicator_code).await
    }

    /// Academic year, e.g. `2023/24`.
    async fn period(&self) -> &str {
        &self.row.period
    }

    async fn level(&self) -> Result<GeographicLevel> {
        parse_level(&self.row)
    }

    /// URN, LA code, region code or `E92000001`, depending on `level`.
    async fn area_code(&self) -> &str {
        &self.row.area_code
    }

    async fn pupil_group(&self) -> Result<PupilGroup> {
        PupilGroup::parse(&self.row.pupil_group)
            .ok_or_else(|| Error::Internal(format!("observation {} group", self.row.id)))
    }

    /// Count of pupils, sessions, events or score total behind the value; null when
    /// withheld.
    async fn numerator(&self) -> Option<f64> {
        self.shown(self.row.numerator)
    }

    /// The cohort (pupils or sessions) the value is a share of; null for counts and
    /// when withheld.
    async fn denominator(&self) -> Option<f64> {
        self.shown(self.row.denominator)
    }

    /// `numerator / denominator × multiplier`, or the count itself; null when withheld.
    async fn value(&self) -> Option<f64> {
        self.shown(self.row.value)
    }

    /// Whether disclosure control withheld this area figure (see `suppressionReason`).
    /// School figures are shown only within SCHOOL scope and are never suppressed.
    async fn suppressed(&self) -> bool {
        self.withheld
    }

    /// Why the value is missing, as a DfE symbol of official statistics; null when
    /// shown. `c` confidential: withheld by disclosure control. The symbols keep their
    /// official meanings wherever the hub uses them: `low` rounds to zero, `x`
    /// unavailable, `z` not applicable, `u` low reliability.
    async fn suppression_reason(&self) -> Option<&str> {
        self.withheld.then_some(disclosure::CONFIDENTIAL)
    }

    /// How many schools the figure is built from (1 for a school's own figure); null
    /// when withheld, since the count too would say which rule applied and, with the
    /// public register, which schools the figure is.
    async fn school_count(&self) -> Option<i32> {
        if self.withheld {
            None
        } else {
            self.row.school_count
        }
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }

    /// The school, for `SCHOOL`-level figures.
    async fn school(&self, ctx: &Context<'_>) -> Result<Option<School>> {
        let Some(urn) = self.row.school_urn else {
            return Ok(None);
        };
        match &self.school {
            SchoolSource::Known(page, model) if model.urn == urn => {
                Ok(Some(School::on_page(page.clone(), model.as_ref().clone())))
            }
            SchoolSource::Known(..) => Ok(None),
            SchoolSource::Page(page) => {
                let rc = request_context(ctx)?;
                Ok(page
                    .school(&rc.db, urn)
                    .await?
                    .map(|(page, model)| School::on_page(page, model)))
            }
        }
    }
}

/// One indicator for one pupil group in one area, over time.
pub struct Series {
    indicator_code: String,
    pupil_group: String,
    level: String,
    area_code: String,
    points: Vec<observation::Model>,
    school: SchoolSource,
    withheld: Arc<HashSet<i64>>,
}

impl Series {
    /// Groups rows (any order) into series ordered by indicator and group, with points
    /// in period order; `withheld` names the rows disclosure control withholds.
    pub fn group(
        rows: Vec<observation::Model>,
        school: SchoolSource,
        withheld: HashSet<i64>,
    ) -> Vec<Series> {
        let withheld = Arc::new(withheld);
        let mut by_key: BTreeMap<(String, String, String, String), Vec<observation::Model>> =
            BTreeMap::new();
        for row in rows {
            let key = (
                row.indicator_code.clone(),
                row.pupil_group.clone(),
                row.geographic_level.clone(),
                row.area_code.clone(),
            );
            by_key.entry(key).or_default().push(row);
        }
        by_key
            .into_iter()
            .map(
                |((indicator_code, pupil_group, level, area_code), mut points)| {
                    points.sort_by(|a, b| a.period.cmp(&b.period));
                    Series {
                        indicator_code,
                        pupil_group,
                        level,
                        area_code,
                        points,
                        school: school.clone(),
                        withheld: withheld.clone(),
                    }
                },
            )
            .collect()
    }
}

#[Object]
impl Series {
    async fn indicator_code(&self) -> &str {
        &self.indicator_code
    }

    async fn indicator(&self, ctx: &Context<'_>) -> Result<Indicator> {
        indicator(ctx, &self.indicator_code).await
    }

    async fn pupil_group(&self) -> Result<PupilGroup> {
        PupilGroup::parse(&self.pupil_group)
            .ok_or_else(|| Error::Internal("series group".to_owned()))
    }

    async fn level(&self) -> Result<GeographicLevel> {
        GeographicLevel::parse(&self.level)
            .ok_or_else(|| Error::Internal("series level".to_owned()))
    }

    async fn area_code(&self) -> &str {
        &self.area_code
    }

    /// One observation per period, oldest first.
    #[graphql(complexity = "cost::list(cost::SERIES_POINTS, child_complexity)")]
    async fn points(&self) -> Vec<Observation> {
        self.points
            .iter()
            .cloned()
            .map(|row| Observation {
                withheld: self.withheld.contains(&row.id),
                ..Observation::new(row, self.school.clone())
            })
            .collect()
    }
}

/// The gap between pupils who are not disadvantaged and those who are, for one
/// indicator, period and area: `gap = notDisadvantaged − disadvantaged`. For an
/// indicator where lower is better (absence, exclusions) a negative gap means
/// disadvantaged pupils fare worse.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct GapFigure {
    pub indicator_code: String,
    pub period: String,
    pub level: GeographicLevel,
    pub area_code: String,
    pub disadvantaged: Option<f64>,
    pub not_disadvantaged: Option<f64>,
    pub gap: Option<f64>,
    /// Denominator behind the disadvantaged figure (cohort size).
    pub disadvantaged_cohort: Option<f64>,
    /// Denominator behind the other figure.
    pub not_disadvantaged_cohort: Option<f64>,
    /// Whether disclosure control withheld either side (and so the gap).
    pub suppressed: bool,
    /// `c` when suppressed.
    pub suppression_reason: Option<String>,
}

#[async_graphql::ComplexObject]
impl GapFigure {
    async fn indicator(&self, ctx: &Context<'_>) -> Result<Indicator> {
        indicator(ctx, &self.indicator_code).await
    }
}

/// Which figures to return for one school or area; all optional.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "FigureFilter")]
pub struct FigureArgs {
    /// Indicator codes; every indicator when absent.
    pub indicator_codes: Option<Vec<String>>,
    /// First academic year, inclusive, e.g. `2023/24`.
    pub period_from: Option<String>,
    /// Last academic year, inclusive.
    pub period_to: Option<String>,
    /// Pupil groups; every group when absent.
    pub pupil_groups: Option<Vec<PupilGroup>>,
}

impl FigureArgs {
    /// Validates the arguments and normalises them into a loader key.
    pub fn selection(self) -> Result<FigureSelection> {
        let indicators = match self.indicator_codes {
            Some(mut codes) => {
                if codes.len() > MAX_INDICATORS_PER_FILTER {
                    return Err(Error::bad_input(format!(
                        "at most {MAX_INDICATORS_PER_FILTER} indicator codes per request"
                    )));
                }
                codes.sort();
                codes.dedup();
                Some(codes)
            }
            None => None,
        };
        for period in [&self.period_from, &self.period_to].into_iter().flatten() {
            if !is_valid_period(period) {
                return Err(Error::bad_input(format!(
                    "period {period:?} is not an academic year like \"2023/24\""
                )));
            }
        }
        let mut groups = self
            .pupil_groups
            .unwrap_or_else(|| PupilGroup::ALL.to_vec());
        groups.sort();
        groups.dedup();
        Ok(FigureSelection {
            indicators,
            period_from: self.period_from,
            period_to: self.period_to,
            groups,
        })
    }
}

/// Filters for the `observations` list.
#[derive(InputObject, Default)]
pub struct ObservationFilter {
    pub indicator_codes: Option<Vec<String>>,
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    pub level: Option<GeographicLevel>,
    /// URNs, LA codes, region codes or `E92000001`; at most 500.
    pub area_codes: Option<Vec<String>>,
    pub pupil_groups: Option<Vec<PupilGroup>>,
}

/// A place figures describe: a school (`SCHOOL`, URN), an LA (`LA`, code), a region or
/// England.
#[derive(InputObject)]
pub struct AreaInput {
    pub level: GeographicLevel,
    pub code: String,
}

#[derive(Default)]
pub struct FigureQuery;

#[Object]
impl FigureQuery {
    /// Figures in tidy form, filtered, by id.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn observations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: ObservationFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, Observation, Totals>> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_principal()?;
        let page = PageRequest::new(first, after, &rc.limits)?;
        let selection = FigureArgs {
            indicator_codes: filter.indicator_codes,
            period_from: filter.period_from,
            period_to: filter.period_to,
            pupil_groups: filter.pupil_groups,
        }
        .selection()?;
        rc.reads_figures(selection.indicators.as_deref());
        let mut query = figures_query(&selection).filter(access.visible_figures());
        if let Some(level) = filter.level {
            query = query.filter(observation::Column::GeographicLevel.eq(level.as_str()));
        }
        if let Some(codes) = filter.area_codes {
            if codes.len() > rc.limits.max_page_size {
                return Err(Error::bad_input(format!(
                    "at most {} area codes per request",
                    rc.limits.max_page_size
                )));
            }
            query = query.filter(observation::Column::AreaCode.is_in(codes));
        }
        let mut connection = keyset_page(
            ctx,
            &rc.db,
            query,
            observation::Column::Id,
            page,
            Observation::list,
            |o| o.row.id,
        )
        .await?;
        let rows: Vec<observation::Model> = connection
            .edges
            .iter()
            .map(|e| e.node.row.clone())
            .collect();
        let withheld = withheld_figures(rc, loaders(ctx)?, &rows).await?;
        for edge in &mut connection.edges {
            edge.node.withheld = withheld.contains(&edge.node.row.id);
        }
        Ok(connection)
    }

    /// Figures for one school or area, one series per indicator and pupil group.
    #[graphql(complexity = "20 * child_complexity")]
    async fn time_series(
        &self,
        ctx: &Context<'_>,
        area: AreaInput,
        #[graphql(default)] filter: FigureArgs,
    ) -> Result<Vec<Series>> {
        let rc = request_context(ctx)?;
        let rows = area_figures(rc, &area, filter.selection()?).await?;
        let withheld = withheld_figures(rc, loaders(ctx)?, &rows).await?;
        let source = SchoolSource::Page(ObservationPage::new(&rows));
        Ok(Series::group(rows, source, withheld))
    }

    /// The disadvantage gap for one school or area, per indicator and period.
    #[graphql(complexity = "20 * child_complexity")]
    async fn disadvantage_gap(
        &self,
        ctx: &Context<'_>,
        area: AreaInput,
        indicator_codes: Option<Vec<String>>,
        period_from: Option<String>,
        period_to: Option<String>,
    ) -> Result<Vec<GapFigure>> {
        let rc = request_context(ctx)?;
        let selection = FigureArgs {
            indicator_codes,
            period_from,
            period_to,
            pupil_groups: Some(vec![
                PupilGroup::Disadvantaged,
                PupilGroup::NotDisadvantaged,
            ]),
        }
        .selection()?;
        let rows = area_figures(rc, &area, selection).await?;
        let withheld = withheld_figures(rc, loaders(ctx)?, &rows).await?;
        Ok(gap_figures(area.level, rows, &withheld))
    }
}

/// Pairs DISADVANTAGED and NOT_DISADVANTAGED rows by indicator and period. A pair
/// with either side withheld shows neither (the partner rule makes that rare: both
/// sides of the split are withheld together).
fn gap_figures(
    level: GeographicLevel,
    mut rows: Vec<observation::Model>,
    withheld: &HashSet<i64>,
) -> Vec<GapFigure> {
    let suppressed_pairs: HashSet<(String, String)> = rows
        .iter()
        .filter(|r| withheld.contains(&r.id))
        .map(|r| (r.indicator_code.clone(), r.period.clone()))
        .collect();
    for row in &mut rows {
        if suppressed_pairs.contains(&(row.indicator_code.clone(), row.period.clone())) {
            row.value = None;
            row.numerator = None;
            row.denominator = None;
        }
    }
    let mut pairs: BTreeMap<
        (String, String),
        (Option<observation::Model>, Option<observation::Model>),
    > = BTreeMap::new();
    let mut area_code = String::new();
    for row in rows {
        area_code.clone_from(&row.area_code);
        let slot = pairs
            .entry((row.indicator_code.clone(), row.period.clone()))
            .or_default();
        match PupilGroup::parse(&row.pupil_group) {
            Some(PupilGroup::Disadvantaged) => slot.0 = Some(row),
            Some(PupilGroup::NotDisadvantaged) => slot.1 = Some(row),
            _ => {}
        }
    }
    pairs
        .into_iter()
        .map(|((indicator_code, period), (dis, other))| {
            let suppressed = suppressed_pairs.contains(&(indicator_code.clone(), period.clone()));
            let disadvantaged = dis.as_ref().and_then(|o| o.value);
            let not_disadvantaged = other.as_ref().and_then(|o| o.value);
            GapFigure {
                indicator_code,
                period,
                level,
                area_code: area_code.clone(),
                disadvantaged,
                not_disadvantaged,
                // Published values carry four decimals; so does their difference,
                // without binary floating-point noise in the last digits.
                gap: disadvantaged
                    .zip(not_disadvantaged)
                    .map(|(d, n)| ((n - d) * 10_000.0).round() / 10_000.0),
                disadvantaged_cohort: dis.and_then(|o| o.denominator),
                not_disadvantaged_cohort: other.and_then(|o| o.denominator),
                suppressed,
                suppression_reason: suppressed.then(|| disclosure::CONFIDENTIAL.to_owned()),
            }
        })
        .collect()
}

/// The figures of one school or area, after the policy's direct-request check: a
/// school needs SCHOOL scope over it, any other area AGGREGATE access.
pub(super) async fn area_figures(
    rc: &RequestContext,
    area: &AreaInput,
    selection: FigureSelection,
) -> Result<Vec<observation::Model>> {
    let school = async {
        let school = area
            .code
            .parse::<i32>()
            .ok()
            .map(|urn| school::Entity::find_by_id(urn).one(&rc.db));
        let school = match school {
            Some(query) => query.await?,
            None => None,
        };
        school.ok_or_else(|| Error::NotFound(format!("school {}", area.code)))
    };
    rc.access().require_area(area.level, school).await?;
    rc.reads_figures(selection.indicators.as_deref());
    let query = figures_query(&selection)
        .filter(observation::Column::GeographicLevel.eq(area.level.as_str()))
        .filter(observation::Column::AreaCode.eq(area.code.clone()))
        .order_by_asc(observation::Column::IndicatorCode)
        .order_by_asc(observation::Column::PupilGroup)
        .order_by_asc(observation::Column::Period);
    Ok(observation::all(&rc.db, query).await?)
}

async fn indicator(ctx: &Context<'_>, code: &str) -> Result<Indicator> {
    loaders(ctx)?
        .indicator(code)
        .await?
        .map(Indicator::from)
        .ok_or_else(|| Error::Internal(format!("indicator {code} missing from the catalogue")))
}

fn parse_level(row: &observation::Model) -> Result<GeographicLevel> {
    GeographicLevel::parse(&row.geographic_level)
        .ok_or_else(|| Error::Internal(format!("observation {} level", row.id)))
}
