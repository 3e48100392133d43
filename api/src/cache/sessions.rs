//! Remembered scopes: the organisation row and [`Scope`] of each (organisation, roles)
//! pair seen recently, so a cache hit needs no database at all and a miss saves the
//! two statements that work a scope out.
//!
//! A scope depends on the organisation row and the agreements in force today, so the
//! key includes today's date and the memo is emptied whenever the `register` or
//! `agreements` tags are invalidated (here or, through pub/sub, on another instance).
//! Like the in-process tier, what it holds is used only when the request's [`Snapshot`]
//! says memory may be trusted (it may be read just before the snapshot is finished:
//! see [`super::Mark`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use entities::organisation;
use sea_orm::DatabaseConnection;

use super::{ResponseCache, Snapshot};
use crate::access::{Access, Scope};
use crate::auth::{AuthError, Identity};
use crate::domain::{OrganisationKind, Role};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SessionKey {
    kind: OrganisationKind,
    code: String,
    roles: Vec<Role>,
    day: NaiveDate,
}

type Remembered = Arc<(organisation::Model, Arc<Scope>)>;

/// The memo itself; see the module documentation.
pub struct Sessions {
    memo: moka::sync::Cache<SessionKey, Remembered>,
}

impl Sessions {
    pub(super) fn new(ttl: Duration) -> Sessions {
        Sessions {
            memo: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl.max(Duration::from_secs(1)))
                .build(),
        }
    }

    pub(super) fn clear(&self) {
        self.memo.invalidate_all();
    }
}

impl ResponseCache {
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
        let inner = &self.inner;
        let key = SessionKey::of(&identity);
        let trusted = snapshot.memory_trusted;
        if let Some(access) = self.remembered(&identity, snapshot) {
            return Ok(access);
        }
        let organisation = identity.organisation(db).await?;
        let scope = Scope::load(db, &organisation, &identity.roles, key.day)
            .await
            .map_err(AuthError::Lookup)?;
        let scope = Arc::new(scope);
        if trusted
            && let Ok(_versions) = inner.versions.read()
            && inner.generation.load(Ordering::Acquire) == snapshot.local
        {
            inner
                .sessions
                .memo
                .insert(key, Arc::new((organisation.clone(), scope.clone())));
        }
        let principal = identity.principal(organisation);
        Ok(Access::new(Arc::new(principal), scope))
    }

    /// The caller's access if it is remembered and memory may be trusted: what a
    /// request can learn without the database (while it is down, for instance).
    pub fn remembered(&self, identity: &Identity, snapshot: &Snapshot) -> Option<Access> {
        if !snapshot.memory_trusted {
            return None;
        }
        self.recall(Some(identity))
    }

    /// The caller's access as memory holds it, before anyone has said memory may be
    /// trusted: anonymous without a token, else the remembered scope if there is one.
    /// Call it after [`ResponseCache::mark`] and use what it gives only once
    /// [`ResponseCache::lookup`] has confirmed memory.
    pub fn recall(&self, identity: Option<&Identity>) -> Option<Access> {
        let Some(identity) = identity else {
            return Some(Access::anonymous());
        };
        let remembered = self.inner.sessions.memo.get(&SessionKey::of(identity))?;
        let (organisation, scope) = &*remembered;
        let principal = identity.principal(organisation.clone());
        Some(Access::new(Arc::new(principal), scope.clone()))
    }
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
