//! The Redis tier: shared by every hub instance, checked by tag versions on every read
//! (see the `cache` module for why), and never a reason for a request to fail.
//!
//! A background task owns the connection's life: it connects, publishes invalidations
//! that were made while Redis was away, subscribes to the invalidation channel, and
//! only then lets requests use Redis and trust the in-process tier fully. When the
//! subscription ends Redis is down: requests stop using it at once (no request waits
//! on a dead server) and the task reconnects with backoff.
//!
//! **Slow is not down.** A command that fails or takes longer than
//! `CACHE_REDIS_TIMEOUT_MS` is given up for the request that sent it — a miss, served
//! from memory or the database — and the task is asked to look: it pings Redis on a
//! connection of its own with a longer bound, and only if that fails too is Redis
//! taken for down. A Redis that stalls for a moment (a slow command of someone else's,
//! a fork for a snapshot) costs the requests that met the stall their Redis lookups,
//! not everyone's cache for the seconds a reconnection takes: once, every timeout
//! marked Redis down, and a stall under load became thousands of `503`s.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use axum::body::Bytes;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{AsyncCommands, Script};
use tokio::sync::Notify;

use super::{Cached, Inner, Key};
use crate::config::CacheConfig;
use crate::telemetry::Metrics;

/// Returns `{etag, tags}` if the entry exists and every tag still has the version it
/// was stored with; nil otherwise. `tags` is `tag\tversion` lines. The body is read
/// by a plain `HGET` pipelined after it: passing a large body through Lua costs copies.
const CHECK: &str = r"
local e = redis.call('HMGET', KEYS[1], 'tags', 'etag')
if not e[2] then return false end
for tag, version in string.gmatch(e[1] or '', '([^\t\n]+)\t([^\n]+)') do
  if (redis.call('GET', ARGV[1] .. tag) or '0') ~= version then return false end
end
return {e[2], e[1]}
";

/// Stores an entry with its tags' current versions, unless the generation moved since
/// the request began (an invalidation landed while the answer was being computed).
const PUT: &str = r"
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
local lines = {}
for i = 6, #ARGV do
  lines[#lines + 1] = ARGV[i] .. '\t' .. (redis.call('GET', ARGV[3] .. ARGV[i]) or '0')
end
redis.call('HSET', KEYS[1], 'tags', table.concat(lines, '\n'), 'body', ARGV[4], 'etag', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Bumps the generation and each tag's version, then tells every instance: the
/// message is the new generation, then the tags, one per line.
const INVALIDATE: &str = r"
local generation = redis.call('INCR', KEYS[1])
for i = 3, #ARGV do redis.call('INCR', ARGV[1] .. ARGV[i]) end
redis.call('PUBLISH', ARGV[2], generation .. '\n' .. table.concat(ARGV, '\n', 3))
return generation
";

/// Multiplexed connections per hub instance.
const CONNECTIONS: usize = 4;

/// How long an automatic persisted query is remembered in Redis.
const PERSISTED_QUERY_TTL_SECS: u64 = 24 * 60 * 60;

pub(super) struct RedisTier {
    client: redis::Client,
    timeout: Duration,
    /// Answers larger than this are not written to Redis (`CACHE_REDIS_MAX_ENTRY_BYTES`).
    max_entry_bytes: usize,
    ttl_secs: u64,
    keys: Keys,
    /// A few multiplexed connections, used in turn: one connection's replies are read
    /// by one task, and large answers would otherwise queue behind each other there.
    connections: RwLock<Vec<ConnectionManager>>,
    next: AtomicUsize,
    subscribed: AtomicBool,
    /// The highest generation whose invalidation this instance has applied. Messages
    /// arrive in generation order (each is published in the script that bumps it).
    applied: AtomicU64,
    /// Tags invalidated while Redis was unreachable, published on reconnection.
    pending: Mutex<BTreeSet<String>>,
    /// Wakes the background task to check on Redis after a command failed or was slow.
    check: Arc<Notify>,
    scripts: Scripts,
    metrics: Metrics,
}

struct Scripts {
    check: Script,
    put: Script,
    invalidate: Script,
}

/// Every Redis name the hub uses, under one prefix so that several hubs (or test
/// runs) can share a server without seeing each other's entries.
struct Keys {
    entry: String,
    version: String,
    generation: String,
    channel: String,
    persisted: String,
}

impl RedisTier {
    /// `config.redis_url` was validated at start, so the client can be built.
    pub(super) fn new(client: redis::Client, config: &CacheConfig, metrics: Metrics) -> Self {
        let prefix = &config.redis_prefix;
        metrics.cache_redis_up.set(0);
        RedisTier {
            client,
            timeout: config.redis_timeout,
            max_entry_bytes: config.redis_max_entry_bytes,
            ttl_secs: config.ttl.as_secs().max(1),
            keys: Keys {
                entry: format!("{prefix}:entry:"),
                version: format!("{prefix}:version:"),
                generation: format!("{prefix}:generation"),
                channel: format!("{prefix}:invalidate"),
                persisted: format!("{prefix}:apq:"),
            },
            connections: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            subscribed: AtomicBool::new(false),
            applied: AtomicU64::new(0),
            pending: Mutex::new(BTreeSet::new()),
            check: Arc::new(Notify::new()),
            scripts: Scripts {
                check: Script::new(CHECK),
                put: Script::new(PUT),
                invalidate: Script::new(INVALIDATE),
            },
            metrics,
        }
    }

    /// Starts the background task that keeps the connection and subscription alive.
    pub(super) fn start(&self, cache: Weak<Inner>) {
        tokio::spawn(supervise(cache, self.check.clone()));
    }

    pub(super) fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Whether every invalidation up to `generation` has been applied in memory.
    pub(super) fn caught_up(&self, generation: u64) -> bool {
        self.subscribed() && self.applied.load(Ordering::Acquire) == generation
    }

    /// Puts the tier in the state a live subscription would, for the module's tests.
    #[cfg(test)]
    pub(super) fn assume(&self, subscribed: bool, applied: u64) {
        self.subscribed.store(subscribed, Ordering::Release);
        self.applied.store(applied, Ordering::Release);
    }

    fn connection(&self) -> Option<ConnectionManager> {
        if !self.subscribed() {
            return None;
        }
        let connections = self.connections.read().ok()?;
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        connections.get(i % connections.len().max(1)).cloned()
    }

    /// Runs one command with the timeout; a failure is this request's miss, and asks
    /// the background task to check whether Redis is down.
    async fn run<T>(
        &self,
        command: impl Future<Output = redis::RedisResult<T>>,
        what: &'static str,
    ) -> Option<T> {
        match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => {
                self.failed(what, &err.to_string());
                None
            }
            Err(_) => {
                self.failed(what, "timed out");
                None
            }
        }
    }

    fn failed(&self, what: &str, error: &str) {
        self.metrics.cache_redis_errors.inc();
        tracing::debug!(
            operation = what,
            error,
            "Redis command given up for this request"
        );
        self.check.notify_one();
    }

    /// Whether Redis still answers after a command failed: a ping with four times the
    /// command timeout, then the invalidations that could not be published meanwhile.
    /// False means it is down (or too slow to be of use) and the connection is renewed.
    async fn still_answers(&self) -> bool {
        let Some(mut conn) = self
            .connections
            .read()
            .ok()
            .and_then(|c| c.first().cloned())
        else {
            return false;
        };
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut conn);
        if !matches!(
            tokio::time::timeout(self.timeout * 4, ping).await,
            Ok(Ok(_))
        ) {
            return false;
        }
        let pending: Vec<String> = self
            .pending
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default();
        if pending.is_empty() {
            return true;
        }
        let invocation = self.invalidation(&pending);
        let published =
            tokio::time::timeout(self.timeout * 4, invocation.invoke_async::<u64>(&mut conn)).await;
        if !matches!(published, Ok(Ok(_))) {
            return false;
        }
        if let Ok(mut set) = self.pending.lock() {
            for tag in &pending {
                set.remove(tag);
            }
        }
        true
    }

    /// An entry whose tags are all still current. The check and the body read are two
    /// commands in one round trip; a write landing between them leaves a body that was
    /// current when checked, as if the read had come just before the write.
    pub(super) async fn get(&self, key: &Key) -> Option<(Cached, Vec<String>)> {
        let mut conn = self.connection()?;
        let mut pipeline = redis::pipe();
        self.entry_commands(&mut pipeline, key);
        let (checked, body) = self.run(pipeline.query_async(&mut conn), "get").await?;
        self.entry(checked, body)
    }

    /// The current generation and [`RedisTier::get`]'s entry, in one round trip (the
    /// generation is read first, as if by a separate call just before).
    pub(super) async fn generation_and_get(
        &self,
        key: &Key,
    ) -> Option<(u64, Option<(Cached, Vec<String>)>)> {
        let mut conn = self.connection()?;
        let mut pipeline = redis::pipe();
        pipeline.get(&self.keys.generation);
        self.entry_commands(&mut pipeline, key);
        let (generation, checked, body): (Option<u64>, _, _) =
            self.run(pipeline.query_async(&mut conn), "get").await?;
        Some((generation.unwrap_or(0), self.entry(checked, body)))
    }

    /// The commands that read an entry: the version check, then the body.
    fn entry_commands(&self, pipeline: &mut redis::Pipeline, key: &Key) {
        let entry = format!("{}{}", self.keys.entry, key.0);
        pipeline
            .invoke_script(self.scripts.check.key(&entry).arg(&self.keys.version))
            .hget(&entry, "body");
    }

    /// An entry from the replies to [`RedisTier::entry_commands`].
    ///
    /// Bodies are stored LZ4-compressed: JSON answers shrink several times over, which
    /// is less for Redis to copy and for this instance to read, at a decompression cost
    /// well below the transfer it saves.
    fn entry(
        &self,
        checked: Option<(String, String)>,
        body: Option<Vec<u8>>,
    ) -> Option<(Cached, Vec<String>)> {
        let ((etag, tags), body) = (checked?, body?);
        let body = match decode(&body) {
            Ok(body) => body,
            Err(error) => {
                // Not an outage: this one entry is unreadable, so it is a miss.
                self.metrics.cache_redis_errors.inc();
                tracing::warn!(
                    error,
                    "unreadable answer in Redis; answering from the database"
                );
                return None;
            }
        };
        let tags = tags
            .lines()
            .filter_map(|line| line.split_once('\t').map(|(tag, _)| tag.to_owned()))
            .collect();
        Some((
            Cached {
                body: Bytes::from(body),
                etag: etag.into(),
            },
            tags,
        ))
    }

    /// The current generation, or `None` if Redis is not in use.
    pub(super) async fn generation(&self) -> Option<u64> {
        let mut conn = self.connection()?;
        let value: Option<u64> = self
            .run(conn.get(&self.keys.generation), "generation")
            .await?;
        Some(value.unwrap_or(0))
    }

    pub(super) async fn put(&self, key: &Key, generation: u64, tags: &[String], cached: &Cached) {
        if cached.body.len() > self.max_entry_bytes {
            return;
        }
        let Some(mut conn) = self.connection() else {
            return;
        };
        let mut invocation = self
            .scripts
            .put
            .key(format!("{}{}", self.keys.entry, key.0));
        invocation
            .key(&self.keys.generation)
            .arg(generation)
            .arg(self.ttl_secs)
            .arg(&self.keys.version)
            .arg(lz4_flex::compress_prepend_size(&cached.body))
            .arg(cached.etag.as_ref());
        for tag in tags {
            invocation.arg(tag);
        }
        let _: Option<i64> = self.run(invocation.invoke_async(&mut conn), "put").await;
    }

    /// Publishes an invalidation, or keeps it for when Redis returns.
    pub(super) async fn invalidate(&self, tags: &[String]) {
        let delivered = match self.connection() {
            Some(mut conn) => self.publish(&mut conn, tags).await,
            None => false,
        };
        if !delivered && let Ok(mut pending) = self.pending.lock() {
            pending.extend(tags.iter().cloned());
        }
    }

    async fn publish(&self, conn: &mut ConnectionManager, tags: &[String]) -> bool {
        if tags.is_empty() {
            return true;
        }
        let invocation = self.invalidation(tags);
        self.run(invocation.invoke_async::<u64>(conn), "invalidate")
            .await
            .is_some()
    }

    /// The script call that bumps `tags` and tells every instance.
    fn invalidation<'a>(&'a self, tags: &'a [String]) -> redis::ScriptInvocation<'a> {
        let mut invocation = self.scripts.invalidate.key(&self.keys.generation);
        invocation.arg(&self.keys.version).arg(&self.keys.channel);
        for tag in tags {
            invocation.arg(tag);
        }
        invocation
    }

    pub(super) async fn persisted_query(&self, hash: &str) -> Option<String> {
        let mut conn = self.connection()?;
        let key = format!("{}{hash}", self.keys.persisted);
        self.run(conn.get::<_, Option<String>>(key), "persisted query")
            .await?
    }

    pub(super) async fn persist_query(&self, hash: &str, document: &str) {
        let Some(mut conn) = self.connection() else {
            return;
        };
        let key = format!("{}{hash}", self.keys.persisted);
        let _: Option<()> = self
            .run(
                conn.set_ex(key, document, PERSISTED_QUERY_TTL_SECS),
                "persist query",
            )
            .await;
    }

    /// Connects, subscribes, publishes pending invalidations, and reads the generation
    /// (everything up to it is covered by emptying memory; later ones will arrive as
    /// messages, since the subscription is already live).
    async fn connect(&self) -> redis::RedisResult<(Vec<ConnectionManager>, PubSub, u64)> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let within =
            |what: &'static str| move |_| redis::RedisError::from((redis::ErrorKind::Io, what));
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            connections.push(
                tokio::time::timeout(
                    self.timeout * 4,
                    ConnectionManager::new_with_config(self.client.clone(), config.clone()),
                )
                .await
                .map_err(within("connecting timed out"))??,
            );
        }
        let mut conn = connections[0].clone();
        let mut pubsub = tokio::time::timeout(self.timeout * 4, self.client.get_async_pubsub())
            .await
            .map_err(within("connecting timed out"))??;
        tokio::time::timeout(self.timeout * 4, pubsub.subscribe(&self.keys.channel))
            .await
            .map_err(within("subscribing timed out"))??;
        // Pipelined script calls do not load their script on demand.
        tokio::time::timeout(self.timeout * 4, self.scripts.check.load_async(&mut conn))
            .await
            .map_err(within("loading a script timed out"))??;
        let pending: Vec<String> = self
            .pending
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default();
        if !pending.is_empty() {
            let invocation = self.invalidation(&pending);
            tokio::time::timeout(self.timeout * 4, invocation.invoke_async::<u64>(&mut conn))
                .await
                .map_err(within("publishing pending invalidations timed out"))??;
            if let Ok(mut set) = self.pending.lock() {
                for tag in &pending {
                    set.remove(tag);
                }
            }
        }
        let generation: Option<u64> =
            tokio::time::timeout(self.timeout * 4, conn.get(&self.keys.generation))
                .await
                .map_err(within("reading the generation timed out"))??;
        Ok((connections, pubsub, generation.unwrap_or(0)))
    }
}

/// Decodes a stored body (LZ4, its length first). LZ4 cannot expand data more than
/// 255-fold, so an entry announcing more is refused before anything is allocated for
/// it, and one that decodes to another length than announced is refused too: a
/// corrupt entry (or another program's, under the same prefix) is a miss, never a
/// huge allocation or a truncated answer.
fn decode(stored: &[u8]) -> Result<Vec<u8>, String> {
    const MAX_RATIO: usize = 255;
    let (size, compressed) =
        lz4_flex::block::uncompressed_size(stored).map_err(|err| err.to_string())?;
    if size > compressed.len().saturating_mul(MAX_RATIO) {
        return Err(format!(
            "announces {size} bytes from {} compressed",
            compressed.len()
        ));
    }
    let body = lz4_flex::block::decompress(compressed, size).map_err(|err| err.to_string())?;
    if body.len() != size {
        return Err(format!("decodes to {} bytes, not {size}", body.len()));
    }
    Ok(body)
}

/// Keeps Redis connected while the cache exists; see the module documentation.
async fn supervise(cache: Weak<Inner>, check: Arc<Notify>) {
    const FIRST_RETRY: Duration = Duration::from_millis(100);
    const LAST_RETRY: Duration = Duration::from_secs(2);
    let mut backoff = FIRST_RETRY;
    let mut outage_reported = false;
    loop {
        let Some(inner) = cache.upgrade() else {
            return;
        };
        let Some(tier) = inner.redis.as_ref() else {
            return;
        };
        match tier.connect().await {
            Ok((connections, mut pubsub, generation)) => {
                // Anything may have been missed while unsubscribed.
                inner.clear_local();
                tier.applied.store(generation, Ordering::Release);
                if let Ok(mut slot) = tier.connections.write() {
                    *slot = connections;
                }
                tier.subscribed.store(true, Ordering::Release);
                tier.metrics.cache_redis_up.set(1);
                if outage_reported {
                    tracing::info!("Redis cache reachable again");
                } else {
                    tracing::info!("Redis cache connected");
                }
                backoff = FIRST_RETRY;
                drop(inner);
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => {
                            let Some(message) = message else { break };
                            let Some(inner) = cache.upgrade() else { return };
                            if let Ok(payload) = message.get_payload::<String>() {
                                let mut lines = payload.lines();
                                let generation = lines.next().and_then(|g| g.parse().ok());
                                let tags: Vec<String> = lines.map(str::to_owned).collect();
                                inner.invalidate_local(&tags);
                                if let (Some(generation), Some(tier)) =
                                    (generation, inner.redis.as_ref())
                                {
                                    tier.applied.fetch_max(generation, Ordering::AcqRel);
                                }
                            }
                        }
                        () = check.notified() => {
                            let Some(inner) = cache.upgrade() else { return };
                            let Some(tier) = inner.redis.as_ref() else { return };
                            if !tier.still_answers().await {
                                break;
                            }
                        }
                        () = tokio::time::sleep(Duration::from_secs(1)) => {
                            if cache.strong_count() == 0 {
                                return;
                            }
                        }
                    }
                }
                let Some(inner) = cache.upgrade() else {
                    return;
                };
                let Some(tier) = inner.redis.as_ref() else {
                    return;
                };
                if tier.subscribed.swap(false, Ordering::AcqRel) {
                    tracing::warn!(
                        "lost the Redis cache: answering from recent memory and the database \
                         until it is back"
                    );
                }
                if let Ok(mut slot) = tier.connections.write() {
                    slot.clear();
                }
                tier.metrics.cache_redis_up.set(0);
                // Memory is kept: while unsubscribed only what was stored within
                // CACHE_REDIS_DOWN_MAX_AGE_SECONDS is served, and it is emptied on
                // reconnection, before it is fully trusted again.
                outage_reported = true;
            }
            Err(err) => {
                if !outage_reported {
                    tracing::warn!(
                        error = %err,
                        "Redis cache unreachable: answering from recent memory and the database, and retrying"
                    );
                    outage_reported = true;
                }
                tier.metrics.cache_redis_errors.inc();
                drop(inner);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(LAST_RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn stored_bodies_decode_and_corrupt_ones_are_refused() {
        let answer = br#"{"data":{"schools":[]}}"#.repeat(100);
        let stored = lz4_flex::compress_prepend_size(&answer);
        assert_eq!(decode(&stored).unwrap(), answer);

        let mut claims_more = stored.clone();
        claims_more[..4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert!(decode(&claims_more).unwrap_err().contains("announces"));

        let mut claims_less = stored.clone();
        claims_less[..4].copy_from_slice(&10u32.to_le_bytes());
        assert!(decode(&claims_less).is_err());

        let truncated = &stored[..stored.len() / 2];
        assert!(decode(truncated).is_err());
        assert!(decode(b"").is_err());
        assert!(decode(b"\x20\0\0\0not lz4 at all").is_err());
    }
}
