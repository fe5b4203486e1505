//! Domain errors to HTTP problems: exhaustive matches, no wildcard arms, so
//! a new domain outcome cannot silently become a 500.

use eagate_domain::UnexpectedError;
use eagate_domain::account::{
    AuthenticateError, ChangePasswordError, DeleteAccountError, GetUserError, LoginError, RefreshError,
    RegisterError,
};

use crate::problem::{ApiError, ProblemKind};

impl From<UnexpectedError> for ApiError {
    fn from(e: UnexpectedError) -> Self {
        ApiError::internal(e)
    }
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Invalid(errors) => ApiError::validation(&errors),
            RegisterError::EmailTaken => ApiError::new(
                ProblemKind::EmailTaken,
                "An account with this email address already exists.",
            ),
            RegisterError::UsernameTaken => {
                ApiError::new(ProblemKind::UsernameTaken, "This username is taken.")
            }
            RegisterError::Unexpected(e) => e.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Invalid(errors) => ApiError::validation(&errors),
            LoginError::InvalidCredentials => ApiError::new(
                ProblemKind::InvalidCredentials,
                "The login or the password is wrong.",
            ),
            LoginError::Unexpected(e) => e.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::InvalidRefreshToken => ApiError::new(
                ProblemKind::InvalidRefreshToken,
                "The refresh token is invalid, expired or already used; log in again.",
            ),
            RefreshError::Unexpected(e) => e.into(),
        }
    }
}

impl From<AuthenticateError> for ApiError {
    fn from(e: AuthenticateError) -> Self {
        match e {
            AuthenticateError::InvalidToken => invalid_token(),
            AuthenticateError::Unexpected(e) => e.into(),
        }
    }
}

impl From<GetUserError> for ApiError {
    fn from(e: GetUserError) -> Self {
        match e {
            // The token was valid a moment ago; the account is gone now.
            GetUserError::AccountNotFound => invalid_token(),
            GetUserError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ChangePasswordError> for ApiError {
    fn from(e: ChangePasswordError) -> Self {
        match e {
            ChangePasswordError::Invalid(errors) => ApiError::validation(&errors),
            ChangePasswordError::WrongPassword => {
                ApiError::new(ProblemKind::WrongPassword, "The current password is wrong.")
            }
            ChangePasswordError::AccountNotFound => invalid_token(),
            ChangePasswordError::Unexpected(e) => e.into(),
        }
    }
}

impl From<DeleteAccountError> for ApiError {
    fn from(e: DeleteAccountError) -> Self {
        match e {
            DeleteAccountError::Invalid(errors) => ApiError::validation(&errors),
            DeleteAccountError::WrongPassword => {
                ApiError::new(ProblemKind::WrongPassword, "The password is wrong.")
            }
            DeleteAccountError::AccountNotFound => invalid_token(),
            DeleteAccountError::Unexpected(e) => e.into(),
        }
    }
}

pub fn invalid_token() -> ApiError {
    ApiError::new(
        ProblemKind::InvalidToken,
        "Send a valid access token: `Authorization: Bearer <token>`.",
    )
}
