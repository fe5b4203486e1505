//! The bundle use cases: the owner uploads, lists, reads and deletes
//! bundles; a device reads the bundles deployed to it, a range at a time.

use std::collections::BTreeMap;

use tracing::instrument;

use super::error::*;
use super::model::*;
use super::ports::*;
use crate::account::UserId;
use crate::audit::{AuditAction, AuditEvent, ClientInfo};
use crate::clock::Clock;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::id::IdGenerator;
use crate::pagination::{Page, PageRequest};
use crate::validation::{FieldError, ValidationErrors};

/// Limits on bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundlePolicy {
    /// The largest file accepted, in bytes (`EAGATE_BUNDLE_MAX_BYTES`).
    pub max_bytes: u64,
    /// The most one owner's bundles may take, completed and being uploaded
    /// (`EAGATE_BUNDLE_STORAGE_MAX_BYTES_PER_ACCOUNT`).
    pub max_stored_bytes: u64,
}

impl Default for BundlePolicy {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_stored_bytes: DEFAULT_MAX_STORED_BYTES,
        }
    }
}

/// An upload in progress: the bundle being written and how many bytes
/// were stored so far.
#[derive(Debug)]
pub struct Upload {
    bundle: NewBundle,
    written: u64,
    max: u64,
}

impl Upload {
    pub fn id(&self) -> BundleId {
        self.bundle.id
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

/// One byte range of a file, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No `Range`, or one the server ignores (several ranges, another
    /// unit, bad syntax): the whole file, 200.
    Full,
    /// One satisfiable range: 206.
    Partial(ByteRange),
    /// A single range that starts at or beyond the end: 416.
    Unsatisfiable,
}

/// Interprets a `Range` header (RFC 9110 14.2) for a file of `size`
/// bytes: `bytes=first-last`, `bytes=first-` or `bytes=-suffix`. Only a
/// single range is served; anything else is answered with the whole file,
/// as RFC 9110 allows.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if size == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial(ByteRange {
                first: size.saturating_sub(n),
                last: size - 1,
            }),
        },
        (first, last) => {
            let Some(first) = number(first) else {
                return RangeAnswer::Full;
            };
            let last = if last.is_empty() {
                Some(u64::MAX)
            } else {
                number(last)
            };
            match last {
                None => RangeAnswer::Full,
                Some(last) if last < first => RangeAnswer::Full,
                Some(_) if first >= size => RangeAnswer::Unsatisfiable,
                Some(last) => RangeAnswer::Partial(ByteRange {
                    first,
                    last: last.min(size - 1),
                }),
            }
        }
    }
}

/// Bundles for owners and devices.
#[derive(Debug, Clone)]
pub struct BundleService<S, C, I> {
    store: S,
    clock: C,
    ids: I,
    policy: BundlePolicy,
}

/// Validates an upload's metadata (the query of `POST /api/v1/bundles`),
/// collecting every error: what [`BundleService::begin_upload`] checks
/// before anything else.
pub fn parse_bundle_meta(
    name: Option<&str>,
    version: Option<&str>,
    notes: Option<&str>,
) -> Result<(BundleName, BundleVersion, ReleaseNotes), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let name = match name {
        None => {
            errors.push(FieldError::new("name", "required", "is required"));
            None
        }
        Some(n) => errors.collect(BundleName::parse(n)),
    };
    let version = match version {
        None => {
            errors.push(FieldError::new("version", "required", "is required"));
            None
        }
        Some(v) => errors.collect(BundleVersion::parse(v)),
    };
    let notes = errors.collect(ReleaseNotes::parse(notes.unwrap_or("")));
    match (name, version, notes) {
        (Some(name), Some(version), Some(notes)) => Ok((name, version, notes)),
        _ => Err(errors),
    }
}

impl<S, C, I> BundleService<S, C, I>
where
    S: BundleStore,
    C: Clock,
    I: IdGenerator,
{
    pub fn new(store: S, clock: C, ids: I, policy: BundlePolicy) -> Self {
        Self {
            store,
            clock,
            ids,
            policy,
        }
    }

    pub fn policy(&self) -> BundlePolicy {
        self.policy
    }

    /// Validates the metadata (and a declared length against the limit)
    /// and reserves the name and version.
    #[instrument(skip_all, fields(user_id = %owner))]
    pub async fn begin_upload(
        &self,
        owner: UserId,
        name: Option<&str>,
        version: Option<&str>,
        notes: Option<&str>,
        declared_len: Option<u64>,
    ) -> Result<Upload, UploadError> {
        let (meta, mut errors) = match parse_bundle_meta(name, version, notes) {
            Ok(meta) => (Some(meta), ValidationErrors::new()),
            Err(errors) => (None, errors),
        };
        if declared_len == Some(0) {
            errors.push(empty_file());
        }
        let (Some((name, version, notes)), true) = (meta, errors.is_empty()) else {
            return Err(UploadError::Invalid(errors));
        };
        if declared_len.is_some_and(|n| n > self.policy.max_bytes) {
            return Err(UploadError::TooLarge {
                max: self.policy.max_bytes,
            });
        }
        // A declared length is checked before a byte is read; without one,
        // the file has at least one byte.
        self.check_storage(owner, declared_len.unwrap_or(1), 0).await?;
        let bundle = NewBundle {
            id: BundleId::from_uuid(self.ids.new_id()),
            owner,
            name,
            version,
            notes,
            created_at: self.clock.now(),
        };
        self.store.begin(&bundle).await.map_err(|e| match e {
            BeginUploadError::VersionTaken => UploadError::VersionTaken,
            BeginUploadError::Unexpected(e) => UploadError::Unexpected(e),
        })?;
        Ok(Upload {
            bundle,
            written: 0,
            max: self.policy.max_bytes,
        })
    }

    /// Stores the next chunk. Past the size limit nothing more is stored:
    /// the caller abandons the upload.
    pub async fn append(&self, upload: &mut Upload, data: &[u8]) -> Result<(), UploadError> {
        if data.is_empty() {
            return Ok(());
        }
        let after = upload.written.saturating_add(data.len() as u64);
        if after > upload.max {
            return Err(UploadError::TooLarge { max: upload.max });
        }
        // Counted again for every chunk: other uploads of the owner's may
        // be storing at the same time.
        self.check_storage(upload.bundle.owner, data.len() as u64, upload.written)
            .await?;
        self.store.append(upload.bundle.id, upload.written, data).await?;
        upload.written = after;
        Ok(())
    }

    /// Completes the upload with the digest the caller computed while the
    /// bytes streamed through. Audited.
    #[instrument(skip_all, fields(bundle_id = %upload.bundle.id))]
    pub async fn complete(
        &self,
        upload: Upload,
        sha256: &Sha256Hex,
        client: &ClientInfo,
    ) -> Result<Bundle, UploadError> {
        if upload.written == 0 {
            self.store.abandon(upload.bundle.id).await?;
            return Err(UploadError::Invalid(empty_file().into()));
        }
        let b = &upload.bundle;
        let audit = AuditEvent {
            id: self.ids.new_id(),
            occurred_at: self.clock.now(),
            action: AuditAction::BundleUploaded,
            user_id: Some(b.owner),
            device_id: None,
            client: client.clone(),
            details: BTreeMap::from([
                ("bundle_id".to_owned(), b.id.to_string()),
                ("name".to_owned(), b.name.as_str().to_owned()),
                ("version".to_owned(), b.version.as_str().to_owned()),
                ("size".to_owned(), upload.written.to_string()),
                ("sha256".to_owned(), sha256.as_str().to_owned()),
            ]),
        };
        match self.store.complete(b.id, upload.written, sha256, &audit).await {
            Ok(bundle) => Ok(bundle),
            Err(e) => {
                // Neither half-kept nor counted against the owner's storage
                // until the sweep: a failed completion drops the upload.
                if let Err(cleanup) = self.store.abandon(b.id).await {
                    tracing::warn!(error = %cleanup, "could not drop an upload whose completion failed");
                }
                Err(e.into())
            }
        }
    }

    /// `StorageFull` when `more` bytes would take the owner's stored bundles
    /// past the limit. `own` bytes of the stored ones are the refused
    /// upload's own, dropped with it: the answer does not count them.
    async fn check_storage(&self, owner: UserId, more: u64, own: u64) -> Result<(), UploadError> {
        let stored = self.store.stored_bytes(owner).await?;
        if stored.saturating_add(more) > self.policy.max_stored_bytes {
            return Err(UploadError::StorageFull {
                max: self.policy.max_stored_bytes,
                stored: stored.saturating_sub(own),
            });
        }
        Ok(())
    }

    /// Drops the uploads that were begun long ago
    /// ([`STALE_UPLOAD`]) and never completed, every owner's: what the
    /// periodic sweep calls, so an upload whose client vanished or whose
    /// server died does not keep its chunks until the same name and version
    /// is uploaded again. Returns how many were dropped.
    pub async fn drop_stale_uploads(&self) -> Result<u64, UnexpectedError> {
        self.store.drop_stale_uploads(self.clock.now()).await
    }

    /// Drops a failed upload.
    pub async fn abandon(&self, upload: Upload) -> Result<(), UploadError> {
        Ok(self.store.abandon(upload.bundle.id).await?)
    }

    pub async fn get(&self, owner: UserId, id: BundleId) -> Result<Bundle, BundleError> {
        self.store.get(owner, id).await?.ok_or(BundleError::NotFound)
    }

    pub async fn list(
        &self,
        owner: UserId,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<Bundle>, BundleError> {
        let page = PageRequest::parse(limit, cursor).map_err(|errors| {
            let mut all = ValidationErrors::new();
            errors.into_iter().for_each(|e| all.push(e));
            BundleError::Invalid(all)
        })?;
        Ok(self.store.list(owner, &page).await?)
    }

    /// Deletes a bundle no deployment uses. Audited.
    #[instrument(skip_all, fields(user_id = %owner, bundle_id = %id))]
    pub async fn delete(&self, owner: UserId, id: BundleId, client: &ClientInfo) -> Result<(), BundleError> {
        let audit = AuditEvent {
            id: self.ids.new_id(),
            occurred_at: self.clock.now(),
            action: AuditAction::BundleDeleted,
            user_id: Some(owner),
            device_id: None,
            client: client.clone(),
            details: BTreeMap::from([("bundle_id".to_owned(), id.to_string())]),
        };
        self.store.delete(owner, id, &audit).await.map_err(|e| match e {
            DeleteBundleError::NotFound => BundleError::NotFound,
            DeleteBundleError::InUse => BundleError::InUse,
            DeleteBundleError::Unexpected(e) => BundleError::Unexpected(e),
        })
    }

    /// A bundle the device may download: one a deployment that reached it
    /// ships. Anything else is `NotFound`.
    pub async fn for_device(&self, device: DeviceId, id: BundleId) -> Result<Bundle, BundleError> {
        self.store
            .deployed_to(device, id)
            .await?
            .ok_or(BundleError::NotFound)
    }

    /// Up to `max` bytes of the bundle's file from `offset`.
    pub async fn read(&self, id: BundleId, offset: u64, max: u32) -> Result<Vec<u8>, BundleError> {
        Ok(self.store.read(id, offset, max).await?)
    }
}

fn empty_file() -> FieldError {
    FieldError::new("(body)", "empty", "the bundle file must not be empty")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn partial(first: u64, last: u64) -> RangeAnswer {
        RangeAnswer::Partial(ByteRange { first, last })
    }

    #[test]
    fn single_byte_ranges_are_served() {
        assert_eq!(parse_range(None, 10), RangeAnswer::Full);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), partial(0, 3));
        assert_eq!(parse_range(Some("bytes=4-"), 10), partial(4, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), partial(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), partial(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), partial(0, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn other_ranges_are_ignored() {
        for ignored in [
            "items=0-3",
            "bytes=0-1,4-5",
            "bytes=3-1",
            "bytes=a-b",
            "bytes=",
            "bytes=-",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(parse_range(Some(ignored), 10), RangeAnswer::Full, "{ignored}");
        }
    }

    proptest! {
        /// A served range lies inside the file and is never empty.
        #[test]
        fn a_served_range_lies_inside_the_file(size in 0u64..10_000, a in 0u64..12_000, b in 0u64..12_000, kind in 0u8..3) {
            let header = match kind {
                0 => format!("bytes={a}-{b}"),
                1 => format!("bytes={a}-"),
                _ => format!("bytes=-{b}"),
            };
            match parse_range(Some(&header), size) {
                RangeAnswer::Partial(r) => {
                    prop_assert!(r.first <= r.last && r.last < size);
                }
                RangeAnswer::Unsatisfiable => prop_assert!(size == 0 || a >= size || (kind == 2 && b == 0)),
                RangeAnswer::Full => prop_assert!(kind == 0 && b < a),
            }
        }
    }
}
