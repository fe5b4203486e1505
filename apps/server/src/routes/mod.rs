//! HTTP routes: DTOs in, use case, DTOs out. No business rules here.

pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod device_api;
pub(crate) mod devices;
pub(crate) mod meta;
pub(crate) mod signals;

use actix_web::{HttpResponse, web};

use crate::extract::BodyLimit;
use crate::problem::{ApiError, ProblemKind};

/// Account and owner routes accept bodies up to 16 KiB.
const ACCOUNT_BODY_LIMIT: usize = 16 * 1024;
/// Publishing a signal may name 1000 devices (about 40 KiB).
const SIGNAL_BODY_LIMIT: usize = 64 * 1024;
/// Device routes accept bodies up to 64 KiB.
const DEVICE_BODY_LIMIT: usize = 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|error, _req| {
        ApiError::new(
            ProblemKind::MalformedQuery,
            format!("The query string is invalid: {error}."),
        )
        .into()
    }))
    .service(
        web::scope("/api/v1")
            .app_data(BodyLimit(ACCOUNT_BODY_LIMIT))
            .service(web::scope("/auth").configure(auth::configure))
            .service(web::scope("/devices").configure(devices::configure))
            .service(web::scope("/audit").configure(audit::configure))
            .service(
                web::scope("/signals")
                    // Up to 1000 target device ids.
                    .app_data(BodyLimit(SIGNAL_BODY_LIMIT))
                    .configure(signals::configure),
            )
            .service(
                web::scope("/device")
                    .app_data(BodyLimit(DEVICE_BODY_LIMIT))
                    .configure(device_api::configure),
            )
            .default_service(web::to(not_found)),
    )
    .configure(meta::configure)
    .default_service(web::to(not_found));
}

/// A resource that answers other methods than `allow` with a 405 problem
/// and an `Allow` header (RFC 9110).
pub(crate) fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        let response: Result<HttpResponse, ApiError> = Err(ApiError::new(
            ProblemKind::MethodNotAllowed,
            format!("This resource supports only: {allow}."),
        )
        .with_header(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        ));
        response
    }))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ProblemKind::NotFound, "No such resource."))
}
