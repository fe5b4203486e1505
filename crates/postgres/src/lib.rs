//! PostgreSQL adapters for eagate's domain ports, over diesel-async with a
//! deadpool pool; the embedded migrations; and an embedded PostgreSQL server
//! for development machines without a configured database.

pub mod embedded;
mod error;
mod listener;
pub mod migrate;
pub mod pool;
mod repos;
mod rows;
pub mod schema;

pub use embedded::{EmbeddedError, EmbeddedPostgres};
pub use listener::{PgSignalWakeups, PgWakeupSubscription};
pub use migrate::{MigrationError, MigrationStatus};
pub use pool::{PgPool, PoolConfig, PoolSetupError, create_database_if_missing, create_pool};
pub use repos::{
    PgAccountRepository, PgAdminRepository, PgApiKeyRepository, PgAuditLog, PgBundleStore,
    PgConfigRepository, PgDeploymentRepository, PgDeviceRepository, PgSessionRepository, PgSignalRepository,
};
