//! The access policy: the one place that decides what a caller may see.
//!
//! DESIGN.md's role table is [`ROLE_TABLE`] below, row for row. A caller's rights are
//! worked out into a [`Scope`] (shared by everyone with the same organisation and
//! roles, and remembered between requests by `admission`), carried per request in
//! an [`Access`]: for each of the three levels
//! (`PUPIL`, `SCHOOL`, `AGGREGATE`) the set of [`Grant`]s it holds, each saying where it
//! came from (a role, or a sharing agreement). Resolvers then ask `Access` one of two
//! kinds of question, and nothing else decides:
//!
//! * **"May I show this one thing?"** — [`Access::require_school`],
//!   [`Access::require_aggregate`]… A direct request for something out of scope is an
//!   error (`FORBIDDEN`, or `UNAUTHENTICATED` without a token), never an empty answer
//!   that could be mistaken for "no data".
//! * **"Which rows of this list may I show?"** — [`Access::visible_schools`],
//!   [`Access::visible_pupils`], [`Access::visible_figures`] return SQL conditions that
//!   the list query (and its `totalCount`) must include, so rows out of scope are never
//!   fetched, and never counted.
//!
//! Partnership records (self-evaluations, peer reviews, support, the inspection
//! expert directory) are asked about the same two ways, over organisations rather than
//! schools; their rules are the last section of this file.
//!
//! Scope comes from the organisation as the database describes it (kind, code, region),
//! never from the token. The in-memory checks and the SQL conditions are written side
//! by side from the same [`Grant`]s (`Grant::covers_school` and its SQL twin), so a
//! change to one is a change to the other in the same few lines.

use std::sync::Arc;

use chrono::NaiveDate;
use entities::{
    organisation, peer_review, pupil_record, school, self_evaluation, sharing_agreement,
    support_offer, support_request,
};
use sea_orm::sea_query::{Expr, ExprTrait, Query as SqlQuery, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};

use crate::domain::{AccessLevel, EstablishmentType, GeographicLevel, OrganisationKind, Role};
use crate::error::{Error, Result};
use crate::identity::{Caller, Principal};
use crate::partnership::{Audience, SelfEvaluationStatus, SupportReach};

/// One row of the role table (DESIGN.md, Access).
pub struct RoleRow {
    pub role: Role,
    /// The organisation kinds a holder may act for; empty for any.
    pub acts_for: &'static [OrganisationKind],
    /// PUPIL level over its own organisation's scope.
    pub pupil: bool,
    /// SCHOOL level over its own organisation's scope.
    pub school: bool,
    /// AGGREGATE figures, nationally.
    pub aggregate: bool,
    /// Whether sharing agreements received by its organisation widen its scope.
    pub widened_by_agreements: bool,
    /// Whether it may write data (figures, pupil records) within its organisation's
    /// write scope ([`WriteScope`]).
    pub writes_data: bool,
    /// Hub administration: the audit log, every sharing agreement and sync run, and
    /// the agreements of any provider.
    pub administers: bool,
    /// An officer of its organisation: makes and revokes the organisation's sharing
    /// agreements, writes its partnership records, pairs its schools' heads with
    /// buddies.
    pub officer: bool,
    /// The broker of support in its region: writes the region's support records,
    /// buddy pairings and expert directory, and reviews what is shared with its office.
    pub brokers_support: bool,
    /// Takes part in partnership records at all. A sync service account does not: it
    /// exists to push data, not to take part.
    pub partner: bool,
}

use OrganisationKind as K;

/// DESIGN.md's role table. "Own scope" means [`organisation_grants`] of the
/// organisation the caller acts for: an LA's area, a trust's schools, a school, an
/// RSC office's or inspectorate team's region.
pub const ROLE_TABLE: &[RoleRow] = &[
    RoleRow {
        role: Role::HubAdmin,
        acts_for: &[K::Hub],
        pupil: false,
        school: false,
        aggregate: true,
        widened_by_agreements: false,
        writes_data: false,
        administers: true,
        officer: false,
        brokers_support: false,
        partner: true,
    },
    RoleRow {
        role: Role::LaOfficer,
        acts_for: &[K::LocalAuthority],
        pupil: true,
        school: true,
        aggregate: true,
        widened_by_agreements: true,
        writes_data: true,
        administers: false,
        officer: true,
        brokers_support: false,
        partner: true,
    },
    RoleRow {
        role: Role::TrustOfficer,
        acts_for: &[K::Trust],
        pupil: true,
        school: true,
        aggregate: true,
        widened_by_agreements: true,
        writes_data: true,
        administers: false,
        officer: true,
        brokers_support: false,
        partner: true,
    },
    RoleRow {
        role: Role::RscOfficer,
        acts_for: &[K::RscOffice],
        pupil: false,
        school: true,
        aggregate: true,
        widened_by_agreements: true,
        writes_data: false,
        administers: false,
        officer: false,
        brokers_support: true,
        partner: true,
    },
    RoleRow {
        role: Role::Inspector,
        acts_for: &[K::Inspectorate],
        pupil: false,
        school: true,
        aggregate: true,
        widened_by_agreements: true,
        writes_data: false,
        administers: false,
        officer: false,
        brokers_support: false,
        partner: true,
    },
    RoleRow {
        role: Role::SchoolLeader,
        acts_for: &[K::School],
        pupil: true,
        school: true,
        aggregate: true,
        widened_by_agreements: true,
        writes_data: true,
        administers: false,
        officer: true,
        brokers_support: false,
        partner: true,
    },
    RoleRow {
        role: Role::Analyst,
        acts_for: &[],
        pupil: false,
        school: false,
        aggregate: true,
        widened_by_agreements: false,
        writes_data: false,
        administers: false,
        officer: false,
        brokers_support: false,
        partner: true,
    },
    RoleRow {
        role: Role::SyncAgent,
        acts_for: &[],
        pupil: false,
        school: false,
        aggregate: false,
        widened_by_agreements: false,
        writes_data: true,
        administers: false,
        officer: false,
        brokers_support: false,
        partner: false,
    },
];

/// The role table's row for a role. There is no fallback row: [`ROLE_TABLE`] holds
/// every role once, in `Role`'s own order (checked below when the crate compiles), so
/// a role added to `domain::Role` without a row here does not build, rather than
/// running with some other role's rights.
pub fn role_row(role: Role) -> &'static RoleRow {
    &ROLE_TABLE[role as usize]
}

/// [`role_row`]'s index is exact: one row per role, at the role's position.
const _: () = {
    assert!(
        ROLE_TABLE.len() == Role::ALL.len(),
        "ROLE_TABLE needs one row for every Role"
    );
    let mut i = 0;
    while i < ROLE_TABLE.len() {
        assert!(
            ROLE_TABLE[i].role as usize == i,
            "ROLE_TABLE lists the roles in Role's order"
        );
        i += 1;
    }
};

/// Whether one of the principal's roles has `column` in the role table.
fn holds(principal: &Principal, column: fn(&RoleRow) -> bool) -> bool {
    principal.roles.iter().any(|r| column(role_row(*r)))
}

/// Whether a role may be held by someone acting for this kind of organisation. A token
/// claiming `LA_OFFICER` for a trust is refused outright (HTTP 401), not quietly given
/// an empty scope, so a misconfigured identity provider is noticed.
pub fn role_fits(role: Role, kind: OrganisationKind) -> bool {
    let row = role_row(role);
    row.acts_for.is_empty() || row.acts_for.contains(&kind)
}

/// Whether any of these roles writes data (and so may send large sync bodies).
pub fn writes_data(roles: &[Role]) -> bool {
    roles.iter().any(|r| role_row(*r).writes_data)
}

/// A set of schools — or, for [`Grant::ResidentIn`], of pupils — a caller may read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// Every school in a region.
    Region(String),
    /// Every school in an LA's area, academies included.
    LocalAuthority {
        id: i32,
        code: String,
    },
    /// The LA's maintained schools: those whose pupil data the LA itself holds.
    MaintainedBy {
        id: i32,
        code: String,
    },
    /// Pupils whose home is in the LA, wherever they go to school.
    ResidentIn(String),
    /// The schools of an academy trust.
    Trust {
        id: i32,
        code: String,
    },
    School(i32),
}

/// Establishment types an LA maintains (everything that is not an academy or free
/// school).
const MAINTAINED: &[EstablishmentType] = &[
    EstablishmentType::Community,
    EstablishmentType::VoluntaryAided,
    EstablishmentType::VoluntaryControlled,
    EstablishmentType::Foundation,
    EstablishmentType::CommunitySpecial,
    EstablishmentType::PupilReferralUnit,
];

impl Grant {
    /// Whether the grant covers a school (for [`Grant::ResidentIn`]: never — it covers
    /// pupils, not schools).
    pub fn covers_school(&self, school: &school::Model) -> bool {
        match self {
            Grant::Region(code) => &school.region_code == code,
            Grant::LocalAuthority { id, .. } => school.la_id == *id,
            Grant::MaintainedBy { id, .. } => {
                school.la_id == *id
                    && EstablishmentType::parse(&school.establishment_type)
                        .is_some_and(|t| MAINTAINED.contains(&t))
            }
            Grant::ResidentIn(_) => false,
            Grant::Trust { id, .. } => school.trust_id == Some(*id),
            Grant::School(urn) => school.urn == *urn,
        }
    }

    /// The same test as [`Grant::covers_school`], as SQL over the `school` table.
    fn school_condition(&self) -> Option<SimpleExpr> {
        Some(match self {
            Grant::Region(code) => school::Column::RegionCode.eq(code.clone()),
            Grant::LocalAuthority { id, .. } => school::Column::LaId.eq(*id),
            Grant::MaintainedBy { id, .. } => school::Column::LaId.eq(*id).and(
                school::Column::EstablishmentType.is_in(MAINTAINED.iter().map(|t| t.as_str())),
            ),
            Grant::ResidentIn(_) => return None,
            Grant::Trust { id, .. } => school::Column::TrustId.eq(*id),
            Grant::School(urn) => school::Column::Urn.eq(*urn),
        })
    }

    /// `(kind, code)` for display in `me`.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Grant::Region(code) => ("REGION", code.clone()),
            Grant::LocalAuthority { code, .. } => ("LOCAL_AUTHORITY", code.clone()),
            Grant::MaintainedBy { code, .. } => ("MAINTAINED_SCHOOLS", code.clone()),
            Grant::ResidentIn(code) => ("RESIDENTS", code.clone()),
            Grant::Trust { code, .. } => ("TRUST", code.clone()),
            Grant::School(urn) => ("SCHOOL", urn.to_string()),
        }
    }
}

/// What an organisation holds at a level: what its own staff read, and what it can
/// share through an agreement. RSC offices and inspectorate teams oversee schools but
/// hold no pupil data, so they have no PUPIL scope to share.
pub fn organisation_grants(organisation: &organisation::Model, level: AccessLevel) -> Vec<Grant> {
    let kind = OrganisationKind::parse(&organisation.kind);
    let code = organisation.code.clone();
    let id = organisation.id;
    match (kind, level) {
        (Some(K::LocalAuthority), AccessLevel::Pupil) => vec![
            Grant::MaintainedBy {
                id,
                code: code.clone(),
            },
            Grant::ResidentIn(code),
        ],
        (Some(K::LocalAuthority), AccessLevel::School) => {
            vec![Grant::LocalAuthority { id, code }]
        }
        (Some(K::Trust), AccessLevel::Pupil | AccessLevel::School) => {
            vec![Grant::Trust { id, code }]
        }
        (Some(K::School), AccessLevel::Pupil | AccessLevel::School) => {
            code.parse().map(Grant::School).into_iter().collect()
        }
        (Some(K::RscOffice | K::Inspectorate), AccessLevel::School) => organisation
            .region_code
            .clone()
            .map(Grant::Region)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a sharing agreement may grant `level`: PUPIL or SCHOOL scope, never
/// AGGREGATE — aggregate figures are open to every partner already, under disclosure
/// control, and an agreement must not become a way around that control.
pub fn may_share(level: AccessLevel) -> bool {
    level != AccessLevel::Aggregate
}

/// What an organisation may write: the data it holds. An LA holds its maintained
/// schools' data and publishes its own LA figures; a trust holds its academies'; a
/// school its own. Writing follows holding, not reading: an LA reads every school in its
/// area but an academy's figures come from its trust. The hub's own organisation
/// publishes official statistics at every level, so its sync agent writes anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteScope {
    /// `KIND:CODE` of the writer's organisation, for error messages.
    pub writer: String,
    everything: bool,
    schools: Vec<Grant>,
    /// The LA whose own `LA`-level figures the writer publishes.
    la_code: Option<String>,
}

impl WriteScope {
    /// The write scope of an organisation's staff or sync agent.
    pub fn of(organisation: &organisation::Model) -> WriteScope {
        let kind = OrganisationKind::parse(&organisation.kind);
        WriteScope {
            writer: format!("{}:{}", organisation.kind, organisation.code),
            everything: kind == Some(K::Hub),
            schools: organisation_grants(organisation, AccessLevel::Pupil)
                .into_iter()
                .filter(|g| !matches!(g, Grant::ResidentIn(_)))
                .collect(),
            la_code: (kind == Some(K::LocalAuthority)).then(|| organisation.code.clone()),
        }
    }

    /// A school's figures and pupil records.
    pub fn covers_school(&self, school: &school::Model) -> bool {
        self.everything || self.schools.iter().any(|g| g.covers_school(school))
    }

    /// An area figure (`LA`, `REGION`, `NATIONAL`).
    pub fn covers_area(&self, level: GeographicLevel, code: &str) -> bool {
        self.everything || (level == GeographicLevel::La && self.la_code.as_deref() == Some(code))
    }

    /// The SQL twin of [`WriteScope::covers_school`] and [`WriteScope::covers_area`]
    /// over a table of figures keyed like `observation`.
    pub fn condition_in<C: ColumnTrait>(&self, level: C, school_urn: C, area_code: C) -> Condition {
        if self.everything {
            return Condition::all();
        }
        let mut condition = Condition::any().add(level.eq(GeographicLevel::School.as_str()).and(
            school_urn.in_subquery(urns_where(any_of(
                self.schools.iter().filter_map(Grant::school_condition),
            ))),
        ));
        if let Some(la) = &self.la_code {
            condition = condition.add(
                level
                    .eq(GeographicLevel::La.as_str())
                    .and(area_code.eq(la.clone())),
            );
        }
        condition
    }
}

/// Where a grant came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Role(Role),
    /// An active sharing agreement, with the provider's `KIND:CODE`.
    Agreement {
        id: i32,
        provider: String,
    },
}

/// One grant at one level, with its origin.
#[derive(Clone, Debug)]
pub struct ScopeEntry {
    pub level: AccessLevel,
    pub grant: Grant,
    pub source: Source,
}

/// What an organisation's staff with a given set of roles may read on one day: the
/// role table applied to the organisation, widened by the agreements in force.
///
/// Nothing in it depends on who the person is, so every caller with the same
/// organisation and roles shares one `Scope` — which is why the hub can remember it
/// between requests (`admission`) and why its [`Scope::fingerprint`] is the access
/// part of a response-cache key: equal fingerprints mean equal answers.
#[derive(Debug, Default)]
pub struct Scope {
    entries: Vec<ScopeEntry>,
    aggregate: bool,
    fingerprint: String,
}

impl Scope {
    /// Works out the scope of `roles` at `organisation` on `today` (one query, for the
    /// agreements, and only when one of the roles can be widened by them).
    pub async fn load(
        db: &DatabaseConnection,
        organisation: &organisation::Model,
        roles: &[Role],
        today: NaiveDate,
    ) -> std::result::Result<Scope, sea_orm::DbErr> {
        let rows: Vec<&RoleRow> = roles.iter().map(|r| role_row(*r)).collect();
        let agreements = if widened_levels(&rows).is_empty() {
            Vec::new()
        } else {
            active_agreements(db, organisation.id, today).await?
        };
        Ok(Scope::build(organisation, roles, &agreements))
    }

    /// The scope of `roles` at `organisation`, given the agreements in force that it
    /// has received (each with its provider). No I/O: the role rules, tested as tables.
    fn build(
        organisation: &organisation::Model,
        roles: &[Role],
        agreements: &[(sharing_agreement::Model, organisation::Model)],
    ) -> Scope {
        let rows: Vec<&RoleRow> = roles.iter().map(|r| role_row(*r)).collect();
        let mut entries = Vec::new();
        for row in &rows {
            for (level, held) in [
                (AccessLevel::Pupil, row.pupil),
                (AccessLevel::School, row.school),
            ] {
                if held {
                    entries.extend(organisation_grants(organisation, level).into_iter().map(
                        |grant| ScopeEntry {
                            level,
                            grant,
                            source: Source::Role(row.role),
                        },
                    ));
                }
            }
        }
        let widened_levels = widened_levels(&rows);
        if !widened_levels.is_empty() {
            for (agreement, provider) in agreements {
                let Some(level) = AccessLevel::parse(&agreement.access_level) else {
                    continue;
                };
                if !widened_levels.contains(&level) {
                    continue;
                }
                let source = Source::Agreement {
                    id: agreement.id,
                    provider: format!("{}:{}", provider.kind, provider.code),
                };
                entries.extend(
                    organisation_grants(provider, level)
                        .into_iter()
                        .map(|grant| ScopeEntry {
                            level,
                            grant,
                            source: source.clone(),
                        }),
                );
            }
        }
        let aggregate = rows.iter().any(|row| row.aggregate);
        let fingerprint = fingerprint(organisation.id, roles, &entries, aggregate);
        Scope {
            entries,
            aggregate,
            fingerprint,
        }
    }

    /// A digest of everything a resolver may consult about the caller apart from its
    /// subject: organisation, roles, every grant with its origin, the AGGREGATE flag.
    /// Anonymous callers share the empty scope's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The levels at which agreements widen these roles' scope: those a role holds and
/// may have widened.
fn widened_levels(rows: &[&RoleRow]) -> Vec<AccessLevel> {
    [AccessLevel::Pupil, AccessLevel::School]
        .into_iter()
        .filter(|level| {
            rows.iter().any(|row| {
                row.widened_by_agreements
                    && match level {
                        AccessLevel::Pupil => row.pupil,
                        _ => row.school,
                    }
            })
        })
        .collect()
}

fn fingerprint(
    organisation_id: i32,
    roles: &[Role],
    entries: &[ScopeEntry],
    aggregate: bool,
) -> String {
    use sha2::{Digest, Sha256};
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    let mut grants: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
    grants.sort();
    let text = format!("{organisation_id}|{roles:?}|{grants:?}|{aggregate}");
    crate::digest::hex(&Sha256::digest(text.as_bytes()))
}

/// What one caller may read: its [`Scope`] and, for the few decisions that depend on
/// the person (audit, `me`), who it is.
#[derive(Clone, Debug)]
pub struct Access {
    principal: Option<Arc<Principal>>,
    scope: Arc<Scope>,
}

impl Access {
    /// No token: public register data only.
    pub fn anonymous() -> Access {
        Access {
            principal: None,
            scope: Arc::new(Scope {
                fingerprint: "anonymous".to_owned(),
                ..Scope::default()
            }),
        }
    }

    pub fn new(principal: Arc<Principal>, scope: Arc<Scope>) -> Access {
        Access {
            principal: Some(principal),
            scope,
        }
    }

    /// The caller as the GraphQL context carries it.
    pub fn caller(&self) -> Caller {
        match &self.principal {
            Some(p) => Caller::Principal(p.clone()),
            None => Caller::Anonymous,
        }
    }

    /// See [`Scope::fingerprint`].
    pub fn fingerprint(&self) -> &str {
        self.scope.fingerprint()
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_deref()
    }

    /// Every grant, with its origin, for `me`.
    pub fn entries(&self) -> &[ScopeEntry] {
        &self.scope.entries
    }

    pub fn has_aggregate(&self) -> bool {
        self.scope.aggregate
    }

    fn grants(&self, level: AccessLevel) -> impl Iterator<Item = &Grant> {
        self.scope
            .entries
            .iter()
            .filter(move |e| e.level == level)
            .map(|e| &e.grant)
    }

    fn has_any(&self, level: AccessLevel) -> bool {
        self.grants(level).next().is_some()
    }

    /// The caller, or `UNAUTHENTICATED`.
    pub fn require_principal(&self) -> Result<&Principal> {
        self.principal().ok_or(Error::Unauthenticated)
    }

    /// Figures over groups of schools (LA, region, national, `aggregate`).
    pub fn require_aggregate(&self) -> Result<()> {
        self.require_principal()?;
        if self.scope.aggregate {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "your roles do not include AGGREGATE figures".to_owned(),
            ))
        }
    }

    /// Whether the caller holds `level` over a school.
    pub fn covers_school(&self, level: AccessLevel, school: &school::Model) -> bool {
        self.grants(level).any(|g| g.covers_school(school))
    }

    /// A school's own figures (SCHOOL level).
    pub fn require_school(&self, school: &school::Model) -> Result<()> {
        self.require_principal()?;
        if self.covers_school(AccessLevel::School, school) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "no SCHOOL access to school {}",
                school.urn
            )))
        }
    }

    /// The figures of one area, asked for directly: a school's need SCHOOL scope over
    /// the school, a wider area's (LA, region, England) AGGREGATE access. `school`
    /// reads the school; it is awaited only for a school, before the check (so a school
    /// that does not exist is `NOT_FOUND` first), and what it read is returned.
    pub async fn require_area(
        &self,
        level: GeographicLevel,
        school: impl Future<Output = Result<school::Model>>,
    ) -> Result<Option<school::Model>> {
        if level == GeographicLevel::School {
            let school = school.await?;
            self.require_school(&school)?;
            Ok(Some(school))
        } else {
            self.require_aggregate()?;
            Ok(None)
        }
    }

    /// Pupil records at a school: allowed if a grant covers the school, or if the caller
    /// may see pupils by residence (the list is then cut down to those residents).
    pub fn require_pupils_at(&self, school: &school::Model) -> Result<()> {
        self.require_principal()?;
        let by_residence = self
            .grants(AccessLevel::Pupil)
            .any(|g| matches!(g, Grant::ResidentIn(_)));
        if by_residence || self.covers_school(AccessLevel::Pupil, school) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "no PUPIL access to school {}",
                school.urn
            )))
        }
    }

    /// Any pupil records at all.
    pub fn require_pupil_level(&self) -> Result<()> {
        self.require_principal()?;
        if self.has_any(AccessLevel::Pupil) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "your roles give no PUPIL access".to_owned(),
            ))
        }
    }

    /// Whether the caller holds SCHOOL scope over any school at all: such a caller
    /// already knows part of some area figures, which disclosure control must count.
    pub fn sees_any_school(&self) -> bool {
        self.has_any(AccessLevel::School)
    }

    /// SQL over `school`: the schools the caller holds `level` over.
    pub fn visible_schools(&self, level: AccessLevel) -> SimpleExpr {
        any_of(self.grants(level).filter_map(Grant::school_condition))
    }

    /// SQL over `pupil_record`: the records in PUPIL scope.
    pub fn visible_pupils(&self) -> SimpleExpr {
        let schools = self.visible_schools(AccessLevel::Pupil);
        let residents = self.grants(AccessLevel::Pupil).filter_map(|g| match g {
            Grant::ResidentIn(code) => Some(pupil_record::Column::HomeLaCode.eq(code.clone())),
            _ => None,
        });
        any_of(
            std::iter::once(pupil_record::Column::SchoolUrn.in_subquery(urns_where(schools)))
                .chain(residents),
        )
    }

    /// SQL over `observation`: SCHOOL-level figures of schools in SCHOOL scope, and
    /// every area figure for callers with AGGREGATE access (those then go through
    /// disclosure control before they leave).
    pub fn visible_figures(&self) -> Condition {
        use entities::observation::Column;
        self.visible_figures_in(Column::GeographicLevel, Column::SchoolUrn)
    }

    /// [`Access::visible_figures`] over any table that keys figures the same way (the
    /// record of deleted figures, which the change feed shows beside live ones).
    pub fn visible_figures_in<C: ColumnTrait>(&self, level: C, school_urn: C) -> Condition {
        let school_level = GeographicLevel::School.as_str();
        let mut condition = Condition::any();
        if self.has_any(AccessLevel::School) {
            condition = condition.add(level.eq(school_level).and(
                school_urn.in_subquery(urns_where(self.visible_schools(AccessLevel::School))),
            ));
        }
        if self.scope.aggregate {
            condition = condition.add(level.ne(school_level));
        }
        if condition.is_empty() {
            condition = condition.add(never());
        }
        condition
    }

    /// Whether the caller holds SCHOOL scope over a whole LA's area or region (for
    /// area figures built from few schools).
    pub fn covers_area(&self, la: Option<&organisation::Model>, region_code: &str) -> bool {
        self.grants(AccessLevel::School).any(|g| match g {
            Grant::Region(code) => code == region_code,
            Grant::LocalAuthority { id, .. } => la.is_some_and(|la| la.id == *id),
            _ => false,
        })
    }

    /// Sharing agreements for `provider` may be made or revoked by a hub administrator,
    /// or by the provider's own officers (the roles that may write its data).
    pub fn may_manage_agreements_of(&self, provider: &organisation::Model) -> bool {
        let Some(principal) = self.principal() else {
            return false;
        };
        holds(principal, |r| r.administers)
            || (principal.organisation.id == provider.id && holds(principal, |r| r.officer))
    }

    /// SQL over `sharing_agreement`: a hub administrator sees every agreement, anyone
    /// else those its organisation made or received.
    pub fn visible_agreements(&self) -> Condition {
        use sharing_agreement::Column;
        match self.principal() {
            Some(p) if holds(p, |r| r.administers) => Condition::all(),
            Some(p) => Condition::any()
                .add(Column::ProviderId.eq(p.organisation.id))
                .add(Column::ConsumerId.eq(p.organisation.id)),
            None => Condition::all().add(never()),
        }
    }

    /// Bulk writes (sync): the caller's [`WriteScope`], if one of its roles writes data.
    pub fn require_writer(&self) -> Result<WriteScope> {
        let principal = self.require_principal()?;
        if writes_data(&principal.roles) {
            Ok(WriteScope::of(&principal.organisation))
        } else {
            Err(Error::Forbidden(
                "your roles do not write data; a SYNC_AGENT or an officer of the data's \
                 organisation does"
                    .to_owned(),
            ))
        }
    }

    /// SQL over a table of figures keyed like `observation`: the rows of the change
    /// feed. What the caller may read ([`Access::visible_figures_in`]) and, for a role
    /// that writes data, what it may write ([`WriteScope`]). A sync agent reads no
    /// figures otherwise, yet the feed is how it learns what landed in the data it
    /// keeps — its own writes and anyone else's to the same figures — so without its
    /// write scope here its feed would be empty right after it wrote.
    pub fn visible_changes_in<C: ColumnTrait>(
        &self,
        level: C,
        school_urn: C,
        area_code: C,
    ) -> Condition {
        let readable = self.visible_figures_in(level, school_urn);
        match self.require_writer() {
            Ok(writes) => Condition::any()
                .add(readable)
                .add(writes.condition_in(level, school_urn, area_code)),
            Err(_) => readable,
        }
    }

    /// SQL over `sync_run`: a hub administrator sees every run, anyone else its own
    /// organisation's.
    pub fn visible_sync_runs(&self) -> Result<Condition> {
        use entities::sync_run::Column;
        let principal = self.require_principal()?;
        Ok(if holds(principal, |r| r.administers) {
            Condition::all()
        } else {
            Condition::all().add(Column::OrganisationId.eq(principal.organisation.id))
        })
    }

    /// The federation's subgraph SDL (`_service { sdl }`) is the whole schema, as
    /// introspection is: anyone may have it where the hub serves introspection or the
    /// deployment serves it to its composition pipeline (`sdl_open`), otherwise only a
    /// hub administrator. Refused alike with or without a token, with where else to get
    /// it, because a partner's token is no better reason than none.
    pub fn require_sdl(&self, sdl_open: bool) -> Result<()> {
        let admin = self
            .principal()
            .is_some_and(|p| p.roles.contains(&Role::HubAdmin));
        if sdl_open || admin {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "the subgraph SDL (`_service`) is served only to HUB_ADMIN on this hub \
                 (GRAPHQL_INTROSPECTION and FEDERATION_SDL_PUBLIC are off); \
                 `baseline-hub export-schema` prints the same text"
                    .to_owned(),
            ))
        }
    }

    /// Who is shown a pupil record's key, and in which linkage domain (see
    /// `pseudonym`): the caller's organisation, and `own` for every school that
    /// organisation may write — it sent those pupil numbers and can link them anyway —
    /// or, for any other school, the school's data holders: the organisations besides
    /// the school itself that may write its records (its LA if it maintains it, its
    /// trust), or the school alone. A key an organisation can obtain by writing a pupil
    /// number of its choosing is therefore never in the domain of a record it cannot
    /// write, and records of one holder stay linkable to each other.
    pub fn pupil_key_domain(&self, school: &school::Model) -> Result<(i32, String)> {
        let organisation = &self.require_principal()?.organisation;
        if WriteScope::of(organisation).covers_school(school) {
            return Ok((organisation.id, "own".to_owned()));
        }
        let maintained = EstablishmentType::parse(&school.establishment_type)
            .is_some_and(|t| MAINTAINED.contains(&t));
        let holders: Vec<String> = maintained
            .then(|| format!("la:{}", school.la_id))
            .into_iter()
            .chain(school.trust_id.map(|id| format!("trust:{id}")))
            .collect();
        let domain = if holders.is_empty() {
            format!("school:{}", school.urn)
        } else {
            holders.join("+")
        };
        Ok((organisation.id, domain))
    }

    /// Hub administration: the audit log, every agreement.
    pub fn require_admin(&self) -> Result<&Principal> {
        let principal = self.require_principal()?;
        if holds(principal, |r| r.administers) {
            Ok(principal)
        } else {
            Err(Error::Forbidden("this needs the HUB_ADMIN role".to_owned()))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Partnership records: self-evaluations, peer reviews, requests and offers of support,
// buddy pairings and the inspection expert directory.
//
// These are records partners write about their own work and choose to share, so the
// rules compare *organisations*: the caller's (id, kind and region, as the database
// describes it) with a record's author, audience, participants or region. The same two
// kinds of question apply as for data: `may_see_…` / `require_…` for one record and
// `visible_…` for the SQL condition of a list (and its `totalCount`).
//
// Writing follows DESIGN.md's role table: an organisation's officers (`LA_OFFICER`,
// `TRUST_OFFICER`, `SCHOOL_LEADER`: the `officer` column) write its own records;
// `RSC_OFFICER` writes the support records of its region (requests, offers, matches,
// buddy pairings, the expert directory) and reviews what is shared with its office;
// `INSPECTOR`, `ANALYST` and `SYNC_AGENT` write none. A sync service account reads none
// either: it exists to push data, not to take part.

impl Access {
    /// A person taking part in the partnership: authenticated, with a role other than
    /// `SYNC_AGENT`.
    pub fn require_partner(&self) -> Result<&Principal> {
        let principal = self.require_principal()?;
        if holds(principal, |r| r.partner) {
            Ok(principal)
        } else {
            Err(Error::Forbidden(
                "sync service accounts take no part in partnership records".to_owned(),
            ))
        }
    }

    fn partner(&self) -> Option<&Principal> {
        self.require_partner().ok()
    }

    /// Whether the caller is one of the organisation's officers.
    pub fn is_officer_of(&self, organisation_id: i32) -> bool {
        self.principal()
            .is_some_and(|p| p.organisation.id == organisation_id && holds(p, |r| r.officer))
    }

    /// Whether the caller is an RSC officer of the region: the broker of support there.
    pub fn is_rsc_officer_for(&self, region_code: &str) -> bool {
        self.principal().is_some_and(|p| {
            holds(p, |r| r.brokers_support)
                && p.organisation.region_code.as_deref() == Some(region_code)
        })
    }

    /// The region whose shared peer reviews the caller's organisation oversees: its
    /// own, for an RSC office or an inspectorate team.
    fn oversight_region(&self) -> Option<&str> {
        let p = self.partner()?;
        if matches!(p.kind, K::RscOffice | K::Inspectorate) {
            p.organisation.region_code.as_deref()
        } else {
            None
        }
    }

    /// SQL over `self_evaluation`: the caller's organisation's own (drafts included),
    /// and shared or reviewed ones whose audience includes it — as a named partner, or
    /// as an organisation of the author's region when shared with the whole region.
    pub fn visible_self_evaluations(&self) -> Condition {
        use entities::{self_evaluation::Column, self_evaluation_partner as named};
        let Some(p) = self.partner() else {
            return Condition::all().add(never());
        };
        let me = p.organisation.id;
        let mut audience = Condition::any().add(
            Column::Audience.eq(Audience::Partners.as_str()).and(
                Column::Id.in_subquery(
                    SqlQuery::select()
                        .column(named::Column::SelfEvaluationId)
                        .from(named::Entity)
                        .and_where(named::Column::OrganisationId.eq(me))
                        .to_owned(),
                ),
            ),
        );
        if let Some(region) = &p.organisation.region_code {
            audience = audience.add(
                Column::Audience
                    .eq(Audience::Region.as_str())
                    .and(Column::RegionCode.eq(region.clone())),
            );
        }
        Condition::any().add(Column::OrganisationId.eq(me)).add(
            Condition::all()
                .add(Column::Status.is_in([
                    SelfEvaluationStatus::Shared.as_str(),
                    SelfEvaluationStatus::Reviewed.as_str(),
                ]))
                .add(audience),
        )
    }

    /// The same test as [`Access::visible_self_evaluations`] for one evaluation, given
    /// the organisations it is shared with by name.
    pub fn may_see_self_evaluation(
        &self,
        evaluation: &self_evaluation::Model,
        partners: &[i32],
    ) -> bool {
        let Some(p) = self.partner() else {
            return false;
        };
        let shared = matches!(
            SelfEvaluationStatus::parse(&evaluation.status),
            Some(SelfEvaluationStatus::Shared | SelfEvaluationStatus::Reviewed)
        );
        p.organisation.id == evaluation.organisation_id
            || (shared && in_audience(p, evaluation, partners))
    }

    pub fn require_self_evaluation(
        &self,
        evaluation: &self_evaluation::Model,
        partners: &[i32],
    ) -> Result<()> {
        self.require_partner()?;
        if self.may_see_self_evaluation(evaluation, partners) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "self-evaluation {} is not shared with your organisation",
                evaluation.id
            )))
        }
    }

    /// Writing, editing, sharing and withdrawing a self-evaluation: the author
    /// organisation's officers.
    pub fn require_self_evaluation_author(&self, organisation_id: i32) -> Result<&Principal> {
        let principal = self.require_partner()?;
        if self.is_officer_of(organisation_id) {
            Ok(principal)
        } else {
            Err(Error::Forbidden(
                "only the author organisation's officers may write its self-evaluation".to_owned(),
            ))
        }
    }

    /// Reviewing a shared self-evaluation: an officer (or RSC officer) of an
    /// organisation in its audience, never the author.
    pub fn require_self_evaluation_reviewer(
        &self,
        evaluation: &self_evaluation::Model,
        partners: &[i32],
    ) -> Result<&Principal> {
        let principal = self.require_partner()?;
        let writes = holds(principal, |r| r.officer || r.brokers_support);
        if writes
            && principal.organisation.id != evaluation.organisation_id
            && in_audience(principal, evaluation, partners)
        {
            Ok(principal)
        } else {
            Err(Error::Forbidden(format!(
                "self-evaluation {} is reviewed by an officer of an organisation it is \
                 shared with",
                evaluation.id
            )))
        }
    }

    /// SQL over `peer_review`: reviews the caller's organisation takes part in, and —
    /// for the region's RSC office and inspectorate team — the region's reviews that
    /// the reviewed organisation has shared.
    pub fn visible_peer_reviews(&self) -> Condition {
        use entities::{peer_review::Column, peer_review_participant as participant};
        let Some(p) = self.partner() else {
            return Condition::all().add(never());
        };
        let mut condition = Condition::any().add(
            Column::Id.in_subquery(
                SqlQuery::select()
                    .column(participant::Column::PeerReviewId)
                    .from(participant::Entity)
                    .and_where(participant::Column::OrganisationId.eq(p.organisation.id))
                    .to_owned(),
            ),
        );
        if let Some(region) = self.oversight_region() {
            condition = condition.add(
                Column::SharedAt
                    .is_not_null()
                    .and(Column::RegionCode.eq(region.to_owned())),
            );
        }
        condition
    }

    /// The same test for one review, given its participants.
    pub fn may_see_peer_review(&self, review: &peer_review::Model, participants: &[i32]) -> bool {
        let Some(p) = self.partner() else {
            return false;
        };
        participants.contains(&p.organisation.id)
            || (review.shared_at.is_some()
                && self.oversight_region() == Some(review.region_code.as_str()))
    }

    pub fn require_peer_review(
        &self,
        review: &peer_review::Model,
        participants: &[i32],
    ) -> Result<()> {
        self.require_partner()?;
        if self.may_see_peer_review(review, participants) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "peer review {} is visible to its participants, and to the region's RSC \
                 office and inspectorate team once shared",
                review.id
            )))
        }
    }

    /// Commissioning a review of an organisation, and sharing it: that organisation's
    /// officers.
    pub fn require_peer_review_owner(&self, reviewed_id: i32) -> Result<&Principal> {
        let principal = self.require_partner()?;
        if self.is_officer_of(reviewed_id) {
            Ok(principal)
        } else {
            Err(Error::Forbidden(
                "only the reviewed organisation's officers may commission or share its \
                 peer review"
                    .to_owned(),
            ))
        }
    }

    /// Progress, findings and actions: officers of any participant.
    pub fn require_peer_review_participant(&self, participants: &[i32]) -> Result<&Principal> {
        let principal = self.require_partner()?;
        if participants.iter().any(|id| self.is_officer_of(*id)) {
            Ok(principal)
        } else {
            Err(Error::Forbidden(
                "only officers of the participating organisations may change a peer review"
                    .to_owned(),
            ))
        }
    }

    /// SQL over `support_request`: the regional map of need — every request of the
    /// caller's region that is not confidential, and those opened to it from elsewhere
    /// (by name or nationally) — plus the caller's own wherever, and those matched with
    /// its offers. A request marked confidential is read only by the
    /// two sides and by the LA or trust of a school it concerns (or of the school that
    /// posted it); see [`Access::confidential_reader`].
    pub fn visible_support_requests(&self) -> Condition {
        use entities::{support_offer as offer, support_request::Column};
        let Some(p) = self.partner() else {
            return Condition::all().add(never());
        };
        let me = p.organisation.id;
        let parties = Condition::any().add(Column::OrganisationId.eq(me)).add(
            Column::OfferId.in_subquery(
                SqlQuery::select()
                    .column(offer::Column::Id)
                    .from(offer::Entity)
                    .and_where(offer::Column::OrganisationId.eq(me))
                    .to_owned(),
            ),
        );
        use entities::support_request_region as named;
        let mut open = parties
            .clone()
            .add(Column::Reach.eq(SupportReach::National.as_str()));
        if let Some(region) = &p.organisation.region_code {
            open = open.add(Column::RegionCode.eq(region.clone())).add(
                Column::Reach.eq(SupportReach::Regions.as_str()).and(
                    Column::Id.in_subquery(
                        SqlQuery::select()
                            .column(named::Column::SupportRequestId)
                            .from(named::Entity)
                            .and_where(named::Column::RegionCode.eq(region.clone()))
                            .to_owned(),
                    ),
                ),
            );
        }
        let mut condition = Condition::any().add(
            Condition::all()
                .add(Column::Confidential.eq(false))
                .add(open),
        );
        if let Some(reader) = self.confidential_reader() {
            condition = condition
                .add(parties)
                .add(Column::Id.in_subquery(requests_naming(own_side_schools(reader))));
            if matches!(reader.kind, K::LocalAuthority | K::Trust) {
                condition =
                    condition.add(Column::OrganisationId.in_subquery(school_organisations(reader)));
            }
        }
        condition
    }

    /// Why a request that exists is not shown to the caller: the refusal for a direct
    /// request outside [`Access::visible_support_requests`].
    pub fn support_request_refused(&self, request: &support_request::Model) -> Error {
        if request.confidential {
            Error::Forbidden(format!(
                "support request {} is confidential to the two sides and the school's own \
                 LA or trust",
                request.id
            ))
        } else {
            Error::Forbidden(format!(
                "support request {} is not open to your region",
                request.id
            ))
        }
    }

    /// SQL over `support_offer`: every offer of the caller's region, those opened to
    /// it from elsewhere (by name or nationally), plus its own. Offers are never
    /// confidential: they are capacity on the map. One offer is tested with this
    /// condition too, so the list and the record agree.
    pub fn visible_support_offers(&self) -> Condition {
        use entities::{support_offer::Column, support_offer_region as named};
        let Some(p) = self.partner() else {
            return Condition::all().add(never());
        };
        let mut condition = Condition::any()
            .add(Column::OrganisationId.eq(p.organisation.id))
            .add(Column::Reach.eq(SupportReach::National.as_str()));
        if let Some(region) = &p.organisation.region_code {
            condition = condition.add(Column::RegionCode.eq(region.clone())).add(
                Column::Reach.eq(SupportReach::Regions.as_str()).and(
                    Column::Id.in_subquery(
                        SqlQuery::select()
                            .column(named::Column::SupportOfferId)
                            .from(named::Entity)
                            .and_where(named::Column::RegionCode.eq(region.clone()))
                            .to_owned(),
                    ),
                ),
            );
        }
        condition
    }

    /// Why an offer that exists is not shown: outside [`Access::visible_support_offers`].
    pub fn support_offer_refused(&self, offer: &support_offer::Model) -> Error {
        Error::Forbidden(format!(
            "support offer {} is not open to your region",
            offer.id
        ))
    }

    /// Posting, matching, agreeing and closing support, and keeping the expert
    /// directory: the organisation's own officers, or the region's RSC officers.
    pub fn require_support_writer(
        &self,
        organisation_id: i32,
        region_code: &str,
    ) -> Result<&Principal> {
        let principal = self.require_partner()?;
        if self.is_officer_of(organisation_id) || self.is_rsc_officer_for(region_code) {
            Ok(principal)
        } else {
            Err(Error::Forbidden(
                "support records are written by the organisation's own officers or the \
                 region's RSC officers"
                    .to_owned(),
            ))
        }
    }

    /// A school a request for support concerns: shown to the parties in full, and to
    /// anyone else only within their SCHOOL scope — a request for help names schools
    /// that are struggling, which is not for every partner of the region to read.
    pub fn sees_request_school(&self, parties: &[i32], school: &school::Model) -> bool {
        self.partner().is_some_and(|p| {
            parties.contains(&p.organisation.id) || self.covers_school(AccessLevel::School, school)
        })
    }

    /// Who may read confidential partnership records at all (buddy pairings and their
    /// notes, support requests marked confidential): the officers of an organisation,
    /// or an RSC office's officers where their office is itself a side — and only for
    /// the records whose side their organisation is. Never the inspectorate: buddying
    /// a head and asking for help are supportive arrangements that must not feed
    /// inspection, whatever scope an inspector holds over the school (no officer role
    /// acts for an inspectorate, and the kind is refused here as well so that no
    /// future role can open it).
    fn confidential_reader(&self) -> Option<&Principal> {
        self.partner()
            .filter(|p| p.kind != K::Inspectorate && holds(p, |r| r.officer || r.brokers_support))
    }

    /// SQL over `buddy_pairing`: confidential to its two sides — the school's (the
    /// school itself, its LA and its trust) and the buddy's (the buddy's employer) —
    /// whatever SCHOOL scope anyone else holds over the school.
    pub fn visible_buddy_pairings(&self) -> Condition {
        use entities::{buddy_pairing::Column, inspection_expert as expert};
        let Some(p) = self.confidential_reader() else {
            return Condition::all().add(never());
        };
        Condition::any()
            .add(Column::SchoolUrn.in_subquery(urns_where(own_side_schools(p))))
            .add(
                Column::ExpertId.in_subquery(
                    SqlQuery::select()
                        .column(expert::Column::Id)
                        .from(expert::Entity)
                        .and_where(expert::Column::OrganisationId.eq(p.organisation.id))
                        .to_owned(),
                ),
            )
    }

    /// The same test for one pairing, given its school and the buddy's employer.
    pub fn may_see_buddy_pairing(&self, school: &school::Model, buddy_employer: i32) -> bool {
        self.confidential_reader().is_some_and(|p| {
            p.organisation.id == buddy_employer || is_school_side(&p.organisation, p.kind, school)
        })
    }

    pub fn require_buddy_pairing(
        &self,
        school: &school::Model,
        buddy_employer: i32,
        id: i32,
    ) -> Result<()> {
        self.require_partner()?;
        if self.may_see_buddy_pairing(school, buddy_employer) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "buddy pairing {id} is confidential to the school's side and the buddy's"
            )))
        }
    }

    /// Asking for a buddy for a school's head: the school's leaders, or its LA's or
    /// trust's officers.
    pub fn require_pairing_requester(&self, school: &school::Model) -> Result<&Principal> {
        let principal = self.require_partner()?;
        // Each officer role acts only for its own kind of organisation (`role_fits`),
        // so an officer of the school, its LA or its trust is a school leader, an LA
        // officer or a trust officer respectively.
        if holds(principal, |r| r.officer)
            && is_school_side(&principal.organisation, principal.kind, school)
        {
            Ok(principal)
        } else {
            Err(Error::Forbidden(format!(
                "a buddy for school {}'s head is asked for by its leaders or its LA's or \
                 trust's officers",
                school.urn
            )))
        }
    }

    /// Accepting or declining a request for a buddy: the buddy's side — the officers
    /// of the buddy's employer (a school leader who is a buddy answers for their own
    /// school).
    pub fn require_pairing_responder(&self, buddy_employer: i32) -> Result<&Principal> {
        let principal = self.require_partner()?;
        if self.is_officer_of(buddy_employer) {
            Ok(principal)
        } else {
            Err(Error::Forbidden(
                "a request for a buddy is answered by the buddy's own organisation".to_owned(),
            ))
        }
    }

    /// Ending a pairing (or withdrawing a request): either side.
    pub fn require_pairing_side(
        &self,
        school: &school::Model,
        buddy_employer: i32,
    ) -> Result<&Principal> {
        self.require_pairing_requester(school)
            .or_else(|_| self.require_pairing_responder(buddy_employer))
            .map_err(|_| {
                Error::Forbidden(format!(
                    "a buddy pairing for school {} is ended by one of its two sides",
                    school.urn
                ))
            })
    }

    /// The inspection expert directory — names, roles, expertise, availability — is
    /// open to every partner; contact details are not (see
    /// [`Access::sees_contact_details`]).
    pub fn require_directory(&self) -> Result<&Principal> {
        self.require_partner()
    }

    /// An expert's contact details: partners of the expert's own region only. An
    /// answer that contains them names a person's phone and email to one audience, so
    /// the resolver also keeps it out of the shared cache.
    pub fn sees_contact_details(&self, expert_region: &str) -> bool {
        self.partner()
            .is_some_and(|p| p.organisation.region_code.as_deref() == Some(expert_region))
    }
}

/// Whether a partner's organisation is in a shared self-evaluation's audience.
fn in_audience(p: &Principal, evaluation: &self_evaluation::Model, partners: &[i32]) -> bool {
    match evaluation.audience.as_deref().and_then(Audience::parse) {
        Some(Audience::Partners) => partners.contains(&p.organisation.id),
        Some(Audience::Region) => {
            p.organisation.region_code.as_deref() == Some(evaluation.region_code.as_str())
        }
        None => false,
    }
}

/// Whether an organisation is a school's own side: the school itself, its LA or its
/// trust.
fn is_school_side(org: &organisation::Model, kind: K, school: &school::Model) -> bool {
    (kind == K::School && org.code == school.urn.to_string())
        || org.id == school.la_id
        || Some(org.id) == school.trust_id
}

/// SQL over `school`: the schools whose own side the reader's organisation is (the
/// in-SQL twin of [`is_school_side`]).
fn own_side_schools(reader: &Principal) -> SimpleExpr {
    let me = reader.organisation.id;
    let mut condition = school::Column::LaId
        .eq(me)
        .or(school::Column::TrustId.eq(me));
    if reader.kind == K::School
        && let Ok(urn) = reader.organisation.code.parse::<i32>()
    {
        condition = condition.or(school::Column::Urn.eq(urn));
    }
    condition
}

/// `support_request.id IN (…)`'s subquery: requests that name one of the schools.
fn requests_naming(schools: SimpleExpr) -> sea_orm::sea_query::SelectStatement {
    use entities::support_request_school as named;
    SqlQuery::select()
        .column(named::Column::SupportRequestId)
        .from(named::Entity)
        .and_where(named::Column::SchoolUrn.in_subquery(urns_where(schools)))
        .to_owned()
}

/// The organisations of the schools whose own side the reader is (an LA's or trust's
/// schools), matched on the school organisation's code, which is its URN.
fn school_organisations(reader: &Principal) -> sea_orm::sea_query::SelectStatement {
    SqlQuery::select()
        .column(organisation::Column::Id)
        .from(organisation::Entity)
        .and_where(organisation::Column::Kind.eq(K::School.as_str()))
        .and_where(
            organisation::Column::Code.in_subquery(
                SqlQuery::select()
                    .expr(Expr::cust("CAST(urn AS TEXT)"))
                    .from(school::Entity)
                    .and_where(own_side_schools(reader))
                    .to_owned(),
            ),
        )
        .to_owned()
}

/// Public reference data (regions, organisations, the register, the indicator
/// catalogue): allowed for everybody, even without a token. Exists so that every
/// resolver states its access decision, including the ones that allow everybody.
pub fn public(_caller: &Caller) -> Result<()> {
    Ok(())
}

/// The agreements granted to an organisation that are in force on `today`, each with
/// its provider.
async fn active_agreements(
    db: &DatabaseConnection,
    consumer_id: i32,
    today: NaiveDate,
) -> std::result::Result<Vec<(sharing_agreement::Model, organisation::Model)>, sea_orm::DbErr> {
    use sharing_agreement::Column;
    let rows = sharing_agreement::Entity::find()
        .filter(Column::ConsumerId.eq(consumer_id))
        .filter(Column::Status.eq(AGREEMENT_ACTIVE))
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ValidFrom.lte(today))
        .filter(Column::ValidTo.gte(today))
        .find_also_related(organisation::Entity)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(agreement, provider)| provider.map(|p| (agreement, p)))
        .collect())
}

/// `status` of an agreement in force (between its dates).
pub const AGREEMENT_ACTIVE: &str = "ACTIVE";
/// `status` of a revoked agreement.
pub const AGREEMENT_REVOKED: &str = "REVOKED";

/// `urn IN (SELECT urn FROM school WHERE …)`'s subquery.
fn urns_where(condition: SimpleExpr) -> sea_orm::sea_query::SelectStatement {
    SqlQuery::select()
        .column(school::Column::Urn)
        .from(school::Entity)
        .and_where(condition)
        .to_owned()
}

/// OR of the conditions; false when there are none (no grant means no rows).
fn any_of(conditions: impl Iterator<Item = SimpleExpr>) -> SimpleExpr {
    conditions.reduce(|a, b| a.or(b)).unwrap_or_else(never)
}

fn never() -> SimpleExpr {
    Expr::val(1).eq(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: i32, kind: OrganisationKind, code: &str, region: &str) -> organisation::Model {
        organisation::Model {
            id,
            kind: kind.as_str().to_owned(),
            code: code.to_owned(),
            name: code.to_owned(),
            region_code: Some(region.to_owned()),
        }
    }

    #[test]
    fn every_role_has_its_own_row() {
        for role in Role::ALL {
            assert_eq!(role_row(*role).role, *role);
        }
    }

    /// A principal holding `roles` at `organisation`, with the scope those roles give
    /// it there (no agreements).
    fn caller(organisation: &organisation::Model, roles: &[Role]) -> Access {
        let kind = OrganisationKind::parse(&organisation.kind).expect("a known kind");
        let principal = Principal {
            subject: "someone".into(),
            organisation: organisation.clone(),
            kind,
            roles: roles.to_vec(),
        };
        let scope = Scope::build(organisation, roles, &[]);
        Access::new(Arc::new(principal), Arc::new(scope))
    }

    /// DESIGN.md's role table as each role's holder meets it, at an organisation of the
    /// kind it acts for: what it reads, and what it may do. Every role has a row.
    #[test]
    fn each_role_reads_and_does_what_the_role_table_says() {
        const REGION: &str = "E12000008";
        // role, acts for; reads PUPIL, SCHOOL, AGGREGATE; writes data, administers the
        // hub, takes part in partnership records, is an officer of its organisation,
        // manages its organisation's sharing agreements, is an RSC officer of its region.
        #[rustfmt::skip]
        let table: &[(Role, K, [bool; 3], [bool; 6])] = &[
            (Role::HubAdmin,     K::Hub,            [false, false, true ], [false, true,  true,  false, true,  false]),
            (Role::LaOfficer,    K::LocalAuthority, [true,  true,  true ], [true,  false, true,  true,  true,  false]),
            (Role::TrustOfficer, K::Trust,          [true,  true,  true ], [true,  false, true,  true,  true,  false]),
            (Role::RscOfficer,   K::RscOffice,      [false, true,  true ], [false, false, true,  false, false, true ]),
            (Role::Inspector,    K::Inspectorate,   [false, true,  true ], [false, false, true,  false, false, false]),
            (Role::SchoolLeader, K::School,         [true,  true,  true ], [true,  false, true,  true,  true,  false]),
            (Role::Analyst,      K::Other,          [false, false, true ], [false, false, true,  false, false, false]),
            (Role::SyncAgent,    K::LocalAuthority, [false, false, false], [true,  false, false, false, false, false]),
        ];
        assert_eq!(table.len(), Role::ALL.len(), "a row for every role");
        for (role, kind, reads, does) in table {
            let code = if *kind == K::School { "100000" } else { "X1" };
            let own = org(7, *kind, code, REGION);
            let access = caller(&own, &[*role]);
            let got_reads = [
                access.has_any(AccessLevel::Pupil),
                access.has_any(AccessLevel::School),
                access.has_aggregate(),
            ];
            let got_does = [
                access.require_writer().is_ok(),
                access.require_admin().is_ok(),
                access.require_partner().is_ok(),
                access.is_officer_of(own.id),
                access.may_manage_agreements_of(&own),
                access.is_rsc_officer_for(REGION),
            ];
            assert_eq!((got_reads, got_does), (*reads, *does), "{role} at {kind}");
        }
    }

    /// Each role against each kind of organisation: only its own kind, or any for the
    /// roles that belong to no particular kind.
    #[test]
    fn each_role_fits_exactly_the_kinds_it_acts_for() {
        let table: &[(Role, &[K])] = &[
            (Role::HubAdmin, &[K::Hub]),
            (Role::LaOfficer, &[K::LocalAuthority]),
            (Role::TrustOfficer, &[K::Trust]),
            (Role::RscOfficer, &[K::RscOffice]),
            (Role::Inspector, &[K::Inspectorate]),
            (Role::SchoolLeader, &[K::School]),
            (Role::Analyst, K::ALL),
            (Role::SyncAgent, K::ALL),
        ];
        assert_eq!(table.len(), Role::ALL.len(), "a row for every role");
        for (role, fits) in table {
            for kind in K::ALL {
                assert_eq!(
                    role_fits(*role, *kind),
                    fits.contains(kind),
                    "{role} at {kind}"
                );
            }
        }
    }

    /// Who may ask for a buddy for a school's head: its leaders, its LA's or trust's
    /// officers; nobody else, whatever their role. Who may see the pairing: those, and
    /// the buddy's employer — never the inspectorate or the RSC office, whose scope
    /// covers the school.
    #[test]
    fn buddy_pairings_are_asked_for_and_seen_by_the_schools_own_side_only() {
        let mut school = school::Model {
            urn: 100000,
            name: "x".into(),
            phase: "PRIMARY".into(),
            establishment_type: "ACADEMY_CONVERTER".into(),
            la_id: 1,
            trust_id: Some(2),
            diocese_id: None,
            region_code: "E12000008".into(),
            is_open: true,
            pupils_on_roll: 100,
            last_inspection_date: None,
        };
        let la = org(1, K::LocalAuthority, "852", "E12000008");
        let other_la = org(11, K::LocalAuthority, "850", "E12000008");
        let trust = org(2, K::Trust, "T1", "E12000008");
        let own_school = org(3, K::School, "100000", "E12000008");
        let other_school = org(13, K::School, "100001", "E12000008");
        let rsc = org(4, K::RscOffice, "RSC-SE", "E12000008");
        let other_rsc = org(14, K::RscOffice, "RSC-SW", "E12000009");
        let inspectorate = org(5, K::Inspectorate, "INS-SE", "E12000008");
        // (organisation, role, may ask, may see a pairing whose buddy `other_la` employs)
        let table: &[(&organisation::Model, Role, bool, bool)] = &[
            (&own_school, Role::SchoolLeader, true, true),
            (&other_school, Role::SchoolLeader, false, false),
            (&la, Role::LaOfficer, true, true),
            (&other_la, Role::LaOfficer, false, true),
            (&trust, Role::TrustOfficer, true, true),
            (&rsc, Role::RscOfficer, false, false),
            (&other_rsc, Role::RscOfficer, false, false),
            (&inspectorate, Role::Inspector, false, false),
            (&la, Role::SyncAgent, false, false),
            (&la, Role::Analyst, false, false),
        ];
        for (organisation, role, asks, sees) in table {
            let access = caller(organisation, &[*role]);
            assert_eq!(
                access.require_pairing_requester(&school).is_ok(),
                *asks,
                "{role} at {} asks",
                organisation.code
            );
            assert_eq!(
                access.may_see_buddy_pairing(&school, other_la.id),
                *sees,
                "{role} at {} sees",
                organisation.code
            );
            assert_eq!(
                access.require_pairing_responder(other_la.id).is_ok(),
                organisation.id == other_la.id && *role == Role::LaOfficer,
                "{role} at {} answers",
                organisation.code
            );
        }
        // A trust officer of another trust.
        school.trust_id = Some(99);
        assert!(
            caller(&trust, &[Role::TrustOfficer])
                .require_pairing_requester(&school)
                .is_err()
        );
    }

    #[test]
    fn roles_fit_only_their_kind_of_organisation() {
        assert!(role_fits(Role::LaOfficer, K::LocalAuthority));
        assert!(!role_fits(Role::LaOfficer, K::Trust));
        assert!(!role_fits(Role::HubAdmin, K::LocalAuthority));
        assert!(role_fits(Role::Analyst, K::Diocese));
    }

    #[test]
    fn an_la_holds_its_maintained_schools_and_residents_at_pupil_level() {
        let la = org(7, K::LocalAuthority, "852", "E12000008");
        assert_eq!(
            organisation_grants(&la, AccessLevel::Pupil),
            vec![
                Grant::MaintainedBy {
                    id: 7,
                    code: "852".into()
                },
                Grant::ResidentIn("852".into())
            ]
        );
        let rsc = org(8, K::RscOffice, "RSC-SE", "E12000008");
        assert!(organisation_grants(&rsc, AccessLevel::Pupil).is_empty());
        assert_eq!(
            organisation_grants(&rsc, AccessLevel::School),
            vec![Grant::Region("E12000008".into())]
        );
    }

    #[test]
    fn maintained_excludes_academies() {
        let mut school = school::Model {
            urn: 1,
            name: "x".into(),
            phase: "PRIMARY".into(),
            establishment_type: "COMMUNITY".into(),
            la_id: 7,
            trust_id: None,
            diocese_id: None,
            region_code: "E12000008".into(),
            is_open: true,
            pupils_on_roll: 100,
            last_inspection_date: None,
        };
        let grant = Grant::MaintainedBy {
            id: 7,
            code: "852".into(),
        };
        assert!(grant.covers_school(&school));
        school.establishment_type = "ACADEMY_CONVERTER".into();
        assert!(!grant.covers_school(&school));
    }
}
