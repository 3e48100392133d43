//! `aggregate`: analysts' figures over any grouping of schools, computed from the finest
//! data the hub holds (school figures) and released under disclosure control.
//!
//! A figure over a group is the sum of its schools' numerators over the sum of their
//! denominators, so it is exact rather than an average of rates. Before anything is
//! returned the whole table the answer belongs to is protected (see `disclosure`):
//! filters are treated as extra grouping dimensions and applied *after* protection,
//! so a cell is withheld or shown the same way whatever filter it is asked through,
//! and a complementary cell cannot be pried loose by asking for it alone.

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use entities::{observation, school};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query as SqlQuery};
use sea_orm::{ColumnTrait, ConnectionTrait, FromQueryResult};

use super::cost;
use super::loaders::OrganisationSet;
use super::reference::{Indicator, Organisation};
use super::{loaders, request_context};
use crate::db;
use crate::disclosure::{self, Cell};
use crate::domain::{AccessLevel, GeographicLevel, OrganisationKind, Phase, PupilGroup, Unit};
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
    /// Schools the figure is built from.
    pub school_count: i64,
    pub suppressed: bool,
    /// `c` when withheld.
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
    #[graphql(complexity = "100 + 10 * child_complexity")]
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
        let rows = fetch(rc, &indicator.code, &request, scope).await?;
        let unit = Unit::parse(&indicator.unit).unwrap_or(Unit::Count);
        let mut cells: Vec<Cell> = rows
            .iter()
            .map(|row| Cell {
                unit,
                numerator: row.numerator,
                denominator: row.denominator,
                value: None,
                schools: Some(row.schools),
                caller_sees_schools: row.visible == row.schools,
                withheld: false,
            })
            .collect();
        disclosure::protect(
            &mut cells,
            &breakdowns(&rows, &request.dims),
            &rc.disclosure,
        );

        let selected: Vec<usize> = (0..rows.len())
            .filter(|&i| request.selects(&rows[i]))
            .collect();
        if selected.len() > MAX_CELLS {
            return Err(Error::bad_input(format!(
                "the answer would hold {} cells, above {MAX_CELLS}; narrow it with filters",
                selected.len()
            )));
        }
        let organisations = OrganisationSet::new(
            selected
                .iter()
                .flat_map(|&i| [rows[i].la_id, rows[i].trust_id])
                .flatten(),
        );
        let mut answer = Vec::with_capacity(selected.len());
        for i in selected {
            let local_authority = named(&organisations, rc, rows[i].la_id).await?;
            let trust = named(&organisations, rc, rows[i].trust_id).await?;
            answer.push({
                let (row, cell) = (&rows[i], &cells[i]);
                let value = match row.denominator {
                    _ if unit == Unit::Count => row.numerator,
                    Some(d) if d > 0.0 => row
                        .numerator
                        .map(|n| (n / d * indicator.multiplier * 10_000.0).round() / 10_000.0),
                    _ => None,
                };
                let shown = |x: Option<f64>| if cell.withheld { None } else { x };
                AggregateCell {
                    period: row.period.clone(),
                    pupil_group: PupilGroup::parse(&row.pupil_group).unwrap_or(PupilGroup::All),
                    region_code: row.region_code.clone(),
                    local_authority,
                    trust,
                    phase: row.phase.as_deref().and_then(Phase::parse),
                    value: shown(value),
                    numerator: shown(row.numerator),
                    denominator: shown(row.denominator),
                    school_count: row.schools,
                    suppressed: cell.withheld,
                    suppression_reason: cell.withheld.then(|| disclosure::CONFIDENTIAL.to_owned()),
                }
            });
        }
        Ok(Aggregate {
            indicator: indicator.into(),
            group_by: request.group_by,
            cells: answer,
        })
    }
}

/// A validated request.
struct Request {
    periods: Vec<String>,
    group_by: Vec<AggregateDimension>,
    /// Dimensions of the table that is protected: the grouping, plus every filtered
    /// dimension, plus the region whenever LAs are in it (LAs add up to regions).
    dims: Vec<AggregateDimension>,
    /// Groups returned.
    groups: Vec<PupilGroup>,
    /// Groups computed: the returned ones and their partners in the disadvantaged split.
    computed_groups: Vec<PupilGroup>,
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
        let mut computed_groups = groups.clone();
        for group in &groups {
            match group {
                PupilGroup::Disadvantaged => computed_groups.push(PupilGroup::NotDisadvantaged),
                PupilGroup::NotDisadvantaged => computed_groups.push(PupilGroup::Disadvantaged),
                _ => {}
            }
        }
        computed_groups.sort();
        computed_groups.dedup();

        let mut dims: Vec<AggregateDimension> = group_by
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
        for (set, dim) in [
            (filter.region_code.is_some(), AggregateDimension::Region),
            (la.is_some(), AggregateDimension::LocalAuthority),
            (trust.is_some(), AggregateDimension::Trust),
            (filter.phase.is_some(), AggregateDimension::Phase),
            (
                dims.contains(&AggregateDimension::LocalAuthority) || la.is_some(),
                AggregateDimension::Region,
            ),
        ] {
            if set {
                dims.push(dim);
            }
        }
        dims.sort();
        dims.dedup();
        Ok(Request {
            periods,
            group_by,
            dims,
            groups,
            computed_groups,
            region: filter.region_code,
            la,
            trust,
            phase: filter.phase,
        })
    }

    fn has(&self, dim: AggregateDimension) -> bool {
        self.dims.contains(&dim)
    }

    /// Whether a protected cell is part of the answer.
    fn selects(&self, row: &Row) -> bool {
        self.region
            .as_ref()
            .is_none_or(|r| row.region_code.as_ref() == Some(r))
            && self.la.is_none_or(|id| row.la_id == Some(id))
            && self.trust.is_none_or(|id| row.trust_id == Some(id))
            && self
                .phase
                .is_none_or(|p| row.phase.as_deref() == Some(p.as_str()))
            && PupilGroup::parse(&row.pupil_group).is_some_and(|g| self.groups.contains(&g))
    }
}

/// One cell of the protected table, as the database returns it.
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
    /// Schools in the cell the caller holds SCHOOL scope over.
    visible: i64,
}

impl Row {
    fn coordinate(&self, dim: AggregateDimension) -> String {
        match dim {
            AggregateDimension::Region => format!("{:?}", self.region_code),
            AggregateDimension::LocalAuthority => format!("{:?}", self.la_id),
            AggregateDimension::Trust => format!("{:?}", self.trust_id),
            AggregateDimension::Phase => format!("{:?}", self.phase),
            AggregateDimension::PupilGroup => self.pupil_group.clone(),
        }
    }
}

/// One `GROUP BY` over the school figures of the indicator and periods, for the whole
/// country: the table protection needs, whatever the filters.
async fn fetch(
    rc: &super::RequestContext,
    indicator: &str,
    request: &Request,
    scope: sea_orm::sea_query::SimpleExpr,
) -> Result<Vec<Row>> {
    use observation::Column as O;
    use school::Column as S;
    let mut query = SqlQuery::select();
    query
        .expr_as(
            Expr::col((observation::Entity, O::Period)),
            Alias::new("period"),
        )
        .expr_as(
            Expr::col((observation::Entity, O::PupilGroup)),
            Alias::new("pupil_group"),
        )
        .from(observation::Entity)
        .inner_join(
            school::Entity,
            Expr::col((school::Entity, S::Urn)).equals((observation::Entity, O::SchoolUrn)),
        )
        .and_where(O::GeographicLevel.eq(GeographicLevel::School.as_str()))
        .and_where(O::IndicatorCode.eq(indicator))
        .and_where(O::Period.is_in(request.periods.iter().cloned()))
        .and_where(O::PupilGroup.is_in(request.computed_groups.iter().map(|g| g.as_str())))
        .group_by_col((observation::Entity, O::Period))
        .group_by_col((observation::Entity, O::PupilGroup));
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
    query
        .expr_as(
            Func::sum(Expr::col((observation::Entity, O::Numerator))),
            Alias::new("numerator"),
        )
        .expr_as(
            Func::sum(Expr::col((observation::Entity, O::Denominator))),
            Alias::new("denominator"),
        )
        .expr_as(Func::count_distinct(urn()), Alias::new("schools"))
        .expr_as(
            Func::count_distinct(Expr::case(scope, urn()).finally(Expr::null())),
            Alias::new("visible"),
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

/// For each dimension, the cells that differ only in it add up to a total the caller
/// can ask for; for pupil groups, only the disadvantaged split adds up (to ALL).
fn breakdowns(rows: &[Row], dims: &[AggregateDimension]) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    let mut varying: Vec<AggregateDimension> = dims.to_vec();
    varying.push(AggregateDimension::PupilGroup);
    for &dim in &varying {
        let mut by_rest: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            if dim == AggregateDimension::PupilGroup
                && !matches!(
                    PupilGroup::parse(&row.pupil_group),
                    Some(PupilGroup::Disadvantaged | PupilGroup::NotDisadvantaged)
                )
            {
                continue;
            }
            let mut rest = vec![row.period.clone()];
            rest.extend(
                varying
                    .iter()
                    .filter(|d| **d != dim)
                    .map(|d| row.coordinate(*d)),
            );
            by_rest.entry(rest).or_default().push(i);
        }
        all.extend(by_rest.into_values().filter(|b| b.len() > 1));
    }
    all
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
