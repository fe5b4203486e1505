//! Device use-case outcomes.

use crate::error::UnexpectedError;
use crate::validation::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum RegisterDeviceError {
    #[error("invalid device: {0}")]
    Invalid(ValidationErrors),
    #[error("an active device with this name already exists")]
    NameTaken,
    #[error("the account already has the maximum of {max} active devices")]
    LimitReached { max: u32 },
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// Reading one device. Another owner's device is `NotFound` too.
#[derive(Debug, thiserror::Error)]
pub enum GetDeviceError {
    #[error("no such device")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum ListDevicesError {
    #[error("invalid listing: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum RenameDeviceError {
    #[error("invalid name: {0}")]
    Invalid(ValidationErrors),
    #[error("no such device")]
    NotFound,
    #[error("the device is revoked")]
    Revoked,
    #[error("an active device with this name already exists")]
    NameTaken,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum RotateSecretError {
    #[error("invalid rotation: {0}")]
    Invalid(ValidationErrors),
    #[error("no such device")]
    NotFound,
    #[error("the device is revoked")]
    Revoked,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeDeviceError {
    #[error("no such device")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::device::DeviceRepository::insert`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum InsertDeviceError {
    #[error("name taken")]
    NameTaken,
    #[error("active device limit reached")]
    LimitReached,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What the device update methods of the repository may fail with.
#[derive(Debug, thiserror::Error)]
pub enum UpdateDeviceError {
    #[error("no such device")]
    NotFound,
    #[error("the device is revoked")]
    Revoked,
    #[error("name taken")]
    NameTaken,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// A sealed secret that cannot be opened: wrong or missing master key, or a
/// ciphertext that was tampered with or moved to another device.
#[derive(Debug, thiserror::Error)]
pub enum OpenSecretError {
    #[error("master key {0:?} is not in the keyring")]
    UnknownKey(String),
    #[error("the sealed secret failed authentication")]
    Corrupt,
}

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error("invalid heartbeat: {0}")]
    Invalid(ValidationErrors),
}
