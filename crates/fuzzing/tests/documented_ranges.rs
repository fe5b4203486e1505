//! Validation accepts exactly the documented ranges: for every JSON body
//! field that the OpenAPI document bounds (`minimum`, `maximum`,
//! `exclusiveMinimum`, `minLength`, `maxLength`, `minItems`, `maxItems`),
//! values on both sides of each bound — and random ones — are sent through
//! the server's own body parsing (`eagate_server::fuzzing`) on an otherwise
//! valid body, and accepted exactly when the document says they are valid.
//! Lengths count characters (JSON Schema counts code points), so strings
//! mix scripts. The bounds are read from the document the server serves
//! (the committed docs/openapi.json is checked to match it). And every
//! operation of that document that takes a JSON body or reads a query
//! string is one the fuzz targets cover (`JsonBody::ALL`,
//! `QueryString::ALL`), so a new route cannot go unfuzzed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use eagate_server::fuzzing::{JsonBody, QueryString, parse_json_body};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// Each body, its schema and a valid example to vary one field of.
fn bodies() -> Vec<(JsonBody, &'static str, Value)> {
    vec![
        (
            JsonBody::Register,
            "RegisterRequest",
            json!({"email": "ann@example.com", "username": "ann_trader", "password": "correct horse battery"}),
        ),
        (
            JsonBody::Login,
            "LoginRequest",
            json!({"login": "ann_trader", "password": "correct horse battery"}),
        ),
        (
            JsonBody::ChangePassword,
            "ChangePasswordRequest",
            json!({"current_password": "correct horse battery", "new_password": "an even better passphrase"}),
        ),
        (
            JsonBody::DeleteAccount,
            "DeleteAccountRequest",
            json!({"password": "correct horse battery"}),
        ),
        (JsonBody::DeviceName, "NameRequest", json!({"name": "London VPS"})),
        (
            JsonBody::RotateSecret,
            "RotateRequest",
            json!({"grace_seconds": 600}),
        ),
        (
            JsonBody::Publish,
            "PublishRequest",
            json!({"instrument": "EURUSD", "side": "buy", "order_type": "market", "volume": 0.25}),
        ),
        (JsonBody::Heartbeat, "HeartbeatRequest", json!({})),
        (
            JsonBody::Ack,
            "AckRequest",
            json!({"signal_id": "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b", "outcome": "executed"}),
        ),
        (
            JsonBody::CreateApiKey,
            "CreateApiKeyRequest",
            json!({"name": "TradingView relay", "scopes": ["signals:publish"]}),
        ),
        (JsonBody::ConfigPut, "ConfigDocument", json!({"max_lot": 2.5})),
        (JsonBody::ConfigPatch, "ConfigDocument", json!({"max_lot": 2.5})),
        (JsonBody::Rollback, "RollbackRequest", json!({"version": 2})),
        (
            JsonBody::CreateDeployment,
            "CreateDeploymentRequest",
            json!({
                "bundle_id": "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b",
                "target": "all",
                "abort_failure_percent": 20,
                "abort_min_finished": 3,
                "timeout_minutes": 60
            }),
        ),
        (
            JsonBody::DeploymentStatus,
            "StatusReport",
            json!({"status": "failed", "reason": "digest mismatch"}),
        ),
        (
            JsonBody::DeviceLabels,
            "DeviceLabels",
            json!({"labels": ["london", "vps"]}),
        ),
    ]
}

/// `n` distinct valid items for the array `field`.
fn items(field: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match field {
            "allowed_cidrs" => format!("203.0.{}.{}/32", i / 256, i % 256),
            "allowed_symbols" => format!("S{i}"),
            // Repeats collapse; every item is a known scope.
            "scopes" => "signals:publish".to_owned(),
            _ => uuid::Uuid::from_u128(0x0192f5e4_7c1a_7b3e_9a51_000000000000 + i as u128).to_string(),
        })
        .collect()
}

/// (METHOD, path) of operations.
type Operations = BTreeSet<(String, String)>;

/// The operations of the document that take a JSON body, and those that
/// read a query string, as (METHOD, path).
fn documented_inputs() -> (Operations, Operations) {
    let document: Value = serde_json::from_str(eagate_server::routes::document()).unwrap();
    let (mut bodies, mut queries) = (BTreeSet::new(), BTreeSet::new());
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let key = (method.to_uppercase(), path.clone());
            if operation["requestBody"]["content"]
                .as_object()
                .is_some_and(|c| c.keys().any(|k| k.contains("json")))
            {
                bodies.insert(key.clone());
            }
            if operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"))
            {
                queries.insert(key);
            }
        }
    }
    (bodies, queries)
}

fn listed(
    operations: impl Iterator<Item = &'static [(&'static str, &'static str)]>,
) -> BTreeSet<(String, String)> {
    operations
        .flatten()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

#[test]
fn every_json_body_and_query_string_of_the_api_is_fuzzed() {
    let (documented_bodies, queries) = documented_inputs();
    assert!(
        documented_bodies.len() >= 20 && queries.len() >= 12,
        "{documented_bodies:?} {queries:?}"
    );
    assert_eq!(
        listed(JsonBody::ALL.iter().map(|b| b.operations())),
        documented_bodies,
        "JsonBody::ALL (apps/server/src/fuzzing.rs) must cover exactly the documented JSON bodies"
    );
    assert_eq!(
        listed(QueryString::ALL.iter().map(|q| q.operations())),
        queries,
        "QueryString::ALL (apps/server/src/fuzzing.rs) must cover exactly the documented query strings"
    );
    // And the documented ranges below check every body schema.
    let checked: Vec<JsonBody> = bodies().into_iter().map(|(b, _, _)| b).collect();
    for body in JsonBody::ALL {
        assert!(
            checked.contains(&body) || body == JsonBody::Refresh,
            "{body:?} has an example in bodies()"
        );
    }
}

fn schema(name: &str) -> Value {
    let document: Value = serde_json::from_str(eagate_server::routes::document()).unwrap();
    document["components"]["schemas"][name].clone()
}

/// The bounds of one property, as documented.
#[derive(Debug, Clone, Copy, Default)]
struct Bounds {
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    min_items: Option<usize>,
    max_items: Option<usize>,
}

impl Bounds {
    fn of(property: &Value) -> Self {
        let number = |k: &str| property[k].as_f64();
        let count = |k: &str| property[k].as_u64().map(|n| n as usize);
        Self {
            minimum: number("minimum"),
            maximum: number("maximum"),
            exclusive_minimum: number("exclusiveMinimum"),
            min_length: count("minLength"),
            max_length: count("maxLength"),
            min_items: count("minItems"),
            max_items: count("maxItems"),
        }
    }

    fn is_numeric(&self) -> bool {
        self.minimum.is_some() || self.maximum.is_some() || self.exclusive_minimum.is_some()
    }

    fn number_ok(&self, x: f64) -> bool {
        self.minimum.is_none_or(|m| x >= m)
            && self.maximum.is_none_or(|m| x <= m)
            && self.exclusive_minimum.is_none_or(|m| x > m)
    }

    fn length_ok(&self, n: usize) -> bool {
        self.min_length.is_none_or(|m| n >= m) && self.max_length.is_none_or(|m| n <= m)
    }

    fn items_ok(&self, n: usize) -> bool {
        self.min_items.is_none_or(|m| n >= m) && self.max_items.is_none_or(|m| n <= m)
    }

    /// Where the documented bounds lie, to test on both sides.
    fn edges(&self) -> Vec<f64> {
        [self.minimum, self.maximum, self.exclusive_minimum]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Text of exactly `n` characters for `field` that breaks none of its
/// other rules (charset, common passwords, the account's own names).
fn text(field: &str, n: usize, salt: &[u32]) -> String {
    // Characters of several scripts: lengths count characters, not bytes.
    const MIXED: [char; 12] = ['a', 'Z', '7', 'é', 'ß', 'ж', 'λ', '中', '語', 'k', 'Q', '4'];
    const ASCII: [char; 12] = ['a', 'Z', '7', 'x', 'b', 'k', 'Q', '4', 'm', 'R', '9', 'w'];
    let pick = |set: &[char; 12], i: usize| set[(salt[i % salt.len()] as usize + i * 5) % 12];
    match field {
        "email" => {
            // local@domain.example, each part within the syntax's own limits
            // (64-character local part, 63-character labels).
            let suffix = "@x.example";
            // (Too short for an address at all: the shortest one here.)
            let local: String = (0..n.saturating_sub(suffix.len()).clamp(1, 64))
                .map(|i| pick(&ASCII, i))
                .collect();
            let mut domain = String::from("x");
            let mut rest = n.saturating_sub(suffix.len() + local.len());
            while rest > 0 {
                let label = rest.min(63);
                if label >= 2 {
                    domain.push_str(&format!(".{}", "d".repeat(label - 1)));
                    rest -= label;
                } else {
                    domain.insert(0, 'x');
                    rest -= 1;
                }
            }
            let email = format!("{local}@{domain}{}", &suffix[2..]);
            assert_eq!(email.chars().count(), n.max(suffix.len() + 1), "{email}");
            email
        }
        "username" | "ea_version" | "broker" => (0..n).map(|i| pick(&ASCII, i)).collect(),
        _ => (0..n).map(|i| pick(&MIXED, i)).collect(),
    }
}

fn accepted(route: JsonBody, body: &Value) -> bool {
    parse_json_body(route, &serde_json::to_vec(body).unwrap(), now()).is_ok()
}

/// Numbers: the edges themselves, their nearest neighbours on either side,
/// small integers around them, and anything else.
fn numbers(bounds: Bounds, integer: bool) -> BoxedStrategy<f64> {
    let mut near = Vec::new();
    for edge in bounds.edges() {
        near.push(edge);
        for step in [1.0, 2.0] {
            near.extend([edge - step, edge + step]);
        }
        if !integer {
            near.extend([edge.next_down(), edge.next_up(), edge - 1e-9, edge + 1e-9]);
        }
    }
    let any: BoxedStrategy<f64> = if integer {
        (-2_000_000_i64..2_000_000).prop_map(|n| n as f64).boxed()
    } else {
        prop_oneof![-2e15..2e15_f64, -2.0..2.0_f64, 0.0..2000.0_f64].boxed()
    };
    prop_oneof![prop::sample::select(near), any].boxed()
}

#[test]
fn every_documented_bound_of_every_body_field_is_the_one_enforced() {
    let mut checked = Vec::new();
    for (route, name, valid) in bodies() {
        assert!(accepted(route, &valid), "{name}: the example is valid");
        let schema = schema(name);
        let properties = schema["properties"].as_object().unwrap();
        for (field, property) in properties {
            let bounds = Bounds::of(property);
            let kinds = property["type"].to_string();
            let mut runner = TestRunner::new(Config {
                cases: 96,
                failure_persistence: None,
                ..Config::default()
            });
            let result = if bounds.is_numeric() {
                let integer = kinds.contains("integer");
                runner
                    .run(&numbers(bounds, integer), |x| {
                        let value = if integer { json!(x as i64) } else { json!(x) };
                        let mut body = valid.clone();
                        body[field] = value.clone();
                        prop_assert_eq!(accepted(route, &body), bounds.number_ok(x), "{} {}", field, value);
                        Ok(())
                    })
                    .map_err(|e| e.to_string())
            } else if bounds.min_length.is_some() || bounds.max_length.is_some() {
                let top = bounds.max_length.unwrap_or(140) + 3;
                let lengths = prop_oneof![
                    prop::sample::select(
                        [bounds.min_length, bounds.max_length]
                            .into_iter()
                            .flatten()
                            .flat_map(|m| [m.saturating_sub(1), m, m + 1])
                            .collect::<Vec<_>>()
                    ),
                    0..=top,
                ];
                runner
                    .run(
                        &(lengths, prop::collection::vec(any::<u32>(), 1..4)),
                        |(n, salt)| {
                            let value = text(field, n, &salt);
                            let n = value.chars().count();
                            let mut body = valid.clone();
                            body[field] = json!(value);
                            prop_assert_eq!(
                                accepted(route, &body),
                                bounds.length_ok(n),
                                "{} of {} characters: {:?}",
                                field,
                                n,
                                value
                            );
                            Ok(())
                        },
                    )
                    .map_err(|e| e.to_string())
            } else if bounds.min_items.is_some() || bounds.max_items.is_some() {
                let top = bounds.max_items.unwrap_or(10) + 2;
                let counts = prop_oneof![
                    prop::sample::select(vec![0, 1, 2, top - 3, top - 2, top - 1]),
                    0..=top
                ];
                runner
                    .run(&counts, |n| {
                        let mut body = valid.clone();
                        body[field] = json!(items(field, n));
                        prop_assert_eq!(
                            accepted(route, &body),
                            bounds.items_ok(n),
                            "{} with {} items",
                            field,
                            n
                        );
                        Ok(())
                    })
                    .map_err(|e| e.to_string())
            } else {
                continue;
            };
            if let Err(e) = result {
                panic!("{name}.{field}: {e}");
            }
            checked.push(format!("{name}.{field}"));
        }
    }
    // Every bounded field of every body was exercised.
    assert!(checked.len() >= 20, "{checked:?}");
    for field in [
        "RegisterRequest.password",
        "RegisterRequest.email",
        "RegisterRequest.username",
        "LoginRequest.login",
        "NameRequest.name",
        "RotateRequest.grace_seconds",
        "PublishRequest.volume",
        "PublishRequest.device_ids",
        "PublishRequest.comment",
        "HeartbeatRequest.balance",
        "HeartbeatRequest.terminal_build",
        "AckRequest.message",
        "AckRequest.ticket",
        "CreateApiKeyRequest.name",
        "CreateApiKeyRequest.scopes",
        "CreateApiKeyRequest.allowed_cidrs",
        "ConfigDocument.max_lot",
        "ConfigDocument.allowed_symbols",
        "ConfigDocument.slippage_points",
        "RollbackRequest.version",
        "CreateDeploymentRequest.timeout_minutes",
        "CreateDeploymentRequest.abort_failure_percent",
        "StatusReport.reason",
    ] {
        assert!(
            checked.contains(&field.to_owned()),
            "{field} was checked: {checked:?}"
        );
    }
}
