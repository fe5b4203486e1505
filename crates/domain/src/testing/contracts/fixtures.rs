//! Values the contract suites build their cases from.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use std::collections::BTreeMap;

use crate::account::*;
use crate::audit::{AuditAction, AuditEvent, ClientInfo};
use crate::device::*;
use crate::signal::*;

pub(super) fn t0() -> DateTime<Utc> {
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

pub(super) fn session_for(user: UserId) -> Session {
    Session {
        id: SessionId::from_uuid(Uuid::now_v7()),
        user_id: user,
        created_at: t0(),
        revoked_at: None,
    }
}

/// A distinct 32-byte digest, as real token digests are.
pub(super) fn digest() -> RefreshTokenHash {
    RefreshTokenHash::new([*Uuid::new_v4().as_bytes(), *Uuid::new_v4().as_bytes()].concat())
}

pub(super) fn token(session: SessionId) -> NewRefreshToken {
    NewRefreshToken {
        hash: digest(),
        session_id: session,
        created_at: t0(),
        expires_at: t0() + Duration::days(30),
    }
}

pub(super) fn sealed(label: &str) -> SealedSecret {
    SealedSecret {
        key_id: "k1".into(),
        ciphertext: label.as_bytes().to_vec(),
    }
}

pub(super) fn new_device(owner: UserId, name: &str, minutes: i64) -> NewDevice {
    NewDevice {
        id: DeviceId::from_uuid(Uuid::now_v7()),
        owner,
        name: DeviceName::parse(name).unwrap(),
        secret: sealed(name),
        fingerprint: SecretFingerprint::new(format!("fp-{name}")),
        created_at: t0() + Duration::minutes(minutes),
    }
}

pub(super) fn device_audit(action: AuditAction, device: &NewDevice) -> AuditEvent {
    audit_event(action, Some(device.owner), Some(device.id))
}

pub(super) fn order(instrument: &str) -> Order {
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

pub(super) fn new_signal(owner: UserId, minutes: i64, devices: &[DeviceId], key: Option<&str>) -> NewSignal {
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
