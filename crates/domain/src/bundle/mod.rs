//! EA bundles: versioned builds of an owner's EA, stored in chunks behind
//! [`BundleStore`] and downloaded by the devices a deployment targets.

pub mod error;
pub mod model;
pub mod ports;
pub mod service;

pub use error::*;
pub use model::*;
pub use ports::*;
pub use service::{
    BundlePolicy, BundleService, ByteRange, RangeAnswer, Upload, parse_bundle_meta, parse_range,
};
