//! The Rust SDK for eagate devices.
//!
//! - Signing without any HTTP library: [`Signer`] produces the four
//!   protocol-v1 headers for a request (re-exporting the shared
//!   `eagate-protocol` rules, the same code the server verifies with).
//! - [`DeviceClient`]: an async client for the device API that signs every
//!   request with a fresh nonce and learns the server's clock offset from
//!   `clock-skew` answers, retrying once.
//!
//! ```no_run
//! # async fn demo() -> Result<(), eagate_client::ClientError> {
//! let client = eagate_client::DeviceClient::new(
//!     "https://eagate.example.com",
//!     "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70",
//!     &std::env::var("EAGATE_DEVICE_SECRET").unwrap_or_default(),
//! )?;
//! let config = client.config().await?;
//! client.heartbeat(&eagate_client::Heartbeat { ea_version: Some("1.0".into()), ..Default::default() }).await?;
//! # Ok(()) }
//! ```

mod bundle;
mod client;
mod credentials;
mod signer;

pub use bundle::{BundleInfo, DeploymentStatus, DeploymentTarget, Downloaded, StatusReceipt, partial_path};
pub use client::{
    Ack, AckReceipt, CachedConfig, ClientError, ConfigFetch, DeviceClient, DeviceConfig, Heartbeat,
    HeartbeatAck, Outcome, PollResponse, Problem, Signal, TradingConfig,
};
pub use credentials::{CredentialsError, SECRET_LEN, check_device_id, check_secret};
pub use eagate_protocol::{RequestSignature, body_sha256_hex, string_to_sign};
pub use signer::{Signer, new_nonce};
