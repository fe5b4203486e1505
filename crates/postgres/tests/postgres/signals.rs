use std::time::Duration;

use eagate_domain::account::AccountRepository;
use eagate_domain::audit::AuditAction;
use eagate_domain::device::*;
use eagate_domain::signal::*;
use eagate_domain::testing::contracts::{self, audit_event};
use eagate_postgres::{PgAccountRepository, PgDeviceRepository, PgSignalRepository, PgSignalWakeups};
use eagate_testkit::TestDatabase;
use uuid::Uuid;

eagate_domain::signal_repository_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgDeviceRepository::new(pool.clone()),
        PgSignalRepository::new(pool),
    )
});

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

/// Polls `future` once: whether it is still pending (a wait in progress).
async fn is_pending<F: Future + Unpin>(future: &mut F) -> bool {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx).is_pending()))
        .await
}

/// Starts a listener on `db` and waits until it is connected (bounded, so a
/// broken listener fails the test instead of hanging it).
async fn listening(db: &TestDatabase) -> PgSignalWakeups {
    let wakeups = PgSignalWakeups::start(db.url().to_owned());
    tokio::time::timeout(Duration::from_secs(30), wakeups.ready())
        .await
        .expect("the listener did not connect within 30 s");
    assert!(
        wakeups.is_connected(),
        "ready() resolved, so the listener is connected"
    );
    wakeups
}

eagate_domain::signal_wakeups_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    let wakeups = listening(&db).await;
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgDeviceRepository::new(pool.clone()),
        PgSignalRepository::new(pool),
        wakeups,
    )
});

#[tokio::test]
async fn a_publish_wakes_waits_in_progress_on_every_listening_instance() {
    let db = TestDatabase::migrated().await;
    let (owner, device) = device_of_new_user(&db).await;
    // Two instances: each has its own listener.
    let (a, b) = (listening(&db).await, listening(&db).await);
    let mut on_a = a.subscribe(device);
    let mut on_b = b.subscribe(device);
    assert_eq!(
        (a.waiting(), b.waiting()),
        (1, 1),
        "each instance counts its waiter"
    );

    // Both waits are in progress (polled at least once) before the publish.
    let woken = {
        let long = Duration::from_secs(60);
        let (wait_a, wait_b) = (on_a.wait(long), on_b.wait(long));
        tokio::pin!(wait_a, wait_b);
        assert!(
            is_pending(&mut wait_a).await && is_pending(&mut wait_b).await,
            "nothing was published yet: both waits are in progress"
        );
        PgSignalRepository::new(db.pool())
            .insert(&signal_for(owner, device))
            .await
            .unwrap();
        tokio::join!(wait_a, wait_b)
    };
    assert_eq!(
        woken,
        (Wake::Notified, Wake::Notified),
        "a publish must wake the device's waits on every instance, long before their 60 s timeout"
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
async fn a_shutdown_ends_waits_in_progress_and_later_ones_at_once() {
    let db = TestDatabase::migrated().await;
    let (_, device) = device_of_new_user(&db).await;
    let wakeups = listening(&db).await;
    let mut subscription = wakeups.subscribe(device);
    let wait = subscription.wait(Duration::from_secs(60));
    tokio::pin!(wait);
    assert!(
        is_pending(&mut wait).await,
        "the wait is in progress before the shutdown"
    );
    wakeups.shutdown();
    assert_eq!(
        wait.await,
        Wake::Closing,
        "a shutdown ends a wait in progress with Closing"
    );
    let mut later = wakeups.subscribe(device);
    assert_eq!(
        later.wait(Duration::from_secs(60)).await,
        Wake::Closing,
        "after a shutdown a new wait ends at once with Closing"
    );
}

#[tokio::test]
async fn a_listener_without_a_database_is_never_ready() {
    let db = TestDatabase::migrated().await;
    let url = eagate_testkit::url_for(db.url(), "eagate_no_such_database");
    let wakeups = PgSignalWakeups::start(url);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), wakeups.ready())
            .await
            .is_err(),
        "ready() must not resolve while the listener cannot connect"
    );
    assert!(!wakeups.is_connected(), "and is_connected says so");
}
