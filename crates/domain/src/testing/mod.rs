//! In-memory fakes of every port and the port contract suites.
//!
//! Enabled for this crate's unit tests and, through the `testing` feature,
//! for adapter tests: the same contract suite runs against a fake here and
//! against the real adapter there, so the two cannot drift.

pub mod contracts;
mod fakes;

pub use fakes::*;
