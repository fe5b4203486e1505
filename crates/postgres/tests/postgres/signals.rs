use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use eagate_domain::account::AccountRepository;
use eagate_domain::audit::AuditAction;
use eagate_domain::cache::{DeviceStateCache as _, Lookup, NoCache};
use eagate_domain::device::*;
use eagate_domain::signal::*;
use eagate_domain::testing::FakeDeviceCache;
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
    let user = contracts::fixtures::unique_user();
    PgAccountRepository::new(db.pool())
        .create(
            &user,
            &audit_event(AuditAction::AccountRegistered, Some(user.id), None),
        )
        .await
        .unwrap();
    (user.id, new_device(db, user.id, "EA").await)
}

/// Registers a device named `name` for `owner`.
async fn new_device(db: &TestDatabase, owner: eagate_domain::account::UserId, name: &str) -> DeviceId {
    let device = NewDevice {
        id: DeviceId::from_uuid(Uuid::now_v7()),
        owner,
        name: DeviceName::parse(name).unwrap(),
        secret: SealedSecret {
            key_id: "k".into(),
            ciphertext: vec![1],
        },
        fingerprint: SecretFingerprint::new("fp".into()),
        created_at: chrono::Utc::now(),
    };
    PgDeviceRepository::new(db.pool())
        .insert(
            &device,
            10,
            &audit_event(AuditAction::DeviceRegistered, Some(owner), Some(device.id)),
        )
        .await
        .unwrap();
    device.id
}

fn signal_for(owner: eagate_domain::account::UserId, device: DeviceId) -> NewSignal {
    use eagate_domain::config::{CurrentConfig, EffectiveConfig, adapt};
    let mut new = NewSignal {
        signal: Signal {
            id: SignalId::from_uuid(Uuid::now_v7()),
            owner,
            order: Order {
                instrument: Instrument::parse("XAUUSD").unwrap(),
                side: Side::Sell,
                order_type: OrderType::Market,
                action: Action::Open,
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
        deliveries: Vec::new(),
        idempotency: None,
    };
    let as_published = adapt(
        &new.signal.order,
        &EffectiveConfig::merge(&CurrentConfig::default(), None, 0),
    );
    new.deliveries.push((device, as_published));
    new
}

/// Polls `future` once: whether it is still pending (a wait in progress).
async fn is_pending<F: Future + Unpin>(future: &mut F) -> bool {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx).is_pending()))
        .await
}

/// Starts a listener on `db` and waits until it is connected (bounded, so a
/// broken listener fails the test instead of hanging it).
async fn listening(db: &TestDatabase) -> PgSignalWakeups {
    listening_with(db, Arc::new(NoCache)).await
}

/// As [`listening`], keeping `cache` true.
async fn listening_with(
    db: &TestDatabase,
    cache: Arc<dyn eagate_domain::cache::DeviceStateCache>,
) -> PgSignalWakeups {
    let wakeups = PgSignalWakeups::start(db.url().to_owned(), cache);
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
    let named = |wake: Wake| match wake {
        Wake::Published(signals) => signals.len(),
        other => panic!("expected the published signal, got {other:?}"),
    };
    assert_eq!(
        (named(woken.0), named(woken.1)),
        (1, 1),
        "a publish must hand the signal to the device's waits on every instance, long before their 60 s timeout"
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
    let wakeups = PgSignalWakeups::start(url, Arc::new(NoCache));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), wakeups.ready())
            .await
            .is_err(),
        "ready() must not resolve while the listener cannot connect"
    );
    assert!(!wakeups.is_connected(), "and is_connected says so");
}

/// Waits (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn cached(cache: &FakeDeviceCache, device: DeviceId) -> bool {
    matches!(cache.credentials(device), Lookup::Hit(_))
}

/// Caches the device's credentials and idleness (whatever is not cached).
fn fill(cache: &FakeDeviceCache, device: DeviceId) {
    if let Lookup::Miss(ticket) = cache.credentials(device) {
        cache.fill_credentials(ticket, None);
    }
    if let Lookup::Miss(ticket) = cache.idle(device) {
        cache.fill_idle(ticket);
    }
}

#[tokio::test]
async fn the_change_feed_keeps_the_cache_true_whoever_changes_the_database() {
    let db = TestDatabase::migrated().await;
    let (owner, device) = device_of_new_user(&db).await;
    let cache = FakeDeviceCache::default();
    let _feed = listening_with(&db, Arc::new(cache.clone())).await;

    // A publish (from any instance) ends the device's idleness.
    fill(&cache, device);
    PgSignalRepository::new(db.pool())
        .insert(&signal_for(owner, device))
        .await
        .unwrap();
    eventually("a publish reaches the cache", || {
        matches!(cache.idle(device), Lookup::Miss(_))
    })
    .await;
    assert!(cached(&cache, device), "a publish leaves credentials alone");

    // Any change to the device's row that matters — even plain SQL, as an
    // operator or `eagate keys rotate` would make — forgets its credentials.
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    for change in [
        "UPDATE devices SET name = 'Renamed by SQL' WHERE id = $1",
        "UPDATE devices SET secret_sealed = secret_sealed || '\\x00'::bytea WHERE id = $1",
        "UPDATE devices SET revoked_at = now() WHERE id = $1",
    ] {
        fill(&cache, device);
        diesel::sql_query(change)
            .bind::<diesel::sql_types::Uuid, _>(device.as_uuid())
            .execute(&mut conn)
            .await
            .unwrap();
        eventually(change, || !cached(&cache, device)).await;
    }

    // Activity is not cached: writing it notifies nobody.
    fill(&cache, device);
    diesel::sql_query("UPDATE devices SET last_seen_at = now(), last_poll_at = now() WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(device.as_uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    // A later change proves the feed delivered everything before it.
    let (_, other) = device_of_new_user(&db).await;
    fill(&cache, other);
    diesel::sql_query("UPDATE devices SET name = 'Marker' WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(other.as_uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    eventually("the marker change", || !cached(&cache, other)).await;
    assert!(cached(&cache, device), "activity writes do not evict credentials");

    // Deleting the owner cascades to the device, which notifies too.
    fill(&cache, device);
    diesel::sql_query("DELETE FROM users WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(owner.as_uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    eventually("a cascaded delete", || !cached(&cache, device)).await;
}

#[tokio::test]
async fn a_lost_feed_bypasses_the_cache_and_recovers_by_itself() {
    let db = TestDatabase::migrated().await;
    let (_, device) = device_of_new_user(&db).await;
    let cache = FakeDeviceCache::default();
    let feed = listening_with(&db, Arc::new(cache.clone())).await;
    fill(&cache, device);
    assert!(cached(&cache, device));
    let mut waiting = feed.subscribe(device);

    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        waiting.wait(Duration::from_secs(30)).await,
        Wake::Recheck,
        "a waiting poll is told to re-check what it may have missed"
    );
    eventually("the cache stops serving", || !cached(&cache, device)).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while !feed.is_connected() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the feed reconnects by itself");
    fill(&cache, device);
    assert!(cached(&cache, device), "live again after reconnecting");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Rows of `signal_deliveries` matching `filter` (SQL over `signal_id` and
/// `device_id`, with `$1` bound to `id`).
async fn deliveries(conn: &mut AsyncPgConnection, filter: &str, id: Uuid) -> i64 {
    diesel::sql_query(format!(
        "SELECT count(*) AS n FROM signal_deliveries WHERE {filter}"
    ))
    .bind::<diesel::sql_types::Uuid, _>(id)
    .get_result::<Count>(conn)
    .await
    .unwrap()
    .n
}

/// The table has no foreign keys (checking them row by row made a large
/// publish slow): statement triggers delete a signal's or a device's
/// deliveries with it, whoever deletes it.
#[tokio::test]
async fn the_deliveries_of_a_deleted_signal_or_device_go_with_it() {
    let db = TestDatabase::migrated().await;
    let signals = PgSignalRepository::new(db.pool());
    let (owner, device) = device_of_new_user(&db).await;
    let sibling = new_device(&db, owner, "EA 2").await;
    let (other_owner, other_device) = device_of_new_user(&db).await;
    let both = |mut new: NewSignal| {
        let adaptation = new.deliveries[0].1.clone();
        new.deliveries.push((sibling, adaptation));
        new
    };
    let first = both(signal_for(owner, device));
    let second = both(signal_for(owner, device));
    let bystander = signal_for(other_owner, other_device);
    for new in [&first, &second, &bystander] {
        signals.insert(new).await.unwrap();
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    assert_eq!(deliveries(&mut conn, "device_id = $1", device.as_uuid()).await, 2);
    assert_eq!(
        deliveries(&mut conn, "device_id = $1", sibling.as_uuid()).await,
        2
    );

    diesel::sql_query("DELETE FROM signals WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(first.signal.id.as_uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        deliveries(&mut conn, "signal_id = $1", first.signal.id.as_uuid()).await,
        0,
        "a deleted signal's deliveries are gone"
    );
    assert_eq!(
        deliveries(&mut conn, "device_id = $1", device.as_uuid()).await,
        1,
        "the device's other delivery stays"
    );

    diesel::sql_query("DELETE FROM devices WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(device.as_uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        deliveries(&mut conn, "device_id = $1", device.as_uuid()).await,
        0,
        "a deleted device's deliveries are gone"
    );
    assert_eq!(
        deliveries(&mut conn, "device_id = $1", sibling.as_uuid()).await,
        1,
        "its sibling keeps its delivery of the same signal"
    );
    assert_eq!(
        deliveries(&mut conn, "device_id = $1", other_device.as_uuid()).await,
        1,
        "another owner's delivery stays"
    );

    let accounts = PgAccountRepository::new(db.pool());
    let event = audit_event(AuditAction::AccountDeleted, Some(other_owner), None);
    assert!(accounts.delete(other_owner, &event).await.unwrap());
    assert_eq!(
        deliveries(&mut conn, "device_id = $1", other_device.as_uuid()).await,
        0,
        "deleting an account leaves none of its deliveries"
    );

    assert_eq!(deliveries(&mut conn, "signal_id <> $1", Uuid::nil()).await, 1);
    diesel::sql_query("TRUNCATE signals")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        deliveries(&mut conn, "signal_id <> $1", Uuid::nil()).await,
        0,
        "truncating the signals truncates their deliveries"
    );
}

/// Devices and signals are only deleted with their account, and an
/// account's deletion waits for a publish in flight: the publish's signal
/// row holds a KEY SHARE lock on the owner's row (its foreign key), so the
/// deletion starts after the publish commits and takes its deliveries too.
#[tokio::test]
async fn an_account_deleted_during_a_publish_takes_the_publishs_deliveries() {
    let db = TestDatabase::migrated().await;
    let (owner, device) = device_of_new_user(&db).await;
    let signal = Uuid::now_v7();
    // The publish's statements (SignalRepository::insert), held open.
    let mut publish = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut publish).await.unwrap();
    diesel::sql_query(
        "INSERT INTO signals (id, owner_id, instrument, side, order_type, volume, created_at) \
         VALUES ($1, $2, 'EURUSD', 'buy', 'market', 1, now())",
    )
    .bind::<diesel::sql_types::Uuid, _>(signal)
    .bind::<diesel::sql_types::Uuid, _>(owner.as_uuid())
    .execute(&mut publish)
    .await
    .unwrap();
    diesel::sql_query(
        "INSERT INTO signal_deliveries (signal_id, device_id, created_at) VALUES ($1, $2, now())",
    )
    .bind::<diesel::sql_types::Uuid, _>(signal)
    .bind::<diesel::sql_types::Uuid, _>(device.as_uuid())
    .execute(&mut publish)
    .await
    .unwrap();

    let accounts = PgAccountRepository::new(db.pool());
    let event = audit_event(AuditAction::AccountDeleted, Some(owner), None);
    let mut deletion = std::pin::pin!(accounts.delete(owner, &event));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut deletion)
            .await
            .is_err(),
        "the deletion waits for the publish"
    );
    diesel::sql_query("COMMIT").execute(&mut publish).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), deletion)
            .await
            .expect("the deletion goes on once the publish commits")
            .unwrap(),
        "the account was deleted"
    );
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    assert_eq!(
        deliveries(&mut conn, "signal_id = $1", signal).await,
        0,
        "the publish's deliveries went with the account"
    );
}
