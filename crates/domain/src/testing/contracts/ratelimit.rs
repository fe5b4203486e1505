//! The [`RateLimiter`] contract. Window expiry is tested per adapter: it
//! depends on real time.

use std::time::Duration;

use uuid::Uuid;

use crate::ratelimit::{RateDecision, RateLimit, RateLimiter};

const LIMIT: RateLimit = RateLimit {
    limit: 3,
    window: Duration::from_secs(60),
};

/// A key no other rule or run uses.
fn fresh_key() -> String {
    format!("contract:{}", Uuid::new_v4())
}

async fn hit(limiter: &impl RateLimiter, key: &str) -> RateDecision {
    limiter
        .hit(key, LIMIT)
        .await
        .unwrap_or_else(|e| panic!("hit({key:?}) failed: {e}"))
}

async fn peek(limiter: &impl RateLimiter, key: &str) -> RateDecision {
    limiter
        .peek(key, LIMIT)
        .await
        .unwrap_or_else(|e| panic!("peek({key:?}) failed: {e}"))
}

pub async fn a_fresh_key_has_the_whole_limit_left(limiter: &impl RateLimiter) {
    let d = peek(limiter, &fresh_key()).await;
    assert!(d.allowed, "a key never hit must be allowed: {d:?}");
    assert_eq!(
        d.remaining, LIMIT.limit,
        "a key never hit has the whole limit left"
    );
    assert_eq!(d.limit, LIMIT.limit, "a decision reports the limit it applied");
}

pub async fn each_hit_within_the_limit_is_allowed_and_counts_down(limiter: &impl RateLimiter) {
    let key = fresh_key();
    for expected_remaining in [2, 1, 0] {
        let d = hit(limiter, &key).await;
        assert!(d.allowed, "hits up to the limit must be allowed: {d:?}");
        assert_eq!(
            d.remaining, expected_remaining,
            "each hit must take one off the remaining count"
        );
    }
}

pub async fn a_hit_over_the_limit_is_refused(limiter: &impl RateLimiter) {
    let key = fresh_key();
    for _ in 0..LIMIT.limit {
        hit(limiter, &key).await;
    }
    let over = hit(limiter, &key).await;
    assert!(!over.allowed, "the hit after the limit must be refused: {over:?}");
    assert_eq!(over.remaining, 0, "nothing remains over the limit");
    let peeked = peek(limiter, &key).await;
    assert!(
        !peeked.allowed,
        "a peek after a refused hit must say refused too: {peeked:?}"
    );
}

pub async fn peeking_counts_nothing(limiter: &impl RateLimiter) {
    let key = fresh_key();
    for _ in 0..5 {
        peek(limiter, &key).await;
    }
    for _ in 0..LIMIT.limit {
        let d = hit(limiter, &key).await;
        assert!(d.allowed, "peeks must not use up the limit: {d:?}");
    }
    let d = peek(limiter, &key).await;
    assert_eq!(d.remaining, 0, "a peek reports the hits counted so far");
}

pub async fn reset_after_lies_within_the_window(limiter: &impl RateLimiter) {
    let key = fresh_key();
    for _ in 0..=LIMIT.limit {
        let d = hit(limiter, &key).await;
        assert!(
            d.reset_after > Duration::ZERO && d.reset_after <= LIMIT.window,
            "reset_after must be positive and at most the window: {d:?}"
        );
    }
}

pub async fn keys_are_counted_independently(limiter: &impl RateLimiter) {
    let (key, other) = (fresh_key(), fresh_key());
    for _ in 0..=LIMIT.limit {
        hit(limiter, &key).await;
    }
    let d = hit(limiter, &other).await;
    assert!(d.allowed, "another key's hits must not count: {d:?}");
    assert_eq!(d.remaining, LIMIT.limit - 1, "a key counts only its own hits");
}

pub async fn a_refund_gives_one_hit_back_and_never_more(limiter: &impl RateLimiter) {
    let key = fresh_key();
    for _ in 0..LIMIT.limit {
        hit(limiter, &key).await;
    }
    limiter.refund(&key, LIMIT).await.expect("refund");
    let d = hit(limiter, &key).await;
    assert!(d.allowed, "a refunded hit is free again: {d:?}");
    assert_eq!(d.remaining, 0, "one refund gives back exactly one hit");
    let never_hit = fresh_key();
    for _ in 0..3 {
        limiter.refund(&never_hit, LIMIT).await.expect("refund");
    }
    for expected_remaining in [2, 1, 0] {
        let d = hit(limiter, &never_hit).await;
        assert_eq!(
            d.remaining, expected_remaining,
            "refunds never take a counter below zero: {d:?}"
        );
    }
}

/// Runs every rule in order on one limiter; prefer
/// [`rate_limiter_contract!`](crate::rate_limiter_contract), which gives
/// each rule a test of its own.
pub async fn rate_limiter_contract(limiter: &impl RateLimiter) {
    a_fresh_key_has_the_whole_limit_left(limiter).await;
    each_hit_within_the_limit_is_allowed_and_counts_down(limiter).await;
    a_hit_over_the_limit_is_refused(limiter).await;
    peeking_counts_nothing(limiter).await;
    reset_after_lies_within_the_window(limiter).await;
    keys_are_counted_independently(limiter).await;
    a_refund_gives_one_hit_back_and_never_more(limiter).await;
}

/// One `#[tokio::test]` per [`RateLimiter`] rule, in a module
/// `rate_limiter_contract`. `$setup`: an async block returning
/// `(guard, limiter)`.
#[macro_export]
macro_rules! rate_limiter_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            rate_limiter_contract,
            ratelimit,
            $setup,
            (limiter),
            [
                a_fresh_key_has_the_whole_limit_left,
                each_hit_within_the_limit_is_allowed_and_counts_down,
                a_hit_over_the_limit_is_refused,
                peeking_counts_nothing,
                reset_after_lies_within_the_window,
                keys_are_counted_independently,
                a_refund_gives_one_hit_back_and_never_more,
            ]
        );
    };
}
