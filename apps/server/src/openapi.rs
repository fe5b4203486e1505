//! The OpenAPI 3.1 document's own parts: title, servers, tags, security
//! schemes and the problem schemas. The operations come from the route
//! registrations (`crate::routes`), which serve the whole document at
//! `GET /api/openapi.json` with an interactive page at `/docs/` (Swagger UI
//! compiled into the binary: no CDN). `docs/openapi.json` is this document,
//! committed; a test fails when they differ (`just openapi` regenerates it).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::{FieldProblem, Problem};

/// The security scheme of owner routes (`security(("bearer" = []))`).
const BEARER: &str = "bearer";

/// The alternative on owner routes that API keys may call, with the scope
/// the key needs (`security(("bearer" = []), ("api_key" = ["signals:publish"]))`).
const API_KEY: &str = "api_key";

/// The four headers of a protocol v1 signed request, each a security
/// scheme; device routes require all four together.
const DEVICE_SIGNING_HEADERS: [(&str, &str, &str); 4] = [
    (
        "device_id",
        "X-Device-Id",
        "The device's id (UUID), as returned when it was registered.",
    ),
    (
        "device_timestamp",
        "X-Timestamp",
        "The request's Unix time in seconds; it must be within the allowed clock skew of the server's.",
    ),
    (
        "device_nonce",
        "X-Nonce",
        "16–64 characters of A-Z a-z 0-9 _ -, never reused by the device.",
    ),
    (
        "device_signature",
        "X-Signature",
        "`v1=` + hex HMAC-SHA256 over the canonical request with the device secret (docs/protocol.md).",
    ),
];

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
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
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("eag_live_ API key")
                    .description(Some(
                        "An API key from POST /api/v1/api-keys (`eag_live_` + 49 characters), for scripts \
                         and CI. Each operation lists the one scope it needs; operations that do not list \
                         this scheme refuse keys (403 session-required), and a key without the scope is \
                         refused with 403 missing-scope.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "EAGATE_METRICS_TOKEN, for GET /metrics (required when it is set; in production \
                         /metrics is off until it is).",
                    ))
                    .build(),
            ),
        );
        for (name, header, description) in DEVICE_SIGNING_HEADERS {
            components.add_security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    header,
                    &format!(
                        "Protocol v1 request signing (docs/protocol.md), one of four headers: {description}"
                    ),
                ))),
            );
        }
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "eagate",
        description = "Device registry and request-signing gateway for MetaTrader 5 Expert Advisors. \
                       Errors are RFC 9457 application/problem+json bodies (see the Problem schema). \
                       Device endpoints are signed with protocol v1 (docs/protocol.md).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "/", description = "The server that serves this document")),
    components(schemas(Problem, FieldProblem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Accounts, logins and tokens"),
        (name = "devices", description = "The owner's device registry"),
        (name = "audit", description = "The owner's security events"),
        (name = "api-keys", description = "The owner's API keys for scripts and CI"),
        (name = "admin", description = "Administering the installation (administrators only)"),
        (name = "signals", description = "Publishing trading signals"),
        (name = "config", description = "Per-device trading configuration and the account default"),
        (name = "bundles", description = "The owner's EA bundles (uploaded builds)"),
        (name = "deployments", description = "Rolling bundles out to devices, in waves"),
        (name = "device", description = "The API Expert Advisors call (signed)"),
        (name = "operations", description = "Service index, health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Final touches once every operation is in: public operations declare
/// `security: []` (no requirement) rather than `[{}]`.
pub(crate) fn finish(api: &mut utoipa::openapi::OpenApi) {
    for item in api.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(security) = &mut operation.security {
                let empty = utoipa::openapi::security::SecurityRequirement::default();
                security.retain(|requirement| *requirement != empty);
            }
        }
    }
}
