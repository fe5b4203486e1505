//! Domain errors to HTTP problems: exhaustive matches, no wildcard arms, so
//! a new domain outcome cannot silently become a 500.

use eagate_domain::UnexpectedError;
use eagate_domain::access::{
    AdminListError, ApiKeyAuthError, AuthorizeError, CreateApiKeyError, Denied, DisableAccountError,
    ListApiKeysError, RevokeApiKeyError, RotateApiKeyError,
};
use eagate_domain::account::{
    AuthenticateError, ChangePasswordError, DeleteAccountError, GetUserError, ListAuditError, LoginError,
    RefreshError, RegisterError,
};
use eagate_domain::device::{
    DeviceAuthError, GetDeviceError, HeartbeatError, ListDevicesError, RegisterDeviceError,
    RenameDeviceError, RevokeDeviceError, RotateSecretError,
};

use eagate_domain::bundle::{BundleError, UploadError};
use eagate_domain::config::ConfigError;
use eagate_domain::deployment::DeploymentError;
use eagate_domain::signal::{AckError, GetSignalError, ListSignalsError, PollError, PublishError};

use crate::problem::{ApiError, FieldProblem, ProblemKind, RETRY_AFTER_UNAVAILABLE_SECONDS};

impl From<UnexpectedError> for ApiError {
    fn from(e: UnexpectedError) -> Self {
        if e.is_unavailable() {
            ApiError::dependency_unavailable(e)
        } else {
            ApiError::internal(e)
        }
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
            LoginError::TooManyAttempts(decision) => {
                crate::protect::too_many(&decision, "Too many login attempts for this account")
            }
            LoginError::AccountDisabled => account_disabled(),
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
            RefreshError::AccountDisabled => account_disabled(),
            RefreshError::Unexpected(e) => e.into(),
        }
    }
}

fn account_disabled() -> ApiError {
    ApiError::new(
        ProblemKind::AccountDisabled,
        "An administrator disabled this account; no session is opened until it is enabled again.",
    )
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
            ChangePasswordError::TooManyAttempts(decision) => {
                crate::protect::too_many(&decision, "Too many password checks for this account")
            }
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
            DeleteAccountError::TooManyAttempts(decision) => {
                crate::protect::too_many(&decision, "Too many password checks for this account")
            }
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

impl From<ListAuditError> for ApiError {
    fn from(e: ListAuditError) -> Self {
        match e {
            ListAuditError::Invalid(errors) => ApiError::validation(&errors),
            ListAuditError::Unexpected(e) => e.into(),
        }
    }
}

/// Another owner's device and a device that does not exist answer alike.
pub fn device_not_found() -> ApiError {
    ApiError::new(ProblemKind::NotFound, "No such device.")
}

fn device_revoked() -> ApiError {
    ApiError::new(
        ProblemKind::DeviceNotActive,
        "The device is revoked; revoked devices cannot be changed or brought back.",
    )
}

fn device_name_taken() -> ApiError {
    ApiError::new(
        ProblemKind::DeviceNameTaken,
        "You already have an active device with this name (names are compared ignoring case).",
    )
}

impl From<RegisterDeviceError> for ApiError {
    fn from(e: RegisterDeviceError) -> Self {
        match e {
            RegisterDeviceError::Invalid(errors) => ApiError::validation(&errors),
            RegisterDeviceError::NameTaken => device_name_taken(),
            RegisterDeviceError::LimitReached { max } => ApiError::new(
                ProblemKind::DeviceLimitReached,
                format!(
                    "An account may have at most {max} active devices; revoke one before registering another."
                ),
            ),
            RegisterDeviceError::Unexpected(e) => e.into(),
        }
    }
}

impl From<GetDeviceError> for ApiError {
    fn from(e: GetDeviceError) -> Self {
        match e {
            GetDeviceError::NotFound => device_not_found(),
            GetDeviceError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ListDevicesError> for ApiError {
    fn from(e: ListDevicesError) -> Self {
        match e {
            ListDevicesError::Invalid(errors) => ApiError::validation(&errors),
            ListDevicesError::Unexpected(e) => e.into(),
        }
    }
}

impl From<RenameDeviceError> for ApiError {
    fn from(e: RenameDeviceError) -> Self {
        match e {
            RenameDeviceError::Invalid(errors) => ApiError::validation(&errors),
            RenameDeviceError::NotFound => device_not_found(),
            RenameDeviceError::Revoked => device_revoked(),
            RenameDeviceError::NameTaken => device_name_taken(),
            RenameDeviceError::Unexpected(e) => e.into(),
        }
    }
}

impl From<RotateSecretError> for ApiError {
    fn from(e: RotateSecretError) -> Self {
        match e {
            RotateSecretError::Invalid(errors) => ApiError::validation(&errors),
            RotateSecretError::NotFound => device_not_found(),
            RotateSecretError::Revoked => device_revoked(),
            RotateSecretError::Unexpected(e) => e.into(),
        }
    }
}

impl From<RevokeDeviceError> for ApiError {
    fn from(e: RevokeDeviceError) -> Self {
        match e {
            RevokeDeviceError::NotFound => device_not_found(),
            RevokeDeviceError::Unexpected(e) => e.into(),
        }
    }
}

impl From<HeartbeatError> for ApiError {
    fn from(e: HeartbeatError) -> Self {
        match e {
            HeartbeatError::Invalid(errors) => ApiError::validation(&errors),
        }
    }
}

impl From<DeviceAuthError> for ApiError {
    fn from(e: DeviceAuthError) -> Self {
        match e {
            DeviceAuthError::ClockSkew {
                server_time,
                skew_seconds,
            } => {
                let server = server_time.timestamp();
                ApiError::new(
                    ProblemKind::ClockSkew,
                    format!(
                        "X-Timestamp is {} s away from the server clock ({server}); correct the EA's clock \
                         (or add the offset) and sign again with a new nonce.",
                        skew_seconds.unsigned_abs()
                    ),
                )
                .with_extension("server_time", serde_json::json!(server))
                .with_header(
                    actix_web::http::header::HeaderName::from_static(eagate_protocol::SERVER_TIME_HEADER),
                    actix_web::http::header::HeaderValue::from(server),
                )
            }
            DeviceAuthError::PredatesReplayMemory { server_time, since } => {
                let server = server_time.timestamp();
                ApiError::new(
                    ProblemKind::ClockSkew,
                    format!(
                        "X-Timestamp is before {} (when the server's replay memory begins, after a restart): \
                         sign again with the current time ({server}) and a new nonce.",
                        since.timestamp()
                    ),
                )
                .with_extension("server_time", serde_json::json!(server))
                .with_header(
                    actix_web::http::header::HeaderName::from_static(eagate_protocol::SERVER_TIME_HEADER),
                    actix_web::http::header::HeaderValue::from(server),
                )
            }
            DeviceAuthError::Throttled(decision) => crate::protect::too_many(
                &decision,
                "This device is over its request rate; its nonce is spent, so retry with a new one",
            ),
            DeviceAuthError::TooManyFailures(decision) => crate::protect::too_many(
                &decision,
                "Too many failed device authentications from this address",
            ),
            DeviceAuthError::InvalidSignature => ApiError::new(
                ProblemKind::InvalidSignature,
                "The signature does not match this request for this device. Check the secret, the string to \
                 sign and the body hash (docs/protocol.md).",
            ),
            DeviceAuthError::Revoked => ApiError::new(
                ProblemKind::DeviceRevoked,
                "This device has been revoked by its owner and can no longer connect.",
            ),
            DeviceAuthError::Replayed => ApiError::new(
                ProblemKind::Replayed,
                "This nonce was already used; sign every request with a new nonce.",
            ),
            DeviceAuthError::ReplayStoreUnavailable(cause) => {
                ApiError::unavailable("Replay protection is unavailable; retry shortly.", cause)
                    .with_extension("retry_after", serde_json::json!(RETRY_AFTER_UNAVAILABLE_SECONDS))
                    .with_header(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECONDS),
                    )
            }
            DeviceAuthError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        match e {
            // A malformed If-Match is a header problem (400), a bad
            // document a validation problem (422).
            ConfigError::Invalid(errors) if errors.errors().iter().all(|f| f.field == "If-Match") => {
                ApiError::new(
                    ProblemKind::MalformedHeader,
                    "If-Match must be the document's ETag (its version in double quotes, e.g. \"3\") or *.",
                )
                .with_errors(
                    errors
                        .errors()
                        .iter()
                        .map(|f| FieldProblem {
                            field: f.field.to_owned(),
                            code: f.code.to_owned(),
                            message: f.message.clone(),
                        })
                        .collect(),
                )
            }
            ConfigError::Invalid(errors) => ApiError::validation(&errors),
            ConfigError::NotFound => ApiError::new(ProblemKind::NotFound, "No such device."),
            ConfigError::VersionNotFound => ApiError::new(
                ProblemKind::NotFound,
                "No such configuration version: list them at .../config/history.",
            ),
            ConfigError::PreconditionRequired => ApiError::new(
                ProblemKind::PreconditionRequired,
                "Send If-Match with the configuration's ETag (from a GET) so no change you have not seen is overwritten, or If-Match: * to write regardless.",
            ),
            ConfigError::PreconditionFailed { current } => ApiError::new(
                ProblemKind::PreconditionFailed,
                format!("The configuration changed: it is at version {current}. Read it again and reapply your change."),
            )
            .with_extension("current_version", serde_json::json!(current)),
            ConfigError::Unexpected(e) => e.into(),
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Invalid(errors) => ApiError::validation(&errors),
            PublishError::UnknownDevices(ids) => ApiError::new(
                ProblemKind::ValidationFailed,
                format!("These are not your active devices: {}.", ids.join(", ")),
            )
            .with_errors(
                ids.iter()
                    .map(|id| FieldProblem {
                        field: "device_ids".to_owned(),
                        code: "unknown_device".to_owned(),
                        message: format!("{id} is not one of your active devices"),
                    })
                    .collect(),
            )
            .with_extension("unknown_device_ids", serde_json::json!(ids)),
            PublishError::NoDevices => ApiError::new(
                ProblemKind::ValidationFailed,
                "You have no active device to deliver the signal to; register one first.",
            )
            .with_errors(vec![FieldProblem {
                field: "device_ids".to_owned(),
                code: "no_devices".to_owned(),
                message: "no active devices".to_owned(),
            }]),
            PublishError::IdempotencyKeyReused => ApiError::new(
                ProblemKind::IdempotencyKeyReused,
                "This Idempotency-Key was already used for a different signal; use a new key.",
            ),
            PublishError::Unexpected(e) => e.into(),
        }
    }
}

fn signal_not_found() -> ApiError {
    ApiError::new(ProblemKind::NotFound, "No such signal.")
}

impl From<GetSignalError> for ApiError {
    fn from(e: GetSignalError) -> Self {
        match e {
            GetSignalError::NotFound => signal_not_found(),
            GetSignalError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ListSignalsError> for ApiError {
    fn from(e: ListSignalsError) -> Self {
        match e {
            ListSignalsError::Invalid(errors) => ApiError::validation(&errors),
            ListSignalsError::Unexpected(e) => e.into(),
        }
    }
}

impl From<PollError> for ApiError {
    fn from(e: PollError) -> Self {
        match e {
            PollError::Invalid(errors) => ApiError::validation(&errors),
            PollError::Unexpected(e) => e.into(),
        }
    }
}

impl From<AckError> for ApiError {
    fn from(e: AckError) -> Self {
        match e {
            AckError::Invalid(errors) => ApiError::validation(&errors),
            AckError::NotFound => ApiError::new(
                ProblemKind::NotFound,
                "No such signal was delivered to this device.",
            ),
            AckError::Conflict(first) => ApiError::new(
                ProblemKind::AckConflict,
                format!(
                    "This signal was already acknowledged as `{first}`; an acknowledgement cannot change."
                ),
            )
            .with_extension("outcome", serde_json::json!(first.as_str())),
            AckError::Unexpected(e) => e.into(),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Invalid(errors) => ApiError::validation(&errors),
            UploadError::VersionTaken => ApiError::new(
                ProblemKind::BundleVersionTaken,
                "You already have a bundle with this name and version; upload it under a new version.",
            ),
            UploadError::TooLarge { max } => ApiError::new(
                ProblemKind::PayloadTooLarge,
                format!("The bundle exceeds the limit of {max} bytes."),
            ),
            UploadError::StorageFull { max, stored } => ApiError::new(
                ProblemKind::BundleStorageFull,
                format!(
                    "Your bundles may take {max} bytes in all and take {stored} (uploads in progress included); this upload would exceed that. Delete bundles you no longer deploy, then upload again."
                ),
            )
            .with_extension("max_bytes", max.into())
            .with_extension("stored_bytes", stored.into()),
            UploadError::Unexpected(e) => e.into(),
        }
    }
}

impl From<BundleError> for ApiError {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::Invalid(errors) => ApiError::validation(&errors),
            BundleError::NotFound => ApiError::new(ProblemKind::NotFound, "No such bundle."),
            BundleError::InUse => ApiError::new(
                ProblemKind::BundleInUse,
                "A deployment uses this bundle; it is kept as long as the deployment's record is.",
            ),
            BundleError::Unexpected(e) => e.into(),
        }
    }
}

impl From<DeploymentError> for ApiError {
    fn from(e: DeploymentError) -> Self {
        match e {
            DeploymentError::Invalid(errors) => ApiError::validation(&errors),
            DeploymentError::NotFound => ApiError::new(ProblemKind::NotFound, "No such deployment."),
            DeploymentError::BundleNotFound => ApiError::new(ProblemKind::NotFound, "No such bundle."),
            DeploymentError::DeviceNotFound => device_not_found(),
            DeploymentError::InvalidTransition { from, to } => ApiError::new(
                ProblemKind::InvalidTransition,
                format!(
                    "The device is {from} in this deployment and cannot report {to}: pending → downloading → installed | failed."
                ),
            )
            .with_extension("current_status", serde_json::json!(from.as_str())),
            DeploymentError::AlreadyEnded { state } => ApiError::new(
                ProblemKind::DeploymentEnded,
                format!("The deployment has already ended ({state})."),
            )
            .with_extension("state", serde_json::json!(state)),
            DeploymentError::Busy => ApiError::dependency_unavailable(e),
            DeploymentError::Unexpected(e) => e.into(),
        }
    }
}

/// A refusal by the access policy: 403 naming what is missing.
impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::MissingScope(scope) => ApiError::new(
                ProblemKind::MissingScope,
                format!("This API key lacks the scope `{scope}`; create a key with it."),
            )
            .with_extension("scope", serde_json::json!(scope.as_str())),
            Denied::SessionRequired => ApiError::new(
                ProblemKind::SessionRequired,
                "API keys cannot do this (manage keys, change the password, delete the account, read the \
                 profile or the audit trail); log in with the password.",
            ),
            Denied::AdminRequired => {
                ApiError::new(ProblemKind::AdminRequired, "Only an administrator can do this.")
            }
        }
    }
}

impl From<AuthorizeError> for ApiError {
    fn from(e: AuthorizeError) -> Self {
        match e {
            AuthorizeError::Denied(denied) => denied.into(),
            AuthorizeError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ApiKeyAuthError> for ApiError {
    fn from(e: ApiKeyAuthError) -> Self {
        match e {
            ApiKeyAuthError::Invalid => ApiError::new(
                ProblemKind::InvalidToken,
                "The API key is not valid (mistyped, rotated or never issued).",
            ),
            ApiKeyAuthError::Expired => ApiError::new(
                ProblemKind::ApiKeyExpired,
                "The API key has expired; create a new one.",
            ),
            ApiKeyAuthError::Revoked => ApiError::new(ProblemKind::ApiKeyRevoked, "The API key is revoked."),
            ApiKeyAuthError::AddressNotAllowed => ApiError::new(
                ProblemKind::AddressNotAllowed,
                "The API key may not be used from this address (see its allowed_cidrs).",
            ),
            ApiKeyAuthError::Unexpected(e) => e.into(),
        }
    }
}

fn api_key_not_found() -> ApiError {
    ApiError::new(ProblemKind::NotFound, "No such API key.")
}

impl From<CreateApiKeyError> for ApiError {
    fn from(e: CreateApiKeyError) -> Self {
        match e {
            CreateApiKeyError::Invalid(errors) => ApiError::validation(&errors),
            CreateApiKeyError::NameTaken => ApiError::new(
                ProblemKind::ApiKeyNameTaken,
                "You already have an active API key with this name (names are compared ignoring case).",
            ),
            CreateApiKeyError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ListApiKeysError> for ApiError {
    fn from(e: ListApiKeysError) -> Self {
        match e {
            ListApiKeysError::Invalid(errors) => ApiError::validation(&errors),
            ListApiKeysError::Unexpected(e) => e.into(),
        }
    }
}

impl From<RevokeApiKeyError> for ApiError {
    fn from(e: RevokeApiKeyError) -> Self {
        match e {
            RevokeApiKeyError::NotFound => api_key_not_found(),
            RevokeApiKeyError::Unexpected(e) => e.into(),
        }
    }
}

impl From<RotateApiKeyError> for ApiError {
    fn from(e: RotateApiKeyError) -> Self {
        match e {
            RotateApiKeyError::NotFound => api_key_not_found(),
            RotateApiKeyError::Revoked => ApiError::new(
                ProblemKind::ApiKeyNotActive,
                "The API key is revoked; revoked keys cannot be rotated.",
            ),
            RotateApiKeyError::Unexpected(e) => e.into(),
        }
    }
}

impl From<AdminListError> for ApiError {
    fn from(e: AdminListError) -> Self {
        match e {
            AdminListError::Invalid(errors) => ApiError::validation(&errors),
            AdminListError::Unexpected(e) => e.into(),
        }
    }
}

impl From<DisableAccountError> for ApiError {
    fn from(e: DisableAccountError) -> Self {
        match e {
            DisableAccountError::NotFound => ApiError::new(ProblemKind::NotFound, "No such account."),
            DisableAccountError::OwnAccount => ApiError::new(
                ProblemKind::CannotDisableSelf,
                "Administrators cannot disable their own account (another administrator can).",
            ),
            DisableAccountError::Unexpected(e) => e.into(),
        }
    }
}
