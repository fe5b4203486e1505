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
                Ok(handle) => {
                    spawn_upkeep(handle.clone());
                    handle
                }
                // Another recorder is installed: keep a detached one so
                // /metrics still renders (empty).
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample (one per request) until
/// upkeep folds them into the buckets, which `install_recorder` leaves to
/// its caller: a server nobody scrapes would otherwise grow by every
/// request's latency (about 1 MB a minute at 1,000 requests a second).
/// A thread, not a task: the recorder outlives any one runtime (tests run
/// many apps in one process).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name(UPKEEP_THREAD.into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no metrics upkeep thread: histograms grow until /metrics is scraped");
    }
}

const UPKEEP_THREAD: &str = "metrics-upkeep";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_the_recorder_starts_its_upkeep_thread() {
        drop(handle());
        let threads = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .expect("Linux: the process's threads are listed")
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        };
        // A new thread names itself once it runs: wait for that, not a time.
        let mut names = threads();
        for _ in 0..500 {
            if names.iter().any(|name| name == UPKEEP_THREAD) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            names = threads();
        }
        assert!(
            names.iter().any(|name| name == UPKEEP_THREAD),
            "a thread named {UPKEEP_THREAD} runs the recorder's upkeep: {names:?}"
        );
    }
}
