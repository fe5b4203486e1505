//! Who may do what: one policy function over every principal and action.

use std::fmt;

use super::model::{ApiKeyId, Role, Scope, Scopes};
use crate::account::UserId;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person logged in with a password (an access token of a live session).
    Session { user: UserId, role: Role },
    /// A program holding an API key: acts for the key's owner, within the
    /// key's scopes.
    ApiKey {
        key: ApiKeyId,
        owner: UserId,
        scopes: Scopes,
    },
}

impl Principal {
    /// The account whose resources the caller acts on. (An administrator on
    /// owner routes acts on their own account only.)
    pub fn user_id(&self) -> UserId {
        match self {
            Self::Session { user, .. } => *user,
            Self::ApiKey { owner, .. } => *owner,
        }
    }

    pub fn api_key(&self) -> Option<ApiKeyId> {
        match self {
            Self::Session { .. } => None,
            Self::ApiKey { key, .. } => Some(*key),
        }
    }
}

/// Every operation of the HTTP API that needs an owner or an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ListDevices,
    ReadDevice,
    RegisterDevice,
    RenameDevice,
    RotateDeviceSecret,
    RevokeDevice,
    /// Replace a device's labels (deployment targets).
    LabelDevice,
    PublishSignal,
    CancelSignal,
    ListSignals,
    ReadSignal,
    ReadConfig,
    WriteConfig,
    WriteBundles,
    WriteDeployments,
    ReadAudit,
    ReadProfile,
    Logout,
    ManageApiKeys,
    ChangePassword,
    DeleteAccount,
    AdminListAccounts,
    AdminDisableAccount,
    AdminReadAudit,
    AdminFleetStats,
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// A session of the owner, or an API key with this scope.
    Scope(Scope),
    /// A password session: never an API key (account and key management).
    Session,
    /// A password session of an administrator.
    Admin,
}

impl Action {
    pub const ALL: [Self; 25] = [
        Self::ListDevices,
        Self::ReadDevice,
        Self::RegisterDevice,
        Self::RenameDevice,
        Self::RotateDeviceSecret,
        Self::RevokeDevice,
        Self::LabelDevice,
        Self::PublishSignal,
        Self::CancelSignal,
        Self::ListSignals,
        Self::ReadSignal,
        Self::ReadConfig,
        Self::WriteConfig,
        Self::WriteBundles,
        Self::WriteDeployments,
        Self::ReadAudit,
        Self::ReadProfile,
        Self::Logout,
        Self::ManageApiKeys,
        Self::ChangePassword,
        Self::DeleteAccount,
        Self::AdminListAccounts,
        Self::AdminDisableAccount,
        Self::AdminReadAudit,
        Self::AdminFleetStats,
    ];

    pub const fn requirement(self) -> Requirement {
        match self {
            Self::ListDevices | Self::ReadDevice => Requirement::Scope(Scope::DevicesRead),
            Self::RegisterDevice
            | Self::RenameDevice
            | Self::RotateDeviceSecret
            | Self::RevokeDevice
            | Self::LabelDevice => Requirement::Scope(Scope::DevicesWrite),
            Self::PublishSignal | Self::CancelSignal => Requirement::Scope(Scope::SignalsPublish),
            Self::ListSignals | Self::ReadSignal => Requirement::Scope(Scope::SignalsRead),
            Self::ReadConfig => Requirement::Scope(Scope::ConfigRead),
            Self::WriteConfig => Requirement::Scope(Scope::ConfigWrite),
            Self::WriteBundles => Requirement::Scope(Scope::BundlesWrite),
            Self::WriteDeployments => Requirement::Scope(Scope::DeploymentsWrite),
            Self::ReadAudit
            | Self::ReadProfile
            | Self::Logout
            | Self::ManageApiKeys
            | Self::ChangePassword
            | Self::DeleteAccount => Requirement::Session,
            Self::AdminListAccounts
            | Self::AdminDisableAccount
            | Self::AdminReadAudit
            | Self::AdminFleetStats => Requirement::Admin,
        }
    }
}

/// Why an action was refused: what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// An API key without the scope.
    #[error("the API key lacks the scope {0}")]
    MissingScope(Scope),
    /// An API key, where only a password session will do.
    #[error("API keys cannot do this; log in with the password")]
    SessionRequired,
    /// A session of an account that is not an administrator (or a key).
    #[error("only an administrator can do this")]
    AdminRequired,
}

impl Denied {
    /// A stable machine-readable reason (audit details, problem bodies).
    pub const fn code(self) -> &'static str {
        match self {
            Self::MissingScope(_) => "missing_scope",
            Self::SessionRequired => "session_required",
            Self::AdminRequired => "admin_required",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The policy: whether `principal` may perform `action`.
pub fn authorize(principal: &Principal, action: Action) -> Result<(), Denied> {
    match (action.requirement(), principal) {
        (Requirement::Scope(_) | Requirement::Session, Principal::Session { .. }) => Ok(()),
        (
            Requirement::Admin,
            Principal::Session {
                role: Role::Admin, ..
            },
        ) => Ok(()),
        (
            Requirement::Admin,
            Principal::Session {
                role: Role::Owner, ..
            }
            | Principal::ApiKey { .. },
        ) => Err(Denied::AdminRequired),
        (Requirement::Scope(scope), Principal::ApiKey { scopes, .. }) => {
            if scopes.contains(scope) {
                Ok(())
            } else {
                Err(Denied::MissingScope(scope))
            }
        }
        (Requirement::Session, Principal::ApiKey { .. }) => Err(Denied::SessionRequired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::from_uuid(uuid::Uuid::from_bytes([1; 16]))
    }

    fn key(scopes: &[Scope]) -> Principal {
        Principal::ApiKey {
            key: ApiKeyId::from_uuid(uuid::Uuid::from_bytes([2; 16])),
            owner: user(),
            scopes: Scopes::of(scopes.iter().copied()),
        }
    }

    const OWNER: Principal = Principal::Session {
        user: UserId::from_uuid(uuid::Uuid::from_bytes([1; 16])),
        role: Role::Owner,
    };
    const ADMIN: Principal = Principal::Session {
        user: UserId::from_uuid(uuid::Uuid::from_bytes([1; 16])),
        role: Role::Admin,
    };

    use Action as A;
    use Denied::*;
    use Scope as S;

    /// The whole policy as a table: for every action, what an owner's
    /// session, an administrator's session, a key with every scope, a key
    /// with only the action's own scope, and a key with every other scope
    /// get.
    #[test]
    fn the_policy_table() {
        type Row = (Action, Result<(), Denied>, Result<(), Denied>, Result<(), Denied>);
        // (action, owner session, admin session, key with every scope)
        let table: [Row; 25] = [
            (A::ListDevices, Ok(()), Ok(()), Ok(())),
            (A::ReadDevice, Ok(()), Ok(()), Ok(())),
            (A::RegisterDevice, Ok(()), Ok(()), Ok(())),
            (A::RenameDevice, Ok(()), Ok(()), Ok(())),
            (A::RotateDeviceSecret, Ok(()), Ok(()), Ok(())),
            (A::RevokeDevice, Ok(()), Ok(()), Ok(())),
            (A::LabelDevice, Ok(()), Ok(()), Ok(())),
            (A::PublishSignal, Ok(()), Ok(()), Ok(())),
            (A::CancelSignal, Ok(()), Ok(()), Ok(())),
            (A::ListSignals, Ok(()), Ok(()), Ok(())),
            (A::ReadSignal, Ok(()), Ok(()), Ok(())),
            (A::ReadConfig, Ok(()), Ok(()), Ok(())),
            (A::WriteConfig, Ok(()), Ok(()), Ok(())),
            (A::WriteBundles, Ok(()), Ok(()), Ok(())),
            (A::WriteDeployments, Ok(()), Ok(()), Ok(())),
            (A::ReadAudit, Ok(()), Ok(()), Err(SessionRequired)),
            (A::ReadProfile, Ok(()), Ok(()), Err(SessionRequired)),
            (A::Logout, Ok(()), Ok(()), Err(SessionRequired)),
            (A::ManageApiKeys, Ok(()), Ok(()), Err(SessionRequired)),
            (A::ChangePassword, Ok(()), Ok(()), Err(SessionRequired)),
            (A::DeleteAccount, Ok(()), Ok(()), Err(SessionRequired)),
            (
                A::AdminListAccounts,
                Err(AdminRequired),
                Ok(()),
                Err(AdminRequired),
            ),
            (
                A::AdminDisableAccount,
                Err(AdminRequired),
                Ok(()),
                Err(AdminRequired),
            ),
            (A::AdminReadAudit, Err(AdminRequired), Ok(()), Err(AdminRequired)),
            (A::AdminFleetStats, Err(AdminRequired), Ok(()), Err(AdminRequired)),
        ];
        assert_eq!(
            table.map(|r| r.0),
            Action::ALL,
            "the table covers every action, in order"
        );
        let all_scopes = key(&Scope::ALL);
        for (action, owner, admin, full_key) in table {
            assert_eq!(authorize(&OWNER, action), owner, "owner session: {action}");
            assert_eq!(authorize(&ADMIN, action), admin, "admin session: {action}");
            assert_eq!(
                authorize(&all_scopes, action),
                full_key,
                "key with every scope: {action}"
            );
            if let Requirement::Scope(needed) = action.requirement() {
                assert_eq!(
                    authorize(&key(&[needed]), action),
                    Ok(()),
                    "{action} with {needed}"
                );
                let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != needed).collect();
                assert_eq!(
                    authorize(&key(&others), action),
                    Err(MissingScope(needed)),
                    "{action} without {needed} names it"
                );
            }
        }
    }

    #[test]
    fn each_scope_grants_exactly_its_actions() {
        let expected = [
            (S::DevicesRead, vec![A::ListDevices, A::ReadDevice]),
            (
                S::DevicesWrite,
                vec![
                    A::RegisterDevice,
                    A::RenameDevice,
                    A::RotateDeviceSecret,
                    A::RevokeDevice,
                    A::LabelDevice,
                ],
            ),
            (S::SignalsPublish, vec![A::PublishSignal, A::CancelSignal]),
            (S::SignalsRead, vec![A::ListSignals, A::ReadSignal]),
            (S::ConfigRead, vec![A::ReadConfig]),
            (S::ConfigWrite, vec![A::WriteConfig]),
            (S::BundlesWrite, vec![A::WriteBundles]),
            (S::DeploymentsWrite, vec![A::WriteDeployments]),
        ];
        assert_eq!(expected.len(), Scope::ALL.len());
        for (scope, actions) in expected {
            let granted: Vec<Action> = Action::ALL
                .into_iter()
                .filter(|a| authorize(&key(&[scope]), *a).is_ok())
                .collect();
            assert_eq!(granted, actions, "{scope}");
        }
    }

    #[test]
    fn principals_act_on_their_own_account() {
        assert_eq!(OWNER.user_id(), user());
        assert_eq!(key(&[]).user_id(), user());
        assert!(OWNER.api_key().is_none() && key(&[]).api_key().is_some());
        assert_eq!(
            MissingScope(S::SignalsPublish).to_string(),
            "the API key lacks the scope signals:publish"
        );
    }
}
