//! Scale-out on one machine (issue 16): two `eagate` instances behind nginx
//! on one PostgreSQL and one Redis (or a Redis Cluster), each test with
//! its own. The tests are `#[ignore]`d in `cargo test` because they need
//! nginx; `just scale-test` (scripts/scale-test.sh) installs it if missing
//! and runs them, once on a single Redis and once on a 3-master Redis
//! Cluster, printing what they measure. `TEST_LOG=1` shows the servers'
//! logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cross_instance;
mod failover;
mod operations;
mod rolling_restart;
mod stack;
#[allow(dead_code)]
#[path = "../faults/support.rs"]
mod support;
mod traffic;
