//! The composition of ports and adapters the handlers use.

use eagate_crypto::{Argon2Hasher, JwtAccessTokens, OpaqueRefreshTokens, RandomDeviceSecrets, XChaChaSealer};
use eagate_domain::account::AccountService;
use eagate_domain::device::DeviceService;
use eagate_domain::{SystemClock, UuidV7Generator};
use eagate_postgres::{PgAccountRepository, PgAuditLog, PgDeviceRepository, PgSessionRepository};

/// The account use cases, monomorphised over the production adapters.
pub type Accounts = AccountService<
    PgAccountRepository,
    PgSessionRepository,
    Argon2Hasher,
    JwtAccessTokens,
    OpaqueRefreshTokens,
    PgAuditLog,
    SystemClock,
    UuidV7Generator,
>;

/// The device use cases, monomorphised over the production adapters.
pub type Devices =
    DeviceService<PgDeviceRepository, RandomDeviceSecrets, XChaChaSealer, SystemClock, UuidV7Generator>;

/// Shared, immutable application state (cheap to clone behind `web::Data`).
pub struct AppState {
    pub accounts: Accounts,
    pub devices: Devices,
    /// The public JWKS document for access-token verifiers.
    pub jwks: serde_json::Value,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
