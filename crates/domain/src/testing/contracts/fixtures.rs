//! Values the contract rules build their cases from.
//!
//! Every rule makes its own users (unique names and emails), so rules can
//! share a store with each other and with anything else: a rule never
//! depends on what the store held before it ran.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::account::*;
use crate::audit::{AuditAction, AuditEvent, ClientInfo};
use crate::device::*;
use crate::signal::*;

/// The time every fixture is created at: 2026-03-01T12:00:00Z.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A user named `Trader_<n>` (`trader<n>@example.com`). The name is fixed,
/// so two calls with the same `n` collide: for adapter tests that need a
/// known name. Contract rules use [`unique_user`].
pub fn new_user(n: u32) -> NewUser {
    NewUser {
        id: UserId::from_uuid(Uuid::now_v7()),
        username: Username::parse(&format!("Trader_{n}")).unwrap(),
        email: Email::parse(&format!("trader{n}@example.com")).unwrap(),
        password_hash: PasswordHash::new(format!("hash-{n}")),
        created_at: t0(),
    }
}

/// A user no other call returns: `Trader_<12 hex digits>`, mixed case so
/// case-insensitive rules have something to fold.
pub fn unique_user() -> NewUser {
    let tag = &Uuid::new_v4().simple().to_string()[..12];
    NewUser {
        id: UserId::from_uuid(Uuid::now_v7()),
        username: Username::parse(&format!("Trader_{tag}")).unwrap(),
        email: Email::parse(&format!("trader_{tag}@example.com")).unwrap(),
        password_hash: PasswordHash::new(format!("hash-{tag}")),
        created_at: t0(),
    }
}

/// An audit event for `user` (and `device`), at [`t0`].
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

/// Stores a [`unique_user`] and returns it.
pub async fn registered(accounts: &impl AccountRepository) -> NewUser {
    let user = unique_user();
    accounts
        .create(
            &user,
            &audit_event(AuditAction::AccountRegistered, Some(user.id), None),
        )
        .await
        .expect("setting up: storing a new user");
    user
}

/// A random id that no stored row has.
pub fn unknown_user() -> UserId {
    UserId::from_uuid(Uuid::now_v7())
}

pub fn session_for(user: UserId) -> Session {
    Session {
        id: SessionId::from_uuid(Uuid::now_v7()),
        user_id: user,
        created_at: t0(),
        revoked_at: None,
    }
}

/// A distinct 32-byte digest, as real token digests are.
pub fn digest() -> RefreshTokenHash {
    RefreshTokenHash::new([*Uuid::new_v4().as_bytes(), *Uuid::new_v4().as_bytes()].concat())
}

/// A refresh token of `session`, valid for 30 days from [`t0`].
pub fn token(session: SessionId) -> NewRefreshToken {
    NewRefreshToken {
        hash: digest(),
        session_id: session,
        created_at: t0(),
        expires_at: t0() + Duration::days(30),
    }
}

/// Stores a session of `user` with its first refresh token.
pub async fn logged_in(sessions: &impl SessionRepository, user: UserId) -> (Session, NewRefreshToken) {
    let session = session_for(user);
    let first = token(session.id);
    sessions
        .create(
            &session,
            &first,
            &audit_event(AuditAction::LoginSucceeded, Some(user), None),
        )
        .await
        .expect("setting up: storing a session");
    (session, first)
}

/// An opaque stand-in for a sealed secret.
pub fn sealed(label: &str) -> SealedSecret {
    SealedSecret {
        key_id: "k1".into(),
        ciphertext: label.as_bytes().to_vec(),
    }
}

/// A device of `owner` named `name`, created `minutes` after [`t0`].
pub fn new_device(owner: UserId, name: &str, minutes: i64) -> NewDevice {
    NewDevice {
        id: DeviceId::from_uuid(Uuid::now_v7()),
        owner,
        name: DeviceName::parse(name).unwrap(),
        secret: sealed(name),
        fingerprint: SecretFingerprint::new(format!("fp-{name}")),
        created_at: t0() + Duration::minutes(minutes),
    }
}

pub fn device_audit(action: AuditAction, device: &NewDevice) -> AuditEvent {
    audit_event(action, Some(device.owner), Some(device.id))
}

/// Stores a device of `owner` named `name` (at most 10 active per owner).
pub async fn stored_device(
    devices: &impl DeviceRepository,
    owner: UserId,
    name: &str,
    minutes: i64,
) -> NewDevice {
    let device = new_device(owner, name, minutes);
    devices
        .insert(&device, 10, &device_audit(AuditAction::DeviceRegistered, &device))
        .await
        .unwrap_or_else(|e| panic!("setting up: storing device {name:?}: {e:?}"));
    device
}

/// A random id that no stored row has.
pub fn unknown_device() -> DeviceId {
    DeviceId::from_uuid(Uuid::now_v7())
}

pub fn order(instrument: &str) -> Order {
    Order {
        instrument: Instrument::parse(instrument).unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        action: crate::signal::Action::Open,
        volume: 0.5,
        entry_price: Some(1.085),
        stop_loss: Some(1.08),
        take_profit: None,
        comment: Some("contract".into()),
    }
}

/// A signal of `owner` for `devices`, created `minutes` after [`t0`], with
/// an optional idempotency key (described as `description of <key>`).
pub fn new_signal(owner: UserId, minutes: i64, devices: &[DeviceId], key: Option<&str>) -> NewSignal {
    let as_published = crate::config::adapt(
        &order("EURUSD"),
        &crate::config::EffectiveConfig::merge(&crate::config::CurrentConfig::default(), None, 0),
    );
    NewSignal {
        signal: Signal {
            id: SignalId::from_uuid(Uuid::now_v7()),
            owner,
            order: order("EURUSD"),
            expires_at: None,
            created_at: t0() + Duration::minutes(minutes),
            cancelled_at: None,
        },
        deliveries: devices.iter().map(|d| (*d, as_published.clone())).collect(),
        idempotency: key.map(|k| (k.to_owned(), format!("description of {k}"))),
    }
}

/// Stores a signal and returns it.
pub async fn published(signals: &impl SignalRepository, new: NewSignal) -> NewSignal {
    signals
        .insert(&new)
        .await
        .unwrap_or_else(|e| panic!("setting up: storing a signal: {e:?}"));
    new
}
