//! What the device use cases need from the outside world.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::{InsertDeviceError, OpenSecretError, UpdateDeviceError};
use super::model::{
    Device, DeviceCredentials, DeviceId, DeviceName, DeviceSecret, DeviceStatus, NewDevice, SealedSecret,
    SecretFingerprint, SecretRotation, StoredSecrets,
};
use crate::account::UserId;
use crate::activity::DeviceActivity;
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};
use crate::ratelimit::{RateDecision, RateLimit};

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
    /// revoked devices too). One indexed read (cached in front: see
    /// [`crate::cache`]).
    fn find_credentials(
        &self,
        id: DeviceId,
    ) -> impl Future<Output = Result<Option<DeviceCredentials>, UnexpectedError>> + Send;

    /// Writes a batch of coalesced activity: `last_seen_at` and
    /// `last_poll_at` only ever move forward (instances flushing in any
    /// order agree), and a heartbeat replaces the stored one only if it is
    /// newer. Devices that no longer exist are skipped. The `delivered`
    /// part is the signal repository's (`SignalRepository::mark_delivered`).
    fn record_activity(
        &self,
        batch: &[(DeviceId, DeviceActivity)],
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

/// What admitting an authenticated device request must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// Requests signed more than this far from the server's clock are
    /// refused before they get here, so a nonce needs remembering only
    /// until its request's timestamp is this old.
    pub window: chrono::Duration,
    /// Requests per device.
    pub rate: RateLimit,
}

impl AdmissionPolicy {
    /// The most nonces one device can legitimately have in memory: every
    /// request of two rate windows' worth of bursts across the whole
    /// (two-sided) timestamp window. Stores may refuse a device beyond it.
    pub fn nonce_quota(&self) -> u64 {
        let window_ms = u64::try_from((self.window * 2).num_milliseconds()).unwrap_or(0);
        let rate_ms = u64::try_from(self.rate.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        (window_ms / rate_ms + 1)
            .saturating_mul(u64::from(self.rate.limit))
            .saturating_mul(2)
    }
}

/// The verdict on an authenticated request's nonce and rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New nonce, within the device's rate: serve it.
    Admitted,
    /// The nonce was used before.
    Replayed,
    /// The request was signed before the guard started remembering nonces
    /// (a restart lost them): it could be a replay, so it is refused.
    PredatesMemory { since: DateTime<Utc> },
    /// The nonce is recorded (a retry needs a new one), but the device is
    /// over its rate.
    Throttled(RateDecision),
}

/// Remembers nonces so a captured request cannot be replayed, and paces
/// each device: one call per request, so a shared store (Redis) costs one
/// round trip.
pub trait ReplayGuard: Send + Sync + 'static {
    /// Records `nonce` for `device` until `signed_at + policy.window`,
    /// atomically (of two concurrent calls with one nonce exactly one is
    /// admitted), then counts the request against `policy.rate` (a replay
    /// is not counted). Fails — and the request must be refused — when the
    /// store is unreachable or out of room; one device exceeding its
    /// [`AdmissionPolicy::nonce_quota`] is throttled, never the others.
    /// `owner` is the device's account: a store with a fixed capacity may
    /// throttle an account holding more than its fair share of it, so that
    /// no account can fill it for the others.
    fn admit(
        &self,
        device: DeviceId,
        owner: UserId,
        nonce: &str,
        signed_at: DateTime<Utc>,
        policy: &AdmissionPolicy,
    ) -> impl Future<Output = Result<Admission, UnexpectedError>> + Send;
}
