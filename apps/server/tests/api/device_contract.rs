//! The signed device endpoints against their OpenAPI contract, by property:
//! schemathesis cannot sign, so arbitrary bodies and queries are generated
//! here, signed with the SDK, sent to the real app, and every answer is
//! checked: never a 5xx, a documented status, a problem body on errors, and
//! a success body that matches the documented schema.

use eagate_client::{Signer, new_nonce};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies near the documented shapes (field names right, values anything),
/// and anything at all.
fn heartbeat_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            proptest::option::of("\\PC{0,40}"),
            proptest::option::of(any::<i64>()),
            proptest::option::of("\\PC{0,140}"),
            proptest::option::of(any::<i64>()),
            proptest::option::of(-2e15f64..2e15),
            proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        )
            .prop_map(|(v, b, br, l, bal, eq)| json!({
                "ea_version": v, "terminal_build": b, "broker": br,
                "account_login": l, "balance": bal, "equity": eq,
            })),
        arbitrary_json(),
    ]
}

fn ack_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            prop_oneof![
                Just("0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b".to_owned()),
                "\\PC{0,40}"
            ],
            prop_oneof![
                Just("executed".to_owned()),
                Just("failed".to_owned()),
                "\\PC{0,12}"
            ],
            proptest::option::of(any::<i64>()),
            proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
            proptest::option::of("\\PC{0,600}"),
        )
            .prop_map(|(id, outcome, ticket, price, message)| json!({
                "signal_id": id, "outcome": outcome, "ticket": ticket,
                "fill_price": price, "message": message,
            })),
        arbitrary_json(),
    ]
}

fn poll_query() -> impl Strategy<Value = String> {
    let value = prop_oneof!["[0-9]{1,3}", "-?[0-9]{1,12}", "[a-z%]{0,5}", Just(String::new())];
    (proptest::option::of(value.clone()), proptest::option::of(value)).prop_map(|(limit, wait)| {
        let mut parts = Vec::new();
        if let Some(l) = limit {
            parts.push(format!("limit={l}"));
        }
        // Keep long-polls short so the property runs quickly.
        if let Some(w) = wait {
            let w = if w.parse::<i64>().is_ok_and(|n| (1..=30).contains(&n)) {
                "0".to_owned()
            } else {
                w
            };
            parts.push(format!("wait={w}"));
        }
        parts.join("&")
    })
}

async fn send(
    app: &TestApp,
    signer: &Signer,
    method: &str,
    target: &str,
    body: &[u8],
) -> (StatusCode, String, Value) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig = signer.sign(method, target, body, now, &new_nonce());
    let mut request = app
        .client
        .request(method.parse().unwrap(), format!("{}{target}", app.base));
    for (k, v) in sig.headers() {
        request = request.header(k, v);
    }
    if !body.is_empty() {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// The documented answers of a device operation.
fn check(operation: &str, status: StatusCode, content_type: &str, body: &Value, success: &[&str]) {
    assert!(!status.is_server_error(), "{operation}: {status} {body}");
    if status.is_success() {
        // A heartbeat is accepted for the next activity flush (202).
        let documented = if operation == "heartbeat" {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        assert_eq!(status, documented, "{operation}");
        assert!(
            content_type.starts_with("application/json"),
            "{operation}: {content_type}"
        );
        for field in success {
            assert!(
                body.get(*field).is_some(),
                "{operation}: {field} missing from {body}"
            );
        }
    } else {
        assert!(status.is_client_error(), "{operation}: {status}");
        assert_eq!(
            content_type, "application/problem+json",
            "{operation}: {status} {body}"
        );
        assert_eq!(body["status"], status.as_u16(), "{operation}: {body}");
        assert!(
            body["code"].is_string() && body["detail"].is_string(),
            "{operation}: {body}"
        );
    }
}

#[tokio::test]
async fn signed_device_endpoints_honour_their_contract_for_any_input() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("property").await;
    let (device, secret) = app.create_device(&token, "Property EA").await;
    let signer = Signer::new(device["id"].as_str().unwrap(), &secret);
    let mut runner = TestRunner::deterministic();

    for _ in 0..60 {
        let body = heartbeat_body()
            .new_tree(&mut runner)
            .unwrap()
            .current()
            .to_string();
        let (status, ct, json) =
            send(&app, &signer, "POST", "/api/v1/device/heartbeat", body.as_bytes()).await;
        check("heartbeat", status, &ct, &json, &["server_time"]);
        if status.is_success() {
            assert!(json["server_time"].is_i64());
        }

        let body = ack_body().new_tree(&mut runner).unwrap().current().to_string();
        let (status, ct, json) = send(&app, &signer, "POST", "/api/v1/device/ack", body.as_bytes()).await;
        check(
            "ack",
            status,
            &ct,
            &json,
            &["signal_id", "outcome", "acknowledged_at"],
        );

        let query = poll_query().new_tree(&mut runner).unwrap().current();
        let target = if query.is_empty() {
            "/api/v1/device/poll".to_owned()
        } else {
            format!("/api/v1/device/poll?{query}")
        };
        let (status, ct, json) = send(&app, &signer, "GET", &target, b"").await;
        check("poll", status, &ct, &json, &["signals", "server_time"]);
        if status.is_success() {
            assert!(json["signals"].is_array());
        }
    }
    let (status, ct, json) = send(&app, &signer, "GET", "/api/v1/device/config", b"").await;
    check(
        "config",
        status,
        &ct,
        &json,
        &[
            "poll_interval_seconds",
            "long_poll_max_seconds",
            "server_time",
            "device_id",
            "name",
        ],
    );
}
