//! The [`SignalRepository`] contract.

use chrono::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::account::*;
use crate::audit::AuditAction;
use crate::device::*;
use crate::pagination::PageRequest;
use crate::signal::*;

/// Everything a [`SignalRepository`] must do; `accounts` and `devices`
/// provide owners and targets.
pub async fn signal_repository_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
) {
    let (ann, bob) = (new_user(40), new_user(41));
    for u in [&ann, &bob] {
        accounts
            .create(u, &audit_event(AuditAction::AccountRegistered, Some(u.id), None))
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for (owner, name) in [(ann.id, "D1"), (ann.id, "D2"), (ann.id, "D3"), (bob.id, "B1")] {
        let d = new_device(owner, name, 0);
        devices
            .insert(&d, 10, &device_audit(AuditAction::DeviceRegistered, &d))
            .await
            .unwrap();
        ids.push(d.id);
    }
    let (d1, d2, d3, b1) = (ids[0], ids[1], ids[2], ids[3]);
    devices
        .revoke(
            ann.id,
            d3,
            t0(),
            &audit_event(AuditAction::DeviceRevoked, Some(ann.id), Some(d3)),
        )
        .await
        .unwrap();
    let mut active = signals.active_devices(ann.id).await.unwrap();
    active.sort();
    let mut expected = vec![d1, d2];
    expected.sort();
    assert_eq!(active, expected);

    // Insert with deliveries; idempotency keys are per owner.
    let s1 = new_signal(ann.id, 1, &[d1, d2], Some("key-1"));
    let stored = signals.insert(&s1).await.unwrap();
    assert_eq!(stored.signal, s1.signal);
    assert_eq!(stored.deliveries.len(), 2);
    assert!(
        stored
            .deliveries
            .iter()
            .all(|d| d.first_polled_at.is_none() && d.ack.is_none())
    );
    assert!(matches!(
        signals.insert(&new_signal(ann.id, 2, &[d1], Some("key-1"))).await,
        Err(InsertSignalError::DuplicateKey)
    ));
    signals
        .insert(&new_signal(bob.id, 2, &[b1], Some("key-1")))
        .await
        .unwrap();
    let (found, description) = signals
        .find_by_idempotency_key(ann.id, "key-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.signal.id, description.as_str()),
        (s1.signal.id, "description of key-1")
    );
    assert!(
        signals
            .find_by_idempotency_key(ann.id, "key-2")
            .await
            .unwrap()
            .is_none()
    );
    assert!(signals.find(bob.id, s1.signal.id).await.unwrap().is_none());

    // Pending: oldest first, limited, unexpired, per device.
    let s2 = new_signal(ann.id, 3, &[d1], None);
    signals.insert(&s2).await.unwrap();
    let mut s3 = new_signal(ann.id, 4, &[d1], None);
    s3.signal.expires_at = Some(t0() + Duration::minutes(10));
    signals.insert(&s3).await.unwrap();
    let at = t0() + Duration::minutes(5);
    let ids_of = |v: Vec<Signal>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids_of(signals.pending_for_device(d1, at, 10).await.unwrap()),
        [s1.signal.id, s2.signal.id, s3.signal.id]
    );
    assert_eq!(
        ids_of(signals.pending_for_device(d1, at, 1).await.unwrap()),
        [s1.signal.id]
    );
    assert_eq!(
        ids_of(signals.pending_for_device(d2, at, 10).await.unwrap()),
        [s1.signal.id]
    );
    assert!(
        signals
            .pending_for_device(b1, at, 10)
            .await
            .unwrap()
            .iter()
            .all(|s| s.owner == bob.id)
    );
    let later = t0() + Duration::minutes(11);
    assert_eq!(
        ids_of(signals.pending_for_device(d1, later, 10).await.unwrap()),
        [s1.signal.id, s2.signal.id]
    );

    // First poll time is kept.
    signals.mark_delivered(d1, &[s1.signal.id], at).await.unwrap();
    signals.mark_delivered(d1, &[s1.signal.id], later).await.unwrap();
    let s1_now = signals.find(ann.id, s1.signal.id).await.unwrap().unwrap();
    let d1_delivery = s1_now.deliveries.iter().find(|d| d.device_id == d1).unwrap();
    assert_eq!(d1_delivery.first_polled_at, Some(at));
    assert!(
        s1_now
            .deliveries
            .iter()
            .find(|d| d.device_id == d2)
            .unwrap()
            .first_polled_at
            .is_none()
    );

    // Acknowledge once; the first stays.
    let ack = Ack {
        outcome: Outcome::Executed,
        ticket: Some(4812),
        fill_price: Some(1.0851),
        message: Some("filled".into()),
        at,
    };
    assert_eq!(
        signals.acknowledge(d1, s1.signal.id, &ack).await.unwrap(),
        AckRecord::Recorded(ack.clone())
    );
    let other = Ack {
        outcome: Outcome::Failed,
        at: later,
        ..ack.clone()
    };
    assert_eq!(
        signals.acknowledge(d1, s1.signal.id, &other).await.unwrap(),
        AckRecord::Existing(ack.clone())
    );
    assert_eq!(
        signals.acknowledge(b1, s1.signal.id, &ack).await.unwrap(),
        AckRecord::NotFound
    );
    assert_eq!(
        signals
            .acknowledge(d1, SignalId::from_uuid(Uuid::now_v7()), &ack)
            .await
            .unwrap(),
        AckRecord::NotFound
    );
    assert_eq!(
        devices.find(ann.id, d1).await.unwrap().unwrap().last_ack_at,
        Some(at)
    );
    assert_eq!(
        ids_of(signals.pending_for_device(d1, at, 10).await.unwrap()),
        [s2.signal.id, s3.signal.id]
    );

    // Cancel: unacknowledged deliveries stop; acknowledged ones stay so.
    let cancelled = signals
        .cancel(ann.id, s1.signal.id, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.signal.cancelled_at, Some(later));
    let by_device = |d: DeviceId| {
        cancelled
            .deliveries
            .iter()
            .find(|x| x.device_id == d)
            .unwrap()
            .clone()
    };
    assert!(by_device(d1).ack.is_some() && by_device(d1).cancelled_at.is_none());
    assert_eq!(by_device(d2).cancelled_at, Some(later));
    assert!(signals.pending_for_device(d2, at, 10).await.unwrap().is_empty());
    let again = signals
        .cancel(ann.id, s1.signal.id, later + Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.signal.cancelled_at, Some(later), "idempotent");
    assert!(
        signals
            .cancel(bob.id, s1.signal.id, later)
            .await
            .unwrap()
            .is_none()
    );

    // Listing: newest first, paginated, deliveries included.
    let page = signals.list(ann.id, &PageRequest::first(2)).await.unwrap();
    assert_eq!(
        page.items.iter().map(|s| s.signal.id).collect::<Vec<_>>(),
        [s3.signal.id, s2.signal.id]
    );
    assert_eq!(page.items[0].deliveries.len(), 1);
    let rest = signals
        .list(
            ann.id,
            &PageRequest {
                limit: 2,
                after: page.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|s| s.signal.id).collect::<Vec<_>>(),
        [s1.signal.id]
    );
    assert_eq!(rest.next, None);

    // Deleting the owner deletes the signals.
    accounts
        .delete(
            ann.id,
            &audit_event(AuditAction::AccountDeleted, Some(ann.id), None),
        )
        .await
        .unwrap();
    assert!(signals.find(ann.id, s2.signal.id).await.unwrap().is_none());
}
