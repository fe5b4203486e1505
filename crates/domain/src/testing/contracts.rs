//! Port contract suites: generic over the port, run against the fakes in
//! this crate and against the real adapters in theirs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use crate::account::*;

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
    let created = accounts.create(&alice).await.unwrap();
    assert_eq!(created.id, alice.id);
    assert_eq!(created.username, alice.username);
    assert_eq!(created.email, alice.email);
    assert_eq!(created.created_at, t0());

    // Uniqueness: same email; same username in another case.
    let mut dup_email = new_user(2);
    dup_email.email = alice.email.clone();
    assert!(matches!(
        accounts.create(&dup_email).await,
        Err(CreateUserError::EmailTaken)
    ));
    let mut dup_name = new_user(3);
    dup_name.username = Username::parse("tRADER_1").unwrap();
    assert!(matches!(
        accounts.create(&dup_name).await,
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
    sessions.create(&s1, &token(s1.id)).await.unwrap();
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
            .change_password(alice.id, &changed, changed_at)
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
            .change_password(ghost, &changed, changed_at)
            .await
            .unwrap()
    );

    // Deletion cascades to sessions and refresh tokens.
    let s2 = session_for(alice.id);
    let t2 = token(s2.id);
    sessions.create(&s2, &t2).await.unwrap();
    assert!(accounts.delete(alice.id).await.unwrap());
    assert!(!accounts.delete(alice.id).await.unwrap());
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
    accounts.create(&bob).await.unwrap();
    let session = session_for(bob.id);
    let first = token(session.id);
    sessions.create(&session, &first).await.unwrap();
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
