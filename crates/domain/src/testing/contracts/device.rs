//! The [`DeviceRepository`] contract.

use chrono::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::account::*;
use crate::audit::{AuditAction, AuditLog};
use crate::device::*;
use crate::pagination::PageRequest;

/// Everything a [`DeviceRepository`] must do; `accounts` provides owners,
/// `audit` shows what was recorded.
pub async fn device_repository_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    let (ann, bob) = (new_user(30), new_user(31));
    for u in [&ann, &bob] {
        accounts
            .create(u, &audit_event(AuditAction::AccountRegistered, Some(u.id), None))
            .await
            .unwrap();
    }
    let audit_count = async |user: UserId| {
        audit
            .list_for_user(user, &PageRequest::first(100))
            .await
            .unwrap()
            .items
            .len()
    };

    // Insert, find, ownership.
    let d1 = new_device(ann.id, "Main MT5", 1);
    let stored = devices
        .insert(&d1, 3, &device_audit(AuditAction::DeviceRegistered, &d1))
        .await
        .unwrap();
    assert_eq!(stored.id, d1.id);
    assert_eq!(stored.name, d1.name);
    assert_eq!(stored.status(), DeviceStatus::Active);
    assert_eq!(stored.secret_fingerprint, d1.fingerprint);
    assert_eq!(
        (stored.created_at, stored.updated_at),
        (d1.created_at, d1.created_at)
    );
    assert_eq!(
        (stored.last_seen_at, stored.last_poll_at, stored.last_ack_at),
        (None, None, None)
    );
    assert_eq!(devices.find(ann.id, d1.id).await.unwrap().unwrap(), stored);
    assert!(devices.find(bob.id, d1.id).await.unwrap().is_none());
    assert_eq!(audit_count(ann.id).await, 2);

    // Names are unique per owner among active devices, case-insensitively.
    let dup = new_device(ann.id, "main mt5", 2);
    assert!(matches!(
        devices
            .insert(&dup, 3, &device_audit(AuditAction::DeviceRegistered, &dup))
            .await,
        Err(InsertDeviceError::NameTaken)
    ));
    let bobs = new_device(bob.id, "Main MT5", 2);
    devices
        .insert(&bobs, 3, &device_audit(AuditAction::DeviceRegistered, &bobs))
        .await
        .unwrap();
    assert_eq!(audit_count(ann.id).await, 2, "a failed insert records nothing");

    // The active-device limit.
    let d2 = new_device(ann.id, "Second", 3);
    let d3 = new_device(ann.id, "Third", 4);
    let d4 = new_device(ann.id, "Fourth", 5);
    for d in [&d2, &d3] {
        devices
            .insert(d, 3, &device_audit(AuditAction::DeviceRegistered, d))
            .await
            .unwrap();
    }
    assert!(matches!(
        devices
            .insert(&d4, 3, &device_audit(AuditAction::DeviceRegistered, &d4))
            .await,
        Err(InsertDeviceError::LimitReached)
    ));

    // Listing: newest first, paginated, filtered, owner-scoped.
    let page = devices.list(ann.id, None, &PageRequest::first(2)).await.unwrap();
    let ids: Vec<DeviceId> = page.items.iter().map(|d| d.id).collect();
    assert_eq!(ids, [d3.id, d2.id]);
    let rest = devices
        .list(
            ann.id,
            None,
            &PageRequest {
                limit: 2,
                after: page.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items.iter().map(|d| d.id).collect::<Vec<_>>(), [d1.id]);
    assert_eq!(rest.next, None);

    // Rename: conflicts, ownership, audit.
    let at = t0() + Duration::hours(1);
    let renamed = devices
        .rename(
            ann.id,
            d1.id,
            &DeviceName::parse("Renamed").unwrap(),
            at,
            &device_audit(AuditAction::DeviceRenamed, &d1),
        )
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "Renamed");
    assert_eq!(renamed.updated_at, at);
    assert!(matches!(
        devices
            .rename(
                ann.id,
                d1.id,
                &DeviceName::parse("SECOND").unwrap(),
                at,
                &device_audit(AuditAction::DeviceRenamed, &d1)
            )
            .await,
        Err(UpdateDeviceError::NameTaken)
    ));
    // Renaming to its own name in another case is fine.
    devices
        .rename(
            ann.id,
            d1.id,
            &DeviceName::parse("RENAMED").unwrap(),
            at,
            &device_audit(AuditAction::DeviceRenamed, &d1),
        )
        .await
        .unwrap();
    assert!(matches!(
        devices
            .rename(
                bob.id,
                d1.id,
                &DeviceName::parse("Mine").unwrap(),
                at,
                &device_audit(AuditAction::DeviceRenamed, &d1)
            )
            .await,
        Err(UpdateDeviceError::NotFound)
    ));

    // Secret rotation keeps the previous secret only with a grace period.
    let rotation = SecretRotation {
        secret: sealed("second secret"),
        fingerprint: SecretFingerprint::new("fp-2".into()),
        previous_valid_until: Some(at + Duration::minutes(10)),
        at,
    };
    let rotated = devices
        .rotate_secret(
            ann.id,
            d1.id,
            &rotation,
            &device_audit(AuditAction::DeviceSecretRotated, &d1),
        )
        .await
        .unwrap();
    assert_eq!(rotated.secret_fingerprint.as_str(), "fp-2");
    let secrets = devices.stored_secrets(None, 100).await.unwrap();
    let mine = secrets.iter().find(|s| s.device == d1.id).unwrap();
    assert_eq!(mine.current, rotation.secret);
    assert_eq!(mine.previous.as_ref(), Some(&d1.secret));
    assert!(matches!(
        devices
            .rotate_secret(
                bob.id,
                d1.id,
                &rotation,
                &device_audit(AuditAction::DeviceSecretRotated, &d1)
            )
            .await,
        Err(UpdateDeviceError::NotFound)
    ));

    // Re-sealing replaces exactly what was expected, once.
    let resealed = SealedSecret {
        key_id: "k2".into(),
        ciphertext: b"resealed".to_vec(),
    };
    let resealed_prev = SealedSecret {
        key_id: "k2".into(),
        ciphertext: b"resealed prev".to_vec(),
    };
    assert!(
        devices
            .reseal(mine, &resealed, Some(&resealed_prev))
            .await
            .unwrap()
    );
    assert!(
        !devices
            .reseal(mine, &resealed, Some(&resealed_prev))
            .await
            .unwrap(),
        "stale expectation"
    );
    let again = devices.stored_secrets(None, 100).await.unwrap();
    let mine = again.iter().find(|s| s.device == d1.id).unwrap();
    assert_eq!(
        (&mine.current, mine.previous.as_ref()),
        (&resealed, Some(&resealed_prev))
    );
    // Paging through stored secrets by id.
    let first = devices.stored_secrets(None, 1).await.unwrap();
    let second = devices.stored_secrets(Some(first[0].device), 1).await.unwrap();
    assert!(second[0].device > first[0].device);

    // Revocation: permanent, frees the name and a slot, recorded once.
    let before = audit_count(ann.id).await;
    let revoked = devices
        .revoke(ann.id, d2.id, at, &device_audit(AuditAction::DeviceRevoked, &d2))
        .await
        .unwrap();
    let Revocation::Revoked(revoked) = revoked else {
        panic!("expected a fresh revocation")
    };
    assert_eq!(revoked.status(), DeviceStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(at));
    assert!(matches!(
        devices
            .revoke(ann.id, d2.id, at, &device_audit(AuditAction::DeviceRevoked, &d2))
            .await,
        Ok(Revocation::AlreadyRevoked(_))
    ));
    assert_eq!(audit_count(ann.id).await, before + 1);
    assert!(matches!(
        devices
            .revoke(bob.id, d2.id, at, &device_audit(AuditAction::DeviceRevoked, &d2))
            .await,
        Err(UpdateDeviceError::NotFound)
    ));
    assert!(matches!(
        devices
            .rename(
                ann.id,
                d2.id,
                &DeviceName::parse("Zombie").unwrap(),
                at,
                &device_audit(AuditAction::DeviceRenamed, &d2)
            )
            .await,
        Err(UpdateDeviceError::Revoked)
    ));
    assert!(matches!(
        devices
            .rotate_secret(
                ann.id,
                d2.id,
                &rotation,
                &device_audit(AuditAction::DeviceSecretRotated, &d2)
            )
            .await,
        Err(UpdateDeviceError::Revoked)
    ));
    let reuse = new_device(ann.id, "Second", 6);
    devices
        .insert(&reuse, 3, &device_audit(AuditAction::DeviceRegistered, &reuse))
        .await
        .unwrap();

    let active = devices
        .list(ann.id, Some(DeviceStatus::Active), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(active.items.len(), 3);
    let gone = devices
        .list(ann.id, Some(DeviceStatus::Revoked), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(gone.items.iter().map(|d| d.id).collect::<Vec<_>>(), [d2.id]);

    // The hot path: credentials by id alone, coalesced last-seen writes,
    // heartbeats.
    let creds = devices.find_credentials(d1.id).await.unwrap().unwrap();
    assert_eq!((creds.id, creds.owner, creds.revoked), (d1.id, ann.id, false));
    assert_eq!(creds.current, resealed);
    assert_eq!(creds.previous.as_ref().map(|(s, _)| s), Some(&resealed_prev));
    assert_eq!(
        creds.previous.as_ref().map(|(_, until)| *until),
        rotation.previous_valid_until
    );
    assert!(devices.find_credentials(d2.id).await.unwrap().unwrap().revoked);
    assert!(
        devices
            .find_credentials(DeviceId::from_uuid(Uuid::now_v7()))
            .await
            .unwrap()
            .is_none()
    );
    let seen = t0() + Duration::hours(2);
    let interval = Duration::seconds(5);
    devices
        .record_activity(d1.id, Activity::Seen, seen, interval)
        .await
        .unwrap();
    devices
        .record_activity(d1.id, Activity::Seen, seen + Duration::seconds(3), interval)
        .await
        .unwrap();
    assert_eq!(
        devices.find(ann.id, d1.id).await.unwrap().unwrap().last_seen_at,
        Some(seen)
    );
    devices
        .record_activity(d1.id, Activity::Seen, seen + Duration::seconds(5), interval)
        .await
        .unwrap();
    devices
        .record_activity(d1.id, Activity::Poll, seen, interval)
        .await
        .unwrap();
    devices
        .record_activity(d1.id, Activity::Ack, seen + Duration::seconds(1), interval)
        .await
        .unwrap();
    let active = devices.find(ann.id, d1.id).await.unwrap().unwrap();
    assert_eq!(active.last_seen_at, Some(seen + Duration::seconds(5)));
    assert_eq!(active.last_poll_at, Some(seen));
    assert_eq!(active.last_ack_at, Some(seen + Duration::seconds(1)));
    let heartbeat = Heartbeat {
        ea_version: Some("2.0".into()),
        terminal_build: Some(4410),
        broker: Some("Broker Ltd".into()),
        account_login: Some(u64::MAX),
        balance: Some(1234.5),
        equity: None,
        received_at: seen,
    };
    devices.record_heartbeat(d1.id, &heartbeat).await.unwrap();
    assert_eq!(
        devices.find(ann.id, d1.id).await.unwrap().unwrap().last_heartbeat,
        Some(heartbeat)
    );

    // Deleting the owner deletes the devices.
    assert!(
        accounts
            .delete(
                ann.id,
                &audit_event(AuditAction::AccountDeleted, Some(ann.id), None)
            )
            .await
            .unwrap()
    );
    assert!(devices.find(ann.id, d1.id).await.unwrap().is_none());
    assert!(
        devices
            .list(ann.id, None, &PageRequest::first(100))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(devices.find(bob.id, bobs.id).await.unwrap().is_some());
}
