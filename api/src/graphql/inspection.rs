//! Inspection-window help: which schools are in their inspection window, buddies for
//! their heads, and the directory of staff with inspection experience.
//!
//! The window comes from the register alone — the last inspection date and the
//! configured cycle (`INSPECTION_CYCLE_MONTHS`, `INSPECTION_WINDOW_MONTHS`) — so the
//! list is public like the register it is computed from; the buddy pairings nested in
//! it are not. A pairing is made by request and acceptance — the school's side asks,
//! the buddy's employer accepts or declines, either side ends it — and is confidential
//! to those two sides (the school, its LA or trust, the buddy's employer): never the
//! inspectorate's, by any path (`access::Access::visible_buddy_pairings`). The directory is open to every partner, but a person's email and phone
//! are shown only to partners of the same region, and an answer that contains them is
//! never stored in the response cache, so it cannot be served to anyone else.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entities::{buddy_pairing, inspection_expert, school};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, Condition, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use tokio::sync::OnceCell;

use super::cost;
use super::figures::School;
use super::loaders::{OrganisationSet, SchoolPage};
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::partnership::{Written, finish_write, guarded, record_id};
use super::reference::{Organisation, Region};
use super::schools::organisation_ids;
use super::sharing::organisation_by_ref;
use super::{RequestContext, loaders, request_context};
use crate::access;
use crate::cache::tags;
use crate::domain::{AccessLevel, OrganisationKind, Phase};
use crate::error::{Error, Result};
use crate::partnership::{
    Availability, InspectionDates, InspectionWindowStatus, MAX_SHORT_CHARS, MAX_TEXT_CHARS,
    PairingStatus, WindowBounds, check_move, optional_text, required_text,
};

/// The longest email address accepted (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// The longest phone number accepted, with spaces and punctuation.
const MAX_PHONE_CHARS: usize = 40;

/// A school in (or past) its inspection window.
pub struct WindowEntry {
    school: School,
    model: school::Model,
    status: InspectionWindowStatus,
    dates: Option<InspectionDates>,
    page: Arc<WindowPage>,
}

/// The schools of one page of the window, sharing the load of their buddy pairings.
struct WindowPage {
    urns: Vec<i32>,
    pairings: OnceCell<PairingsBySchool>,
}

/// A window page's visible pairings, by school, sharing one page for their buddies.
type PairingsBySchool = (Arc<PairingPage>, HashMap<i32, Vec<buddy_pairing::Model>>);

#[Object(name = "InspectionWindowEntry")]
impl WindowEntry {
    async fn school(&self) -> &School {
        &self.school
    }

    async fn status(&self) -> InspectionWindowStatus {
        self.status
    }

    async fn last_inspection_date(&self) -> Option<NaiveDate> {
        self.model.last_inspection_date
    }

    /// When the window opened; null for a school never inspected.
    async fn window_opens_on(&self) -> Option<NaiveDate> {
        self.dates.map(|d| d.opens_on)
    }

    /// The last day the inspection is not overdue; null for a school never inspected.
    async fn due_by(&self) -> Option<NaiveDate> {
        self.dates.map(|d| d.due_by)
    }

    /// The school's active buddy pairings, for their two sides only: the school, its
    /// LA or trust, and the buddy's employer. Empty for anyone else — the inspectorate
    /// included — and without a token.
    #[graphql(complexity = "cost::list(cost::MEMBERS, child_complexity)")]
    async fn buddy_pairings(&self, ctx: &Context<'_>) -> Result<Vec<BuddyPairing>> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        if access.require_partner().is_err() {
            return Ok(Vec::new());
        }
        rc.reads(tags::PARTNERSHIP);
        let (pairing_page, by_school) = self
            .page
            .pairings
            .get_or_try_init(|| async {
                let rows = buddy_pairing::Entity::find()
                    .filter(access.visible_buddy_pairings())
                    .filter(buddy_pairing::Column::SchoolUrn.is_in(self.page.urns.iter().copied()))
                    .filter(buddy_pairing::Column::Status.eq(PairingStatus::Active.as_str()))
                    .order_by_asc(buddy_pairing::Column::Id)
                    .all(&rc.db)
                    .await?;
                let page = PairingPage::new(&rows);
                let mut by_school: HashMap<i32, Vec<buddy_pairing::Model>> = HashMap::new();
                for row in rows {
                    by_school.entry(row.school_urn).or_default().push(row);
                }
                Ok::<_, Error>((page, by_school))
            })
            .await?;
        Ok(by_school
            .get(&self.model.urn)
            .into_iter()
            .flatten()
            .map(|row| BuddyPairing {
                row: row.clone(),
                page: pairing_page.clone(),
            })
            .collect())
    }
}

/// The directory entries and schools a list of pairings refers to.
struct PairingPage {
    urns: Vec<i32>,
    expert_ids: Vec<i32>,
    schools: OnceCell<(Arc<SchoolPage>, HashMap<i32, school::Model>)>,
    experts: OnceCell<(Arc<ExpertPage>, HashMap<i32, inspection_expert::Model>)>,
}

impl PairingPage {
    fn new(rows: &[buddy_pairing::Model]) -> Arc<Self> {
        Arc::new(PairingPage {
            urns: rows.iter().map(|r| r.school_urn).collect(),
            expert_ids: rows.iter().map(|r| r.expert_id).collect(),
            schools: OnceCell::new(),
            experts: OnceCell::new(),
        })
    }
}

/// A buddy for a school's head.
pub struct BuddyPairing {
    row: buddy_pairing::Model,
    page: Arc<PairingPage>,
}

impl BuddyPairing {
    fn list(rows: Vec<buddy_pairing::Model>) -> Vec<BuddyPairing> {
        let page = PairingPage::new(&rows);
        rows.into_iter()
            .map(|row| BuddyPairing {
                row,
                page: page.clone(),
            })
            .collect()
    }
}

#[Object]
impl BuddyPairing {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    async fn school(&self, ctx: &Context<'_>) -> Result<School> {
        let rc = request_context(ctx)?;
        let (page, schools) = self
            .page
            .schools
            .get_or_try_init(|| async {
                let rows = school::Entity::find()
                    .filter(school::Column::Urn.is_in(self.page.urns.iter().copied()))
                    .all(&rc.db)
                    .await?;
                let page = SchoolPage::new(&rows);
                Ok::<_, Error>((page, rows.into_iter().map(|s| (s.urn, s)).collect()))
            })
            .await?;
        let model = schools
            .get(&self.row.school_urn)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("buddy pairing {} school", self.row.id)))?;
        Ok(School::on_page(page.clone(), model))
    }

    /// The buddy: a leader elsewhere, from the inspection expert directory.
    async fn buddy(&self, ctx: &Context<'_>) -> Result<InspectionExpert> {
        let rc = request_context(ctx)?;
        let (page, experts) = self
            .page
            .experts
            .get_or_try_init(|| async {
                let rows = inspection_expert::Entity::find()
                    .filter(
                        inspection_expert::Column::Id.is_in(self.page.expert_ids.iter().copied()),
                    )
                    .all(&rc.db)
                    .await?;
                let page = ExpertPage::new(&rows);
                Ok::<_, Error>((page, rows.into_iter().map(|e| (e.id, e)).collect()))
            })
            .await?;
        let row = experts
            .get(&self.row.expert_id)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("buddy pairing {} expert", self.row.id)))?;
        Ok(InspectionExpert {
            row,
            page: page.clone(),
        })
    }

    async fn status(&self) -> Result<PairingStatus> {
        pairing_status(&self.row)
    }

    async fn starts_on(&self) -> NaiveDate {
        self.row.starts_on
    }

    async fn ends_on(&self) -> Option<NaiveDate> {
        self.row.ends_on
    }

    /// Confidential like the pairing itself: only its two sides read it.
    async fn notes(&self) -> Option<&str> {
        self.row.notes.as_deref()
    }

    /// The `sub` of whoever on the buddy's side accepted or declined the request.
    async fn responded_by(&self) -> Option<&str> {
        self.row.responded_by.as_deref()
    }

    async fn responded_at(&self) -> Option<DateTime<Utc>> {
        self.row.responded_at
    }

    /// The `sub` of whoever ended it or withdrew the request.
    async fn ended_by(&self) -> Option<&str> {
        self.row.ended_by.as_deref()
    }

    async fn created_by(&self) -> &str {
        &self.row.created_by
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }
}

/// The employers of one list of directory entries.
struct ExpertPage {
    organisations: OrganisationSet,
}

impl ExpertPage {
    fn new(rows: &[inspection_expert::Model]) -> Arc<Self> {
        Arc::new(ExpertPage {
            organisations: OrganisationSet::new(rows.iter().map(|e| e.organisation_id)),
        })
    }
}

/// Someone with inspection experience who can be called on.
pub struct InspectionExpert {
    row: inspection_expert::Model,
    page: Arc<ExpertPage>,
}

impl InspectionExpert {
    fn list(rows: Vec<inspection_expert::Model>) -> Vec<InspectionExpert> {
        let page = ExpertPage::new(&rows);
        rows.into_iter()
            .map(|row| InspectionExpert {
                row,
                page: page.clone(),
            })
            .collect()
    }

    fn one(row: inspection_expert::Model) -> InspectionExpert {
        Self::list(vec![row]).remove(0)
    }
}

/// How to reach someone in the directory.
#[derive(SimpleObject)]
pub struct ExpertContact {
    email: Option<String>,
    phone: Option<String>,
}

#[Object]
impl InspectionExpert {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.row.name
    }

    async fn job_title(&self) -> &str {
        &self.row.job_title
    }

    /// The employer.
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Organisation> {
        let rc = request_context(ctx)?;
        self.page
            .organisations
            .get(&rc.db, self.row.organisation_id)
            .await?
            .map(Organisation)
            .ok_or_else(|| Error::Internal(format!("inspection expert {} employer", self.row.id)))
    }

    async fn region(&self, ctx: &Context<'_>) -> Result<Option<Region>> {
        Ok(loaders(ctx)?
            .region(&self.row.region_code)
            .await?
            .map(Region))
    }

    /// The phase the person knows best, when they have one.
    async fn phase(&self) -> Option<Phase> {
        self.row.phase.as_deref().and_then(Phase::parse)
    }

    /// Inspection experience and specialisms, in the person's words.
    async fn expertise(&self) -> &str {
        &self.row.expertise
    }

    async fn availability(&self) -> Result<Availability> {
        Availability::parse(&self.row.availability).ok_or_else(|| {
            Error::Internal(format!("inspection expert {} availability", self.row.id))
        })
    }

    async fn availability_note(&self) -> Option<&str> {
        self.row.availability_note.as_deref()
    }

    /// Email and phone: only for authenticated partners of the person's own region,
    /// null for everyone else. An answer that asks for them is never cached.
    async fn contact(&self, ctx: &Context<'_>) -> Result<Option<ExpertContact>> {
        let rc = request_context(ctx)?;
        // Before the decision, so that neither a shown nor a hidden contact is ever
        // replayed to another caller.
        rc.no_store();
        if !rc.access().sees_contact_details(&self.row.region_code) {
            return Ok(None);
        }
        Ok(Some(ExpertContact {
            email: self.row.email.clone(),
            phone: self.row.phone.clone(),
        }))
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }
}

/// Filters for `inspectionWindow`; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct InspectionWindowFilter {
    pub region_code: Option<String>,
    /// 3-digit LA code, e.g. `852`.
    pub la_code: Option<String>,
    /// Trust UID.
    pub trust_code: Option<String>,
    pub phase: Option<Phase>,
    /// Which statuses to list; all three when absent.
    pub statuses: Option<Vec<InspectionWindowStatus>>,
}

/// Filters for `inspectionExperts`; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct InspectionExpertFilter {
    pub region_code: Option<String>,
    pub phase: Option<Phase>,
    pub availability: Option<Availability>,
}

/// Filters for `buddyPairings`; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct BuddyPairingFilter {
    pub school_urn: Option<i32>,
    pub status: Option<PairingStatus>,
}

#[derive(Default)]
pub struct InspectionQuery;

#[Object]
impl InspectionQuery {
    /// Open schools in their inspection window on `asOf` (default today), overdue, or
    /// never inspected, by URN. Public, like the register it is computed from; see
    /// `INSPECTION_CYCLE_MONTHS` and `INSPECTION_WINDOW_MONTHS`.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn inspection_window(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: InspectionWindowFilter,
        as_of: Option<NaiveDate>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, WindowEntry, Totals>> {
        use school::Column;
        let rc = request_context(ctx)?;
        access::public(&rc.caller)?;
        let page = PageRequest::new(first, after, &rc.limits)?;
        let cycle = rc.inspection;
        let as_of = as_of.unwrap_or_else(|| Utc::now().date_naive());
        let bounds = WindowBounds::on(as_of, &cycle)
            .ok_or_else(|| Error::bad_input(format!("asOf {as_of} is out of range")))?;
        let statuses = filter
            .statuses
            .unwrap_or_else(|| InspectionWindowStatus::ALL.to_vec());
        if statuses.is_empty() {
            return Err(Error::bad_input("name at least one status"));
        }
        let mut which = Condition::any();
        for status in &statuses {
            which = which.add(match status {
                InspectionWindowStatus::NeverInspected => {
                    Condition::all().add(Column::LastInspectionDate.is_null())
                }
                InspectionWindowStatus::Overdue => {
                    Condition::all().add(Column::LastInspectionDate.lte(bounds.overdue))
                }
                InspectionWindowStatus::InWindow => Condition::all()
                    .add(Column::LastInspectionDate.gt(bounds.overdue))
                    .add(Column::LastInspectionDate.lte(bounds.opened)),
            });
        }
        let mut query = school::Entity::find()
            .filter(Column::IsOpen.eq(true))
            .filter(which);
        if let Some(region) = filter.region_code {
            query = query.filter(Column::RegionCode.eq(region));
        }
        if let Some(la) = filter.la_code {
            query = query.filter(
                Column::LaId.in_subquery(organisation_ids(OrganisationKind::LocalAuthority, la)),
            );
        }
        if let Some(trust) = filter.trust_code {
            query = query.filter(
                Column::TrustId.in_subquery(organisation_ids(OrganisationKind::Trust, trust)),
            );
        }
        if let Some(phase) = filter.phase {
            query = query.filter(Column::Phase.eq(phase.as_str()));
        }
        keyset_page(
            ctx,
            &rc.db,
            query,
            Column::Urn,
            page,
            |rows| window_entries(rows, &cycle, as_of),
            |e| e.model.urn.into(),
        )
        .await
    }

    /// The inspection expert directory, by id. Every partner; contact details only
    /// within the person's own region.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn inspection_experts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: InspectionExpertFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, InspectionExpert, Totals>> {
        use inspection_expert::Column;
        let rc = request_context(ctx)?;
        rc.access().require_directory()?;
        rc.reads(tags::PARTNERSHIP);
        let page = PageRequest::new(first, after, &rc.limits)?;
        let mut query = inspection_expert::Entity::find();
        if let Some(region) = filter.region_code {
            query = query.filter(Column::RegionCode.eq(region));
        }
        if let Some(phase) = filter.phase {
            query = query.filter(Column::Phase.eq(phase.as_str()));
        }
        if let Some(availability) = filter.availability {
            query = query.filter(Column::Availability.eq(availability.as_str()));
        }
        keyset_page(
            ctx,
            &rc.db,
            query,
            Column::Id,
            page,
            InspectionExpert::list,
            |e| e.row.id.into(),
        )
        .await
    }

    async fn inspection_expert(&self, ctx: &Context<'_>, id: ID) -> Result<InspectionExpert> {
        let rc = request_context(ctx)?;
        rc.access().require_directory()?;
        rc.reads(tags::PARTNERSHIP);
        load_expert(rc, &id).await.map(InspectionExpert::one)
    }

    /// Buddy pairings the caller is a side of — for its school, its LA's or trust's
    /// schools, or with a buddy it employs — by id. Confidential: never the
    /// inspectorate's, whatever its SCHOOL scope.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn buddy_pairings(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: BuddyPairingFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, BuddyPairing, Totals>> {
        use buddy_pairing::Column;
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        let page = PageRequest::new(first, after, &rc.limits)?;
        let mut query = buddy_pairing::Entity::find().filter(access.visible_buddy_pairings());
        if let Some(urn) = filter.school_urn {
            query = query.filter(Column::SchoolUrn.eq(urn));
        }
        if let Some(status) = filter.status {
            query = query.filter(Column::Status.eq(status.as_str()));
        }
        keyset_page(
            ctx,
            &rc.db,
            query,
            Column::Id,
            page,
            BuddyPairing::list,
            |p| p.row.id.into(),
        )
        .await
    }
}

fn window_entries(
    rows: Vec<school::Model>,
    cycle: &crate::config::InspectionCycle,
    as_of: NaiveDate,
) -> Vec<WindowEntry> {
    let page = Arc::new(WindowPage {
        urns: rows.iter().map(|s| s.urn).collect(),
        pairings: OnceCell::new(),
    });
    let schools = School::list(rows.clone());
    rows.into_iter()
        .zip(schools)
        .map(|(model, school)| {
            let dates = model
                .last_inspection_date
                .and_then(|last| InspectionDates::after(last, cycle));
            // The SQL filter and `status` agree (see `WindowBounds`); a row without a
            // status can only be a school never inspected.
            let status = dates
                .and_then(|d| d.status(as_of))
                .unwrap_or(InspectionWindowStatus::NeverInspected);
            WindowEntry {
                school,
                model,
                status,
                dates,
                page: page.clone(),
            }
        })
        .collect()
}

async fn load_expert(rc: &RequestContext, id: &ID) -> Result<inspection_expert::Model> {
    let id = record_id(id, "inspection expert")?;
    inspection_expert::Entity::find_by_id(id)
        .one(&rc.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("inspection expert {id}")))
}

/// A new directory entry.
#[derive(InputObject)]
pub struct NewInspectionExpert {
    /// The employer, `KIND:CODE`: the caller's organisation when left out; an RSC
    /// officer may add someone employed in its region.
    pub organisation: Option<String>,
    pub name: String,
    pub job_title: String,
    pub phase: Option<Phase>,
    pub expertise: String,
    #[graphql(default_with = "Availability::Available")]
    pub availability: Availability,
    pub availability_note: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A change to a directory entry; absent fields stay as they are, and an empty string
/// clears an optional one.
#[derive(InputObject)]
pub struct InspectionExpertChange {
    pub job_title: Option<String>,
    pub phase: Option<Phase>,
    pub expertise: Option<String>,
    pub availability: Option<Availability>,
    pub availability_note: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A new buddy pairing.
#[derive(InputObject)]
pub struct NewBuddyPairing {
    pub school_urn: i32,
    /// The buddy's directory entry.
    pub buddy_id: ID,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub notes: Option<String>,
}

#[derive(Default)]
pub struct InspectionMutation;

#[Object]
impl InspectionMutation {
    /// Adds someone to the directory. The employer's officers or the region's RSC
    /// officers.
    async fn add_inspection_expert(
        &self,
        ctx: &Context<'_>,
        input: NewInspectionExpert,
    ) -> Result<InspectionExpert> {
        let rc = request_context(ctx)?;
        let caller = rc.access().require_partner()?;
        let employer = match &input.organisation {
            Some(text) => organisation_by_ref(rc, text).await?,
            None => caller.organisation.clone(),
        };
        let region = employer.region_code.clone().ok_or_else(|| {
            Error::bad_input("the directory is kept by region; the employer has none")
        })?;
        let principal = rc.access().require_support_writer(employer.id, &region)?;
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        let row = inspection_expert::ActiveModel {
            id: NotSet,
            organisation_id: Set(employer.id),
            region_code: Set(region),
            name: Set(required_text("name", &input.name, MAX_SHORT_CHARS)?),
            job_title: Set(required_text(
                "jobTitle",
                &input.job_title,
                MAX_SHORT_CHARS,
            )?),
            phase: Set(input.phase.map(|p| p.as_str().to_owned())),
            expertise: Set(required_text(
                "expertise",
                &input.expertise,
                MAX_TEXT_CHARS,
            )?),
            availability: Set(input.availability.as_str().to_owned()),
            availability_note: Set(optional_text(
                "availabilityNote",
                input.availability_note.as_deref(),
                MAX_SHORT_CHARS,
            )?),
            email: Set(email(input.email.as_deref())?),
            phone: Set(phone(input.phone.as_deref())?),
            created_by: Set(principal.subject.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        finish_write(ctx, rc, txn, principal, expert_written(row.id)).await?;
        Ok(InspectionExpert::one(row))
    }

    /// Updates a directory entry (availability above all). The employer's officers or
    /// the region's RSC officers.
    async fn update_inspection_expert(
        &self,
        ctx: &Context<'_>,
        id: ID,
        change: InspectionExpertChange,
    ) -> Result<InspectionExpert> {
        use inspection_expert::Column;
        let rc = request_context(ctx)?;
        rc.access().require_directory()?;
        let expert = load_expert(rc, &id).await?;
        let principal = rc
            .access()
            .require_support_writer(expert.organisation_id, &expert.region_code)?;
        let mut update = inspection_expert::Entity::update_many()
            .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(Column::Id.eq(expert.id));
        if let Some(title) = change.job_title {
            let title = required_text("jobTitle", &title, MAX_SHORT_CHARS)?;
            update = update.col_expr(Column::JobTitle, Expr::value(title));
        }
        if let Some(phase) = change.phase {
            update = update.col_expr(Column::Phase, Expr::value(phase.as_str()));
        }
        if let Some(expertise) = change.expertise {
            let expertise = required_text("expertise", &expertise, MAX_TEXT_CHARS)?;
            update = update.col_expr(Column::Expertise, Expr::value(expertise));
        }
        if let Some(availability) = change.availability {
            update = update.col_expr(Column::Availability, Expr::value(availability.as_str()));
        }
        if let Some(note) = change.availability_note {
            let note = optional_text("availabilityNote", Some(&note), MAX_SHORT_CHARS)?;
            update = update.col_expr(Column::AvailabilityNote, Expr::value(note));
        }
        if let Some(address) = change.email {
            update = update.col_expr(Column::Email, Expr::value(email(Some(&address))?));
        }
        if let Some(number) = change.phone {
            update = update.col_expr(Column::Phone, Expr::value(phone(Some(&number))?));
        }
        let txn = rc.db.begin().await?;
        guarded(&txn, update, "inspection expert", expert.id).await?;
        let updated = inspection_expert::Entity::find_by_id(expert.id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::Internal(format!("inspection expert {} vanished", expert.id)))?;
        finish_write(ctx, rc, txn, principal, expert_written(expert.id)).await?;
        Ok(InspectionExpert::one(updated))
    }

    /// Asks for a buddy from the directory, working elsewhere, for a school's head:
    /// `REQUESTED` until the buddy's side answers. The school's leaders or its LA's or
    /// trust's officers.
    async fn request_buddy_pairing(
        &self,
        ctx: &Context<'_>,
        input: NewBuddyPairing,
    ) -> Result<BuddyPairing> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_partner()?;
        let school = school::Entity::find_by_id(input.school_urn)
            .one(&rc.db)
            .await?
            .ok_or_else(|| Error::NotFound(format!("school {}", input.school_urn)))?;
        let principal = access.require_pairing_requester(&school)?;
        let buddy = load_expert(rc, &input.buddy_id).await?;
        if !school.is_open {
            return Err(Error::bad_input(format!("school {} is closed", school.urn)));
        }
        if buddy.availability == Availability::Unavailable.as_str() {
            return Err(Error::bad_input(format!(
                "inspection expert {} is unavailable",
                buddy.id
            )));
        }
        let school_org = crate::db::organisation_by_code(
            &rc.db,
            OrganisationKind::School,
            &school.urn.to_string(),
        )
        .await?;
        if school_org.is_some_and(|org| org.id == buddy.organisation_id) {
            return Err(Error::bad_input(
                "a buddy is a leader from elsewhere, not from the school itself",
            ));
        }
        if input.ends_on.is_some_and(|end| end < input.starts_on) {
            return Err(Error::bad_input("endsOn is before startsOn"));
        }
        let notes = optional_text("notes", input.notes.as_deref(), MAX_TEXT_CHARS)?;
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        let row = buddy_pairing::ActiveModel {
            id: NotSet,
            school_urn: Set(school.urn),
            expert_id: Set(buddy.id),
            status: Set(PairingStatus::Requested.as_str().to_owned()),
            starts_on: Set(input.starts_on),
            ends_on: Set(input.ends_on),
            notes: Set(notes),
            responded_by: Set(None),
            responded_at: Set(None),
            ended_by: Set(None),
            created_by: Set(principal.subject.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        finish_write(ctx, rc, txn, principal, pairing_written(row.id)).await?;
        Ok(BuddyPairing::list(vec![row]).remove(0))
    }

    /// Accepts a request for a buddy: `ACTIVE`. The buddy's side (their employer's
    /// officers).
    async fn accept_buddy_pairing(&self, ctx: &Context<'_>, id: ID) -> Result<BuddyPairing> {
        answer_pairing(ctx, &id, PairingStatus::Active).await
    }

    /// Turns down a request for a buddy: `DECLINED`. The buddy's side.
    async fn decline_buddy_pairing(&self, ctx: &Context<'_>, id: ID) -> Result<BuddyPairing> {
        answer_pairing(ctx, &id, PairingStatus::Declined).await
    }

    /// Ends an active pairing (today, unless it already had an end date), or withdraws
    /// a request not yet answered. Either side.
    async fn end_buddy_pairing(&self, ctx: &Context<'_>, id: ID) -> Result<BuddyPairing> {
        use buddy_pairing::Column;
        let rc = request_context(ctx)?;
        let (pairing, school, buddy) = load_pairing(rc, &id).await?;
        let principal = rc
            .access()
            .require_pairing_side(&school, buddy.organisation_id)?;
        let now = Utc::now();
        check_move(
            "buddy pairing",
            pairing.id,
            pairing_status(&pairing)?,
            PairingStatus::Ended,
        )?;
        let ends_on = pairing.ends_on.unwrap_or_else(|| now.date_naive());
        let txn = rc.db.begin().await?;
        guarded(
            &txn,
            buddy_pairing::Entity::update_many()
                .col_expr(Column::Status, Expr::value(PairingStatus::Ended.as_str()))
                .col_expr(Column::EndsOn, Expr::value(ends_on))
                .col_expr(Column::EndedBy, Expr::value(principal.subject.clone()))
                .col_expr(Column::UpdatedAt, Expr::value(now))
                .filter(Column::Id.eq(pairing.id))
                .filter(Column::Status.eq(pairing.status.clone())),
            "buddy pairing",
            pairing.id,
        )
        .await?;
        let updated = reload_pairing(&txn, pairing.id).await?;
        finish_write(ctx, rc, txn, principal, pairing_written(pairing.id)).await?;
        Ok(BuddyPairing::list(vec![updated]).remove(0))
    }
}

/// The buddy's side answers a request: `to` is `ACTIVE` (accepted) or `DECLINED`.
async fn answer_pairing(ctx: &Context<'_>, id: &ID, to: PairingStatus) -> Result<BuddyPairing> {
    use buddy_pairing::Column;
    let rc = request_context(ctx)?;
    let (pairing, _, buddy) = load_pairing(rc, id).await?;
    let principal = rc
        .access()
        .require_pairing_responder(buddy.organisation_id)?;
    check_move("buddy pairing", pairing.id, pairing_status(&pairing)?, to)?;
    let now = Utc::now();
    let txn = rc.db.begin().await?;
    guarded(
        &txn,
        buddy_pairing::Entity::update_many()
            .col_expr(Column::Status, Expr::value(to.as_str()))
            .col_expr(Column::RespondedBy, Expr::value(principal.subject.clone()))
            .col_expr(Column::RespondedAt, Expr::value(now))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(pairing.id))
            .filter(Column::Status.eq(pairing.status.clone())),
        "buddy pairing",
        pairing.id,
    )
    .await?;
    let updated = reload_pairing(&txn, pairing.id).await?;
    finish_write(ctx, rc, txn, principal, pairing_written(pairing.id)).await?;
    Ok(BuddyPairing::list(vec![updated]).remove(0))
}

/// A pairing with its school and buddy, if the caller may see it at all: a pairing
/// outside [`crate::access::Access::may_see_buddy_pairing`] is `FORBIDDEN`, the same
/// answer whether or not it is under way.
async fn load_pairing(
    rc: &RequestContext,
    id: &ID,
) -> Result<(
    buddy_pairing::Model,
    school::Model,
    inspection_expert::Model,
)> {
    let access = rc.access();
    access.require_partner()?;
    let pairing_id = record_id(id, "buddy pairing")?;
    let pairing = buddy_pairing::Entity::find_by_id(pairing_id)
        .one(&rc.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("buddy pairing {pairing_id}")))?;
    let school = school::Entity::find_by_id(pairing.school_urn)
        .one(&rc.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("buddy pairing {pairing_id} school")))?;
    let buddy = inspection_expert::Entity::find_by_id(pairing.expert_id)
        .one(&rc.db)
        .await?
        .ok_or_else(|| Error::Internal(format!("buddy pairing {pairing_id} buddy")))?;
    access.require_buddy_pairing(&school, buddy.organisation_id, pairing_id)?;
    Ok((pairing, school, buddy))
}

async fn reload_pairing(txn: &DatabaseTransaction, id: i32) -> Result<buddy_pairing::Model> {
    buddy_pairing::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal(format!("buddy pairing {id} vanished")))
}

fn pairing_status(row: &buddy_pairing::Model) -> Result<PairingStatus> {
    PairingStatus::parse(&row.status)
        .ok_or_else(|| Error::Internal(format!("buddy pairing {} status", row.id)))
}

/// An email address, trimmed; blank clears it. Only the shape is checked: the
/// directory is kept by people who know their colleagues' addresses.
fn email(value: Option<&str>) -> Result<Option<String>> {
    let Some(address) = optional_text("email", value, MAX_EMAIL_CHARS)? else {
        return Ok(None);
    };
    let valid = address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !address.chars().any(char::is_whitespace);
    if valid {
        Ok(Some(address))
    } else {
        Err(Error::bad_input(format!(
            "email {address:?} is not an email address"
        )))
    }
}

/// A phone number: digits, spaces and `+()-`; blank clears it.
fn phone(value: Option<&str>) -> Result<Option<String>> {
    let Some(number) = optional_text("phone", value, MAX_PHONE_CHARS)? else {
        return Ok(None);
    };
    let valid = number
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '(' | ')' | '-'))
        && number.chars().filter(char::is_ascii_digit).count() >= 6;
    if valid {
        Ok(Some(number))
    } else {
        Err(Error::bad_input(format!(
            "phone {number:?} is not a phone number"
        )))
    }
}

fn expert_written(id: i32) -> Written {
    Written::one(AccessLevel::Aggregate, format!("inspection_expert:{id}"))
}

/// A pairing is about one school.
fn pairing_written(id: i32) -> Written {
    Written::one(AccessLevel::School, format!("buddy_pairing:{id}"))
}
