//! eagate's device request-signing protocol, version 1.
//!
//! Every request from an Expert Advisor carries four headers — the device
//! id, a Unix timestamp, a nonce and a signature — and the signature is
//! HMAC-SHA256, keyed with the device secret's ASCII bytes, over eight
//! LF-joined fields ([`string_to_sign`]). This crate is the one
//! implementation of those rules, shared by the server and the Rust SDK;
//! `docs/protocol.md` specifies them for implementers in other languages.
//!
//! Without the default `sign` feature it has no dependencies at all (the
//! domain crate uses it that way); `sign` adds hashing, signing and
//! constant-time verification.

mod headers;
#[cfg(feature = "sign")]
mod sign;

pub use headers::*;

/// The body hash of a request without a body (most `GET`s): SHA-256 of
/// nothing, in lowercase hex.
pub const EMPTY_BODY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
#[cfg(feature = "sign")]
pub use sign::*;

/// The first line of every string to sign.
pub const ALGORITHM: &str = "EAGATE-HMAC-SHA256";

/// The signature header's version prefix.
pub const SIGNATURE_PREFIX: &str = "v1=";

/// Builds the string to sign: `EAGATE-HMAC-SHA256`, the method (upper
/// case), the path exactly as sent (before any `?`, not decoded), the query
/// exactly as sent (after the `?`; empty when there is none), the device id,
/// the timestamp and the nonce as sent in their headers, and the lowercase
/// hex SHA-256 of the exact body bytes — joined by single LFs, with no
/// trailing LF.
pub fn string_to_sign(
    method: &str,
    path: &str,
    query: &str,
    device_id: &str,
    timestamp: &str,
    nonce: &str,
    body_sha256_hex: &str,
) -> String {
    let fields = [
        ALGORITHM,
        &method.to_ascii_uppercase(),
        path,
        query,
        device_id,
        timestamp,
        nonce,
        body_sha256_hex,
    ];
    fields.join("\n")
}

/// Splits a request target (`/path?query`) into path and query, as the
/// string to sign needs them. A `?` with nothing after it gives an empty
/// query, exactly like no `?` at all.
pub fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_to_sign_has_eight_lines_and_no_trailing_lf() {
        let s = string_to_sign("post", "/p", "", "d", "1", "n", "h");
        assert_eq!(s, "EAGATE-HMAC-SHA256\nPOST\n/p\n\nd\n1\nn\nh");
        assert_eq!(s.split('\n').count(), 8);
    }

    #[test]
    fn targets_split_at_the_first_question_mark() {
        assert_eq!(split_target("/a?b=1?c"), ("/a", "b=1?c"));
        assert_eq!(split_target("/a?"), ("/a", ""));
        assert_eq!(split_target("/a"), ("/a", ""));
    }
}
