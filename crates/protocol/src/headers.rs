//! The four signing headers and their syntax.

use std::fmt;

/// `X-Device-Id`: the device id, a lowercase hyphenated UUID.
pub const DEVICE_ID_HEADER: &str = "x-device-id";
/// `X-Timestamp`: Unix time in whole seconds, ASCII digits.
pub const TIMESTAMP_HEADER: &str = "x-timestamp";
/// `X-Nonce`: 16–64 characters of `A–Z a–z 0–9 . _ ~ -`.
pub const NONCE_HEADER: &str = "x-nonce";
/// `X-Signature`: `v1=` followed by 64 hex digits.
pub const SIGNATURE_HEADER: &str = "x-signature";
/// `X-Server-Time`: the server's Unix time, sent with clock-skew errors.
pub const SERVER_TIME_HEADER: &str = "x-server-time";

pub const NONCE_MIN_LEN: usize = 16;
pub const NONCE_MAX_LEN: usize = 64;

/// A header as found on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderSlot<'a> {
    Missing,
    /// Sent more than once: ambiguous, so refused.
    Repeated,
    /// Not visible ASCII.
    Unreadable,
    Present(&'a str),
}

/// What is wrong with a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    Missing,
    Repeated,
    Malformed(&'static str),
}

/// A header that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    /// The header's canonical name, e.g. `X-Nonce`.
    pub header: &'static str,
    pub problem: HeaderProblem,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            HeaderProblem::Missing => write!(f, "{} is missing", self.header),
            HeaderProblem::Repeated => write!(f, "{} is sent more than once", self.header),
            HeaderProblem::Malformed(why) => write!(f, "{} is malformed: {why}", self.header),
        }
    }
}

impl std::error::Error for HeaderError {}

/// The signing headers of a request, syntactically valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The device id, the timestamp and the nonce exactly as sent, one
    /// after another in one allocation; `timestamp_end` and the length
    /// delimit them (the device id is always 36 characters).
    text: String,
    timestamp_end: usize,
    uuid_bytes: [u8; 16],
    unix_seconds: i64,
    signature: [u8; 32],
}

/// A device id is a hyphenated UUID: always this long.
const DEVICE_ID_LEN: usize = 36;

fn present<'a>(slot: HeaderSlot<'a>, header: &'static str) -> Result<&'a str, HeaderError> {
    let problem = match slot {
        HeaderSlot::Present(v) => return Ok(v),
        HeaderSlot::Missing => HeaderProblem::Missing,
        HeaderSlot::Repeated => HeaderProblem::Repeated,
        HeaderSlot::Unreadable => HeaderProblem::Malformed("must be visible ASCII"),
    };
    Err(HeaderError { header, problem })
}

fn malformed(header: &'static str, why: &'static str) -> HeaderError {
    HeaderError {
        header,
        problem: HeaderProblem::Malformed(why),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a lowercase hyphenated UUID (8-4-4-4-12) into its bytes.
fn parse_device_id(raw: &str) -> Option<[u8; 16]> {
    let bytes = raw.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = 0;
    for (i, &c) in bytes.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        if c.is_ascii_uppercase() {
            return None;
        }
        let v = hex_value(c)?;
        out[nibbles / 2] |= if nibbles % 2 == 0 { v << 4 } else { v };
        nibbles += 1;
    }
    Some(out)
}

/// Is `raw` a valid nonce?
pub fn is_valid_nonce(raw: &str) -> bool {
    (NONCE_MIN_LEN..=NONCE_MAX_LEN).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// Parses `v1=` + 64 hex digits (either case).
pub fn parse_signature(raw: &str) -> Option<[u8; 32]> {
    let hex = raw.strip_prefix(crate::SIGNATURE_PREFIX)?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

impl SignedHeaders {
    /// Checks the four headers, in protocol order, and reports the first
    /// that is missing or malformed.
    pub fn parse(
        device_id: HeaderSlot<'_>,
        timestamp: HeaderSlot<'_>,
        nonce: HeaderSlot<'_>,
        signature: HeaderSlot<'_>,
    ) -> Result<Self, HeaderError> {
        let device_id = present(device_id, "X-Device-Id")?;
        let uuid_bytes = parse_device_id(device_id)
            .ok_or_else(|| malformed("X-Device-Id", "must be a lowercase hyphenated UUID"))?;
        let timestamp = present(timestamp, "X-Timestamp")?;
        if timestamp.is_empty() || timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(
                "X-Timestamp",
                "must be Unix time in whole seconds (ASCII digits)",
            ));
        }
        let unix_seconds = timestamp
            .parse()
            .map_err(|_| malformed("X-Timestamp", "must be Unix time in whole seconds (ASCII digits)"))?;
        let nonce = present(nonce, "X-Nonce")?;
        if !is_valid_nonce(nonce) {
            return Err(malformed(
                "X-Nonce",
                "must be 16-64 characters of A-Z a-z 0-9 . _ ~ -",
            ));
        }
        let signature = present(signature, "X-Signature")?;
        let signature = parse_signature(signature)
            .ok_or_else(|| malformed("X-Signature", "must be v1= followed by 64 hex digits"))?;
        debug_assert_eq!(device_id.len(), DEVICE_ID_LEN);
        let mut text = String::with_capacity(device_id.len() + timestamp.len() + nonce.len());
        text.push_str(device_id);
        text.push_str(timestamp);
        text.push_str(nonce);
        Ok(Self {
            text,
            timestamp_end: DEVICE_ID_LEN + timestamp.len(),
            uuid_bytes,
            unix_seconds,
            signature,
        })
    }

    /// The device id exactly as sent.
    pub fn device_id(&self) -> &str {
        &self.text[..DEVICE_ID_LEN]
    }

    /// The device id's 16 UUID bytes.
    pub fn device_uuid_bytes(&self) -> [u8; 16] {
        self.uuid_bytes
    }

    /// The timestamp exactly as sent.
    pub fn timestamp(&self) -> &str {
        &self.text[DEVICE_ID_LEN..self.timestamp_end]
    }

    pub fn unix_seconds(&self) -> i64 {
        self.unix_seconds
    }

    pub fn nonce(&self) -> &str {
        &self.text[self.timestamp_end..]
    }

    /// The 32 signature bytes.
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ID: &str = "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70";
    const SIG: &str = "v1=4b0aee7b1bbb7639583535899635d2ace181c77c5dc70c7f16abc09b03368699";

    fn parse(id: &str, ts: &str, nonce: &str, sig: &str) -> Result<SignedHeaders, HeaderError> {
        SignedHeaders::parse(
            HeaderSlot::Present(id),
            HeaderSlot::Present(ts),
            HeaderSlot::Present(nonce),
            HeaderSlot::Present(sig),
        )
    }

    fn header_of(r: Result<SignedHeaders, HeaderError>) -> &'static str {
        r.unwrap_err().header
    }

    #[test]
    fn valid_headers_parse() {
        let h = parse(ID, "1795305600", "n-8f3a2c1d9e7b6a5f", SIG).unwrap();
        assert_eq!(h.device_id(), ID);
        assert_eq!(h.unix_seconds(), 1_795_305_600);
        assert_eq!(h.signature()[0], 0x4b);
        assert_eq!(h.device_uuid_bytes()[..4], [0x3f, 0x6c, 0x1a, 0x2e]);
        // Upper-case hex signatures are accepted too.
        assert!(
            parse(
                ID,
                "1",
                "n-8f3a2c1d9e7b6a5f",
                &SIG.to_ascii_uppercase().replace("V1=", "v1=")
            )
            .is_ok()
        );
    }

    #[test]
    fn each_malformed_header_is_named() {
        let nonce = "n-8f3a2c1d9e7b6a5f";
        for bad in [
            &ID.to_ascii_uppercase() as &str,
            "3f6c1a2e8d4b4c7e9f102b3c4d5e6f70",
            "{3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70}",
            "x",
        ] {
            assert_eq!(header_of(parse(bad, "1", nonce, SIG)), "X-Device-Id", "{bad}");
        }
        for bad in ["", "-1", "+5", "1.5", "12345678901234", "0x10", " 1"] {
            assert_eq!(header_of(parse(ID, bad, nonce, SIG)), "X-Timestamp", "{bad:?}");
        }
        for bad in [
            "short",
            &"n".repeat(65) as &str,
            "has space in it!!",
            "semi;colon-000000",
            "ünïcödé-000000000",
        ] {
            assert_eq!(header_of(parse(ID, "1", bad, SIG)), "X-Nonce", "{bad:?}");
        }
        assert!(parse(ID, "1", &"n".repeat(16), SIG).is_ok());
        assert!(parse(ID, "1", &"n".repeat(64), SIG).is_ok());
        for bad in [
            "",
            "4b0aee7b",
            &SIG[3..] as &str,
            &SIG.replace("v1=", "v2=") as &str,
            &format!("{SIG}0"),
            &SIG.replace('4', "g"),
        ] {
            assert_eq!(header_of(parse(ID, "1", nonce, bad)), "X-Signature", "{bad:?}");
        }
    }

    #[test]
    fn missing_and_repeated_headers_are_reported_first_in_protocol_order() {
        let err = SignedHeaders::parse(
            HeaderSlot::Present(ID),
            HeaderSlot::Missing,
            HeaderSlot::Repeated,
            HeaderSlot::Missing,
        )
        .unwrap_err();
        assert_eq!(err.header, "X-Timestamp");
        assert_eq!(err.problem, HeaderProblem::Missing);
        let err = SignedHeaders::parse(
            HeaderSlot::Present(ID),
            HeaderSlot::Present("1"),
            HeaderSlot::Repeated,
            HeaderSlot::Present(SIG),
        )
        .unwrap_err();
        assert_eq!((err.header, &err.problem), ("X-Nonce", &HeaderProblem::Repeated));
        assert!(err.to_string().contains("more than once"));
    }

    proptest! {
        #[test]
        fn nonce_rule_is_exactly_the_documented_one(s in "[ -~]{0,70}") {
            let expected = (16..=64).contains(&s.len())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_~".contains(c));
            prop_assert_eq!(is_valid_nonce(&s), expected);
        }

        #[test]
        fn parsing_never_panics(a in "\\PC{0,50}", b in "\\PC{0,20}", c in "\\PC{0,70}", d in "\\PC{0,80}") {
            let _ = parse(&a, &b, &c, &d);
        }
    }
}
