//! The [`AdminRepository`] contract. Fleet counts cover the whole store,
//! so the rules compare counts before and after their own changes.

use chrono::Duration;

use super::fixtures::*;
use crate::access::*;
use crate::account::*;
use crate::audit::AuditAction;
use crate::device::*;
use crate::pagination::PageRequest;
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
    _sessions: &impl SessionRepository,
    _devices: &impl DeviceRepository,
    _signals: &impl SignalRepository,
    _keys: &impl ApiKeyRepository,
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
        Some(user.id),
        "an account is found by its email"
    );
    let nobody = Email::parse("nobody-here@example.com").expect("an email");
    assert_eq!(
        admin
            .account_by_email(&nobody)
            .await
            .expect("account_by_email failed"),
        None,
        "an unknown email finds no account"
    );
    assert!(
        set(admin, user.id, Role::Admin).await,
        "granting changes the role"
    );
    assert!(
        !set(admin, user.id, Role::Admin).await,
        "granting twice changes nothing"
    );
    assert_eq!(
        role(user.id).await.expect("role_of failed"),
        Role::Admin,
        "granted: the account is an admin"
    );
    assert!(
        set(admin, user.id, Role::Owner).await,
        "revoking changes the role back"
    );
    assert!(
        !set(admin, user.id, Role::Owner).await,
        "revoking twice changes nothing"
    );
    assert_eq!(
        role(user.id).await.expect("role_of failed"),
        Role::Owner,
        "revoked: the account is an owner again"
    );
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
    _sessions: &impl SessionRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    _keys: &impl ApiKeyRepository,
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
    _sessions: &impl SessionRepository,
    _devices: &impl DeviceRepository,
    _signals: &impl SignalRepository,
    _keys: &impl ApiKeyRepository,
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
    assert_eq!(
        admin.role_of(user).await.expect("role_of failed"),
        Role::Owner,
        "a deleted account keeps no admin role (owner, the default)"
    );
}

pub async fn accounts_are_listed_newest_first_and_searched(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
    _devices: &impl DeviceRepository,
    _signals: &impl SignalRepository,
    _keys: &impl ApiKeyRepository,
    admin: &impl AdminRepository,
) {
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut user = unique_user();
        user.username = Username::parse(&format!("Pg{i}_{tag}")).expect("a username");
        user.created_at = t0() + Duration::minutes(i);
        accounts
            .create(
                &user,
                &audit_event(AuditAction::AccountRegistered, Some(user.id), None),
            )
            .await
            .expect("create failed");
        ids.push(user.id);
    }
    set(admin, ids[2], Role::Admin).await;
    let page = |limit, after| PageRequest { limit, after };
    let first = admin
        .list_accounts(Some(&tag.to_uppercase()), &page(2, None))
        .await
        .expect("list_accounts failed");
    assert_eq!(
        first.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        [ids[2], ids[1]],
        "newest first, searched ignoring case"
    );
    assert_eq!(first.items[0].role, Role::Admin, "the role is shown");
    assert_eq!(first.items[1].role, Role::Owner, "the other account is an owner");
    let rest = admin
        .list_accounts(Some(tag), &page(2, first.next))
        .await
        .expect("list_accounts failed");
    assert_eq!(
        rest.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        [ids[0]],
        "the second page holds the oldest account"
    );
    assert!(rest.next.is_none(), "the last page says so");
    let by_email = admin
        .list_accounts(Some(first.items[1].email.as_str()), &page(10, None))
        .await
        .expect("list_accounts failed");
    assert_eq!(
        by_email.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        [ids[1]],
        "emails are searched"
    );
    let none = admin
        .list_accounts(Some("100%_no_such"), &page(10, None))
        .await
        .expect("list_accounts failed");
    assert!(none.items.is_empty(), "% and _ are matched literally");
}

pub async fn the_audit_log_is_filtered_by_actor_action_device_and_time(
    accounts: &impl AccountRepository,
    _sessions: &impl SessionRepository,
    devices: &impl DeviceRepository,
    _signals: &impl SignalRepository,
    _keys: &impl ApiKeyRepository,
    admin: &impl AdminRepository,
) {
    let user = registered(accounts).await.id;
    let device = stored_device(devices, user, "Audited", 0).await.id;
    let page = PageRequest {
        limit: 10,
        after: None,
    };
    let list = |filter: AuditFilter| async move {
        admin
            .audit(&filter, &page)
            .await
            .expect("audit failed")
            .items
            .into_iter()
            .map(|e| e.action)
            .collect::<Vec<_>>()
    };
    let mine = AuditFilter {
        actor: Some(user),
        ..AuditFilter::default()
    };
    let all = list(mine).await;
    assert_eq!(all.len(), 2, "the account's registration and its device: {all:?}");
    assert!(
        all.contains(&AuditAction::AccountRegistered) && all.contains(&AuditAction::DeviceRegistered),
        "both the registration and the device are listed: {all:?}"
    );
    assert_eq!(
        list(AuditFilter {
            action: Some(AuditAction::DeviceRegistered),
            ..mine
        })
        .await,
        [AuditAction::DeviceRegistered],
        "the action filter keeps only that action"
    );
    assert_eq!(
        list(AuditFilter {
            device: Some(device),
            ..AuditFilter::default()
        })
        .await,
        [AuditAction::DeviceRegistered],
        "by device"
    );
    let at = t0();
    assert!(
        list(AuditFilter {
            from: Some(at + Duration::seconds(1)),
            ..mine
        })
        .await
        .is_empty(),
        "`from` after every entry finds none"
    );
    assert!(
        list(AuditFilter { to: Some(at), ..mine }).await.is_empty(),
        "`to` is exclusive"
    );
    assert_eq!(
        list(AuditFilter {
            from: Some(at),
            to: Some(at + Duration::seconds(1)),
            ..mine
        })
        .await
        .len(),
        2,
        "`from` is inclusive: both entries of that second"
    );
    let one = admin
        .audit(
            &mine,
            &PageRequest {
                limit: 1,
                after: None,
            },
        )
        .await
        .expect("audit failed");
    let next = admin
        .audit(
            &mine,
            &PageRequest {
                limit: 1,
                after: one.next,
            },
        )
        .await
        .expect("audit failed");
    assert_eq!(one.items.len() + next.items.len(), 2, "paged");
    assert_ne!(
        one.items[0].id, next.items[0].id,
        "the second page does not repeat the first"
    );
}

pub async fn disabling_an_account_stops_its_sessions_keys_and_devices_until_enabled(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
    devices: &impl DeviceRepository,
    _signals: &impl SignalRepository,
    keys: &impl ApiKeyRepository,
    admin: &impl AdminRepository,
) {
    let registered_user = registered(accounts).await;
    let user = registered_user.id;
    let bystander = registered(accounts).await.id;
    let (session, first) = logged_in(sessions, user).await;
    let device = stored_device(devices, user, "Disabled", 0).await.id;
    let other_device = stored_device(devices, bystander, "Bystander", 0).await.id;
    let hash = ApiKeyHash::new(uuid::Uuid::new_v4().as_bytes().to_vec());
    let key = ApiKey {
        id: ApiKeyId::from_uuid(uuid::Uuid::now_v7()),
        owner: user,
        name: ApiKeyName::parse("Disabled").expect("a name"),
        prefix: "eag_live_abcdef".to_owned(),
        scopes: Scopes::of([Scope::DevicesRead]),
        allowed: AllowedNetworks::default(),
        created_at: t0(),
        expires_at: None,
        last_used_at: None,
        rotated_at: None,
        revoked_at: None,
    };
    keys.create(
        &NewApiKey {
            key,
            hash: hash.clone(),
        },
        &audit_event(AuditAction::ApiKeyCreated, Some(user), None),
    )
    .await
    .expect("creating a key");
    let state = || async {
        let login = LoginId::parse(registered_user.email.as_str()).expect("a login");
        let credentials = accounts
            .find_credentials_by_login(&login)
            .await
            .expect("find_credentials_by_login")
            .expect("the credentials");
        let by_id = accounts
            .find_credentials_by_id(user)
            .await
            .expect("find_credentials_by_id")
            .expect("the credentials");
        let refresh = sessions
            .find_refresh_token(&first.hash)
            .await
            .expect("find_refresh_token")
            .expect("the refresh token");
        assert_eq!(
            (credentials.disabled, by_id.disabled),
            (refresh.account_disabled, refresh.account_disabled),
            "credentials and refresh tokens agree on whether the account is disabled"
        );
        (
            !refresh.account_disabled
                && sessions
                    .find(session.id)
                    .await
                    .expect("find")
                    .expect("the session")
                    .is_active(),
            devices
                .find_credentials(device)
                .await
                .expect("find_credentials")
                .expect("the device")
                .revoked,
            keys.find_by_hash(&hash)
                .await
                .expect("find_by_hash")
                .expect("the key")
                .is_revoked(),
        )
    };
    assert_eq!(state().await, (true, false, false), "an enabled account works");
    let at = t0() + Duration::hours(1);
    let event = |a| audit_event(a, Some(user), None);
    let disabled = admin
        .set_disabled(user, true, at, &event(AuditAction::AccountDisabled))
        .await
        .expect("set_disabled failed")
        .expect("the account");
    assert_eq!(disabled.disabled_at, Some(at), "disabling records when");
    assert_eq!(
        state().await,
        (false, true, true),
        "a disabled account's session, device and key stop"
    );
    let again = admin
        .set_disabled(
            user,
            true,
            at + Duration::hours(1),
            &event(AuditAction::AccountDisabled),
        )
        .await
        .expect("set_disabled failed")
        .expect("the account");
    assert_eq!(again.disabled_at, Some(at), "the first disabling time stays");
    assert!(
        !devices
            .find_credentials(other_device)
            .await
            .expect("find_credentials")
            .expect("the device")
            .revoked,
        "other accounts are untouched"
    );
    let enabled = admin
        .set_disabled(user, false, at, &event(AuditAction::AccountEnabled))
        .await
        .expect("set_disabled failed")
        .expect("the account");
    assert_eq!(enabled.disabled_at, None, "enabling clears disabled_at");
    assert_eq!(state().await, (true, false, false), "enabling restores them");
    assert_eq!(
        admin
            .set_disabled(unknown_user(), true, at, &event(AuditAction::AccountDisabled))
            .await
            .expect("set_disabled failed"),
        None,
        "an unknown account"
    );
}

/// Every rule in order on one set of ports; per-rule tests come from
/// [`admin_repository_contract!`](crate::admin_repository_contract).
pub async fn admin_repository_contract(
    accounts: &impl AccountRepository,
    sessions: &impl SessionRepository,
    devices: &impl DeviceRepository,
    signals: &impl SignalRepository,
    keys: &impl ApiKeyRepository,
    admin: &impl AdminRepository,
) {
    roles_default_to_owner_and_change_once(accounts, sessions, devices, signals, keys, admin).await;
    fleet_stats_count_accounts_devices_and_signals_per_day(accounts, sessions, devices, signals, keys, admin)
        .await;
    deleting_an_account_drops_its_role(accounts, sessions, devices, signals, keys, admin).await;
    accounts_are_listed_newest_first_and_searched(accounts, sessions, devices, signals, keys, admin).await;
    the_audit_log_is_filtered_by_actor_action_device_and_time(
        accounts, sessions, devices, signals, keys, admin,
    )
    .await;
    disabling_an_account_stops_its_sessions_keys_and_devices_until_enabled(
        accounts, sessions, devices, signals, keys, admin,
    )
    .await;
}

/// One `#[tokio::test]` per [`AdminRepository`] rule. `$setup`: an async
/// block returning `(guard, accounts, sessions, devices, signals, keys,
/// admin)` over one store.
#[macro_export]
macro_rules! admin_repository_contract {
    ($setup:expr) => {
        $crate::__contract_cases!(
            admin_repository_contract,
            admin,
            $setup,
            (accounts, sessions, devices, signals, keys, admin),
            [
                roles_default_to_owner_and_change_once,
                fleet_stats_count_accounts_devices_and_signals_per_day,
                deleting_an_account_drops_its_role,
                accounts_are_listed_newest_first_and_searched,
                the_audit_log_is_filtered_by_actor_action_device_and_time,
                disabling_an_account_stops_its_sessions_keys_and_devices_until_enabled,
            ]
        );
    };
}
