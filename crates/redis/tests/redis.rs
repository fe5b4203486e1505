//! Against a real Redis: `EAGATE_TEST_REDIS_URL`, else 127.0.0.1:6379.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use eagate_domain::account::UserId;
use eagate_domain::device::{Admission, AdmissionPolicy, DeviceId, ReplayGuard as _};
use eagate_domain::ratelimit::{RateLimit, RateLimiter as _};
use eagate_redis::{RedisConnection, RedisRateLimiter, RedisReplayGuard};
use uuid::Uuid;

fn owner() -> UserId {
    UserId::from_uuid(Uuid::now_v7())
}

fn url() -> String {
    eagate_testkit::redis_url()
}

/// `KEYS pattern` on every node: the seed nodes of a `redis+cluster://`
/// URL (scripts/scale-test.sh names every master), else the one server.
async fn keys(pattern: &str) -> Vec<String> {
    let url = url();
    let nodes: Vec<String> = match url.strip_prefix("redis+cluster://") {
        Some(hosts) => hosts
            .trim_end_matches('/')
            .split(',')
            .map(|h| format!("redis://{h}"))
            .collect(),
        None => vec![url],
    };
    let mut found = Vec::new();
    for node in nodes {
        let client = redis::Client::open(node).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut conn)
            .await
            .unwrap();
        found.extend(keys);
    }
    found
}

/// Fails the test with a clear message when no Redis is reachable.
async fn require_redis() {
    let connection = RedisConnection::new(&url(), Duration::from_secs(2)).unwrap();
    if let Err(e) = connection.ping().await {
        panic!(
            "these tests need a Redis at {} ({e}): run scripts/ensure-services.sh, install redis-server, \
             or set EAGATE_TEST_REDIS_URL",
            url()
        );
    }
}

/// A prefix of its own, so parallel tests and runs never collide.
fn prefix() -> String {
    format!("eagate-test:{}:", Uuid::new_v4().simple())
}

fn guard_with(prefix: &str) -> RedisReplayGuard {
    RedisReplayGuard::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        prefix,
    )
}

fn guard() -> RedisReplayGuard {
    guard_with(&prefix())
}

fn device() -> DeviceId {
    DeviceId::from_uuid(Uuid::now_v7())
}

fn policy(window: chrono::Duration) -> AdmissionPolicy {
    AdmissionPolicy {
        window,
        rate: RateLimit::per_second(1000),
    }
}

eagate_domain::replay_guard_contract!(async {
    require_redis().await;
    ((), guard())
});

#[tokio::test]
async fn a_nonce_is_forgotten_once_its_timestamp_leaves_the_window() {
    require_redis().await;
    let guard = guard();
    let d = device();
    // A window of 0 s: the nonce lives until signed_at + 1 s.
    let p = policy(chrono::Duration::zero());
    let signed = Utc::now() - chrono::Duration::milliseconds(800);
    assert_eq!(
        guard.admit(d, owner(), "n-0001", signed, &p).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        guard.admit(d, owner(), "n-0001", signed, &p).await.unwrap(),
        Admission::Replayed
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        guard.admit(d, owner(), "n-0001", signed, &p).await.unwrap(),
        Admission::Admitted,
        "forgotten after signed_at + window"
    );
}

#[tokio::test]
async fn two_instances_share_one_redis() {
    require_redis().await;
    let prefix = prefix();
    let (one, two) = (guard_with(&prefix), guard_with(&prefix));
    let d = device();
    let p = policy(chrono::Duration::minutes(5));
    assert_eq!(
        one.admit(d, owner(), "shared", Utc::now(), &p).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        two.admit(d, owner(), "shared", Utc::now(), &p).await.unwrap(),
        Admission::Replayed
    );
    // And they share the device's rate.
    let tight = AdmissionPolicy {
        rate: RateLimit::per_minute(2),
        ..p
    };
    let e = device();
    assert_eq!(
        one.admit(e, owner(), "r1", Utc::now(), &tight).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        two.admit(e, owner(), "r2", Utc::now(), &tight).await.unwrap(),
        Admission::Admitted
    );
    assert!(matches!(
        one.admit(e, owner(), "r3", Utc::now(), &tight).await.unwrap(),
        Admission::Throttled(_)
    ));
}

#[tokio::test]
async fn a_devices_keys_share_one_cluster_slot() {
    require_redis().await;
    let prefix = prefix();
    let guard = guard_with(&prefix);
    let d = device();
    guard
        .admit(
            d,
            owner(),
            "slot-nonce",
            Utc::now(),
            &policy(chrono::Duration::minutes(5)),
        )
        .await
        .unwrap();
    let keys = keys(&format!("{{{prefix}d:{}}}*", d.as_uuid().simple())).await;
    assert_eq!(keys.len(), 3, "nonce, rate and quota: {keys:?}");
    let tag = format!("{{{prefix}d:{}}}", d.as_uuid().simple());
    assert!(
        keys.iter().all(|k| k.starts_with(&tag)),
        "every key of a device starts with its hash tag: {keys:?}"
    );
}

#[tokio::test]
async fn one_device_stores_at_most_its_quota_of_nonces() {
    require_redis().await;
    let prefix = prefix();
    let guard = guard_with(&prefix);
    // 2 requests/s over a 1 s window: a quota of a dozen nonces.
    let p = AdmissionPolicy {
        window: chrono::Duration::seconds(1),
        rate: RateLimit::per_second(2),
    };
    let quota = usize::try_from(p.nonce_quota()).unwrap();
    let (noisy, quiet) = (device(), device());
    let now = Utc::now();
    for n in 0..quota * 3 {
        let admission = guard
            .admit(noisy, owner(), &format!("n{n}"), now, &p)
            .await
            .unwrap();
        assert!(
            matches!(admission, Admission::Admitted | Admission::Throttled(_)),
            "{admission:?}"
        );
    }
    let nonces = keys(&format!("{{{prefix}d:{}}}:n:*", noisy.as_uuid().simple())).await;
    assert_eq!(nonces.len(), quota, "Redis holds the quota, not every nonce sent");
    // A nonce refused for the quota left no trace: it is throttled again,
    // not taken for a replay; as in process memory, the device is told to
    // retry after the rate window.
    let last = format!("n{}", quota * 3 - 1);
    match guard.admit(noisy, owner(), &last, now, &p).await.unwrap() {
        Admission::Throttled(d) => assert!(d.reset_after <= Duration::from_secs(1), "{d:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        guard.admit(quiet, owner(), "n0", now, &p).await.unwrap(),
        Admission::Admitted,
        "another device is not affected"
    );
}

/// On four runtime threads, so the racing scripts arrive over four
/// connections (one per thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_nonces_have_exactly_one_winner() {
    require_redis().await;
    let guard = Arc::new(guard());
    let d = device();
    let now = Utc::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let guard = Arc::clone(&guard);
            tokio::spawn(async move {
                guard
                    .admit(
                        d,
                        owner(),
                        "the-same-nonce-01",
                        now,
                        &policy(chrono::Duration::minutes(5)),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() == Admission::Admitted {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn an_unreachable_redis_cluster_fails_closed_as_unavailable() {
    let guard = RedisReplayGuard::new(
        RedisConnection::new(
            "redis+cluster://127.0.0.1:1,127.0.0.1:2",
            Duration::from_millis(300),
        )
        .unwrap(),
        "x:",
    );
    let refused = guard
        .admit(
            device(),
            owner(),
            "nonce-0000000001",
            Utc::now(),
            &policy(chrono::Duration::minutes(5)),
        )
        .await
        .unwrap_err();
    assert!(refused.is_unavailable(), "{refused}");
}

#[test]
fn a_cluster_url_without_nodes_is_refused() {
    let error = RedisConnection::new("redis+cluster://", Duration::from_secs(1)).unwrap_err();
    assert!(error.to_string().contains("names no node"), "{error}");
}

#[tokio::test]
async fn an_unreachable_redis_fails_closed_as_unavailable() {
    // Nothing listens on port 1.
    let guard = RedisReplayGuard::new(
        RedisConnection::new("redis://127.0.0.1:1", Duration::from_millis(300)).unwrap(),
        "x:",
    );
    let refused = guard
        .admit(
            device(),
            owner(),
            "nonce-0000000001",
            Utc::now(),
            &policy(chrono::Duration::minutes(5)),
        )
        .await
        .unwrap_err();
    assert!(refused.is_unavailable(), "{refused}");
}

eagate_domain::rate_limiter_contract!(async {
    require_redis().await;
    let limiter = RedisRateLimiter::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix(),
    );
    ((), limiter)
});

#[tokio::test]
async fn two_instances_share_rate_limit_counters() {
    require_redis().await;
    let prefix = prefix();
    let one = RedisRateLimiter::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    );
    let two = RedisRateLimiter::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    );
    let limit = RateLimit::per_minute(2);
    assert!(one.hit("ip:1", limit).await.unwrap().allowed);
    assert!(two.hit("ip:1", limit).await.unwrap().allowed);
    assert!(!one.hit("ip:1", limit).await.unwrap().allowed);
}

#[tokio::test]
async fn rate_limit_keys_are_stored_as_digests() {
    require_redis().await;
    let prefix = prefix();
    let limiter = RedisRateLimiter::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    );
    limiter
        .hit("login:hunter2-typed-in-the-wrong-field", RateLimit::per_minute(5))
        .await
        .unwrap();
    let keys = keys(&format!("{prefix}*")).await;
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains("hunter2"), "{keys:?}");
}

/// Admits `requests` (device, nonce) concurrently on this thread: queued
/// together, they go to Redis in batches.
async fn admit_together(
    guard: &RedisReplayGuard,
    requests: &[(DeviceId, String)],
    policy: &AdmissionPolicy,
) -> Vec<Admission> {
    let now = Utc::now();
    // Spawned all before any runs: each queues its request when first
    // polled, and the batch goes out after.
    let tasks: Vec<_> = requests
        .iter()
        .map(|(device, nonce)| {
            let (guard, device, nonce, policy) = (guard.clone(), *device, nonce.clone(), *policy);
            tokio::spawn(async move { guard.admit(device, owner(), &nonce, now, &policy).await })
        })
        .collect();
    let mut verdicts = Vec::new();
    for task in tasks {
        verdicts.push(task.await.unwrap().unwrap());
    }
    verdicts
}

/// Requests queued together on one thread share script calls; each gets
/// its own verdict, in a batch and across batches (more than a script call
/// takes).
#[tokio::test(flavor = "current_thread")]
async fn requests_batched_together_each_get_their_own_verdict() {
    require_redis().await;
    let guard = guard();
    let busy = device();
    let copied = device();
    let limited = device();
    let strict = AdmissionPolicy {
        window: chrono::Duration::minutes(5),
        rate: RateLimit {
            limit: 3,
            window: std::time::Duration::from_secs(60),
        },
    };
    // Interleaved: 100 fresh nonces of one device, the same nonce five
    // times for another, and six nonces of a device allowed three.
    let mut requests = Vec::new();
    for i in 0..100 {
        requests.push((busy, format!("busy-nonce-{i:04}")));
        if i < 5 {
            requests.push((copied, "the-same-nonce-01".to_owned()));
        }
        if i < 6 {
            requests.push((limited, format!("limited-nonce-{i:02}")));
        }
    }
    let verdicts = admit_together(&guard, &requests, &strict).await;
    let of = |device: DeviceId| -> Vec<Admission> {
        requests
            .iter()
            .zip(&verdicts)
            .filter(|((d, _), _)| *d == device)
            .map(|(_, v)| *v)
            .collect()
    };
    let busy_verdicts = of(busy);
    assert_eq!(busy_verdicts.len(), 100);
    assert_eq!(
        busy_verdicts
            .iter()
            .filter(|v| **v == Admission::Admitted)
            .count(),
        3,
        "a device's rate holds within a batch: {busy_verdicts:?}"
    );
    assert!(
        busy_verdicts[3..]
            .iter()
            .all(|v| matches!(v, Admission::Throttled(_))),
        "in order: {busy_verdicts:?}"
    );
    assert_eq!(
        of(copied),
        [
            Admission::Admitted,
            Admission::Replayed,
            Admission::Replayed,
            Admission::Replayed,
            Admission::Replayed
        ],
        "one nonce is admitted once, even within one batch"
    );
    let limited_verdicts = of(limited);
    assert_eq!(&limited_verdicts[..3], [Admission::Admitted; 3]);
    assert!(
        limited_verdicts[3..]
            .iter()
            .all(|v| matches!(v, Admission::Throttled(_))),
        "{limited_verdicts:?}"
    );
    let calls = guard.script_calls();
    if url().contains("+cluster://") {
        assert_eq!(calls, 111, "a cluster takes one call per request");
    } else {
        assert!(
            (2..=4).contains(&calls),
            "111 requests queued together take a few calls of at most 64, not one each: {calls}"
        );
    }
    // Nothing was admitted twice: every nonce of the busy device is known
    // now, whichever batch carried it.
    let again = admit_together(&guard, &requests[..10], &strict).await;
    assert!(again.iter().all(|v| *v == Admission::Replayed), "{again:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn with_batches_of_one_every_request_is_its_own_call() {
    require_redis().await;
    let guard = RedisReplayGuard::with_max_batch(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix(),
        1,
    );
    let d = device();
    let requests: Vec<_> = (0..20).map(|i| (d, format!("alone-nonce-{i:04}"))).collect();
    let verdicts = admit_together(&guard, &requests, &policy(chrono::Duration::minutes(5))).await;
    assert!(verdicts.iter().all(|v| *v == Admission::Admitted), "{verdicts:?}");
    assert_eq!(guard.script_calls(), 20);
}

/// A Redis that accepts connections and never answers: requests queued
/// behind a call that is timing out are refused together when it fails,
/// not tried one batch after another (ten batches here: ten timeouts).
#[tokio::test(flavor = "current_thread")]
async fn requests_queued_behind_a_hanging_redis_are_refused_together() {
    // Connections are accepted by the kernel and never read.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let timeout = Duration::from_millis(300);
    let guard = RedisReplayGuard::new(
        RedisConnection::new(&format!("redis://{}", hole.local_addr().unwrap()), timeout).unwrap(),
        "x:",
    );
    let started = std::time::Instant::now();
    all_refused_as_unavailable(&guard, 640).await;
    let took = started.elapsed();
    // One failing call takes about two timeouts (the connection is tried
    // twice); ten in turn would take some 7 s.
    assert!(
        took < timeout * 8,
        "all refused after {took:?} (a call gives up after {timeout:?}, tried twice)"
    );
    assert!(guard.script_calls() <= 2, "{} calls", guard.script_calls());
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_that_cannot_reach_redis_fails_closed_for_every_request() {
    // Nothing listens on port 1.
    let guard = RedisReplayGuard::new(
        RedisConnection::new("redis://127.0.0.1:1", Duration::from_millis(300)).unwrap(),
        "x:",
    );
    all_refused_as_unavailable(&guard, 10).await;
}

/// Sends `count` admissions at once (queued together on this thread) and
/// checks that every one is refused as unavailable (fail closed).
async fn all_refused_as_unavailable(guard: &RedisReplayGuard, count: usize) {
    let p = policy(chrono::Duration::minutes(5));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let guard = guard.clone();
            tokio::spawn(async move {
                guard
                    .admit(device(), owner(), &format!("nonce-{i:010}"), Utc::now(), &p)
                    .await
            })
        })
        .collect();
    for task in tasks {
        let refused = task.await.unwrap().unwrap_err();
        assert!(refused.is_unavailable(), "{refused}");
    }
}

/// A guard used on a thread whose runtime was replaced opens a new queue
/// and connection on the new runtime; nothing fails.
#[test]
fn a_thread_whose_runtime_is_replaced_keeps_admitting() {
    let guard = guard();
    let d = device();
    let admit = |nonce: &'static str| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                require_redis().await;
                guard
                    .admit(
                        d,
                        owner(),
                        nonce,
                        Utc::now(),
                        &policy(chrono::Duration::minutes(5)),
                    )
                    .await
                    .unwrap()
            })
    };
    assert_eq!(admit("first-runtime-nonce"), Admission::Admitted);
    assert_eq!(admit("second-runtime-nonce"), Admission::Admitted);
    assert_eq!(admit("first-runtime-nonce"), Admission::Replayed);
}
