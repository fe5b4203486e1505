//! One repository per domain port.

mod account;
mod admin;
mod api_keys;
mod audit;
mod bundle;
mod config;
mod deployment;
mod device;
mod session;
mod signal;

pub use account::PgAccountRepository;
pub use admin::PgAdminRepository;
pub use api_keys::PgApiKeyRepository;
pub use audit::PgAuditLog;
pub use bundle::PgBundleStore;
pub use config::PgConfigRepository;
pub use deployment::PgDeploymentRepository;
pub use device::PgDeviceRepository;
pub use session::PgSessionRepository;
pub use signal::PgSignalRepository;

use crate::error::DbError;
use crate::pool::{PgConn, PgPool};

pub(crate) async fn conn(pool: &PgPool) -> Result<PgConn, DbError> {
    Ok(pool.get().await?)
}
