//! What the device use cases need from the outside world.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::{InsertDeviceError, OpenSecretError, UpdateDeviceError};
use super::model::{
    Device, DeviceCredentials, DeviceId, DeviceName, DeviceSecret, DeviceStatus, Heartbeat, NewDevice,
    SealedSecret, SecretFingerprint, SecretRotation, StoredSecrets,
};
use crate::account::UserId;
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

/// What a device did, for its activity timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Any authenticated request: `last_seen_at`.
    Seen,
    /// A poll: `last_poll_at`.
    Poll,
    /// An acknowledgement: `last_ack_at`.
    Ack,
}

/// How a revocation went.
#[derive(Debug, Clone, PartialEq)]
pub enum Revocation {
    /// Revoked now.
    Revoked(Device),
    /// It already was; nothing changed and nothing was recorded.
    AlreadyRevoked(Device),
}

/// Persistence of devices. Every change stores its audit event in the same
/// transaction, so the trail cannot miss a committed change. Methods taking
/// an `owner` treat another owner's device as absent.
pub trait DeviceRepository: Send + Sync + 'static {
    /// Stores a device unless its name (case-insensitively) is taken among
    /// the owner's active devices (`NameTaken`) or the owner already has
    /// `max_active` active devices (`LimitReached`). The check and the insert
    /// are atomic.
    fn insert(
        &self,
        device: &NewDevice,
        max_active: u32,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<Device, InsertDeviceError>> + Send;

    fn find(
        &self,
        owner: UserId,
        id: DeviceId,
    ) -> impl Future<Output = Result<Option<Device>, UnexpectedError>> + Send;

    /// The owner's devices, newest first, optionally only one status.
    fn list(
        &self,
        owner: UserId,
        status: Option<DeviceStatus>,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Device>, UnexpectedError>> + Send;

    /// Renames an active device. `NotFound`, `Revoked` or `NameTaken`.
    fn rename(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &DeviceName,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<Device, UpdateDeviceError>> + Send;

    /// Replaces an active device's secret; the replaced one becomes the
    /// previous secret until `rotation.previous_valid_until` (or is dropped
    /// when that is `None`). `NotFound` or `Revoked`.
    fn rotate_secret(
        &self,
        owner: UserId,
        id: DeviceId,
        rotation: &SecretRotation,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<Device, UpdateDeviceError>> + Send;

    /// Revokes a device for good, dropping its secrets; the audit event is
    /// stored only when the device was active. `NotFound` only.
    fn revoke(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<Revocation, UpdateDeviceError>> + Send;

    /// What authenticating a request from the device needs (any owner;
    /// revoked devices too). The device hot path: one indexed read.
    fn find_credentials(
        &self,
        id: DeviceId,
    ) -> impl Future<Output = Result<Option<DeviceCredentials>, UnexpectedError>> + Send;

    /// Sets the activity's time (`last_seen_at`, `last_poll_at` or
    /// `last_ack_at`) to `at` unless it is already within `min_interval` of
    /// `at` (so concurrent instances coalesce their writes too).
    fn record_activity(
        &self,
        id: DeviceId,
        activity: Activity,
        at: DateTime<Utc>,
        min_interval: chrono::Duration,
    ) -> impl Future<Output = Result<(), UnexpectedError>> + Send;

    /// Stores the device's latest heartbeat, replacing the previous one.
    fn record_heartbeat(
        &self,
        id: DeviceId,
        heartbeat: &Heartbeat,
    ) -> impl Future<Output = Result<(), UnexpectedError>> + Send;

    /// Stored secrets of every device, in id order after `after`, for
    /// re-sealing under a new master key.
    fn stored_secrets(
        &self,
        after: Option<DeviceId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredSecrets>, UnexpectedError>> + Send;

    /// Replaces a device's sealed secrets with re-sealed copies of the same
    /// secrets, only if they are still `expected` (a concurrent rotation
    /// wins). Returns whether it replaced them.
    fn reseal(
        &self,
        expected: &StoredSecrets,
        current: &SealedSecret,
        previous: Option<&SealedSecret>,
    ) -> impl Future<Output = Result<bool, UnexpectedError>> + Send;
}

/// Creates device secrets and their fingerprints.
pub trait DeviceSecretFactory: Send + Sync + 'static {
    /// A new secret with 256 bits from the OS CSPRNG.
    fn generate(&self) -> Result<DeviceSecret, UnexpectedError>;

    fn fingerprint(&self, secret: &DeviceSecret) -> SecretFingerprint;
}

/// Encrypts device secrets under the server's master keys, bound to their
/// device, so a copy of the database alone reveals nothing usable.
pub trait SecretSealer: Send + Sync + 'static {
    /// Seals under the current master key.
    fn seal(&self, device: DeviceId, secret: &DeviceSecret) -> Result<SealedSecret, UnexpectedError>;

    /// Opens a secret sealed for `device` under any key in the keyring.
    fn open(&self, device: DeviceId, sealed: &SealedSecret) -> Result<DeviceSecret, OpenSecretError>;

    /// The id of the key `seal` uses.
    fn current_key_id(&self) -> &str;
}

/// Checks HMAC signatures with a device's sealed secret.
pub trait SignatureVerifier: Send + Sync + 'static {
    /// Whether `signature` is HMAC-SHA256 over `message` keyed with the
    /// secret sealed in `sealed` for `device`, compared in constant time.
    /// Fails when the secret cannot be opened.
    fn verify(
        &self,
        device: DeviceId,
        sealed: &SealedSecret,
        message: &str,
        signature: &[u8; 32],
    ) -> Result<bool, UnexpectedError>;
}

/// Remembers nonces so a captured request cannot be replayed.
pub trait NonceStore: Send + Sync + 'static {
    /// Records `nonce` for `device` for `ttl`, atomically: returns `true`
    /// if it was new, `false` if it was already recorded and unexpired. Of
    /// two concurrent calls with the same nonce exactly one gets `true`.
    /// Fails (and the request must be refused) when the store is
    /// unreachable or full.
    fn check_and_record(
        &self,
        device: DeviceId,
        nonce: &str,
        ttl: chrono::Duration,
    ) -> impl Future<Output = Result<bool, UnexpectedError>> + Send;
}
