//! Per-organisation rate limiting: a token bucket for each organisation, so that one
//! partner's burst of dashboards or runaway script cannot take the hub from the others.
//!
//! **Whose bucket.** An authenticated request spends from its organisation's bucket
//! (`KIND:CODE` from the verified token, before any database work), so every user and
//! service account of one partner shares one budget — the unit of fairness between
//! tenants. Requests without a token share one *anonymous* bucket. Keying anonymous
//! callers by client address was considered and rejected: behind the load balancers
//! this hub is deployed behind, the peer address is the balancer's, and
//! `X-Forwarded-For` is written by the client, so a per-address key would either lump
//! everyone together anyway or hand an abuser a fresh bucket per forged header.
//! Anonymous callers read only public reference data (answered from the cache almost
//! always); one shared bucket bounds what they can take from the partners, and the
//! partners' budgets never depend on anonymous traffic.
//!
//! **Cost.** An operation costs one token; a batch costs one per operation.
//!
//! **Across instances.** With `REDIS_URL` set, the buckets live in Redis and are
//! updated by one Lua script (refill, spend, store, in one atomic step, timed by the
//! Redis server's clock so that instances' clocks need not agree), so the limit holds
//! for the deployment, not per instance. If Redis fails or is slow (the cache's Redis
//! timeout), the request is decided by this instance's own bucket instead — never
//! refused, never delayed further, because of Redis — and Redis is not tried again for
//! a second. During such an outage each instance enforces the limit on its own, so the
//! deployment as a whole admits up to its number of instances times the limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RateLimitConfig;
use crate::identity::Identity;
use crate::telemetry::{DecisionLabels, Metrics};

/// Refills, spends and stores one bucket atomically. Returns `{allowed, wait_ms}`.
/// Numbers cross into Lua as strings and come back as integers (Redis truncates Lua
/// floats in replies), hence milliseconds.
const TAKE: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(stored[1]) or burst
local at = tonumber(stored[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) * rate) end
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, wait}
";

/// After a Redis failure, how long requests are decided locally before Redis is tried
/// again: long enough that an outage costs one slow request a second, not every one.
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Most buckets kept in memory. An idle bucket refills to full, and a full bucket is
/// the same as a forgotten one, so dropping the least recently used costs nothing.
const MAX_LOCAL_BUCKETS: u64 = 100_000;

/// Whose budget a request spends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BucketKey {
    Organisation(String),
    Anonymous,
}

impl BucketKey {
    /// The bucket of a verified token's organisation, or the anonymous one.
    pub fn of(identity: Option<&Identity>) -> BucketKey {
        match identity {
            Some(identity) => {
                BucketKey::Organisation(format!("{}:{}", identity.kind.as_str(), identity.code))
            }
            None => BucketKey::Anonymous,
        }
    }

    fn name(&self) -> String {
        match self {
            BucketKey::Organisation(org) => format!("org:{org}"),
            BucketKey::Anonymous => "anonymous".to_owned(),
        }
    }
}

/// The verdict on one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    Allowed,
    /// Refused; enough tokens will have accumulated after this long.
    Limited {
        retry_after: Duration,
    },
}

/// The limiter. Cheap to clone (shared state).
#[derive(Clone)]
pub struct RateLimiter {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    per_second: f64,
    burst: f64,
    local: moka::sync::Cache<BucketKey, Arc<Mutex<Bucket>>>,
    shared: Option<Arc<SharedBuckets>>,
    metrics: Metrics,
}

impl RateLimiter {
    /// A limiter for `config`; `redis` is the Redis URL (validated at start), the key
    /// prefix and the command timeout.
    pub fn new(
        config: &RateLimitConfig,
        redis: Option<(&str, &str, Duration)>,
        metrics: Metrics,
    ) -> Result<RateLimiter, redis::RedisError> {
        if !config.enabled() {
            return Ok(RateLimiter { inner: None });
        }
        let shared = match redis {
            Some((url, prefix, timeout)) => Some(Arc::new(SharedBuckets {
                client: redis::Client::open(url)?,
                prefix: format!("{prefix}:ratelimit:"),
                timeout,
                connection: RwLock::new(None),
                connecting: AtomicBool::new(false),
                pause_until: Mutex::new(None),
                outage_reported: AtomicBool::new(false),
                script: Script::new(TAKE),
                metrics: metrics.clone(),
            })),
            None => None,
        };
        if let Some(shared) = &shared {
            shared.connect_in_background();
        }
        // Time for an empty bucket to refill completely, plus a margin.
        let refill = Duration::from_secs_f64(config.burst / config.per_second + 1.0);
        Ok(RateLimiter {
            inner: Some(Arc::new(Inner {
                per_second: config.per_second,
                burst: config.burst,
                local: moka::sync::Cache::builder()
                    .max_capacity(MAX_LOCAL_BUCKETS)
                    .time_to_idle(refill)
                    .build(),
                shared,
                metrics,
            })),
        })
    }

    /// Spends `cost` tokens from `key`'s bucket, if it holds them. A cost above the
    /// burst is charged as the burst, so a request the settings allow can always pass
    /// once the bucket is full.
    pub async fn check(&self, key: &BucketKey, cost: u32) -> Decision {
        let Some(inner) = &self.inner else {
            return Decision::Allowed;
        };
        let cost = f64::from(cost.max(1)).min(inner.burst);
        let (decision, by) = match &inner.shared {
            Some(shared) => match shared.take(key, inner.per_second, inner.burst, cost).await {
                Some(decision) => (decision, "redis"),
                None => (inner.take_local(key, cost), "local"),
            },
            None => (inner.take_local(key, cost), "local"),
        };
        if let Decision::Limited { .. } = decision {
            inner
                .metrics
                .rate_limited
                .get_or_create(&DecisionLabels { by })
                .inc();
        }
        decision
    }
}

impl Inner {
    fn take_local(&self, key: &BucketKey, cost: f64) -> Decision {
        let bucket = self.local.get_with(key.clone(), || {
            Arc::new(Mutex::new(Bucket::full(self.burst, Instant::now())))
        });
        let mut bucket = bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        bucket.take(cost, self.per_second, self.burst, Instant::now())
    }
}

/// One organisation's tokens, as of `at`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    /// The same arithmetic as the Redis script.
    fn take(&mut self, cost: f64, per_second: f64, burst: f64, now: Instant) -> Decision {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(burst);
        self.at = self.at.max(now);
        if self.tokens >= cost {
            self.tokens -= cost;
            Decision::Allowed
        } else {
            let wait = (cost - self.tokens) / per_second;
            Decision::Limited {
                retry_after: Duration::from_secs_f64(wait),
            }
        }
    }
}

/// The buckets in Redis, and the state that keeps a Redis outage from slowing requests.
struct SharedBuckets {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    connection: RwLock<Option<ConnectionManager>>,
    connecting: AtomicBool,
    /// While set and in the future, requests do not try Redis.
    pause_until: Mutex<Option<Instant>>,
    outage_reported: AtomicBool,
    script: Script,
    metrics: Metrics,
}

impl SharedBuckets {
    /// The shared bucket's verdict, or `None` when Redis cannot give one in time.
    async fn take(
        self: &Arc<Self>,
        key: &BucketKey,
        per_second: f64,
        burst: f64,
        cost: f64,
    ) -> Option<Decision> {
        if self.paused() {
            return None;
        }
        let connection = self.connection.read().ok().and_then(|c| c.clone());
        let Some(mut connection) = connection else {
            self.connect_in_background();
            return None;
        };
        let mut invocation = self.script.key(format!("{}{}", self.prefix, key.name()));
        invocation.arg(per_second).arg(burst).arg(cost);
        let reply = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<(i64, i64)>(&mut connection),
        )
        .await;
        match reply {
            Ok(Ok((allowed, wait_ms))) => {
                if self.outage_reported.swap(false, Ordering::AcqRel) {
                    tracing::info!("rate limiting shared through Redis again");
                    self.metrics.rate_limit_redis_up.set(1);
                }
                Some(if allowed == 1 {
                    Decision::Allowed
                } else {
                    Decision::Limited {
                        retry_after: Duration::from_millis(wait_ms.max(1).unsigned_abs()),
                    }
                })
            }
            Ok(Err(err)) => {
                self.failed(&err.to_string());
                None
            }
            Err(_) => {
                self.failed("timed out");
                None
            }
        }
    }

    fn paused(&self) -> bool {
        let Ok(mut pause) = self.pause_until.lock() else {
            return false;
        };
        match *pause {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *pause = None;
                false
            }
            None => false,
        }
    }

    fn failed(&self, error: &str) {
        self.metrics.rate_limit_redis_errors.inc();
        self.metrics.rate_limit_redis_up.set(0);
        if let Ok(mut pause) = self.pause_until.lock() {
            *pause = Some(Instant::now() + REDIS_RETRY_AFTER);
        }
        if !self.outage_reported.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error,
                "rate limiting cannot reach Redis: each instance limits on its own until it is back"
            );
        }
    }

    /// Opens the connection once; the connection manager then reconnects by itself.
    fn connect_in_background(self: &Arc<Self>) {
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.clone();
        tokio::spawn(async move {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(shared.timeout))
                .set_response_timeout(Some(shared.timeout))
                .set_number_of_retries(1);
            let connecting = tokio::time::timeout(
                shared.timeout * 4,
                ConnectionManager::new_with_config(shared.client.clone(), config),
            )
            .await;
            match connecting {
                Ok(Ok(connection)) => {
                    if let Ok(mut slot) = shared.connection.write() {
                        *slot = Some(connection);
                    }
                    shared.outage_reported.store(false, Ordering::Release);
                    shared.metrics.rate_limit_redis_up.set(1);
                }
                Ok(Err(err)) => shared.failed(&err.to_string()),
                Err(_) => shared.failed("connecting timed out"),
            }
            shared.connecting.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u32, burst: u32) -> RateLimiter {
        let config = RateLimitConfig {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
        };
        RateLimiter::new(&config, None, Metrics::new()).expect("no Redis")
    }

    fn org(code: &str) -> BucketKey {
        BucketKey::Organisation(format!("LOCAL_AUTHORITY:{code}"))
    }

    #[test]
    fn a_bucket_refills_at_the_rate_up_to_the_burst() {
        let start = Instant::now();
        let mut bucket = Bucket::full(3.0, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(1.0, 2.0, 3.0, start), Decision::Allowed);
        }
        let Decision::Limited { retry_after } = bucket.take(1.0, 2.0, 3.0, start) else {
            panic!("a fourth request at once exceeds a burst of 3");
        };
        assert_eq!(retry_after, Duration::from_millis(500));
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.take(1.0, 2.0, 3.0, later), Decision::Allowed);
        // A long rest refills to the burst and no further.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(1.0, 2.0, 3.0, much_later), Decision::Allowed);
        }
        assert!(matches!(
            bucket.take(1.0, 2.0, 3.0, much_later),
            Decision::Limited { .. }
        ));
    }

    #[tokio::test]
    async fn organisations_have_separate_buckets_and_a_batch_costs_its_size() {
        let limiter = limiter(1, 5);
        assert_eq!(limiter.check(&org("852"), 5).await, Decision::Allowed);
        assert!(matches!(
            limiter.check(&org("852"), 1).await,
            Decision::Limited { .. }
        ));
        assert_eq!(limiter.check(&org("850"), 1).await, Decision::Allowed);
        assert_eq!(
            limiter.check(&BucketKey::Anonymous, 1).await,
            Decision::Allowed
        );
    }

    #[tokio::test]
    async fn a_cost_above_the_burst_is_charged_as_the_burst() {
        let limiter = limiter(1, 3);
        assert_eq!(limiter.check(&org("852"), 10).await, Decision::Allowed);
    }

    #[tokio::test]
    async fn a_zero_rate_turns_limiting_off() {
        let limiter = limiter(0, 1);
        for _ in 0..10 {
            assert_eq!(limiter.check(&org("852"), 1).await, Decision::Allowed);
        }
    }
}
