//! The crypto adapters on eagate's hot and cold paths (`just bench`, or
//! `cargo bench -p eagate-crypto --bench crypto`): signature verification
//! through sealed secrets, sealing, JWTs, and argon2id with the production
//! parameters.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use eagate_crypto::{
    Argon2Hasher, Argon2Params, Ed25519Keys, HmacVerifier, JwtAccessTokens, JwtConfig, MasterKeyring,
    XChaChaSealer,
};
use eagate_domain::account::{
    AccessClaims, AccessTokenIssuer as _, Password, PasswordHasher as _, SessionId, UserId,
};
use eagate_domain::device::{DeviceId, DeviceSecret, SecretSealer as _, SignatureVerifier as _};
use eagate_protocol::{SigningKey, body_sha256_hex, string_to_sign};

const SECRET: &str = "eags_TESTONLY-0123456789abcdefghijklmnopqrstuvwxyzAB";

fn sealer() -> XChaChaSealer {
    let entry = MasterKeyring::generate_entry("bench").unwrap_or_default();
    match MasterKeyring::parse(&entry) {
        Ok(ring) => XChaChaSealer::new(ring),
        Err(e) => panic!("keyring: {e}"),
    }
}

fn device() -> DeviceId {
    DeviceId::from_uuid(uuid::Uuid::now_v7())
}

fn sealing(c: &mut Criterion) {
    let sealer = sealer();
    let d = device();
    let secret = DeviceSecret::new(SECRET.to_owned());
    let Ok(sealed) = sealer.seal(d, &secret) else {
        panic!("sealing failed")
    };
    c.bench_function("crypto/seal a device secret (XChaCha20-Poly1305)", |b| {
        b.iter(|| sealer.seal(black_box(d), black_box(&secret)))
    });
    c.bench_function("crypto/unseal a device secret", |b| {
        b.iter(|| sealer.open(black_box(d), black_box(&sealed)))
    });
}

fn verifying(c: &mut Criterion) {
    let sealer = sealer();
    let d = device();
    let Ok(sealed) = sealer.seal(d, &DeviceSecret::new(SECRET.to_owned())) else {
        panic!("sealing failed")
    };
    let message = string_to_sign(
        "GET",
        "/api/v1/device/poll",
        "wait=0",
        &d.to_string(),
        "1795305600",
        "8f3a2c1d9e7b6a5f4e3d2c1b0a998877",
        &body_sha256_hex(b""),
    );
    let mac = SigningKey::new(SECRET).sign(&message);
    let verifier = HmacVerifier::new(sealer.clone());
    c.bench_function("crypto/HmacVerifier::verify, key cached (hot path)", |b| {
        b.iter(|| {
            verifier.verify(
                black_box(d),
                black_box(&sealed),
                black_box(&message),
                black_box(&mac),
            )
        })
    });
    c.bench_function(
        "crypto/HmacVerifier::verify, first use (unseal + key schedule)",
        |b| {
            b.iter_batched(
                || HmacVerifier::new(sealer.clone()),
                |fresh| fresh.verify(d, &sealed, &message, &mac),
                BatchSize::SmallInput,
            )
        },
    );
}

fn jwt(c: &mut Criterion) {
    let Ok(keys) = Ed25519Keys::generate() else {
        panic!("key generation failed")
    };
    let tokens = JwtAccessTokens::new(
        &keys,
        JwtConfig {
            issuer: "eagate".into(),
            audience: "eagate-api".into(),
        },
    );
    let issued_at = Utc
        .with_ymd_and_hms(2026, 5, 1, 8, 0, 0)
        .single()
        .unwrap_or_default();
    let claims = AccessClaims {
        user_id: UserId::from_uuid(uuid::Uuid::now_v7()),
        session_id: SessionId::from_uuid(uuid::Uuid::now_v7()),
        issued_at,
        expires_at: issued_at + chrono::Duration::minutes(15),
    };
    let Ok(token) = tokens.issue(&claims) else {
        panic!("issuing failed")
    };
    let now = issued_at + chrono::Duration::minutes(1);
    c.bench_function("crypto/JWT issue (EdDSA)", |b| {
        b.iter(|| tokens.issue(black_box(&claims)))
    });
    c.bench_function("crypto/JWT verify (EdDSA, iss/aud/exp)", |b| {
        b.iter(|| tokens.verify(black_box(token.expose()), now))
    });
}

fn argon2(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().enable_all().build() else {
        panic!("no runtime")
    };
    let params = Argon2Params::default();
    let Ok(hasher) = Argon2Hasher::new(params, 1) else {
        panic!("hasher")
    };
    let Ok(password) = Password::parse_new("correct horse battery staple", "password", &[]) else {
        panic!("password")
    };
    let Ok(hash) = rt.block_on(hasher.hash(&password)) else {
        panic!("hashing failed")
    };
    let mut group = c.benchmark_group("crypto/argon2id production parameters (m=19456 KiB, t=2, p=1)");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.bench_function("hash", |b| {
        b.iter(|| rt.block_on(hasher.hash(black_box(&password))))
    });
    group.bench_function("verify", |b| {
        b.iter(|| rt.block_on(hasher.verify(black_box(&password), black_box(&hash))))
    });
    group.finish();
}

criterion_group!(benches, sealing, verifying, jwt, argon2);
criterion_main!(benches);
