//! Deployment use-case outcomes.

use super::model::TargetStatus;
use crate::error::UnexpectedError;
use crate::validation::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("invalid deployment request: {0}")]
    Invalid(ValidationErrors),
    /// No such deployment of the owner's (or, for a device, none that
    /// targets it).
    #[error("no such deployment")]
    NotFound,
    /// The bundle to deploy is not the owner's.
    #[error("no such bundle")]
    BundleNotFound,
    /// Labelling a device the owner does not have.
    #[error("no such device")]
    DeviceNotFound,
    /// A device report that does not follow the state machine.
    #[error("a device cannot go from {from} to {to}")]
    InvalidTransition { from: TargetStatus, to: TargetStatus },
    /// Cancelling a deployment that already ended.
    #[error("the deployment has already ended ({state})")]
    AlreadyEnded { state: &'static str },
    /// Every save lost a race with another writer (many devices of one
    /// wave reporting at once): nothing was changed; retry shortly.
    #[error("the deployment kept changing while being saved")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::deployment::DeploymentRepository::save`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum SaveDeploymentError {
    /// Someone else saved the deployment since it was read.
    #[error("the deployment changed since it was read")]
    Conflict,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}
