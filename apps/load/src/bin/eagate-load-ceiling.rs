//! The framework ceiling: a bare actix-web server with one JSON handler and
//! no middleware, measured beside eagate in every scenario.
//!
//! - Any request: `200 {"status":"ok"}` (the body, if any, is read).
//! - `GET /api/v1/device/poll?…wait=N…` with N > 0: waits up to N seconds
//!   for a publish, then answers `{"signals":[{"id":…}],"server_time":…}`
//!   (or an empty list) — eagate's long-poll without the application.
//! - `POST /api/v1/signals`: wakes every waiting poll, answers `{"id":…}`.
//! - `GET /metrics`: `long_polls_waiting <n>`, like eagate's gauge.
//!
//! `eagate-load-ceiling [ADDR]` (default 127.0.0.1:0) prints
//! `listening on <addr>` once bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::Serialize;
use tokio::sync::watch;

#[derive(Debug)]
struct Shared {
    /// The latest published id.
    published: watch::Sender<Option<uuid::Uuid>>,
    waiting: AtomicUsize,
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

#[derive(Serialize)]
struct Signal {
    id: uuid::Uuid,
}

#[derive(Serialize)]
struct Poll {
    signals: Vec<Signal>,
    server_time: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `wait=N` from a query string.
fn wait_seconds(query: &str) -> u64 {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("wait="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn any(req: HttpRequest, _body: web::Bytes, shared: web::Data<Arc<Shared>>) -> HttpResponse {
    match req.path() {
        "/api/v1/device/poll" => {
            let wait = wait_seconds(req.query_string());
            if wait == 0 {
                return HttpResponse::Ok().json(Poll {
                    signals: Vec::new(),
                    server_time: now(),
                });
            }
            let mut rx = shared.published.subscribe();
            shared.waiting.fetch_add(1, Ordering::Relaxed);
            let _guard = Waiting(&shared.waiting);
            let woken = tokio::time::timeout(Duration::from_secs(wait), rx.changed()).await;
            let signals = match woken {
                Ok(Ok(())) => (*rx.borrow()).map(|id| vec![Signal { id }]).unwrap_or_default(),
                _ => Vec::new(),
            };
            HttpResponse::Ok().json(Poll {
                signals,
                server_time: now(),
            })
        }
        "/api/v1/signals" if req.method() == actix_web::http::Method::POST => {
            let id = uuid::Uuid::now_v7();
            shared.published.send_replace(Some(id));
            HttpResponse::Created().json(Signal { id })
        }
        "/metrics" => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(format!(
                "long_polls_waiting {}\n",
                shared.waiting.load(Ordering::Relaxed)
            )),
        _ => HttpResponse::Ok().json(Status { status: "ok" }),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let shared = Arc::new(Shared {
        published: watch::channel(None).0,
        waiting: AtomicUsize::new(0),
    });
    let data = web::Data::new(shared);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .default_service(web::to(any))
    })
    .bind(addr)?;
    for a in server.addrs() {
        println!("listening on {a}");
    }
    server.run().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wait_parameter() {
        assert_eq!(wait_seconds("wait=25"), 25);
        assert_eq!(wait_seconds("limit=5&wait=120"), 120);
        assert_eq!(wait_seconds("wait=0"), 0);
        assert_eq!(wait_seconds("wait=x"), 0);
        assert_eq!(wait_seconds(""), 0);
    }
}
