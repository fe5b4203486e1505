//! API-key use-case outcomes.

use super::policy::Denied;
use crate::error::UnexpectedError;
use crate::validation::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum CreateApiKeyError {
    #[error("invalid API key request: {0}")]
    Invalid(ValidationErrors),
    #[error("an active API key with this name exists")]
    NameTaken,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::access::ApiKeyRepository::create`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum CreateApiKeyStoreError {
    #[error("an active API key with this name exists")]
    NameTaken,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum ListApiKeysError {
    #[error("invalid listing request: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeApiKeyError {
    /// The caller has no such key (another owner's key looks the same).
    #[error("no such API key")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum RotateApiKeyError {
    #[error("no such API key")]
    NotFound,
    #[error("the API key is revoked")]
    Revoked,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::access::ApiKeyRepository::rotate`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum RotateApiKeyStoreError {
    #[error("no such API key")]
    NotFound,
    #[error("the API key is revoked")]
    Revoked,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// Why a presented API key was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyAuthError {
    /// Not a key, or no key with this secret (also a rotated-away secret).
    #[error("invalid API key")]
    Invalid,
    #[error("the API key has expired")]
    Expired,
    #[error("the API key is revoked")]
    Revoked,
    /// The key has an allowlist and the client's address is not on it.
    #[error("the API key may not be used from this address")]
    AddressNotAllowed,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// A refused action: the policy's reason, or a failure recording it.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error(transparent)]
    Denied(Denied),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}
