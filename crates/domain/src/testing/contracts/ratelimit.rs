//! The [`crate::ratelimit::RateLimiter`] contract.

use uuid::Uuid;

/// Everything a [`crate::ratelimit::RateLimiter`] must do.
pub async fn rate_limiter_contract(limiter: &impl crate::ratelimit::RateLimiter) {
    use crate::ratelimit::RateLimit;
    let key = format!("contract:{}", Uuid::new_v4());
    let other = format!("contract:{}", Uuid::new_v4());
    let limit = RateLimit {
        limit: 3,
        window: std::time::Duration::from_secs(60),
    };
    let peeked = limiter.peek(&key, limit).await.unwrap();
    assert!(peeked.allowed && peeked.remaining == 3, "{peeked:?}");
    for expected_remaining in [2, 1, 0] {
        let d = limiter.hit(&key, limit).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, expected_remaining);
        assert!(d.reset_after <= limit.window && d.reset_after > std::time::Duration::ZERO);
    }
    let over = limiter.hit(&key, limit).await.unwrap();
    assert!(!over.allowed && over.remaining == 0);
    assert!(!limiter.peek(&key, limit).await.unwrap().allowed);
    assert!(
        limiter.hit(&other, limit).await.unwrap().allowed,
        "keys are independent"
    );
}
