//! The composition of ports and adapters the handlers use.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use eagate_crypto::{
    Argon2Hasher, HmacApiKeys, HmacVerifier, JwtAccessTokens, OpaqueRefreshTokens, RandomDeviceSecrets,
    XChaChaSealer,
};
use eagate_domain::UnexpectedError;
use eagate_domain::access::{AdminService, ApiKeyService};
use eagate_domain::account::{AccountService, UserId};
use eagate_domain::activity::ActivityWriter;
use eagate_domain::bundle::BundleService;
use eagate_domain::cache::{CachedAccounts, CachedDevices, CachedSignals, DeviceStateCache};
use eagate_domain::config::ConfigService;
use eagate_domain::deployment::DeploymentService;
use eagate_domain::device::{
    Admission, AdmissionPolicy, DeviceAuthService, DeviceId, DeviceService, ReplayGuard,
};
use eagate_domain::signal::SignalService;
use eagate_domain::{SystemClock, UuidV7Generator};
use eagate_memory::{InMemoryRateLimiter, InMemoryReplayGuard};
use eagate_postgres::{
    PgAccountRepository, PgAdminRepository, PgApiKeyRepository, PgAuditLog, PgBundleStore,
    PgConfigRepository, PgDeploymentRepository, PgDeviceRepository, PgSessionRepository, PgSignalRepository,
    PgSignalWakeups,
};
use eagate_redis::RedisReplayGuard;

/// The per-instance device cache (in memory, or none when disabled).
pub type SharedCache = Arc<dyn DeviceStateCache>;

/// Device persistence behind the cache.
pub type CachedDeviceRepository = CachedDevices<PgDeviceRepository, SharedCache>;

/// The account use cases, monomorphised over the production adapters.
pub type Accounts = AccountService<
    CachedAccounts<PgAccountRepository, SharedCache>,
    PgSessionRepository,
    Argon2Hasher,
    JwtAccessTokens,
    OpaqueRefreshTokens,
    PgAuditLog,
    crate::protect::Limiter,
    SystemClock,
    UuidV7Generator,
>;

/// The device use cases, monomorphised over the production adapters.
pub type Devices =
    DeviceService<CachedDeviceRepository, RandomDeviceSecrets, XChaChaSealer, SystemClock, UuidV7Generator>;

/// Signal publishing and delivery, over the production adapters.
pub type Signals = SignalService<
    CachedSignals<PgSignalRepository, SharedCache>,
    PgConfigRepository,
    PgSignalWakeups,
    SystemClock,
    UuidV7Generator,
>;

/// API keys, over the production adapters.
pub type ApiKeys = ApiKeyService<PgApiKeyRepository, HmacApiKeys, PgAuditLog, SystemClock, UuidV7Generator>;

/// Administration (roles, fleet counts), over the production adapters.
pub type Admin = AdminService<PgAdminRepository, SystemClock, UuidV7Generator>;

/// Trading configurations, over the production adapters.
pub type Configs = ConfigService<PgConfigRepository, SystemClock, UuidV7Generator>;

/// EA bundles, over the production adapters.
pub type Bundles = BundleService<PgBundleStore, SystemClock, UuidV7Generator>;

/// Deployments of bundles to devices, over the production adapters.
pub type Deployments = DeploymentService<PgDeploymentRepository, PgBundleStore, SystemClock, UuidV7Generator>;

/// Signed device requests, over the production adapters. Failed
/// authentications are counted per address in this instance's memory
/// (consulted before any other work, so it must be cheap).
pub type DeviceAuth =
    DeviceAuthService<CachedDeviceRepository, HmacVerifier, Guard, Arc<InMemoryRateLimiter>, SystemClock>;

/// Writes buffered device activity.
pub type Activity = ActivityWriter<PgDeviceRepository, PgSignalRepository>;

/// Where nonces and device rates are kept: in process (one instance) or in
/// Redis (shared by every instance). Chosen at start-up by
/// `EAGATE_REDIS_URL`.
#[derive(Debug, Clone)]
pub enum Guard {
    Memory(Arc<InMemoryReplayGuard>),
    Redis(RedisReplayGuard),
}

impl ReplayGuard for Guard {
    async fn admit(
        &self,
        device: DeviceId,
        owner: UserId,
        nonce: &str,
        signed_at: DateTime<Utc>,
        policy: &AdmissionPolicy,
    ) -> Result<Admission, UnexpectedError> {
        match self {
            Self::Memory(guard) => guard.admit(device, owner, nonce, signed_at, policy).await,
            Self::Redis(guard) => guard.admit(device, owner, nonce, signed_at, policy).await,
        }
    }
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone)]
pub enum MetricsAccess {
    /// Anyone (development).
    Open,
    /// A bearer of `EAGATE_METRICS_TOKEN`.
    Token(secrecy::SecretString),
    /// Nobody (production without a token): 404.
    Off,
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
    pub configs: Configs,
    pub bundles: Bundles,
    pub deployments: Deployments,
    pub api_keys: ApiKeys,
    pub admin: Admin,
    pub rate_limits: crate::protect::RateLimits,
    pub pool: eagate_postgres::PgPool,
    pub wakeups: PgSignalWakeups,
    pub redis: Option<eagate_redis::RedisConnection>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub metrics_access: MetricsAccess,
    pub device_api: DeviceApiSettings,
    /// The public JWKS document for access-token verifiers.
    pub jwks: serde_json::Value,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
