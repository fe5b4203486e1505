//! Trading signals: owners publish, devices poll (long-polling) and
//! acknowledge. Delivery is at least once: a signal is returned by every poll
//! until the device acknowledges it, or it expires or is cancelled.

pub mod error;
pub mod model;
pub mod ports;
pub mod service;

pub use error::*;
pub use model::*;
pub use ports::*;
pub use service::{SignalPolicy, SignalService};
