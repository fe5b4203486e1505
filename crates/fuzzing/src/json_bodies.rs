//! Every JSON request body, through the server's own extractor rules, DTOs
//! and domain parsers (`eagate_server::fuzzing::parse_json_body`).
//!
//! - No body panics, and every refusal is a 4xx problem (never a 5xx).
//! - A refusal never repeats a password it was sent.
//! - What is accepted, written back as JSON, is accepted again as the same
//!   value (parse → serialise → parse).

use arbitrary::Arbitrary;
use chrono::{DateTime, SecondsFormat, Utc};
use eagate_domain::account::LoginId;
use eagate_server::fuzzing::{JsonBody, ParsedBody, Refused, parse_json_body};
use serde_json::{Map, Value, json};

#[derive(Arbitrary, Debug)]
pub struct Input<'a> {
    pub route: u8,
    pub body: &'a [u8],
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time")
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("passwords are text")
}

/// Members that are `None` are left out, as a client would.
fn object(members: impl IntoIterator<Item = (&'static str, Option<Value>)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect::<Map<_, _>>(),
    )
}

/// `parsed` written back as the body a client would send, or `None` where
/// the parsed value no longer holds what was sent (a login text that names
/// no account).
fn serialise(parsed: &ParsedBody) -> Option<Value> {
    Some(match parsed {
        ParsedBody::Register(r) => json!({
            "email": r.email.as_str(),
            "username": r.username.as_str(),
            "password": text(r.password.expose()),
        }),
        ParsedBody::Login(a) => {
            let login = match a.login.as_ref()? {
                LoginId::Email(e) => e.as_str(),
                LoginId::Username(u) => u.as_str(),
            };
            json!({"login": login, "password": text(a.password.expose())})
        }
        ParsedBody::Refresh(t) => json!({ "refresh_token": t }),
        ParsedBody::ChangePassword { current, new } => json!({
            "current_password": text(current.expose()),
            "new_password": text(new.expose()),
        }),
        ParsedBody::DeleteAccount(p) => json!({ "password": text(p.expose()) }),
        ParsedBody::DeviceName(n) => json!({ "name": n.as_str() }),
        ParsedBody::RotateSecret(g) => json!({ "grace_seconds": g }),
        ParsedBody::Publish(d) => object([
            ("instrument", Some(json!(d.order.instrument.as_str()))),
            ("side", Some(json!(d.order.side.as_str()))),
            ("order_type", Some(json!(d.order.order_type.as_str()))),
            ("volume", Some(json!(d.order.volume))),
            ("entry_price", d.order.entry_price.map(Value::from)),
            ("stop_loss", d.order.stop_loss.map(Value::from)),
            ("take_profit", d.order.take_profit.map(Value::from)),
            ("comment", d.order.comment.clone().map(Value::from)),
            (
                "expires_at",
                d.expires_at
                    .map(|t| Value::from(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))),
            ),
            (
                "device_ids",
                d.device_ids
                    .as_ref()
                    .map(|ids| ids.iter().map(|id| Value::from(id.to_string())).collect()),
            ),
        ]),
        ParsedBody::Heartbeat(h) => object([
            ("ea_version", h.ea_version.clone().map(Value::from)),
            ("terminal_build", h.terminal_build.map(Value::from)),
            ("broker", h.broker.clone().map(Value::from)),
            ("account_login", h.account_login.map(Value::from)),
            ("balance", h.balance.map(Value::from)),
            ("equity", h.equity.map(Value::from)),
        ]),
        ParsedBody::Ack(id, ack) => object([
            ("signal_id", Some(json!(id.to_string()))),
            ("outcome", Some(json!(ack.outcome.as_str()))),
            ("ticket", ack.ticket.map(Value::from)),
            ("fill_price", ack.fill_price.map(Value::from)),
            ("message", ack.message.clone().map(Value::from)),
        ]),
        ParsedBody::Rollback(version) => json!({ "version": version }),
        ParsedBody::DeploymentStatus(status, reason) => object([
            ("status", Some(json!(status.as_str()))),
            ("reason", reason.clone().map(Value::from)),
        ]),
        ParsedBody::DeviceLabels(labels) => {
            json!({ "labels": labels.iter().map(|l| l.as_str()).collect::<Vec<_>>() })
        }
        // Accepted and refused like the others; no round trip checked.
        ParsedBody::CreateApiKey(_) | ParsedBody::Config(_) | ParsedBody::CreateDeployment(..) => {
            return None;
        }
    })
}

/// The same value: domain types compared field by field (passwords have no
/// `PartialEq` on every wrapper, and print redacted).
fn same(a: &ParsedBody, b: &ParsedBody) -> bool {
    match (a, b) {
        (ParsedBody::Register(x), ParsedBody::Register(y)) => {
            x.email == y.email && x.username == y.username && x.password == y.password
        }
        (ParsedBody::Login(x), ParsedBody::Login(y)) => x.login == y.login && x.password == y.password,
        (ParsedBody::Refresh(x), ParsedBody::Refresh(y)) => x == y,
        (
            ParsedBody::ChangePassword { current, new },
            ParsedBody::ChangePassword {
                current: current2,
                new: new2,
            },
        ) => current == current2 && new == new2,
        (ParsedBody::DeleteAccount(x), ParsedBody::DeleteAccount(y)) => x == y,
        (ParsedBody::DeviceName(x), ParsedBody::DeviceName(y)) => x == y,
        (ParsedBody::RotateSecret(x), ParsedBody::RotateSecret(y)) => x == y,
        (ParsedBody::Publish(x), ParsedBody::Publish(y)) => x == y,
        (ParsedBody::Heartbeat(x), ParsedBody::Heartbeat(y)) => x == y,
        (ParsedBody::Ack(i, x), ParsedBody::Ack(j, y)) => i == j && x == y,
        (ParsedBody::Rollback(x), ParsedBody::Rollback(y)) => x == y,
        (ParsedBody::DeploymentStatus(s, r), ParsedBody::DeploymentStatus(t, q)) => s == t && r == q,
        (ParsedBody::DeviceLabels(x), ParsedBody::DeviceLabels(y)) => x == y,
        _ => false,
    }
}

/// Password values in `body` that a refusal must not repeat. Only those
/// that cannot appear in a refusal by chance: 12 or more characters,
/// holding a `^` or a `|` (no message of the server has either), and not
/// part of a member name (serde names unknown and repeated members).
fn passwords(body: &[u8]) -> Vec<String> {
    let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    members
        .iter()
        .filter(|(k, _)| k.contains("password"))
        .filter_map(|(_, v)| v.as_str())
        .filter(|p| p.chars().count() >= 12 && p.contains(['^', '|']))
        .filter(|p| !members.keys().any(|k| k.contains(*p)))
        .map(str::to_owned)
        .collect()
}

fn check_refusal(route: JsonBody, body: &[u8], refused: &Refused) {
    assert!(
        (400..500).contains(&refused.status),
        "{route:?}: a body was answered {} {}",
        refused.status,
        refused.code
    );
    for password in passwords(body) {
        assert!(
            !refused.text.contains(&password),
            "{route:?}: the refusal repeats a password: {}",
            refused.text
        );
    }
}

pub fn check(input: Input<'_>) {
    let route = JsonBody::ALL[usize::from(input.route) % JsonBody::ALL.len()];
    match parse_json_body(route, input.body, now()) {
        Err(refused) => check_refusal(route, input.body, &refused),
        Ok(parsed) => {
            let Some(written) = serialise(&parsed) else {
                return;
            };
            let bytes = serde_json::to_vec(&written).expect("JSON values serialise");
            match parse_json_body(route, &bytes, now()) {
                Ok(again) => assert!(
                    same(&parsed, &again),
                    "{route:?}: {written} parsed as {again:?}, first {parsed:?}"
                ),
                Err(refused) => {
                    panic!("{route:?}: accepted, written back as {written}, refused: {refused:?}")
                }
            }
        }
    }
}
