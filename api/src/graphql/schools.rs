//! The school register: listing and finding schools. The `School` object itself, with
//! the figures nested under each school, is in `figures`.

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object};
use entities::{organisation, school};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query as SqlQuery};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::figures::School;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::reference::like_pattern;
use super::request_context;
use crate::access;
use crate::domain::{EstablishmentType, OrganisationKind, Phase};
use crate::error::Result;

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
