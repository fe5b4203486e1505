//! The one in-memory "database" shared by the repository fakes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::{
    FakeWakeups, FixedClock, InMemoryAccountRepository, InMemoryAdminRepository, InMemoryApiKeyRepository,
    InMemoryAuditLog, InMemoryConfigRepository, InMemoryDeviceRepository, InMemorySessionRepository,
    InMemorySignalRepository,
};
use crate::access::{ApiKey, ApiKeyHash, ApiKeyId};
use crate::account::*;
use crate::audit::AuditEvent;
use crate::config::{ConfigScope, ConfigVersion};
use crate::device::*;
use crate::signal::*;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone)]
pub(super) struct DeviceRecord {
    pub(super) device: Device,
    pub(super) current: SealedSecret,
    pub(super) previous: Option<(SealedSecret, DateTime<Utc>)>,
    pub(super) config_revision: i64,
    pub(super) deployment_revision: i64,
}

#[derive(Debug, Clone)]
pub(super) struct SignalRecord {
    pub(super) signal: Signal,
    pub(super) deliveries: Vec<Delivery>,
    pub(super) idempotency: Option<(String, String)>,
}

/// A bundle: its metadata, its file, and (once completed) size and digest.
#[derive(Debug, Clone)]
pub(super) struct BundleRecord {
    pub(super) new: crate::bundle::NewBundle,
    pub(super) done: Option<(u64, crate::bundle::Sha256Hex)>,
    pub(super) data: Vec<u8>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) bundles: HashMap<crate::bundle::BundleId, BundleRecord>,
    pub(super) labels: HashMap<DeviceId, Vec<crate::deployment::Label>>,
    /// Stored without the devices' EA versions (read from `devices`).
    pub(super) deployments: HashMap<crate::deployment::DeploymentId, crate::deployment::Deployment>,
    /// When the sweep last claimed each deployment.
    pub(super) swept: HashMap<crate::deployment::DeploymentId, DateTime<Utc>>,
    pub(super) signals: Vec<SignalRecord>,
    /// Per device, the signals published for it, in order (wake-ups).
    pub(super) published: HashMap<DeviceId, Vec<Signal>>,
    /// Per device, the latest long-poll subscription (older ones are
    /// superseded).
    pub(super) subscriptions: HashMap<DeviceId, u64>,
    pub(super) users: HashMap<UserId, (User, PasswordHash)>,
    pub(super) sessions: HashMap<SessionId, Session>,
    pub(super) refresh_tokens: HashMap<RefreshTokenHash, (NewRefreshToken, Option<DateTime<Utc>>)>,
    pub(super) devices: HashMap<DeviceId, DeviceRecord>,
    pub(super) audit: Vec<AuditEvent>,
    /// Per scope, the stored configuration versions, oldest first.
    pub(super) configs: HashMap<ConfigScope, Vec<ConfigVersion>>,
    pub(super) api_keys: HashMap<ApiKeyId, (ApiKey, ApiKeyHash)>,
    /// Accounts with the administrator role.
    pub(super) admins: std::collections::HashSet<UserId>,
    /// Disabled accounts, with when.
    pub(super) disabled: HashMap<UserId, DateTime<Utc>>,
}

/// One in-memory database behind both repository fakes, so cascades and
/// cross-table updates behave as in PostgreSQL.
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore(Arc<Mutex<State>>);

impl InMemoryStore {
    pub fn accounts(&self) -> InMemoryAccountRepository {
        InMemoryAccountRepository(self.clone())
    }

    pub fn sessions(&self) -> InMemorySessionRepository {
        InMemorySessionRepository(self.clone())
    }

    pub fn devices(&self) -> InMemoryDeviceRepository {
        InMemoryDeviceRepository(self.clone())
    }

    pub fn audit(&self) -> InMemoryAuditLog {
        InMemoryAuditLog(self.clone())
    }

    pub fn configs(&self) -> InMemoryConfigRepository {
        InMemoryConfigRepository(self.clone())
    }

    pub fn bundles(&self) -> super::InMemoryBundleStore {
        super::InMemoryBundleStore(self.clone())
    }

    pub fn deployments(&self) -> super::InMemoryDeploymentRepository {
        super::InMemoryDeploymentRepository(self.clone())
    }

    pub fn admin(&self) -> InMemoryAdminRepository {
        InMemoryAdminRepository(self.clone())
    }

    pub fn api_keys(&self) -> InMemoryApiKeyRepository {
        InMemoryApiKeyRepository(self.clone())
    }

    pub fn signals(&self) -> InMemorySignalRepository {
        InMemorySignalRepository(self.clone())
    }

    /// Wake-ups that, instead of sleeping, move `clock` on by the timeout.
    pub fn wakeups(&self, clock: FixedClock) -> FakeWakeups {
        FakeWakeups::new(self.clone(), clock)
    }

    /// Every audit event recorded, oldest first.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        self.state().audit.clone()
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.0)
    }
}
