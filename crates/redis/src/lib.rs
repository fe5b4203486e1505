//! Redis adapters: state every server instance shares.
//!
//! [`RedisReplayGuard`] records nonces with `SET key 1 NX PX ttl` and counts
//! each device's requests in the same script, so a nonce accepted by one
//! instance is refused by all, atomically, in one round trip. When Redis
//! cannot be reached the guard returns an error and the request is refused
//! (fail closed) — a replay is never let through unchecked.
//! [`RedisRateLimiter`] shares rate-limit windows between instances.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::device::{Admission, AdmissionPolicy, DeviceId, ReplayGuard};
use eagate_domain::ratelimit::{RateDecision, RateLimit, RateLimiter, decide};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
}

/// A shared, auto-reconnecting Redis connection (cheap to clone): to one
/// server, or to a Redis Cluster when the URL's scheme is
/// `redis+cluster://` (or `rediss+cluster://`) followed by one or more
/// seed nodes, `host:port,host:port`. Every multi-key operation keeps its
/// keys in one hash slot (hash tags), so the adapters work unchanged on a
/// cluster.
///
/// Each thread that uses it gets its own multiplexed connection, opened
/// lazily on that thread's runtime: a request on an actix worker then
/// writes to and reads from Redis on its own thread. One connection shared
/// by all would live on the thread that opened it, and every command would
/// cross to that thread and back (two wake-ups of another thread per
/// command: most of what a Redis round trip cost eagate's CPU).
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Shared>,
}

struct Shared {
    target: Target,
    timeout: Duration,
}

/// A thread's connection, with a token that tells whether the runtime its
/// driver task runs on is still there.
#[derive(Clone)]
struct ThreadLink {
    link: Link,
    runtime: RuntimeToken,
}

thread_local! {
    /// This thread's connections, one per [`RedisConnection`] (in practice
    /// one), dropped with the thread. A thread that exits takes its
    /// connection with it: a new thread (an actix worker restarted after a
    /// panic) opens a fresh one on its own runtime.
    static LINKS: RefCell<Vec<(Weak<Shared>, ThreadLink)>> = const { RefCell::new(Vec::new()) };
}

/// Closes when the runtime it was made on shuts down (its watcher task is
/// dropped with it): a thread that runs a new runtime afterwards must not
/// use connections or tasks of the old one.
#[derive(Clone)]
struct RuntimeToken(mpsc::Sender<()>);

impl RuntimeToken {
    /// Must be called on a Tokio runtime.
    fn new() -> Self {
        let (token, mut watcher) = mpsc::channel::<()>(1);
        // Waits until every token is gone, or the runtime drops it.
        tokio::spawn(async move { while watcher.recv().await.is_some() {} });
        Self(token)
    }

    fn runtime_alive(&self) -> bool {
        !self.0.is_closed()
    }
}

/// Per-thread values, one per owner (`LINKS`, `QUEUES`).
type Registry<K, V> = std::thread::LocalKey<RefCell<Vec<(Weak<K>, V)>>>;

/// A thread's value for `owner` in `registry`: the one it has if `usable`
/// says so, else a new one made by `make`. Entries of owners that are gone
/// are dropped when another is added. A `Weak` keeps its allocation, so no
/// other owner can appear at the address of one that is gone.
fn per_thread<K, V: Clone, E>(
    registry: &'static Registry<K, V>,
    owner: &Arc<K>,
    usable: impl Fn(&V) -> bool,
    make: impl FnOnce() -> Result<V, E>,
) -> Result<V, E> {
    let mine = |o: &Weak<K>| std::ptr::eq(o.as_ptr(), Arc::as_ptr(owner));
    registry.with(|entries| {
        if let Some((_, value)) = entries.borrow().iter().find(|(o, _)| mine(o))
            && usable(value)
        {
            return Ok(value.clone());
        }
        let value = make()?;
        let mut entries = entries.borrow_mut();
        entries.retain(|(o, _)| o.strong_count() > 0 && !mine(o));
        entries.push((Arc::downgrade(owner), value.clone()));
        Ok(value)
    })
}

/// What a thread's connection is opened to.
enum Target {
    Single(redis::Client, redis::aio::ConnectionManagerConfig),
    Cluster(redis::cluster::ClusterClient, redis::cluster::ClusterConfig),
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
        let mode = match self.inner.target {
            Target::Single(..) => "single",
            Target::Cluster(..) => "cluster",
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
        let target = if let Some(nodes) = cluster_nodes(url) {
            let client = redis::cluster::ClusterClient::builder(nodes?)
                .retries(2)
                .build()
                .map_err(RedisSetupError::Url)?;
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            Target::Cluster(client, config)
        } else {
            let client = redis::Client::open(url).map_err(RedisSetupError::Url)?;
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1);
            Target::Single(client, config)
        };
        Ok(Self {
            inner: Arc::new(Shared { target, timeout }),
        })
    }

    /// This thread's connection, opened (lazily: nothing is sent until the
    /// first command) on first use. Must be called on a Tokio runtime: the
    /// connection's driver task is spawned on it.
    fn link(&self) -> Result<Link, UnexpectedError> {
        let link = per_thread(
            &LINKS,
            &self.inner,
            |l| l.runtime.runtime_alive(),
            || {
                let link = match &self.inner.target {
                    Target::Single(client, config) => Link::Single(
                        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                            .map_err(redis_error)?,
                    ),
                    Target::Cluster(client, config) => {
                        Link::Cluster(client.get_pending_async_connection_with_config(config.clone()))
                    }
                };
                Ok::<_, UnexpectedError>(ThreadLink {
                    link,
                    runtime: RuntimeToken::new(),
                })
            },
        )?;
        Ok(link.link)
    }

    fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster(..))
    }

    /// `PING` (one node of a cluster), for readiness checks.
    pub async fn ping(&self) -> Result<(), UnexpectedError> {
        let mut conn = self.link()?;
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

/// Admits a batch of requests, each three keys (nonce, rate, quota) and
/// four arguments (nonce lifetime ms, rate window ms, nonce quota, quota
/// window ms), in order, and answers three numbers for each: `0, 0, 0` for
/// a replay; `2, ms left in the rate window, 0` when the device already
/// stored its quota of nonces in this quota window (the nonce is taken
/// back, so nothing is stored: one device cannot fill Redis for the
/// others; as in process memory, the device is told to retry after the
/// rate window); `1, count, ms left in the rate window` otherwise. The
/// common case is four commands (`SET NX PX`, two `INCR`s, `PTTL`). Each
/// request's keys carry its device's hash tag, so one request's keys live
/// in one Redis Cluster slot (a batch of several devices is only sent to a
/// single Redis).
const ADMIT: &str = "local function admit(n, r, q, ttl, window, quota, quota_window) \
  if not redis.call('SET', n, '1', 'NX', 'PX', ttl) then return 0, 0, 0 end \
  local stored = redis.call('INCR', q) \
  if stored == 1 then redis.call('PEXPIRE', q, quota_window) end \
  if stored > tonumber(quota) then \
    redis.call('DEL', n) \
    redis.call('DECR', q) \
    if redis.call('PTTL', q) < 0 then redis.call('PEXPIRE', q, quota_window) end \
    local left = redis.call('PTTL', r) \
    if left < 0 then left = tonumber(window) end \
    return 2, left, 0 \
  end \
  local c = redis.call('INCR', r) \
  local t = -1 \
  if c > 1 then t = redis.call('PTTL', r) end \
  if t < 0 then redis.call('PEXPIRE', r, window) t = tonumber(window) end \
  return 1, c, t \
end \
local out = {} \
for i = 0, #KEYS / 3 - 1 do \
  local a, b, c = admit(KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3], \
    ARGV[4 * i + 1], ARGV[4 * i + 2], ARGV[4 * i + 3], ARGV[4 * i + 4]) \
  out[3 * i + 1] = a out[3 * i + 2] = b out[3 * i + 3] = c \
end \
return out";

/// The most requests one script call admits, unless configured.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// One request's keys and arguments, as [`ADMIT`] takes them.
struct Admit {
    keys: [String; 3],
    args: [i64; 4],
}

/// A request waiting for its thread's next batch.
struct Queued {
    admit: Admit,
    answer: oneshot::Sender<Result<[i64; 3], UnexpectedError>>,
    /// When it stops waiting: queued this long, it is refused unsent.
    deadline: Instant,
}

/// What a guard and its clones share.
#[derive(Debug)]
struct GuardShared {
    max_batch: usize,
    /// Script calls made, for [`RedisReplayGuard::script_calls`].
    calls: AtomicU64,
}

thread_local! {
    /// This thread's batch queue of each [`RedisReplayGuard`] (in practice
    /// one), fed to a task on this thread's runtime.
    static QUEUES: RefCell<Vec<(Weak<GuardShared>, mpsc::UnboundedSender<Queued>)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `requests` through [`ADMIT`] in one call.
async fn admit_all<'a>(
    script: &redis::Script,
    link: &mut Link,
    requests: impl Iterator<Item = &'a Admit>,
) -> Result<Vec<[i64; 3]>, UnexpectedError> {
    let mut invocation = script.prepare_invoke();
    let mut count = 0;
    for request in requests {
        for key in &request.keys {
            invocation.key(key);
        }
        for arg in request.args {
            invocation.arg(arg);
        }
        count += 1;
    }
    let answer: Vec<i64> = invocation.invoke_async(link).await.map_err(redis_error)?;
    if answer.len() != count * 3 {
        return Err(UnexpectedError::msg(format!(
            "redis: {} numbers answered for {count} admissions",
            answer.len()
        )));
    }
    Ok(answer.chunks_exact(3).map(|a| [a[0], a[1], a[2]]).collect())
}

/// `error` for one more request.
fn same_error(error: &UnexpectedError) -> UnexpectedError {
    if error.is_unavailable() {
        UnexpectedError::unavailable(error.to_string())
    } else {
        UnexpectedError::msg(error.to_string())
    }
}

/// Sends whatever requests are queued when the previous call returns, up
/// to `max_batch` at a time, as one script call: under load one round trip
/// and one script run serve many requests; alone, a request goes at once.
/// A request whose caller stopped waiting is not sent; one queued past its
/// deadline (Redis slow or hanging) is refused unsent; when a call fails,
/// everything queued behind it is refused at once rather than tried in
/// turn. So no request waits longer than its deadline plus one call's
/// timeout. Ends when the queue's senders are gone.
async fn run_batches(
    mut link: Link,
    script: redis::Script,
    shared: Arc<GuardShared>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
) {
    let mut batch = Vec::with_capacity(shared.max_batch);
    while queue.recv_many(&mut batch, shared.max_batch).await > 0 {
        batch.retain(|queued| !queued.answer.is_closed());
        let now = Instant::now();
        for late in batch.extract_if(.., |queued| queued.deadline <= now) {
            let _ = late.answer.send(Err(UnexpectedError::unavailable(
                "redis: no admission in time (queued behind slow calls)",
            )));
        }
        if batch.is_empty() {
            continue;
        }
        shared.calls.fetch_add(1, Ordering::Relaxed);
        match admit_all(&script, &mut link, batch.iter().map(|q| &q.admit)).await {
            Ok(answers) => {
                for (queued, answer) in batch.drain(..).zip(answers) {
                    // A request whose client went away no longer listens.
                    let _ = queued.answer.send(Ok(answer));
                }
            }
            Err(e) => {
                for queued in batch.drain(..) {
                    let _ = queued.answer.send(Err(same_error(&e)));
                }
                while let Ok(queued) = queue.try_recv() {
                    let _ = queued.answer.send(Err(same_error(&e)));
                }
            }
        }
    }
}

/// [`ReplayGuard`] on Redis, shared by every instance: nonce and rate in
/// one script, atomically. Against a single Redis the requests of one
/// thread are batched (see [`run_batches`]); against a cluster, where one
/// script may only touch one slot, or with a batch of at most one, each
/// request is its own call. Nonces live until their request's timestamp
/// leaves the window. Redis must keep its data across restarts (AOF or RDB
/// persistence) for replay protection to survive one: a Redis that
/// restarts empty forgets nonces still inside the window.
#[derive(Debug, Clone)]
pub struct RedisReplayGuard {
    connection: RedisConnection,
    prefix: String,
    script: redis::Script,
    /// Also names this guard's (and its clones') batch queues.
    shared: Arc<GuardShared>,
}

impl RedisReplayGuard {
    /// Keys are `{<prefix>d:<device>}:n:<nonce>`, `{<prefix>d:<device>}:r`
    /// (rate) and `{<prefix>d:<device>}:q` (nonces stored, for the quota).
    /// Batches hold up to [`DEFAULT_MAX_BATCH`] requests.
    pub fn new(connection: RedisConnection, prefix: &str) -> Self {
        Self::with_max_batch(connection, prefix, DEFAULT_MAX_BATCH)
    }

    /// As [`new`](Self::new), with batches of at most `max_batch` requests;
    /// `1` sends every request on its own (for a proxy in front of several
    /// Redis servers that routes a script by its first key: a batch holds
    /// several devices' keys, which only a single Redis, or a cluster
    /// client, keeps together).
    pub fn with_max_batch(connection: RedisConnection, prefix: &str, max_batch: usize) -> Self {
        Self {
            connection,
            prefix: prefix.to_owned(),
            script: redis::Script::new(ADMIT),
            shared: Arc::new(GuardShared {
                max_batch: max_batch.max(1),
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// Script calls this guard and its clones have made: admissions divided
    /// by this is the mean batch size.
    pub fn script_calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// The nonce's, rate's and quota's keys, built by hand: this runs on
    /// every signed request, and `format!` cost three times as much.
    fn keys(&self, device: DeviceId, nonce: &str) -> [String; 3] {
        let mut hex = [0u8; uuid::fmt::Simple::LENGTH];
        let hex = device.as_uuid().simple().encode_lower(&mut hex);
        let key = |suffix: &str, nonce: &str| {
            let mut key =
                String::with_capacity(self.prefix.len() + hex.len() + 5 + suffix.len() + nonce.len());
            key.push('{');
            key.push_str(&self.prefix);
            key.push_str("d:");
            key.push_str(hex);
            key.push('}');
            key.push_str(suffix);
            key.push_str(nonce);
            key
        };
        [key(":n:", nonce), key(":r", ""), key(":q", "")]
    }

    /// Admits one request: in this thread's next batch, or on its own
    /// against a cluster or with batches of one.
    async fn run(&self, admit: Admit) -> Result<[i64; 3], UnexpectedError> {
        if self.connection.is_cluster() || self.shared.max_batch == 1 {
            let mut link = self.connection.link()?;
            self.shared.calls.fetch_add(1, Ordering::Relaxed);
            let answer = admit_all(&self.script, &mut link, std::iter::once(&admit)).await?;
            return answer
                .first()
                .copied()
                .ok_or_else(|| UnexpectedError::msg("redis: no admission answered"));
        }
        let queue = per_thread(
            &QUEUES,
            &self.shared,
            |queue| !queue.is_closed(),
            || {
                let link = self.connection.link()?;
                let (queue, requests) = mpsc::unbounded_channel();
                tokio::spawn(run_batches(
                    link,
                    self.script.clone(),
                    Arc::clone(&self.shared),
                    requests,
                ));
                Ok::<_, UnexpectedError>(queue)
            },
        )?;
        let (answer, answered) = oneshot::channel();
        let queued = Queued {
            admit,
            answer,
            deadline: Instant::now() + self.connection.inner.timeout,
        };
        if queue.send(queued).is_err() {
            // Its runtime shut down between the check and now.
            return Err(UnexpectedError::unavailable("redis: the admission queue is gone"));
        }
        answered
            .await
            .map_err(|_| UnexpectedError::unavailable("redis: the admission batch was dropped"))?
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
        let until = signed_at + policy.window + chrono::Duration::seconds(1);
        let ttl_ms = (until - Utc::now()).num_milliseconds().max(1);
        let window_ms = i64::try_from(policy.rate.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        // Nonces stored per device are counted over twice the longest a
        // nonce lives, so a device holds at most twice its quota.
        let quota_window_ms = ((policy.window * 2).num_milliseconds() + 1000).max(1);
        let quota = i64::try_from(policy.nonce_quota()).unwrap_or(i64::MAX);
        let answer = self
            .run(Admit {
                keys: self.keys(device, nonce),
                args: [ttl_ms, window_ms, quota, quota_window_ms],
            })
            .await?;
        let reset = |left_ms: i64| Duration::from_millis(u64::try_from(left_ms).unwrap_or(1).max(1));
        match answer {
            [0, _, _] => Ok(Admission::Replayed),
            [2, left, _] => Ok(Admission::Throttled(RateDecision {
                allowed: false,
                limit: policy.rate.limit,
                remaining: 0,
                reset_after: reset(left),
            })),
            [1, count, left] => {
                let decision = decide(u64::try_from(count).unwrap_or(0), policy.rate, reset(left));
                Ok(if decision.allowed {
                    Admission::Admitted
                } else {
                    Admission::Throttled(decision)
                })
            }
            other => Err(UnexpectedError::msg(format!(
                "redis: unexpected admission answer {other:?}"
            ))),
        }
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
        let mut conn = self.connection.link()?;
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
        let mut conn = self.connection.link()?;
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

    use std::time::Duration;

    use eagate_domain::device::DeviceId;

    use super::{RedisConnection, RedisReplayGuard, cluster_nodes};

    #[test]
    fn keys_carry_the_devices_hash_tag() {
        let connection = RedisConnection::new("redis://127.0.0.1:1", Duration::from_secs(1)).unwrap();
        let guard = RedisReplayGuard::new(connection, "eagate:");
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let tag = "{eagate:d:0123456789abcdef0123456789abcdef}";
        assert_eq!(
            guard.keys(DeviceId::from_uuid(id), "n0nce"),
            [format!("{tag}:n:n0nce"), format!("{tag}:r"), format!("{tag}:q")]
        );
    }

    /// `CLIENT ID` of the calling thread's connection.
    async fn client_id(connection: &RedisConnection) -> i64 {
        let mut link = connection.link().unwrap();
        redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut link)
            .await
            .expect(
                "a Redis at EAGATE_TEST_REDIS_URL or 127.0.0.1:6379 (scripts/ensure-services.sh starts one)",
            )
    }

    /// On a runtime of its own thread, as on an actix worker.
    fn on_own_thread(connection: &RedisConnection) -> (i64, i64) {
        let connection = connection.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async { (client_id(&connection).await, client_id(&connection).await) })
        })
        .join()
        .unwrap()
    }

    #[test]
    fn each_thread_talks_to_redis_over_its_own_connection() {
        // One node (a cluster's first seed node) answers `CLIENT ID`.
        let url = eagate_testkit::redis_url();
        let url = cluster_nodes(&url).map_or(url, |nodes| nodes.unwrap().swap_remove(0));
        let connection = RedisConnection::new(&url, Duration::from_secs(2)).unwrap();
        let (first, again) = on_own_thread(&connection);
        assert_eq!(first, again, "one thread keeps its connection");
        let (other, other_again) = on_own_thread(&connection);
        assert_eq!(other, other_again);
        assert_ne!(first, other, "another thread opens its own");
        assert_eq!(
            format!("{connection:?}"),
            "RedisConnection { mode: \"single\", .. }"
        );
    }

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
