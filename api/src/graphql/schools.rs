//! The school register: public fields, plus figures nested under each school.

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object};
use chrono::NaiveDate;
use entities::{organisation, school};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query as SqlQuery};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use std::sync::Arc;

use super::figures::{FigureArgs, Observation, SchoolSource, Series};
use super::loaders::SchoolPage;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::reference::{Organisation, Region, like_pattern};
use super::{loaders, request_context};
use crate::access;
use crate::domain::{EstablishmentType, OrganisationKind, Phase};
use crate::error::{Error, Result};

/// A school on the register. Nodes of one list share a [`SchoolPage`], so their LAs,
/// trusts and figures load in one query for the whole list.
pub struct School {
    model: Arc<school::Model>,
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

/// Filters for `schools`; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct SchoolFilter {
    pub region_code: Option<String>,
    /// 3-digit LA code, e.g. `852`.
    pub la_code: Option<String>,
    /// Trust UID.
    pub trust_code: Option<String>,
    pub phase: Option<Phase>,
    pub establishment_type: Option<EstablishmentType>,
    pub is_open: Option<bool>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

#[derive(Default)]
pub struct SchoolQuery;

#[Object]
impl SchoolQuery {
    /// Schools on the register, by URN.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn schools(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: SchoolFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, School, Totals>> {
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        let page = PageRequest::new(first, after, &rc.limits)?;
        let mut query = school::Entity::find();
        if let Some(region) = filter.region_code {
            query = query.filter(school::Column::RegionCode.eq(region));
        }
        if let Some(la) = filter.la_code {
            query = query.filter(
                school::Column::LaId
                    .in_subquery(organisation_ids(OrganisationKind::LocalAuthority, la)),
            );
        }
        if let Some(trust) = filter.trust_code {
            query = query.filter(
                school::Column::TrustId
                    .in_subquery(organisation_ids(OrganisationKind::Trust, trust)),
            );
        }
        if let Some(phase) = filter.phase {
            query = query.filter(school::Column::Phase.eq(phase.as_str()));
        }
        if let Some(kind) = filter.establishment_type {
            query = query.filter(school::Column::EstablishmentType.eq(kind.as_str()));
        }
        if let Some(open) = filter.is_open {
            query = query.filter(school::Column::IsOpen.eq(open));
        }
        if let Some(text) = filter.name_contains {
            query = query.filter(
                Expr::expr(Func::lower(Expr::col(school::Column::Name))).like(like_pattern(&text)),
            );
        }
        keyset_page(
            ctx,
            &rc.db,
            query,
            school::Column::Urn,
            page,
            School::list,
            |s| s.model.urn.into(),
        )
        .await
    }

    /// One school by URN; null when there is no such school.
    async fn school(&self, ctx: &Context<'_>, urn: i32) -> Result<Option<School>> {
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        let row = school::Entity::find_by_id(urn).one(&rc.db).await?;
        Ok(School::list(row.into_iter().collect()).pop())
    }
}

/// `SELECT id FROM organisation WHERE kind = ? AND code = ?`, for filters that name an
/// organisation by its public code.
pub(super) fn organisation_ids(
    kind: OrganisationKind,
    code: String,
) -> sea_orm::sea_query::SelectStatement {
    SqlQuery::select()
        .column(organisation::Column::Id)
        .from(organisation::Entity)
        .and_where(organisation::Column::Kind.eq(kind.as_str()))
        .and_where(organisation::Column::Code.eq(code))
        .to_owned()
}
