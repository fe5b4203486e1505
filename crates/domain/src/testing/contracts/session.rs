//! The [`SessionRepository`] contract.

use chrono::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::account::*;
use crate::audit::AuditAction;

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
