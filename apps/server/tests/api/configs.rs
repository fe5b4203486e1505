//! Trading configuration: the owner API (read with sources, PUT/PATCH under
//! If-Match, history, rollback, audit), the signed device fetch with
//! ETag/If-None-Match, polls carrying the revision (across instances), and
//! delivery adapting each signal to the device's configuration.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eagate_client::{Signer, new_nonce};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A signed `GET target` on `base`, with extra headers.
async fn signed_get(
    app: &TestApp,
    base: &str,
    target: &str,
    id: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> Response {
    let signer = Signer::new(id, secret);
    let sig = signer.sign("GET", target, b"", now(), &new_nonce());
    let mut request = app.client.get(format!("{base}{target}"));
    for (k, v) in sig.headers() {
        request = request.header(k, v);
    }
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

async fn write(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: &Value,
) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(body);
    if let Some(tag) = if_match {
        request = request.header("If-Match", tag);
    }
    request.send().await.unwrap()
}

async fn put(app: &TestApp, path: &str, token: &str, if_match: Option<&str>, body: &Value) -> Response {
    write(app, reqwest::Method::PUT, path, token, if_match, body).await
}

async fn ok_json(response: Response) -> (String, Value) {
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    (etag, body)
}

#[tokio::test]
async fn the_account_default_is_versioned_under_if_match_listed_rolled_back_and_audited() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("configurer").await;
    let (etag, body) = ok_json(app.get_auth("/config", &token).await).await;
    assert_eq!(etag, "\"0\"");
    assert_eq!(body["version"], 0);
    assert_eq!(body["document"], json!({}));
    assert_eq!(
        body["effective"]["mode"], "active",
        "built-in values apply: {body}"
    );
    assert_eq!(body["effective"]["max_lot"], Value::Null);
    assert_eq!(body["sources"]["mode"], "default");

    let doc = json!({"mode": "close_only", "max_lot": 2.0});
    let missing = put(&app, "/config", &token, None, &doc).await;
    assert_problem(
        missing,
        StatusCode::PRECONDITION_REQUIRED,
        "precondition-required",
    )
    .await;
    let (etag, body) = ok_json(put(&app, "/config", &token, Some("\"0\""), &doc).await).await;
    assert_eq!(etag, "\"1\"");
    assert_eq!(body["document"], doc);
    assert_eq!(body["sources"]["mode"], "account");
    let stale = put(&app, "/config", &token, Some("\"0\""), &json!({"mode": "paused"})).await;
    let problem = assert_problem(stale, StatusCode::PRECONDITION_FAILED, "precondition-failed").await;
    assert_eq!(problem["current_version"], 1, "{problem}");

    // A merge patch: null removes a field, the rest is kept.
    let patched = app
        .client
        .patch(app.url("/config"))
        .bearer_auth(&token)
        .header("If-Match", "\"1\"")
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"max_lot": null, "symbol_map": {"XAUUSD": "GOLD.m"}}"#)
        .send()
        .await
        .unwrap();
    let (etag, body) = ok_json(patched).await;
    assert_eq!(etag, "\"2\"");
    assert_eq!(
        body["document"],
        json!({"mode": "close_only", "symbol_map": {"XAUUSD": "GOLD.m"}})
    );

    let (_, page) = ok_json(app.get_auth("/config/history?limit=1", &token).await).await;
    assert_eq!(page["items"][0]["version"], 2);
    assert_eq!(page["items"][0]["change"], "patched");
    let cursor = page["next_cursor"].as_str().expect("a second page").to_owned();
    let (_, rest) = ok_json(
        app.get_auth(&format!("/config/history?limit=1&cursor={cursor}"), &token)
            .await,
    )
    .await;
    assert_eq!(rest["items"][0]["version"], 1);
    assert_eq!(rest["items"][0]["document"], doc);

    let rolled = app
        .client
        .post(app.url("/config/rollback"))
        .bearer_auth(&token)
        .header("If-Match", "*")
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    let (etag, body) = ok_json(rolled).await;
    assert_eq!(etag, "\"3\"");
    assert_eq!(
        body["document"], doc,
        "the rollback restored version 1's document"
    );
    let events: Vec<Value> = app
        .audit(&token)
        .await
        .into_iter()
        .filter(|e| e["action"] == "config.changed")
        .collect();
    assert_eq!(events.len(), 3, "one audit event per change: {events:?}");
    assert_eq!(events[2]["details"]["change"], "rolled_back");
    assert_eq!(events[2]["details"]["rolled_back_to"], "1");
}

#[tokio::test]
async fn a_device_inherits_field_by_field_and_says_where_each_value_comes_from() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("inheritor").await;
    let (device, _) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap();
    put(
        &app,
        "/config",
        &token,
        Some("*"),
        &json!({"mode": "close_only", "max_lot": 2.0}),
    )
    .await
    .error_for_status()
    .unwrap();
    let path = format!("/devices/{id}/config");
    let (etag, body) = ok_json(put(&app, &path, &token, Some("\"0\""), &json!({"max_lot": 0.5})).await).await;
    assert_eq!(etag, "\"1\"", "a device's document has its own versions");
    assert_eq!(body["scope"], "device");
    assert_eq!(body["effective"]["max_lot"], 0.5);
    assert_eq!(body["sources"]["max_lot"], "device");
    assert_eq!(body["effective"]["mode"], "close_only");
    assert_eq!(body["sources"]["mode"], "account");
    assert_eq!(body["sources"]["sizing"], "default");
    assert_eq!(body["account_version"], 1);
    let (_, read) = ok_json(app.get_auth(&path, &token).await).await;
    assert_eq!(read, body, "GET returns what the write returned");
    // Rolled back to the empty document, the device inherits max_lot again.
    let rolled = write(
        &app,
        reqwest::Method::POST,
        &format!("{path}/rollback"),
        &token,
        Some("\"1\""),
        &json!({"version": 0}),
    )
    .await;
    let (etag, rolled) = ok_json(rolled).await;
    assert_eq!(etag, "\"2\"");
    assert_eq!(rolled["document"], json!({}));
    assert_eq!(rolled["effective"]["max_lot"], 2.0);
    assert_eq!(rolled["sources"]["max_lot"], "account");
    let (_, history) = ok_json(app.get_auth(&format!("{path}/history"), &token).await).await;
    let changes: Vec<(&Value, &Value)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (&v["version"], &v["change"]))
        .collect();
    assert_eq!(
        changes,
        [
            (&json!(2), &json!("rolled_back")),
            (&json!(1), &json!("replaced"))
        ]
    );

    // Another owner's device is not found, whatever the method.
    let (stranger, _) = app.user_with_tokens("stranger").await;
    assert_problem(
        app.get_auth(&path, &stranger).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        put(&app, &path, &stranger, Some("*"), &json!({})).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_auth(&format!("{path}/history"), &stranger).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        app.get_auth("/devices/not-a-uuid/config", &token).await,
        StatusCode::BAD_REQUEST,
        "malformed-id",
    )
    .await;
    assert_problem(
        app.client.get(app.url(&path)).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )
    .await;
}

#[tokio::test]
async fn every_bad_field_and_header_is_refused_naming_it() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("badinput").await;
    let (device, _) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap();
    let cases = [
        (json!({"mode": "yolo"}), "mode"),
        (json!({"sizing": {"type": "martingale"}}), "sizing.type"),
        (json!({"sizing": {"type": "fixed", "lots": 0}}), "sizing.lots"),
        (
            json!({"sizing": {"type": "multiplier", "factor": 101}}),
            "sizing.factor",
        ),
        (
            json!({"sizing": {"type": "risk_percent", "percent": -1}}),
            "sizing.percent",
        ),
        (
            json!({"sizing": {"type": "fixed", "lots": 1, "factor": 2}}),
            "sizing",
        ),
        (json!({"max_lot": 0}), "max_lot"),
        (json!({"allowed_symbols": []}), "allowed_symbols"),
        (json!({"allowed_symbols": ["EUR USD"]}), "allowed_symbols"),
        (json!({"symbol_map": {"XAUUSD": ""}}), "symbol_map"),
        (json!({"max_open_trades": 0}), "max_open_trades"),
        (json!({"max_daily_loss": "lots"}), "max_daily_loss"),
        (json!({"slippage_points": -5}), "slippage_points"),
        (json!({"magic_number": 1.5}), "magic_number"),
        (json!({"leverage": 500}), "document"),
    ];
    for path in ["/config".to_owned(), format!("/devices/{id}/config")] {
        for (doc, field) in &cases {
            let response = put(&app, &path, &token, Some("*"), doc).await;
            let problem =
                assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
            assert_eq!(error_fields(&problem), [*field], "PUT {path} {doc}: {problem}");
            let patch = write(&app, reqwest::Method::PATCH, &path, &token, Some("*"), doc).await;
            let problem = assert_problem(patch, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
            assert_eq!(error_fields(&problem), [*field], "PATCH {path} {doc}: {problem}");
        }
        for tag in ["3", "W/\"0\"", "\"abc\"", "\"-1\"", ""] {
            let response = put(&app, &path, &token, Some(tag), &json!({})).await;
            let problem = assert_problem(response, StatusCode::BAD_REQUEST, "malformed-header").await;
            assert_eq!(
                error_fields(&problem),
                ["If-Match"],
                "If-Match {tag:?}: {problem}"
            );
        }
        let twice = app
            .client
            .put(app.url(&path))
            .bearer_auth(&token)
            .header("If-Match", "\"0\"")
            .header("If-Match", "\"0\"")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_problem(twice, StatusCode::BAD_REQUEST, "malformed-header").await;
        let text = app
            .client
            .put(app.url(&path))
            .bearer_auth(&token)
            .header("If-Match", "*")
            .header("Content-Type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_problem(text, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type").await;
        let broken = app
            .client
            .put(app.url(&path))
            .bearer_auth(&token)
            .header("If-Match", "*")
            .header("Content-Type", "application/json")
            .body("{\"mode\":")
            .send()
            .await
            .unwrap();
        assert_problem(broken, StatusCode::BAD_REQUEST, "malformed-body").await;
        let array = put(&app, &path, &token, Some("*"), &json!(["mode"])).await;
        assert_problem(array, StatusCode::BAD_REQUEST, "malformed-body").await;
        let rollback = format!("{path}/rollback");
        let missing = write(
            &app,
            reqwest::Method::POST,
            &rollback,
            &token,
            Some("*"),
            &json!({"version": 42}),
        )
        .await;
        assert_problem(missing, StatusCode::NOT_FOUND, "not-found").await;
        for body in [
            json!({"version": -1}),
            json!({}),
            json!({"version": 1, "extra": true}),
        ] {
            let response = write(&app, reqwest::Method::POST, &rollback, &token, Some("*"), &body).await;
            assert!(
                response.status() == StatusCode::BAD_REQUEST
                    || response.status() == StatusCode::UNPROCESSABLE_ENTITY,
                "rollback {body}: {}",
                response.status()
            );
        }
        let no_precondition = write(
            &app,
            reqwest::Method::POST,
            &rollback,
            &token,
            None,
            &json!({"version": 0}),
        )
        .await;
        assert_problem(
            no_precondition,
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
        )
        .await;
        // Nothing was written by any of these.
        let (etag, _) = ok_json(app.get_auth(&path, &token).await).await;
        assert_eq!(etag, "\"0\"", "{path}");
    }
}

#[tokio::test]
async fn a_device_fetches_its_config_with_an_etag_and_polls_say_when_it_changed() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("fetcher").await;
    let (device, secret) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap().to_owned();
    let config = "/api/v1/device/config";
    let first = signed_get(&app, &app.base, config, &id, &secret, &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = first.json().await.unwrap();
    assert_eq!(format!("\"r{}\"", body["config_revision"]), etag);
    assert_eq!(body["trading"]["mode"], "active");
    assert!(
        body["poll_interval_seconds"].as_u64().is_some(),
        "poll settings are kept: {body}"
    );
    assert_eq!(body["device_id"], id.as_str());
    let unchanged = signed_get(&app, &app.base, config, &id, &secret, &[("If-None-Match", &etag)]).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.headers()["etag"].to_str().unwrap(), etag);
    assert!(unchanged.bytes().await.unwrap().is_empty(), "a 304 has no body");

    let poll = "/api/v1/device/poll";
    let before: Value = signed_get(&app, &app.base, poll, &id, &secret, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["config_revision"], body["config_revision"]);
    put(
        &app,
        &format!("/devices/{id}/config"),
        &token,
        Some("*"),
        &json!({"mode": "paused", "magic_number": 77}),
    )
    .await
    .error_for_status()
    .unwrap();
    let after: Value = signed_get(&app, &app.base, poll, &id, &secret, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        after["config_revision"], before["config_revision"],
        "the poll says the config changed"
    );
    let changed = signed_get(&app, &app.base, config, &id, &secret, &[("If-None-Match", &etag)]).await;
    assert_eq!(changed.status(), StatusCode::OK, "the old ETag no longer matches");
    let new_etag = changed.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = changed.json().await.unwrap();
    assert_eq!(body["trading"]["mode"], "paused");
    assert_eq!(body["trading"]["magic_number"], 77);
    assert_eq!(body["config_revision"], after["config_revision"]);
    // An account default change reaches the device's revision too.
    put(&app, "/config", &token, Some("*"), &json!({"slippage_points": 5}))
        .await
        .error_for_status()
        .unwrap();
    let refreshed = signed_get(
        &app,
        &app.base,
        config,
        &id,
        &secret,
        &[("If-None-Match", &new_etag)],
    )
    .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["trading"]["slippage_points"], 5);
    // Weak and listed tags match too (If-None-Match compares weakly).
    let tag = refreshed_etag(&body);
    let weak = format!("\"x\", W/{tag}");
    let listed = signed_get(&app, &app.base, config, &id, &secret, &[("If-None-Match", &weak)]).await;
    assert_eq!(listed.status(), StatusCode::NOT_MODIFIED);
    // Anything else in If-None-Match is simply not a match.
    for garbage in ["r1", "\"\"", "W/", ",,,", "\"r99999999999999999999\""] {
        let response = signed_get(
            &app,
            &app.base,
            config,
            &id,
            &secret,
            &[("If-None-Match", garbage)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "If-None-Match {garbage:?}");
    }
}

fn refreshed_etag(body: &Value) -> String {
    format!("\"r{}\"", body["config_revision"])
}

#[tokio::test]
async fn a_config_change_through_one_instance_reaches_the_other_instances_polls() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let (token, _) = app.user_with_tokens("twoinstances").await;
    let (device, secret) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap().to_owned();
    let poll = "/api/v1/device/poll";
    let revision = |base: String| {
        let (app, id, secret) = (&app, id.clone(), secret.clone());
        async move {
            let body: Value = signed_get(app, &base, poll, &id, &secret, &[])
                .await
                .json()
                .await
                .unwrap();
            body["config_revision"].clone()
        }
    };
    // The other instance has the device (and its revision) cached.
    let start = revision(other.clone()).await;
    assert_eq!(revision(other.clone()).await, start);
    put(
        &app,
        &format!("/devices/{id}/config"),
        &token,
        Some("*"),
        &json!({"mode": "close_only"}),
    )
    .await
    .error_for_status()
    .unwrap();
    let changed = revision(app.base.clone()).await;
    assert_ne!(
        changed, start,
        "the writing instance reports the new revision at once"
    );
    let started = Instant::now();
    loop {
        let seen = revision(other.clone()).await;
        if seen == changed {
            eprintln!(
                "config change seen by the other instance: {} ms",
                started.elapsed().as_millis()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the other instance still reports {seen} after 5 s"
        );
    }
    let body: Value = signed_get(&app, &other, "/api/v1/device/config", &id, &secret, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["trading"]["mode"], "close_only");
}

#[tokio::test]
async fn delivery_adapts_each_signal_and_records_why() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("adapter").await;
    let mut devices = Vec::new();
    for name in ["Mapped", "Paused", "Closer"] {
        let (device, secret) = app.create_device(&token, name).await;
        devices.push((device["id"].as_str().unwrap().to_owned(), secret));
    }
    put(
        &app,
        "/config",
        &token,
        Some("*"),
        &json!({"symbol_map": {"XAUUSD": "GOLD.m"}, "sizing": {"type": "multiplier", "factor": 0.3}, "max_lot": 0.5}),
    )
    .await
    .error_for_status()
    .unwrap();
    for (i, mode) in [(1, "paused"), (2, "close_only")] {
        put(
            &app,
            &format!("/devices/{}/config", devices[i].0),
            &token,
            Some("*"),
            &json!({"mode": mode}),
        )
        .await
        .error_for_status()
        .unwrap();
    }
    let published = app
        .post_json_auth(
            "/signals",
            &token,
            &json!({"instrument": "XAUUSD", "side": "buy", "order_type": "market", "volume": 1.0}),
        )
        .await;
    assert_eq!(published.status(), StatusCode::CREATED);
    let signal: Value = published.json().await.unwrap();
    assert_eq!(signal["action"], "open");
    let delivery = |d: usize| {
        signal["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["device_id"] == devices[d].0.as_str())
            .unwrap()
            .clone()
    };
    let mapped = delivery(0);
    assert_eq!(mapped["status"], "pending");
    assert_eq!(mapped["skip_reason"], Value::Null);
    assert_eq!(mapped["adaptation"]["symbol"], "GOLD.m");
    assert_eq!(
        mapped["adaptation"]["volume"], 0.3,
        "why the device traded 0.3 lots: {mapped}"
    );
    assert_eq!(mapped["adaptation"]["signal_volume"], 1.0);
    assert_eq!(
        mapped["adaptation"]["sizing"],
        json!({"type": "multiplier", "factor": 0.3})
    );
    assert_eq!(mapped["adaptation"]["capped"], false);
    assert_eq!(delivery(1)["status"], "skipped");
    assert_eq!(delivery(1)["skip_reason"], "paused");
    assert_eq!(delivery(2)["skip_reason"], "close_only");

    let poll = "/api/v1/device/poll";
    let got: Value = signed_get(&app, &app.base, poll, &devices[0].0, &devices[0].1, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["signals"][0]["instrument"], "GOLD.m");
    assert_eq!(got["signals"][0]["volume"], 0.3);
    for (id, secret) in &devices[1..] {
        let got: Value = signed_get(&app, &app.base, poll, id, secret, &[])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(got["signals"], json!([]), "a refused signal is never delivered");
    }
    // A closing signal reaches the close_only device; a big one is capped.
    let close = app
        .post_json_auth(
            "/signals",
            &token,
            &json!({"instrument": "XAUUSD", "side": "sell", "order_type": "market", "volume": 5.0, "action": "close"}),
        )
        .await;
    assert_eq!(close.status(), StatusCode::CREATED);
    let got: Value = signed_get(&app, &app.base, poll, &devices[2].0, &devices[2].1, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["signals"][0]["action"], "close");
    assert_eq!(
        got["signals"][0]["volume"], 0.5,
        "scaled to 1.5 then capped at max_lot"
    );
    // The paused device, resumed, does not get what was published while it
    // was paused.
    put(
        &app,
        &format!("/devices/{}/config", devices[1].0),
        &token,
        Some("*"),
        &json!({}),
    )
    .await
    .error_for_status()
    .unwrap();
    let got: Value = signed_get(&app, &app.base, poll, &devices[1].0, &devices[1].1, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["signals"],
        json!([]),
        "signals published while paused stay skipped"
    );
    let after = app
        .post_json_auth(
            "/signals",
            &token,
            &json!({"instrument": "EURUSD", "side": "buy", "order_type": "market", "volume": 1.0}),
        )
        .await;
    assert_eq!(after.status(), StatusCode::CREATED);
    let got: Value = signed_get(&app, &app.base, poll, &devices[1].0, &devices[1].1, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["signals"].as_array().unwrap().len(),
        1,
        "what is published after resuming arrives"
    );
    let bad_action = app
        .post_json_auth(
            "/signals",
            &token,
            &json!({"instrument": "XAUUSD", "side": "sell", "order_type": "market", "volume": 1.0, "action": "flip"}),
        )
        .await;
    let problem = assert_problem(bad_action, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["action"]);
}

#[tokio::test]
async fn the_rust_client_caches_the_config_by_etag_and_refetches_when_a_poll_says_so() {
    use eagate_client::{ConfigFetch, DeviceClient};
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("rustclient").await;
    let (device, secret) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap().to_owned();
    let client = DeviceClient::new(&app.base, &id, &secret).unwrap();
    let mut cache = None;
    assert!(
        client.refresh_config(&mut cache, None).await.unwrap(),
        "the first fetch fills the cache"
    );
    let cached = cache.clone().unwrap();
    assert_eq!(cached.etag, format!("\"r{}\"", cached.config.config_revision));
    assert_eq!(cached.config.trading.mode.as_deref(), Some("active"));
    assert_eq!(
        client.config_if_changed(Some(&cached)).await.unwrap(),
        ConfigFetch::NotModified
    );
    let polled = client.poll(None, None).await.unwrap();
    assert!(
        !client
            .refresh_config(&mut cache, Some(polled.config_revision))
            .await
            .unwrap(),
        "an unchanged revision fetches nothing"
    );
    put(
        &app,
        &format!("/devices/{id}/config"),
        &token,
        Some("*"),
        &json!({"sizing": {"type": "risk_percent", "percent": 1.5}, "symbol_map": {"XAUUSD": "GOLD.m"}}),
    )
    .await
    .error_for_status()
    .unwrap();
    let polled = client.poll(None, None).await.unwrap();
    assert_ne!(polled.config_revision, cached.config.config_revision);
    assert!(
        client
            .refresh_config(&mut cache, Some(polled.config_revision))
            .await
            .unwrap()
    );
    let trading = &cache.as_ref().unwrap().config.trading;
    assert_eq!(
        trading.sizing,
        Some(json!({"type": "risk_percent", "percent": 1.5}))
    );
    assert_eq!(trading.symbol_map.as_ref().unwrap()["XAUUSD"], "GOLD.m");
}

#[tokio::test]
async fn of_concurrent_writes_expecting_one_version_exactly_one_wins() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("racer").await;
    let (device, _) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap().to_owned();
    for path in ["/config".to_owned(), format!("/devices/{id}/config")] {
        let writes = (0..8).map(|n| {
            let (app, path, token) = (&app, path.clone(), token.clone());
            async move {
                put(
                    app,
                    &path,
                    &token,
                    Some("\"0\""),
                    &json!({"max_open_trades": n + 1}),
                )
                .await
                .status()
            }
        });
        let statuses = futures_util::future::join_all(writes).await;
        let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let lost = statuses
            .iter()
            .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
            .count();
        assert_eq!((won, lost), (1, 7), "{path}: {statuses:?}");
        let (etag, _) = ok_json(app.get_auth(&path, &token).await).await;
        assert_eq!(etag, "\"1\"", "{path}: one version was stored");
    }
}
