//! Service metadata: the index, this API's document and docs page,
//! token-verification keys, health, readiness, metrics.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::Problems;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::AppState;

/// The interactive documentation (Swagger UI compiled into the binary: no
/// CDN) and the redirect to it: pages, not API operations, so not in the
/// OpenAPI document.
pub(super) const UNDOCUMENTED_GET_ROUTES: [&str; 2] = ["/docs", "/docs/{_:.*}"];

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(index)
        .service(openapi_document)
        .service(jwks)
        .service(healthz)
        .service(readyz)
        .service(prometheus_metrics)
        .map(|cfg| {
            cfg.service(
                web::resource(UNDOCUMENTED_GET_ROUTES[0])
                    .guard(actix_web::guard::Get())
                    .to(docs_redirect),
            )
            .service(
                utoipa_swagger_ui::SwaggerUi::new(UNDOCUMENTED_GET_ROUTES[1])
                    .config(utoipa_swagger_ui::Config::from(OPENAPI_PATH)),
            )
        });
}

const OPENAPI_PATH: &str = "/api/openapi.json";

/// Where to go from the root.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiIndex {
    #[schema(example = "eagate")]
    name: &'static str,
    #[schema(example = "0.1.0")]
    version: &'static str,
    /// The interactive API documentation (HTML).
    #[schema(example = "/docs/")]
    docs: &'static str,
    /// This API's OpenAPI 3.1 document.
    #[schema(example = "/api/openapi.json")]
    openapi: &'static str,
    /// Liveness: `GET` answers 200 while the process serves.
    #[schema(example = "/healthz")]
    health: &'static str,
    /// Readiness: `GET` answers 200 when the database (and Redis) answer.
    #[schema(example = "/readyz")]
    ready: &'static str,
    /// The versioned API's base path.
    #[schema(example = "/api/v1")]
    api: &'static str,
}

/// Where to find the docs, the API document and health
///
/// A small index for people and tools arriving at the root.
#[utoipa::path(
    operation_id = "getIndex",
    tag = "operations",
    responses((status = 200, description = "Links to the docs, the OpenAPI document and health", body = ApiIndex), Problems),
    security(())
)]
#[get("/")]
pub(crate) async fn index() -> HttpResponse {
    HttpResponse::Ok().json(ApiIndex {
        name: "eagate",
        version: env!("CARGO_PKG_VERSION"),
        docs: "/docs/",
        openapi: OPENAPI_PATH,
        health: "/healthz",
        ready: "/readyz",
        api: "/api/v1",
    })
}

/// `/docs` → `/docs/`, where the page's relative links resolve.
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Get this OpenAPI document
///
/// The OpenAPI 3.1 document of this API, as committed in docs/openapi.json.
#[utoipa::path(
    operation_id = "getOpenApiDocument",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object, content_type = "application/json"), Problems),
    security(())
)]
#[get("/api/openapi.json")]
pub(crate) async fn openapi_document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(super::document())
}

/// Liveness
///
/// The process is alive and serving. Checks nothing else.
#[utoipa::path(
    operation_id = "getHealth",
    tag = "operations",
    responses((status = 200, description = "The process is alive"), Problems),
    security(())
)]
#[get("/healthz")]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(header::ContentType::json())
        .body(r#"{"status":"ok"}"#)
}

/// Readiness
///
/// Ready for traffic: the database is reachable and migrated, and Redis
/// (when configured) answers. 503 names what failed.
#[utoipa::path(
    operation_id = "getReadiness",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: database reachable and migrated, Redis (if configured) reachable"),
        (status = 503, description = "Not ready; the failing dependency is named in `checks`", body = Problem, content_type = "application/problem+json"),
        Problems
    ),
    security(())
)]
#[get("/readyz")]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    match eagate_postgres::migrate::check_ready(&state.pool).await {
        Ok(()) => {
            checks.insert("database".into(), "ok".into());
        }
        Err(e) => {
            checks.insert("database".into(), e.clone().into());
            failed.push(format!("database ({e})"));
        }
    }
    if let Some(redis) = &state.redis {
        match redis.ping().await {
            Ok(()) => {
                checks.insert("redis".into(), "ok".into());
            }
            Err(e) => {
                checks.insert("redis".into(), e.to_string().into());
                failed.push(format!("redis ({e})"));
            }
        }
    }
    if failed.is_empty() {
        Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready", "checks": checks})))
    } else {
        Err(ApiError::new(
            ProblemKind::NotReady,
            format!("Not ready: {}.", failed.join("; ")),
        )
        .with_extension("checks", serde_json::Value::Object(checks)))
    }
}

/// Prometheus metrics
///
/// Prometheus text format. Pool, long-poll and change-feed gauges are sampled now. With
/// `EAGATE_METRICS_TOKEN` set, only a bearer of that token may read them; in production
/// the endpoint answers 404 until it is set.
#[utoipa::path(
    operation_id = "getMetrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"), Problems),
    security(("metrics_token" = []))
)]
#[get("/metrics")]
pub(crate) async fn prometheus_metrics(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    match &state.metrics_access {
        crate::state::MetricsAccess::Open => {}
        crate::state::MetricsAccess::Off => {
            return Err(ApiError::new(ProblemKind::NotFound, "No such resource."));
        }
        crate::state::MetricsAccess::Token(token) => {
            use secrecy::ExposeSecret as _;
            let presented = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .unwrap_or_default();
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                presented.as_bytes(),
                token.expose_secret().as_bytes(),
            )) {
                return Err(ApiError::new(
                    ProblemKind::InvalidToken,
                    "GET /metrics needs `Authorization: Bearer <EAGATE_METRICS_TOKEN>`.",
                ));
            }
        }
    }
    let status = state.pool.status();
    metrics::gauge!("db_pool_connections", "state" => "size").set(status.size as f64);
    metrics::gauge!("db_pool_connections", "state" => "available").set(status.available as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(status.size.saturating_sub(status.available) as f64);
    metrics::gauge!("db_pool_connections", "state" => "max").set(status.max_size as f64);
    metrics::gauge!("db_pool_waiters").set(status.waiting as f64);
    metrics::gauge!("long_polls_waiting").set(state.wakeups.waiting() as f64);
    metrics::gauge!("change_feed_connected").set(if state.wakeups.is_connected() { 1.0 } else { 0.0 });
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render()))
}

/// Token-verification keys
///
/// The JWK set with the Ed25519 public key access tokens are signed with,
/// so other services can verify them without calling eagate.
#[utoipa::path(
    operation_id = "getJwks",
    tag = "auth",
    responses((status = 200, description = "The JWK set with the Ed25519 key that signs access tokens"), Problems),
    security(())
)]
#[get("/.well-known/jwks.json")]
pub(crate) async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(&state.jwks)
}
