//! What the signal use cases need from the outside world.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::InsertSignalError;
use super::model::{Ack, Signal, SignalId, SignalWithDeliveries};
use crate::account::UserId;
use crate::config::Adaptation;
use crate::device::DeviceId;
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};

/// A signal to store with its deliveries.
#[derive(Debug, Clone)]
pub struct NewSignal {
    pub signal: Signal,
    /// Every target device, with how its configuration adapted the signal:
    /// a skipped delivery is stored (the owner sees why) but never polled.
    pub deliveries: Vec<(DeviceId, Adaptation)>,
    /// The owner's idempotency key and a canonical description of the
    /// request, to tell a retry from a different request with the same key.
    pub idempotency: Option<(String, String)>,
}

/// How an acknowledgement went.
#[derive(Debug, Clone, PartialEq)]
pub enum AckRecord {
    /// Stored now.
    Recorded(Ack),
    /// Acknowledged before; the first acknowledgement, unchanged.
    Existing(Ack),
    /// The signal was not delivered to this device.
    NotFound,
}

/// Persistence of signals and deliveries.
pub trait SignalRepository: Send + Sync + 'static {
    /// Stores the signal and one delivery per device in one transaction,
    /// and after commit wakes long-polls of the devices it is delivered to
    /// (not skipped) on every instance, each with its adapted order. `DuplicateKey` when the owner used the idempotency key.
    fn insert(
        &self,
        new: &NewSignal,
    ) -> impl Future<Output = Result<SignalWithDeliveries, InsertSignalError>> + Send;

    /// The signal published under an idempotency key, with the request
    /// description stored beside it.
    fn find_by_idempotency_key(
        &self,
        owner: UserId,
        key: &str,
    ) -> impl Future<Output = Result<Option<(SignalWithDeliveries, String)>, UnexpectedError>> + Send;

    fn find(
        &self,
        owner: UserId,
        id: SignalId,
    ) -> impl Future<Output = Result<Option<SignalWithDeliveries>, UnexpectedError>> + Send;

    /// The owner's signals, newest first.
    fn list(
        &self,
        owner: UserId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<SignalWithDeliveries>, UnexpectedError>> + Send;

    /// Cancels the signal: deliveries not yet acknowledged become cancelled.
    /// Idempotent. `None` when the owner has no such signal.
    fn cancel(
        &self,
        owner: UserId,
        id: SignalId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SignalWithDeliveries>, UnexpectedError>> + Send;

    /// The owner's active devices.
    fn active_devices(
        &self,
        owner: UserId,
    ) -> impl Future<Output = Result<Vec<DeviceId>, UnexpectedError>> + Send;

    /// The device's unacknowledged, unexpired, uncancelled, unskipped
    /// signals, oldest first, at most `limit`, each with the order adapted
    /// for the device (its symbol and volume).
    fn pending_for_device(
        &self,
        device: DeviceId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Signal>, UnexpectedError>> + Send;

    /// Records, for each (device, signal, time), the first poll that
    /// returned the signal to the device: a delivery's time is set once and
    /// never moved; unknown deliveries are skipped. (Written in batches,
    /// from the activity buffer.)
    fn mark_delivered(
        &self,
        deliveries: &[(DeviceId, SignalId, DateTime<Utc>)],
    ) -> impl Future<Output = Result<(), UnexpectedError>> + Send;

    /// Stores the device's acknowledgement unless one exists (atomically,
    /// with the device's `last_ack_at`); returns the stored one otherwise.
    fn acknowledge(
        &self,
        device: DeviceId,
        signal: SignalId,
        ack: &Ack,
    ) -> impl Future<Output = Result<AckRecord, UnexpectedError>> + Send;
}

/// Wake-ups for long-polling devices, across instances.
pub trait SignalWakeups: Send + Sync + 'static {
    type Subscription: WakeupSubscription;

    /// Starts listening for signals published for `device`. Subscribe
    /// before checking for pending signals, so none slips between. A device
    /// has at most one subscription waiting: a newer one supersedes it.
    fn subscribe(&self, device: DeviceId) -> Self::Subscription;
}

/// Why a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Wake {
    /// These signals were published for the device since subscribing (or
    /// since the last wake-up), and nothing else is known to have happened:
    /// a device that had nothing pending now has exactly these.
    Published(Vec<Signal>),
    /// Something may have been published that the subscription cannot name
    /// (notifications were interrupted): check storage.
    Recheck,
    TimedOut,
    /// A newer poll from the same device took over: answer now.
    Superseded,
    /// The server is shutting down: answer now.
    Closing,
}

/// One device's wake-up subscription.
pub trait WakeupSubscription: Send {
    /// Resolves when signals were published for the device, after
    /// `timeout`, or at once when superseded or shutting down.
    fn wait(&mut self, timeout: std::time::Duration) -> impl Future<Output = Wake> + Send;
}
