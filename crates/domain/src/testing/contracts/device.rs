//! The [`DeviceRepository`] contract; the account repository provides
//! owners, the audit log shows what was recorded. Concurrent registrations
//! (the limit holds under races) are tested per adapter.

use chrono::{DateTime, Duration, Utc};

use super::fixtures::*;
use crate::account::*;
use crate::activity::DeviceActivity;
use crate::audit::{AuditAction, AuditLog};
use crate::device::*;
use crate::pagination::{Page, PageRequest};

async fn audit_count(audit: &impl AuditLog, user: UserId) -> usize {
    audit
        .list_for_user(user, &PageRequest::first(1000))
        .await
        .expect("list_for_user failed")
        .items
        .len()
}

async fn find(devices: &impl DeviceRepository, owner: UserId, id: DeviceId) -> Option<Device> {
    devices.find(owner, id).await.expect("find failed")
}

async fn list(
    devices: &impl DeviceRepository,
    owner: UserId,
    status: Option<DeviceStatus>,
    page: &PageRequest,
) -> Page<Device> {
    devices.list(owner, status, page).await.expect("list failed")
}

fn ids(page: &Page<Device>) -> Vec<DeviceId> {
    page.items.iter().map(|d| d.id).collect()
}

async fn rename(
    devices: &impl DeviceRepository,
    owner: UserId,
    device: &NewDevice,
    name: &str,
    at: DateTime<Utc>,
) -> Result<Device, UpdateDeviceError> {
    devices
        .rename(
            owner,
            device.id,
            &DeviceName::parse(name).unwrap(),
            at,
            &device_audit(AuditAction::DeviceRenamed, device),
        )
        .await
}

async fn revoke(
    devices: &impl DeviceRepository,
    owner: UserId,
    device: &NewDevice,
    at: DateTime<Utc>,
) -> Result<Revocation, UpdateDeviceError> {
    devices
        .revoke(
            owner,
            device.id,
            at,
            &device_audit(AuditAction::DeviceRevoked, device),
        )
        .await
}

fn rotation(label: &str, grace: Option<Duration>) -> SecretRotation {
    let at = t0() + Duration::hours(1);
    SecretRotation {
        secret: sealed(label),
        fingerprint: SecretFingerprint::new(format!("fp-{label}")),
        previous_valid_until: grace.map(|g| at + g),
        at,
    }
}

async fn rotate(
    devices: &impl DeviceRepository,
    owner: UserId,
    device: &NewDevice,
    rotation: &SecretRotation,
) -> Result<Device, UpdateDeviceError> {
    devices
        .rotate_secret(
            owner,
            device.id,
            rotation,
            &device_audit(AuditAction::DeviceSecretRotated, device),
        )
        .await
}

async fn credentials(devices: &impl DeviceRepository, id: DeviceId) -> Option<DeviceCredentials> {
    devices
        .find_credentials(id)
        .await
        .expect("find_credentials failed")
}

/// The stored secrets of `id`, paging through every device.
async fn stored_secrets_of(devices: &impl DeviceRepository, id: DeviceId) -> Option<StoredSecrets> {
    let mut after = None;
    loop {
        let page = devices
            .stored_secrets(after, 100)
            .await
            .expect("stored_secrets failed");
        if let Some(found) = page.iter().find(|s| s.device == id) {
            return Some(found.clone());
        }
        match page.last() {
            Some(last) if page.len() == 100 => after = Some(last.device),
            _ => return None,
        }
    }
}

pub async fn insert_returns_the_stored_device(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let new = new_device(owner.id, "Main MT5", 1);
    let stored = devices
        .insert(&new, 3, &device_audit(AuditAction::DeviceRegistered, &new))
        .await
        .expect("inserting a first device must succeed");
    assert_eq!(
        (stored.id, stored.owner, &stored.name),
        (new.id, owner.id, &new.name),
        "the stored device keeps its id, owner and name"
    );
    assert_eq!(stored.status(), DeviceStatus::Active, "a new device is active");
    assert_eq!(
        stored.secret_fingerprint, new.fingerprint,
        "it keeps its fingerprint"
    );
    assert_eq!(
        (stored.created_at, stored.updated_at),
        (new.created_at, new.created_at),
        "created_at and updated_at are the given time"
    );
    assert_eq!(
        (
            stored.last_seen_at,
            stored.last_poll_at,
            stored.last_ack_at,
            &stored.last_heartbeat
        ),
        (None, None, None, &None),
        "a new device has no activity"
    );
    assert_eq!(
        find(devices, owner.id, new.id).await,
        Some(stored),
        "find returns what insert returned"
    );
}

pub async fn a_device_is_found_only_by_its_owner(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let (owner, stranger) = (registered(accounts).await, registered(accounts).await);
    let device = stored_device(devices, owner.id, "Mine", 1).await;
    assert!(
        find(devices, stranger.id, device.id).await.is_none(),
        "another owner must not find the device"
    );
    assert!(
        find(devices, owner.id, unknown_device()).await.is_none(),
        "an unknown id finds nothing"
    );
    assert!(
        list(devices, stranger.id, None, &PageRequest::first(100))
            .await
            .items
            .is_empty(),
        "another owner's listing must not show the device"
    );
}

pub async fn insert_records_its_audit_event(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let before = audit_count(audit, owner.id).await;
    let device = stored_device(devices, owner.id, "Audited", 1).await;
    let events = audit
        .list_for_user(owner.id, &PageRequest::first(1000))
        .await
        .expect("list_for_user failed");
    assert_eq!(
        events.items.len(),
        before + 1,
        "an insert records exactly one event"
    );
    assert_eq!(
        (events.items[0].action, events.items[0].device_id),
        (AuditAction::DeviceRegistered, Some(device.id)),
        "the insert's own event is recorded"
    );
}

pub async fn a_name_in_use_is_refused_whatever_its_case(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    stored_device(devices, owner.id, "Main MT5", 1).await;
    let before = audit_count(audit, owner.id).await;
    let dup = new_device(owner.id, "main mt5", 2);
    let result = devices
        .insert(&dup, 3, &device_audit(AuditAction::DeviceRegistered, &dup))
        .await;
    assert!(
        matches!(result, Err(InsertDeviceError::NameTaken)),
        "a name differing only in case from an active device's must be NameTaken, got {result:?}"
    );
    assert!(
        find(devices, owner.id, dup.id).await.is_none(),
        "a refused device is not stored"
    );
    assert_eq!(
        audit_count(audit, owner.id).await,
        before,
        "a refused insert records nothing"
    );
}

pub async fn another_owner_may_use_the_same_name(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let (ann, bob) = (registered(accounts).await, registered(accounts).await);
    stored_device(devices, ann.id, "Main MT5", 1).await;
    let bobs = new_device(bob.id, "Main MT5", 2);
    let result = devices
        .insert(&bobs, 3, &device_audit(AuditAction::DeviceRegistered, &bobs))
        .await;
    assert!(result.is_ok(), "names are unique per owner only, got {result:?}");
}

pub async fn the_active_device_limit_is_enforced(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    for (n, name) in ["One", "Two", "Three"].into_iter().enumerate() {
        let d = new_device(owner.id, name, n as i64);
        devices
            .insert(&d, 3, &device_audit(AuditAction::DeviceRegistered, &d))
            .await
            .expect("inserts up to the limit must succeed");
    }
    let before = audit_count(audit, owner.id).await;
    let fourth = new_device(owner.id, "Four", 5);
    let result = devices
        .insert(&fourth, 3, &device_audit(AuditAction::DeviceRegistered, &fourth))
        .await;
    assert!(
        matches!(result, Err(InsertDeviceError::LimitReached)),
        "an insert beyond max_active must be LimitReached, got {result:?}"
    );
    assert_eq!(
        audit_count(audit, owner.id).await,
        before,
        "a refused insert records nothing"
    );
}

pub async fn devices_are_listed_newest_first_in_pages(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let d1 = stored_device(devices, owner.id, "First", 1).await;
    let d2 = stored_device(devices, owner.id, "Second", 2).await;
    let d3 = stored_device(devices, owner.id, "Third", 3).await;
    let page = list(devices, owner.id, None, &PageRequest::first(2)).await;
    assert_eq!(
        ids(&page),
        [d3.id, d2.id],
        "the first page holds the newest devices"
    );
    assert!(
        page.next.is_some(),
        "a first page with more to come has a next cursor"
    );
    let rest = list(
        devices,
        owner.id,
        None,
        &PageRequest {
            limit: 2,
            after: page.next,
        },
    )
    .await;
    assert_eq!(ids(&rest), [d1.id], "the next page continues after the cursor");
    assert_eq!(rest.next, None, "the last page has no next cursor");
}

pub async fn the_listing_filters_by_status(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let kept = stored_device(devices, owner.id, "Kept", 1).await;
    let gone = stored_device(devices, owner.id, "Gone", 2).await;
    revoke(devices, owner.id, &gone, t0() + Duration::hours(1))
        .await
        .expect("revoke failed");
    let active = list(
        devices,
        owner.id,
        Some(DeviceStatus::Active),
        &PageRequest::first(100),
    )
    .await;
    assert_eq!(ids(&active), [kept.id], "status=active lists only active devices");
    let revoked = list(
        devices,
        owner.id,
        Some(DeviceStatus::Revoked),
        &PageRequest::first(100),
    )
    .await;
    assert_eq!(
        ids(&revoked),
        [gone.id],
        "status=revoked lists only revoked devices"
    );
    let all = list(devices, owner.id, None, &PageRequest::first(100)).await;
    assert_eq!(ids(&all), [gone.id, kept.id], "no status lists both");
}

pub async fn a_rename_changes_the_name_and_updated_at(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Old name", 1).await;
    let before = audit_count(audit, owner.id).await;
    let at = t0() + Duration::hours(1);
    let renamed = rename(devices, owner.id, &device, "New name", at)
        .await
        .expect("renaming an active device to a free name must succeed");
    assert_eq!(
        renamed.name.as_str(),
        "New name",
        "the rename returns the new name"
    );
    assert_eq!(renamed.updated_at, at, "a rename sets updated_at");
    assert_eq!(
        find(devices, owner.id, device.id).await.map(|d| d.name),
        Some(renamed.name),
        "the new name is stored"
    );
    assert_eq!(
        audit_count(audit, owner.id).await,
        before + 1,
        "a rename records one event"
    );
}

pub async fn a_rename_to_a_name_in_use_is_refused(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Mine", 1).await;
    stored_device(devices, owner.id, "Second", 2).await;
    let before = audit_count(audit, owner.id).await;
    let result = rename(devices, owner.id, &device, "SECOND", t0()).await;
    assert!(
        matches!(result, Err(UpdateDeviceError::NameTaken)),
        "renaming to another active device's name (any case) must be NameTaken, got {result:?}"
    );
    assert_eq!(
        audit_count(audit, owner.id).await,
        before,
        "a refused rename records nothing"
    );
}

pub async fn a_rename_to_its_own_name_in_another_case_is_allowed(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Renamed", 1).await;
    let result = rename(devices, owner.id, &device, "RENAMED", t0()).await;
    assert!(
        result.is_ok_and(|d| d.name.as_str() == "RENAMED"),
        "a device may change the case of its own name"
    );
}

pub async fn another_owners_device_cannot_be_changed(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let (owner, stranger) = (registered(accounts).await, registered(accounts).await);
    let device = stored_device(devices, owner.id, "Mine", 1).await;
    let renamed = rename(devices, stranger.id, &device, "Theirs", t0()).await;
    assert!(
        matches!(renamed, Err(UpdateDeviceError::NotFound)),
        "renaming another owner's device must be NotFound, got {renamed:?}"
    );
    let rotated = rotate(devices, stranger.id, &device, &rotation("stolen", None)).await;
    assert!(
        matches!(rotated, Err(UpdateDeviceError::NotFound)),
        "rotating another owner's device must be NotFound, got {rotated:?}"
    );
    let revoked = revoke(devices, stranger.id, &device, t0()).await;
    assert!(
        matches!(revoked, Err(UpdateDeviceError::NotFound)),
        "revoking another owner's device must be NotFound, got {revoked:?}"
    );
    let unchanged = find(devices, owner.id, device.id)
        .await
        .expect("the device is still there");
    assert_eq!(
        (unchanged.name.as_str(), unchanged.status()),
        ("Mine", DeviceStatus::Active),
        "a refused change changes nothing"
    );
}

pub async fn a_rotation_with_grace_keeps_the_previous_secret(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Rotating", 1).await;
    let before = audit_count(audit, owner.id).await;
    let rotation = rotation("second secret", Some(Duration::minutes(10)));
    let rotated = rotate(devices, owner.id, &device, &rotation)
        .await
        .expect("rotating an active device must succeed");
    assert_eq!(
        rotated.secret_fingerprint, rotation.fingerprint,
        "the new fingerprint is stored"
    );
    assert_eq!(rotated.updated_at, rotation.at, "a rotation sets updated_at");
    let creds = credentials(devices, device.id).await.expect("credentials");
    assert_eq!(creds.current, rotation.secret, "the new secret is current");
    assert_eq!(
        creds.previous,
        Some((
            device.secret.clone(),
            t0() + Duration::hours(1) + Duration::minutes(10)
        )),
        "the replaced secret stays valid until the end of the grace period"
    );
    assert_eq!(
        audit_count(audit, owner.id).await,
        before + 1,
        "a rotation records one event"
    );
}

pub async fn a_rotation_without_grace_drops_the_previous_secret(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Rotating", 1).await;
    rotate(
        devices,
        owner.id,
        &device,
        &rotation("first", Some(Duration::minutes(10))),
    )
    .await
    .expect("rotate failed");
    let rotation = rotation("second", None);
    rotate(devices, owner.id, &device, &rotation)
        .await
        .expect("rotate failed");
    let creds = credentials(devices, device.id).await.expect("credentials");
    assert_eq!(creds.current, rotation.secret, "the new secret is current");
    assert_eq!(
        creds.previous, None,
        "without a grace period no previous secret remains"
    );
}

pub async fn a_reseal_replaces_exactly_what_was_expected_once(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Resealed", 1).await;
    rotate(
        devices,
        owner.id,
        &device,
        &rotation("second", Some(Duration::minutes(10))),
    )
    .await
    .expect("rotate failed");
    let expected = stored_secrets_of(devices, device.id)
        .await
        .expect("an active device's secrets are listed");
    assert_eq!(
        expected.previous.as_ref(),
        Some(&device.secret),
        "stored secrets include the previous secret"
    );
    let current = SealedSecret {
        key_id: "k2".into(),
        ciphertext: b"resealed".to_vec(),
    };
    let previous = SealedSecret {
        key_id: "k2".into(),
        ciphertext: b"resealed prev".to_vec(),
    };
    assert!(
        devices
            .reseal(&expected, &current, Some(&previous))
            .await
            .expect("reseal failed"),
        "a reseal of the secrets as listed must replace them"
    );
    assert!(
        !devices
            .reseal(&expected, &current, Some(&previous))
            .await
            .expect("reseal failed"),
        "a reseal against a stale expectation must replace nothing"
    );
    let now = stored_secrets_of(devices, device.id).await.expect("listed");
    assert_eq!(
        (&now.current, now.previous.as_ref()),
        (&current, Some(&previous)),
        "the resealed secrets are stored"
    );
}

pub async fn stored_secrets_page_by_id_and_skip_revoked_devices(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let kept = stored_device(devices, owner.id, "Kept", 1).await;
    stored_device(devices, owner.id, "Also kept", 2).await;
    let gone = stored_device(devices, owner.id, "Gone", 3).await;
    revoke(devices, owner.id, &gone, t0())
        .await
        .expect("revoke failed");
    let first = devices
        .stored_secrets(None, 1)
        .await
        .expect("stored_secrets failed");
    assert_eq!(first.len(), 1, "a page holds at most `limit` devices");
    let second = devices
        .stored_secrets(Some(first[0].device), 1)
        .await
        .expect("stored_secrets failed");
    assert!(
        second.first().is_some_and(|s| s.device > first[0].device),
        "the next page continues in id order after `after`"
    );
    assert_eq!(
        stored_secrets_of(devices, kept.id).await.map(|s| s.current),
        Some(kept.secret),
        "an active device's secret is listed"
    );
    assert!(
        stored_secrets_of(devices, gone.id).await.is_none(),
        "a revoked device's secrets are not listed (nothing to reseal)"
    );
}

pub async fn a_revocation_is_permanent_and_recorded_once(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Leaving", 1).await;
    let before = audit_count(audit, owner.id).await;
    let at = t0() + Duration::hours(1);
    let first = revoke(devices, owner.id, &device, at)
        .await
        .expect("revoke failed");
    let Revocation::Revoked(revoked) = first else {
        panic!("the first revocation must be Revoked, got {first:?}")
    };
    assert_eq!(
        (revoked.status(), revoked.revoked_at, revoked.updated_at),
        (DeviceStatus::Revoked, Some(at), at),
        "a revoked device says when"
    );
    let again = revoke(devices, owner.id, &device, at + Duration::hours(1))
        .await
        .expect("revoke failed");
    assert!(
        matches!(&again, Revocation::AlreadyRevoked(d) if d.revoked_at == Some(at)),
        "revoking again must be AlreadyRevoked and keep the first time, got {again:?}"
    );
    assert_eq!(
        audit_count(audit, owner.id).await,
        before + 1,
        "only the first revocation is recorded"
    );
}

pub async fn a_revoked_device_cannot_be_renamed_or_rotated(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Zombie", 1).await;
    revoke(devices, owner.id, &device, t0())
        .await
        .expect("revoke failed");
    let renamed = rename(devices, owner.id, &device, "Alive", t0()).await;
    assert!(
        matches!(renamed, Err(UpdateDeviceError::Revoked)),
        "renaming a revoked device must be Revoked, got {renamed:?}"
    );
    let rotated = rotate(devices, owner.id, &device, &rotation("new", None)).await;
    assert!(
        matches!(rotated, Err(UpdateDeviceError::Revoked)),
        "rotating a revoked device must be Revoked, got {rotated:?}"
    );
}

pub async fn a_revocation_frees_the_name_and_a_slot(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let leaving = stored_device(devices, owner.id, "Second", 1).await;
    stored_device(devices, owner.id, "Other", 2).await;
    revoke(devices, owner.id, &leaving, t0())
        .await
        .expect("revoke failed");
    let reuse = new_device(owner.id, "Second", 3);
    let result = devices
        .insert(&reuse, 2, &device_audit(AuditAction::DeviceRegistered, &reuse))
        .await;
    assert!(
        result.is_ok(),
        "a revoked device's name and slot must be free again (limit 2, one active), got {result:?}"
    );
}

pub async fn a_revocation_drops_the_previous_secret(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Rotated", 1).await;
    rotate(
        devices,
        owner.id,
        &device,
        &rotation("new", Some(Duration::days(1))),
    )
    .await
    .expect("rotate failed");
    revoke(devices, owner.id, &device, t0() + Duration::hours(2))
        .await
        .expect("revoke failed");
    let creds = credentials(devices, device.id).await.expect("credentials");
    assert!(creds.revoked, "a revoked device's credentials say so");
    assert_eq!(creds.previous, None, "a revocation drops the previous secret");
}

pub async fn credentials_are_found_by_id_alone(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Signer", 1).await;
    let creds = credentials(devices, device.id)
        .await
        .expect("a stored device's credentials must be found by its id");
    assert_eq!(
        (creds.id, creds.owner, &creds.name, creds.revoked),
        (device.id, owner.id, &device.name, false),
        "credentials name the device, its owner and that it is active"
    );
    assert_eq!(
        (&creds.current, &creds.previous),
        (&device.secret, &None),
        "credentials carry the sealed secret"
    );
    assert!(
        credentials(devices, unknown_device()).await.is_none(),
        "an unknown id has no credentials"
    );
}

fn heartbeat(version: &str, received_at: DateTime<Utc>) -> Heartbeat {
    Heartbeat {
        ea_version: Some(version.into()),
        terminal_build: Some(4410),
        broker: Some("Broker Ltd".into()),
        account_login: Some(u64::MAX),
        balance: Some(1234.5),
        equity: None,
        received_at,
    }
}

fn activity(
    seen_at: Option<DateTime<Utc>>,
    polled_at: Option<DateTime<Utc>>,
    heartbeat: Option<Heartbeat>,
) -> DeviceActivity {
    DeviceActivity {
        seen_at,
        polled_at,
        heartbeat,
        delivered: Vec::new(),
    }
}

pub async fn a_batch_of_activity_sets_each_devices_times(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let one = stored_device(devices, owner.id, "One", 1).await;
    let two = stored_device(devices, owner.id, "Two", 2).await;
    let at = t0() + Duration::hours(2);
    devices
        .record_activity(&[
            (one.id, activity(Some(at), Some(at - Duration::seconds(1)), None)),
            (two.id, activity(Some(at + Duration::seconds(7)), None, None)),
        ])
        .await
        .expect("record_activity failed");
    let stored = find(devices, owner.id, one.id).await.expect("the device");
    assert_eq!(
        (stored.last_seen_at, stored.last_poll_at),
        (Some(at), Some(at - Duration::seconds(1))),
        "seen and poll times are each set"
    );
    let stored = find(devices, owner.id, two.id).await.expect("the device");
    assert_eq!(
        (stored.last_seen_at, stored.last_poll_at),
        (Some(at + Duration::seconds(7)), None),
        "each device of the batch gets its own times; absent ones stay unset"
    );
}

pub async fn activity_times_only_move_forward(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Busy", 1).await;
    let at = t0() + Duration::hours(2);
    devices
        .record_activity(&[(device.id, activity(Some(at), Some(at), None))])
        .await
        .expect("record_activity failed");
    // Another instance flushes older activity afterwards.
    devices
        .record_activity(&[(
            device.id,
            activity(
                Some(at - Duration::seconds(9)),
                Some(at - Duration::seconds(9)),
                None,
            ),
        )])
        .await
        .expect("record_activity failed");
    let stored = find(devices, owner.id, device.id).await.expect("the device");
    assert_eq!(
        (stored.last_seen_at, stored.last_poll_at),
        (Some(at), Some(at)),
        "an older batch must never move activity back"
    );
}

pub async fn the_latest_heartbeat_is_stored(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Beating", 1).await;
    let older = heartbeat("1.0", t0() + Duration::hours(1));
    let latest = heartbeat("2.0", t0() + Duration::hours(2));
    for beat in [&older, &latest, &older] {
        devices
            .record_activity(&[(device.id, activity(None, None, Some(beat.clone())))])
            .await
            .expect("record_activity failed");
    }
    assert_eq!(
        find(devices, owner.id, device.id)
            .await
            .and_then(|d| d.last_heartbeat),
        Some(latest),
        "the newest heartbeat is kept, every field intact (u64::MAX too); an older one never replaces it"
    );
}

pub async fn activity_of_a_missing_device_is_skipped(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let owner = registered(accounts).await;
    let device = stored_device(devices, owner.id, "Present", 1).await;
    let at = t0() + Duration::hours(2);
    devices
        .record_activity(&[
            (
                unknown_device(),
                activity(Some(at), None, Some(heartbeat("1.0", at))),
            ),
            (device.id, activity(Some(at), None, None)),
        ])
        .await
        .expect("a batch naming a device that no longer exists must still be written");
    assert_eq!(
        find(devices, owner.id, device.id)
            .await
            .and_then(|d| d.last_seen_at),
        Some(at),
        "the devices that exist get their activity"
    );
}

pub async fn deleting_the_owner_deletes_the_devices(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    _audit: &impl AuditLog,
) {
    let (owner, other) = (registered(accounts).await, registered(accounts).await);
    let device = stored_device(devices, owner.id, "Owned", 1).await;
    let others = stored_device(devices, other.id, "Owned", 1).await;
    accounts
        .delete(
            owner.id,
            &audit_event(AuditAction::AccountDeleted, Some(owner.id), None),
        )
        .await
        .expect("delete failed");
    assert!(
        find(devices, owner.id, device.id).await.is_none(),
        "the owner's device is gone"
    );
    assert!(
        credentials(devices, device.id).await.is_none(),
        "a deleted owner's device has no credentials left"
    );
    assert!(
        find(devices, other.id, others.id).await.is_some(),
        "other owners' devices stay"
    );
}

/// Runs every rule in order on one store; prefer
/// [`device_repository_contract!`](crate::device_repository_contract),
/// which gives each rule a test of its own.
pub async fn device_repository_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    audit: &impl AuditLog,
) {
    insert_returns_the_stored_device(accounts, devices, audit).await;
    a_device_is_found_only_by_its_owner(accounts, devices, audit).await;
    insert_records_its_audit_event(accounts, devices, audit).await;
    a_name_in_use_is_refused_whatever_its_case(accounts, devices, audit).await;
    another_owner_may_use_the_same_name(accounts, devices, audit).await;
    the_active_device_limit_is_enforced(accounts, devices, audit).await;
    devices_are_listed_newest_first_in_pages(accounts, devices, audit).await;
    the_listing_filters_by_status(accounts, devices, audit).await;
    a_rename_changes_the_name_and_updated_at(accounts, devices, audit).await;
    a_rename_to_a_name_in_use_is_refused(accounts, devices, audit).await;
    a_rename_to_its_own_name_in_another_case_is_allowed(accounts, devices, audit).await;
    another_owners_device_cannot_be_changed(accounts, devices, audit).await;
    a_rotation_with_grace_keeps_the_previous_secret(accounts, devices, audit).await;
    a_rotation_without_grace_drops_the_previous_secret(accounts, devices, audit).await;
    a_reseal_replaces_exactly_what_was_expected_once(accounts, devices, audit).await;
    stored_secrets_page_by_id_and_skip_revoked_devices(accounts, devices, audit).await;
    a_revocation_is_permanent_and_recorded_once(accounts, devices, audit).await;
    a_revoked_device_cannot_be_renamed_or_rotated(accounts, devices, audit).await;
    a_revocation_frees_the_name_and_a_slot(accounts, devices, audit).await;
    a_revocation_drops_the_previous_secret(accounts, devices, audit).await;
    credentials_are_found_by_id_alone(accounts, devices, audit).await;
    a_batch_of_activity_sets_each_devices_times(accounts, devices, audit).await;
    activity_times_only_move_forward(accounts, devices, audit).await;
    the_latest_heartbeat_is_stored(accounts, devices, audit).await;
    activity_of_a_missing_device_is_skipped(accounts, devices, audit).await;
    deleting_the_owner_deletes_the_devices(accounts, devices, audit).await;
}

/// One `#[tokio::test]` per [`DeviceRepository`] rule, in a module
/// `device_repository_contract`. `$setup`: an async block returning
/// `(guard, accounts, devices, audit)` over one store.
#[macro_export]
macro_rules! device_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            device_repository_contract,
            device,
            $setup,
            (accounts, devices, audit),
            [
                insert_returns_the_stored_device,
                a_device_is_found_only_by_its_owner,
                insert_records_its_audit_event,
                a_name_in_use_is_refused_whatever_its_case,
                another_owner_may_use_the_same_name,
                the_active_device_limit_is_enforced,
                devices_are_listed_newest_first_in_pages,
                the_listing_filters_by_status,
                a_rename_changes_the_name_and_updated_at,
                a_rename_to_a_name_in_use_is_refused,
                a_rename_to_its_own_name_in_another_case_is_allowed,
                another_owners_device_cannot_be_changed,
                a_rotation_with_grace_keeps_the_previous_secret,
                a_rotation_without_grace_drops_the_previous_secret,
                a_reseal_replaces_exactly_what_was_expected_once,
                stored_secrets_page_by_id_and_skip_revoked_devices,
                a_revocation_is_permanent_and_recorded_once,
                a_revoked_device_cannot_be_renamed_or_rotated,
                a_revocation_frees_the_name_and_a_slot,
                a_revocation_drops_the_previous_secret,
                credentials_are_found_by_id_alone,
                a_batch_of_activity_sets_each_devices_times,
                activity_times_only_move_forward,
                the_latest_heartbeat_is_stored,
                activity_of_a_missing_device_is_skipped,
                deleting_the_owner_deletes_the_devices,
            ]
        );
    };
}
