//! Per-device trading configuration: versioned documents per device and an
//! account default, inherited field by field, and applied to every signal
//! delivered to the device.

pub mod adapt;
pub mod error;
pub mod model;
pub mod ports;
pub mod service;

pub use adapt::*;
pub use error::*;
pub use model::*;
pub use ports::*;
pub use service::{ConfigService, DeviceConfigAnswer, Precondition, device_etag, none_match_hits};
