//! Port contract suites: generic over the port, run against the fakes in
//! this crate and against the real adapters in theirs. One module per
//! port; shared fixtures in `fixtures`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod audit;
mod device;
mod fixtures;
mod nonce;
mod ratelimit;
mod session;
mod signal;

pub use account::account_repository_contract;
pub use audit::audit_log_contract;
pub use device::device_repository_contract;
pub use fixtures::{audit_event, new_user};
pub use nonce::nonce_store_contract;
pub use ratelimit::rate_limiter_contract;
pub use session::session_repository_contract;
pub use signal::signal_repository_contract;
