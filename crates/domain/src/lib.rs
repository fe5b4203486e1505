//! eagate's domain: the entities, their validation, the use cases and the
//! ports (traits) the use cases need from the outside world.
//!
//! This crate is framework-free by rule: no HTTP, no SQL, no concrete crypto,
//! no async runtime. Adapters in other crates implement the ports; the server
//! crate wires them together. CI enforces the rule with `cargo tree`.

pub mod account;
pub mod clock;
pub mod error;
pub mod id;
pub mod validation;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use clock::{Clock, SystemClock};
pub use error::UnexpectedError;
pub use id::{IdGenerator, UuidV7Generator};
pub use validation::{FieldError, ValidationErrors};
