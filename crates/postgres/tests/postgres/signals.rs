use std::time::{Duration, Instant};

use eagate_domain::account::AccountRepository;
use eagate_domain::audit::AuditAction;
use eagate_domain::device::*;
use eagate_domain::signal::*;
use eagate_domain::testing::contracts::{self, audit_event};
use eagate_postgres::{PgAccountRepository, PgDeviceRepository, PgSignalRepository, PgSignalWakeups};
use eagate_testkit::TestDatabase;
use uuid::Uuid;

#[tokio::test]
async fn signal_repository_contract_holds() {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    contracts::signal_repository_contract(
        &PgAccountRepository::new(pool.clone()),
        &PgDeviceRepository::new(pool.clone()),
        &PgSignalRepository::new(pool),
    )
    .await;
}

/// A user with one device; returns the device id.
async fn device_of_new_user(db: &TestDatabase) -> (eagate_domain::account::UserId, DeviceId) {
    let pool = db.pool();
    let user = contracts::new_user(1);
    PgAccountRepository::new(pool.clone())
        .create(
            &user,
            &audit_event(AuditAction::AccountRegistered, Some(user.id), None),
        )
        .await
        .unwrap();
    let device = NewDevice {
        id: DeviceId::from_uuid(Uuid::now_v7()),
        owner: user.id,
        name: DeviceName::parse("EA").unwrap(),
        secret: SealedSecret {
            key_id: "k".into(),
            ciphertext: vec![1],
        },
        fingerprint: SecretFingerprint::new("fp".into()),
        created_at: chrono::Utc::now(),
    };
    PgDeviceRepository::new(pool)
        .insert(
            &device,
            10,
            &audit_event(AuditAction::DeviceRegistered, Some(user.id), Some(device.id)),
        )
        .await
        .unwrap();
    (user.id, device.id)
}

fn signal_for(owner: eagate_domain::account::UserId, device: DeviceId) -> NewSignal {
    NewSignal {
        signal: Signal {
            id: SignalId::from_uuid(Uuid::now_v7()),
            owner,
            order: Order {
                instrument: Instrument::parse("XAUUSD").unwrap(),
                side: Side::Sell,
                order_type: OrderType::Market,
                volume: 1.0,
                entry_price: None,
                stop_loss: None,
                take_profit: None,
                comment: None,
            },
            expires_at: None,
            created_at: chrono::Utc::now(),
            cancelled_at: None,
        },
        devices: vec![device],
        idempotency: None,
    }
}

/// Waits for the listener to be connected (it wakes everyone on connect).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_publish_wakes_waiters_on_every_listening_instance() {
    let db = TestDatabase::migrated().await;
    let (owner, device) = device_of_new_user(&db).await;
    // Two instances: each has its own listener.
    let a = PgSignalWakeups::start(db.url().to_owned());
    let b = PgSignalWakeups::start(db.url().to_owned());
    settle().await;
    let mut on_a = a.subscribe(device);
    let mut on_b = b.subscribe(device);
    assert_eq!((a.waiting(), b.waiting()), (1, 1));

    let started = Instant::now();
    let repo = PgSignalRepository::new(db.pool());
    let publish = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        repo.insert(&signal_for(owner, device)).await.unwrap();
    };
    let wait_a = on_a.wait(Duration::from_secs(5));
    let wait_b = on_b.wait(Duration::from_secs(5));
    tokio::join!(publish, wait_a, wait_b);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "woken by the notification, not the timeout"
    );

    drop(on_a);
    drop(on_b);
    assert_eq!(
        (a.waiting(), b.waiting()),
        (0, 0),
        "waiters clean up after themselves"
    );
}

#[tokio::test]
async fn without_a_publish_the_wait_times_out() {
    let db = TestDatabase::migrated().await;
    let (_, device) = device_of_new_user(&db).await;
    let wakeups = PgSignalWakeups::start(db.url().to_owned());
    settle().await;
    let mut sub = wakeups.subscribe(device);
    let started = Instant::now();
    sub.wait(Duration::from_millis(300)).await;
    assert!(started.elapsed() >= Duration::from_millis(290));
}

#[tokio::test]
async fn a_publish_for_another_device_does_not_wake() {
    let db = TestDatabase::migrated().await;
    let (owner, device) = device_of_new_user(&db).await;
    let wakeups = PgSignalWakeups::start(db.url().to_owned());
    settle().await;
    let mut sub = wakeups.subscribe(DeviceId::from_uuid(Uuid::now_v7()));
    PgSignalRepository::new(db.pool())
        .insert(&signal_for(owner, device))
        .await
        .unwrap();
    let started = Instant::now();
    sub.wait(Duration::from_millis(400)).await;
    assert!(started.elapsed() >= Duration::from_millis(390));
}
