//! One error enum per use case: the business outcomes plus `Unexpected`.

use crate::error::UnexpectedError;
use crate::ratelimit::RateDecision;
use crate::validation::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("invalid registration: {0}")]
    Invalid(ValidationErrors),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("this username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid login: {0}")]
    Invalid(ValidationErrors),
    /// Unknown account or wrong password: deliberately indistinguishable.
    #[error("invalid login or password")]
    InvalidCredentials,
    /// The account's (or the login's) password checks are used up for now.
    #[error("too many login attempts for this account")]
    TooManyAttempts(RateDecision),
    /// The password is right but an administrator disabled the account.
    #[error("the account is disabled")]
    AccountDisabled,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, expired, revoked or already-used token. Reuse of a rotated
    /// token also revokes its whole session.
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    /// A valid refresh token of an account an administrator disabled.
    #[error("the account is disabled")]
    AccountDisabled,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// Malformed, forged, expired or for a session that has ended.
    #[error("the access token is invalid or expired")]
    InvalidToken,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    #[error("invalid password change: {0}")]
    Invalid(ValidationErrors),
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("too many password checks for this account")]
    TooManyAttempts(RateDecision),
    /// The account was deleted while the request was in flight.
    #[error("the account no longer exists")]
    AccountNotFound,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteAccountError {
    #[error("invalid account deletion: {0}")]
    Invalid(ValidationErrors),
    #[error("the password is wrong")]
    WrongPassword,
    #[error("too many password checks for this account")]
    TooManyAttempts(RateDecision),
    #[error("the account no longer exists")]
    AccountNotFound,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum GetUserError {
    #[error("the account no longer exists")]
    AccountNotFound,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// What [`crate::account::AccountRepository::create`] may fail with.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email taken")]
    EmailTaken,
    #[error("username taken")]
    UsernameTaken,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// A token that failed verification, for whatever reason. The reason is not
/// exposed: callers must not behave differently per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid access token")]
pub struct InvalidAccessToken;

#[derive(Debug, thiserror::Error)]
pub enum ListAuditError {
    #[error("invalid listing: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}
