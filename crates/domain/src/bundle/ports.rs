//! What the bundle use cases need from the outside world.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::{BeginUploadError, DeleteBundleError};
use super::model::{Bundle, BundleId, NewBundle, Sha256Hex};
use crate::account::UserId;
use crate::audit::AuditEvent;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

/// Where bundle files and their metadata live.
///
/// Files move in chunks, never whole: an upload is begun, appended to in
/// order and completed (or abandoned); a download reads a byte range at a
/// time. That is the shape of object storage too (multipart upload, ranged
/// GET), so an S3-style adapter fits behind the same port.
pub trait BundleStore: Send + Sync + 'static {
    /// Reserves `new.name` + `new.version` for an upload. `VersionTaken`
    /// when the owner has that name and version, complete or still being
    /// uploaded — except an upload begun more than
    /// [`STALE_UPLOAD`](crate::bundle::STALE_UPLOAD) before
    /// `new.created_at` and never completed (its server died): that one is
    /// dropped.
    fn begin(&self, new: &NewBundle) -> impl Future<Output = Result<(), BeginUploadError>> + Send;

    /// Stores `data` (not empty) at byte offset `start` of an upload in
    /// progress; chunks arrive in order, each starting where the previous
    /// one ended.
    fn append(
        &self,
        id: BundleId,
        start: u64,
        data: &[u8],
    ) -> impl Future<Output = Result<(), UnexpectedError>> + Send;

    /// Completes an upload with the file's size and digest and appends
    /// `audit`, in one transaction; the bundle is listed from then on.
    fn complete(
        &self,
        id: BundleId,
        size: u64,
        sha256: &Sha256Hex,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<Bundle, UnexpectedError>> + Send;

    /// Drops an upload in progress and whatever it stored (a no-op for a
    /// completed bundle or an unknown id).
    fn abandon(&self, id: BundleId) -> impl Future<Output = Result<(), UnexpectedError>> + Send;

    /// Drops every owner's uploads begun more than
    /// [`STALE_UPLOAD`](crate::bundle::STALE_UPLOAD) before `now` and never
    /// completed, with whatever they stored; returns how many. Completed
    /// bundles and younger uploads stay.
    fn drop_stale_uploads(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, UnexpectedError>> + Send;

    /// The bytes the owner's bundles take: the size of each completed one
    /// plus what uploads in progress stored so far.
    fn stored_bytes(&self, owner: UserId) -> impl Future<Output = Result<u64, UnexpectedError>> + Send;

    /// The owner's completed bundle.
    fn get(
        &self,
        owner: UserId,
        id: BundleId,
    ) -> impl Future<Output = Result<Option<Bundle>, UnexpectedError>> + Send;

    /// The owner's completed bundles, newest first.
    fn list(
        &self,
        owner: UserId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Bundle>, UnexpectedError>> + Send;

    /// Deletes the owner's bundle and its file, appending `audit`.
    /// `NotFound` for another owner's or an unknown bundle; `InUse` when a
    /// deployment references it.
    fn delete(
        &self,
        owner: UserId,
        id: BundleId,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<(), DeleteBundleError>> + Send;

    /// The completed bundle, if a deployment that reached `device` (its
    /// wave started) ships it.
    fn deployed_to(
        &self,
        device: DeviceId,
        id: BundleId,
    ) -> impl Future<Output = Result<Option<Bundle>, UnexpectedError>> + Send;

    /// Up to `max` bytes of a completed bundle's file from `offset`: fewer
    /// only at the end of the file, none from its size on.
    fn read(
        &self,
        id: BundleId,
        offset: u64,
        max: u32,
    ) -> impl Future<Output = Result<Vec<u8>, UnexpectedError>> + Send;
}
