//! Crypto adapters for eagate's domain ports.
//!
//! - [`Argon2Hasher`]: argon2id password hashing (PHC strings, rehash
//!   detection), run on the blocking pool behind a concurrency bound.
//! - [`JwtAccessTokens`]: EdDSA (Ed25519) access tokens with a pinned
//!   algorithm, issuer and audience.
//! - [`OpaqueRefreshTokens`]: 256-bit random refresh tokens, stored as
//!   SHA-256 digests.
//! - [`RandomDeviceSecrets`]: `eags_…` device secrets and their fingerprints.
//! - [`XChaChaSealer`]: device secrets sealed at rest with
//!   XChaCha20-Poly1305 under a [`MasterKeyring`].
//! - [`HmacVerifier`]: protocol-v1 signature checks with cached keys.
//! - [`HmacApiKeys`]: `eag_live_…` API keys, stored as HMAC-SHA256 under a
//!   server secret.

mod api_keys;
mod device_secret;
mod jwt;
mod password;
mod random;
mod refresh;
mod sealer;
mod verifier;

pub use api_keys::{ApiKeySecretTooShort, HmacApiKeys, is_well_formed_api_key};
pub use device_secret::{RandomDeviceSecrets, secret_fingerprint};
pub use jwt::{Ed25519Keys, JwtAccessTokens, JwtConfig, KeyError};
pub use password::{Argon2Hasher, Argon2Params, HasherError};
pub use random::random_bytes;
pub use refresh::OpaqueRefreshTokens;
pub use sealer::{KeyringError, MasterKeyring, XChaChaSealer};
pub use verifier::HmacVerifier;
