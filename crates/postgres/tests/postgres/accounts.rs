use std::sync::Arc;

use chrono::{Duration, Utc};
use eagate_domain::account::*;
use eagate_domain::audit::AuditAction;
use eagate_domain::testing::contracts::{self, audit_event};
use eagate_postgres::{PgAccountRepository, PgSessionRepository};
use eagate_testkit::TestDatabase;
use uuid::Uuid;

eagate_domain::account_repository_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgSessionRepository::new(pool),
    )
});

eagate_domain::session_repository_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgSessionRepository::new(pool),
    )
});

#[tokio::test]
async fn concurrent_rotations_of_one_token_have_exactly_one_winner() {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    let accounts = PgAccountRepository::new(pool.clone());
    let sessions = Arc::new(PgSessionRepository::new(pool));
    let user = contracts::new_user(1);
    accounts
        .create(
            &user,
            &audit_event(AuditAction::AccountRegistered, Some(user.id), None),
        )
        .await
        .unwrap();
    let now = Utc::now();
    let session = Session {
        id: SessionId::from_uuid(Uuid::now_v7()),
        user_id: user.id,
        created_at: now,
        revoked_at: None,
    };
    let digest = |n: u8| RefreshTokenHash::new(vec![n; 32]);
    let token = |n: u8| NewRefreshToken {
        hash: digest(n),
        session_id: session.id,
        created_at: now,
        expires_at: now + Duration::days(1),
    };
    sessions
        .create(
            &session,
            &token(0),
            &audit_event(AuditAction::LoginSucceeded, Some(user.id), None),
        )
        .await
        .unwrap();

    let tasks: Vec<_> = (1..=8u8)
        .map(|n| {
            let sessions = Arc::clone(&sessions);
            let next = token(n);
            tokio::spawn(async move { sessions.rotate_refresh_token(&digest(0), &next, Utc::now()).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(
        winners, 1,
        "of 8 concurrent rotations of one token exactly one must win"
    );
}

#[tokio::test]
async fn stored_rows_hold_no_plaintext_password() {
    // The adapter stores what it is given; this checks the column the hash
    // lands in and that the email is stored lower-cased by the domain.
    let db = TestDatabase::migrated().await;
    let accounts = PgAccountRepository::new(db.pool());
    let user = contracts::new_user(7);
    accounts
        .create(
            &user,
            &audit_event(AuditAction::AccountRegistered, Some(user.id), None),
        )
        .await
        .unwrap();
    let found = accounts
        .find_credentials_by_login(&LoginId::Email(Email::parse("TRADER7@EXAMPLE.COM").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.email.as_str(), "trader7@example.com");
    assert_eq!(found.password_hash, user.password_hash);
}
