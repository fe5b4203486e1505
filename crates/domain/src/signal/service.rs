//! The signal use cases.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::instrument;

use super::error::*;
use super::model::*;
use super::ports::*;
use crate::account::UserId;
use crate::activity::ActivityBuffer;
use crate::clock::Clock;
use crate::config::{ConfigRepository, CurrentConfig, EffectiveConfig, adapt};
use crate::device::{AuthenticatedDevice, DeviceId};
use crate::id::IdGenerator;
use crate::pagination::{Page, PageRequest};
use crate::validation::{FieldError, ValidationErrors};

/// Limits of polling.
#[derive(Debug, Clone, Copy)]
pub struct SignalPolicy {
    /// The longest a poll may wait.
    pub long_poll_max: Duration,
    /// While waiting, re-check (the cache, else storage) at least this
    /// often, so a lost wake-up delays delivery by at most this much.
    pub recheck_interval: Duration,
}

impl Default for SignalPolicy {
    fn default() -> Self {
        Self {
            long_poll_max: Duration::seconds(30),
            recheck_interval: Duration::seconds(2),
        }
    }
}

pub const DEFAULT_POLL_LIMIT: u32 = 10;
pub const MAX_POLL_LIMIT: u32 = 100;

/// Publishing, reading, cancelling, polling and acknowledging signals.
#[derive(Debug, Clone)]
pub struct SignalService<S, K, W, C, I> {
    signals: S,
    configs: K,
    wakeups: W,
    activity: Arc<ActivityBuffer>,
    clock: C,
    ids: I,
    policy: SignalPolicy,
}

/// A canonical description of a publish request, to recognise retries.
fn describe(draft: &SignalDraft) -> String {
    let o = &draft.order;
    let opt = |v: Option<f64>| v.map(|v| format!("{v:?}")).unwrap_or_default();
    let devices = draft
        .device_ids
        .as_ref()
        .map(|ids| {
            let mut ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            ids.sort();
            ids.join(",")
        })
        .unwrap_or_else(|| "*".to_owned());
    format!(
        "v1|{}|{}|{}|{:?}|{}|{}|{}|{}|{}|{}",
        o.instrument.as_str(),
        o.side,
        o.order_type,
        o.volume,
        opt(o.entry_price),
        opt(o.stop_loss),
        opt(o.take_profit),
        o.comment.as_deref().unwrap_or_default().replace('|', "\\|"),
        draft
            .expires_at
            .map(|t| t.timestamp_micros().to_string())
            .unwrap_or_default(),
        devices
    ) + if o.action == Action::Close { "|close" } else { "" }
}

fn parse_idempotency_key(raw: &str) -> Result<String, FieldError> {
    if (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(
            "Idempotency-Key",
            "invalid",
            "must be 1-128 visible ASCII characters",
        ))
    }
}

impl<S, K, W, C, I> SignalService<S, K, W, C, I>
where
    S: SignalRepository,
    K: ConfigRepository,
    W: SignalWakeups,
    C: Clock,
    I: IdGenerator,
{
    pub fn new(
        signals: S,
        configs: K,
        wakeups: W,
        activity: Arc<ActivityBuffer>,
        clock: C,
        ids: I,
        policy: SignalPolicy,
    ) -> Self {
        Self {
            signals,
            configs,
            wakeups,
            activity,
            clock,
            ids,
            policy,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Publishes a signal to the given (default: all) active devices of the
    /// owner. Returns the signal and whether it was created now (`false`:
    /// an idempotent retry answered with the first result).
    #[instrument(skip_all, fields(user_id = %owner))]
    pub async fn publish(
        &self,
        owner: UserId,
        input: &PublishInput,
        idempotency_key: Option<&str>,
    ) -> Result<(SignalWithDeliveries, bool), PublishError> {
        let now = self.clock.now();
        let key = match idempotency_key.map(parse_idempotency_key).transpose() {
            Ok(key) => key,
            Err(e) => return Err(PublishError::Invalid(e.into())),
        };
        let draft = SignalDraft::parse(input, now).map_err(PublishError::Invalid)?;
        let description = describe(&draft);
        if let Some(key) = &key
            && let Some(found) = self.replay(owner, key, &description).await?
        {
            return Ok((found, false));
        }
        let active = self.signals.active_devices(owner).await?;
        let devices = match &draft.device_ids {
            Some(ids) => {
                let unknown: Vec<String> = ids
                    .iter()
                    .filter(|id| !active.contains(id))
                    .map(ToString::to_string)
                    .collect();
                if !unknown.is_empty() {
                    return Err(PublishError::UnknownDevices(unknown));
                }
                ids.clone()
            }
            None if active.is_empty() => return Err(PublishError::NoDevices),
            None => active,
        };
        // Each device's configuration, as it stands now, decides what it
        // receives; refused deliveries are stored as skipped, with why.
        let mut configs: HashMap<DeviceId, EffectiveConfig> = self
            .configs
            .effective_for_devices(owner, &devices)
            .await?
            .into_iter()
            .collect();
        let fallback = EffectiveConfig::merge(&CurrentConfig::default(), None, 0);
        let deliveries = devices
            .iter()
            .map(|d| {
                let config = configs.remove(d);
                (*d, adapt(&draft.order, config.as_ref().unwrap_or(&fallback)))
            })
            .collect();
        let new = NewSignal {
            signal: Signal {
                id: SignalId::from_uuid(self.ids.new_id()),
                owner,
                order: draft.order,
                expires_at: draft.expires_at,
                created_at: now,
                cancelled_at: None,
            },
            deliveries,
            idempotency: key.clone().map(|k| (k, description.clone())),
        };
        match self.signals.insert(&new).await {
            Ok(stored) => {
                tracing::info!(signal_id = %stored.signal.id, devices = stored.deliveries.len(), "signal published");
                Ok((stored, true))
            }
            // A concurrent request with the same key won the race.
            Err(InsertSignalError::DuplicateKey) => match &key {
                Some(key) => self
                    .replay(owner, key, &description)
                    .await?
                    .map(|found| (found, false))
                    .ok_or_else(|| {
                        PublishError::Unexpected(crate::UnexpectedError::msg("idempotency key vanished"))
                    }),
                None => Err(PublishError::Unexpected(crate::UnexpectedError::msg(
                    "duplicate idempotency key without a key",
                ))),
            },
            Err(InsertSignalError::Unexpected(e)) => Err(e.into()),
        }
    }

    async fn replay(
        &self,
        owner: UserId,
        key: &str,
        description: &str,
    ) -> Result<Option<SignalWithDeliveries>, PublishError> {
        match self.signals.find_by_idempotency_key(owner, key).await? {
            Some((found, stored)) if stored == description => Ok(Some(found)),
            Some(_) => Err(PublishError::IdempotencyKeyReused),
            None => Ok(None),
        }
    }

    #[instrument(skip_all, fields(user_id = %owner, signal_id = %id))]
    pub async fn get(&self, owner: UserId, id: SignalId) -> Result<SignalWithDeliveries, GetSignalError> {
        self.signals
            .find(owner, id)
            .await?
            .ok_or(GetSignalError::NotFound)
    }

    #[instrument(skip_all, fields(user_id = %owner))]
    pub async fn list(
        &self,
        owner: UserId,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Page<SignalWithDeliveries>, ListSignalsError> {
        let page = PageRequest::parse(limit, cursor).map_err(|errors| {
            let mut all = ValidationErrors::new();
            errors.into_iter().for_each(|e| all.push(e));
            ListSignalsError::Invalid(all)
        })?;
        Ok(self.signals.list(owner, &page).await?)
    }

    /// Cancels a signal; devices no longer receive it. Idempotent.
    #[instrument(skip_all, fields(user_id = %owner, signal_id = %id))]
    pub async fn cancel(&self, owner: UserId, id: SignalId) -> Result<SignalWithDeliveries, GetSignalError> {
        self.signals
            .cancel(owner, id, self.clock.now())
            .await?
            .ok_or(GetSignalError::NotFound)
    }

    /// The device's pending signals, oldest first. With `wait` (seconds)
    /// and nothing pending, waits until a signal is published for the
    /// device — on any instance — or the wait ends.
    #[instrument(level = "debug", skip_all, fields(device_id = %caller.id))]
    pub async fn poll(
        &self,
        caller: &AuthenticatedDevice,
        limit: Option<&str>,
        wait: Option<&str>,
    ) -> Result<Vec<Signal>, PollError> {
        let device = caller.id;
        let mut errors = ValidationErrors::new();
        let limit = match limit.map(str::parse::<u32>) {
            None => DEFAULT_POLL_LIMIT,
            Some(Ok(n)) if (1..=MAX_POLL_LIMIT).contains(&n) => n,
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    "must be an integer from 1 to 100",
                ));
                DEFAULT_POLL_LIMIT
            }
        };
        let max_wait = self.policy.long_poll_max.num_seconds();
        let wait = match wait.map(str::parse::<i64>) {
            None => 0,
            Some(Ok(n)) if (0..=max_wait).contains(&n) => n,
            Some(_) => {
                errors.push(FieldError::new(
                    "wait",
                    "out_of_range",
                    format!("must be an integer from 0 to {max_wait}"),
                ));
                0
            }
        };
        errors.into_result().map_err(PollError::Invalid)?;

        let (signals, now) = if wait == 0 {
            let now = self.clock.now();
            (self.signals.pending_for_device(device, now, limit).await?, now)
        } else {
            let signals = self
                .wait_for_signals(device, limit, Duration::seconds(wait))
                .await?;
            (signals, self.clock.now())
        };
        // The poll time and first deliveries are written with the next
        // activity flush.
        let ids: Vec<SignalId> = signals.iter().map(|s| s.id).collect();
        self.activity.polled(device, now, &ids);
        Ok(signals)
    }

    /// Long-polling: the pending signals as soon as there are any, or none
    /// after `wait`. A wake-up that names the published signals is answered
    /// from them, without reading storage (the device had nothing pending
    /// when it started waiting, so they are all it has).
    async fn wait_for_signals(
        &self,
        device: DeviceId,
        limit: u32,
        wait: Duration,
    ) -> Result<Vec<Signal>, crate::UnexpectedError> {
        let mut subscription = self.wakeups.subscribe(device);
        let deadline = self.clock.now() + wait;
        let mut check = true;
        loop {
            let now = self.clock.now();
            if check {
                let pending = self.signals.pending_for_device(device, now, limit).await?;
                if !pending.is_empty() {
                    return Ok(pending);
                }
            }
            if now >= deadline {
                return Ok(Vec::new());
            }
            let nap = (deadline - now).min(self.policy.recheck_interval);
            match subscription.wait(nap.to_std().unwrap_or_default()).await {
                Wake::Published(published) => {
                    let now = self.clock.now();
                    let mut fresh: Vec<Signal> = published
                        .into_iter()
                        .filter(|s| s.cancelled_at.is_none() && s.expires_at.is_none_or(|at| at > now))
                        .collect();
                    if !fresh.is_empty() {
                        fresh.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                        return Ok(fresh);
                    }
                    check = false;
                }
                Wake::Recheck | Wake::TimedOut => check = true,
                Wake::Superseded => return Ok(Vec::new()),
                Wake::Closing => {
                    return self
                        .signals
                        .pending_for_device(device, self.clock.now(), limit)
                        .await;
                }
            }
        }
    }

    /// Records the device's outcome for a signal delivered to it. The same
    /// outcome again returns the first acknowledgement; another outcome is a
    /// conflict.
    #[instrument(skip_all, fields(device_id = %device))]
    pub async fn acknowledge(&self, device: DeviceId, input: &AckInput) -> Result<Acknowledged, AckError> {
        let (signal, ack) = input.parse(self.clock.now()).map_err(AckError::Invalid)?;
        match self.signals.acknowledge(device, signal, &ack).await? {
            AckRecord::Recorded(ack) => {
                tracing::info!(signal_id = %signal, outcome = %ack.outcome, "signal acknowledged");
                Ok(Acknowledged { ack, first: true })
            }
            AckRecord::Existing(first) if first.outcome == ack.outcome => Ok(Acknowledged {
                ack: first,
                first: false,
            }),
            AckRecord::Existing(first) => Err(AckError::Conflict(first.outcome)),
            AckRecord::NotFound => Err(AckError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Registration;
    use crate::activity::ActivityWriter;
    use crate::audit::ClientInfo;
    use crate::device::{DevicePolicy, DeviceWithSecret};
    use crate::testing::{
        FakeAccountWorld, FakeSealer, FakeWakeups, FixedClock, InMemoryDeviceRepository,
        InMemorySignalRepository, SequentialIds,
    };

    type Service = SignalService<
        InMemorySignalRepository,
        crate::testing::InMemoryConfigRepository,
        FakeWakeups,
        FixedClock,
        SequentialIds,
    >;

    struct Rig {
        world: FakeAccountWorld,
        signals: Service,
        activity: ActivityWriter<InMemoryDeviceRepository, InMemorySignalRepository>,
        owner: UserId,
        devices: Vec<DeviceWithSecret>,
    }

    async fn rig(device_count: usize) -> Rig {
        let world = FakeAccountWorld::new();
        let reg = Registration::parse("o@example.com", "owner", "a long enough password").unwrap();
        let owner = world
            .service
            .register(reg, &ClientInfo::default())
            .await
            .unwrap()
            .id;
        let registry = world.devices(FakeSealer::new("k1"), DevicePolicy::default());
        let mut devices = Vec::new();
        for n in 0..device_count {
            devices.push(
                registry
                    .register(owner, &format!("EA {n}"), &ClientInfo::default())
                    .await
                    .unwrap(),
            );
        }
        let buffer = Arc::new(ActivityBuffer::default());
        let signals = SignalService::new(
            world.store.signals(),
            world.store.configs(),
            world.store.wakeups(world.clock.clone()),
            Arc::clone(&buffer),
            world.clock.clone(),
            SequentialIds::default(),
            SignalPolicy::default(),
        );
        let activity = ActivityWriter::new(buffer, world.store.devices(), world.store.signals());
        Rig {
            world,
            signals,
            activity,
            owner,
            devices,
        }
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

    /// A device as authentication hands it to `poll`.
    fn polling(id: DeviceId) -> AuthenticatedDevice {
        AuthenticatedDevice {
            id,
            owner: UserId::from_uuid(uuid::Uuid::nil()),
            name: crate::device::DeviceName::parse("EA").unwrap(),
            config_revision: 0,
            deployment_revision: 0,
        }
    }

    impl Rig {
        fn device(&self, n: usize) -> DeviceId {
            self.devices[n].device.id
        }
    }

    #[tokio::test]
    async fn publish_targets_all_active_devices_by_default() {
        let rig = rig(2).await;
        let (published, created) = rig.signals.publish(rig.owner, &buy(), None).await.unwrap();
        assert!(created);
        assert_eq!(published.deliveries.len(), 2);
        let now = rig.world.clock.now();
        assert!(
            published
                .deliveries
                .iter()
                .all(|d| d.status(&published.signal, now) == DeliveryStatus::Pending)
        );
    }

    #[tokio::test]
    async fn explicit_targets_must_be_the_owners_active_devices() {
        let rig = rig(2).await;
        let stranger = uuid::Uuid::now_v7().to_string();
        let input = PublishInput {
            device_ids: Some(vec![rig.device(0).to_string(), stranger.clone()]),
            ..buy()
        };
        match rig.signals.publish(rig.owner, &input, None).await {
            Err(PublishError::UnknownDevices(ids)) => assert_eq!(ids, [stranger]),
            other => panic!("{other:?}"),
        }
        let only_one = PublishInput {
            device_ids: Some(vec![rig.device(1).to_string()]),
            ..buy()
        };
        let (published, _) = rig.signals.publish(rig.owner, &only_one, None).await.unwrap();
        assert_eq!(
            published
                .deliveries
                .iter()
                .map(|d| d.device_id)
                .collect::<Vec<_>>(),
            [rig.device(1)]
        );
        let nobody = self::rig(0).await;
        assert!(matches!(
            nobody.signals.publish(nobody.owner, &buy(), None).await,
            Err(PublishError::NoDevices)
        ));
    }

    #[tokio::test]
    async fn an_idempotency_key_replays_the_first_result_and_refuses_another_request() {
        let rig = rig(1).await;
        let (first, created) = rig
            .signals
            .publish(rig.owner, &buy(), Some("order-42"))
            .await
            .unwrap();
        assert!(created);
        let (again, created) = rig
            .signals
            .publish(rig.owner, &buy(), Some("order-42"))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again, first);
        let different = PublishInput { volume: 0.2, ..buy() };
        assert!(matches!(
            rig.signals.publish(rig.owner, &different, Some("order-42")).await,
            Err(PublishError::IdempotencyKeyReused)
        ));
        assert!(matches!(
            rig.signals.publish(rig.owner, &buy(), Some("")).await,
            Err(PublishError::Invalid(_))
        ));
        let page = rig.signals.list(rig.owner, None, None).await.unwrap();
        assert_eq!(page.items.len(), 1, "the retry created nothing");
    }

    #[tokio::test]
    async fn each_device_receives_the_signal_as_its_configuration_says() {
        use crate::config::{ConfigScope, ConfigService, SkipReason};
        use serde_json::json;
        let rig = rig(3).await;
        let configs = ConfigService::new(
            rig.world.store.configs(),
            rig.world.clock.clone(),
            SequentialIds::after(900),
        );
        let client = ClientInfo::default();
        let (d0, d1, d2) = (rig.device(0), rig.device(1), rig.device(2));
        configs
            .replace(
                ConfigScope::Account(rig.owner),
                Some("*"),
                &json!({"symbol_map": {"XAUUSD": "GOLD.m"}, "sizing": {"type": "multiplier", "factor": 0.3}}),
                &client,
            )
            .await
            .unwrap();
        configs
            .replace(
                ConfigScope::Device(rig.owner, d1),
                Some("*"),
                &json!({"mode": "paused"}),
                &client,
            )
            .await
            .unwrap();
        configs
            .replace(
                ConfigScope::Device(rig.owner, d2),
                Some("*"),
                &json!({"mode": "close_only"}),
                &client,
            )
            .await
            .unwrap();
        let gold = PublishInput {
            instrument: "XAUUSD".into(),
            volume: 1.0,
            ..buy()
        };
        let (published, _) = rig.signals.publish(rig.owner, &gold, None).await.unwrap();
        assert_eq!(
            published.signal.order.instrument.as_str(),
            "XAUUSD",
            "the signal itself is as published"
        );
        let got = rig.signals.poll(&polling(d0), None, None).await.unwrap();
        assert_eq!(got[0].order.instrument.as_str(), "GOLD.m");
        assert!(
            (got[0].order.volume - 0.3).abs() < 1e-9,
            "0.3 lots: {}",
            got[0].order.volume
        );
        let skipped = |d: DeviceId| {
            published
                .deliveries
                .iter()
                .find(|x| x.device_id == d)
                .and_then(|x| x.adaptation.as_ref())
                .and_then(|a| a.skipped())
        };
        assert_eq!(skipped(d0), None);
        assert_eq!(skipped(d1), Some(SkipReason::Paused));
        assert_eq!(skipped(d2), Some(SkipReason::CloseOnly));
        assert!(
            rig.signals
                .poll(&polling(d1), None, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            rig.signals
                .poll(&polling(d2), None, None)
                .await
                .unwrap()
                .is_empty()
        );
        // Resuming does not deliver what was published while paused.
        configs
            .replace(ConfigScope::Device(rig.owner, d1), Some("*"), &json!({}), &client)
            .await
            .unwrap();
        assert!(
            rig.signals
                .poll(&polling(d1), None, None)
                .await
                .unwrap()
                .is_empty()
        );
        // A closing signal reaches the close_only device.
        let close = PublishInput {
            action: Some("close".into()),
            ..gold
        };
        rig.signals.publish(rig.owner, &close, None).await.unwrap();
        let got = rig.signals.poll(&polling(d2), None, None).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].order.action, Action::Close);
        assert_eq!(
            rig.signals.poll(&polling(d1), None, None).await.unwrap().len(),
            1,
            "resumed"
        );
    }

    #[tokio::test]
    async fn poll_returns_until_acknowledged_then_never_again() {
        let rig = rig(2).await;
        let (published, _) = rig.signals.publish(rig.owner, &buy(), None).await.unwrap();
        let id = published.signal.id;
        let d0 = rig.device(0);
        for _ in 0..2 {
            let got = rig.signals.poll(&polling(d0), None, None).await.unwrap();
            assert_eq!(
                got.iter().map(|s| s.id).collect::<Vec<_>>(),
                [id],
                "at least once, until acked"
            );
        }
        // Delivery times are written with the activity flush.
        let pending = rig.signals.get(rig.owner, id).await.unwrap();
        assert!(pending.deliveries.iter().all(|d| d.first_polled_at.is_none()));
        rig.activity.flush().await.unwrap();
        let seen = rig.signals.get(rig.owner, id).await.unwrap();
        let now = rig.world.clock.now();
        let status = |d: DeviceId| {
            seen.deliveries
                .iter()
                .find(|x| x.device_id == d)
                .unwrap()
                .status(&seen.signal, now)
        };
        assert_eq!(status(d0), DeliveryStatus::Delivered);
        assert_eq!(status(rig.device(1)), DeliveryStatus::Pending);
        let ack = AckInput {
            signal_id: id.to_string(),
            outcome: "executed".into(),
            ticket: Some(7),
            ..AckInput::default()
        };
        let first = rig.signals.acknowledge(d0, &ack).await.unwrap();
        assert!(first.first, "the first acknowledgement is stored now");
        assert!(
            rig.signals
                .poll(&polling(d0), None, None)
                .await
                .unwrap()
                .is_empty()
        );
        // Idempotent with the same outcome, a conflict with another.
        let again = rig.signals.acknowledge(d0, &ack).await.unwrap();
        assert_eq!(again.ack, first.ack);
        assert!(!again.first, "a repeat is not a new acknowledgement");
        let failed = AckInput {
            outcome: "failed".into(),
            ..ack.clone()
        };
        assert!(matches!(
            rig.signals.acknowledge(d0, &failed).await,
            Err(AckError::Conflict(Outcome::Executed))
        ));
        // Device 1 still gets it.
        assert_eq!(
            rig.signals
                .poll(&polling(rig.device(1)), None, None)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_long_poll_wakes_on_publish_and_otherwise_waits_out_its_time() {
        let rig = rig(1).await;
        let d0 = rig.device(0);
        let start = rig.world.clock.now();
        assert!(
            rig.signals
                .poll(&polling(d0), None, Some("7"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            rig.world.clock.now() - start,
            Duration::seconds(7),
            "waited the whole time"
        );
        // A publish between subscribing and waiting is not lost.
        let (published, _) = rig.signals.publish(rig.owner, &buy(), None).await.unwrap();
        let got = rig.signals.poll(&polling(d0), None, Some("30")).await.unwrap();
        assert_eq!(got[0].id, published.signal.id);
    }

    /// Wake-ups that answer each wait from a script, then time out (moving
    /// the clock on).
    #[derive(Debug, Clone)]
    struct Scripted(Arc<std::sync::Mutex<Vec<Wake>>>, FixedClock);

    impl SignalWakeups for Scripted {
        type Subscription = Scripted;

        fn subscribe(&self, _device: DeviceId) -> Scripted {
            self.clone()
        }
    }

    impl WakeupSubscription for Scripted {
        async fn wait(&mut self, timeout: std::time::Duration) -> Wake {
            let mut script = self.0.lock().unwrap();
            if script.is_empty() {
                self.1.advance(Duration::from_std(timeout).unwrap());
                Wake::TimedOut
            } else {
                script.remove(0)
            }
        }
    }

    /// Counts storage reads of pending signals.
    #[derive(Debug, Clone)]
    struct CountingReads(InMemorySignalRepository, Arc<std::sync::atomic::AtomicUsize>);

    impl SignalRepository for CountingReads {
        async fn insert(&self, new: &NewSignal) -> Result<SignalWithDeliveries, InsertSignalError> {
            self.0.insert(new).await
        }
        async fn find_by_idempotency_key(
            &self,
            owner: UserId,
            key: &str,
        ) -> Result<Option<(SignalWithDeliveries, String)>, crate::UnexpectedError> {
            self.0.find_by_idempotency_key(owner, key).await
        }
        async fn find(
            &self,
            owner: UserId,
            id: SignalId,
        ) -> Result<Option<SignalWithDeliveries>, crate::UnexpectedError> {
            self.0.find(owner, id).await
        }
        async fn list(
            &self,
            owner: UserId,
            page: &PageRequest,
        ) -> Result<Page<SignalWithDeliveries>, crate::UnexpectedError> {
            self.0.list(owner, page).await
        }
        async fn cancel(
            &self,
            owner: UserId,
            id: SignalId,
            at: DateTime<Utc>,
        ) -> Result<Option<SignalWithDeliveries>, crate::UnexpectedError> {
            self.0.cancel(owner, id, at).await
        }
        async fn active_devices(&self, owner: UserId) -> Result<Vec<DeviceId>, crate::UnexpectedError> {
            self.0.active_devices(owner).await
        }
        async fn pending_for_device(
            &self,
            device: DeviceId,
            now: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<Signal>, crate::UnexpectedError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.pending_for_device(device, now, limit).await
        }
        async fn mark_delivered(
            &self,
            deliveries: &[(DeviceId, SignalId, DateTime<Utc>)],
        ) -> Result<(), crate::UnexpectedError> {
            self.0.mark_delivered(deliveries).await
        }
        async fn acknowledge(
            &self,
            device: DeviceId,
            signal: SignalId,
            ack: &Ack,
        ) -> Result<AckRecord, crate::UnexpectedError> {
            self.0.acknowledge(device, signal, ack).await
        }
    }

    #[tokio::test]
    async fn a_woken_poll_is_answered_from_the_wake_up_without_reading_storage() {
        let rig = rig(1).await;
        let d0 = rig.device(0);
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let script = Scripted(Arc::default(), rig.world.clock.clone());
        let poller = SignalService::new(
            CountingReads(rig.world.store.signals(), Arc::clone(&reads)),
            rig.world.store.configs(),
            script.clone(),
            Arc::new(ActivityBuffer::default()),
            rig.world.clock.clone(),
            SequentialIds::after(7_000),
            SignalPolicy::default(),
        );
        let (published, _) = rig.signals.publish(rig.owner, &buy(), None).await.unwrap();
        let mut expired = published.signal.clone();
        expired.id = SignalId::from_uuid(uuid::Uuid::now_v7());
        expired.expires_at = Some(rig.world.clock.now() - Duration::seconds(1));
        rig.signals.cancel(rig.owner, published.signal.id).await.unwrap();
        // Nothing pending now; then a wake-up names two signals, one of
        // them already expired.
        let mut fresh = published.signal.clone();
        fresh.id = SignalId::from_uuid(uuid::Uuid::now_v7());
        script
            .0
            .lock()
            .unwrap()
            .push(Wake::Published(vec![expired, fresh.clone()]));
        let got = poller.poll(&polling(d0), None, Some("30")).await.unwrap();
        assert_eq!(got.iter().map(|s| s.id).collect::<Vec<_>>(), [fresh.id]);
        assert_eq!(
            reads.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one read before waiting, none after the wake-up"
        );
        // A wake-up that cannot name the signals makes the poll read again.
        script.0.lock().unwrap().push(Wake::Recheck);
        let start = rig.world.clock.now();
        assert!(
            poller
                .poll(&polling(d0), None, Some("1"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            reads.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "read, re-read on Recheck, and once more when the wait ran out"
        );
        assert_eq!(
            rig.world.clock.now() - start,
            Duration::seconds(1),
            "then waited out its time"
        );
    }

    #[tokio::test]
    async fn a_superseded_poll_answers_at_once() {
        let rig = rig(1).await;
        let d0 = rig.device(0);
        let script = Scripted(Arc::default(), rig.world.clock.clone());
        let poller = SignalService::new(
            rig.world.store.signals(),
            rig.world.store.configs(),
            script.clone(),
            Arc::new(ActivityBuffer::default()),
            rig.world.clock.clone(),
            SequentialIds::after(7_000),
            SignalPolicy::default(),
        );
        script.0.lock().unwrap().push(Wake::Superseded);
        assert!(
            poller
                .poll(&polling(d0), None, Some("30"))
                .await
                .unwrap()
                .is_empty()
        );
        // With the real fake, a second subscription supersedes the first.
        let wakeups = rig.world.store.wakeups(rig.world.clock.clone());
        let mut first = wakeups.subscribe(d0);
        let _second = wakeups.subscribe(d0);
        assert_eq!(
            first.wait(std::time::Duration::from_secs(5)).await,
            Wake::Superseded
        );
    }

    /// Decision: an acknowledgement after a cancel is accepted and kept
    /// beside the cancel. The EA may have traded before the cancel reached
    /// it; what it did is the truth the owner needs to see.
    #[tokio::test]
    async fn an_ack_after_a_cancel_is_kept_beside_the_cancel() {
        let rig = rig(1).await;
        let d0 = rig.device(0);
        let (published, _) = rig.signals.publish(rig.owner, &buy(), None).await.unwrap();
        let id = published.signal.id;
        assert_eq!(rig.signals.poll(&polling(d0), None, None).await.unwrap().len(), 1);
        rig.signals.cancel(rig.owner, id).await.unwrap();
        let ack = AckInput {
            signal_id: id.to_string(),
            outcome: "executed".into(),
            ticket: Some(11),
            ..AckInput::default()
        };
        assert!(rig.signals.acknowledge(d0, &ack).await.unwrap().first);
        let seen = rig.signals.get(rig.owner, id).await.unwrap();
        let delivery = &seen.deliveries[0];
        assert!(delivery.cancelled_at.is_some(), "the cancel stays recorded");
        assert_eq!(delivery.ack.as_ref().map(|a| a.ticket), Some(Some(11)));
        assert_eq!(
            delivery.status(&seen.signal, rig.world.clock.now()),
            DeliveryStatus::Acknowledged,
            "what the EA reports wins the status"
        );
    }

    #[tokio::test]
    async fn cancelled_and_expired_signals_are_not_delivered() {
        let rig = rig(1).await;
        let d0 = rig.device(0);
        let (cancelled, _) = rig.signals.publish(rig.owner, &buy(), None).await.unwrap();
        rig.signals.cancel(rig.owner, cancelled.signal.id).await.unwrap();
        let expiring = PublishInput {
            expires_at: Some(rig.world.clock.now() + Duration::minutes(1)),
            ..buy()
        };
        let (expired, _) = rig.signals.publish(rig.owner, &expiring, None).await.unwrap();
        assert_eq!(rig.signals.poll(&polling(d0), None, None).await.unwrap().len(), 1);
        rig.world.clock.advance(Duration::minutes(2));
        assert!(
            rig.signals
                .poll(&polling(d0), None, None)
                .await
                .unwrap()
                .is_empty()
        );
        let now = rig.world.clock.now();
        let view = rig.signals.get(rig.owner, expired.signal.id).await.unwrap();
        assert_eq!(
            view.deliveries[0].status(&view.signal, now),
            DeliveryStatus::Expired
        );
        let view = rig.signals.get(rig.owner, cancelled.signal.id).await.unwrap();
        assert_eq!(
            view.deliveries[0].status(&view.signal, now),
            DeliveryStatus::Cancelled
        );
    }

    #[tokio::test]
    async fn acks_and_polls_are_validated() {
        let rig = rig(2).await;
        let (published, _) = rig.signals.publish(rig.owner, &buy(), None).await.unwrap();
        let other_device = rig.device(1);
        let unknown = AckInput {
            signal_id: uuid::Uuid::now_v7().to_string(),
            outcome: "executed".into(),
            ..AckInput::default()
        };
        assert!(matches!(
            rig.signals.acknowledge(other_device, &unknown).await,
            Err(AckError::NotFound)
        ));
        let bad = AckInput {
            signal_id: "nope".into(),
            outcome: "maybe".into(),
            ticket: Some(-1),
            fill_price: Some(f64::NAN),
            message: Some("x".repeat(513)),
        };
        match rig.signals.acknowledge(other_device, &bad).await {
            Err(AckError::Invalid(errors)) => {
                let fields: Vec<_> = errors.errors().iter().map(|e| e.field).collect();
                assert_eq!(
                    fields,
                    ["signal_id", "outcome", "ticket", "fill_price", "message"]
                );
            }
            other => panic!("{other:?}"),
        }
        for (limit, wait) in [
            (Some("0"), None),
            (Some("101"), None),
            (None, Some("31")),
            (None, Some("-1")),
            (Some("x"), Some("y")),
        ] {
            assert!(matches!(
                rig.signals.poll(&polling(other_device), limit, wait).await,
                Err(PollError::Invalid(_))
            ));
        }
        assert_eq!(
            rig.signals
                .poll(&polling(other_device), Some("100"), Some("0"))
                .await
                .unwrap()[0]
                .id,
            published.signal.id
        );
    }

    #[test]
    fn signal_drafts_enforce_every_rule() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let field_errors = |input: PublishInput| -> Vec<&'static str> {
            match SignalDraft::parse(&input, now) {
                Ok(_) => vec![],
                Err(e) => e.errors().iter().map(|e| e.field).collect(),
            }
        };
        assert!(field_errors(buy()).is_empty());
        let limit = |side: &str, entry, sl, tp| PublishInput {
            side: side.into(),
            order_type: "limit".into(),
            entry_price: entry,
            stop_loss: sl,
            take_profit: tp,
            ..buy()
        };
        assert!(field_errors(limit("buy", Some(1.1), Some(1.0), Some(1.2))).is_empty());
        assert!(field_errors(limit("sell", Some(1.1), Some(1.2), Some(1.0))).is_empty());
        assert_eq!(
            field_errors(limit("buy", Some(1.1), Some(1.2), None)),
            ["stop_loss"]
        );
        assert_eq!(
            field_errors(limit("buy", Some(1.1), None, Some(1.0))),
            ["take_profit"]
        );
        assert_eq!(
            field_errors(limit("sell", Some(1.1), Some(1.0), None)),
            ["stop_loss"]
        );
        assert_eq!(field_errors(limit("buy", None, None, None)), ["entry_price"]);
        let market = |sl, tp| PublishInput {
            stop_loss: sl,
            take_profit: tp,
            ..buy()
        };
        assert_eq!(field_errors(market(Some(1.2), Some(1.1))), ["stop_loss"]);
        for volume in [0.0, -1.0, 1000.1, f64::NAN, f64::INFINITY] {
            assert_eq!(
                field_errors(PublishInput { volume, ..buy() }),
                ["volume"],
                "{volume}"
            );
        }
        assert!(
            field_errors(PublishInput {
                volume: 1000.0,
                ..buy()
            })
            .is_empty()
        );
        for price in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(field_errors(market(Some(price), None)), ["stop_loss"], "{price}");
        }
        for instrument in ["", "EUR/USD", "x".repeat(33).as_str(), "ünï"] {
            assert_eq!(
                field_errors(PublishInput {
                    instrument: instrument.into(),
                    ..buy()
                }),
                ["instrument"]
            );
        }
        assert!(
            field_errors(PublishInput {
                instrument: "US30.cash#-_".into(),
                ..buy()
            })
            .is_empty()
        );
        assert_eq!(
            field_errors(PublishInput {
                side: "long".into(),
                ..buy()
            }),
            ["side"]
        );
        assert_eq!(
            field_errors(PublishInput {
                order_type: "fok".into(),
                ..buy()
            }),
            ["order_type"]
        );
        for at in [
            now,
            now - Duration::seconds(1),
            now + Duration::days(7) + Duration::seconds(1),
        ] {
            assert_eq!(
                field_errors(PublishInput {
                    expires_at: Some(at),
                    ..buy()
                }),
                ["expires_at"]
            );
        }
        let id = uuid::Uuid::now_v7().to_string();
        for ids in [vec![], vec!["x".to_owned()], vec![id.clone(), id.clone()]] {
            assert_eq!(
                field_errors(PublishInput {
                    device_ids: Some(ids),
                    ..buy()
                }),
                ["device_ids"]
            );
        }
        let too_many: Vec<String> = (0..1001).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        assert_eq!(
            field_errors(PublishInput {
                device_ids: Some(too_many),
                ..buy()
            }),
            ["device_ids"]
        );
        assert_eq!(
            field_errors(PublishInput {
                comment: Some("c".repeat(257)),
                ..buy()
            }),
            ["comment"]
        );
    }
}
