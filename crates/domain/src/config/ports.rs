//! What the configuration use cases need from the outside world.

use std::future::Future;

use super::error::WriteConfigError;
use super::model::{ConfigScope, ConfigVersion, CurrentConfig, EffectiveConfig};
use crate::account::UserId;
use crate::audit::AuditEvent;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

/// Persistence of configuration documents and their history.
///
/// A scope (the account default or one device) starts at version 0 with an
/// empty document, which is never stored; each write stores the next version.
pub trait ConfigRepository: Send + Sync + 'static {
    /// The scope's current document. `None` when the scope is a device the
    /// owner does not have (revoked devices are still the owner's).
    fn current(
        &self,
        scope: ConfigScope,
    ) -> impl Future<Output = Result<Option<CurrentConfig>, UnexpectedError>> + Send;

    /// The device's effective configuration (account default, then the
    /// device's document, and its configuration revision). `None` when the
    /// owner has no such device.
    fn effective(
        &self,
        owner: UserId,
        device: DeviceId,
    ) -> impl Future<Output = Result<Option<EffectiveConfig>, UnexpectedError>> + Send;

    /// The effective configuration of each of the owner's `devices` that
    /// exists, in one read (publishing).
    fn effective_for_devices(
        &self,
        owner: UserId,
        devices: &[DeviceId],
    ) -> impl Future<Output = Result<Vec<(DeviceId, EffectiveConfig)>, UnexpectedError>> + Send;

    /// Stores `new` (whose version must be `expected + 1`) if the scope is
    /// at version `expected`, changes the configuration revision of the
    /// device (or, for the account default, of every device of the owner),
    /// and appends `audit`, in one transaction; every instance learns of
    /// the new revision on commit. `VersionMismatch` names the current
    /// version; `NotFound` when the owner has no such device.
    fn write(
        &self,
        new: &ConfigVersion,
        expected: u32,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), WriteConfigError>> + Send;

    /// The scope's stored versions, newest first. `None` when the owner has
    /// no such device.
    fn history(
        &self,
        scope: ConfigScope,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Option<Page<ConfigVersion>>, UnexpectedError>> + Send;

    /// One stored version (never version 0).
    fn version(
        &self,
        scope: ConfigScope,
        version: u32,
    ) -> impl Future<Output = Result<Option<ConfigVersion>, UnexpectedError>> + Send;
}
