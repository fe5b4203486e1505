//! Cross-instance wake-ups for long-polling devices, over PostgreSQL
//! `LISTEN`/`NOTIFY`.
//!
//! Publishing sends `NOTIFY eagate_deliveries, '<device>,<device>,…'` inside
//! its transaction, so the notification goes out on commit. Each server
//! instance holds one listening connection; a notification wakes the
//! long-polls of those devices waiting on that instance. Waiting costs one
//! small map entry per device. If the listening connection drops, waiters
//! are woken to re-check, and the use case re-checks storage every couple of
//! seconds anyway, so a lost notification only delays delivery.
//!
//! [`PgSignalWakeups::ready`] resolves once the listening connection is up
//! (and the wake-everyone of connecting is done), so callers that must not
//! miss a notification — tests, above all — wait for it instead of sleeping.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use eagate_domain::device::DeviceId;
use eagate_domain::signal::{SignalWakeups, Wake, WakeupSubscription};
use futures_util::StreamExt as _;
use tokio::sync::watch;
use uuid::Uuid;

/// The notification channel.
pub const CHANNEL: &str = "eagate_deliveries";

/// Device ids per notification (a payload must stay under 8000 bytes).
const IDS_PER_NOTIFICATION: usize = 200;

/// The payloads announcing new signals for `devices`.
pub(crate) fn notification_payloads(devices: &[DeviceId]) -> Vec<String> {
    devices
        .chunks(IDS_PER_NOTIFICATION)
        .map(|chunk| {
            chunk
                .iter()
                .map(|d| d.as_uuid().simple().to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[derive(Debug, Default)]
struct Hub {
    waiters: Mutex<HashMap<DeviceId, watch::Sender<u64>>>,
    closing: std::sync::atomic::AtomicBool,
    /// Whether the listening connection is up.
    connected: watch::Sender<bool>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<DeviceId, watch::Sender<u64>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self, device: DeviceId) {
        if let Some(tx) = self.lock().get(&device) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn wake_all(&self) {
        for tx in self.lock().values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// [`SignalWakeups`] fed by a `LISTEN` connection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgSignalWakeups {
    hub: Arc<Hub>,
}

impl PgSignalWakeups {
    /// Starts listening on `database_url` in a background task that
    /// reconnects forever. Must be called inside a tokio runtime.
    pub fn start(database_url: String) -> Self {
        let hub = Arc::new(Hub::default());
        tokio::spawn(listen(database_url, Arc::clone(&hub)));
        Self { hub }
    }

    /// Resolves once the listening connection is up: a signal committed
    /// after this wakes its device's subscriptions. Connecting wakes every
    /// waiter once (to re-check what was published meanwhile); that has
    /// happened by the time this resolves. Waits as long as it takes (the
    /// listener reconnects forever): bound it with a timeout.
    pub async fn ready(&self) {
        let mut connected = self.hub.connected.subscribe();
        // The sender lives in the hub we hold, so this cannot fail.
        let _ = connected.wait_for(|up| *up).await;
    }

    /// Whether the listening connection is up right now.
    pub fn is_connected(&self) -> bool {
        *self.hub.connected.borrow()
    }

    /// Devices with a long-poll waiting on this instance.
    pub fn waiting(&self) -> usize {
        self.hub.lock().len()
    }

    /// Ends every wait now and every later one at once: the server is
    /// shutting down and long-polls should answer.
    pub fn shutdown(&self) {
        self.hub.closing.store(true, std::sync::atomic::Ordering::SeqCst);
        self.hub.wake_all();
    }
}

async fn listen(url: String, hub: Arc<Hub>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match AsyncPgConnection::establish(&url).await {
            Ok(mut conn) => match diesel::sql_query(format!("LISTEN {CHANNEL}"))
                .execute(&mut conn)
                .await
            {
                Ok(_) => {
                    tracing::info!("listening for signal notifications");
                    backoff = Duration::from_millis(250);
                    // Anything published while we were away: re-check now.
                    hub.wake_all();
                    hub.connected.send_replace(true);
                    let mut stream = pin!(conn.notifications_stream());
                    while let Some(notification) = stream.next().await {
                        match notification {
                            Ok(n) => {
                                for id in n.payload.split(',').filter_map(|s| Uuid::try_parse(s).ok()) {
                                    hub.wake(DeviceId::from_uuid(id));
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "signal notification stream failed");
                                break;
                            }
                        }
                    }
                    hub.connected.send_replace(false);
                    tracing::warn!("signal notification connection closed; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect for signal notifications; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One waiting device's subscription; unregisters itself when dropped.
#[derive(Debug)]
pub struct PgWakeupSubscription {
    hub: Arc<Hub>,
    device: DeviceId,
    rx: watch::Receiver<u64>,
}

impl SignalWakeups for PgSignalWakeups {
    type Subscription = PgWakeupSubscription;

    fn subscribe(&self, device: DeviceId) -> PgWakeupSubscription {
        let rx = self
            .hub
            .lock()
            .entry(device)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        PgWakeupSubscription {
            hub: Arc::clone(&self.hub),
            device,
            rx,
        }
    }
}

impl WakeupSubscription for PgWakeupSubscription {
    async fn wait(&mut self, timeout: Duration) -> Wake {
        let hub = Arc::clone(&self.hub);
        let closing =
            || std::sync::atomic::AtomicBool::load(&hub.closing, std::sync::atomic::Ordering::SeqCst);
        if closing() {
            return Wake::Closing;
        }
        let woken = tokio::time::timeout(timeout, self.rx.changed()).await;
        match woken {
            _ if closing() => Wake::Closing,
            Ok(_) => Wake::Notified,
            Err(_) => Wake::TimedOut,
        }
    }
}

impl Drop for PgWakeupSubscription {
    fn drop(&mut self) {
        let mut waiters = self.hub.lock();
        // Ours is the last receiver: nobody else waits for this device.
        if waiters
            .get(&self.device)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            waiters.remove(&self.device);
        }
    }
}
