//! The per-instance device cache across two instances on one database:
//! a change made through one instance is enforced by the other as soon as
//! its change feed delivers it, and a randomized interleaving of changes and
//! reads never leaves an instance answering from a stale entry.
//!
//! Timing is reported, not asserted tightly (latency belongs in
//! benchmarks): each check waits at most a few seconds and prints how long
//! the other instance took.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eagate_client::{Signer, new_nonce};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `GET /api/v1/device/config` on `base`, signed with `secret`: the status.
async fn config_status(app: &TestApp, base: &str, id: &str, secret: &str) -> StatusCode {
    let signer = Signer::new(id, secret);
    let target = "/api/v1/device/config";
    let sig = signer.sign("GET", target, b"", now(), &new_nonce());
    let mut request = app.client.get(format!("{base}{target}"));
    for (k, v) in sig.headers() {
        request = request.header(k, v);
    }
    request.send().await.unwrap().status()
}

/// `GET /api/v1/device/poll` on `base`: how many signals it returned.
async fn poll_count(app: &TestApp, base: &str, id: &str, secret: &str) -> usize {
    let signer = Signer::new(id, secret);
    let target = "/api/v1/device/poll?limit=100";
    let sig = signer.sign("GET", target, b"", now(), &new_nonce());
    let mut request = app.client.get(format!("{base}{target}"));
    for (k, v) in sig.headers() {
        request = request.header(k, v);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "poll on {base}");
    let body: Value = response.json().await.unwrap();
    body["signals"].as_array().unwrap().len()
}

/// Repeats `probe` until it returns `want`; how long that took. Fails after
/// 5 s.
async fn until<T: PartialEq + std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    want: T,
    mut probe: impl FnMut() -> F,
) -> Duration {
    let started = Instant::now();
    loop {
        let got = probe().await;
        if got == want {
            let took = started.elapsed();
            eprintln!("{what}: {} ms", took.as_millis());
            return took;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: still {got:?} after 5 s"
        );
    }
}

#[tokio::test]
async fn a_revocation_through_one_instance_is_enforced_by_the_other() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let (token, _) = app.user_with_tokens("revoker").await;
    let (device, secret) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap().to_owned();
    // Both instances have the credentials cached.
    for base in [&app.base, &other] {
        for _ in 0..2 {
            assert_eq!(config_status(&app, base, &id, &secret).await, StatusCode::OK);
        }
    }
    let revoked = app.post_auth(&format!("/devices/{id}/revoke"), &token).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    // At once on the instance that revoked it.
    assert_eq!(
        config_status(&app, &app.base, &id, &secret).await,
        StatusCode::UNAUTHORIZED,
        "the revoking instance refuses at once"
    );
    // On the other, as soon as the change feed delivers it.
    until(
        "revocation seen by the other instance",
        StatusCode::UNAUTHORIZED,
        || config_status(&app, &other, &id, &secret),
    )
    .await;
}

#[tokio::test]
async fn a_rotation_through_one_instance_is_enforced_by_the_other() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let (token, _) = app.user_with_tokens("rotator").await;
    let (device, old) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap().to_owned();
    assert_eq!(config_status(&app, &other, &id, &old).await, StatusCode::OK);
    let rotated: Value = app
        .post_json_auth(
            &format!("/devices/{id}/rotate-secret"),
            &token,
            &json!({"grace_seconds": 0}),
        )
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        config_status(&app, &app.base, &id, &old).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(config_status(&app, &app.base, &id, &new).await, StatusCode::OK);
    until(
        "rotation seen by the other instance",
        StatusCode::UNAUTHORIZED,
        || config_status(&app, &other, &id, &old),
    )
    .await;
    assert_eq!(config_status(&app, &other, &id, &new).await, StatusCode::OK);
}

#[tokio::test]
async fn an_account_deletion_through_one_instance_locks_its_devices_out_of_the_other() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let (token, _) = app.user_with_tokens("leaver").await;
    let (device, secret) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap().to_owned();
    assert_eq!(config_status(&app, &other, &id, &secret).await, StatusCode::OK);
    assert_eq!(
        app.delete_account(&token, PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        config_status(&app, &app.base, &id, &secret).await,
        StatusCode::UNAUTHORIZED
    );
    until(
        "deletion seen by the other instance",
        StatusCode::UNAUTHORIZED,
        || config_status(&app, &other, &id, &secret),
    )
    .await;
}

/// A small deterministic generator (xorshift): the same seed replays the
/// same interleaving.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test]
async fn interleaved_changes_and_reads_never_leave_a_stale_answer() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let bases = [app.base.clone(), other];
    let (token, _) = app.user_with_tokens("interleaver").await;
    let mut devices = Vec::new();
    for n in 0..3 {
        let (device, secret) = app.create_device(&token, &format!("EA {n}")).await;
        devices.push((device["id"].as_str().unwrap().to_owned(), secret, true));
    }
    let seed = std::env::var("EAGATE_CACHE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_u64);
    eprintln!("interleaving seed {seed} (set EAGATE_CACHE_TEST_SEED to replay)");
    let mut rng = Rng(seed);
    for step in 0..40 {
        let d = rng.next(3) as usize;
        let through = &bases[rng.next(2) as usize];
        let (id, secret, active) = devices[d].clone();
        match rng.next(5) {
            // A publish to the device (through the first instance's owner
            // API), then reads on both instances.
            0 | 1 if active => {
                let body = json!({
                    "instrument": "EURUSD", "side": "buy", "order_type": "market",
                    "volume": 0.1, "device_ids": [id]
                });
                assert_eq!(
                    app.post_json_auth("/signals", &token, &body).await.status(),
                    StatusCode::CREATED
                );
            }
            // Acknowledge everything pending (through either instance).
            2 if active => {
                let client = eagate_client::DeviceClient::new(through, &id, &secret).unwrap();
                for signal in client.poll(Some(100), None).await.unwrap().signals {
                    client
                        .ack(&eagate_client::Ack::new(
                            &signal.id,
                            eagate_client::Outcome::Executed,
                        ))
                        .await
                        .unwrap();
                }
            }
            // Rotate without grace.
            3 if active => {
                let rotated: Value = app
                    .post_json_auth(
                        &format!("/devices/{id}/rotate-secret"),
                        &token,
                        &json!({"grace_seconds": 0}),
                    )
                    .await
                    .json()
                    .await
                    .unwrap();
                devices[d].1 = rotated["secret"].as_str().unwrap().to_owned();
            }
            4 if active && step > 20 => {
                app.post_auth(&format!("/devices/{id}/revoke"), &token).await;
                devices[d].2 = false;
            }
            _ => {}
        }
        // The truth, from the database.
        let pending = app
            .count(&format!(
                "SELECT count(*) AS n FROM signal_deliveries WHERE device_id = '{id}' \
                 AND acknowledged_at IS NULL AND cancelled_at IS NULL"
            ))
            .await as usize;
        let (_, secret, active) = devices[d].clone();
        // Every instance agrees with it once its feed has caught up (at once
        // for the instance that made the change).
        for base in &bases {
            let want = if active {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            until(&format!("step {step}: credentials on {base}"), want, || {
                config_status(&app, base, &id, &secret)
            })
            .await;
            if active {
                until(&format!("step {step}: pending on {base}"), pending, || {
                    poll_count(&app, base, &id, &secret)
                })
                .await;
            }
        }
    }
}
