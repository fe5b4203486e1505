//! The [`ConfigRepository`] contract; the account and device repositories
//! provide owners and devices (and the device's cached configuration
//! revision, read with its credentials).

use chrono::Duration;
use serde_json::json;

use super::fixtures::*;
use crate::account::*;
use crate::audit::AuditAction;
use crate::config::*;
use crate::device::*;
use crate::pagination::PageRequest;

fn version(scope: ConfigScope, version: u32, doc: serde_json::Value) -> ConfigVersion {
    ConfigVersion {
        scope,
        version,
        layer: ConfigLayer::parse(&doc).expect("a valid document"),
        change: ConfigChange::Replaced,
        created_at: t0() + Duration::minutes(i64::from(version)),
    }
}

async fn write(
    configs: &impl ConfigRepository,
    new: &ConfigVersion,
    expected: u32,
) -> Result<(), WriteConfigError> {
    let audit = audit_event(
        AuditAction::ConfigChanged,
        Some(new.scope.owner()),
        new.scope.device(),
    );
    configs.write(new, expected, &audit).await
}

async fn revision(devices: &impl DeviceRepository, device: DeviceId) -> i64 {
    devices
        .find_credentials(device)
        .await
        .expect("find_credentials failed")
        .expect("the device exists")
        .config_revision
}

async fn effective(configs: &impl ConfigRepository, owner: UserId, device: DeviceId) -> EffectiveConfig {
    configs
        .effective(owner, device)
        .await
        .expect("effective failed")
        .expect("the owner's device has an effective configuration")
}

pub async fn a_scope_starts_empty_at_version_zero(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    configs: &impl ConfigRepository,
) {
    let owner = registered(accounts).await.id;
    let other = registered(accounts).await.id;
    let device = stored_device(devices, owner, "Cfg", 0).await.id;
    let empty = Some(CurrentConfig::default());
    assert_eq!(
        configs
            .current(ConfigScope::Account(owner))
            .await
            .expect("current failed"),
        empty,
        "an account default starts empty at version 0"
    );
    assert_eq!(
        configs
            .current(ConfigScope::Device(owner, device))
            .await
            .expect("current failed"),
        empty,
        "a device's document starts empty at version 0"
    );
    assert_eq!(
        configs
            .current(ConfigScope::Device(other, device))
            .await
            .expect("current failed"),
        None,
        "another owner's device has no document for this owner"
    );
    assert_eq!(
        configs
            .current(ConfigScope::Device(owner, unknown_device()))
            .await
            .expect("current failed"),
        None,
        "an unknown device has no document"
    );
    assert!(
        configs
            .effective(other, device)
            .await
            .expect("effective failed")
            .is_none(),
        "another owner's device has no effective configuration"
    );
    let eff = effective(configs, owner, device).await;
    assert_eq!(
        (eff.account_version, eff.device_version),
        (0, Some(0)),
        "a device starts with version 0 at both levels"
    );
    assert_eq!(eff.mode(), Mode::Active, "built-in values apply");
}

pub async fn writes_store_the_next_version_and_history_lists_them_newest_first(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    configs: &impl ConfigRepository,
) {
    let owner = registered(accounts).await.id;
    let device = stored_device(devices, owner, "Cfg", 0).await.id;
    let scope = ConfigScope::Device(owner, device);
    for v in 1..=3u32 {
        write(
            configs,
            &version(scope, v, json!({"max_lot": f64::from(v)})),
            v - 1,
        )
        .await
        .unwrap_or_else(|e| panic!("writing version {v}: {e:?}"));
    }
    let current = configs
        .current(scope)
        .await
        .expect("current failed")
        .expect("exists");
    assert_eq!(current.version, 3, "three writes: version 3");
    assert_eq!(current.layer.max_lot, Some(3.0), "the latest document is current");
    let first = configs
        .history(scope, &PageRequest::first(2))
        .await
        .expect("history failed")
        .expect("the owner's device");
    assert_eq!(
        first.items.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2],
        "history is newest first, paged"
    );
    let after = PageRequest {
        limit: 2,
        after: first.next,
    };
    let rest = configs
        .history(scope, &after)
        .await
        .expect("history failed")
        .expect("exists");
    assert_eq!(
        rest.items.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1],
        "the second page holds the oldest version"
    );
    assert_eq!(rest.next, None, "the last page says so");
    assert_eq!(
        rest.items[0],
        version(scope, 1, json!({"max_lot": 1.0})),
        "a version reads back as written"
    );
    assert_eq!(
        configs
            .version(scope, 2)
            .await
            .expect("version failed")
            .map(|v| v.layer.max_lot),
        Some(Some(2.0)),
        "an old version reads back as written"
    );
    assert_eq!(
        configs.version(scope, 9).await.expect("version failed"),
        None,
        "a version never written is not found"
    );
    assert!(
        configs
            .history(
                ConfigScope::Device(owner, unknown_device()),
                &PageRequest::first(2)
            )
            .await
            .expect("history failed")
            .is_none(),
        "no history for an unknown device"
    );
}

pub async fn a_stale_write_is_refused_with_the_current_version(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    configs: &impl ConfigRepository,
) {
    let owner = registered(accounts).await.id;
    let device = stored_device(devices, owner, "Cfg", 0).await.id;
    let scope = ConfigScope::Account(owner);
    write(configs, &version(scope, 1, json!({"mode": "paused"})), 0)
        .await
        .expect("the first write");
    let before = revision(devices, device).await;
    match write(configs, &version(scope, 1, json!({"mode": "active"})), 0).await {
        Err(WriteConfigError::VersionMismatch { current: 1 }) => {}
        other => panic!("a write expecting version 0 of a scope at 1: {other:?}"),
    }
    assert_eq!(
        configs
            .current(scope)
            .await
            .expect("current failed")
            .map(|c| c.layer.mode),
        Some(Some(Mode::Paused)),
        "the refused write changed nothing"
    );
    assert_eq!(revision(devices, device).await, before, "nor the revision");
    let other = registered(accounts).await.id;
    match write(
        configs,
        &version(ConfigScope::Device(other, device), 1, json!({})),
        0,
    )
    .await
    {
        Err(WriteConfigError::NotFound) => {}
        other => panic!("writing another owner's device: {other:?}"),
    }
}

pub async fn writes_change_the_revision_of_the_devices_they_affect(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    configs: &impl ConfigRepository,
) {
    let owner = registered(accounts).await.id;
    let a = stored_device(devices, owner, "A", 0).await.id;
    let b = stored_device(devices, owner, "B", 1).await.id;
    let stranger = registered(accounts).await.id;
    let c = stored_device(devices, stranger, "C", 0).await.id;
    let (a0, b0, c0) = (
        revision(devices, a).await,
        revision(devices, b).await,
        revision(devices, c).await,
    );
    write(
        configs,
        &version(ConfigScope::Device(owner, a), 1, json!({"max_lot": 1})),
        0,
    )
    .await
    .expect("device write");
    let a1 = revision(devices, a).await;
    assert_ne!(a1, a0, "the device's own write changes its revision");
    assert_eq!(revision(devices, b).await, b0, "not its sibling's");
    write(
        configs,
        &version(ConfigScope::Account(owner), 1, json!({"mode": "close_only"})),
        0,
    )
    .await
    .expect("account write");
    assert_ne!(
        revision(devices, a).await,
        a1,
        "the account default changes every device's revision"
    );
    assert_ne!(
        revision(devices, b).await,
        b0,
        "the account default changes every device's revision, b's too"
    );
    assert_eq!(
        revision(devices, c).await,
        c0,
        "another owner's devices are untouched"
    );
    assert_eq!(
        effective(configs, owner, a).await.revision,
        revision(devices, a).await,
        "the effective configuration carries the revision the credentials do"
    );
}

pub async fn the_effective_configuration_inherits_field_by_field(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    configs: &impl ConfigRepository,
) {
    let owner = registered(accounts).await.id;
    let a = stored_device(devices, owner, "A", 0).await.id;
    let b = stored_device(devices, owner, "B", 1).await.id;
    write(
        configs,
        &version(
            ConfigScope::Account(owner),
            1,
            json!({"mode": "close_only", "max_lot": 2.0}),
        ),
        0,
    )
    .await
    .expect("account write");
    write(
        configs,
        &version(ConfigScope::Device(owner, a), 1, json!({"max_lot": 0.5})),
        0,
    )
    .await
    .expect("device write");
    let eff = effective(configs, owner, a).await;
    assert_eq!(eff.values.max_lot, Some(0.5), "the device's value wins");
    assert_eq!(
        eff.sources["max_lot"],
        Source::Device,
        "max_lot comes from the device"
    );
    assert_eq!(eff.mode(), Mode::CloseOnly, "the account default fills the rest");
    assert_eq!(
        eff.sources["mode"],
        Source::Account,
        "mode comes from the account default"
    );
    assert_eq!(
        (eff.account_version, eff.device_version),
        (1, Some(1)),
        "the effective configuration names both versions"
    );
    let both = configs
        .effective_for_devices(owner, &[a, b, unknown_device()])
        .await
        .expect("effective_for_devices failed");
    assert_eq!(both.len(), 2, "unknown devices are left out: {both:?}");
    let of_b = both.iter().find(|(d, _)| *d == b).expect("b is there");
    assert_eq!(
        of_b.1.values.max_lot,
        Some(2.0),
        "b inherits the account's max_lot"
    );
    assert_eq!(
        both.iter().find(|(d, _)| *d == a).map(|(_, e)| e),
        Some(&eff),
        "the batch read agrees with the single read"
    );
}

pub async fn deleting_the_owner_deletes_the_configurations(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    configs: &impl ConfigRepository,
) {
    let owner = registered(accounts).await.id;
    let a = stored_device(devices, owner, "A", 0).await.id;
    write(
        configs,
        &version(ConfigScope::Account(owner), 1, json!({"mode": "paused"})),
        0,
    )
    .await
    .expect("account write");
    write(
        configs,
        &version(ConfigScope::Device(owner, a), 1, json!({"max_lot": 1})),
        0,
    )
    .await
    .expect("device write");
    accounts
        .delete(
            owner,
            &audit_event(AuditAction::AccountDeleted, Some(owner), None),
        )
        .await
        .expect("delete failed");
    assert_eq!(
        configs
            .current(ConfigScope::Account(owner))
            .await
            .expect("current failed"),
        Some(CurrentConfig::default()),
        "a deleted owner's default is gone"
    );
    assert_eq!(
        configs
            .version(ConfigScope::Account(owner), 1)
            .await
            .expect("version failed"),
        None,
        "and its history"
    );
}

/// Runs every rule in order on one store; prefer
/// [`config_repository_contract!`](crate::config_repository_contract).
pub async fn config_repository_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    configs: &impl ConfigRepository,
) {
    a_scope_starts_empty_at_version_zero(accounts, devices, configs).await;
    writes_store_the_next_version_and_history_lists_them_newest_first(accounts, devices, configs).await;
    a_stale_write_is_refused_with_the_current_version(accounts, devices, configs).await;
    writes_change_the_revision_of_the_devices_they_affect(accounts, devices, configs).await;
    the_effective_configuration_inherits_field_by_field(accounts, devices, configs).await;
    deleting_the_owner_deletes_the_configurations(accounts, devices, configs).await;
}

/// One `#[tokio::test]` per [`ConfigRepository`] rule, in a module
/// `config_repository_contract`. `$setup`: an async block returning
/// `(guard, accounts, devices, configs)` over one store.
#[macro_export]
macro_rules! config_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            config_repository_contract,
            config,
            $setup,
            (accounts, devices, configs),
            [
                a_scope_starts_empty_at_version_zero,
                writes_store_the_next_version_and_history_lists_them_newest_first,
                a_stale_write_is_refused_with_the_current_version,
                writes_change_the_revision_of_the_devices_they_affect,
                the_effective_configuration_inherits_field_by_field,
                deleting_the_owner_deletes_the_configurations,
            ]
        );
    };
}
