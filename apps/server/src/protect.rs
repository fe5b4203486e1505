//! Transport protection: client IPs behind trusted proxies, rate limits,
//! header-size and time limits, and security headers.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use eagate_domain::UnexpectedError;
use eagate_domain::ratelimit::{RateDecision, RateLimit, RateLimiter};
use eagate_memory::InMemoryRateLimiter;
use eagate_redis::RedisRateLimiter;

use crate::config::ProtectionSettings;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// Where rate-limit counters live: the process, or Redis for all instances
/// — with this process's counters standing in while Redis cannot answer,
/// so an outage never means "unlimited" (each instance then limits on its
/// own).
#[derive(Debug, Clone)]
pub enum Limiter {
    Memory(std::sync::Arc<InMemoryRateLimiter>),
    Redis {
        shared: RedisRateLimiter,
        local: std::sync::Arc<InMemoryRateLimiter>,
    },
}

impl Limiter {
    fn fell_back(e: &UnexpectedError) {
        metrics::counter!("rate_limit_fallbacks_total").increment(1);
        tracing::warn!(error = %e, "rate limiter unavailable; counting in this instance until it is back");
    }
}

impl RateLimiter for Limiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        match self {
            Self::Memory(l) => l.hit(key, limit).await,
            Self::Redis { shared, local } => match shared.hit(key, limit).await {
                Ok(decision) => Ok(decision),
                Err(e) => {
                    Self::fell_back(&e);
                    local.hit(key, limit).await
                }
            },
        }
    }

    async fn peek(&self, key: &str, limit: RateLimit) -> Result<RateDecision, UnexpectedError> {
        match self {
            Self::Memory(l) => l.peek(key, limit).await,
            Self::Redis { shared, local } => match shared.peek(key, limit).await {
                Ok(decision) => Ok(decision),
                Err(e) => {
                    Self::fell_back(&e);
                    local.peek(key, limit).await
                }
            },
        }
    }
}

/// Rate limiting as the routes use it.
#[derive(Debug, Clone)]
pub struct RateLimits {
    limiter: Limiter,
    settings: ProtectionSettings,
}

impl RateLimits {
    pub fn new(limiter: Limiter, settings: ProtectionSettings) -> Self {
        Self { limiter, settings }
    }

    /// Counts a hit; `Err` is the 429 to answer. (With Redis down the
    /// instance's own counters decide: see [`Limiter`].)
    pub async fn check(&self, key: &str, limit: RateLimit) -> Result<(), ApiError> {
        if !self.settings.rate_limits_enabled {
            return Ok(());
        }
        match self.limiter.hit(key, limit).await {
            Ok(d) if d.allowed => Ok(()),
            Ok(d) => Err(too_many(&d, "Too many requests")),
            Err(e) => Err(e.into()),
        }
    }

    pub fn settings(&self) -> &ProtectionSettings {
        &self.settings
    }
}

/// The 429 for an exhausted limit: what was exceeded, when to retry, and
/// the `RateLimit-*` headers.
pub(crate) fn too_many(d: &RateDecision, what: &str) -> ApiError {
    let seconds = d.reset_after.as_secs() + u64::from(d.reset_after.subsec_nanos() > 0);
    ApiError::new(ProblemKind::RateLimited, format!("{what}; retry in {seconds} s."))
        .with_extension("retry_after", serde_json::json!(seconds))
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
        .with_header(
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(d.limit),
        )
        .with_header(
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(d.remaining),
        )
        .with_header(
            HeaderName::from_static("ratelimit-reset"),
            HeaderValue::from(seconds),
        )
}

/// The client's IP: the socket peer, or — when the peer is a trusted proxy
/// — the rightmost address in `X-Forwarded-For` that is not itself a
/// trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .unwrap_or(peer),
    )
}

/// Middleware: per-IP limits on account and owner endpoints (device
/// endpoints are limited per device after authentication).
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let path = req.path();
    let limited = path.starts_with("/api/v1/") && !path.starts_with("/api/v1/device/");
    if limited && let Some(state) = req.app_data::<web::Data<AppState>>().cloned() {
        let limits = &state.rate_limits;
        let s = limits.settings();
        let ip = client_ip(req.request(), &s.trusted_proxies)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let mut result = limits
            .check(&format!("ip:{ip}"), RateLimit::per_minute(s.per_ip_per_minute))
            .await;
        if result.is_ok() && path == "/api/v1/auth/login" {
            result = limits
                .check(
                    &format!("login-ip:{ip}"),
                    RateLimit::per_minute(s.login_per_ip_per_minute),
                )
                .await;
        }
        if let Err(e) = result {
            let (req, _) = req.into_parts();
            let response = actix_web::ResponseError::error_response(&e).map_into_right_body();
            return Ok(ServiceResponse::new(req, response));
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Middleware: refuses requests whose headers are too large (431). (Time
/// limits: the request head is bounded by `client_request_timeout`, the
/// body by the body readers, handlers by their own waits and pool timeouts.)
pub async fn header_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let max_header_bytes = req
        .app_data::<web::Data<AppState>>()
        .map_or(16 * 1024, |s| s.rate_limits.settings().max_header_bytes);
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > max_header_bytes {
        let error = ApiError::new(
            ProblemKind::HeadersTooLarge,
            format!("The request headers exceed {max_header_bytes} bytes."),
        );
        let (req, _) = req.into_parts();
        return Ok(ServiceResponse::new(
            req,
            actix_web::ResponseError::error_response(&error).map_into_right_body(),
        ));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// How long a client may take to send a request body.
pub fn body_timeout(req: &HttpRequest) -> Duration {
    req.app_data::<web::Data<AppState>>()
        .map_or(Duration::from_secs(60), |s| {
            s.rate_limits.settings().request_timeout
        })
}

/// Security headers for a JSON API, added where a response has not set
/// them. `Strict-Transport-Security` only when serving HTTPS.
pub fn security_headers(tls: bool) -> actix_web::middleware::DefaultHeaders {
    let mut headers = actix_web::middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-site",
        ))
        .add((header::CACHE_CONTROL, "no-store"));
    if tls {
        headers = headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ));
    }
    headers
}

/// The API's responses are data: nothing may load. The `/docs` page is the
/// one HTML page, served with its own files, so it gets a policy that allows
/// exactly those.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                        script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// Middleware: the Content-Security-Policy for the path.
pub async fn content_security_policy(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let docs = req.path().starts_with("/docs");
    let mut response = next.call(req).await?;
    if !response.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = if docs { DOCS_CSP } else { API_CSP };
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    }
    Ok(response)
}
