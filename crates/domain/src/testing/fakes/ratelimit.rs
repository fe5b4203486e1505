//! [`RateLimiter`] counting in a map, without time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::store::lock;
use crate::error::UnexpectedError;
use crate::ratelimit::{RateDecision, RateLimit, RateLimiter, decide};

/// Counts hits per key; windows never reset (tests move on with new keys).
#[derive(Debug, Clone, Default)]
pub struct FakeRateLimiter {
    counts: Arc<Mutex<HashMap<String, u64>>>,
}

impl FakeRateLimiter {
    /// Hits counted on `key` so far.
    pub fn count(&self, key: &str) -> u64 {
        lock(&self.counts).get(key).copied().unwrap_or(0)
    }
}

impl RateLimiter for FakeRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        let mut counts = lock(&self.counts);
        let count = counts.entry(key.to_owned()).or_default();
        *count += 1;
        Ok(decide(*count, limit, limit.window))
    }

    async fn peek(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        Ok(decide(self.count(key), limit, limit.window))
    }

    async fn refund(&self, key: &str, _limit: RateLimit) -> Result<(), UnexpectedError> {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(key) {
            *count = count.saturating_sub(1);
        }
        Ok(())
    }
}
