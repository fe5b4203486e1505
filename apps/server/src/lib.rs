//! eagate's HTTP server: the composition root. It wires the domain's use
//! cases to the PostgreSQL and crypto adapters and exposes them over
//! actix-web. Configuration, telemetry, routing, extractors and the mapping
//! of domain errors to RFC 9457 problems live here; business rules do not.

pub mod config;
mod context;
mod errors;
mod extract;
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod keys;
pub mod metrics;
pub mod openapi;
pub mod problem;
mod protect;
pub mod routes;
pub mod startup;
mod state;
pub mod telemetry;

pub use startup::{Application, StartupError};
