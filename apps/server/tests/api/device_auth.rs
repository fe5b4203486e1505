//! Protocol v1 through the real app: the device API and a list of attacks.

use std::time::{SystemTime, UNIX_EPOCH};

use eagate_client::{DeviceClient, Heartbeat, Signer, new_nonce};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A device of a fresh user: (owner token, device id, secret).
async fn device(app: &TestApp, owner: &str) -> (String, String, String) {
    let (token, _) = app.user_with_tokens(owner).await;
    let (device, secret) = app.create_device(&token, "EA").await;
    (token, device["id"].as_str().unwrap().to_owned(), secret)
}

/// A request signed by hand, sent exactly as given.
struct Signed {
    method: Method,
    target: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Signed {
    fn new(signer: &Signer, method: Method, target: &str, body: &[u8], timestamp: i64, nonce: &str) -> Self {
        let sig = signer.sign(method.as_str(), target, body, timestamp, nonce);
        Self {
            method,
            target: target.to_owned(),
            body: body.to_vec(),
            headers: sig
                .headers()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn now(signer: &Signer, method: Method, target: &str, body: &[u8]) -> Self {
        Self::new(signer, method, target, body, now(), &new_nonce())
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    async fn send_to(&self, app: &TestApp, base: &str) -> Response {
        let mut request = app
            .client
            .request(self.method.clone(), format!("{base}{}", self.target));
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        if !self.body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(self.body.clone());
        }
        request.send().await.unwrap()
    }

    async fn send(&self, app: &TestApp) -> Response {
        self.send_to(app, &app.base).await
    }
}

const HEARTBEAT: &str = "/api/v1/device/heartbeat";
const CONFIG: &str = "/api/v1/device/config";

#[tokio::test]
async fn the_sdk_talks_to_the_device_api() {
    let app = spawn_app().await;
    let (token, id, secret) = device(&app, "sdk").await;
    let client = DeviceClient::new(&app.base, &id, &secret).unwrap();
    let config = client.config().await.unwrap();
    assert_eq!(config.device_id, id);
    assert_eq!(config.name, "EA");
    assert_eq!(
        (config.poll_interval_seconds, config.long_poll_max_seconds),
        (5, 30)
    );
    assert!((config.server_time - now()).abs() <= 2);
    let ack = client
        .heartbeat(&Heartbeat {
            ea_version: Some("2.1.0".into()),
            terminal_build: Some(4410),
            broker: Some("Société Générale — 東京".into()),
            account_login: Some(51_234_567),
            balance: Some(10_250.75),
            equity: Some(10_100.5),
        })
        .await
        .unwrap();
    assert!((ack.server_time - now()).abs() <= 2);
    // Written with the next activity flush.
    let seen = app
        .eventually(&format!("/devices/{id}"), &token, |d| {
            d["last_seen_at"].is_string() && d["heartbeat"].is_object()
        })
        .await;
    assert_eq!(seen["heartbeat"]["broker"], "Société Générale — 東京");
    assert_eq!(seen["heartbeat"]["account_login"], 51_234_567);
    assert_eq!(seen["heartbeat"]["equity"], 10_100.5);
}

#[tokio::test]
async fn the_sdk_learns_the_server_clock_from_a_skew_answer() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "drifter").await;
    let client = DeviceClient::new(&app.base, &id, &secret).unwrap();
    client.set_clock_offset(-1000);
    client.config().await.unwrap();
    assert!(
        client.clock_offset().abs() <= 2,
        "offset corrected to {}",
        client.clock_offset()
    );
}

#[tokio::test]
async fn a_captured_request_cannot_be_replayed() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "victim").await;
    let signer = Signer::new(&id, &secret);
    let captured = Signed::now(&signer, Method::POST, HEARTBEAT, br#"{"ea_version":"1.0"}"#);
    assert_eq!(captured.send(&app).await.status(), StatusCode::ACCEPTED);
    assert_problem(captured.send(&app).await, StatusCode::UNAUTHORIZED, "replayed").await;
}

#[tokio::test]
async fn fifty_concurrent_copies_of_one_nonce_succeed_exactly_once() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "racer").await;
    let signer = Signer::new(&id, &secret);
    let request = Signed::now(&signer, Method::GET, CONFIG, b"");
    let responses = futures_util::future::join_all((0..50).map(|_| request.send(&app))).await;
    let statuses: Vec<StatusCode> = responses.iter().map(Response::status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED)
    );
}

#[tokio::test]
async fn timestamps_outside_the_window_are_refused_with_the_server_time() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "clock").await;
    let signer = Signer::new(&id, &secret);
    for offset in [-301, 301] {
        let request = Signed::new(&signer, Method::GET, CONFIG, b"", now() + offset, &new_nonce());
        let response = request.send(&app).await;
        let header: i64 = response.headers()["x-server-time"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let problem = assert_problem(response, StatusCode::UNAUTHORIZED, "clock-skew").await;
        assert!((header - now()).abs() <= 2);
        assert_eq!(problem["server_time"], header);
    }
    let ahead = Signed::new(&signer, Method::GET, CONFIG, b"", now() + 295, &new_nonce());
    assert_eq!(ahead.send(&app).await.status(), StatusCode::OK, "295 s ahead");
    // 295 s behind is inside the window, but before this instance started:
    // its in-memory replay guard cannot know whether an earlier process saw
    // the nonce, so the request is refused (sign again with the time now).
    let behind = Signed::new(&signer, Method::GET, CONFIG, b"", now() - 295, &new_nonce());
    let problem = assert_problem(behind.send(&app).await, StatusCode::UNAUTHORIZED, "clock-skew").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("replay memory"),
        "{problem}"
    );

    // With Redis (memory that outlives the instance) the whole window is open.
    let shared = spawn_app_with(&[
        ("EAGATE_REDIS_URL", &eagate_testkit::redis_url()),
        (
            "EAGATE_REDIS_KEY_PREFIX",
            &format!("eagate-test:{}:", uuid::Uuid::new_v4().simple()),
        ),
    ])
    .await;
    let (_, id, secret) = device(&shared, "clock").await;
    let signer = Signer::new(&id, &secret);
    for offset in [-295, 295] {
        let request = Signed::new(&signer, Method::GET, CONFIG, b"", now() + offset, &new_nonce());
        assert_eq!(
            request.send(&shared).await.status(),
            StatusCode::OK,
            "offset {offset}"
        );
    }
}

#[tokio::test]
async fn a_signature_only_covers_what_was_signed() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "tamper").await;
    let signer = Signer::new(&id, &secret);
    // Signed one body, sent another.
    let mut request = Signed::now(&signer, Method::POST, HEARTBEAT, br#"{"balance":1}"#);
    request.body = br#"{"balance":9}"#.to_vec();
    assert_problem(
        request.send(&app).await,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
    // Signed one path, sent another.
    let mut request = Signed::now(&signer, Method::GET, CONFIG, b"");
    request.target = "/api/v1/device/config?x=1".to_owned();
    assert_problem(
        request.send(&app).await,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
    // Signed one query, sent another.
    let mut request = Signed::now(&signer, Method::GET, "/api/v1/device/config?a=1", b"");
    request.target = "/api/v1/device/config?a=2".to_owned();
    assert_problem(
        request.send(&app).await,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
    // Signed as GET, sent as POST.
    let mut request = Signed::now(&signer, Method::GET, HEARTBEAT, br#"{}"#);
    request.method = Method::POST;
    assert_problem(
        request.send(&app).await,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
    // Percent-encoded queries are signed exactly as sent, not decoded.
    let request = Signed::now(
        &signer,
        Method::GET,
        "/api/v1/device/config?name=a%20b&sym=EUR%2FUSD&z=",
        b"",
    );
    assert_eq!(request.send(&app).await.status(), StatusCode::OK);
    // An empty query after `?` signs like no query.
    let request = Signed::now(&signer, Method::GET, "/api/v1/device/config?", b"");
    assert_eq!(request.send(&app).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_devices_signature_does_not_work_for_another() {
    let app = spawn_app().await;
    let (_, a_id, a_secret) = device(&app, "alpha").await;
    let (_, b_id, _) = device(&app, "bravo").await;
    let a = Signer::new(&a_id, &a_secret);
    // Device A signs properly, then the id is swapped to B's.
    let request = Signed::now(&a, Method::GET, CONFIG, b"").header("x-device-id", &b_id);
    let swapped = assert_problem(
        request.send(&app).await,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
    // A's secret signing for B's id fails the same way, as does an unknown id.
    let as_b = Signer::new(&b_id, &a_secret);
    let forged = assert_problem(
        Signed::now(&as_b, Method::GET, CONFIG, b"").send(&app).await,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
    let ghost = Signer::new(&Uuid::now_v7().to_string(), &a_secret);
    let unknown = assert_problem(
        Signed::now(&ghost, Method::GET, CONFIG, b"").send(&app).await,
        StatusCode::UNAUTHORIZED,
        "invalid-signature",
    )
    .await;
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("instance");
        v
    };
    assert_eq!(strip(swapped.clone()), strip(forged));
    assert_eq!(strip(swapped), strip(unknown));
}

#[tokio::test]
async fn a_revoked_device_is_locked_out_at_once() {
    let app = spawn_app().await;
    let (token, id, secret) = device(&app, "revoked").await;
    let signer = Signer::new(&id, &secret);
    assert_eq!(
        Signed::now(&signer, Method::GET, CONFIG, b"")
            .send(&app)
            .await
            .status(),
        StatusCode::OK
    );
    app.post_auth(&format!("/devices/{id}/revoke"), &token).await;
    let response = Signed::now(&signer, Method::GET, CONFIG, b"").send(&app).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "device-revoked").await;
    // Without the secret, nobody learns that it is revoked.
    let guesser = Signer::new(&id, "eags_not-the-secret");
    let response = Signed::now(&guesser, Method::GET, CONFIG, b"").send(&app).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-signature").await;
}

#[tokio::test]
async fn rotation_grace_is_honoured_and_then_ends() {
    let app = spawn_app().await;
    let (token, id, old_secret) = device(&app, "rotating").await;
    let rotated: Value = app
        .post_json_auth(
            &format!("/devices/{id}/rotate-secret"),
            &token,
            &json!({"grace_seconds": 3}),
        )
        .await
        .json()
        .await
        .unwrap();
    let new_secret = rotated["secret"].as_str().unwrap();
    let old = Signer::new(&id, &old_secret);
    let new = Signer::new(&id, new_secret);
    assert_eq!(
        Signed::now(&old, Method::GET, CONFIG, b"")
            .send(&app)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        Signed::now(&new, Method::GET, CONFIG, b"")
            .send(&app)
            .await
            .status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let response = Signed::now(&old, Method::GET, CONFIG, b"").send(&app).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-signature").await;
    assert_eq!(
        Signed::now(&new, Method::GET, CONFIG, b"")
            .send(&app)
            .await
            .status(),
        StatusCode::OK
    );
    // Without grace the old secret dies immediately.
    let again: Value = app
        .post_auth(&format!("/devices/{id}/rotate-secret"), &token)
        .await
        .json()
        .await
        .unwrap();
    let response = Signed::now(&new, Method::GET, CONFIG, b"").send(&app).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-signature").await;
    let newest = Signer::new(&id, again["secret"].as_str().unwrap());
    assert_eq!(
        Signed::now(&newest, Method::GET, CONFIG, b"")
            .send(&app)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn header_names_are_case_insensitive_but_duplicates_are_refused() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "headers").await;
    let signer = Signer::new(&id, &secret);
    let mut request = Signed::now(&signer, Method::GET, CONFIG, b"");
    request.headers = request
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v))
        .collect();
    assert_eq!(request.send(&app).await.status(), StatusCode::OK);
    for header in ["x-device-id", "x-timestamp", "x-nonce", "x-signature"] {
        let mut request = Signed::now(&signer, Method::GET, CONFIG, b"");
        let value = request
            .headers
            .iter()
            .find(|(k, _)| k == header)
            .unwrap()
            .1
            .clone();
        request.headers.push((header.to_owned(), value));
        let problem = assert_problem(
            request.send(&app).await,
            StatusCode::BAD_REQUEST,
            "malformed-header",
        )
        .await;
        assert_eq!(problem["errors"][0]["code"], "repeated", "{header}");
    }
}

#[tokio::test]
async fn missing_and_malformed_headers_are_named() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "malformed").await;
    let signer = Signer::new(&id, &secret);
    for (header, display) in [
        ("x-device-id", "X-Device-Id"),
        ("x-timestamp", "X-Timestamp"),
        ("x-nonce", "X-Nonce"),
        ("x-signature", "X-Signature"),
    ] {
        let mut request = Signed::now(&signer, Method::GET, CONFIG, b"");
        request.headers.retain(|(k, _)| k != header);
        let problem = assert_problem(
            request.send(&app).await,
            StatusCode::BAD_REQUEST,
            "malformed-header",
        )
        .await;
        assert_eq!(error_fields(&problem), [display]);
        assert_eq!(problem["errors"][0]["code"], "missing");
    }
    let cases: Vec<(&str, String, &str)> = vec![
        ("x-device-id", "not-a-uuid".into(), "X-Device-Id"),
        ("x-device-id", id.to_ascii_uppercase(), "X-Device-Id"),
        ("x-device-id", id.replace('-', ""), "X-Device-Id"),
        ("x-timestamp", "-5".into(), "X-Timestamp"),
        ("x-timestamp", "12.5".into(), "X-Timestamp"),
        ("x-nonce", "short".into(), "X-Nonce"),
        ("x-nonce", "n".repeat(65), "X-Nonce"),
        ("x-nonce", "bad nonce with spaces".into(), "X-Nonce"),
        ("x-nonce", "semi;colons;are;bad".into(), "X-Nonce"),
        ("x-signature", "v2=00".into(), "X-Signature"),
        ("x-signature", format!("v1={}", "z".repeat(64)), "X-Signature"),
    ];
    for (header, value, display) in cases {
        let request = Signed::now(&signer, Method::GET, CONFIG, b"").header(header, &value);
        let problem = assert_problem(
            request.send(&app).await,
            StatusCode::BAD_REQUEST,
            "malformed-header",
        )
        .await;
        assert_eq!(error_fields(&problem), [display], "{header}: {value}");
    }
    // Upper-case hex in the signature is fine.
    let request = Signed::now(&signer, Method::GET, CONFIG, b"");
    let sig = request
        .headers
        .iter()
        .find(|(k, _)| k == "x-signature")
        .unwrap()
        .1
        .clone();
    let upper = format!("v1={}", sig[3..].to_ascii_uppercase());
    assert_eq!(
        request.header("x-signature", &upper).send(&app).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn oversized_and_compressed_bodies_are_refused() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "bodies").await;
    let signer = Signer::new(&id, &secret);
    let big = format!(r#"{{"broker":"{}"}}"#, "x".repeat(65 * 1024));
    let request = Signed::now(&signer, Method::POST, HEARTBEAT, big.as_bytes());
    assert_problem(
        request.send(&app).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    )
    .await;
    let request = Signed::now(&signer, Method::POST, HEARTBEAT, br#"{"ea_version":"1"}"#)
        .header("content-encoding", "gzip");
    assert_problem(
        request.send(&app).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    // Under the limit is fine.
    let ok = format!(r#"{{"broker":"{}"}}"#, "x".repeat(100));
    let request = Signed::now(&signer, Method::POST, HEARTBEAT, ok.as_bytes());
    assert_eq!(request.send(&app).await.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn heartbeat_bodies_are_validated() {
    let app = spawn_app().await;
    let (_, id, secret) = device(&app, "validator").await;
    let signer = Signer::new(&id, &secret);
    for (body, field) in [
        (json!({"terminal_build": -1}), "terminal_build"),
        (json!({"account_login": -3}), "account_login"),
        (json!({"balance": 1e16}), "balance"),
        (json!({"ea_version": "v".repeat(33)}), "ea_version"),
        (json!({"broker": "tab\there"}), "broker"),
    ] {
        let request = Signed::now(&signer, Method::POST, HEARTBEAT, body.to_string().as_bytes());
        let problem = assert_problem(
            request.send(&app).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    for body in [
        r#"{"balance":"lots"}"#,
        r#"{"unknown":1}"#,
        "[1,2]",
        "not json",
        r#"{"balance":1e400}"#,
    ] {
        let request = Signed::now(&signer, Method::POST, HEARTBEAT, body.as_bytes());
        assert_problem(
            request.send(&app).await,
            StatusCode::BAD_REQUEST,
            "malformed-body",
        )
        .await;
    }
    // A signed body without a JSON content type.
    let request = Signed::now(&signer, Method::POST, HEARTBEAT, b"{}");
    let mut builder = app
        .client
        .post(format!("{}{HEARTBEAT}", app.base))
        .body(b"{}".to_vec());
    for (k, v) in &request.headers {
        builder = builder.header(k, v);
    }
    let response = builder.header("content-type", "text/plain").send().await.unwrap();
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
}

#[tokio::test]
async fn two_instances_sharing_redis_refuse_a_replay_across_them() {
    let app = spawn_app_with(&[
        ("EAGATE_REDIS_URL", &eagate_testkit::redis_url()),
        (
            "EAGATE_REDIS_KEY_PREFIX",
            &format!("eagate-test:{}:", Uuid::new_v4().simple()),
        ),
    ])
    .await;
    let second = app.second_instance().await;
    let (_, id, secret) = device(&app, "spread").await;
    let signer = Signer::new(&id, &secret);
    let captured = Signed::now(&signer, Method::GET, CONFIG, b"");
    assert_eq!(captured.send_to(&app, &app.base).await.status(), StatusCode::OK);
    assert_problem(
        captured.send_to(&app, &second).await,
        StatusCode::UNAUTHORIZED,
        "replayed",
    )
    .await;
    // Both instances serve the device otherwise.
    let fresh = Signed::now(&signer, Method::GET, CONFIG, b"");
    assert_eq!(fresh.send_to(&app, &second).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unreachable_redis_fails_closed() {
    let app = spawn_app_with(&[
        ("EAGATE_REDIS_URL", "redis://127.0.0.1:1"),
        ("EAGATE_REDIS_TIMEOUT_MS", "200"),
    ])
    .await;
    let (_, id, secret) = device(&app, "closed").await;
    let signer = Signer::new(&id, &secret);
    let response = Signed::now(&signer, Method::GET, CONFIG, b"").send(&app).await;
    let problem = assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "service-unavailable").await;
    assert!(
        !problem.to_string().contains("127.0.0.1:1"),
        "no internals in the body"
    );
}

#[tokio::test]
async fn device_endpoints_need_a_signature_not_a_bearer_token() {
    let app = spawn_app().await;
    let (token, _, _) = device(&app, "bearer").await;
    let response = app.get_auth("/device/config", &token).await;
    assert_problem(response, StatusCode::BAD_REQUEST, "malformed-header").await;
}
