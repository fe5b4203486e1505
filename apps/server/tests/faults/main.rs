//! Fault injection: the real `eagate` binary on a PostgreSQL and a Redis
//! that each test starts, owns and breaks (stops, kills, freezes,
//! terminates backends, locks tables; `kill -9` of the server) — never the
//! machine's shared servers. Each test asserts what clients were told and
//! what is left in the database. docs/operations.md ("What failures look
//! like") reports what they measure.
//!
//! Needs the PostgreSQL server binaries (`initdb`, `pg_ctl`) and
//! `redis-server`; as root, PostgreSQL runs as the `postgres` system user.
//! `just faults` runs only these; `TEST_LOG=1` shows the servers' logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod change_feed;
mod crash;
mod load;
mod pool_exhaustion;
mod postgres_outage;
mod redis_outage;
mod support;
