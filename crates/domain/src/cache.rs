//! The device hot path answered from memory: a per-instance cache of what
//! authenticating and polling read (a device's credentials, and that it has
//! nothing pending), kept true by change notifications.
//!
//! The rules, which [`CachedDevices`], [`CachedSignals`] and
//! [`CachedAccounts`] apply to any repository:
//! - a change made through this instance is applied to its cache before the
//!   use case returns (revocation and rotation take effect at once here);
//! - changes made elsewhere (another instance, a migration, an operator) reach
//!   the cache through [`DeviceStateCache::apply`], fed by the database's
//!   change notifications;
//! - a value read from storage is kept only if nothing changed the device
//!   while it was being read (a [`Ticket`] taken before the read);
//! - while notifications may be missed, the cache is not live: it keeps
//!   nothing and every lookup goes to storage.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::account::{
    AccountRepository, CreateUserError, NewUser, PasswordHash, User, UserCredentials, UserId,
};
use crate::audit::AuditEvent;
use crate::device::{
    Device, DeviceCredentials, DeviceId, DeviceName, DeviceRepository, DeviceStatus, InsertDeviceError,
    NewDevice, Revocation, SealedSecret, SecretRotation, StoredSecrets, UpdateDeviceError,
};
use crate::error::UnexpectedError;
use crate::pagination::{Page, PageRequest};
use crate::signal::{
    AckRecord, InsertSignalError, NewSignal, Signal, SignalId, SignalRepository, SignalWithDeliveries,
};

/// Permission to store what is about to be read from storage for a device:
/// it is refused if the device changed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    device: DeviceId,
    epoch: u64,
}

impl Ticket {
    /// For cache implementations: `epoch` is whatever the implementation
    /// needs to tell whether a change happened since the ticket was issued.
    pub fn new(device: DeviceId, epoch: u64) -> Self {
        Self { device, epoch }
    }

    pub fn device(&self) -> DeviceId {
        self.device
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// The result of a cache lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    /// Known, and true as of the last change notification.
    Hit(T),
    /// Not known: read storage, then fill with this ticket.
    Miss(Ticket),
}

/// A change that makes cached state stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The device was created, deleted, or its credentials, status or name
    /// changed.
    Device(DeviceId),
    /// Signals were published for the device.
    Published(DeviceId),
    /// Anything may have changed (an account was deleted).
    Everything,
}

/// A per-instance cache of device state, implemented in memory by an adapter
/// and fed with [`Change`]s by the change-notification adapter.
///
/// Contract (see `testing::contracts::cache`):
/// - a lookup after `fill_*` with a ticket from a miss is a hit, until a
///   [`Change`] for the device (or `Everything`) is applied, or the entry
///   outlives the implementation's maximum age;
/// - `fill_*` with a ticket issued before a change for that device does
///   nothing;
/// - while not live (`set_live(false)`), every lookup misses and fills are
///   ignored; `set_live` in either direction forgets everything.
pub trait DeviceStateCache: Send + Sync + 'static {
    /// The device's credentials; `Hit(None)`: known not to exist.
    fn credentials(&self, device: DeviceId) -> Lookup<Option<Arc<DeviceCredentials>>>;

    fn fill_credentials(&self, ticket: Ticket, credentials: Option<Arc<DeviceCredentials>>);

    /// `Hit(())` when the device is known to have nothing pending.
    fn idle(&self, device: DeviceId) -> Lookup<()>;

    fn fill_idle(&self, ticket: Ticket);

    fn apply(&self, change: Change);

    /// Whether changes are being received. Not live: nothing is cached.
    fn set_live(&self, live: bool);
}

/// A cache that never knows anything: every lookup goes to storage.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl DeviceStateCache for NoCache {
    fn credentials(&self, device: DeviceId) -> Lookup<Option<Arc<DeviceCredentials>>> {
        Lookup::Miss(Ticket::new(device, 0))
    }

    fn fill_credentials(&self, _ticket: Ticket, _credentials: Option<Arc<DeviceCredentials>>) {}

    fn idle(&self, device: DeviceId) -> Lookup<()> {
        Lookup::Miss(Ticket::new(device, 0))
    }

    fn fill_idle(&self, _ticket: Ticket) {}

    fn apply(&self, _change: Change) {}

    fn set_live(&self, _live: bool) {}
}

impl<T: DeviceStateCache + ?Sized> DeviceStateCache for Arc<T> {
    fn credentials(&self, device: DeviceId) -> Lookup<Option<Arc<DeviceCredentials>>> {
        (**self).credentials(device)
    }

    fn fill_credentials(&self, ticket: Ticket, credentials: Option<Arc<DeviceCredentials>>) {
        (**self).fill_credentials(ticket, credentials);
    }

    fn idle(&self, device: DeviceId) -> Lookup<()> {
        (**self).idle(device)
    }

    fn fill_idle(&self, ticket: Ticket) {
        (**self).fill_idle(ticket);
    }

    fn apply(&self, change: Change) {
        (**self).apply(change);
    }

    fn set_live(&self, live: bool) {
        (**self).set_live(live);
    }
}

/// A [`DeviceRepository`] whose credential lookups are cached; every change
/// through it is applied to the cache before it returns (whatever the
/// outcome: a failure may still have committed).
#[derive(Debug, Clone)]
pub struct CachedDevices<R, C> {
    inner: R,
    cache: C,
}

impl<R, C> CachedDevices<R, C> {
    pub fn new(inner: R, cache: C) -> Self {
        Self { inner, cache }
    }
}

impl<R: DeviceRepository, C: DeviceStateCache> DeviceRepository for CachedDevices<R, C> {
    async fn insert(
        &self,
        device: &NewDevice,
        max_active: u32,
        audit: &AuditEvent,
    ) -> Result<Device, InsertDeviceError> {
        let result = self.inner.insert(device, max_active, audit).await;
        self.cache.apply(Change::Device(device.id));
        result
    }

    async fn find(&self, owner: UserId, id: DeviceId) -> Result<Option<Device>, UnexpectedError> {
        self.inner.find(owner, id).await
    }

    async fn list(
        &self,
        owner: UserId,
        status: Option<DeviceStatus>,
        page: &PageRequest,
    ) -> Result<Page<Device>, UnexpectedError> {
        self.inner.list(owner, status, page).await
    }

    async fn rename(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &DeviceName,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Device, UpdateDeviceError> {
        let result = self.inner.rename(owner, id, name, at, audit).await;
        self.cache.apply(Change::Device(id));
        result
    }

    async fn rotate_secret(
        &self,
        owner: UserId,
        id: DeviceId,
        rotation: &SecretRotation,
        audit: &AuditEvent,
    ) -> Result<Device, UpdateDeviceError> {
        let result = self.inner.rotate_secret(owner, id, rotation, audit).await;
        self.cache.apply(Change::Device(id));
        result
    }

    async fn revoke(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Revocation, UpdateDeviceError> {
        let result = self.inner.revoke(owner, id, at, audit).await;
        self.cache.apply(Change::Device(id));
        result
    }

    async fn find_credentials(&self, id: DeviceId) -> Result<Option<DeviceCredentials>, UnexpectedError> {
        match self.cache.credentials(id) {
            Lookup::Hit(found) => Ok(found.map(|c| (*c).clone())),
            Lookup::Miss(ticket) => {
                // Boxed: the adapter's query future is large, and inline it
                // would size every request's future (held by each waiting
                // long-poll) for the rare miss.
                let found = Box::pin(self.inner.find_credentials(id)).await?;
                self.cache
                    .fill_credentials(ticket, found.as_ref().map(|c| Arc::new(c.clone())));
                Ok(found)
            }
        }
    }

    async fn record_activity(
        &self,
        batch: &[(DeviceId, crate::activity::DeviceActivity)],
    ) -> Result<(), UnexpectedError> {
        self.inner.record_activity(batch).await
    }

    async fn stored_secrets(
        &self,
        after: Option<DeviceId>,
        limit: u32,
    ) -> Result<Vec<StoredSecrets>, UnexpectedError> {
        self.inner.stored_secrets(after, limit).await
    }

    async fn reseal(
        &self,
        expected: &StoredSecrets,
        current: &SealedSecret,
        previous: Option<&SealedSecret>,
    ) -> Result<bool, UnexpectedError> {
        let result = self.inner.reseal(expected, current, previous).await;
        self.cache.apply(Change::Device(expected.device));
        result
    }
}

/// A [`SignalRepository`] that answers "nothing pending" from the cache and
/// forgets it for every device a signal is published to.
#[derive(Debug, Clone)]
pub struct CachedSignals<S, C> {
    inner: S,
    cache: C,
}

impl<S, C> CachedSignals<S, C> {
    pub fn new(inner: S, cache: C) -> Self {
        Self { inner, cache }
    }
}

impl<S: SignalRepository, C: DeviceStateCache> SignalRepository for CachedSignals<S, C> {
    async fn insert(&self, new: &NewSignal) -> Result<SignalWithDeliveries, InsertSignalError> {
        let result = self.inner.insert(new).await;
        for (device, _) in &new.deliveries {
            self.cache.apply(Change::Published(*device));
        }
        result
    }

    async fn find_by_idempotency_key(
        &self,
        owner: UserId,
        key: &str,
    ) -> Result<Option<(SignalWithDeliveries, String)>, UnexpectedError> {
        self.inner.find_by_idempotency_key(owner, key).await
    }

    async fn find(
        &self,
        owner: UserId,
        id: SignalId,
    ) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
        self.inner.find(owner, id).await
    }

    async fn list(
        &self,
        owner: UserId,
        page: &PageRequest,
    ) -> Result<Page<SignalWithDeliveries>, UnexpectedError> {
        self.inner.list(owner, page).await
    }

    async fn cancel(
        &self,
        owner: UserId,
        id: SignalId,
        at: DateTime<Utc>,
    ) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
        // Cancelling only takes signals away: an idle device stays idle.
        self.inner.cancel(owner, id, at).await
    }

    async fn active_devices(&self, owner: UserId) -> Result<Vec<DeviceId>, UnexpectedError> {
        self.inner.active_devices(owner).await
    }

    async fn pending_for_device(
        &self,
        device: DeviceId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Signal>, UnexpectedError> {
        match self.cache.idle(device) {
            Lookup::Hit(()) => Ok(Vec::new()),
            Lookup::Miss(ticket) => {
                // Boxed like `find_credentials`' miss: a held long-poll's
                // future stays small.
                let pending = Box::pin(self.inner.pending_for_device(device, now, limit)).await?;
                if pending.is_empty() {
                    self.cache.fill_idle(ticket);
                }
                Ok(pending)
            }
        }
    }

    async fn mark_delivered(
        &self,
        deliveries: &[(DeviceId, SignalId, DateTime<Utc>)],
    ) -> Result<(), UnexpectedError> {
        self.inner.mark_delivered(deliveries).await
    }

    async fn acknowledge(
        &self,
        device: DeviceId,
        signal: SignalId,
        ack: &crate::signal::Ack,
    ) -> Result<AckRecord, UnexpectedError> {
        // Acknowledging only takes a signal away: an idle device stays idle.
        self.inner.acknowledge(device, signal, ack).await
    }
}

/// An [`AccountRepository`] that clears the device cache when an account
/// (and with it every device it owns) is deleted.
#[derive(Debug, Clone)]
pub struct CachedAccounts<A, C> {
    inner: A,
    cache: C,
}

impl<A, C> CachedAccounts<A, C> {
    pub fn new(inner: A, cache: C) -> Self {
        Self { inner, cache }
    }
}

impl<A: AccountRepository, C: DeviceStateCache> AccountRepository for CachedAccounts<A, C> {
    async fn create(&self, user: &NewUser, audit: &AuditEvent) -> Result<User, CreateUserError> {
        self.inner.create(user, audit).await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, UnexpectedError> {
        self.inner.find_by_id(id).await
    }

    async fn find_credentials_by_login(
        &self,
        login: &crate::account::LoginId,
    ) -> Result<Option<UserCredentials>, UnexpectedError> {
        self.inner.find_credentials_by_login(login).await
    }

    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UnexpectedError> {
        self.inner.find_credentials_by_id(id).await
    }

    async fn update_password_hash(&self, id: UserId, hash: &PasswordHash) -> Result<bool, UnexpectedError> {
        self.inner.update_password_hash(id, hash).await
    }

    async fn change_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, UnexpectedError> {
        self.inner.change_password(id, hash, at, audit).await
    }

    async fn delete(&self, id: UserId, audit: &AuditEvent) -> Result<bool, UnexpectedError> {
        let result = self.inner.delete(id, audit).await;
        self.cache.apply(Change::Everything);
        result
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Clock as _;
    use crate::account::Registration;
    use crate::audit::ClientInfo;
    use crate::device::{DevicePolicy, DeviceService};
    use crate::signal::{PublishInput, SignalPolicy, SignalService};
    use crate::testing::{
        FakeAccountWorld, FakeDeviceCache, FakeDeviceSecrets, FakeSealer, InMemoryDeviceRepository,
        InMemorySignalRepository, SequentialIds,
    };

    /// An owner with `n` devices registered through the uncached store.
    async fn world(n: usize) -> (FakeAccountWorld, UserId, Vec<DeviceId>) {
        let world = FakeAccountWorld::new();
        let reg = Registration::parse("o@example.com", "owner", "a long enough password").unwrap();
        let owner = world
            .service
            .register(reg, &ClientInfo::default())
            .await
            .unwrap()
            .id;
        let registry = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        let mut ids = Vec::new();
        for i in 0..n {
            let d = registry
                .register(owner, &format!("EA {i}"), &ClientInfo::default())
                .await
                .unwrap();
            ids.push(d.device.id);
        }
        (world, owner, ids)
    }

    #[tokio::test]
    async fn credentials_are_served_from_the_cache_and_a_local_revocation_is_seen_at_once() {
        let (world, owner, ids) = world(1).await;
        let cache = FakeDeviceCache::default();
        let cached = CachedDevices::new(world.store.devices(), cache.clone());
        let id = ids[0];
        assert!(!cached.find_credentials(id).await.unwrap().unwrap().revoked);
        // Another instance revokes it: this one serves the cached answer
        // until the change notification arrives.
        let elsewhere = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        elsewhere.revoke(owner, id, &ClientInfo::default()).await.unwrap();
        assert!(
            !cached.find_credentials(id).await.unwrap().unwrap().revoked,
            "served from the cache (the notification has not arrived)"
        );
        cache.apply(Change::Device(id));
        assert!(cached.find_credentials(id).await.unwrap().unwrap().revoked);

        // A revocation through this instance is applied before it returns.
        let (world, owner, ids) = self::world(1).await;
        let cache = FakeDeviceCache::default();
        let cached = CachedDevices::new(world.store.devices(), cache.clone());
        let here = DeviceService::new(
            cached.clone(),
            FakeDeviceSecrets::default(),
            FakeSealer::new("k1"),
            world.clock.clone(),
            SequentialIds::after(5_000),
            DevicePolicy::default(),
        );
        assert!(!cached.find_credentials(ids[0]).await.unwrap().unwrap().revoked);
        here.revoke(owner, ids[0], &ClientInfo::default()).await.unwrap();
        assert!(cached.find_credentials(ids[0]).await.unwrap().unwrap().revoked);
    }

    #[tokio::test]
    async fn an_unknown_device_is_cached_until_one_is_created_with_its_id() {
        let (world, _, _) = world(0).await;
        let cache = FakeDeviceCache::default();
        let cached = CachedDevices::new(world.store.devices(), cache.clone());
        let unknown = DeviceId::from_uuid(uuid::Uuid::now_v7());
        assert!(cached.find_credentials(unknown).await.unwrap().is_none());
        assert!(
            matches!(cache.credentials(unknown), Lookup::Hit(None)),
            "the negative answer is cached"
        );
        cache.apply(Change::Device(unknown));
        assert!(matches!(cache.credentials(unknown), Lookup::Miss(_)));
    }

    fn buy() -> PublishInput {
        PublishInput {
            instrument: "EURUSD".into(),
            side: "buy".into(),
            order_type: "market".into(),
            volume: 0.1,
            ..PublishInput::default()
        }
    }

    #[tokio::test]
    async fn idleness_is_cached_and_a_publish_ends_it() {
        let (world, owner, ids) = world(2).await;
        let cache = FakeDeviceCache::default();
        let cached = CachedSignals::new(world.store.signals(), cache.clone());
        let now = world.clock.now();
        assert!(
            cached
                .pending_for_device(ids[0], now, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(cache.idle(ids[0]), Lookup::Hit(()));
        let signals = SignalService::new(
            cached.clone(),
            world.store.configs(),
            world.store.wakeups(world.clock.clone()),
            Arc::new(crate::activity::ActivityBuffer::default()),
            world.clock.clone(),
            SequentialIds::after(9_000),
            SignalPolicy::default(),
        );
        let target = PublishInput {
            device_ids: Some(vec![ids[0].to_string()]),
            ..buy()
        };
        signals.publish(owner, &target, None).await.unwrap();
        assert_eq!(
            cached.pending_for_device(ids[0], now, 10).await.unwrap().len(),
            1,
            "a publish through this instance ends idleness before it returns"
        );
        assert!(
            cached
                .pending_for_device(ids[1], now, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// What can happen to a device, from this instance or another one.
    #[derive(Debug, Clone)]
    enum Op {
        Publish {
            device: usize,
            here: bool,
        },
        Revoke {
            device: usize,
            here: bool,
        },
        Rotate {
            device: usize,
            here: bool,
        },
        Ack {
            device: usize,
        },
        /// The change notifications of other instances arrive.
        Deliver,
        Poll {
            device: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let device = 0..3usize;
        prop_oneof![
            (device.clone(), any::<bool>()).prop_map(|(device, here)| Op::Publish { device, here }),
            (device.clone(), any::<bool>()).prop_map(|(device, here)| Op::Revoke { device, here }),
            (device.clone(), any::<bool>()).prop_map(|(device, here)| Op::Rotate { device, here }),
            device.clone().prop_map(|device| Op::Ack { device }),
            Just(Op::Deliver),
            device.prop_map(|device| Op::Poll { device }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Interleaved changes (here and elsewhere) and reads: once every
        /// notification has arrived, every cached answer equals storage.
        #[test]
        fn cached_answers_match_storage_once_notifications_arrive(ops in proptest::collection::vec(op(), 1..40)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let (world, owner, ids) = world(3).await;
                let cache = FakeDeviceCache::default();
                let devices: CachedDevices<InMemoryDeviceRepository, FakeDeviceCache> =
                    CachedDevices::new(world.store.devices(), cache.clone());
                let signals: CachedSignals<InMemorySignalRepository, FakeDeviceCache> =
                    CachedSignals::new(world.store.signals(), cache.clone());
                let registry = |repo| DeviceService::new(
                    repo,
                    FakeDeviceSecrets::default(),
                    FakeSealer::new("k1"),
                    world.clock.clone(),
                    SequentialIds::after(50_000),
                    DevicePolicy::default(),
                );
                let here_devices = registry(devices.clone());
                let there_devices = DeviceService::new(
                    world.store.devices(),
                    FakeDeviceSecrets::default(),
                    FakeSealer::new("k1"),
                    world.clock.clone(),
                    SequentialIds::after(60_000),
                    DevicePolicy::default(),
                );
                let publisher = |repo| SignalService::new(
                    repo,
                    world.store.configs(),
                    world.store.wakeups(world.clock.clone()),
                    Arc::new(crate::activity::ActivityBuffer::default()),
                    world.clock.clone(),
                    SequentialIds::after(70_000),
                    SignalPolicy::default(),
                );
                let here_signals = publisher(signals.clone());
                let there_signals = SignalService::new(
                    world.store.signals(),
                    world.store.configs(),
                    world.store.wakeups(world.clock.clone()),
                    Arc::new(crate::activity::ActivityBuffer::default()),
                    world.clock.clone(),
                    SequentialIds::after(80_000),
                    SignalPolicy::default(),
                );
                // Notifications of changes made elsewhere, not yet arrived.
                let mut in_flight: Vec<Change> = Vec::new();
                let client = ClientInfo::default();
                for op in ops {
                    match op {
                        Op::Publish { device, here } => {
                            let input = PublishInput { device_ids: Some(vec![ids[device].to_string()]), ..buy() };
                            let published = if here {
                                here_signals.publish(owner, &input, None).await
                            } else {
                                in_flight.push(Change::Published(ids[device]));
                                there_signals.publish(owner, &input, None).await
                            };
                            // Publishing to a revoked device is refused.
                            let _ = published;
                        }
                        Op::Revoke { device, here } => {
                            if here {
                                let _ = here_devices.revoke(owner, ids[device], &client).await;
                            } else {
                                in_flight.push(Change::Device(ids[device]));
                                let _ = there_devices.revoke(owner, ids[device], &client).await;
                            }
                        }
                        Op::Rotate { device, here } => {
                            if here {
                                let _ = here_devices.rotate_secret(owner, ids[device], Some(60), &client).await;
                            } else {
                                in_flight.push(Change::Device(ids[device]));
                                let _ = there_devices.rotate_secret(owner, ids[device], Some(60), &client).await;
                            }
                        }
                        Op::Ack { device } => {
                            let now = world.clock.now();
                            let pending = world.store.signals().pending_for_device(ids[device], now, 1).await.unwrap();
                            if let Some(first) = pending.first() {
                                let ack = crate::signal::Ack {
                                    outcome: crate::signal::Outcome::Executed,
                                    ticket: Some(1),
                                    fill_price: None,
                                    message: None,
                                    at: now,
                                };
                                signals.acknowledge(ids[device], first.id, &ack).await.unwrap();
                            }
                        }
                        Op::Deliver => {
                            for change in in_flight.drain(..) {
                                cache.apply(change);
                            }
                        }
                        Op::Poll { device } => {
                            let now = world.clock.now();
                            signals.pending_for_device(ids[device], now, 100).await.unwrap();
                            devices.find_credentials(ids[device]).await.unwrap();
                        }
                    }
                    if in_flight.is_empty() {
                        let now = world.clock.now();
                        for id in &ids {
                            let cached = signals.pending_for_device(*id, now, 100).await.unwrap();
                            let stored = world.store.signals().pending_for_device(*id, now, 100).await.unwrap();
                            prop_assert_eq!(cached.len(), stored.len(), "pending signals of {}", id);
                            let cached = devices.find_credentials(*id).await.unwrap().unwrap();
                            let stored = world.store.devices().find_credentials(*id).await.unwrap().unwrap();
                            prop_assert_eq!(cached.revoked, stored.revoked, "revocation of {}", id);
                            prop_assert_eq!(&cached.current, &stored.current, "secret of {}", id);
                        }
                    }
                }
                Ok(())
            })?;
        }
    }
}
