//! Signal delivery end to end: owner API, signed device API, long-polls.

use std::time::{Duration, Instant};

use eagate_client::{Ack, DeviceClient, Outcome};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// An owner with `n` devices: (token, [(device id, SDK client)]).
async fn owner_with_devices(app: &TestApp, name: &str, n: usize) -> (String, Vec<(String, DeviceClient)>) {
    let (token, _) = app.user_with_tokens(name).await;
    let mut devices = Vec::new();
    for i in 0..n {
        let (device, secret) = app.create_device(&token, &format!("EA {i}")).await;
        let id = device["id"].as_str().unwrap().to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let client = DeviceClient::with_http_client(http, &app.base, &id, &secret).unwrap();
        devices.push((id, client));
    }
    (token, devices)
}

fn market_buy() -> Value {
    json!({"instrument": "EURUSD", "side": "buy", "order_type": "market", "volume": 0.1})
}

async fn publish(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.post_json_auth("/signals", token, body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "publish");
    response.json().await.unwrap()
}

fn delivery<'a>(signal: &'a Value, device: &str) -> &'a Value {
    signal["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == device)
        .unwrap()
}

#[tokio::test]
async fn publish_poll_ack_and_the_owner_sees_it() {
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "trader", 2).await;
    let (d0, c0) = &devices[0];
    let body = json!({
        "instrument": "EURUSD", "side": "buy", "order_type": "limit", "volume": 0.25,
        "entry_price": 1.085, "stop_loss": 1.08, "take_profit": 1.095, "comment": "breakout"
    });
    let published = publish(&app, &token, &body).await;
    let id = published["id"].as_str().unwrap().to_owned();
    assert_eq!(
        published["deliveries"].as_array().unwrap().len(),
        2,
        "all active devices by default"
    );
    assert_eq!(delivery(&published, d0)["status"], "pending");

    // Every poll returns it until it is acknowledged.
    for _ in 0..2 {
        let polled = c0.poll(None, None).await.unwrap();
        assert_eq!(polled.signals.len(), 1);
        let s = &polled.signals[0];
        assert_eq!(
            (s.id.as_str(), s.instrument.as_str(), s.side.as_str()),
            (id.as_str(), "EURUSD", "buy")
        );
        assert_eq!(
            (s.entry_price, s.stop_loss, s.take_profit),
            (Some(1.085), Some(1.08), Some(1.095))
        );
    }
    // The first delivery is written with the next activity flush.
    let seen = app
        .eventually(&format!("/signals/{id}"), &token, |s| {
            delivery(s, d0)["status"] == "delivered"
        })
        .await;
    assert!(delivery(&seen, d0)["first_polled_at"].is_string());

    let ack = Ack {
        ticket: Some(4812),
        fill_price: Some(1.0851),
        ..Ack::new(&id, Outcome::Executed)
    };
    let receipt = c0.ack(&ack).await.unwrap();
    assert_eq!(receipt.outcome, "executed");
    assert!(
        c0.poll(None, None).await.unwrap().signals.is_empty(),
        "gone after the ack"
    );
    // Idempotent: the same ack again returns the first receipt.
    let again = c0
        .ack(&Ack {
            ticket: Some(9999),
            ..ack.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        (again.ticket, again.acknowledged_at.as_str()),
        (Some(4812), receipt.acknowledged_at.as_str())
    );
    // A different outcome conflicts.
    let conflict = c0.ack(&Ack::new(&id, Outcome::Failed)).await.unwrap_err();
    assert_eq!(conflict.code(), Some("ack-conflict"));

    let seen: Value = app
        .get_auth(&format!("/signals/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let d = delivery(&seen, d0);
    assert_eq!(
        (d["status"].as_str(), d["outcome"].as_str(), d["ticket"].as_i64()),
        (Some("acknowledged"), Some("executed"), Some(4812))
    );
    assert_eq!(delivery(&seen, &devices[1].0)["status"], "pending");
    let device = app
        .eventually(&format!("/devices/{d0}"), &token, |d| {
            d["last_poll_at"].is_string()
        })
        .await;
    assert!(
        device["last_ack_at"].is_string(),
        "written with the ack: {device}"
    );

    let list: Value = app.get_auth("/signals", &token).await.json().await.unwrap();
    assert_eq!(list["items"][0]["id"], id.as_str());
}

#[tokio::test]
async fn a_signal_reaches_only_its_targets() {
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "ann", 2).await;
    let (_, others) = owner_with_devices(&app, "bob", 1).await;
    let (a, b) = (&devices[0], &devices[1]);
    let published = publish(&app, &token, &json!({"instrument": "XAUUSD", "side": "sell", "order_type": "market", "volume": 1, "device_ids": [a.0]})).await;
    assert_eq!(published["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(a.1.poll(None, None).await.unwrap().signals.len(), 1);
    assert!(b.1.poll(None, None).await.unwrap().signals.is_empty());
    assert!(others[0].1.poll(None, None).await.unwrap().signals.is_empty());
    // B cannot acknowledge what it never received.
    let err =
        b.1.ack(&Ack::new(published["id"].as_str().unwrap(), Outcome::Executed))
            .await
            .unwrap_err();
    assert_eq!(err.code(), Some("not-found"));
    // Bob cannot see Ann's signal.
    let response = app
        .get_auth(
            &format!("/signals/{}", published["id"].as_str().unwrap()),
            &app.user_with_tokens("carl").await.0,
        )
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not-found").await;
}

#[tokio::test]
async fn cancelled_and_expired_signals_are_not_delivered() {
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "canceller", 1).await;
    let client = &devices[0].1;
    let cancelled = publish(&app, &token, &market_buy()).await;
    let id = cancelled["id"].as_str().unwrap();
    let response = app.post_auth(&format!("/signals/{id}/cancel"), &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["cancelled_at"].is_string());
    assert_eq!(body["deliveries"][0]["status"], "cancelled");
    // Real time: the server's clock decides expiry. Wait until just past
    // the expiry, however long the requests before took.
    let lifetime = Duration::from_secs(4);
    let expires = Instant::now() + lifetime;
    let expires_at = (chrono::Utc::now() + chrono::Duration::from_std(lifetime).unwrap()).to_rfc3339();
    let expiring = publish(&app, &token, &json!({"instrument": "EURUSD", "side": "buy", "order_type": "market", "volume": 0.1, "expires_at": expires_at})).await;
    assert_eq!(
        client.poll(None, None).await.unwrap().signals.len(),
        1,
        "only the expiring one"
    );
    tokio::time::sleep_until((expires + Duration::from_millis(300)).into()).await;
    assert!(client.poll(None, None).await.unwrap().signals.is_empty());
    let seen: Value = app
        .get_auth(&format!("/signals/{}", expiring["id"].as_str().unwrap()), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["deliveries"][0]["status"], "expired");
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_publish_safe() {
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "retrier", 1).await;
    let send = |body: Value, key: &'static str| {
        app.client
            .post(app.url("/signals"))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send(market_buy(), "order-0001").await.unwrap();
    assert_eq!(first.headers()["idempotent-replayed"], "false");
    let first: Value = first.json().await.unwrap();
    let retry = send(market_buy(), "order-0001").await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], first["id"]);
    let other = send(
        json!({"instrument": "GBPUSD", "side": "buy", "order_type": "market", "volume": 0.1}),
        "order-0001",
    )
    .await
    .unwrap();
    assert_problem(other, StatusCode::CONFLICT, "idempotency-key-reused").await;
    assert_eq!(
        devices[0].1.poll(None, None).await.unwrap().signals.len(),
        1,
        "one signal, not two"
    );
    // Concurrent retries still create one signal.
    let racers = futures_util::future::join_all((0..5).map(|_| send(market_buy(), "order-0002"))).await;
    let ids: std::collections::HashSet<String> =
        futures_util::future::join_all(racers.into_iter().map(|r| async {
            r.unwrap().json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }))
        .await
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 1);
}

/// The long-polls below wait up to this long; a wake-up must end them well
/// before. (How fast a wake-up is belongs in a benchmark; that it is a
/// notification, not the periodic re-check, is proven where it can be
/// without a clock: PgSignalWakeups' contract in crates/postgres/tests.)
const LONG_POLL_SECONDS: u64 = 20;

#[tokio::test]
async fn a_long_poll_returns_when_a_signal_is_published() {
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "waiter", 1).await;
    let (id, client) = &devices[0];
    let started = Instant::now();
    let poll = client.poll(None, Some(LONG_POLL_SECONDS as u32));
    let publish_once_polling = async {
        app.first_device_request_arrived(id).await;
        publish(&app, &token, &market_buy()).await
    };
    let (polled, published) = tokio::join!(poll, publish_once_polling);
    let polled = polled.unwrap();
    assert_eq!(
        polled.signals.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [published["id"].as_str().unwrap()],
        "the long-poll returns the signal published while it waited"
    );
    assert!(
        started.elapsed() < Duration::from_secs(LONG_POLL_SECONDS / 2),
        "woken by the publish, well before the {LONG_POLL_SECONDS} s wait ended ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_long_poll_is_woken_by_a_publish_on_another_instance() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let (token, devices) = owner_with_devices(&app, "roamer", 1).await;
    let (id, client) = &devices[0];
    let started = Instant::now();
    let poll = client.poll(None, Some(LONG_POLL_SECONDS as u32));
    let publish_elsewhere = async {
        app.first_device_request_arrived(id).await;
        let response = app
            .client
            .post(format!("{other}/api/v1/signals"))
            .bearer_auth(&token)
            .json(&market_buy())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()
    };
    let (polled, published) = tokio::join!(poll, publish_elsewhere);
    assert_eq!(
        polled
            .unwrap()
            .signals
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>(),
        [published["id"].as_str().unwrap()],
        "a poll on one instance gets the signal published on the other"
    );
    assert!(
        started.elapsed() < Duration::from_secs(LONG_POLL_SECONDS / 2),
        "woken by the publish, well before the {LONG_POLL_SECONDS} s wait ended ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_long_poll_with_nothing_published_returns_empty_after_the_wait() {
    let app = spawn_app().await;
    let (_, devices) = owner_with_devices(&app, "patient", 1).await;
    let started = Instant::now();
    let polled = devices[0].1.poll(None, Some(2)).await.unwrap();
    let elapsed = started.elapsed();
    assert!(polled.signals.is_empty(), "nothing was published");
    assert!(
        elapsed >= Duration::from_millis(1900),
        "a 2 s wait must not end early when nothing is published ({elapsed:?})"
    );
    assert!(
        elapsed < Duration::from_secs(30),
        "a 2 s wait must end at its deadline, not hang ({elapsed:?})"
    );
}

#[tokio::test]
async fn publishing_validates_every_rule() {
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "validator", 1).await;
    let mine = devices[0].0.clone();
    let (_, theirs) = owner_with_devices(&app, "stranger", 1).await;
    let with = |patch: Value| {
        let mut body = market_buy();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let future = (chrono::Utc::now() + chrono::Duration::days(8)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let many: Vec<String> = (0..1001).map(|_| Uuid::new_v4().to_string()).collect();
    let cases: Vec<(Value, &str)> = vec![
        (with(json!({"instrument": ""})), "instrument"),
        (with(json!({"instrument": "EUR/USD"})), "instrument"),
        (with(json!({"instrument": "X".repeat(33)})), "instrument"),
        (with(json!({"side": "long"})), "side"),
        (with(json!({"order_type": "fill-or-kill"})), "order_type"),
        (with(json!({"volume": 0})), "volume"),
        (with(json!({"volume": -1})), "volume"),
        (with(json!({"volume": 1000.5})), "volume"),
        (with(json!({"volume": 1e300})), "volume"),
        (with(json!({"stop_loss": -1.0})), "stop_loss"),
        (with(json!({"take_profit": 0})), "take_profit"),
        (with(json!({"order_type": "limit"})), "entry_price"),
        (
            with(json!({"order_type": "stop", "entry_price": 1.1, "stop_loss": 1.2})),
            "stop_loss",
        ),
        (
            with(json!({"order_type": "limit", "entry_price": 1.1, "take_profit": 1.0})),
            "take_profit",
        ),
        (
            with(json!({"side": "sell", "order_type": "limit", "entry_price": 1.1, "stop_loss": 1.0})),
            "stop_loss",
        ),
        (
            with(json!({"side": "sell", "stop_loss": 1.0, "take_profit": 1.1})),
            "stop_loss",
        ),
        (with(json!({"expires_at": past})), "expires_at"),
        (with(json!({"expires_at": future})), "expires_at"),
        (with(json!({"device_ids": []})), "device_ids"),
        (with(json!({"device_ids": ["not-a-uuid"]})), "device_ids"),
        (with(json!({"device_ids": [mine, mine]})), "device_ids"),
        (with(json!({"device_ids": many})), "device_ids"),
        (with(json!({"device_ids": [theirs[0].0]})), "device_ids"),
        (
            with(json!({"device_ids": [Uuid::now_v7().to_string()]})),
            "device_ids",
        ),
        (with(json!({"comment": "c".repeat(257)})), "comment"),
    ];
    for (body, field) in cases {
        let response = app.post_json_auth("/signals", &token, &body).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
        assert!(
            error_fields(&problem).iter().all(|f| f == field),
            "{body} -> {problem}"
        );
    }
    // Someone else's device is named in the answer.
    let response = app
        .post_json_auth("/signals", &token, &with(json!({"device_ids": [theirs[0].0]})))
        .await;
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["unknown_device_ids"], json!([theirs[0].0]));
    // Numbers JSON cannot carry, and wrong types, are malformed bodies.
    for raw in [
        r#"{"instrument":"EURUSD","side":"buy","order_type":"market","volume":NaN}"#,
        r#"{"instrument":"EURUSD","side":"buy","order_type":"market","volume":Infinity}"#,
        r#"{"instrument":"EURUSD","side":"buy","order_type":"market","volume":1e400}"#,
        r#"{"instrument":"EURUSD","side":"buy","order_type":"market","volume":"1"}"#,
        r#"{"instrument":"EURUSD","side":"buy","order_type":"market","volume":1,"expires_at":"tomorrow"}"#,
        r#"{"instrument":"EURUSD","side":"buy","order_type":"market"}"#,
    ] {
        let response = app
            .client
            .post(app.url("/signals"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST, "malformed-body").await;
    }
    // Nothing was published by any of that.
    assert!(devices[0].1.poll(None, None).await.unwrap().signals.is_empty());
    let list: Value = app.get_auth("/signals", &token).await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    // An account without devices cannot publish to "all".
    let (lonely, _) = app.user_with_tokens("lonely").await;
    let response = app.post_json_auth("/signals", &lonely, &market_buy()).await;
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    // Malformed ids and queries.
    assert_problem(
        app.get_auth("/signals/nope", &token).await,
        StatusCode::BAD_REQUEST,
        "malformed-id",
    )
    .await;
    assert_problem(
        app.get_auth("/signals?limit=0", &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
}

#[tokio::test]
async fn polls_and_acks_validate_their_input() {
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "device-validator", 1).await;
    let client = &devices[0].1;
    let published = publish(&app, &token, &market_buy()).await;
    let id = published["id"].as_str().unwrap();
    for target in [
        "/api/v1/device/poll?limit=0",
        "/api/v1/device/poll?limit=101",
        "/api/v1/device/poll?wait=31",
        "/api/v1/device/poll?wait=-1",
        "/api/v1/device/poll?wait=soon",
    ] {
        let err = client.send(reqwest::Method::GET, target, None).await.unwrap_err();
        assert_eq!(err.code(), Some("validation-failed"), "{target}");
    }
    let err = client
        .send(reqwest::Method::GET, "/api/v1/device/poll?colour=red", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("malformed-query"));
    for body in [
        json!({"signal_id": "nope", "outcome": "executed"}),
        json!({"signal_id": id, "outcome": "maybe"}),
        json!({"signal_id": id, "outcome": "executed", "ticket": -1}),
        json!({"signal_id": id, "outcome": "executed", "fill_price": 0}),
        json!({"signal_id": id, "outcome": "executed", "message": "m".repeat(513)}),
    ] {
        let err = client
            .send(
                reqwest::Method::POST,
                "/api/v1/device/ack",
                Some(body.to_string().into_bytes()),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("validation-failed"), "{body}");
    }
    for raw in [
        r#"{"signal_id":1,"outcome":"executed"}"#,
        r#"{"outcome":"executed"}"#,
        r#"{"signal_id":"x","outcome":"executed","extra":1}"#,
    ] {
        let err = client
            .send(
                reqwest::Method::POST,
                "/api/v1/device/ack",
                Some(raw.as_bytes().to_vec()),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("malformed-body"), "{raw}");
    }
    // After all that the signal is still pending for the device.
    assert_eq!(client.poll(None, None).await.unwrap().signals.len(), 1);
}

#[tokio::test]
async fn the_sdk_reference_loop_executes_and_acknowledges() {
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "looper", 1).await;
    let (device_id, client) = &devices[0];
    let first = publish(&app, &token, &market_buy()).await;
    let second = publish(
        &app,
        &token,
        &json!({"instrument": "GBPUSD", "side": "sell", "order_type": "market", "volume": 0.2}),
    )
    .await;
    // A third signal tells the handler to stop.
    publish(
        &app,
        &token,
        &json!({"instrument": "STOP", "side": "buy", "order_type": "market", "volume": 0.01}),
    )
    .await;
    let mut handled = Vec::new();
    client
        .run(5, |signal| {
            handled.push(signal.instrument.clone());
            let done = handled.len() > 2;
            async move {
                if done {
                    None
                } else {
                    Some(Ack {
                        ticket: Some(1),
                        ..Ack::new(&signal.id, Outcome::Executed)
                    })
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("loop failed: {e}"));
    assert_eq!(handled[..2], ["EURUSD".to_owned(), "GBPUSD".to_owned()]);
    for published in [first, second] {
        let seen: Value = app
            .get_auth(&format!("/signals/{}", published["id"].as_str().unwrap()), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(delivery(&seen, device_id)["status"], "acknowledged");
    }
}

#[tokio::test]
async fn malformed_idempotency_keys_are_refused() {
    let app = spawn_app().await;
    let (token, _) = owner_with_devices(&app, "keys", 1).await;
    for key in ["k".repeat(129), "with space".to_owned()] {
        let response = app
            .client
            .post(app.url("/signals"))
            .bearer_auth(&token)
            .header("idempotency-key", key.as_str())
            .json(&market_buy())
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
        assert_eq!(error_fields(&problem), ["Idempotency-Key"], "{key}");
    }
    let response = app
        .client
        .post(app.url("/signals"))
        .bearer_auth(&token)
        .header("idempotency-key", "one")
        .header("idempotency-key", "two")
        .json(&market_buy())
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "malformed-header").await;
    let list: Value = app.get_auth("/signals", &token).await.json().await.unwrap();
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "nothing was published"
    );
}

/// The value of one series (`name{labels}`) in /metrics, 0 when absent.
async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.metrics_text().await;
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The value of `signals_acknowledged_total{outcome="…"}` in /metrics.
async fn acknowledged_metric(app: &TestApp, outcome: &str) -> f64 {
    metric(
        app,
        &format!("signals_acknowledged_total{{outcome=\"{outcome}\"}}"),
    )
    .await
}

#[tokio::test]
async fn a_publish_is_counted_with_its_deliveries() {
    // The recorder is process-wide and other tests publish at the same time:
    // the counters can only be checked for growing by at least this test's share.
    let app = spawn_app().await;
    let (token, _devices) = owner_with_devices(&app, "counter", 3).await;
    let published = metric(&app, "signals_published_total").await;
    let deliveries = metric(&app, "signal_deliveries_created_total").await;
    publish(&app, &token, &market_buy()).await;
    assert!(metric(&app, "signals_published_total").await >= published + 1.0);
    assert!(
        metric(&app, "signal_deliveries_created_total").await >= deliveries + 3.0,
        "one delivery per device"
    );
}

#[tokio::test]
async fn an_acknowledgement_is_counted_once_however_often_it_is_repeated() {
    // The recorder is process-wide: this is the only test that acknowledges
    // with `rejected` successfully, so the delta is this test's alone.
    let app = spawn_app().await;
    let (token, devices) = owner_with_devices(&app, "counted", 1).await;
    let (_, client) = &devices[0];
    let id = publish(&app, &token, &market_buy()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = acknowledged_metric(&app, "rejected").await;
    let ack = Ack {
        message: Some("market closed".into()),
        ..Ack::new(&id, Outcome::Rejected)
    };
    for _ in 0..3 {
        client.ack(&ack).await.unwrap();
    }
    assert_eq!(
        acknowledged_metric(&app, "rejected").await - before,
        1.0,
        "three identical acks are one acknowledgement"
    );
}
