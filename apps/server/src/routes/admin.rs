//! `/api/v1/admin`: for administrators (`eagate admin grant EMAIL`) only.
//! Nothing here ever shows a secret, a password hash or an API key.

use actix_web::{HttpResponse, get, web};
use chrono::NaiveDate;
use serde::Serialize;

use super::Problems;
use crate::extract::{Authorized, act};
use crate::problem::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(stats);
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
