//! Crypto adapters for eagate's domain ports.
//!
//! - [`Argon2Hasher`]: argon2id password hashing (PHC strings, rehash
//!   detection), run on the blocking pool behind a concurrency bound.
//! - [`JwtAccessTokens`]: EdDSA (Ed25519) access tokens with a pinned
//!   algorithm, issuer and audience.
//! - [`OpaqueRefreshTokens`]: 256-bit random refresh tokens, stored as
//!   SHA-256 digests.

mod jwt;
mod password;
mod random;
mod refresh;

pub use jwt::{Ed25519Keys, JwtAccessTokens, JwtConfig, KeyError};
pub use password::{Argon2Hasher, Argon2Params, HasherError};
pub use random::random_bytes;
pub use refresh::OpaqueRefreshTokens;
