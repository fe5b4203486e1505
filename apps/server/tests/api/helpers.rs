use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use eagate_crypto::Ed25519Keys;
use eagate_server::Application;
use eagate_server::config::{LogFormat, Settings};
use eagate_testkit::TestDatabase;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple";

/// Every log line any test's app wrote (JSON, the production format), so
/// tests can assert what never appears in logs. `TEST_LOG=1` also prints it.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct CaptureWriter;

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the server's own subscriber (`telemetry::init_with`, the same
/// code `main` uses) in the production JSON format, writing to memory.
fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let output = eagate_server::telemetry::LogOutput {
            format: LogFormat::Json,
            filter: "trace",
            rust_log_overrides: false,
            writer: || CaptureWriter,
            ansi: false,
        };
        drop(eagate_server::telemetry::init_with(output, None));
    });
}

/// Everything logged so far by every app in this test binary.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// A running app on its own database.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    /// The key the app signs access tokens with, for forging tests.
    pub keys: Ed25519Keys,
    /// The configuration the app runs with.
    pub settings: Settings,
}

/// Starts the real application on 127.0.0.1:<random> with a fresh database
/// and cheap argon2 parameters (set through configuration, as an operator
/// would). `TEST_LOG=1` shows the server's logs.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    capture_logs();
    let db = TestDatabase::migrated().await;
    let keys = Ed25519Keys::generate().unwrap();
    let master_keys = eagate_crypto::MasterKeyring::generate_entry("test1").unwrap();
    let api_key_secret = eagate_crypto::HmacApiKeys::generate_secret().unwrap();
    let data_dir = std::env::temp_dir().join(format!("eagate-test-{}", uuid::Uuid::new_v4()));
    let mut vars: HashMap<String, String> = [
        ("EAGATE_DATABASE_URL", db.url()),
        ("EAGATE_LISTEN", "127.0.0.1:0"),
        ("EAGATE_AUTO_MIGRATE", "false"),
        ("EAGATE_ARGON2_MEMORY_KIB", "64"),
        ("EAGATE_ARGON2_ITERATIONS", "1"),
        ("EAGATE_DATABASE_POOL_SIZE", "4"),
        ("EAGATE_JWT_PRIVATE_KEY", &keys.to_pem()),
        ("EAGATE_MASTER_KEYS", &master_keys),
        ("EAGATE_API_KEY_SECRET", &api_key_secret),
        ("EAGATE_DATA_DIR", &data_dir.display().to_string()),
        // Functional tests send many requests from one address; the rate
        // limits have tests of their own that switch them on.
        ("EAGATE_RATE_LIMITS", "off"),
        // Device activity is written in batches; tests wait for the next one.
        ("EAGATE_ACTIVITY_FLUSH_INTERVAL_MS", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::from_vars(&vars).unwrap();
    let base = start(settings.clone()).await;
    TestApp {
        base,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db,
        keys,
        settings,
    }
}

/// Starts the app with its rate limits on (functional tests run with them
/// off), plus `extra`.
pub async fn spawn_limited_app(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("EAGATE_RATE_LIMITS", "on")];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

async fn start(settings: Settings) -> String {
    let scheme = if settings.protection.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let app = Application::build(settings).await.unwrap();
    let base = format!("{scheme}://{}", app.local_addr());
    tokio::spawn(app.run());
    base
}

/// Builds an app without starting it, for tests that drive its lifecycle.
pub async fn build_app(extra: &[(&str, &str)]) -> (TestApp, Application) {
    let app = spawn_app_with(extra).await;
    let second = Application::build(app.settings.clone()).await.unwrap();
    (app, second)
}

impl TestApp {
    /// Another instance of the same deployment (same database and keys),
    /// on its own port, as behind a load balancer.
    pub async fn second_instance(&self) -> String {
        start(self.settings.clone()).await
    }

    /// Waits (bounded) until the device's first signed request has reached
    /// the server and been authenticated: a readiness signal for "the
    /// request is in flight", instead of a fixed sleep. The signal is the
    /// device's `last_seen_at`, stored once a request of the device is
    /// authenticated — at once, or at the next activity flush where the
    /// server batches activity (then this waits for that flush, which must
    /// come while a long-poll is still waiting).
    pub async fn first_device_request_arrived(&self, device_id: &str) {
        #[derive(diesel::QueryableByName)]
        struct Seen {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            seen: bool,
        }
        let mut conn = self.db.connect().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let seen: Vec<Seen> = diesel_async::RunQueryDsl::load(
                diesel::sql_query("SELECT last_seen_at IS NOT NULL AS seen FROM devices WHERE id = $1::uuid")
                    .bind::<diesel::sql_types::Text, _>(device_id),
                &mut conn,
            )
            .await
            .unwrap();
            if seen.first().is_some_and(|s| s.seen) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "device {device_id}'s request did not reach the server within 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// `GET /metrics` as text (test apps run without a metrics token).
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn post_json_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch_json_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Registers a device; returns (device, secret).
    pub async fn create_device(&self, token: &str, name: &str) -> (Value, String) {
        let response = self
            .post_json_auth("/devices", token, &json!({"name": name}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "registering {name:?}");
        let body: Value = response.json().await.unwrap();
        (
            body["device"].clone(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// `DELETE /auth/me` with the confirming password.
    pub async fn delete_account(&self, token: &str, password: &str) -> Response {
        self.client
            .delete(self.url("/auth/me"))
            .bearer_auth(token)
            .json(&json!({"password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Runs `SELECT count(*) AS n …` on the app's database.
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        use diesel_async::RunQueryDsl as _;
        let mut conn = self.db.connect().await;
        let count: Count = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
        count.n
    }

    /// The caller's audit events (`GET /audit`), oldest first.
    pub async fn audit(&self, token: &str) -> Vec<Value> {
        let response = self.get_auth("/audit?limit=100", token).await;
        assert_eq!(response.status(), StatusCode::OK, "GET /audit");
        let page: Value = response.json().await.unwrap();
        let mut events = page["items"].as_array().unwrap().clone();
        events.reverse();
        events
    }

    /// Runs one SQL statement on the app's database, behind the app's back
    /// (to move time or take resources away).
    pub async fn execute(&self, sql: &str) {
        use diesel_async::RunQueryDsl as _;
        let mut conn = self.db.connect().await;
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Registers `username` (email `<username>@example.com`, [`PASSWORD`]).
    /// `GET path` (as the owner) until `done` holds for its JSON: for what is
    /// written with the next activity flush. Fails after 10 s.
    pub async fn eventually(&self, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let value: Value = self.get_auth(path, token).await.json().await.unwrap();
            if done(&value) {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "GET {path}: not as expected within 10 s: {value}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub async fn register(&self, username: &str) -> Value {
        let response = self
            .post_json(
                "/auth/register",
                &json!({"email": format!("{username}@example.com"), "username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// Logs in and returns the token response.
    pub async fn login(&self, login: &str, password: &str) -> Value {
        let response = self
            .post_json("/auth/login", &json!({"login": login, "password": password}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "login as {login}");
        response.json().await.unwrap()
    }

    /// Registers and logs in; returns (access token, refresh token).
    pub async fn user_with_tokens(&self, username: &str) -> (String, String) {
        self.register(username).await;
        let tokens = self.login(username, PASSWORD).await;
        (
            tokens["access_token"].as_str().unwrap().to_owned(),
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        )
    }
}

/// Asserts a problem+json response with the given status and code, and
/// returns its body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:eagate:problem:{code}"));
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    assert_eq!(body["instance"], format!("urn:eagate:request:{request_id}"));
    body
}

/// Asserts a 429 `rate-limited` problem with `Retry-After` and the
/// `RateLimit-*` headers, and returns its body.
pub async fn assert_rate_limited(response: Response) -> Value {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "status");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(response.headers().contains_key(name), "{name}");
    }
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await
}

/// The `field` names listed in a problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
