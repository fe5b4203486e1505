//! Signal use-case outcomes.

use crate::error::UnexpectedError;
use crate::validation::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("invalid signal: {0}")]
    Invalid(ValidationErrors),
    /// Target devices that are not the owner's active devices (unknown,
    /// someone else's, or revoked), by id as given.
    #[error("not your active devices: {0:?}")]
    UnknownDevices(Vec<String>),
    #[error("the account has no active device to deliver to")]
    NoDevices,
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was used for a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum GetSignalError {
    #[error("no such signal")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum ListSignalsError {
    #[error("invalid listing: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("invalid poll: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("invalid acknowledgement: {0}")]
    Invalid(ValidationErrors),
    /// The signal was not delivered to this device (or does not exist).
    #[error("no such signal for this device")]
    NotFound,
    /// Already acknowledged with another outcome.
    #[error("already acknowledged as {0}")]
    Conflict(super::model::Outcome),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::signal::SignalRepository::insert`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum InsertSignalError {
    /// The owner already published with this idempotency key.
    #[error("idempotency key already used")]
    DuplicateKey,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}
