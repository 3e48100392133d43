//! Signals of risk and success (`signals`), the rules behind them (`signalRules`) and
//! their thresholds (`updateSignalRule`, hub administrators only).
//!
//! A signal is computed when it is asked for, from the figures in the baseline at that
//! moment — nothing is stored — so a sync that writes figures changes the next answer;
//! the answer records the `figures:<indicator>` tags it read and the rules' tag, so a
//! cached answer is dropped by the same writes. Access is the figures' own: a school's
//! signals need SCHOOL scope over it, any area's need AGGREGATE access and pass
//! disclosure control (`protect`), and a rule that needs a withheld figure is reported
//! `WITHHELD` and nothing more (see `crate::signals`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_graphql::{Context, InputObject, Object};
use chrono::{DateTime, Utc};
use entities::{observation, school, signal_rule};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};

use super::cost;
use super::figures::{AreaInput, Observation, SchoolSource};
use super::loaders::ObservationPage;
use super::partnership::{Written, finish_write_tagged, guarded};
use super::protect::withheld_figures;
use super::reference::Indicator;
use super::{Loaders, RequestContext, loaders, request_context};
use crate::cache::tags;
use crate::domain::{
    AccessLevel, ENGLAND_CODE, GeographicLevel, Polarity, PupilGroup, is_valid_period,
};
use crate::error::{Error, Result};
use crate::signals::{
    self, Figure, Figures, MAX_YEARS_RUNNING, Rule, Side, SignalKind, SignalMethod, SignalStatus,
};

/// A rule of the `signal_rule` table.
pub struct SignalRule(pub signal_rule::Model);

#[Object]
impl SignalRule {
    /// Stable name, e.g. `persistent_absence_rising`.
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn kind(&self) -> Result<SignalKind> {
        SignalKind::parse(&self.0.kind)
            .ok_or_else(|| Error::Internal(format!("signal rule {} kind", self.0.code)))
    }

    async fn method(&self) -> Result<SignalMethod> {
        SignalMethod::parse(&self.0.method)
            .ok_or_else(|| Error::Internal(format!("signal rule {} method", self.0.code)))
    }

    async fn indicator_code(&self) -> &str {
        &self.0.indicator_code
    }

    async fn indicator(&self, ctx: &Context<'_>) -> Result<Indicator> {
        loaders(ctx)?
            .indicator(&self.0.indicator_code)
            .await?
            .map(Indicator::from)
            .ok_or_else(|| Error::Internal(format!("signal rule {} indicator", self.0.code)))
    }

    /// The pupil group compared; null for the gap methods, which compare
    /// disadvantaged pupils with the rest.
    async fn pupil_group(&self) -> Option<PupilGroup> {
        self.0.pupil_group.as_deref().and_then(PupilGroup::parse)
    }

    /// Consecutive year-on-year changes a trend needs; null for comparisons.
    async fn years_running(&self) -> Option<i32> {
        self.0.years_running
    }

    /// How far past the comparison a figure must be, in the indicator's unit; the
    /// signal is raised only when it is exceeded.
    async fn threshold(&self) -> f64 {
        self.0.threshold
    }

    async fn active(&self) -> bool {
        self.0.active
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One rule applied to one area and academic year.
pub struct Signal {
    rule: Arc<signal_rule::Model>,
    kind: SignalKind,
    status: SignalStatus,
    level: GeographicLevel,
    area_code: String,
    period: String,
    comparator: Option<(GeographicLevel, String)>,
    measure: Option<f64>,
    figures: Vec<observation::Model>,
    page: Arc<ObservationPage>,
}

#[Object]
impl Signal {
    async fn rule(&self) -> SignalRule {
        SignalRule(self.rule.as_ref().clone())
    }

    async fn kind(&self) -> SignalKind {
        self.kind
    }

    async fn status(&self) -> SignalStatus {
        self.status
    }

    async fn level(&self) -> GeographicLevel {
        self.level
    }

    async fn area_code(&self) -> &str {
        &self.area_code
    }

    async fn period(&self) -> &str {
        &self.period
    }

    /// What the area is compared with (its region; England for a region), for rules
    /// that compare; null for trends.
    async fn comparator_level(&self) -> Option<GeographicLevel> {
        self.comparator.as_ref().map(|(level, _)| *level)
    }

    async fn comparator_area_code(&self) -> Option<&str> {
        self.comparator.as_ref().map(|(_, code)| code.as_str())
    }

    /// How far the comparison went, in the indicator's unit: the smallest
    /// year-on-year change in the rule's direction, or the difference from the
    /// comparator (of figures, or of disadvantage gaps). Raised when it exceeds the
    /// rule's threshold. Null unless the rule could be evaluated.
    async fn measure(&self) -> Option<f64> {
        self.measure
    }

    /// The figures behind it, oldest first, the area's before the comparator's. Empty
    /// when `WITHHELD`.
    #[graphql(complexity = "cost::list(cost::SERIES_POINTS, child_complexity)")]
    async fn figures(&self) -> Vec<Observation> {
        self.figures
            .iter()
            .cloned()
            .map(|row| Observation::new(row, SchoolSource::Page(self.page.clone())))
            .collect()
    }
}

/// Where signals are computed: a checked, existing area the caller may read, and what
/// it is compared with.
pub(super) struct SignalArea {
    pub level: GeographicLevel,
    pub code: String,
    comparator: Option<(GeographicLevel, String)>,
}

impl SignalArea {
    /// Checks that the caller may read the area's figures (`Access::require_area`) and
    /// that the area exists.
    pub async fn resolve(
        rc: &RequestContext,
        loaders: &Loaders,
        area: &AreaInput,
    ) -> Result<SignalArea> {
        let not_found = || Error::NotFound(format!("{} area {}", area.level, area.code));
        let school = async {
            let school = match area.code.parse::<i32>() {
                Ok(urn) => school::Entity::find_by_id(urn).one(&rc.db).await?,
                Err(_) => None,
            };
            school.ok_or_else(not_found)
        };
        let school = rc.access().require_area(area.level, school).await?;
        let comparator = match area.level {
            GeographicLevel::School => {
                school.map(|school| (GeographicLevel::Region, school.region_code))
            }
            GeographicLevel::La => {
                let la = loaders
                    .local_authority(&area.code)
                    .await?
                    .ok_or_else(not_found)?;
                la.region_code
                    .map(|region| (GeographicLevel::Region, region))
            }
            GeographicLevel::Region => {
                loaders.region(&area.code).await?.ok_or_else(not_found)?;
                Some((GeographicLevel::National, ENGLAND_CODE.to_owned()))
            }
            GeographicLevel::National => {
                if area.code != ENGLAND_CODE {
                    return Err(not_found());
                }
                None
            }
        };
        Ok(SignalArea {
            level: area.level,
            code: area.code.clone(),
            comparator,
        })
    }

    fn side(&self, row: &observation::Model) -> Option<Side> {
        let is = |level: GeographicLevel, code: &str| {
            row.geographic_level == level.as_str() && row.area_code == code
        };
        if is(self.level, &self.code) {
            Some(Side::Area)
        } else if let Some((level, code)) = &self.comparator
            && is(*level, code)
        {
            Some(Side::Comparator)
        } else {
            None
        }
    }
}

/// Which signals to return.
pub(super) struct SignalFilter {
    pub statuses: Vec<SignalStatus>,
    pub kinds: Option<Vec<SignalKind>>,
}

/// Applies every active rule to the area for `period`, under the caller's access.
pub(super) async fn compute(
    rc: &RequestContext,
    loaders: &Loaders,
    area: &SignalArea,
    period: &str,
    filter: &SignalFilter,
) -> Result<Vec<Signal>> {
    if !is_valid_period(period) {
        return Err(Error::bad_input(format!(
            "period {period:?} is not an academic year like \"2024/25\""
        )));
    }
    rc.reads(tags::SIGNAL_RULES);
    let rows = signal_rule::Entity::find()
        .filter(signal_rule::Column::Active.eq(true))
        .order_by_asc(signal_rule::Column::Code)
        .all(&rc.db)
        .await?;
    let mut rules = Vec::with_capacity(rows.len());
    for row in rows {
        let polarity = loaders
            .indicator(&row.indicator_code)
            .await?
            .and_then(|i| Polarity::parse(&i.polarity))
            .unwrap_or(Polarity::Neutral);
        let rule = Rule::from_row(&row, polarity).map_err(Error::Internal)?;
        let wanted = filter.kinds.as_ref().is_none_or(|k| k.contains(&rule.kind));
        if wanted && (area.comparator.is_some() || !rule.uses_comparator()) {
            rules.push((Arc::new(row), rule));
        }
    }
    if rules.is_empty() {
        return Ok(Vec::new());
    }

    let mut indicators = BTreeSet::new();
    let mut periods = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for (_, rule) in &rules {
        indicators.insert(rule.indicator_code.clone());
        periods.extend(rule.periods(period).unwrap_or_default());
        groups.extend(rule.groups().into_iter().map(|g| g.as_str()));
    }
    let indicators: Vec<String> = indicators.into_iter().collect();
    rc.reads_figures(Some(&indicators));
    let mut places = Condition::any().add(
        observation::Column::GeographicLevel
            .eq(area.level.as_str())
            .and(observation::Column::AreaCode.eq(area.code.clone())),
    );
    if let Some((level, code)) = &area.comparator {
        places = places.add(
            observation::Column::GeographicLevel
                .eq(level.as_str())
                .and(observation::Column::AreaCode.eq(code.clone())),
        );
    }
    let query = observation::Entity::find()
        .filter(observation::Column::IndicatorCode.is_in(indicators))
        .filter(observation::Column::Period.is_in(periods))
        .filter(observation::Column::PupilGroup.is_in(groups))
        .filter(places)
        .order_by_asc(observation::Column::Period);
    let rows = observation::all(&rc.db, query).await?;

    let withheld = withheld_figures(rc, loaders, &rows).await?;
    // A school's comparator is an area figure: without AGGREGATE access it is withheld
    // like any other figure the caller may not read.
    let aggregate = rc.access().has_aggregate();
    let mut figures = Figures::new();
    for row in &rows {
        let (Some(side), Some(group)) = (area.side(row), PupilGroup::parse(&row.pupil_group))
        else {
            continue;
        };
        let hidden = withheld.contains(&row.id) || (side == Side::Comparator && !aggregate);
        figures.insert(
            (side, row.indicator_code.clone(), group, row.period.clone()),
            Figure {
                id: row.id,
                value: row.value,
                withheld: hidden,
            },
        );
    }
    let by_id: HashMap<i64, &observation::Model> = rows.iter().map(|r| (r.id, r)).collect();
    let page = ObservationPage::new(&rows);

    let mut signals = Vec::new();
    for (row, rule) in rules {
        let outcome = signals::evaluate(&rule, period, &figures);
        if !filter.statuses.contains(&outcome.status) {
            continue;
        }
        signals.push(Signal {
            kind: rule.kind,
            status: outcome.status,
            level: area.level,
            area_code: area.code.clone(),
            period: period.to_owned(),
            comparator: rule
                .uses_comparator()
                .then(|| area.comparator.clone())
                .flatten(),
            measure: outcome.measure,
            figures: outcome
                .figures
                .iter()
                .filter_map(|id| by_id.get(id).map(|r| (*r).clone()))
                .collect(),
            page: page.clone(),
            rule: row,
        });
    }
    // Risks first: they are what a dashboard opens with.
    signals.sort_by_key(|s| (s.kind != SignalKind::Risk, s.rule.code.clone()));
    Ok(signals)
}

#[derive(Default)]
pub struct SignalQuery;

#[Object]
impl SignalQuery {
    /// Signals of risk and success for one school or area in one academic year,
    /// computed now from the baseline. A school needs SCHOOL scope over it; an LA, a
    /// region or England needs AGGREGATE access, and figures withheld by disclosure
    /// control make the rules that need them `WITHHELD`. Only raised signals unless
    /// `statuses` says otherwise.
    #[graphql(complexity = "20 * child_complexity")]
    async fn signals(
        &self,
        ctx: &Context<'_>,
        area: AreaInput,
        period: String,
        #[graphql(default_with = "vec![SignalStatus::Raised]")] statuses: Vec<SignalStatus>,
        kinds: Option<Vec<SignalKind>>,
    ) -> Result<Vec<Signal>> {
        let rc = request_context(ctx)?;
        let loaders = loaders(ctx)?;
        let area = SignalArea::resolve(rc, loaders, &area).await?;
        compute(
            rc,
            loaders,
            &area,
            &period,
            &SignalFilter { statuses, kinds },
        )
        .await
    }

    /// The rules signals are computed with, by code. Any authenticated caller: the
    /// thresholds are how partners read a signal.
    #[graphql(complexity = "cost::list(cost::INDICATORS, child_complexity)")]
    async fn signal_rules(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] include_inactive: bool,
    ) -> Result<Vec<SignalRule>> {
        let rc = request_context(ctx)?;
        rc.access().require_principal()?;
        rc.reads(tags::SIGNAL_RULES);
        let mut query = signal_rule::Entity::find().order_by_asc(signal_rule::Column::Code);
        if !include_inactive {
            query = query.filter(signal_rule::Column::Active.eq(true));
        }
        Ok(query
            .all(&rc.db)
            .await?
            .into_iter()
            .map(SignalRule)
            .collect())
    }
}

/// A change to a rule's thresholds; absent fields stay as they are.
#[derive(InputObject)]
pub struct SignalRuleChange {
    pub threshold: Option<f64>,
    /// Trend rules only: consecutive year-on-year changes needed (1–10).
    pub years_running: Option<i32>,
    pub active: Option<bool>,
}

/// The largest threshold accepted, in any unit: far beyond any published figure, so a
/// typo cannot silently switch a rule off.
const MAX_THRESHOLD: f64 = 1_000.0;

#[derive(Default)]
pub struct SignalMutation;

#[Object]
impl SignalMutation {
    /// Changes a rule's threshold, look-back or whether it is applied. Hub
    /// administrators only; audited; cached signals are recomputed.
    async fn update_signal_rule(
        &self,
        ctx: &Context<'_>,
        code: String,
        change: SignalRuleChange,
    ) -> Result<SignalRule> {
        use signal_rule::Column;
        let rc = request_context(ctx)?;
        let principal = rc.access().require_admin()?;
        let rule = signal_rule::Entity::find()
            .filter(Column::Code.eq(code.clone()))
            .one(&rc.db)
            .await?
            .ok_or_else(|| Error::NotFound(format!("signal rule {code}")))?;
        let mut update = signal_rule::Entity::update_many()
            .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(Column::Id.eq(rule.id));
        if let Some(threshold) = change.threshold {
            if !threshold.is_finite() || threshold.abs() > MAX_THRESHOLD {
                return Err(Error::bad_input(format!(
                    "threshold must be a number between -{MAX_THRESHOLD} and {MAX_THRESHOLD}"
                )));
            }
            update = update.col_expr(Column::Threshold, Expr::value(threshold));
        }
        if let Some(years) = change.years_running {
            let trend = matches!(
                SignalMethod::parse(&rule.method),
                Some(SignalMethod::Rising | SignalMethod::Falling)
            );
            if !trend {
                return Err(Error::bad_input(format!(
                    "signal rule {code} compares with a comparator; yearsRunning applies to \
                     trends only"
                )));
            }
            if !(1..=MAX_YEARS_RUNNING).contains(&years) {
                return Err(Error::bad_input(format!(
                    "yearsRunning must be between 1 and {MAX_YEARS_RUNNING}"
                )));
            }
            update = update.col_expr(Column::YearsRunning, Expr::value(years));
        }
        if let Some(active) = change.active {
            update = update.col_expr(Column::Active, Expr::value(active));
        }
        let txn = rc.db.begin().await?;
        guarded(&txn, update, "signal rule", rule.id).await?;
        let updated = signal_rule::Entity::find_by_id(rule.id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::Internal(format!("signal rule {code} vanished")))?;
        finish_write_tagged(
            ctx,
            rc,
            txn,
            principal,
            Written::one(AccessLevel::Aggregate, format!("signal_rule:{code}")),
            tags::SIGNAL_RULES,
        )
        .await?;
        Ok(SignalRule(updated))
    }
}
