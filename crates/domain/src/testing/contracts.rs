//! Port contract suites: generic over the port, run against the fakes in
//! this crate and against the real adapters in theirs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use std::collections::BTreeMap;

use crate::account::*;
use crate::audit::{AuditAction, AuditEvent, AuditLog, ClientInfo};
use crate::device::*;
use crate::pagination::PageRequest;
use crate::signal::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A distinct user; `n` keeps usernames and emails apart within a suite.
pub fn new_user(n: u32) -> NewUser {
    NewUser {
        id: UserId::from_uuid(Uuid::now_v7()),
        username: Username::parse(&format!("Trader_{n}")).unwrap(),
        email: Email::parse(&format!("trader{n}@example.com")).unwrap(),
        password_hash: PasswordHash::new(format!("hash-{n}")),
        created_at: t0(),
    }
}

/// An audit event for `user`.
pub fn audit_event(action: AuditAction, user: Option<UserId>, device: Option<DeviceId>) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        occurred_at: t0(),
        action,
        user_id: user,
        device_id: device,
        client: ClientInfo::new(Some("203.0.113.7".parse().unwrap()), Some("EA/1.0")),
        details: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
    }
}

fn session_for(user: UserId) -> Session {
    Session {
        id: SessionId::from_uuid(Uuid::now_v7()),
        user_id: user,
        created_at: t0(),
        revoked_at: None,
    }
}

/// A distinct 32-byte digest, as real token digests are.
fn digest() -> RefreshTokenHash {
    RefreshTokenHash::new([*Uuid::new_v4().as_bytes(), *Uuid::new_v4().as_bytes()].concat())
}

fn token(session: SessionId) -> NewRefreshToken {
    NewRefreshToken {
        hash: digest(),
        session_id: session,
        created_at: t0(),
        expires_at: t0() + Duration::days(30),
    }
}

/// Everything an [`AccountRepository`] (with its sessions) must do.
pub async fn account_repository_contract(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let alice = new_user(1);
    let created = accounts
        .create(
            &alice,
            &audit_event(AuditAction::AccountRegistered, Some(alice.id), None),
        )
        .await
        .unwrap();
    assert_eq!(created.id, alice.id);
    assert_eq!(created.username, alice.username);
    assert_eq!(created.email, alice.email);
    assert_eq!(created.created_at, t0());

    // Uniqueness: same email; same username in another case.
    let mut dup_email = new_user(2);
    dup_email.email = alice.email.clone();
    assert!(matches!(
        accounts
            .create(
                &dup_email,
                &audit_event(AuditAction::AccountRegistered, Some(dup_email.id), None)
            )
            .await,
        Err(CreateUserError::EmailTaken)
    ));
    let mut dup_name = new_user(3);
    dup_name.username = Username::parse("tRADER_1").unwrap();
    assert!(matches!(
        accounts
            .create(
                &dup_name,
                &audit_event(AuditAction::AccountRegistered, Some(dup_name.id), None)
            )
            .await,
        Err(CreateUserError::UsernameTaken)
    ));

    // Lookups.
    assert_eq!(accounts.find_by_id(alice.id).await.unwrap().unwrap(), created);
    assert!(
        accounts
            .find_by_id(UserId::from_uuid(Uuid::now_v7()))
            .await
            .unwrap()
            .is_none()
    );
    let by_email = accounts
        .find_credentials_by_login(&LoginId::Email(alice.email.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.user.id, alice.id);
    assert_eq!(by_email.password_hash, alice.password_hash);
    let by_name = accounts
        .find_credentials_by_login(&LoginId::Username(Username::parse("TRADER_1").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.user.id, alice.id);
    assert!(
        accounts
            .find_credentials_by_login(&LoginId::Username(Username::parse("nobody").unwrap()))
            .await
            .unwrap()
            .is_none()
    );

    // Rehash keeps sessions; password change revokes them all.
    let s1 = session_for(alice.id);
    sessions
        .create(
            &s1,
            &token(s1.id),
            &audit_event(AuditAction::LoginSucceeded, Some(s1.user_id), None),
        )
        .await
        .unwrap();
    let new_hash = PasswordHash::new("rehashed".into());
    assert!(accounts.update_password_hash(alice.id, &new_hash).await.unwrap());
    assert_eq!(
        accounts
            .find_credentials_by_id(alice.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        new_hash
    );
    assert!(sessions.find(s1.id).await.unwrap().unwrap().is_active());

    let changed_at = t0() + Duration::hours(1);
    let changed = PasswordHash::new("changed".into());
    assert!(
        accounts
            .change_password(
                alice.id,
                &changed,
                changed_at,
                &audit_event(AuditAction::PasswordChanged, Some(alice.id), None)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        accounts
            .find_credentials_by_id(alice.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        changed
    );
    assert_eq!(
        sessions.find(s1.id).await.unwrap().unwrap().revoked_at,
        Some(changed_at)
    );
    assert_eq!(
        accounts.find_by_id(alice.id).await.unwrap().unwrap().updated_at,
        changed_at
    );

    let ghost = UserId::from_uuid(Uuid::now_v7());
    assert!(!accounts.update_password_hash(ghost, &changed).await.unwrap());
    assert!(
        !accounts
            .change_password(
                ghost,
                &changed,
                changed_at,
                &audit_event(AuditAction::PasswordChanged, Some(ghost), None)
            )
            .await
            .unwrap()
    );

    // Deletion cascades to sessions and refresh tokens.
    let s2 = session_for(alice.id);
    let t2 = token(s2.id);
    sessions
        .create(
            &s2,
            &t2,
            &audit_event(AuditAction::LoginSucceeded, Some(s2.user_id), None),
        )
        .await
        .unwrap();
    assert!(
        accounts
            .delete(
                alice.id,
                &audit_event(AuditAction::AccountDeleted, Some(alice.id), None)
            )
            .await
            .unwrap()
    );
    assert!(
        !accounts
            .delete(
                alice.id,
                &audit_event(AuditAction::AccountDeleted, Some(alice.id), None)
            )
            .await
            .unwrap()
    );
    assert!(accounts.find_by_id(alice.id).await.unwrap().is_none());
    assert!(sessions.find(s2.id).await.unwrap().is_none());
    assert!(sessions.find_refresh_token(&t2.hash).await.unwrap().is_none());
}

/// Everything a [`SessionRepository`] must do.
pub async fn session_repository_contract(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let bob = new_user(10);
    accounts
        .create(
            &bob,
            &audit_event(AuditAction::AccountRegistered, Some(bob.id), None),
        )
        .await
        .unwrap();
    let session = session_for(bob.id);
    let first = token(session.id);
    sessions
        .create(
            &session,
            &first,
            &audit_event(AuditAction::LoginSucceeded, Some(session.user_id), None),
        )
        .await
        .unwrap();
    assert_eq!(sessions.find(session.id).await.unwrap().unwrap(), session);

    let record = sessions.find_refresh_token(&first.hash).await.unwrap().unwrap();
    assert_eq!(record.session, session);
    assert_eq!(record.expires_at, first.expires_at);
    assert_eq!(record.rotated_at, None);
    assert!(sessions.find_refresh_token(&digest()).await.unwrap().is_none());

    // Rotation: exactly once.
    let at = t0() + Duration::minutes(5);
    let second = token(session.id);
    assert!(
        sessions
            .rotate_refresh_token(&first.hash, &second, at)
            .await
            .unwrap()
    );
    assert_eq!(
        sessions
            .find_refresh_token(&first.hash)
            .await
            .unwrap()
            .unwrap()
            .rotated_at,
        Some(at)
    );
    let third = token(session.id);
    assert!(
        !sessions
            .rotate_refresh_token(&first.hash, &third, at)
            .await
            .unwrap()
    );
    assert!(sessions.find_refresh_token(&third.hash).await.unwrap().is_none());
    assert!(
        !sessions
            .rotate_refresh_token(&digest(), &third, at)
            .await
            .unwrap()
    );

    // Revocation is idempotent and blocks rotation.
    let revoked_at = t0() + Duration::minutes(10);
    sessions
        .revoke(session.id, revoked_at, RevocationReason::Logout)
        .await
        .unwrap();
    sessions
        .revoke(
            session.id,
            revoked_at + Duration::minutes(1),
            RevocationReason::RefreshTokenReuse,
        )
        .await
        .unwrap();
    assert_eq!(
        sessions.find(session.id).await.unwrap().unwrap().revoked_at,
        Some(revoked_at)
    );
    assert!(
        !sessions
            .rotate_refresh_token(&second.hash, &third, at)
            .await
            .unwrap()
    );
    let record = sessions.find_refresh_token(&second.hash).await.unwrap().unwrap();
    assert!(!record.session.is_active());
    // Revoking an unknown session is not an error.
    sessions
        .revoke(SessionId::from_uuid(Uuid::now_v7()), at, RevocationReason::Logout)
        .await
        .unwrap();
}

/// Everything an [`AuditLog`] must do; `accounts` provides the user.
pub async fn audit_log_contract(accounts: &impl AccountRepository, audit: &impl AuditLog) {
    let user = new_user(20);
    let registered = audit_event(AuditAction::AccountRegistered, Some(user.id), None);
    accounts.create(&user, &registered).await.unwrap();
    let other = UserId::from_uuid(Uuid::now_v7());
    let mut recorded = vec![registered];
    for minutes in 1..=4 {
        let mut event = audit_event(AuditAction::LoginFailed, Some(user.id), None);
        event.occurred_at = t0() + Duration::minutes(minutes);
        audit.record(&event).await.unwrap();
        recorded.push(event);
    }
    audit
        .record(&audit_event(AuditAction::LoginFailed, Some(other), None))
        .await
        .unwrap();
    audit
        .record(&audit_event(AuditAction::LoginFailed, None, None))
        .await
        .unwrap();

    // Newest first, in pages, only the user's own, with every field intact.
    let first = audit
        .list_for_user(user.id, &PageRequest::first(3))
        .await
        .unwrap();
    let expected: Vec<AuditEvent> = recorded.iter().rev().cloned().collect();
    assert_eq!(first.items, expected[..3]);
    let next = first.next.expect("a second page");
    let second = audit
        .list_for_user(
            user.id,
            &PageRequest {
                limit: 3,
                after: Some(next),
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items, expected[3..]);
    assert_eq!(second.next, None);

    // The trail outlives the account.
    let mut deleted = audit_event(AuditAction::AccountDeleted, Some(user.id), None);
    deleted.occurred_at = t0() + Duration::hours(1);
    assert!(accounts.delete(user.id, &deleted).await.unwrap());
    let after = audit
        .list_for_user(user.id, &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(after.items.len(), recorded.len() + 1);
    assert_eq!(after.items[0].action, AuditAction::AccountDeleted);
}

fn sealed(label: &str) -> SealedSecret {
    SealedSecret {
        key_id: "k1".into(),
        ciphertext: label.as_bytes().to_vec(),
    }
}

fn new_device(owner: UserId, name: &str, minutes: i64) -> NewDevice {
    NewDevice {
        id: DeviceId::from_uuid(Uuid::now_v7()),
        owner,
        name: DeviceName::parse(name).unwrap(),
        secret: sealed(name),
        fingerprint: SecretFingerprint::new(format!("fp-{name}")),
        created_at: t0() + Duration::minutes(minutes),
    }
}

fn device_audit(action: AuditAction, device: &NewDevice) -> AuditEvent {
    audit_event(action, Some(device.owner), Some(device.id))
}

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

/// Everything a [`NonceStore`] must do (expiry and concurrency are tested
/// per adapter: they depend on real time and real parallelism).
pub async fn nonce_store_contract(store: &impl NonceStore) {
    let (a, b) = (
        DeviceId::from_uuid(Uuid::now_v7()),
        DeviceId::from_uuid(Uuid::now_v7()),
    );
    let ttl = Duration::minutes(10);
    assert!(
        store
            .check_and_record(a, "contract-nonce-0001", ttl)
            .await
            .unwrap(),
        "new"
    );
    assert!(
        !store
            .check_and_record(a, "contract-nonce-0001", ttl)
            .await
            .unwrap(),
        "replayed"
    );
    assert!(
        store
            .check_and_record(b, "contract-nonce-0001", ttl)
            .await
            .unwrap(),
        "per device"
    );
    assert!(
        store
            .check_and_record(a, "contract-nonce-0002", ttl)
            .await
            .unwrap(),
        "per nonce"
    );
    assert!(
        !store
            .check_and_record(b, "contract-nonce-0001", ttl)
            .await
            .unwrap()
    );
}

fn order(instrument: &str) -> Order {
    Order {
        instrument: Instrument::parse(instrument).unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        volume: 0.5,
        entry_price: Some(1.085),
        stop_loss: Some(1.08),
        take_profit: None,
        comment: Some("contract".into()),
    }
}

fn new_signal(owner: UserId, minutes: i64, devices: &[DeviceId], key: Option<&str>) -> NewSignal {
    NewSignal {
        signal: Signal {
            id: SignalId::from_uuid(Uuid::now_v7()),
            owner,
            order: order("EURUSD"),
            expires_at: None,
            created_at: t0() + Duration::minutes(minutes),
            cancelled_at: None,
        },
        devices: devices.to_vec(),
        idempotency: key.map(|k| (k.to_owned(), format!("description of {k}"))),
    }
}

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

/// Everything a [`crate::ratelimit::RateLimiter`] must do.
pub async fn rate_limiter_contract(limiter: &impl crate::ratelimit::RateLimiter) {
    use crate::ratelimit::RateLimit;
    let key = format!("contract:{}", Uuid::new_v4());
    let other = format!("contract:{}", Uuid::new_v4());
    let limit = RateLimit {
        limit: 3,
        window: std::time::Duration::from_secs(60),
    };
    let peeked = limiter.peek(&key, limit).await.unwrap();
    assert!(peeked.allowed && peeked.remaining == 3, "{peeked:?}");
    for expected_remaining in [2, 1, 0] {
        let d = limiter.hit(&key, limit).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, expected_remaining);
        assert!(d.reset_after <= limit.window && d.reset_after > std::time::Duration::ZERO);
    }
    let over = limiter.hit(&key, limit).await.unwrap();
    assert!(!over.allowed && over.remaining == 0);
    assert!(!limiter.peek(&key, limit).await.unwrap().allowed);
    assert!(
        limiter.hit(&other, limit).await.unwrap().allowed,
        "keys are independent"
    );
}
