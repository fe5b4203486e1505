//! eagate's load harness (`just load SCENARIO`).
//!
//! Every scenario measures eagate (release build, production mode, rate
//! limits off, a fresh database it creates and drops) and, in the same run,
//! a bare actix-web JSON handler (`eagate-load-ceiling`), and reports both
//! side by side as a table on stdout and as JSON under `target/load/`.
//!
//! - Throughput (`healthz`, `poll`, `heartbeat`, `mixed-login`): signed
//!   requests are made before the clock starts, each with a fresh nonce,
//!   and replayed by wrk (`wrk/replay.lua`), so the generator does far less
//!   work per request than the server.
//! - Fan-out (`signal-latency`, `idle-connections`) and `soak` use the
//!   Rust client in [`http`]: one TCP connection per held long-poll.
//! - `instructions` counts instructions per request with callgrind, the
//!   figure that does not move with the machine's load.
//!
//! docs/benchmarks.md lists the exact commands and the recorded results.

pub mod api;
pub mod callgrind;
pub mod context;
pub mod http;
pub mod presign;
pub mod procfs;
pub mod report;
pub mod scenarios;
pub mod servers;
pub mod stats;
pub mod wrk;
