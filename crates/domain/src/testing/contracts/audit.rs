//! The [`AuditLog`] contract.

use chrono::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::account::*;
use crate::audit::{AuditAction, AuditEvent, AuditLog};
use crate::pagination::PageRequest;

/// Everything an [`AuditLog`] must do; `accounts` provides the user.
pub async fn audit_log_contract(accounts: &impl AccountRepository, audit: &impl AuditLog) {
    let user = new_user(20);
    let registered = audit_event(AuditAction::AccountRegistered, Some(user.id), None);
    accounts.create(&user, &registered).await.unwrap();
    let other = UserId::from_uuid(Uuid::now_v7());
    let mut recorded = vec![registered];
    for minutes in 1..=4 {
        let mut event = audit_event(AuditAction::LoginFailed, Some(user.id), None);
        event.occurred_at = t0() + Duration::minutes(minutes);
        audit.record(&event).await.unwrap();
        recorded.push(event);
    }
    audit
        .record(&audit_event(AuditAction::LoginFailed, Some(other), None))
        .await
        .unwrap();
    audit
        .record(&audit_event(AuditAction::LoginFailed, None, None))
        .await
        .unwrap();

    // Newest first, in pages, only the user's own, with every field intact.
    let first = audit
        .list_for_user(user.id, &PageRequest::first(3))
        .await
        .unwrap();
    let expected: Vec<AuditEvent> = recorded.iter().rev().cloned().collect();
    assert_eq!(first.items, expected[..3]);
    let next = first.next.expect("a second page");
    let second = audit
        .list_for_user(
            user.id,
            &PageRequest {
                limit: 3,
                after: Some(next),
            },
        )
        .await
        .unwrap();
    assert_eq!(second.items, expected[3..]);
    assert_eq!(second.next, None);

    // The trail outlives the account.
    let mut deleted = audit_event(AuditAction::AccountDeleted, Some(user.id), None);
    deleted.occurred_at = t0() + Duration::hours(1);
    assert!(accounts.delete(user.id, &deleted).await.unwrap());
    let after = audit
        .list_for_user(user.id, &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(after.items.len(), recorded.len() + 1);
    assert_eq!(after.items[0].action, AuditAction::AccountDeleted);
}
