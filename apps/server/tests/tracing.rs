//! OpenTelemetry export: a minimal OTLP/HTTP receiver collects what the
//! real app sends. (A binary of its own: it installs the global tracing
//! subscriber with the OTLP layer.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use eagate_crypto::{Ed25519Keys, MasterKeyring};
use eagate_server::Application;
use eagate_server::config::{LogFormat, Settings};
use eagate_testkit::TestDatabase;
use serde_json::Value;

type Received = Arc<Mutex<Vec<Value>>>;

/// Accepts `POST /v1/traces` with OTLP/JSON bodies.
async fn start_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    let server = HttpServer::new(move || {
        let store = Arc::clone(&store);
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let store = Arc::clone(&store);
                async move {
                    if let Ok(json) = serde_json::from_slice::<Value>(&body) {
                        store.lock().unwrap().push(json);
                    }
                    HttpResponse::Ok().content_type("application/json").body("{}")
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}"), received)
}

#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
}

fn spans(received: &Received) -> Vec<Span> {
    let mut out = Vec::new();
    for doc in received.lock().unwrap().iter() {
        for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_lowercase();
                    out.push(Span {
                        name: text("name"),
                        trace: text("traceId"),
                        id: text("spanId"),
                        parent: text("parentSpanId"),
                    });
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn a_request_produces_linked_spans_under_the_callers_trace() {
    let (endpoint, received) = start_receiver().await;
    let telemetry = eagate_server::telemetry::init(LogFormat::Json, Some(&endpoint));

    let db = TestDatabase::migrated().await;
    let vars: HashMap<String, String> = [
        ("EAGATE_DATABASE_URL", db.url().to_owned()),
        ("EAGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("EAGATE_AUTO_MIGRATE", "false".to_owned()),
        ("EAGATE_ARGON2_MEMORY_KIB", "64".to_owned()),
        ("EAGATE_ARGON2_ITERATIONS", "1".to_owned()),
        (
            "EAGATE_JWT_PRIVATE_KEY",
            Ed25519Keys::generate().unwrap().to_pem(),
        ),
        ("EAGATE_MASTER_KEYS", MasterKeyring::generate_entry("t1").unwrap()),
        (
            "EAGATE_DATA_DIR",
            std::env::temp_dir().join("eagate-tracing").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let app = Application::build(Settings::from_vars(&vars).unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run());

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&serde_json::json!({"email": "t@example.com", "username": "traced", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let mut found = Vec::new();
    // Up to 30 s: export is asynchronous, and slow on a busy machine.
    for _ in 0..300 {
        telemetry.flush();
        found = spans(&received);
        if found.iter().any(|s| s.name == "http.request") && found.iter().any(|s| s.name == "db.users.create")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = found
        .iter()
        .find(|s| s.name == "http.request" && s.trace == trace_id)
        .unwrap_or_else(|| panic!("no http.request span in trace {trace_id}: {found:#?}"));
    assert_eq!(
        http.parent, caller_span,
        "the request span continues the caller's span"
    );

    // The database call is a descendant of the request span.
    let db_span = found
        .iter()
        .find(|s| s.name == "db.users.create" && s.trace == trace_id)
        .unwrap_or_else(|| panic!("no db.users.create span: {found:#?}"));
    let by_id: HashMap<&str, &Span> = found.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut cursor = db_span;
    let mut chain = vec![cursor.name.clone()];
    while cursor.id != http.id {
        cursor = by_id
            .get(cursor.parent.as_str())
            .unwrap_or_else(|| panic!("broken parent chain {chain:?}"));
        chain.push(cursor.name.clone());
    }
    assert!(
        chain.contains(&"register".to_owned()),
        "use-case span in between: {chain:?}"
    );
    telemetry.shutdown();
}
