//! Self-evaluations: an organisation's account of itself for one academic year —
//! sections with a judgement and narrative, priorities, and key figures and signals
//! read live from the baseline — drafted, shared (with named partners or the whole
//! region) and reviewed by partners: several may review one evaluation, each partner
//! organisation once, each review its own record.
//!
//! Only the text is stored, one version per edit (`self_evaluation_version`); key
//! figures are stored as indicator codes and read, with the signals, whenever the
//! evaluation is read, *under the reader's access*: a partner who may not see a
//! school's own figures gets `FORBIDDEN` on `keyFigures` for a school's evaluation, and
//! area figures pass disclosure control as they do everywhere else.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entities::{
    organisation, self_evaluation, self_evaluation_partner, self_evaluation_review,
    self_evaluation_version,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use tokio::sync::OnceCell;

use super::cost;
use super::figures::{AreaInput, FigureArgs, SchoolSource, Series, area_figures};
use super::loaders::ObservationPage;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::partnership::{Written, finish_write, guarded, record_id};
use super::protect::withheld_figures;
use super::reference::Organisation;
use super::sharing::organisation_by_ref;
use super::signals::{Signal, SignalArea, SignalFilter, compute};
use super::{RequestContext, loaders, request_context};
use crate::cache::tags;
use crate::domain::{AccessLevel, GeographicLevel, OrganisationKind, PupilGroup, is_valid_period};
use crate::error::{Error, Result};
use crate::partnership::{
    Audience, Content, Judgement, MAX_TEXT_CHARS, MAX_TITLE_CHARS, Section, SelfEvaluationStatus,
    check_move, required_text,
};
use crate::signals::{SignalKind, SignalStatus, earlier_period};

/// The most partners one share may name.
const MAX_PARTNERS: usize = 50;
/// The most years of key figures one read may ask for.
const MAX_KEY_FIGURE_YEARS: i32 = 5;

/// The evaluations of one list, sharing the loads of their current text, named
/// partners and organisations.
struct EvaluationPage {
    rows: Vec<self_evaluation::Model>,
    versions: OnceCell<HashMap<i32, self_evaluation_version::Model>>,
    partners: OnceCell<HashMap<i32, Vec<i32>>>,
    reviews: OnceCell<HashMap<i32, Vec<self_evaluation_review::Model>>>,
    organisations: OnceCell<HashMap<i32, organisation::Model>>,
}

impl EvaluationPage {
    fn new(rows: Vec<self_evaluation::Model>) -> Arc<Self> {
        Arc::new(EvaluationPage {
            rows,
            versions: OnceCell::new(),
            partners: OnceCell::new(),
            reviews: OnceCell::new(),
            organisations: OnceCell::new(),
        })
    }

    /// The current version of one evaluation of the page.
    async fn current(
        &self,
        rc: &RequestContext,
        id: i32,
    ) -> Result<&self_evaluation_version::Model> {
        let versions = self
            .versions
            .get_or_try_init(|| async {
                use self_evaluation_version::Column;
                let mut which = Condition::any();
                for row in &self.rows {
                    which = which.add(
                        Condition::all()
                            .add(Column::SelfEvaluationId.eq(row.id))
                            .add(Column::Version.eq(row.current_version)),
                    );
                }
                let rows = self_evaluation_version::Entity::find()
                    .filter(which)
                    .all(&rc.db)
                    .await?;
                Ok::<_, Error>(
                    rows.into_iter()
                        .map(|v| (v.self_evaluation_id, v))
                        .collect(),
                )
            })
            .await?;
        versions
            .get(&id)
            .ok_or_else(|| Error::Internal(format!("self-evaluation {id} has no current text")))
    }

    async fn partners(&self, rc: &RequestContext, id: i32) -> Result<&[i32]> {
        let partners = self
            .partners
            .get_or_try_init(|| async {
                let rows = self_evaluation_partner::Entity::find()
                    .filter(
                        self_evaluation_partner::Column::SelfEvaluationId
                            .is_in(self.rows.iter().map(|r| r.id)),
                    )
                    .all(&rc.db)
                    .await?;
                let mut by_evaluation: HashMap<i32, Vec<i32>> = HashMap::new();
                for row in rows {
                    by_evaluation
                        .entry(row.self_evaluation_id)
                        .or_default()
                        .push(row.organisation_id);
                }
                Ok::<_, Error>(by_evaluation)
            })
            .await?;
        Ok(partners.get(&id).map(Vec::as_slice).unwrap_or_default())
    }

    /// The reviews of one evaluation of the page, oldest first.
    async fn reviews(
        &self,
        rc: &RequestContext,
        id: i32,
    ) -> Result<&[self_evaluation_review::Model]> {
        let reviews = self
            .reviews
            .get_or_try_init(|| async {
                use self_evaluation_review::Column;
                let rows = self_evaluation_review::Entity::find()
                    .filter(Column::SelfEvaluationId.is_in(self.rows.iter().map(|r| r.id)))
                    .order_by_asc(Column::Id)
                    .all(&rc.db)
                    .await?;
                let mut by_evaluation: HashMap<i32, Vec<self_evaluation_review::Model>> =
                    HashMap::new();
                for row in rows {
                    by_evaluation
                        .entry(row.self_evaluation_id)
                        .or_default()
                        .push(row);
                }
                Ok::<_, Error>(by_evaluation)
            })
            .await?;
        Ok(reviews.get(&id).map(Vec::as_slice).unwrap_or_default())
    }

    /// Authors, reviewers and named partners of the page, in one query.
    async fn organisation(&self, rc: &RequestContext, id: i32) -> Result<organisation::Model> {
        let organisations = self
            .organisations
            .get_or_try_init(|| async {
                let mut ids: HashSet<i32> = HashSet::new();
                for row in &self.rows {
                    ids.insert(row.organisation_id);
                    ids.extend(
                        self.reviews(rc, row.id)
                            .await?
                            .iter()
                            .map(|r| r.organisation_id),
                    );
                    ids.extend(self.partners(rc, row.id).await?.iter().copied());
                }
                let rows = organisation::Entity::find()
                    .filter(organisation::Column::Id.is_in(ids))
                    .all(&rc.db)
                    .await?;
                Ok::<_, Error>(rows.into_iter().map(|o| (o.id, o)).collect())
            })
            .await?;
        organisations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("organisation {id} missing")))
    }
}

/// An organisation's self-evaluation.
pub struct SelfEvaluation {
    row: self_evaluation::Model,
    page: Arc<EvaluationPage>,
}

impl SelfEvaluation {
    fn list(rows: Vec<self_evaluation::Model>) -> Vec<SelfEvaluation> {
        let page = EvaluationPage::new(rows.clone());
        rows.into_iter()
            .map(|row| SelfEvaluation {
                row,
                page: page.clone(),
            })
            .collect()
    }

    fn one(row: self_evaluation::Model) -> SelfEvaluation {
        Self::list(vec![row]).remove(0)
    }

    async fn first_review(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<&self_evaluation_review::Model>> {
        let rc = request_context(ctx)?;
        Ok(self.page.reviews(rc, self.row.id).await?.first())
    }

    async fn content(&self, ctx: &Context<'_>) -> Result<Content> {
        let rc = request_context(ctx)?;
        parse_content(self.page.current(rc, self.row.id).await?)
    }

    fn area(&self) -> Result<AreaInput> {
        Ok(AreaInput {
            level: GeographicLevel::parse(&self.row.area_level).ok_or_else(|| {
                Error::Internal(format!("self-evaluation {} area level", self.row.id))
            })?,
            code: self.row.area_code.clone(),
        })
    }
}

/// One partner's review of a shared self-evaluation.
pub struct SelfEvaluationReview {
    row: self_evaluation_review::Model,
    page: Arc<EvaluationPage>,
}

#[Object]
impl SelfEvaluationReview {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// The reviewing partner.
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Organisation> {
        let rc = request_context(ctx)?;
        Ok(Organisation(
            self.page.organisation(rc, self.row.organisation_id).await?,
        ))
    }

    /// The version of the text that was reviewed.
    async fn version(&self) -> i32 {
        self.row.version
    }

    async fn comment(&self) -> &str {
        &self.row.comment
    }

    /// The `sub` of the reviewer (`unrecorded` for reviews made before reviews were
    /// records of their own).
    async fn reviewer(&self) -> &str {
        &self.row.reviewed_by
    }

    async fn reviewed_at(&self) -> DateTime<Utc> {
        self.row.reviewed_at
    }
}

#[Object]
impl SelfEvaluation {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// The author.
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Organisation> {
        let rc = request_context(ctx)?;
        Ok(Organisation(
            self.page.organisation(rc, self.row.organisation_id).await?,
        ))
    }

    /// Academic year, e.g. `2024/25`.
    async fn period(&self) -> &str {
        &self.row.period
    }

    async fn status(&self) -> Result<SelfEvaluationStatus> {
        SelfEvaluationStatus::parse(&self.row.status)
            .ok_or_else(|| Error::Internal(format!("self-evaluation {} status", self.row.id)))
    }

    /// Where its key figures and signals come from: the author's own area unless it
    /// said otherwise.
    async fn level(&self) -> Result<GeographicLevel> {
        Ok(self.area()?.level)
    }

    async fn area_code(&self) -> &str {
        &self.row.area_code
    }

    /// Who it is shared with; null while a draft.
    async fn audience(&self) -> Option<Audience> {
        self.row.audience.as_deref().and_then(Audience::parse)
    }

    /// The organisations it is shared with by name (empty when shared with the region).
    #[graphql(complexity = "cost::list(cost::MEMBERS, child_complexity)")]
    async fn partners(&self, ctx: &Context<'_>) -> Result<Vec<Organisation>> {
        let rc = request_context(ctx)?;
        let mut partners = Vec::new();
        for id in self.page.partners(rc, self.row.id).await? {
            partners.push(Organisation(self.page.organisation(rc, *id).await?));
        }
        Ok(partners)
    }

    /// The current version number: 1, then one more per edit.
    async fn version(&self) -> i32 {
        self.row.current_version
    }

    async fn title(&self, ctx: &Context<'_>) -> Result<String> {
        let rc = request_context(ctx)?;
        Ok(self.page.current(rc, self.row.id).await?.title.clone())
    }

    #[graphql(complexity = "cost::list(cost::PARTS, child_complexity)")]
    async fn sections(&self, ctx: &Context<'_>) -> Result<Vec<SelfEvaluationSection>> {
        Ok(sections(self.content(ctx).await?.sections))
    }

    async fn priorities(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.content(ctx).await?.priorities)
    }

    /// The codes of its key indicators: references into the baseline, not figures.
    async fn key_indicators(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.content(ctx).await?.key_indicators)
    }

    /// The key indicators' figures for its area, read from the baseline now: all
    /// pupils, disadvantaged and the rest, for the `years` academic years up to its
    /// period. Under the reader's access, like `timeSeries`.
    #[graphql(complexity = "20 * child_complexity")]
    async fn key_figures(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 3)] years: i32,
    ) -> Result<Vec<Series>> {
        let rc = request_context(ctx)?;
        if !(1..=MAX_KEY_FIGURE_YEARS).contains(&years) {
            return Err(Error::bad_input(format!(
                "years must be between 1 and {MAX_KEY_FIGURE_YEARS}"
            )));
        }
        let content = self.content(ctx).await?;
        if content.key_indicators.is_empty() {
            return Ok(Vec::new());
        }
        let selection = FigureArgs {
            indicator_codes: Some(content.key_indicators),
            period_from: earlier_period(&self.row.period, years as u32 - 1),
            period_to: Some(self.row.period.clone()),
            pupil_groups: Some(vec![
                PupilGroup::All,
                PupilGroup::Disadvantaged,
                PupilGroup::NotDisadvantaged,
            ]),
        }
        .selection()?;
        let rows = area_figures(rc, &self.area()?, selection).await?;
        let withheld = withheld_figures(rc, loaders(ctx)?, &rows).await?;
        let source = SchoolSource::Page(ObservationPage::new(&rows));
        Ok(Series::group(rows, source, withheld))
    }

    /// Signals for its area and period, computed now (see `signals`).
    #[graphql(complexity = "20 * child_complexity")]
    async fn signals(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "vec![SignalStatus::Raised]")] statuses: Vec<SignalStatus>,
        kinds: Option<Vec<SignalKind>>,
    ) -> Result<Vec<Signal>> {
        let rc = request_context(ctx)?;
        let loaders = loaders(ctx)?;
        let area = SignalArea::resolve(rc, loaders, &self.area()?).await?;
        compute(
            rc,
            loaders,
            &area,
            &self.row.period,
            &SignalFilter { statuses, kinds },
        )
        .await
    }

    async fn shared_at(&self) -> Option<DateTime<Utc>> {
        self.row.shared_at
    }

    /// Every partner's review, oldest first: each partner organisation it was shared
    /// with may review it once.
    #[graphql(complexity = "cost::list(cost::MEMBERS, child_complexity)")]
    async fn reviews(&self, ctx: &Context<'_>) -> Result<Vec<SelfEvaluationReview>> {
        let rc = request_context(ctx)?;
        Ok(self
            .page
            .reviews(rc, self.row.id)
            .await?
            .iter()
            .map(|row| SelfEvaluationReview {
                row: row.clone(),
                page: self.page.clone(),
            })
            .collect())
    }

    /// When the first review was made.
    #[graphql(deprecation = "several partners may review: use `reviews`")]
    async fn reviewed_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.first_review(ctx).await?.map(|r| r.reviewed_at))
    }

    /// The partner organisation that reviewed it first.
    #[graphql(deprecation = "several partners may review: use `reviews`")]
    async fn reviewed_by(&self, ctx: &Context<'_>) -> Result<Option<Organisation>> {
        let rc = request_context(ctx)?;
        match self.first_review(ctx).await? {
            Some(review) => Ok(Some(Organisation(
                self.page.organisation(rc, review.organisation_id).await?,
            ))),
            None => Ok(None),
        }
    }

    /// The first review's comment.
    #[graphql(deprecation = "several partners may review: use `reviews`")]
    async fn review_comment(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.first_review(ctx).await?.map(|r| r.comment.clone()))
    }

    /// The `sub` of whoever created it.
    async fn created_by(&self) -> &str {
        &self.row.created_by
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }

    /// Every version, oldest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, SelfEvaluationVersion, Totals>> {
        use self_evaluation_version::Column;
        let rc = request_context(ctx)?;
        let page = PageRequest::new(first, after, &rc.limits)?;
        let query = self_evaluation_version::Entity::find()
            .filter(Column::SelfEvaluationId.eq(self.row.id));
        keyset_page(
            ctx,
            &rc.db,
            query,
            Column::Id,
            page,
            |rows| rows.into_iter().map(SelfEvaluationVersion).collect(),
            |v| v.0.id.into(),
        )
        .await
    }
}

/// One section of a self-evaluation.
#[derive(SimpleObject)]
pub struct SelfEvaluationSection {
    heading: String,
    judgement: Option<Judgement>,
    narrative: String,
}

fn sections(stored: Vec<Section>) -> Vec<SelfEvaluationSection> {
    stored
        .into_iter()
        .map(|s| SelfEvaluationSection {
            heading: s.heading,
            judgement: s.judgement.as_deref().and_then(Judgement::parse),
            narrative: s.narrative,
        })
        .collect()
}

fn parse_content(version: &self_evaluation_version::Model) -> Result<Content> {
    serde_json::from_value(version.content.clone()).map_err(|e| {
        Error::Internal(format!(
            "self-evaluation {} version {}: {e}",
            version.self_evaluation_id, version.version
        ))
    })
}

/// A self-evaluation's text as it stood after one edit.
pub struct SelfEvaluationVersion(self_evaluation_version::Model);

#[Object]
impl SelfEvaluationVersion {
    async fn version(&self) -> i32 {
        self.0.version
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    #[graphql(complexity = "cost::list(cost::PARTS, child_complexity)")]
    async fn sections(&self) -> Result<Vec<SelfEvaluationSection>> {
        Ok(sections(parse_content(&self.0)?.sections))
    }

    async fn priorities(&self) -> Result<Vec<String>> {
        Ok(parse_content(&self.0)?.priorities)
    }

    async fn key_indicators(&self) -> Result<Vec<String>> {
        Ok(parse_content(&self.0)?.key_indicators)
    }

    /// The `sub` of whoever made the edit.
    async fn edited_by(&self) -> &str {
        &self.0.edited_by
    }

    async fn edited_at(&self) -> DateTime<Utc> {
        self.0.edited_at
    }
}

/// Filters for `selfEvaluations`; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct SelfEvaluationFilter {
    /// The author, `KIND:CODE`.
    pub organisation: Option<String>,
    pub period: Option<String>,
    pub status: Option<SelfEvaluationStatus>,
}

#[derive(Default)]
pub struct SelfEvaluationQuery;

#[Object]
impl SelfEvaluationQuery {
    /// Self-evaluations the caller may read — its organisation's own, drafts included,
    /// and those shared with it — by id.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn self_evaluations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: SelfEvaluationFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, SelfEvaluation, Totals>> {
        use self_evaluation::Column;
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        let page = PageRequest::new(first, after, &rc.limits)?;
        let mut query = self_evaluation::Entity::find().filter(access.visible_self_evaluations());
        if let Some(author) = filter.organisation {
            let author = organisation_by_ref(rc, &author).await?;
            query = query.filter(Column::OrganisationId.eq(author.id));
        }
        if let Some(period) = filter.period {
            check_period(&period)?;
            query = query.filter(Column::Period.eq(period));
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
            SelfEvaluation::list,
            |e| e.row.id.into(),
        )
        .await
    }

    /// One self-evaluation; `FORBIDDEN` unless it is the caller's organisation's or
    /// shared with it.
    async fn self_evaluation(&self, ctx: &Context<'_>, id: ID) -> Result<SelfEvaluation> {
        let rc = request_context(ctx)?;
        rc.access().require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        let (evaluation, _) = load_visible(rc, &id).await?;
        Ok(evaluation)
    }
}

/// A self-evaluation and its named partners, after the policy's check.
async fn load_visible(rc: &RequestContext, id: &ID) -> Result<(SelfEvaluation, Vec<i32>)> {
    let id = record_id(id, "self-evaluation")?;
    let row = self_evaluation::Entity::find_by_id(id)
        .one(&rc.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("self-evaluation {id}")))?;
    let evaluation = SelfEvaluation::one(row);
    let partners = evaluation.page.partners(rc, id).await?.to_vec();
    rc.access()
        .require_self_evaluation(&evaluation.row, &partners)?;
    Ok((evaluation, partners))
}

/// One section as written.
#[derive(InputObject)]
pub struct SelfEvaluationSectionInput {
    pub heading: String,
    pub judgement: Option<Judgement>,
    #[graphql(default)]
    pub narrative: String,
}

/// A new self-evaluation, written as a draft.
#[derive(InputObject)]
pub struct NewSelfEvaluation {
    /// Academic year, e.g. `2024/25`.
    pub period: String,
    pub title: String,
    /// Where key figures and signals come from. Defaults to the author's own area (its
    /// LA, or its school); a trust names one.
    pub area: Option<AreaInput>,
    #[graphql(default)]
    pub sections: Vec<SelfEvaluationSectionInput>,
    #[graphql(default)]
    pub priorities: Vec<String>,
    /// Indicator codes of the catalogue, e.g. `persistent_absence_rate`.
    #[graphql(default)]
    pub key_indicators: Vec<String>,
}

/// An edit: fields left out keep their current text. Every edit is a new version.
#[derive(InputObject)]
pub struct SelfEvaluationEdit {
    pub title: Option<String>,
    pub sections: Option<Vec<SelfEvaluationSectionInput>>,
    pub priorities: Option<Vec<String>>,
    pub key_indicators: Option<Vec<String>>,
    /// The version the edit was made on. When given and no longer current, the edit is
    /// refused rather than overwrite someone else's.
    pub expected_version: Option<i32>,
}

#[derive(Default)]
pub struct SelfEvaluationMutation;

#[Object]
impl SelfEvaluationMutation {
    /// Starts a self-evaluation of the caller's organisation, as a draft (version 1).
    /// Its officers only.
    async fn create_self_evaluation(
        &self,
        ctx: &Context<'_>,
        input: NewSelfEvaluation,
    ) -> Result<SelfEvaluation> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        let principal = access.require_partner()?;
        let author = principal.organisation.clone();
        access.require_self_evaluation_author(author.id)?;
        let region = author.region_code.clone().ok_or_else(|| {
            Error::bad_input("a self-evaluation belongs to a region; your organisation has none")
        })?;
        check_period(&input.period)?;
        let area = match input.area {
            Some(area) => area,
            None => own_area(&author)?,
        };
        // The author must be able to read the figures it refers to.
        let area = SignalArea::resolve(rc, loaders(ctx)?, &area).await?;
        let title = required_text("title", &input.title, MAX_TITLE_CHARS)?;
        let content = checked_content(
            ctx,
            Content {
                sections: section_inputs(input.sections),
                priorities: input.priorities,
                key_indicators: input.key_indicators,
            },
        )
        .await?;
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        let row = self_evaluation::ActiveModel {
            id: NotSet,
            organisation_id: Set(author.id),
            region_code: Set(region),
            period: Set(input.period),
            area_level: Set(area.level.as_str().to_owned()),
            area_code: Set(area.code.clone()),
            status: Set(SelfEvaluationStatus::Draft.as_str().to_owned()),
            audience: Set(None),
            current_version: Set(1),
            shared_at: Set(None),
            reviewed_at: Set(None),
            reviewed_by_organisation_id: Set(None),
            review_comment: Set(None),
            created_by: Set(principal.subject.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        insert_version(&txn, &row, 1, title, &content, &principal.subject).await?;
        finish_write(ctx, rc, txn, principal, written(&row)).await?;
        Ok(SelfEvaluation::one(row))
    }

    /// Edits a draft or shared self-evaluation: a new version, the old ones kept. The
    /// author's officers only; a reviewed evaluation is final.
    async fn edit_self_evaluation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: SelfEvaluationEdit,
    ) -> Result<SelfEvaluation> {
        use self_evaluation::Column;
        let rc = request_context(ctx)?;
        let access = rc.access();
        let (evaluation, _) = load_visible(rc, &id).await?;
        let row = &evaluation.row;
        let principal = access.require_self_evaluation_author(row.organisation_id)?;
        if SelfEvaluationStatus::parse(&row.status) == Some(SelfEvaluationStatus::Reviewed) {
            return Err(Error::bad_input(format!(
                "self-evaluation {} is REVIEWED and can no longer be edited",
                row.id
            )));
        }
        if let Some(expected) = input.expected_version
            && expected != row.current_version
        {
            return Err(Error::bad_input(format!(
                "self-evaluation {} is at version {}, not {expected}; read it again and \
                 retry",
                row.id, row.current_version
            )));
        }
        let current = evaluation.page.current(rc, row.id).await?;
        let old = parse_content(current)?;
        let title = match input.title {
            Some(title) => required_text("title", &title, MAX_TITLE_CHARS)?,
            None => current.title.clone(),
        };
        let content = checked_content(
            ctx,
            Content {
                sections: input.sections.map(section_inputs).unwrap_or(old.sections),
                priorities: input.priorities.unwrap_or(old.priorities),
                key_indicators: input.key_indicators.unwrap_or(old.key_indicators),
            },
        )
        .await?;
        let version = row.current_version + 1;
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        guarded(
            &txn,
            self_evaluation::Entity::update_many()
                .col_expr(Column::CurrentVersion, Expr::value(version))
                .col_expr(Column::UpdatedAt, Expr::value(now))
                .filter(Column::Id.eq(row.id))
                .filter(Column::CurrentVersion.eq(row.current_version))
                .filter(Column::Status.eq(row.status.clone())),
            "self-evaluation",
            row.id,
        )
        .await?;
        insert_version(&txn, row, version, title, &content, &principal.subject).await?;
        let updated = reload(&txn, row.id).await?;
        finish_write(ctx, rc, txn, principal, written(&updated)).await?;
        Ok(SelfEvaluation::one(updated))
    }

    /// Shares a draft: with named partner organisations (`KIND:CODE`), or with every
    /// partner of the author's region. The author's officers only.
    async fn share_self_evaluation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        audience: Audience,
        #[graphql(default)] partners: Vec<String>,
    ) -> Result<SelfEvaluation> {
        use self_evaluation::Column;
        let rc = request_context(ctx)?;
        let (evaluation, _) = load_visible(rc, &id).await?;
        let row = &evaluation.row;
        let principal = rc
            .access()
            .require_self_evaluation_author(row.organisation_id)?;
        check_move(
            "self-evaluation",
            row.id,
            status_of(row)?,
            SelfEvaluationStatus::Shared,
        )?;
        let partner_ids = match audience {
            Audience::Region if !partners.is_empty() => {
                return Err(Error::bad_input(
                    "a self-evaluation shared with the region names no partners",
                ));
            }
            Audience::Region => Vec::new(),
            Audience::Partners => named_partners(rc, &partners, row.organisation_id).await?,
        };
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        guarded(
            &txn,
            self_evaluation::Entity::update_many()
                .col_expr(
                    Column::Status,
                    Expr::value(SelfEvaluationStatus::Shared.as_str()),
                )
                .col_expr(Column::Audience, Expr::value(audience.as_str()))
                .col_expr(Column::SharedAt, Expr::value(now))
                .col_expr(Column::UpdatedAt, Expr::value(now))
                .filter(Column::Id.eq(row.id))
                .filter(Column::Status.eq(row.status.clone())),
            "self-evaluation",
            row.id,
        )
        .await?;
        set_partners(&txn, row.id, &partner_ids).await?;
        let updated = reload(&txn, row.id).await?;
        finish_write(ctx, rc, txn, principal, written(&updated)).await?;
        Ok(SelfEvaluation::one(updated))
    }

    /// Takes a shared self-evaluation back to draft: its audience no longer sees it
    /// until it is shared again. The author's officers only.
    async fn withdraw_self_evaluation(&self, ctx: &Context<'_>, id: ID) -> Result<SelfEvaluation> {
        use self_evaluation::Column;
        let rc = request_context(ctx)?;
        let (evaluation, _) = load_visible(rc, &id).await?;
        let row = &evaluation.row;
        let principal = rc
            .access()
            .require_self_evaluation_author(row.organisation_id)?;
        check_move(
            "self-evaluation",
            row.id,
            status_of(row)?,
            SelfEvaluationStatus::Draft,
        )?;
        let txn = rc.db.begin().await?;
        guarded(
            &txn,
            self_evaluation::Entity::update_many()
                .col_expr(
                    Column::Status,
                    Expr::value(SelfEvaluationStatus::Draft.as_str()),
                )
                .col_expr(Column::Audience, Expr::value(Option::<String>::None))
                .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(Column::Id.eq(row.id))
                .filter(Column::Status.eq(row.status.clone())),
            "self-evaluation",
            row.id,
        )
        .await?;
        set_partners(&txn, row.id, &[]).await?;
        let updated = reload(&txn, row.id).await?;
        finish_write(ctx, rc, txn, principal, written(&updated)).await?;
        Ok(SelfEvaluation::one(updated))
    }

    /// Records a partner's review of a shared self-evaluation, as a record of its own:
    /// the first moves it to `REVIEWED` (no more edits), and every other partner it is
    /// shared with may still add theirs, each organisation once. An officer (or RSC
    /// officer) of an organisation it is shared with, never the author's.
    async fn review_self_evaluation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: String,
    ) -> Result<SelfEvaluation> {
        use self_evaluation::Column;
        let rc = request_context(ctx)?;
        let (evaluation, partners) = load_visible(rc, &id).await?;
        let row = &evaluation.row;
        let principal = rc
            .access()
            .require_self_evaluation_reviewer(row, &partners)?;
        let status = status_of(row)?;
        if status != SelfEvaluationStatus::Reviewed {
            check_move(
                "self-evaluation",
                row.id,
                status,
                SelfEvaluationStatus::Reviewed,
            )?;
        }
        let comment = required_text("comment", &comment, MAX_TEXT_CHARS)?;
        let reviewer = principal.organisation.id;
        if evaluation
            .page
            .reviews(rc, row.id)
            .await?
            .iter()
            .any(|r| r.organisation_id == reviewer)
        {
            return Err(Error::bad_input(format!(
                "self-evaluation {} has already been reviewed by {}; each partner reviews \
                 it once",
                row.id, principal.organisation.name
            )));
        }
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        // Guarded by the status it was read in: a withdrawal meanwhile wins.
        guarded(
            &txn,
            self_evaluation::Entity::update_many()
                .col_expr(
                    Column::Status,
                    Expr::value(SelfEvaluationStatus::Reviewed.as_str()),
                )
                .col_expr(Column::UpdatedAt, Expr::value(now))
                .filter(Column::Id.eq(row.id))
                .filter(Column::Status.eq(row.status.clone())),
            "self-evaluation",
            row.id,
        )
        .await?;
        self_evaluation_review::ActiveModel {
            id: NotSet,
            self_evaluation_id: Set(row.id),
            organisation_id: Set(reviewer),
            version: Set(row.current_version),
            comment: Set(comment),
            reviewed_by: Set(principal.subject.clone()),
            reviewed_at: Set(now),
        }
        .insert(&txn)
        .await?;
        let updated = reload(&txn, row.id).await?;
        finish_write(ctx, rc, txn, principal, written(&updated)).await?;
        Ok(SelfEvaluation::one(updated))
    }
}

fn check_period(period: &str) -> Result<()> {
    if is_valid_period(period) {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "period {period:?} is not an academic year like \"2024/25\""
        )))
    }
}

/// The area an organisation evaluates when it does not say: an LA its own area, a
/// school itself.
fn own_area(author: &organisation::Model) -> Result<AreaInput> {
    let level = match OrganisationKind::parse(&author.kind) {
        Some(OrganisationKind::LocalAuthority) => GeographicLevel::La,
        Some(OrganisationKind::School) => GeographicLevel::School,
        _ => {
            return Err(Error::bad_input(
                "say which area (a school, an LA or the region) the self-evaluation's key \
                 figures come from",
            ));
        }
    };
    Ok(AreaInput {
        level,
        code: author.code.clone(),
    })
}

fn status_of(row: &self_evaluation::Model) -> Result<SelfEvaluationStatus> {
    SelfEvaluationStatus::parse(&row.status)
        .ok_or_else(|| Error::Internal(format!("self-evaluation {} status", row.id)))
}

fn written(row: &self_evaluation::Model) -> Written {
    let level = if row.area_level == GeographicLevel::School.as_str() {
        AccessLevel::School
    } else {
        AccessLevel::Aggregate
    };
    Written::one(level, format!("self_evaluation:{}", row.id))
}

fn section_inputs(inputs: Vec<SelfEvaluationSectionInput>) -> Vec<Section> {
    inputs
        .into_iter()
        .map(|s| Section {
            heading: s.heading,
            judgement: s.judgement.map(|j| j.as_str().to_owned()),
            narrative: s.narrative,
        })
        .collect()
}

/// Validates text and checks every key indicator against the catalogue.
async fn checked_content(ctx: &Context<'_>, content: Content) -> Result<Content> {
    let loaders = loaders(ctx)?;
    let mut known = HashSet::new();
    for code in &content.key_indicators {
        if loaders.indicator(code).await?.is_some() {
            known.insert(code.clone());
        }
    }
    content.validated(|code| known.contains(code))
}

async fn named_partners(rc: &RequestContext, refs: &[String], author_id: i32) -> Result<Vec<i32>> {
    if refs.is_empty() || refs.len() > MAX_PARTNERS {
        return Err(Error::bad_input(format!(
            "name between 1 and {MAX_PARTNERS} partner organisations, e.g. LOCAL_AUTHORITY:850"
        )));
    }
    let mut ids = Vec::with_capacity(refs.len());
    for text in refs {
        let partner = organisation_by_ref(rc, text).await?;
        if partner.id == author_id {
            return Err(Error::bad_input(
                "the author's own organisation is not a partner to share with",
            ));
        }
        if !ids.contains(&partner.id) {
            ids.push(partner.id);
        }
    }
    Ok(ids)
}

async fn set_partners(txn: &sea_orm::DatabaseTransaction, id: i32, partners: &[i32]) -> Result<()> {
    self_evaluation_partner::Entity::delete_many()
        .filter(self_evaluation_partner::Column::SelfEvaluationId.eq(id))
        .exec(txn)
        .await?;
    if !partners.is_empty() {
        let rows = partners
            .iter()
            .map(|org| self_evaluation_partner::ActiveModel {
                self_evaluation_id: Set(id),
                organisation_id: Set(*org),
            });
        self_evaluation_partner::Entity::insert_many(rows.collect::<Vec<_>>())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

async fn insert_version(
    txn: &sea_orm::DatabaseTransaction,
    row: &self_evaluation::Model,
    version: i32,
    title: String,
    content: &Content,
    subject: &str,
) -> Result<()> {
    let content = serde_json::to_value(content)
        .map_err(|e| Error::Internal(format!("self-evaluation content: {e}")))?;
    self_evaluation_version::ActiveModel {
        id: NotSet,
        self_evaluation_id: Set(row.id),
        version: Set(version),
        title: Set(title),
        content: Set(content),
        edited_by: Set(subject.to_owned()),
        edited_at: Set(Utc::now()),
    }
    .insert(txn)
    .await?;
    Ok(())
}

async fn reload(txn: &sea_orm::DatabaseTransaction, id: i32) -> Result<self_evaluation::Model> {
    self_evaluation::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal(format!("self-evaluation {id} vanished")))
}
