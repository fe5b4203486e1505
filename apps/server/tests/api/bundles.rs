//! EA bundles and deployments: the owner API (upload, list, get, delete;
//! create, list, progress, cancel), the signed device API (target,
//! download with Range, status reports), every bad input, and the whole
//! rollout end to end.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use eagate_client::{Signer, new_nonce};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::helpers::*;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A file of `n` bytes that is not all one value.
fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

async fn upload(app: &TestApp, token: &str, query: &str, body: Vec<u8>) -> Response {
    app.client
        .post(app.url(&format!("/bundles?{query}")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn uploaded(app: &TestApp, token: &str, name: &str, version: &str, body: Vec<u8>) -> Value {
    let response = upload(app, token, &format!("name={name}&version={version}"), body).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "uploading {name} {version}"
    );
    response.json().await.unwrap()
}

/// A device: (id, secret).
struct Dev(String, String);

async fn devices(app: &TestApp, token: &str, n: usize) -> Vec<Dev> {
    let mut out = Vec::new();
    for i in 0..n {
        let (device, secret) = app.create_device(token, &format!("Terminal {i}")).await;
        out.push(Dev(device["id"].as_str().unwrap().to_owned(), secret));
    }
    out
}

/// A signed request from `dev` (`target`: path and query after the base).
async fn signed(
    app: &TestApp,
    dev: &Dev,
    method: Method,
    target: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Response {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let sig = Signer::new(&dev.0, &dev.1).sign(method.as_str(), target, &bytes, now(), &new_nonce());
    let mut request = app.client.request(method, format!("{}{target}", app.base));
    for (k, v) in sig.headers() {
        request = request.header(k, v);
    }
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json").body(bytes);
    }
    request.send().await.unwrap()
}

async fn report(app: &TestApp, dev: &Dev, deployment: &str, body: Value) -> Response {
    signed(
        app,
        dev,
        Method::POST,
        &format!("/api/v1/device/deployments/{deployment}/status"),
        Some(&body),
        &[],
    )
    .await
}

async fn reported(app: &TestApp, dev: &Dev, deployment: &str, status: &str) -> Value {
    let response = report(app, dev, deployment, json!({"status": status})).await;
    assert_eq!(response.status(), StatusCode::OK, "reporting {status}");
    response.json().await.unwrap()
}

async fn target(app: &TestApp, dev: &Dev) -> Response {
    signed(app, dev, Method::GET, "/api/v1/device/deployment", None, &[]).await
}

async fn download(app: &TestApp, dev: &Dev, bundle: &str, extra: &[(&str, &str)]) -> Response {
    signed(
        app,
        dev,
        Method::GET,
        &format!("/api/v1/device/bundles/{bundle}"),
        None,
        extra,
    )
    .await
}

async fn deploy(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app.post_json_auth("/deployments", token, &body).await;
    let status = response.status();
    let value: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{value}");
    value
}

fn ids(devs: &[Dev]) -> Vec<&str> {
    devs.iter().map(|d| d.0.as_str()).collect()
}

/// The value of `bundle_downloads_total{range="…"}` in /metrics (the
/// recorder is process-wide: compare before and after).
async fn downloads_metric(app: &TestApp, range: &str) -> f64 {
    let text = app.metrics_text().await;
    let series = format!("bundle_downloads_total{{range=\"{range}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} is missing"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_uploaded_bundle_is_listed_read_and_deleted_with_audit_events() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("bundler").await;
    // Three 256 KiB chunks and a bit: stored in several rows.
    let bytes = file(3 * 256 * 1024 + 17);
    let response = upload(
        &app,
        &token,
        "name=TrendFollower&version=1.4.2&notes=Tighter%20stops",
        bytes.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = header(&response, "location");
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/bundles/{}", bundle["id"].as_str().unwrap())
    );
    assert_eq!(bundle["name"], "TrendFollower");
    assert_eq!(bundle["version"], "1.4.2");
    assert_eq!(bundle["notes"], "Tighter stops");
    assert_eq!(bundle["size"], bytes.len());
    assert_eq!(
        bundle["sha256"],
        hex_sha256(&bytes),
        "the digest computed while streaming"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM bundle_chunks WHERE bundle_id = '{}'",
            bundle["id"].as_str().unwrap()
        ))
        .await,
        4,
        "stored in 256 KiB chunks"
    );
    let id = bundle["id"].as_str().unwrap();
    let got: Value = app
        .get_auth(&format!("/bundles/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, bundle);
    uploaded(&app, &token, "TrendFollower", "1.5.0", file(10)).await;
    let page: Value = app
        .get_auth("/bundles?limit=1", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["version"], "1.5.0", "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get_auth(&format!("/bundles?limit=1&cursor={cursor}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["items"][0]["id"], bundle["id"]);
    assert!(next["next_cursor"].is_null());

    let (other, _) = app.user_with_tokens("stranger").await;
    assert_problem(
        app.get_auth(&format!("/bundles/{id}"), &other).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let response = app
        .client
        .delete(app.url(&format!("/bundles/{id}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not-found").await;

    let response = app
        .client
        .delete(app.url(&format!("/bundles/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_auth(&format!("/bundles/{id}"), &token).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert!(
        app.count("SELECT count(*) AS n FROM bundle_chunks").await > 0,
        "the other bundle's file stays"
    );
    let actions: Vec<Value> = app
        .audit(&token)
        .await
        .into_iter()
        .map(|e| e["action"].clone())
        .collect();
    assert!(
        actions.contains(&json!("bundle.uploaded")) && actions.contains(&json!("bundle.deleted")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let app = spawn_app_with(&[("EAGATE_BUNDLE_MAX_BYTES", "300000")]).await;
    let (token, _) = app.user_with_tokens("uploader").await;
    let problem = assert_problem(
        upload(&app, &token, "notes=x", file(10)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["name", "version"]);
    for (query, field) in [
        ("name=EA&version=1.2", "version"),
        ("name=EA&version=01.2.3", "version"),
        ("name=EA&version=v1.2.3", "version"),
        ("name=.EA&version=1.2.3", "name"),
        ("name=E%20A&version=1.2.3", "name"),
        ("name=EA&version=1.2.3&notes=%07", "notes"),
    ] {
        let problem = assert_problem(
            upload(&app, &token, query, file(10)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{query}");
    }
    let problem = assert_problem(
        upload(&app, &token, "name=EA&version=1.0.0", Vec::new()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["(body)"], "an empty file");
    assert_problem(
        upload(&app, &token, "name=EA&version=1.0.0&colour=red", file(10)).await,
        StatusCode::BAD_REQUEST,
        "malformed-query",
    )
    .await;
    // Declared too large: refused before reading.
    assert_problem(
        upload(&app, &token, "name=EA&version=1.0.0", file(300_001)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    )
    .await;
    // Too large without a declared length (chunked): refused while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..5).map(|_| Ok(file(100_000))).collect();
    let response = app
        .client
        .post(app.url("/bundles?name=EA&version=1.0.0"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM bundles").await,
        0,
        "no bundle row is left"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM bundle_chunks").await,
        0,
        "no chunk is left"
    );
    let response = app
        .client
        .post(app.url("/bundles?name=EA&version=1.0.0"))
        .bearer_auth(&token)
        .header("content-encoding", "gzip")
        .body(file(10))
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    let response = app
        .client
        .post(app.url("/bundles?name=EA&version=1.0.0"))
        .body(file(10))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-token").await;
    // The same name and version twice.
    uploaded(&app, &token, "EA", "1.0.0", file(10)).await;
    assert_problem(
        upload(&app, &token, "name=EA&version=1.0.0", file(20)).await,
        StatusCode::CONFLICT,
        "bundle-version-taken",
    )
    .await;
    // A file of exactly the limit is accepted.
    uploaded(&app, &token, "EA", "1.0.1", file(300_000)).await;
    // Paths and listings.
    assert_problem(
        app.get_auth("/bundles/not-a-uuid", &token).await,
        StatusCode::BAD_REQUEST,
        "malformed-id",
    )
    .await;
    assert_problem(
        app.get_auth("/bundles?limit=0", &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_problem(
        app.get_auth("/bundles?cursor=zzz", &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
}

#[tokio::test]
async fn deployments_refuse_bad_input() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("deployer").await;
    let (other, _) = app.user_with_tokens("neighbour").await;
    let devs = devices(&app, &token, 2).await;
    let foreign = devices(&app, &other, 1).await;
    let bundle = uploaded(&app, &token, "EA", "1.0.0", file(10)).await;
    let theirs = uploaded(&app, &other, "EA", "1.0.0", file(10)).await;
    let id = bundle["id"].clone();
    for (body, fields) in [
        (json!({"bundle_id": id, "target": "some"}), vec!["target"]),
        (json!({"bundle_id": id, "target": "devices"}), vec!["device_ids"]),
        (
            json!({"bundle_id": id, "target": "devices", "device_ids": []}),
            vec!["device_ids"],
        ),
        (
            json!({"bundle_id": id, "target": "devices", "device_ids": vec![devs[0].0.clone(); 1001]}),
            vec!["device_ids"],
        ),
        (
            json!({"bundle_id": id, "target": "all", "device_ids": [devs[0].0]}),
            vec!["device_ids"],
        ),
        (
            json!({"bundle_id": id, "target": "all", "waves": [50]}),
            vec!["waves"],
        ),
        (
            json!({"bundle_id": id, "target": "all", "waves": [50, 50, 100]}),
            vec!["waves"],
        ),
        (
            json!({"bundle_id": id, "target": "all", "waves": [0, 100]}),
            vec!["waves"],
        ),
        (
            json!({"bundle_id": id, "target": "all", "abort_failure_percent": 101}),
            vec!["abort_failure_percent"],
        ),
        (
            json!({"bundle_id": id, "target": "all", "abort_min_finished": 2}),
            vec!["abort_min_finished"],
        ),
        (
            json!({"bundle_id": id, "target": "all", "timeout_minutes": 0}),
            vec!["timeout_minutes"],
        ),
        (
            json!({"bundle_id": id, "target": "devices", "device_ids": [foreign[0].0]}),
            vec!["device_ids"],
        ),
        (
            json!({"bundle_id": id, "target": "devices", "device_ids": [devs[0].0, devs[0].0]}),
            vec!["device_ids"],
        ),
    ] {
        let problem = assert_problem(
            app.post_json_auth("/deployments", &token, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), fields, "{body}");
    }
    for body in [
        json!({"bundle_id": "nope", "target": "all"}),
        json!({"target": "all"}),
        json!({"bundle_id": id, "target": "all", "colour": 1}),
        json!({"bundle_id": id, "target": "all", "waves": "all"}),
    ] {
        assert_problem(
            app.post_json_auth("/deployments", &token, &body).await,
            StatusCode::BAD_REQUEST,
            "malformed-body",
        )
        .await;
    }
    assert_problem(
        app.post_json_auth(
            "/deployments",
            &token,
            &json!({"bundle_id": theirs["id"], "target": "all"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_auth("/deployments/x", &token).await,
        StatusCode::BAD_REQUEST,
        "malformed-id",
    )
    .await;
    assert_problem(
        app.get_auth(&format!("/deployments/{}", uuid::Uuid::now_v7()), &token)
            .await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_auth("/deployments?limit=500", &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;

    // Device side.
    let d = deploy(&app, &token, json!({"bundle_id": id, "target": "all"})).await;
    let dep = d["id"].as_str().unwrap();
    for (body, field) in [
        (json!({"status": "pending"}), "status"),
        (json!({"status": "done"}), "status"),
        (json!({"status": "failed", "reason": "x".repeat(513)}), "reason"),
        (json!({"status": "failed", "reason": "  "}), "reason"),
        (json!({"status": "installed", "reason": "why not"}), "reason"),
    ] {
        let problem = assert_problem(
            report(&app, &devs[0], dep, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    assert_problem(
        report(&app, &devs[0], dep, json!({"state": "installed"})).await,
        StatusCode::BAD_REQUEST,
        "malformed-body",
    )
    .await;
    assert_problem(
        report(&app, &devs[0], "nope", json!({"status": "installed"})).await,
        StatusCode::BAD_REQUEST,
        "malformed-id",
    )
    .await;
    assert_problem(
        report(&app, &foreign[0], dep, json!({"status": "installed"})).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        download(&app, &foreign[0], bundle["id"].as_str().unwrap(), &[]).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        download(&app, &devs[0], "nope", &[]).await,
        StatusCode::BAD_REQUEST,
        "malformed-id",
    )
    .await;
    // Unsigned.
    let response = app
        .client
        .get(app.url("/device/deployment"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "malformed-header").await;
}

/// The proof the issue asks for: upload → deploy in two waves → devices
/// download (one resumes with Range) → report → the second wave starts →
/// a failing wave aborts.
#[tokio::test]
async fn a_rollout_in_two_waves_downloads_resumes_reports_and_aborts_on_failures() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("fleetowner").await;
    let devs = devices(&app, &token, 6).await;
    let bytes = file(300 * 1024 + 5);
    let bundle = uploaded(&app, &token, "TrendFollower", "2.0.0", bytes.clone()).await;
    let bundle_id = bundle["id"].as_str().unwrap().to_owned();
    let d = deploy(
        &app,
        &token,
        json!({
            "bundle_id": bundle_id, "target": "devices", "device_ids": ids(&devs),
            "waves": [50, 100], "abort_failure_percent": 40, "abort_min_finished": 2, "timeout_minutes": 60
        }),
    )
    .await;
    let dep = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["state"], "running");
    assert_eq!(d["counts"]["pending"], 3, "the first wave: half of the devices");
    assert_eq!(d["counts"]["waiting"], 3);
    assert_eq!(d["next_wave"], json!({"wave": 1, "waiting_for_devices": 3}));

    // The first wave learns its target; the second does not yet, and may
    // not download.
    let response = target(&app, &devs[0]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let t: Value = response.json().await.unwrap();
    assert_eq!(t["deployment_id"], dep.as_str());
    assert_eq!(t["status"], "pending");
    assert_eq!(t["bundle"]["sha256"], hex_sha256(&bytes));
    assert_eq!(t["download_path"], format!("/api/v1/device/bundles/{bundle_id}"));
    assert!(t["deadline"].is_string());
    assert_eq!(target(&app, &devs[3]).await.status(), StatusCode::NO_CONTENT);
    assert_problem(
        download(&app, &devs[3], &bundle_id, &[]).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;

    // Device 0 downloads it whole.
    let response = download(&app, &devs[0], &bundle_id, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-length"), bytes.len().to_string());
    assert_eq!(header(&response, "etag"), format!("\"{}\"", hex_sha256(&bytes)));
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert_eq!(header(&response, "x-eagate-sha256"), hex_sha256(&bytes));
    let b64 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
    assert_eq!(header(&response, "repr-digest"), format!("sha-256=:{b64}:"));
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
    reported(&app, &devs[0], &dep, "downloading").await;

    let partial_before = downloads_metric(&app, "partial").await;
    // Device 1's connection drops after 100 000 bytes; it resumes.
    let response = download(&app, &devs[1], &bundle_id, &[("Range", "bytes=0-99999")]).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&response, "content-range"),
        format!("bytes 0-99999/{}", bytes.len())
    );
    let mut saved = response.bytes().await.unwrap().to_vec();
    assert_eq!(saved.len(), 100_000);
    let etag = format!("\"{}\"", hex_sha256(&bytes));
    let response = download(
        &app,
        &devs[1],
        &bundle_id,
        &[("Range", "bytes=100000-"), ("If-Range", &etag)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&response, "content-length"),
        (bytes.len() - 100_000).to_string()
    );
    saved.extend_from_slice(&response.bytes().await.unwrap());
    assert_eq!(
        hex_sha256(&saved),
        hex_sha256(&bytes),
        "the resumed file is the file"
    );
    assert!(
        downloads_metric(&app, "partial").await >= partial_before + 2.0,
        "ranged downloads are counted"
    );
    // A stale If-Range gets the whole file; a range beyond the end, 416.
    let response = download(
        &app,
        &devs[1],
        &bundle_id,
        &[("Range", "bytes=100000-"), ("If-Range", "\"other\"")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = download(
        &app,
        &devs[1],
        &bundle_id,
        &[("Range", &format!("bytes={}-", bytes.len()))],
    )
    .await;
    assert_eq!(
        header(&response, "content-range"),
        format!("bytes */{}", bytes.len())
    );
    assert_problem(
        response,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range-not-satisfiable",
    )
    .await;

    // Reports: invalid transitions are refused with the current status.
    let r = reported(&app, &devs[0], &dep, "installed").await;
    assert_eq!(r["status"], "installed");
    let problem = assert_problem(
        report(&app, &devs[0], &dep, json!({"status": "downloading"})).await,
        StatusCode::CONFLICT,
        "invalid-transition",
    )
    .await;
    assert_eq!(problem["current_status"], "installed");
    reported(&app, &devs[0], &dep, "installed").await; // a retry changes nothing
    reported(&app, &devs[1], &dep, "installed").await;
    let progress: Value = app
        .get_auth(&format!("/deployments/{dep}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        progress["current_wave"], 0,
        "the first wave still waits for device 2"
    );
    assert_eq!(progress["next_wave"]["waiting_for_devices"], 1);
    let r = report(
        &app,
        &devs[2],
        &dep,
        json!({"status": "failed", "reason": "disk full"}),
    )
    .await;
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["reason"], "disk full");

    // One failure of three stays under the threshold: the second wave starts.
    let progress: Value = app
        .get_auth(&format!("/deployments/{dep}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(progress["state"], "running");
    assert_eq!(progress["current_wave"], 1);
    assert_eq!(progress["counts"]["pending"], 3);
    assert!(progress["next_wave"].is_null(), "the last wave is running");
    let device2 = progress["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["device_id"] == devs[2].0.as_str())
        .unwrap();
    assert_eq!(
        (device2["status"].as_str(), device2["reason"].as_str()),
        (Some("failed"), Some("disk full"))
    );
    assert_eq!(
        target(&app, &devs[3]).await.status(),
        StatusCode::OK,
        "the second wave learns its target"
    );
    assert_eq!(
        download(&app, &devs[3], &bundle_id, &[]).await.status(),
        StatusCode::OK
    );

    // Two failures of two finished (100% > 40%) abort the deployment; the
    // device still pending is cancelled.
    reported(&app, &devs[3], &dep, "downloading").await;
    report(
        &app,
        &devs[3],
        &dep,
        json!({"status": "failed", "reason": "digest mismatch"}),
    )
    .await;
    let r: Value = report(
        &app,
        &devs[4],
        &dep,
        json!({"status": "failed", "reason": "terminal closed"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["deployment_state"], "aborted");
    let progress: Value = app
        .get_auth(&format!("/deployments/{dep}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(progress["state"], "aborted");
    assert_eq!(
        progress["counts"],
        json!({"waiting": 0, "pending": 0, "downloading": 0, "installed": 2, "failed": 3, "cancelled": 1})
    );
    assert_eq!(
        target(&app, &devs[5]).await.status(),
        StatusCode::NO_CONTENT,
        "nothing left to install"
    );
    assert_problem(
        report(&app, &devs[5], &dep, json!({"status": "installed"})).await,
        StatusCode::CONFLICT,
        "invalid-transition",
    )
    .await;
    let problem = assert_problem(
        app.post_auth(&format!("/deployments/{dep}/cancel"), &token).await,
        StatusCode::CONFLICT,
        "deployment-ended",
    )
    .await;
    assert_eq!(problem["state"], "aborted");

    // The bundle is in use; the audit trail tells the story.
    let response = app
        .client
        .delete(app.url(&format!("/bundles/{bundle_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::CONFLICT, "bundle-in-use").await;
    let actions: Vec<String> = app
        .audit(&token)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "deployment.created",
        "deployment.wave_started",
        "deployment.device_status",
        "deployment.aborted",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
    let list: Value = app.get_auth("/deployments", &token).await.json().await.unwrap();
    assert_eq!(list["items"][0]["id"], dep.as_str());
    assert!(
        list["items"][0].get("devices").is_none(),
        "listings leave the devices out"
    );
}

/// The `deployment_revision` a poll reports.
async fn poll_revision(app: &TestApp, dev: &Dev) -> i64 {
    let response = signed(app, dev, Method::GET, "/api/v1/device/poll", None, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["deployment_revision"].as_i64().unwrap()
}

/// Polls until the deployment revision differs from `from` (the cache
/// learns of the change from the database's notification); returns it.
async fn eventually_changed(app: &TestApp, dev: &Dev, from: i64) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = poll_revision(app, dev).await;
        if now != from {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the poll's deployment_revision stayed {from}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn heartbeats_confirm_installation_silence_times_out_and_owners_cancel() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("confirmer").await;
    let devs = devices(&app, &token, 3).await;
    let bundle = uploaded(&app, &token, "EA", "3.1.0", file(100)).await;
    assert_eq!(poll_revision(&app, &devs[2]).await, 0, "no deployment yet");
    let d = deploy(
        &app,
        &token,
        json!({"bundle_id": bundle["id"], "target": "all", "timeout_minutes": 5}),
    )
    .await;
    let dep = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["counts"]["pending"], 3, "`all`: every active device");
    // The poll (served from the device cache) tells the EA to look.
    let seen = eventually_changed(&app, &devs[2], 0).await;

    // Device 0 downloads, its EA restarts with the new version: its
    // heartbeat confirms.
    reported(&app, &devs[0], &dep, "downloading").await;
    let response = signed(
        &app,
        &devs[0],
        Method::POST,
        "/api/v1/device/heartbeat",
        Some(&json!({"ea_version": "3.1.0"})),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let progress = app
        .eventually(&format!("/deployments/{dep}"), &token, |p| {
            p["counts"]["installed"] == 1
        })
        .await;
    assert_eq!(progress["devices"][0]["status"], "installed");

    // Device 1 stays silent past the timeout.
    app.execute(&format!(
        "UPDATE deployment_devices SET started_at = started_at - interval '6 minutes' \
         WHERE deployment_id = '{dep}' AND device_id = '{}'",
        devs[1].0
    ))
    .await;
    let progress: Value = app
        .get_auth(&format!("/deployments/{dep}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let timed_out = progress["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["device_id"] == devs[1].0.as_str())
        .unwrap();
    assert_eq!(
        (timed_out["status"].as_str(), timed_out["reason"].as_str()),
        (Some("failed"), Some("timeout"))
    );

    // The owner cancels; device 2 has nothing left to do.
    let response = app.post_auth(&format!("/deployments/{dep}/cancel"), &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["counts"]["cancelled"], 1);
    assert_eq!(target(&app, &devs[2]).await.status(), StatusCode::NO_CONTENT);
    eventually_changed(&app, &devs[2], seen).await;
    let problem = assert_problem(
        report(&app, &devs[2], &dep, json!({"status": "installed"})).await,
        StatusCode::CONFLICT,
        "invalid-transition",
    )
    .await;
    assert_eq!(problem["current_status"], "cancelled");
    let actions: Vec<String> = app
        .audit(&token)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.iter().any(|a| a == "deployment.cancelled"), "{actions:?}");
}

/// The Rust SDK: learns its target, downloads with a digest check, resumes
/// an interrupted download with `Range`, refuses a corrupted one, and
/// reports.
#[tokio::test]
async fn the_rust_client_downloads_resumes_verifies_and_reports() {
    use eagate_client::{ClientError, DeploymentStatus, DeviceClient, partial_path};

    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("sdkowner").await;
    let devs = devices(&app, &token, 1).await;
    let client = DeviceClient::new(&app.base, &devs[0].0, &devs[0].1).unwrap();
    assert_eq!(client.deployment().await.unwrap(), None, "nothing deployed yet");
    let bytes = file(600 * 1024 + 3);
    let bundle = uploaded(&app, &token, "SdkEA", "1.0.0", bytes.clone()).await;
    deploy(&app, &token, json!({"bundle_id": bundle["id"], "target": "all"})).await;
    let target = client.deployment().await.unwrap().expect("a target");
    assert_eq!(target.bundle.sha256, hex_sha256(&bytes));

    let dir = std::env::temp_dir().join(format!("eagate-sdk-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("SdkEA.ex5");
    // An earlier attempt saved the first 200 000 bytes.
    std::fs::write(partial_path(&out), &bytes[..200_000]).unwrap();
    client
        .report_status(&target.deployment_id, DeploymentStatus::Downloading, None)
        .await
        .unwrap();
    let done = client.download_bundle(&target.bundle, &out).await.unwrap();
    assert_eq!(done.resumed_from, 200_000, "it resumed");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        bytes,
        "the saved file is the bundle"
    );
    assert!(!partial_path(&out).exists());

    // A corrupted partial file fails the digest check and is removed; the
    // next attempt starts over and succeeds.
    let again = dir.join("again.ex5");
    std::fs::write(partial_path(&again), vec![0u8; 1000]).unwrap();
    let error = client.download_bundle(&target.bundle, &again).await.unwrap_err();
    assert!(matches!(error, ClientError::Digest { .. }), "{error}");
    assert!(!partial_path(&again).exists(), "the bad partial file is gone");
    let done = client.download_bundle(&target.bundle, &again).await.unwrap();
    assert_eq!(done.resumed_from, 0);
    assert_eq!(std::fs::read(&again).unwrap(), bytes);

    let receipt = client
        .report_status(&target.deployment_id, DeploymentStatus::Installed, None)
        .await
        .unwrap();
    assert_eq!(
        (receipt.status.as_str(), receipt.deployment_state.as_str()),
        ("installed", "completed")
    );
    let error = client
        .report_status(&target.deployment_id, DeploymentStatus::Downloading, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("invalid-transition"));
    assert_eq!(
        client.deployment().await.unwrap(),
        None,
        "nothing left to install"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn put_labels(app: &TestApp, token: &str, device: &str, body: &Value) -> Response {
    app.client
        .put(app.url(&format!("/devices/{device}/labels")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn labels_are_set_validated_and_target_deployments() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("labeller").await;
    let (other, _) = app.user_with_tokens("outsider").await;
    let devs = devices(&app, &token, 3).await;
    let response = put_labels(
        &app,
        &token,
        &devs[0].0,
        &json!({"labels": ["vps", "london", "london"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"labels": ["london", "vps"]}),
        "sorted, repeats dropped"
    );
    put_labels(&app, &token, &devs[2].0, &json!({"labels": ["london"]})).await;
    let got: Value = app
        .get_auth(&format!("/devices/{}/labels", devs[0].0), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, json!({"labels": ["london", "vps"]}));
    let none: Value = app
        .get_auth(&format!("/devices/{}/labels", devs[1].0), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!({"labels": []}));

    // Bad input.
    let too_many: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
    for labels in [
        json!(["London"]),
        json!([""]),
        json!(["-x"]),
        json!(["a b"]),
        json!(too_many),
    ] {
        let problem = assert_problem(
            put_labels(&app, &token, &devs[0].0, &json!({ "labels": labels })).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), ["labels"], "{labels}");
    }
    for body in [json!({"labels": "vps"}), json!({}), json!({"labels": [], "x": 1})] {
        assert_problem(
            put_labels(&app, &token, &devs[0].0, &body).await,
            StatusCode::BAD_REQUEST,
            "malformed-body",
        )
        .await;
    }
    assert_problem(
        put_labels(&app, &other, &devs[0].0, &json!({"labels": []})).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_auth(&format!("/devices/{}/labels", devs[0].0), &other)
            .await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        put_labels(&app, &token, "nope", &json!({"labels": []})).await,
        StatusCode::BAD_REQUEST,
        "malformed-id",
    )
    .await;

    // Targeting a label.
    let bundle = uploaded(&app, &token, "EA", "1.0.0", file(10)).await;
    let id = bundle["id"].clone();
    for (body, field) in [
        (json!({"bundle_id": id, "target": "label"}), "label"),
        (
            json!({"bundle_id": id, "target": "label", "label": "Bad Label"}),
            "label",
        ),
        (
            json!({"bundle_id": id, "target": "all", "label": "london"}),
            "label",
        ),
        (
            json!({"bundle_id": id, "target": "label", "label": "nobody"}),
            "target",
        ),
    ] {
        let problem = assert_problem(
            app.post_json_auth("/deployments", &token, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    let d = deploy(
        &app,
        &token,
        json!({"bundle_id": id, "target": "label", "label": "london"}),
    )
    .await;
    assert_eq!(
        (d["target"].as_str(), d["label"].as_str()),
        (Some("label"), Some("london"))
    );
    let targeted: Vec<&str> = d["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        targeted,
        [devs[0].0.as_str(), devs[2].0.as_str()],
        "only the labelled devices"
    );
    assert_eq!(target(&app, &devs[1]).await.status(), StatusCode::NO_CONTENT);
    let actions: Vec<String> = app
        .audit(&token)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        actions.iter().any(|a| a == "device.labels_changed"),
        "{actions:?}"
    );
}

/// Without anyone reading the deployment, the periodic sweep times a
/// silent device out and starts the next wave.
#[tokio::test]
async fn the_sweep_moves_a_rollout_on_while_nobody_reads_it() {
    let app = spawn_app_with(&[("EAGATE_DEPLOYMENT_SWEEP_SECONDS", "1")]).await;
    let (token, _) = app.user_with_tokens("sweeper").await;
    let devs = devices(&app, &token, 2).await;
    let bundle = uploaded(&app, &token, "EA", "1.0.0", file(10)).await;
    let d = deploy(
        &app,
        &token,
        json!({"bundle_id": bundle["id"], "target": "devices", "device_ids": ids(&devs), "waves": [50, 100], "timeout_minutes": 1}),
    )
    .await;
    let dep = d["id"].as_str().unwrap();
    app.execute(&format!(
        "UPDATE deployment_devices SET started_at = started_at - interval '2 minutes' WHERE deployment_id = '{dep}'"
    ))
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app
        .count(&format!(
            "SELECT count(*) AS n FROM deployment_devices WHERE deployment_id = '{dep}' AND status = 'failed' AND reason = 'timeout'"
        ))
        .await
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "the sweep did not time the device out");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM deployments WHERE id = '{dep}' AND current_wave = 1"
        ))
        .await,
        1,
        "the second wave started"
    );
    assert_eq!(
        target(&app, &devs[1]).await.status(),
        StatusCode::OK,
        "its device learns its target"
    );
}

/// Waits up to 10 s for `sql` (a `count(*) AS n`) to give `n`.
async fn until_count(app: &TestApp, sql: &str, n: i64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.count(sql).await != n {
        assert!(std::time::Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An upload whose server died (or whose client vanished) mid-way is not
/// kept until someone uploads the same name and version again: the
/// periodic sweep drops it and its chunks once it is over an hour old. A
/// younger upload in progress and completed bundles stay.
#[tokio::test]
async fn the_sweep_drops_an_abandoned_upload_and_its_chunks() {
    let app = spawn_app_with(&[("EAGATE_DEPLOYMENT_SWEEP_SECONDS", "1")]).await;
    let (token, _) = app.user_with_tokens("abandoner").await;
    let kept = uploaded(&app, &token, "Kept", "1.0.0", file(300_000)).await;
    // What a server that died mid-upload leaves behind: the row and the
    // chunks stored so far, never completed.
    let (abandoned, recent) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (id, name, age) in [
        (abandoned, "Abandoned", "2 hours"),
        (recent, "Recent", "10 minutes"),
    ] {
        app.execute(&format!(
            "INSERT INTO bundles (id, owner_id, name, version, notes, created_at) \
             SELECT '{id}', id, '{name}', '1.0.0', '', now() - interval '{age}' FROM users WHERE username = 'abandoner'"
        ))
        .await;
        app.execute(&format!(
            "INSERT INTO bundle_chunks (bundle_id, start, data) VALUES ('{id}', 0, '\\x0102'::bytea), ('{id}', 2, '\\x03'::bytea)"
        ))
        .await;
    }
    let chunks = |id: &dyn std::fmt::Display| {
        format!("SELECT count(*) AS n FROM bundle_chunks WHERE bundle_id = '{id}'")
    };
    until_count(
        &app,
        &chunks(&abandoned),
        0,
        "the abandoned upload's chunks dropped",
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM bundles WHERE id = '{abandoned}'"
        ))
        .await,
        0,
        "and its row"
    );
    assert_eq!(
        app.count(&chunks(&recent)).await,
        2,
        "a recent upload may still be running"
    );
    assert_eq!(
        app.count(&chunks(&kept["id"].as_str().unwrap())).await,
        2,
        "a completed bundle keeps its chunks"
    );
    uploaded(&app, &token, "Abandoned", "1.0.0", file(10)).await;
}

/// More running deployments than one sweep takes (a batch of 1 here), the
/// first of them failing to load: the sweep neither stops at the failing
/// one nor takes it again and again, so the others still time out.
#[tokio::test]
async fn the_sweep_goes_round_running_deployments_and_past_a_failing_one() {
    let app = spawn_app_with(&[
        ("EAGATE_DEPLOYMENT_SWEEP_SECONDS", "1"),
        ("EAGATE_DEPLOYMENT_SWEEP_BATCH", "1"),
    ])
    .await;
    let (token, _) = app.user_with_tokens("roundsweeper").await;
    let devs = devices(&app, &token, 3).await;
    let bundle = uploaded(&app, &token, "EA", "1.0.0", file(10)).await;
    let mut deployments = Vec::new();
    for dev in &devs {
        let d = deploy(
            &app,
            &token,
            json!({"bundle_id": bundle["id"], "target": "devices", "device_ids": [dev.0], "timeout_minutes": 1}),
        )
        .await;
        deployments.push(d["id"].as_str().unwrap().to_owned());
    }
    // The first (the sweep's first pick) cannot be loaded.
    app.execute(&format!(
        "UPDATE deployments SET waves = '{{300}}' WHERE id = '{}'",
        deployments[0]
    ))
    .await;
    app.execute(&format!(
        "UPDATE deployment_devices SET started_at = started_at - interval '2 minutes' WHERE deployment_id IN ('{}')",
        deployments.join("','")
    ))
    .await;
    for dep in &deployments[1..] {
        until_count(
            &app,
            &format!(
                "SELECT count(*) AS n FROM deployment_devices WHERE deployment_id = '{dep}' AND status = 'failed' AND reason = 'timeout'"
            ),
            1,
            "a silent device behind the failing deployment timed out",
        )
        .await;
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM deployments WHERE id = '{}' AND swept_at IS NOT NULL",
            deployments[0]
        ))
        .await,
        1,
        "the failing deployment was tried too"
    );
}

/// An account's bundles, uploads in progress included, may take
/// `EAGATE_BUNDLE_STORAGE_MAX_BYTES_PER_ACCOUNT`: an upload that would go
/// past it is refused with `409 bundle-storage-full` before the body is read
/// (declared length) or while it streams (chunked), and nothing of it is
/// kept; other accounts are unaffected, and up to the limit is fine.
#[tokio::test]
async fn uploads_past_the_accounts_storage_limit_are_refused_and_leave_nothing() {
    let app = spawn_app_with(&[("EAGATE_BUNDLE_STORAGE_MAX_BYTES_PER_ACCOUNT", "600000")]).await;
    let (token, _) = app.user_with_tokens("hoarder").await;
    let (other, _) = app.user_with_tokens("neighbour").await;
    let first = uploaded(&app, &token, "EA", "1.0.0", file(400_000)).await;
    let declared = assert_problem(
        upload(&app, &token, "name=EA&version=2.0.0", file(300_000)).await,
        StatusCode::CONFLICT,
        "bundle-storage-full",
    )
    .await;
    assert_eq!(
        (&declared["max_bytes"], &declared["stored_bytes"]),
        (&json!(600_000), &json!(400_000)),
        "{declared}"
    );
    // Without a declared length: refused at the chunk that would cross it.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..3).map(|_| Ok(file(100_000))).collect();
    let response = app
        .client
        .post(app.url("/bundles?name=EA&version=2.0.0"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let streamed = assert_problem(response, StatusCode::CONFLICT, "bundle-storage-full").await;
    assert_eq!(
        streamed["stored_bytes"],
        json!(400_000),
        "the refused upload's own chunks, dropped with it, are not counted: {streamed}"
    );
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM bundles b JOIN users u ON u.id = b.owner_id WHERE u.username = 'hoarder' AND b.id <> '{first_id}'"
        ))
        .await,
        0,
        "no row of a refused upload is left"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM bundle_chunks WHERE bundle_id <> '{first_id}'"
        ))
        .await,
        0,
        "no chunk of it either"
    );
    uploaded(&app, &other, "EA", "1.0.0", file(500_000)).await;
    uploaded(&app, &token, "EA", "2.0.0", file(200_000)).await;
    assert_problem(
        upload(&app, &token, "name=EA&version=3.0.0", file(1)).await,
        StatusCode::CONFLICT,
        "bundle-storage-full",
    )
    .await;
    let delete = app
        .client
        .delete(app.url(&format!("/bundles/{first_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    uploaded(&app, &token, "EA", "3.0.0", file(1)).await;
}

/// An upload that keeps trickling in (never idle long enough for the body
/// read timeout) is still ended at `EAGATE_BUNDLE_UPLOAD_TIMEOUT_SECONDS`
/// with a 408 problem, and the chunk it had stored is dropped.
#[tokio::test]
async fn a_slow_upload_is_ended_at_its_deadline_and_leaves_nothing() {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};

    // The body read timeout stays at its default 60 s.
    let app = spawn_app_with(&[("EAGATE_BUNDLE_UPLOAD_TIMEOUT_SECONDS", "2")]).await;
    let (token, _) = app.user_with_tokens("trickler").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let (text, elapsed) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST /api/v1/bundles?name=Slow&version=1.0.0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n"
        )
        .unwrap();
        // More than a chunk at once (so one is stored), then a byte every
        // 100 ms: never idle, never done.
        stream.write_all(&file(300_000)).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let started = Instant::now();
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(15) {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    text.extend_from_slice(&buf[..n]);
                    if text.ends_with(b"}") {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    // The server may stop reading once it answered.
                    let _ = stream.write_all(b"x");
                }
                Err(_) => break,
            }
        }
        (String::from_utf8_lossy(&text).into_owned(), started.elapsed())
    })
    .await
    .unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("application/problem+json")
            && text.contains("request-timeout")
            && text.contains("within 2 s"),
        "{text}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "ended by the 2 s upload deadline, not the 60 s body read timeout ({elapsed:?})"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM bundles").await,
        0,
        "no bundle row is left"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM bundle_chunks").await,
        0,
        "the stored chunk is dropped"
    );
}
