//! The invariants behind eagate's fuzz targets, one module per target.
//!
//! Each module has an `Input` built by `arbitrary` from the fuzzer's bytes
//! and a `check` that panics when an invariant breaks: it does not only
//! call the code under test, it compares the answer with a model of the
//! documented rule, re-serialises what was accepted and parses it again,
//! and mutates what was signed to prove the mutation is refused.
//!
//! `fuzz/fuzz_targets/*.rs` wrap each `check` for libFuzzer (`just fuzz`);
//! `tests/smoke.rs` runs each over its committed seeds and generated
//! inputs without libFuzzer, as part of `cargo test`.

// This crate's job is to panic when an invariant breaks.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[cfg(feature = "server")]
pub mod cursor_query;
#[cfg(feature = "server")]
pub mod json_bodies;
pub mod jwt;
pub mod signed_request;
