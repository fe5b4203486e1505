//! `/api/v1/audit`: the caller's security events.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use eagate_domain::audit::AuditEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::Problems;
use crate::extract::{Authorized, act};
use crate::problem::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(list);
}

/// `limit` stays text: the use case validates it and names it in its 422.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Events per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditEventResponse {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    /// e.g. `login.failed`, `device.secret_rotated`.
    action: &'static str,
    device_id: Option<Uuid>,
    client_ip: Option<String>,
    user_agent: Option<String>,
    details: BTreeMap<String, String>,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            occurred_at: e.occurred_at,
            action: e.action.as_str(),
            device_id: e.device_id.map(|d| d.as_uuid()),
            client_ip: e.client.ip.map(|ip| ip.to_string()),
            user_agent: e.client.user_agent,
            details: e.details,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditList {
    items: Vec<AuditEventResponse>,
    next_cursor: Option<String>,
}

/// List security events
///
/// The caller's security events (logins, password changes, device changes), newest first.
#[utoipa::path(
    operation_id = "listAuditEvents",
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "The caller's security events, newest first", body = AuditList), Problems),
    security(("bearer" = []))
)]
#[get("")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    who: Authorized<act::ReadAudit>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = state
        .accounts
        .audit_trail(who.0.session()?, q.limit.as_deref(), q.cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(AuditList {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items.into_iter().map(AuditEventResponse::from).collect(),
    }))
}
