//! Access-token (JWT) verification.
//!
//! - Verifying any text never panics.
//! - A token the service issued verifies exactly when the documented time
//!   rules say so (`exp` after now, `iat` at most 60 s ahead, `iat`
//!   before `exp`; and `exp` not before 1970), and gives back the claims
//!   it was issued with.
//! - Any other text — the issued token with a bit flipped, cut short,
//!   lengthened, a header or payload of the fuzzer's choosing (`alg: none`,
//!   another `typ`, other claims) under the original signature, another
//!   signature, or anything at all — never verifies.

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use eagate_crypto::{Ed25519Keys, JwtAccessTokens, JwtConfig};
use eagate_domain::account::{AccessClaims, AccessTokenIssuer as _, SessionId, UserId};

/// A fixed key, so a crash reproduces: PKCS#8 v1 of an Ed25519 seed.
static TOKENS: LazyLock<JwtAccessTokens> = LazyLock::new(|| {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    let keys = Ed25519Keys::from_pem(&pem).expect("a valid Ed25519 PKCS#8 key");
    JwtAccessTokens::new(
        &keys,
        JwtConfig {
            issuer: "eagate".into(),
            audience: "eagate-api".into(),
        },
    )
});

/// Around 2027; offsets of an `i32` of seconds stay within chrono's range.
const BASE: i64 = 1_800_000_000;
const MAX_IAT_SKEW_SECONDS: i64 = 60;

#[derive(Arbitrary, Debug)]
pub enum Mutation<'a> {
    None,
    FlipBit {
        at: u16,
        bit: u8,
    },
    Truncate(u16),
    Insert {
        at: u16,
        byte: u8,
    },
    Append(&'a str),
    /// This JSON, base64url-encoded, as the header.
    Header(&'a str),
    /// This JSON, base64url-encoded, as the payload.
    Payload(&'a str),
    /// These bytes, base64url-encoded, as the signature.
    Signature(&'a [u8]),
    /// Replace the whole token.
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
pub struct Input<'a> {
    pub user: u128,
    pub session: u128,
    pub issued_at: i32,
    pub ttl: i32,
    pub now: i32,
    pub mutation: Mutation<'a>,
}

fn at(offset: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(BASE + i64::from(offset), 0).expect("within chrono's range")
}

fn replace_segment(token: &str, index: usize, with: String) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    if let Some(part) = parts.get_mut(index) {
        *part = with;
    }
    parts.join(".")
}

pub fn check(input: Input<'_>) {
    let tokens = &*TOKENS;
    let claims = AccessClaims {
        user_id: UserId::from_uuid(uuid::Uuid::from_u128(input.user)),
        session_id: SessionId::from_uuid(uuid::Uuid::from_u128(input.session)),
        issued_at: at(input.issued_at),
        expires_at: at(input.issued_at.saturating_add(input.ttl)),
    };
    let now = at(input.now);
    let issued = tokens.issue(&claims).expect("issuing never fails");
    let issued = issued.expose();

    let text = match input.mutation {
        Mutation::None => issued.to_owned(),
        Mutation::FlipBit { at, bit } => {
            let mut bytes = issued.as_bytes().to_vec();
            let i = usize::from(at) % bytes.len();
            bytes[i] ^= 1 << (bit % 8);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Truncate(n) => issued[..usize::from(n) % issued.len()].to_owned(),
        Mutation::Insert { at, byte } => {
            let mut bytes = issued.as_bytes().to_vec();
            bytes.insert(usize::from(at) % (bytes.len() + 1), byte);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Append(tail) => format!("{issued}{tail}"),
        Mutation::Header(json) => replace_segment(issued, 0, URL_SAFE_NO_PAD.encode(json)),
        Mutation::Payload(json) => replace_segment(issued, 1, URL_SAFE_NO_PAD.encode(json)),
        Mutation::Signature(sig) => replace_segment(issued, 2, URL_SAFE_NO_PAD.encode(sig)),
        Mutation::Raw(raw) => raw.to_owned(),
    };

    let verified = tokens.verify(&text, now);
    if text != issued {
        assert!(verified.is_err(), "a changed token verified: {text:?}");
        return;
    }
    let (iat, exp, now) = (
        claims.issued_at.timestamp(),
        claims.expires_at.timestamp(),
        now.timestamp(),
    );
    // jsonwebtoken reads `exp` as unsigned: a token expiring before 1970
    // is refused (found by this target; pinned by
    // crates/crypto/src/jwt.rs::tokens_dated_before_1970_are_refused).
    let valid = exp > now && iat <= now + MAX_IAT_SKEW_SECONDS && iat < exp && exp >= 0;
    match verified {
        Ok(back) => {
            assert!(
                valid,
                "accepted outside the time rules: iat {iat}, exp {exp}, now {now}"
            );
            assert_eq!(back, claims);
        }
        Err(_) => assert!(
            !valid,
            "refused within the time rules: iat {iat}, exp {exp}, now {now}"
        ),
    }
}
