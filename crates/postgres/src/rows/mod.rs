//! Diesel row types. They never leave this crate: repositories convert them
//! to and from domain types.

mod account;

pub(crate) use account::*;
