//! Redis adapters: state every server instance shares.
//!
//! [`RedisNonceStore`] records nonces with `SET key 1 NX PX ttl`, so a nonce
//! accepted by one instance is refused by all, atomically. When Redis cannot
//! be reached the store returns an error and the request is refused (fail
//! closed) — a replay is never let through unchecked.

use std::time::Duration;

use eagate_domain::UnexpectedError;
use eagate_domain::device::{DeviceId, NonceStore};
use eagate_domain::ratelimit::{RateDecision, RateLimit, RateLimiter, decide};
use redis::aio::ConnectionManager;

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    #[error("cannot set up the Redis connection: {0}")]
    Connect(#[source] redis::RedisError),
}

/// A shared, auto-reconnecting Redis connection (cheap to clone).
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection").finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects lazily: a Redis that is down at start-up makes requests
    /// fail (closed) until it returns, rather than stopping the server.
    /// Every command gives up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RedisSetupError> {
        let client = redis::Client::open(url).map_err(RedisSetupError::Url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(RedisSetupError::Connect)?;
        Ok(Self { manager })
    }

    /// `PING`, for readiness checks.
    pub async fn ping(&self) -> Result<(), UnexpectedError> {
        let mut conn = self.manager.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(redis_error)
    }
}

/// A Redis failure as the domain sees it: unavailable (retry later) when
/// Redis cannot be reached or answer in time, unexpected otherwise.
fn redis_error(e: redis::RedisError) -> UnexpectedError {
    let message = format!("redis: {e}");
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        UnexpectedError::unavailable(message)
    } else {
        UnexpectedError::msg(message)
    }
}

/// [`NonceStore`] on Redis, shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisNonceStore {
    connection: RedisConnection,
    prefix: String,
}

impl RedisNonceStore {
    /// Keys are `<prefix>nonce:<device>:<nonce>`.
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            prefix: prefix.to_owned(),
        }
    }
}

impl NonceStore for RedisNonceStore {
    async fn check_and_record(
        &self,
        device: DeviceId,
        nonce: &str,
        ttl: chrono::Duration,
    ) -> Result<bool, UnexpectedError> {
        let key = format!("{}nonce:{device}:{nonce}", self.prefix);
        let ttl_ms = ttl.num_milliseconds().max(1);
        let mut conn = self.connection.manager.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(set.is_some())
    }
}

/// Counts a hit and returns `{count, milliseconds left}`; the first hit of a
/// window sets its expiry. Atomic in Redis.
const HIT: &str = "local c = redis.call('INCRBY', KEYS[1], ARGV[2]) \
if c == tonumber(ARGV[2]) and c > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
local t = redis.call('PTTL', KEYS[1]) \
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) t = tonumber(ARGV[1]) end \
return {c, t}";

/// [`RateLimiter`] on Redis: fixed windows shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    connection: RedisConnection,
    prefix: String,
}

impl RedisRateLimiter {
    /// Keys are `<prefix>rl:<key>`.
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            prefix: prefix.to_owned(),
        }
    }

    async fn count(&self, key: &str, limit: RateLimit, add: u64) -> Result<RateDecision, UnexpectedError> {
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.connection.manager.clone();
        let (count, ttl_ms): (i64, i64) = redis::cmd("EVAL")
            .arg(HIT)
            .arg(1)
            .arg(format!("{}rl:{key}", self.prefix))
            .arg(window_ms)
            .arg(add)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let reset = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(window_ms).max(1));
        Ok(decide(u64::try_from(count).unwrap_or(0), limit, reset))
    }
}

impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        self.count(key, limit, 1).await
    }

    async fn peek(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        self.count(key, limit, 0).await
    }
}
