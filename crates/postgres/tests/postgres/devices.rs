use std::sync::Arc;

use diesel_async::RunQueryDsl;
use eagate_domain::account::AccountRepository;
use eagate_domain::audit::AuditAction;
use eagate_domain::device::*;
use eagate_domain::testing::contracts::{self, audit_event};
use eagate_postgres::{PgAccountRepository, PgAuditLog, PgDeviceRepository};
use eagate_testkit::TestDatabase;
use uuid::Uuid;

eagate_domain::device_repository_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgDeviceRepository::new(pool.clone()),
        PgAuditLog::new(pool),
    )
});

eagate_domain::audit_log_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (db, PgAccountRepository::new(pool.clone()), PgAuditLog::new(pool))
});

#[tokio::test]
async fn concurrent_registrations_never_exceed_the_limit() {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    let accounts = PgAccountRepository::new(pool.clone());
    let devices = Arc::new(PgDeviceRepository::new(pool));
    let owner = contracts::new_user(1);
    accounts
        .create(
            &owner,
            &audit_event(AuditAction::AccountRegistered, Some(owner.id), None),
        )
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let devices = Arc::clone(&devices);
            let device = NewDevice {
                id: DeviceId::from_uuid(Uuid::now_v7()),
                owner: owner.id,
                name: DeviceName::parse(&format!("EA {n}")).unwrap(),
                secret: SealedSecret {
                    key_id: "k1".into(),
                    ciphertext: vec![n],
                },
                fingerprint: SecretFingerprint::new(format!("fp-{n}")),
                created_at: chrono::Utc::now(),
            };
            tokio::spawn(async move {
                let audit = audit_event(AuditAction::DeviceRegistered, Some(device.owner), Some(device.id));
                devices.insert(&device, 3, &audit).await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(InsertDeviceError::LimitReached) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        ok, 3,
        "of 10 concurrent registrations with a limit of 3 exactly 3 must succeed"
    );
}

#[tokio::test]
async fn the_audit_trail_cannot_be_rewritten() {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    let accounts = PgAccountRepository::new(pool);
    let user = contracts::new_user(1);
    accounts
        .create(
            &user,
            &audit_event(AuditAction::AccountRegistered, Some(user.id), None),
        )
        .await
        .unwrap();
    let mut conn = db.connect().await;
    for sql in [
        "UPDATE audit_events SET action = 'nothing'",
        "DELETE FROM audit_events",
    ] {
        let error = diesel::sql_query(sql).execute(&mut conn).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
}
