//! The [`AccountRepository`] contract (with the sessions a password change
//! and a deletion act on).

use chrono::Duration;

use super::fixtures::*;
use crate::account::*;
use crate::audit::AuditAction;

fn registration(user: &NewUser) -> crate::audit::AuditEvent {
    audit_event(AuditAction::AccountRegistered, Some(user.id), None)
}

async fn credentials_by_id(accounts: &impl AccountRepository, id: UserId) -> Option<UserCredentials> {
    accounts
        .find_credentials_by_id(id)
        .await
        .expect("find_credentials_by_id failed")
}

pub async fn create_returns_the_stored_user(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let new = unique_user();
    let created = accounts
        .create(&new, &registration(&new))
        .await
        .expect("creating a user with a free name and email must succeed");
    assert_eq!(created.id, new.id, "the stored user keeps its id");
    assert_eq!(
        created.username, new.username,
        "the stored user keeps its username as typed"
    );
    assert_eq!(created.email, new.email, "the stored user keeps its email");
    assert_eq!(created.created_at, new.created_at, "created_at is the given time");
    assert_eq!(
        created.updated_at, new.created_at,
        "a new user's updated_at is its created_at"
    );
    let found = accounts.find_by_id(new.id).await.expect("find_by_id failed");
    assert_eq!(found, Some(created), "find_by_id returns what create returned");
}

pub async fn an_email_in_use_is_refused(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let first = registered(accounts).await;
    let mut second = unique_user();
    second.email = first.email.clone();
    let result = accounts.create(&second, &registration(&second)).await;
    assert!(
        matches!(result, Err(CreateUserError::EmailTaken)),
        "a second user with the same email must be refused with EmailTaken, got {result:?}"
    );
    assert_eq!(
        accounts.find_by_id(second.id).await.expect("find_by_id failed"),
        None,
        "a refused user must not be stored"
    );
}

pub async fn a_username_in_use_in_another_case_is_refused(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let first = registered(accounts).await;
    let mut second = unique_user();
    second.username = Username::parse(&first.username.as_str().to_uppercase()).unwrap();
    let result = accounts.create(&second, &registration(&second)).await;
    assert!(
        matches!(result, Err(CreateUserError::UsernameTaken)),
        "a username differing only in case must be refused with UsernameTaken, got {result:?}"
    );
    assert_eq!(
        accounts.find_by_id(second.id).await.expect("find_by_id failed"),
        None,
        "a refused user must not be stored"
    );
}

pub async fn an_unknown_id_finds_nothing(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    assert_eq!(
        accounts
            .find_by_id(unknown_user())
            .await
            .expect("find_by_id failed"),
        None,
        "find_by_id of an unknown id must be None"
    );
    assert!(
        credentials_by_id(accounts, unknown_user()).await.is_none(),
        "find_credentials_by_id of an unknown id must be None"
    );
}

pub async fn credentials_are_found_by_email(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let found = accounts
        .find_credentials_by_login(&LoginId::Email(user.email.clone()))
        .await
        .expect("find_credentials_by_login failed")
        .expect("a stored user must be found by its email");
    assert_eq!(found.user.id, user.id, "the email finds its own user");
    assert_eq!(
        found.password_hash, user.password_hash,
        "credentials carry the stored password hash"
    );
}

pub async fn credentials_are_found_by_username_in_any_case(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    for spelling in [
        user.username.as_str().to_owned(),
        user.username.as_str().to_uppercase(),
        user.username.as_str().to_lowercase(),
    ] {
        let found = accounts
            .find_credentials_by_login(&LoginId::Username(Username::parse(&spelling).unwrap()))
            .await
            .expect("find_credentials_by_login failed");
        assert_eq!(
            found.map(|c| c.user.id),
            Some(user.id),
            "the username spelled {spelling:?} must find its user"
        );
    }
}

pub async fn credentials_are_found_by_id(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let found = credentials_by_id(accounts, user.id)
        .await
        .expect("a stored user's credentials must be found by id");
    assert_eq!(found.user.id, user.id, "the id finds its own user");
    assert_eq!(
        found.password_hash, user.password_hash,
        "credentials carry the stored hash"
    );
}

pub async fn an_unknown_login_finds_nothing(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    registered(accounts).await;
    let nobody = unique_user();
    for login in [LoginId::Email(nobody.email), LoginId::Username(nobody.username)] {
        assert!(
            accounts
                .find_credentials_by_login(&login)
                .await
                .expect("find_credentials_by_login failed")
                .is_none(),
            "an unknown login ({login:?}) must find nothing"
        );
    }
}

pub async fn a_rehash_replaces_the_hash_and_keeps_sessions(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (session, _) = logged_in(sessions, user.id).await;
    let rehashed = PasswordHash::new("rehashed".into());
    assert!(
        accounts
            .update_password_hash(user.id, &rehashed)
            .await
            .expect("update_password_hash failed"),
        "a rehash of an existing user must report true"
    );
    assert_eq!(
        credentials_by_id(accounts, user.id)
            .await
            .map(|c| c.password_hash),
        Some(rehashed),
        "a rehash must replace the stored hash"
    );
    let session = sessions.find(session.id).await.expect("find session failed");
    assert!(
        session.is_some_and(|s| s.is_active()),
        "a rehash (same password) must not end sessions"
    );
}

pub async fn a_password_change_replaces_the_hash_and_revokes_every_session(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (one, _) = logged_in(sessions, user.id).await;
    let (two, _) = logged_in(sessions, user.id).await;
    let other = registered(accounts).await;
    let (others, _) = logged_in(sessions, other.id).await;
    let at = t0() + Duration::hours(1);
    let changed = PasswordHash::new("changed".into());
    let done = accounts
        .change_password(
            user.id,
            &changed,
            at,
            &audit_event(AuditAction::PasswordChanged, Some(user.id), None),
        )
        .await
        .expect("change_password failed");
    assert!(done, "a password change of an existing user must report true");
    assert_eq!(
        credentials_by_id(accounts, user.id)
            .await
            .map(|c| c.password_hash),
        Some(changed),
        "a password change must store the new hash"
    );
    for id in [one.id, two.id] {
        assert_eq!(
            sessions
                .find(id)
                .await
                .expect("find session failed")
                .and_then(|s| s.revoked_at),
            Some(at),
            "a password change must revoke every session of the user at the change's time"
        );
    }
    assert!(
        sessions
            .find(others.id)
            .await
            .expect("find session failed")
            .is_some_and(|s| s.is_active()),
        "a password change must not touch other users' sessions"
    );
    assert_eq!(
        accounts
            .find_by_id(user.id)
            .await
            .expect("find_by_id failed")
            .map(|u| u.updated_at),
        Some(at),
        "a password change sets updated_at"
    );
}

pub async fn an_unknown_user_has_no_password_to_change(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let ghost = unknown_user();
    let hash = PasswordHash::new("changed".into());
    assert!(
        !accounts
            .update_password_hash(ghost, &hash)
            .await
            .expect("update_password_hash failed"),
        "a rehash of an unknown user must report false"
    );
    assert!(
        !accounts
            .change_password(
                ghost,
                &hash,
                t0(),
                &audit_event(AuditAction::PasswordChanged, Some(ghost), None)
            )
            .await
            .expect("change_password failed"),
        "a password change of an unknown user must report false"
    );
}

pub async fn deleting_an_account_deletes_its_sessions_and_tokens(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let (session, token) = logged_in(sessions, user.id).await;
    let deleted = accounts
        .delete(
            user.id,
            &audit_event(AuditAction::AccountDeleted, Some(user.id), None),
        )
        .await
        .expect("delete failed");
    assert!(deleted, "deleting an existing user must report true");
    assert_eq!(
        accounts.find_by_id(user.id).await.expect("find_by_id failed"),
        None,
        "a deleted user must be gone"
    );
    assert_eq!(
        sessions.find(session.id).await.expect("find session failed"),
        None,
        "deleting a user must delete its sessions"
    );
    assert!(
        sessions
            .find_refresh_token(&token.hash)
            .await
            .expect("find_refresh_token failed")
            .is_none(),
        "deleting a user must delete its refresh tokens"
    );
}

pub async fn deleting_an_unknown_account_reports_false(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    let event = audit_event(AuditAction::AccountDeleted, Some(user.id), None);
    assert!(
        accounts.delete(user.id, &event).await.expect("delete failed"),
        "the first delete deletes"
    );
    assert!(
        !accounts.delete(user.id, &event).await.expect("delete failed"),
        "deleting an already deleted user must report false"
    );
    assert!(
        !accounts
            .delete(unknown_user(), &event)
            .await
            .expect("delete failed"),
        "deleting an unknown user must report false"
    );
}

pub async fn a_deleted_accounts_name_and_email_are_free_again(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
) {
    let user = registered(accounts).await;
    accounts
        .delete(
            user.id,
            &audit_event(AuditAction::AccountDeleted, Some(user.id), None),
        )
        .await
        .expect("delete failed");
    let mut again = unique_user();
    again.username = user.username.clone();
    again.email = user.email.clone();
    let result = accounts.create(&again, &registration(&again)).await;
    assert!(
        result.is_ok(),
        "a deleted user's username and email must be free to register again, got {result:?}"
    );
}

/// Runs every rule in order on one pair of repositories; prefer
/// [`account_repository_contract!`](crate::account_repository_contract),
/// which gives each rule a test of its own.
pub async fn account_repository_contract(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
) {
    create_returns_the_stored_user(accounts, sessions).await;
    an_email_in_use_is_refused(accounts, sessions).await;
    a_username_in_use_in_another_case_is_refused(accounts, sessions).await;
    an_unknown_id_finds_nothing(accounts, sessions).await;
    credentials_are_found_by_email(accounts, sessions).await;
    credentials_are_found_by_username_in_any_case(accounts, sessions).await;
    credentials_are_found_by_id(accounts, sessions).await;
    an_unknown_login_finds_nothing(accounts, sessions).await;
    a_rehash_replaces_the_hash_and_keeps_sessions(accounts, sessions).await;
    a_password_change_replaces_the_hash_and_revokes_every_session(accounts, sessions).await;
    an_unknown_user_has_no_password_to_change(accounts, sessions).await;
    deleting_an_account_deletes_its_sessions_and_tokens(accounts, sessions).await;
    deleting_an_unknown_account_reports_false(accounts, sessions).await;
    a_deleted_accounts_name_and_email_are_free_again(accounts, sessions).await;
}

/// One `#[tokio::test]` per [`AccountRepository`] rule, in a module
/// `account_repository_contract`. `$setup`: an async block returning
/// `(guard, accounts, sessions)` over one store.
#[macro_export]
macro_rules! account_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            account_repository_contract,
            account,
            $setup,
            (accounts, sessions),
            [
                create_returns_the_stored_user,
                an_email_in_use_is_refused,
                a_username_in_use_in_another_case_is_refused,
                an_unknown_id_finds_nothing,
                credentials_are_found_by_email,
                credentials_are_found_by_username_in_any_case,
                credentials_are_found_by_id,
                an_unknown_login_finds_nothing,
                a_rehash_replaces_the_hash_and_keeps_sessions,
                a_password_change_replaces_the_hash_and_revokes_every_session,
                an_unknown_user_has_no_password_to_change,
                deleting_an_account_deletes_its_sessions_and_tokens,
                deleting_an_unknown_account_reports_false,
                a_deleted_accounts_name_and_email_are_free_again,
            ]
        );
    };
}
