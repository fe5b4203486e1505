//! Configuration use-case outcomes.

use crate::error::UnexpectedError;
use crate::validation::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration request: {0}")]
    Invalid(ValidationErrors),
    /// The owner has no such device.
    #[error("no such device")]
    NotFound,
    /// No such version in the scope's history.
    #[error("no such configuration version")]
    VersionNotFound,
    /// A write without `If-Match`.
    #[error("If-Match with the current version is required")]
    PreconditionRequired,
    /// `If-Match` named another version than the current one.
    #[error("the configuration is at version {current}")]
    PreconditionFailed { current: u32 },
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::config::ConfigRepository::write`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum WriteConfigError {
    #[error("no such device")]
    NotFound,
    /// The scope's current version is not the expected one.
    #[error("the configuration is at version {current}")]
    VersionMismatch { current: u32 },
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}
