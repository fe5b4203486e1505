//! eagate's domain: the entities, their validation, the use cases and the
//! ports (traits) the use cases need from the outside world.
//!
//! This crate is framework-free by rule: no HTTP, no SQL, no concrete crypto,
//! no async runtime. Adapters in other crates implement the ports; the server
//! crate wires them together. CI enforces the rule with `cargo tree`.

/// Declares a `Copy` newtype over a UUID with `from_uuid`/`as_uuid`/`Display`.
macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(::uuid::Uuid);

        impl $name {
            pub const fn from_uuid(id: ::uuid::Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> ::uuid::Uuid {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

pub mod access;
pub mod account;
pub mod activity;
pub mod audit;
pub mod bundle;
pub mod cache;
pub mod clock;
pub mod config;
pub mod deployment;
pub mod device;
pub mod error;
pub mod id;
pub mod pagination;
pub mod ratelimit;
pub mod signal;
pub mod validation;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use clock::{Clock, SystemClock};
pub use error::UnexpectedError;
pub use id::{IdGenerator, UuidV7Generator};
pub use validation::{FieldError, ValidationErrors};
