//! Peer challenge: reviews of one organisation by others — a triad of LAs, or a
//! thematic review such as SEND — with participants, dates, findings and agreed
//! actions (owner, due date, status).
//!
//! A review is commissioned by the reviewed organisation's officers and run by the
//! participants: it moves `PLANNED → IN_PROGRESS → COMPLETED`, findings are written
//! while it is in progress, and actions are agreed from then on. Participants see it
//! throughout; the region's RSC office and inspectorate team see it once the reviewed
//! organisation shares it (`access::visible_peer_reviews`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, NaiveDate, Utc};
use entities::{organisation, peer_review, peer_review_action, peer_review_participant};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use tokio::sync::OnceCell;

use super::cost;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::partnership::{Written, finish_write, guarded, record_id};
use super::reference::Organisation;
use super::sharing::organisation_by_ref;
use super::{RequestContext, request_context};
use crate::cache::tags;
use crate::domain::AccessLevel;
use crate::error::{Error, Result};
use crate::partnership::{
    ActionStatus, MAX_SHORT_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, ParticipantRole,
    PeerReviewFormat, PeerReviewStatus, Theme, check_move, optional_text, required_text,
};

/// The most reviewing organisations one review may have.
const MAX_REVIEWERS: usize = 10;

/// The reviews of one list, sharing the loads of their participants, actions and
/// organisations.
struct ReviewPage {
    ids: Vec<i32>,
    participants: OnceCell<HashMap<i32, Vec<peer_review_participant::Model>>>,
    actions: OnceCell<HashMap<i32, Vec<peer_review_action::Model>>>,
    organisations: OnceCell<HashMap<i32, organisation::Model>>,
}

impl ReviewPage {
    fn new(ids: Vec<i32>) -> Arc<Self> {
        Arc::new(ReviewPage {
            ids,
            participants: OnceCell::new(),
            actions: OnceCell::new(),
            organisations: OnceCell::new(),
        })
    }

    async fn participants(
        &self,
        rc: &RequestContext,
        id: i32,
    ) -> Result<&[peer_review_participant::Model]> {
        let all = self
            .participants
            .get_or_try_init(|| async {
                let rows = peer_review_participant::Entity::find()
                    .filter(
                        peer_review_participant::Column::PeerReviewId
                            .is_in(self.ids.iter().copied()),
                    )
                    .order_by_asc(peer_review_participant::Column::OrganisationId)
                    .all(&rc.db)
                    .await?;
                let mut by_review: HashMap<i32, Vec<_>> = HashMap::new();
                for row in rows {
                    by_review.entry(row.peer_review_id).or_default().push(row);
                }
                Ok::<_, Error>(by_review)
            })
            .await?;
        Ok(all.get(&id).map(Vec::as_slice).unwrap_or_default())
    }

    async fn participant_ids(&self, rc: &RequestContext, id: i32) -> Result<Vec<i32>> {
        Ok(self
            .participants(rc, id)
            .await?
            .iter()
            .map(|p| p.organisation_id)
            .collect())
    }

    async fn actions(&self, rc: &RequestContext, id: i32) -> Result<&[peer_review_action::Model]> {
        let all = self
            .actions
            .get_or_try_init(|| async {
                let rows = peer_review_action::Entity::find()
                    .filter(
                        peer_review_action::Column::PeerReviewId.is_in(self.ids.iter().copied()),
                    )
                    .order_by_asc(peer_review_action::Column::Id)
                    .all(&rc.db)
                    .await?;
                let mut by_review: HashMap<i32, Vec<_>> = HashMap::new();
                for row in rows {
                    by_review.entry(row.peer_review_id).or_default().push(row);
                }
                Ok::<_, Error>(by_review)
            })
            .await?;
        Ok(all.get(&id).map(Vec::as_slice).unwrap_or_default())
    }

    /// Participants and action owners of the page (every reviewed organisation is a
    /// participant), in one query.
    async fn organisation(&self, rc: &RequestContext, id: i32) -> Result<organisation::Model> {
        let all = self
            .organisations
            .get_or_try_init(|| async {
                let mut ids = HashSet::new();
                for review in &self.ids {
                    ids.extend(self.participant_ids(rc, *review).await?);
                    ids.extend(
                        self.actions(rc, *review)
                            .await?
                            .iter()
                            .map(|a| a.owner_organisation_id),
                    );
                }
                let rows = organisation::Entity::find()
                    .filter(organisation::Column::Id.is_in(ids))
                    .all(&rc.db)
                    .await?;
                Ok::<_, Error>(rows.into_iter().map(|o| (o.id, o)).collect())
            })
            .await?;
        all.get(&id)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("organisation {id} missing")))
    }
}

/// A peer review.
pub struct PeerReview {
    row: peer_review::Model,
    page: Arc<ReviewPage>,
}

impl PeerReview {
    fn list(rows: Vec<peer_review::Model>) -> Vec<PeerReview> {
        let page = ReviewPage::new(rows.iter().map(|r| r.id).collect());
        rows.into_iter()
            .map(|row| PeerReview {
                row,
                page: page.clone(),
            })
            .collect()
    }

    fn one(row: peer_review::Model) -> PeerReview {
        Self::list(vec![row]).remove(0)
    }
}

#[Object]
impl PeerReview {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// The organisation under review.
    async fn reviewed(&self, ctx: &Context<'_>) -> Result<Organisation> {
        let rc = request_context(ctx)?;
        Ok(Organisation(
            self.page
                .organisation(rc, self.row.reviewed_organisation_id)
                .await?,
        ))
    }

    async fn format(&self) -> Result<PeerReviewFormat> {
        PeerReviewFormat::parse(&self.row.format)
            .ok_or_else(|| Error::Internal(format!("peer review {} format", self.row.id)))
    }

    async fn theme(&self) -> Result<Theme> {
        Theme::parse(&self.row.theme)
            .ok_or_else(|| Error::Internal(format!("peer review {} theme", self.row.id)))
    }

    async fn title(&self) -> &str {
        &self.row.title
    }

    async fn starts_on(&self) -> NaiveDate {
        self.row.starts_on
    }

    async fn ends_on(&self) -> NaiveDate {
        self.row.ends_on
    }

    async fn findings(&self) -> Option<&str> {
        self.row.findings.as_deref()
    }

    async fn status(&self) -> Result<PeerReviewStatus> {
        status_of(&self.row)
    }

    /// When the reviewed organisation shared it with the region's RSC office and
    /// inspectorate team; null until then.
    async fn shared_at(&self) -> Option<DateTime<Utc>> {
        self.row.shared_at
    }

    /// Every participating organisation, the reviewed one included.
    #[graphql(complexity = "cost::list(cost::MEMBERS, child_complexity)")]
    async fn participants(&self, ctx: &Context<'_>) -> Result<Vec<Participant>> {
        let rc = request_context(ctx)?;
        let mut out = Vec::new();
        for p in self.page.participants(rc, self.row.id).await? {
            out.push(Participant {
                organisation: self.page.organisation(rc, p.organisation_id).await?,
                role: ParticipantRole::parse(&p.role).ok_or_else(|| {
                    Error::Internal(format!("peer review {} participant role", self.row.id))
                })?,
            });
        }
        Ok(out)
    }

    /// The actions agreed, in the order they were added.
    #[graphql(complexity = "cost::list(cost::PARTS, child_complexity)")]
    async fn actions(&self, ctx: &Context<'_>) -> Result<Vec<ReviewAction>> {
        let rc = request_context(ctx)?;
        let mut out = Vec::new();
        for action in self.page.actions(rc, self.row.id).await? {
            out.push(ReviewAction {
                owner: self
                    .page
                    .organisation(rc, action.owner_organisation_id)
                    .await?,
                row: action.clone(),
            });
        }
        Ok(out)
    }

    /// The `sub` of whoever commissioned it.
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

/// An organisation's part in a review.
pub struct Participant {
    organisation: organisation::Model,
    role: ParticipantRole,
}

#[Object(name = "PeerReviewParticipant")]
impl Participant {
    async fn organisation(&self) -> Organisation {
        Organisation(self.organisation.clone())
    }

    async fn role(&self) -> ParticipantRole {
        self.role
    }
}

/// An action agreed in a review.
pub struct ReviewAction {
    row: peer_review_action::Model,
    owner: organisation::Model,
}

#[Object(name = "PeerReviewAction")]
impl ReviewAction {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    async fn description(&self) -> &str {
        &self.row.description
    }

    /// The participating organisation that owns it.
    async fn owner(&self) -> Organisation {
        Organisation(self.owner.clone())
    }

    /// The person who owns it, when named.
    async fn owner_name(&self) -> Option<&str> {
        self.row.owner_name.as_deref()
    }

    async fn due_on(&self) -> NaiveDate {
        self.row.due_on
    }

    async fn status(&self) -> Result<ActionStatus> {
        ActionStatus::parse(&self.row.status)
            .ok_or_else(|| Error::Internal(format!("peer review action {} status", self.row.id)))
    }

    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.row.completed_at
    }
}

/// Filters for `peerReviews`; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct PeerReviewFilter {
    /// The reviewed organisation, `KIND:CODE`.
    pub reviewed: Option<String>,
    pub theme: Option<Theme>,
    pub status: Option<PeerReviewStatus>,
}

#[derive(Default)]
pub struct PeerReviewQuery;

#[Object]
impl PeerReviewQuery {
    /// Peer reviews the caller may read — those its organisation takes part in, and
    /// for an RSC office or inspectorate team the region's shared ones — by id.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn peer_reviews(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: PeerReviewFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, PeerReview, Totals>> {
        use peer_review::Column;
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        let page = PageRequest::new(first, after, &rc.limits)?;
        let mut query = peer_review::Entity::find().filter(access.visible_peer_reviews());
        if let Some(reviewed) = filter.reviewed {
            let reviewed = organisation_by_ref(rc, &reviewed).await?;
            query = query.filter(Column::ReviewedOrganisationId.eq(reviewed.id));
        }
        if let Some(theme) = filter.theme {
            query = query.filter(Column::Theme.eq(theme.as_str()));
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
            PeerReview::list,
            |r| r.row.id.into(),
        )
        .await
    }

    /// One peer review; `FORBIDDEN` unless the caller may read it.
    async fn peer_review(&self, ctx: &Context<'_>, id: ID) -> Result<PeerReview> {
        let rc = request_context(ctx)?;
        rc.access().require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        let (review, _) = load_visible(rc, &id).await?;
        Ok(review)
    }
}

/// A review and its participants' ids, after the policy's check.
async fn load_visible(rc: &RequestContext, id: &ID) -> Result<(PeerReview, Vec<i32>)> {
    let id = record_id(id, "peer review")?;
    let row = peer_review::Entity::find_by_id(id)
        .one(&rc.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("peer review {id}")))?;
    let review = PeerReview::one(row);
    let participants = review.page.participant_ids(rc, id).await?;
    rc.access()
        .require_peer_review(&review.row, &participants)?;
    Ok((review, participants))
}

/// A reviewing organisation.
#[derive(InputObject)]
pub struct PeerReviewerInput {
    /// `KIND:CODE`, e.g. `LOCAL_AUTHORITY:850`.
    pub organisation: String,
    /// Whether it leads the review (at most one does).
    #[graphql(default)]
    pub lead: bool,
}

/// A new peer review, planned.
#[derive(InputObject)]
pub struct NewPeerReview {
    /// The reviewed organisation, `KIND:CODE`; the caller's own when left out.
    pub reviewed: Option<String>,
    pub format: PeerReviewFormat,
    pub theme: Theme,
    pub title: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// The reviewing organisations: exactly two for a triad.
    pub reviewers: Vec<PeerReviewerInput>,
}

/// A new agreed action.
#[derive(InputObject)]
pub struct NewPeerReviewAction {
    pub description: String,
    /// A participating organisation, `KIND:CODE`.
    pub owner: String,
    pub owner_name: Option<String>,
    pub due_on: NaiveDate,
}

#[derive(Default)]
pub struct PeerReviewMutation;

#[Object]
impl PeerReviewMutation {
    /// Commissions a review of an organisation by others. The reviewed organisation's
    /// officers only.
    async fn create_peer_review(
        &self,
        ctx: &Context<'_>,
        input: NewPeerReview,
    ) -> Result<PeerReview> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        let caller = access.require_partner()?;
        let reviewed = match &input.reviewed {
            Some(text) => organisation_by_ref(rc, text).await?,
            None => caller.organisation.clone(),
        };
        let principal = access.require_peer_review_owner(reviewed.id)?;
        let region = reviewed.region_code.clone().ok_or_else(|| {
            Error::bad_input(
                "a peer review belongs to a region; the reviewed organisation has none",
            )
        })?;
        let title = required_text("title", &input.title, MAX_TITLE_CHARS)?;
        if input.ends_on < input.starts_on {
            return Err(Error::bad_input("endsOn is before startsOn"));
        }
        if input.reviewers.is_empty() || input.reviewers.len() > MAX_REVIEWERS {
            return Err(Error::bad_input(format!(
                "name between 1 and {MAX_REVIEWERS} reviewing organisations"
            )));
        }
        if input.format == PeerReviewFormat::Triad && input.reviewers.len() != 2 {
            return Err(Error::bad_input(
                "a triad is three organisations: the reviewed one and two reviewers",
            ));
        }
        if input.reviewers.iter().filter(|r| r.lead).count() > 1 {
            return Err(Error::bad_input("at most one reviewer leads"));
        }
        let mut participants = vec![(reviewed.id, ParticipantRole::Reviewed)];
        for reviewer in &input.reviewers {
            let org = organisation_by_ref(rc, &reviewer.organisation).await?;
            if participants.iter().any(|(id, _)| *id == org.id) {
                return Err(Error::bad_input(format!(
                    "{} is named twice (the reviewed organisation does not review itself)",
                    reviewer.organisation
                )));
            }
            let role = if reviewer.lead {
                ParticipantRole::LeadReviewer
            } else {
                ParticipantRole::Reviewer
            };
            participants.push((org.id, role));
        }
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        let row = peer_review::ActiveModel {
            id: NotSet,
            reviewed_organisation_id: Set(reviewed.id),
            region_code: Set(region),
            format: Set(input.format.as_str().to_owned()),
            theme: Set(input.theme.as_str().to_owned()),
            title: Set(title),
            starts_on: Set(input.starts_on),
            ends_on: Set(input.ends_on),
            findings: Set(None),
            status: Set(PeerReviewStatus::Planned.as_str().to_owned()),
            shared_at: Set(None),
            created_by: Set(principal.subject.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        let rows = participants
            .iter()
            .map(|(org, role)| peer_review_participant::ActiveModel {
                peer_review_id: Set(row.id),
                organisation_id: Set(*org),
                role: Set(role.as_str().to_owned()),
            });
        peer_review_participant::Entity::insert_many(rows.collect::<Vec<_>>())
            .exec_without_returning(&txn)
            .await?;
        finish_write(ctx, rc, txn, principal, written(row.id)).await?;
        Ok(PeerReview::one(row))
    }

    /// `PLANNED → IN_PROGRESS`. Participants' officers.
    async fn start_peer_review(&self, ctx: &Context<'_>, id: ID) -> Result<PeerReview> {
        move_review(ctx, &id, PeerReviewStatus::InProgress).await
    }

    /// `IN_PROGRESS → COMPLETED`, once findings are recorded. Participants' officers.
    async fn complete_peer_review(&self, ctx: &Context<'_>, id: ID) -> Result<PeerReview> {
        move_review(ctx, &id, PeerReviewStatus::Completed).await
    }

    /// Writes (or rewrites) the findings of a review in progress. Participants'
    /// officers.
    async fn record_peer_review_findings(
        &self,
        ctx: &Context<'_>,
        id: ID,
        findings: String,
    ) -> Result<PeerReview> {
        use peer_review::Column;
        let rc = request_context(ctx)?;
        let (review, participants) = load_visible(rc, &id).await?;
        let principal = rc.access().require_peer_review_participant(&participants)?;
        let row = &review.row;
        if status_of(row)? != PeerReviewStatus::InProgress {
            return Err(Error::bad_input(format!(
                "peer review {} is {}; findings are recorded while it is IN_PROGRESS",
                row.id, row.status
            )));
        }
        let findings = required_text("findings", &findings, MAX_TEXT_CHARS)?;
        let txn = rc.db.begin().await?;
        guarded(
            &txn,
            peer_review::Entity::update_many()
                .col_expr(Column::Findings, Expr::value(findings))
                .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(Column::Id.eq(row.id))
                .filter(Column::Status.eq(row.status.clone())),
            "peer review",
            row.id,
        )
        .await?;
        let updated = reload(&txn, row.id).await?;
        finish_write(ctx, rc, txn, principal, written(row.id)).await?;
        Ok(PeerReview::one(updated))
    }

    /// Shares the review with the region's RSC office and inspectorate team. The
    /// reviewed organisation's officers; sharing a shared review changes nothing.
    async fn share_peer_review(&self, ctx: &Context<'_>, id: ID) -> Result<PeerReview> {
        use peer_review::Column;
        let rc = request_context(ctx)?;
        let (review, _) = load_visible(rc, &id).await?;
        let row = &review.row;
        let principal = rc
            .access()
            .require_peer_review_owner(row.reviewed_organisation_id)?;
        if row.shared_at.is_some() {
            return Ok(review);
        }
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        guarded(
            &txn,
            peer_review::Entity::update_many()
                .col_expr(Column::SharedAt, Expr::value(now))
                .col_expr(Column::UpdatedAt, Expr::value(now))
                .filter(Column::Id.eq(row.id))
                .filter(Column::SharedAt.is_null()),
            "peer review",
            row.id,
        )
        .await?;
        let updated = reload(&txn, row.id).await?;
        finish_write(ctx, rc, txn, principal, written(row.id)).await?;
        Ok(PeerReview::one(updated))
    }

    /// Adds an agreed action to a review in progress or completed. Participants'
    /// officers; the owner must be a participant.
    async fn add_peer_review_action(
        &self,
        ctx: &Context<'_>,
        review_id: ID,
        input: NewPeerReviewAction,
    ) -> Result<PeerReview> {
        let rc = request_context(ctx)?;
        let (review, participants) = load_visible(rc, &review_id).await?;
        let principal = rc.access().require_peer_review_participant(&participants)?;
        let row = &review.row;
        if status_of(row)? == PeerReviewStatus::Planned {
            return Err(Error::bad_input(format!(
                "peer review {} is PLANNED; actions are agreed once it is under way",
                row.id
            )));
        }
        let owner = organisation_by_ref(rc, &input.owner).await?;
        if !participants.contains(&owner.id) {
            return Err(Error::bad_input(format!(
                "{} does not take part in peer review {}",
                input.owner, row.id
            )));
        }
        let description = required_text("description", &input.description, MAX_TEXT_CHARS)?;
        let owner_name = optional_text("ownerName", input.owner_name.as_deref(), MAX_SHORT_CHARS)?;
        let txn = rc.db.begin().await?;
        peer_review_action::ActiveModel {
            id: NotSet,
            peer_review_id: Set(row.id),
            description: Set(description),
            owner_organisation_id: Set(owner.id),
            owner_name: Set(owner_name),
            due_on: Set(input.due_on),
            status: Set(ActionStatus::Open.as_str().to_owned()),
            completed_at: Set(None),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        finish_write(ctx, rc, txn, principal, written(row.id)).await?;
        Ok(PeerReview::one(row.clone()))
    }

    /// Marks an agreed action done. Participants' officers.
    async fn complete_peer_review_action(&self, ctx: &Context<'_>, id: ID) -> Result<PeerReview> {
        use peer_review_action::Column;
        let rc = request_context(ctx)?;
        let action_id = record_id(&id, "peer review action")?;
        let action = peer_review_action::Entity::find_by_id(action_id)
            .one(&rc.db)
            .await?
            .ok_or_else(|| Error::NotFound(format!("peer review action {action_id}")))?;
        let (review, participants) =
            load_visible(rc, &ID(action.peer_review_id.to_string())).await?;
        let principal = rc.access().require_peer_review_participant(&participants)?;
        if action.status != ActionStatus::Open.as_str() {
            return Err(Error::bad_input(format!(
                "peer review action {action_id} is already {}",
                action.status
            )));
        }
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        guarded(
            &txn,
            peer_review_action::Entity::update_many()
                .col_expr(Column::Status, Expr::value(ActionStatus::Done.as_str()))
                .col_expr(Column::CompletedAt, Expr::value(now))
                .filter(Column::Id.eq(action_id))
                .filter(Column::Status.eq(ActionStatus::Open.as_str())),
            "peer review action",
            action_id,
        )
        .await?;
        finish_write(ctx, rc, txn, principal, written(review.row.id)).await?;
        Ok(PeerReview::one(review.row))
    }
}

/// One lifecycle move, by a participant's officer.
async fn move_review(ctx: &Context<'_>, id: &ID, to: PeerReviewStatus) -> Result<PeerReview> {
    use peer_review::Column;
    let rc = request_context(ctx)?;
    let (review, participants) = load_visible(rc, id).await?;
    let principal = rc.access().require_peer_review_participant(&participants)?;
    let row = &review.row;
    check_move("peer review", row.id, status_of(row)?, to)?;
    if to == PeerReviewStatus::Completed && row.findings.is_none() {
        return Err(Error::bad_input(format!(
            "peer review {} has no findings yet; record them before completing it",
            row.id
        )));
    }
    let txn = rc.db.begin().await?;
    guarded(
        &txn,
        peer_review::Entity::update_many()
            .col_expr(Column::Status, Expr::value(to.as_str()))
            .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(Column::Id.eq(row.id))
            .filter(Column::Status.eq(row.status.clone())),
        "peer review",
        row.id,
    )
    .await?;
    let updated = reload(&txn, row.id).await?;
    finish_write(ctx, rc, txn, principal, written(row.id)).await?;
    Ok(PeerReview::one(updated))
}

fn status_of(row: &peer_review::Model) -> Result<PeerReviewStatus> {
    PeerReviewStatus::parse(&row.status)
        .ok_or_else(|| Error::Internal(format!("peer review {} status", row.id)))
}

fn written(id: i32) -> Written {
    Written::one(AccessLevel::Aggregate, format!("peer_review:{id}"))
}

async fn reload(txn: &sea_orm::DatabaseTransaction, id: i32) -> Result<peer_review::Model> {
    peer_review::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal(format!("peer review {id} vanished")))
}
