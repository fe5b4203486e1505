//! The OpenAPI 3.1 document, generated from the route annotations, served
//! at `GET /api/openapi.json` with an interactive page at `/docs` (Swagger UI
//! compiled into the binary: no CDN). `docs/openapi.json` is this document,
//! committed; a test fails when they differ (`just openapi` regenerates it).

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::{audit, auth, device_api, devices, meta, signals};

/// An RFC 9457 problem: every error response of the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:eagate:problem:<code>`; branch on this (or `code`), never on `title`.
    #[schema(example = "urn:eagate:problem:validation-failed")]
    #[serde(rename = "type")]
    pub type_: String,
    /// The stable code: validation-failed, malformed-body, malformed-query,
    /// malformed-id, malformed-header, unsupported-media-type,
    /// payload-too-large, headers-too-large, request-timeout, not-found,
    /// method-not-allowed, invalid-credentials, invalid-token,
    /// invalid-refresh-token, wrong-password, email-taken, username-taken,
    /// device-name-taken, device-limit-reached, device-not-active,
    /// idempotency-key-reused, ack-conflict, rate-limited, cors-denied,
    /// clock-skew, invalid-signature, device-revoked, replayed,
    /// service-unavailable, not-ready, bad-request, internal-error.
    #[schema(example = "validation-failed")]
    pub code: String,
    pub title: String,
    pub status: u16,
    /// What was wrong, for humans.
    pub detail: String,
    /// `urn:eagate:request:<request id>` (also in `X-Request-Id`).
    pub instance: Option<String>,
    /// For validation problems: every failing field.
    pub errors: Option<Vec<FieldProblem>>,
    /// `clock-skew`: the server's Unix time.
    pub server_time: Option<i64>,
    /// `rate-limited`: seconds until a retry may succeed.
    pub retry_after: Option<u64>,
}

/// One failing input field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field's name or JSON path, e.g. `username`, `device_ids`, `X-Nonce`.
    pub field: String,
    pub code: String,
    pub message: String,
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from POST /api/v1/auth/login or /refresh (EdDSA JWT, 15 minutes).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "device_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Signature",
                "Protocol v1 request signing: X-Device-Id, X-Timestamp, X-Nonce and X-Signature \
                 (`v1=` + hex HMAC-SHA256 with the device secret). See docs/protocol.md.",
            ))),
        );
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "eagate",
        description = "Device registry and request-signing gateway for MetaTrader 5 Expert Advisors. \
                       Errors are RFC 9457 application/problem+json bodies (see the Problem schema). \
                       Device endpoints are signed with protocol v1 (docs/protocol.md).",
        license(name = "Apache-2.0")
    ),
    paths(
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::me,
        auth::change_password,
        auth::delete_me,
        devices::register,
        devices::list,
        devices::get,
        devices::rename,
        devices::revoke,
        devices::rotate_secret,
        audit::list,
        signals::publish,
        signals::list,
        signals::get,
        signals::cancel,
        device_api::heartbeat,
        device_api::config,
        device_api::poll,
        device_api::ack,
        meta::jwks,
        meta::healthz,
        meta::readyz,
        meta::metrics,
    ),
    components(schemas(Problem, FieldProblem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Accounts, logins and tokens"),
        (name = "devices", description = "The owner's device registry"),
        (name = "audit", description = "The owner's security events"),
        (name = "signals", description = "Publishing trading signals"),
        (name = "device", description = "The API Expert Advisors call (signed)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON, exactly as committed in docs/openapi.json.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub(crate) async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-cache"))
        .body(document())
}

/// The interactive documentation page.
pub(crate) fn docs_ui() -> utoipa_swagger_ui::SwaggerUi {
    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url("/api/openapi.json", ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_document_matches_the_code() {
        let committed = include_str!("../../../docs/openapi.json");
        let generated = super::document();
        assert!(
            committed.trim_end() == generated.trim_end(),
            "docs/openapi.json is out of date: run `just openapi` (cargo run -p eagate-server -- openapi > docs/openapi.json)"
        );
    }

    #[test]
    fn every_operation_documents_problems_and_security() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let operational = path.starts_with("/healthz")
                    || path.starts_with("/metrics")
                    || path.starts_with("/.well-known")
                    || path.starts_with("/readyz");
                if !operational {
                    assert!(
                        responses.contains_key("4XX") && responses.contains_key("5XX"),
                        "{method} {path}"
                    );
                }
                let needs_auth = path.starts_with("/api/v1/")
                    && !path.starts_with("/api/v1/auth/register")
                    && !path.starts_with("/api/v1/auth/login")
                    && !path.starts_with("/api/v1/auth/refresh");
                if needs_auth {
                    assert!(op["security"].is_array(), "{method} {path} declares its security");
                }
            }
        }
    }
}
