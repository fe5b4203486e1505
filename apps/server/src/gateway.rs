//! The one middleware in front of every route: it refuses what must not
//! reach a handler (non-canonical paths, oversized headers, clients over
//! their per-IP limits), gives each request its id and root span, and on the
//! way out records metrics, turns framework-made errors into problems, adds
//! the security headers and writes the access log.
//!
//! One layer instead of eight: every step used to be a middleware of its
//! own, each with its own boxed future and its own look at the request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use eagate_domain::ratelimit::{AddressKey, RateLimit};
use tracing::Instrument as _;

use crate::config::AccessLog;
use crate::context::RequestId;
use crate::problem::{ApiError, LoggedProblem, PROBLEM_JSON, ProblemKind};
use crate::protect::{RateLimits, client_ip};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The API's responses are data: nothing may load. The `/docs` page is the
/// one HTML page, served with its own files, so it gets a policy that allows
/// exactly those.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                        script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// What the gateway needs, built once per server.
#[derive(Debug)]
pub struct Gateway {
    limits: RateLimits,
    tls: bool,
    /// Traces are exported (OTLP): every request gets a span.
    traces: bool,
    access_log: AccessLog,
    /// Counts device requests for log sampling.
    sampled: std::sync::atomic::AtomicU64,
}

impl Gateway {
    pub fn new(limits: RateLimits, tls: bool, traces: bool, access_log: AccessLog) -> Arc<Self> {
        Arc::new(Self {
            limits,
            tls,
            traces,
            access_log,
            sampled: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

/// Whether `path` is spelled the one way the router, the limits and the
/// signature all agree on: no percent-encoded unreserved character (which
/// the router would decode: `/%61pi` is `/api`), no `.`/`..` segment, no
/// empty segment, and every `%` followed by two hex digits.
pub fn is_canonical_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                    bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
                ) else {
                    return false;
                };
                let decoded = (hi * 16 + lo) as u8;
                if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                    return false;
                }
                i += 3;
            }
            b'/' => {
                let rest = &bytes[i + 1..];
                let segment_end = rest.iter().position(|b| *b == b'/').unwrap_or(rest.len());
                let segment = &rest[..segment_end];
                // An empty segment is allowed only as the trailing slash of
                // "/" itself.
                if (segment.is_empty() && segment_end < rest.len()) || segment == b"." || segment == b".." {
                    return false;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    true
}

/// Which per-IP limits a (canonical) path falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpLimited {
    /// Device routes (limited per device after authentication, and per
    /// address only for failed authentication) and everything outside the API.
    No,
    /// Owner and account routes.
    Owner,
    /// Login: the owner limit and the login limit.
    Login,
}

fn ip_limited(path: &str) -> IpLimited {
    if !path.starts_with("/api/v1/") || path.starts_with("/api/v1/device/") {
        IpLimited::No
    } else if path == "/api/v1/auth/login" {
        IpLimited::Login
    } else {
        IpLimited::Owner
    }
}

/// The per-IP limits that apply to a (canonical) path.
fn ip_limits(path: &str, limits: &RateLimits) -> Option<(RateLimit, Option<RateLimit>)> {
    let settings = limits.settings();
    let per_ip = RateLimit::per_minute(settings.per_ip_per_minute);
    match ip_limited(path) {
        IpLimited::No => None,
        IpLimited::Owner => Some((per_ip, None)),
        IpLimited::Login => Some((
            per_ip,
            Some(RateLimit::per_minute(settings.login_per_ip_per_minute)),
        )),
    }
}

impl Gateway {
    /// A response for a request that must not go further, if it must not.
    async fn refusal(&self, req: &ServiceRequest) -> Option<ApiError> {
        let path = req.path();
        if !is_canonical_path(path) {
            return Some(ApiError::new(
                ProblemKind::NonCanonicalPath,
                "The path must be spelled canonically: no percent-encoded letters, digits or -._~, \
                 no empty, `.` or `..` segments.",
            ));
        }
        let settings = self.limits.settings();
        let size: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if size > settings.max_header_bytes {
            return Some(ApiError::new(
                ProblemKind::HeadersTooLarge,
                format!("The request headers exceed {} bytes.", settings.max_header_bytes),
            ));
        }
        let (per_ip, login) = ip_limits(path, &self.limits)?;
        // IPv6 clients are counted by their /64; unknown clients share one
        // budget.
        let ip = client_ip(req.request(), &settings.trusted_proxies);
        // The limiter's future (a Redis round trip, perhaps) is boxed: it
        // is large, and inline it would size the future every connection
        // holds for as long as its request runs (each waiting long-poll).
        if let Err(e) = Box::pin(self.limits.check(AddressKey::new("ip:", ip).as_str(), per_ip)).await {
            return Some(e);
        }
        if let Some(login) = login
            && let Err(e) = Box::pin(
                self.limits
                    .check(AddressKey::new("login-ip:", ip).as_str(), login),
            )
            .await
        {
            return Some(e);
        }
        None
    }

    /// Adds the security headers a response has not set itself. (Only
    /// `Cache-Control` and the CSP are ever set by handlers; the others are
    /// inserted unconditionally, saving a lookup each.)
    fn secure(&self, response: &mut actix_web::HttpResponse<impl MessageBody>, docs: bool) {
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-site"),
        );
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(if docs { DOCS_CSP } else { API_CSP }),
            );
        }
        if self.tls {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
    }
}

/// Decrements the in-flight gauge however the request ends (a long-poll
/// whose client went away is dropped, never finished).
struct InFlight;

impl InFlight {
    fn start() -> Self {
        crate::metrics::hot().in_flight.increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        crate::metrics::hot().in_flight.decrement(1.0);
    }
}

/// Turns an error response the framework or a third-party middleware made
/// (plain text, empty) into a problem, keeping its status and meaningful
/// headers.
fn as_problem<B: MessageBody + 'static>(response: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response.map_into_left_body();
    }
    let origin = response.request().headers().contains_key(header::ORIGIN);
    let kind = match status.as_u16() {
        400 if origin => ProblemKind::CorsDenied,
        404 => ProblemKind::NotFound,
        405 => ProblemKind::MethodNotAllowed,
        408 => ProblemKind::RequestTimeout,
        413 => ProblemKind::PayloadTooLarge,
        415 => ProblemKind::UnsupportedMediaType,
        431 => ProblemKind::HeadersTooLarge,
        500.. => ProblemKind::Internal,
        _ => ProblemKind::BadRequest,
    };
    let detail = match kind {
        ProblemKind::CorsDenied => "This origin may not call the API from a browser.",
        ProblemKind::Internal => "The server failed to handle this request; it has been logged.",
        _ => "The request was refused.",
    };
    let (req, old) = response.into_parts();
    let mut new = crate::problem::problem_response(kind, detail, &[]);
    *new.status_mut() = status;
    for name in [header::ALLOW, header::RETRY_AFTER, header::VARY] {
        if let Some(v) = old.headers().get(&name) {
            new.headers_mut().insert(name, v.clone());
        }
    }
    ServiceResponse::new(req, new).map_into_right_body()
}

/// The device a request authenticated as, left in the request's
/// extensions by the signed-request extractor, for the access log.
#[derive(Debug, Clone, Copy)]
pub struct LoggedDevice(pub eagate_domain::device::DeviceId);

/// Metric handles per route, method and status, built once per worker
/// thread: recording a request is then two atomic adds, not a registry
/// lookup with freshly allocated labels.
#[derive(Default)]
struct RouteMetrics {
    by_status: Vec<(actix_web::http::Method, u16, metrics::Counter)>,
    latency: Vec<(actix_web::http::Method, metrics::Histogram)>,
}

thread_local! {
    static METRICS: std::cell::RefCell<foldhash::HashMap<String, RouteMetrics>> =
        std::cell::RefCell::new(foldhash::HashMap::default());
}

fn record_metrics(route: &str, method: &actix_web::http::Method, status: u16, latency: Duration) {
    METRICS.with(|cell| {
        let mut routes = cell.borrow_mut();
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteMetrics::default());
        }
        let Some(entry) = routes.get_mut(route) else {
            return;
        };
        let counter = match entry.by_status.iter().find(|(m, s, _)| m == method && *s == status) {
            Some((_, _, counter)) => counter.clone(),
            None => {
                let counter = metrics::counter!("http_requests_total", "route" => route.to_owned(), "method" => method.to_string(), "status" => status.to_string());
                entry.by_status.push((method.clone(), status, counter.clone()));
                counter
            }
        };
        counter.increment(1);
        let histogram = match entry.latency.iter().find(|(m, _)| m == method) {
            Some((_, histogram)) => histogram.clone(),
            None => {
                let histogram = metrics::histogram!("http_request_duration_seconds", "route" => route.to_owned(), "method" => method.to_string());
                entry.latency.push((method.clone(), histogram.clone()));
                histogram
            }
        };
        histogram.record(latency.as_secs_f64());
    });
}

/// Requests whose successes are sampled in the access log: the device API
/// (the bulk of the traffic) and probes.
fn is_quiet(path: &str) -> bool {
    path.starts_with("/api/v1/device/") || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

impl Gateway {
    /// Whether this quiet request's success is logged (1 in N).
    fn sampled(&self) -> bool {
        match self.access_log.device_sample {
            0 => false,
            1 => true,
            n => self
                .sampled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .is_multiple_of(n),
        }
    }
}

/// The middleware (wrap it with `from_fn`, capturing the [`Gateway`]).
///
/// A request gets a root span (`http.request`) when anything may log under
/// it: every account and owner request, a sampled device request, and every
/// request while traces are exported. An unsampled device request — the
/// bulk of the traffic — skips the span; if it fails, its log line carries
/// the same fields explicitly.
pub async fn handle<B: MessageBody + 'static>(
    gateway: Arc<Gateway>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, actix_web::Error> {
    let started = Instant::now();
    let _in_flight = InFlight::start();
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| RequestId::from_client(v.as_bytes()))
        .unwrap_or_else(RequestId::generate);
    let method = req.method().clone();
    let path = req.path();
    let quiet = is_quiet(path);
    let long_poll = path == "/api/v1/device/poll" && req.query_string().contains("wait=");
    let docs = path.starts_with("/docs");
    let static_route = crate::routes::static_route(path);
    let sampled = !quiet || gateway.sampled();
    let span = if sampled || gateway.traces {
        let span = tracing::info_span!(
            "http.request",
            request_id = %id,
            method = %method,
            route = tracing::field::Empty,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            user_id = tracing::field::Empty,
            api_key_id = tracing::field::Empty,
            device_id = tracing::field::Empty,
        );
        if gateway.traces {
            // Continue the caller's trace (W3C `traceparent`).
            let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&crate::telemetry::HeaderExtractor(req.headers()))
            });
            let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
        }
        span
    } else {
        tracing::Span::none()
    };

    let handled = crate::context::with_request_id(
        id,
        async {
            match gateway.refusal(&req).await {
                Some(refusal) => {
                    let (request, _) = req.into_parts();
                    let response = actix_web::ResponseError::error_response(&refusal);
                    Ok(ServiceResponse::new(request, response).map_into_right_body())
                }
                None => next.call(req).await.map(as_problem),
            }
        }
        .instrument(span.clone()),
    )
    .await;
    let mut response = handled?;

    let latency = started.elapsed();
    let status = response.status().as_u16();
    let matched;
    let route = match static_route {
        Some(route) => route,
        None => {
            matched = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            matched.as_str()
        }
    };
    record_metrics(route, &method, status, latency);
    gateway.secure(response.response_mut(), docs);
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let failed = status >= 400;
    let slow = !long_poll && latency >= gateway.access_log.slow;
    if sampled || failed || slow {
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let problem = response
            .response()
            .extensions()
            .get::<LoggedProblem>()
            .map(|p| p.0);
        if span.is_none() {
            // No span to carry the request's fields: put them on the line.
            let device = actix_web::HttpMessage::extensions(response.request())
                .get::<LoggedDevice>()
                .map(|d| d.0.to_string());
            tracing::info!(
                request_id = %id,
                method = %method,
                route,
                device_id = device.as_deref(),
                status,
                latency_ms,
                problem,
                "request finished"
            );
        } else {
            span.record("route", route);
            span.record("status", status);
            span.record("latency_ms", latency_ms);
            span.in_scope(|| match problem {
                Some(problem) => tracing::info!(status, latency_ms, problem, "request finished"),
                None => tracing::info!(status, latency_ms, "request finished"),
            });
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn canonical_paths() {
        for ok in [
            "/",
            "/api/v1/devices",
            "/api/v1/devices/0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b",
            "/docs/",
            "/api/v1/x%20y",
            "/a%2Fb",
            "/.well-known/jwks.json",
            "/a..b/c.d",
        ] {
            assert!(is_canonical_path(ok), "{ok}");
        }
        for bad in [
            "",
            "api",
            "/%61pi/v1/devices",
            "/api/%76%31/devices",
            "/api/v1/devic%65s",
            "/api/v1/%2e%2e/auth/login",
            "/api/v1/devices/../auth/login",
            "/api/v1/./devices",
            "/api/v1/devices/.",
            "/api/v1/devices/..",
            "//api/v1/devices",
            "/api//v1/devices",
            "/api/v1/%7Edevices",
            "/api/v1/devices%",
            "/api/v1/devices%4",
            "/api/v1/devices%zz",
        ] {
            assert!(!is_canonical_path(bad), "{bad}");
        }
    }

    /// Every route template, with `{id}` as an id.
    fn routes() -> Vec<String> {
        crate::routes::route_templates()
            .into_iter()
            .map(|t| t.replace("{id}", "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b"))
            .collect()
    }

    proptest! {
        /// Issue 12.1 at the unit level: whatever percent-encodings of any
        /// byte are inserted into a route, or replace one of its
        /// characters, a path the gateway lets through (canonical) means
        /// the same to the router — which matches the decoded path — as to
        /// the limiter and the signature, which see it as sent: the same
        /// route templates match and the same per-IP limits apply. (The
        /// live app refuses every other spelling first:
        /// `attacks::any_respelling_of_any_documented_route_is_refused_before_limits_and_authentication`.)
        #[test]
        fn a_canonical_path_means_the_same_to_the_router_and_the_limiter(
            route in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>(), any::<bool>()), 1..4),
        ) {
            let routes = routes();
            let route = &routes[route.index(routes.len())];
            let mut path = route.clone();
            for (at, byte, upper, replace) in edits {
                let i = at.index(path.len() + 1);
                if !path.is_char_boundary(i) {
                    continue;
                }
                let encoded = if upper { format!("%{byte:02X}") } else { format!("%{byte:02x}") };
                let end = if replace && i < path.len() && path.is_char_boundary(i + 1) { i + 1 } else { i };
                path.replace_range(i..end, &encoded);
            }
            prop_assume!(is_canonical_path(&path));
            let uri: actix_web::http::Uri = path.parse().map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
            let url = actix_web::dev::Url::new(uri);
            let routed = url.path();
            prop_assert_eq!(ip_limited(&path), ip_limited(routed), "{} routed as {}", path, routed);
            for template in crate::routes::route_templates() {
                let def = actix_web::dev::ResourceDef::new(template.as_str());
                prop_assert_eq!(def.is_match(&path), def.is_match(routed), "{} against {}", path, template);
            }
        }

        /// Encoding any unreserved character of a route, or adding a dot
        /// segment, makes it non-canonical; the route itself is canonical.
        #[test]
        fn any_alternative_spelling_of_a_route_is_refused(
            route in prop::sample::select(vec![
                "/api/v1/auth/login", "/api/v1/devices", "/api/v1/device/poll", "/api/v1/signals", "/healthz",
            ]),
            position in any::<prop::sample::Index>(),
            upper in any::<bool>(),
            dots in prop::sample::select(vec!["/.", "/..", "/./x/..", "//"]),
            use_dots in any::<bool>(),
        ) {
            prop_assert!(is_canonical_path(route));
            let alternative = if use_dots {
                let cut = route[1..].find('/').map_or(route.len(), |i| i + 1);
                format!("{}{}{}", &route[..cut], dots, &route[cut..])
            } else {
                let letters: Vec<usize> = route.char_indices().filter(|(_, c)| *c != '/').map(|(i, _)| i).collect();
                let i = letters[position.index(letters.len())];
                let byte = route.as_bytes()[i];
                let encoded = if upper { format!("%{byte:02X}") } else { format!("%{byte:02x}") };
                format!("{}{}{}", &route[..i], encoded, &route[i + 1..])
            };
            prop_assert!(!is_canonical_path(&alternative), "{}", alternative);
        }
    }
}
