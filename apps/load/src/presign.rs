//! Signed device requests, made before the clock starts: each with a fresh
//! nonce, written to a replay file that `wrk/replay.lua` sends one by one.

use std::io::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use eagate_client::{Signer, new_nonce};

use crate::http::request_bytes;

/// Separates requests in a replay file (ASCII record separator: never in an
/// HTTP request the harness writes).
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// A registered device and its signer.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub signer: Signer,
}

/// A device request shape: method, target and optional JSON body.
#[derive(Debug, Clone)]
pub struct Shape {
    pub method: &'static str,
    pub target: String,
    pub body: Option<Vec<u8>>,
}

impl Shape {
    pub fn idle_poll() -> Self {
        Self {
            method: "GET",
            target: "/api/v1/device/poll?wait=0".into(),
            body: None,
        }
    }

    pub fn long_poll(wait_seconds: u64) -> Self {
        Self {
            method: "GET",
            target: format!("/api/v1/device/poll?wait={wait_seconds}"),
            body: None,
        }
    }

    pub fn heartbeat() -> Self {
        Self {
            method: "POST",
            target: "/api/v1/device/heartbeat".into(),
            body: Some(
                br#"{"ea_version":"2.1.0","terminal_build":4410,"broker":"Load Test Broker Ltd","account_login":51234567,"balance":10250.75,"equity":10100.5}"#
                    .to_vec(),
            ),
        }
    }

    pub fn ack(signal_id: &str) -> Self {
        Self {
            method: "POST",
            target: "/api/v1/device/ack".into(),
            body: Some(
                format!(r#"{{"signal_id":"{signal_id}","outcome":"executed","ticket":4812}}"#).into_bytes(),
            ),
        }
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The complete bytes of `shape` signed by `device` at `unix_seconds` with
/// a fresh nonce.
pub fn signed(device: &Device, shape: &Shape, unix_seconds: i64) -> Vec<u8> {
    let body = shape.body.as_deref().unwrap_or_default();
    let sig = device
        .signer
        .sign(shape.method, &shape.target, body, unix_seconds, &new_nonce());
    request_bytes(shape.method, &shape.target, &sig.headers(), shape.body.as_deref())
}

/// Writes `count` requests of `shape`, round-robin over `devices`, signed
/// now, to `path`. Returns the bytes written.
pub fn write_replay_file(path: &Path, devices: &[Device], shape: &Shape, count: usize) -> Result<u64> {
    if devices.is_empty() {
        bail!("no devices to sign for");
    }
    let now = unix_now();
    let file = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = 0u64;
    for i in 0..count {
        let request = signed(&devices[i % devices.len()], shape, now);
        out.write_all(&request)?;
        out.write_all(&[RECORD_SEPARATOR])?;
        written += request.len() as u64 + 1;
    }
    out.flush()?;
    Ok(written)
}

/// Writes `request` once (the replay script repeats it).
pub fn write_static_file(path: &Path, request: &[u8]) -> Result<()> {
    let mut bytes = request.to_vec();
    bytes.push(RECORD_SEPARATOR);
    std::fs::write(path, bytes).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(n: u8) -> Device {
        let id = format!("3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f7{n}");
        Device {
            signer: Signer::new(&id, "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB"),
            id,
        }
    }

    #[test]
    fn signed_requests_verify_with_the_protocol_rules() {
        let d = device(0);
        let shape = Shape::heartbeat();
        let bytes = signed(&d, &shape, 1_795_305_600);
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /api/v1/device/heartbeat HTTP/1.1\r\n"));
        assert_eq!(body.as_bytes(), shape.body.as_deref().unwrap());
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap()
                .to_owned()
        };
        assert_eq!(header("x-device-id"), d.id);
        assert_eq!(header("x-timestamp"), "1795305600");
        assert_eq!(header("Content-Length"), body.len().to_string());
        let nonce = header("x-nonce");
        assert!(eagate_protocol::is_valid_nonce(&nonce));
        let message = eagate_protocol::string_to_sign(
            "POST",
            "/api/v1/device/heartbeat",
            "",
            &d.id,
            "1795305600",
            &nonce,
            &eagate_protocol::body_sha256_hex(body.as_bytes()),
        );
        let mac = eagate_protocol::parse_signature(&header("x-signature")).unwrap();
        let key = eagate_protocol::SigningKey::new("eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB");
        assert!(key.verify(&message, &mac));
    }

    #[test]
    fn replay_files_hold_distinct_nonces_round_robin() {
        let dir = std::env::temp_dir().join(format!("eagate-load-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("poll.req");
        let devices = [device(1), device(2)];
        let written = write_replay_file(&path, &devices, &Shape::idle_poll(), 5).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, written);
        let records: Vec<&[u8]> = data
            .split(|b| *b == RECORD_SEPARATOR)
            .filter(|r| !r.is_empty())
            .collect();
        assert_eq!(records.len(), 5);
        let text: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.to_vec()).unwrap())
            .collect();
        assert!(text[0].contains(&devices[0].id) && text[1].contains(&devices[1].id));
        assert!(text[2].contains(&devices[0].id));
        let nonces: std::collections::HashSet<&str> = text
            .iter()
            .map(|t| t.lines().find_map(|l| l.strip_prefix("x-nonce: ")).unwrap())
            .collect();
        assert_eq!(nonces.len(), 5, "every request has its own nonce");
        assert!(text.iter().all(|t| t.ends_with("\r\n\r\n")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
