//! The [`SignalWakeups`] contract: a publish through the signal repository
//! wakes the device's subscriptions. The repositories provide the owner,
//! the devices and the publishing.
//!
//! No rule measures time: a wake-up must name the signals long before its
//! (generous) timeout, and "no wake-up" is checked right after a wake-up of
//! another subscription proved the publish was seen. An implementation that
//! needs a connection (PostgreSQL `LISTEN`) must be connected before the
//! rules run (the setup awaits it), since connecting may wake everyone.
//! Waking a wait that is already in progress needs real concurrency and is
//! tested per adapter.

use std::time::Duration;

use super::fixtures::*;
use crate::account::*;
use crate::device::*;
use crate::signal::*;

/// Long enough never to be reached by a working implementation.
const WAKE_WITHIN: Duration = Duration::from_secs(30);
/// How long a wait that must not be woken waits.
const QUIET_FOR: Duration = Duration::from_millis(200);

async fn devices_of_new_owner(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    n: usize,
) -> (UserId, Vec<DeviceId>) {
    let owner = registered(accounts).await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(stored_device(devices, owner.id, &format!("W{i}"), 0).await.id);
    }
    (owner.id, ids)
}

async fn publish(signals: &impl SignalRepository, owner: UserId, to: &[DeviceId]) -> SignalId {
    published(signals, new_signal(owner, 1, to, None)).await.signal.id
}

/// The ids a wake-up names; fails the rule unless it is `Published`.
fn named(wake: Wake, what: &str) -> Vec<SignalId> {
    match wake {
        Wake::Published(signals) => signals.iter().map(|s| s.id).collect(),
        other => panic!("{what}: expected Wake::Published, got {other:?}"),
    }
}

pub async fn a_publish_wakes_the_devices_subscription(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (owner, ids) = devices_of_new_owner(accounts, devices, 1).await;
    let mut subscription = wakeups.subscribe(ids[0]);
    let id = publish(signals, owner, &ids).await;
    assert_eq!(
        named(
            subscription.wait(WAKE_WITHIN).await,
            "a publish after subscribing (even before waiting)"
        ),
        [id],
        "the wake-up names the published signal"
    );
}

pub async fn without_a_publish_a_wait_times_out(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (_, ids) = devices_of_new_owner(accounts, devices, 1).await;
    let mut subscription = wakeups.subscribe(ids[0]);
    assert_eq!(
        subscription.wait(QUIET_FOR).await,
        Wake::TimedOut,
        "with nothing published a wait must end TimedOut"
    );
}

pub async fn a_publish_for_another_device_does_not_wake(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (owner, ids) = devices_of_new_owner(accounts, devices, 2).await;
    let mut target = wakeups.subscribe(ids[0]);
    let mut bystander = wakeups.subscribe(ids[1]);
    let id = publish(signals, owner, &ids[..1]).await;
    assert_eq!(
        named(target.wait(WAKE_WITHIN).await, "the target device"),
        [id],
        "the target device is woken (so the publish has been seen)"
    );
    assert_eq!(
        bystander.wait(QUIET_FOR).await,
        Wake::TimedOut,
        "a publish for another device must not wake this one"
    );
}

pub async fn a_publish_for_several_devices_wakes_each(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (owner, ids) = devices_of_new_owner(accounts, devices, 3).await;
    let mut subscriptions: Vec<_> = ids.iter().map(|d| wakeups.subscribe(*d)).collect();
    let id = publish(signals, owner, &ids).await;
    for (i, subscription) in subscriptions.iter_mut().enumerate() {
        assert_eq!(
            named(subscription.wait(WAKE_WITHIN).await, "a target of the publish"),
            [id],
            "every target of a publish must be woken (device {i} was not)"
        );
    }
}

pub async fn a_newer_subscription_supersedes_the_older(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (owner, ids) = devices_of_new_owner(accounts, devices, 1).await;
    let mut older = wakeups.subscribe(ids[0]);
    let mut newer = wakeups.subscribe(ids[0]);
    assert_eq!(
        older.wait(WAKE_WITHIN).await,
        Wake::Superseded,
        "a device waits once: a newer subscription ends the older one at once"
    );
    let id = publish(signals, owner, &ids).await;
    assert_eq!(
        named(newer.wait(WAKE_WITHIN).await, "the newer subscription"),
        [id],
        "the newer subscription gets the wake-up"
    );
}

pub async fn every_signal_published_since_subscribing_is_named_once(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (owner, ids) = devices_of_new_owner(accounts, devices, 1).await;
    let mut subscription = wakeups.subscribe(ids[0]);
    let first = publish(signals, owner, &ids).await;
    let second = publish(signals, owner, &ids).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(named(
            subscription.wait(WAKE_WITHIN).await,
            "two publishes before waiting",
        ));
    }
    assert_eq!(
        seen,
        [first, second],
        "both signals are named, in order, once each"
    );
}

pub async fn a_wake_up_is_used_up_by_the_wait_it_ends(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (owner, ids) = devices_of_new_owner(accounts, devices, 1).await;
    let mut subscription = wakeups.subscribe(ids[0]);
    let id = publish(signals, owner, &ids).await;
    assert_eq!(
        named(subscription.wait(WAKE_WITHIN).await, "the publish"),
        [id],
        "the publish wakes"
    );
    assert_eq!(
        subscription.wait(QUIET_FOR).await,
        Wake::TimedOut,
        "one publish must not wake the same subscription twice"
    );
    let later = publish(signals, owner, &ids).await;
    assert_eq!(
        named(subscription.wait(WAKE_WITHIN).await, "a later publish"),
        [later],
        "a later publish wakes the subscription again, naming only itself"
    );
}

/// Runs every rule in order on one set of ports; prefer
/// [`signal_wakeups_contract!`](crate::signal_wakeups_contract), which
/// gives each rule a test of its own.
pub async fn signal_wakeups_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    a_publish_wakes_the_devices_subscription(accounts, devices, signals, wakeups).await;
    without_a_publish_a_wait_times_out(accounts, devices, signals, wakeups).await;
    a_publish_for_another_device_does_not_wake(accounts, devices, signals, wakeups).await;
    a_publish_for_several_devices_wakes_each(accounts, devices, signals, wakeups).await;
    a_newer_subscription_supersedes_the_older(accounts, devices, signals, wakeups).await;
    every_signal_published_since_subscribing_is_named_once(accounts, devices, signals, wakeups).await;
    a_wake_up_is_used_up_by_the_wait_it_ends(accounts, devices, signals, wakeups).await;
}

/// One `#[tokio::test]` per [`SignalWakeups`] rule, in a module
/// `signal_wakeups_contract`. `$setup`: an async block returning
/// `(guard, accounts, devices, signals, wakeups)` over one store, the
/// wake-ups ready to deliver.
#[macro_export]
macro_rules! signal_wakeups_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            signal_wakeups_contract,
            wakeups,
            $setup,
            (accounts, devices, signals, wakeups),
            [
                a_publish_wakes_the_devices_subscription,
                without_a_publish_a_wait_times_out,
                a_publish_for_another_device_does_not_wake,
                a_publish_for_several_devices_wakes_each,
                a_newer_subscription_supersedes_the_older,
                every_signal_published_since_subscribing_is_named_once,
                a_wake_up_is_used_up_by_the_wait_it_ends,
            ]
        );
    };
}
