//! Diesel row types. They never leave this crate: repositories convert them
//! to and from domain types.

mod account;
mod device;
mod signal;

pub(crate) use account::*;
pub(crate) use device::*;
pub(crate) use signal::*;
