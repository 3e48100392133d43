//! The query-result cache: partner dashboards send the same questions all day, so
//! answers are kept in memory (and in Redis when `REDIS_URL` is set) and served without
//! touching the database — never to a caller with a different scope, and never after a
//! write has changed what they were built from.
//!
//! **What is cached.** Whole responses to single GraphQL *queries* that finished without
//! errors, after access control and disclosure control have shaped them. Mutations,
//! batches, responses with errors and anything a resolver marks `no_store` (pupil
//! records, whose every read is audited; the audit log; `me`) are never stored.
//!
//! **Keys** ([`key`]) hash the normalised document, operation name, variables, the
//! caller's access fingerprint ([`crate::access::Scope::fingerprint`]) and the settings
//! that shape answers. Callers with identical scopes share entries; any difference in
//! organisation, roles or grants gives a different key.
//!
//! **Tags.** While a query runs, its resolvers record the tags of the data they read
//! ([`tags`]); a write invalidates the tags it touched.
//!
//! **Why versions for Redis and pub/sub for memory.** Each tag has a version counter.
//! A Redis entry records the versions of its tags when stored and is checked against
//! them, atomically in a script, on every read — so a Redis hit is never stale, whichever
//! instance wrote, and nothing has to enumerate keys to invalidate. Checking every tag
//! in Redis on every in-process hit would cost a script per hit, so the in-process tier
//! keeps its own counters, bumped by the writer directly and on every other instance
//! by a pub/sub message the writer publishes in the same script that bumps the Redis
//! versions. Pub/sub alone would leave a window (the message is in flight while the
//! writer's client already reads through another instance), so each write also bumps a
//! global generation that travels in its message: a request reads that one counter
//! (a tiny `GET`, pipelined with its Redis lookup) and trusts memory only if this
//! instance has applied every invalidation up to it. With a message in flight the
//! request skips memory (the Redis tier, checked by versions, or the database answer
//! instead).
//!
//! **Redis down or slow.** When the generation cannot be read at all — Redis
//! unreachable, the subscription not yet live, or Redis too slow for this request —
//! this instance cannot know what other instances invalidated, and skipping memory
//! would send every request to the database just when the in-process tier is needed
//! most (it once cut throughput a hundredfold). The rule instead: memory stored less
//! than `CACHE_REDIS_DOWN_MAX_AGE_SECONDS` ago is served (entries, and remembered
//! scopes through [`Snapshot::serves`]), and answers computed meanwhile are kept. An
//! answer served is then at most that old, so at most that far behind another
//! instance's writes; this instance's own writes invalidate its memory at once. After
//! a gap in the subscription the in-process tier is emptied before it is trusted
//! fully again, and writes made while Redis
//! was away are published first thing on reconnection. The gaps left are partitions:
//! while one instance is cut off from Redis and the others are not, its writes reach
//! them only when it reconnects (or never, if it dies first; their entries for those
//! tags then live until their TTL). Without Redis there is one instance, and memory is
//! always trusted.
//!
//! **Races.** An answer computed while a write lands could be stale, so entries are
//! stored only if no invalidation happened since the request began: the in-process
//! generation counter, and the Redis generation checked by the store script.
//!
//! **Fail-open.** Redis errors and timeouts count as misses: the request is answered
//! from recent memory or the database, one warning is logged per outage, `hub_cache_redis_up` drops to 0,
//! and a background task reconnects.

mod key;
mod redis_tier;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use sha2::{Digest, Sha256};

use crate::config::CacheConfig;
use crate::digest::hex;
use crate::telemetry::Metrics;

pub use key::{Key, KeyParts, document_hash, normalise};

use redis_tier::RedisTier;

/// The tags resolvers record and writers invalidate.
pub mod tags {
    /// The register and reference data: regions, organisations, schools, indicators.
    pub const REGISTER: &str = "register";
    /// Sharing agreements (they also change callers' scopes).
    pub const AGREEMENTS: &str = "agreements";
    /// Figures of every indicator (a query that did not name its indicators).
    pub const ALL_FIGURES: &str = "figures:*";

    /// Figures of one indicator. A write to an indicator's figures invalidates this
    /// tag and [`ALL_FIGURES`].
    pub fn figures(indicator: &str) -> String {
        format!("figures:{indicator}")
    }

    /// The signal rules (thresholds) behind every signal.
    pub const SIGNAL_RULES: &str = "signal-rules";
    /// Partnership records: self-evaluations, peer reviews, requests and offers of
    /// support, the inspection expert directory and buddy pairings. One tag for all of
    /// them: they refer to one another, they are written by people rather than syncs
    /// (rarely, by a cache's measure), and one tag cannot be forgotten on a new path.
    pub const PARTNERSHIP: &str = "partnership";
}

/// Which tier answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Local,
    Redis,
}

impl Tier {
    /// The tier's label in the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Local => "local",
            Tier::Redis => "redis",
        }
    }
}

/// A stored answer: the response body and its entity tag.
#[derive(Clone, Debug)]
pub struct Cached {
    pub body: Bytes,
    pub etag: Arc<str>,
}

impl Cached {
    pub fn new(body: Bytes) -> Cached {
        let etag = etag_of(&body);
        Cached { body, etag }
    }
}

/// A strong entity tag for a body: a quoted prefix of its SHA-256.
pub fn etag_of(body: &[u8]) -> Arc<str> {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex(&digest[..16])).into()
}

/// What one request's resolvers read, collected while it runs.
#[derive(Debug, Default)]
pub struct Hints {
    tags: Mutex<BTreeSet<String>>,
    no_store: AtomicBool,
}

impl Hints {
    /// The answer depends on data under `tag`.
    pub fn read(&self, tag: impl Into<String>) {
        if let Ok(mut tags) = self.tags.lock() {
            tags.insert(tag.into());
        }
    }

    /// The answer must not be stored (audited reads, per-person answers).
    pub fn no_store(&self) {
        self.no_store.store(true, Ordering::Relaxed);
    }

    /// The tags to store an answer under, or `None` if it must not be stored. Every
    /// answer depends on the register (names, LAs, regions, the catalogue), so
    /// [`tags::REGISTER`] is always among them.
    pub fn storable_tags(&self) -> Option<Vec<String>> {
        if self.no_store.load(Ordering::Relaxed) {
            return None;
        }
        let mut tags = self.tags.lock().ok()?.clone();
        tags.insert(tags::REGISTER.to_owned());
        Some(tags.into_iter().collect())
    }
}

/// Taken when a request starts (see [`ResponseCache::snapshot`]): how far memory may
/// be used for it, and the generations an answer must still see to be stored.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    memory: Memory,
    local: u64,
    redis: Option<u64>,
}

/// How far a request may use what this instance keeps in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Memory {
    /// Every invalidation is known to have been applied: all of it.
    Trusted,
    /// Redis could not say whether every invalidation has been applied (it is down or
    /// slow): what was stored at or after this instant, so that nothing served is
    /// older than `CACHE_REDIS_DOWN_MAX_AGE_SECONDS`. Answers computed now may be kept.
    Since(Instant),
    /// None of it: an invalidation is in flight, or the cache is off.
    Untrusted,
}

impl Snapshot {
    /// Whether state kept in memory at `stored` (an entry, or what a [`Dependent`] such
    /// as the remembered scopes holds) may be used for this request.
    pub fn serves(&self, stored: Instant) -> bool {
        match self.memory {
            Memory::Trusted => true,
            Memory::Since(cutoff) => stored >= cutoff,
            Memory::Untrusted => false,
        }
    }

    /// Whether what this request reads from the database may be kept in memory.
    fn may_keep(&self) -> bool {
        self.memory != Memory::Untrusted
    }
}

/// Memory kept outside the cache that is built from data under some tags (the
/// remembered scopes of `admission`). The cache knows it only through this trait: it is
/// forgotten whenever one of its tags is invalidated — on this instance, or on another
/// through pub/sub — and whenever memory is emptied, and its holder asks
/// [`Snapshot::serves`] with the time each value was kept, so it is never trusted
/// longer than the answers beside it. See [`ResponseCache::attach`] and
/// [`ResponseCache::keep_if_current`].
pub trait Dependent: Send + Sync {
    /// Whether an invalidation of `tag` makes what it holds stale.
    fn depends_on(&self, tag: &str) -> bool;
    /// Forgets everything it holds.
    fn forget(&self);
}

/// The in-process generation when a request began reading memory, before Redis said
/// whether memory may be trusted. Anything read from memory after the mark (an entry,
/// a remembered scope) may be used if the [`Snapshot`] finished from it is trusted:
/// then this instance had applied every invalidation up to the Redis generation, and
/// none landed here while it read.
#[derive(Clone, Copy, Debug)]
pub struct Mark(u64);

/// What [`ResponseCache::lookup`] found.
#[derive(Debug)]
pub enum Lookup {
    /// Memory could be trusted: the remembered scope the key was worked out from
    /// stands, and this is the cached answer, if any.
    Confirmed(Snapshot, Option<(Cached, Tier)>),
    /// Memory could not be trusted (an invalidation in flight, Redis away): the
    /// caller's scope must be read afresh under this snapshot and the answer looked up
    /// again with [`ResponseCache::get`]. Nothing was counted.
    Unconfirmed(Snapshot),
}

struct LocalEntry {
    cached: Cached,
    /// When it was stored (see [`Memory::Since`]).
    stored: Instant,
    /// Each tag with its in-process version when stored.
    tags: Vec<(String, u64)>,
}

/// The in-process tier's tag versions, bumped on every invalidation.
#[derive(Default)]
struct Versions {
    by_tag: HashMap<String, u64>,
}

impl Versions {
    fn get(&self, tag: &str) -> u64 {
        self.by_tag.get(tag).copied().unwrap_or(0)
    }
}

pub(crate) struct Inner {
    ttl: Duration,
    /// `CACHE_REDIS_DOWN_MAX_AGE_SECONDS` (see [`Memory::Since`]).
    redis_down_max_age: Duration,
    settings: String,
    local: Option<moka::sync::Cache<Key, Arc<LocalEntry>>>,
    /// Held for reading while checking and inserting, for writing while invalidating,
    /// so no entry built before an invalidation can slip in after it.
    versions: RwLock<Versions>,
    generation: AtomicU64,
    redis: Option<RedisTier>,
    /// Memory outside the cache that is forgotten with it ([`Dependent`]).
    dependents: RwLock<Vec<Arc<dyn Dependent>>>,
    apq: moka::sync::Cache<String, Arc<str>>,
    metrics: Metrics,
}

/// The response cache. Cheap to clone (one shared inner value).
#[derive(Clone)]
pub struct ResponseCache {
    inner: Arc<Inner>,
}

impl ResponseCache {
    /// Builds both tiers. With a Redis URL, a background task connects (and
    /// reconnects) to Redis; until it has, requests are answered from the database.
    pub fn new(
        config: &CacheConfig,
        settings: String,
        metrics: Metrics,
    ) -> Result<ResponseCache, redis::RedisError> {
        let local = (config.enabled() && config.memory_bytes > 0).then(|| {
            let evictions = metrics.cache_evictions.clone();
            moka::sync::Cache::builder()
                .max_capacity(config.memory_bytes)
                .weigher(|key: &Key, entry: &Arc<LocalEntry>| {
                    let size = key.0.len()
                        + entry.cached.body.len()
                        + entry.tags.iter().map(|(t, _)| t.len() + 8).sum::<usize>()
                        + 128;
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .time_to_live(config.ttl)
                .eviction_listener(move |_key, _value, cause| {
                    if cause.was_evicted() {
                        evictions.inc();
                    }
                })
                .build()
        });
        let redis = match config.redis_url.as_deref().filter(|_| config.enabled()) {
            Some(url) => Some(RedisTier::new(
                redis::Client::open(url)?,
                config,
                metrics.clone(),
            )),
            None => None,
        };
        let inner = Arc::new(Inner {
            ttl: config.ttl,
            redis_down_max_age: config.redis_down_max_age,
            settings,
            local,
            versions: RwLock::new(Versions::default()),
            generation: AtomicU64::new(0),
            dependents: RwLock::new(Vec::new()),
            apq: moka::sync::Cache::builder()
                .max_capacity(16 * 1024 * 1024)
                .weigher(|k: &String, v: &Arc<str>| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .build(),
            redis,
            metrics,
        });
        if let Some(redis) = &inner.redis {
            redis.start(Arc::downgrade(&inner));
        }
        Ok(ResponseCache { inner })
    }

    /// Whether answers are cached at all (`CACHE_TTL_SECONDS=0` turns it off).
    pub fn enabled(&self) -> bool {
        !self.inner.ttl.is_zero()
    }

    /// Time to live, for `Cache-Control: max-age`.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The settings part of every key.
    pub fn settings(&self) -> &str {
        &self.inner.settings
    }

    /// Has `dependent` forgotten along with the cache's memory from now on.
    pub fn attach(&self, dependent: Arc<dyn Dependent>) {
        if let Ok(mut dependents) = self.inner.dependents.write() {
            dependents.push(dependent);
        }
    }

    /// Runs `keep` — which stores, in a [`Dependent`], something read from the
    /// database under `snapshot` — only if memory may be kept for the snapshot and
    /// nothing has been invalidated since; under the lock invalidations take, so none
    /// can land between the check and the store and leave a stale value behind.
    pub fn keep_if_current(&self, snapshot: &Snapshot, keep: impl FnOnce()) {
        let inner = &self.inner;
        if snapshot.may_keep()
            && let Ok(_versions) = inner.versions.read()
            && inner.generation.load(Ordering::Acquire) == snapshot.local
        {
            keep();
        }
    }

    /// Marks the start of a request's reads from memory (no I/O); see [`Mark`].
    pub fn mark(&self) -> Mark {
        Mark(self.inner.generation.load(Ordering::Acquire))
    }

    /// Starts a request: decides whether state kept in memory (entries, remembered
    /// scopes) may be used — always without Redis (one instance), with Redis only when
    /// this instance has applied every invalidation Redis knows of — and notes the
    /// generations for [`ResponseCache::put`]. Costs one small Redis read when Redis
    /// is configured and up, nothing otherwise. [`ResponseCache::lookup`] does the same
    /// and the lookup in one round trip, when the key can be worked out beforehand.
    pub async fn snapshot(&self) -> Snapshot {
        let mark = self.mark();
        let generation = match &self.inner.redis {
            Some(redis) if self.enabled() => redis.generation().await,
            _ => None,
        };
        self.inner.finish(mark, generation)
    }

    /// Looks a key worked out from memory (a scope remembered since `scope_stored`, or
    /// none for an anonymous caller) up, and takes the request's snapshot, in at most
    /// one Redis round trip: the generation read is pipelined with the entry's check,
    /// or sent alone when memory holds the answer. The answer stands only if the
    /// snapshot says memory, read since `mark`, could be trusted for the scope.
    pub async fn lookup(&self, key: &Key, mark: Mark, scope_stored: Option<Instant>) -> Lookup {
        let inner = &self.inner;
        if !self.enabled() {
            return Lookup::Unconfirmed(inner.finish(mark, None));
        }
        let local = inner.local_get(key);
        let (generation, entry) = match &inner.redis {
            None => (None, None),
            Some(redis) if local.is_some() => (redis.generation().await, None),
            Some(redis) => match redis.generation_and_get(key).await {
                Some((generation, entry)) => (Some(generation), entry),
                None => (None, None),
            },
        };
        let snapshot = inner.finish(mark, generation);
        let scope_served = scope_stored.is_none_or(|at| snapshot.serves(at));
        if snapshot.memory == Memory::Untrusted || !scope_served {
            return Lookup::Unconfirmed(snapshot);
        }
        let local = local.filter(|(_, stored)| snapshot.serves(*stored));
        let found = match (local, entry) {
            (Some((cached, _)), _) => Some((cached, Tier::Local)),
            (None, Some((cached, tags))) => {
                inner.local_put(key, &cached, &tags, snapshot.local);
                Some((cached, Tier::Redis))
            }
            (None, None) => None,
        };
        Lookup::Confirmed(snapshot, inner.counted(found))
    }

    /// Looks a key up: in memory first, then in Redis (copying a Redis hit into memory).
    pub async fn get(&self, key: &Key, snapshot: &Snapshot) -> Option<(Cached, Tier)> {
        let inner = &self.inner;
        if !self.enabled() {
            return None;
        }
        if let Some((cached, stored)) = inner.local_get(key)
            && snapshot.serves(stored)
        {
            return inner.counted(Some((cached, Tier::Local)));
        }
        if let Some(redis) = &inner.redis
            && snapshot.redis.is_some()
            && let Some((cached, tags)) = redis.get(key).await
        {
            if snapshot.may_keep() {
                inner.local_put(key, &cached, &tags, snapshot.local);
            }
            return inner.counted(Some((cached, Tier::Redis)));
        }
        inner.counted(None)
    }

    /// Stores an answer under its tags, unless an invalidation happened since
    /// `snapshot` was taken.
    pub async fn put(&self, key: &Key, snapshot: &Snapshot, tags: &[String], cached: &Cached) {
        let inner = &self.inner;
        if !self.enabled() {
            return;
        }
        if snapshot.may_keep() {
            inner.local_put(key, cached, tags, snapshot.local);
        }
        if let (Some(redis), Some(generation)) = (&inner.redis, snapshot.redis) {
            redis.put(key, generation, tags, cached).await;
        }
    }

    /// Invalidates tags everywhere: in this instance's memory now, in Redis and (by
    /// pub/sub) in every other instance, or — if Redis is away — as soon as it returns.
    pub async fn invalidate(&self, tags: &[String]) {
        let inner = &self.inner;
        inner.invalidate_local(tags);
        if let Some(redis) = &inner.redis {
            redis.invalidate(tags).await;
        }
    }

    /// Waits up to `within` for the Redis tier to connect; true at once without Redis.
    /// A short-lived process (the import command) waits here before invalidating:
    /// otherwise its invalidations would wait for a connection it exits before making.
    pub async fn redis_ready(&self, within: std::time::Duration) -> bool {
        let Some(redis) = &self.inner.redis else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + within;
        while !redis.subscribed() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// An automatic-persisted-query document by hash.
    pub async fn persisted_query(&self, hash: &str) -> Option<Arc<str>> {
        if let Some(document) = self.inner.apq.get(hash) {
            return Some(document);
        }
        let document: Arc<str> = self
            .inner
            .redis
            .as_ref()?
            .persisted_query(hash)
            .await?
            .into();
        self.inner.apq.insert(hash.to_owned(), document.clone());
        Some(document)
    }

    /// Remembers a persisted query (already checked against its hash).
    pub async fn persist_query(&self, hash: &str, document: &str) {
        self.inner.apq.insert(hash.to_owned(), document.into());
        if let Some(redis) = &self.inner.redis {
            redis.persist_query(hash, document).await;
        }
    }
}

impl Inner {
    /// The snapshot of a request that marked `mark` and then read the Redis
    /// generation (`None` if there is no Redis or it could not be read).
    ///
    /// Memory is trusted without Redis (one instance), and with Redis when this
    /// instance has applied every invalidation up to the generation read. A generation
    /// ahead of what was applied is an invalidation in flight: memory is skipped. No
    /// generation at all (Redis down, or too slow for this request) leaves this
    /// instance unable to hear other instances' writes, and it serves what it stored
    /// within `CACHE_REDIS_DOWN_MAX_AGE_SECONDS` ([`Memory::Since`]): the in-process
    /// tier carries the hub through the outage, at most that far behind other
    /// instances' writes (its own invalidate it at once, as always).
    fn finish(&self, mark: Mark, generation: Option<u64>) -> Snapshot {
        let unchanged = || self.generation.load(Ordering::Acquire) == mark.0;
        let trusted_if = |ok: bool| {
            if ok {
                Memory::Trusted
            } else {
                Memory::Untrusted
            }
        };
        let (memory, redis) = match (&self.redis, generation) {
            _ if self.ttl.is_zero() => (Memory::Untrusted, None),
            (None, _) => (Memory::Trusted, None),
            (Some(redis), Some(generation)) => (
                trusted_if(redis.caught_up(generation) && unchanged()),
                Some(generation),
            ),
            (Some(_), None) => {
                let cutoff = Instant::now().checked_sub(self.redis_down_max_age);
                match cutoff {
                    Some(cutoff) if !self.redis_down_max_age.is_zero() && unchanged() => {
                        (Memory::Since(cutoff), None)
                    }
                    _ => (Memory::Untrusted, None),
                }
            }
        };
        Snapshot {
            memory,
            local: mark.0,
            redis,
        }
    }

    /// Counts a lookup's outcome, once per request.
    fn counted(&self, found: Option<(Cached, Tier)>) -> Option<(Cached, Tier)> {
        match &found {
            Some((_, tier)) => self.metrics.cache_hit(tier.as_str()),
            None => self.metrics.cache_miss(),
        }
        found
    }

    /// An entry whose tags are all current here, and when it was stored.
    fn local_get(&self, key: &Key) -> Option<(Cached, Instant)> {
        let local = self.local.as_ref()?;
        let entry = local.get(key)?;
        let versions = self.versions.read().ok()?;
        if entry.tags.iter().all(|(tag, v)| versions.get(tag) == *v) {
            Some((entry.cached.clone(), entry.stored))
        } else {
            drop(versions);
            local.invalidate(key);
            None
        }
    }

    fn local_put(&self, key: &Key, cached: &Cached, tags: &[String], start: u64) {
        let Some(local) = &self.local else {
            return;
        };
        let Ok(versions) = self.versions.read() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) != start {
            return;
        }
        let tags = tags.iter().map(|t| (t.clone(), versions.get(t))).collect();
        local.insert(
            key.clone(),
            Arc::new(LocalEntry {
                cached: cached.clone(),
                stored: Instant::now(),
                tags,
            }),
        );
    }

    /// Bumps the in-process versions of `tags` (and forgets the [`Dependent`]s built
    /// from data under any of them).
    pub(crate) fn invalidate_local(&self, tags: &[String]) {
        if let Ok(mut versions) = self.versions.write() {
            for tag in tags {
                *versions.by_tag.entry(tag.clone()).or_insert(0) += 1;
            }
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        if let Ok(dependents) = self.dependents.read() {
            for dependent in dependents.iter() {
                if tags.iter().any(|t| dependent.depends_on(t)) {
                    dependent.forget();
                }
            }
        }
        self.metrics.cache_invalidations.inc_by(tags.len() as u64);
    }

    /// Forgets everything held in memory (after a gap in the invalidation feed).
    pub(crate) fn clear_local(&self) {
        if let Ok(_versions) = self.versions.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            if let Some(local) = &self.local {
                local.invalidate_all();
            }
            if let Ok(dependents) = self.dependents.read() {
                dependents.iter().for_each(|d| d.forget());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> ResponseCache {
        ResponseCache::new(&CacheConfig::default(), "test".into(), Metrics::new())
            .expect("no Redis, nothing to fail")
    }

    fn key(name: &str) -> Key {
        Key(name.to_owned())
    }

    fn answer(text: &str) -> Cached {
        Cached::new(Bytes::from(text.to_owned()))
    }

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|t| t.to_string()).collect()
    }

    #[tokio::test]
    async fn an_invalidated_tag_drops_exactly_the_entries_that_read_it() {
        let cache = cache();
        let start = cache.snapshot().await;
        cache
            .put(
                &key("attendance"),
                &start,
                &tags(&["figures:attendance_rate"]),
                &answer("a"),
            )
            .await;
        cache
            .put(
                &key("suspensions"),
                &start,
                &tags(&["figures:suspension_rate"]),
                &answer("s"),
            )
            .await;
        let now = cache.snapshot().await;
        assert!(cache.get(&key("attendance"), &now).await.is_some());

        cache.invalidate(&tags(&["figures:attendance_rate"])).await;
        let now = cache.snapshot().await;
        assert!(cache.get(&key("attendance"), &now).await.is_none());
        let (kept, tier) = cache.get(&key("suspensions"), &now).await.expect("kept");
        assert_eq!((kept.body.as_ref(), tier), (b"s".as_ref(), Tier::Local));
    }

    #[tokio::test]
    async fn an_answer_computed_across_an_invalidation_is_not_stored() {
        let cache = cache();
        let before_write = cache.snapshot().await;
        cache.invalidate(&tags(&["agreements"])).await;
        cache
            .put(
                &key("list"),
                &before_write,
                &tags(&["agreements"]),
                &answer("old"),
            )
            .await;
        let now = cache.snapshot().await;
        assert!(cache.get(&key("list"), &now).await.is_none());
    }

    #[tokio::test]
    async fn a_disabled_cache_stores_nothing() {
        let config = CacheConfig {
            ttl: Duration::ZERO,
            ..CacheConfig::default()
        };
        let cache = ResponseCache::new(&config, "test".into(), Metrics::new()).unwrap();
        let start = cache.snapshot().await;
        cache
            .put(&key("k"), &start, &tags(&["register"]), &answer("x"))
            .await;
        assert!(cache.get(&key("k"), &start).await.is_none());
    }

    /// A request reads memory (its remembered scope, an entry) before Redis tells it
    /// the generation; memory stands only if this instance had applied every
    /// invalidation up to that generation and none landed here meanwhile.
    #[tokio::test]
    async fn memory_read_before_the_generation_stands_only_if_nothing_moved_since() {
        let config = CacheConfig {
            // Nothing listens there: the tier's state is set by hand below.
            redis_url: Some("redis://127.0.0.1:1".into()),
            ..CacheConfig::default()
        };
        let cache = ResponseCache::new(&config, "test".into(), Metrics::new()).unwrap();
        let inner = &cache.inner;
        let tier = inner.redis.as_ref().expect("Redis configured");
        let trusted = |snapshot: Snapshot| snapshot.memory == Memory::Trusted;
        tier.assume(false, 5);
        let mark = cache.mark();
        assert!(!trusted(inner.finish(mark, Some(5))), "not subscribed");

        tier.assume(true, 5);
        assert!(trusted(inner.finish(mark, Some(5))));
        assert_eq!(
            inner.finish(mark, Some(6)).memory,
            Memory::Untrusted,
            "a message in flight"
        );
        assert!(
            matches!(inner.finish(mark, None).memory, Memory::Since(_)),
            "Redis unreadable: recent memory only"
        );

        inner.invalidate_local(&tags(&["agreements"]));
        assert_eq!(
            inner.finish(mark, Some(5)).memory,
            Memory::Untrusted,
            "invalidated since"
        );
        assert_eq!(inner.finish(mark, None).memory, Memory::Untrusted);
        assert!(trusted(inner.finish(cache.mark(), Some(5))));
    }

    /// Redis down: the in-process tier goes on serving what it stored within
    /// `CACHE_REDIS_DOWN_MAX_AGE_SECONDS`, and keeps what is answered meanwhile; with
    /// the setting at 0 it serves nothing until Redis is back.
    #[tokio::test]
    async fn without_redis_only_recent_memory_is_served() {
        for max_age in [Duration::from_millis(300), Duration::ZERO] {
            let config = CacheConfig {
                // Nothing listens there: the tier never connects.
                redis_url: Some("redis://127.0.0.1:1".into()),
                redis_down_max_age: max_age,
                ..CacheConfig::default()
            };
            let cache = ResponseCache::new(&config, "test".into(), Metrics::new()).unwrap();
            let start = cache.snapshot().await;
            cache
                .put(&key("k"), &start, &tags(&["register"]), &answer("x"))
                .await;
            let now = cache.snapshot().await;
            let found = cache
                .get(&key("k"), &now)
                .await
                .map(|(c, tier)| (c.body, tier));
            if max_age.is_zero() {
                assert_eq!(found, None, "memory skipped while Redis cannot confirm it");
                continue;
            }
            assert_eq!(found, Some((Bytes::from("x"), Tier::Local)));
            let Lookup::Confirmed(_, Some(_)) = cache.lookup(&key("k"), cache.mark(), None).await
            else {
                panic!("a recent entry is a hit on the one-round-trip path too");
            };
            tokio::time::sleep(max_age + Duration::from_millis(50)).await;
            let later = cache.snapshot().await;
            assert!(cache.get(&key("k"), &later).await.is_none(), "too old");
            let Lookup::Confirmed(_, None) = cache
                .lookup(&key("k"), cache.mark(), Some(Instant::now()))
                .await
            else {
                panic!("an old entry is a miss");
            };
            let old_scope = Instant::now() - Duration::from_secs(1);
            assert!(matches!(
                cache.lookup(&key("k"), cache.mark(), Some(old_scope)).await,
                Lookup::Unconfirmed(_)
            ));
        }
    }

    #[test]
    fn every_stored_answer_depends_on_the_register_and_audited_ones_are_not_stored() {
        let hints = Hints::default();
        hints.read(tags::figures("attendance_rate"));
        assert_eq!(
            hints.storable_tags(),
            Some(tags(&["figures:attendance_rate", "register"]))
        );
        hints.no_store();
        assert_eq!(hints.storable_tags(), None);
    }

    #[test]
    fn entity_tags_change_with_the_body() {
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
        assert!(etag_of(b"a").starts_with('"') && etag_of(b"a").ends_with('"'));
    }
}
