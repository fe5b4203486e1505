//! EA devices: registration with a secret shown once, listing, renaming,
//! secret rotation with a grace period, and permanent revocation.

pub mod auth;
pub mod error;
pub mod model;
pub mod ports;
pub mod service;

pub use auth::*;
pub use error::*;
pub use model::*;
pub use ports::*;
pub use service::{DevicePolicy, DeviceService};
