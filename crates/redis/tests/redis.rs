//! Against a real Redis: `EAGATE_TEST_REDIS_URL`, else 127.0.0.1:6379.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use eagate_domain::device::{DeviceId, NonceStore};
use eagate_redis::{RedisConnection, RedisNonceStore, RedisRateLimiter};
use uuid::Uuid;

fn url() -> String {
    eagate_testkit::redis_url()
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

fn store() -> RedisNonceStore {
    // A prefix of its own, so parallel tests and runs never collide.
    let prefix = format!("eagate-test:{}:", Uuid::new_v4().simple());
    RedisNonceStore::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    )
}

fn device() -> DeviceId {
    DeviceId::from_uuid(Uuid::now_v7())
}

const MINUTE: chrono::Duration = chrono::Duration::minutes(1);

eagate_domain::nonce_store_contract!(async {
    require_redis().await;
    ((), store())
});

#[tokio::test]
async fn nonces_expire() {
    require_redis().await;
    let store = store();
    let d = device();
    let short = chrono::Duration::milliseconds(100);
    assert!(
        store
            .check_and_record(d, "nonce-0000000001", short)
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        store
            .check_and_record(d, "nonce-0000000001", short)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn two_instances_share_one_redis() {
    require_redis().await;
    let prefix = format!("eagate-test:{}:", Uuid::new_v4().simple());
    let one = RedisNonceStore::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    );
    let two = RedisNonceStore::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    );
    let d = device();
    assert!(
        one.check_and_record(d, "shared-nonce-0001", MINUTE)
            .await
            .unwrap()
    );
    assert!(
        !two.check_and_record(d, "shared-nonce-0001", MINUTE)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn concurrent_identical_nonces_have_exactly_one_winner() {
    require_redis().await;
    let store = Arc::new(store());
    let d = device();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .check_and_record(d, "the-same-nonce-01", MINUTE)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "of 50 concurrent uses of one nonce exactly one must win");
}

#[tokio::test]
async fn an_unreachable_redis_fails_closed() {
    // Nothing listens on port 1.
    let store = RedisNonceStore::new(
        RedisConnection::new("redis://127.0.0.1:1", Duration::from_millis(300)).unwrap(),
        "x:",
    );
    assert!(
        store
            .check_and_record(device(), "nonce-0000000001", MINUTE)
            .await
            .is_err()
    );
}

eagate_domain::rate_limiter_contract!(async {
    require_redis().await;
    let prefix = format!("eagate-test:{}:", Uuid::new_v4().simple());
    let limiter = RedisRateLimiter::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    );
    ((), limiter)
});

#[tokio::test]
async fn two_instances_share_rate_limit_counters() {
    require_redis().await;
    let prefix = format!("eagate-test:{}:", Uuid::new_v4().simple());
    let one = RedisRateLimiter::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    );
    let two = RedisRateLimiter::new(
        RedisConnection::new(&url(), Duration::from_secs(2)).unwrap(),
        &prefix,
    );
    let limit = eagate_domain::ratelimit::RateLimit::per_minute(2);
    use eagate_domain::ratelimit::RateLimiter as _;
    assert!(one.hit("ip:1", limit).await.unwrap().allowed);
    assert!(two.hit("ip:1", limit).await.unwrap().allowed);
    assert!(!one.hit("ip:1", limit).await.unwrap().allowed);
}
