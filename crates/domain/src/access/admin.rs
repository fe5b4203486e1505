//! The administrator role: granted and revoked from the command line, and
//! what administrators read (fleet-wide counts).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tracing::instrument;

use super::model::Role;
use crate::account::{Email, UserId};
use crate::audit::{AuditAction, AuditEvent, ClientInfo};
use crate::clock::Clock;
use crate::error::UnexpectedError;
use crate::id::IdGenerator;

/// Fleet-wide counts for administrators (no secret, no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FleetStats {
    pub accounts: u64,
    pub admins: u64,
    pub devices_active: u64,
    pub devices_revoked: u64,
    /// Signals published per UTC day since the requested day, oldest first;
    /// days without signals are left out.
    pub signals_per_day: Vec<(NaiveDate, u64)>,
}

/// Roles and fleet-wide reads.
pub trait AdminRepository: Send + Sync + 'static {
    /// The account's role: `Owner` unless it was made an administrator
    /// (also for an unknown account).
    fn role_of(&self, user: UserId) -> impl Future<Output = Result<Role, UnexpectedError>> + Send;

    /// The account with this email (compared as stored: lower-cased).
    fn account_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<UserId>, UnexpectedError>> + Send;

    /// Makes the account an administrator or an owner again, appending
    /// `audit` when that changed anything; returns whether it did.
    fn set_role(
        &self,
        user: UserId,
        role: Role,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<bool, UnexpectedError>> + Send;

    /// Counts over every account; signals per day from `since` on.
    fn fleet_stats(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<FleetStats, UnexpectedError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum SetRoleError {
    #[error("{0:?} is not an email address")]
    InvalidEmail(String),
    #[error("no account has the email {0}")]
    NoSuchAccount(String),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

/// The outcome of a grant or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Changed,
    AlreadySo,
}

/// Administration use cases.
#[derive(Debug, Clone)]
pub struct AdminService<R, C, I> {
    admins: R,
    clock: C,
    ids: I,
}

impl<R: AdminRepository, C: Clock, I: IdGenerator> AdminService<R, C, I> {
    /// Days of signal counts [`AdminService::stats`] covers.
    pub const STATS_DAYS: i64 = 30;

    pub fn new(admins: R, clock: C, ids: I) -> Self {
        Self { admins, clock, ids }
    }

    /// The role of a session's account (read only for administrator
    /// operations, so owner requests pay nothing for it).
    pub async fn role_of(&self, user: UserId) -> Result<Role, UnexpectedError> {
        self.admins.role_of(user).await
    }

    /// Grants or revokes the administrator role (the command line:
    /// `eagate admin grant|revoke EMAIL`), audited as `role.changed`.
    #[instrument(skip_all, fields(role = %role))]
    pub async fn set_role(&self, email: &str, role: Role) -> Result<RoleChange, SetRoleError> {
        let email = Email::parse(email).map_err(|_| SetRoleError::InvalidEmail(email.to_owned()))?;
        let user = self
            .admins
            .account_by_email(&email)
            .await?
            .ok_or_else(|| SetRoleError::NoSuchAccount(email.as_str().to_owned()))?;
        let audit = AuditEvent {
            id: self.ids.new_id(),
            occurred_at: self.clock.now(),
            action: AuditAction::RoleChanged,
            user_id: Some(user),
            device_id: None,
            client: ClientInfo::new(None, Some("eagate admin (command line)")),
            details: BTreeMap::from([("role".to_owned(), role.as_str().to_owned())]),
        };
        Ok(if self.admins.set_role(user, role, &audit).await? {
            RoleChange::Changed
        } else {
            RoleChange::AlreadySo
        })
    }

    /// Fleet-wide counts, signals per day over the last
    /// [`Self::STATS_DAYS`] days (today included).
    #[instrument(skip_all)]
    pub async fn stats(&self) -> Result<FleetStats, UnexpectedError> {
        let today = self.clock.now().date_naive();
        let first = today - Duration::days(Self::STATS_DAYS - 1);
        let since = first
            .and_hms_opt(0, 0, 0)
            .map_or(self.clock.now(), |t| t.and_utc());
        self.admins.fleet_stats(since).await
    }
}
