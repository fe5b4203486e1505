//! The [`SignalRepository`] contract; the account and device repositories
//! provide owners and target devices. The wake-ups a publish causes are the
//! [`SignalWakeups`](crate::signal::SignalWakeups) contract's business.

use chrono::{DateTime, Duration, Utc};

use super::fixtures::*;
use crate::account::*;
use crate::audit::AuditAction;
use crate::device::*;
use crate::pagination::PageRequest;
use crate::signal::*;

/// An owner with `n` active devices.
async fn owner_with_devices(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    n: usize,
) -> (UserId, Vec<DeviceId>) {
    let owner = registered(accounts).await;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(stored_device(devices, owner.id, &format!("D{i}"), 0).await.id);
    }
    (owner.id, ids)
}

async fn pending(
    signals: &impl SignalRepository,
    device: DeviceId,
    at: DateTime<Utc>,
    limit: u32,
) -> Vec<SignalId> {
    signals
        .pending_for_device(device, at, limit)
        .await
        .expect("pending_for_device failed")
        .into_iter()
        .map(|s| s.id)
        .collect()
}

async fn find(signals: &impl SignalRepository, owner: UserId, id: SignalId) -> Option<SignalWithDeliveries> {
    signals.find(owner, id).await.expect("find failed")
}

/// `signal` with its deliveries in device order, for comparing whole
/// signals (the order of deliveries is not part of the contract).
fn in_device_order(signal: Option<SignalWithDeliveries>) -> Option<SignalWithDeliveries> {
    signal.map(|mut s| {
        s.deliveries.sort_by_key(|d| d.device_id);
        s
    })
}

fn delivery_to(signal: &SignalWithDeliveries, device: DeviceId) -> Delivery {
    signal
        .deliveries
        .iter()
        .find(|d| d.device_id == device)
        .cloned()
        .unwrap_or_else(|| panic!("the signal has no delivery to {device}"))
}

fn ack(outcome: Outcome, at: DateTime<Utc>) -> Ack {
    Ack {
        outcome,
        ticket: Some(4812),
        fill_price: Some(1.0851),
        message: Some("filled".into()),
        at,
    }
}

async fn acknowledge(
    signals: &impl SignalRepository,
    device: DeviceId,
    signal: SignalId,
    ack: &Ack,
) -> AckRecord {
    signals
        .acknowledge(device, signal, ack)
        .await
        .expect("acknowledge failed")
}

pub async fn active_devices_are_the_owners_unrevoked_ones(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, mut ids) = owner_with_devices(accounts, devices, 3).await;
    owner_with_devices(accounts, devices, 1).await;
    let revoked = ids.pop().expect("three devices");
    devices
        .revoke(
            owner,
            revoked,
            t0(),
            &audit_event(AuditAction::DeviceRevoked, Some(owner), Some(revoked)),
        )
        .await
        .expect("revoke failed");
    let mut active = signals
        .active_devices(owner)
        .await
        .expect("active_devices failed");
    active.sort();
    ids.sort();
    assert_eq!(
        active, ids,
        "active devices are exactly the owner's unrevoked devices"
    );
}

pub async fn insert_stores_the_signal_with_one_fresh_delivery_per_device(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 2).await;
    let new = new_signal(owner, 1, &ids, None);
    let stored = signals.insert(&new).await.expect("insert failed");
    assert_eq!(stored.signal, new.signal, "insert returns the signal as given");
    let mut targets: Vec<DeviceId> = stored.deliveries.iter().map(|d| d.device_id).collect();
    targets.sort();
    assert_eq!(targets, ids, "one delivery per target device");
    assert!(
        stored.deliveries.iter().all(|d| d.signal_id == new.signal.id
            && d.first_polled_at.is_none()
            && d.ack.is_none()
            && d.cancelled_at.is_none()),
        "new deliveries are unpolled, unacknowledged and not cancelled: {:?}",
        stored.deliveries
    );
    assert_eq!(
        in_device_order(find(signals, owner, new.signal.id).await),
        in_device_order(Some(stored)),
        "find returns what insert returned"
    );
}

pub async fn an_idempotency_key_is_unique_per_owner(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (ann, anns) = owner_with_devices(accounts, devices, 1).await;
    let (bob, bobs) = owner_with_devices(accounts, devices, 1).await;
    published(signals, new_signal(ann, 1, &anns, Some("key-1"))).await;
    let again = new_signal(ann, 2, &anns, Some("key-1"));
    let result = signals.insert(&again).await;
    assert!(
        matches!(result, Err(InsertSignalError::DuplicateKey)),
        "an owner's second signal with the same key must be DuplicateKey, got {result:?}"
    );
    assert!(
        find(signals, ann, again.signal.id).await.is_none(),
        "a refused signal is not stored"
    );
    let result = signals.insert(&new_signal(bob, 2, &bobs, Some("key-1"))).await;
    assert!(
        result.is_ok(),
        "another owner may use the same key, got {result:?}"
    );
}

pub async fn a_signal_is_found_by_its_idempotency_key(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let (stranger, _) = owner_with_devices(accounts, devices, 0).await;
    let new = published(signals, new_signal(owner, 1, &ids, Some("key-1"))).await;
    let (found, description) = signals
        .find_by_idempotency_key(owner, "key-1")
        .await
        .expect("find_by_idempotency_key failed")
        .expect("a signal published with a key must be found by it");
    assert_eq!(found.signal.id, new.signal.id, "the key finds its signal");
    assert_eq!(
        description, "description of key-1",
        "with the stored request description"
    );
    for (who, key) in [(owner, "key-2"), (stranger, "key-1")] {
        assert!(
            signals
                .find_by_idempotency_key(who, key)
                .await
                .expect("find_by_idempotency_key failed")
                .is_none(),
            "an unknown key, or another owner's key, finds nothing"
        );
    }
}

pub async fn a_signal_is_found_only_by_its_owner(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let (stranger, _) = owner_with_devices(accounts, devices, 0).await;
    let new = published(signals, new_signal(owner, 1, &ids, None)).await;
    assert!(
        find(signals, stranger, new.signal.id).await.is_none(),
        "another owner must not find the signal"
    );
    assert!(
        find(signals, owner, SignalId::from_uuid(uuid::Uuid::now_v7()))
            .await
            .is_none(),
        "an unknown id finds nothing"
    );
}

pub async fn pending_signals_are_oldest_first_and_limited(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let d = ids[0];
    let s2 = published(signals, new_signal(owner, 2, &[d], None)).await;
    let s1 = published(signals, new_signal(owner, 1, &[d], None)).await;
    let s3 = published(signals, new_signal(owner, 3, &[d], None)).await;
    let at = t0() + Duration::minutes(5);
    assert_eq!(
        pending(signals, d, at, 10).await,
        [s1.signal.id, s2.signal.id, s3.signal.id],
        "pending signals come oldest first (by created_at, not insertion)"
    );
    assert_eq!(
        pending(signals, d, at, 2).await,
        [s1.signal.id, s2.signal.id],
        "at most `limit` pending signals, the oldest"
    );
}

pub async fn pending_signals_are_per_device(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 2).await;
    let (d1, d2) = (ids[0], ids[1]);
    let both = published(signals, new_signal(owner, 1, &[d1, d2], None)).await;
    let only_d1 = published(signals, new_signal(owner, 2, &[d1], None)).await;
    let at = t0() + Duration::minutes(5);
    assert_eq!(
        pending(signals, d1, at, 10).await,
        [both.signal.id, only_d1.signal.id],
        "a device gets the signals sent to it"
    );
    assert_eq!(
        pending(signals, d2, at, 10).await,
        [both.signal.id],
        "and not those sent only to others"
    );
}

pub async fn expired_signals_are_not_pending(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let mut expiring = new_signal(owner, 1, &ids, None);
    expiring.signal.expires_at = Some(t0() + Duration::minutes(10));
    let expiring = published(signals, expiring).await;
    let lasting = published(signals, new_signal(owner, 2, &ids, None)).await;
    assert_eq!(
        pending(signals, ids[0], t0() + Duration::minutes(9), 10).await,
        [expiring.signal.id, lasting.signal.id],
        "before its expiry a signal is pending"
    );
    assert_eq!(
        pending(signals, ids[0], t0() + Duration::minutes(10), 10).await,
        [lasting.signal.id],
        "from its expiry on a signal is no longer pending"
    );
}

pub async fn the_first_poll_time_is_kept(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 2).await;
    let (d1, d2) = (ids[0], ids[1]);
    let s = published(signals, new_signal(owner, 1, &[d1, d2], None)).await;
    let (first, later) = (t0() + Duration::minutes(5), t0() + Duration::minutes(6));
    for at in [first, later] {
        signals
            .mark_delivered(&[
                (d1, s.signal.id, at),
                (d1, SignalId::from_uuid(uuid::Uuid::now_v7()), at),
            ])
            .await
            .expect("mark_delivered failed (an unknown delivery must be skipped)");
    }
    let stored = find(signals, owner, s.signal.id).await.expect("the signal");
    assert_eq!(
        delivery_to(&stored, d1).first_polled_at,
        Some(first),
        "the first poll's time is kept; later polls leave it alone"
    );
    assert_eq!(
        delivery_to(&stored, d2).first_polled_at,
        None,
        "marking one device's delivery leaves the others alone"
    );
    assert_eq!(
        pending(signals, d1, later, 10).await,
        [s.signal.id],
        "a polled but unacknowledged signal stays pending"
    );
}

pub async fn the_first_acknowledgement_stays(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let s = published(signals, new_signal(owner, 1, &ids, None)).await;
    let at = t0() + Duration::minutes(5);
    let executed = ack(Outcome::Executed, at);
    assert_eq!(
        acknowledge(signals, ids[0], s.signal.id, &executed).await,
        AckRecord::Recorded(executed.clone()),
        "the first acknowledgement is recorded as given"
    );
    let failed = ack(Outcome::Failed, at + Duration::minutes(1));
    assert_eq!(
        acknowledge(signals, ids[0], s.signal.id, &failed).await,
        AckRecord::Existing(executed.clone()),
        "a later acknowledgement returns the first, unchanged"
    );
    let stored = find(signals, owner, s.signal.id).await.expect("the signal");
    assert_eq!(
        delivery_to(&stored, ids[0]).ack,
        Some(executed),
        "the delivery holds the first acknowledgement"
    );
}

pub async fn an_acknowledgement_of_a_signal_not_sent_to_the_device_is_not_found(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 2).await;
    let s = published(signals, new_signal(owner, 1, &ids[..1], None)).await;
    let (_, strangers) = owner_with_devices(accounts, devices, 1).await;
    let a = ack(Outcome::Executed, t0());
    for device in [ids[1], strangers[0]] {
        assert_eq!(
            acknowledge(signals, device, s.signal.id, &a).await,
            AckRecord::NotFound,
            "a device the signal was not sent to cannot acknowledge it"
        );
    }
    assert_eq!(
        acknowledge(signals, ids[0], SignalId::from_uuid(uuid::Uuid::now_v7()), &a).await,
        AckRecord::NotFound,
        "an unknown signal cannot be acknowledged"
    );
}

pub async fn an_acknowledgement_sets_the_devices_last_ack_and_ends_pending(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let acked = published(signals, new_signal(owner, 1, &ids, None)).await;
    let other = published(signals, new_signal(owner, 2, &ids, None)).await;
    let at = t0() + Duration::minutes(5);
    acknowledge(signals, ids[0], acked.signal.id, &ack(Outcome::Executed, at)).await;
    assert_eq!(
        devices
            .find(owner, ids[0])
            .await
            .expect("find device failed")
            .and_then(|d| d.last_ack_at),
        Some(at),
        "an acknowledgement sets the device's last_ack_at"
    );
    assert_eq!(
        pending(signals, ids[0], at, 10).await,
        [other.signal.id],
        "an acknowledged signal is no longer pending"
    );
}

pub async fn a_cancel_stops_unacknowledged_deliveries(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 2).await;
    let (d1, d2) = (ids[0], ids[1]);
    let s = published(signals, new_signal(owner, 1, &ids, None)).await;
    let acked_at = t0() + Duration::minutes(5);
    acknowledge(signals, d1, s.signal.id, &ack(Outcome::Executed, acked_at)).await;
    let at = t0() + Duration::minutes(6);
    let cancelled = signals
        .cancel(owner, s.signal.id, at)
        .await
        .expect("cancel failed")
        .expect("the owner can cancel their signal");
    assert_eq!(
        cancelled.signal.cancelled_at,
        Some(at),
        "the signal records its cancel time"
    );
    let acked = delivery_to(&cancelled, d1);
    assert!(
        acked.ack.is_some() && acked.cancelled_at.is_none(),
        "an acknowledged delivery stays acknowledged, not cancelled: {acked:?}"
    );
    assert_eq!(
        delivery_to(&cancelled, d2).cancelled_at,
        Some(at),
        "an unacknowledged delivery is cancelled"
    );
    assert!(
        pending(signals, d2, at, 10).await.is_empty(),
        "a cancelled delivery is no longer pending"
    );
    assert_eq!(
        in_device_order(find(signals, owner, s.signal.id).await),
        in_device_order(Some(cancelled)),
        "cancel returns what is stored"
    );
}

pub async fn a_cancel_is_idempotent_and_only_the_owners(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let (stranger, _) = owner_with_devices(accounts, devices, 0).await;
    let s = published(signals, new_signal(owner, 1, &ids, None)).await;
    let at = t0() + Duration::minutes(6);
    assert!(
        signals
            .cancel(stranger, s.signal.id, at)
            .await
            .expect("cancel failed")
            .is_none(),
        "another owner cannot cancel the signal (None)"
    );
    assert!(
        pending(signals, ids[0], at, 10).await.contains(&s.signal.id),
        "a refused cancel changes nothing"
    );
    signals
        .cancel(owner, s.signal.id, at)
        .await
        .expect("cancel failed");
    let again = signals
        .cancel(owner, s.signal.id, at + Duration::hours(1))
        .await
        .expect("cancel failed")
        .expect("a cancelled signal can be cancelled again");
    assert_eq!(
        again.signal.cancelled_at,
        Some(at),
        "a second cancel keeps the first time"
    );
    assert_eq!(
        delivery_to(&again, ids[0]).cancelled_at,
        Some(at),
        "and so do the deliveries"
    );
}

pub async fn signals_are_listed_newest_first_in_pages_with_deliveries(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 2).await;
    let (stranger, theirs) = owner_with_devices(accounts, devices, 1).await;
    published(signals, new_signal(stranger, 9, &theirs, None)).await;
    let s1 = published(signals, new_signal(owner, 1, &ids, None)).await;
    let s2 = published(signals, new_signal(owner, 2, &ids[..1], None)).await;
    let s3 = published(signals, new_signal(owner, 3, &ids, None)).await;
    let page = signals
        .list(owner, &PageRequest::first(2))
        .await
        .expect("list failed");
    assert_eq!(
        page.items.iter().map(|s| s.signal.id).collect::<Vec<_>>(),
        [s3.signal.id, s2.signal.id],
        "the first page holds the owner's newest signals"
    );
    assert_eq!(
        (page.items[0].deliveries.len(), page.items[1].deliveries.len()),
        (2, 1),
        "listed signals carry their deliveries"
    );
    let rest = signals
        .list(
            owner,
            &PageRequest {
                limit: 2,
                after: page.next,
            },
        )
        .await
        .expect("list failed");
    assert_eq!(
        rest.items.iter().map(|s| s.signal.id).collect::<Vec<_>>(),
        [s1.signal.id],
        "the next page continues after the cursor, without other owners' signals"
    );
    assert_eq!(rest.next, None, "the last page has no next cursor");
}

pub async fn deleting_the_owner_deletes_the_signals(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let s = published(signals, new_signal(owner, 1, &ids, None)).await;
    accounts
        .delete(
            owner,
            &audit_event(AuditAction::AccountDeleted, Some(owner), None),
        )
        .await
        .expect("delete failed");
    assert!(
        find(signals, owner, s.signal.id).await.is_none(),
        "a deleted owner's signals are gone"
    );
    assert!(
        pending(signals, ids[0], t0() + Duration::minutes(5), 10)
            .await
            .is_empty(),
        "and nothing of theirs is pending"
    );
}

/// An adaptation of the fixture order under `doc` (an account default).
fn adapted(doc: serde_json::Value) -> crate::config::Adaptation {
    let current = crate::config::CurrentConfig {
        version: 1,
        layer: crate::config::ConfigLayer::parse(&doc).expect("a valid document"),
    };
    crate::config::adapt(
        &order("EURUSD"),
        &crate::config::EffectiveConfig::merge(&current, None, 7),
    )
}

pub async fn pending_orders_are_adapted_for_their_device(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 3).await;
    let mut new = new_signal(owner, 1, &ids, None);
    let mapped = adapted(serde_json::json!({
        "symbol_map": {"EURUSD": "EURUSD.m"},
        "sizing": {"type": "multiplier", "factor": 0.6}
    }));
    // The first and the last device share one adaptation, the middle one
    // has its own: each row must keep its device's.
    new.deliveries[0].1 = mapped.clone();
    new.deliveries[2].1 = mapped.clone();
    let stored = signals.insert(&new).await.expect("insert failed");
    assert_eq!(
        delivery_to(&stored, ids[0]).adaptation,
        Some(mapped.clone()),
        "a delivery keeps the values it was adapted with"
    );
    let got = signals
        .pending_for_device(ids[0], t0() + Duration::minutes(2), 10)
        .await
        .expect("pending_for_device failed");
    assert_eq!(got.len(), 1, "the adapted signal is pending for the device");
    assert_eq!(
        got[0].order.instrument.as_str(),
        "EURUSD.m",
        "the device receives its broker's symbol"
    );
    assert!(
        (got[0].order.volume - 0.3).abs() < 1e-9,
        "and its volume: {}",
        got[0].order.volume
    );
    assert_eq!(
        got[0].order.entry_price, new.signal.order.entry_price,
        "the rest as published"
    );
    let other = signals
        .pending_for_device(ids[1], t0() + Duration::minutes(2), 10)
        .await
        .expect("pending_for_device failed");
    assert_eq!(
        other[0].order, new.signal.order,
        "another device gets the order as its own config says"
    );
    let found = find(signals, owner, new.signal.id).await.expect("found");
    assert_eq!(
        delivery_to(&found, ids[0]).adaptation,
        Some(mapped),
        "find returns the adaptation too"
    );
    for (id, adaptation) in &new.deliveries {
        assert_eq!(
            delivery_to(&found, *id).adaptation.as_ref(),
            Some(adaptation),
            "device {id} keeps its own adaptation"
        );
    }
}

pub async fn a_skipped_delivery_is_kept_but_never_pending(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (owner, ids) = owner_with_devices(accounts, devices, 1).await;
    let mut new = new_signal(owner, 1, &ids, None);
    let paused = adapted(serde_json::json!({"mode": "paused"}));
    assert_eq!(
        paused.skipped(),
        Some(crate::config::SkipReason::Paused),
        "the fixture: a paused device skips the signal"
    );
    new.deliveries[0].1 = paused.clone();
    signals.insert(&new).await.expect("insert failed");
    assert!(
        pending(signals, ids[0], t0() + Duration::minutes(2), 10)
            .await
            .is_empty(),
        "a skipped delivery is never polled"
    );
    let found = find(signals, owner, new.signal.id).await.expect("found");
    let d = delivery_to(&found, ids[0]);
    assert_eq!(d.adaptation, Some(paused), "the skip is recorded with its reason");
    assert_eq!(
        d.status(&found.signal, t0()),
        DeliveryStatus::Skipped,
        "its status reads skipped"
    );
}

/// Runs every rule in order on one store; prefer
/// [`signal_repository_contract!`](crate::signal_repository_contract),
/// which gives each rule a test of its own.
pub async fn signal_repository_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    active_devices_are_the_owners_unrevoked_ones(accounts, devices, signals).await;
    insert_stores_the_signal_with_one_fresh_delivery_per_device(accounts, devices, signals).await;
    an_idempotency_key_is_unique_per_owner(accounts, devices, signals).await;
    a_signal_is_found_by_its_idempotency_key(accounts, devices, signals).await;
    a_signal_is_found_only_by_its_owner(accounts, devices, signals).await;
    pending_signals_are_oldest_first_and_limited(accounts, devices, signals).await;
    pending_signals_are_per_device(accounts, devices, signals).await;
    expired_signals_are_not_pending(accounts, devices, signals).await;
    the_first_poll_time_is_kept(accounts, devices, signals).await;
    the_first_acknowledgement_stays(accounts, devices, signals).await;
    an_acknowledgement_of_a_signal_not_sent_to_the_device_is_not_found(accounts, devices, signals).await;
    an_acknowledgement_sets_the_devices_last_ack_and_ends_pending(accounts, devices, signals).await;
    a_cancel_stops_unacknowledged_deliveries(accounts, devices, signals).await;
    a_cancel_is_idempotent_and_only_the_owners(accounts, devices, signals).await;
    signals_are_listed_newest_first_in_pages_with_deliveries(accounts, devices, signals).await;
    deleting_the_owner_deletes_the_signals(accounts, devices, signals).await;
    pending_orders_are_adapted_for_their_device(accounts, devices, signals).await;
    a_skipped_delivery_is_kept_but_never_pending(accounts, devices, signals).await;
}

/// One `#[tokio::test]` per [`SignalRepository`] rule, in a module
/// `signal_repository_contract`. `$setup`: an async block returning
/// `(guard, accounts, devices, signals)` over one store.
#[macro_export]
macro_rules! signal_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            signal_repository_contract,
            signal,
            $setup,
            (accounts, devices, signals),
            [
                active_devices_are_the_owners_unrevoked_ones,
                insert_stores_the_signal_with_one_fresh_delivery_per_device,
                an_idempotency_key_is_unique_per_owner,
                a_signal_is_found_by_its_idempotency_key,
                a_signal_is_found_only_by_its_owner,
                pending_signals_are_oldest_first_and_limited,
                pending_signals_are_per_device,
                expired_signals_are_not_pending,
                the_first_poll_time_is_kept,
                the_first_acknowledgement_stays,
                an_acknowledgement_of_a_signal_not_sent_to_the_device_is_not_found,
                an_acknowledgement_sets_the_devices_last_ack_and_ends_pending,
                a_cancel_stops_unacknowledged_deliveries,
                a_cancel_is_idempotent_and_only_the_owners,
                signals_are_listed_newest_first_in_pages_with_deliveries,
                deleting_the_owner_deletes_the_signals,
                pending_orders_are_adapted_for_their_device,
                a_skipped_delivery_is_kept_but_never_pending,
            ]
        );
    };
}
