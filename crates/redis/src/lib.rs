//! Redis adapters: state every server instance shares.
//!
//! [`RedisReplayGuard`] records nonces with `SET key 1 NX PX ttl` and counts
//! each device's requests in the same script, so a nonce accepted by one
//! instance is refused by all, atomically, in one round trip. When Redis
//! cannot be reached the guard returns an error and the request is refused
//! (fail closed) — a replay is never let through unchecked.
//! [`RedisRateLimiter`] shares rate-limit windows between instances.

use std::time::Duration;

use chrono::{DateTime, Utc};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::device::{Admission, AdmissionPolicy, DeviceId, ReplayGuard};
use eagate_domain::ratelimit::{RateDecision, RateLimit, RateLimiter, decide};
use redis::aio::ConnectionManager;

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    #[error("cannot set up the Redis connection: {0}")]
    Connect(#[source] redis::RedisError),
}

/// A shared, auto-reconnecting Redis connection (cheap to clone): to one
/// server, or to a Redis Cluster when the URL's scheme is
/// `redis+cluster://` (or `rediss+cluster://`) followed by one or more
/// seed nodes, `host:port,host:port`. Every multi-key operation keeps its
/// keys in one hash slot (hash tags), so the adapters work unchanged on a
/// cluster.
#[derive(Clone)]
pub struct RedisConnection {
    link: Link,
}

#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.link {
            Link::Single(_) => "single",
            Link::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisConnection")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

/// The seed nodes of a `redis+cluster://` or `rediss+cluster://` URL as
/// plain `redis://` / `rediss://` URLs (user and password on each);
/// `None` for any other URL.
fn cluster_nodes(url: &str) -> Option<Result<Vec<String>, RedisSetupError>> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return None,
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|host| format!("{scheme}://{userinfo}{host}{tail}"))
        .collect();
    Some(if nodes.is_empty() {
        Err(RedisSetupError::Url(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "a redis+cluster:// URL names no node",
        ))))
    } else {
        Ok(nodes)
    })
}

impl RedisConnection {
    /// Connects lazily: a Redis that is down at start-up makes requests
    /// fail (closed) until it returns, rather than stopping the server.
    /// Every command gives up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RedisSetupError> {
        if let Some(nodes) = cluster_nodes(url) {
            let client = redis::cluster::ClusterClient::builder(nodes?)
                .retries(2)
                .build()
                .map_err(RedisSetupError::Url)?;
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            return Ok(Self {
                link: Link::Cluster(client.get_pending_async_connection_with_config(config)),
            });
        }
        let client = redis::Client::open(url).map_err(RedisSetupError::Url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(RedisSetupError::Connect)?;
        Ok(Self {
            link: Link::Single(manager),
        })
    }

    /// `PING` (one node of a cluster), for readiness checks.
    pub async fn ping(&self) -> Result<(), UnexpectedError> {
        let mut conn = self.link.clone();
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
    use redis::{ErrorKind, ServerErrorKind};
    // A cluster with no reachable node, or one failing over or resharding
    // (its slots briefly served by nobody), is unavailable too.
    let cluster_unavailable = matches!(
        e.kind(),
        ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::ClusterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
    );
    if cluster_unavailable
        || e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
    {
        UnexpectedError::unavailable(message)
    } else {
        UnexpectedError::msg(message)
    }
}

/// Records the nonce unless present, then counts the request against the
/// device's rate: `{0}` for a replay, `{2, ms left in the rate window}` when
/// the device already stored its quota of nonces in this quota window
/// (nothing is stored: one device cannot fill Redis for the others; as in
/// process memory, the device is told to retry after the rate window),
/// `{1, count, ms left in the rate window}` otherwise. All keys carry the
/// device's hash tag, so they live in one Redis Cluster slot.
const ADMIT: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end \
local q = tonumber(redis.call('GET', KEYS[3]) or '0') \
if q >= tonumber(ARGV[3]) then \
  if redis.call('PTTL', KEYS[3]) < 0 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end \
  local left = redis.call('PTTL', KEYS[2]) \
  if left < 0 then left = tonumber(ARGV[2]) end \
  return {2, left} \
end \
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) \
if redis.call('INCR', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end \
local c = redis.call('INCR', KEYS[2]) \
if c == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end \
local t = redis.call('PTTL', KEYS[2]) \
if t < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) t = tonumber(ARGV[2]) end \
return {1, c, t}";

/// [`ReplayGuard`] on Redis, shared by every instance: one round trip per
/// request (nonce and rate in one script). Nonces live until their
/// request's timestamp leaves the window. Redis must keep its data across
/// restarts (AOF or RDB persistence) for replay protection to survive one:
/// a Redis that restarts empty forgets nonces still inside the window.
#[derive(Debug, Clone)]
pub struct RedisReplayGuard {
    connection: RedisConnection,
    prefix: String,
    script: redis::Script,
}

impl RedisReplayGuard {
    /// Keys are `{<prefix>d:<device>}:n:<nonce>`, `{<prefix>d:<device>}:r`
    /// (rate) and `{<prefix>d:<device>}:q` (nonces stored, for the quota).
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            prefix: prefix.to_owned(),
            script: redis::Script::new(ADMIT),
        }
    }
}

impl ReplayGuard for RedisReplayGuard {
    /// `owner` is not used: Redis is sized by its operator (and in a
    /// cluster one script may only touch one device's hash slot); each
    /// device's quota still bounds what it stores.
    async fn admit(
        &self,
        device: DeviceId,
        _owner: UserId,
        nonce: &str,
        signed_at: DateTime<Utc>,
        policy: &AdmissionPolicy,
    ) -> Result<Admission, UnexpectedError> {
        let tag = format!("{{{}d:{}}}", self.prefix, device.as_uuid().simple());
        let until = signed_at + policy.window + chrono::Duration::seconds(1);
        let ttl_ms = (until - Utc::now()).num_milliseconds().max(1);
        let window_ms = u64::try_from(policy.rate.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        // Nonces stored per device are counted over twice the longest a
        // nonce lives, so a device holds at most twice its quota.
        let quota_window_ms = ((policy.window * 2).num_milliseconds() + 1000).max(1);
        let mut conn = self.connection.link.clone();
        let answer: Vec<i64> = self
            .script
            .key(format!("{tag}:n:{nonce}"))
            .key(format!("{tag}:r"))
            .key(format!("{tag}:q"))
            .arg(ttl_ms)
            .arg(window_ms)
            .arg(policy.nonce_quota())
            .arg(quota_window_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let (fresh, count, left_ms) = match answer.as_slice() {
            [0] => return Ok(Admission::Replayed),
            [2, left] => {
                return Ok(Admission::Throttled(RateDecision {
                    allowed: false,
                    limit: policy.rate.limit,
                    remaining: 0,
                    reset_after: Duration::from_millis(u64::try_from(*left).unwrap_or(1).max(1)),
                }));
            }
            [1, count, left] => (true, *count, *left),
            other => {
                return Err(UnexpectedError::msg(format!(
                    "redis: unexpected admission answer {other:?}"
                )));
            }
        };
        debug_assert!(fresh);
        let reset = Duration::from_millis(u64::try_from(left_ms).unwrap_or(window_ms).max(1));
        let decision = decide(u64::try_from(count).unwrap_or(0), policy.rate, reset);
        Ok(if decision.allowed {
            Admission::Admitted
        } else {
            Admission::Throttled(decision)
        })
    }
}

/// Counts a hit and returns `{count, milliseconds left}`; the first hit of a
/// window sets its expiry. Atomic in Redis.
const HIT: &str = "local c = redis.call('INCRBY', KEYS[1], ARGV[2]) \
if c == tonumber(ARGV[2]) and c > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
local t = redis.call('PTTL', KEYS[1]) \
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) t = tonumber(ARGV[1]) end \
return {c, t}";

/// Takes one hit back, never below zero (the window's expiry is kept).
const REFUND: &str = "local c = tonumber(redis.call('GET', KEYS[1]) or '0') \
if c > 0 then redis.call('DECR', KEYS[1]) end \
return 0";

/// Keys may hold user-supplied text (a login): Redis sees only a digest.
fn key_digest(key: &str) -> String {
    use sha2::Digest as _;
    eagate_protocol::hex(&sha2::Sha256::digest(key.as_bytes())[..16])
}

/// [`RateLimiter`] on Redis: fixed windows shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    connection: RedisConnection,
    prefix: String,
    script: redis::Script,
    refund: redis::Script,
}

impl RedisRateLimiter {
    /// Keys are `<prefix>rl:<digest of the key>`.
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self {
            connection,
            prefix: prefix.to_owned(),
            script: redis::Script::new(HIT),
            refund: redis::Script::new(REFUND),
        }
    }

    async fn count(&self, key: &str, limit: RateLimit, add: u64) -> Result<RateDecision, UnexpectedError> {
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.connection.link.clone();
        let (count, ttl_ms): (i64, i64) = self
            .script
            .key(format!("{}rl:{}", self.prefix, key_digest(key)))
            .arg(window_ms)
            .arg(add)
            .invoke_async(&mut conn)
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

    async fn refund(&self, key: &str, _limit: RateLimit) -> Result<(), UnexpectedError> {
        let mut conn = self.connection.link.clone();
        let _: i64 = self
            .refund
            .key(format!("{}rl:{}", self.prefix, key_digest(key)))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::cluster_nodes;

    #[test]
    fn a_cluster_url_names_each_seed_node_with_its_credentials() {
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001/?protocol=resp3")
                .unwrap()
                .unwrap(),
            [
                "redis://:pw@10.0.0.1:7000/?protocol=resp3",
                "redis://:pw@10.0.0.2:7001/?protocol=resp3"
            ]
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://cache.internal:6380")
                .unwrap()
                .unwrap(),
            ["rediss://cache.internal:6380"]
        );
        assert!(cluster_nodes("redis://127.0.0.1:6379").is_none());
        assert!(cluster_nodes("redis+cluster://,").unwrap().is_err());
    }
}
