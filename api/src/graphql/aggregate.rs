//! `aggregate`: analysts' figures over any grouping of schools, computed from the finest
//! data the hub holds (school figures) and released under disclosure control.
//!
//! A figure over a group is the sum of its schools' numerators over the sum of their
//! denominators. Groupings here are ad hoc — by trust, phase, LA and their crossings,
//! under any filter — so no fixed set of complementary cells could cover every table a
//! caller can build. Cells are protected by cell-key perturbation instead (see
//! `disclosure::perturbation`, the method of the ONS flexible table builder):
//!
//! - a cell of schools the caller sees entirely (SCHOOL scope over each) is exact;
//! - a cell whose unseen part is small (a count under the threshold, fewer schools
//!   than the school threshold) is withheld, `c`;
//! - every other cell is shown with small noise that depends only on which schools it
//!   holds, so the same cell is the same number whatever query reaches it, and adding
//!   and subtracting cells yields noise, not the figure between them.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use entities::{observation, school};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, FromQueryResult};

use super::cost;
use super::loaders::{OrganisationSet, school_figure_sums};
use super::reference::{Indicator, Organisation};
use super::{loaders, request_context};
use crate::db;
use crate::disclosure::perturbation::CellKeys;
use crate::disclosure::{self, Counts};
use crate::domain::{AccessLevel, OrganisationKind, Phase, PupilGroup, Unit};
use crate::error::{Error, Result};

/// Most periods one request may span.
const MAX_PERIODS: usize = 5;
/// Most cells one answer may hold; narrow with filters beyond this.
const MAX_CELLS: usize = 10_000;

/// What to group schools by. `PUPIL_GROUP` splits each group of schools by pupil group.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AggregateDimension {
    Region,
    LocalAuthority,
    Trust,
    Phase,
    PupilGroup,
}

/// Which schools to include; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct AggregateFilter {
    pub region_code: Option<String>,
    /// 3-digit LA code.
    pub la_code: Option<String>,
    /// Trust UID.
    pub trust_code: Option<String>,
    pub phase: Option<Phase>,
}

/// One figure of an aggregate. Coordinates the grouping does not use are null.
#[derive(SimpleObject)]
pub struct AggregateCell {
    pub period: String,
    pub pupil_group: PupilGroup,
    pub region_code: Option<String>,
    pub local_authority: Option<Organisation>,
    /// The trust; null for schools outside any trust when grouping by trust.
    pub trust: Option<Organisation>,
    pub phase: Option<Phase>,
    /// Null when withheld.
    pub value: Option<f64>,
    /// Null when withheld.
    pub numerator: Option<f64>,
    /// Null when withheld and for counts.
    pub denominator: Option<f64>,
    /// Schools the figure is built from; null when withheld.
    pub school_count: Option<i64>,
    /// Whether the figures carry cell-key noise (at most ±2 on each count); false when
    /// the caller sees every school of the cell, which is then exact.
    pub perturbed: bool,
    pub suppressed: bool,
    /// DfE symbol: `c` when withheld (confidential), otherwise null.
    pub suppression_reason: Option<String>,
}

/// The answer: the indicator and its cells, ordered by period, pupil group and the
/// grouping's coordinates.
#[derive(SimpleObject)]
pub struct Aggregate {
    pub indicator: Indicator,
    pub group_by: Vec<AggregateDimension>,
    #[graphql(complexity = "cost::list(cost::AGGREGATE_CELLS, child_complexity)")]
    pub cells: Vec<AggregateCell>,
}

#[derive(Default)]
pub struct AggregateQuery;

#[Object]
impl AggregateQuery {
    /// An indicator over groups of schools, under disclosure control. Every
    /// authenticated role except `SYNC_AGENT`.
    // Its cells are costed as a list (`cost::AGGREGATE_CELLS` rows), so the
    // selection is counted once here.
    #[graphql(complexity = "100 + child_complexity")]
    async fn aggregate(
        &self,
        ctx: &Context<'_>,
        indicator_code: String,
        periods: Vec<String>,
        #[graphql(default)] group_by: Vec<AggregateDimension>,
        #[graphql(
            desc = "Pupil groups to return; default every group when grouping by PUPIL_GROUP, otherwise ALL."
        )]
        pupil_groups: Option<Vec<PupilGroup>>,
        filter: Option<AggregateFilter>,
    ) -> Result<Aggregate> {
        let filter = filter.unwrap_or_default();
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_aggregate()?;
        rc.reads_figures(Some(std::slice::from_ref(&indicator_code)));
        let indicator = loaders(ctx)?
            .indicator(&indicator_code)
            .await?
            .ok_or_else(|| Error::NotFound(format!("indicator {indicator_code}")))?;
        let request = Request::new(rc, periods, group_by, pupil_groups, filter).await?;

        let scope = access.visible_schools(AccessLevel::School);
        let keys = CellKeys::new(&rc.protection.rules.key);
        let rows = fetch(rc, &indicator.code, &request, scope, &keys).await?;
        if rows.len() > MAX_CELLS {
            return Err(Error::bad_input(format!(
                "the answer would hold {} cells, above {MAX_CELLS}; narrow it with filters",
                rows.len()
            )));
        }
        let unit = Unit::parse(&indicator.unit).unwrap_or(Unit::Count);
        let organisations = OrganisationSet::new(
            rows.iter()
                .flat_map(|row| [row.la_id, row.trust_id])
                .flatten(),
        );
        let mut answer = Vec::with_capacity(rows.len());
        for row in &rows {
            let local_authority = named(&organisations, rc, row.la_id).await?;
            let trust = named(&organisations, rc, row.trust_id).await?;
            let release = row.release(unit, &indicator.code, &keys, &rc.protection.rules);
            let (numerator, denominator) = match release {
                Release::Exact => (row.numerator, row.denominator),
                Release::Perturbed(n, d) => (n, d),
                Release::Withheld => (None, None),
            };
            let value = match denominator {
                _ if unit == Unit::Count => numerator,
                Some(d) if d > 0.0 => {
                    numerator.map(|n| (n / d * indicator.multiplier * 10_000.0).round() / 10_000.0)
                }
                _ => None,
            };
            let withheld = release == Release::Withheld;
            answer.push(AggregateCell {
                period: row.period.clone(),
                pupil_group: PupilGroup::parse(&row.pupil_group).unwrap_or(PupilGroup::All),
                region_code: row.region_code.clone(),
                local_authority,
                trust,
                phase: row.phase.as_deref().and_then(Phase::parse),
                value,
                numerator,
                denominator: if unit == Unit::Count {
                    None
                } else {
                    denominator
                },
                school_count: (!withheld).then_some(row.schools),
                perturbed: matches!(release, Release::Perturbed(..)),
                suppressed: withheld,
                suppression_reason: withheld.then(|| disclosure::CONFIDENTIAL.to_owned()),
            });
        }
        Ok(Aggregate {
            indicator: indicator.into(),
            group_by: request.group_by,
            cells: answer,
        })
    }
}

/// How one cell is released to the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Release {
    /// The caller sees every school of the cell: nothing to protect.
    Exact,
    /// Perturbed numerator and denominator.
    Perturbed(Option<f64>, Option<f64>),
    /// The part the caller cannot see is too small.
    Withheld,
}

/// A validated request.
struct Request {
    periods: Vec<String>,
    group_by: Vec<AggregateDimension>,
    /// The grouping's school dimensions (the grouping less `PUPIL_GROUP`).
    dims: Vec<AggregateDimension>,
    /// Groups returned.
    groups: Vec<PupilGroup>,
    region: Option<String>,
    la: Option<i32>,
    trust: Option<i32>,
    phase: Option<Phase>,
}

impl Request {
    async fn new(
        rc: &super::RequestContext,
        mut periods: Vec<String>,
        mut group_by: Vec<AggregateDimension>,
        pupil_groups: Option<Vec<PupilGroup>>,
        filter: AggregateFilter,
    ) -> Result<Request> {
        periods.sort();
        periods.dedup();
        if periods.is_empty() || periods.len() > MAX_PERIODS {
            return Err(Error::bad_input(format!(
                "give between 1 and {MAX_PERIODS} periods"
            )));
        }
        if let Some(bad) = periods.iter().find(|p| !crate::domain::is_valid_period(p)) {
            return Err(Error::bad_input(format!(
                "period {bad:?} is not an academic year like \"2023/24\""
            )));
        }
        group_by.sort();
        group_by.dedup();
        let by_group = group_by.contains(&AggregateDimension::PupilGroup);
        let mut groups = pupil_groups.unwrap_or_else(|| {
            if by_group {
                PupilGroup::ALL.to_vec()
            } else {
                vec![PupilGroup::All]
            }
        });
        groups.sort();
        groups.dedup();
        if groups.is_empty() || (!by_group && groups.len() > 1) {
            return Err(Error::bad_input(
                "name one pupil group, or group by PUPIL_GROUP to compare several",
            ));
        }
        let dims: Vec<AggregateDimension> = group_by
            .iter()
            .copied()
            .filter(|d| *d != AggregateDimension::PupilGroup)
            .collect();
        let la = match &filter.la_code {
            Some(code) => Some(org_id(rc, OrganisationKind::LocalAuthority, code).await?),
            None => None,
        };
        let trust = match &filter.trust_code {
            Some(code) => Some(org_id(rc, OrganisationKind::Trust, code).await?),
            None => None,
        };
        Ok(Request {
            periods,
            group_by,
            dims,
            groups,
            region: filter.region_code,
            la,
            trust,
            phase: filter.phase,
        })
    }

    fn has(&self, dim: AggregateDimension) -> bool {
        self.dims.contains(&dim)
    }
}

/// One cell of the answer, as the database returns it.
#[derive(Debug, FromQueryResult)]
struct Row {
    period: String,
    pupil_group: String,
    region_code: Option<String>,
    la_id: Option<i32>,
    trust_id: Option<i32>,
    phase: Option<String>,
    numerator: Option<f64>,
    denominator: Option<f64>,
    schools: i64,
    /// Schools in the cell the caller holds SCHOOL scope over, and their sums.
    visible: i64,
    visible_numerator: Option<f64>,
    visible_denominator: Option<f64>,
    /// Sum of the cell's schools' record keys (`disclosure::perturbation`).
    cell_key: i64,
}

impl Row {
    /// Exact, perturbed or withheld, for this caller.
    fn release(
        &self,
        unit: Unit,
        indicator: &str,
        keys: &CellKeys,
        thresholds: &crate::config::Disclosure,
    ) -> Release {
        if self.visible == self.schools {
            return Release::Exact;
        }
        let whole = Counts {
            numerator: self.numerator,
            denominator: self.denominator,
            schools: Some(self.schools),
        };
        let seen = Counts {
            numerator: self.visible_numerator,
            denominator: self.visible_denominator,
            schools: Some(self.visible),
        };
        if disclosure::primary(unit, &whole.less(&seen), thresholds) {
            return Release::Withheld;
        }
        let what = format!("{indicator}/{}/{}", self.period, self.pupil_group);
        let (n, d) = keys.perturb(unit, self.cell_key, &what, self.numerator, self.denominator);
        Release::Perturbed(n, d)
    }
}

/// One `GROUP BY` over the school figures of the indicator and periods, filtered in SQL.
async fn fetch(
    rc: &super::RequestContext,
    indicator: &str,
    request: &Request,
    scope: sea_orm::sea_query::SimpleExpr,
    keys: &CellKeys,
) -> Result<Vec<Row>> {
    use observation::Column as O;
    use school::Column as S;
    let mut query = school_figure_sums();
    query
        .expr_as(
            Expr::col((observation::Entity, O::Period)),
            Alias::new("period"),
        )
        .expr_as(
            Expr::col((observation::Entity, O::PupilGroup)),
            Alias::new("pupil_group"),
        )
        .and_where(O::IndicatorCode.eq(indicator))
        .and_where(O::Period.is_in(request.periods.iter().cloned()))
        .and_where(O::PupilGroup.is_in(request.groups.iter().map(|g| g.as_str())))
        .group_by_col((observation::Entity, O::Period))
        .group_by_col((observation::Entity, O::PupilGroup));
    if let Some(region) = &request.region {
        query.and_where(Expr::col((school::Entity, S::RegionCode)).eq(region.as_str()));
    }
    if let Some(la) = request.la {
        query.and_where(Expr::col((school::Entity, S::LaId)).eq(la));
    }
    if let Some(trust) = request.trust {
        query.and_where(Expr::col((school::Entity, S::TrustId)).eq(trust));
    }
    if let Some(phase) = request.phase {
        query.and_where(Expr::col((school::Entity, S::Phase)).eq(phase.as_str()));
    }
    for (dim, column, alias, sql_type) in [
        (
            AggregateDimension::Region,
            S::RegionCode,
            "region_code",
            "TEXT",
        ),
        (
            AggregateDimension::LocalAuthority,
            S::LaId,
            "la_id",
            "INTEGER",
        ),
        (AggregateDimension::Trust, S::TrustId, "trust_id", "INTEGER"),
        (AggregateDimension::Phase, S::Phase, "phase", "TEXT"),
    ] {
        if request.has(dim) {
            query
                .expr_as(Expr::col((school::Entity, column)), Alias::new(alias))
                .group_by_col((school::Entity, column));
        } else {
            query.expr_as(
                Expr::cust(format!("CAST(NULL AS {sql_type})")),
                Alias::new(alias),
            );
        }
    }
    let urn = || Expr::col((observation::Entity, O::SchoolUrn));
    let seen = |column: O| {
        Func::sum(
            Expr::case(scope.clone(), Expr::col((observation::Entity, column)))
                .finally(Expr::null()),
        )
    };
    query
        .expr_as(Func::count_distinct(urn()), Alias::new("schools"))
        .expr_as(
            Func::count_distinct(Expr::case(scope.clone(), urn()).finally(Expr::null())),
            Alias::new("visible"),
        )
        .expr_as(seen(O::Numerator), Alias::new("visible_numerator"))
        .expr_as(seen(O::Denominator), Alias::new("visible_denominator"))
        .expr_as(
            Expr::cust(format!(
                "CAST(SUM({}) AS BIGINT)",
                keys.record_key_sql("CAST(observation.school_urn AS BIGINT)")
            )),
            Alias::new("cell_key"),
        );
    let statement = rc.db.get_database_backend().build(&query);
    let mut rows: Vec<Row> = rc
        .db
        .query_all_raw(statement)
        .await?
        .iter()
        .map(|r| Row::from_query_result(r, ""))
        .collect::<std::result::Result<_, _>>()?;
    rows.sort_by(|a, b| {
        (
            &a.period,
            &a.pupil_group,
            &a.region_code,
            a.la_id,
            a.trust_id,
            &a.phase,
        )
            .cmp(&(
                &b.period,
                &b.pupil_group,
                &b.region_code,
                b.la_id,
                b.trust_id,
                &b.phase,
            ))
    });
    Ok(rows)
}

/// The LA or trust a cell names, if any.
async fn named(
    set: &OrganisationSet,
    rc: &super::RequestContext,
    id: Option<i32>,
) -> Result<Option<Organisation>> {
    Ok(match id {
        Some(id) => set.get(&rc.db, id).await?.map(Organisation),
        None => None,
    })
}

async fn org_id(rc: &super::RequestContext, kind: OrganisationKind, code: &str) -> Result<i32> {
    db::organisation_by_code(&rc.db, kind, code)
        .await?
        .map(|o| o.id)
        .ok_or_else(|| Error::NotFound(format!("{kind}:{code}")))
}
