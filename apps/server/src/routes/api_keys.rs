//! `/api/v1/api-keys`: the owner's API keys for scripts and CI. Managing
//! keys needs a password session: a key can never manage keys.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use eagate_domain::access::{ApiKey, ApiKeyId, CreateApiKeyInput, CreatedApiKey, Scope};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Problems;
use crate::extract::{Authorized, Json, act, path_id};
use crate::problem::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(create).service(list).service(revoke).service(rotate);
}

/// One of the fixed scopes.
pub(crate) fn scope_name() -> utoipa::openapi::schema::Object {
    super::text_enum(Scope::ALL.map(Scope::as_str))
}

fn scope_list() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(scope_name())
        .min_items(Some(1))
        .build()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    /// Unique among your active keys (ignoring case).
    #[schema(min_length = 1, max_length = 64, example = "TradingView relay")]
    pub(crate) name: String,
    /// What the key may do (at least one).
    #[schema(schema_with = scope_list, example = json!(["signals:publish"]))]
    pub(crate) scopes: Vec<String>,
    /// When the key stops working (in the future, at most 5 years ahead); never when absent.
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// Networks the key may be used from, in CIDR notation (a bare address is one host); anywhere when absent or empty. At most 32.
    #[schema(max_items = 32, example = json!(["203.0.113.0/24"]))]
    pub(crate) allowed_cidrs: Option<Vec<String>>,
}

impl From<CreateApiKeyRequest> for CreateApiKeyInput {
    fn from(body: CreateApiKeyRequest) -> Self {
        Self {
            name: body.name,
            scopes: body.scopes,
            expires_at: body.expires_at,
            allowed_cidrs: body.allowed_cidrs.unwrap_or_default(),
        }
    }
}

/// `limit` stays text: the use case validates it and names it in its 422.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyListQuery {
    /// Keys per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// An API key as its owner sees it: never the key itself after creation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiKeyResponse {
    id: Uuid,
    name: String,
    /// `eag_live_` and the first characters of the key, to tell keys apart.
    #[schema(example = "eag_live_Xk3q9Z")]
    prefix: String,
    #[schema(schema_with = scope_list)]
    scopes: Vec<&'static str>,
    allowed_cidrs: Vec<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    /// Updated about once a second at most, not on every request.
    last_used_at: Option<DateTime<Utc>>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyResponse {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.as_uuid(),
            name: k.name.as_str().to_owned(),
            prefix: k.prefix,
            scopes: k.scopes.names(),
            allowed_cidrs: k.allowed.to_strings(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            rotated_at: k.rotated_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key with its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiKeyWithSecretResponse {
    /// The key: send it as `Authorization: Bearer <key>`. Shown this once; store it now.
    #[schema(pattern = "^eag_live_[A-Za-z0-9_-]{49}$")]
    key: String,
    #[serde(flatten)]
    api_key: ApiKeyResponse,
}

impl From<CreatedApiKey> for ApiKeyWithSecretResponse {
    fn from(created: CreatedApiKey) -> Self {
        Self {
            key: created.secret.expose().to_owned(),
            api_key: created.key.into(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiKeyList {
    items: Vec<ApiKeyResponse>,
    next_cursor: Option<String>,
}

fn api_key_id(raw: &str) -> Result<ApiKeyId, ApiError> {
    path_id(raw, "API key").map(ApiKeyId::from_uuid)
}

/// Create an API key
///
/// Returns the key, shown this once. Needs a password session (an API key cannot create keys).
#[utoipa::path(
    operation_id = "createApiKey",
    tag = "api-keys",
    request_body = CreateApiKeyRequest,
    responses((status = 201, description = "The key and its secret, shown this once", body = ApiKeyWithSecretResponse), Problems),
    security(("bearer" = []))
)]
#[post("")]
pub(crate) async fn create(
    state: web::Data<AppState>,
    who: Authorized<act::ManageApiKeys>,
    body: Json<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let input = CreateApiKeyInput::from(body.0);
    let created = state
        .api_keys
        .create(who.0.user_id, &input, &who.0.client)
        .await?;
    let location = format!("/api/v1/api-keys/{}", created.key.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ApiKeyWithSecretResponse::from(created)))
}

/// List API keys
///
/// The caller's keys (revoked ones too), newest first, without their secrets.
#[utoipa::path(
    operation_id = "listApiKeys",
    tag = "api-keys",
    params(ApiKeyListQuery),
    responses((status = 200, description = "The caller's keys, newest first", body = ApiKeyList), Problems),
    security(("bearer" = []))
)]
#[get("")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    who: Authorized<act::ManageApiKeys>,
    query: web::Query<ApiKeyListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = state
        .api_keys
        .list(who.0.user_id, q.limit.as_deref(), q.cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(ApiKeyList {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items.into_iter().map(ApiKeyResponse::from).collect(),
    }))
}

/// Revoke an API key
///
/// The key stops working at once, on every instance. Idempotent.
#[utoipa::path(
    operation_id = "revokeApiKey",
    tag = "api-keys",
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    responses((status = 200, description = "The revoked key", body = ApiKeyResponse), Problems),
    security(("bearer" = []))
)]
#[delete("/{id}")]
pub(crate) async fn revoke(
    state: web::Data<AppState>,
    who: Authorized<act::ManageApiKeys>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = state
        .api_keys
        .revoke(who.0.user_id, api_key_id(&id)?, &who.0.client)
        .await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse::from(key)))
}

/// Rotate an API key
///
/// Returns a new secret for the key, shown this once; the old one stops working at once. Name, scopes, expiry and allowlist stay.
#[utoipa::path(
    operation_id = "rotateApiKey",
    tag = "api-keys",
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    responses((status = 200, description = "The key and its new secret, shown this once", body = ApiKeyWithSecretResponse), Problems),
    security(("bearer" = []))
)]
#[post("/{id}/rotate")]
pub(crate) async fn rotate(
    state: web::Data<AppState>,
    who: Authorized<act::ManageApiKeys>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let rotated = state
        .api_keys
        .rotate(who.0.user_id, api_key_id(&id)?, &who.0.client)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ApiKeyWithSecretResponse::from(rotated)))
}
