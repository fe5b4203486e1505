//! The administrator role: granted and revoked from the command line, and
//! what administrators read (fleet-wide counts).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tracing::instrument;

use super::model::Role;
use crate::account::{Email, UserId, Username};
use crate::audit::{AuditAction, AuditEvent, ClientInfo};
use crate::clock::Clock;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::id::IdGenerator;
use crate::pagination::{Cursor, Page, PageRequest};
use crate::validation::{FieldError, ValidationErrors};

/// An account as administrators see it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// When an administrator disabled the account (`None`: enabled).
    pub disabled_at: Option<DateTime<Utc>>,
}

impl AccountSummary {
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id.as_uuid())
    }
}

/// Which audit events an administrator reads (all given conditions hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditFilter {
    /// The account acting (or targeted, for a failed login).
    pub actor: Option<UserId>,
    pub action: Option<AuditAction>,
    pub device: Option<DeviceId>,
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub to: Option<DateTime<Utc>>,
}

impl AuditFilter {
    pub fn matches(&self, e: &AuditEvent) -> bool {
        self.actor.is_none_or(|a| e.user_id == Some(a))
            && self.action.is_none_or(|a| e.action == a)
            && self.device.is_none_or(|d| e.device_id == Some(d))
            && self.from.is_none_or(|t| e.occurred_at >= t)
            && self.to.is_none_or(|t| e.occurred_at < t)
    }
}

/// The raw query of an audit listing, validated by [`AdminService::audit`].
#[derive(Debug, Clone, Default)]
pub struct AuditQueryInput {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub device: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl AuditQueryInput {
    /// Validates the filter and the page, collecting every error (what
    /// [`AdminService::audit`] checks before the query).
    pub fn parse(&self) -> Result<(AuditFilter, PageRequest), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let page = page(self.limit.as_deref(), self.cursor.as_deref(), &mut errors);
        let uuid = |field: &'static str, raw: &Option<String>, errors: &mut ValidationErrors| {
            raw.as_deref().and_then(|r| {
                errors.collect(
                    uuid::Uuid::try_parse(r).map_err(|_| FieldError::new(field, "invalid", "must be a UUID")),
                )
            })
        };
        let time = |field: &'static str, raw: &Option<String>, errors: &mut ValidationErrors| {
            raw.as_deref().and_then(|r| {
                errors.collect(
                    DateTime::parse_from_rfc3339(r)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            FieldError::new(
                                field,
                                "invalid",
                                "must be an RFC 3339 time such as 2026-12-01T00:00:00Z",
                            )
                        }),
                )
            })
        };
        let actor = uuid("actor", &self.actor, &mut errors).map(UserId::from_uuid);
        let device = uuid("device", &self.device, &mut errors).map(DeviceId::from_uuid);
        let action = self.action.as_deref().and_then(|a| {
            errors.collect(a.parse::<AuditAction>().map_err(|_| {
                FieldError::new(
                    "action",
                    "unknown_action",
                    format!(
                        "unknown action; known: {}",
                        AuditAction::ALL.map(AuditAction::as_str).join(", ")
                    ),
                )
            }))
        });
        let from = time("from", &self.from, &mut errors);
        let to = time("to", &self.to, &mut errors);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            errors.push(FieldError::new("to", "before_from", "must be after `from`"));
        }
        let (Some(page), true) = (page, errors.is_empty()) else {
            return Err(errors);
        };
        let filter = AuditFilter {
            actor,
            action,
            device,
            from,
            to,
        };
        Ok((filter, page))
    }
}

/// Validates an account search (`q`: 1–64 visible characters, trimmed) and
/// its page, collecting every error (what [`AdminService::list_accounts`]
/// checks before the query).
pub fn parse_account_search<'a>(
    search: Option<&'a str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<(Option<&'a str>, PageRequest), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let page = page(limit, cursor, &mut errors);
    let search = search.map(str::trim);
    if search.is_some_and(|s| s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control)) {
        errors.push(FieldError::new(
            "q",
            "invalid",
            "must be 1 to 64 visible characters",
        ));
    }
    let (Some(page), true) = (page, errors.is_empty()) else {
        return Err(errors);
    };
    Ok((search, page))
}

#[derive(Debug, thiserror::Error)]
pub enum DisableAccountError {
    #[error("no such account")]
    NotFound,
    /// An administrator cannot disable their own account.
    #[error("an administrator cannot disable their own account")]
    OwnAccount,
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminListError {
    #[error("invalid listing request: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Unexpected(#[from] UnexpectedError),
}

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

    /// Accounts, newest first; with `search`, those whose username or email
    /// contains it (ignoring case).
    fn list_accounts(
        &self,
        search: Option<&str>,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<AccountSummary>, UnexpectedError>> + Send;

    /// Every account's audit events that match `filter`, newest first.
    fn audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<AuditEvent>, UnexpectedError>> + Send;

    /// Disables the account at `at` (keeping the first time when already
    /// disabled) or enables it, appending `audit` when that changed
    /// anything. `None` when there is no such account. While an account is
    /// disabled, [`SessionRepository::find`](crate::account::SessionRepository::find)
    /// reports its sessions revoked,
    /// [`DeviceRepository::find_credentials`](crate::device::DeviceRepository::find_credentials)
    /// its devices revoked (and every instance's device cache hears of the
    /// change) and
    /// [`ApiKeyRepository::find_by_hash`](crate::access::ApiKeyRepository::find_by_hash)
    /// its keys revoked — all at once; enabling restores them.
    fn set_disabled(
        &self,
        user: UserId,
        disabled: bool,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<Option<AccountSummary>, UnexpectedError>> + Send;

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

    /// Accounts, newest first, optionally searched (`q`: 1–64 characters,
    /// matched within usernames and emails, ignoring case).
    #[instrument(skip_all)]
    pub async fn list_accounts(
        &self,
        search: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<AccountSummary>, AdminListError> {
        let (search, page) = parse_account_search(search, limit, cursor).map_err(AdminListError::Invalid)?;
        Ok(self.admins.list_accounts(search, &page).await?)
    }

    /// Every account's audit events, filtered, newest first.
    #[instrument(skip_all)]
    pub async fn audit(&self, q: &AuditQueryInput) -> Result<Page<AuditEvent>, AdminListError> {
        let (filter, page) = q.parse().map_err(AdminListError::Invalid)?;
        Ok(self.admins.audit(&filter, &page).await?)
    }

    /// Disables (`true`) or enables an account: its sessions, API keys and
    /// devices stop (or work again) at once. Audited as
    /// `account.disabled` / `account.enabled` under the target account,
    /// naming the administrator.
    #[instrument(skip_all, fields(target = %target, disabled))]
    pub async fn set_disabled(
        &self,
        admin: UserId,
        target: UserId,
        disabled: bool,
        client: &ClientInfo,
    ) -> Result<AccountSummary, DisableAccountError> {
        if disabled && admin == target {
            return Err(DisableAccountError::OwnAccount);
        }
        let audit = AuditEvent {
            id: self.ids.new_id(),
            occurred_at: self.clock.now(),
            action: if disabled {
                AuditAction::AccountDisabled
            } else {
                AuditAction::AccountEnabled
            },
            user_id: Some(target),
            device_id: None,
            client: client.clone(),
            details: BTreeMap::from([("admin_id".to_owned(), admin.to_string())]),
        };
        self.admins
            .set_disabled(target, disabled, self.clock.now(), &audit)
            .await?
            .ok_or(DisableAccountError::NotFound)
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

fn page(limit: Option<&str>, cursor: Option<&str>, errors: &mut ValidationErrors) -> Option<PageRequest> {
    match PageRequest::parse(limit, cursor) {
        Ok(page) => Some(page),
        Err(e) => {
            e.into_iter().for_each(|e| errors.push(e));
            None
        }
    }
}
