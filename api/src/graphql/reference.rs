//! Public reference data: regions, organisations and the indicator catalogue.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject};
use entities::{indicator, organisation, region};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::cost;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::{loaders, request_context};
use crate::access;
use crate::db;
use crate::domain::{OrganisationKind, Polarity, Unit};
use crate::error::{Error, Result};

/// One of the nine English regions.
pub struct Region(pub region::Model);

#[Object]
impl Region {
    /// ONS code, e.g. `E12000008`.
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The region's local authorities, by LA code.
    #[graphql(complexity = "cost::list(cost::LAS_PER_REGION, child_complexity)")]
    async fn local_authorities(&self, ctx: &Context<'_>) -> Result<Vec<Organisation>> {
        let las = loaders(ctx)?.local_authorities(&self.0.code).await?;
        Ok(las.into_iter().map(Organisation).collect())
    }
}

/// A partner organisation.
pub struct Organisation(pub organisation::Model);

#[Object]
impl Organisation {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn kind(&self) -> Result<OrganisationKind> {
        OrganisationKind::parse(&self.0.kind).ok_or_else(|| {
            Error::Internal(format!(
                "organisation {} has unknown kind {:?}",
                self.0.id, self.0.kind
            ))
        })
    }

    /// LA code, trust UID, URN… unique within the kind.
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Null for national bodies.
    async fn region(&self, ctx: &Context<'_>) -> Result<Option<Region>> {
        let Some(code) = &self.0.region_code else {
            return Ok(None);
        };
        Ok(loaders(ctx)?.region(code).await?.map(Region))
    }
}

/// An entry of the indicator catalogue.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Indicator {
    /// Stable code, e.g. `attendance_rate`.
    pub code: String,
    pub name: String,
    pub description: String,
    #[graphql(skip)]
    pub unit_text: String,
    #[graphql(skip)]
    pub polarity_text: String,
}

#[ComplexObject]
impl Indicator {
    async fn unit(&self) -> Result<Unit> {
        Unit::parse(&self.unit_text)
            .ok_or_else(|| Error::Internal(format!("indicator {} unit", self.code)))
    }

    /// Whether a higher value is better, worse, or context only.
    async fn polarity(&self) -> Result<Polarity> {
        Polarity::parse(&self.polarity_text)
            .ok_or_else(|| Error::Internal(format!("indicator {} polarity", self.code)))
    }
}

impl From<indicator::Model> for Indicator {
    fn from(m: indicator::Model) -> Self {
        Indicator {
            code: m.code,
            name: m.name,
            description: m.description,
            unit_text: m.unit,
            polarity_text: m.polarity,
        }
    }
}

/// Filters for `organisations`; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct OrganisationFilter {
    pub kind: Option<OrganisationKind>,
    pub region_code: Option<String>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

#[derive(Default)]
pub struct ReferenceQuery;

#[Object]
impl ReferenceQuery {
    /// The nine English regions.
    #[graphql(complexity = "cost::list(cost::REGIONS, child_complexity)")]
    async fn regions(&self, ctx: &Context<'_>) -> Result<Vec<Region>> {
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        let rows = region::Entity::find()
            .order_by_asc(region::Column::Code)
            .all(&rc.db)
            .await?;
        Ok(rows.into_iter().map(Region).collect())
    }

    async fn region(&self, ctx: &Context<'_>, code: String) -> Result<Option<Region>> {
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        Ok(region::Entity::find_by_id(code)
            .one(&rc.db)
            .await?
            .map(Region))
    }

    /// Partner organisations, by id.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn organisations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: OrganisationFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, Organisation, Totals>> {
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        let page = PageRequest::new(first, after, &rc.limits)?;
        let mut query = organisation::Entity::find();
        if let Some(kind) = filter.kind {
            query = query.filter(organisation::Column::Kind.eq(kind.as_str()));
        }
        if let Some(region) = filter.region_code {
            query = query.filter(organisation::Column::RegionCode.eq(region));
        }
        if let Some(text) = filter.name_contains {
            query = query.filter(
                Expr::expr(Func::lower(Expr::col(organisation::Column::Name)))
                    .like(like_pattern(&text)),
            );
        }
        keyset_page(
            ctx,
            &rc.db,
            query,
            organisation::Column::Id,
            page,
            |rows| rows.into_iter().map(Organisation).collect(),
            |o| o.0.id.into(),
        )
        .await
    }

    /// One organisation by kind and code, e.g. `LOCAL_AUTHORITY` `852`.
    async fn organisation(
        &self,
        ctx: &Context<'_>,
        kind: OrganisationKind,
        code: String,
    ) -> Result<Option<Organisation>> {
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        let org = db::organisation_by_code(&rc.db, kind, &code).await?;
        Ok(org.map(Organisation))
    }

    /// The indicator catalogue.
    #[graphql(complexity = "cost::list(cost::INDICATORS, child_complexity)")]
    async fn indicators(&self, ctx: &Context<'_>) -> Result<Vec<Indicator>> {
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        let rows = indicator::Entity::find()
            .order_by_asc(indicator::Column::Code)
            .all(&rc.db)
            .await?;
        Ok(rows.into_iter().map(Indicator::from).collect())
    }

    async fn indicator(&self, ctx: &Context<'_>, code: String) -> Result<Option<Indicator>> {
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        Ok(indicator::Entity::find_by_id(code)
            .one(&rc.db)
            .await?
            .map(Indicator::from))
    }
}

/// A lower-case `LIKE` pattern matching `text` anywhere. `%`, `_` and `\\` in the
/// user's text are escaped so they match literally instead of acting as wildcards.
pub(super) fn like_pattern(text: &str) -> LikeExpr {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    LikeExpr::new(pattern).escape('\\')
}
