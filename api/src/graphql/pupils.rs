//! Pupil records: the hub's one PUPIL-level list, for targeted work with individual
//! children (attendance, exclusions, children missing education).
//!
//! Three things hold for every request here, in this order:
//!
//! 1. The caller's `Access` decides: no PUPIL grant at all is `FORBIDDEN`, a school named
//!    directly must be in PUPIL scope (or reachable by residence), and the list query
//!    always carries [`Access::visible_pupils`], so rows out of scope are neither
//!    returned nor counted in `totalCount`.
//! 2. The page is fetched.
//! 3. The read is written to the audit log before anything is returned; if that write
//!    fails the request fails, so no pupil data ever leaves the hub unaudited.

use std::collections::HashMap;

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use entities::{organisation, pupil_record, school};
use sea_orm::sea_query::Query as SqlQuery;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};

use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::{RequestContext, request_context};
use crate::access::Access;
use crate::audit::{self, AuditEvent};
use crate::db;
use crate::domain::{AccessLevel, OrganisationKind, SenStatus, is_valid_period};
use crate::error::{Error, Result};
use crate::pseudonym;

/// One pupil in one academic year, at one school.
pub struct PupilRecord {
    record: pupil_record::Model,
    /// The key this reader is shown ([`pseudonym::reader_key`]), set by [`show_keys`]
    /// once the page's schools are read; the stored linkage key never leaves the hub.
    key: String,
}

#[Object]
impl PupilRecord {
    async fn id(&self) -> ID {
        ID(self.record.id.to_string())
    }

    /// A keyed hash of the pupil number, for this reader's organisation only: the same
    /// pupil has the same key in every year at every school the organisation writes,
    /// and in every year at the schools of each other data holder (an LA's maintained
    /// schools, a trust's academies) — a different key per holder. Keys cannot be
    /// matched across organisations, and the number itself is never stored.
    async fn pupil_key(&self) -> &str {
        &self.key
    }

    /// Academic year, e.g. `2023/24`.
    async fn period(&self) -> &str {
        &self.record.period
    }

    async fn school_urn(&self) -> i32 {
        self.record.school_urn
    }

    /// LA code of the pupil's home address (may differ from the school's LA).
    async fn home_la_code(&self) -> &str {
        &self.record.home_la_code
    }

    /// 0 is Reception.
    async fn year_group(&self) -> i16 {
        self.record.year_group
    }

    async fn disadvantaged(&self) -> bool {
        self.record.disadvantaged
    }

    async fn sen_status(&self) -> Result<SenStatus> {
        SenStatus::parse(&self.record.sen_status)
            .ok_or_else(|| Error::Internal(format!("pupil record {} SEN status", self.record.id)))
    }

    /// English as an additional language.
    async fn eal(&self) -> bool {
        self.record.eal
    }

    /// Looked after by a local authority.
    async fn in_care(&self) -> bool {
        self.record.in_care
    }

    async fn sessions_possible(&self) -> i32 {
        self.record.sessions_possible
    }

    async fn sessions_missed(&self) -> i32 {
        self.record.sessions_missed
    }

    async fn suspensions(&self) -> i32 {
        self.record.suspensions
    }

    async fn permanently_excluded(&self) -> bool {
        self.record.permanently_excluded
    }

    /// Left for elective home education.
    async fn left_for_ehe(&self) -> bool {
        self.record.left_for_ehe
    }

    async fn missing_education(&self) -> bool {
        self.record.missing_education
    }

    /// Year 6 only: met the expected standard in reading, writing and maths.
    async fn ks2_rwm_expected(&self) -> Option<bool> {
        self.record.ks2_rwm_expected
    }

    /// Year 11 only.
    async fn ks4_attainment8(&self) -> Option<f64> {
        self.record.ks4_attainment8
    }

    /// Year 11 only.
    async fn ks4_progress8(&self) -> Option<f64> {
        self.record.ks4_progress8
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.record.updated_at
    }
}

/// Filters for `pupilRecords`; all optional, combined with AND, and always within the
/// caller's PUPIL scope.
#[derive(InputObject, Default)]
pub struct PupilRecordFilter {
    /// Records at one school. `FORBIDDEN` unless the school is in PUPIL scope, or the
    /// caller sees pupils by residence (then only those residents come back).
    pub school_urn: Option<i32>,
    /// Records at schools in this LA's area (3-digit LA code, e.g. `852`).
    pub la_code: Option<String>,
    /// Records of pupils whose home is in this LA, wherever they go to school
    /// (3-digit LA code).
    pub home_la_code: Option<String>,
    /// Academic year, e.g. `2023/24`.
    pub period: Option<String>,
    /// 0 is Reception.
    pub year_group: Option<i32>,
}

impl PupilRecordFilter {
    /// The list query for this filter within the caller's scope, and the audit log's
    /// description of what was asked for. Checks the direct requests (a named school or
    /// LA) on the way: unknown is `NOT_FOUND`, out of scope `FORBIDDEN`.
    async fn query(
        self,
        rc: &RequestContext,
        access: &Access,
    ) -> Result<(Select<pupil_record::Entity>, String)> {
        use pupil_record::Column;
        if let Some(period) = &self.period
            && !is_valid_period(period)
        {
            return Err(Error::bad_input(format!(
                "period {period:?} is not an academic year like \"2023/24\""
            )));
        }
        let year_group = self
            .year_group
            .map(|year| {
                i16::try_from(year)
                    .map_err(|_| Error::bad_input(format!("year group {year} is out of range")))
            })
            .transpose()?;
        let mut query = pupil_record::Entity::find().filter(access.visible_pupils());
        let mut scope = Vec::new();
        if let Some(urn) = self.school_urn {
            let school = school::Entity::find_by_id(urn)
                .one(&rc.db)
                .await?
                .ok_or_else(|| Error::NotFound(format!("school {urn}")))?;
            access.require_pupils_at(&school)?;
            query = query.filter(Column::SchoolUrn.eq(urn));
            scope.push(format!("school:{urn}"));
        }
        if let Some(code) = self.la_code {
            let la = local_authority(rc, &code).await?;
            query = query.filter(
                Column::SchoolUrn.in_subquery(
                    SqlQuery::select()
                        .column(school::Column::Urn)
                        .from(school::Entity)
                        .and_where(school::Column::LaId.eq(la.id))
                        .to_owned(),
                ),
            );
            scope.push(format!("la:{code}"));
        }
        if let Some(code) = self.home_la_code {
            // Checked although it is only compared, so that the audit log's scope only
            // ever names real LAs, never arbitrary text from the request.
            local_authority(rc, &code).await?;
            query = query.filter(Column::HomeLaCode.eq(code.clone()));
            scope.push(format!("home_la:{code}"));
        }
        if let Some(period) = self.period {
            query = query.filter(Column::Period.eq(period.clone()));
            scope.push(format!("period:{period}"));
        }
        if let Some(year) = year_group {
            query = query.filter(Column::YearGroup.eq(year));
            scope.push(format!("year:{year}"));
        }
        let scope = if scope.is_empty() {
            "all-in-scope".to_owned()
        } else {
            scope.join(",")
        };
        Ok((query, scope))
    }
}

/// A local authority named by a filter; `NOT_FOUND` when there is none.
async fn local_authority(rc: &RequestContext, code: &str) -> Result<organisation::Model> {
    db::organisation_by_code(&rc.db, OrganisationKind::LocalAuthority, code)
        .await?
        .ok_or_else(|| Error::NotFound(format!("local authority {code}")))
}

#[derive(Default)]
pub struct PupilQuery;

#[Object]
impl PupilQuery {
    /// Pupil records in the caller's PUPIL scope, by id. Needs a role with PUPIL access
    /// (LA, trust or school staff); every call is written to the audit log.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn pupil_records(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: PupilRecordFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, PupilRecord, Totals>> {
        let rc = request_context(ctx)?;
        // Every read is audited, so none may be answered from the cache.
        rc.no_store();
        let access = rc.access();
        let principal = access.require_principal()?;
        access.require_pupil_level()?;
        let page = PageRequest::new(first, after, &rc.limits)?;
        let (query, scope) = filter.query(rc, access).await?;
        let mut connection = keyset_page(
            ctx,
            &rc.db,
            query,
            pupil_record::Column::Id,
            page,
            |rows| {
                rows.into_iter()
                    .map(|record| PupilRecord {
                        record,
                        key: String::new(),
                    })
                    .collect()
            },
            |record| record.record.id,
        )
        .await?;
        let records = connection.edges.iter_mut().map(|edge| &mut edge.node);
        show_keys(rc, access, records).await?;
        let event = AuditEvent::read(principal, AccessLevel::Pupil, scope)
            .operation(ctx.query_env.operation_name.as_deref())
            .rows(rows_shown(ctx, connection.edges.len()));
        audit::record(&rc.db, event).await?;
        Ok(connection)
    }
}

/// Sets each record's key as its reader is shown it: the linkage domain is the policy's
/// (`Access::pupil_key_domain`), from the record's school, read once per page.
async fn show_keys<'a>(
    rc: &RequestContext,
    access: &Access,
    records: impl Iterator<Item = &'a mut PupilRecord>,
) -> Result<()> {
    let secret = rc.pupil_key_secret.as_deref().ok_or_else(|| {
        Error::Internal("PUPIL_KEY_SECRET is not configured: pupil keys cannot be shown".to_owned())
    })?;
    let records: Vec<&mut PupilRecord> = records.collect();
    let mut urns: Vec<i32> = records.iter().map(|r| r.record.school_urn).collect();
    urns.sort_unstable();
    urns.dedup();
    let schools: HashMap<i32, school::Model> = school::Entity::find()
        .filter(school::Column::Urn.is_in(urns))
        .all(&rc.db)
        .await?
        .into_iter()
        .map(|school| (school.urn, school))
        .collect();
    for record in records {
        let school = schools.get(&record.record.school_urn).ok_or_else(|| {
            Error::Internal(format!("pupil record {} has no school", record.record.id))
        })?;
        let (reader, domain) = access.pupil_key_domain(school)?;
        record.key = pseudonym::reader_key(secret, reader, &domain, &record.record.pupil_key);
    }
    Ok(())
}

/// How many of the page's rows the response carries: all of them when the client
/// selected the edges, the nodes or the page info (whose cursors are row keys), none
/// when it asked only for `totalCount`. The page is fetched either way, so this counts
/// what was shown, not what was read from the database.
fn rows_shown(ctx: &Context<'_>, page_rows: usize) -> usize {
    let selection = ctx.look_ahead();
    let shown = ["edges", "nodes", "pageInfo"]
        .into_iter()
        .any(|field| selection.field(field).exists());
    if shown { page_rows } else { 0 }
}
