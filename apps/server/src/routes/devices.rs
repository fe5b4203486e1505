//! `/api/v1/devices`: the owner's device registry.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use eagate_domain::device::{Device, DeviceId, DeviceWithSecret};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::resource;
use crate::extract::{Authenticated, Client, Json, OptionalJson, path_id};
use crate::problem::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("", "POST, GET")
            .route(web::post().to(register))
            .route(web::get().to(list)),
    )
    .service(
        resource("/{id}", "GET, PATCH")
            .route(web::get().to(get))
            .route(web::patch().to(rename)),
    )
    .service(resource("/{id}/revoke", "POST").route(web::post().to(revoke)))
    .service(resource("/{id}/rotate-secret", "POST").route(web::post().to(rotate_secret)));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameRequest {
    #[schema(min_length = 1, max_length = 64, example = "London VPS")]
    name: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateRequest {
    #[schema(minimum = 0, maximum = 86400, example = 600)]
    grace_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(pattern = "^(active|revoked)$", example = "active")]
    status: Option<String>,
    #[param(pattern = "^[0-9]+$", example = "50")]
    limit: Option<String>,
    #[param(example = "660e48b0ec25d.01a20542519a7459b239fe5225f79297")]
    cursor: Option<String>,
}

/// A device as its owner sees it: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceResponse {
    id: Uuid,
    name: String,
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

#[utoipa::path(
    post,
    path = "/api/v1/devices",
    tag = "devices",
    request_body = NameRequest,
    responses((status = 201, description = "The device and its secret, shown this once", body = DeviceWithSecretResponse), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn register(
    state: web::Data<AppState>,
    who: Authenticated,
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

#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "devices",
    params(ListQuery),
    responses((status = 200, description = "The caller's devices, newest first", body = DeviceList), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
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

#[utoipa::path(
    get,
    path = "/api/v1/devices/{id}",
    tag = "devices",
    params(("id" = String, Path, description = "Device id (UUID)")),
    responses((status = 200, description = "The device", body = DeviceResponse), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn get(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = state.devices.get(who.0.user_id, device_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(DeviceResponse::from(device)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/devices/{id}",
    tag = "devices",
    params(("id" = String, Path, description = "Device id (UUID)")),
    request_body = NameRequest,
    responses((status = 200, description = "The renamed device", body = DeviceResponse), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn rename(
    state: web::Data<AppState>,
    who: Authenticated,
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

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/revoke",
    tag = "devices",
    params(("id" = String, Path, description = "Device id (UUID)")),
    responses((status = 204, description = "Revoked, permanently"), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn revoke(
    state: web::Data<AppState>,
    who: Authenticated,
    client: Client,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .devices
        .revoke(who.0.user_id, device_id(&id)?, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/rotate-secret",
    tag = "devices",
    params(("id" = String, Path, description = "Device id (UUID)")),
    request_body = Option<RotateRequest>,
    responses((status = 200, description = "The device and its new secret, shown this once", body = DeviceWithSecretResponse), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn rotate_secret(
    state: web::Data<AppState>,
    who: Authenticated,
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
