//! What the API-key use cases need from the outside world.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::{CreateApiKeyStoreError, RotateApiKeyStoreError};
use super::model::{ApiKey, ApiKeyHash, ApiKeyId, GeneratedApiKey, NewApiKey};
use crate::account::UserId;
use crate::audit::AuditEvent;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

/// Persistence of API keys. Keys are stored with the keyed hash of their
/// secret, never the secret.
pub trait ApiKeyRepository: Send + Sync + 'static {
    /// Stores the key and appends `audit`, in one transaction.
    /// `NameTaken` when the owner has an active key (not revoked) with the
    /// same name, compared case-insensitively.
    fn create(
        &self,
        key: &NewApiKey,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), CreateApiKeyStoreError>> + Send;

    /// The owner's keys (revoked ones too), newest first.
    fn list(
        &self,
        owner: UserId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<ApiKey>, UnexpectedError>> + Send;

    /// The key whose secret has this hash — revoked and expired ones too,
    /// so the caller can tell why a key is refused. Read from the store on
    /// every call (never a stale copy): revocation takes effect at once.
    fn find_by_hash(
        &self,
        hash: &ApiKeyHash,
    ) -> impl Future<Output = Result<Option<ApiKey>, UnexpectedError>> + Send;

    /// Marks the owner's key revoked at `at` (keeping the first revocation
    /// time when already revoked) and appends `audit` when it changed
    /// anything; returns the key. `None` when the owner has no such key.
    fn revoke(
        &self,
        owner: UserId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<Option<ApiKey>, UnexpectedError>> + Send;

    /// Replaces the active key's secret (its hash and shown prefix) and
    /// appends `audit`, in one transaction: the old secret stops working
    /// at once. `NotFound` when the owner has no such key, `Revoked` when
    /// it is revoked.
    fn rotate(
        &self,
        owner: UserId,
        id: ApiKeyId,
        new: &GeneratedApiKey,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<ApiKey, RotateApiKeyStoreError>> + Send;

    /// Writes coalesced last-use times; a time never moves backwards.
    /// Unknown keys are skipped.
    fn record_last_used(
        &self,
        batch: &[(ApiKeyId, DateTime<Utc>)],
    ) -> impl Future<Output = Result<(), UnexpectedError>> + Send;
}

/// Makes API keys and computes the keyed hash of a presented one.
pub trait ApiKeyFactory: Send + Sync + 'static {
    /// A new random key (`eag_live_…`) and its hash.
    fn generate(&self) -> Result<GeneratedApiKey, UnexpectedError>;

    /// The hash of a presented key; `None` when it is not in the key
    /// format (prefix, length, alphabet, checksum), so such tokens cost no
    /// database read.
    fn hash(&self, presented: &str) -> Option<ApiKeyHash>;
}
