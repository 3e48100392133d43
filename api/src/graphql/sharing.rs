//! Who am I, and what has been shared with whom: the `me` query and sharing
//! agreements (list, create, revoke).
//!
//! An agreement lets a provider (an LA, a trust, a school) widen a consumer's PUPIL or
//! SCHOOL scope over what the provider holds, for a stated purpose, between two dates.
//! The policy reads agreements when it works out a caller's scope (`access`); this file
//! only keeps them. Every change is audited in the same transaction as the change.

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, NaiveDate, Utc};
use entities::{organisation, sharing_agreement};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use super::cost;
use super::loaders::OrganisationSet;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::reference::Organisation;
use super::request_context;
use crate::access::{self, AGREEMENT_ACTIVE, AGREEMENT_REVOKED, Grant, Source};
use crate::audit::{self, AuditEvent};
use crate::auth::parse_org_ref;
use crate::cache::tags;
use crate::db;
use crate::domain::{AccessLevel, AuditAction, Role};
use crate::error::{Error, Result};

/// The longest purpose statement an agreement may carry.
const MAX_PURPOSE_CHARS: usize = 1_000;

/// The caller as the hub sees it.
pub struct Me {
    subject: String,
    organisation: organisation::Model,
    roles: Vec<Role>,
    aggregate: bool,
    scopes: Vec<Scope>,
}

#[Object]
impl Me {
    /// The token's `sub`.
    async fn subject(&self) -> &str {
        &self.subject
    }

    async fn organisation(&self) -> Organisation {
        Organisation(self.organisation.clone())
    }

    async fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Whether the caller may read AGGREGATE figures (nationally, under disclosure
    /// control).
    async fn aggregate(&self) -> bool {
        self.aggregate
    }

    /// Every PUPIL and SCHOOL grant the caller holds, with where it came from.
    #[graphql(complexity = "cost::list(cost::SCOPES, child_complexity)")]
    async fn scopes(&self) -> &[Scope] {
        &self.scopes
    }
}

/// What a grant covers.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    /// Every school in a region.
    Region,
    /// Every school in an LA's area.
    LocalAuthority,
    /// An LA's maintained schools.
    MaintainedSchools,
    /// Pupils resident in an LA, wherever they go to school.
    Residents,
    Trust,
    School,
}

/// One grant: a level over a set of schools or pupils.
#[derive(async_graphql::SimpleObject)]
pub struct Scope {
    level: AccessLevel,
    kind: ScopeKind,
    /// Region code, LA code, trust UID or URN.
    code: String,
    /// The role that grants it, when it comes from the role table.
    role: Option<Role>,
    /// The agreement that grants it, when it comes from one.
    agreement_id: Option<ID>,
    /// `KIND:CODE` of the agreement's provider.
    provider: Option<String>,
}

impl From<&access::ScopeEntry> for Scope {
    fn from(entry: &access::ScopeEntry) -> Self {
        let (kind, code) = match &entry.grant {
            Grant::Region(code) => (ScopeKind::Region, code.clone()),
            Grant::LocalAuthority { code, .. } => (ScopeKind::LocalAuthority, code.clone()),
            Grant::MaintainedBy { code, .. } => (ScopeKind::MaintainedSchools, code.clone()),
            Grant::ResidentIn(code) => (ScopeKind::Residents, code.clone()),
            Grant::Trust { code, .. } => (ScopeKind::Trust, code.clone()),
            Grant::School(urn) => (ScopeKind::School, urn.to_string()),
        };
        let (role, agreement_id, provider) = match &entry.source {
            Source::Role(role) => (Some(*role), None, None),
            Source::Agreement { id, provider } => {
                (None, Some(ID(id.to_string())), Some(provider.clone()))
            }
        };
        Scope {
            level: entry.level,
            kind,
            code,
            role,
            agreement_id,
            provider,
        }
    }
}

/// A provider's grant of PUPIL or SCHOOL access to a consumer. Agreements of one list
/// share an [`OrganisationSet`], so their providers and consumers load in one query.
pub struct SharingAgreement(sharing_agreement::Model, Arc<OrganisationSet>);

impl SharingAgreement {
    fn list(rows: Vec<sharing_agreement::Model>) -> Vec<SharingAgreement> {
        let organisations = Arc::new(OrganisationSet::new(
            rows.iter().flat_map(|a| [a.provider_id, a.consumer_id]),
        ));
        rows.into_iter()
            .map(|row| SharingAgreement(row, organisations.clone()))
            .collect()
    }

    fn one(row: sharing_agreement::Model) -> SharingAgreement {
        Self::list(vec![row]).remove(0)
    }

    async fn organisation(&self, ctx: &Context<'_>, id: i32) -> Result<Organisation> {
        let rc = request_context(ctx)?;
        self.1
            .get(&rc.db, id)
            .await?
            .map(Organisation)
            .ok_or_else(|| Error::Internal(format!("organisation {id} missing")))
    }
}

#[Object]
impl SharingAgreement {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn provider(&self, ctx: &Context<'_>) -> Result<Organisation> {
        self.organisation(ctx, self.0.provider_id).await
    }

    async fn consumer(&self, ctx: &Context<'_>) -> Result<Organisation> {
        self.organisation(ctx, self.0.consumer_id).await
    }

    async fn access_level(&self) -> Result<AccessLevel> {
        AccessLevel::parse(&self.0.access_level)
            .ok_or_else(|| Error::Internal(format!("agreement {} level", self.0.id)))
    }

    async fn purpose(&self) -> &str {
        &self.0.purpose
    }

    async fn valid_from(&self) -> NaiveDate {
        self.0.valid_from
    }

    async fn valid_to(&self) -> NaiveDate {
        self.0.valid_to
    }

    /// `ACTIVE` or `REVOKED`, as recorded; see `inForce` for today.
    async fn status(&self) -> &str {
        &self.0.status
    }

    /// Whether the agreement widens the consumer's scope today: active, not revoked,
    /// and today within its dates.
    async fn in_force(&self) -> bool {
        let today = Utc::now().date_naive();
        self.0.status == AGREEMENT_ACTIVE
            && self.0.revoked_at.is_none()
            && self.0.valid_from <= today
            && today <= self.0.valid_to
    }

    /// The `sub` of whoever made it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// Which agreements to list.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum AgreementDirection {
    /// Made by the caller's organisation.
    Granted,
    /// Made to the caller's organisation.
    Received,
    /// Both; for `HUB_ADMIN`, every agreement.
    #[default]
    All,
}

#[derive(Default)]
pub struct SharingQuery;

#[Object]
impl SharingQuery {
    /// The caller: organisation, roles and effective scopes. Null without a token.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<Me>> {
        let rc = request_context(ctx)?;
        // It names the person, and the cache shares answers between people.
        rc.no_store();
        let access = rc.access();
        let Some(principal) = access.principal() else {
            return Ok(None);
        };
        Ok(Some(Me {
            subject: principal.subject.clone(),
            organisation: principal.organisation.clone(),
            roles: principal.roles.clone(),
            aggregate: access.has_aggregate(),
            scopes: access.entries().iter().map(Scope::from).collect(),
        }))
    }

    /// Agreements the caller's organisation made or received (every agreement for
    /// `HUB_ADMIN`), by id.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn sharing_agreements(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] direction: AgreementDirection,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, SharingAgreement, Totals>> {
        use sharing_agreement::Column;
        let rc = request_context(ctx)?;
        rc.reads(tags::AGREEMENTS);
        let access = rc.access();
        let principal = access.require_principal()?;
        let page = PageRequest::new(first, after, &rc.limits)?;
        let org = principal.organisation.id;
        let mut query = sharing_agreement::Entity::find().filter(access.visible_agreements());
        query = match direction {
            AgreementDirection::Granted => query.filter(Column::ProviderId.eq(org)),
            AgreementDirection::Received => query.filter(Column::ConsumerId.eq(org)),
            AgreementDirection::All => query,
        };
        keyset_page(
            ctx,
            &rc.db,
            query,
            Column::Id,
            page,
            SharingAgreement::list,
            |a| a.0.id.into(),
        )
        .await
    }
}

/// A new agreement.
#[derive(InputObject)]
pub struct NewSharingAgreement {
    /// `KIND:CODE` of the provider, e.g. `LOCAL_AUTHORITY:850`.
    pub provider: String,
    /// `KIND:CODE` of the consumer.
    pub consumer: String,
    /// `PUPIL` or `SCHOOL`; AGGREGATE figures need no agreement.
    pub access_level: AccessLevel,
    /// Why the data is shared (required; shown to both sides and kept in the audit).
    pub purpose: String,
    pub valid_from: NaiveDate,
    /// Last day in force, inclusive.
    pub valid_to: NaiveDate,
}

#[derive(Default)]
pub struct SharingMutation;

#[Object]
impl SharingMutation {
    /// Grants the consumer the provider's scope at one level. Allowed to `HUB_ADMIN`
    /// and to the provider's own officers.
    async fn create_sharing_agreement(
        &self,
        ctx: &Context<'_>,
        input: NewSharingAgreement,
    ) -> Result<SharingAgreement> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        let principal = access.require_principal()?;
        let provider = organisation_by_ref(rc, &input.provider).await?;
        let consumer = organisation_by_ref(rc, &input.consumer).await?;
        if !access.may_manage_agreements_of(&provider) {
            return Err(Error::Forbidden(format!(
                "only HUB_ADMIN or {}'s own officers may share its data",
                input.provider
            )));
        }
        if !access::may_share(input.access_level) {
            return Err(Error::bad_input(
                "AGGREGATE figures are open to every partner; share PUPIL or SCHOOL access",
            ));
        }
        if access::organisation_grants(&provider, input.access_level).is_empty() {
            return Err(Error::bad_input(format!(
                "{} holds no {} data to share",
                input.provider, input.access_level
            )));
        }
        if provider.id == consumer.id {
            return Err(Error::bad_input("provider and consumer are the same"));
        }
        let purpose = input.purpose.trim();
        if purpose.is_empty() || purpose.chars().count() > MAX_PURPOSE_CHARS {
            return Err(Error::bad_input(format!(
                "purpose is required, at most {MAX_PURPOSE_CHARS} characters"
            )));
        }
        if input.valid_to < input.valid_from {
            return Err(Error::bad_input("validTo is before validFrom"));
        }
        let txn = rc.db.begin().await?;
        let agreement = sharing_agreement::ActiveModel {
            provider_id: Set(provider.id),
            consumer_id: Set(consumer.id),
            access_level: Set(input.access_level.as_str().to_owned()),
            purpose: Set(purpose.to_owned()),
            valid_from: Set(input.valid_from),
            valid_to: Set(input.valid_to),
            status: Set(AGREEMENT_ACTIVE.to_owned()),
            created_by: Set(principal.subject.clone()),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        finish_write(ctx, rc, txn, principal, input.access_level, agreement.id).await?;
        Ok(SharingAgreement::one(agreement))
    }

    /// Revokes an agreement at once. Revoking a revoked agreement changes nothing.
    async fn revoke_sharing_agreement(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<SharingAgreement> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        let principal = access.require_principal()?;
        let not_found = || Error::NotFound(format!("sharing agreement {}", id.as_str()));
        let id: i32 = id.parse().map_err(|_| not_found())?;
        let agreement = sharing_agreement::Entity::find_by_id(id)
            .one(&rc.db)
            .await?
            .ok_or_else(not_found)?;
        let provider = organisation::Entity::find_by_id(agreement.provider_id)
            .one(&rc.db)
            .await?
            .ok_or_else(|| Error::Internal(format!("agreement {id} provider missing")))?;
        if !access.may_manage_agreements_of(&provider) {
            // Someone who may not manage it learns nothing about it either.
            return Err(Error::Forbidden(format!(
                "only HUB_ADMIN or the provider may revoke agreement {id}"
            )));
        }
        if agreement.status == AGREEMENT_REVOKED {
            return Ok(SharingAgreement::one(agreement));
        }
        let level = AccessLevel::parse(&agreement.access_level).unwrap_or(AccessLevel::Pupil);
        let txn = rc.db.begin().await?;
        let mut change: sharing_agreement::ActiveModel = agreement.into();
        change.status = Set(AGREEMENT_REVOKED.to_owned());
        change.revoked_at = Set(Some(Utc::now()));
        let agreement = change.update(&txn).await?;
        finish_write(ctx, rc, txn, principal, level, id).await?;
        Ok(SharingAgreement::one(agreement))
    }
}

/// Ends an agreement write: records its audit event in the same transaction, commits,
/// then invalidates cached answers built on agreements (scopes and agreement lists).
async fn finish_write(
    ctx: &Context<'_>,
    rc: &super::RequestContext,
    txn: sea_orm::DatabaseTransaction,
    principal: &crate::identity::Principal,
    level: AccessLevel,
    id: i32,
) -> Result<()> {
    audit::record(
        &txn,
        AuditEvent::new(
            principal,
            AuditAction::Write,
            level,
            format!("agreement:{id}"),
        )
        .operation(ctx.query_env.operation_name.as_deref())
        .rows(1),
    )
    .await?;
    txn.commit().await?;
    rc.cache.invalidate(&[tags::AGREEMENTS.to_owned()]).await;
    Ok(())
}

pub(super) async fn organisation_by_ref(
    rc: &super::RequestContext,
    text: &str,
) -> Result<organisation::Model> {
    let (kind, code) = parse_org_ref(text).ok_or_else(|| {
        Error::bad_input(format!(
            "{text:?} is not an organisation reference like LOCAL_AUTHORITY:852"
        ))
    })?;
    db::organisation_by_code(&rc.db, kind, code)
        .await?
        .ok_or_else(|| Error::NotFound(format!("organisation {text}")))
}
