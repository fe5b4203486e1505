//! Prometheus metrics: recorded with the `metrics` facade, rendered at
//! `GET /metrics`. Labels are route templates, never raw paths.

use std::sync::{LazyLock, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process-wide recorder (installed once; every app in a process —
/// as in tests — shares it).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed: keep a detached one so
                // /metrics still renders (empty).
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Handles of the metrics every request (or every signed device request)
/// moves, looked up once: a `counter!` or `gauge!` call hashes its name
/// and labels into the registry each time. The recorder is installed
/// first, so they are never no-ops.
#[derive(Debug)]
pub struct HotMetrics {
    pub in_flight: metrics::Gauge,
    pub device_auth_ok: metrics::Counter,
    pub signals_delivered: metrics::Counter,
}

pub fn hot() -> &'static HotMetrics {
    static HOT: LazyLock<HotMetrics> = LazyLock::new(|| {
        drop(handle());
        HotMetrics {
            in_flight: metrics::gauge!("http_requests_in_flight"),
            device_auth_ok: metrics::counter!("device_auth_total", "outcome" => "ok"),
            signals_delivered: metrics::counter!("signals_delivered_total"),
        }
    });
    &HOT
}
