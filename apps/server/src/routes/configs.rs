//! Trading configuration: the account default (`/api/v1/config`) and each
//! device's document (`/api/v1/devices/{id}/config`), read with where each
//! effective value comes from, replaced (PUT) or merge-patched (PATCH) under
//! `If-Match`, listed and rolled back.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use eagate_domain::config::{
    ConfigScope, ConfigVersion, CurrentConfig, EffectiveConfig, FIELDS, Mode, SkipReason,
};
use eagate_domain::device::DeviceId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Problems;
use crate::extract::{Authorized, Client, Json, act, optional_header, path_id};
use crate::problem::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// `/api/v1/config`: the account default.
pub fn configure_account(cfg: &mut ServiceConfig<'_>) {
    cfg.service(get_account)
        .service(replace_account)
        .service(patch_account)
        .service(history_account)
        .service(rollback_account);
}

/// `/api/v1/devices/{id}/config` (registered in the devices scope).
pub fn configure_device(cfg: &mut ServiceConfig<'_>) {
    cfg.service(get_device)
        .service(replace_device)
        .service(patch_device)
        .service(history_device)
        .service(rollback_device);
}

/// `active`, `close_only` or `paused`.
pub(crate) fn mode() -> utoipa::openapi::schema::Object {
    super::text_enum([Mode::Active, Mode::CloseOnly, Mode::Paused].map(Mode::as_str))
}

/// Why a delivery was skipped.
pub(crate) fn skip_reason_or_null() -> utoipa::openapi::schema::Object {
    super::text_enum_or_null(SkipReason::ALL.map(SkipReason::as_str))
}

/// How a signal's volume becomes the device's: `fixed` lots, a
/// `multiplier` of the signal's volume, or `risk_percent` of the balance at
/// the signal's stop distance (sized by the EA; signals without a stop loss
/// are skipped).
#[allow(dead_code)] // Documents the schema; documents are validated by the domain.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Sizing {
    Fixed {
        #[schema(exclusive_minimum = 0, maximum = 1000, example = 0.1)]
        lots: f64,
    },
    Multiplier {
        #[schema(exclusive_minimum = 0, maximum = 100, example = 0.5)]
        factor: f64,
    },
    RiskPercent {
        #[schema(exclusive_minimum = 0, maximum = 100, example = 1.0)]
        percent: f64,
    },
}

/// A trading configuration document. Every field is optional: a field left
/// out (or `null`) is inherited (device → account default → built-in:
/// `mode` active, `sizing` a multiplier of 1, the rest unset).
#[allow(dead_code)] // The schema of the JSON the domain validates.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigDocument {
    #[schema(schema_with = mode)]
    mode: Option<String>,
    sizing: Option<Sizing>,
    /// The largest volume delivered, in lots.
    #[schema(exclusive_minimum = 0, maximum = 1000, example = 2.0)]
    max_lot: Option<f64>,
    /// Signal symbols the device trades (before mapping); absent: all.
    #[schema(min_items = 1, max_items = 500, example = json!(["EURUSD", "XAUUSD"]))]
    allowed_symbols: Option<Vec<String>>,
    /// Signal symbol → broker symbol (at most 500).
    #[schema(example = json!({"XAUUSD": "GOLD.m"}))]
    symbol_map: Option<BTreeMap<String, String>>,
    /// Enforced by the EA.
    #[schema(minimum = 1, maximum = 10000, example = 5)]
    max_open_trades: Option<u32>,
    /// In account currency; enforced by the EA.
    #[schema(exclusive_minimum = 0, maximum = 1e12, example = 500.0)]
    max_daily_loss: Option<f64>,
    /// Enforced by the EA.
    #[schema(minimum = 0, maximum = 100000, example = 20)]
    slippage_points: Option<u32>,
    /// The EA's order magic number.
    #[schema(minimum = 0, example = 424242)]
    magic_number: Option<i64>,
}

/// Every field's effective value (`null`: unset).
pub(crate) fn effective_json(e: &EffectiveConfig) -> serde_json::Value {
    serde_json::Value::Object(
        FIELDS
            .into_iter()
            .map(|f| {
                (
                    f.to_owned(),
                    e.values.field_json(f).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect(),
    )
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TradingConfigResponse {
    /// `account` (the default) or `device`.
    #[schema(example = "device")]
    scope: &'static str,
    /// The device, for a device's configuration.
    device_id: Option<Uuid>,
    /// This document's version (its `ETag`, quoted); 0 before the first write.
    #[schema(example = 3)]
    version: u32,
    /// This scope's own fields.
    #[schema(value_type = ConfigDocument)]
    document: serde_json::Value,
    /// Every field as it applies (for the account default: over the built-in values).
    #[schema(value_type = ConfigDocument)]
    effective: serde_json::Value,
    /// Where each effective value comes from: `device`, `account` or `default` (built-in or unset).
    #[schema(value_type = BTreeMap<String, String>, example = json!({"mode": "account", "max_lot": "device"}))]
    sources: BTreeMap<&'static str, &'static str>,
    /// The account default's version the effective values include.
    account_version: u32,
    /// For a device: its configuration revision, which polls report as `config_revision`.
    config_revision: Option<i64>,
}

fn render(scope: ConfigScope, current: &CurrentConfig, effective: &EffectiveConfig) -> HttpResponse {
    let body = TradingConfigResponse {
        scope: if scope.device().is_some() {
            "device"
        } else {
            "account"
        },
        device_id: scope.device().map(|d| d.as_uuid()),
        version: current.version,
        document: current.layer.to_json(),
        effective: effective_json(effective),
        sources: effective.sources.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        account_version: effective.account_version,
        config_revision: scope.device().map(|_| effective.revision),
    };
    HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", current.version)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConfigVersionResponse {
    version: u32,
    /// `replaced`, `patched` or `rolled_back`.
    #[schema(example = "patched")]
    change: &'static str,
    /// For a rollback: the version copied.
    rolled_back_to: Option<u32>,
    #[schema(value_type = ConfigDocument)]
    document: serde_json::Value,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConfigHistory {
    items: Vec<ConfigVersionResponse>,
    next_cursor: Option<String>,
}

impl From<&ConfigVersion> for ConfigVersionResponse {
    fn from(v: &ConfigVersion) -> Self {
        Self {
            version: v.version,
            change: v.change.as_str(),
            rolled_back_to: match v.change {
                eagate_domain::config::ConfigChange::RolledBack { to } => Some(to),
                _ => None,
            },
            document: v.layer.to_json(),
            created_at: v.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    /// Versions per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackRequest {
    /// The version whose document becomes current again (as a new version); 0 is the empty document.
    #[schema(minimum = 0, example = 2)]
    pub(crate) version: u32,
}

/// The `If-Match` header, if sent (once, as visible ASCII).
fn if_match(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    optional_header(req, "If-Match")
}

fn device_scope<A>(who: &Authorized<A>, id: &str) -> Result<ConfigScope, ApiError> {
    Ok(ConfigScope::Device(
        who.0.user_id,
        DeviceId::from_uuid(path_id(id, "device")?),
    ))
}

async fn read(state: &AppState, scope: ConfigScope) -> Result<HttpResponse, ApiError> {
    let (current, effective) = state.configs.get(scope).await?;
    Ok(render(scope, &current, &effective))
}

async fn replace(
    state: &AppState,
    req: &HttpRequest,
    scope: ConfigScope,
    body: &serde_json::Value,
    client: &Client,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(req)?;
    let (current, effective) = state
        .configs
        .replace(scope, precondition.as_deref(), body, &client.0)
        .await?;
    Ok(render(scope, &current, &effective))
}

async fn merge(
    state: &AppState,
    req: &HttpRequest,
    scope: ConfigScope,
    body: &serde_json::Value,
    client: &Client,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(req)?;
    let (current, effective) = state
        .configs
        .patch(scope, precondition.as_deref(), body, &client.0)
        .await?;
    Ok(render(scope, &current, &effective))
}

async fn history(state: &AppState, scope: ConfigScope, q: HistoryQuery) -> Result<HttpResponse, ApiError> {
    let page = state
        .configs
        .history(scope, q.limit.as_deref(), q.cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(ConfigHistory {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items.iter().map(ConfigVersionResponse::from).collect(),
    }))
}

async fn rollback(
    state: &AppState,
    req: &HttpRequest,
    scope: ConfigScope,
    body: &RollbackRequest,
    client: &Client,
) -> Result<HttpResponse, ApiError> {
    let precondition = if_match(req)?;
    let (current, effective) = state
        .configs
        .rollback(scope, precondition.as_deref(), body.version, &client.0)
        .await?;
    Ok(render(scope, &current, &effective))
}

const IF_MATCH_DOC: &str = "The document's current `ETag` (its version in double quotes, e.g. `\"3\"`), or `*` for whatever is current. Required: without it the write is refused with 428; a stale version gets 412.";

/// Get the account default configuration
///
/// The configuration every device inherits field by field, its version (`ETag`) and its values over the built-in ones.
#[utoipa::path(
    operation_id = "getAccountConfig",
    tag = "config",
    responses((status = 200, description = "The account default", body = TradingConfigResponse, headers(("ETag" = String, description = "The version, quoted"))), Problems),
    security(("bearer" = []), ("api_key" = ["config:read"]))
)]
#[get("")]
pub(crate) async fn get_account(
    state: web::Data<AppState>,
    who: Authorized<act::ReadConfig>,
) -> Result<HttpResponse, ApiError> {
    read(&state, ConfigScope::Account(who.0.user_id)).await
}

/// Replace the account default configuration
///
/// Stores the document as the next version; devices see the change on their next poll (`config_revision`). Audited.
#[utoipa::path(
    operation_id = "replaceAccountConfig",
    tag = "config",
    params(("If-Match" = String, Header, description = IF_MATCH_DOC)),
    request_body = ConfigDocument,
    responses((status = 200, description = "The new version", body = TradingConfigResponse, headers(("ETag" = String, description = "The new version, quoted"))), Problems),
    security(("bearer" = []), ("api_key" = ["config:write"]))
)]
#[put("")]
pub(crate) async fn replace_account(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authorized<act::WriteConfig>,
    client: Client,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    replace(
        &state,
        &req,
        ConfigScope::Account(who.0.user_id),
        &body.0,
        &client,
    )
    .await
}

/// Patch the account default configuration
///
/// A JSON merge patch (RFC 7396, `application/merge-patch+json` or `application/json`): `null` removes a field (inherit it); `symbol_map` merges entry by entry; `sizing` is replaced whole. Audited.
#[utoipa::path(
    operation_id = "patchAccountConfig",
    tag = "config",
    params(("If-Match" = String, Header, description = IF_MATCH_DOC)),
    request_body(content = ConfigDocument, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The new version", body = TradingConfigResponse, headers(("ETag" = String, description = "The new version, quoted"))), Problems),
    security(("bearer" = []), ("api_key" = ["config:write"]))
)]
#[patch("")]
pub(crate) async fn patch_account(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authorized<act::WriteConfig>,
    client: Client,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    merge(
        &state,
        &req,
        ConfigScope::Account(who.0.user_id),
        &body.0,
        &client,
    )
    .await
}

/// List the account default's versions
///
/// Newest first, one page at a time.
#[utoipa::path(
    operation_id = "listAccountConfigVersions",
    tag = "config",
    params(HistoryQuery),
    responses((status = 200, description = "Stored versions, newest first", body = ConfigHistory), Problems),
    security(("bearer" = []), ("api_key" = ["config:read"]))
)]
#[get("/history")]
pub(crate) async fn history_account(
    state: web::Data<AppState>,
    who: Authorized<act::ReadConfig>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    history(&state, ConfigScope::Account(who.0.user_id), query.into_inner()).await
}

/// Roll the account default back
///
/// Stores a copy of an earlier version's document as the next version. Audited.
#[utoipa::path(
    operation_id = "rollbackAccountConfig",
    tag = "config",
    params(("If-Match" = String, Header, description = IF_MATCH_DOC)),
    request_body = RollbackRequest,
    responses((status = 200, description = "The new version", body = TradingConfigResponse, headers(("ETag" = String, description = "The new version, quoted"))), Problems),
    security(("bearer" = []), ("api_key" = ["config:write"]))
)]
#[post("/rollback")]
pub(crate) async fn rollback_account(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authorized<act::WriteConfig>,
    client: Client,
    body: Json<RollbackRequest>,
) -> Result<HttpResponse, ApiError> {
    rollback(
        &state,
        &req,
        ConfigScope::Account(who.0.user_id),
        &body.0,
        &client,
    )
    .await
}

/// Get a device's configuration
///
/// The device's own document and version (`ETag`), its effective values and where each comes from (`device`, `account`, `default`).
#[utoipa::path(
    operation_id = "getDeviceTradingConfig",
    tag = "config",
    params(("id" = uuid::Uuid, Path, description = "The device's id")),
    responses((status = 200, description = "The device's configuration", body = TradingConfigResponse, headers(("ETag" = String, description = "The device document's version, quoted"))), Problems),
    security(("bearer" = []), ("api_key" = ["config:read"]))
)]
#[get("/{id}/config")]
pub(crate) async fn get_device(
    state: web::Data<AppState>,
    who: Authorized<act::ReadConfig>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    read(&state, device_scope(&who, &id)?).await
}

/// Replace a device's configuration
///
/// Stores the document as the device's next version. Audited.
#[utoipa::path(
    operation_id = "replaceDeviceTradingConfig",
    tag = "config",
    params(("id" = uuid::Uuid, Path, description = "The device's id"), ("If-Match" = String, Header, description = IF_MATCH_DOC)),
    request_body = ConfigDocument,
    responses((status = 200, description = "The new version", body = TradingConfigResponse, headers(("ETag" = String, description = "The new version, quoted"))), Problems),
    security(("bearer" = []), ("api_key" = ["config:write"]))
)]
#[put("/{id}/config")]
pub(crate) async fn replace_device(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authorized<act::WriteConfig>,
    client: Client,
    id: web::Path<String>,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    replace(&state, &req, device_scope(&who, &id)?, &body.0, &client).await
}

/// Patch a device's configuration
///
/// A JSON merge patch of the device's document (see patchAccountConfig). Audited.
#[utoipa::path(
    operation_id = "patchDeviceTradingConfig",
    tag = "config",
    params(("id" = uuid::Uuid, Path, description = "The device's id"), ("If-Match" = String, Header, description = IF_MATCH_DOC)),
    request_body(content = ConfigDocument, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The new version", body = TradingConfigResponse, headers(("ETag" = String, description = "The new version, quoted"))), Problems),
    security(("bearer" = []), ("api_key" = ["config:write"]))
)]
#[patch("/{id}/config")]
pub(crate) async fn patch_device(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authorized<act::WriteConfig>,
    client: Client,
    id: web::Path<String>,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    merge(&state, &req, device_scope(&who, &id)?, &body.0, &client).await
}

/// List a device's configuration versions
///
/// Newest first, one page at a time.
#[utoipa::path(
    operation_id = "listDeviceTradingConfigVersions",
    tag = "config",
    params(("id" = uuid::Uuid, Path, description = "The device's id"), HistoryQuery),
    responses((status = 200, description = "Stored versions, newest first", body = ConfigHistory), Problems),
    security(("bearer" = []), ("api_key" = ["config:read"]))
)]
#[get("/{id}/config/history")]
pub(crate) async fn history_device(
    state: web::Data<AppState>,
    who: Authorized<act::ReadConfig>,
    id: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    history(&state, device_scope(&who, &id)?, query.into_inner()).await
}

/// Roll a device's configuration back
///
/// Stores a copy of an earlier version's document as the device's next version. Audited.
#[utoipa::path(
    operation_id = "rollbackDeviceTradingConfig",
    tag = "config",
    params(("id" = uuid::Uuid, Path, description = "The device's id"), ("If-Match" = String, Header, description = IF_MATCH_DOC)),
    request_body = RollbackRequest,
    responses((status = 200, description = "The new version", body = TradingConfigResponse, headers(("ETag" = String, description = "The new version, quoted"))), Problems),
    security(("bearer" = []), ("api_key" = ["config:write"]))
)]
#[post("/{id}/config/rollback")]
pub(crate) async fn rollback_device(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authorized<act::WriteConfig>,
    client: Client,
    id: web::Path<String>,
    body: Json<RollbackRequest>,
) -> Result<HttpResponse, ApiError> {
    rollback(&state, &req, device_scope(&who, &id)?, &body.0, &client).await
}
