//! The [`AccountRepository`] contract.

use chrono::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::account::*;
use crate::audit::AuditAction;

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
