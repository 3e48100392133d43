//! The audit log, for hub administrators: who read pupil-level data, when, through
//! which operation, and how much of it.

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use entities::{audit_event, organisation};
use sea_orm::sea_query::Query as SqlQuery;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::loaders::OrganisationSet;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::reference::Organisation;
use super::request_context;
use crate::domain::{AccessLevel, AuditAction, OrganisationKind};
use crate::error::{Error, Result};

/// One audited request. Nodes of one page share an [`OrganisationSet`], so their
/// organisations load in one query.
pub struct AuditEvent {
    row: audit_event::Model,
    organisations: Arc<OrganisationSet>,
}

impl AuditEvent {
    fn list(rows: Vec<audit_event::Model>) -> Vec<AuditEvent> {
        let organisations = Arc::new(OrganisationSet::new(
            rows.iter().map(|row| row.organisation_id),
        ));
        rows.into_iter()
            .map(|row| AuditEvent {
                row,
                organisations: organisations.clone(),
            })
            .collect()
    }
}

#[Object]
impl AuditEvent {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.row.occurred_at
    }

    /// The token's `sub`: the user, as the identity provider names them.
    async fn subject(&self) -> &str {
        &self.row.subject
    }

    /// Id of the organisation the user acted for.
    async fn organisation_id(&self) -> i32 {
        self.row.organisation_id
    }

    /// The organisation the user acted for.
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Organisation> {
        let rc = request_context(ctx)?;
        let id = self.row.organisation_id;
        self.organisations
            .get(&rc.db, id)
            .await?
            .map(Organisation)
            .ok_or_else(|| Error::Internal(format!("audit event {} organisation", self.row.id)))
    }

    /// Every role the request ran with, comma-separated, e.g. `LA_OFFICER`.
    async fn role(&self) -> &str {
        &self.row.role
    }

    async fn action(&self) -> Result<AuditAction> {
        AuditAction::parse(&self.row.action)
            .ok_or_else(|| Error::Internal(format!("audit event {} action", self.row.id)))
    }

    async fn access_level(&self) -> Result<AccessLevel> {
        AccessLevel::parse(&self.row.access_level)
            .ok_or_else(|| Error::Internal(format!("audit event {} level", self.row.id)))
    }

    /// The GraphQL operation's name, when the request's document named one.
    async fn operation_name(&self) -> Option<&str> {
        self.row.operation_name.as_deref()
    }

    /// What the request asked for, e.g. `school:852001`, `la:852,period:2024/25` or
    /// `all-in-scope`.
    async fn scope(&self) -> &str {
        &self.row.scope
    }

    /// Rows the response carried (0 when only `totalCount` was asked for).
    async fn row_count(&self) -> i64 {
        self.row.row_count
    }
}

/// Filters for `auditEvents`; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Code of the organisation the user acted for: LA code, trust UID, URN… Codes are
    /// unique only within a kind (an RSC office and an inspection team share their
    /// region's code); add `organisationKind` to tell them apart.
    pub organisation_code: Option<String>,
    pub organisation_kind: Option<OrganisationKind>,
    /// The token's `sub`.
    pub subject: Option<String>,
    pub action: Option<AuditAction>,
    /// Events at or after this instant.
    pub since: Option<DateTime<Utc>>,
}

impl AuditEventFilter {
    fn query(self) -> sea_orm::Select<audit_event::Entity> {
        use audit_event::Column;
        let mut query = audit_event::Entity::find();
        if self.organisation_code.is_some() || self.organisation_kind.is_some() {
            let mut organisations = SqlQuery::select()
                .column(organisation::Column::Id)
                .from(organisation::Entity)
                .to_owned();
            if let Some(code) = self.organisation_code {
                organisations.and_where(organisation::Column::Code.eq(code));
            }
            if let Some(kind) = self.organisation_kind {
                organisations.and_where(organisation::Column::Kind.eq(kind.as_str()));
            }
            query = query.filter(Column::OrganisationId.in_subquery(organisations));
        }
        if let Some(subject) = self.subject {
            query = query.filter(Column::Subject.eq(subject));
        }
        if let Some(action) = self.action {
            query = query.filter(Column::Action.eq(action.as_str()));
        }
        if let Some(since) = self.since {
            query = query.filter(Column::OccurredAt.gte(since));
        }
        query
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit log, oldest first (by id). Hub administrators only.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: AuditEventFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, AuditEvent, Totals>> {
        let rc = request_context(ctx)?;
        rc.no_store();
        rc.access().require_admin()?;
        let page = PageRequest::new(first, after, &rc.limits)?;
        keyset_page(
            ctx,
            &rc.db,
            filter.query(),
            audit_event::Column::Id,
            page,
            AuditEvent::list,
            |event| event.row.id,
        )
        .await
    }
}
