//! The [`AuditLog`] contract; the account repository provides users (and
//! records their registration).

use chrono::Duration;

use super::fixtures::*;
use crate::account::*;
use crate::audit::{AuditAction, AuditEvent, AuditLog};
use crate::pagination::{Page, PageRequest};

async fn list(audit: &impl AuditLog, user: UserId, page: &PageRequest) -> Page<AuditEvent> {
    audit
        .list_for_user(user, page)
        .await
        .expect("list_for_user failed")
}

/// Stores a user and four failed logins a minute apart; returns the user
/// and every event of theirs, oldest first.
async fn user_with_events(
    accounts: &impl AccountRepository,
    audit: &impl AuditLog,
) -> (UserId, Vec<AuditEvent>) {
    let user = unique_user();
    let registration = audit_event(AuditAction::AccountRegistered, Some(user.id), None);
    accounts
        .create(&user, &registration)
        .await
        .expect("setting up: storing a user");
    let mut events = vec![registration];
    for minutes in 1..=4 {
        let mut event = audit_event(AuditAction::LoginFailed, Some(user.id), None);
        event.occurred_at = t0() + Duration::minutes(minutes);
        audit.record(&event).await.expect("record failed");
        events.push(event);
    }
    (user.id, events)
}

pub async fn events_are_listed_newest_first_and_intact(
    accounts: &impl AccountRepository,
    audit: &impl AuditLog,
) {
    let (user, recorded) = user_with_events(accounts, audit).await;
    let page = list(audit, user, &PageRequest::first(100)).await;
    let newest_first: Vec<AuditEvent> = recorded.into_iter().rev().collect();
    assert_eq!(
        page.items, newest_first,
        "a user's events are listed newest first, every field as recorded (the registration too)"
    );
    assert_eq!(page.next, None, "a page holding everything has no next cursor");
}

pub async fn events_are_listed_in_pages(accounts: &impl AccountRepository, audit: &impl AuditLog) {
    let (user, recorded) = user_with_events(accounts, audit).await;
    let newest_first: Vec<AuditEvent> = recorded.into_iter().rev().collect();
    let first = list(audit, user, &PageRequest::first(3)).await;
    assert_eq!(
        first.items,
        newest_first[..3],
        "the first page holds the newest `limit` events"
    );
    let next = first
        .next
        .expect("a first page with more to come must have a next cursor");
    let second = list(
        audit,
        user,
        &PageRequest {
            limit: 3,
            after: Some(next),
        },
    )
    .await;
    assert_eq!(
        second.items,
        newest_first[3..],
        "the next page continues after the cursor"
    );
    assert_eq!(second.next, None, "the last page has no next cursor");
}

pub async fn only_the_users_own_events_are_listed(accounts: &impl AccountRepository, audit: &impl AuditLog) {
    let (user, recorded) = user_with_events(accounts, audit).await;
    let (other, _) = user_with_events(accounts, audit).await;
    audit
        .record(&audit_event(AuditAction::LoginFailed, None, None))
        .await
        .expect("recording an event without a user must succeed");
    let mine = list(audit, user, &PageRequest::first(100)).await;
    assert_eq!(
        mine.items.len(),
        recorded.len(),
        "a listing holds exactly the user's events"
    );
    assert!(
        mine.items.iter().all(|e| e.user_id == Some(user)),
        "another user's (or no user's) events must not be listed"
    );
    assert!(
        list(audit, other, &PageRequest::first(100))
            .await
            .items
            .iter()
            .all(|e| e.user_id == Some(other)),
        "each user sees only their own events"
    );
}

pub async fn a_user_without_events_lists_nothing(_accounts: &impl AccountRepository, audit: &impl AuditLog) {
    let page = list(audit, unknown_user(), &PageRequest::first(10)).await;
    assert_eq!(
        page,
        Page {
            items: vec![],
            next: None
        },
        "no events, no cursor"
    );
}

pub async fn the_trail_outlives_the_account(accounts: &impl AccountRepository, audit: &impl AuditLog) {
    let (user, recorded) = user_with_events(accounts, audit).await;
    let mut deletion = audit_event(AuditAction::AccountDeleted, Some(user), None);
    deletion.occurred_at = t0() + Duration::hours(1);
    assert!(
        accounts.delete(user, &deletion).await.expect("delete failed"),
        "setting up: deleting the user"
    );
    let after = list(audit, user, &PageRequest::first(100)).await;
    assert_eq!(
        after.items.len(),
        recorded.len() + 1,
        "a deleted user's events must stay, plus the deletion's"
    );
    assert_eq!(
        after.items.first(),
        Some(&deletion),
        "the deletion is the newest event"
    );
}

/// Runs every rule in order on one store; prefer
/// [`audit_log_contract!`](crate::audit_log_contract), which gives each
/// rule a test of its own.
pub async fn audit_log_contract(accounts: &impl AccountRepository, audit: &impl AuditLog) {
    events_are_listed_newest_first_and_intact(accounts, audit).await;
    events_are_listed_in_pages(accounts, audit).await;
    only_the_users_own_events_are_listed(accounts, audit).await;
    a_user_without_events_lists_nothing(accounts, audit).await;
    the_trail_outlives_the_account(accounts, audit).await;
}

/// One `#[tokio::test]` per [`AuditLog`] rule, in a module
/// `audit_log_contract`. `$setup`: an async block returning
/// `(guard, accounts, audit)` over one store.
#[macro_export]
macro_rules! audit_log_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            audit_log_contract,
            audit,
            $setup,
            (accounts, audit),
            [
                events_are_listed_newest_first_and_intact,
                events_are_listed_in_pages,
                only_the_users_own_events_are_listed,
                a_user_without_events_lists_nothing,
                the_trail_outlives_the_account,
            ]
        );
    };
}
