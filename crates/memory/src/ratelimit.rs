use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use eagate_domain::UnexpectedError;
use eagate_domain::ratelimit::{RateDecision, RateLimit, RateLimiter, decide};

/// Fixed-window counters in process memory (one instance). Expired windows
/// are swept when the map grows past `capacity`; beyond that, new keys are
/// let through uncounted rather than evicting live counters.
#[derive(Debug)]
pub struct InMemoryRateLimiter {
    windows: Mutex<HashMap<String, (Instant, Duration, u64)>>,
    capacity: usize,
}

impl InMemoryRateLimiter {
    pub fn new(capacity: usize) -> Self {
        Self {
            windows: Mutex::default(),
            capacity,
        }
    }

    fn count(&self, key: &str, limit: RateLimit, add: u64) -> RateDecision {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= self.capacity && !windows.contains_key(key) {
            windows.retain(|_, (start, window, _)| now.duration_since(*start) < *window);
            if windows.len() >= self.capacity {
                return decide(add, limit, limit.window);
            }
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, limit.window, 0));
        if now.duration_since(entry.0) >= entry.1 {
            *entry = (now, limit.window, 0);
        }
        entry.2 += add;
        let reset_after = entry.1.saturating_sub(now.duration_since(entry.0));
        decide(entry.2, limit, reset_after.max(Duration::from_millis(1)))
    }
}

impl RateLimiter for InMemoryRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        Ok(self.count(key, limit, 1))
    }

    async fn peek(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        Ok(self.count(key, limit, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    eagate_domain::rate_limiter_contract!(async { ((), InMemoryRateLimiter::new(1000)) });

    #[tokio::test]
    async fn a_window_resets() {
        let limiter = InMemoryRateLimiter::new(1000);
        let limit = RateLimit {
            limit: 1,
            window: Duration::from_millis(50),
        };
        assert!(limiter.hit("k", limit).await.unwrap().allowed);
        assert!(!limiter.hit("k", limit).await.unwrap().allowed);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(limiter.hit("k", limit).await.unwrap().allowed);
    }
}
