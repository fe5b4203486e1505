//! `/api/v1/admin`: for administrators (`eagate admin grant EMAIL`) only.
//! Nothing here ever shows a secret, a password hash or an API key.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use eagate_domain::access::{AccountSummary, AuditQueryInput};
use eagate_domain::account::UserId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Problems;
use crate::extract::{Authorized, act, path_id};
use crate::problem::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(accounts)
        .service(disable)
        .service(enable)
        .service(audit)
        .service(stats);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountsQuery {
    /// Text found in the username or email (ignoring case), 1–64 characters.
    #[param(max_length = 64, min_length = 1, example = "trader")]
    pub(crate) q: Option<String>,
    /// Accounts per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// An account as administrators see it (never a password hash, secret or key).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AdminAccount {
    id: Uuid,
    username: String,
    email: String,
    /// `owner` or `admin`.
    #[schema(example = "owner")]
    role: &'static str,
    created_at: DateTime<Utc>,
    /// When an administrator disabled the account; `null` while it is enabled.
    disabled_at: Option<DateTime<Utc>>,
}

impl From<AccountSummary> for AdminAccount {
    fn from(a: AccountSummary) -> Self {
        Self {
            id: a.id.as_uuid(),
            username: a.username.as_str().to_owned(),
            email: a.email.as_str().to_owned(),
            role: a.role.as_str(),
            created_at: a.created_at,
            disabled_at: a.disabled_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AdminAccountList {
    items: Vec<AdminAccount>,
    next_cursor: Option<String>,
}

/// List and search accounts
///
/// Every account, newest first, optionally searched by username or email. Administrators only.
#[utoipa::path(
    operation_id = "adminListAccounts",
    tag = "admin",
    params(AccountsQuery),
    responses((status = 200, description = "Accounts, newest first", body = AdminAccountList), Problems),
    security(("bearer" = []))
)]
#[get("/accounts")]
pub(crate) async fn accounts(
    state: web::Data<AppState>,
    _who: Authorized<act::AdminListAccounts>,
    query: web::Query<AccountsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = state
        .admin
        .list_accounts(q.q.as_deref(), q.limit.as_deref(), q.cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(AdminAccountList {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items.into_iter().map(AdminAccount::from).collect(),
    }))
}

/// Disable an account
///
/// The account's sessions, API keys and devices stop working at once, on every instance, until it is enabled again. Nothing is deleted. Idempotent. Administrators only; not one's own account.
#[utoipa::path(
    operation_id = "adminDisableAccount",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    responses((status = 200, description = "The account, disabled", body = AdminAccount), Problems),
    security(("bearer" = []))
)]
#[post("/accounts/{id}/disable")]
pub(crate) async fn disable(
    state: web::Data<AppState>,
    who: Authorized<act::AdminDisableAccount>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(&state, &who, &id, true).await
}

/// Enable an account
///
/// Undoes a disable: the account's sessions, API keys and devices work again. Idempotent. Administrators only.
#[utoipa::path(
    operation_id = "adminEnableAccount",
    tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    responses((status = 200, description = "The account, enabled", body = AdminAccount), Problems),
    security(("bearer" = []))
)]
#[post("/accounts/{id}/enable")]
pub(crate) async fn enable(
    state: web::Data<AppState>,
    who: Authorized<act::AdminDisableAccount>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_disabled(&state, &who, &id, false).await
}

async fn set_disabled(
    state: &AppState,
    who: &Authorized<act::AdminDisableAccount>,
    id: &str,
    disabled: bool,
) -> Result<HttpResponse, ApiError> {
    let target = UserId::from_uuid(path_id(id, "account")?);
    let account = state
        .admin
        .set_disabled(who.0.user_id, target, disabled, &who.0.client)
        .await?;
    Ok(HttpResponse::Ok().json(AdminAccount::from(account)))
}

/// Filters stay text: the use case validates them and names each in its 422.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminAuditQuery {
    /// The acting account's id.
    #[param(value_type = Option<Uuid>)]
    pub(crate) actor: Option<String>,
    /// An action such as `login.failed` or `api_key.refused`.
    #[param(example = "login.failed")]
    pub(crate) action: Option<String>,
    /// A device's id.
    #[param(value_type = Option<Uuid>)]
    pub(crate) device: Option<String>,
    /// From this time on (RFC 3339, inclusive).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub(crate) from: Option<String>,
    /// Before this time (RFC 3339, exclusive).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub(crate) to: Option<String>,
    /// Events per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl From<AdminAuditQuery> for AuditQueryInput {
    fn from(q: AdminAuditQuery) -> Self {
        Self {
            actor: q.actor,
            action: q.action,
            device: q.device,
            from: q.from,
            to: q.to,
            limit: q.limit,
            cursor: q.cursor,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AdminAuditEvent {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    action: &'static str,
    /// The acting account (or, for a failed login, the targeted one).
    user_id: Option<Uuid>,
    device_id: Option<Uuid>,
    client_ip: Option<String>,
    user_agent: Option<String>,
    details: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AdminAuditList {
    items: Vec<AdminAuditEvent>,
    next_cursor: Option<String>,
}

/// Read the global audit log
///
/// Every account's security events, newest first, filtered by actor, action, device and time range. Administrators only.
#[utoipa::path(
    operation_id = "adminListAuditEvents",
    tag = "admin",
    params(AdminAuditQuery),
    responses((status = 200, description = "Matching events, newest first", body = AdminAuditList), Problems),
    security(("bearer" = []))
)]
#[get("/audit")]
pub(crate) async fn audit(
    state: web::Data<AppState>,
    _who: Authorized<act::AdminReadAudit>,
    query: web::Query<AdminAuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let input = AuditQueryInput::from(query.into_inner());
    let page = state.admin.audit(&input).await?;
    Ok(HttpResponse::Ok().json(AdminAuditList {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page
            .items
            .into_iter()
            .map(|e| AdminAuditEvent {
                id: e.id,
                occurred_at: e.occurred_at,
                action: e.action.as_str(),
                user_id: e.user_id.map(|u| u.as_uuid()),
                device_id: e.device_id.map(|d| d.as_uuid()),
                client_ip: e.client.ip.map(|ip| ip.to_string()),
                user_agent: e.client.user_agent,
                details: e.details,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SignalsOnDay {
    /// A UTC day.
    day: NaiveDate,
    signals: u64,
}

/// Counts over the whole installation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FleetStatsResponse {
    accounts: u64,
    /// Accounts with the administrator role.
    admins: u64,
    devices_active: u64,
    devices_revoked: u64,
    /// Signals published per UTC day over the last 30 days (today included), oldest first; days without signals are left out.
    signals_per_day: Vec<SignalsOnDay>,
}

/// Fleet-wide counts
///
/// Accounts, devices by status and signals per day, over every account. Administrators only.
#[utoipa::path(
    operation_id = "adminFleetStats",
    tag = "admin",
    responses((status = 200, description = "Counts over the whole installation", body = FleetStatsResponse), Problems),
    security(("bearer" = []))
)]
#[get("/stats")]
pub(crate) async fn stats(
    state: web::Data<AppState>,
    _who: Authorized<act::AdminFleetStats>,
) -> Result<HttpResponse, ApiError> {
    let stats = state.admin.stats().await?;
    Ok(HttpResponse::Ok().json(FleetStatsResponse {
        accounts: stats.accounts,
        admins: stats.admins,
        devices_active: stats.devices_active,
        devices_revoked: stats.devices_revoked,
        signals_per_day: stats
            .signals_per_day
            .into_iter()
            .map(|(day, signals)| SignalsOnDay { day, signals })
            .collect(),
    }))
}
