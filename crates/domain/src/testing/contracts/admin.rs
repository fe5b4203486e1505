//! The [`AdminRepository`] contract. Fleet counts cover the whole store,
//! so the rules compare counts before and after their own changes.

use chrono::Duration;

use super::fixtures::*;
use crate::access::*;
use crate::account::*;
use crate::audit::AuditAction;
use crate::device::*;
use crate::signal::SignalRepository;

fn role_event(user: UserId) -> crate::audit::AuditEvent {
    audit_event(AuditAction::RoleChanged, Some(user), None)
}

/// Sets the role with a fresh audit event; whether it changed.
async fn set(admin: &impl AdminRepository, user: UserId, role: Role) -> bool {
    admin
        .set_role(user, role, &role_event(user))
        .await
        .expect("set_role failed")
}

pub async fn roles_default_to_owner_and_change_once(
    accounts: &impl AccountRepository,
    _devices: &impl DeviceRepository,
    _signals: &impl SignalRepository,
    admin: &impl AdminRepository,
) {
    let user = registered(accounts).await;
    let role = |u| admin.role_of(u);
    assert_eq!(
        role(unknown_user()).await.expect("role_of failed"),
        Role::Owner,
        "an unknown account is no admin"
    );
    assert_eq!(
        role(user.id).await.expect("role_of failed"),
        Role::Owner,
        "accounts start as owners"
    );
    assert_eq!(
        admin
            .account_by_email(&user.email)
            .await
            .expect("account_by_email failed"),
        Some(user.id)
    );
    let nobody = Email::parse("nobody-here@example.com").expect("an email");
    assert_eq!(
        admin
            .account_by_email(&nobody)
            .await
            .expect("account_by_email failed"),
        None
    );
    assert!(
        set(admin, user.id, Role::Admin).await,
        "granting changes the role"
    );
    assert!(
        !set(admin, user.id, Role::Admin).await,
        "granting twice changes nothing"
    );
    assert_eq!(role(user.id).await.expect("role_of failed"), Role::Admin);
    assert!(
        set(admin, user.id, Role::Owner).await,
        "revoking changes the role back"
    );
    assert!(
        !set(admin, user.id, Role::Owner).await,
        "revoking twice changes nothing"
    );
    assert_eq!(role(user.id).await.expect("role_of failed"), Role::Owner);
    assert!(
        !admin
            .set_role(unknown_user(), Role::Admin, &role_event(user.id))
            .await
            .expect("set_role failed"),
        "an unknown account cannot be made an admin"
    );
}

pub async fn fleet_stats_count_accounts_devices_and_signals_per_day(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    admin: &impl AdminRepository,
) {
    let since = t0() - Duration::days(1);
    let before = admin.fleet_stats(since).await.expect("fleet_stats failed");
    let owner = registered(accounts).await.id;
    admin
        .set_role(owner, Role::Admin, &role_event(owner))
        .await
        .expect("set_role failed");
    let kept = stored_device(devices, owner, "Kept", 0).await.id;
    let gone = stored_device(devices, owner, "Gone", 1).await.id;
    devices
        .revoke(
            owner,
            gone,
            t0(),
            &audit_event(AuditAction::DeviceRevoked, Some(owner), Some(gone)),
        )
        .await
        .expect("revoke failed");
    published(signals, new_signal(owner, 2, &[kept], None)).await;
    published(signals, new_signal(owner, 3, &[kept], None)).await;
    published(signals, new_signal(owner, 24 * 60 * 3, &[kept], None)).await;
    let after = admin.fleet_stats(since).await.expect("fleet_stats failed");
    assert_eq!(after.accounts, before.accounts + 1, "accounts");
    assert_eq!(after.admins, before.admins + 1, "admins");
    assert_eq!(after.devices_active, before.devices_active + 1, "active devices");
    assert_eq!(
        after.devices_revoked,
        before.devices_revoked + 1,
        "revoked devices"
    );
    let day = |stats: &FleetStats, d| {
        stats
            .signals_per_day
            .iter()
            .find(|(date, _)| *date == d)
            .map_or(0, |(_, n)| *n)
    };
    let t0_day = t0().date_naive();
    assert_eq!(
        day(&after, t0_day),
        day(&before, t0_day) + 2,
        "two signals on t0's day"
    );
    let later = (t0() + Duration::days(3)).date_naive();
    assert_eq!(
        day(&after, later),
        day(&before, later) + 1,
        "one signal three days later"
    );
    assert!(
        after.signals_per_day.windows(2).all(|w| w[0].0 < w[1].0),
        "days in order, each once"
    );
    let from_later = admin
        .fleet_stats(t0() + Duration::days(1))
        .await
        .expect("fleet_stats failed");
    assert_eq!(day(&from_later, t0_day), 0, "days before `since` are left out");
}

pub async fn deleting_an_account_drops_its_role(
    accounts: &impl AccountRepository,
    _devices: &impl DeviceRepository,
    _signals: &impl SignalRepository,
    admin: &impl AdminRepository,
) {
    let user = registered(accounts).await.id;
    admin
        .set_role(user, Role::Admin, &role_event(user))
        .await
        .expect("set_role failed");
    accounts
        .delete(user, &audit_event(AuditAction::AccountDeleted, Some(user), None))
        .await
        .expect("delete failed");
    assert_eq!(admin.role_of(user).await.expect("role_of failed"), Role::Owner);
}

/// Every rule in order on one set of ports; per-rule tests come from
/// [`admin_repository_contract!`](crate::admin_repository_contract).
pub async fn admin_repository_contract(
    accounts: &impl AccountRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    admin: &impl AdminRepository,
) {
    roles_default_to_owner_and_change_once(accounts, devices, signals, admin).await;
    fleet_stats_count_accounts_devices_and_signals_per_day(accounts, devices, signals, admin).await;
    deleting_an_account_drops_its_role(accounts, devices, signals, admin).await;
}

/// One `#[tokio::test]` per [`AdminRepository`] rule. `$setup`: an async
/// block returning `(guard, accounts, devices, signals, admin)` over one store.
#[macro_export]
macro_rules! admin_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            admin_repository_contract,
            admin,
            $setup,
            (accounts, devices, signals, admin),
            [
                roles_default_to_owner_and_change_once,
                fleet_stats_count_accounts_devices_and_signals_per_day,
                deleting_an_account_drops_its_role,
            ]
        );
    };
}
