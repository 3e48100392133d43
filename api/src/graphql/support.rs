//! Requests for help and offers of support: the regional map of need and capacity.
//!
//! An organisation posts a request (theme, urgency, the schools concerned) or an offer
//! (theme, capacity); `supportMatches` pairs open requests with open offers of the same
//! theme in the same region. A request and the offer matched with it share one
//! lifecycle — `OPEN → MATCHED → AGREED → CLOSED`, with `MATCHED → OPEN` when the
//! offering side declines and `OPEN → CLOSED` when a poster withdraws — and every move
//! changes both records in one transaction, guarded by the states they were read in.
//!
//! Every partner of a region sees its requests and offers — except a request marked
//! confidential, which only the two sides and the schools' own LA or trust see (never
//! the inspectorate; the rule is `access`'s, and the one-record reads, lists, matches
//! and the request nested in an offer all go through it). The schools a request names
//! are shown in full only to the two sides (anyone else sees those in their own SCHOOL
//! scope). Posting and moving support is for the organisation's own officers and the
//! region's RSC officers, who broker support.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use entities::{
    organisation, school, support_offer, support_offer_region, support_request,
    support_request_region, support_request_school,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use tokio::sync::OnceCell;

use super::cost;
use super::figures::School;
use super::loaders::SchoolPage;
use super::pagination::{KeyCursor, PageRequest, Totals, keyset_page, page_cost};
use super::partnership::{Written, finish_write, guarded, record_id};
use super::reference::{Organisation, Region};
use super::sharing::organisation_by_ref;
use super::{RequestContext, loaders, request_context};
use crate::access::Access;
use crate::cache::tags;
use crate::domain::AccessLevel;
use crate::error::{Error, Result};
use crate::identity::Principal;
use crate::partnership::{
    MAX_SHORT_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, Reach, SupportReach, SupportStatus, Theme,
    Urgency, check_move, reach_regions, required_text, within_reach,
};

/// The most schools one request may name.
const MAX_SCHOOLS_PER_REQUEST: usize = 50;

/// The requests and offers of one list, and everything their nested fields refer to,
/// loaded together.
#[derive(Default)]
struct SupportPage {
    requests: Vec<support_request::Model>,
    offers: Vec<support_offer::Model>,
    links: OnceCell<Links>,
    schools: OnceCell<SchoolsByRequest>,
    organisations: OnceCell<HashMap<i32, organisation::Model>>,
    /// The regions each request and offer of the page is opened to by name.
    request_regions: OnceCell<HashMap<i32, Vec<String>>>,
    offer_regions: OnceCell<HashMap<i32, Vec<String>>>,
    /// The other sides of the page's pairs, as a page of their own: nested fields of
    /// matched records load once for the whole list too.
    other_side: OnceCell<Arc<SupportPage>>,
}

/// The schools each request of a page names, sharing one page of schools.
type SchoolsByRequest = (Arc<SchoolPage>, HashMap<i32, Vec<school::Model>>);

/// The other side of each pair on a page.
#[derive(Default)]
struct Links {
    /// The offers matched with the page's requests, by offer id.
    offers: HashMap<i32, support_offer::Model>,
    /// The requests matched with the page's offers, by offer id.
    requests: HashMap<i32, support_request::Model>,
}

impl SupportPage {
    fn of_requests(requests: Vec<support_request::Model>) -> Arc<Self> {
        Arc::new(SupportPage {
            requests,
            ..SupportPage::default()
        })
    }

    fn of_offers(offers: Vec<support_offer::Model>) -> Arc<Self> {
        Arc::new(SupportPage {
            offers,
            ..SupportPage::default()
        })
    }

    async fn links(&self, rc: &RequestContext) -> Result<&Links> {
        self.links
            .get_or_try_init(|| async {
                let offer_ids: Vec<i32> = self.requests.iter().filter_map(|r| r.offer_id).collect();
                let offers = if offer_ids.is_empty() {
                    Vec::new()
                } else {
                    support_offer::Entity::find()
                        .filter(support_offer::Column::Id.is_in(offer_ids))
                        .all(&rc.db)
                        .await?
                };
                let requests = if self.offers.is_empty() {
                    Vec::new()
                } else {
                    // A confidential request stays hidden behind the offer it is
                    // matched with: the offer is on the regional map, the request is not.
                    support_request::Entity::find()
                        .filter(rc.access().visible_support_requests())
                        .filter(
                            support_request::Column::OfferId
                                .is_in(self.offers.iter().map(|o| o.id)),
                        )
                        .all(&rc.db)
                        .await?
                };
                Ok::<_, Error>(Links {
                    offers: offers.into_iter().map(|o| (o.id, o)).collect(),
                    requests: requests
                        .into_iter()
                        .filter_map(|r| r.offer_id.map(|offer| (offer, r)))
                        .collect(),
                })
            })
            .await
    }

    async fn other_side(&self, rc: &RequestContext) -> Result<Arc<SupportPage>> {
        let page = self
            .other_side
            .get_or_try_init(|| async {
                let links = self.links(rc).await?;
                Ok::<_, Error>(Arc::new(SupportPage {
                    requests: links.requests.values().cloned().collect(),
                    offers: links.offers.values().cloned().collect(),
                    ..SupportPage::default()
                }))
            })
            .await?;
        Ok(page.clone())
    }

    async fn matched_offer(
        &self,
        rc: &RequestContext,
        request: &support_request::Model,
    ) -> Result<Option<support_offer::Model>> {
        let Some(offer) = request.offer_id else {
            return Ok(None);
        };
        Ok(self.links(rc).await?.offers.get(&offer).cloned())
    }

    async fn matched_request(
        &self,
        rc: &RequestContext,
        offer: &support_offer::Model,
    ) -> Result<Option<support_request::Model>> {
        Ok(self.links(rc).await?.requests.get(&offer.id).cloned())
    }

    /// The schools each request of the page names, and the page they share.
    async fn schools(
        &self,
        rc: &RequestContext,
        request: i32,
    ) -> Result<(Arc<SchoolPage>, &[school::Model])> {
        let (page, all) = self
            .schools
            .get_or_try_init(|| async {
                let pairs = support_request_school::Entity::find()
                    .filter(
                        support_request_school::Column::SupportRequestId
                            .is_in(self.requests.iter().map(|r| r.id)),
                    )
                    .all(&rc.db)
                    .await?;
                let rows = school::Entity::find()
                    .filter(school::Column::Urn.is_in(pairs.iter().map(|p| p.school_urn)))
                    .order_by_asc(school::Column::Urn)
                    .all(&rc.db)
                    .await?;
                let page = SchoolPage::new(&rows);
                let schools: HashMap<i32, school::Model> =
                    rows.into_iter().map(|s| (s.urn, s)).collect();
                let mut by_request: HashMap<i32, Vec<school::Model>> = HashMap::new();
                for pair in pairs {
                    if let Some(school) = schools.get(&pair.school_urn) {
                        by_request
                            .entry(pair.support_request_id)
                            .or_default()
                            .push(school.clone());
                    }
                }
                for list in by_request.values_mut() {
                    list.sort_by_key(|s| s.urn);
                }
                Ok::<_, Error>((page, by_request))
            })
            .await?;
        Ok((
            page.clone(),
            all.get(&request).map(Vec::as_slice).unwrap_or_default(),
        ))
    }

    async fn request_regions(&self, rc: &RequestContext, id: i32) -> Result<&[String]> {
        let all = self
            .request_regions
            .get_or_try_init(|| request_regions(&rc.db, self.requests.iter().map(|r| r.id)))
            .await?;
        Ok(all.get(&id).map(Vec::as_slice).unwrap_or_default())
    }

    async fn offer_regions(&self, rc: &RequestContext, id: i32) -> Result<&[String]> {
        let all = self
            .offer_regions
            .get_or_try_init(|| offer_regions(&rc.db, self.offers.iter().map(|o| o.id)))
            .await?;
        Ok(all.get(&id).map(Vec::as_slice).unwrap_or_default())
    }

    /// Posters on both sides of every record of the page, in one query.
    async fn organisation(&self, rc: &RequestContext, id: i32) -> Result<organisation::Model> {
        let all = self
            .organisations
            .get_or_try_init(|| async {
                let links = self.links(rc).await?;
                let ids: HashSet<i32> = self
                    .requests
                    .iter()
                    .map(|r| r.organisation_id)
                    .chain(self.offers.iter().map(|o| o.organisation_id))
                    .chain(links.offers.values().map(|o| o.organisation_id))
                    .chain(links.requests.values().map(|r| r.organisation_id))
                    .collect();
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

/// A request for help.
pub struct SupportRequest {
    row: support_request::Model,
    page: Arc<SupportPage>,
}

impl SupportRequest {
    fn list(rows: Vec<support_request::Model>) -> Vec<SupportRequest> {
        let page = SupportPage::of_requests(rows.clone());
        rows.into_iter()
            .map(|row| SupportRequest {
                row,
                page: page.clone(),
            })
            .collect()
    }

    fn one(row: support_request::Model) -> SupportRequest {
        Self::list(vec![row]).remove(0)
    }

    /// The organisations on both sides.
    async fn parties(&self, rc: &RequestContext) -> Result<Vec<i32>> {
        let mut parties = vec![self.row.organisation_id];
        if let Some(offer) = self.page.matched_offer(rc, &self.row).await? {
            parties.push(offer.organisation_id);
        }
        Ok(parties)
    }
}

#[Object]
impl SupportRequest {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// Who asks for help.
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Organisation> {
        let rc = request_context(ctx)?;
        Ok(Organisation(
            self.page.organisation(rc, self.row.organisation_id).await?,
        ))
    }

    async fn region(&self, ctx: &Context<'_>) -> Result<Option<Region>> {
        Ok(loaders(ctx)?
            .region(&self.row.region_code)
            .await?
            .map(Region))
    }

    async fn theme(&self) -> Result<Theme> {
        Theme::parse(&self.row.theme)
            .ok_or_else(|| Error::Internal(format!("support request {} theme", self.row.id)))
    }

    async fn urgency(&self) -> Result<Urgency> {
        Urgency::parse(&self.row.urgency)
            .ok_or_else(|| Error::Internal(format!("support request {} urgency", self.row.id)))
    }

    async fn title(&self) -> &str {
        &self.row.title
    }

    async fn detail(&self) -> &str {
        &self.row.detail
    }

    async fn status(&self) -> Result<SupportStatus> {
        request_status(&self.row)
    }

    /// Seen only by the two sides and the schools' own LA or trust — never by the
    /// inspectorate — instead of by the whole region.
    async fn confidential(&self) -> bool {
        self.row.confidential
    }

    /// How far beyond its region it is open (a confidential request stays with its
    /// sides wherever it is open).
    async fn reach(&self) -> Result<SupportReach> {
        reach_of(&self.row.reach, "support request", self.row.id)
    }

    /// The regions it is opened to by name, beyond its own (reach `REGIONS`).
    #[graphql(complexity = "cost::list(cost::MEMBERS, child_complexity)")]
    async fn open_to(&self, ctx: &Context<'_>) -> Result<Vec<Region>> {
        let rc = request_context(ctx)?;
        regions(ctx, self.page.request_regions(rc, self.row.id).await?).await
    }

    /// The schools concerned: all of them for the two sides, otherwise only those in
    /// the caller's SCHOOL scope.
    #[graphql(complexity = "cost::list(cost::MEMBERS, child_complexity)")]
    async fn schools(&self, ctx: &Context<'_>) -> Result<Vec<School>> {
        let rc = request_context(ctx)?;
        let parties = self.parties(rc).await?;
        let access = rc.access();
        let (page, schools) = self.page.schools(rc, self.row.id).await?;
        Ok(schools
            .iter()
            .filter(|s| access.sees_request_school(&parties, s))
            .map(|s| School::on_page(page.clone(), s.clone()))
            .collect())
    }

    /// The offer it is matched with, once matched.
    async fn offer(&self, ctx: &Context<'_>) -> Result<Option<SupportOffer>> {
        let rc = request_context(ctx)?;
        let Some(offer) = self.page.matched_offer(rc, &self.row).await? else {
            return Ok(None);
        };
        Ok(Some(SupportOffer {
            row: offer,
            page: self.page.other_side(rc).await?,
        }))
    }

    /// The `sub` of whoever posted it.
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

/// An offer of support.
pub struct SupportOffer {
    row: support_offer::Model,
    page: Arc<SupportPage>,
}

impl SupportOffer {
    fn list(rows: Vec<support_offer::Model>) -> Vec<SupportOffer> {
        let page = SupportPage::of_offers(rows.clone());
        rows.into_iter()
            .map(|row| SupportOffer {
                row,
                page: page.clone(),
            })
            .collect()
    }

    fn one(row: support_offer::Model) -> SupportOffer {
        Self::list(vec![row]).remove(0)
    }
}

#[Object]
impl SupportOffer {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// Who offers it.
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Organisation> {
        let rc = request_context(ctx)?;
        Ok(Organisation(
            self.page.organisation(rc, self.row.organisation_id).await?,
        ))
    }

    async fn region(&self, ctx: &Context<'_>) -> Result<Option<Region>> {
        Ok(loaders(ctx)?
            .region(&self.row.region_code)
            .await?
            .map(Region))
    }

    async fn theme(&self) -> Result<Theme> {
        Theme::parse(&self.row.theme)
            .ok_or_else(|| Error::Internal(format!("support offer {} theme", self.row.id)))
    }

    async fn title(&self) -> &str {
        &self.row.title
    }

    async fn detail(&self) -> &str {
        &self.row.detail
    }

    /// What can be given, e.g. "6 adviser days in the spring term".
    async fn capacity(&self) -> &str {
        &self.row.capacity
    }

    async fn status(&self) -> Result<SupportStatus> {
        offer_status(&self.row)
    }

    /// How far beyond its region it is open.
    async fn reach(&self) -> Result<SupportReach> {
        reach_of(&self.row.reach, "support offer", self.row.id)
    }

    /// The regions it is opened to by name, beyond its own (reach `REGIONS`).
    #[graphql(complexity = "cost::list(cost::MEMBERS, child_complexity)")]
    async fn open_to(&self, ctx: &Context<'_>) -> Result<Vec<Region>> {
        let rc = request_context(ctx)?;
        regions(ctx, self.page.offer_regions(rc, self.row.id).await?).await
    }

    /// The request it is matched with, once matched.
    async fn request(&self, ctx: &Context<'_>) -> Result<Option<SupportRequest>> {
        let rc = request_context(ctx)?;
        let Some(request) = self.page.matched_request(rc, &self.row).await? else {
            return Ok(None);
        };
        Ok(Some(SupportRequest {
            row: request,
            page: self.page.other_side(rc).await?,
        }))
    }

    /// The `sub` of whoever posted it.
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

/// An open request with the open offers that could meet it.
pub struct SupportMatch {
    request: SupportRequest,
    offers: Vec<SupportOffer>,
}

#[Object]
impl SupportMatch {
    async fn request(&self) -> &SupportRequest {
        &self.request
    }

    /// Open offers of the same theme from other organisations that can meet it — one
    /// of the two open to the other's region — oldest first.
    #[graphql(complexity = "cost::list(cost::MEMBERS, child_complexity)")]
    async fn offers(&self) -> &[SupportOffer] {
        &self.offers
    }
}

/// Filters for the support lists; all optional, combined with AND.
#[derive(InputObject, Default)]
pub struct SupportFilter {
    pub region_code: Option<String>,
    pub theme: Option<Theme>,
    pub status: Option<SupportStatus>,
    /// The poster, `KIND:CODE`.
    pub organisation: Option<String>,
}

#[derive(Default)]
pub struct SupportQuery;

#[Object]
impl SupportQuery {
    /// Requests for help the caller may read — its region's, its own, and those matched
    /// with its offers — by id.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn support_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: SupportFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, SupportRequest, Totals>> {
        use support_request::Column;
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        let page = PageRequest::new(first, after, &rc.limits)?;
        let mut query = support_request::Entity::find().filter(access.visible_support_requests());
        if let Some(region) = filter.region_code {
            query = query.filter(Column::RegionCode.eq(region));
        }
        if let Some(theme) = filter.theme {
            query = query.filter(Column::Theme.eq(theme.as_str()));
        }
        if let Some(status) = filter.status {
            query = query.filter(Column::Status.eq(status.as_str()));
        }
        if let Some(poster) = filter.organisation {
            let poster = organisation_by_ref(rc, &poster).await?;
            query = query.filter(Column::OrganisationId.eq(poster.id));
        }
        keyset_page(
            ctx,
            &rc.db,
            query,
            Column::Id,
            page,
            SupportRequest::list,
            |r| r.row.id.into(),
        )
        .await
    }

    /// Offers of support the caller may read — its region's and its own — by id.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn support_offers(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: SupportFilter,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, SupportOffer, Totals>> {
        use support_offer::Column;
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        let page = PageRequest::new(first, after, &rc.limits)?;
        let mut query = support_offer::Entity::find().filter(access.visible_support_offers());
        if let Some(region) = filter.region_code {
            query = query.filter(Column::RegionCode.eq(region));
        }
        if let Some(theme) = filter.theme {
            query = query.filter(Column::Theme.eq(theme.as_str()));
        }
        if let Some(status) = filter.status {
            query = query.filter(Column::Status.eq(status.as_str()));
        }
        if let Some(poster) = filter.organisation {
            let poster = organisation_by_ref(rc, &poster).await?;
            query = query.filter(Column::OrganisationId.eq(poster.id));
        }
        keyset_page(
            ctx,
            &rc.db,
            query,
            Column::Id,
            page,
            SupportOffer::list,
            |o| o.row.id.into(),
        )
        .await
    }

    async fn support_request(&self, ctx: &Context<'_>, id: ID) -> Result<SupportRequest> {
        let rc = request_context(ctx)?;
        rc.access().require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        load_request(rc, &id).await
    }

    async fn support_offer(&self, ctx: &Context<'_>, id: ID) -> Result<SupportOffer> {
        let rc = request_context(ctx)?;
        rc.access().require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        load_offer(rc, &id).await
    }

    /// Open requests the caller may read, each with the open offers that match it: the
    /// same theme, another organisation, one of the two open to the other's region. Paged over requests, by id.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn support_matches(
        &self,
        ctx: &Context<'_>,
        region_code: Option<String>,
        theme: Option<Theme>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<KeyCursor, SupportMatch, Totals>> {
        use support_request::Column;
        let rc = request_context(ctx)?;
        let access = rc.access();
        access.require_partner()?;
        rc.reads(tags::PARTNERSHIP);
        let page = PageRequest::new(first, after, &rc.limits)?;
        let open = SupportStatus::Open.as_str();
        let mut query = support_request::Entity::find()
            .filter(access.visible_support_requests())
            .filter(Column::Status.eq(open));
        if let Some(region) = &region_code {
            query = query.filter(Column::RegionCode.eq(region.clone()));
        }
        if let Some(theme) = theme {
            query = query.filter(Column::Theme.eq(theme.as_str()));
        }
        let mut connection = keyset_page(
            ctx,
            &rc.db,
            query,
            Column::Id,
            page,
            SupportRequest::list,
            |r| r.row.id.into(),
        )
        .await?;
        let offers = if connection.edges.is_empty() {
            Vec::new()
        } else {
            let requests = connection.edges.iter().map(|e| &e.node.row);
            support_offer::Entity::find()
                .filter(access.visible_support_offers())
                .filter(support_offer::Column::Status.eq(open))
                .filter(support_offer::Column::Theme.is_in(requests.map(|r| r.theme.clone())))
                .order_by_asc(support_offer::Column::Id)
                .all(&rc.db)
                .await?
        };
        let offer_page = SupportPage::of_offers(offers.clone());
        let offers_open_to = offer_regions(&rc.db, offers.iter().map(|o| o.id)).await?;
        let requests_open_to =
            request_regions(&rc.db, connection.edges.iter().map(|e| e.node.row.id)).await?;
        let no_regions = Vec::new();
        let mut matched = Connection::with_additional_fields(
            connection.has_previous_page,
            connection.has_next_page,
            connection.additional_fields,
        );
        for edge in connection.edges.drain(..) {
            let request = edge.node;
            let request_reach = reach(
                &request.row.region_code,
                &request.row.reach,
                requests_open_to.get(&request.row.id).unwrap_or(&no_regions),
            );
            let candidates = offers
                .iter()
                .filter(|o| {
                    o.theme == request.row.theme
                        && o.organisation_id != request.row.organisation_id
                        && within_reach(
                            &request_reach,
                            &reach(
                                &o.region_code,
                                &o.reach,
                                offers_open_to.get(&o.id).unwrap_or(&no_regions),
                            ),
                        )
                })
                .map(|o| SupportOffer {
                    row: o.clone(),
                    page: offer_page.clone(),
                })
                .collect();
            matched.edges.push(Edge::new(
                edge.cursor,
                SupportMatch {
                    request,
                    offers: candidates,
                },
            ));
        }
        Ok(matched)
    }
}

async fn load_request(rc: &RequestContext, id: &ID) -> Result<SupportRequest> {
    let id = record_id(id, "support request")?;
    let access = rc.access();
    access.require_partner()?;
    let visible = support_request::Entity::find_by_id(id)
        .filter(access.visible_support_requests())
        .one(&rc.db)
        .await?;
    if let Some(row) = visible {
        return Ok(SupportRequest::one(row));
    }
    match support_request::Entity::find_by_id(id).one(&rc.db).await? {
        Some(row) => Err(access.support_request_refused(&row)),
        None => Err(Error::NotFound(format!("support request {id}"))),
    }
}

async fn load_offer(rc: &RequestContext, id: &ID) -> Result<SupportOffer> {
    let id = record_id(id, "support offer")?;
    let access = rc.access();
    access.require_partner()?;
    let visible = support_offer::Entity::find_by_id(id)
        .filter(access.visible_support_offers())
        .one(&rc.db)
        .await?;
    if let Some(row) = visible {
        return Ok(SupportOffer::one(row));
    }
    match support_offer::Entity::find_by_id(id).one(&rc.db).await? {
        Some(row) => Err(access.support_offer_refused(&row)),
        None => Err(Error::NotFound(format!("support offer {id}"))),
    }
}

/// A new request for help.
#[derive(InputObject)]
pub struct NewSupportRequest {
    pub theme: Theme,
    pub urgency: Urgency,
    pub title: String,
    #[graphql(default)]
    pub detail: String,
    /// URNs of the schools concerned; each in the caller's SCHOOL scope.
    #[graphql(default)]
    pub school_urns: Vec<i32>,
    /// Only the two sides and the schools' own LA or trust see it — never the
    /// inspectorate, nor the rest of the region. For help a head wants kept apart from
    /// inspection.
    #[graphql(default)]
    pub confidential: bool,
    /// How far beyond its region it is open: the region only (the default), named
    /// neighbouring regions (`openTo`), or nationally.
    #[graphql(default_with = "SupportReach::Region")]
    pub reach: SupportReach,
    /// Region codes for reach `REGIONS`.
    #[graphql(default)]
    pub open_to: Vec<String>,
    /// The requesting organisation, `KIND:CODE`: the caller's own when left out; an RSC
    /// officer may post for an organisation of its region.
    pub organisation: Option<String>,
}

/// A new offer of support.
#[derive(InputObject)]
pub struct NewSupportOffer {
    pub theme: Theme,
    pub title: String,
    #[graphql(default)]
    pub detail: String,
    /// What can be given, e.g. "6 adviser days in the spring term".
    pub capacity: String,
    /// The offering organisation, `KIND:CODE`: the caller's own when left out.
    pub organisation: Option<String>,
    /// How far beyond its region it is open: the region only (the default), named
    /// neighbouring regions (`openTo`), or nationally.
    #[graphql(default_with = "SupportReach::Region")]
    pub reach: SupportReach,
    /// Region codes for reach `REGIONS`.
    #[graphql(default)]
    pub open_to: Vec<String>,
}

#[derive(Default)]
pub struct SupportMutation;

#[Object]
impl SupportMutation {
    /// Posts a request for help, open. The organisation's officers or the region's RSC
    /// officers.
    async fn create_support_request(
        &self,
        ctx: &Context<'_>,
        input: NewSupportRequest,
    ) -> Result<SupportRequest> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        let (poster, region, principal) = poster(rc, input.organisation.as_deref()).await?;
        let title = required_text("title", &input.title, MAX_TITLE_CHARS)?;
        let detail = text_or_empty("detail", &input.detail)?;
        let open_to = checked_reach(ctx, input.reach, &region, input.open_to).await?;
        let mut urns = input.school_urns;
        urns.sort_unstable();
        urns.dedup();
        if urns.len() > MAX_SCHOOLS_PER_REQUEST {
            return Err(Error::bad_input(format!(
                "at most {MAX_SCHOOLS_PER_REQUEST} schools per request"
            )));
        }
        let schools = school::Entity::find()
            .filter(school::Column::Urn.is_in(urns.iter().copied()))
            .all(&rc.db)
            .await?;
        if let Some(missing) = urns.iter().find(|u| !schools.iter().any(|s| s.urn == **u)) {
            return Err(Error::NotFound(format!("school {missing}")));
        }
        for school in &schools {
            // A request speaks for schools its poster is responsible for.
            access.require_school(school)?;
        }
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        let row = support_request::ActiveModel {
            id: NotSet,
            organisation_id: Set(poster.id),
            region_code: Set(region),
            theme: Set(input.theme.as_str().to_owned()),
            urgency: Set(input.urgency.as_str().to_owned()),
            title: Set(title),
            detail: Set(detail),
            status: Set(SupportStatus::Open.as_str().to_owned()),
            offer_id: Set(None),
            confidential: Set(input.confidential),
            reach: Set(input.reach.as_str().to_owned()),
            created_by: Set(principal.subject.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        if !open_to.is_empty() {
            let rows = open_to
                .iter()
                .map(|code| support_request_region::ActiveModel {
                    support_request_id: Set(row.id),
                    region_code: Set(code.clone()),
                });
            support_request_region::Entity::insert_many(rows.collect::<Vec<_>>())
                .exec_without_returning(&txn)
                .await?;
        }
        if !urns.is_empty() {
            let rows = urns.iter().map(|urn| support_request_school::ActiveModel {
                support_request_id: Set(row.id),
                school_urn: Set(*urn),
            });
            support_request_school::Entity::insert_many(rows.collect::<Vec<_>>())
                .exec_without_returning(&txn)
                .await?;
        }
        finish_write(ctx, rc, txn, principal, request_written(&row)).await?;
        Ok(SupportRequest::one(row))
    }

    /// Posts an offer of support, open. The organisation's officers or the region's RSC
    /// officers.
    async fn create_support_offer(
        &self,
        ctx: &Context<'_>,
        input: NewSupportOffer,
    ) -> Result<SupportOffer> {
        let rc = request_context(ctx)?;
        let (poster, region, principal) = poster(rc, input.organisation.as_deref()).await?;
        let title = required_text("title", &input.title, MAX_TITLE_CHARS)?;
        let detail = text_or_empty("detail", &input.detail)?;
        let capacity = required_text("capacity", &input.capacity, MAX_SHORT_CHARS)?;
        let open_to = checked_reach(ctx, input.reach, &region, input.open_to).await?;
        let now = Utc::now();
        let txn = rc.db.begin().await?;
        let row = support_offer::ActiveModel {
            id: NotSet,
            organisation_id: Set(poster.id),
            region_code: Set(region),
            theme: Set(input.theme.as_str().to_owned()),
            title: Set(title),
            detail: Set(detail),
            capacity: Set(capacity),
            status: Set(SupportStatus::Open.as_str().to_owned()),
            reach: Set(input.reach.as_str().to_owned()),
            created_by: Set(principal.subject.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        if !open_to.is_empty() {
            let rows = open_to
                .iter()
                .map(|code| support_offer_region::ActiveModel {
                    support_offer_id: Set(row.id),
                    region_code: Set(code.clone()),
                });
            support_offer_region::Entity::insert_many(rows.collect::<Vec<_>>())
                .exec_without_returning(&txn)
                .await?;
        }
        finish_write(ctx, rc, txn, principal, offer_written(row.id)).await?;
        Ok(SupportOffer::one(row))
    }

    /// Matches an open request with an open offer of the same theme, one of them open
    /// to the other's region: both become `MATCHED`. The requesting side (its officers or the region's
    /// RSC officers).
    async fn match_support(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
        offer_id: ID,
    ) -> Result<SupportRequest> {
        let rc = request_context(ctx)?;
        let access = rc.access();
        let request = load_request(rc, &request_id).await?.row;
        let offer = load_offer(rc, &offer_id).await?.row;
        let principal =
            access.require_support_writer(request.organisation_id, &request.region_code)?;
        check_move(
            "support request",
            request.id,
            request_status(&request)?,
            SupportStatus::Matched,
        )?;
        check_move(
            "support offer",
            offer.id,
            offer_status(&offer)?,
            SupportStatus::Matched,
        )?;
        let request_open_to = request_regions(&rc.db, [request.id]).await?;
        let offer_open_to = offer_regions(&rc.db, [offer.id]).await?;
        let none = Vec::new();
        if !within_reach(
            &reach(
                &request.region_code,
                &request.reach,
                request_open_to.get(&request.id).unwrap_or(&none),
            ),
            &reach(
                &offer.region_code,
                &offer.reach,
                offer_open_to.get(&offer.id).unwrap_or(&none),
            ),
        ) {
            return Err(Error::bad_input(format!(
                "support offer {} ({}) and support request {} ({}) are not open to each \
                 other's region",
                offer.id, offer.region_code, request.id, request.region_code
            )));
        }
        if offer.theme != request.theme {
            return Err(Error::bad_input(format!(
                "support offer {} is about {}, support request {} about {}",
                offer.id, offer.theme, request.id, request.theme
            )));
        }
        if offer.organisation_id == request.organisation_id {
            return Err(Error::bad_input(
                "an organisation cannot meet its own request with its own offer",
            ));
        }
        let txn = rc.db.begin().await?;
        move_pair(
            &txn,
            &request,
            Some(&offer),
            SupportStatus::Matched,
            Some(Some(offer.id)),
        )
        .await?;
        let updated = reload_request(&txn, request.id).await?;
        finish_write(ctx, rc, txn, principal, request_written(&updated)).await?;
        Ok(SupportRequest::one(updated))
    }

    /// The offering side agrees to a match: both become `AGREED`. The offering
    /// organisation's officers or the region's RSC officers.
    async fn agree_support(&self, ctx: &Context<'_>, request_id: ID) -> Result<SupportRequest> {
        let rc = request_context(ctx)?;
        let (request, offer) = matched_pair(rc, &request_id).await?;
        let principal = rc
            .access()
            .require_support_writer(offer.organisation_id, &offer.region_code)?;
        check_move(
            "support request",
            request.id,
            request_status(&request)?,
            SupportStatus::Agreed,
        )?;
        let txn = rc.db.begin().await?;
        move_pair(&txn, &request, Some(&offer), SupportStatus::Agreed, None).await?;
        let updated = reload_request(&txn, request.id).await?;
        finish_write(ctx, rc, txn, principal, request_written(&updated)).await?;
        Ok(SupportRequest::one(updated))
    }

    /// Undoes a match that has not been agreed: both go back to `OPEN` and the pair is
    /// broken. Either side's officers or the region's RSC officers.
    async fn decline_support_match(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
    ) -> Result<SupportRequest> {
        let rc = request_context(ctx)?;
        let (request, offer) = matched_pair(rc, &request_id).await?;
        let principal = either_side(rc.access(), &request, &offer)?;
        check_move(
            "support request",
            request.id,
            request_status(&request)?,
            SupportStatus::Open,
        )?;
        let txn = rc.db.begin().await?;
        move_pair(
            &txn,
            &request,
            Some(&offer),
            SupportStatus::Open,
            Some(None),
        )
        .await?;
        let updated = reload_request(&txn, request.id).await?;
        finish_write(ctx, rc, txn, principal, request_written(&updated)).await?;
        Ok(SupportRequest::one(updated))
    }

    /// Closes a request: withdrawn while `OPEN` (the requesting side), or finished once
    /// `AGREED` (either side), which closes its offer with it.
    async fn close_support_request(&self, ctx: &Context<'_>, id: ID) -> Result<SupportRequest> {
        let rc = request_context(ctx)?;
        let request = load_request(rc, &id).await?;
        let offer = request.page.matched_offer(rc, &request.row).await?;
        let request = request.row;
        let principal = match &offer {
            Some(offer) => either_side(rc.access(), &request, offer)?,
            None => rc
                .access()
                .require_support_writer(request.organisation_id, &request.region_code)?,
        };
        check_move(
            "support request",
            request.id,
            request_status(&request)?,
            SupportStatus::Closed,
        )?;
        let txn = rc.db.begin().await?;
        move_pair(&txn, &request, offer.as_ref(), SupportStatus::Closed, None).await?;
        let updated = reload_request(&txn, request.id).await?;
        finish_write(ctx, rc, txn, principal, request_written(&updated)).await?;
        Ok(SupportRequest::one(updated))
    }

    /// Withdraws an open offer. The offering side (its officers or the region's RSC
    /// officers); a matched offer closes with its request.
    async fn close_support_offer(&self, ctx: &Context<'_>, id: ID) -> Result<SupportOffer> {
        use support_offer::Column;
        let rc = request_context(ctx)?;
        let offer = load_offer(rc, &id).await?.row;
        let principal = rc
            .access()
            .require_support_writer(offer.organisation_id, &offer.region_code)?;
        let status = offer_status(&offer)?;
        if status != SupportStatus::Open {
            return Err(Error::bad_input(format!(
                "support offer {} is {status}; a matched offer closes with its request",
                offer.id
            )));
        }
        let txn = rc.db.begin().await?;
        guarded(
            &txn,
            support_offer::Entity::update_many()
                .col_expr(Column::Status, Expr::value(SupportStatus::Closed.as_str()))
                .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(Column::Id.eq(offer.id))
                .filter(Column::Status.eq(offer.status.clone())),
            "support offer",
            offer.id,
        )
        .await?;
        let updated = support_offer::Entity::find_by_id(offer.id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::Internal(format!("support offer {} vanished", offer.id)))?;
        finish_write(ctx, rc, txn, principal, offer_written(offer.id)).await?;
        Ok(SupportOffer::one(updated))
    }
}

/// The organisation a new request or offer is posted for, its region, and the
/// caller, after the policy's check.
async fn poster<'a>(
    rc: &'a RequestContext,
    named: Option<&str>,
) -> Result<(organisation::Model, String, &'a Principal)> {
    let caller = rc.access().require_partner()?;
    let poster = match named {
        Some(text) => organisation_by_ref(rc, text).await?,
        None => caller.organisation.clone(),
    };
    let region = poster.region_code.clone().ok_or_else(|| {
        Error::bad_input("support is matched within a region; the organisation has none")
    })?;
    let principal = rc.access().require_support_writer(poster.id, &region)?;
    Ok((poster, region, principal))
}

/// A request and the offer it is matched with (it must have one).
async fn matched_pair(
    rc: &RequestContext,
    request_id: &ID,
) -> Result<(support_request::Model, support_offer::Model)> {
    let request = load_request(rc, request_id).await?;
    match request.page.matched_offer(rc, &request.row).await? {
        Some(offer) => Ok((request.row, offer)),
        None => Err(Error::bad_input(format!(
            "support request {} is {} and matched with no offer",
            request.row.id, request.row.status
        ))),
    }
}

fn either_side<'a>(
    access: &'a Access,
    request: &support_request::Model,
    offer: &support_offer::Model,
) -> Result<&'a Principal> {
    access
        .require_support_writer(request.organisation_id, &request.region_code)
        .or_else(|_| access.require_support_writer(offer.organisation_id, &offer.region_code))
}

/// Moves a request, and the offer of the pair, to `to` — each only from the state it
/// was read in. `link` sets (`Some(Some(offer))`) or clears (`Some(None)`) the pairing.
async fn move_pair(
    txn: &DatabaseTransaction,
    request: &support_request::Model,
    offer: Option<&support_offer::Model>,
    to: SupportStatus,
    link: Option<Option<i32>>,
) -> Result<()> {
    let now = Utc::now();
    let mut update = support_request::Entity::update_many()
        .col_expr(support_request::Column::Status, Expr::value(to.as_str()))
        .col_expr(support_request::Column::UpdatedAt, Expr::value(now))
        .filter(support_request::Column::Id.eq(request.id))
        .filter(support_request::Column::Status.eq(request.status.clone()));
    if let Some(link) = link {
        update = update.col_expr(support_request::Column::OfferId, Expr::value(link));
    }
    guarded(txn, update, "support request", request.id).await?;
    if let Some(offer) = offer {
        guarded(
            txn,
            support_offer::Entity::update_many()
                .col_expr(support_offer::Column::Status, Expr::value(to.as_str()))
                .col_expr(support_offer::Column::UpdatedAt, Expr::value(now))
                .filter(support_offer::Column::Id.eq(offer.id))
                .filter(support_offer::Column::Status.eq(offer.status.clone())),
            "support offer",
            offer.id,
        )
        .await?;
    }
    Ok(())
}

fn request_status(row: &support_request::Model) -> Result<SupportStatus> {
    SupportStatus::parse(&row.status)
        .ok_or_else(|| Error::Internal(format!("support request {} status", row.id)))
}

fn offer_status(row: &support_offer::Model) -> Result<SupportStatus> {
    SupportStatus::parse(&row.status)
        .ok_or_else(|| Error::Internal(format!("support offer {} status", row.id)))
}

/// A record's reach as stored, for the pure rules in `partnership`.
fn reach<'a>(home: &'a str, stored: &str, regions: &'a [String]) -> Reach<'a> {
    Reach {
        home,
        // Unknown text cannot widen anything: it reads as the region only.
        reach: SupportReach::parse(stored).unwrap_or(SupportReach::Region),
        regions,
    }
}

fn reach_of(stored: &str, what: &str, id: i32) -> Result<SupportReach> {
    SupportReach::parse(stored).ok_or_else(|| Error::Internal(format!("{what} {id} reach")))
}

/// The regions a new request or offer is opened to, checked against the regions table.
async fn checked_reach(
    ctx: &Context<'_>,
    reach: SupportReach,
    home: &str,
    open_to: Vec<String>,
) -> Result<Vec<String>> {
    let loaders = loaders(ctx)?;
    let mut known = HashSet::new();
    for code in &open_to {
        if loaders.region(code.trim()).await?.is_some() {
            known.insert(code.trim().to_owned());
        }
    }
    reach_regions(reach, home, open_to, |code| known.contains(code))
}

async fn regions(ctx: &Context<'_>, codes: &[String]) -> Result<Vec<Region>> {
    let loaders = loaders(ctx)?;
    let mut regions = Vec::with_capacity(codes.len());
    for code in codes {
        regions.extend(loaders.region(code).await?.map(Region));
    }
    Ok(regions)
}

/// The regions each request is opened to by name.
async fn request_regions(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i32>,
) -> Result<HashMap<i32, Vec<String>>> {
    use support_request_region::Column;
    let rows = support_request_region::Entity::find()
        .filter(Column::SupportRequestId.is_in(ids))
        .order_by_asc(Column::RegionCode)
        .all(db)
        .await?;
    let mut by_request: HashMap<i32, Vec<String>> = HashMap::new();
    for row in rows {
        by_request
            .entry(row.support_request_id)
            .or_default()
            .push(row.region_code);
    }
    Ok(by_request)
}

/// The regions each offer is opened to by name.
async fn offer_regions(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i32>,
) -> Result<HashMap<i32, Vec<String>>> {
    use support_offer_region::Column;
    let rows = support_offer_region::Entity::find()
        .filter(Column::SupportOfferId.is_in(ids))
        .order_by_asc(Column::RegionCode)
        .all(db)
        .await?;
    let mut by_offer: HashMap<i32, Vec<String>> = HashMap::new();
    for row in rows {
        by_offer
            .entry(row.support_offer_id)
            .or_default()
            .push(row.region_code);
    }
    Ok(by_offer)
}

fn text_or_empty(field: &str, value: &str) -> Result<String> {
    Ok(crate::partnership::optional_text(field, Some(value), MAX_TEXT_CHARS)?.unwrap_or_default())
}

/// A request names schools, so its writes are audited at SCHOOL level.
fn request_written(row: &support_request::Model) -> Written {
    Written::one(AccessLevel::School, format!("support_request:{}", row.id))
}

fn offer_written(id: i32) -> Written {
    Written::one(AccessLevel::Aggregate, format!("support_offer:{id}"))
}

async fn reload_request(txn: &DatabaseTransaction, id: i32) -> Result<support_request::Model> {
    support_request::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal(format!("support request {id} vanished")))
}
