//! How many requests of one organisation (and of all anonymous callers together) may
//! run against the database at once (`MAX_CONCURRENT_REQUESTS_PER_ORG`).
//!
//! The rate limit bounds how many requests a caller *starts*; it cannot bound how many
//! are *running*, and sixteen slow requests of one caller, each within its rate, once
//! held every connection of the pool while everyone else was refused. A slot is taken
//! after the cache was consulted (a cached answer costs the database nothing, so hits
//! are never held back) and kept until the answer is built. A request that finds its
//! organisation's slots taken waits for one for at most `wait` — a dashboard's burst
//! of parallel queries queues briefly — and is then refused with `OVERLOADED`: the
//! caller is told to slow down, the other organisations keep their share of the pool,
//! and the database is not taken for down.
//!
//! Slots are one semaphore per organisation with requests in flight; an organisation's
//! semaphore is dropped when its last request ends, so the table holds only current
//! callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ratelimit::BucketKey;

/// The limiter. Cheap to clone (one shared table).
#[derive(Clone)]
pub struct ConcurrencyLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    /// Slots per organisation; 0 turns the limit off.
    per_organisation: usize,
    wait: Duration,
    slots: Mutex<HashMap<BucketKey, Arc<Semaphore>>>,
}

/// A request's slot, given back when dropped.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    key: BucketKey,
    inner: Arc<Inner>,
}

/// Every slot of the caller's organisation stayed taken for the whole wait.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl ConcurrencyLimiter {
    /// `per_organisation` requests at once for each organisation and for anonymous
    /// callers together (0: no limit); a request waits up to `wait` for a slot.
    pub fn new(per_organisation: usize, wait: Duration) -> ConcurrencyLimiter {
        ConcurrencyLimiter {
            inner: Arc::new(Inner {
                per_organisation,
                wait,
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A slot for `key`'s organisation, waiting up to the configured time for one.
    pub async fn enter(&self, key: &BucketKey) -> Result<Slot, Busy> {
        let inner = &self.inner;
        let slot = |permit| Slot {
            permit,
            key: key.clone(),
            inner: inner.clone(),
        };
        if inner.per_organisation == 0 {
            return Ok(slot(None));
        }
        let semaphore = {
            let Ok(mut slots) = inner.slots.lock() else {
                return Ok(slot(None));
            };
            slots
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(inner.per_organisation)))
                .clone()
        };
        let permit = match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => tokio::time::timeout(inner.wait, semaphore.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        drop(semaphore);
        // Built (and, when refused, dropped) after this request let go of the
        // semaphore, so the table forgets an organisation with nothing in flight.
        let slot = slot(permit);
        if slot.permit.is_some() {
            Ok(slot)
        } else {
            Err(Busy)
        }
    }

    /// Organisations with requests in flight or waiting (for the tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.inner.slots.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        // The table's own reference is the last one: no request of this organisation
        // is running or waiting (each holds a reference while it does).
        if let Ok(mut slots) = self.inner.slots.lock()
            && slots
                .get(&self.key)
                .is_some_and(|semaphore| Arc::strong_count(semaphore) == 1)
        {
            slots.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(code: &str) -> BucketKey {
        BucketKey::Organisation(format!("LOCAL_AUTHORITY:{code}"))
    }

    #[tokio::test]
    async fn one_organisation_cannot_take_another_ones_slots() {
        let limiter = ConcurrencyLimiter::new(2, Duration::from_millis(20));
        let first = limiter.enter(&org("852")).await.expect("a slot");
        let second = limiter.enter(&org("852")).await.expect("a slot");
        assert_eq!(limiter.enter(&org("852")).await.err(), Some(Busy));
        // Another organisation, and anonymous callers, have slots of their own.
        let other = limiter.enter(&org("850")).await.expect("a slot");
        let anonymous = limiter.enter(&BucketKey::Anonymous).await.expect("a slot");
        drop(first);
        let third = limiter.enter(&org("852")).await.expect("a slot given back");
        drop((second, third, other, anonymous));
        assert_eq!(limiter.tracked(), 0, "finished organisations are forgotten");
    }

    #[tokio::test]
    async fn a_request_waits_briefly_for_a_slot_coming_free() {
        let limiter = ConcurrencyLimiter::new(1, Duration::from_secs(5));
        let held = limiter.enter(&BucketKey::Anonymous).await.expect("a slot");
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.enter(&BucketKey::Anonymous).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiting.await.expect("no panic"));
        assert_eq!(limiter.tracked(), 0);
    }

    #[tokio::test]
    async fn zero_means_no_limit() {
        let limiter = ConcurrencyLimiter::new(0, Duration::ZERO);
        let slots: Vec<_> =
            futures_util::future::join_all((0..100).map(|_| limiter.enter(&BucketKey::Anonymous)))
                .await;
        assert!(slots.iter().all(Result::is_ok));
        assert_eq!(limiter.tracked(), 0);
    }
}
