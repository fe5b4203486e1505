//! Bundle use-case outcomes.

use crate::error::UnexpectedError;
use crate::validation::ValidationErrors;

/// Uploading a bundle.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("invalid bundle: {0}")]
    Invalid(ValidationErrors),
    /// The owner already has (or is uploading) this name and version.
    #[error("this bundle name and version already exist")]
    VersionTaken,
    /// The file is larger than the configured maximum.
    #[error("the file exceeds {max} bytes")]
    TooLarge { max: u64 },
    /// The upload would take the owner's stored bundles (completed and
    /// being uploaded) past the configured total.
    #[error("the owner's bundles would exceed {max} bytes")]
    StorageFull { max: u64, stored: u64 },
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// Reading, listing and deleting the owner's bundles.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// No such bundle of the owner's (another owner's answers alike).
    #[error("no such bundle")]
    NotFound,
    /// A deployment uses the bundle.
    #[error("a deployment uses this bundle")]
    InUse,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::bundle::BundleStore::begin`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum BeginUploadError {
    #[error("this bundle name and version already exist")]
    VersionTaken,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::bundle::BundleStore::delete`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum DeleteBundleError {
    #[error("no such bundle")]
    NotFound,
    #[error("a deployment uses this bundle")]
    InUse,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}
