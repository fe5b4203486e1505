//! Rate limiting as a port: fixed-window counters keyed by what is limited
//! (a client IP, an account, a device).

use std::future::Future;
use std::time::Duration;

use crate::error::UnexpectedError;

/// At most `limit` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
}

impl RateLimit {
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(60),
        }
    }

    pub const fn per_second(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(1),
        }
    }
}

/// The verdict on one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    /// Hits left in the current window.
    pub remaining: u32,
    /// Until the window resets.
    pub reset_after: Duration,
}

/// Counts hits per key. Implementations share counters between instances
/// when they can (Redis), or keep them in the process.
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one hit on `key` and says whether it is within `limit`.
    fn hit(
        &self,
        key: &str,
        limit: RateLimit,
    ) -> impl Future<Output = Result<RateDecision, UnexpectedError>> + Send;

    /// Reads the state of `key` without counting a hit.
    fn peek(
        &self,
        key: &str,
        limit: RateLimit,
    ) -> impl Future<Output = Result<RateDecision, UnexpectedError>> + Send;
}

/// The decision for a counter at `count` hits with `reset_after` left.
pub fn decide(count: u64, limit: RateLimit, reset_after: Duration) -> RateDecision {
    RateDecision {
        allowed: count <= u64::from(limit.limit),
        limit: limit.limit,
        remaining: u32::try_from(u64::from(limit.limit).saturating_sub(count)).unwrap_or(0),
        reset_after,
    }
}

impl<T: RateLimiter + ?Sized> RateLimiter for std::sync::Arc<T> {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        (**self).hit(key, limit).await
    }

    async fn peek(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        (**self).peek(key, limit).await
    }
}
