//! The composition of ports and adapters the handlers use.

use std::sync::Arc;

use eagate_crypto::{
    Argon2Hasher, HmacVerifier, JwtAccessTokens, OpaqueRefreshTokens, RandomDeviceSecrets, XChaChaSealer,
};
use eagate_domain::UnexpectedError;
use eagate_domain::account::AccountService;
use eagate_domain::device::{DeviceAuthService, DeviceId, DeviceService, NonceStore};
use eagate_domain::signal::SignalService;
use eagate_domain::{SystemClock, UuidV7Generator};
use eagate_memory::InMemoryNonceStore;
use eagate_postgres::{
    PgAccountRepository, PgAuditLog, PgDeviceRepository, PgSessionRepository, PgSignalRepository,
    PgSignalWakeups,
};
use eagate_redis::RedisNonceStore;

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

/// Signal publishing and delivery, over the production adapters.
pub type Signals =
    SignalService<PgSignalRepository, PgDeviceRepository, PgSignalWakeups, SystemClock, UuidV7Generator>;

/// Signed device requests, over the production adapters.
pub type DeviceAuth = DeviceAuthService<PgDeviceRepository, HmacVerifier, ReplayStore, SystemClock>;

/// Where nonces are remembered: in process (one instance) or in Redis
/// (shared by every instance). Chosen at start-up by `EAGATE_REDIS_URL`.
#[derive(Debug, Clone)]
pub enum ReplayStore {
    Memory(Arc<InMemoryNonceStore>),
    Redis(RedisNonceStore),
}

impl NonceStore for ReplayStore {
    async fn check_and_record(
        &self,
        device: DeviceId,
        nonce: &str,
        ttl: chrono::Duration,
    ) -> Result<bool, UnexpectedError> {
        match self {
            Self::Memory(store) => store.check_and_record(device, nonce, ttl).await,
            Self::Redis(store) => store.check_and_record(device, nonce, ttl).await,
        }
    }
}

/// Values the device API reports to EAs.
#[derive(Debug, Clone, Copy)]
pub struct DeviceApiSettings {
    pub poll_interval_seconds: u64,
    pub long_poll_max_seconds: u64,
}

/// Shared, immutable application state (cheap to clone behind `web::Data`).
pub struct AppState {
    pub accounts: Accounts,
    pub devices: Devices,
    pub device_auth: DeviceAuth,
    pub signals: Signals,
    pub rate_limits: crate::protect::RateLimits,
    pub pool: eagate_postgres::PgPool,
    pub wakeups: PgSignalWakeups,
    pub redis: Option<eagate_redis::RedisConnection>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub device_api: DeviceApiSettings,
    /// The public JWKS document for access-token verifiers.
    pub jwks: serde_json::Value,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
