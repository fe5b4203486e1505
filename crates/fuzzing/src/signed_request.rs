//! Protocol v1: the four signing headers, the request target, the string
//! to sign, and HMAC verification of a mutated request.
//!
//! - Header parsing never panics and agrees with a model of the documented
//!   syntax, reporting the first bad header in protocol order.
//! - What parses re-serialises to what was sent (device id and timestamp
//!   exactly, the signature up to the case of its hex digits) and parses
//!   again to the same value.
//! - The string to sign is injective: its eight LF-separated lines give
//!   back the fields (none of which can hold an LF on the wire).
//! - A request signed with a secret verifies; any change to its method,
//!   path, query, body, timestamp, nonce, device id or signature that
//!   changes what was signed never verifies.

use arbitrary::Arbitrary;
use eagate_protocol::{
    HeaderProblem, HeaderSlot, SignedHeaders, SigningKey, body_sha256_hex, hex, is_valid_nonce,
    parse_signature, sign_request, signature_header, split_target, string_to_sign,
};

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Slot<'a> {
    Missing,
    Repeated,
    Unreadable,
    Present(&'a str),
}

impl<'a> Slot<'a> {
    fn header(self) -> HeaderSlot<'a> {
        match self {
            Self::Missing => HeaderSlot::Missing,
            Self::Repeated => HeaderSlot::Repeated,
            Self::Unreadable => HeaderSlot::Unreadable,
            Self::Present(v) => HeaderSlot::Present(v),
        }
    }
}

/// What to change in a signed request.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Mutation<'a> {
    Method(&'a str),
    Target(&'a str),
    DeviceId(&'a str),
    Timestamp(i64),
    Nonce(&'a str),
    Body(&'a [u8]),
    /// Flip bits of one signature byte.
    Signature(u8, u8),
}

#[derive(Arbitrary, Debug)]
pub struct Input<'a> {
    pub device_id: Slot<'a>,
    pub timestamp: Slot<'a>,
    pub nonce: Slot<'a>,
    pub signature: Slot<'a>,
    pub method: &'a str,
    pub target: &'a str,
    pub body: &'a [u8],
    pub secret: &'a str,
    pub unix_seconds: i64,
    pub mutation: Mutation<'a>,
}

/// The documented device id syntax: a lowercase hyphenated UUID.
fn model_device_id(raw: &str) -> bool {
    uuid::Uuid::try_parse(raw).is_ok_and(|u| u.hyphenated().to_string() == raw)
}

/// Unix seconds as 1–12 ASCII digits.
fn model_timestamp(raw: &str) -> bool {
    (1..=12).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit())
}

/// `v1=` and 64 hex digits of either case.
fn model_signature(raw: &str) -> bool {
    raw.strip_prefix("v1=")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// 16–64 characters of `A-Z a-z 0-9 . _ ~ -`.
fn model_nonce(raw: &str) -> bool {
    (16..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
}

/// A header's name, what was sent, and the model of its syntax.
type Rule<'a> = (&'static str, Slot<'a>, fn(&str) -> bool);

fn check_headers(input: &Input<'_>) {
    let parsed = SignedHeaders::parse(
        input.device_id.header(),
        input.timestamp.header(),
        input.nonce.header(),
        input.signature.header(),
    );
    let slots: [Rule<'_>; 4] = [
        ("X-Device-Id", input.device_id, model_device_id),
        ("X-Timestamp", input.timestamp, model_timestamp),
        ("X-Nonce", input.nonce, model_nonce),
        ("X-Signature", input.signature, model_signature),
    ];
    // The model: the first header (in protocol order) that is not present
    // once with a valid value.
    let first_bad = slots.iter().find_map(|(name, slot, valid)| {
        let problem = match slot {
            Slot::Missing => HeaderProblem::Missing,
            Slot::Repeated => HeaderProblem::Repeated,
            Slot::Unreadable => HeaderProblem::Malformed(""),
            Slot::Present(v) if valid(v) => return None,
            Slot::Present(_) => HeaderProblem::Malformed(""),
        };
        Some((*name, problem))
    });
    match (&parsed, first_bad) {
        (Ok(h), None) => {
            let (Slot::Present(id), Slot::Present(timestamp), Slot::Present(nonce), Slot::Present(signature)) =
                (input.device_id, input.timestamp, input.nonce, input.signature)
            else {
                unreachable!("the model accepted only present headers")
            };
            // Re-serialised, each value is what was sent.
            assert_eq!(h.device_id(), id);
            assert_eq!(
                uuid::Uuid::from_bytes(h.device_uuid_bytes())
                    .hyphenated()
                    .to_string(),
                id
            );
            assert_eq!(h.timestamp(), timestamp);
            assert_eq!(h.unix_seconds(), timestamp.parse::<i64>().unwrap_or(-1));
            assert!(h.unix_seconds() >= 0);
            assert_eq!(h.nonce(), nonce);
            assert!(is_valid_nonce(h.nonce()));
            let written = signature_header(h.signature());
            assert_eq!(written, signature.to_ascii_lowercase());
            assert_eq!(parse_signature(&written).as_ref(), Some(h.signature()));
            // And they parse again to the same value.
            let again = SignedHeaders::parse(
                HeaderSlot::Present(h.device_id()),
                HeaderSlot::Present(h.timestamp()),
                HeaderSlot::Present(h.nonce()),
                HeaderSlot::Present(&written),
            );
            assert_eq!(again.as_ref(), Ok(h));
        }
        (Err(e), Some((header, problem))) => {
            assert_eq!(e.header, header, "{e}");
            match (&e.problem, problem) {
                (HeaderProblem::Missing, HeaderProblem::Missing)
                | (HeaderProblem::Repeated, HeaderProblem::Repeated)
                | (HeaderProblem::Malformed(_), HeaderProblem::Malformed(_)) => {}
                (got, expected) => panic!("{header}: {got:?}, the model says {expected:?}"),
            }
            assert!(e.to_string().starts_with(e.header));
        }
        (got, expected) => panic!("parsed {got:?}, the model expected {expected:?}"),
    }
}

/// The fields of a request as they enter the string to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    method: String,
    target: String,
    device_id: String,
    timestamp: String,
    nonce: String,
    body: Vec<u8>,
}

impl Fields {
    fn message(&self) -> String {
        let (path, query) = split_target(&self.target);
        string_to_sign(
            &self.method,
            path,
            query,
            &self.device_id,
            &self.timestamp,
            &self.nonce,
            &body_sha256_hex(&self.body),
        )
    }
}

fn check_string_to_sign(fields: &Fields) {
    let (path, query) = split_target(&fields.target);
    // The target splits at its first `?` and joins back.
    assert!(!path.contains('?'));
    if query.is_empty() {
        assert!(fields.target == path || fields.target == format!("{path}?"));
    } else {
        assert_eq!(format!("{path}?{query}"), fields.target);
    }
    let body_hash = body_sha256_hex(&fields.body);
    assert_eq!(body_hash.len(), 64);
    assert_eq!(body_hash, body_hash.to_ascii_lowercase());
    let message = fields.message();
    let wire_fields = [
        &fields.method,
        path,
        query,
        &fields.device_id,
        &fields.timestamp,
        &fields.nonce,
    ];
    if wire_fields.iter().any(|f| f.contains('\n')) {
        // Not sendable: HTTP request lines and header values hold no LF.
        return;
    }
    let lines: Vec<&str> = message.split('\n').collect();
    let upper = fields.method.to_ascii_uppercase();
    assert_eq!(
        lines,
        [
            eagate_protocol::ALGORITHM,
            upper.as_str(),
            path,
            query,
            fields.device_id.as_str(),
            fields.timestamp.as_str(),
            fields.nonce.as_str(),
            body_hash.as_str(),
        ]
    );
}

fn check_signing(input: &Input<'_>) {
    let key = SigningKey::new(input.secret);
    let nonce = input.nonce_or_default();
    let device_id = match input.device_id {
        Slot::Present(id) => id,
        _ => "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70",
    };
    let signed = sign_request(
        &key,
        input.method,
        input.target,
        device_id,
        input.unix_seconds,
        nonce,
        input.body,
    );
    let original = Fields {
        method: input.method.to_owned(),
        target: input.target.to_owned(),
        device_id: device_id.to_owned(),
        timestamp: signed.timestamp.clone(),
        nonce: nonce.to_owned(),
        body: input.body.to_vec(),
    };
    check_string_to_sign(&original);
    let mac = parse_signature(&signed.signature).expect("sign_request writes a parseable signature");
    assert_eq!(hex(&mac).len(), 64);
    assert!(key.verify(&original.message(), &mac), "a signed request verifies");
    // The headers a client sends parse back when their values are valid.
    if model_device_id(device_id) && model_nonce(nonce) && input.unix_seconds >= 0 {
        let [(_, id), (_, ts), (_, n), (_, sig)] = signed.headers();
        let parsed = SignedHeaders::parse(
            HeaderSlot::Present(id),
            HeaderSlot::Present(ts),
            HeaderSlot::Present(n),
            HeaderSlot::Present(sig),
        );
        if input.unix_seconds <= 999_999_999_999 {
            let parsed = parsed.expect("a request signed with valid values parses");
            assert_eq!(parsed.signature(), &mac);
        }
    }

    let mut mutated = original.clone();
    let mut mutated_mac = mac;
    match input.mutation {
        Mutation::Method(m) => m.clone_into(&mut mutated.method),
        Mutation::Target(t) => t.clone_into(&mut mutated.target),
        Mutation::DeviceId(d) => d.clone_into(&mut mutated.device_id),
        Mutation::Timestamp(t) => mutated.timestamp = t.to_string(),
        Mutation::Nonce(n) => n.clone_into(&mut mutated.nonce),
        Mutation::Body(b) => mutated.body = b.to_vec(),
        Mutation::Signature(at, bits) => mutated_mac[usize::from(at) % 32] ^= bits,
    }
    check_string_to_sign(&mutated);
    let message = mutated.message();
    let verified = key.verify(&message, &mutated_mac);
    if message != original.message() || mutated_mac != mac {
        assert!(!verified, "a changed request verified: {mutated:?}");
    } else {
        assert!(verified);
        // What the string to sign cannot tell apart: the method's case and
        // a `?` with nothing after it. Everything else is covered.
        let (p1, q1) = split_target(&original.target);
        let (p2, q2) = split_target(&mutated.target);
        assert!(original.method.eq_ignore_ascii_case(&mutated.method));
        assert_eq!((p1, q1), (p2, q2));
        assert_eq!(
            (
                &original.device_id,
                &original.timestamp,
                &original.nonce,
                &original.body
            ),
            (
                &mutated.device_id,
                &mutated.timestamp,
                &mutated.nonce,
                &mutated.body
            )
        );
    }
    // Another secret never verifies the original.
    if input.secret != "eags_other" {
        assert!(!SigningKey::new("eags_other").verify(&original.message(), &mac));
    }
}

impl Input<'_> {
    fn nonce_or_default(&self) -> &str {
        match self.nonce {
            Slot::Present(n) => n,
            _ => "n-8f3a2c1d9e7b6a5f",
        }
    }
}

pub fn check(input: Input<'_>) {
    check_headers(&input);
    check_signing(&input);
}
