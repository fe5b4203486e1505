//! Deployments: rolling a bundle out to devices in waves, with per-device
//! status, an abort threshold and a per-device timeout.

pub mod error;
pub mod model;
pub mod ports;
pub mod service;

pub use error::*;
pub use model::*;
pub use ports::*;
pub use service::{DeploymentService, MAX_REASON, NewDeploymentInput, SweepReport, parse_report};
