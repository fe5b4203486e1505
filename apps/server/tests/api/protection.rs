//! Production hardening through the real app: rate limits, limits, headers,
//! CORS, health, metrics, TLS and graceful shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use eagate_client::{DeviceClient, Signer, new_nonce};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn limited(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("EAGATE_RATE_LIMITS", "on")];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

async fn assert_429(response: reqwest::Response) -> Value {
    let retry_after: u64 = response.headers()["retry-after"]
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

#[tokio::test]
async fn account_endpoints_are_limited_per_client_ip() {
    let app = limited(&[("EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE", "3")]).await;
    for _ in 0..3 {
        let r = app.client.get(app.url("/auth/me")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_429(app.client.get(app.url("/auth/me")).send().await.unwrap()).await;
    // Health and metrics are not limited.
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_forwarded_ip_counts_only_behind_a_trusted_proxy() {
    let trusted = limited(&[
        ("EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE", "2"),
        ("EAGATE_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let from = |ip: &str| {
        trusted
            .client
            .get(trusted.url("/auth/me"))
            .header("x-forwarded-for", format!("198.51.100.9, {ip}"))
            .send()
    };
    assert_eq!(
        from("203.0.113.1").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        from("203.0.113.1").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_429(from("203.0.113.1").await.unwrap()).await;
    assert_eq!(
        from("203.0.113.2").await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "another client"
    );

    let untrusted = limited(&[("EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE", "2")]).await;
    for ip in ["203.0.113.1", "203.0.113.2"] {
        let r = untrusted
            .client
            .get(untrusted.url("/auth/me"))
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = untrusted
        .client
        .get(untrusted.url("/auth/me"))
        .header("x-forwarded-for", "203.0.113.3")
        .send()
        .await
        .unwrap();
    assert_429(r).await;
}

#[tokio::test]
async fn failed_logins_slow_down_one_account_only() {
    let app = limited(&[
        ("EAGATE_RATE_LIMIT_PASSWORD_CHECKS_PER_ACCOUNT_PER_MINUTE", "2"),
        ("EAGATE_RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE", "50"),
    ])
    .await;
    app.register("target").await;
    app.register("bystander").await;
    let attempt = |login: &'static str, password: &'static str| {
        app.client
            .post(app.url("/auth/login"))
            .json(&json!({"login": login, "password": password}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            attempt("target", "wrong password!").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_429(attempt("target", "wrong password!").await.unwrap()).await;
    assert_429(attempt("TARGET", PASSWORD).await.unwrap()).await;
    assert_eq!(
        attempt("bystander", PASSWORD).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logins_are_limited_per_ip() {
    let app = limited(&[("EAGATE_RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE", "2")]).await;
    for _ in 0..2 {
        let r = app
            .post_json(
                "/auth/login",
                &json!({"login": "nobody", "password": "whatever it is"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app
        .post_json(
            "/auth/login",
            &json!({"login": "nobody", "password": "whatever it is"}),
        )
        .await;
    assert_429(r).await;
}

async fn signed_device(app: &TestApp, owner: &str) -> (String, String) {
    // Rate limits are per IP on owner routes: keep setup small.
    let (token, _) = app.user_with_tokens(owner).await;
    let (device, secret) = app.create_device(&token, "EA").await;
    (device["id"].as_str().unwrap().to_owned(), secret)
}

async fn send_signed(app: &TestApp, signer: &Signer) -> reqwest::Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig = signer.sign("GET", "/api/v1/device/config", b"", now, &new_nonce());
    let mut request = app.client.get(format!("{}/api/v1/device/config", app.base));
    for (k, v) in sig.headers() {
        request = request.header(k, v);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn device_requests_are_limited_per_device() {
    let app = limited(&[("EAGATE_RATE_LIMIT_DEVICE_PER_SECOND", "3")]).await;
    let (id, secret) = signed_device(&app, "busy").await;
    let signer = Signer::new(&id, &secret);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(send_signed(&app, &signer).await.status());
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(limited >= 1 && statuses[0] == StatusCode::OK, "{statuses:?}");
}

#[tokio::test]
async fn rate_limits_can_be_switched_off() {
    let app = spawn_app_with(&[
        ("EAGATE_RATE_LIMITS", "off"),
        ("EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE", "1"),
    ])
    .await;
    for _ in 0..5 {
        let r = app.client.get(app.url("/auth/me")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn instances_sharing_redis_share_rate_limits() {
    let prefix = format!("eagate-test:{}:", uuid::Uuid::new_v4().simple());
    let app = limited(&[
        ("EAGATE_REDIS_URL", &eagate_testkit::redis_url()),
        ("EAGATE_REDIS_KEY_PREFIX", &prefix),
        ("EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE", "2"),
    ])
    .await;
    let other = app.second_instance().await;
    assert_eq!(
        app.client.get(app.url("/auth/me")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .client
        .get(format!("{other}/api/v1/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_429(
        app.client
            .get(format!("{other}/api/v1/auth/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    app.register("headers").await;
    let token = app
        .post_json("/auth/login", &json!({"login": "headers", "password": PASSWORD}))
        .await;
    let me = app.client.get(app.url("/auth/me")).send().await.unwrap();
    let missing = app.client.get(app.url("/nowhere")).send().await.unwrap();
    for response in [&token, &me, &missing] {
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            !h.contains_key("strict-transport-security"),
            "no HSTS over plain HTTP"
        );
    }
    let jwks = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await
        .unwrap();
    assert!(
        jwks.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public")
    );
}

#[tokio::test]
async fn cors_preflight_is_allowed_for_configured_origins_only() {
    let app = spawn_app_with(&[("EAGATE_CORS_ORIGINS", "https://app.example.com")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let denied = preflight("https://evil.example.net").await.unwrap();
    assert!(!denied.headers().contains_key("access-control-allow-origin"));
    let body = assert_problem(denied, StatusCode::BAD_REQUEST, "cors-denied").await;
    assert!(body["detail"].as_str().unwrap().contains("origin"));
    // A simple request from the allowed origin carries the header too.
    let r = app
        .client
        .get(app.url("/auth/me"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    // With no origins configured, browsers are refused.
    let closed = spawn_app().await;
    let r = closed
        .client
        .request(reqwest::Method::OPTIONS, closed.url("/auth/login"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let app = spawn_app_with(&[("EAGATE_MAX_HEADER_BYTES", "2048")]).await;
    let r = app
        .client
        .get(app.url("/auth/me"))
        .header("x-padding", "p".repeat(4000))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::from_u16(431).unwrap(), "headers-too-large").await;
}

#[tokio::test]
async fn a_slow_client_times_out_with_a_problem() {
    let app = spawn_app_with(&[
        ("EAGATE_REQUEST_TIMEOUT_SECONDS", "2"),
        ("EAGATE_LONG_POLL_MAX_SECONDS", "1"),
    ])
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Promise a body and send only part of it.
        write!(
            stream,
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"login\""
        )
        .unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        (String::from_utf8_lossy(&buf).into_owned(), started.elapsed())
    })
    .await
    .unwrap();
    let (text, elapsed) = response;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("application/problem+json") && text.contains("request-timeout"),
        "{text}"
    );
    assert!(
        elapsed < Duration::from_secs(9),
        "the 2 s request timeout answered before the client's 10 s read timeout ({elapsed:?})"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let (access, _) = app.user_with_tokens("ready_owner").await;
    let health: Value = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    // Take the database away: no connections allowed, existing ones ended.
    let mut admin = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &eagate_testkit::url_for(eagate_testkit::server_url().await, "postgres"),
    )
    .await
    .unwrap();
    let name = app.db.name().to_owned();
    let _: usize = diesel::sql_query(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .unwrap();
    let _: usize = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let down = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(down, StatusCode::SERVICE_UNAVAILABLE, "not-ready").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("database"),
        "{problem}"
    );
    assert_ne!(problem["checks"]["database"], "ok");
    // A request that needs the database is told to come back: 503 with
    // Retry-After, never a 500.
    let refused = app.get_auth("/devices", &access).await;
    let retry_after = refused
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let problem = assert_problem(refused, StatusCode::SERVICE_UNAVAILABLE, "service-unavailable").await;
    assert_eq!(retry_after.as_deref(), Some("2"), "{problem}");
    assert!(
        !problem["detail"].as_str().unwrap().contains("pool"),
        "no internals: {problem}"
    );
    // Liveness is unaffected.
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let _: usize = diesel::sql_query(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut back = false;
    // Up to 30 s: the pool reconnects on its own schedule.
    for _ in 0..120 {
        if app
            .client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "readiness recovers when the database returns");
}

#[tokio::test]
async fn readiness_names_an_unreachable_redis() {
    let app = spawn_app_with(&[
        ("EAGATE_REDIS_URL", "redis://127.0.0.1:1"),
        ("EAGATE_REDIS_TIMEOUT_MS", "200"),
    ])
    .await;
    let down = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(down, StatusCode::SERVICE_UNAVAILABLE, "not-ready").await;
    assert_eq!(problem["checks"]["database"], "ok");
    assert_ne!(problem["checks"]["redis"], "ok");
}

#[tokio::test]
async fn metrics_are_exported_with_route_templates() {
    let app = spawn_app().await;
    let (id, secret) = signed_device(&app, "metered").await;
    let bad = Signer::new(&id, "eags_wrong");
    send_signed(&app, &bad).await;
    send_signed(&app, &Signer::new(&id, &secret)).await;
    app.client
        .get(app.url(&format!("/devices/{}", uuid::Uuid::now_v7())))
        .send()
        .await
        .unwrap();
    let text = app.metrics_text().await;
    for needle in [
        r#"http_requests_total{route="/api/v1/auth/login",method="POST",status="200"}"#,
        r#"route="/api/v1/devices/{id}""#,
        "http_request_duration_seconds_bucket",
        "http_requests_in_flight",
        r#"device_auth_total{outcome="invalid-signature"}"#,
        r#"device_auth_total{outcome="ok"}"#,
        r#"logins_total{outcome="succeeded"}"#,
        r#"db_pool_connections{state="max"}"#,
        r#"db_query_duration_seconds_bucket{operation="db.users.create""#,
        "long_polls_waiting",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    // Raw ids never become labels.
    assert!(!text.contains(&id));
}

#[tokio::test]
async fn a_signed_device_request_over_https() {
    let dir = std::env::temp_dir().join(format!("eagate-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let app = spawn_app_with(&[
        ("EAGATE_TLS_CERT", cert_path.to_str().unwrap()),
        ("EAGATE_TLS_KEY", key_path.to_str().unwrap()),
    ])
    .await;
    assert!(app.base.starts_with("https://"));
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let register = https
        .post(app.url("/auth/register"))
        .json(&json!({"email": "tls@example.com", "username": "tls", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::CREATED);
    assert!(
        register.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let tokens: Value = https
        .post(app.url("/auth/login"))
        .json(&json!({"login": "tls", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device: Value = https
        .post(app.url("/devices"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .json(&json!({"name": "TLS EA"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = DeviceClient::with_http_client(
        https,
        &app.base,
        device["device"]["id"].as_str().unwrap(),
        device["secret"].as_str().unwrap(),
    )
    .unwrap();
    let config = client.config().await.unwrap();
    assert_eq!(config.name, "TLS EA");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn graceful_shutdown_answers_long_polls_and_stops() {
    let (app, instance) = build_app(&[]).await;
    let base = format!("http://{}", instance.local_addr());
    let shutdown = instance.shutdown_handle();
    let server = tokio::spawn(instance.run());
    let (id, secret) = signed_device(&app, "leaving").await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let client = DeviceClient::with_http_client(http, &base, &id, &secret).unwrap();
    let started = Instant::now();
    let poll = tokio::spawn(async move { client.poll(None, Some(25)).await });
    // Shut down only once the poll is in flight (accepted and
    // authenticated), however long that takes on a busy machine.
    app.first_device_request_arrived(&id).await;
    shutdown().await;
    let polled = poll.await.unwrap().unwrap();
    assert!(polled.signals.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the 25 s long-poll ended with the shutdown, not its wait ({:?})",
        started.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops after a shutdown")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "no longer accepting"
    );
}

/// Set in the child process that runs a test alone (see [`run_alone`]).
const ALONE: &str = "EAGATE_TEST_ALONE";

/// Runs the test `name` (its full path, `module::test`) in a new process of
/// this test binary, alone, and fails with its output unless it ran and
/// passed. For tests that read process-wide metrics, which every other test
/// running in this process in parallel moves too.
fn run_alone(name: &str) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name}, run alone, failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

/// Reads one unlabelled gauge from `GET /metrics` (the scrape itself is a
/// request in flight: every reading includes it alike).
async fn gauges(app: &TestApp) -> (f64, f64) {
    let text = app.metrics_text().await;
    let read = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    (read("http_requests_in_flight"), read("long_polls_waiting"))
}

/// Waits until `(in flight, waiting)` reads `expected`, at most `within`.
async fn gauges_reach(app: &TestApp, expected: (f64, f64), within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let now = gauges(app).await;
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: (http_requests_in_flight, long_polls_waiting) is {now:?}, not {expected:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a signed `GET /api/v1/device/poll?wait=<wait>` on a connection of
/// its own and returns the connection, the answer unread.
async fn start_poll(app: &TestApp, signer: &Signer, wait: u32) -> tokio::net::TcpStream {
    let addr = app.base.strip_prefix("http://").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let target = format!("/api/v1/device/poll?wait={wait}");
    let sig = signer.sign("GET", &target, b"", now, &new_nonce());
    let mut request = format!("GET {target} HTTP/1.1\r\nhost: {addr}\r\n");
    for (k, v) in sig.headers() {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    stream
}

/// Closes `stream` with a reset (RST), as a crashed client's connection
/// ends.
fn reset(stream: tokio::net::TcpStream) {
    // The deprecation warns that a non-zero linger blocks the dropping
    // thread; a zero linger never waits, it resets.
    #[allow(deprecated)]
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// Issue 11.23: a long-poll whose client goes away must not stay counted.
/// The in-flight gauge came down only for requests that finished, so a
/// poll dropped with its connection left it one higher for good; a drop
/// guard now decrements it however the request ends. Both ways a client
/// leaves:
///
/// - the connection is reset (a crashed terminal, a killed process with
///   unread data): the server drops the waiting poll at once, and both
///   gauges are back within 10 s, long before the poll's 20 s wait ends;
/// - the connection is closed (FIN): the server cannot tell a half-close
///   from a client still reading, so the poll waits out its `wait` (here
///   2 s) and both gauges are back once it did.
#[tokio::test]
async fn a_long_poll_whose_client_disconnects_brings_the_gauges_back_down() {
    if std::env::var_os(ALONE).is_none() {
        // The gauges are process-wide and other tests' requests are in
        // flight in this process: measure in a process of its own.
        return run_alone("protection::a_long_poll_whose_client_disconnects_brings_the_gauges_back_down");
    }
    let app = spawn_app().await;
    let (id, secret) = signed_device(&app, "leaver").await;
    let signer = Signer::new(&id, &secret);
    let before = gauges(&app).await;
    assert_eq!(before.1, 0.0, "no poll waits yet");
    let waiting = (before.0 + 1.0, 1.0);
    let soon = Duration::from_secs(10);

    for round in 1..=2 {
        let poll = start_poll(&app, &signer, 20).await;
        // Accepted, authenticated and waiting: the readiness signal.
        gauges_reach(&app, waiting, soon, &format!("reset {round}: the poll waits")).await;
        reset(poll);
        gauges_reach(&app, before, soon, &format!("reset {round}: the client left")).await;
    }

    let poll = start_poll(&app, &signer, 2).await;
    gauges_reach(&app, waiting, soon, "close: the poll waits").await;
    drop(poll); // FIN
    gauges_reach(
        &app,
        before,
        Duration::from_secs(2) + soon,
        "close: the client left",
    )
    .await;
}
