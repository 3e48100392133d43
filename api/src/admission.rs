//! Admission: what stands between a verified token and the application — the token's
//! roles checked against the kind of organisation it names, then the caller's
//! [`Access`], read from the database or remembered from an earlier request.
//!
//! Remembered scopes: the organisation row and [`Scope`] of each (organisation, roles)
//! pair seen recently, so a cache hit needs no database at all and a miss saves the
//! two statements that work a scope out.
//!
//! A scope depends on the organisation row and the agreements in force today, so the
//! key includes today's date and the memo is emptied whenever the `register` or
//! `agreements` tags are invalidated (here or, through pub/sub, on another instance):
//! the memo is attached to the response cache as a [`Dependent`], which is all the
//! cache knows of it. Like the in-process tier, what it holds is used only when the
//! request's [`Snapshot`] serves memory of its age (it may be read just before the
//! snapshot is finished: see [`crate::cache::Mark`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use entities::organisation;
use sea_orm::DatabaseConnection;

use crate::access::{self, Access, Scope};
use crate::auth::{AuthError, Verifier};
use crate::cache::{Dependent, ResponseCache, Snapshot, tags};
use crate::domain::{OrganisationKind, Role};
use crate::identity::Identity;

/// The identity in an `Authorization` header value (`None` without one): the token
/// verified by `auth`, then each of its roles checked against the kind of organisation
/// it acts for. CPU only, so the rate limit can be keyed by it before the database is
/// asked anything. A role that does not fit (`LA_OFFICER` for a trust) is refused
/// outright (HTTP 401), not quietly given an empty scope, so a misconfigured identity
/// provider is noticed.
pub fn identify(verifier: &Verifier, header: Option<&str>) -> Result<Option<Identity>, AuthError> {
    let identity = verifier.identity(header)?;
    if let Some(identity) = &identity
        && let Some(role) = identity
            .roles
            .iter()
            .find(|r| !access::role_fits(**r, identity.kind))
    {
        return Err(AuthError::RoleDoesNotFit(*role, identity.kind));
    }
    Ok(identity)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SessionKey {
    kind: OrganisationKind,
    code: String,
    roles: Vec<Role>,
    day: NaiveDate,
}

/// The organisation and scope, and when they were read from the database.
type Remembered = Arc<(organisation::Model, Arc<Scope>, Instant)>;

/// The memo itself; see the module documentation.
struct Sessions {
    memo: moka::sync::Cache<SessionKey, Remembered>,
}

impl Dependent for Sessions {
    fn depends_on(&self, tag: &str) -> bool {
        tag == tags::AGREEMENTS || tag == tags::REGISTER
    }

    fn forget(&self) {
        self.memo.invalidate_all();
    }
}

/// Callers' access, remembered beside the response cache. Cheap to clone.
#[derive(Clone)]
pub struct Admission {
    cache: ResponseCache,
    sessions: Arc<Sessions>,
}

impl Admission {
    /// Scopes are remembered for the cache's time to live, at most a minute.
    pub fn new(cache: &ResponseCache) -> Admission {
        let ttl = cache.ttl().min(Duration::from_secs(60));
        let sessions = Arc::new(Sessions {
            memo: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl.max(Duration::from_secs(1)))
                .build(),
        });
        cache.attach(sessions.clone());
        Admission {
            cache: cache.clone(),
            sessions,
        }
    }

    /// The caller's access: anonymous without a token, otherwise its organisation and
    /// scope — remembered, or read from the database (and then remembered unless an
    /// invalidation happened meanwhile).
    pub async fn access(
        &self,
        db: &DatabaseConnection,
        identity: Option<Identity>,
        snapshot: &Snapshot,
    ) -> Result<Access, AuthError> {
        let Some(identity) = identity else {
            return Ok(Access::anonymous());
        };
        let key = SessionKey::of(&identity);
        if let Some(access) = self.remembered(&identity, snapshot) {
            return Ok(access);
        }
        let organisation = organisation_of(db, &identity).await?;
        let scope = Scope::load(db, &organisation, &identity.roles, key.day)
            .await
            .map_err(AuthError::Lookup)?;
        let scope = Arc::new(scope);
        self.cache.keep_if_current(snapshot, || {
            self.sessions.memo.insert(
                key,
                Arc::new((organisation.clone(), scope.clone(), Instant::now())),
            );
        });
        let principal = identity.principal(organisation);
        Ok(Access::new(Arc::new(principal), scope))
    }

    /// The caller's access if it is remembered and the snapshot lets memory of its
    /// age be used: what a request can learn without the database (while it is down,
    /// for instance).
    pub fn remembered(&self, identity: &Identity, snapshot: &Snapshot) -> Option<Access> {
        match self.recall(Some(identity))? {
            (access, Some(stored)) if snapshot.serves(stored) => Some(access),
            _ => None,
        }
    }

    /// The caller's access as memory holds it, before anyone has said memory may be
    /// trusted: anonymous without a token (and no time), else the remembered scope if
    /// there is one, with when it was read. Call it after [`ResponseCache::mark`] and
    /// use what it gives only once [`ResponseCache::lookup`], told that time, has
    /// confirmed memory.
    pub fn recall(&self, identity: Option<&Identity>) -> Option<(Access, Option<Instant>)> {
        let Some(identity) = identity else {
            return Some((Access::anonymous(), None));
        };
        let remembered = self.sessions.memo.get(&SessionKey::of(identity))?;
        let (organisation, scope, stored) = &*remembered;
        let principal = identity.principal(organisation.clone());
        Some((
            Access::new(Arc::new(principal), scope.clone()),
            Some(*stored),
        ))
    }
}

/// The organisation the token names, as the database describes it; a token naming an
/// organisation the hub does not know is refused, never treated as anonymous.
async fn organisation_of(
    db: &DatabaseConnection,
    identity: &Identity,
) -> Result<organisation::Model, AuthError> {
    crate::db::organisation_by_code(db, identity.kind, &identity.code)
        .await
        .map_err(AuthError::Lookup)?
        .ok_or(AuthError::UnknownOrganisation)
}

impl SessionKey {
    fn of(identity: &Identity) -> SessionKey {
        SessionKey {
            kind: identity.kind,
            code: identity.code.clone(),
            roles: identity.roles.clone(),
            day: Utc::now().date_naive(),
        }
    }
}
