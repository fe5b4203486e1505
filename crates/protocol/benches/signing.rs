//! Protocol v1: what a device pays to sign a request and what the server
//! pays to parse and check it (`just bench`, or
//! `cargo bench -p eagate-protocol --bench signing`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use eagate_protocol::{
    HeaderSlot, SignedHeaders, SigningKey, body_sha256_hex, parse_signature, sign_request, split_target,
    string_to_sign,
};

const SECRET: &str = "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB";
const DEVICE: &str = "3f6c1a2e-8d4b-4c7e-9f10-2b3c4d5e6f70";
const NONCE: &str = "8f3a2c1d9e7b6a5f4e3d2c1b0a998877";
const HEARTBEAT: &[u8] = br#"{"ea_version":"2.1.0","terminal_build":4410,"broker":"Load Test Broker Ltd","account_login":51234567,"balance":10250.75,"equity":10100.5}"#;

fn signing(c: &mut Criterion) {
    let key = SigningKey::new(SECRET);
    c.bench_function("protocol/sign idle poll (empty body)", |b| {
        b.iter(|| {
            sign_request(
                black_box(&key),
                "GET",
                black_box("/api/v1/device/poll?wait=0"),
                DEVICE,
                1_795_305_600,
                NONCE,
                b"",
            )
        })
    });
    c.bench_function("protocol/sign heartbeat (137-byte body)", |b| {
        b.iter(|| {
            sign_request(
                black_box(&key),
                "POST",
                black_box("/api/v1/device/heartbeat"),
                DEVICE,
                1_795_305_600,
                NONCE,
                black_box(HEARTBEAT),
            )
        })
    });
    c.bench_function("protocol/key schedule (SigningKey::new)", |b| {
        b.iter(|| SigningKey::new(black_box(SECRET)))
    });
}

/// The server's side of one idle poll, as the extractor and the use case
/// run it: parse the four headers, hash the body, build the string to sign,
/// verify in constant time with a ready key.
fn verification(c: &mut Criterion) {
    let key = SigningKey::new(SECRET);
    let signed = sign_request(
        &key,
        "GET",
        "/api/v1/device/poll?wait=0",
        DEVICE,
        1_795_305_600,
        NONCE,
        b"",
    );
    c.bench_function("protocol/server: parse headers + string to sign + verify", |b| {
        b.iter(|| {
            let headers = SignedHeaders::parse(
                HeaderSlot::Present(black_box(&signed.device_id)),
                HeaderSlot::Present(black_box(&signed.timestamp)),
                HeaderSlot::Present(black_box(&signed.nonce)),
                HeaderSlot::Present(black_box(&signed.signature)),
            )
            .ok()?;
            let (path, query) = split_target(black_box("/api/v1/device/poll?wait=0"));
            let message = string_to_sign(
                "GET",
                path,
                query,
                headers.device_id(),
                headers.timestamp(),
                headers.nonce(),
                &body_sha256_hex(b""),
            );
            Some(key.verify(&message, headers.signature()))
        })
    });
    let message = string_to_sign(
        "GET",
        "/api/v1/device/poll",
        "wait=0",
        DEVICE,
        "1795305600",
        NONCE,
        &body_sha256_hex(b""),
    );
    let mac = parse_signature(&signed.signature).unwrap_or([0; 32]);
    c.bench_function("protocol/server: HMAC verify only", |b| {
        b.iter(|| key.verify(black_box(&message), black_box(&mac)))
    });
}

criterion_group!(benches, signing, verification);
criterion_main!(benches);
