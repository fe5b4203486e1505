//! [`RateLimiter`] in process memory: fixed-window counters in sharded maps,
//! keyed by a keyed 64-bit hash of the key (no key text is kept), expired
//! windows swept as a shard fills. When a shard is full of live windows a
//! new key is refused (full never means unlimited). Only hits make a
//! counter: a peek at a key never hit keeps nothing, and a refund that
//! brings a counter back to zero removes it — so keys that are only looked
//! at (every device request's failure budget) cannot fill the map.

use foldhash::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use eagate_domain::UnexpectedError;
use eagate_domain::ratelimit::{RateDecision, RateLimit, RateLimiter, decide};

const SHARDS: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    length: Duration,
    count: u64,
}

impl Window {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.start) >= self.length
    }

    fn reset_after(&self, now: Instant) -> Duration {
        self.length
            .saturating_sub(now.duration_since(self.start))
            .max(Duration::from_millis(1))
    }
}

/// Fixed-window counters in process memory (one instance).
#[derive(Debug)]
pub struct InMemoryRateLimiter {
    shards: Vec<Mutex<HashMap<u64, Window>>>,
    hasher: RandomState,
    per_shard: usize,
}

impl InMemoryRateLimiter {
    /// Room for about `capacity` live counters.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, HashMap<u64, Window>> {
        self.shards[(hash as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `add` hits (0: just look, keeping nothing for a new key).
    pub fn count(&self, key: &str, limit: RateLimit, add: u64) -> RateDecision {
        let now = Instant::now();
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash);
        if add == 0 {
            return match shard.get(&hash) {
                Some(window) if !window.expired(now) => decide(window.count, limit, window.reset_after(now)),
                // Never hit, or its window is over: the whole budget.
                _ => decide(0, limit, limit.window),
            };
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&hash) {
            shard.retain(|_, w| !w.expired(now));
            if shard.len() >= self.per_shard {
                // Full of live counters: refuse rather than stop counting.
                return decide(u64::from(limit.limit) + add.max(1), limit, limit.window);
            }
        }
        let window = shard.entry(hash).or_insert(Window {
            start: now,
            length: limit.window,
            count: 0,
        });
        if window.expired(now) {
            *window = Window {
                start: now,
                length: limit.window,
                count: 0,
            };
        }
        window.count += add;
        decide(window.count, limit, window.reset_after(now))
    }

    /// Takes one hit back from `key`'s live window; a counter back at zero
    /// is removed.
    pub fn give_back(&self, key: &str) {
        let now = Instant::now();
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash);
        if let Some(window) = shard.get_mut(&hash) {
            window.count = window.count.saturating_sub(1);
            if window.count == 0 || window.expired(now) {
                shard.remove(&hash);
            }
        }
    }

    /// Live counters (after sweeping expired ones), for tests and metrics.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.lock().unwrap_or_else(|p| p.into_inner());
                shard.retain(|_, w| !w.expired(now));
                shard.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RateLimiter for InMemoryRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        Ok(self.count(key, limit, 1))
    }

    async fn peek(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        Ok(self.count(key, limit, 0))
    }

    async fn refund(&self, key: &str, _limit: RateLimit) -> Result<(), UnexpectedError> {
        self.give_back(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    eagate_domain::rate_limiter_contract!(async { ((), InMemoryRateLimiter::new(1000)) });

    #[tokio::test]
    async fn a_window_resets() {
        let limiter = InMemoryRateLimiter::new(1000);
        // A window long enough that a busy machine cannot end it between
        // the first two hits.
        let limit = RateLimit {
            limit: 1,
            window: Duration::from_secs(1),
        };
        assert!(limiter.hit("k", limit).await.unwrap().allowed, "the first hit");
        let refused = limiter.hit("k", limit).await.unwrap();
        assert!(!refused.allowed, "the second hit within the window");
        tokio::time::sleep(refused.reset_after + Duration::from_millis(20)).await;
        assert!(
            limiter.hit("k", limit).await.unwrap().allowed,
            "a hit after the window reset"
        );
    }

    #[test]
    fn peeks_and_refunded_hits_keep_nothing() {
        let limiter = InMemoryRateLimiter::new(100_000);
        let limit = RateLimit::per_minute(60);
        for n in 0..200_000 {
            let d = limiter.count(&format!("device-auth-failures:{n}"), limit, 0);
            assert_eq!(d.remaining, 60, "a key never hit has its whole budget");
        }
        assert_eq!(limiter.len(), 0, "peeks keep nothing");
        // A full map still lets an address never hit through a peek.
        for n in 0..200 {
            limiter.count(&format!("failed:{n}"), limit, 1);
        }
        let tiny = InMemoryRateLimiter::new(SHARDS);
        for n in 0..SHARDS * 10 {
            tiny.count(&format!("failed:{n}"), limit, 1);
        }
        assert!(tiny.count("never-failed", limit, 0).allowed);
        // A refunded hit takes its counter away once it is back at zero.
        limiter.count("honest", limit, 1);
        limiter.count("honest", limit, 1);
        limiter.give_back("honest");
        assert_eq!(limiter.count("honest", limit, 0).remaining, 59);
        limiter.give_back("honest");
        assert_eq!(limiter.len(), 200, "only the failed keys are left");
        limiter.give_back("honest");
        limiter.give_back("never-hit");
        assert_eq!(
            limiter.count("honest", limit, 0).remaining,
            60,
            "never below zero"
        );
        assert_eq!(limiter.len(), 200);
    }

    #[test]
    fn full_never_means_unlimited_and_expired_windows_make_room() {
        let limiter = InMemoryRateLimiter::new(SHARDS);
        let short = RateLimit {
            limit: 100,
            window: Duration::from_millis(30),
        };
        let mut refused = 0;
        for n in 0..SHARDS * 10 {
            if !limiter.count(&format!("ip:{n}"), short, 1).allowed {
                refused += 1;
            }
        }
        assert!(refused > 0, "a full limiter refuses new keys");
        assert!(limiter.len() <= SHARDS);
        std::thread::sleep(Duration::from_millis(40));
        assert!(
            limiter.count("ip:late", short, 1).allowed,
            "expired windows are swept to make room"
        );
    }
}
