//! Service metadata: token-verification keys, health, readiness, metrics.

use actix_web::{HttpResponse, web};

use super::resource;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/openapi.json", "GET").route(web::get().to(crate::openapi::serve)))
        .service(crate::openapi::docs_ui())
        .service(resource("/.well-known/jwks.json", "GET").route(web::get().to(jwks)))
        .service(resource("/healthz", "GET").route(web::get().to(healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(metrics)));
}

/// The process is alive and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is alive")))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready for traffic: the database is reachable and migrated, and Redis
/// (when configured) answers. 503 names what failed.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready: database reachable and migrated, Redis (if configured) reachable"), (status = 503, description = "Not ready; the failing dependency is named", body = crate::openapi::Problem, content_type = "application/problem+json")))]
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

/// Prometheus text format. Pool and long-poll gauges are sampled now.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let status = state.pool.status();
    metrics::gauge!("db_pool_connections", "state" => "size").set(status.size as f64);
    metrics::gauge!("db_pool_connections", "state" => "available").set(status.available as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(status.size.saturating_sub(status.available) as f64);
    metrics::gauge!("db_pool_connections", "state" => "max").set(status.max_size as f64);
    metrics::gauge!("db_pool_waiters").set(status.waiting as f64);
    metrics::gauge!("long_polls_waiting").set(state.wakeups.waiting() as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// The JWK set with the Ed25519 public key access tokens are signed with,
/// so other services can verify them without calling eagate.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, description = "The JWK set with the Ed25519 key that signs access tokens")))]
pub(crate) async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(&state.jwks)
}
