//! In-process adapters.
//!
//! [`InMemoryReplayGuard`] and [`InMemoryRateLimiter`] hold state for a
//! single instance (several instances behind a load balancer must share it:
//! use the Redis adapter, `eagate-redis`); [`InMemoryDeviceCache`] is the
//! per-instance cache every instance keeps, fed by change notifications.

mod cache;
mod ratelimit;
mod replay;

pub use cache::{CacheLimits, InMemoryDeviceCache};
pub use ratelimit::InMemoryRateLimiter;
pub use replay::{DEVICE_BYTES, InMemoryReplayGuard, NONCE_BYTES};
