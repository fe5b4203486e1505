//! In-process adapters, for a server running as a single instance.
//!
//! [`InMemoryNonceStore`] and [`InMemoryRateLimiter`] are the defaults;
//! the nonce store is the replay store: bounded memory,
//! expiring entries, and exactly-once semantics under concurrency. Several
//! instances behind a load balancer must share state instead: use the Redis
//! adapter (`eagate-redis`).

mod nonce;
mod ratelimit;

pub use nonce::InMemoryNonceStore;
pub use ratelimit::InMemoryRateLimiter;
