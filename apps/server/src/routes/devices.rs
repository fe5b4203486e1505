//! `/api/v1/devices`: the owner's device registry.

use actix_web::http::header;
use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use eagate_domain::device::{Device, DeviceId, DeviceStatus, DeviceWithSecret};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Problems;
use crate::extract::{Authorized, Client, Json, OptionalJson, act, path_id};
use crate::problem::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(register)
        .service(list)
        .service(get)
        .service(rename)
        .service(revoke)
        .service(rotate_secret);
    super::configs::configure_device(cfg);
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameRequest {
    #[schema(min_length = 1, max_length = 64, example = "London VPS")]
    pub(crate) name: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateRequest {
    #[schema(minimum = 0, maximum = 86400, example = 600)]
    pub(crate) grace_seconds: Option<i64>,
}

/// `limit` and `status` stay text here: the use case validates them and
/// names the field in its 422; the document declares what is accepted.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(schema_with = status_filter)]
    pub(crate) status: Option<String>,
    /// Devices per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(example = "660e48b0ec25d.01a20542519a7459b239fe5225f79297")]
    pub(crate) cursor: Option<String>,
}

/// `active` or `revoked`.
fn device_status() -> utoipa::openapi::schema::Object {
    super::text_enum([DeviceStatus::Active, DeviceStatus::Revoked].map(DeviceStatus::as_str))
}

fn status_filter() -> utoipa::openapi::schema::Object {
    let mut schema = device_status();
    schema.description = Some("Only devices with this status (default: all).".to_owned());
    schema
}

/// A device as its owner sees it: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceResponse {
    id: Uuid,
    name: String,
    #[schema(schema_with = device_status)]
    status: &'static str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    last_seen_at: Option<DateTime<Utc>>,
    last_poll_at: Option<DateTime<Utc>>,
    last_ack_at: Option<DateTime<Utc>>,
    /// Identifies the current secret without revealing it.
    secret_fingerprint: String,
    /// What the EA last reported about its terminal, if anything.
    heartbeat: Option<HeartbeatResponse>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct HeartbeatResponse {
    received_at: DateTime<Utc>,
    ea_version: Option<String>,
    terminal_build: Option<u32>,
    broker: Option<String>,
    account_login: Option<u64>,
    balance: Option<f64>,
    equity: Option<f64>,
}

impl From<Device> for DeviceResponse {
    fn from(d: Device) -> Self {
        Self {
            id: d.id.as_uuid(),
            status: d.status().as_str(),
            name: d.name.as_str().to_owned(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            revoked_at: d.revoked_at,
            last_seen_at: d.last_seen_at,
            last_poll_at: d.last_poll_at,
            last_ack_at: d.last_ack_at,
            secret_fingerprint: d.secret_fingerprint.as_str().to_owned(),
            heartbeat: d.last_heartbeat.map(|h| HeartbeatResponse {
                received_at: h.received_at,
                ea_version: h.ea_version,
                terminal_build: h.terminal_build,
                broker: h.broker,
                account_login: h.account_login,
                balance: h.balance,
                equity: h.equity,
            }),
        }
    }
}

/// The one response that carries a secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceWithSecretResponse {
    device: DeviceResponse,
    /// Shown once: store it in the EA now; it cannot be retrieved later.
    secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceList {
    items: Vec<DeviceResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

fn with_secret(created: DeviceWithSecret) -> DeviceWithSecretResponse {
    DeviceWithSecretResponse {
        secret: created.secret.expose().to_owned(),
        device: created.device.into(),
    }
}

fn device_id(raw: &str) -> Result<DeviceId, ApiError> {
    path_id(raw, "device").map(DeviceId::from_uuid)
}

/// Register a device
///
/// Returns the device and its secret. The secret is shown this once: store it in the EA now.
#[utoipa::path(
    operation_id = "registerDevice",
    tag = "devices",
    request_body = NameRequest,
    responses((status = 201, description = "The device and its secret, shown this once", body = DeviceWithSecretResponse), Problems),
    security(("bearer" = []), ("api_key" = ["devices:write"]))
)]
#[post("")]
pub(crate) async fn register(
    state: web::Data<AppState>,
    who: Authorized<act::RegisterDevice>,
    client: Client,
    body: Json<NameRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = state
        .devices
        .register(who.0.user_id, &body.0.name, &client.0)
        .await?;
    let location = format!("/api/v1/devices/{}", created.device.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(with_secret(created)))
}

/// List devices
///
/// The caller's devices, newest first, one page at a time.
#[utoipa::path(
    operation_id = "listDevices",
    tag = "devices",
    params(ListQuery),
    responses((status = 200, description = "The caller's devices, newest first", body = DeviceList), Problems),
    security(("bearer" = []), ("api_key" = ["devices:read"]))
)]
#[get("")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    who: Authorized<act::ListDevices>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = state
        .devices
        .list(
            who.0.user_id,
            q.status.as_deref(),
            q.limit.as_deref(),
            q.cursor.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(DeviceList {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items.into_iter().map(DeviceResponse::from).collect(),
    }))
}

/// Get a device
#[utoipa::path(
    operation_id = "getDevice",
    tag = "devices",
    params(("id" = uuid::Uuid, Path, description = "The device's id")),
    responses((status = 200, description = "The device", body = DeviceResponse), Problems),
    security(("bearer" = []), ("api_key" = ["devices:read"]))
)]
#[get("/{id}")]
pub(crate) async fn get(
    state: web::Data<AppState>,
    who: Authorized<act::ReadDevice>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = state.devices.get(who.0.user_id, device_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(DeviceResponse::from(device)))
}

/// Rename a device
#[utoipa::path(
    operation_id = "renameDevice",
    tag = "devices",
    params(("id" = uuid::Uuid, Path, description = "The device's id")),
    request_body = NameRequest,
    responses((status = 200, description = "The renamed device", body = DeviceResponse), Problems),
    security(("bearer" = []), ("api_key" = ["devices:write"]))
)]
#[patch("/{id}")]
pub(crate) async fn rename(
    state: web::Data<AppState>,
    who: Authorized<act::RenameDevice>,
    client: Client,
    id: web::Path<String>,
    body: Json<NameRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = device_id(&id)?;
    let device = state
        .devices
        .rename(who.0.user_id, id, &body.0.name, &client.0)
        .await?;
    Ok(HttpResponse::Ok().json(DeviceResponse::from(device)))
}

/// Revoke a device
///
/// Permanent: a revoked device never authenticates again. Idempotent.
#[utoipa::path(
    operation_id = "revokeDevice",
    tag = "devices",
    params(("id" = uuid::Uuid, Path, description = "The device's id")),
    responses((status = 204, description = "Revoked, permanently"), Problems),
    security(("bearer" = []), ("api_key" = ["devices:write"]))
)]
#[post("/{id}/revoke")]
pub(crate) async fn revoke(
    state: web::Data<AppState>,
    who: Authorized<act::RevokeDevice>,
    client: Client,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .devices
        .revoke(who.0.user_id, device_id(&id)?, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a device's secret
///
/// Returns the new secret, shown this once. With `grace_seconds`, the old secret keeps working that long.
#[utoipa::path(
    operation_id = "rotateDeviceSecret",
    tag = "devices",
    params(("id" = uuid::Uuid, Path, description = "The device's id")),
    request_body = Option<RotateRequest>,
    responses((status = 200, description = "The device and its new secret, shown this once", body = DeviceWithSecretResponse), Problems),
    security(("bearer" = []), ("api_key" = ["devices:write"]))
)]
#[post("/{id}/rotate-secret")]
pub(crate) async fn rotate_secret(
    state: web::Data<AppState>,
    who: Authorized<act::RotateDeviceSecret>,
    client: Client,
    id: web::Path<String>,
    body: OptionalJson<RotateRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = device_id(&id)?;
    let rotated = state
        .devices
        .rotate_secret(who.0.user_id, id, body.0.grace_seconds, &client.0)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(with_secret(rotated)))
}
