//! The [`ApiKeyRepository`] contract; the account repository provides
//! owners and the audit log shows what was appended.

use chrono::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::access::*;
use crate::account::*;
use crate::audit::{AuditAction, AuditLog};
use crate::pagination::PageRequest;

/// A key named `name` for `owner`, created at `t0 + minutes`, with a hash
/// unique to this call.
fn new_key(owner: UserId, name: &str, minutes: i64) -> NewApiKey {
    let tag = Uuid::new_v4();
    NewApiKey {
        key: ApiKey {
            id: ApiKeyId::from_uuid(Uuid::now_v7()),
            owner,
            name: ApiKeyName::parse(name).expect("a valid name"),
            prefix: format!("eag_live_{}", &tag.simple().to_string()[..6]),
            scopes: Scopes::of([Scope::SignalsPublish, Scope::DevicesRead]),
            allowed: AllowedNetworks::parse(&["203.0.113.0/24", "2001:db8::/32"]).expect("valid CIDRs"),
            created_at: t0() + Duration::minutes(minutes),
            expires_at: Some(t0() + Duration::days(30)),
            last_used_at: None,
            rotated_at: None,
            revoked_at: None,
        },
        hash: ApiKeyHash::new(tag.as_bytes().to_vec()),
    }
}

fn generated(prefix: &str) -> GeneratedApiKey {
    GeneratedApiKey {
        secret: ApiKeySecret::new(format!("eag_live_{prefix}{}", "x".repeat(43))),
        hash: ApiKeyHash::new(Uuid::new_v4().as_bytes().to_vec()),
    }
}

async fn store(keys: &impl ApiKeyRepository, key: &NewApiKey) {
    keys.create(
        key,
        &audit_event(AuditAction::ApiKeyCreated, Some(key.key.owner), None),
    )
    .await
    .expect("storing a new key");
}

async fn found(keys: &impl ApiKeyRepository, hash: &ApiKeyHash) -> Option<ApiKey> {
    keys.find_by_hash(hash).await.expect("find_by_hash failed")
}

async fn actions(audit: &impl AuditLog, user: UserId) -> Vec<AuditAction> {
    let page = PageRequest {
        limit: 100,
        after: None,
    };
    let mut events = audit
        .list_for_user(user, &page)
        .await
        .expect("listing audit events")
        .items;
    events.reverse();
    events.into_iter().map(|e| e.action).collect()
}

pub async fn a_created_key_is_found_by_its_hash_and_listed_newest_first(
    accounts: &impl AccountRepository,
    keys: &impl ApiKeyRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let first = new_key(owner, "First", 0);
    let second = new_key(owner, "Second", 1);
    store(keys, &first).await;
    store(keys, &second).await;
    store(keys, &new_key(other, "First", 2)).await;
    assert_eq!(
        found(keys, &first.hash).await,
        Some(first.key.clone()),
        "a key reads back exactly as stored (scopes, allowlist, expiry)"
    );
    assert_eq!(
        found(keys, &ApiKeyHash::new(vec![7; 16])).await,
        None,
        "an unknown hash finds nothing"
    );
    let page = PageRequest {
        limit: 1,
        after: None,
    };
    let one = keys.list(owner, &page).await.expect("list failed");
    assert_eq!(one.items, vec![second.key.clone()], "newest first, one per page");
    let rest = keys
        .list(
            owner,
            &PageRequest {
                limit: 10,
                after: one.next,
            },
        )
        .await
        .expect("list failed");
    assert_eq!(
        rest.items,
        vec![first.key],
        "the next page continues after the cursor"
    );
    assert!(rest.next.is_none(), "the last page has no cursor");
    assert_eq!(
        actions(audit, owner).await,
        [
            AuditAction::AccountRegistered,
            AuditAction::ApiKeyCreated,
            AuditAction::ApiKeyCreated
        ],
        "creating appends the audit event"
    );
}

pub async fn names_are_unique_among_active_keys_ignoring_case(
    accounts: &impl AccountRepository,
    keys: &impl ApiKeyRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let first = new_key(owner, "Deploy", 0);
    store(keys, &first).await;
    let clash = keys
        .create(
            &new_key(owner, "deploy", 1),
            &audit_event(AuditAction::ApiKeyCreated, Some(owner), None),
        )
        .await;
    assert!(
        matches!(clash, Err(CreateApiKeyStoreError::NameTaken)),
        "a second active key with the same name (any case) is NameTaken: {clash:?}"
    );
    store(keys, &new_key(other, "DEPLOY", 1)).await;
    keys.revoke(
        owner,
        first.key.id,
        t0(),
        &audit_event(AuditAction::ApiKeyRevoked, Some(owner), None),
    )
    .await
    .expect("revoke failed");
    store(keys, &new_key(owner, "deploy", 2)).await;
}

pub async fn revocation_is_scoped_to_the_owner_and_keeps_the_first_time(
    accounts: &impl AccountRepository,
    keys: &impl ApiKeyRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await.id;
    let stranger = registered(accounts).await.id;
    let key = new_key(owner, "Revoke me", 0);
    store(keys, &key).await;
    let event = || audit_event(AuditAction::ApiKeyRevoked, Some(owner), None);
    assert_eq!(
        keys.revoke(stranger, key.key.id, t0(), &event())
            .await
            .expect("revoke failed"),
        None,
        "another owner's key is not found"
    );
    assert!(
        found(keys, &key.hash)
            .await
            .expect("still stored")
            .revoked_at
            .is_none(),
        "another owner's revoke leaves the key active"
    );
    let at = t0() + Duration::hours(1);
    let revoked = keys
        .revoke(owner, key.key.id, at, &event())
        .await
        .expect("revoke failed")
        .expect("the owner's key");
    assert_eq!(revoked.revoked_at, Some(at), "revoking records when");
    let again = keys
        .revoke(owner, key.key.id, at + Duration::hours(1), &event())
        .await
        .expect("revoke failed")
        .expect("the owner's key");
    assert_eq!(again.revoked_at, Some(at), "the first revocation time stays");
    assert_eq!(
        found(keys, &key.hash)
            .await
            .expect("a revoked key is still found")
            .revoked_at,
        Some(at),
        "find_by_hash sees the revocation at once"
    );
    assert_eq!(
        actions(audit, owner).await,
        [
            AuditAction::AccountRegistered,
            AuditAction::ApiKeyCreated,
            AuditAction::ApiKeyRevoked
        ],
        "one audit event per change, none for a repeat"
    );
}

pub async fn rotation_replaces_the_hash_of_active_keys_only(
    accounts: &impl AccountRepository,
    keys: &impl ApiKeyRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await.id;
    let stranger = registered(accounts).await.id;
    let key = new_key(owner, "Rotate me", 0);
    store(keys, &key).await;
    let event = || audit_event(AuditAction::ApiKeyRotated, Some(owner), None);
    let new = generated("NeWpRe");
    let stranger_rotates = keys.rotate(stranger, key.key.id, &new, t0(), &event()).await;
    assert!(
        matches!(stranger_rotates, Err(RotateApiKeyStoreError::NotFound)),
        "another owner's key: {stranger_rotates:?}"
    );
    let at = t0() + Duration::minutes(5);
    let rotated = keys
        .rotate(owner, key.key.id, &new, at, &event())
        .await
        .expect("rotate failed");
    assert_eq!(
        rotated.prefix, "eag_live_NeWpRe",
        "the shown prefix follows the secret"
    );
    assert_eq!(rotated.rotated_at, Some(at), "rotating records when");
    assert_eq!(
        (rotated.name.clone(), rotated.scopes.clone()),
        (key.key.name.clone(), key.key.scopes.clone()),
        "rotating keeps the name and scopes"
    );
    assert_eq!(found(keys, &key.hash).await, None, "the old secret stops working");
    assert_eq!(found(keys, &new.hash).await, Some(rotated), "the new one works");
    keys.revoke(
        owner,
        key.key.id,
        at,
        &audit_event(AuditAction::ApiKeyRevoked, Some(owner), None),
    )
    .await
    .expect("revoke failed");
    let after_revoke = keys
        .rotate(owner, key.key.id, &generated("abcdef"), at, &event())
        .await;
    assert!(
        matches!(after_revoke, Err(RotateApiKeyStoreError::Revoked)),
        "a revoked key cannot be rotated: {after_revoke:?}"
    );
    assert_eq!(
        actions(audit, owner).await,
        [
            AuditAction::AccountRegistered,
            AuditAction::ApiKeyCreated,
            AuditAction::ApiKeyRotated,
            AuditAction::ApiKeyRevoked
        ],
        "create, rotate and revoke are audited in order"
    );
}

pub async fn last_use_only_moves_forward(
    accounts: &impl AccountRepository,
    keys: &impl ApiKeyRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await.id;
    let key = new_key(owner, "Used", 0);
    store(keys, &key).await;
    let later = t0() + Duration::hours(2);
    keys.record_last_used(&[(key.key.id, later), (ApiKeyId::from_uuid(Uuid::now_v7()), later)])
        .await
        .expect("record_last_used failed (an unknown key is skipped)");
    keys.record_last_used(&[(key.key.id, t0())])
        .await
        .expect("record_last_used failed");
    assert_eq!(
        found(keys, &key.hash).await.expect("stored").last_used_at,
        Some(later),
        "an older time does not overwrite a newer one"
    );
}

pub async fn deleting_the_owner_deletes_their_keys(
    accounts: &impl AccountRepository,
    keys: &impl ApiKeyRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await.id;
    let key = new_key(owner, "Gone", 0);
    store(keys, &key).await;
    accounts
        .delete(
            owner,
            &audit_event(AuditAction::AccountDeleted, Some(owner), None),
        )
        .await
        .expect("delete failed");
    assert_eq!(found(keys, &key.hash).await, None, "the key went with its owner");
}

/// Every rule in order on one set of ports; the per-rule tests come from
/// [`api_key_repository_contract!`](crate::api_key_repository_contract).
pub async fn api_key_repository_contract(
    accounts: &impl AccountRepository,
    keys: &impl ApiKeyRepository,
    audit: &impl AuditLog,
) {
    a_created_key_is_found_by_its_hash_and_listed_newest_first(accounts, keys, audit).await;
    names_are_unique_among_active_keys_ignoring_case(accounts, keys, audit).await;
    revocation_is_scoped_to_the_owner_and_keeps_the_first_time(accounts, keys, audit).await;
    rotation_replaces_the_hash_of_active_keys_only(accounts, keys, audit).await;
    last_use_only_moves_forward(accounts, keys, audit).await;
    deleting_the_owner_deletes_their_keys(accounts, keys, audit).await;
}

/// One `#[tokio::test]` per [`ApiKeyRepository`] rule, in a module
/// `api_key_repository_contract`. `$setup`: an async block returning
/// `(guard, accounts, keys, audit)` over one store.
#[macro_export]
macro_rules! api_key_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            api_key_repository_contract,
            api_keys,
            $setup,
            (accounts, keys, audit),
            [
                a_created_key_is_found_by_its_hash_and_listed_newest_first,
                names_are_unique_among_active_keys_ignoring_case,
                revocation_is_scoped_to_the_owner_and_keeps_the_first_time,
                rotation_replaces_the_hash_of_active_keys_only,
                last_use_only_moves_forward,
                deleting_the_owner_deletes_their_keys,
            ]
        );
    };
}
