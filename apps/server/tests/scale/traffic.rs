//! Continuous client traffic for the restart and failover tests: devices
//! that poll (1 s long-polls), acknowledge what they get and send
//! heartbeats, and an owner publishing to all of them; every answer
//! recorded, then checked against the database.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use serde_json::json;

use crate::support::*;

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub answers: AtomicU64,
    /// Every answer that was not a success: what was asked, the answer.
    pub failures: Mutex<Vec<(String, Answer)>>,
    /// When each success was answered.
    pub successes: Mutex<Vec<Instant>>,
    /// Publishes answered 201: their ids.
    pub published: Mutex<BTreeSet<String>>,
    /// Acks answered 200: (signal, device).
    pub acked: Mutex<BTreeSet<(String, String)>>,
}

impl Seen {
    /// Records `answer`; whether it was a success.
    pub fn record(&self, what: &str, answer: &Answer) -> bool {
        self.answers.fetch_add(1, Ordering::Relaxed);
        let ok = answer.status.is_some_and(|s| (200..300).contains(&s));
        if ok {
            self.successes.lock().unwrap().push(Instant::now());
        } else {
            self.failures
                .lock()
                .unwrap()
                .push((what.to_owned(), answer.clone()));
        }
        ok
    }

    pub fn failures(&self) -> Vec<(String, Answer)> {
        self.failures.lock().unwrap().clone()
    }
}

pub fn signal_ids(answer: &Answer) -> Vec<String> {
    answer.body["signals"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The clients, running until [`Traffic::stop`].
pub struct Traffic {
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    pub fn start(api: &Api, token: &str, devices: &[Device]) -> Self {
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for device in devices {
            tasks.push(tokio::spawn(device_loop(
                api.clone(),
                device.clone(),
                Arc::clone(&seen),
                Arc::clone(&stop),
            )));
        }
        tasks.push(tokio::spawn(publisher(
            api.clone(),
            token.to_owned(),
            Arc::clone(&seen),
            Arc::clone(&stop),
        )));
        Self { seen, stop, tasks }
    }

    pub async fn stop(self) -> Arc<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        self.seen
    }
}

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
        } else {
            // As the SDKs do after a failure: a short pause, then again.
            tokio::time::sleep(Duration::from_millis(50)).await;
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
        let answer = api.publish(&token, &format!("traffic-{n}")).await;
        if seen.record("publish", &answer) {
            seen.published
                .lock()
                .unwrap()
                .insert(answer.body["id"].as_str().unwrap().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every device takes and acknowledges what is left for it.
pub async fn drain(api: &Api, devices: &[Device], seen: &Seen) {
    for device in devices {
        loop {
            let polled = api.poll(device, 0).await;
            assert!(seen.record("drain poll", &polled), "{}", polled.describe());
            let ids = signal_ids(&polled);
            if ids.is_empty() {
                break;
            }
            for id in ids {
                let acked = api.ack(device, &id).await;
                assert!(seen.record("drain ack", &acked), "{}", acked.describe());
                seen.acked.lock().unwrap().insert((id, device.id.clone()));
            }
        }
    }
}

/// Nothing acknowledged to a client is missing: every publish answered 201
/// is stored with a delivery per device, every ack answered 200 is
/// stored, and (after [`drain`]) every delivery was acknowledged.
pub async fn nothing_lost(conn: &mut AsyncPgConnection, seen: &Seen, devices: usize) {
    let published = seen.published.lock().unwrap().clone();
    let acked = seen.acked.lock().unwrap().clone();
    let stored = stored_signals(conn).await;
    for id in &published {
        let signal = stored
            .iter()
            .find(|s| &s.id == id)
            .unwrap_or_else(|| panic!("published signal {id} is not stored"));
        assert_eq!(
            signal.deliveries, devices as i64,
            "signal {id} has a delivery per device"
        );
    }
    let stored_acks: BTreeSet<(String, String)> = stored_acks(conn)
        .await
        .into_iter()
        .map(|a| (a.signal_id, a.device_id))
        .collect();
    let lost: Vec<_> = acked.difference(&stored_acks).collect();
    assert!(lost.is_empty(), "acknowledged acks missing: {lost:?}");
    assert_eq!(
        stored_acks.len(),
        published.len() * devices,
        "every delivery of every published signal was handed over and acknowledged"
    );
}
