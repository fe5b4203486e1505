//! Hashing, signing and constant-time verification.

use crate::hex;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex SHA-256 of the exact body bytes (of nothing, for no body).
pub fn body_sha256_hex(body: &[u8]) -> String {
    if body.is_empty() {
        return crate::EMPTY_BODY_SHA256_HEX.to_owned();
    }
    hex(&Sha256::digest(body))
}

/// A device secret ready to sign or verify: the HMAC key schedule is
/// computed once and reused for every message.
#[derive(Clone)]
pub struct SigningKey(HmacSha256);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// The key is the secret's ASCII bytes exactly as shown (`eags_…`).
    pub fn new(secret: &str) -> Self {
        // HMAC accepts keys of any length; this cannot fail.
        match HmacSha256::new_from_slice(secret.as_bytes()) {
            Ok(mac) => Self(mac),
            Err(_) => unreachable!("HMAC-SHA256 accepts keys of every length"),
        }
    }

    /// The 32-byte HMAC-SHA256 of `message`.
    pub fn sign(&self, message: &str) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `signature` is this key's HMAC of `message`, compared in
    /// constant time.
    pub fn verify(&self, message: &str, signature: &[u8; 32]) -> bool {
        let mut mac = self.0.clone();
        mac.update(message.as_bytes());
        mac.verify_slice(signature).is_ok()
    }
}

/// The `X-Signature` header value for a MAC: `v1=` + lowercase hex.
pub fn signature_header(mac: &[u8; 32]) -> String {
    format!("{}{}", crate::SIGNATURE_PREFIX, hex(mac))
}

/// The four signing headers of one request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    pub device_id: String,
    pub timestamp: String,
    pub nonce: String,
    /// `v1=…`
    pub signature: String,
}

impl RequestSignature {
    /// `(header name, value)` pairs, in protocol order.
    pub fn headers(&self) -> [(&'static str, &str); 4] {
        [
            (crate::DEVICE_ID_HEADER, &self.device_id),
            (crate::TIMESTAMP_HEADER, &self.timestamp),
            (crate::NONCE_HEADER, &self.nonce),
            (crate::SIGNATURE_HEADER, &self.signature),
        ]
    }
}

/// Signs one request. `target` is the path and query exactly as they will
/// be sent on the request line (`/api/v1/device/poll?wait=25`).
pub fn sign_request(
    key: &SigningKey,
    method: &str,
    target: &str,
    device_id: &str,
    unix_seconds: i64,
    nonce: &str,
    body: &[u8],
) -> RequestSignature {
    let (path, query) = crate::split_target(target);
    let timestamp = unix_seconds.to_string();
    let message = crate::string_to_sign(
        method,
        path,
        query,
        device_id,
        &timestamp,
        nonce,
        &body_sha256_hex(body),
    );
    RequestSignature {
        device_id: device_id.to_owned(),
        timestamp,
        nonce: nonce.to_owned(),
        signature: signature_header(&key.sign(&message)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_empty_body_constant_is_the_hash_of_nothing() {
        use sha2::Digest as _;
        assert_eq!(
            super::hex(&super::Sha256::digest(b"")),
            crate::EMPTY_BODY_SHA256_HEX
        );
    }

    use proptest::prelude::*;

    use super::*;
    use crate::{split_target, string_to_sign};

    fn vectors() -> serde_json::Value {
        let text = include_str!("../../../docs/protocol-vectors.json");
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_published_vectors_hold() {
        let doc = vectors();
        let key = SigningKey::new(doc["secret"].as_str().unwrap());
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 6);
        for v in vectors {
            let s = |k: &str| v[k].as_str().unwrap();
            let body = s("body").as_bytes();
            assert_eq!(body_sha256_hex(body), s("body_sha256"), "{}", s("name"));
            let (path, query) = split_target(s("request_target"));
            assert_eq!((path, query), (s("path"), s("query")), "{}", s("name"));
            let message = string_to_sign(
                s("method"),
                path,
                query,
                s("device_id"),
                s("timestamp"),
                s("nonce"),
                s("body_sha256"),
            );
            assert_eq!(message, s("string_to_sign"), "{}", s("name"));
            let signed = sign_request(
                &key,
                s("method"),
                s("request_target"),
                s("device_id"),
                s("timestamp").parse().unwrap(),
                s("nonce"),
                body,
            );
            assert_eq!(signed.signature, s("signature"), "{}", s("name"));
            let mac = crate::parse_signature(s("signature")).unwrap();
            assert!(key.verify(&message, &mac));
            let upper =
                crate::parse_signature(&s("signature").to_ascii_uppercase().replacen("V1=", "v1=", 1))
                    .unwrap();
            assert!(key.verify(&message, &upper), "upper-case hex verifies");
        }
    }

    #[test]
    fn the_issue_vectors_are_the_first_two() {
        let doc = vectors();
        assert_eq!(
            doc["vectors"][0]["signature"],
            "v1=4b0aee7b1bbb7639583535899635d2ace181c77c5dc70c7f16abc09b03368699"
        );
        assert_eq!(
            doc["vectors"][0]["body_sha256"],
            "864659e0cab84f2a9dcbd12881266557da5aae9b0c68e6a52b7d618bd8f2f80a"
        );
        assert_eq!(
            doc["vectors"][1]["signature"],
            "v1=f929a4cba7fcda1e9091aed088dd4512e8a4eaec27ac785664ff14e82d774630"
        );
    }

    fn flip(s: &str, at: usize) -> String {
        let mut bytes = s.as_bytes().to_vec();
        if bytes.is_empty() {
            return "x".into();
        }
        let i = at % bytes.len();
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        String::from_utf8_lossy(&bytes).into_owned()
    }

    proptest! {
        /// Changing any one byte of any signed field breaks the signature.
        #[test]
        fn any_single_byte_change_fails_verification(field in 0usize..7, at in 0usize..64) {
            let key = SigningKey::new("eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB");
            let mut f = [
                "POST".to_owned(),
                "/api/v1/device/ack".to_owned(),
                "x=1&y=2".to_owned(),
                "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70".to_owned(),
                "1795305600".to_owned(),
                "n-8f3a2c1d9e7b6a5f".to_owned(),
                r#"{"signal_id":"x","outcome":"executed"}"#.to_owned(),
            ];
            let message = |f: &[String; 7]| {
                string_to_sign(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &body_sha256_hex(f[6].as_bytes()))
            };
            let mac = key.sign(&message(&f));
            f[field] = flip(&f[field], at);
            // The method is upper-cased before signing; a case-only change
            // is not a change.
            prop_assume!(!(field == 0 && f[0].eq_ignore_ascii_case("POST")));
            prop_assert!(!key.verify(&message(&f), &mac));
        }

        #[test]
        fn a_different_secret_never_verifies(secret in "eags_[A-Za-z0-9_-]{43}") {
            prop_assume!(secret != "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB");
            let message = string_to_sign("GET", "/p", "", "d", "1", "n", "h");
            let mac = SigningKey::new("eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB").sign(&message);
            prop_assert!(!SigningKey::new(&secret).verify(&message, &mac));
        }
    }
}
