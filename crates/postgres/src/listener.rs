//! The change feed: one PostgreSQL `LISTEN` connection per instance that
//! keeps the instance's device cache true and wakes its long-polls.
//!
//! - `eagate_changes` carries `d:<device>` from triggers on `devices` (see
//!   the migration `device_change_notifications`): the cache forgets that
//!   device's credentials.
//! - `eagate_deliveries` carries each published signal with its target
//!   devices, sent inside the publishing transaction (so only on commit):
//!   the cache forgets those devices' idleness, and a long-poll waiting here
//!   is handed the signal itself, so it answers without a query.
//!
//! While the connection is down nothing can be trusted: the cache is not
//! live (every lookup goes to the database), waiting polls re-check, and on
//! reconnect both start afresh. [`PgSignalWakeups::ready`] resolves once
//! the connection is up.

use foldhash::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};
use eagate_domain::cache::{Change, DeviceStateCache};
use eagate_domain::device::DeviceId;
use eagate_domain::signal::{Signal, SignalWakeups, Wake, WakeupSubscription};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::rows::SignalRow;

/// Published signals and their targets.
pub const DELIVERIES_CHANNEL: &str = "eagate_deliveries";
/// Device changes that make cached credentials stale.
pub const CHANGES_CHANNEL: &str = "eagate_changes";

/// Device ids per notification: with the signal (about 1.5 KB at most)
/// a payload stays well under PostgreSQL's 8000 bytes.
const IDS_PER_NOTIFICATION: usize = 150;

/// Signals a waiting poll collects before it is told to re-check instead.
const MAILBOX_CAPACITY: usize = 100;

/// A signal as notified (the row's fields).
#[derive(Debug, Serialize, Deserialize)]
struct NotifiedSignal {
    id: Uuid,
    owner_id: Uuid,
    instrument: String,
    side: String,
    order_type: String,
    #[serde(default = "open")]
    action: String,
    volume: f64,
    entry_price: Option<f64>,
    stop_loss: Option<f64>,
    take_profit: Option<f64>,
    comment: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

fn open() -> String {
    "open".to_owned()
}

impl From<&Signal> for NotifiedSignal {
    fn from(s: &Signal) -> Self {
        Self {
            id: s.id.as_uuid(),
            owner_id: s.owner.as_uuid(),
            instrument: s.order.instrument.as_str().to_owned(),
            side: s.order.side.as_str().to_owned(),
            order_type: s.order.order_type.as_str().to_owned(),
            action: s.order.action.as_str().to_owned(),
            volume: s.order.volume,
            entry_price: s.order.entry_price,
            stop_loss: s.order.stop_loss,
            take_profit: s.order.take_profit,
            comment: s.order.comment.clone(),
            expires_at: s.expires_at,
            created_at: s.created_at,
        }
    }
}

impl NotifiedSignal {
    fn into_signal(self) -> Option<Signal> {
        Signal::try_from(SignalRow {
            id: self.id,
            owner_id: self.owner_id,
            instrument: self.instrument,
            side: self.side,
            order_type: self.order_type,
            volume: self.volume,
            entry_price: self.entry_price,
            stop_loss: self.stop_loss,
            take_profit: self.take_profit,
            comment: self.comment,
            expires_at: self.expires_at,
            created_at: self.created_at,
            cancelled_at: None,
            action: self.action,
        })
        .ok()
    }
}

/// The payloads announcing `signal` to `devices`: the signal as JSON, a
/// newline (JSON escapes its own), then comma-separated device ids.
pub(crate) fn notification_payloads(signal: &Signal, devices: &[DeviceId]) -> Vec<String> {
    let json = serde_json::to_string(&NotifiedSignal::from(signal)).unwrap_or_default();
    devices
        .chunks(IDS_PER_NOTIFICATION)
        .map(|chunk| {
            let mut payload = String::with_capacity(json.len() + 1 + chunk.len() * 33);
            payload.push_str(&json);
            payload.push('\n');
            for (i, d) in chunk.iter().enumerate() {
                if i > 0 {
                    payload.push(',');
                }
                payload.push_str(&d.as_uuid().simple().to_string());
            }
            payload
        })
        .collect()
}

/// A delivery notification: the signal (if it could be read) and its
/// targets.
fn parse_delivery(payload: &str) -> (Option<Signal>, Vec<DeviceId>) {
    let (json, ids) = payload.split_once('\n').unwrap_or(("", payload));
    let signal = serde_json::from_str::<NotifiedSignal>(json)
        .ok()
        .and_then(NotifiedSignal::into_signal);
    let devices = ids
        .split(',')
        .filter_map(|s| Uuid::try_parse(s).ok())
        .map(DeviceId::from_uuid)
        .collect();
    (signal, devices)
}

/// One device's waiting poll.
#[derive(Debug)]
struct Waiter {
    generation: u64,
    mailbox: Vec<Signal>,
    recheck: bool,
    notify: Arc<Notify>,
}

struct Hub {
    waiters: Mutex<HashMap<DeviceId, Waiter>>,
    generations: AtomicU64,
    closing: AtomicBool,
    connected: watch::Sender<bool>,
    cache: Arc<dyn DeviceStateCache>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("waiting", &self.lock().len())
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<DeviceId, Waiter>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, device: DeviceId, signal: Option<&Signal>) {
        if let Some(w) = self.lock().get_mut(&device) {
            match signal {
                Some(s) if !w.recheck && w.mailbox.len() < MAILBOX_CAPACITY => w.mailbox.push(s.clone()),
                _ => {
                    w.mailbox.clear();
                    w.recheck = true;
                }
            }
            w.notify.notify_one();
        }
    }

    fn recheck_all(&self) {
        for w in self.lock().values_mut() {
            w.mailbox.clear();
            w.recheck = true;
            w.notify.notify_one();
        }
    }

    fn set_connected(&self, up: bool) {
        // The cache starts afresh either way; waiters re-check what may have
        // been missed.
        self.cache.set_live(up);
        self.recheck_all();
        self.connected.send_replace(up);
    }
}

/// [`SignalWakeups`] fed by the change feed, which also keeps the device
/// cache true. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgSignalWakeups {
    hub: Arc<Hub>,
}

impl PgSignalWakeups {
    /// Starts the change feed on `database_url` in a background task that
    /// reconnects forever, keeping `cache` true (and not live while
    /// disconnected). Must be called inside a tokio runtime.
    pub fn start(database_url: String, cache: Arc<dyn DeviceStateCache>) -> Self {
        let (connected, _) = watch::channel(false);
        let hub = Arc::new(Hub {
            waiters: Mutex::default(),
            generations: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            connected,
            cache,
        });
        tokio::spawn(listen(database_url, Arc::clone(&hub)));
        Self { hub }
    }

    /// Resolves once the listening connection is up: a change committed
    /// after this reaches the cache and the waiting polls. Waits as long as
    /// it takes (the feed reconnects forever): bound it with a timeout.
    pub async fn ready(&self) {
        let mut connected = self.hub.connected.subscribe();
        // The sender lives in the hub we hold, so this cannot fail.
        let _ = connected.wait_for(|up| *up).await;
    }

    /// Whether the listening connection is up right now.
    pub fn is_connected(&self) -> bool {
        *self.hub.connected.borrow()
    }

    /// Long-polls waiting on this instance (one per device at most).
    pub fn waiting(&self) -> usize {
        self.hub.lock().len()
    }

    /// Ends every wait now and every later one at once: the server is
    /// shutting down and long-polls should answer.
    pub fn shutdown(&self) {
        self.hub.closing.store(true, Ordering::SeqCst);
        for w in self.hub.lock().values() {
            w.notify.notify_one();
        }
    }
}

async fn listen(url: String, hub: Arc<Hub>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match AsyncPgConnection::establish(&url).await {
            Ok(mut conn) => {
                let listening = conn
                    .batch_execute(&format!("LISTEN {DELIVERIES_CHANNEL}; LISTEN {CHANGES_CHANNEL}"))
                    .await;
                match listening {
                    Ok(_) => {
                        tracing::info!("change feed connected");
                        backoff = Duration::from_millis(250);
                        hub.set_connected(true);
                        let mut stream = pin!(conn.notifications_stream());
                        while let Some(notification) = stream.next().await {
                            match notification {
                                Ok(n) if n.channel == CHANGES_CHANNEL => {
                                    if let Some(id) =
                                        n.payload.strip_prefix("d:").and_then(|s| Uuid::try_parse(s).ok())
                                    {
                                        hub.cache.apply(Change::Device(DeviceId::from_uuid(id)));
                                    }
                                }
                                Ok(n) => {
                                    let (signal, devices) = parse_delivery(&n.payload);
                                    for device in devices {
                                        // Forget idleness before handing the signal to a
                                        // waiting poll (see `SignalService::poll`).
                                        hub.cache.apply(Change::Published(device));
                                        hub.deliver(device, signal.as_ref());
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "change feed failed");
                                    break;
                                }
                            }
                        }
                        hub.set_connected(false);
                        tracing::warn!(
                            "change feed disconnected; the device cache is bypassed until it is back"
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect the change feed; retrying"),
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
    generation: u64,
    notify: Arc<Notify>,
}

impl SignalWakeups for PgSignalWakeups {
    type Subscription = PgWakeupSubscription;

    fn subscribe(&self, device: DeviceId) -> PgWakeupSubscription {
        let generation = self.hub.generations.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let replaced = self.hub.lock().insert(
            device,
            Waiter {
                generation,
                mailbox: Vec::new(),
                recheck: false,
                notify: Arc::clone(&notify),
            },
        );
        // The older poll of this device answers now.
        if let Some(older) = replaced {
            older.notify.notify_one();
        }
        PgWakeupSubscription {
            hub: Arc::clone(&self.hub),
            device,
            generation,
            notify,
        }
    }
}

impl PgWakeupSubscription {
    /// What has happened, if anything.
    fn news(&self) -> Option<Wake> {
        if self.hub.closing.load(Ordering::SeqCst) {
            return Some(Wake::Closing);
        }
        let mut waiters = self.hub.lock();
        match waiters.get_mut(&self.device) {
            Some(w) if w.generation == self.generation => {
                if w.recheck {
                    w.recheck = false;
                    w.mailbox.clear();
                    Some(Wake::Recheck)
                } else if w.mailbox.is_empty() {
                    None
                } else {
                    Some(Wake::Published(std::mem::take(&mut w.mailbox)))
                }
            }
            _ => Some(Wake::Superseded),
        }
    }
}

impl WakeupSubscription for PgWakeupSubscription {
    async fn wait(&mut self, timeout: Duration) -> Wake {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(wake) = self.news() {
                return wake;
            }
            // A notification sent since `news` looked is kept as a permit.
            if tokio::time::timeout_at(deadline, self.notify.notified())
                .await
                .is_err()
            {
                return self.news().unwrap_or(Wake::TimedOut);
            }
        }
    }
}

impl Drop for PgWakeupSubscription {
    fn drop(&mut self) {
        let mut waiters = self.hub.lock();
        if waiters
            .get(&self.device)
            .is_some_and(|w| w.generation == self.generation)
        {
            waiters.remove(&self.device);
        }
    }
}

#[cfg(test)]
mod tests {
    use eagate_domain::account::UserId;
    use eagate_domain::signal::{Instrument, Order, OrderType, Side, SignalId};

    use super::*;

    fn signal(comment: Option<&str>) -> Signal {
        Signal {
            id: SignalId::from_uuid(Uuid::now_v7()),
            owner: UserId::from_uuid(Uuid::now_v7()),
            order: Order {
                instrument: Instrument::from_trusted("XAUUSD".into()),
                side: Side::parse("sell").unwrap(),
                order_type: OrderType::parse("limit").unwrap(),
                action: eagate_domain::signal::Action::Close,
                volume: 0.25,
                entry_price: Some(2400.5),
                stop_loss: Some(2410.0),
                take_profit: None,
                comment: comment.map(str::to_owned),
            },
            expires_at: Some(Utc::now()),
            created_at: Utc::now(),
            cancelled_at: None,
        }
    }

    #[test]
    fn a_delivery_payload_round_trips_and_fits_a_notification() {
        let s = signal(Some(&"é\n\"|,".repeat(64)));
        let devices: Vec<DeviceId> = (0..1000).map(|_| DeviceId::from_uuid(Uuid::now_v7())).collect();
        let payloads = notification_payloads(&s, &devices);
        assert_eq!(payloads.len(), 1000usize.div_ceil(IDS_PER_NOTIFICATION));
        let mut seen = Vec::new();
        for p in &payloads {
            assert!(
                p.len() < 8000,
                "a payload must fit PostgreSQL's limit: {}",
                p.len()
            );
            let (got, ids) = parse_delivery(p);
            let got = got.expect("the signal is readable");
            assert_eq!(got.id, s.id);
            assert_eq!(got.order.comment, s.order.comment);
            assert_eq!(got.order.entry_price, Some(2400.5));
            assert_eq!(
                got.expires_at.map(|t| t.timestamp_micros()),
                s.expires_at.map(|t| t.timestamp_micros())
            );
            seen.extend(ids);
        }
        assert_eq!(seen, devices);
    }

    #[test]
    fn an_unreadable_signal_still_names_its_devices() {
        let d = DeviceId::from_uuid(Uuid::now_v7());
        let (signal, devices) = parse_delivery(&format!("{{not json\n{}", d.as_uuid().simple()));
        assert!(signal.is_none());
        assert_eq!(devices, [d]);
    }
}
