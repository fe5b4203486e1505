//! In-process adapters, for a server running as a single instance.
//!
//! [`InMemoryNonceStore`] is the default replay store: bounded memory,
//! expiring entries, and exactly-once semantics under concurrency. Several
//! instances behind a load balancer must share state instead: use the Redis
//! adapter (`eagate-redis`).

mod nonce;

pub use nonce::InMemoryNonceStore;
