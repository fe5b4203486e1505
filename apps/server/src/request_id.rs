//! Request ids and the request log.
//!
//! Every request gets an id: the caller's `X-Request-Id` when it is a sane
//! token, else a new UUID. It is put on the request's root span, echoed in
//! the response header, and used as the `instance` of problem responses.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument as _;

use crate::problem::LoggedProblem;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware: request id, root span, and one log line per request.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "http.request",
        request_id = %id,
        method = %req.method(),
        route = %route,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
        user_id = tracing::field::Empty,
        device_id = tracing::field::Empty,
    );
    // Continue the caller's trace (W3C `traceparent`), when tracing is on.
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&crate::telemetry::HeaderExtractor(req.headers()))
    });
    let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
    let started = Instant::now();
    let header = HeaderValue::from_str(&id).ok();
    let result = REQUEST_ID
        .scope(id, next.call(req).instrument(span.clone()))
        .await;
    let mut response = result?;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    span.record("status", status);
    span.record("latency_ms", latency_ms);
    let problem = response
        .response()
        .extensions()
        .get::<LoggedProblem>()
        .map(|p| p.0);
    span.in_scope(|| match problem {
        Some(problem) => tracing::info!(status, latency_ms, problem, "request finished"),
        None => tracing::info!(status, latency_ms, "request finished"),
    });
    if let Some(header) = header {
        response.headers_mut().insert(REQUEST_ID_HEADER, header);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn only_sane_request_ids_are_accepted() {
        assert!(acceptable("0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b"));
        assert!(acceptable("lb:abc.123_x"));
        assert!(!acceptable(""));
        assert!(!acceptable("has space"));
        assert!(!acceptable("new\nline"));
        assert!(!acceptable(&"a".repeat(129)));
    }
}
