//! User accounts: registration, password login, sessions with rotating
//! refresh tokens, password change and account deletion.

mod common;
pub mod error;
pub mod model;
pub mod ports;
pub mod service;

pub use error::*;
pub use model::*;
pub use ports::*;
pub use service::{AccountPolicy, AccountService};
