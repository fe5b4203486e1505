//! The security audit trail: an append-only record of who did what, when,
//! from where.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::account::UserId;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::pagination::{Cursor, Page, PageRequest};

/// Who is calling, as far as the transport can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    /// At most [`ClientInfo::MAX_USER_AGENT`] characters.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub const MAX_USER_AGENT: usize = 256;

    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        Self {
            ip,
            user_agent: user_agent.map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(Self::MAX_USER_AGENT)
                    .collect()
            }),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    AccountRegistered,
    LoginSucceeded,
    LoginFailed,
    /// The right password for an account an administrator disabled: no
    /// session was opened.
    LoginRefused,
    /// A wrong current password given to confirm a password change or an
    /// account deletion.
    ReauthenticationFailed,
    PasswordChanged,
    AccountDeleted,
    DeviceRegistered,
    DeviceRenamed,
    DeviceSecretRotated,
    DeviceRevoked,
    /// A trading configuration (a device's or the account default) was
    /// replaced, patched or rolled back.
    ConfigChanged,
    BundleUploaded,
    BundleDeleted,
    DeviceLabelsChanged,
    DeploymentCreated,
    DeploymentCancelled,
    /// A wave of a deployment started (the first one when it is created).
    DeploymentWaveStarted,
    /// The failure rate of a wave crossed the abort threshold.
    DeploymentAborted,
    DeploymentCompleted,
    /// A device reported (or timed out into) a new status.
    DeploymentDeviceStatus,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyRotated,
    /// An API key refused: revoked, expired, from an address off its
    /// allowlist, or without the scope (details say which).
    ApiKeyRefused,
    /// The administrator role granted or revoked (command line).
    RoleChanged,
    /// An administrator disabled the account.
    AccountDisabled,
    /// An administrator enabled the account again.
    AccountEnabled,
}

impl AuditAction {
    pub const ALL: [Self; 28] = [
        Self::AccountRegistered,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginRefused,
        Self::ReauthenticationFailed,
        Self::PasswordChanged,
        Self::AccountDeleted,
        Self::DeviceRegistered,
        Self::DeviceRenamed,
        Self::DeviceSecretRotated,
        Self::DeviceRevoked,
        Self::ConfigChanged,
        Self::BundleUploaded,
        Self::BundleDeleted,
        Self::DeviceLabelsChanged,
        Self::DeploymentCreated,
        Self::DeploymentCancelled,
        Self::DeploymentWaveStarted,
        Self::DeploymentAborted,
        Self::DeploymentCompleted,
        Self::DeploymentDeviceStatus,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::ApiKeyRotated,
        Self::ApiKeyRefused,
        Self::RoleChanged,
        Self::AccountDisabled,
        Self::AccountEnabled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AccountRegistered => "account.registered",
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::LoginRefused => "login.refused",
            Self::ReauthenticationFailed => "reauthentication.failed",
            Self::PasswordChanged => "password.changed",
            Self::AccountDeleted => "account.deleted",
            Self::DeviceRegistered => "device.registered",
            Self::DeviceRenamed => "device.renamed",
            Self::DeviceSecretRotated => "device.secret_rotated",
            Self::DeviceRevoked => "device.revoked",
            Self::ConfigChanged => "config.changed",
            Self::BundleUploaded => "bundle.uploaded",
            Self::BundleDeleted => "bundle.deleted",
            Self::DeviceLabelsChanged => "device.labels_changed",
            Self::DeploymentCreated => "deployment.created",
            Self::DeploymentCancelled => "deployment.cancelled",
            Self::DeploymentWaveStarted => "deployment.wave_started",
            Self::DeploymentAborted => "deployment.aborted",
            Self::DeploymentCompleted => "deployment.completed",
            Self::DeploymentDeviceStatus => "deployment.device_status",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::ApiKeyRotated => "api_key.rotated",
            Self::ApiKeyRefused => "api_key.refused",
            Self::RoleChanged => "role.changed",
            Self::AccountDisabled => "account.disabled",
            Self::AccountEnabled => "account.enabled",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = UnexpectedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnexpectedError::msg(format!("unknown audit action {s:?}")))
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub action: AuditAction,
    /// The account acting (or, for a failed login, the account targeted).
    pub user_id: Option<UserId>,
    pub device_id: Option<DeviceId>,
    pub client: ClientInfo,
    /// Non-secret particulars, e.g. a device's old and new name.
    pub details: BTreeMap<String, String>,
}

/// Appends and reads audit events. Events are never changed or removed
/// (they outlive the account they name).
pub trait AuditLog: Send + Sync + 'static {
    fn record(&self, event: &AuditEvent) -> impl Future<Output = Result<(), UnexpectedError>> + Send;

    /// The user's events, newest first.
    fn list_for_user(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<AuditEvent>, UnexpectedError>> + Send;
}

impl AuditEvent {
    /// The cursor that continues a listing after this event.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.occurred_at, self.id)
    }
}
