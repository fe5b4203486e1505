//! A rolling restart (SIGTERM A, start A again, then the same for B) under
//! continuous signed device traffic and publishes through nginx: no client
//! sees a failed request, and every acknowledged publish and ack is in the
//! database afterwards.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::stack::*;
use crate::support::*;

const DEVICES: usize = 6;

/// What the clients saw.
#[derive(Debug, Default)]
struct Seen {
    answers: AtomicU64,
    failures: Mutex<Vec<String>>,
    /// Publishes answered 201: their ids.
    published: Mutex<BTreeSet<String>>,
    /// Acks answered 200: (signal, device).
    acked: Mutex<BTreeSet<(String, String)>>,
}

impl Seen {
    /// Records `answer`; whether it was a success.
    fn record(&self, what: &str, answer: &Answer) -> bool {
        self.answers.fetch_add(1, Ordering::Relaxed);
        let ok = answer.status.is_some_and(|s| (200..300).contains(&s));
        if !ok {
            self.failures
                .lock()
                .unwrap()
                .push(format!("{what}: {}", answer.describe()));
        }
        ok
    }
}

fn signal_ids(answer: &Answer) -> Vec<String> {
    answer.body["signals"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls (long-polls of 1 s), acknowledges what it gets, sends a heartbeat;
/// until `stop`.
async fn device_loop(api: Api, device: Device, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let polled = api.poll(&device, 1).await;
        if seen.record("poll", &polled) {
            for id in signal_ids(&polled) {
                let acked = api.ack(&device, &id).await;
                if seen.record("ack", &acked) {
                    seen.acked.lock().unwrap().insert((id, device.id.clone()));
                }
            }
        }
        let beat = api
            .signed(
                &device,
                reqwest::Method::POST,
                "/api/v1/device/heartbeat",
                Some(&json!({})),
            )
            .await;
        seen.record("heartbeat", &beat);
    }
}

async fn publisher(api: Api, token: String, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let answer = api.publish(&token, &format!("rolling-{n}")).await;
        if seen.record("publish", &answer) {
            seen.published
                .lock()
                .unwrap()
                .insert(answer.body["id"].as_str().unwrap().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nginx: run by `just scale-test` (scripts/scale-test.sh)"]
async fn a_rolling_restart_under_signed_traffic_fails_no_request_and_loses_no_signal() {
    let mut stack = Stack::start(|d| d).await;
    let lb = stack.lb();
    let token = lb.owner("roller").await;
    let mut devices = Vec::new();
    for n in 0..DEVICES {
        devices.push(lb.device(&token, &format!("EA {n}")).await);
    }
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for device in &devices {
        tasks.push(tokio::spawn(device_loop(
            lb.clone(),
            device.clone(),
            Arc::clone(&seen),
            Arc::clone(&stop),
        )));
    }
    tasks.push(tokio::spawn(publisher(
        lb.clone(),
        token.clone(),
        Arc::clone(&seen),
        Arc::clone(&stop),
    )));

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = seen.answers.load(Ordering::Relaxed);
    let away_a = stack.rolling_restart(0).await;
    let away_b = stack.rolling_restart(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = seen.answers.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    // Drain: every device takes and acknowledges what is left.
    for device in &devices {
        loop {
            let polled = lb.poll(device, 0).await;
            assert!(seen.record("drain poll", &polled));
            let ids = signal_ids(&polled);
            if ids.is_empty() {
                break;
            }
            for id in ids {
                let acked = lb.ack(device, &id).await;
                if seen.record("drain ack", &acked) {
                    seen.acked.lock().unwrap().insert((id, device.id.clone()));
                }
            }
        }
    }

    let failures = seen.failures.lock().unwrap().clone();
    let published = seen.published.lock().unwrap().clone();
    let acked = seen.acked.lock().unwrap().clone();
    eprintln!(
        "scale: rolling restart: A away {}, B away {}; {} answers during the restarts, {} in all, \
         {} failed; {} signals published, {} acks",
        secs(away_a),
        secs(away_b),
        during,
        seen.answers.load(Ordering::Relaxed),
        failures.len(),
        published.len(),
        acked.len()
    );
    assert!(
        failures.is_empty(),
        "clients saw {} failures, the first: {:#?}\nnginx's error log:\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        stack.nginx.error_log()
    );
    assert!(during > 100, "traffic ran during the restarts: {during} answers");
    assert!(published.len() > 10, "publishes ran: {}", published.len());

    let mut conn = stack.pg.connect("eagate").await;
    let stored = stored_signals(&mut conn).await;
    for id in &published {
        let signal = stored
            .iter()
            .find(|s| &s.id == id)
            .unwrap_or_else(|| panic!("published signal {id} is not stored"));
        assert_eq!(
            signal.deliveries, DEVICES as i64,
            "signal {id} has a delivery per device"
        );
    }
    let stored_acks: BTreeSet<(String, String)> = stored_acks(&mut conn)
        .await
        .into_iter()
        .map(|a| (a.signal_id, a.device_id))
        .collect();
    let lost: Vec<_> = acked.difference(&stored_acks).collect();
    assert!(lost.is_empty(), "acknowledged acks missing: {lost:?}");
    // Every published signal reached every device and was acknowledged.
    assert_eq!(
        stored_acks.len(),
        published.len() * DEVICES,
        "every delivery of every published signal was handed over and acknowledged"
    );
    assert_eq!(stored_acks, acked);
}
