//! The [`SignalWakeups`] contract: a publish through the signal repository
//! wakes the device's subscriptions. The repositories provide the owner,
//! the devices and the publishing.
//!
//! No rule measures time: a wake-up must say `Notified` long before its
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

async fn publish(signals: &impl SignalRepository, owner: UserId, to: &[DeviceId]) {
    published(signals, new_signal(owner, 1, to, None)).await;
}

pub async fn a_publish_wakes_the_devices_subscription(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (owner, ids) = devices_of_new_owner(accounts, devices, 1).await;
    let mut subscription = wakeups.subscribe(ids[0]);
    publish(signals, owner, &ids).await;
    assert_eq!(
        subscription.wait(WAKE_WITHIN).await,
        Wake::Notified,
        "a publish after subscribing (even before waiting) must wake the device's subscription"
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
    publish(signals, owner, &ids[..1]).await;
    assert_eq!(
        target.wait(WAKE_WITHIN).await,
        Wake::Notified,
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
    publish(signals, owner, &ids).await;
    for (i, subscription) in subscriptions.iter_mut().enumerate() {
        assert_eq!(
            subscription.wait(WAKE_WITHIN).await,
            Wake::Notified,
            "every target of a publish must be woken (device {i} was not)"
        );
    }
}

pub async fn every_subscription_of_the_device_is_woken(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    wakeups: &impl SignalWakeups,
) {
    let (owner, ids) = devices_of_new_owner(accounts, devices, 1).await;
    let mut first = wakeups.subscribe(ids[0]);
    let mut second = wakeups.subscribe(ids[0]);
    publish(signals, owner, &ids).await;
    assert_eq!(
        first.wait(WAKE_WITHIN).await,
        Wake::Notified,
        "the first of two subscriptions of a device must be woken"
    );
    assert_eq!(
        second.wait(WAKE_WITHIN).await,
        Wake::Notified,
        "the second of two subscriptions of a device must be woken too"
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
    publish(signals, owner, &ids).await;
    assert_eq!(
        subscription.wait(WAKE_WITHIN).await,
        Wake::Notified,
        "the publish wakes"
    );
    assert_eq!(
        subscription.wait(QUIET_FOR).await,
        Wake::TimedOut,
        "one publish must not wake the same subscription twice"
    );
    publish(signals, owner, &ids).await;
    assert_eq!(
        subscription.wait(WAKE_WITHIN).await,
        Wake::Notified,
        "a later publish wakes the subscription again"
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
    every_subscription_of_the_device_is_woken(accounts, devices, signals, wakeups).await;
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
                every_subscription_of_the_device_is_woken,
                a_wake_up_is_used_up_by_the_wait_it_ends,
            ]
        );
    };
}
