//! The [`SessionRepository`] contract. Concurrent rotation (exactly one
//! winner) is tested per adapter: it needs real parallelism.

use chrono::Duration;

use super::fixtures::*;
use crate::account::*;
use crate::audit::AuditAction;

async fn record_of(sessions: &impl SessionRepository, hash: &RefreshTokenHash) -> Option<RefreshTokenRecord> {
    sessions
        .find_refresh_token(hash)
        .await
        .expect("find_refresh_token failed")
}

async fn rotate(
    sessions: &impl SessionRepository,
    old: &RefreshTokenHash,
    new: &NewRefreshToken,
    at: chrono::DateTime<chrono::Utc>,
) -> bool {
    sessions
        .rotate_refresh_token(old, new, at)
        .await
        .expect("rotate_refresh_token failed")
}

pub async fn a_created_session_is_found(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (session, _) = logged_in(sessions, user.id).await;
    assert_eq!(
        sessions.find(session.id).await.expect("find failed"),
        Some(session),
        "a stored session must be found by id, unchanged"
    );
    assert_eq!(
        sessions
            .find(crate::account::SessionId::from_uuid(uuid::Uuid::now_v7()))
            .await
            .expect("find failed"),
        None,
        "an unknown session id must find nothing"
    );
}

pub async fn a_session_for_an_unknown_user_is_refused(
    _accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let ghost = unknown_user();
    let session = session_for(ghost);
    let result = sessions
        .create(
            &session,
            &token(session.id),
            &audit_event(AuditAction::LoginSucceeded, Some(ghost), None),
        )
        .await;
    assert!(
        result.is_err(),
        "a session of a user that does not exist must fail to store"
    );
    assert_eq!(
        sessions.find(session.id).await.expect("find failed"),
        None,
        "a refused session must not be stored"
    );
}

pub async fn the_first_refresh_token_is_found(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (session, first) = logged_in(sessions, user.id).await;
    let record = record_of(sessions, &first.hash)
        .await
        .expect("a session's first refresh token must be found by its digest");
    assert_eq!(record.session, session, "the token's record carries its session");
    assert_eq!(record.expires_at, first.expires_at, "the token keeps its expiry");
    assert_eq!(record.rotated_at, None, "a fresh token is not rotated");
}

pub async fn an_unknown_refresh_token_finds_nothing(
    _accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    assert!(
        record_of(sessions, &digest()).await.is_none(),
        "an unknown digest must find nothing"
    );
}

pub async fn a_token_rotates_once(accounts: &impl AccountRepository, sessions: &impl SessionRepository) {
    let user = registered(accounts).await;
    let (session, first) = logged_in(sessions, user.id).await;
    let at = t0() + Duration::minutes(5);
    let second = token(session.id);
    assert!(
        rotate(sessions, &first.hash, &second, at).await,
        "the first rotation of a token must win"
    );
    assert_eq!(
        record_of(sessions, &first.hash).await.and_then(|r| r.rotated_at),
        Some(at),
        "a rotated token records when it was rotated"
    );
    let next = record_of(sessions, &second.hash)
        .await
        .expect("the rotation must store the new token");
    assert_eq!(
        (next.session.id, next.rotated_at),
        (session.id, None),
        "the new token belongs to the same session and is fresh"
    );
}

pub async fn a_rotated_token_cannot_rotate_again(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (session, first) = logged_in(sessions, user.id).await;
    let at = t0() + Duration::minutes(5);
    rotate(sessions, &first.hash, &token(session.id), at).await;
    let third = token(session.id);
    assert!(
        !rotate(sessions, &first.hash, &third, at + Duration::minutes(1)).await,
        "a second rotation of the same token must lose"
    );
    assert!(
        record_of(sessions, &third.hash).await.is_none(),
        "a lost rotation must store nothing"
    );
    assert_eq!(
        record_of(sessions, &first.hash).await.and_then(|r| r.rotated_at),
        Some(at),
        "a lost rotation must not move the first rotation's time"
    );
}

pub async fn an_unknown_token_does_not_rotate(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (session, _) = logged_in(sessions, user.id).await;
    let new = token(session.id);
    assert!(
        !rotate(sessions, &digest(), &new, t0()).await,
        "rotating an unknown token must report false"
    );
    assert!(
        record_of(sessions, &new.hash).await.is_none(),
        "and store nothing"
    );
}

pub async fn revoking_is_idempotent_and_keeps_the_first_time(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (session, _) = logged_in(sessions, user.id).await;
    let at = t0() + Duration::minutes(10);
    sessions
        .revoke(session.id, at, RevocationReason::Logout)
        .await
        .expect("revoke failed");
    sessions
        .revoke(
            session.id,
            at + Duration::minutes(1),
            RevocationReason::RefreshTokenReuse,
        )
        .await
        .expect("revoking a revoked session must not fail");
    assert_eq!(
        sessions
            .find(session.id)
            .await
            .expect("find failed")
            .and_then(|s| s.revoked_at),
        Some(at),
        "a revoked session keeps its first revocation time"
    );
}

pub async fn a_revoked_sessions_token_does_not_rotate(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (session, first) = logged_in(sessions, user.id).await;
    sessions
        .revoke(session.id, t0() + Duration::minutes(1), RevocationReason::Logout)
        .await
        .expect("revoke failed");
    let new = token(session.id);
    assert!(
        !rotate(sessions, &first.hash, &new, t0() + Duration::minutes(2)).await,
        "a token of a revoked session must not rotate"
    );
    assert!(
        record_of(sessions, &new.hash).await.is_none(),
        "and store nothing"
    );
    let record = record_of(sessions, &first.hash)
        .await
        .expect("a revoked session's token is still found (to detect reuse)");
    assert!(
        !record.session.is_active(),
        "its record shows the session revoked"
    );
}

pub async fn revoking_an_unknown_session_is_not_an_error(
    _accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let result = sessions
        .revoke(
            crate::account::SessionId::from_uuid(uuid::Uuid::now_v7()),
            t0(),
            RevocationReason::Logout,
        )
        .await;
    assert!(
        result.is_ok(),
        "revoking an unknown session must succeed, got {result:?}"
    );
}

/// Runs every rule in order on one pair of repositories; prefer
/// [`session_repository_contract!`](crate::session_repository_contract),
/// which gives each rule a test of its own.
pub async fn session_repository_contract(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    a_created_session_is_found(accounts, sessions).await;
    a_session_for_an_unknown_user_is_refused(accounts, sessions).await;
    the_first_refresh_token_is_found(accounts, sessions).await;
    an_unknown_refresh_token_finds_nothing(accounts, sessions).await;
    a_token_rotates_once(accounts, sessions).await;
    a_rotated_token_cannot_rotate_again(accounts, sessions).await;
    an_unknown_token_does_not_rotate(accounts, sessions).await;
    revoking_is_idempotent_and_keeps_the_first_time(accounts, sessions).await;
    a_revoked_sessions_token_does_not_rotate(accounts, sessions).await;
    revoking_an_unknown_session_is_not_an_error(accounts, sessions).await;
}

/// One `#[tokio::test]` per [`SessionRepository`] rule, in a module
/// `session_repository_contract`. `$setup`: an async block returning
/// `(guard, accounts, sessions)` over one store.
#[macro_export]
macro_rules! session_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            session_repository_contract,
            session,
            $setup,
            (accounts, sessions),
            [
                a_created_session_is_found,
                a_session_for_an_unknown_user_is_refused,
                the_first_refresh_token_is_found,
                an_unknown_refresh_token_finds_nothing,
                a_token_rotates_once,
                a_rotated_token_cannot_rotate_again,
                an_unknown_token_does_not_rotate,
                revoking_is_idempotent_and_keeps_the_first_time,
                a_revoked_sessions_token_does_not_rotate,
                revoking_an_unknown_session_is_not_an_error,
            ]
        );
    };
}
