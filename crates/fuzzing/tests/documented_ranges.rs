//! Validation accepts exactly the documented ranges: for every JSON body
//! field that the OpenAPI document bounds (`minimum`, `maximum`,
//! `exclusiveMinimum`, `minLength`, `maxLength`, `minItems`, `maxItems`),
//! values on both sides of each bound — and random ones — are sent through
//! the server's own body parsing (`eagate_server::fuzzing`) on an otherwise
//! valid body, and accepted exactly when the document says they are valid.
//! Lengths count characters (JSON Schema counts code points), so strings
//! mix scripts. The bounds are read from the document the server serves
//! (the committed docs/openapi.json is checked to match it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use eagate_server::fuzzing::{JsonBody, parse_json_body};
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
    ]
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
                        let ids: Vec<String> = (0..n as u128)
                            .map(|i| {
                                uuid::Uuid::from_u128(0x0192f5e4_7c1a_7b3e_9a51_000000000000 + i).to_string()
                            })
                            .collect();
                        let mut body = valid.clone();
                        body[field] = json!(ids);
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
    ] {
        assert!(
            checked.contains(&field.to_owned()),
            "{field} was checked: {checked:?}"
        );
    }
}
