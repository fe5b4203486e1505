//! Deployments: owners roll a bundle out to devices (`/api/v1/deployments`)
//! and follow its progress; devices learn their target
//! (`GET /api/v1/device/deployment`) and report
//! (`POST /api/v1/device/deployments/{id}/status`).

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{DateTime, Utc};
use eagate_domain::bundle::BundleId;
use eagate_domain::deployment::{Deployment, DeploymentId, DeviceProgress, NewDeploymentInput, TargetStatus};
use eagate_domain::device::DeviceId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Problems;
use crate::extract::{Authorized, Client, Json, SignedDevice, act, path_id};
use crate::problem::ApiError;
use crate::routes::bundles::BundleResponse;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// `/api/v1/deployments`.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(create).service(list).service(get_one).service(cancel);
}

/// `/api/v1/devices/{id}/labels` (registered in the devices scope).
pub fn configure_labels(cfg: &mut ServiceConfig<'_>) {
    cfg.service(get_labels).service(put_labels);
}

/// The device endpoints (registered in the device scope).
pub fn configure_device(cfg: &mut ServiceConfig<'_>) {
    cfg.service(target).service(report);
}

fn target_status() -> utoipa::openapi::schema::Object {
    super::text_enum(TargetStatus::ALL.map(TargetStatus::as_str))
}

fn deployment_state() -> utoipa::openapi::schema::Object {
    super::text_enum(["running", "completed", "aborted", "cancelled"])
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateDeploymentRequest {
    /// One of the caller's bundles.
    pub(crate) bundle_id: Uuid,
    /// `devices` (those in `device_ids`), `all` (every active device) or `label` (every active device with `label`).
    #[schema(example = "devices")]
    pub(crate) target: String,
    /// With `target: label`: the label (see PUT /api/v1/devices/{id}/labels).
    #[schema(example = "london")]
    pub(crate) label: Option<String>,
    /// With `target: devices`: 1 to 1000 of the caller's active devices, each once. The order decides the waves.
    pub(crate) device_ids: Option<Vec<Uuid>>,
    /// Cumulative percentages of the devices per wave, strictly ascending, ending at 100 (default `[100]`: all at once). A wave starts when every device of the previous one installed or failed.
    #[schema(example = json!([10, 50, 100]))]
    pub(crate) waves: Option<Vec<i64>>,
    /// Abort when more than this % of the finished devices of the current wave failed…
    #[schema(minimum = 0, maximum = 100, example = 20)]
    pub(crate) abort_failure_percent: Option<i64>,
    /// …once at least this many of them finished (default 1).
    #[schema(minimum = 1, maximum = 100000, example = 3)]
    pub(crate) abort_min_finished: Option<i64>,
    /// A device that has not installed or failed this many minutes after its wave started counts as failed (`timeout`).
    #[schema(minimum = 1, maximum = 43200, example = 60)]
    pub(crate) timeout_minutes: Option<i64>,
}

impl From<CreateDeploymentRequest> for NewDeploymentInput {
    fn from(b: CreateDeploymentRequest) -> Self {
        Self {
            bundle_id: BundleId::from_uuid(b.bundle_id),
            target: b.target,
            label: b.label,
            device_ids: b
                .device_ids
                .map(|ids| ids.into_iter().map(DeviceId::from_uuid).collect()),
            waves: b.waves,
            abort_failure_percent: b.abort_failure_percent,
            abort_min_finished: b.abort_min_finished,
            timeout_minutes: b.timeout_minutes,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StatusCountsResponse {
    waiting: u32,
    pending: u32,
    downloading: u32,
    installed: u32,
    failed: u32,
    cancelled: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct NextWaveResponse {
    /// The wave that starts next (0-based).
    wave: u32,
    /// It starts when these devices of the current wave have installed or failed (or timed out).
    waiting_for_devices: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceProgressResponse {
    device_id: Uuid,
    /// 0-based.
    wave: u32,
    #[schema(schema_with = target_status)]
    status: &'static str,
    /// For `failed`: what the device reported, or `timeout`.
    reason: Option<String>,
    /// When the device's wave started.
    started_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl From<&DeviceProgress> for DeviceProgressResponse {
    fn from(p: &DeviceProgress) -> Self {
        Self {
            device_id: p.device.as_uuid(),
            wave: p.wave,
            status: p.status.as_str(),
            reason: p.reason.clone(),
            started_at: p.started_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeploymentResponse {
    id: Uuid,
    bundle_id: Uuid,
    bundle_version: String,
    /// `devices`, `all` or `label`.
    target: &'static str,
    /// For `target: label`.
    label: Option<String>,
    waves: Vec<u8>,
    abort_failure_percent: Option<u8>,
    abort_min_finished: Option<u32>,
    timeout_minutes: Option<u32>,
    #[schema(schema_with = deployment_state)]
    state: &'static str,
    /// The wave in progress (0-based).
    current_wave: u32,
    counts: StatusCountsResponse,
    /// While running with a wave left: what it waits for.
    next_wave: Option<NextWaveResponse>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Every targeted device (left out of listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    devices: Option<Vec<DeviceProgressResponse>>,
}

fn render(d: &Deployment, with_devices: bool) -> DeploymentResponse {
    let c = d.counts();
    DeploymentResponse {
        id: d.id.as_uuid(),
        bundle_id: d.bundle.as_uuid(),
        bundle_version: d.bundle_version.as_str().to_owned(),
        target: d.target.kind(),
        label: d.target.label().map(|l| l.as_str().to_owned()),
        waves: d.rollout.waves.clone(),
        abort_failure_percent: d.rollout.abort.map(|a| a.failure_percent),
        abort_min_finished: d.rollout.abort.map(|a| a.min_finished),
        timeout_minutes: d.rollout.timeout_minutes,
        state: d.state.as_str(),
        current_wave: d.current_wave,
        counts: StatusCountsResponse {
            waiting: c.waiting,
            pending: c.pending,
            downloading: c.downloading,
            installed: c.installed,
            failed: c.failed,
            cancelled: c.cancelled,
        },
        next_wave: d.next_wave().map(|n| NextWaveResponse {
            wave: n.wave,
            waiting_for_devices: n.unfinished,
        }),
        created_at: d.created_at,
        updated_at: d.updated_at,
        devices: with_devices.then(|| d.devices.iter().map(DeviceProgressResponse::from).collect()),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeploymentList {
    items: Vec<DeploymentResponse>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeploymentListQuery {
    /// Deployments per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

fn deployment_id(raw: &str) -> Result<DeploymentId, ApiError> {
    Ok(DeploymentId::from_uuid(path_id(raw, "deployment")?))
}

/// Deploy a bundle
///
/// Rolls one of the caller's bundles out to a list of their devices or all of them, optionally in waves with an abort threshold and a per-device timeout. The first wave starts at once. Audited.
#[utoipa::path(
    operation_id = "createDeployment",
    tag = "deployments",
    request_body = CreateDeploymentRequest,
    responses((status = 201, description = "The deployment and every device's progress", body = DeploymentResponse), Problems),
    security(("bearer" = []), ("api_key" = ["deployments:write"]))
)]
#[post("")]
pub(crate) async fn create(
    state: web::Data<AppState>,
    who: Authorized<act::WriteDeployments>,
    client: Client,
    body: Json<CreateDeploymentRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = NewDeploymentInput::from(body.0);
    let d = state.deployments.create(who.0.user_id, input, &client.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/deployments/{}", d.id),
        ))
        .json(render(&d, true)))
}

/// List deployments
///
/// The caller's deployments, newest first, with counts per status (without the per-device list).
#[utoipa::path(
    operation_id = "listDeployments",
    tag = "deployments",
    params(DeploymentListQuery),
    responses((status = 200, description = "The caller's deployments, newest first", body = DeploymentList), Problems),
    security(("bearer" = []), ("api_key" = ["deployments:write"]))
)]
#[get("")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    who: Authorized<act::WriteDeployments>,
    query: web::Query<DeploymentListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .deployments
        .list(who.0.user_id, query.limit.as_deref(), query.cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(DeploymentList {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items.iter().map(|d| render(d, false)).collect(),
    }))
}

/// Get a deployment's progress
///
/// Counts per status, every device's status and timestamps, and what the next wave waits for. Timeouts, heartbeat confirmations and wave starts that are due are applied first.
#[utoipa::path(
    operation_id = "getDeployment",
    tag = "deployments",
    params(("id" = uuid::Uuid, Path, description = "The deployment's id")),
    responses((status = 200, description = "The deployment and every device's progress", body = DeploymentResponse), Problems),
    security(("bearer" = []), ("api_key" = ["deployments:write"]))
)]
#[get("/{id}")]
pub(crate) async fn get_one(
    state: web::Data<AppState>,
    who: Authorized<act::WriteDeployments>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let d = state.deployments.get(who.0.user_id, deployment_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(render(&d, true)))
}

/// Cancel a deployment
///
/// Stops a running deployment: devices that have not finished are cancelled. An ended deployment answers 409 `deployment-ended`. Audited.
#[utoipa::path(
    operation_id = "cancelDeployment",
    tag = "deployments",
    params(("id" = uuid::Uuid, Path, description = "The deployment's id")),
    responses((status = 200, description = "The cancelled deployment", body = DeploymentResponse), Problems),
    security(("bearer" = []), ("api_key" = ["deployments:write"]))
)]
#[post("/{id}/cancel")]
pub(crate) async fn cancel(
    state: web::Data<AppState>,
    who: Authorized<act::WriteDeployments>,
    client: Client,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .deployments
        .cancel(who.0.user_id, deployment_id(&id)?, &client.0)
        .await?;
    Ok(HttpResponse::Ok().json(render(&d, true)))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceLabels {
    /// Up to 20 labels, each 1 to 32 lowercase ASCII letters, digits, `.`, `_`, `-` (starting with a letter or digit); repeats are dropped.
    #[schema(example = json!(["london", "vps"]))]
    pub(crate) labels: Vec<String>,
}

fn device_id(raw: &str) -> Result<DeviceId, ApiError> {
    Ok(DeviceId::from_uuid(path_id(raw, "device")?))
}

/// Get a device's labels
///
/// The labels deployments can target (`target: label`), sorted.
#[utoipa::path(
    operation_id = "getDeviceLabels",
    tag = "deployments",
    params(("id" = uuid::Uuid, Path, description = "The device's id")),
    responses((status = 200, description = "The device's labels", body = DeviceLabels), Problems),
    security(("bearer" = []), ("api_key" = ["devices:read"]))
)]
#[get("/{id}/labels")]
pub(crate) async fn get_labels(
    state: web::Data<AppState>,
    who: Authorized<act::ReadDevice>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let labels = state.deployments.labels(who.0.user_id, device_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(DeviceLabels {
        labels: labels.iter().map(|l| l.as_str().to_owned()).collect(),
    }))
}

/// Replace a device's labels
///
/// Sets the device's labels (an empty list removes them all). Deployments already created keep the devices they chose. Audited (`device.labels_changed`).
#[utoipa::path(
    operation_id = "replaceDeviceLabels",
    tag = "deployments",
    params(("id" = uuid::Uuid, Path, description = "The device's id")),
    request_body = DeviceLabels,
    responses((status = 200, description = "The device's labels, sorted", body = DeviceLabels), Problems),
    security(("bearer" = []), ("api_key" = ["devices:write"]))
)]
#[put("/{id}/labels")]
pub(crate) async fn put_labels(
    state: web::Data<AppState>,
    who: Authorized<act::LabelDevice>,
    client: Client,
    id: web::Path<String>,
    body: Json<DeviceLabels>,
) -> Result<HttpResponse, ApiError> {
    let labels = state
        .deployments
        .set_labels(who.0.user_id, device_id(&id)?, &body.0.labels, &client.0)
        .await?;
    Ok(HttpResponse::Ok().json(DeviceLabels {
        labels: labels.iter().map(|l| l.as_str().to_owned()).collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceTargetResponse {
    deployment_id: Uuid,
    /// This device's status: `pending` (download it) or `downloading`.
    #[schema(schema_with = target_status)]
    status: &'static str,
    bundle: BundleResponse,
    /// Where to download the file (signed GET).
    #[schema(example = "/api/v1/device/bundles/0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b")]
    download_path: String,
    /// Report `failed` (reason `timeout`) is what the server records if the device has not finished by then.
    deadline: Option<DateTime<Utc>>,
}

/// Get this device's deployment
///
/// The bundle this device should install now (its deployment is running and the device is `pending` or `downloading`), or 204 when there is none. Download it, verify its SHA-256, install it, then report.
#[utoipa::path(
    operation_id = "getDeviceDeployment",
    tag = "device",
    responses(
        (status = 200, description = "The bundle to install", body = DeviceTargetResponse),
        (status = 204, description = "Nothing to install"),
        Problems
    ),
    security(("device_id" = [], "device_timestamp" = [], "device_nonce" = [], "device_signature" = []))
)]
#[get("/deployment")]
pub(crate) async fn target(
    state: web::Data<AppState>,
    signed: SignedDevice,
) -> Result<HttpResponse, ApiError> {
    let device = signed.device.id;
    let Some(d) = state.deployments.target_of(device).await? else {
        return Ok(HttpResponse::NoContent().finish());
    };
    let bundle = state.bundles.for_device(device, d.bundle).await?;
    let progress = d.progress_of(device);
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(DeviceTargetResponse {
            deployment_id: d.id.as_uuid(),
            status: progress.map_or("pending", |p| p.status.as_str()),
            download_path: format!("/api/v1/device/bundles/{}", bundle.id),
            bundle: BundleResponse::from(&bundle),
            deadline: match (d.rollout.timeout_minutes, progress.and_then(|p| p.started_at)) {
                (Some(m), Some(started)) => Some(started + chrono::Duration::minutes(i64::from(m))),
                _ => None,
            },
        }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusReport {
    /// `downloading`, `installed` or `failed`. From `pending`: any of them; from `downloading`: `installed` or `failed`. Repeating the current status is accepted.
    #[schema(example = "installed")]
    pub(crate) status: String,
    /// With `failed` only: why (1 to 512 characters).
    #[schema(min_length = 1, max_length = 512, example = "digest mismatch")]
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StatusReportResponse {
    deployment_id: Uuid,
    #[schema(schema_with = target_status)]
    status: &'static str,
    reason: Option<String>,
    updated_at: DateTime<Utc>,
    /// The deployment's state after the report.
    #[schema(schema_with = deployment_state)]
    deployment_state: &'static str,
}

/// Report deployment progress
///
/// The device's status in a deployment that targets it: `pending → downloading → installed | failed(reason)`. Anything else is 409 `invalid-transition` (with `current_status`). The EA version in later heartbeats also confirms an installation. Audited.
#[utoipa::path(
    operation_id = "reportDeploymentStatus",
    tag = "device",
    params(("id" = uuid::Uuid, Path, description = "The deployment's id")),
    request_body = StatusReport,
    responses((status = 200, description = "The device's status now", body = StatusReportResponse), Problems),
    security(("device_id" = [], "device_timestamp" = [], "device_nonce" = [], "device_signature" = []))
)]
#[post("/deployments/{id}/status")]
pub(crate) async fn report(
    state: web::Data<AppState>,
    signed: SignedDevice,
    client: Client,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let body = signed.json::<StatusReport>()?;
    let device = signed.device.id;
    let d = state
        .deployments
        .report(
            device,
            deployment_id(&id)?,
            &body.status,
            body.reason.as_deref(),
            &client.0,
        )
        .await?;
    let p = d
        .progress_of(device)
        .ok_or_else(|| ApiError::internal("the reporting device left the deployment"))?;
    Ok(HttpResponse::Ok().json(StatusReportResponse {
        deployment_id: d.id.as_uuid(),
        status: p.status.as_str(),
        reason: p.reason.clone(),
        updated_at: p.updated_at,
        deployment_state: d.state.as_str(),
    }))
}
