//! Traffic while things break: owners publishing, devices long-polling and
//! acknowledging, every answer recorded, so the test can compare what
//! clients were told with what is stored.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use crate::support::{Answer, Api, Device};

/// What kind of request an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Publish,
    Poll,
    Ack,
}

/// Everything the clients were told.
#[derive(Debug, Default)]
pub struct Ledger {
    pub answers: Mutex<Vec<(Kind, Answer)>>,
    /// Idempotency keys of publishes answered 201, with the signal id.
    pub published: Mutex<Vec<(String, String)>>,
    /// Idempotency keys of every publish sent, whatever the answer.
    pub sent: Mutex<HashSet<String>>,
    /// (signal id, device id) of acks answered 200.
    pub acked: Mutex<Vec<(String, String)>>,
    /// (signal id, device id) of signals handed to a device by a poll.
    pub received: Mutex<Vec<(String, String)>>,
}

impl Ledger {
    pub fn count(&self, kind: Kind, wanted: impl Fn(&Answer) -> bool) -> usize {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, a)| *k == kind && wanted(a))
            .count()
    }

    pub fn answers(&self) -> Vec<(Kind, Answer)> {
        self.answers.lock().unwrap().clone()
    }

    fn record(&self, kind: Kind, answer: &Answer) {
        self.answers.lock().unwrap().push((kind, answer.clone()));
    }
}

/// Running traffic; [`Traffic::stop`] ends it and waits for every request
/// in flight.
#[derive(Debug)]
pub struct Traffic {
    pub ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

/// After an error answer a client waits this long before the next request
/// (shorter than the advised `Retry-After`, to sample the outage densely).
const PAUSE_AFTER_ERROR: Duration = Duration::from_millis(50);

impl Traffic {
    /// `publishers` loops publishing to every device of `token`'s owner, at
    /// most one publish per `publish_every` each; one loop per device that
    /// long-polls with `wait` seconds and acknowledges what it receives.
    pub fn start(
        api: &Api,
        token: &str,
        devices: &[Device],
        publishers: usize,
        publish_every: Duration,
        wait: u32,
    ) -> Self {
        let ledger = Arc::new(Ledger::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for _ in 0..publishers {
            let (api, token, ledger, stop) = (
                api.clone(),
                token.to_owned(),
                Arc::clone(&ledger),
                Arc::clone(&stop),
            );
            tasks.spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let key = uuid::Uuid::new_v4().to_string();
                    ledger.sent.lock().unwrap().insert(key.clone());
                    let answer = api.publish(&token, &key).await;
                    ledger.record(Kind::Publish, &answer);
                    if answer.is(201) {
                        let id = answer.body["id"].as_str().unwrap().to_owned();
                        ledger.published.lock().unwrap().push((key, id));
                        tokio::time::sleep(publish_every).await;
                    } else {
                        tokio::time::sleep(PAUSE_AFTER_ERROR).await;
                    }
                }
            });
        }
        for device in devices {
            let (api, device, ledger, stop) = (
                api.clone(),
                device.clone(),
                Arc::clone(&ledger),
                Arc::clone(&stop),
            );
            tasks.spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let polled = api.poll(&device, wait).await;
                    ledger.record(Kind::Poll, &polled);
                    if !polled.is(200) {
                        tokio::time::sleep(PAUSE_AFTER_ERROR).await;
                        continue;
                    }
                    let ids: Vec<String> = polled.body["signals"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s["id"].as_str().unwrap().to_owned())
                        .collect();
                    ledger
                        .received
                        .lock()
                        .unwrap()
                        .extend(ids.iter().map(|id| (id.clone(), device.id.clone())));
                    for id in ids {
                        let acked = api.ack(&device, &id).await;
                        ledger.record(Kind::Ack, &acked);
                        if acked.is(200) {
                            ledger.acked.lock().unwrap().push((id, device.id.clone()));
                        } else {
                            // The signal comes back with the next poll.
                            tokio::time::sleep(PAUSE_AFTER_ERROR).await;
                            break;
                        }
                    }
                }
            });
        }
        Self { ledger, stop, tasks }
    }

    pub async fn stop(mut self) -> Arc<Ledger> {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(done) = self.tasks.join_next().await {
            done.unwrap();
        }
        self.ledger
    }
}
